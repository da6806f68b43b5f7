//! `stages_v2`: Affine's current four-stage scorer (scoring.md 1.1, affine @ 9bbf55ab) and the
//! validator side that submits its output.
//!
//! Stage 1 averages each miner's sample scores per environment and gates them on the
//! completeness the API reports; stage 2 marks, per environment subset, the miners that an
//! earlier (or later) registrant dominates by the error-reduction margin; stage 3 pays every
//! subset's weight to its unfiltered miners by geometric mean with rank decay; stage 4 drops
//! small shares and gives what normalised shares fall below 1% to uid 0. The validator then
//! normalises with numpy's pairwise sum, applies the burn and the SDK converts to u16.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{chain_section, combinations, number};
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
    miners: Vec<Value>,
    #[serde(default)]
    burn_percentage: Option<f64>,
    #[serde(default)]
    config: Option<StagesConfig>,
}

/// One environment's data for one miner, as the API reports it.
#[derive(Debug, Clone, PartialEq)]
struct EnvironmentData {
    scores: Vec<f64>,
    completeness: f64,
}

/// A miner that passed stage 1's entry checks.
#[derive(Debug, Clone)]
struct Miner {
    uid: i64,
    hotkey: Value,
    first_block: Option<i64>,
    /// Indexed like the input's `environments`; `None` where the API has no data.
    environments: Vec<Option<EnvironmentData>>,
}

/// Stage 1's result for one miner and environment.
#[derive(Debug, Clone, Copy)]
struct EnvironmentScore {
    average: f64,
    threshold: f64,
    valid: bool,
}

/// One environment subset: its layer (= size), its output key and its environments as
/// indexes into the input's `environments`, in name order.
#[derive(Debug, Clone)]
struct Subset {
    layer: usize,
    key: String,
    environments: Vec<usize>,
}

/// What stage 3 records for a miner in a subset where it is eligible.
#[derive(Debug, Clone, Copy)]
struct SubsetResult {
    score: f64,
    rank: usize,
    weight: f64,
}

