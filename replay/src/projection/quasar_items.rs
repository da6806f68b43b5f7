//! quasar's per-item modes (`metric`, `readme`, `api_score`, `hfa`) driven by the log: every
//! scored (task, miner) pair the validator recorded becomes one item of the mechanism input,
//! in the seq order of the event that recorded its result; no clock, no randomness.
//!
//! How a quasar validator records these inputs (the event conventions this fold reads; the
//! task and accuracy conventions are those of the validator projection,
//! [`super::quasar`], so one log serves both where they overlap):
//! - `LogOpened` / `ProfileChanged` with profile [`PROFILE`]: `parameters_json`
//!   `{"mode": "metric" | "readme" | "api_score" | "hfa"}` (required). In `metric` mode it may
//!   also pin the scored answer with `"challenge_id"` and `"uid"` (both or neither); unpinned,
//!   the log must hold exactly one ok answer to a quasar task. The newest such profile
//!   applies to the whole replay.
//! - `MetagraphObserved`: the SS58 hotkey of every uid (neurons in uid order), against which
//!   responses are checked. The newest metagraph applies.
//! - `ChallengeIssued` with environment [`ENVIRONMENT`]: one task; `extra_json` is a JSON
//!   object carrying the task's fields, read by mode:
//!   - `metric`: `"dataset"` (string, required), `"all_classes"` (strings, optional),
//!     `"expected_output"` (the ground truth, optional: it may be revealed later);
//!   - `readme`: `"bucket"` (the README bucket name: `32k`, `124k`, `512k`, `1.5m`, `2m`);
//!   - `api_score`: `"context_length"` (a number);
//!   - `hfa`: the task object upstream's `reward.py` reads: `"type"`, `"context_length"`,
//!     `"scale_factor"`, each optional and passed through as recorded (other keys are not
//!     part of the HFA task and are left out).
//!
//!   `target_uids` are the queried miners.
//! - `GroundTruthRevealed` for a quasar task: `truth_json` `{"expected_output": "..."}`
//!   (the `metric` mode's ground truth) when the challenge did not carry it; a different value
//!   from the one known is refused.
//! - `ResponseReceived` for a quasar task: an `ok` body is the miner's prediction (`metric`
//!   mode); an `error` outcome is "no response", which in `hfa` mode is an item with `metrics`
//!   null (reward 0) and in `readme` / `api_score` mode is no item. Its hotkey must be the
//!   uid's hotkey in the newest metagraph.
//! - `EvaluationRecorded` with evaluator [`EVALUATOR_ACCURACY`]: the metric value the
//!   validator computed for a uid's answer (`score`): the item's `accuracy` (`readme`) or
//!   `score` (`api_score`).
//! - `EvaluationRecorded` with evaluator [`EVALUATOR_HFA`]: the miner's HFA metrics
//!   (`metrics`: `memory_retention_score`, `position_understanding_score`,
//!   `coherence_score`, `tokens_per_second`, `scaling_efficiency`; names unique); its
//!   `score` is not read.
//!
//! One (task, uid) pair has at most one result (one evaluation, or one error response without
//! evaluation); results must be for a uid the task targeted. Events of other kinds and other
//! environments' challenges, responses and truths leave the state unchanged. A result kind
//! that the profile's mode does not read (an HFA evaluation in `readme` mode, say) is refused
//! when the input is built.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use weightlog_schema::{Event, Payload};

pub use super::quasar::{ENVIRONMENT, EVALUATOR_ACCURACY};
use super::quasar::{
    check_distinct_targets, check_not_issued, check_response_hotkey, check_targeted,
    first_response_body, reveal_expected_output,
};
use super::{Projection, hotkeys_in_uid_order, invalid};
use crate::MechanismError;

pub const PROFILE: &str = "quasar_items";
/// The evaluator of a miner's HFA metrics on a task.
pub const EVALUATOR_HFA: &str = "quasar:hfa";
/// The per-item modes this projection feeds.
pub const MODES: [&str; 4] = ["metric", "readme", "api_score", "hfa"];
/// The keys of the HFA task object (`task.get(...)` in upstream's `reward.py`).
pub const HFA_TASK_KEYS: [&str; 3] = ["type", "context_length", "scale_factor"];

/// One task, as the events of its challenge recorded it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub challenge_id: String,
    /// The challenge's `extra_json` object, as canonical JSON text.
    pub extra_json: String,
    pub expected_output: Option<String>,
    pub target_uids: Vec<u16>,
    /// uid -> the ok body (`Some`) or an error outcome (`None`).
    pub responses: BTreeMap<u16, Option<String>>,
}

