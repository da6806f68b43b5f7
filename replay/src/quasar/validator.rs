//! The long-context validator loops: v1 (neurons/validator.py @ 3864f7d, 11 buckets) and v2
//! (@ 950a77c, 5 buckets), specs/scoring.md 3.2 and 3.3, followed by the template's weight
//! pipeline (3.6).
//!
//! Upstream keeps every score in float32 torch tensors; this module stores `f32` wherever a
//! tensor would and computes Python-float steps (metric times multiplier) in `f64`.

use std::collections::BTreeMap;

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

/// Optional starting state: bucket scores (a list of n values per bucket name; missing
/// buckets start at zero) and consecutive-failure counts (a list of n values, or an object
/// keyed by uid).
#[derive(Debug, Default, Deserialize)]
struct StateInput {
    #[serde(default)]
    bucket_scores: BTreeMap<String, Vec<f64>>,
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
    let (mut bucket_scores, mut failures) = initial_state(input.state.as_ref(), buckets, n)?;

    let mut per_task = Vec::with_capacity(input.tasks.len());
    for (task_index, task) in input.tasks.iter().enumerate() {
        let where_ = format!("tasks[{task_index}]");
        require_finite(task.context_length, &format!("{where_}.context_length"))?;
        if task.context_length < 0.0 {
            return Err(MechanismError::invalid(format!(
                "{where_}.context_length must be >= 0, got {}",
                task.context_length
            )));
        }
        let bucket_index = generation.bucket_index(task.context_length);
        let bucket = &buckets[bucket_index];
        let answers = task_answers(task, &where_, n, generation)?;

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

        // update_scores: only this bucket, only the queried uids; skipped without rewards.
        let scores = &mut bucket_scores[bucket_index];
        for (uid, reward) in &rewards {
            let slot = usize::from(*uid);
            scores[slot] = reward * EMA_NEW_WEIGHT + scores[slot] * EMA_OLD_WEIGHT;
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

    // Composite: the bucket tensors added in dictionary order onto zeros, then divided by
    // the maximum when it is positive. Computed once from the final bucket scores, which is
    // what the last update_scores call leaves in `self.scores`.
    let mut composite = vec![0.0f32; n];
    for scores in &bucket_scores {
        for (total, value) in composite.iter_mut().zip(scores) {
            *total += value;
        }
    }
    let maximum = composite.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let scores: Vec<f32> = if maximum > 0.0 {
        composite.iter().map(|value| value / maximum).collect()
    } else {
        composite.clone()
    };

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

/// Bucket scores (one float32 vector per bucket, in bucket order) and failure counts from the
/// optional input state.
fn initial_state(
    state: Option<&StateInput>,
    buckets: &[Bucket],
    n: usize,
) -> Result<(Vec<Vec<f32>>, Vec<f32>), MechanismError> {
    let mut bucket_scores = vec![vec![0.0f32; n]; buckets.len()];
    let mut failures = vec![0.0f32; n];
    let Some(state) = state else {
        return Ok((bucket_scores, failures));
    };
    for (name, values) in &state.bucket_scores {
        let Some(index) = buckets.iter().position(|bucket| bucket.name == name) else {
            return Err(MechanismError::invalid(format!(
                "state.bucket_scores has unknown bucket `{name}`; expected one of {}",
                buckets
                    .iter()
                    .map(|b| b.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        };
        if values.len() != n {
            return Err(MechanismError::invalid(format!(
                "state.bucket_scores.{name} has {} values, expected n = {n}",
                values.len()
            )));
        }
        for (slot, value) in values.iter().enumerate() {
            require_finite(*value, &format!("state.bucket_scores.{name}[{slot}]"))?;
            bucket_scores[index][slot] = *value as f32;
        }
    }
    match &state.consecutive_failures {
        None | Some(Value::Null) => {}
        Some(Value::Array(values)) => {
            if values.len() != n {
                return Err(MechanismError::invalid(format!(
                    "state.consecutive_failures has {} values, expected n = {n}",
                    values.len()
                )));
            }
            for (slot, value) in values.iter().enumerate() {
                failures[slot] =
                    failure_count(value, &format!("state.consecutive_failures[{slot}]"))?;
            }
        }
        Some(Value::Object(entries)) => {
            for (key, value) in entries {
                let uid = parse_uid(key, n, "state.consecutive_failures")?;
                failures[usize::from(uid)] =
                    failure_count(value, &format!("state.consecutive_failures.{key}"))?;
            }
        }
        Some(_) => {
            return Err(MechanismError::invalid(
                "state.consecutive_failures must be a list of n counts or an object keyed by uid",
            ));
        }
    }
    Ok((bucket_scores, failures))
}

fn failure_count(value: &Value, what: &str) -> Result<f32, MechanismError> {
    match value.as_f64() {
        Some(count) if count.is_finite() && count >= 0.0 => Ok(count as f32),
        _ => Err(MechanismError::invalid(format!(
            "{what} must be a non-negative number, got {value}"
        ))),
    }
}

/// A uid key: a decimal integer below n.
fn parse_uid(key: &str, n: usize, what: &str) -> Result<u16, MechanismError> {
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
    where_: &str,
    n: usize,
    generation: Generation,
) -> Result<Vec<(u16, Answer<'a>)>, MechanismError> {
    let mut answers = Vec::new();
    match (&task.responses, &task.accuracies) {
        (Some(_), Some(_)) => {
            return Err(MechanismError::invalid(format!(
                "{where_} gives both `responses` and `accuracies`; give one"
            )));
        }
        (Some(responses), None) => {
            for (key, response) in responses {
                let uid = parse_uid(key, n, &format!("{where_}.responses"))?;
                let answer = match response.as_deref() {
                    None | Some("") => Answer::Missing,
                    Some(text) => {
                        if generation == Generation::V2
                            && MATH_DATASETS.contains(&task.dataset.as_str())
                        {
                            return Err(MechanismError::invalid(format!(
                                "{where_}: dataset `{}` is scored with math_verify, which is \
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
                let uid = parse_uid(key, n, &format!("{where_}.accuracies"))?;
                let answer = match accuracy {
                    None => Answer::Missing,
                    Some(value) => {
                        require_finite(*value, &format!("{where_}.accuracies.{key}"))?;
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
            "{where_} names the same uid twice (e.g. \"07\" and \"7\")"
        )));
    }
    Ok(answers)
}
