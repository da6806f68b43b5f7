//! The four scoring stages of `stages_v2`: averages and validity, the first-block Pareto
//! filter, subset scoring, and the final threshold with redistribution to uid 0.

use std::collections::{BTreeMap, BTreeSet};

use super::input::Miner;
use super::{BURN_UID, StagesConfig};
use crate::MechanismError;
use crate::affine::combinations;

/// Stage 1's result for one miner and environment.
#[derive(Debug, Clone, Copy)]
pub(super) struct EnvironmentScore {
    pub(super) average: f64,
    pub(super) threshold: f64,
    pub(super) valid: bool,
}

/// One environment subset: its layer (= size), its output key and its environments as
/// indexes into the input's `environments`, in name order.
#[derive(Debug, Clone)]
pub(super) struct Subset {
    pub(super) layer: usize,
    pub(super) key: String,
    pub(super) environments: Vec<usize>,
}

/// What stage 3 records for a miner in a subset where it is eligible.
#[derive(Debug, Clone, Copy)]
pub(super) struct SubsetResult {
    pub(super) score: f64,
    pub(super) rank: usize,
    pub(super) weight: f64,
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
pub(super) fn stage_one(
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
pub(super) fn build_subsets(environments: &[String], max_layers: usize) -> Vec<Subset> {
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
pub(super) fn start_layer(environment_count: usize, max_layers: usize) -> usize {
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
pub(super) fn stage_two(
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
pub(super) type SubsetResults = Vec<BTreeMap<usize, SubsetResult>>;

/// Stage 3: each subset's weight goes to its eligible miners (API order, not filtered, valid
/// in every environment of the subset) by geometric mean decayed by rank. Returns per miner
/// the results by subset index and the cumulative weight summed in subset order.
pub(super) fn stage_three(
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
pub(super) fn stage_four(miners: &[Miner], cumulative: &[f64], threshold: f64) -> Vec<(i64, f64)> {
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
}
