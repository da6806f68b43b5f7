//! The validation configuration of the AML subnet (`config/validation_config.json` at
//! chainswarm/risk-assesment @ 8c6e7a50) plus the design notes' ensemble constants, with the
//! flat override names of specs/mechanism-io/README.md.

use serde::Deserialize;

/// Every knob the coordinator and the design-doc ensemble read. The defaults are the upstream
/// configuration file's values; an input's `config` object overrides any of them by name.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AmlConfig {
    /// Whether the four integrity checks run at all.
    pub tier1_enabled: bool,
    /// Whether failing any integrity check rejects the submission.
    pub tier1_is_gate: bool,
    /// Whether the behavioural tier runs; when off its score is 0.
    pub tier2_enabled: bool,
    /// Whether a behavioural score below the minimum rejects the submission.
    pub tier2_is_gate: bool,
    /// Share of the behavioural score in the accuracy-based final score.
    pub tier2_weight: f64,
    /// Behavioural score below which the coordinator warns (and rejects when gated).
    pub tier2_minimum_score: f64,
    /// Final score paid during the flat period (and when tier 3 is disabled).
    pub tier2_flat_reward: f64,
    /// Whether the accuracy tiers run after the flat period.
    pub tier3_enabled: bool,
    /// Share of the accuracy score in the accuracy-based final score.
    pub tier3_weight: f64,
    /// Factor on the ground-truth score times its coverage.
    pub tier3a_coverage_weight: f64,
    /// Factor on the evolution score times its coverage.
    pub tier3b_coverage_weight: f64,
    /// Days since submission from which the evolution tier is scored.
    pub tier3b_required_days: i64,
    /// Days since submission below which only the flat reward is paid.
    pub flat_period_days: i64,
    /// Design doc: exponent applied to each miner's performance before normalising.
    pub ensemble_alpha: f64,
    /// Design doc: ensemble weights below this share are dropped before renormalising.
    pub ensemble_min_weight: f64,
    /// Design doc: how many of the latest immediate scores the rolling performance averages.
    pub history_window: usize,
    /// Upstream's `tier1_integrity.weight`: declared in the configuration file, read by no
    /// scoring code. Accepted so that a copy of the upstream file's values is not rejected.
    pub tier1_weight: Option<f64>,
    /// Upstream's `tier3a_ground_truth.weight`: declared, never read by the coordinator.
    pub tier3a_weight: Option<f64>,
    /// Upstream's `tier3b_evolution.weight`: declared, never read by the coordinator.
    pub tier3b_weight: Option<f64>,
    /// Upstream's `reward_schedule.flat_reward`: declared, but the coordinator pays
    /// `tier2_flat_reward` during the flat period.
    pub flat_reward: Option<f64>,
}

impl Default for AmlConfig {
    fn default() -> Self {
        AmlConfig {
            tier1_enabled: true,
            tier1_is_gate: true,
            tier2_enabled: true,
            tier2_is_gate: false,
            tier2_weight: 0.1,
            tier2_minimum_score: 0.5,
            tier2_flat_reward: 0.1,
            tier3_enabled: true,
            tier3_weight: 0.9,
            tier3a_coverage_weight: 0.5,
            tier3b_coverage_weight: 0.5,
            tier3b_required_days: 30,
            flat_period_days: 29,
            ensemble_alpha: 2.0,
            ensemble_min_weight: 0.01,
            history_window: 30,
            tier1_weight: None,
            tier3a_weight: None,
            tier3b_weight: None,
            flat_reward: None,
        }
    }
}
