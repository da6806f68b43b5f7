//! `scripts/update_reputation.py`: the job that moves each miner's reputation towards 1 when
//! its score beats the baseline and towards 0 when it does not (specs/scoring.md, section
//! 4.1, last paragraph). Python floats, so float64 throughout.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::{optional_field, required_field};
use crate::MechanismError;

/// EMA step of the reputation (`ALPHA`).
pub const REPUTATION_STEP: f64 = 0.005;
/// Reputation of a hotkey seen for the first time.
pub const INITIAL_REPUTATION: f64 = 0.5;

/// The fields of a reputation input (specs/mechanism-io/README.md).
struct ReputationInput {
    reputations: BTreeMap<String, f64>,
    active_hotkeys: Vec<String>,
    scores: BTreeMap<String, Option<f64>>,
    baseline: Option<f64>,
}

impl ReputationInput {
    /// Reads every field on its own so that an error names the field it is about.
    fn read(input: &Value) -> Result<Self, MechanismError> {
        Ok(ReputationInput {
            reputations: optional_field(input, "reputations")?.unwrap_or_default(),
            active_hotkeys: required_field(input, "active_hotkeys")?,
            scores: optional_field(input, "scores")?.unwrap_or_default(),
            baseline: optional_field(input, "baseline")?,
        })
    }
}

/// Runs one reputation update on a `{"mode": "reputation", ...}` input.
///
/// Returns `{"reputations": {hotkey: value}}` for the active hotkeys (deregistered ones are
/// deleted), plus the lists of `new` and `deregistered` hotkeys. A hotkey whose score is
/// missing or `null` keeps its reputation; a missing or `null` baseline is 0, as the script's
/// `get_latest_baseline_score` returns when the table has none.
pub fn run_reputation(input: &Value) -> Result<Value, MechanismError> {
    let input = ReputationInput::read(input)?;
    for (hotkey, reputation) in &input.reputations {
        if !reputation.is_finite() {
            return Err(MechanismError::invalid(format!(
                "reputations[{hotkey}] is not a finite number"
            )));
        }
    }
    for (hotkey, score) in &input.scores {
        if let Some(score) = score
            && !score.is_finite()
        {
            return Err(MechanismError::invalid(format!(
                "scores[{hotkey}] is not a finite number"
            )));
        }
    }
    let baseline = input.baseline.unwrap_or(0.0);
    if !baseline.is_finite() {
        return Err(MechanismError::invalid("baseline is not a finite number"));
    }

    let active: BTreeSet<&str> = input.active_hotkeys.iter().map(String::as_str).collect();
    let mut updated = BTreeMap::new();
    let mut new_hotkeys = Vec::new();
    for &hotkey in &active {
        let old = match input.reputations.get(hotkey) {
            Some(&reputation) => reputation,
            None => {
                new_hotkeys.push(hotkey);
                INITIAL_REPUTATION
            }
        };
        let reputation = match input.scores.get(hotkey).copied().flatten() {
            // Active but unscored: left as it is.
            None => old,
            Some(score) => {
                let performance = if score > baseline { 1.0 } else { 0.0 };
                (1.0 - REPUTATION_STEP) * old + REPUTATION_STEP * performance
            }
        };
        updated.insert(hotkey, reputation);
    }
    let deregistered: Vec<&str> = input
        .reputations
        .keys()
        .map(String::as_str)
        .filter(|hotkey| !active.contains(hotkey))
        .collect();
    Ok(json!({
        "status": "ok",
        "baseline": baseline,
        "reputations": updated,
        "new": new_hotkeys,
        "deregistered": deregistered,
    }))
}
