//! loosh `evaluate` driven by the log: one challenge round (prompt embedding, the miners'
//! responses in the order the validator collected them, their embeddings, the optional Tier-4
//! quality scores and the node map) rebuilt from events, with no clock and no randomness.
//!
//! The event conventions this fold reads:
//! - `LogOpened` / `ProfileChanged` with profile [`PROFILE`]: `parameters_json` may hold
//!   `{"evaluate_config": {...}}`, the `config` overrides of specs/mechanism-io (loosh
//!   evaluate); absent or null means upstream's defaults. Unknown override names are refused.
//!   The overrides in force when the round is evaluated apply (the weights step reads `alpha`
//!   from the same parameters and ignores this key).
//! - `MetagraphObserved`: uid -> hotkey, coldkey and axon ip (`""` when the node serves no
//!   axon). A response takes its hotkey and its node-map entry `[ip, coldkey]` from the newest
//!   metagraph at the time it is received.
//! - `ChallengeIssued` with environment [`ENVIRONMENT`] opens a round named by its
//!   `challenge_id`; `prompt` is the prompt text (kept with the round; the mechanism reads
//!   only its embedding), `target_uids` (when not empty) the miners queried, and a response
//!   from any other uid is refused. `seed`, `deadline_ms` and `extra_json` are not read.
//!   Challenges of other environments are ignored.
//! - `ResponseReceived` with an `ok` outcome for an open round: a miner's answer, `body` the
//!   text and `latency_ms` the `response_time_ms`. Responses keep the order of their events,
//!   which is the order the validator collected them. Error outcomes, and responses to
//!   challenges that are not open (other environments, rounds already closed), are ignored.
//! - `EmbeddingComputed` for an open round: the prompt's embedding when `uid` is
//!   [`PROMPT_EMBEDDING_UID`] (65535, never a real uid: subnets hold at most 4096 neurons),
//!   else the embedding of that uid's response, which must come after the response. The value
//!   is `vector[i] as f64 * scale as f64`. All embeddings of a round come from one model
//!   (`model_hash`) and have one dimension.
//! - `EvaluationRecorded` with evaluator [`EVALUATOR_QUALITY`] for an open round: the Tier-4
//!   composite quality (`score`) of a uid's response, after the response. A round has either
//!   a quality score for every response that is not `[TEST MODE]` (then they are the input's
//!   `quality_scores`, in response order) or none (then the heuristic scorer runs).
//! - `EvaluationRecorded` with evaluator [`crate::projection::loosh::EVALUATOR_EMISSION`] (the
//!   emissions the validator derived from the round) closes the round; so does age: a round
//!   issued more than [`ROUND_LOOKBACK_MS`] before the newest event folded is dropped, which
//!   keeps the state (and checkpoints) bounded.
//!
//! [`LooshEvaluate::input`] evaluates the newest open round (the last one issued);
//! [`LooshEvaluate::input_for`] any open round.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use weightlog_schema::event::{EmbeddingComputed, ResponseOutcome};
use weightlog_schema::{Event, Hash, Payload};

use super::loosh::EVALUATOR_EMISSION;
use super::{Projection, parse_event_json};
use crate::MechanismError;
use crate::loosh::EvaluateConfig;

pub const PROFILE: &str = "loosh";
/// The `ChallengeIssued` environment of a loosh inference round.
pub const ENVIRONMENT: &str = "loosh:inference";
/// The `EvaluationRecorded` evaluator of a Tier-4 composite quality score.
pub const EVALUATOR_QUALITY: &str = "loosh:tier4-quality";
/// The `EmbeddingComputed` uid that marks the prompt's embedding.
pub const PROMPT_EMBEDDING_UID: u16 = u16::MAX;
/// The profile parameter holding the `evaluate` config overrides.
pub const PARAMETER_CONFIG: &str = "evaluate_config";
/// Rounds issued longer ago than this (before the newest event) are dropped, 24 hours.
pub const ROUND_LOOKBACK_MS: u64 = 24 * 3_600_000;

/// Upstream's test-mode marker: such responses get no Tier-4 score.
const TEST_MODE_PREFIX: &str = "[TEST MODE]";

/// One node of the newest metagraph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    pub hotkey: String,
    pub coldkey: String,
    pub ip: String,
}

/// A quantised embedding as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Embedding {
    pub scale: f32,
    pub vector: Vec<i8>,
}

impl Embedding {
    /// `vector[i] as f64 * scale as f64`.
    pub fn values(&self) -> Vec<f64> {
        let scale = f64::from(self.scale);
        self.vector
            .iter()
            .map(|value| f64::from(*value) * scale)
            .collect()
    }
}

