//! Challenge environments: each a pure function of (seed, parameters) for `generate` and of
//! (challenge, response) for `evaluate`, so an auditor re-running an evaluation from the
//! recorded challenge and response gets the recorded verdict bit for bit.
//!
//! **Architecture Invariant:** an environment reads nothing but its arguments: no clock, no
//! ambient randomness (its generator is seeded by the challenge's recorded `seed`), no files.
//!
//! Environments so far: [`sat::Sat`] (affine's planted k-SAT). The others of the
//! environments issue (ABD, DED, ELR, HVM, quasar's needle, loosh's prompts) plug in through
//! [`Environment`] and [`by_name`].

pub mod rng;
pub mod sat;

use serde_json::Value;
use weightlog_schema::event::{ChallengeIssued, Metric};

/// A challenge an environment generated: what `ChallengeIssued` records besides ids.
#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    pub prompt: String,
    /// Everything needed to evaluate an answer without regenerating (JSON text).
    pub extra_json: String,
}

/// An environment's verdict on one response.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub score: f64,
    pub metrics: Vec<Metric>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvError {
    #[error("environment `{environment}`: {message}")]
    Invalid {
        environment: &'static str,
        message: String,
    },
}

/// A deterministic challenge environment.
pub trait Environment: Send + Sync {
    /// The name challenges record in `ChallengeIssued.environment`.
    fn name(&self) -> &'static str;

    /// The `EvaluationRecorded.evaluator` names whose score this environment decides; an
    /// auditor re-evaluates exactly those.
    fn evaluators(&self) -> &'static [&'static str];

    /// A challenge from a seed and the environment's parameters (a JSON object; `{}` for
    /// the defaults).
    fn generate(&self, seed: u64, parameters: &Value) -> Result<Generated, EnvError>;

    /// The verdict on a response (`None`: the miner gave no usable answer) to a recorded
    /// challenge. A challenge whose recorded content does not follow from its seed is an
    /// error: the verdict would rest on a forged task.
    fn evaluate(
        &self,
        challenge: &ChallengeIssued,
        response: Option<&str>,
    ) -> Result<Evaluation, EnvError>;
}

/// Every built-in environment.
pub fn all() -> &'static [&'static dyn Environment] {
    &[&sat::Sat]
}

/// The environment a challenge names, if it is a built-in one.
pub fn by_name(name: &str) -> Option<&'static dyn Environment> {
    all()
        .iter()
        .copied()
        .find(|environment| environment.name() == name)
}
