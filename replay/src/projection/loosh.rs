//! loosh `weights` driven by the log: every input of the weight-setting step is derived from
//! events, with no clock — "now" is the timestamp of the newest event folded.
//!
//! The event conventions this fold reads:
//! - `LogOpened` / `ProfileChanged` with profile `loosh`: the validator's hotkey (from
//!   `LogOpened`) and `parameters_json` `{"alpha": 0.3}` (optional).
//! - `MetagraphObserved`: uids, hotkeys, axons and stake, for the serving-miner filter.
//! - `ResponseReceived` with an `ok` outcome: the miner's last success, for the freshness
//!   gate.
//! - `EvaluationRecorded` with evaluator [`EVALUATOR_EMISSION`]: the emission the validator
//!   computed for a uid in a challenge; all emissions of one challenge form one evaluation
//!   result, ordered by the seq of its first emission.
//! - `ExternalScoreRecorded` from [`SOURCE_SYBIL`]: sybil scores per uid (from the Challenge
//!   API), stored under the uid's hotkey at that moment; replaces all.
//! - `WeightsSubmitted` included in a block: the validator's last update, which with the
//!   metagraph's block selects the operation mode.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use weightlog_schema::event::{ResponseOutcome, SubmissionOutcome};
use weightlog_schema::{Event, Payload};

use super::{Projection, object, parse_event_json};
use crate::MechanismError;

pub const PROFILE: &str = "loosh";
pub const EVALUATOR_EMISSION: &str = "loosh:emission";
pub const SOURCE_SYBIL: &str = "loosh:sybil";
/// Upstream lookback of the EMA (`get_miner_ema_scores`), 24 hours.
pub const EMA_LOOKBACK_MS: u64 = 24 * 3_600_000;
/// Freshness windows of the NORMAL and DEGRADED modes.
pub const FRESHNESS_NORMAL_MS: u64 = 3 * 3_600_000;
pub const FRESHNESS_DEGRADED_MS: u64 = 24 * 3_600_000;
/// Blocks since the last update at which the mode degrades, then becomes an emergency.
pub const DEGRADED_AFTER_BLOCKS: u64 = 4000;
pub const EMERGENCY_AFTER_BLOCKS: u64 = 4500;
/// Without the Challenge API's validator list, nodes with this much stake are validators.
pub const VALIDATOR_STAKE_RAO_MIN: u64 = 999 * 1_000_000_000;

/// One node of the newest metagraph, as the serving filter needs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    pub uid: u16,
    pub hotkey: String,
    pub ip: String,
    pub port: u16,
    pub stake_rao: u64,
}

/// One challenge's emissions, in the order the validator recorded them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Round {
    pub challenge_id: String,
    pub first_timestamp_ms: u64,
    pub emissions: Vec<(String, f64)>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LooshState {
    pub validator_hotkey: Option<String>,
    pub alpha: Option<f64>,
    /// Timestamp of the newest event folded: the projection's "now".
    pub now_ms: u64,
    pub metagraph_block: Option<u64>,
    pub nodes: Vec<Node>,
    /// Block of the newest included weight submission.
    pub last_update_block: Option<u64>,
    /// hotkey -> timestamp of its newest successful response.
    pub last_success_ms: BTreeMap<String, u64>,
    /// Evaluation results inside the lookback, oldest first.
    pub rounds: Vec<Round>,
    pub sybil_scores: BTreeMap<String, f64>,
}

/// The loosh weights projection.
#[derive(Debug, Clone, Copy, Default)]
pub struct LooshWeights;

impl LooshState {
    fn hotkey_of(&self, seq: u64, uid: u16) -> Result<String, MechanismError> {
        self.nodes
            .iter()
            .find(|node| node.uid == uid)
            .map(|node| node.hotkey.clone())
            .ok_or_else(|| {
                MechanismError::invalid(format!(
                    "event {seq}: uid {uid} is not in the newest metagraph"
                ))
            })
    }

    fn mode(&self) -> &'static str {
        let since = match (self.metagraph_block, self.last_update_block) {
            (Some(block), Some(last)) => block.saturating_sub(last),
            // Never updated: upstream's last_update is 0, so the gap is the whole chain.
            _ => u64::MAX,
        };
        if since < DEGRADED_AFTER_BLOCKS {
            "NORMAL"
        } else if since < EMERGENCY_AFTER_BLOCKS {
            "DEGRADED"
        } else {
            "EMERGENCY"
        }
    }
}

impl Projection for LooshWeights {
    type State = LooshState;
    const NAME: &'static str = "loosh/weights";

