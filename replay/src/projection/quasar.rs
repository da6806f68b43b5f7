//! quasar `validator_v1` / `validator_v2` driven by the log: the long-context validator loop
//! (tasks in seq order, the bucket EMA carried across them) rebuilt from events, with no
//! clock and no randomness.
//!
//! How a quasar validator records its inputs (the event conventions this fold reads):
//! - `LogOpened` / `ProfileChanged` with profile [`PROFILE`]: `parameters_json`
//!   `{"validator": "v1"}` or `{"validator": "v2"}` (required: which validator generation,
//!   and so which buckets, applies), and optionally `"state"`: the starting state upstream's
//!   `load_state` restores (`bucket_scores` / `scores` / `consecutive_failures`, the
//!   mechanism input's `state` shape). The newest quasar profile applies to the whole
//!   replay.
//! - `MetagraphObserved`: `n` is the number of neurons of the newest metagraph (uids
//!   `0..n`); its hyperparameters give `chain.min_allowed_weights` and
//!   `chain.max_weight_limit` = `max_weights_limit / 65535` (the chain's u16 form).
//! - `ChallengeIssued` with environment [`ENVIRONMENT`]: one task, in seq order.
//!   `extra_json` `{"dataset": "qasper", "context_length": 40000, "all_classes": [...]
//!   (optional), "expected_output": "..." (optional)}`; `target_uids` are the queried miners
//!   (the task's keys). A queried miner with no usable answer recorded counts as "no
//!   response" (null).
//! - `GroundTruthRevealed` for a quasar challenge: `truth_json` `{"expected_output": "..."}`,
//!   when the challenge did not carry it (a different value from the one it carried is
//!   refused).
//! - `ResponseReceived` for a quasar challenge: an `ok` body is the miner's text (an empty
//!   text is upstream's "no response"); an `error` outcome is no response. Its hotkey must be
//!   the uid's hotkey in the newest metagraph.
//! - `EvaluationRecorded` with evaluator [`EVALUATOR_ACCURACY`]: the metric value the
//!   validator computed for a uid's answer (`score`; e.g. v2's math_verify datasets). A task
//!   with any such evaluation is given to the mechanism as `accuracies` (queried miners
//!   without one: null, and a miner that answered `ok` without one is refused); otherwise
//!   as `responses` (texts).
//!
//! Events of other kinds and other environments' challenges, responses and truths leave the
//! state unchanged. Every task stays in the state: upstream's EMA runs over all of them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use weightlog_schema::event::{
    ChallengeIssued, GroundTruthRevealed, ResponseOutcome, ResponseReceived,
};
use weightlog_schema::{Event, Payload};

use super::{Projection, hotkeys_in_uid_order, invalid};
use crate::MechanismError;

pub const PROFILE: &str = "quasar";
/// The `environment` of the validator's long-context tasks.
pub const ENVIRONMENT: &str = "quasar:long_context";
/// The evaluator of a task's per-miner metric value (the `accuracies` form).
pub const EVALUATOR_ACCURACY: &str = "quasar:accuracy";
/// `max_weights_limit` is a u16 fraction of this.
pub const U16_MAX: f64 = 65535.0;

/// One task, as the events of its challenge recorded it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub challenge_id: String,
    pub dataset: String,
    pub context_length: f64,
    pub all_classes: Option<Vec<String>>,
    pub expected_output: Option<String>,
    /// The queried miners, in the order the challenge listed them.
    pub target_uids: Vec<u16>,
    /// uid -> the ok body (`Some`) or an error outcome (`None`).
    pub responses: BTreeMap<u16, Option<String>>,
    /// uid -> the recorded metric value.
    pub accuracies: BTreeMap<u16, f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QuasarState {
    /// `validator_v1` or `validator_v2`, from the newest quasar profile.
    pub mode: Option<String>,
    /// The profile's starting state as JSON text (the mechanism input's `state`).
    pub initial_state_json: Option<String>,
    /// SS58 hotkey of every uid, from the newest metagraph.
    pub hotkeys: Vec<String>,
    pub min_allowed_weights: Option<u16>,
    pub max_weights_limit: Option<u16>,
    /// Tasks in the seq order of their challenges.
    pub tasks: Vec<Task>,
    /// challenge id -> index in `tasks`.
    pub task_index: BTreeMap<String, u64>,
}

