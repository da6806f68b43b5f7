//! The long-context validator loops: v1 (neurons/validator.py @ 3864f7d, 11 buckets) and v2
//! (@ 950a77c, 5 buckets), specs/scoring.md 3.2 and 3.3, followed by the template's weight
//! pipeline (3.6).
//!
//! Upstream keeps every score in float32 torch tensors; this module stores `f32` wherever a
//! tensor would and computes Python-float steps (metric times multiplier) in `f64`.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::metrics;
use super::rewards::require_finite;
use super::weights::{ChainLimits, emit, l1_normalise, process_weights_for_netuid};
use crate::MechanismError;

/// Which validator generation to replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Generation {
    /// 3864f7d: 11 buckets, multipliers 1.0 to 25.0, fallback "infinity".
    V1,
    /// 950a77c: 5 buckets, multipliers 0.1 to 2.0, fallback "2M".
    V2,
}

/// One context bucket: `[low, high)` in tokens and the reward multiplier.
struct Bucket {
    name: &'static str,
    low_tokens: f64,
    high_tokens: f64,
    multiplier: f64,
}

const fn bucket(name: &'static str, low_tokens: f64, high_tokens: f64, multiplier: f64) -> Bucket {
    Bucket {
        name,
        low_tokens,
        high_tokens,
        multiplier,
    }
}

/// v1's `BUCKETS` / `REWARD_MULTIPLIERS`, in dictionary order (the composite sums in it).
const V1_BUCKETS: [Bucket; 11] = [
    bucket("32k", 0.0, 32_000.0, 1.0),
    bucket("50k", 32_000.0, 50_000.0, 1.5),
    bucket("64k", 50_000.0, 64_000.0, 2.0),
    bucket("124k", 64_000.0, 124_000.0, 3.0),
    bucket("256k", 124_000.0, 256_000.0, 4.5),
    bucket("456k", 256_000.0, 456_000.0, 6.0),
    bucket("653k", 456_000.0, 653_000.0, 8.0),
    bucket("1m", 653_000.0, 1_000_000.0, 12.0),
    bucket("1.5m", 1_000_000.0, 1_500_000.0, 16.0),
    bucket("2m", 1_500_000.0, 2_000_000.0, 20.0),
    bucket("infinity", 2_000_000.0, f64::INFINITY, 25.0),
];

/// v2's `BUCKETS` / `REWARD_MULTIPLIERS`, in dictionary order.
const V2_BUCKETS: [Bucket; 5] = [
    bucket("32k", 0.0, 32_000.0, 0.1),
    bucket("128k", 32_000.0, 128_000.0, 0.1),
    bucket("500k", 128_000.0, 500_000.0, 1.0),
    bucket("1M", 500_000.0, 1_000_000.0, 1.5),
    bucket("2M", 1_000_000.0, 2_000_000.0, 2.0),
];

/// Datasets v2 scores with math_verify (symbolic equivalence), which is not reproduced.
const MATH_DATASETS: [&str; 2] = ["quasar_execution_v1", "quasar_execution_v3"];

/// v2's placeholder dataset whose branch never assigns a score.
const GRID_SEARCH_DATASET: &str = "grid_search";

/// EMA weight of a new reward in a bucket score (`r * 0.1 + old * 0.9`).
const EMA_NEW_WEIGHT: f32 = 0.1;
const EMA_OLD_WEIGHT: f32 = 0.9;

impl Generation {
    fn buckets(self) -> &'static [Bucket] {
        match self {
            Generation::V1 => &V1_BUCKETS,
            Generation::V2 => &V2_BUCKETS,
        }
    }

    fn mode(self) -> &'static str {
        match self {
            Generation::V1 => "validator_v1",
            Generation::V2 => "validator_v2",
        }
    }

    /// `get_bucket`: the first `[low, high)` holding the length, else the generation's
    /// fallback (v1 "infinity", which is also its last bucket; v2 "2M").
    fn bucket_index(self, context_length: f64) -> usize {
        let buckets = self.buckets();
        buckets
            .iter()
            .position(|bucket| {
                bucket.low_tokens <= context_length && context_length < bucket.high_tokens
            })
            .unwrap_or(buckets.len() - 1)
    }
}

/// The validator input (`specs/mechanism-io/README.md`, quasar validator modes).
#[derive(Debug, Deserialize)]
struct ValidatorInput {
    n: u64,
    #[serde(default)]
    tasks: Vec<Task>,
    #[serde(default)]
    chain: ChainInput,
    #[serde(default)]
    state: Option<StateInput>,
}