    fn apply(&self, state: &mut LooshState, seq: u64, event: &Event) -> Result<(), MechanismError> {
        state.now_ms = state.now_ms.max(event.timestamp_ms);
        match &event.payload {
            Payload::LogOpened(opened) if opened.profile == PROFILE => {
                state.validator_hotkey = Some(opened.validator_hotkey.to_ss58());
                state.alpha = profile_alpha(seq, &opened.parameters_json)?;
            }
            Payload::ProfileChanged(changed) if changed.profile == PROFILE => {
                state.alpha = profile_alpha(seq, &changed.parameters_json)?;
            }
            Payload::MetagraphObserved(metagraph) => {
                state.metagraph_block = Some(metagraph.block);
                state.nodes = metagraph
                    .neurons
                    .iter()
                    .map(|neuron| Node {
                        uid: neuron.uid,
                        hotkey: neuron.hotkey.to_ss58(),
                        ip: neuron
                            .axon
                            .as_ref()
                            .map(|axon| axon.ip.clone())
                            .unwrap_or_default(),
                        port: neuron.axon.as_ref().map_or(0, |axon| axon.port),
                        stake_rao: neuron.stake_rao,
                    })
                    .collect();
            }
            Payload::ResponseReceived(response) => {
                if matches!(response.outcome, ResponseOutcome::Ok { .. }) {
                    state
                        .last_success_ms
                        .insert(response.hotkey.to_ss58(), event.timestamp_ms);
                }
            }
            Payload::EvaluationRecorded(evaluation)
                if evaluation.evaluator == EVALUATOR_EMISSION =>
            {
                let hotkey = state.hotkey_of(seq, evaluation.uid)?;
                // A challenge has at most one round, and emissions mostly follow their
                // challenge closely, so the search starts at the newest round.
                match state
                    .rounds
                    .iter_mut()
                    .rev()
                    .find(|round| round.challenge_id == evaluation.challenge_id)
                {
                    Some(round) => round.emissions.push((hotkey, evaluation.score)),
                    None => state.rounds.push(Round {
                        challenge_id: evaluation.challenge_id.clone(),
                        first_timestamp_ms: event.timestamp_ms,
                        emissions: vec![(hotkey, evaluation.score)],
                    }),
                }
            }
            Payload::ExternalScoreRecorded(external) if external.source == SOURCE_SYBIL => {
                let mut scores = BTreeMap::new();
                for score in &external.scores {
                    scores.insert(state.hotkey_of(seq, score.uid)?, score.score);
                }
                state.sybil_scores = scores;
            }
            Payload::WeightsSubmitted(submitted) => {
                if let SubmissionOutcome::Included { block } = submitted.outcome {
                    state.last_update_block = Some(block);
                }
            }
            _ => {}
        }
        // Rounds that left the lookback never count again; dropping them keeps the state
        // (and checkpoints) bounded.
        let oldest = state.now_ms.saturating_sub(EMA_LOOKBACK_MS);
        state
            .rounds
            .retain(|round| round.first_timestamp_ms >= oldest);
        Ok(())
    }

    fn decision(
        &self,
        _state: &LooshState,
        output: &Value,
    ) -> Result<super::decision::Recomputed, MechanismError> {
        super::decision::from_loosh(output)
    }

    fn input(&self, state: &LooshState) -> Result<Value, MechanismError> {
        let mode = state.mode();
        let window = match mode {
            "NORMAL" => Some(FRESHNESS_NORMAL_MS),
            "DEGRADED" => Some(FRESHNESS_DEGRADED_MS),
            _ => None,
        };
        // Every value is built once and moved into its parent: a `Value` placed inside
        // `json!` is serialised again, which copied each emission three times.
        let fresh: Map<String, Value> = state
            .nodes
            .iter()
            .map(|node| {
                let is_fresh = match (window, state.last_success_ms.get(&node.hotkey)) {
                    (None, _) => true,
                    (Some(window), Some(last)) => state.now_ms.saturating_sub(*last) <= window,
                    (Some(_), None) => false,
                };
                (node.hotkey.clone(), Value::Bool(is_fresh))
            })
            .collect();
        let serving: Vec<Value> = state
            .nodes
            .iter()
            .filter(|node| Some(&node.hotkey) != state.validator_hotkey.as_ref())
            .filter(|node| !matches!(node.ip.as_str(), "" | "0" | "0.0.0.0") && node.port != 0)
            .filter(|node| node.stake_rao < VALIDATOR_STAKE_RAO_MIN)
            .map(|node| json!({ "uid": node.uid, "hotkey": node.hotkey }))
            .collect();
        let evaluations: Vec<Value> = state
            .rounds
            .iter()
            .map(|round| {
                let emissions: Map<String, Value> = round
                    .emissions
                    .iter()
                    .map(|(hotkey, emission)| (hotkey.clone(), Value::from(*emission)))
                    .collect();
                object([("emissions", Value::Object(emissions))])
            })
            .collect();
        let sybil_scores: Map<String, Value> = state
            .sybil_scores
            .iter()
            .map(|(hotkey, score)| (hotkey.clone(), Value::from(*score)))
            .collect();
        let mut weights = Map::new();
        weights.insert("evaluations".into(), Value::Array(evaluations));
        weights.insert("mode".into(), Value::from(mode));
        weights.insert("fresh".into(), Value::Object(fresh));
        weights.insert("serving".into(), Value::Array(serving));
        weights.insert("sybil_scores".into(), Value::Object(sybil_scores));
        if let Some(alpha) = state.alpha {
            weights.insert("alpha".into(), Value::from(alpha));
        }
        Ok(object([("weights", Value::Object(weights))]))
    }
}

fn profile_alpha(seq: u64, parameters_json: &str) -> Result<Option<f64>, MechanismError> {
    let parameters: Value = parse_event_json(seq, "profile parameters", parameters_json)?;
    match parameters.get("alpha") {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value.as_f64().map(Some).ok_or_else(|| {
            MechanismError::invalid(format!("event {seq}: alpha must be a number, not {value}"))
        }),
    }
}