/// The quasar validator projection (v1 or v2, as the profile says).
#[derive(Debug, Clone, Copy, Default)]
pub struct QuasarValidator;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TaskExtra {
    dataset: String,
    context_length: f64,
    #[serde(default)]
    all_classes: Option<Vec<String>>,
    #[serde(default)]
    expected_output: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Truth {
    expected_output: String,
}

impl QuasarState {
    fn task_mut(&mut self, challenge_id: &str) -> Option<&mut Task> {
        let index = *self.task_index.get(challenge_id)?;
        self.tasks.get_mut(index as usize)
    }
}

impl Projection for QuasarValidator {
    type State = QuasarState;
    const NAME: &'static str = "quasar/validator";

    fn apply(
        &self,
        state: &mut QuasarState,
        seq: u64,
        event: &Event,
    ) -> Result<(), MechanismError> {
        match &event.payload {
            Payload::LogOpened(opened) if opened.profile == PROFILE => {
                set_profile(state, seq, &opened.parameters_json)?;
            }
            Payload::ProfileChanged(changed) if changed.profile == PROFILE => {
                set_profile(state, seq, &changed.parameters_json)?;
            }
            Payload::MetagraphObserved(metagraph) => {
                state.hotkeys = hotkeys_in_uid_order(seq, metagraph)?;
                state.min_allowed_weights = Some(metagraph.hyperparameters.min_allowed_weights);
                state.max_weights_limit = Some(metagraph.hyperparameters.max_weights_limit);
            }
            Payload::ChallengeIssued(challenge) if challenge.environment == ENVIRONMENT => {
                check_not_issued(seq, &state.task_index, challenge)?;
                let extra: TaskExtra = serde_json::from_str(&challenge.extra_json).map_err(|error| {
                    invalid(
                        seq,
                        format!(
                            "quasar challenge extra_json must be {{\"dataset\", \"context_length\", \
                             \"all_classes\"?, \"expected_output\"?}}: {error}"
                        ),
                    )
                })?;
                if !extra.context_length.is_finite() || extra.context_length < 0.0 {
                    return Err(invalid(
                        seq,
                        format!(
                            "context_length must be a finite number >= 0, got {}",
                            extra.context_length
                        ),
                    ));
                }
                check_distinct_targets(seq, challenge)?;
                state
                    .task_index
                    .insert(challenge.challenge_id.clone(), state.tasks.len() as u64);
                state.tasks.push(Task {
                    challenge_id: challenge.challenge_id.clone(),
                    dataset: extra.dataset,
                    context_length: extra.context_length,
                    all_classes: extra.all_classes,
                    expected_output: extra.expected_output,
                    target_uids: challenge.target_uids.clone(),
                    responses: BTreeMap::new(),
                    accuracies: BTreeMap::new(),
                });
            }
            Payload::GroundTruthRevealed(revealed) => {
                let Some(task) = state.task_mut(&revealed.challenge_id) else {
                    return Ok(());
                };
                reveal_expected_output(seq, &mut task.expected_output, revealed)?;
            }
            Payload::ResponseReceived(response) => {
                if !state.task_index.contains_key(&response.challenge_id) {
                    return Ok(());
                }
                check_response_hotkey(seq, &state.hotkeys, response)?;
                let Some(task) = state.task_mut(&response.challenge_id) else {
                    return Ok(());
                };
                check_targeted(seq, &task.challenge_id, &task.target_uids, response.uid)?;
                let body = first_response_body(seq, &task.responses, response)?;
                task.responses.insert(response.uid, body);
            }
            Payload::EvaluationRecorded(evaluation)
                if evaluation.evaluator == EVALUATOR_ACCURACY =>
            {
                if !evaluation.score.is_finite() {
                    return Err(invalid(
                        seq,
                        format!("accuracy must be finite, got {}", evaluation.score),
                    ));
                }
                let Some(task) = state.task_mut(&evaluation.challenge_id) else {
                    return Err(invalid(
                        seq,
                        format!(
                            "accuracy for challenge `{}`, which is not a quasar challenge of this log",
                            evaluation.challenge_id
                        ),
                    ));
                };
                check_targeted(seq, &task.challenge_id, &task.target_uids, evaluation.uid)?;
                if task.accuracies.contains_key(&evaluation.uid) {
                    return Err(invalid(
                        seq,
                        format!(
                            "second accuracy of uid {} for challenge `{}`",
                            evaluation.uid, evaluation.challenge_id
                        ),
                    ));
                }
                task.accuracies.insert(evaluation.uid, evaluation.score);
            }
            _ => {}
        }
        Ok(())
    }

