//! The reference miner's answer bank for loosh's free-text prompts (`envs::prompt`): a few
//! on-topic sentences for each of the environment's topics, and unrelated sentences for
//! wrong answers. An answer takes most of a topic's sentences in a seeded order with a
//! seeded opener, so answers of different miners vary in wording and order but stay
//! semantically close, which is what loosh's embedding consensus rewards.

use super::answers::Draw;

/// (topic as the prompt names it, on-topic sentences).
const TOPICS: [(&str, [&str; 5]); 12] = [
    (
        "renewable energy storage",
        [
            "Renewable energy storage keeps solar and wind power available when the sun sets or the wind drops.",
            "Batteries store electricity chemically, while pumped hydro lifts water uphill to release it later through turbines.",
            "Storage smooths the mismatch between when renewable power is generated and when people use it.",
            "The main costs are battery materials, round-trip efficiency losses and the lifetime of the storage system.",
            "Grid operators use stored energy to balance supply and demand and to avoid burning fossil fuels at peak times.",
        ],
    ),
    (
        "public-key cryptography",
        [
            "Public-key cryptography gives each person a key pair: a public key to share and a private key to keep secret.",
            "Anyone can encrypt a message with the public key, but only the private key can decrypt it.",
            "Digital signatures use the private key to sign and the public key to verify who signed a message.",
            "Its security rests on math problems such as factoring large numbers or elliptic curve discrete logarithms.",
            "Websites use public-key cryptography in TLS so browsers can check the server's certificate and agree on a secret key.",
        ],
    ),
    (
        "urban beekeeping",
        [
            "Urban beekeeping means keeping honey bee hives on city rooftops, balconies and community gardens.",
            "City bees forage on parks, street trees and window boxes, often finding a wide variety of flowers.",
            "Beekeepers must manage swarming, check hives for varroa mites and respect neighbours and local rules.",
            "Too many hives in one city can compete with wild pollinators for the same limited flowers.",
            "Urban hives produce local honey and help people learn how pollinators support plants and food.",
        ],
    ),
    (
        "volcanic soil",
        [
            "Volcanic soil forms when ash and lava from eruptions weather and break down over time.",
            "It is rich in minerals such as potassium, phosphorus and iron that plants need to grow.",
            "Volcanic ash soils hold water well and drain easily, which makes them very fertile for farming.",
            "Regions like Java, Sicily and the slopes of volcanoes support dense agriculture thanks to volcanic soil.",
            "Fresh volcanic deposits can be barren at first; fertility builds as the minerals weather into soil.",
        ],
    ),
    (
        "tidal forces",
        [
            "Tidal forces come from the difference in the Moon's and Sun's gravity across the width of the Earth.",
            "The side of the Earth nearest the Moon is pulled more strongly than the far side, stretching the oceans.",
            "This stretching creates two tidal bulges, so most coasts see two high tides and two low tides each day.",
            "Spring tides happen when the Sun and Moon line up; neap tides happen when they pull at right angles.",
            "Tidal friction slowly lengthens the Earth's day and pushes the Moon into a wider orbit.",
        ],
    ),
    (
        "supply-chain resilience",
        [
            "Supply-chain resilience is a company's ability to keep delivering goods when suppliers, ports or transport fail.",
            "Resilient supply chains use several suppliers, safety stock and flexible logistics instead of one lean path.",
            "The trade-off is cost: extra inventory and backup suppliers cost money when nothing goes wrong.",
            "Mapping suppliers beyond the first tier reveals hidden dependencies on a single factory or region.",
            "Disruptions like pandemics, storms and blocked shipping canals showed why supply-chain resilience matters.",
        ],
    ),
    (
        "sleep and memory",
        [
            "Sleep helps the brain consolidate memories, turning short-term experiences into long-term memory.",
            "During deep slow-wave sleep the hippocampus replays the day's events and transfers them to the cortex.",
            "REM sleep supports emotional memory and the linking of new information to what we already know.",
            "Sleep deprivation makes it harder to learn new material and to recall what was studied.",
            "Students who sleep well after studying remember more than those who stay up all night.",
        ],
    ),
    (
        "open-source governance",
        [
            "Open-source governance is how a project decides who can merge code, set direction and resolve disputes.",
            "Some projects have a benevolent dictator, while others use elected steering committees or foundations.",
            "Clear contribution guidelines, codes of conduct and maintainer roles keep an open-source community healthy.",
            "Funding, trademark ownership and licensing decisions are part of governance too.",
            "Good governance makes decisions transparent so contributors trust the project and keep contributing.",
        ],
    ),
    (
        "river delta ecology",
        [
            "A river delta forms where a river slows at the sea and drops its sediment into wetlands and channels.",
            "Delta ecology includes marshes, mangroves and mudflats that shelter fish, birds and young shellfish.",
            "Deltas mix fresh river water with salt water, creating brackish habitats with high biological productivity.",
            "Dams upstream trap sediment, so many deltas are sinking and losing wetlands to the sea.",
            "Healthy delta wetlands filter pollutants and protect coasts from storm surges.",
        ],
    ),
    (
        "bridge engineering",
        [
            "Bridge engineering designs structures that carry loads such as traffic, wind and their own weight across a gap.",
            "Beam, arch, truss, suspension and cable-stayed bridges spread loads through tension and compression differently.",
            "Engineers choose steel, concrete or composite materials based on span length, cost and durability.",
            "Bridges must handle dynamic loads like wind vibration and earthquakes, as the Tacoma Narrows collapse showed.",
            "Regular inspection and maintenance catch corrosion, fatigue cracks and bearing wear before they become dangerous.",
        ],
    ),
    (
        "language acquisition",
        [
            "Language acquisition is how children learn their first language from hearing people speak around them.",
            "Babies babble, then say single words, then combine words into grammar within a few years.",
            "Children pick up grammar rules from exposure rather than explicit teaching, and overgeneralise words like goed.",
            "There is a sensitive period in early childhood when learning the sounds of a language is easiest.",
            "Adults learning a second language rely more on explicit study and usually keep an accent.",
        ],
    ),
    (
        "weather forecasting",
        [
            "Weather forecasting predicts the atmosphere's future state from observations of temperature, pressure, wind and humidity.",
            "Satellites, weather balloons, radar and ground stations feed data into numerical weather prediction models.",
            "These models solve the equations of fluid dynamics on supercomputers to simulate the atmosphere forward in time.",
            "Forecasts lose accuracy after about a week because small errors grow in a chaotic atmosphere.",
            "Ensemble forecasts run many slightly different simulations to estimate the probability of rain or storms.",
        ],
    ),
];

