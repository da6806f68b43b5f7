//! quasar: the conventions of `replay/src/projection/quasar.rs` (validator `v1`).
//!
//! Each round is one long-context task (`quasar:long_context`) of a LongBench dataset with a
//! context length drawn across the buckets, sent to [`TARGETS_MAX`] miners chosen at
//! random. Each miner answers (the expected answer with probability equal to its quality,
//! else a wrong one) or times out, and the validator records the dataset metric of every
//! answer (`quasar:accuracy`, computed with the mechanism's own metric, so the task goes to
//! the mechanism as `accuracies`).

use serde_json::json;
use weightlog_replay::projection::quasar::{ENVIRONMENT, EVALUATOR_ACCURACY};
use weightlog_replay::quasar::metric_score;
use weightlog_schema::Payload;
use weightlog_schema::event::{ChallengeIssued, EvaluationRecorded};

use super::world;
use super::{Context, GenError, Scenario};

pub const NETUID: u16 = 24;
/// Miners queried per task.
pub const TARGETS_MAX: usize = 16;

/// (dataset, question, expected answer, a wrong answer).
const TASKS: [(&str, &str, &str, &str); 4] = [
    (
        "qasper",
        "Which dataset do the authors evaluate on?",
        "the Penn Treebank",
        "a proprietary web crawl",
    ),
    (
        "hotpotqa",
        "Which city hosted both events?",
        "Lisbon",
        "Porto",
    ),
    (
        "2wikimqa",
        "Who directed the film released first?",
        "Agnes Varda",
        "Jacques Demy",
    ),
    (
        "triviaqa",
        "What is the capital of the country in the passage?",
        "Canberra",
        "Sydney",
    ),
];

pub struct Quasar {
    rounds: u64,
}

impl Quasar {
    pub fn new(_context: &mut Context) -> Self {
        Self { rounds: 0 }
    }
}

impl Scenario for Quasar {
    fn netuid(&self) -> u16 {
        NETUID
    }

    fn parameters_json(&self) -> String {
        json!({ "validator": "v1" }).to_string()
    }

    fn round(&mut self, context: &mut Context, out: &mut Vec<Payload>) -> Result<(), GenError> {
        let block = context.block();
        if let Some(metagraph) = context.world.observe(NETUID, block, &mut context.rng) {
            out.push(metagraph);
        }
        self.rounds += 1;

        let (dataset, question, expected, wrong) =
            TASKS[context.rng.below(TASKS.len() as u64) as usize];
        // Context lengths across v1's buckets, from 2k to about 1.5M tokens.
        let context_length = 2_000 + context.rng.below(1_500_000);
        // A random subset of the miners, in random order (a partial Fisher-Yates shuffle).
        let mut targets = context.world.uids();
        let count = targets.len().min(TARGETS_MAX);
        for index in 0..count {
            let pick = index + context.rng.below((targets.len() - index) as u64) as usize;
            targets.swap(index, pick);
        }
        targets.truncate(count);
        let challenge_id = format!("quasar-{}", self.rounds);
        out.push(Payload::ChallengeIssued(ChallengeIssued {
            challenge_id: challenge_id.clone(),
            environment: ENVIRONMENT.into(),
            seed: context.rng.next_u64(),
            prompt: format!("[{context_length} tokens of context]\n\nQuestion: {question}"),
            extra_json: json!({
                "dataset": dataset,
                "context_length": context_length,
                "expected_output": expected,
            })
            .to_string(),
            target_uids: targets.clone(),
            deadline_ms: context.timestamp_ms() + 300_000,
        }));
        for uid in targets {
            let miner = context.world.miners[usize::from(uid)].clone();
            let body = (!world::fails(&mut context.rng)).then(|| {
                if context.rng.unit() < miner.quality {
                    format!("The answer is {expected}.")
                } else {
                    wrong.to_string()
                }
            });
            let accuracy = match &body {
                Some(text) => Some(metric_score(dataset, text, expected, &[]).map_err(
                    |source| GenError::Projection {
                        seq: context.seq,
                        source,
                    },
                )?),
                None => None,
            };
            out.push(world::response(
                &mut context.rng,
                &miner,
                &challenge_id,
                body,
            ));
            if let Some(accuracy) = accuracy {
                out.push(Payload::EvaluationRecorded(
                    EvaluationRecorded::single_metric(
                        challenge_id.as_str(),
                        uid,
                        EVALUATOR_ACCURACY,
                        "accuracy",
                        accuracy,
                    ),
                ));
            }
        }
        Ok(())
    }
}
