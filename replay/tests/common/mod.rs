//! Helpers shared by the projection tests.
#![allow(dead_code)]

use std::path::PathBuf;

use weightlog_replay::projection::{Projection, fold, fold_resumed_at, seqs, state_hash};
use weightlog_schema::Event;
use weightlog_schema::event::AccountId;

/// A deterministic account per index, so fixtures' hotkeys (not all valid SS58) map onto
/// valid SS58 addresses.
pub fn account(index: u64) -> AccountId {
    let mut bytes = *blake3::hash(&index.to_le_bytes()).as_bytes();
    bytes[0] = 0x42;
    AccountId(bytes)
}

pub fn examples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/specs/mechanism-io")
}

/// `events` paired with seqs from 0.
pub fn indexed(events: &[Event]) -> impl Iterator<Item = (u64, &Event)> {
    seqs(events, 0)
}

/// Folding `events` at once, or with a checkpoint/resume at every split point, gives the
/// same state and state hash. Returns the state of the whole fold.
pub fn assert_resume_everywhere<P: Projection>(projection: &P, events: &[Event]) -> P::State {
    let mut whole = P::State::default();
    fold(projection, &mut whole, indexed(events)).unwrap();
    let expected = state_hash(&whole).unwrap();
    for split in 0..=events.len() {
        let resumed = fold_resumed_at(projection, events, split).unwrap();
        assert_eq!(state_hash(&resumed).unwrap(), expected, "split at {split}");
        assert_eq!(resumed, whole, "split at {split}");
    }
    whole
}

/// Weight hyper-parameters of an ordinary subnet, for metagraphs built in tests.
pub fn hyperparameters() -> weightlog_schema::event::WeightHyperparameters {
    weightlog_schema::event::WeightHyperparameters {
        tempo: 360,
        min_allowed_weights: 1,
        max_weights_limit: 65535,
        weights_version_key: 1,
        weights_rate_limit_blocks: 100,
        commit_reveal_enabled: false,
        reveal_period_epochs: 1,
        commit_reveal_version: 4,
    }
}