/// Chain hyperparameters; the defaults are those of the README's examples (1 and 1.0).
#[derive(Debug, Deserialize)]
struct ChainInput {
    #[serde(default = "default_min_allowed_weights")]
    min_allowed_weights: u64,
    #[serde(default = "default_max_weight_limit")]
    max_weight_limit: f64,
}

impl Default for ChainInput {
    fn default() -> Self {
        ChainInput {
            min_allowed_weights: default_min_allowed_weights(),
            max_weight_limit: default_max_weight_limit(),
        }
    }
}

fn default_min_allowed_weights() -> u64 {
    1
}

fn default_max_weight_limit() -> f64 {
    1.0
}

/// Optional starting state, as upstream's `load_state` restores it: bucket scores (per bucket
/// name; missing buckets start at zero), the global `scores` and the consecutive-failure
/// counts. Each per-uid vector is a list of n numbers or an object keyed by uid (missing uids
/// are 0).
#[derive(Debug, Default, Deserialize)]
struct StateInput {
    #[serde(default)]
    bucket_scores: BTreeMap<String, Value>,
    #[serde(default)]
    scores: Option<Value>,
    #[serde(default)]
    consecutive_failures: Option<Value>,
}

/// One task: its context length, dataset and gold answer, and either the miners' texts
/// (`responses`, null = no response) or their metric values (`accuracies`, null = no
/// response). Keys are uids.
#[derive(Debug, Deserialize)]
struct Task {
    context_length: f64,
    #[serde(default)]
    dataset: String,
    #[serde(default)]
    expected_output: String,
    #[serde(default)]
    all_classes: Option<Vec<String>>,
    #[serde(default)]
    responses: Option<BTreeMap<String, Option<String>>>,
    #[serde(default)]
    accuracies: Option<BTreeMap<String, Option<f64>>>,
}

/// Where a task sits in the input (`tasks[3]`), for error messages; formatted only when one
/// is made.
struct TaskAt(usize);

impl fmt::Display for TaskAt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tasks[{}]", self.0)
    }
}

/// What one queried miner returned, reduced to what scoring needs.
enum Answer<'a> {
    /// No response, or an empty text (upstream's `not response.response`).
    Missing,
    Text(&'a str),
    Accuracy(f64),
}

