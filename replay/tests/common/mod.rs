//! Helpers shared by the projection tests.
#![allow(dead_code)]

use std::path::PathBuf;

use serde_json::Value;
use weightlog_replay::projection::{Projection, fold, fold_resumed_at, seqs, state_hash};
use weightlog_schema::Event;
use weightlog_schema::event::{AccountId, ExternalScoreRecorded, Payload, UidScore};

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

pub fn external(source: &str, block: u64, scores: Vec<(u16, f64)>, extra: Value) -> Event {
    Event::new(
        block,
        Payload::ExternalScoreRecorded(ExternalScoreRecorded {
            source: source.into(),
            block,
            scores: scores
                .into_iter()
                .map(|(uid, score)| UidScore { uid, score })
                .collect(),
            extra_json: extra.to_string(),
        }),
    )
}

/// Event builders for the affine projections' tests.
pub mod affine {
    use serde_json::Value;
    use weightlog_replay::projection::affine::{EVALUATOR_SAMPLE, PROFILE};
    use weightlog_schema::Hash;
    use weightlog_schema::event::*;

    use super::{account, hyperparameters};

    /// A metagraph holding `uids`, uid `u` with hotkey `account(hotkey_base + u)`.
    pub fn metagraph(uids: &[u16], hotkey_base: u64, block: u64) -> Event {
        let neurons = uids
            .iter()
            .map(|&uid| Neuron {
                uid,
                hotkey: account(hotkey_base + u64::from(uid)),
                coldkey: account(100_000 + u64::from(uid)),
                stake_rao: 1_000,
                validator_permit: false,
                active: true,
                registration_block: 1,
                axon: None,
            })
            .collect();
        Event::new(
            block,
            Payload::MetagraphObserved(MetagraphObserved {
                netuid: 120,
                block,
                block_hash: Hash([1; 32]),
                spec_version: 393,
                neurons,
                hyperparameters: hyperparameters(),
            }),
        )
    }

    pub fn profile(block: u64, parameters: &Value) -> Event {
        let parameters = parameters.to_string();
        Event::new(
            block,
            Payload::ProfileChanged(ProfileChanged {
                profile: PROFILE.into(),
                parameters_hash: weightlog_schema::codec::parameters_hash_of(&parameters),
                parameters_json: parameters,
            }),
        )
    }

    pub fn challenge(block: u64, challenge_id: &str, environment: &str) -> Event {
        Event::new(
            block,
            Payload::ChallengeIssued(ChallengeIssued {
                challenge_id: challenge_id.into(),
                environment: environment.into(),
                seed: block,
                prompt: String::new(),
                extra_json: "{}".into(),
                target_uids: Vec::new(),
                deadline_ms: block + 1,
            }),
        )
    }

    pub fn sample(block: u64, challenge_id: &str, uid: u16, score: f64) -> Event {
        Event::new(
            block,
            Payload::EvaluationRecorded(EvaluationRecorded {
                challenge_id: challenge_id.into(),
                uid,
                score,
                metrics: Vec::new(),
                evaluator: EVALUATOR_SAMPLE.into(),
                fuel_used: None,
            }),
        )
    }
}

/// Event builders for the quasar projections' tests.
pub mod quasar {
    use serde_json::{Value, json};
    use weightlog_replay::projection::quasar::ENVIRONMENT;
    use weightlog_schema::event::*;

    use super::account;

    pub fn challenge(timestamp_ms: u64, id: &str, extra: Value, targets: Vec<u16>) -> Event {
        Event::new(
            timestamp_ms,
            Payload::ChallengeIssued(ChallengeIssued {
                challenge_id: id.into(),
                environment: ENVIRONMENT.into(),
                seed: timestamp_ms,
                prompt: String::new(),
                extra_json: extra.to_string(),
                target_uids: targets,
                deadline_ms: timestamp_ms + 60_000,
            }),
        )
    }

    /// `body`: `Some(text)` an ok response, `None` an error outcome.
    pub fn response(timestamp_ms: u64, id: &str, uid: u16, body: Option<&str>) -> Event {
        Event::new(
            timestamp_ms,
            Payload::ResponseReceived(ResponseReceived {
                challenge_id: id.into(),
                uid,
                hotkey: account(u64::from(uid)),
                outcome: match body {
                    Some(body) => ResponseOutcome::Ok { body: body.into() },
                    None => ResponseOutcome::Error {
                        message: "timed out".into(),
                    },
                },
                latency_ms: 1_500,
                attempts: 1,
                miner_signature: None,
            }),
        )
    }

    pub fn truth(timestamp_ms: u64, id: &str, expected_output: &str) -> Event {
        Event::new(
            timestamp_ms,
            Payload::GroundTruthRevealed(GroundTruthRevealed {
                challenge_id: id.into(),
                truth_json: json!({ "expected_output": expected_output }).to_string(),
            }),
        )
    }
}
