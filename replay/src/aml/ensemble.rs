//! The design-doc aggregation (docs/agent/2025-10-25/claude/*.md in chainswarm/risk-assesment
//! @ 8c6e7a50): immediate scores, a rolling performance, `WeightedEnsembleAggregator` weights
//! and the canonical per-alert ensemble score. No implementation of these exists upstream;
//! the doc's Python is followed step by step (plain Python sums, dict iteration order).

use std::collections::{BTreeMap, BTreeSet};

use crate::MechanismError;

/// Share of the integrity score in the design's immediate score.
const IMMEDIATE_TIER1_WEIGHT: f64 = 0.2;
/// Share of the behavioural score in the design's immediate score.
const IMMEDIATE_TIER2_WEIGHT: f64 = 0.3;

/// `0.2 · tier1 + 0.3 · tier2`; a miner without a behavioural score (rejected at tier 1)
/// counts it as 0.
pub fn immediate_score(tier1: f64, tier2: Option<f64>) -> f64 {
    IMMEDIATE_TIER1_WEIGHT * tier1 + IMMEDIATE_TIER2_WEIGHT * tier2.unwrap_or(0.0)
}

/// The mean of the last `window` entries of the history with this round's immediate score
/// appended, summed left to right (Python's `sum(recent) / len(recent)`).
///
/// A window of 0 averages the whole history: the doc's `history[-0:]` is Python's slice of
/// everything.
pub fn performance(history: &[f64], immediate: f64, window: usize) -> f64 {
    let mut entries = history.to_vec();
    entries.push(immediate);
    let skipped = if window > 0 {
        entries.len().saturating_sub(window)
    } else {
        0
    };
    let recent = entries.get(skipped..).unwrap_or_default();
    let mut total = 0.0;
    for value in recent {
        total += value;
    }
    total / recent.len() as f64
}

/// `WeightedEnsembleAggregator.compute_weights`: `p^alpha` over miners with p > 0,
/// normalised; shares below `minimum_weight` dropped; the rest renormalised.
///
/// A miner whose performance is NaN fails `p > 0` and gets no weight, as in Python.
pub fn ensemble_weights(
    performances: &BTreeMap<String, f64>,
    alpha: f64,
    minimum_weight: f64,
) -> Result<BTreeMap<String, f64>, MechanismError> {
    let powered: Vec<(&String, f64)> = performances
        .iter()
        .filter(|(_, performance)| **performance > 0.0)
        .map(|(miner, &performance)| (miner, libm::pow(performance, alpha)))
        .collect();
    let mut total = 0.0;
    for (_, value) in &powered {
        total += value;
    }
    if !powered.is_empty() && total == 0.0 {
        // Every p^alpha underflowed: the doc's `value / total` raises ZeroDivisionError.
        return Err(MechanismError::upstream(
            "every performance^alpha underflows to 0; the ensemble's normalisation divides \
             by zero (ZeroDivisionError)",
        ));
    }
    let kept: Vec<(&String, f64)> = powered
        .into_iter()
        .map(|(miner, value)| (miner, value / total))
        .filter(|(_, weight)| *weight >= minimum_weight)
        .collect();
    let mut kept_total = 0.0;
    for (_, weight) in &kept {
        kept_total += weight;
    }
    Ok(kept
        .into_iter()
        .map(|(miner, weight)| (miner.clone(), weight / kept_total))
        .collect())
}

/// `WeightedEnsembleAggregator.aggregate_scores`: for every alert scored by every submission,
/// `Σ w_m · s_m` over the submitting miners that have a weight (weights are not renormalised
/// to those miners). No submissions give no alerts.
pub fn ensemble_alert_scores(
    submissions: &BTreeMap<String, BTreeMap<String, f64>>,
    weights: &BTreeMap<String, f64>,
) -> BTreeMap<String, f64> {
    let mut submitted = submissions.values();
    let Some(first) = submitted.next() else {
        return BTreeMap::new();
    };
    let mut common: BTreeSet<&String> = first.keys().collect();
    for scores in submitted {
        common.retain(|alert| scores.contains_key(*alert));
    }
    common
        .into_iter()
        .map(|alert| {
            let mut total = 0.0;
            for (miner, scores) in submissions {
                if let (Some(weight), Some(score)) = (weights.get(miner), scores.get(alert)) {
                    total += weight * score;
                }
            }
            (alert.clone(), total)
        })
        .collect()
}
