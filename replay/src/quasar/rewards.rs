//! The stateless per-item QUASAR rewards: the README design (3.1), the validator API's
//! `calculate_score` (3.4) and the HFA composite of `reward.py` (3.5).

use serde::Deserialize;

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
    require_finite(item.accuracy, &format!("items[{index}].accuracy"))?;
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
    require_finite(item.score, &format!("items[{index}].score"))?;
    require_finite(item.context_length, &format!("items[{index}].context_length"))?;
    let clamped = item.score.min(1.0).max(0.0);
    let multiplier = API_BUCKETS
        .iter()
        .find(|(low, high, _)| *low <= item.context_length && item.context_length < *high)
        .map_or(API_FALLBACK_MULTIPLIER, |(_, _, multiplier)| *multiplier);
    Ok(clamped * multiplier)
}

/// The task half of an HFA item; missing fields take upstream's `.get` defaults.
#[derive(Debug, Deserialize)]
pub struct HfaTask {
    #[serde(rename = "type", default = "general_task_type")]
    pub task_type: String,
    #[serde(default = "default_context_length")]
    pub context_length: f64,
    #[serde(default = "default_scale_factor")]
    pub scale_factor: f64,
}

fn general_task_type() -> String {
    "general".to_string()
}

/// `task.get('context_length', 1000)`.
fn default_context_length() -> f64 {
    1000.0
}

/// `task.get('scale_factor', 1)`.
fn default_scale_factor() -> f64 {
    1.0
}

/// The miner's HFA metrics; each missing one is 0.0 as upstream's `.get(..., 0.0)`.
#[derive(Debug, Default, Deserialize)]
pub struct HfaMetrics {
    #[serde(default)]
    pub memory_retention_score: f64,
    #[serde(default)]
    pub position_understanding_score: f64,
    #[serde(default)]
    pub coherence_score: f64,
    #[serde(default)]
    pub tokens_per_second: f64,
    #[serde(default)]
    pub scaling_efficiency: f64,
}

/// One HFA item; `metrics: null` (no response) scores 0.
#[derive(Debug, Deserialize)]
pub struct HfaItem {
    pub task: HfaTask,
    pub metrics: Option<HfaMetrics>,
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

/// `reward_infinite_context_response` (3.5), summed in upstream's component order (Python's
/// `sum` starts at 0 and adds left to right), then the task-type bonus and the clip to [0, 1].
pub fn hfa_reward(item: &HfaItem, index: usize) -> Result<f64, MechanismError> {
    let Some(metrics) = &item.metrics else {
        return Ok(0.0);
    };
    let task = &item.task;
    for (value, name) in [
        (metrics.memory_retention_score, "memory_retention_score"),
        (metrics.position_understanding_score, "position_understanding_score"),
        (metrics.coherence_score, "coherence_score"),
        (metrics.tokens_per_second, "tokens_per_second"),
        (metrics.scaling_efficiency, "scaling_efficiency"),
        (task.context_length, "task.context_length"),
        (task.scale_factor, "task.scale_factor"),
    ] {
        require_finite(value, &format!("items[{index}].{name}"))?;
    }
    let memory = metrics.memory_retention_score;
    let memory_reward = if memory > 0.8 {
        libm::pow(memory, 2.0)
    } else {
        memory * 0.5
    };
    let position_reward = (metrics.position_understanding_score * 1.2).min(1.0);
    let coherence_factor = (1.0 - (task.context_length / HFA_COHERENCE_LENGTH_TOKENS)).max(0.8);
    let coherence_reward = metrics.coherence_score * coherence_factor;
    let efficiency = (metrics.tokens_per_second / HFA_FULL_EFFICIENCY_TOKENS_PER_SECOND).min(1.0);
    let scaling_reward = if task.scale_factor > 1.0 {
        metrics.scaling_efficiency * (1.0 + (0.1 * libm::log(task.scale_factor)))
    } else {
        metrics.scaling_efficiency
    };
    let components = [
        memory_reward * HFA_MEMORY_WEIGHT,
        position_reward * HFA_POSITION_WEIGHT,
        coherence_reward * HFA_COHERENCE_WEIGHT,
        efficiency * HFA_EFFICIENCY_WEIGHT,
        scaling_reward.min(1.0) * HFA_SCALING_WEIGHT,
    ];
    let mut reward = 0.0;
    for component in components {
        reward += component;
    }
    if task.task_type == "memory_retention" && memory > 0.95 {
        reward *= 1.1;
    } else if task.task_type == "scaling_test" && metrics.scaling_efficiency > 0.9 {
        reward *= 1.15;
    } else if task.task_type == "pattern_recognition" && metrics.coherence_score > 0.9 {
        reward *= 1.05;
    }
    Ok(reward.max(0.0).min(1.0))
}

/// Refuses NaN and infinite inputs, naming the field.
pub fn require_finite(value: f64, what: &str) -> Result<(), MechanismError> {
    if value.is_finite() {
        Ok(())
    } else {
        Err(MechanismError::invalid(format!(
            "{what} must be a finite number, got {value}"
        )))
    }
}