/// Replays a validator generation over its tasks and sets weights once at the end.
pub fn run(input: &Value, generation: Generation) -> Result<Value, MechanismError> {
    let input: ValidatorInput = crate::error::parse(input, generation.mode())?;
    if input.n == 0 || input.n > 65536 {
        return Err(MechanismError::invalid(format!(
            "n must be between 1 and 65536, got {}",
            input.n
        )));
    }
    let n = input.n as usize;
    let limit = input.chain.max_weight_limit;
    if !(0.0..=1.0).contains(&limit) {
        return Err(MechanismError::invalid(format!(
            "chain.max_weight_limit must be within [0, 1], got {limit}"
        )));
    }
    let buckets = generation.buckets();
    let State {
        mut bucket_scores,
        mut scores,
        mut failures,
    } = initial_state(input.state.as_ref(), buckets, n)?;

    let mut per_task = Vec::with_capacity(input.tasks.len());
    for (task_index, task) in input.tasks.iter().enumerate() {
        let location = TaskAt(task_index);
        require_finite(
            task.context_length,
            format_args!("{location}.context_length"),
        )?;
        if task.context_length < 0.0 {
            return Err(MechanismError::invalid(format!(
                "{location}.context_length must be >= 0, got {}",
                task.context_length
            )));
        }
        let bucket_index = generation.bucket_index(task.context_length);
        let bucket = &buckets[bucket_index];
        let answers = task_answers(task, &location, n, generation)?;

        // score_responses: failures count up, answers reset them; raw = metric * multiplier
        // as Python floats, then a float32 tensor clamped to [0, 1]. The failure penalty is
        // negative and so clamps to 0.
        let mut rewards: Vec<(u16, f32)> = Vec::with_capacity(answers.len());
        for (uid, answer) in &answers {
            let slot = usize::from(*uid);
            let metric_value = match answer {
                Answer::Missing => {
                    failures[slot] += 1.0;
                    rewards.push((*uid, 0.0));
                    continue;
                }
                // v2's placeholder branch for "grid_search" leaves `score` unbound; the
                // NameError lands in the except branch, which appends a single 0.0.
                Answer::Text(_)
                    if generation == Generation::V2 && task.dataset == GRID_SEARCH_DATASET =>
                {
                    0.0
                }
                Answer::Text(text) => metrics::score(
                    &task.dataset,
                    text,
                    &task.expected_output,
                    task.all_classes.as_deref().unwrap_or(&[]),
                )?,
                Answer::Accuracy(value) => *value,
            };
            failures[slot] = 0.0;
            let raw = metric_value * bucket.multiplier;
            rewards.push((*uid, (raw as f32).clamp(0.0, 1.0)));
        }

        // update_scores: returns at once without rewards; otherwise updates only this
        // bucket at the queried uids, then recomputes the global scores.
        if !rewards.is_empty() {
            let bucket_vector = &mut bucket_scores[bucket_index];
            for (uid, reward) in &rewards {
                let slot = usize::from(*uid);
                bucket_vector[slot] =
                    reward * EMA_NEW_WEIGHT + bucket_vector[slot] * EMA_OLD_WEIGHT;
            }
            scores = normalised_composite(&composite_of(&bucket_scores, n));
        }

        let reward_map: Map<String, Value> = rewards
            .iter()
            .map(|(uid, reward)| (uid.to_string(), json!(f64::from(*reward))))
            .collect();
        per_task.push(json!({
            "bucket": bucket.name,
            "multiplier": bucket.multiplier,
            "rewards": reward_map,
        }));
    }

    // Until a task with rewards reaches update_scores, `self.scores` is what the validator
    // started with (the state's `scores`, else zeros), whatever the bucket scores hold.
    let composite = composite_of(&bucket_scores, n);

    let raw_weights = l1_normalise(&scores);
    let processed = process_weights_for_netuid(
        &raw_weights,
        ChainLimits {
            min_allowed_weights: input.chain.min_allowed_weights,
            max_weight_limit: limit,
        },
    )?;
    let emitted = emit(&processed)?;

    let as_f64 = |values: &[f32]| -> Vec<f64> { values.iter().map(|v| f64::from(*v)).collect() };
    let bucket_output: Map<String, Value> = buckets
        .iter()
        .zip(&bucket_scores)
        .map(|(bucket, scores)| (bucket.name.to_string(), json!(as_f64(scores))))
        .collect();
    Ok(json!({
        "mode": generation.mode(),
        "per_task": per_task,
        "bucket_scores": bucket_output,
        "composite": as_f64(&composite),
        "scores": as_f64(&scores),
        "raw_weights": as_f64(&raw_weights),
        "processed": {"uids": processed.uids, "weights": processed.weights},
        "u16": {"uids": emitted.uids, "weights": emitted.weights},
        "consecutive_failures": as_f64(&failures),
    }))
}

/// The composite of update_scores: the bucket tensors added in dictionary order onto zeros
/// (float32).
fn composite_of(bucket_scores: &[Vec<f32>], n: usize) -> Vec<f32> {
    let mut composite = vec![0.0f32; n];
    for bucket_vector in bucket_scores {
        for (total, value) in composite.iter_mut().zip(bucket_vector) {
            *total += value;
        }
    }
    composite
}

/// `composite / composite.max()` when the maximum is positive, else the composite itself.
fn normalised_composite(composite: &[f32]) -> Vec<f32> {
    let maximum = composite.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if maximum > 0.0 {
        composite.iter().map(|value| value / maximum).collect()
    } else {
        composite.to_vec()
    }
}

/// The restored state: bucket scores (one float32 vector per bucket, in bucket order), the
/// global scores and the failure counts.
struct State {
    bucket_scores: Vec<Vec<f32>>,
    scores: Vec<f32>,
    failures: Vec<f32>,
}