/// What was recorded as the result of one (task, uid) pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Outcome {
    /// An [`EVALUATOR_ACCURACY`] evaluation's score.
    Accuracy(f64),
    /// An [`EVALUATOR_HFA`] evaluation's metrics, in recorded order.
    Hfa(Vec<(String, f64)>),
    /// An error response and no evaluation.
    NoResponse,
}

/// One item: a (task, uid) pair's result, in the seq order it was recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    pub challenge_id: String,
    pub uid: u16,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QuasarItemsState {
    /// One of [`MODES`], from the newest `quasar_items` profile.
    pub mode: Option<String>,
    /// `metric` mode: the pinned (challenge id, uid), if the profile names one.
    pub pinned: Option<(String, u16)>,
    /// SS58 hotkey of every uid, from the newest metagraph.
    pub hotkeys: Vec<String>,
    /// Tasks in the seq order of their challenges.
    pub tasks: Vec<Task>,
    /// challenge id -> index in `tasks`.
    pub task_index: BTreeMap<String, u64>,
    /// Results in seq order.
    pub items: Vec<Item>,
    /// (challenge id, uid) -> index in `items`.
    pub item_index: BTreeMap<(String, u16), u64>,
}

/// The quasar per-item projection (the mode the profile names).
#[derive(Debug, Clone, Copy, Default)]
pub struct QuasarItems;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Parameters {
    mode: String,
    #[serde(default)]
    challenge_id: Option<String>,
    #[serde(default)]
    uid: Option<u16>,
}

impl QuasarItemsState {
    fn task(&self, challenge_id: &str) -> Option<&Task> {
        let index = *self.task_index.get(challenge_id)?;
        self.tasks.get(index as usize)
    }

    fn task_mut(&mut self, challenge_id: &str) -> Option<&mut Task> {
        let index = *self.task_index.get(challenge_id)?;
        self.tasks.get_mut(index as usize)
    }
}

impl Projection for QuasarItems {
    type State = QuasarItemsState;
    const NAME: &'static str = "quasar/items";

