//! What each profile's validator records, live: the challenges it issues, how it evaluates
//! the miners' real answers, and the other evidence its projection reads. Each driver follows
//! the event conventions documented at the top of its projection (replay/src/projection/),
//! as `gen-log`'s scenarios do for synthetic miners.
//!
//! A driver's state is itself a projection of the log: [`Driver::observe`] sees every event
//! (those already in the log when the node starts, then each one appended), so a restarted
//! node carries on from where the log stops, with nothing kept elsewhere.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::{Value, json};
use weightlog_replay::projection::Projection;
use weightlog_replay::projection::affine::{
    EVALUATOR_SAMPLE, SOURCE_COMMITMENTS, SOURCE_COMPLETENESS,
};
use weightlog_replay::projection::aml::{
    ENVIRONMENT as AML_ENVIRONMENT, EVALUATOR_TIER1, SOURCE_CONSENSUS, TIER1_METRICS,
};
use weightlog_replay::projection::loosh_evaluate::{
    ENVIRONMENT as LOOSH_ENVIRONMENT, LooshEvaluate, LooshEvaluateState,
};
use weightlog_replay::projection::omega::{
    DEFAULT_COMPETITION, SOURCE_BASELINE, SOURCE_MODEL_SCORES, SOURCE_REPUTATION,
};
use weightlog_replay::projection::quasar::{ENVIRONMENT as QUASAR_ENVIRONMENT, EVALUATOR_ACCURACY};
use weightlog_schema::event::{
    AccountId, ChallengeIssued, EnvironmentKind, EnvironmentRegistered, EvaluationRecorded,
    ExternalScoreRecorded, GroundTruthRevealed, MetagraphObserved, Metric, ResponseOutcome,
    ResponseReceived, UidScore,
};
use weightlog_schema::{Event, Payload};

use super::NodeError;
use crate::embed::Embedder;
use crate::envs::rng::SplitMix64;
use crate::envs::{self, Environment};
use crate::genlog::median;

/// The profiles a node runs.
pub const PROFILES: [&str; 5] = ["affine", "loosh", "quasar", "omega", "aml"];

/// The environments the affine driver rotates through by default.
pub const AFFINE_ENVIRONMENTS: [&str; 3] = [envs::sat::NAME, envs::elr::NAME, envs::hvm::NAME];
/// Rounds between two affine completeness reports.
pub const AFFINE_COMPLETENESS_ROUNDS: u64 = 3;
/// Words of haystack in a quasar task (small: a demo round should take milliseconds).
pub const QUASAR_CONTEXT_WORDS: u64 = 400;
pub const QUASAR_DATASET: &str = "hotpotqa";
pub const OMEGA_ENVIRONMENT: &str = "omega:video_search";
pub const OMEGA_EVALUATOR: &str = "omega:relevance";
pub const OMEGA_SCORES_ROUNDS: u64 = 3;
pub const OMEGA_REPUTATION_ROUNDS: u64 = 6;
pub const OMEGA_TOPICS: [&str; 6] = [
    "surfing big waves",
    "cooking fresh pasta",
    "city traffic timelapse",
    "dog agility course",
    "sunrise over mountains",
    "street jazz band",
];
pub const AML_ALERTS: usize = 40;
/// Rounds after which a batch's ground truth is revealed.
pub const AML_REVEAL_DELAY_ROUNDS: u64 = 2;

