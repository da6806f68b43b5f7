//! affine: the conventions of `replay/src/projection/affine.rs` (`stages_v2`).
//!
//! Setup: the environment, a metagraph, the miners' model commitments and the completeness of
//! `affine:sat`. Each round then issues one challenge from the real SAT environment
//! (`envs::sat`), to every miner; each miner answers with the planted assignment with
//! probability equal to its quality, else with a wrong or partial answer, or times out; and
//! the validator records `Sat.evaluate`'s verdict exactly, so an auditor re-running the
//! environment on the recorded challenge and response gets the same score and metrics.
//! A metagraph and the commitment list are recorded every tempo, the completeness every
//! [`COMPLETENESS_ROUNDS`] rounds.

use std::collections::BTreeMap;

use serde_json::json;
use weightlog_replay::projection::affine::{SOURCE_COMMITMENTS, SOURCE_COMPLETENESS};
use weightlog_schema::Payload;
use weightlog_schema::event::{
    AccountId, ChallengeIssued, EnvironmentKind, EnvironmentRegistered, EvaluationRecorded,
    ExternalScoreRecorded, UidScore,
};

use super::world::{self, Miner};
use super::{Context, GenError, Scenario, derive};
use crate::envs::rng::SplitMix64;
use crate::envs::sat::{self, Sat};
use crate::envs::{Environment, Evaluation};

pub const NETUID: u16 = 120;
/// Rounds between two completeness reports.
pub const COMPLETENESS_ROUNDS: u64 = 10;
/// How long a miner has to answer.
pub const DEADLINE_MS: u64 = 60_000;

pub struct Affine {
    rounds: u64,
    /// Samples recorded per miner (the API's `completed_count`), by hotkey: a new miner on
    /// a uid starts from zero.
    completed: BTreeMap<AccountId, u64>,
}

impl Affine {
    pub fn new(_context: &mut Context) -> Self {
        Self {
            rounds: 0,
            completed: BTreeMap::new(),
        }
    }

    fn commitments(&self, context: &Context) -> Payload {
        let miners: Vec<_> = context
            .world
            .miners
            .iter()
            .map(|miner| {
                // A new miner on the uid commits another model.
                let revision = derive(context.seed, b"gen-log model", &miner.hotkey.0);
                json!({
                    "uid": miner.uid,
                    "model_repo": format!("miner-{}/affine-sat", miner.uid),
                    "model_revision": hex::encode(&revision[..20]),
                    "first_block": miner.registration_block,
                })
            })
            .collect();
        Payload::ExternalScoreRecorded(ExternalScoreRecorded {
            source: SOURCE_COMMITMENTS.into(),
            block: context.block(),
            scores: Vec::new(),
            extra_json: json!({ "miners": miners }).to_string(),
        })
    }

    /// Most miners pass the 0.9 gate; about a quarter fall under it in any one report.
    fn completeness(&self, context: &mut Context) -> Payload {
        let mut scores = Vec::with_capacity(context.world.miners.len());
        let mut counts = serde_json::Map::new();
        for miner in &context.world.miners {
            let score = 0.86 + 0.14 * context.rng.unit();
            scores.push(UidScore {
                uid: miner.uid,
                score,
            });
            let count = self.completed.get(&miner.hotkey).copied().unwrap_or(0);
            counts.insert(miner.uid.to_string(), json!(count));
        }
        Payload::ExternalScoreRecorded(ExternalScoreRecorded {
            source: SOURCE_COMPLETENESS.into(),
            block: context.block(),
            scores,
            extra_json: json!({ "environment": sat::NAME, "completed_count": counts }).to_string(),
        })
    }
}

/// A miner's answer: the planted assignment with probability `quality`, else a mistake.
fn answer(rng: &mut SplitMix64, miner: &Miner, planted: &[bool]) -> String {
    if rng.unit() < miner.quality {
        return sat::answer(planted);
    }
    match rng.below(3) {
        // Half the variables: an unassigned variable satisfies no clause.
        0 => sat::answer(&planted[..planted.len() / 2]),
        1 => "UNSAT".to_string(),
        // A guess, which sometimes satisfies the formula anyway.
        _ => {
            let guess: Vec<bool> = planted.iter().map(|_| rng.coin()).collect();
            sat::answer(&guess)
        }
    }
}

impl Scenario for Affine {
    fn netuid(&self) -> u16 {
        NETUID
    }

    fn parameters_json(&self) -> String {
        json!({ "mode": "stages_v2", "environments": [sat::NAME] }).to_string()
    }

    fn round(&mut self, context: &mut Context, out: &mut Vec<Payload>) -> Result<(), GenError> {
        let block = context.block();
        if self.rounds == 0 {
            out.push(Payload::EnvironmentRegistered(EnvironmentRegistered {
                name: sat::NAME.into(),
                version: "0.0.2".into(),
                environment_kind: EnvironmentKind::Builtin,
                module_hash: None,
                parameters_json: "{}".into(),
            }));
        }
        if let Some(metagraph) = context.world.observe(NETUID, block, &mut context.rng) {
            out.push(metagraph);
            out.push(self.commitments(context));
        }
        if self.rounds.is_multiple_of(COMPLETENESS_ROUNDS) {
            out.push(self.completeness(context));
        }
        self.rounds += 1;

        let seed = context.rng.next_u64();
        let generated = Sat.generate(seed, &json!({}))?;
        let (_, planted) = sat::formula(
            seed,
            sat::VARIABLES_DEFAULT,
            sat::LITERALS_PER_CLAUSE_DEFAULT,
        );
        let challenge = ChallengeIssued {
            challenge_id: format!("affine-sat-{}", self.rounds),
            environment: sat::NAME.into(),
            seed,
            prompt: generated.prompt,
            extra_json: generated.extra_json,
            target_uids: context.world.uids(),
            deadline_ms: context.timestamp_ms() + DEADLINE_MS,
        };
        let mut answers = Vec::with_capacity(2 * context.world.miners.len());
        // `Sat.evaluate` is a pure function of the challenge and the answer, and regenerates
        // the formula and prompt from the seed on every call; most miners give one of a few
        // answers (the planted one, a partial one, `UNSAT`), so each distinct answer is
        // evaluated once per challenge.
        let mut verdicts: BTreeMap<Option<String>, Evaluation> = BTreeMap::new();
        for miner in &context.world.miners {
            let body = (!world::fails(&mut context.rng))
                .then(|| answer(&mut context.rng, miner, &planted));
            let verdict = match verdicts.get(&body) {
                Some(verdict) => verdict.clone(),
                None => {
                    let verdict = Sat.evaluate(&challenge, body.as_deref())?;
                    verdicts.insert(body.clone(), verdict.clone());
                    verdict
                }
            };
            // The response arrives, then the validator records its verdict.
            answers.push(world::response(
                &mut context.rng,
                miner,
                &challenge.challenge_id,
                body,
            ));
            answers.push(Payload::EvaluationRecorded(EvaluationRecorded {
                challenge_id: challenge.challenge_id.clone(),
                uid: miner.uid,
                score: verdict.score,
                metrics: verdict.metrics,
                evaluator: sat::EVALUATOR.into(),
                fuel_used: None,
            }));
            *self.completed.entry(miner.hotkey).or_default() += 1;
        }
        out.push(Payload::ChallengeIssued(challenge));
        out.extend(answers);
        Ok(())
    }
}
