//! The implemented scoring path: `ScoringCoordinator.calculate_final_score`
//! (`packages/validation/scoring_coordinator.py` at chainswarm/risk-assesment @ 8c6e7a50),
//! turning one miner's tier inputs into a final score and a status.

use serde_json::{Map, Value, json};

use super::MinerInput;
use super::accuracy::TierResult;
use super::behaviour::BehaviourComponents;
use super::config::AmlConfig;
use crate::MechanismError;

/// One miner's scores as the coordinator reports them.
#[derive(Debug, Clone, PartialEq)]
pub struct MinerOutcome {
    /// Integrity score, 0.25 per check (also computed when tier 1 is disabled, since the
    /// design-doc immediate score needs it).
    pub tier1_score: f64,
    /// Behavioural score where the coordinator computed one (None when rejected at tier 1).
    pub tier2_score: Option<f64>,
    /// The coordinator's final score.
    pub final_score: f64,
    /// The coordinator's result record, in the shape of the expected files.
    pub record: Value,
}

/// Integrity score, summed left to right as upstream does.
fn tier1_score(miner: &MinerInput) -> f64 {
    let checks = &miner.tier1;
    checks.has_all_alerts * 0.25
        + checks.score_range_valid * 0.25
        + checks.no_duplicates * 0.25
        + checks.metadata_valid * 0.25
}

/// Upstream's gate: every check must be exactly 1.0 (`int(check == 1.0) == 1`), so a
/// coverage of 0.9999999999999999 fails even though the summed score rounds to 1.0.
fn tier1_passed(miner: &MinerInput) -> bool {
    let checks = &miner.tier1;
    [
        checks.has_all_alerts,
        checks.score_range_valid,
        checks.no_duplicates,
        checks.metadata_valid,
    ]
    .iter()
    .all(|&check| check == 1.0)
}

/// The behavioural components from whichever form the input gives.
fn behaviour_components(
    name: &str,
    miner: &MinerInput,
) -> Result<BehaviourComponents, MechanismError> {
    match (&miner.tier2, &miner.tier2_raw) {
        (Some(components), None) => Ok(*components),
        (None, Some(raw)) => Ok(raw.components()),
        (Some(_), Some(_)) => Err(MechanismError::invalid(format!(
            "miner `{name}`: give either `tier2` (components) or `tier2_raw`, not both"
        ))),
        (None, None) => Err(MechanismError::invalid(format!(
            "miner `{name}`: passed tier 1 but has neither `tier2` nor `tier2_raw`"
        ))),
    }
}

fn components_record(components: &BehaviourComponents) -> Value {
    json!({
        "distribution_entropy": components.distribution_entropy,
        "rank_correlation": components.rank_correlation,
        "consistency": components.consistency,
        "address_consistency": components.address_consistency,
    })
}