/// One profile's validator logic.
pub trait Driver: Send {
    fn profile(&self) -> &'static str;
    /// The genesis `parameters_json` of a new log.
    fn parameters_json(&self) -> String;
    /// Evidence recorded with each metagraph (before it is folded).
    fn after_metagraph(&mut self, _metagraph: &MetagraphObserved) -> Vec<Payload> {
        Vec::new()
    }
    /// What the `index`-th challenge of this log (1-based) asks, generated from `seed`; the
    /// node records it as `challenge_id` (see [`challenge_id`]).
    fn task(&mut self, index: u64, challenge_id: &str, seed: u64) -> Result<Task, NodeError>;
    /// Evaluation step `step` of a round whose responses are recorded: the events to append
    /// (empty: the round is evaluated). Later steps see the earlier steps' events observed.
    /// Runs on the blocking pool. Most profiles evaluate in one step, [`Driver::evaluate_once`].
    fn evaluate(
        &mut self,
        step: u32,
        challenge: &ChallengeIssued,
        responses: &[ResponseReceived],
    ) -> Result<Vec<Payload>, NodeError> {
        if step > 0 {
            return Ok(Vec::new());
        }
        self.evaluate_once(challenge, responses)
    }
    /// The first (for most profiles, the only) evaluation step of a round.
    fn evaluate_once(
        &mut self,
        challenge: &ChallengeIssued,
        responses: &[ResponseReceived],
    ) -> Result<Vec<Payload>, NodeError>;
    /// Periodic evidence after the `index`-th round.
    fn after_round(&mut self, _index: u64, _block: u64) -> Vec<Payload> {
        Vec::new()
    }
    /// Refuses, before it is recorded, an answer the profile cannot use: it is recorded as an
    /// error with the reason, so the projection never sees a body it would refuse.
    fn check_response(&self, _challenge: &ChallengeIssued, _response: &mut ResponseReceived) {}
    /// Folds an event of the log (every one, in seq order).
    fn observe(&mut self, seq: u64, event: &Event) -> Result<(), NodeError>;
}

/// What a driver's challenge asks of the miners; the node adds the id, seed, targets and
/// deadline to make the `ChallengeIssued` it records.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    pub environment: String,
    pub prompt: String,
    pub extra_json: String,
    /// How long the miners have to answer.
    pub answer_within_ms: u64,
}

/// The id of a profile's `index`-th challenge.
pub fn challenge_id(profile: &str, index: u64) -> String {
    format!("{profile}-{index}")
}

/// The driver of `profile`. `embedder` is needed by loosh only (loaded by the caller, which
/// knows the backend).
pub fn for_profile(
    profile: &str,
    embedder: Option<Arc<Embedder>>,
) -> Result<Box<dyn Driver>, NodeError> {
    Ok(match profile {
        "affine" => Box::new(Affine::default()),
        "loosh" => Box::new(Loosh {
            embedder: embedder.ok_or_else(|| {
                NodeError::Config("the loosh profile needs the MiniLM embedder".into())
            })?,
            rounds: LooshEvaluateState::default(),
        }),
        "quasar" => Box::new(Quasar),
        "omega" => Box::new(Omega::default()),
        "aml" => Box::new(Aml::default()),
        other => {
            return Err(NodeError::Config(format!(
                "unknown profile `{other}`; known: {}",
                PROFILES.join(", ")
            )));
        }
    })
}

fn environment_error(error: envs::EnvError) -> NodeError {
    NodeError::Evaluation(error.to_string())
}

fn body_of(response: &ResponseReceived) -> Option<&str> {
    match &response.outcome {
        ResponseOutcome::Ok { body } => Some(body.as_str()),
        ResponseOutcome::Error { .. } => None,
    }
}

/// Uid -> hotkey of the newest metagraph.
#[derive(Debug, Default, Clone)]
struct Roster {
    hotkeys: BTreeMap<u16, AccountId>,
    block: u64,
}

impl Roster {
    fn observe(&mut self, event: &Event) {
        if let Payload::MetagraphObserved(metagraph) = &event.payload {
            self.block = metagraph.block;
            self.hotkeys = metagraph
                .neurons
                .iter()
                .filter(|neuron| neuron.axon.is_some())
                .map(|neuron| (neuron.uid, neuron.hotkey))
                .collect();
        }
    }
}

// ---------------------------------------------------------------------------------------
// affine: environments with deterministic verdicts, `affine:sample` per answer.

