//! Shared helpers for the integration tests.
#![allow(dead_code)]

pub mod index_server;
pub mod tamper;

use std::path::{Path, PathBuf};

use serde_json::Value;
use weightlog::envs::Environment;
use weightlog::keys::Hotkey;
use weightlog::log::{Genesis, Log};
use weightlog_schema::event::{AccountId, ChallengeIssued, EventKind, LogId};
use weightlog_schema::{Event, Payload, samples};

/// The fixture wallet directory beside the repository.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/chain-fixtures")
}

/// The validator key of the tests: seed 0x01 x 32, the same key as the fixture hotkey.
pub fn validator_key() -> Hotkey {
    Hotkey::from_seed(&[1; 32])
}

pub fn genesis() -> Genesis {
    Genesis {
        netuid: 7,
        profile: "affine".into(),
        parameters_json: "{\"alpha\":0.1}".into(),
        timestamp_ms: 1_760_000_000_000,
        log_id: LogId([7; 16]),
    }
}

/// A fresh log at `path`, signed by [`validator_key`].
pub fn new_log(path: &Path) -> Log {
    Log::create(path, validator_key(), genesis()).expect("create log")
}

/// Kinds a running validator appends all the time.
pub const WORKLOAD_KINDS: [EventKind; 5] = [
    EventKind::ChallengeIssued,
    EventKind::ResponseReceived,
    EventKind::EmbeddingComputed,
    EventKind::EvaluationRecorded,
    EventKind::ExternalScoreRecorded,
];

/// `count` distinct valid events, starting at `first_seed`.
pub fn workload(first_seed: u64, count: u64) -> Vec<Event> {
    (first_seed..first_seed + count)
        .map(|seed| samples::sample(WORKLOAD_KINDS[(seed % 5) as usize], seed))
        .collect()
}

/// The challenge `environment` generates from `seed` and `parameters`, as a validator
/// records it (id `<environment>-<seed>`, sent to uid 1).
pub fn issued_challenge(
    environment: &dyn Environment,
    seed: u64,
    parameters: &Value,
) -> ChallengeIssued {
    let generated = environment.generate(seed, parameters).expect("generate");
    ChallengeIssued {
        challenge_id: format!("{}-{seed}", environment.name()),
        environment: environment.name().into(),
        seed,
        prompt: generated.prompt,
        extra_json: generated.extra_json,
        target_uids: vec![1],
        deadline_ms: 0,
    }
}

/// The uid and hotkey of the first miner that answered in `events` (a generated log has
/// one), to record more answers from a miner the log knows.
pub fn first_responder(events: &[Event]) -> (u16, AccountId) {
    events
        .iter()
        .find_map(|event| match &event.payload {
            Payload::ResponseReceived(response) => Some((response.uid, response.hotkey)),
            _ => None,
        })
        .expect("the log has a response")
}
