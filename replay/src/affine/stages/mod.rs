//! `stages_v2`: Affine's current four-stage scorer (scoring.md 1.1, affine @ 9bbf55ab) and the
//! validator side that submits its output.
//!
//! Stage 1 averages each miner's sample scores per environment and gates them on the
//! completeness the API reports; stage 2 marks, per environment subset, the miners that an
//! earlier (or later) registrant dominates by the error-reduction margin; stage 3 pays every
//! subset's weight to its unfiltered miners by geometric mean with rank decay; stage 4 drops
//! small shares and gives what normalised shares fall below 1% to uid 0. The validator then
//! normalises with numpy's pairwise sum, applies the burn and the SDK converts to u16.

mod input;
mod scoring;

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use serde_json::{Map, Value, json};

use self::input::{Miner, check_environment_names, read_miners};
use self::scoring::{
    EnvironmentScore, Subset, SubsetResult, build_subsets, stage_four, stage_one, stage_three,
    stage_two, start_layer,
};
use super::{chain_section, number};
use crate::MechanismError;
use crate::error::parse;
use crate::numeric::pairwise_sum;

/// The uid that receives the shares cut by the 1% threshold and the validator's burn.
const BURN_UID: i64 = 0;

/// The constants of `affine/src/scorer/config.py`, overridable through the input's `config`
/// under the names of specs/mechanism-io/README.md. Unknown names are refused, so that a
/// misspelt override cannot silently leave a default in force.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StagesConfig {
    #[serde(rename = "ERROR_RATE_REDUCTION")]
    pub error_rate_reduction: f64,
    #[serde(rename = "MIN_IMPROVEMENT")]
    pub min_improvement: f64,
    #[serde(rename = "MAX_IMPROVEMENT")]
    pub max_improvement: f64,
    #[serde(rename = "MAX_LAYERS")]
    pub max_layers: usize,
    #[serde(rename = "SUBSET_WEIGHT_EXPONENT")]
    pub subset_weight_exponent: f64,
    #[serde(rename = "DECAY_FACTOR")]
    pub decay_factor: f64,
    #[serde(rename = "MIN_WEIGHT_THRESHOLD")]
    pub min_weight_threshold: f64,
    #[serde(rename = "MIN_COMPLETENESS")]
    pub min_completeness: f64,
    /// Per environment, the `(low, high)` range that raw averages are rescaled from.
    #[serde(rename = "ENV_SCORE_RANGES")]
    pub environment_score_ranges: BTreeMap<String, (f64, f64)>,
    #[serde(rename = "DOMINANCE_EPS")]
    pub dominance_epsilon: f64,
}

impl Default for StagesConfig {
    fn default() -> Self {
        StagesConfig {
            error_rate_reduction: 0.2,
            min_improvement: 0.02,
            max_improvement: 0.1,
            max_layers: 6,
            subset_weight_exponent: 2.0,
            decay_factor: 0.5,
            min_weight_threshold: 0.01,
            min_completeness: 0.9,
            environment_score_ranges: BTreeMap::from([(
                "agentgym:sciworld".to_string(),
                (-100.0, 100.0),
            )]),
            dominance_epsilon: 1e-9,
        }
    }
}

/// Per-environment settings from the backend's system config; only `min_completeness` is
/// used, other keys the config carries are ignored.
#[derive(Debug, Clone, Default, Deserialize)]
struct EnvironmentConfig {
    min_completeness: Option<f64>,
}

/// The whole `stages_v2` input. Miners stay raw JSON here because upstream skips malformed
/// entries instead of failing (stage 1), which a typed parse could not express.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StagesInput {
    /// Already dispatched on by [`super::run`]; declared so that `deny_unknown_fields`
    /// accepts it.
    #[allow(dead_code)]
    mode: String,
    environments: Vec<String>,
    #[serde(default)]
    env_configs: Option<BTreeMap<String, EnvironmentConfig>>,
    /// Only checked to be a list here: [`read_miners`] reads the entries where they are in
    /// the input, so that parsing does not copy every miner's samples.
    #[allow(dead_code)]
    miners: Vec<serde::de::IgnoredAny>,
    #[serde(default)]
    burn_percentage: Option<f64>,
    #[serde(default)]
    config: Option<StagesConfig>,
}