    fn decision(
        &self,
        _state: &QuasarState,
        output: &Value,
    ) -> Result<super::decision::Recomputed, MechanismError> {
        super::decision::from_quasar(output)
    }

    fn input(&self, state: &QuasarState) -> Result<Value, MechanismError> {
        let mode = state.mode.as_deref().ok_or_else(|| {
            MechanismError::invalid(
                "no quasar profile event (LogOpened/ProfileChanged) names the validator version",
            )
        })?;
        let (Some(min_allowed_weights), Some(max_weights_limit)) =
            (state.min_allowed_weights, state.max_weights_limit)
        else {
            return Err(MechanismError::invalid(
                "no MetagraphObserved event: n and the chain limits are unknown",
            ));
        };
        let tasks = state
            .tasks
            .iter()
            .map(task_input)
            .collect::<Result<Vec<Value>, _>>()?;
        let mut input = json!({
            "mode": mode,
            "n": state.hotkeys.len(),
            "chain": {
                "min_allowed_weights": min_allowed_weights,
                "max_weight_limit": f64::from(max_weights_limit) / U16_MAX,
            },
        });
        // Moved in: a value inside `json!` is serialised again, copying every task.
        input["tasks"] = Value::Array(tasks);
        if let Some(text) = &state.initial_state_json {
            input["state"] = serde_json::from_str(text).map_err(|error| {
                MechanismError::invalid(format!("the profile's state does not parse: {error}"))
            })?;
        }
        Ok(input)
    }
}

/// Refuses a second `ChallengeIssued` for a challenge id already in `task_index`: a
/// challenge's responses and truths are keyed by its id, so two tasks with one id would mix.
pub(super) fn check_not_issued(
    seq: u64,
    task_index: &BTreeMap<String, u64>,
    challenge: &ChallengeIssued,
) -> Result<(), MechanismError> {
    if task_index.contains_key(&challenge.challenge_id) {
        return Err(invalid(
            seq,
            format!("challenge `{}` was issued twice", challenge.challenge_id),
        ));
    }
    Ok(())
}

/// Refuses a challenge that lists a uid twice: results are keyed by (challenge, uid), so a
/// repeated target would have no place of its own.
pub(super) fn check_distinct_targets(
    seq: u64,
    challenge: &ChallengeIssued,
) -> Result<(), MechanismError> {
    let mut seen = challenge.target_uids.clone();
    seen.sort_unstable();
    if seen.windows(2).any(|pair| pair[0] == pair[1]) {
        return Err(invalid(
            seq,
            format!(
                "challenge `{}` targets the same uid twice",
                challenge.challenge_id
            ),
        ));
    }
    Ok(())
}

/// Folds a revealed `truth_json` into a task's `expected_output`. A truth that contradicts
/// the one already known (carried by the challenge or revealed before) is refused, since
/// either the scores or the reveal would then be wrong.
pub(super) fn reveal_expected_output(
    seq: u64,
    expected_output: &mut Option<String>,
    revealed: &GroundTruthRevealed,
) -> Result<(), MechanismError> {
    let truth: Truth = serde_json::from_str(&revealed.truth_json).map_err(|error| {
        invalid(
            seq,
            format!("quasar truth_json must be {{\"expected_output\": \"...\"}}: {error}"),
        )
    })?;
    match expected_output {
        Some(known) if *known != truth.expected_output => Err(invalid(
            seq,
            format!(
                "challenge `{}` already has a different expected_output",
                revealed.challenge_id
            ),
        )),
        _ => {
            *expected_output = Some(truth.expected_output);
            Ok(())
        }
    }
}

/// Refuses a response whose hotkey is not its uid's hotkey in the newest metagraph
/// (`hotkeys`, indexed by uid): a result must be credited to the miner that sent it.
pub(super) fn check_response_hotkey(
    seq: u64,
    hotkeys: &[String],
    response: &ResponseReceived,
) -> Result<(), MechanismError> {
    let hotkey = response.hotkey.to_ss58();
    match hotkeys.get(usize::from(response.uid)) {
        Some(known) if *known == hotkey => Ok(()),
        Some(known) => Err(invalid(
            seq,
            format!(
                "response from uid {} carries hotkey {hotkey}, but the metagraph has {known}",
                response.uid
            ),
        )),
        None => Err(invalid(
            seq,
            format!(
                "response from uid {} but the metagraph has {} uids",
                response.uid,
                hotkeys.len()
            ),
        )),
    }
}

/// The response's body (`Some` for an ok outcome, `None` for an error one), after refusing a
/// second response of the same uid to the same task (`responses`): one answer per miner.
pub(super) fn first_response_body(
    seq: u64,
    responses: &BTreeMap<u16, Option<String>>,
    response: &ResponseReceived,
) -> Result<Option<String>, MechanismError> {
    if responses.contains_key(&response.uid) {
        return Err(invalid(
            seq,
            format!(
                "second response of uid {} to challenge `{}`",
                response.uid, response.challenge_id
            ),
        ));
    }
    Ok(match &response.outcome {
        ResponseOutcome::Ok { body } => Some(body.clone()),
        ResponseOutcome::Error { .. } => None,
    })
}

/// Refuses a result for a uid the challenge did not target: upstream only scores the miners
/// it queried.
pub(super) fn check_targeted(
    seq: u64,
    challenge_id: &str,
    target_uids: &[u16],
    uid: u16,
) -> Result<(), MechanismError> {
    if target_uids.contains(&uid) {
        Ok(())
    } else {
        Err(invalid(
            seq,
            format!("uid {uid} answers challenge `{challenge_id}`, which did not target it"),
        ))
    }
}

/// One task in the mechanism's shape: `accuracies` when any was recorded, else `responses`.
fn task_input(task: &Task) -> Result<Value, MechanismError> {
    let mut value = json!({
        "context_length": task.context_length,
        "dataset": task.dataset,
    });
    if let Some(classes) = &task.all_classes {
        value["all_classes"] = json!(classes);
    }
    if task.accuracies.is_empty() {
        let mut responses = Map::new();
        let mut needs_truth = false;
        for uid in &task.target_uids {
            let text = task.responses.get(uid).and_then(Option::as_deref);
            needs_truth |= text.is_some_and(|text| !text.is_empty());
            responses.insert(uid.to_string(), text.map_or(Value::Null, Value::from));
        }
        let expected = match (&task.expected_output, needs_truth) {
            (Some(expected), _) => expected.as_str(),
            (None, false) => "",
            (None, true) => {
                return Err(MechanismError::invalid(format!(
                    "challenge `{}` has miner answers but no expected_output (neither in its \
                     extra_json nor revealed)",
                    task.challenge_id
                )));
            }
        };
        value["expected_output"] = Value::from(expected);
        value["responses"] = Value::Object(responses);
    } else {
        let mut accuracies = Map::new();
        for uid in &task.target_uids {
            let accuracy = task.accuracies.get(uid).copied();
            if accuracy.is_none()
                && matches!(task.responses.get(uid), Some(Some(text)) if !text.is_empty())
            {
                return Err(MechanismError::invalid(format!(
                    "challenge `{}`: uid {uid} answered but has no `{EVALUATOR_ACCURACY}` \
                     evaluation while others do",
                    task.challenge_id
                )));
            }
            accuracies.insert(uid.to_string(), accuracy.map_or(Value::Null, Value::from));
        }
        value["expected_output"] = Value::from(task.expected_output.as_deref().unwrap_or(""));
        value["accuracies"] = Value::Object(accuracies);
    }
    Ok(value)
}

fn set_profile(
    state: &mut QuasarState,
    seq: u64,
    parameters_json: &str,
) -> Result<(), MechanismError> {
    let parameters: Value = serde_json::from_str(parameters_json)
        .map_err(|error| invalid(seq, format!("profile parameters: {error}")))?;
    let mode = match parameters.get("validator").and_then(Value::as_str) {
        Some("v1") => "validator_v1",
        Some("v2") => "validator_v2",
        _ => {
            return Err(invalid(
                seq,
                format!(
                    "quasar profile parameters must set \"validator\" to \"v1\" or \"v2\", got {}",
                    parameters.get("validator").unwrap_or(&Value::Null)
                ),
            ));
        }
    };
    let initial_state = match parameters.get("state") {
        None | Some(Value::Null) => None,
        Some(value @ Value::Object(_)) => Some(value.to_string()),
        Some(other) => {
            return Err(invalid(
                seq,
                format!("quasar profile `state` must be an object, got {other}"),
            ));
        }
    };
    state.mode = Some(mode.to_string());
    state.initial_state_json = initial_state;
    Ok(())
}