fn initial_state(
    state: Option<&StateInput>,
    buckets: &[Bucket],
    n: usize,
) -> Result<State, MechanismError> {
    let mut restored = State {
        bucket_scores: vec![vec![0.0f32; n]; buckets.len()],
        scores: vec![0.0f32; n],
        failures: vec![0.0f32; n],
    };
    let Some(state) = state else {
        return Ok(restored);
    };
    for (name, values) in &state.bucket_scores {
        let Some(index) = buckets.iter().position(|bucket| bucket.name == name) else {
            return Err(MechanismError::invalid(format!(
                "state.bucket_scores has unknown bucket `{name}`; expected one of {}",
                buckets
                    .iter()
                    .map(|bucket| bucket.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        };
        restored.bucket_scores[index] =
            per_uid_vector(values, n, &format!("state.bucket_scores.{name}"), false)?;
    }
    if let Some(scores) = &state.scores {
        restored.scores = per_uid_vector(scores, n, "state.scores", false)?;
    }
    if let Some(failures) = &state.consecutive_failures {
        restored.failures = per_uid_vector(failures, n, "state.consecutive_failures", true)?;
    }
    Ok(restored)
}

/// Reads a per-uid float32 vector given as a list of n numbers or an object keyed by uid
/// (`null` = all zero); `non_negative` refuses negative values (failure counts).
fn per_uid_vector(
    value: &Value,
    n: usize,
    what: &str,
    non_negative: bool,
) -> Result<Vec<f32>, MechanismError> {
    let number = |item: &Value, place: &dyn fmt::Display| -> Result<f32, MechanismError> {
        match item.as_f64() {
            Some(number) if number.is_finite() && (!non_negative || number >= 0.0) => {
                Ok(number as f32)
            }
            _ => Err(MechanismError::invalid(format!(
                "{place} must be a finite{} number, got {item}",
                if non_negative { " non-negative" } else { "" }
            ))),
        }
    };
    let mut vector = vec![0.0f32; n];
    match value {
        Value::Null => {}
        Value::Array(items) => {
            if items.len() != n {
                return Err(MechanismError::invalid(format!(
                    "{what} has {} values, expected n = {n}",
                    items.len()
                )));
            }
            for (slot, item) in items.iter().enumerate() {
                vector[slot] = number(item, &format_args!("{what}[{slot}]"))?;
            }
        }
        Value::Object(entries) => {
            for (key, item) in entries {
                let uid = parse_uid(key, n, what)?;
                vector[usize::from(uid)] = number(item, &format_args!("{what}.{key}"))?;
            }
        }
        _ => {
            return Err(MechanismError::invalid(format!(
                "{what} must be a list of n numbers or an object keyed by uid"
            )));
        }
    }
    Ok(vector)
}

/// A uid key: a decimal integer below n.
fn parse_uid(key: &str, n: usize, what: impl fmt::Display) -> Result<u16, MechanismError> {
    match key.parse::<u16>() {
        Ok(uid) if usize::from(uid) < n => Ok(uid),
        _ => Err(MechanismError::invalid(format!(
            "{what}: key `{key}` is not a uid in 0..{n}"
        ))),
    }
}

/// The queried miners of a task and what each returned, in uid order (the order does not
/// matter: each uid's reward depends on its own answer only and the EMA touches each uid
/// once per task).
fn task_answers<'a>(
    task: &'a Task,
    location: &TaskAt,
    n: usize,
    generation: Generation,
) -> Result<Vec<(u16, Answer<'a>)>, MechanismError> {
    let mut answers = Vec::new();
    match (&task.responses, &task.accuracies) {
        (Some(_), Some(_)) => {
            return Err(MechanismError::invalid(format!(
                "{location} gives both `responses` and `accuracies`; give one"
            )));
        }
        (Some(responses), None) => {
            for (key, response) in responses {
                let uid = parse_uid(key, n, format_args!("{location}.responses"))?;
                let answer = match response.as_deref() {
                    None | Some("") => Answer::Missing,
                    Some(text) => {
                        if generation == Generation::V2
                            && MATH_DATASETS.contains(&task.dataset.as_str())
                        {
                            return Err(MechanismError::invalid(format!(
                                "{location}: dataset `{}` is scored with math_verify, which is \
                                 not implemented; give `accuracies` instead of `responses`",
                                task.dataset
                            )));
                        }
                        Answer::Text(text)
                    }
                };
                answers.push((uid, answer));
            }
        }
        (None, Some(accuracies)) => {
            for (key, accuracy) in accuracies {
                let uid = parse_uid(key, n, format_args!("{location}.accuracies"))?;
                let answer = match accuracy {
                    None => Answer::Missing,
                    Some(value) => {
                        require_finite(*value, format_args!("{location}.accuracies.{key}"))?;
                        Answer::Accuracy(*value)
                    }
                };
                answers.push((uid, answer));
            }
        }
        (None, None) => {}
    }
    answers.sort_by_key(|(uid, _)| *uid);
    if answers.windows(2).any(|pair| pair[0].0 == pair[1].0) {
        return Err(MechanismError::invalid(format!(
            "{location} names the same uid twice (e.g. \"07\" and \"7\")"
        )));
    }
    Ok(answers)
}
