//! The stateless per-item QUASAR rewards: the README design (3.1), the validator API's
//! `calculate_score` (3.4) and the HFA composite of `reward.py` (3.5).

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::MechanismError;

/// README multipliers by bucket name (3.1); the README gives no bucket boundaries.
const README_MULTIPLIERS: [(&str, f64); 5] = [
    ("32k", 1.0),
    ("124k", 1.2),
    ("512k", 1.5),
    ("1.5m", 1.8),
    ("2m", 2.0),
];

/// One README item: a metric accuracy and the bucket it was earned in.
#[derive(Debug, Deserialize)]
pub struct ReadmeItem {
    pub accuracy: f64,
    pub bucket: String,
}

/// README design: `min(accuracy * multiplier, 1.0)`.
pub fn readme_reward(item: &ReadmeItem, index: usize) -> Result<f64, MechanismError> {
    require_finite(item.accuracy, format_args!("items[{index}].accuracy"))?;
    let Some((_, multiplier)) = README_MULTIPLIERS
        .iter()
        .find(|(name, _)| *name == item.bucket)
    else {
        return Err(MechanismError::invalid(format!(
            "items[{index}].bucket `{}` is not a README bucket (32k, 124k, 512k, 1.5m, 2m)",
            item.bucket
        )));
    };
    Ok((item.accuracy * multiplier).min(1.0))
}

/// One API item: the metric value and the task's context length.
#[derive(Debug, Deserialize)]
pub struct ApiItem {
    pub score: f64,
    pub context_length: f64,
}

/// The validator API's buckets and multipliers (`validator_api/scoring.py`, the same table as
/// validator v2); a length outside every bucket falls to "infinity", which is not in the
/// table, so its multiplier is the `.get` default 1.0.
const API_BUCKETS: [(f64, f64, f64); 5] = [
    (0.0, 32_000.0, 0.1),
    (32_000.0, 128_000.0, 0.1),
    (128_000.0, 500_000.0, 1.0),
    (500_000.0, 1_000_000.0, 1.5),
    (1_000_000.0, 2_000_000.0, 2.0),
];

/// Multiplier for lengths outside every API bucket.
const API_FALLBACK_MULTIPLIER: f64 = 1.0;

/// `calculate_score` after the metric: clamp the score to [0, 1], multiply by the bucket's
/// multiplier; no upper cap afterwards.
pub fn api_reward(item: &ApiItem, index: usize) -> Result<f64, MechanismError> {
    require_finite(item.score, format_args!("items[{index}].score"))?;
    require_finite(
        item.context_length,
        format_args!("items[{index}].context_length"),
    )?;
    let clamped = item.score.clamp(0.0, 1.0);
    let multiplier = API_BUCKETS
        .iter()
        .find(|(low, high, _)| *low <= item.context_length && item.context_length < *high)
        .map_or(API_FALLBACK_MULTIPLIER, |(_, _, multiplier)| *multiplier);
    Ok(clamped * multiplier)
}

/// One HFA item: the task (`type`, `context_length`, `scale_factor`) and the miner's metrics
/// (`null` or absent = no response). Both are read the way upstream's `dict.get` reads them,
/// so they stay JSON values here.
#[derive(Debug, Deserialize)]
pub struct HfaItem {
    pub task: Map<String, Value>,
    #[serde(default)]
    pub metrics: Option<Value>,
}

/// Component weights of the HFA composite, in the order upstream sums them.
const HFA_MEMORY_WEIGHT: f64 = 0.35;
const HFA_POSITION_WEIGHT: f64 = 0.25;
const HFA_COHERENCE_WEIGHT: f64 = 0.20;
const HFA_EFFICIENCY_WEIGHT: f64 = 0.10;
const HFA_SCALING_WEIGHT: f64 = 0.10;
/// Tokens per second that earn the full efficiency component.
const HFA_FULL_EFFICIENCY_TOKENS_PER_SECOND: f64 = 1000.0;
/// Context length over which the coherence factor falls by 1.
const HFA_COHERENCE_LENGTH_TOKENS: f64 = 100_000.0;
/// `task.get('context_length', 1000)`.
const HFA_DEFAULT_CONTEXT_LENGTH_TOKENS: f64 = 1000.0;
/// `task.get('scale_factor', 1)`.
const HFA_DEFAULT_SCALE_FACTOR: f64 = 1.0;

/// Why upstream's `try` block would end in its `except` branch (reward 0).
struct UpstreamException;

