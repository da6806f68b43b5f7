//! The AML alert-scoring subnet (chainswarm), specs/scoring.md §5.
//!
//! Two sources are reproduced on one input:
//! - CODE ([`coordinator`]): chainswarm/risk-assesment @ 8c6e7a50,
//!   `ScoringCoordinator.calculate_final_score` with its tier 1 gate, tier 2 behavioural
//!   checks ([`behaviour`]), tier 3a/3b accuracy ([`accuracy`]) and the flat period;
//! - DESIGN ([`ensemble`]): the same repository's design notes, immediate score
//!   `0.2·tier1 + 0.3·tier2`, a rolling mean over the history and the
//!   `WeightedEnsembleAggregator` weights and per-alert ensemble scores.
//!
//! Miners are keyed by hotkey; their order in the input does not matter (they are visited in
//! hotkey order, so sums over miners are the same for every permutation).

pub mod accuracy;
pub mod behaviour;
pub mod config;
pub mod coordinator;
pub mod ensemble;

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::MechanismError;
use crate::error::parse;
use accuracy::{EvolutionInput, GroundTruthInput};
use behaviour::{BehaviourComponents, RawSubmission};
use config::AmlConfig;

/// The four integrity check values of one miner (each in [0, 1]).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntegrityChecks {
    /// min(1, distinct alerts submitted / distinct alerts of the date).
    pub has_all_alerts: f64,
    /// Share of submitted scores inside [0, 1].
    pub score_range_valid: f64,
    /// Distinct alerts over submissions (1 without duplicates).
    pub no_duplicates: f64,
    /// Share of submissions with a model version and GitHub URL.
    pub metadata_valid: f64,
}

/// Everything the input says about one miner.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MinerInput {
    /// Processing date minus submission date, in days.
    pub days_since_submission: i64,
    /// The four integrity check values (tier 1).
    pub tier1: IntegrityChecks,
    /// Behavioural components, when given directly.
    #[serde(default)]
    pub tier2: Option<BehaviourComponents>,
    /// The raw submission to compute the behavioural components from.
    #[serde(default)]
    pub tier2_raw: Option<RawSubmission>,
    /// Labelled scores; null when no alert has a labelled address.
    #[serde(default)]
    pub tier3a: Option<GroundTruthInput>,
    /// Evolution-tracked scores; null when no alert has a T+30 snapshot.
    #[serde(default)]
    pub tier3b: Option<EvolutionInput>,
    /// Previous immediate scores, oldest first (design path); absent or null when none.
    #[serde(default)]
    pub history: Option<Vec<f64>>,
}

/// The whole aml input.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AmlInput {
    /// Miners by hotkey.
    pub miners: BTreeMap<String, MinerInput>,
    /// Overrides of the validation configuration; absent fields keep upstream's values.
    #[serde(default)]
    pub config: AmlConfig,
    /// Per miner, its score per alert (design-path ensemble); absent or null means no
    /// submissions.
    #[serde(default)]
    pub alert_scores: Option<BTreeMap<String, BTreeMap<String, f64>>>,
}

/// Rejects numbers the computation cannot use, naming the field.
fn check_input(input: &AmlInput) -> Result<(), MechanismError> {
    let config = &input.config;
    let config_numbers = [
        ("tier2_weight", config.tier2_weight),
        ("tier2_minimum_score", config.tier2_minimum_score),
        ("tier2_flat_reward", config.tier2_flat_reward),
        ("tier3_weight", config.tier3_weight),
        ("tier3a_coverage_weight", config.tier3a_coverage_weight),
        ("tier3b_coverage_weight", config.tier3b_coverage_weight),
        ("ensemble_alpha", config.ensemble_alpha),
        ("ensemble_min_weight", config.ensemble_min_weight),
    ];
    for (name, value) in config_numbers {
        if !value.is_finite() {
            return Err(MechanismError::invalid(format!(
                "config.{name} must be a finite number"
            )));
        }
    }
    for (name, miner) in &input.miners {
        let checks = &miner.tier1;
        for (field, value) in [
            ("has_all_alerts", checks.has_all_alerts),
            ("score_range_valid", checks.score_range_valid),
            ("no_duplicates", checks.no_duplicates),
            ("metadata_valid", checks.metadata_valid),
        ] {
            if !(0.0..=1.0).contains(&value) {
                return Err(MechanismError::invalid(format!(
                    "miner `{name}`: tier1.{field} is {value}; integrity checks lie in [0, 1]"
                )));
            }
        }
        if let Some(components) = &miner.tier2 {
            let values = [
                components.distribution_entropy,
                components.rank_correlation,
                components.consistency,
                components.address_consistency,
            ];
            if values.iter().any(|value| !value.is_finite()) {
                return Err(MechanismError::invalid(format!(
                    "miner `{name}`: tier2 components must be finite numbers"
                )));
            }
        }
        if let Some(raw) = &miner.tier2_raw {
            raw.validate(name)?;
        }
        if miner
            .history
            .iter()
            .flatten()
            .any(|value| !value.is_finite())
        {
            return Err(MechanismError::invalid(format!(
                "miner `{name}`: history holds a non-finite number"
            )));
        }
    }
    for (name, scores) in input.alert_scores.iter().flatten() {
        if scores.values().any(|value| !value.is_finite()) {
            return Err(MechanismError::invalid(format!(
                "alert_scores.`{name}` holds a non-finite number"
            )));
        }
    }
    Ok(())
}

/// Runs both paths on an aml input and returns
/// `{miners, final_scores, design: {immediate, performance, ensemble_weights,
/// ensemble_alert_scores}}`.
pub fn run(input: &Value) -> Result<Value, MechanismError> {
    let input: AmlInput = parse(input, "aml input")?;
    check_input(&input)?;
    let config = &input.config;

    let mut miners = Map::new();
    let mut final_scores = Map::new();
    let mut immediate = BTreeMap::new();
    let mut performances = BTreeMap::new();
    for (name, miner) in &input.miners {
        let outcome = coordinator::score_miner(name, miner, config)?;
        let immediate_score = ensemble::immediate_score(outcome.tier1_score, outcome.tier2_score);
        let history = miner.history.as_deref().unwrap_or_default();
        let performance = ensemble::performance(history, immediate_score, config.history_window);
        final_scores.insert(name.clone(), json!(outcome.final_score));
        miners.insert(name.clone(), outcome.record);
        immediate.insert(name.clone(), immediate_score);
        performances.insert(name.clone(), performance);
    }
    let weights = ensemble::ensemble_weights(
        &performances,
        config.ensemble_alpha,
        config.ensemble_min_weight,
    )?;
    let submissions = input.alert_scores.clone().unwrap_or_default();
    let alert_scores = ensemble::ensemble_alert_scores(&submissions, &weights);

    Ok(json!({
        "miners": miners,
        "final_scores": final_scores,
        "design": {
            "immediate": immediate,
            "performance": performances,
            "ensemble_weights": weights,
            "ensemble_alert_scores": alert_scores,
        },
    }))
}
