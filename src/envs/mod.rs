//! Challenge environments: each a pure function of (seed, parameters) for `generate` and of
//! (challenge, response) for `evaluate`, so an auditor re-running an evaluation from the
//! recorded challenge and response gets the recorded verdict bit for bit.
//!
//! **Architecture Invariant:** an environment reads nothing but its arguments: no clock, no
//! ambient randomness (its generator is seeded by the challenge's recorded `seed`), no files.
//!
//! Environments: affine's [`sat::Sat`] (planted k-SAT), [`abd::Abd`] (abduction: propose
//! an input; run in the sandbox), [`ded::Ded`] (deduction: write a program; run against
//! test cases in the sandbox), [`elr::Elr`] (numeric answers), [`hvm::Hvm`] (the
//! hole-filled stack VM); quasar's [`needle::Needle`] (needle in a haystack at a chosen
//! context length); loosh's [`prompt::Prompt`] (free text, scored later by consensus).
//! The problems of ABD, DED and ELR come from `problems.rs` (built-in sets under `data/`,
//! or a user's JSONL file). An environment that runs code records the sandbox fuel it
//! used in [`Evaluation::fuel_used`]; its fuel budget is part of the recorded challenge,
//! so a re-run under the same budget gives the same verdict.

pub mod abd;
pub mod ded;
pub mod elr;
pub mod hvm;
pub mod needle;
pub mod problems;
pub mod prompt;
pub mod rng;
pub mod sat;
mod text;

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
    /// Sandbox fuel the evaluation used, for environments that run code.
    pub fuel_used: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvError {
    #[error("environment `{environment}`: {message}")]
    Invalid {
        environment: &'static str,
        message: String,
    },
    /// The environment does not decide scores itself (loosh's prompts are scored by the
    /// consensus of all responses, later).
    #[error("environment `{environment}` does not score single responses: {reason}")]
    Undecided {
        environment: &'static str,
        reason: &'static str,
    },
    /// The sandbox could not be set up (python.wasm missing and not fetchable, ...).
    #[error("environment `{environment}`: the sandbox is unavailable: {message}")]
    Sandbox {
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

    /// Whether `evaluate` runs the miner's program in the sandbox; a build without the
    /// `sandbox` feature cannot re-run those evaluations.
    fn runs_code(&self) -> bool {
        false
    }

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

/// Refuses a recorded challenge whose prompt or `extra_json` is not what its seed and recorded
/// parameters generate (`generated`): a verdict on it would rest on a forged task. `what`
/// names the task in the message.
pub(crate) fn check_recorded(
    environment: &'static str,
    challenge: &ChallengeIssued,
    generated: &Generated,
    what: &str,
) -> Result<(), EnvError> {
    if generated.extra_json != challenge.extra_json || generated.prompt != challenge.prompt {
        return Err(EnvError::Invalid {
            environment,
            message: format!(
                "challenge `{}`: the recorded {what} is not the one seed {} and its parameters \
                 give",
                challenge.challenge_id, challenge.seed
            ),
        });
    }
    Ok(())
}

/// Every built-in environment.
pub fn all() -> &'static [&'static dyn Environment] {
    &[
        &sat::Sat,
        &abd::Abd,
        &ded::Ded,
        &elr::Elr,
        &hvm::Hvm,
        &needle::Needle,
        &prompt::Prompt,
    ]
}

/// The environment a challenge names, if it is a built-in one.
pub fn by_name(name: &str) -> Option<&'static dyn Environment> {
    all()
        .iter()
        .copied()
        .find(|environment| environment.name() == name)
}
