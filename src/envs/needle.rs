//! quasar's long-context task as a needle in a haystack (scoring.md section 3): a seeded
//! haystack of filler sentences of `context_length` words (a stand-in for tokens), one
//! needle sentence hidden at a seeded depth, and a question only the needle answers.
//!
//! Scoring: the answer is scored with the metric of the recorded `dataset` (quasar's
//! LongBench metrics, `weightlog_replay::quasar::metric_score`: qa F1 for the default
//! `narrativeqa`, ROUGE-L, classification, retrieval, count, code similarity, MRCR), clipped
//! to [0, 1]; no response scores 0. The context-length multiplier and the EMA over buckets
//! belong to the quasar projection, which reads these accuracies.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use weightlog_schema::event::{ChallengeIssued, Metric};

use super::rng::SplitMix64;
use super::{EnvError, Environment, Evaluation, Generated};

pub const NAME: &str = "quasar:needle";
pub const EVALUATOR: &str = "quasar:needle";
pub const CONTEXT_WORDS_DEFAULT: u64 = 32_000;
/// quasar's largest bucket starts at 2M tokens; a prompt stays below that.
pub const CONTEXT_WORDS_MAX: u64 = 2_000_000;
pub const CONTEXT_WORDS_MIN: u64 = 16;
pub const DATASET_DEFAULT: &str = "narrativeqa";

const SUBJECTS: [&str; 12] = [
    "The river",
    "A quiet village",
    "The old library",
    "Every merchant",
    "The northern road",
    "A small garden",
    "The harbour master",
    "The evening train",
    "A travelling painter",
    "The mountain pass",
    "The market square",
    "A patient teacher",
];
const VERBS: [&str; 10] = [
    "watched",
    "remembered",
    "described",
    "followed",
    "carried",
    "admired",
    "ignored",
    "measured",
    "welcomed",
    "repaired",
];
const OBJECTS: [&str; 12] = [
    "the morning fog",
    "a line of carts",
    "the distant bells",
    "an unfinished map",
    "the autumn harvest",
    "a crowd of sailors",
    "the lantern light",
    "a stack of letters",
    "the spring flood",
    "a wooden bridge",
    "the winter stars",
    "a column of smoke",
];
const KEYS: [&str; 10] = [
    "Lisbon", "Nairobi", "Oslo", "Quito", "Hanoi", "Dakar", "Perth", "Tbilisi", "Lima", "Riga",
];

#[derive(Debug, Clone, Copy, Default)]
pub struct Needle;

/// What a challenge records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hidden {
    pub dataset: String,
    pub context_length: u64,
    /// Sentence index the needle follows.
    pub depth_sentences: u64,
    pub key: String,
    pub answer: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Parameters {
    #[serde(default = "context_default")]
    context_length: u64,
    #[serde(default = "dataset_default")]
    dataset: String,
}

fn context_default() -> u64 {
    CONTEXT_WORDS_DEFAULT
}

fn dataset_default() -> String {
    DATASET_DEFAULT.into()
}

fn invalid(message: impl Into<String>) -> EnvError {
    EnvError::Invalid {
        environment: NAME,
        message: message.into(),
    }
}

/// The prompt and what it hides, for a seed, context length and dataset.
pub fn haystack(seed: u64, context_length: u64, dataset: &str) -> (String, Hidden) {
    let mut rng = SplitMix64::new(seed);
    let key = KEYS[rng.below(KEYS.len() as u64) as usize];
    let answer = (1_000_000 + rng.below(9_000_000)).to_string();
    let needle = format!("The special magic number for {key} is {answer}.");
    let mut sentences = Vec::new();
    let mut words = needle.split_whitespace().count() as u64;
    while words < context_length {
        let sentence = format!(
            "{} {} {}.",
            SUBJECTS[rng.below(SUBJECTS.len() as u64) as usize],
            VERBS[rng.below(VERBS.len() as u64) as usize],
            OBJECTS[rng.below(OBJECTS.len() as u64) as usize]
        );
        words += sentence.split_whitespace().count() as u64;
        sentences.push(sentence);
    }
    let depth = rng.below(sentences.len() as u64 + 1);
    sentences.insert(depth as usize, needle);
    let prompt = format!(
        "{}\n\nQuestion: What is the special magic number for {key} mentioned in the text \
         above? Answer with the number only.",
        sentences.join(" ")
    );
    let hidden = Hidden {
        dataset: dataset.to_string(),
        context_length,
        depth_sentences: depth,
        key: key.to_string(),
        answer,
    };
    (prompt, hidden)
}

impl Environment for Needle {
    fn name(&self) -> &'static str {
        NAME
    }

    fn evaluators(&self) -> &'static [&'static str] {
        &[EVALUATOR]
    }

    fn generate(&self, seed: u64, parameters: &Value) -> Result<Generated, EnvError> {
        let parameters: Parameters = serde_json::from_value(parameters.clone())
            .map_err(|error| invalid(format!("parameters: {error}")))?;
        if !(CONTEXT_WORDS_MIN..=CONTEXT_WORDS_MAX).contains(&parameters.context_length) {
            return Err(invalid(format!(
                "context_length must be in {CONTEXT_WORDS_MIN}..={CONTEXT_WORDS_MAX} words, not {}",
                parameters.context_length
            )));
        }
        weightlog_replay::quasar::metric_for_dataset(&parameters.dataset)
            .map_err(|error| invalid(error.to_string()))?;
        let (prompt, hidden) = haystack(seed, parameters.context_length, &parameters.dataset);
        let extra_json = serde_json::to_string(&hidden)
            .map_err(|error| invalid(format!("cannot encode the needle: {error}")))?;
        Ok(Generated { prompt, extra_json })
    }

    fn evaluate(
        &self,
        challenge: &ChallengeIssued,
        response: Option<&str>,
    ) -> Result<Evaluation, EnvError> {
        let hidden: Hidden = serde_json::from_str(&challenge.extra_json).map_err(|error| {
            invalid(format!(
                "challenge `{}`: extra_json is not a needle: {error}",
                challenge.challenge_id
            ))
        })?;
        let parameters = serde_json::json!({
            "context_length": hidden.context_length,
            "dataset": hidden.dataset,
        });
        let generated = self.generate(challenge.seed, &parameters)?;
        super::check_recorded(NAME, challenge, &generated, "haystack or prompt")?;
        let accuracy = match response {
            Some(text) if !text.trim().is_empty() => {
                weightlog_replay::quasar::metric_score(&hidden.dataset, text, &hidden.answer, &[])
                    .map_err(|error| invalid(error.to_string()))?
                    .clamp(0.0, 1.0)
            }
            _ => 0.0,
        };
        Ok(Evaluation {
            score: accuracy,
            metrics: vec![
                Metric {
                    name: "accuracy".into(),
                    value: accuracy,
                },
                Metric {
                    name: "context_length".into(),
                    value: hidden.context_length as f64,
                },
            ],
            fuel_used: None,
        })
    }
}
