//! The challenge wire format: the validator POSTs a [`ChallengeRequest`] as JSON to
//! `{axon}/challenge` and the miner answers with a [`ChallengeAnswer`] as JSON. Both bodies
//! are signed with Epistula v2 headers (the response's signature is optional for miners).

use serde::{Deserialize, Serialize};

/// The path a miner serves challenges on.
pub const CHALLENGE_PATH: &str = "/challenge";

/// One challenge as a miner receives it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChallengeRequest {
    pub challenge_id: String,
    /// The environment's name (`affine:sat`, `quasar:long_context`, `aml`, ...).
    pub environment: String,
    pub prompt: String,
    /// Unix time in milliseconds after which the validator stops waiting.
    pub deadline_ms: u64,
}

/// A miner's answer to one challenge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChallengeAnswer {
    /// Must equal the request's: an answer for another challenge is refused.
    pub challenge_id: String,
    pub answer: String,
}