/// One miner's successful answer in a round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoundResponse {
    pub uid: u16,
    pub hotkey: String,
    /// The node-map entry when the response was received.
    pub ip: String,
    pub coldkey: String,
    pub text: String,
    pub latency_ms: u64,
    pub embedding: Option<Embedding>,
    pub quality: Option<f64>,
}

/// An open challenge round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Round {
    pub challenge_id: String,
    pub issued_ms: u64,
    pub prompt: String,
    pub target_uids: Vec<u16>,
    /// The model of the round's first embedding; every other must match it.
    pub model_hash: Option<Hash>,
    pub prompt_embedding: Option<Embedding>,
    /// In the order the validator collected them.
    pub responses: Vec<RoundResponse>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LooshEvaluateState {
    /// The `evaluate_config` overrides as canonical JSON text, when the profile sets them.
    pub config_json: Option<String>,
    /// Timestamp of the newest event folded.
    pub now_ms: u64,
    pub nodes: BTreeMap<u16, Node>,
    /// Open rounds, oldest issued first.
    pub rounds: Vec<Round>,
}

/// The loosh evaluate projection.
#[derive(Debug, Clone, Copy, Default)]
pub struct LooshEvaluate;

fn is_test_mode(text: &str) -> bool {
    // Python's `str.strip()`: Unicode White_Space plus U+001C..U+001F.
    text.trim_matches(|c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c))
        .starts_with(TEST_MODE_PREFIX)
}

impl LooshEvaluateState {
    fn round_mut(
        &mut self,
        seq: u64,
        challenge_id: &str,
        what: &str,
    ) -> Result<&mut Round, MechanismError> {
        self.rounds
            .iter_mut()
            .find(|round| round.challenge_id == challenge_id)
            .ok_or_else(|| {
                MechanismError::invalid(format!(
                    "event {seq}: {what} for challenge `{challenge_id}`, which is not an open \
                     loosh round (never issued with environment `{ENVIRONMENT}`, or closed)"
                ))
            })
    }
}

fn check_embedding(
    seq: u64,
    round: &Round,
    embedding: &EmbeddingComputed,
) -> Result<Embedding, MechanismError> {
    if embedding.vector.is_empty() {
        return Err(MechanismError::invalid(format!(
            "event {seq}: embedding of uid {} is empty",
            embedding.uid
        )));
    }
    if !embedding.scale.is_finite() || embedding.scale < 0.0 {
        return Err(MechanismError::invalid(format!(
            "event {seq}: embedding scale must be finite and not negative, got {}",
            embedding.scale
        )));
    }
    match round.model_hash {
        Some(model) if model != embedding.model_hash => {
            return Err(MechanismError::invalid(format!(
                "event {seq}: embedding of uid {} comes from model {}, but round `{}` uses {model}",
                embedding.uid, embedding.model_hash, round.challenge_id
            )));
        }
        _ => {}
    }
    let dimension = round
        .prompt_embedding
        .iter()
        .chain(round.responses.iter().filter_map(|r| r.embedding.as_ref()))
        .map(|e| e.vector.len())
        .next();
    if let Some(dimension) = dimension
        && dimension != embedding.vector.len()
    {
        return Err(MechanismError::invalid(format!(
            "event {seq}: embedding of uid {} has {} dimensions, but round `{}` has {dimension}",
            embedding.uid,
            embedding.vector.len(),
            round.challenge_id
        )));
    }
    Ok(Embedding {
        scale: embedding.scale,
        vector: embedding.vector.clone(),
    })
}

fn profile_config(seq: u64, parameters_json: &str) -> Result<Option<String>, MechanismError> {
    let parameters: Value = parse_event_json(seq, "profile parameters", parameters_json)?;
    match parameters.get(PARAMETER_CONFIG) {
        None | Some(Value::Null) => Ok(None),
        Some(config @ Value::Object(_)) => {
            EvaluateConfig::deserialize(config).map_err(|error| {
                MechanismError::invalid(format!(
                    "event {seq}: profile parameter `{PARAMETER_CONFIG}`: {error}"
                ))
            })?;
            Ok(Some(config.to_string()))
        }
        Some(other) => Err(MechanismError::invalid(format!(
            "event {seq}: profile parameter `{PARAMETER_CONFIG}` must be an object, not {other}"
        ))),
    }
}