#[derive(Default)]
struct Affine {
    roster: Roster,
    registered: BTreeSet<String>,
    /// Samples and answered requests per hotkey (the API's completeness).
    samples: BTreeMap<AccountId, u64>,
    answered: BTreeMap<AccountId, u64>,
    asked: BTreeMap<AccountId, u64>,
}

impl Driver for Affine {
    fn profile(&self) -> &'static str {
        "affine"
    }

    fn parameters_json(&self) -> String {
        json!({ "mode": "stages_v2", "environments": AFFINE_ENVIRONMENTS }).to_string()
    }

    fn after_metagraph(&mut self, metagraph: &MetagraphObserved) -> Vec<Payload> {
        let mut out = Vec::new();
        for name in AFFINE_ENVIRONMENTS {
            if !self.registered.contains(name) {
                out.push(Payload::EnvironmentRegistered(EnvironmentRegistered {
                    name: name.into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                    environment_kind: EnvironmentKind::Builtin,
                    module_hash: None,
                    parameters_json: "{}".into(),
                }));
            }
        }
        // The miners' model commitments: in a live subnet, read from the chain; the reference
        // miners commit one model per hotkey.
        let miners: Vec<Value> = metagraph
            .neurons
            .iter()
            .filter(|neuron| neuron.axon.is_some())
            .map(|neuron| {
                let hotkey = neuron.hotkey.to_ss58();
                json!({
                    "uid": neuron.uid,
                    "model_repo": format!("miner-{}/reference", &hotkey[..8]),
                    "model_revision": hex::encode(&blake3::hash(&neuron.hotkey.0).as_bytes()[..20]),
                    "first_block": neuron.registration_block,
                })
            })
            .collect();
        out.push(Payload::ExternalScoreRecorded(ExternalScoreRecorded {
            source: SOURCE_COMMITMENTS.into(),
            block: metagraph.block,
            scores: Vec::new(),
            extra_json: json!({ "miners": miners }).to_string(),
        }));
        out
    }

    fn task(&mut self, index: u64, _challenge_id: &str, seed: u64) -> Result<Task, NodeError> {
        let name = AFFINE_ENVIRONMENTS[(index as usize) % AFFINE_ENVIRONMENTS.len()];
        let environment = envs::by_name(name)
            .ok_or_else(|| NodeError::Config(format!("no environment {name}")))?;
        let generated = environment
            .generate(seed, &json!({}))
            .map_err(environment_error)?;
        Ok(Task {
            environment: name.into(),
            prompt: generated.prompt,
            extra_json: generated.extra_json,
            answer_within_ms: 60_000,
        })
    }

    fn evaluate_once(
        &mut self,
        challenge: &ChallengeIssued,
        responses: &[ResponseReceived],
    ) -> Result<Vec<Payload>, NodeError> {
        let environment = envs::by_name(&challenge.environment).ok_or_else(|| {
            NodeError::Config(format!("no environment {}", challenge.environment))
        })?;
        responses
            .iter()
            .map(|response| {
                let verdict = environment
                    .evaluate(challenge, body_of(response))
                    .map_err(environment_error)?;
                Ok(Payload::EvaluationRecorded(EvaluationRecorded {
                    challenge_id: challenge.challenge_id.clone(),
                    uid: response.uid,
                    score: verdict.score,
                    metrics: verdict.metrics,
                    evaluator: EVALUATOR_SAMPLE.into(),
                    fuel_used: verdict.fuel_used,
                }))
            })
            .collect()
    }

    fn after_round(&mut self, index: u64, block: u64) -> Vec<Payload> {
        if !index.is_multiple_of(AFFINE_COMPLETENESS_ROUNDS) {
            return Vec::new();
        }
        let mut scores = Vec::new();
        let mut counts = serde_json::Map::new();
        for (uid, hotkey) in &self.roster.hotkeys {
            let asked = self.asked.get(hotkey).copied().unwrap_or(0);
            if asked == 0 {
                continue;
            }
            let answered = self.answered.get(hotkey).copied().unwrap_or(0);
            scores.push(UidScore {
                uid: *uid,
                score: answered as f64 / asked as f64,
            });
            counts.insert(
                uid.to_string(),
                json!(self.samples.get(hotkey).copied().unwrap_or(0)),
            );
        }
        AFFINE_ENVIRONMENTS
            .iter()
            .map(|name| {
                Payload::ExternalScoreRecorded(ExternalScoreRecorded {
                    source: SOURCE_COMPLETENESS.into(),
                    block,
                    scores: scores.clone(),
                    extra_json: json!({ "environment": name, "completed_count": counts })
                        .to_string(),
                })
            })
            .collect()
    }

    fn observe(&mut self, _seq: u64, event: &Event) -> Result<(), NodeError> {
        self.roster.observe(event);
        match &event.payload {
            Payload::EnvironmentRegistered(registered) => {
                self.registered.insert(registered.name.clone());
            }
            Payload::ResponseReceived(response) => {
                *self.asked.entry(response.hotkey).or_default() += 1;
                if body_of(response).is_some() {
                    *self.answered.entry(response.hotkey).or_default() += 1;
                }
            }
            Payload::EvaluationRecorded(evaluation) if evaluation.evaluator == EVALUATOR_SAMPLE => {
                if let Some(hotkey) = self.roster.hotkeys.get(&evaluation.uid) {
                    *self.samples.entry(*hotkey).or_default() += 1;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// loosh: free-text answers, embedded, scored by consensus from the recorded vectors.

struct Loosh {
    embedder: Arc<Embedder>,
    rounds: LooshEvaluateState,
}

impl Driver for Loosh {
    fn profile(&self) -> &'static str {
        "loosh"
    }

    fn parameters_json(&self) -> String {
        json!({ "alpha": 0.3 }).to_string()
    }

    fn task(&mut self, _index: u64, _challenge_id: &str, seed: u64) -> Result<Task, NodeError> {
        let generated = envs::prompt::Prompt
            .generate(seed, &json!({}))
            .map_err(environment_error)?;
        Ok(Task {
            environment: LOOSH_ENVIRONMENT.into(),
            prompt: generated.prompt,
            extra_json: "{}".into(),
            answer_within_ms: 60_000,
        })
    }

    /// Step 0 embeds the prompt and the answers; step 1 computes the emissions from the
    /// vectors step 0 recorded.
    fn evaluate(
        &mut self,
        step: u32,
        challenge: &ChallengeIssued,
        responses: &[ResponseReceived],
    ) -> Result<Vec<Payload>, NodeError> {
        match step {
            0 => self.evaluate_once(challenge, responses),
            1 => {
                if !responses.iter().any(|response| body_of(response).is_some()) {
                    return Ok(Vec::new());
                }
                Ok(
                    crate::loosh::emission_events(&self.rounds, &challenge.challenge_id)
                        .map_err(|error| NodeError::Evaluation(error.to_string()))?
                        .into_iter()
                        .map(Payload::EvaluationRecorded)
                        .collect(),
                )
            }
            _ => Ok(Vec::new()),
        }
    }

    fn evaluate_once(
        &mut self,
        challenge: &ChallengeIssued,
        responses: &[ResponseReceived],
    ) -> Result<Vec<Payload>, NodeError> {
        Ok(
            crate::loosh::embedding_events(&self.embedder, challenge, responses, 32)
                .map_err(|error| NodeError::Evaluation(error.to_string()))?
                .into_iter()
                .map(Payload::EmbeddingComputed)
                .collect(),
        )
    }

    fn observe(&mut self, seq: u64, event: &Event) -> Result<(), NodeError> {
        LooshEvaluate
            .apply(&mut self.rounds, seq, event)
            .map_err(|error| NodeError::Evaluation(format!("seq {seq}: {error}")))
    }
}

// ---------------------------------------------------------------------------------------
// quasar: long-context retrieval tasks, scored by the dataset's metric.

struct Quasar;

impl Driver for Quasar {
    fn profile(&self) -> &'static str {
        "quasar"
    }

    fn parameters_json(&self) -> String {
        json!({ "validator": "v1" }).to_string()
    }

    fn task(&mut self, _index: u64, _challenge_id: &str, seed: u64) -> Result<Task, NodeError> {
        let generated = envs::needle::Needle
            .generate(
                seed,
                &json!({ "context_length": QUASAR_CONTEXT_WORDS, "dataset": QUASAR_DATASET }),
            )
            .map_err(environment_error)?;
        let hidden: envs::needle::Hidden = serde_json::from_str(&generated.extra_json)
            .map_err(|error| NodeError::Evaluation(format!("needle: {error}")))?;
        Ok(Task {
            environment: QUASAR_ENVIRONMENT.into(),
            prompt: generated.prompt,
            extra_json: json!({
                "dataset": hidden.dataset,
                "context_length": hidden.context_length,
                "expected_output": hidden.answer,
            })
            .to_string(),
            answer_within_ms: 300_000,
        })
    }

    fn evaluate_once(
        &mut self,
        challenge: &ChallengeIssued,
        responses: &[ResponseReceived],
    ) -> Result<Vec<Payload>, NodeError> {
        let extra: Value = serde_json::from_str(&challenge.extra_json)
            .map_err(|error| NodeError::Evaluation(format!("quasar task: {error}")))?;
        let dataset = extra["dataset"].as_str().unwrap_or(QUASAR_DATASET);
        let expected = extra["expected_output"].as_str().unwrap_or_default();
        let mut out = Vec::new();
        for response in responses {
            let Some(text) = body_of(response) else {
                continue;
            };
            let accuracy = weightlog_replay::quasar::metric_score(dataset, text, expected, &[])
                .map_err(|error| NodeError::Evaluation(error.to_string()))?;
            out.push(Payload::EvaluationRecorded(
                EvaluationRecorded::single_metric(
                    challenge.challenge_id.as_str(),
                    response.uid,
                    EVALUATOR_ACCURACY,
                    "accuracy",
                    accuracy,
                ),
            ));
        }
        Ok(out)
    }

    fn observe(&mut self, _seq: u64, _event: &Event) -> Result<(), NodeError> {
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// omega: video search, relevance per answer, model scores from all the relevance so far.

#[derive(Default)]
struct Omega {
    roster: Roster,
    /// Relevance sum and count per uid over the whole log. A model score is a benchmark
    /// result, so it averages every answer rather than the last few: with the two-pool
    /// softmax at temperature 0.01, a short window lets one lucky streak take the top pool.
    relevance: BTreeMap<u16, (f64, u64)>,
    answered: BTreeMap<u16, (u64, u64)>,
}

/// The words of a query a description must mention.
fn query_words(query: &str) -> Vec<String> {
    query
        .split(|c: char| !c.is_alphanumeric())
        .filter(|word| word.len() > 2)
        .map(str::to_lowercase)
        .collect()
}

/// Share of the query's words each result's description mentions, averaged over the
/// results (0 for an answer that is not the expected JSON).
pub fn omega_relevance(query: &str, answer: &str) -> f64 {
    let words = query_words(query);
    let Ok(value) = serde_json::from_str::<Value>(answer) else {
        return 0.0;
    };
    let Some(results) = value.get("results").and_then(Value::as_array) else {
        return 0.0;
    };
    if results.is_empty() || words.is_empty() {
        return 0.0;
    }
    let total: f64 = results
        .iter()
        .take(8)
        .map(|result| {
            let description = result
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_lowercase();
            let found = words
                .iter()
                .filter(|word| description.contains(word.as_str()))
                .count();
            found as f64 / words.len() as f64
        })
        .sum();
    total / results.len().min(8) as f64
}

impl Driver for Omega {
    fn profile(&self) -> &'static str {
        "omega"
    }

    fn parameters_json(&self) -> String {
        json!({ "mode": "two_pool", "competition_id": DEFAULT_COMPETITION }).to_string()
    }

    fn task(&mut self, _index: u64, _challenge_id: &str, seed: u64) -> Result<Task, NodeError> {
        let topic =
            OMEGA_TOPICS[(SplitMix64::new(seed).next_u64() % OMEGA_TOPICS.len() as u64) as usize];
        Ok(Task {
            environment: OMEGA_ENVIRONMENT.into(),
            prompt: topic.into(),
            extra_json: json!({ "num_videos": 5 }).to_string(),
            answer_within_ms: 60_000,
        })
    }

    fn evaluate_once(
        &mut self,
        challenge: &ChallengeIssued,
        responses: &[ResponseReceived],
    ) -> Result<Vec<Payload>, NodeError> {
        Ok(responses
            .iter()
            .map(|response| {
                let relevance = body_of(response)
                    .map(|answer| omega_relevance(&challenge.prompt, answer))
                    .unwrap_or(0.0);
                Payload::EvaluationRecorded(EvaluationRecorded::single_metric(
                    challenge.challenge_id.as_str(),
                    response.uid,
                    OMEGA_EVALUATOR,
                    "relevance",
                    relevance,
                ))
            })
            .collect())
    }

    fn after_round(&mut self, index: u64, block: u64) -> Vec<Payload> {
        let mut out = Vec::new();
        if index.is_multiple_of(OMEGA_SCORES_ROUNDS) && !self.relevance.is_empty() {
            let scores: Vec<UidScore> = self
                .relevance
                .iter()
                .filter(|(uid, _)| self.roster.hotkeys.contains_key(uid))
                .map(|(uid, (sum, count))| UidScore {
                    uid: *uid,
                    score: sum / (*count).max(1) as f64,
                })
                .collect();
            let best = scores.iter().map(|score| score.score).fold(0.0, f64::max);
            out.push(Payload::ExternalScoreRecorded(ExternalScoreRecorded {
                source: SOURCE_MODEL_SCORES.into(),
                block,
                scores,
                extra_json: json!({ "competition_id": DEFAULT_COMPETITION }).to_string(),
            }));
            out.push(Payload::ExternalScoreRecorded(ExternalScoreRecorded {
                source: SOURCE_BASELINE.into(),
                block,
                scores: Vec::new(),
                extra_json:
                    json!({ "competition_id": DEFAULT_COMPETITION, "baseline": best * 0.5 })
                        .to_string(),
            }));
        }
        if index.is_multiple_of(OMEGA_REPUTATION_ROUNDS) && !self.answered.is_empty() {
            let scores = self
                .answered
                .iter()
                .filter(|(uid, _)| self.roster.hotkeys.contains_key(uid))
                .map(|(uid, (ok, asked))| UidScore {
                    uid: *uid,
                    score: *ok as f64 / (*asked).max(1) as f64,
                })
                .collect();
            out.push(Payload::ExternalScoreRecorded(ExternalScoreRecorded {
                source: SOURCE_REPUTATION.into(),
                block,
                scores,
                extra_json: "{}".into(),
            }));
        }
        out
    }

    fn observe(&mut self, _seq: u64, event: &Event) -> Result<(), NodeError> {
        self.roster.observe(event);
        match &event.payload {
            Payload::EvaluationRecorded(evaluation) if evaluation.evaluator == OMEGA_EVALUATOR => {
                let entry = self.relevance.entry(evaluation.uid).or_default();
                entry.0 += evaluation.score;
                entry.1 += 1;
            }
            Payload::ResponseReceived(response) => {
                let entry = self.answered.entry(response.uid).or_default();
                entry.0 += u64::from(body_of(response).is_some());
                entry.1 += 1;
            }
            _ => {}
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// aml: alert batches, consensus, integrity checks, ground truth revealed later.

#[derive(Default)]
struct Aml {
    /// Batches issued (challenge id, seed), in order, and those whose truth is revealed.
    batches: Vec<(String, u64)>,
    revealed: BTreeSet<String>,
}

/// A batch's alerts: (alert id, address, label, risk signal), all from the batch's seed.
pub fn aml_alerts(challenge_id: &str, seed: u64) -> Vec<(String, String, u8, f64)> {
    let mut rng = SplitMix64::new(seed);
    (0..AML_ALERTS)
        .map(|index| {
            // Both classes in every batch, so the tier 3 AUC is defined.
            let label = match index {
                0 => 1,
                1 => 0,
                _ => u8::from(rng.below(4) == 0),
            };
            // The evidence a miner sees: it separates the classes, but only by a margin a
            // noisy model blurs (so the ROC-AUC of tier 3 tells good miners from bad ones).
            let signal = if label == 1 {
                0.5 + 0.3 * rng.unit()
            } else {
                0.2 + 0.3 * rng.unit()
            };
            let alert_id = format!("{challenge_id}/alert-{index}");
            let address = format!(
                "0x{}",
                hex::encode(&blake3::hash(alert_id.as_bytes()).as_bytes()[..20])
            );
            (
                alert_id,
                address,
                label,
                (signal * 10_000.0).round() / 10_000.0,
            )
        })
        .collect()
}

/// A miner's submission to a batch: alert ids and scores.
fn submission(body: &str) -> Option<(Vec<String>, Vec<f64>)> {
    let value: Value = serde_json::from_str(body).ok()?;
    let ids = value
        .get("alert_ids")?
        .as_array()?
        .iter()
        .map(|id| id.as_str().map(str::to_string))
        .collect::<Option<Vec<_>>>()?;
    let scores = value
        .get("scores")?
        .as_array()?
        .iter()
        .map(Value::as_f64)
        .collect::<Option<Vec<_>>>()?;
    (ids.len() == scores.len()).then_some((ids, scores))
}

impl Driver for Aml {
    fn profile(&self) -> &'static str {
        "aml"
    }

    fn parameters_json(&self) -> String {
        json!({ "config": { "flat_period_days": 0 } }).to_string()
    }

    fn task(&mut self, _index: u64, challenge_id: &str, seed: u64) -> Result<Task, NodeError> {
        let alerts = aml_alerts(challenge_id, seed);
        let prompt = json!({
            "alerts": alerts.iter().map(|(id, address, _, signal)| json!({
                "alert_id": id, "address": address, "risk_signal": signal,
            })).collect::<Vec<_>>()
        })
        .to_string();
        let addresses: BTreeMap<&str, &str> = alerts
            .iter()
            .map(|(id, address, _, _)| (id.as_str(), address.as_str()))
            .collect();
        Ok(Task {
            environment: AML_ENVIRONMENT.into(),
            prompt,
            extra_json: json!({ "addresses": addresses }).to_string(),
            answer_within_ms: 3_600_000,
        })
    }

    fn evaluate_once(
        &mut self,
        challenge: &ChallengeIssued,
        responses: &[ResponseReceived],
    ) -> Result<Vec<Payload>, NodeError> {
        let alerts = aml_alerts(&challenge.challenge_id, challenge.seed);
        let known: BTreeSet<&str> = alerts.iter().map(|(id, ..)| id.as_str()).collect();
        let mut per_alert: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        let mut checks = Vec::new();
        for response in responses {
            let Some(body) = body_of(response) else {
                continue;
            };
            let Some((ids, scores)) = submission(body) else {
                continue;
            };
            let distinct: BTreeSet<&str> = ids.iter().map(String::as_str).collect();
            let has_all = known.iter().all(|id| distinct.contains(id));
            let range_valid = scores.iter().all(|score| (0.0..=1.0).contains(score));
            let no_duplicates = distinct.len() == ids.len();
            let metadata_valid = ids.iter().all(|id| known.contains(id.as_str()));
            if range_valid && metadata_valid {
                for (id, score) in ids.iter().zip(&scores) {
                    per_alert.entry(id.clone()).or_default().push(*score);
                }
            }
            let values = [has_all, range_valid, no_duplicates, metadata_valid]
                .map(|check| if check { 1.0 } else { 0.0 });
            checks.push((response.uid, values));
        }
        let mut out = Vec::new();
        if !per_alert.is_empty() {
            let consensus: BTreeMap<String, f64> = per_alert
                .into_iter()
                .map(|(id, mut scores)| (id, median(&mut scores)))
                .collect();
            out.push(Payload::ExternalScoreRecorded(ExternalScoreRecorded {
                source: SOURCE_CONSENSUS.into(),
                block: 0,
                scores: Vec::new(),
                extra_json:
                    json!({ "challenge_id": challenge.challenge_id, "consensus": consensus })
                        .to_string(),
            }));
        }
        for (uid, values) in checks {
            out.push(Payload::EvaluationRecorded(EvaluationRecorded {
                challenge_id: challenge.challenge_id.clone(),
                uid,
                score: values.iter().product(),
                metrics: TIER1_METRICS
                    .iter()
                    .zip(values)
                    .map(|(name, value)| Metric {
                        name: (*name).to_string(),
                        value,
                    })
                    .collect(),
                evaluator: EVALUATOR_TIER1.into(),
                fuel_used: None,
            }));
        }
        Ok(out)
    }

    fn check_response(&self, _challenge: &ChallengeIssued, response: &mut ResponseReceived) {
        if let Some(body) = body_of(response)
            && submission(body).is_none()
        {
            response.outcome = ResponseOutcome::Error {
                message: "malformed submission: expected {\"alert_ids\": [..], \"scores\": [..]} of equal length".into(),
            };
        }
    }

    fn after_round(&mut self, _index: u64, _block: u64) -> Vec<Payload> {
        let due = self
            .batches
            .len()
            .saturating_sub(AML_REVEAL_DELAY_ROUNDS as usize);
        self.batches[..due]
            .iter()
            .filter(|(challenge_id, _)| !self.revealed.contains(challenge_id))
            .map(|(challenge_id, seed)| {
                let alerts = aml_alerts(challenge_id, *seed);
                let labels: BTreeMap<&str, u8> = alerts
                    .iter()
                    .map(|(id, _, label, _)| (id.as_str(), *label))
                    .collect();
                let patterns: BTreeMap<&str, &str> = alerts
                    .iter()
                    .map(|(id, _, label, signal)| {
                        let pattern = match (label, *signal < 0.25) {
                            (1, _) => "expanding_illicit",
                            (_, true) => "dormant",
                            _ => "benign_indicators",
                        };
                        (id.as_str(), pattern)
                    })
                    .collect();
                Payload::GroundTruthRevealed(GroundTruthRevealed {
                    challenge_id: challenge_id.clone(),
                    truth_json: json!({ "labels": labels, "patterns": patterns }).to_string(),
                })
            })
            .collect()
    }

    fn observe(&mut self, _seq: u64, event: &Event) -> Result<(), NodeError> {
        match &event.payload {
            Payload::ChallengeIssued(challenge) if challenge.environment == AML_ENVIRONMENT => {
                self.batches
                    .push((challenge.challenge_id.clone(), challenge.seed));
            }
            Payload::GroundTruthRevealed(truth) => {
                self.revealed.insert(truth.challenge_id.clone());
            }
            _ => {}
        }
        Ok(())
    }
}