/// Reads a number the way Python arithmetic would see `dict.get(key, default)`: an absent key
/// gives the default, booleans count as 1 and 0 (Python's `bool` is an `int`), and anything
/// else (null, a string, a list) makes the first comparison or product raise.
fn python_number(
    object: &Map<String, Value>,
    key: &str,
    default: f64,
) -> Result<f64, UpstreamException> {
    match object.get(key) {
        None => Ok(default),
        Some(Value::Number(number)) => number.as_f64().ok_or(UpstreamException),
        Some(Value::Bool(flag)) => Ok(if *flag { 1.0 } else { 0.0 }),
        Some(_) => Err(UpstreamException),
    }
}

/// Python's `min(a, b)`: `b` only when `b < a` (so a NaN `b` yields `a`).
fn python_min(first: f64, second: f64) -> f64 {
    if second < first { second } else { first }
}

/// Python's `max(a, b)`: `b` only when `b > a`.
fn python_max(first: f64, second: f64) -> f64 {
    if second > first { second } else { first }
}

/// `reward_infinite_context_response` (3.5), summed in upstream's component order (Python's
/// `sum` starts at 0 and adds left to right), then the task-type bonus and the clip to [0, 1].
/// No response gives 0, and so does every input on which upstream's `try` block raises (a
/// non-numeric metric or task field, `m ** 2` overflowing): its `except` returns 0.0.
pub fn hfa_reward(item: &HfaItem, _index: usize) -> Result<f64, MechanismError> {
    let metrics = match &item.metrics {
        None | Some(Value::Null) => return Ok(0.0),
        Some(Value::Object(metrics)) => metrics.clone(),
        // `metrics = response if isinstance(response, dict) else {}`.
        Some(_) => Map::new(),
    };
    Ok(hfa_composite(&item.task, &metrics).unwrap_or(0.0))
}

fn hfa_composite(
    task: &Map<String, Value>,
    metrics: &Map<String, Value>,
) -> Result<f64, UpstreamException> {
    let memory = python_number(metrics, "memory_retention_score", 0.0)?;
    let memory_reward = if memory > 0.8 {
        let squared = libm::pow(memory, 2.0);
        // math.pow raises OverflowError instead of returning infinity.
        if squared.is_infinite() {
            return Err(UpstreamException);
        }
        squared
    } else {
        memory * 0.5
    };
    let position = python_number(metrics, "position_understanding_score", 0.0)?;
    let position_reward = python_min(1.0, position * 1.2);
    let coherence = python_number(metrics, "coherence_score", 0.0)?;
    let context_length = python_number(task, "context_length", HFA_DEFAULT_CONTEXT_LENGTH_TOKENS)?;
    let coherence_factor = python_max(0.8, 1.0 - (context_length / HFA_COHERENCE_LENGTH_TOKENS));
    let coherence_reward = coherence * coherence_factor;
    let tokens_per_second = python_number(metrics, "tokens_per_second", 0.0)?;
    let efficiency = python_min(
        1.0,
        tokens_per_second / HFA_FULL_EFFICIENCY_TOKENS_PER_SECOND,
    );
    let scaling = python_number(metrics, "scaling_efficiency", 0.0)?;
    let scale_factor = python_number(task, "scale_factor", HFA_DEFAULT_SCALE_FACTOR)?;
    let scaling_reward = if scale_factor > 1.0 {
        scaling * (1.0 + (0.1 * libm::log(scale_factor)))
    } else {
        scaling
    };
    let components = [
        memory_reward * HFA_MEMORY_WEIGHT,
        position_reward * HFA_POSITION_WEIGHT,
        coherence_reward * HFA_COHERENCE_WEIGHT,
        efficiency * HFA_EFFICIENCY_WEIGHT,
        python_min(1.0, scaling_reward) * HFA_SCALING_WEIGHT,
    ];
    let mut reward = 0.0;
    for component in components {
        reward += component;
    }
    // A non-string `type` only fails the equality tests, as in Python.
    let task_type = task
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("general");
    if task_type == "memory_retention" && memory > 0.95 {
        reward *= 1.1;
    } else if task_type == "scaling_test" && scaling > 0.9 {
        reward *= 1.15;
    } else if task_type == "pattern_recognition" && coherence > 0.9 {
        reward *= 1.05;
    }
    Ok(python_min(1.0, python_max(0.0, reward)))
}

/// Refuses NaN and infinite inputs, naming the field.
/// `what` names the value in the error; it is formatted only when the value is refused.
pub fn require_finite(value: f64, what: impl std::fmt::Display) -> Result<(), MechanismError> {
    if value.is_finite() {
        Ok(())
    } else {
        Err(MechanismError::invalid(format!(
            "{what} must be a finite number, got {value}"
        )))
    }
}
