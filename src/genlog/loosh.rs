//! loosh: the conventions of `replay/src/projection/loosh.rs` (`weights`).
//!
//! Each round the validator sends one prompt (`loosh:prompt`) to every miner, records the
//! answers, and records each answering miner's emission for that challenge
//! (`loosh:emission`, the miner's share of the round: quality-weighted, summing to 1). Every
//! [`SYBIL_ROUNDS`] rounds the Challenge API's sybil scores arrive (a few miners flagged).
//! The `WeightsSubmitted` that follow each decision are included a block later, which keeps
//! the validator in the NORMAL mode.

use serde_json::json;
use weightlog_replay::projection::loosh::{EVALUATOR_EMISSION, SOURCE_SYBIL};
use weightlog_schema::Payload;
use weightlog_schema::event::{
    ChallengeIssued, EvaluationRecorded, ExternalScoreRecorded, UidScore,
};

use super::world;
use super::{Context, GenError, Scenario};

pub const NETUID: u16 = 78;
pub const SYBIL_ROUNDS: u64 = 8;
pub const ENVIRONMENT: &str = "loosh:prompt";
/// The EMA's smoothing, as a loosh profile sets it.
pub const ALPHA: f64 = 0.3;

pub struct Loosh {
    rounds: u64,
}

impl Loosh {
    pub fn new(_context: &mut Context) -> Self {
        Self { rounds: 0 }
    }
}

impl Scenario for Loosh {
    fn netuid(&self) -> u16 {
        NETUID
    }

    fn parameters_json(&self) -> String {
        json!({ "alpha": ALPHA }).to_string()
    }

    fn round(&mut self, context: &mut Context, out: &mut Vec<Payload>) -> Result<(), GenError> {
        let block = context.block();
        if let Some(metagraph) = context.world.observe(NETUID, block, &mut context.rng) {
            out.push(metagraph);
        }
        if self.rounds.is_multiple_of(SYBIL_ROUNDS) {
            let scores = (0..context.world.miners.len())
                .map(|index| {
                    let flagged = context.rng.below(8) == 0;
                    let score = if flagged {
                        0.1 + 0.8 * context.rng.unit()
                    } else {
                        0.05 * context.rng.unit()
                    };
                    UidScore {
                        uid: context.world.miners[index].uid,
                        score,
                    }
                })
                .collect();
            out.push(Payload::ExternalScoreRecorded(ExternalScoreRecorded {
                source: SOURCE_SYBIL.into(),
                block,
                scores,
                extra_json: "{}".into(),
            }));
        }
        self.rounds += 1;

        let challenge_id = format!("loosh-{}", self.rounds);
        out.push(Payload::ChallengeIssued(ChallengeIssued {
            challenge_id: challenge_id.clone(),
            environment: ENVIRONMENT.into(),
            seed: context.rng.next_u64(),
            prompt: format!(
                "Round {}: explain in three sentences why the sky looks blue at noon.",
                self.rounds
            ),
            extra_json: "{}".into(),
            target_uids: context.world.uids(),
            deadline_ms: context.timestamp_ms() + 60_000,
        }));
        let mut answered = Vec::new();
        for index in 0..context.world.miners.len() {
            let miner = context.world.miners[index].clone();
            let body = (!world::fails(&mut context.rng)).then(|| {
                format!(
                    "Sunlight scatters off air molecules (Rayleigh scattering); shorter blue \
                     wavelengths scatter most. [miner {} draft {}]",
                    miner.uid,
                    context.rng.below(1_000)
                )
            });
            if body.is_some() {
                let quality = miner.quality * (0.8 + 0.4 * context.rng.unit());
                answered.push((miner.uid, quality));
            }
            out.push(world::response(
                &mut context.rng,
                &miner,
                &challenge_id,
                body,
            ));
        }
        let total: f64 = answered.iter().map(|(_, quality)| quality).sum();
        // Nobody answered (rare with few miners): the round gives no emissions.
        if total <= 0.0 {
            return Ok(());
        }
        for (uid, quality) in answered {
            out.push(Payload::EvaluationRecorded(EvaluationRecorded {
                challenge_id: challenge_id.clone(),
                uid,
                score: quality / total,
                metrics: Vec::new(),
                evaluator: EVALUATOR_EMISSION.into(),
                fuel_used: None,
            }));
        }
        Ok(())
    }
}