/// Runs `stages_v2` on its JSON input (see specs/mechanism-io/README.md).
pub fn run(input: &Value) -> Result<Value, MechanismError> {
    let miner_entries = input
        .get("miners")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    let input: StagesInput = parse(input, "stages_v2 input")?;
    let config = input.config.unwrap_or_default();
    validate_config(&config)?;
    let environment_configs = input.env_configs.unwrap_or_default();
    check_environment_names(&input.environments)?;

    let miners = read_miners(miner_entries, &input.environments)?;
    let minimum_completeness: Vec<f64> = input
        .environments
        .iter()
        .map(|name| {
            environment_configs
                .get(name)
                .and_then(|environment| environment.min_completeness)
                .unwrap_or(config.min_completeness)
        })
        .collect();
    let scores = stage_one(&miners, &input.environments, &minimum_completeness, &config)?;
    let environment_count = input.environments.len();
    super::check_subset_count(
        environment_count,
        start_layer(environment_count, config.max_layers)..=environment_count,
        "environments",
    )?;
    let subsets = build_subsets(&input.environments, config.max_layers);
    let filtered = stage_two(&miners, &scores, &subsets, &config)?;
    let (results, cumulative) = stage_three(
        &miners,
        &scores,
        &subsets,
        &filtered,
        input.environments.len(),
        &config,
    );
    let final_weights = stage_four(&miners, &cumulative, config.min_weight_threshold);
    let (chain_uids, chain_weights) =
        validator_weights(&final_weights, input.burn_percentage.unwrap_or(0.0));

    let mut miners_output = Map::new();
    for (index, miner) in miners.iter().enumerate() {
        miners_output.insert(
            miner.uid.to_string(),
            miner_output(
                miner,
                &scores[index],
                &input.environments,
                &subsets,
                &filtered[index],
                &results[index],
                cumulative[index],
            ),
        );
    }
    let mut final_output = Map::new();
    for (uid, weight) in &final_weights {
        final_output.insert(uid.to_string(), number(*weight));
    }
    Ok(json!({
        "mode": "stages_v2",
        "miners": miners_output,
        "final_weights": final_output,
        "chain": chain_section(&chain_uids, &chain_weights)?,
    }))
}

/// Refuses constants that would make upstream divide by zero or that have no meaning.
fn validate_config(config: &StagesConfig) -> Result<(), MechanismError> {
    for (name, (low, high)) in &config.environment_score_ranges {
        if high <= low {
            return Err(MechanismError::invalid(format!(
                "config.ENV_SCORE_RANGES[{name}]: the range ({low}, {high}) must have \
                 low < high (upstream divides by high - low)"
            )));
        }
    }
    Ok(())
}

/// The validator's `process_weights`: keep uids >= 0 with weight > 0, divide by numpy's
/// pairwise sum, and burn: with 0 < b <= 1 every weight is scaled by 1 - b and uid 0 gets
/// b more (prepended when absent). A burn outside (0, 1] is ignored, as upstream's guard
/// does. No positive weight means the validator sets nothing.
fn validator_weights(final_weights: &[(i64, f64)], burn: f64) -> (Vec<i64>, Vec<f64>) {
    let (mut uids, mut weights): (Vec<i64>, Vec<f64>) = final_weights
        .iter()
        .filter(|(uid, weight)| *uid >= 0 && *weight > 0.0)
        .copied()
        .unzip();
    if weights.is_empty() {
        return (uids, weights);
    }
    let total = pairwise_sum(&weights);
    for weight in &mut weights {
        *weight /= total;
    }
    if burn > 0.0 && burn <= 1.0 {
        for weight in &mut weights {
            *weight *= 1.0 - burn;
        }
        match uids.iter().position(|uid| *uid == BURN_UID) {
            Some(index) => weights[index] += burn,
            None => {
                uids.insert(0, BURN_UID);
                weights.insert(0, burn);
            }
        }
    }
    (uids, weights)
}

/// One miner's intermediate results, keyed as in the expected outputs.
fn miner_output(
    miner: &Miner,
    scores: &[EnvironmentScore],
    environments: &[String],
    subsets: &[Subset],
    filtered: &BTreeSet<usize>,
    results: &BTreeMap<usize, SubsetResult>,
    cumulative: f64,
) -> Value {
    let mut averages = Map::new();
    let mut thresholds = Map::new();
    let mut validity = Map::new();
    for (name, score) in environments.iter().zip(scores) {
        averages.insert(name.clone(), number(score.average));
        thresholds.insert(name.clone(), number(score.threshold));
        validity.insert(name.clone(), Value::Bool(score.valid));
    }
    let mut filtered_keys: Vec<&str> = filtered
        .iter()
        .filter_map(|index| subsets.get(*index).map(|subset| subset.key.as_str()))
        .collect();
    filtered_keys.sort_unstable();
    let mut subset_scores = Map::new();
    let mut subset_ranks = Map::new();
    let mut subset_weights = Map::new();
    for (index, result) in results {
        let Some(subset) = subsets.get(*index) else {
            continue;
        };
        subset_scores.insert(subset.key.clone(), number(result.score));
        subset_ranks.insert(subset.key.clone(), json!(result.rank));
        subset_weights.insert(subset.key.clone(), number(result.weight));
    }
    json!({
        "hotkey": miner.hotkey,
        "first_block": miner.first_block,
        "env_avg": averages,
        "env_threshold": thresholds,
        "env_valid": validity,
        "valid_for_scoring": scores.iter().any(|score| score.valid),
        "filtered_subsets": filtered_keys,
        "subset_scores": subset_scores,
        "subset_ranks": subset_ranks,
        "subset_weights": subset_weights,
        "cumulative_weight": number(cumulative),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validator_burn_prepends_uid_zero() {
        let (uids, weights) = validator_weights(&[(3, 0.5), (4, 0.5)], 0.5);
        assert_eq!(uids, [0, 3, 4]);
        assert_eq!(weights, [0.5, 0.25, 0.25]);
        let (uids, weights) = validator_weights(&[(3, 0.5), (4, 0.5)], 1.5);
        assert_eq!(uids, [3, 4]);
        assert_eq!(weights, [0.5, 0.5]);
    }
}