/// `calculate_final_score` for one miner.
pub fn score_miner(
    name: &str,
    miner: &MinerInput,
    config: &AmlConfig,
) -> Result<MinerOutcome, MechanismError> {
    let days = miner.days_since_submission;
    let tier1 = tier1_score(miner);
    let mut record = Map::new();
    record.insert("days_since_submission".into(), json!(days));
    record.insert("tier1_score".into(), json!(tier1));

    if config.tier1_enabled {
        let passed = tier1_passed(miner);
        record.insert("tier1_passed".into(), json!(passed));
        if config.tier1_is_gate && !passed {
            record.insert("status".into(), json!("rejected"));
            record.insert("reason".into(), json!("tier1_failed"));
            record.insert("final_score".into(), json!(0.0));
            return Ok(MinerOutcome {
                tier1_score: tier1,
                tier2_score: None,
                final_score: 0.0,
                record: Value::Object(record),
            });
        }
    }

    let tier2 = if config.tier2_enabled {
        let components = behaviour_components(name, miner)?;
        record.insert("tier2_components".into(), components_record(&components));
        components.score()
    } else {
        record.insert("tier2_components".into(), json!({}));
        0.0
    };
    record.insert("tier2_score".into(), json!(tier2));
    // Upstream compares with `<`, so a NaN score (constant scores in the rank check) is
    // never below the minimum.
    if config.tier2_enabled && tier2 < config.tier2_minimum_score && config.tier2_is_gate {
        record.insert("status".into(), json!("rejected"));
        record.insert("reason".into(), json!("tier2_below_minimum"));
        record.insert("tier2_minimum".into(), json!(config.tier2_minimum_score));
        record.insert("final_score".into(), json!(0.0));
        return Ok(MinerOutcome {
            tier1_score: tier1,
            tier2_score: Some(tier2),
            final_score: 0.0,
            record: Value::Object(record),
        });
    }

    let flat_reward = config.tier2_flat_reward;
    record.insert("status".into(), json!("accepted"));
    if days < config.flat_period_days {
        record.insert("final_score".into(), json!(flat_reward));
        record.insert("reward_type".into(), json!("flat"));
        record.insert("validation_status".into(), json!("flat_period"));
        return Ok(MinerOutcome {
            tier1_score: tier1,
            tier2_score: Some(tier2),
            final_score: flat_reward,
            record: Value::Object(record),
        });
    }
    if !config.tier3_enabled {
        record.insert("final_score".into(), json!(flat_reward));
        record.insert("reward_type".into(), json!("tier3_disabled"));
        record.insert("validation_status".into(), json!("tier3_disabled"));
        return Ok(MinerOutcome {
            tier1_score: tier1,
            tier2_score: Some(tier2),
            final_score: flat_reward,
            record: Value::Object(record),
        });
    }

    let ground_truth = match &miner.tier3a {
        Some(input) => input.evaluate(name)?,
        None => TierResult::EMPTY,
    };
    let evolution = if days >= config.tier3b_required_days {
        match &miner.tier3b {
            Some(input) => input.evaluate(name)?,
            None => TierResult::EMPTY,
        }
    } else {
        TierResult::EMPTY
    };
    let tier3 = tier3_score(&ground_truth, &evolution, config);
    let final_score = tier2 * config.tier2_weight + tier3 * config.tier3_weight;

    record.insert("final_score".into(), json!(final_score));
    record.insert("reward_type".into(), json!("accuracy_based"));
    record.insert("tier3_score".into(), json!(tier3));
    record.insert("tier3a".into(), json!(ground_truth.score));
    record.insert("tier3a_coverage".into(), json!(ground_truth.coverage));
    record.insert("tier3b".into(), json!(evolution.score));
    record.insert("tier3b_coverage".into(), json!(evolution.coverage));
    record.insert(
        "validation_status".into(),
        json!(validation_status(&ground_truth, &evolution, days, config)),
    );
    Ok(MinerOutcome {
        tier1_score: tier1,
        tier2_score: Some(tier2),
        final_score,
        record: Value::Object(record),
    })
}

/// `Σ score · coverage · coverage_weight` over the tiers that produced a score, in the order
/// 3a then 3b; 0 when neither did.
fn tier3_score(ground_truth: &TierResult, evolution: &TierResult, config: &AmlConfig) -> f64 {
    let mut total = 0.0;
    if let Some(score) = ground_truth.score {
        total += score * ground_truth.coverage * config.tier3a_coverage_weight;
    }
    if let Some(score) = evolution.score {
        total += score * evolution.coverage * config.tier3b_coverage_weight;
    }
    total
}

/// Upstream's `_determine_validation_status`, reported alongside the score.
fn validation_status(
    ground_truth: &TierResult,
    evolution: &TierResult,
    days: i64,
    config: &AmlConfig,
) -> &'static str {
    match (ground_truth.score.is_some(), evolution.score.is_some()) {
        (true, true) => "complete",
        (false, false) if days < config.tier3b_required_days => "awaiting_evolution_data",
        (false, false) => "no_tier3",
        (false, true) => "tier3b_only",
        (true, false) => "tier3a_only",
    }
}