impl LooshEvaluate {
    /// The mechanism input for the open round `challenge_id`.
    pub fn input_for(
        &self,
        state: &LooshEvaluateState,
        challenge_id: &str,
    ) -> Result<Value, MechanismError> {
        let round = state
            .rounds
            .iter()
            .find(|round| round.challenge_id == challenge_id)
            .ok_or_else(|| {
                MechanismError::invalid(format!(
                    "challenge `{challenge_id}` is not an open loosh round"
                ))
            })?;
        let id = &round.challenge_id;
        let prompt_embedding = round.prompt_embedding.as_ref().ok_or_else(|| {
            MechanismError::invalid(format!(
                "round `{id}` has no prompt embedding (EmbeddingComputed with uid \
                 {PROMPT_EMBEDDING_UID})"
            ))
        })?;
        let mut responses = Vec::with_capacity(round.responses.len());
        let mut node_map = Map::new();
        let mut quality_scores = Vec::new();
        let mut missing_quality = Vec::new();
        for response in &round.responses {
            let embedding = response.embedding.as_ref().ok_or_else(|| {
                MechanismError::invalid(format!(
                    "round `{id}`: the response of uid {} has no embedding",
                    response.uid
                ))
            })?;
            responses.push(json!({
                "uid": response.uid,
                "hotkey": response.hotkey,
                "text": response.text,
                "embedding": embedding.values(),
                "response_time_ms": response.latency_ms as f64,
            }));
            node_map.insert(
                response.hotkey.clone(),
                json!([response.ip, response.coldkey]),
            );
            if is_test_mode(&response.text) {
                if response.quality.is_some() {
                    return Err(MechanismError::invalid(format!(
                        "round `{id}`: uid {} has a quality score but its response is [TEST \
                         MODE], which upstream never scores",
                        response.uid
                    )));
                }
                continue;
            }
            match response.quality {
                Some(quality) => quality_scores.push(quality),
                None => missing_quality.push(response.uid),
            }
        }
        let quality_scores = if quality_scores.is_empty() {
            Value::Null
        } else if missing_quality.is_empty() {
            json!(quality_scores)
        } else {
            return Err(MechanismError::invalid(format!(
                "round `{id}` has quality scores for some responses but not for uids \
                 {missing_quality:?}; record one for every response that is not [TEST MODE], \
                 or none"
            )));
        };
        let mut evaluate = json!({
            "prompt_embedding": prompt_embedding.values(),
            "responses": responses,
            "quality_scores": quality_scores,
            "node_map": node_map,
        });
        if let Some(config) = &state.config_json {
            let config: Value = serde_json::from_str(config).map_err(|error| {
                MechanismError::invalid(format!("stored evaluate config: {error}"))
            })?;
            evaluate["config"] = config;
        }
        Ok(json!({ "evaluate": evaluate }))
    }
}

impl Projection for LooshEvaluate {
    type State = LooshEvaluateState;
    const NAME: &'static str = "loosh/evaluate";

