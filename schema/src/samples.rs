//! Example events of every kind, deterministic in a seed: for tests, benchmarks, fuzzing
//! seeds and documentation. Not for production data.

use crate::codec::parameters_hash_of;
use crate::event::*;
use crate::hash::Hash;

/// A small deterministic generator (splitmix64), so samples need no random source.
struct Mix(u64);

impl Mix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut bytes = [0u8; N];
        for chunk in bytes.chunks_mut(8) {
            let value = self.next().to_le_bytes();
            chunk.copy_from_slice(&value[..chunk.len()]);
        }
        bytes
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// One event of every kind, in [`EventKind::ALL`] order, varied by `seed`.
pub fn one_of_each(seed: u64) -> Vec<Event> {
    EventKind::ALL
        .iter()
        .map(|&kind| sample(kind, seed))
        .collect()
}

/// A valid event of `kind`, varied by `seed`.
pub fn sample(kind: EventKind, seed: u64) -> Event {
    let mut mix = Mix(seed ^ ((kind as u64) << 56));
    let challenge_id = format!("challenge-{}", mix.next() % 1000);
    let parameters_json = format!("{{\"seed\":{seed},\"alpha\":0.1}}");
    let payload = match kind {
        EventKind::LogOpened => Payload::LogOpened(LogOpened {
            log_id: LogId(mix.bytes()),
            netuid: (mix.next() % 512) as u16,
            validator_hotkey: AccountId(mix.bytes()),
            profile: "affine".into(),
            parameters_hash: parameters_hash_of(&parameters_json),
            parameters_json,
        }),
        EventKind::ProfileChanged => Payload::ProfileChanged(ProfileChanged {
            profile: "loosh".into(),
            parameters_hash: parameters_hash_of(&parameters_json),
            parameters_json,
        }),
        EventKind::MetagraphObserved => {
            let neurons = (0..4u16)
                .map(|uid| Neuron {
                    uid,
                    hotkey: AccountId(mix.bytes()),
                    coldkey: AccountId(mix.bytes()),
                    stake_rao: mix.next() % 1_000_000_000_000,
                    validator_permit: uid == 0,
                    active: true,
                    registration_block: mix.next() % 5_000_000,
                    axon: (uid % 2 == 1).then(|| Axon {
                        ip: format!("127.0.0.{}", uid + 1),
                        port: 8000 + uid,
                        protocol: 4,
                        version: 1,
                    }),
                })
                .collect();
            Payload::MetagraphObserved(MetagraphObserved {
                netuid: 7,
                block: mix.next() % 10_000_000,
                block_hash: Hash(mix.bytes()),
                spec_version: 393,
                neurons,
                hyperparameters: WeightHyperparameters {
                    tempo: 360,
                    min_allowed_weights: 1,
                    max_weights_limit: 65535,
                    weights_version_key: 0,
                    weights_rate_limit_blocks: 100,
                    commit_reveal_enabled: true,
                    reveal_period_epochs: 1,
                    commit_reveal_version: 4,
                },
            })
        }
        EventKind::EnvironmentRegistered => Payload::EnvironmentRegistered(EnvironmentRegistered {
            name: "sat".into(),
            version: "1.0.0".into(),
            environment_kind: EnvironmentKind::Wasm,
            module_hash: Some(Hash(mix.bytes())),
            parameters_json: "{\"clauses\":42}".into(),
        }),
        EventKind::ChallengeIssued => Payload::ChallengeIssued(ChallengeIssued {
            challenge_id,
            environment: "sat".into(),
            seed: mix.next(),
            prompt: "Find an assignment — ünïcode too".into(),
            extra_json: "{\"n\":3}".into(),
            target_uids: vec![1, 2, 3],
            deadline_ms: mix.next() % 1_000_000,
        }),
        EventKind::ResponseReceived => Payload::ResponseReceived(ResponseReceived {
            challenge_id,
            uid: (mix.next() % 256) as u16,
            hotkey: AccountId(mix.bytes()),
            outcome: if seed.is_multiple_of(2) {
                ResponseOutcome::Ok {
                    body: "x1=True, x2=False".into(),
                }
            } else {
                ResponseOutcome::Error {
                    message: "timed out after 3 attempts".into(),
                }
            },
            latency_ms: mix.next() % 30_000,
            attempts: 1 + (mix.next() % 3) as u32,
            miner_signature: Some(Signature(mix.bytes())),
        }),
        EventKind::EmbeddingComputed => Payload::EmbeddingComputed(EmbeddingComputed {
            challenge_id,
            uid: (mix.next() % 256) as u16,
            model_hash: Hash(mix.bytes()),
            scale: 0.0078125,
            vector: (0..384).map(|_| mix.next() as i8).collect(),
        }),
        EventKind::EvaluationRecorded => Payload::EvaluationRecorded(EvaluationRecorded {
            challenge_id,
            uid: (mix.next() % 256) as u16,
            score: mix.unit(),
            metrics: vec![
                Metric {
                    name: "f1".into(),
                    value: mix.unit(),
                },
                Metric {
                    name: "latency_ms".into(),
                    value: 1234.5,
                },
            ],
            evaluator: "sat/1.0.0".into(),
            fuel_used: Some(mix.next() % 1_000_000_000),
        }),
        EventKind::ExternalScoreRecorded => Payload::ExternalScoreRecorded(ExternalScoreRecorded {
            source: "omega-scorer".into(),
            block: mix.next() % 10_000_000,
            scores: (0..5)
                .map(|uid| UidScore {
                    uid,
                    score: mix.unit(),
                })
                .collect(),
            extra_json: "{\"pool\":\"a\"}".into(),
        }),
        EventKind::GroundTruthRevealed => Payload::GroundTruthRevealed(GroundTruthRevealed {
            challenge_id,
            truth_json: "{\"labels\":[0,1,1]}".into(),
        }),
        EventKind::WeightsComputed => {
            let uids: Vec<u16> = (0..8).collect();
            let raw: Vec<f64> = uids.iter().map(|_| mix.unit()).collect();
            Payload::WeightsComputed(WeightsComputed {
                block: mix.next() % 10_000_000,
                mechanism: "affine/stages_v2".into(),
                parameters_hash: Hash(mix.bytes()),
                log_size: mix.next() % 1_000_000,
                u16_uids: uids.clone(),
                u16_weights: raw.iter().map(|w| (w * 65535.0) as u16).collect(),
                raw_weight_bits: raw.iter().map(|w| w.to_bits()).collect(),
                uids,
            })
        }
        EventKind::WeightsSubmitted => Payload::WeightsSubmitted(WeightsSubmitted {
            decision_seq: mix.next() % 1_000_000,
            call: WeightsCall::CommitTimelockedMechanismWeights,
            extrinsic_hash: Some(Hash(mix.bytes())),
            reveal_round: Some(mix.next() % 10_000_000),
            outcome: SubmissionOutcome::Included {
                block: mix.next() % 10_000_000,
            },
            spec_version: Some(393),
        }),
    };
    Event::new(1_760_000_000_000 + seed, payload)
}