    fn apply(
        &self,
        state: &mut QuasarItemsState,
        seq: u64,
        event: &Event,
    ) -> Result<(), MechanismError> {
        match &event.payload {
            Payload::LogOpened(opened) if opened.profile == PROFILE => {
                set_profile(state, seq, &opened.parameters_json)
            }
            Payload::ProfileChanged(changed) if changed.profile == PROFILE => {
                set_profile(state, seq, &changed.parameters_json)
            }
            Payload::MetagraphObserved(metagraph) => {
                state.hotkeys = hotkeys_in_uid_order(seq, metagraph)?;
                Ok(())
            }
            Payload::ChallengeIssued(challenge) if challenge.environment == ENVIRONMENT => {
                check_not_issued(seq, &state.task_index, challenge)?;
                let extra: Map<String, Value> = serde_json::from_str(&challenge.extra_json)
                    .map_err(|error| {
                        invalid(
                            seq,
                            format!("quasar challenge extra_json must be a JSON object: {error}"),
                        )
                    })?;
                let expected_output = match extra.get("expected_output") {
                    None | Some(Value::Null) => None,
                    Some(Value::String(text)) => Some(text.clone()),
                    Some(other) => {
                        return Err(invalid(
                            seq,
                            format!("extra_json `expected_output` must be a string, got {other}"),
                        ));
                    }
                };
                check_distinct_targets(seq, challenge)?;
                state
                    .task_index
                    .insert(challenge.challenge_id.clone(), state.tasks.len() as u64);
                state.tasks.push(Task {
                    challenge_id: challenge.challenge_id.clone(),
                    extra_json: Value::Object(extra).to_string(),
                    expected_output,
                    target_uids: challenge.target_uids.clone(),
                    responses: BTreeMap::new(),
                });
                Ok(())
            }
            Payload::GroundTruthRevealed(revealed) => {
                let Some(task) = state.task_mut(&revealed.challenge_id) else {
                    return Ok(());
                };
                reveal_expected_output(seq, &mut task.expected_output, revealed)
            }
            Payload::ResponseReceived(response) => {
                if !state.task_index.contains_key(&response.challenge_id) {
                    return Ok(());
                }
                check_response_hotkey(seq, &state.hotkeys, response)?;
                let key = (response.challenge_id.clone(), response.uid);
                let already_scored = state.item_index.contains_key(&key);
                let Some(task) = state.task_mut(&response.challenge_id) else {
                    return Ok(());
                };
                check_targeted(seq, &task.challenge_id, &task.target_uids, response.uid)?;
                let body = first_response_body(seq, &task.responses, response)?;
                if body.is_none() {
                    if already_scored {
                        return Err(invalid(
                            seq,
                            format!(
                                "error response of uid {} to challenge `{}`, which already has \
                                 an evaluation",
                                response.uid, response.challenge_id
                            ),
                        ));
                    }
                    push_item(state, key, Outcome::NoResponse);
                }
                if let Some(task) = state.task_mut(&response.challenge_id) {
                    task.responses.insert(response.uid, body);
                }
                Ok(())
            }
            Payload::EvaluationRecorded(evaluation)
                if evaluation.evaluator == EVALUATOR_ACCURACY
                    || evaluation.evaluator == EVALUATOR_HFA =>
            {
                let Some(task) = state.task(&evaluation.challenge_id) else {
                    return Err(invalid(
                        seq,
                        format!(
                            "`{}` evaluation for challenge `{}`, which is not a quasar \
                             challenge of this log",
                            evaluation.evaluator, evaluation.challenge_id
                        ),
                    ));
                };
                check_targeted(seq, &task.challenge_id, &task.target_uids, evaluation.uid)?;
                if matches!(task.responses.get(&evaluation.uid), Some(None)) {
                    return Err(invalid(
                        seq,
                        format!(
                            "evaluation of uid {} for challenge `{}`, whose response was an error",
                            evaluation.uid, evaluation.challenge_id
                        ),
                    ));
                }
                let key = (evaluation.challenge_id.clone(), evaluation.uid);
                if state.item_index.contains_key(&key) {
                    return Err(invalid(
                        seq,
                        format!(
                            "second evaluation of uid {} for challenge `{}`",
                            evaluation.uid, evaluation.challenge_id
                        ),
                    ));
                }
                let outcome = if evaluation.evaluator == EVALUATOR_ACCURACY {
                    if !evaluation.score.is_finite() {
                        return Err(invalid(
                            seq,
                            format!("accuracy must be finite, got {}", evaluation.score),
                        ));
                    }
                    Outcome::Accuracy(evaluation.score)
                } else {
                    let mut metrics: Vec<(String, f64)> = Vec::new();
                    for metric in &evaluation.metrics {
                        if !metric.value.is_finite() {
                            return Err(invalid(
                                seq,
                                format!(
                                    "HFA metric `{}` must be finite, got {}",
                                    metric.name, metric.value
                                ),
                            ));
                        }
                        if metrics.iter().any(|(name, _)| *name == metric.name) {
                            return Err(invalid(
                                seq,
                                format!("HFA metric `{}` is recorded twice", metric.name),
                            ));
                        }
                        metrics.push((metric.name.clone(), metric.value));
                    }
                    Outcome::Hfa(metrics)
                };
                push_item(state, key, outcome);
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn input(&self, state: &QuasarItemsState) -> Result<Value, MechanismError> {
        let mode = state.mode.as_deref().ok_or_else(|| {
            MechanismError::invalid(
                "no quasar_items profile event (LogOpened/ProfileChanged) names the mode",
            )
        })?;
        if mode == "metric" {
            return metric_input(state);
        }
        let mut items = Vec::new();
        for item in &state.items {
            let task = state.task(&item.challenge_id).ok_or_else(|| {
                MechanismError::invalid(format!("no task `{}`", item.challenge_id))
            })?;
            let extra: Map<String, Value> = serde_json::from_str(&task.extra_json)?;
            let wrong_kind = || {
                MechanismError::invalid(format!(
                    "challenge `{}`, uid {}: a result of the wrong kind for `{mode}` mode ({})",
                    item.challenge_id,
                    item.uid,
                    match item.outcome {
                        Outcome::Accuracy(_) => EVALUATOR_ACCURACY,
                        Outcome::Hfa(_) => EVALUATOR_HFA,
                        Outcome::NoResponse => "error response",
                    }
                ))
            };
            let field =
                |key: &str, what: &str, ok: fn(&Value) -> bool| {
                    extra.get(key).filter(|value| ok(value)).cloned().ok_or_else(|| {
                    MechanismError::invalid(format!(
                        "challenge `{}`: extra_json has no {what} `{key}`, which `{mode}` mode \
                         needs",
                        item.challenge_id
                    ))
                })
                };
            let value = match (mode, &item.outcome) {
                ("readme", Outcome::Accuracy(accuracy)) => json!({
                    "accuracy": accuracy,
                    "bucket": field("bucket", "string", Value::is_string)?,
                }),
                ("api_score", Outcome::Accuracy(score)) => json!({
                    "score": score,
                    "context_length": field("context_length", "number", Value::is_number)?,
                }),
                ("readme" | "api_score", Outcome::NoResponse) => continue,
                ("hfa", Outcome::Hfa(metrics)) => json!({
                    "task": hfa_task(&extra),
                    "metrics": metrics
                        .iter()
                        .map(|(name, value)| (name.clone(), json!(value)))
                        .collect::<Map<String, Value>>(),
                }),
                ("hfa", Outcome::NoResponse) => json!({
                    "task": hfa_task(&extra),
                    "metrics": null,
                }),
                _ => return Err(wrong_kind()),
            };
            items.push(value);
        }
        Ok(json!({"mode": mode, "items": items}))
    }
}

fn hfa_task(extra: &Map<String, Value>) -> Value {
    Value::Object(
        HFA_TASK_KEYS
            .iter()
            .filter_map(|key| Some((key.to_string(), extra.get(*key)?.clone())))
            .collect(),
    )
}

/// The `metric` mode's input: the pinned answer, or the log's only ok answer.
fn metric_input(state: &QuasarItemsState) -> Result<Value, MechanismError> {
    let (task, prediction) = match &state.pinned {
        Some((challenge_id, uid)) => {
            let task = state.task(challenge_id).ok_or_else(|| {
                MechanismError::invalid(format!(
                    "the profile pins challenge `{challenge_id}`, which no quasar challenge \
                     issued"
                ))
            })?;
            let Some(Some(body)) = task.responses.get(uid) else {
                return Err(MechanismError::invalid(format!(
                    "the profile pins uid {uid} of challenge `{challenge_id}`, which has no ok \
                     response"
                )));
            };
            (task, body)
        }
        None => {
            let mut answers = state.tasks.iter().flat_map(|task| {
                task.responses
                    .values()
                    .filter_map(move |body| Some((task, body.as_ref()?)))
            });
            let (Some(answer), None) = (answers.next(), answers.next()) else {
                return Err(MechanismError::invalid(
                    "metric mode scores one answer: the log must hold exactly one ok answer to a \
                     quasar challenge, or the profile must pin `challenge_id` and `uid`",
                ));
            };
            answer
        }
    };
    let extra: Map<String, Value> = serde_json::from_str(&task.extra_json)?;
    let dataset = extra
        .get("dataset")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            MechanismError::invalid(format!(
                "challenge `{}`: extra_json has no string `dataset`, which `metric` mode needs",
                task.challenge_id
            ))
        })?;
    let ground_truth = task.expected_output.as_deref().ok_or_else(|| {
        MechanismError::invalid(format!(
            "challenge `{}` has no expected_output (neither in its extra_json nor revealed)",
            task.challenge_id
        ))
    })?;
    let mut input = json!({
        "mode": "metric",
        "dataset": dataset,
        "prediction": prediction,
        "ground_truth": ground_truth,
    });
    match extra.get("all_classes") {
        None | Some(Value::Null) => {}
        Some(classes) => input["all_classes"] = classes.clone(),
    }
    Ok(input)
}

fn push_item(state: &mut QuasarItemsState, key: (String, u16), outcome: Outcome) {
    state
        .item_index
        .insert(key.clone(), state.items.len() as u64);
    state.items.push(Item {
        challenge_id: key.0,
        uid: key.1,
        outcome,
    });
}

fn set_profile(
    state: &mut QuasarItemsState,
    seq: u64,
    parameters_json: &str,
) -> Result<(), MechanismError> {
    let parameters: Parameters = serde_json::from_str(parameters_json).map_err(|error| {
        invalid(
            seq,
            format!(
                "quasar_items profile parameters must be {{\"mode\", \"challenge_id\"?, \
                 \"uid\"?}}: {error}"
            ),
        )
    })?;
    if !MODES.contains(&parameters.mode.as_str()) {
        return Err(invalid(
            seq,
            format!(
                "quasar_items profile mode must be metric, readme, api_score or hfa, got `{}`",
                parameters.mode
            ),
        ));
    }
    let pinned = match (parameters.challenge_id, parameters.uid) {
        (None, None) => None,
        (Some(challenge_id), Some(uid)) if parameters.mode == "metric" => Some((challenge_id, uid)),
        (Some(_), Some(_)) => {
            return Err(invalid(
                seq,
                "only metric mode pins an answer (`challenge_id` and `uid`)",
            ));
        }
        _ => {
            return Err(invalid(
                seq,
                "the profile must pin both `challenge_id` and `uid`, or neither",
            ));
        }
    };
    state.mode = Some(parameters.mode);
    state.pinned = pinned;
    Ok(())
}