    fn apply(
        &self,
        state: &mut LooshEvaluateState,
        seq: u64,
        event: &Event,
    ) -> Result<(), MechanismError> {
        state.now_ms = state.now_ms.max(event.timestamp_ms);
        match &event.payload {
            Payload::LogOpened(opened) if opened.profile == PROFILE => {
                state.config_json = profile_config(seq, &opened.parameters_json)?;
            }
            Payload::ProfileChanged(changed) if changed.profile == PROFILE => {
                state.config_json = profile_config(seq, &changed.parameters_json)?;
            }
            Payload::MetagraphObserved(metagraph) => {
                state.nodes = metagraph
                    .neurons
                    .iter()
                    .map(|neuron| {
                        (
                            neuron.uid,
                            Node {
                                hotkey: neuron.hotkey.to_ss58(),
                                coldkey: neuron.coldkey.to_ss58(),
                                ip: neuron
                                    .axon
                                    .as_ref()
                                    .map(|axon| axon.ip.clone())
                                    .unwrap_or_default(),
                            },
                        )
                    })
                    .collect();
            }
            Payload::ChallengeIssued(challenge) if challenge.environment == ENVIRONMENT => {
                if state
                    .rounds
                    .iter()
                    .any(|round| round.challenge_id == challenge.challenge_id)
                {
                    return Err(MechanismError::invalid(format!(
                        "event {seq}: challenge `{}` is issued twice",
                        challenge.challenge_id
                    )));
                }
                if challenge.target_uids.contains(&PROMPT_EMBEDDING_UID) {
                    return Err(MechanismError::invalid(format!(
                        "event {seq}: uid {PROMPT_EMBEDDING_UID} is reserved for the prompt \
                         embedding and cannot be a target"
                    )));
                }
                state.rounds.push(Round {
                    challenge_id: challenge.challenge_id.clone(),
                    issued_ms: event.timestamp_ms,
                    prompt: challenge.prompt.clone(),
                    target_uids: challenge.target_uids.clone(),
                    model_hash: None,
                    prompt_embedding: None,
                    responses: Vec::new(),
                });
            }
            Payload::ResponseReceived(response) => {
                let ResponseOutcome::Ok { body } = &response.outcome else {
                    return Ok(());
                };
                let Some(index) = state
                    .rounds
                    .iter()
                    .position(|round| round.challenge_id == response.challenge_id)
                else {
                    return Ok(());
                };
                let node = state.nodes.get(&response.uid).cloned().ok_or_else(|| {
                    MechanismError::invalid(format!(
                        "event {seq}: uid {} is not in the newest metagraph",
                        response.uid
                    ))
                })?;
                let hotkey = response.hotkey.to_ss58();
                if node.hotkey != hotkey {
                    return Err(MechanismError::invalid(format!(
                        "event {seq}: the response names hotkey {hotkey} for uid {}, but the \
                         newest metagraph has {}",
                        response.uid, node.hotkey
                    )));
                }
                let round = &mut state.rounds[index];
                if !round.target_uids.is_empty() && !round.target_uids.contains(&response.uid) {
                    return Err(MechanismError::invalid(format!(
                        "event {seq}: uid {} answered challenge `{}`, which did not target it",
                        response.uid, round.challenge_id
                    )));
                }
                if round.responses.iter().any(|r| r.uid == response.uid) {
                    return Err(MechanismError::invalid(format!(
                        "event {seq}: uid {} already answered challenge `{}`",
                        response.uid, round.challenge_id
                    )));
                }
                round.responses.push(RoundResponse {
                    uid: response.uid,
                    hotkey,
                    ip: node.ip,
                    coldkey: node.coldkey,
                    text: body.clone(),
                    latency_ms: response.latency_ms,
                    embedding: None,
                    quality: None,
                });
            }
            Payload::EmbeddingComputed(embedding) => {
                let round = state.round_mut(seq, &embedding.challenge_id, "an embedding")?;
                let checked = check_embedding(seq, round, embedding)?;
                round.model_hash = Some(embedding.model_hash);
                if embedding.uid == PROMPT_EMBEDDING_UID {
                    if round.prompt_embedding.is_some() {
                        return Err(MechanismError::invalid(format!(
                            "event {seq}: round `{}` already has a prompt embedding",
                            round.challenge_id
                        )));
                    }
                    round.prompt_embedding = Some(checked);
                } else {
                    let challenge_id = round.challenge_id.clone();
                    let response = round
                        .responses
                        .iter_mut()
                        .find(|r| r.uid == embedding.uid)
                        .ok_or_else(|| {
                            MechanismError::invalid(format!(
                                "event {seq}: embedding of uid {} in round `{challenge_id}`, \
                                 which has no successful response from it (yet)",
                                embedding.uid
                            ))
                        })?;
                    if response.embedding.is_some() {
                        return Err(MechanismError::invalid(format!(
                            "event {seq}: the response of uid {} in round `{challenge_id}` \
                             already has an embedding",
                            embedding.uid
                        )));
                    }
                    response.embedding = Some(checked);
                }
            }
            Payload::EvaluationRecorded(evaluation)
                if evaluation.evaluator == EVALUATOR_QUALITY =>
            {
                let round = state.round_mut(seq, &evaluation.challenge_id, "a quality score")?;
                if !evaluation.score.is_finite() {
                    return Err(MechanismError::invalid(format!(
                        "event {seq}: quality score of uid {} must be finite, got {}",
                        evaluation.uid, evaluation.score
                    )));
                }
                let challenge_id = round.challenge_id.clone();
                let response = round
                    .responses
                    .iter_mut()
                    .find(|r| r.uid == evaluation.uid)
                    .ok_or_else(|| {
                        MechanismError::invalid(format!(
                            "event {seq}: quality score of uid {} in round `{challenge_id}`, \
                             which has no successful response from it (yet)",
                            evaluation.uid
                        ))
                    })?;
                if response.quality.is_some() {
                    return Err(MechanismError::invalid(format!(
                        "event {seq}: the response of uid {} in round `{challenge_id}` already \
                         has a quality score",
                        evaluation.uid
                    )));
                }
                response.quality = Some(evaluation.score);
            }
            Payload::EvaluationRecorded(evaluation)
                if evaluation.evaluator == EVALUATOR_EMISSION =>
            {
                // The round's result is recorded: it is closed.
                state
                    .rounds
                    .retain(|round| round.challenge_id != evaluation.challenge_id);
            }
            _ => {}
        }
        let oldest = state.now_ms.saturating_sub(ROUND_LOOKBACK_MS);
        state.rounds.retain(|round| round.issued_ms >= oldest);
        Ok(())
    }

    /// The input for the newest open round.
    fn input(&self, state: &LooshEvaluateState) -> Result<Value, MechanismError> {
        let newest = state
            .rounds
            .last()
            .ok_or_else(|| MechanismError::invalid("there is no open loosh round to evaluate"))?;
        self.input_for(state, &newest.challenge_id)
    }
}