/// Runs `stages_v2` on its JSON input (see specs/mechanism-io/README.md).
pub fn run(input: &Value) -> Result<Value, MechanismError> {
    let input: StagesInput = parse(input, "stages_v2 input")?;
    let config = input.config.unwrap_or_default();
    validate_config(&config)?;
    let environment_configs = input.env_configs.unwrap_or_default();
    check_environment_names(&input.environments)?;

    let miners = read_miners(&input.miners, &input.environments)?;
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

/// Environment names must be unique: upstream keys subsets by name, so a repeated name
/// would make two different subsets share one key.
fn check_environment_names(environments: &[String]) -> Result<(), MechanismError> {
    let mut seen = BTreeSet::new();
    for name in environments {
        if !seen.insert(name) {
            return Err(MechanismError::invalid(format!(
                "environments: `{name}` is listed twice"
            )));
        }
    }
    Ok(())
}

/// Python's `int(value)` for the uid field, or `None` where upstream's conversion fails and
/// the entry is skipped: integers as they are, floats truncated toward zero, strings holding
/// a decimal integer (surrounding whitespace allowed).
fn uid_of(value: &Value) -> Option<i64> {
    match value {
        Value::Number(number) => number.as_i64().or_else(|| {
            let float = number.as_f64()?;
            // `int(float)` truncates; values beyond i64 are not uids.
            let truncated = float.trunc();
            (truncated.abs() < 9.0e18).then_some(truncated as i64)
        }),
        Value::String(text) => text.trim().parse::<i64>().ok(),
        _ => None,
    }
}

/// Whether a required entry field counts as missing upstream (absent, null or empty).
fn is_missing(entry: &serde_json::Map<String, Value>, field: &str) -> bool {
    match entry.get(field) {
        None | Some(Value::Null) => true,
        Some(Value::String(text)) => text.is_empty(),
        Some(_) => false,
    }
}

/// Stage 1's entry checks. Entries without a usable uid, or missing hotkey, model revision
/// or model repository, are skipped as upstream does. A repeated uid replaces the earlier
/// entry's data but keeps its position, as assigning to an existing Python dict key does.
fn read_miners(entries: &[Value], environments: &[String]) -> Result<Vec<Miner>, MechanismError> {
    let mut miners: Vec<Miner> = Vec::new();
    let mut position_of_uid: BTreeMap<i64, usize> = BTreeMap::new();
    for (position, entry) in entries.iter().enumerate() {
        let Some(object) = entry.as_object() else {
            return Err(MechanismError::invalid(format!(
                "miners[{position}] must be an object"
            )));
        };
        let Some(uid) = object.get("uid").and_then(uid_of) else {
            continue;
        };
        if ["hotkey", "model_revision", "model_repo"]
            .iter()
            .any(|field| is_missing(object, field))
        {
            continue;
        }
        let first_block = match object.get("first_block") {
            None | Some(Value::Null) => None,
            Some(value) => Some(value.as_i64().ok_or_else(|| {
                MechanismError::invalid(format!(
                    "miners[{position}].first_block must be an integer block number or null, \
                     got {value}"
                ))
            })?),
        };
        let environment_map = match object.get("env") {
            None | Some(Value::Null) => None,
            Some(Value::Object(map)) => Some(map),
            Some(other) => {
                return Err(MechanismError::invalid(format!(
                    "miners[{position}].env must be an object keyed by environment, got {other}"
                )));
            }
        };
        let mut data = Vec::with_capacity(environments.len());
        for name in environments {
            let value = environment_map.and_then(|map| map.get(name));
            data.push(match value {
                None | Some(Value::Null) => None,
                Some(value) => Some(read_environment(value, position, name)?),
            });
        }
        let miner = Miner {
            uid,
            hotkey: object.get("hotkey").cloned().unwrap_or(Value::Null),
            first_block,
            environments: data,
        };
        match position_of_uid.get(&uid) {
            Some(&existing) => {
                if let Some(slot) = miners.get_mut(existing) {
                    *slot = miner;
                }
            }
            None => {
                position_of_uid.insert(uid, miners.len());
                miners.push(miner);
            }
        }
    }
    Ok(miners)
}

/// One environment entry: `scores` (numbers, or sample objects whose missing `score` counts
/// as 0 as upstream's `sample.get("score", 0)` does) and `completeness` (missing counts as 0,
/// so the environment is invalid).
fn read_environment(
    value: &Value,
    position: usize,
    name: &str,
) -> Result<EnvironmentData, MechanismError> {
    let where_ = || format!("miners[{position}].env[{name}]");
    let Some(object) = value.as_object() else {
        return Err(MechanismError::invalid(format!(
            "{} must be an object with `scores` and `completeness`",
            where_()
        )));
    };
    let mut scores = Vec::new();
    match object.get("scores") {
        None | Some(Value::Null) => {}
        Some(Value::Array(samples)) => {
            for (index, sample) in samples.iter().enumerate() {
                let score = match sample {
                    Value::Number(number) => number.as_f64(),
                    Value::Object(fields) => match fields.get("score") {
                        None => Some(0.0),
                        Some(score) => score.as_f64(),
                    },
                    _ => None,
                };
                // JSON numbers are always finite; a NaN or infinite score cannot be written,
                // so anything that is not a number is refused here.
                let Some(score) = score else {
                    return Err(MechanismError::invalid(format!(
                        "{}.scores[{index}] must be a finite number (or an object with a \
                         numeric `score`), got {sample}",
                        where_()
                    )));
                };
                scores.push(score);
            }
        }
        Some(other) => {
            return Err(MechanismError::invalid(format!(
                "{}.scores must be a list, got {other}",
                where_()
            )));
        }
    }
    let completeness = match object.get("completeness") {
        None | Some(Value::Null) => 0.0,
        Some(value) => value.as_f64().ok_or_else(|| {
            MechanismError::invalid(format!(
                "{}.completeness must be a number, got {value}",
                where_()
            ))
        })?,
    };
    Ok(EnvironmentData {
        scores,
        completeness,
    })
}

/// The score a later miner must beat: the average plus an improvement of 20% of the error
/// rate, clamped to [2%, 10%], never above 1.
fn threshold_of(average: f64, config: &StagesConfig) -> f64 {
    let improvement = ((1.0 - average) * config.error_rate_reduction)
        .max(config.min_improvement)
        .min(config.max_improvement);
    (average + improvement).min(1.0)
}

/// Stage 1: per miner and environment, the (rescaled) mean score, its threshold and whether
/// the reported completeness passes the environment's gate.
fn stage_one(
    miners: &[Miner],
    environments: &[String],
    minimum_completeness: &[f64],
    config: &StagesConfig,
) -> Result<Vec<Vec<EnvironmentScore>>, MechanismError> {
    let mut all = Vec::with_capacity(miners.len());
    for miner in miners {
        let mut per_environment = Vec::with_capacity(environments.len());
        for ((name, data), minimum) in environments
            .iter()
            .zip(&miner.environments)
            .zip(minimum_completeness)
        {
            let Some(data) = data else {
                per_environment.push(EnvironmentScore {
                    average: 0.0,
                    threshold: 0.0,
                    valid: false,
                });
                continue;
            };
            // Python's `sum(scores) / len(scores)`: a left-to-right sum.
            let raw = if data.scores.is_empty() {
                0.0
            } else {
                data.scores.iter().fold(0.0, |total, score| total + score)
                    / data.scores.len() as f64
            };
            let average = match config.environment_score_ranges.get(name) {
                Some((low, high)) => (raw - low) / (high - low),
                None => raw,
            };
            // Upstream does not guard against NaN; only an overflowing sum could produce a
            // non-finite average from JSON input, and we refuse it rather than let NaN
            // propagate into every sum downstream.
            if !average.is_finite() {
                return Err(MechanismError::invalid(format!(
                    "miner uid {}: the average score in `{name}` is not finite (the scores \
                     overflow a float64 sum)",
                    miner.uid
                )));
            }
            per_environment.push(EnvironmentScore {
                average,
                threshold: threshold_of(average, config),
                valid: data.completeness >= *minimum,
            });
        }
        all.push(per_environment);
    }
    Ok(all)
}

/// The subsets scored: every combination of the last `MAX_LAYERS` sizes, layer by layer in
/// itertools order over the input's environment list; keys and geometric means use the
/// environments sorted by name.
fn build_subsets(environments: &[String], max_layers: usize) -> Vec<Subset> {
    let count = environments.len();
    let mut subsets = Vec::new();
    for layer in start_layer(count, max_layers)..=count {
        for mut combination in combinations(count, layer) {
            combination.sort_by(|left, right| environments[*left].cmp(&environments[*right]));
            let names: Vec<&str> = combination
                .iter()
                .map(|index| environments[*index].as_str())
                .collect();
            subsets.push(Subset {
                layer,
                key: format!("L{layer}_{}", names.join("_")),
                environments: combination,
            });
        }
    }
    subsets
}

/// The first layer scored (layer weights grow from it).
fn start_layer(environment_count: usize, max_layers: usize) -> usize {
    if environment_count > max_layers {
        environment_count - max_layers + 1
    } else {
        1
    }
}

/// Whether a miner is valid in every environment of a subset.
fn valid_in(scores: &[EnvironmentScore], subset: &Subset) -> bool {
    subset
        .environments
        .iter()
        .all(|environment| scores.get(*environment).is_some_and(|score| score.valid))
}

/// Stage 2, the anti-copy filter: per subset, the set of miners (by index) that are filtered.
///
/// Miners are ordered by `(first_block, uid)`. Upstream sorts on that tuple and Python
/// raises `TypeError` when it compares a `None` block with a number, which any sort of a
/// list holding both must do; that documented failure is reproduced as an upstream error.
/// When every block is `None` the tuples compare by uid alone and upstream runs.
fn stage_two(
    miners: &[Miner],
    scores: &[Vec<EnvironmentScore>],
    subsets: &[Subset],
    config: &StagesConfig,
) -> Result<Vec<BTreeSet<usize>>, MechanismError> {
    let undated = miners.iter().find(|miner| miner.first_block.is_none());
    let dated = miners.iter().any(|miner| miner.first_block.is_some());
    if let (Some(undated), true) = (undated, dated) {
        return Err(MechanismError::upstream(format!(
            "stages_v2: miner uid {} has no first_block while others have one; upstream's \
             stage 2 sorts miners by (first_block, uid) and fails with TypeError: '<' not \
             supported between instances of 'NoneType' and 'int'",
            undated.uid
        )));
    }
    let mut order: Vec<usize> = (0..miners.len()).collect();
    order.sort_by_key(|&index| (miners[index].first_block, miners[index].uid));

    let mut filtered = vec![BTreeSet::new(); miners.len()];
    for (subset_index, subset) in subsets.iter().enumerate() {
        let pool: Vec<usize> = order
            .iter()
            .copied()
            .filter(|&index| valid_in(&scores[index], subset))
            .collect();
        if pool.len() < 2 {
            continue;
        }
        for (position, &earlier) in pool.iter().enumerate() {
            for &later in &pool[position + 1..] {
                let later_wins = subset
                    .environments
                    .iter()
                    .filter(|&&environment| {
                        scores[later][environment].average
                            > scores[earlier][environment].threshold + config.dominance_epsilon
                    })
                    .count();
                if later_wins == 0 {
                    filtered[later].insert(subset_index);
                } else if later_wins == subset.environments.len() {
                    filtered[earlier].insert(subset_index);
                }
            }
        }
    }
    Ok(filtered)
}

/// The geometric mean of a miner's averages over a subset (environments in name order):
/// 0 if any average is at most 0, else the left-to-right product to the power 1/|S|.
fn geometric_mean(scores: &[EnvironmentScore], subset: &Subset) -> f64 {
    let mut product = 1.0;
    for environment in &subset.environments {
        let average = scores[*environment].average;
        if average <= 0.0 {
            return 0.0;
        }
        product *= average;
    }
    libm::pow(product, 1.0 / subset.environments.len() as f64)
}

/// Per-miner results of stage 3.
type SubsetResults = Vec<BTreeMap<usize, SubsetResult>>;

/// Stage 3: each subset's weight goes to its eligible miners (API order, not filtered, valid
/// in every environment of the subset) by geometric mean decayed by rank. Returns per miner
/// the results by subset index and the cumulative weight summed in subset order.
fn stage_three(
    miners: &[Miner],
    scores: &[Vec<EnvironmentScore>],
    subsets: &[Subset],
    filtered: &[BTreeSet<usize>],
    environment_count: usize,
    config: &StagesConfig,
) -> (SubsetResults, Vec<f64>) {
    let start = start_layer(environment_count, config.max_layers);
    let mut subsets_per_layer: BTreeMap<usize, usize> = BTreeMap::new();
    for subset in subsets {
        *subsets_per_layer.entry(subset.layer).or_default() += 1;
    }
    let mut results = vec![BTreeMap::new(); miners.len()];
    let mut cumulative = vec![0.0; miners.len()];
    for (subset_index, subset) in subsets.iter().enumerate() {
        let layer_weight = environment_count as f64
            * libm::pow(config.subset_weight_exponent, (subset.layer - start) as f64);
        let subset_count = subsets_per_layer.get(&subset.layer).copied().unwrap_or(1);
        let subset_weight = layer_weight / subset_count as f64;

        let eligible: Vec<usize> = (0..miners.len())
            .filter(|&index| !filtered[index].contains(&subset_index))
            .filter(|&index| valid_in(&scores[index], subset))
            .collect();
        if eligible.is_empty() {
            continue;
        }
        let mut ranked: Vec<(usize, f64)> = eligible
            .iter()
            .map(|&index| (index, geometric_mean(&scores[index], subset)))
            .collect();
        // Stable sort, best first: exact ties keep API order (upstream's tie-break).
        ranked.sort_by(|left, right| right.1.total_cmp(&left.1));
        let adjusted: Vec<f64> = ranked
            .iter()
            .enumerate()
            .map(|(rank_index, (_, score))| {
                score * libm::pow(config.decay_factor, rank_index as f64)
            })
            .collect();
        let total = adjusted.iter().fold(0.0, |sum, value| sum + value);
        for (rank_index, ((index, score), adjusted)) in ranked.iter().zip(&adjusted).enumerate() {
            // A subset where every score is 0 still pays, equally.
            let weight = if total > 0.0 {
                subset_weight * (adjusted / total)
            } else {
                subset_weight / ranked.len() as f64
            };
            results[*index].insert(
                subset_index,
                SubsetResult {
                    score: *score,
                    rank: rank_index + 1,
                    weight,
                },
            );
            cumulative[*index] += weight;
        }
    }
    (results, cumulative)
}

/// Stage 4: raw weights under the threshold are dropped, the rest normalised; normalised
/// shares under the threshold are cut and their sum goes to uid 0 (created at the end if it
/// is not a miner). Uid 0's own sub-threshold share is cut without being given back, so the
/// weights then sum to less than 1, as upstream does. Returns (uid, weight) in API order.
fn stage_four(miners: &[Miner], cumulative: &[f64], threshold: f64) -> Vec<(i64, f64)> {
    let kept: Vec<f64> = cumulative
        .iter()
        .map(|&raw| if raw >= threshold { raw } else { 0.0 })
        .collect();
    let total = kept.iter().fold(0.0, |sum, value| sum + value);
    let normalised: Vec<f64> = kept
        .iter()
        .map(|&value| if total > 0.0 { value / total } else { 0.0 })
        .collect();
    let mut below = 0.0;
    let mut final_weights = Vec::with_capacity(miners.len() + 1);
    for (miner, &share) in miners.iter().zip(&normalised) {
        if share < threshold {
            if miner.uid != BURN_UID && share > 0.0 {
                below += share;
            }
            final_weights.push((miner.uid, 0.0));
        } else {
            final_weights.push((miner.uid, share));
        }
    }
    if below > 0.0 {
        match final_weights.iter_mut().find(|(uid, _)| *uid == BURN_UID) {
            Some((_, weight)) => *weight += below,
            None => final_weights.push((BURN_UID, below)),
        }
    }
    final_weights
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
    fn threshold_is_clamped_between_two_and_ten_percent() {
        let config = StagesConfig::default();
        assert_eq!(threshold_of(0.0, &config), 0.1);
        assert_eq!(threshold_of(0.5, &config), 0.5 + 0.1);
        assert_eq!(threshold_of(0.95, &config), 0.95 + 0.02);
        assert_eq!(threshold_of(0.99, &config), 1.0);
        // Between the clamps: 20% of the error rate.
        assert_eq!(threshold_of(0.7, &config), 0.7 + (1.0 - 0.7) * 0.2);
    }

    #[test]
    fn subsets_keep_itertools_order_with_sorted_keys() {
        let environments = ["b".to_string(), "a".to_string(), "c".to_string()];
        let keys: Vec<String> = build_subsets(&environments, 6)
            .into_iter()
            .map(|subset| subset.key)
            .collect();
        assert_eq!(
            keys,
            [
                "L1_b", "L1_a", "L1_c", "L2_a_b", "L2_b_c", "L2_a_c", "L3_a_b_c"
            ]
        );
        // Only the last MAX_LAYERS sizes are scored.
        let layers: Vec<usize> = build_subsets(&environments, 2)
            .into_iter()
            .map(|subset| subset.layer)
            .collect();
        assert_eq!(layers, [2, 2, 2, 3]);
    }

    #[test]
    fn uids_convert_like_python_int() {
        assert_eq!(uid_of(&json!(7)), Some(7));
        assert_eq!(uid_of(&json!("12")), Some(12));
        assert_eq!(uid_of(&json!(" 3 ")), Some(3));
        assert_eq!(uid_of(&json!(4.9)), Some(4));
        assert_eq!(uid_of(&json!("x")), None);
        assert_eq!(uid_of(&json!(null)), None);
    }

    #[test]
    fn geometric_mean_is_zero_when_any_average_is_not_positive() {
        let subset = Subset {
            layer: 2,
            key: String::new(),
            environments: vec![0, 1],
        };
        let score = |average| EnvironmentScore {
            average,
            threshold: 0.0,
            valid: true,
        };
        assert_eq!(geometric_mean(&[score(0.25), score(1.0)], &subset), 0.5);
        assert_eq!(geometric_mean(&[score(0.0), score(1.0)], &subset), 0.0);
        assert_eq!(geometric_mean(&[score(-0.5), score(-0.5)], &subset), 0.0);
    }

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
