//! loosh's free-text prompt environment (scoring.md section 2): a seeded open question.
//! There is no right answer to check here: loosh scores all responses to a prompt together,
//! later, by embedding consensus (the loosh projection, from `EmbeddingComputed` events).
//! So [`Environment::evaluate`] answers [`EnvError::Undecided`] and the environment names
//! no evaluator, which tells an auditor there is nothing to re-run per response.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use weightlog_schema::event::ChallengeIssued;

use super::rng::SplitMix64;
use super::{EnvError, Environment, Evaluation, Generated};

/// The environment name loosh's challenges record (the same as the generated logs').
pub const NAME: &str = "loosh:prompt";

const TEMPLATES: [&str; 6] = [
    "Explain {topic} to a curious twelve-year-old in a short paragraph.",
    "What are the main trade-offs in {topic}? Answer in three or four sentences.",
    "Describe a common misconception about {topic} and correct it.",
    "Give a concrete, real-world example of {topic} and say why it matters.",
    "Summarise the history of {topic} in under a hundred words.",
    "How would you measure success in {topic}? Be specific.",
];
const TOPICS: [&str; 12] = [
    "renewable energy storage",
    "public-key cryptography",
    "urban beekeeping",
    "volcanic soil",
    "tidal forces",
    "supply-chain resilience",
    "sleep and memory",
    "open-source governance",
    "river delta ecology",
    "bridge engineering",
    "language acquisition",
    "weather forecasting",
];

#[derive(Debug, Clone, Copy, Default)]
pub struct Prompt;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Posed {
    pub template: u64,
    pub topic: String,
}

impl Environment for Prompt {
    fn name(&self) -> &'static str {
        NAME
    }

    fn evaluators(&self) -> &'static [&'static str] {
        &[]
    }

    fn generate(&self, seed: u64, parameters: &Value) -> Result<Generated, EnvError> {
        if parameters
            .as_object()
            .is_none_or(|object| !object.is_empty())
        {
            return Err(EnvError::Invalid {
                environment: NAME,
                message: "loosh prompts take no parameters; pass {}".into(),
            });
        }
        let mut rng = SplitMix64::new(seed);
        let template = rng.below(TEMPLATES.len() as u64);
        let topic = TOPICS[rng.below(TOPICS.len() as u64) as usize];
        let prompt = TEMPLATES[template as usize].replace("{topic}", topic);
        let posed = Posed {
            template,
            topic: topic.into(),
        };
        let extra_json = serde_json::to_string(&posed).map_err(|error| EnvError::Invalid {
            environment: NAME,
            message: format!("cannot encode the prompt: {error}"),
        })?;
        Ok(Generated { prompt, extra_json })
    }

    fn evaluate(
        &self,
        _challenge: &ChallengeIssued,
        _response: Option<&str>,
    ) -> Result<Evaluation, EnvError> {
        Err(EnvError::Undecided {
            environment: NAME,
            reason: "responses are scored together by embedding consensus (the loosh projection)",
        })
    }
}