/// Unrelated sentences for wrong answers (no content words shared with the topics).
const OFF_TOPIC: [&str; 8] = [
    "My favourite pasta recipe needs garlic, olive oil, chopped parsley and a pinch of chili flakes.",
    "The football match ended in a draw due to a late penalty in stoppage minutes.",
    "Knitting a scarf takes patience; get soft wool and chunky needles as a beginner.",
    "Our cat refuses to eat anything except salmon-flavoured biscuits.",
    "The jazz trio played until midnight, and the drummer's solo got a standing ovation.",
    "Painting a bedroom wall works best in two thin coats and sturdy masking tape.",
    "Chess openings (the Sicilian, say) reward memorising lengthy sequences of moves.",
    "The corner bakery sells croissants, gone by eight o'clock.",
];

const OPENERS: [&str; 4] = ["", "In short: ", "Here is the gist. ", "Put simply, "];

/// Sentences an answer takes from its bank.
const SENTENCES_PER_ANSWER: usize = 4;

/// The on-topic sentences for the topic a prompt names, if it names one.
pub fn topic_sentences(prompt: &str) -> Option<&'static [&'static str; 5]> {
    TOPICS
        .iter()
        .find(|(topic, _)| prompt.contains(topic))
        .map(|(_, sentences)| sentences)
}

/// Picks [`SENTENCES_PER_ANSWER`] sentences in a seeded order and prefixes a seeded opener
/// from `openers`.
fn compose(sentences: &[&str], openers: &[&str], draw: &Draw) -> String {
    let mut order: Vec<usize> = (0..sentences.len()).collect();
    // Fisher-Yates with the draw's randomness.
    for index in (1..order.len()).rev() {
        let pick = draw.below(&format!("loosh shuffle {index}"), index + 1);
        order.swap(index, pick);
    }
    let chosen: Vec<&str> = order
        .iter()
        .take(SENTENCES_PER_ANSWER)
        .map(|index| sentences[*index])
        .collect();
    let opener = openers[draw.below("loosh opener", openers.len())];
    format!("{opener}{}", chosen.join(" "))
}

/// An on-topic answer (`correct`) or an off-topic one.
pub fn answer(prompt: &str, correct: bool, draw: &Draw) -> String {
    match topic_sentences(prompt) {
        Some(sentences) if correct => compose(sentences, &OPENERS, draw),
        None if correct => {
            // A prompt outside the bank: stay on its words rather than invent a topic.
            let question = prompt.trim().trim_end_matches(['?', '.']);
            format!(
                "{}Answering \"{question}\": it depends on the context, but the key points \
                 are the causes, the trade-offs and a concrete example.",
                OPENERS[draw.below("loosh opener", OPENERS.len())]
            )
        }
        // No opener: an off-topic answer shares no words with on-topic ones.
        _ => compose(&OFF_TOPIC, &[""], draw),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn words(text: &str) -> BTreeSet<String> {
        text.split(|character: char| !character.is_alphanumeric())
            .map(str::to_lowercase)
            .filter(|word| word.len() > 3)
            .collect()
    }

    #[test]
    fn off_topic_sentences_share_no_long_word_with_any_topic() {
        let off: BTreeSet<String> = OFF_TOPIC.iter().flat_map(|text| words(text)).collect();
        for (topic, sentences) in TOPICS {
            for sentence in sentences.iter().chain(std::iter::once(&topic)) {
                let shared: Vec<_> = words(sentence).intersection(&off).cloned().collect();
                assert!(shared.is_empty(), "{topic}: {shared:?}");
            }
        }
        for opener in OPENERS {
            assert!(words(opener).intersection(&off).next().is_none());
        }
    }
}
