//! QUASAR long-context subnet (`troy12x/QUASAR-TAO`), specs/scoring.md section 3.
//!
//! Modes:
//! - `metric`: one LongBench metric (3.7) on a prediction and its ground truth;
//! - `readme`: the README design's capped multiplier (3.1);
//! - `api_score`: the validator API's clamp-and-multiply (3.4);
//! - `hfa`: the HFA composite reward of `reward.py` (3.5);
//! - `validator_v1` / `validator_v2`: the validator loops (3.2, 3.3) with the template's
//!   float32 weight pipeline (3.6).
//!
//! Deviations from upstream, each deliberate:
//! - Chinese datasets (multifieldqa_zh, dureader, vcsum, passage_retrieval_zh) are refused:
//!   jieba's segmentation is not reproduced.
//! - v2's math datasets (`quasar_execution_v1`/`v3`) need math_verify's symbolic check, which
//!   is not reproduced; such tasks must come with `accuracies`.
//! - v1 at 3864f7d crashes in `set_weights` (torch tensor passed to numpy code); the fixed path
//!   of 950a77c (convert to numpy first) is replayed, as the spec's reference does.
//! - v2 at 950a77c appends a second reward per miner for non-math datasets (unbound
//!   `method`), which then fails `update_scores`; the intended one reward per miner is used.
//! - `\d` in the count and retrieval metrics matches ASCII digits only (Python also matches
//!   other Unicode decimal digits), and `\w` for the article regex is approximated by
//!   `char::is_alphanumeric` or `_`.
//! - The rouge package's RecursionError on sentence pairs over about 1000 words is not
//!   emulated.
//!
//! Choices where the spec leaves room (upstream pins none of these versions):
//! - fuzz.ratio follows a current python-Levenshtein (`1 - indel_distance / lensum`), which
//!   rounds some exact halves differently from `2 * LCS / lensum`.
//! - numpy scalar promotion follows NumPy 2 (NEP 50) inside `normalize_max_weight`.
//! - The validators' global scores change only when a task with rewards reaches
//!   `update_scores`; before that they are the state's `scores` (or zeros).
//! - Chain defaults when `chain` is absent: `min_allowed_weights` 1, `max_weight_limit` 1.0.

mod metrics;
mod rewards;
mod validator;
mod weights;

pub use metrics::{Metric, metric_for_dataset, score as metric_score};
pub use rewards::{ApiItem, HfaItem, ReadmeItem, api_reward, hfa_reward, readme_reward};
pub use validator::Generation;
pub use weights::{
    ChainLimits, Processed, emit as emit_processed, l1_normalise, normalize_max_weight_f32,
    normalize_max_weight_f64, process_weights_for_netuid,
};

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::MechanismError;
use crate::error::parse;

/// Runs the QUASAR mode named by the input's `mode`.
pub fn run(input: &Value) -> Result<Value, MechanismError> {
    let mode = input
        .get("mode")
        .and_then(Value::as_str)
        .ok_or_else(|| MechanismError::invalid("`mode` must be a string"))?;
    match mode {
        "metric" => run_metric(input),
        "readme" => run_items::<ReadmeItem>(input, "readme", readme_reward),
        "api_score" => run_items::<ApiItem>(input, "api_score", api_reward),
        "hfa" => run_items::<HfaItem>(input, "hfa", hfa_reward),
        "validator_v1" => validator::run(input, Generation::V1),
        "validator_v2" => validator::run(input, Generation::V2),
        other => Err(MechanismError::invalid(format!(
            "unknown quasar mode `{other}`; expected metric, readme, api_score, hfa, \
             validator_v1 or validator_v2"
        ))),
    }
}

/// The `metric` mode's input.
#[derive(Debug, Deserialize)]
struct MetricInput {
    dataset: String,
    prediction: String,
    ground_truth: String,
    #[serde(default)]
    all_classes: Option<Vec<String>>,
}

fn run_metric(input: &Value) -> Result<Value, MechanismError> {
    let input: MetricInput = parse(input, "metric")?;
    let all_classes = input.all_classes.unwrap_or_default();
    let score = metric_score(
        &input.dataset,
        &input.prediction,
        &input.ground_truth,
        &all_classes,
    )?;
    Ok(json!({"score": score}))
}

/// The shape shared by the per-item modes: `{"items": [...]}`.
#[derive(Debug, Deserialize)]
#[serde(bound = "Item: DeserializeOwned")]
struct ItemsInput<Item> {
    items: Vec<Item>,
}

/// Scores every item independently and returns the rewards in input order.
fn run_items<Item: DeserializeOwned>(
    input: &Value,
    mode: &str,
    reward: fn(&Item, usize) -> Result<f64, MechanismError>,
) -> Result<Value, MechanismError> {
    let input: ItemsInput<Item> = parse(input, mode)?;
    let rewards = input
        .items
        .iter()
        .enumerate()
        .map(|(index, item)| reward(item, index))
        .collect::<Result<Vec<f64>, _>>()?;
    Ok(json!({"mode": mode, "rewards": rewards}))
}
