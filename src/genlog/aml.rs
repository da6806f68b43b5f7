//! aml: the conventions of `replay/src/projection/aml.rs`.
//!
//! Each round publishes one alert batch (`ChallengeIssued` in environment `aml`, with each
//! alert's address) of [`ALERTS`] alerts, some of them truly high-risk. Every miner submits a
//! score per alert (closer to the truth the better the miner) or times out; the subnet
//! database reports the per-alert consensus (the median submission); the validator records
//! each submitter's integrity checks (`aml:tier1`) and behavioural components (`aml:tier2`).
//! [`REVEAL_DELAY_ROUNDS`] rounds later the batch's ground truth is revealed: labels (tier
//! 3a) and evolution patterns (tier 3b). The profile sets `flat_period_days` to 0, so the
//! synthetic weeks-long logs reach the tier 3 scoring instead of the flat reward of the
//! first 29 days.

use std::collections::{BTreeMap, VecDeque};

use serde_json::json;
use weightlog_replay::projection::aml::{
    ENVIRONMENT, EVALUATOR_TIER1, EVALUATOR_TIER2, SOURCE_CONSENSUS, TIER1_METRICS, TIER2_METRICS,
};
use weightlog_schema::Payload;
use weightlog_schema::event::{
    ChallengeIssued, EvaluationRecorded, ExternalScoreRecorded, GroundTruthRevealed, Metric,
};

use super::world;
use super::{Context, GenError, Scenario, derive};

pub const NETUID: u16 = 79;
pub const ALERTS: usize = 10;
pub const REVEAL_DELAY_ROUNDS: usize = 2;

struct Truth {
    challenge_id: String,
    labels: BTreeMap<String, u8>,
    patterns: BTreeMap<String, String>,
}

pub struct Aml {
    rounds: u64,
    pending: VecDeque<Truth>,
}

impl Aml {
    pub fn new(_context: &mut Context) -> Self {
        Self {
            rounds: 0,
            pending: VecDeque::new(),
        }
    }
}

fn metrics(names: [&str; 4], values: [f64; 4]) -> Vec<Metric> {
    names
        .iter()
        .zip(values)
        .map(|(name, value)| Metric {
            name: (*name).to_string(),
            value,
        })
        .collect()
}

/// The median of a non-empty list (the subnet database's per-alert consensus).
pub(crate) fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    if values.len() % 2 == 1 {
        values[middle]
    } else {
        (values[middle - 1] + values[middle]) / 2.0
    }
}

impl Scenario for Aml {
    fn netuid(&self) -> u16 {
        NETUID
    }

    fn parameters_json(&self) -> String {
        json!({ "config": { "flat_period_days": 0 } }).to_string()
    }

