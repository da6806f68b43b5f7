//! Talking to miners over HTTP: the wire format ([`protocol`]), the validator's client
//! ([`client::MinerClient`]) and a reference miner ([`reference::spawn`]) that answers every
//! built-in environment with a chosen quality, for tests, demos and local subnets.
//!
//! Both sides sign with Epistula v2 ([`crate::epistula`]): the validator signs each request for
//! the miner's hotkey, the miner signs its response body for the validator.
//!
//! **API Boundary:** everything a miner sends is untrusted. The client bounds every request in
//! time and every response in size, and turns every failure into a
//! [`weightlog_schema::event::ResponseOutcome::Error`] naming the reason, never a panic. The
//! reference miner refuses unsigned, stale, replayed or misdirected requests with 401.

pub mod answers;
pub mod client;
mod loosh_bank;
pub mod protocol;
pub mod reference;

pub use client::{ClientConfig, MinerClient, MinerReply, MinerTarget};
pub use protocol::{CHALLENGE_PATH, ChallengeAnswer, ChallengeRequest};
pub use reference::{ReferenceConfig, RunningMiner, Upstream, spawn};

/// What can fail setting up a miner client or a reference miner. Failures of single queries
/// are not errors: they are recorded outcomes ([`MinerReply::outcome`]).
#[derive(Debug, thiserror::Error)]
pub enum MinerError {
    #[error("invalid miner client configuration: {0}")]
    Config(String),
    #[error("cannot build the HTTP client: {0}")]
    Http(String),
    #[error("the reference miner's listener: {0}")]
    Listener(#[source] std::io::Error),
}
