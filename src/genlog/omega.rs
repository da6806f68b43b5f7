//! omega: the conventions of `replay/src/projection/omega.rs` (`two_pool`).
//!
//! The validator sends video-search queries (`omega:video_search` challenges; the projection
//! does not read them, a live validator records them all the same), records each miner's
//! answer and its relevance, and every [`SCORES_ROUNDS`] rounds the external scorer's model
//! scores of competition `v4` and its baseline; every [`REPUTATION_ROUNDS`] rounds the
//! reputations. The baseline stays under the best model score, so some miner is always
//! above it (with nobody above, upstream indexes the burn uid 111 and fails on a small
//! metagraph).

use serde_json::json;
use weightlog_replay::projection::omega::{
    DEFAULT_COMPETITION, SOURCE_BASELINE, SOURCE_MODEL_SCORES, SOURCE_REPUTATION,
};
use weightlog_schema::Payload;
use weightlog_schema::event::{
    ChallengeIssued, EvaluationRecorded, ExternalScoreRecorded, UidScore,
};

use super::world;
use super::{Context, GenError, Scenario};

pub const NETUID: u16 = 24;
pub const SCORES_ROUNDS: u64 = 3;
pub const REPUTATION_ROUNDS: u64 = 12;
pub const ENVIRONMENT: &str = "omega:video_search";
pub const EVALUATOR: &str = "omega:relevance";
/// The baseline the scorer reports, unless the best model is below it.
pub const BASELINE: f64 = 0.55;

pub struct Omega {
    rounds: u64,
}

impl Omega {
    pub fn new(_context: &mut Context) -> Self {
        Self { rounds: 0 }
    }
}

fn unit_noise(context: &mut Context, spread: f64) -> f64 {
    (context.rng.unit() - 0.5) * 2.0 * spread
}

impl Scenario for Omega {
    fn netuid(&self) -> u16 {
        NETUID
    }

    fn parameters_json(&self) -> String {
        json!({ "mode": "two_pool", "competition_id": DEFAULT_COMPETITION }).to_string()
    }

    fn round(&mut self, context: &mut Context, out: &mut Vec<Payload>) -> Result<(), GenError> {
        let block = context.block();
        if let Some(metagraph) = context.world.observe(NETUID, block, &mut context.rng) {
            out.push(metagraph);
        }
        if self.rounds.is_multiple_of(SCORES_ROUNDS) {
            let mut scores = Vec::new();
            let mut best: f64 = 0.0;
            for index in 0..context.world.miners.len() {
                let miner = &context.world.miners[index];
                let (uid, quality) = (miner.uid, miner.quality);
                // A few miners have no model scored in this competition.
                if context.rng.below(10) == 0 {
                    continue;
                }
                let score = (quality + unit_noise(context, 0.05)).clamp(0.0, 1.0);
                best = best.max(score);
                scores.push(UidScore { uid, score });
            }
            out.push(Payload::ExternalScoreRecorded(ExternalScoreRecorded {
                source: SOURCE_MODEL_SCORES.into(),
                block,
                scores,
                extra_json: json!({ "competition_id": DEFAULT_COMPETITION }).to_string(),
            }));
            let baseline = BASELINE.min(best * 0.95);
            out.push(Payload::ExternalScoreRecorded(ExternalScoreRecorded {
                source: SOURCE_BASELINE.into(),
                block,
                scores: Vec::new(),
                extra_json: json!({ "competition_id": DEFAULT_COMPETITION, "baseline": baseline })
                    .to_string(),
            }));
        }
        if self.rounds.is_multiple_of(REPUTATION_ROUNDS) {
            let scores = (0..context.world.miners.len())
                .map(|index| UidScore {
                    uid: context.world.miners[index].uid,
                    score: context.rng.unit(),
                })
                .collect();
            out.push(Payload::ExternalScoreRecorded(ExternalScoreRecorded {
                source: SOURCE_REPUTATION.into(),
                block,
                scores,
                extra_json: "{}".into(),
            }));
        }
        self.rounds += 1;

        let challenge_id = format!("omega-query-{}", self.rounds);
        let topics = [
            "surfing",
            "cooking pasta",
            "city timelapse",
            "dog agility",
            "sunrise",
        ];
        let topic = topics[context.rng.below(topics.len() as u64) as usize];
        out.push(Payload::ChallengeIssued(ChallengeIssued {
            challenge_id: challenge_id.clone(),
            environment: ENVIRONMENT.into(),
            seed: context.rng.next_u64(),
            prompt: format!("Find 8 videos of {topic}"),
            extra_json: json!({ "num_videos": 8 }).to_string(),
            target_uids: context.world.uids(),
            deadline_ms: context.timestamp_ms() + 60_000,
        }));
        for index in 0..context.world.miners.len() {
            let miner = context.world.miners[index].clone();
            let answered = !world::fails(&mut context.rng);
            let body = answered.then(|| {
                let ids: Vec<String> = (0..8)
                    .map(|_| format!("{:011x}", context.rng.below(1 << 44)))
                    .collect();
                json!({ "video_ids": ids }).to_string()
            });
            out.push(world::response(
                &mut context.rng,
                &miner,
                &challenge_id,
                body,
            ));
            let relevance = if answered {
                (miner.quality + unit_noise(context, 0.1)).clamp(0.0, 1.0)
            } else {
                0.0
            };
            out.push(Payload::EvaluationRecorded(
                EvaluationRecorded::single_metric(
                    challenge_id.as_str(),
                    miner.uid,
                    EVALUATOR,
                    "relevance",
                    relevance,
                ),
            ));
        }
        Ok(())
    }
}