    fn round(&mut self, context: &mut Context, out: &mut Vec<Payload>) -> Result<(), GenError> {
        let block = context.block();
        if let Some(metagraph) = context.world.observe(NETUID, block, &mut context.rng) {
            out.push(metagraph);
        }
        self.rounds += 1;

        let challenge_id = format!("aml-batch-{}", self.rounds);
        let alerts: Vec<String> = (0..ALERTS)
            .map(|index| format!("{challenge_id}/alert-{index}"))
            .collect();
        // Both classes in every batch, so the tier 3 AUC is defined.
        let labels: Vec<u8> = (0..ALERTS)
            .map(|index| match index {
                0 => 1,
                1 => 0,
                _ => u8::from(context.rng.below(4) == 0),
            })
            .collect();
        let addresses: BTreeMap<&str, String> = alerts
            .iter()
            .map(|alert| {
                let bytes = derive(context.seed, b"gen-log aml address", alert.as_bytes());
                (alert.as_str(), format!("0x{}", hex::encode(&bytes[..20])))
            })
            .collect();
        out.push(Payload::ChallengeIssued(ChallengeIssued {
            challenge_id: challenge_id.clone(),
            environment: ENVIRONMENT.into(),
            seed: context.rng.next_u64(),
            prompt: format!("Score the {ALERTS} alerts of batch {}", self.rounds),
            extra_json: json!({ "addresses": addresses }).to_string(),
            target_uids: context.world.uids(),
            deadline_ms: context.timestamp_ms() + 3_600_000,
        }));

        let mut submitted: Vec<(u16, f64)> = Vec::new();
        let mut per_alert: Vec<Vec<f64>> = vec![Vec::new(); ALERTS];
        for index in 0..context.world.miners.len() {
            let miner = context.world.miners[index].clone();
            let body = if world::fails(&mut context.rng) {
                None
            } else {
                let scores: Vec<f64> = labels
                    .iter()
                    .map(|label| {
                        let noise = context.rng.unit();
                        let score =
                            miner.quality * f64::from(*label) + (1.0 - miner.quality) * noise;
                        // Four decimals, as a miner's JSON would carry them.
                        (score.clamp(0.0, 1.0) * 10_000.0).round() / 10_000.0
                    })
                    .collect();
                for (alert, score) in scores.iter().enumerate() {
                    per_alert[alert].push(*score);
                }
                submitted.push((miner.uid, miner.quality));
                Some(json!({ "alert_ids": alerts, "scores": scores }).to_string())
            };
            out.push(world::response(
                &mut context.rng,
                &miner,
                &challenge_id,
                body,
            ));
        }
        if !submitted.is_empty() {
            let consensus: BTreeMap<&str, f64> = alerts
                .iter()
                .zip(per_alert.iter_mut())
                .map(|(alert, scores)| (alert.as_str(), median(scores)))
                .collect();
            out.push(Payload::ExternalScoreRecorded(ExternalScoreRecorded {
                source: SOURCE_CONSENSUS.into(),
                block,
                scores: Vec::new(),
                extra_json: json!({ "challenge_id": challenge_id, "consensus": consensus })
                    .to_string(),
            }));
        }
        for (uid, quality) in submitted {
            // A careless miner sometimes fails an integrity check.
            let range_valid = if context.rng.unit() < 0.03 { 0.0 } else { 1.0 };
            let checks = [1.0, range_valid, 1.0, 1.0];
            out.push(Payload::EvaluationRecorded(EvaluationRecorded {
                challenge_id: challenge_id.clone(),
                uid,
                score: checks.iter().product(),
                metrics: metrics(TIER1_METRICS, checks),
                evaluator: EVALUATOR_TIER1.into(),
                fuel_used: None,
            }));
            let mut components = [0.0; 4];
            for component in &mut components {
                *component = (0.3 + 0.6 * quality + 0.1 * context.rng.unit()).min(1.0);
            }
            out.push(Payload::EvaluationRecorded(EvaluationRecorded {
                challenge_id: challenge_id.clone(),
                uid,
                score: components.iter().sum::<f64>() / 4.0,
                metrics: metrics(TIER2_METRICS, components),
                evaluator: EVALUATOR_TIER2.into(),
                fuel_used: None,
            }));
        }

        let mut truth = Truth {
            challenge_id,
            labels: BTreeMap::new(),
            patterns: BTreeMap::new(),
        };
        for (alert, label) in alerts.iter().zip(&labels) {
            truth.labels.insert(alert.clone(), *label);
            let pattern = match (label, context.rng.below(5)) {
                (1, _) => "expanding_illicit",
                (_, 0) => "dormant",
                _ => "benign_indicators",
            };
            truth.patterns.insert(alert.clone(), pattern.to_string());
        }
        self.pending.push_back(truth);
        if self.pending.len() > REVEAL_DELAY_ROUNDS
            && let Some(revealed) = self.pending.pop_front()
        {
            out.push(Payload::GroundTruthRevealed(GroundTruthRevealed {
                challenge_id: revealed.challenge_id,
                truth_json: json!({ "labels": revealed.labels, "patterns": revealed.patterns })
                    .to_string(),
            }));
        }
        Ok(())
    }
}
