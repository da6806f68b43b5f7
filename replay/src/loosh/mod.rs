//! loosh: the Loosh inference validator (`Loosh-ai/loosh-inference-validator` @ aa9b6aa0,
//! v1.2.8), specs/scoring.md section 2.
//!
//! An input holds an `evaluate` section (one challenge round: quality gate, LOF outliers,
//! average-linkage clustering, consensus threshold, individual scores and per-challenge
//! emissions), a `weights` section (EMA over logged emissions, freshness gate, sybil penalty,
//! normalisation and the chain's u16 step), or both; the output holds the same sections.
//!
//! Upstream leans on numpy, scikit-learn and scipy. Each of those steps is re-implemented here
//! in the order of operations those libraries use (numpy's pairwise sums, scikit-learn's
//! `LocalOutlierFactor`, scipy's nearest-neighbour-chain linkage and scikit-learn's heap-ordered
//! tree cut), so that decisions at thresholds and ties fall the same way.
//!
//! Known differences from upstream, all below the comparison tolerance or outside its inputs:
//! - Dot products and norms are summed in index order; numpy/BLAS may group them differently,
//!   so cosines can differ in the last bit (a threshold decision could only flip on an exact
//!   tie at the last bit).
//! - LOF neighbours at equal distance are taken lower index first.
//! - JSON objects reach this crate in key order (serde_json without `preserve_order`), so the
//!   EMA's first-sighting order inside one evaluation is hotkey order; it only matters for
//!   soft-tier sybil ties.
//! - Where upstream raises inside `evaluate_responses` (response times summing to 0, outlier
//!   detection keeping nobody) and returns `{}`, the outcome is status `failed` with no
//!   emissions rather than a mechanism error, because that is upstream's defined result.
//! - Inputs upstream could not produce are refused: repeated uids or hotkeys, negative response
//!   times or emissions, `quality_scores` of the wrong length, unknown fields.

mod clustering;
mod entity;
mod evaluate;
mod evaluate_input;
mod fields;
mod outliers;
mod quality;
mod similarity;
mod weights;

pub use clustering::{average_linkage_labels, python_heap_cut};
pub use evaluate::{EvaluateOutcome, EvaluateStatus, evaluate};
pub use evaluate_input::{EvaluateConfig, EvaluateInput, NodeEntry, Response};
pub use outliers::local_outlier_factors;
pub use quality::{coherence, information_density, specificity};
pub use weights::{Mode, WeightsInput, WeightsOutcome, WeightsStatus, set_weights};

use serde_json::{Map, Value};

use crate::MechanismError;

/// Top-level keys a loosh input may hold.
const SECTION_KEYS: [&str; 2] = ["evaluate", "weights"];

/// Runs whichever sections the input holds and returns an output with the same sections.
pub fn run(input: &Value) -> Result<Value, MechanismError> {
    let Some(object) = input.as_object() else {
        return Err(MechanismError::invalid(
            "the loosh input must be a JSON object",
        ));
    };
    if let Some(unknown) = object
        .keys()
        .find(|key| !SECTION_KEYS.contains(&key.as_str()))
    {
        return Err(MechanismError::invalid(format!(
            "unknown top-level key `{unknown}`; a loosh input holds `evaluate` and/or `weights`"
        )));
    }
    let mut output = Map::new();
    let mut any_section = false;
    if let Some(section) = object.get("evaluate") {
        any_section = true;
        let parsed = EvaluateInput::from_json(section)?;
        output.insert("evaluate".to_string(), evaluate(&parsed)?.to_json());
    }
    if let Some(section) = object.get("weights") {
        any_section = true;
        let parsed = WeightsInput::from_json(section)?;
        output.insert("weights".to_string(), set_weights(&parsed)?.to_json());
    }
    if !any_section {
        return Err(MechanismError::invalid(
            "the loosh input holds neither an `evaluate` nor a `weights` section",
        ));
    }
    Ok(Value::Object(output))
}
