//! `eps_pareto_legacy`: Affine's epsilon-Pareto weights before the four-stage rewrite
//! (scoring.md 1.2, affine @ 2ca3b18c `validator.py:get_weights`; the `comb` points schedule
//! and the `v8d68f38` eligibility rule come from affine @ 8d68f380).
//!
//! Every non-empty subset of environments has one winner: the pool member that dominates
//! the most others on that subset, by accuracy with sample-size-aware tolerances, earlier
//! registration breaking ties. Winners collect points that grow with the subset size, and
//! eligible miners share the weight in proportion to their points.
//!
//! **Deterministic deviation:** upstream picks among exactly tied winners with Python's
//! `max()` over a set, whose order depends on `PYTHONHASHSEED`, so its result differs between
//! processes. Here the smallest hotkey wins such ties, and the same rule picks the miner
//! that takes everything when no eligible miner has points.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{binomial, chain_section, combinations, number};
use crate::MechanismError;
use crate::error::parse;

/// The share of the largest active count that eligibility requires under the 8d68f38 rule.
const V8D68F38_REQUIRED_SHARE: f64 = 0.9;

/// Samples above the share-based requirement under the 2ca3b18 rule.
const REQUIRED_SAMPLES_OFFSET: i64 = 10;

/// Which eligibility rule computes the samples required per environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum EligibilityRule {
    /// `max(MIN_SAMPLES_PER_ENV, 10 + int(ELIG * min(max_active_count, MAX_SAMPLES_CAP)))`.
    #[serde(rename = "v2ca3b18")]
    V2ca3b18,
    /// `int(0.9 * max_active_count)`.
    #[serde(rename = "v8d68f38")]
    V8d68f38,
}

/// The constants of `affine/sampling.py` @ 2ca3b18, overridable through the input's `config`
/// under the names of specs/mechanism-io/README.md. Unknown names are refused.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LegacyConfig {
    #[serde(rename = "EPS_FLOOR")]
    pub epsilon_floor: f64,
    #[serde(rename = "Z_NOT_WORSE")]
    pub z_not_worse: f64,
    #[serde(rename = "EPS_WIN")]
    pub epsilon_win: f64,
    #[serde(rename = "Z_WIN")]
    pub z_win: f64,
    #[serde(rename = "ELIG")]
    pub eligibility_share: f64,
    #[serde(rename = "MIN_SAMPLES_PER_ENV")]
    pub min_samples_per_environment: i64,
    #[serde(rename = "MAX_SAMPLES_CAP")]
    pub max_samples_cap: i64,
    #[serde(rename = "SAMPLE_COUNT_CAP")]
    pub sample_count_cap: i64,
    #[serde(rename = "CAP_COUNTS_IN_VARIANCE")]
    pub cap_counts_in_variance: bool,
    #[serde(rename = "CLIP_P")]
    pub clip_p: bool,
    #[serde(rename = "ELIG_RULE")]
    pub eligibility_rule: EligibilityRule,
}

impl Default for LegacyConfig {
    fn default() -> Self {
        LegacyConfig {
            epsilon_floor: 0.005,
            z_not_worse: 1.28,
            epsilon_win: 0.015,
            z_win: 0.5,
            eligibility_share: 0.10,
            min_samples_per_environment: 100,
            max_samples_cap: 2000,
            sample_count_cap: 1000,
            cap_counts_in_variance: true,
            clip_p: true,
            eligibility_rule: EligibilityRule::V2ca3b18,
        }
    }
}

/// How the points for winning a subset grow with its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum PointsSchedule {
    /// 2ca3b18: `K_1 = scale`, `K_s = scale * 2^s` for `s >= 2`.
    #[default]
    #[serde(rename = "pow2")]
    PowersOfTwo,
    /// 8d68f38: `K_1 = scale`, `K_s = K_(s-1) * C(N, s-1)`.
    #[serde(rename = "comb")]
    Combinatoric,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LegacyInput {
    /// Already dispatched on by [`super::run`]; declared so that `deny_unknown_fields`
    /// accepts it.
    #[allow(dead_code)]
    mode: String,
    envs: Vec<String>,
    miners: Vec<LegacyMiner>,
    base_hotkey: String,
    base_uid: i64,
    #[serde(default = "default_scale")]
    scale: f64,
    #[serde(default)]
    burn: f64,
    #[serde(default)]
    k_schedule: Option<PointsSchedule>,
    #[serde(default)]
    config: Option<LegacyConfig>,
}

fn default_scale() -> f64 {
    1.0
}

/// One miner as the ingest step leaves it: sample counts and summed scores per environment
/// (an environment it has no result in may be left out).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct LegacyMiner {
    hotkey: String,
    uid: i64,
    first_block: Option<i64>,
    active: bool,
    queryable: bool,
    #[serde(default)]
    cnt: BTreeMap<String, u64>,
    #[serde(default)]
    succ: BTreeMap<String, f64>,
}

/// A miner's per-environment accuracy and count, indexed like `envs`.
#[derive(Debug, Clone)]
struct Standing {
    accuracy: Vec<f64>,
    count: Vec<u64>,
}

/// Runs `eps_pareto_legacy` on its JSON input (see specs/mechanism-io/README.md).
pub fn run(input: &Value) -> Result<Value, MechanismError> {
    let input: LegacyInput = parse(input, "eps_pareto_legacy input")?;
    let config = input.config.clone().unwrap_or_default();
    check_unique(&input)?;
    let environment_count = input.envs.len();
    super::check_subset_count(environment_count, 1..=environment_count, "envs")?;

    let standings: Vec<Standing> = input
        .miners
        .iter()
        .map(|miner| {
            let count: Vec<u64> = input
                .envs
                .iter()
                .map(|name| miner.cnt.get(name).copied().unwrap_or(0))
                .collect();
            let accuracy = input
                .envs
                .iter()
                .zip(&count)
                .map(|(name, &count)| {
                    if count == 0 {
                        0.0
                    } else {
                        miner.succ.get(name).copied().unwrap_or(0.0) / count as f64
                    }
                })
                .collect();
            Standing { accuracy, count }
        })
        .collect();

    let required = required_counts(&input.miners, &standings, environment_count, &config);
    let eligible: Vec<bool> = input
        .miners
        .iter()
        .zip(&standings)
        .map(|(miner, standing)| {
            miner.active
                && miner.queryable
                && standing
                    .count
                    .iter()
                    .zip(&required)
                    .all(|(&count, &needed)| i64::try_from(count).unwrap_or(i64::MAX) >= needed)
        })
        .collect();
    let pool: Vec<usize> = if eligible.iter().any(|&is_eligible| is_eligible) {
        (0..input.miners.len())
            .filter(|&index| eligible[index])
            .collect()
    } else {
        (0..input.miners.len())
            .filter(|&index| input.miners[index].active && input.miners[index].queryable)
            .collect()
    };

    let points_per_size = points_schedule(
        input.k_schedule.unwrap_or_default(),
        input.scale,
        environment_count,
    );
    let mut points = vec![0.0; input.miners.len()];
    let mut layer_points = vec![vec![0.0; environment_count]; input.miners.len()];
    let mut best: Option<usize> = None;
    for size in 1..=environment_count {
        let size_points = points_per_size[size - 1];
        for subset in combinations(environment_count, size) {
            let Some(winner) = subset_winner(&input.miners, &standings, &pool, &subset, &config)?
            else {
                continue;
            };
            points[winner] += size_points;
            layer_points[winner][size - 1] += size_points;
            if size == environment_count {
                best = Some(winner);
            }
        }
    }

    let (chain_uids, chain_weights) = weights(&input, &eligible, &points, best);

    let mut miners_output = Map::new();
    for (index, (miner, standing)) in input.miners.iter().zip(&standings).enumerate() {
        let mut accuracy = Map::new();
        let mut count = Map::new();
        for (environment, name) in input.envs.iter().enumerate() {
            accuracy.insert(name.clone(), number(standing.accuracy[environment]));
            count.insert(name.clone(), json!(standing.count[environment]));
        }
        let mut layers = Map::new();
        for (size_index, value) in layer_points[index].iter().enumerate() {
            layers.insert((size_index + 1).to_string(), number(*value));
        }
        miners_output.insert(
            miner.uid.to_string(),
            json!({
                "hotkey": miner.hotkey,
                "first_block": miner.first_block,
                "acc": accuracy,
                "cnt": count,
                "eligible": eligible[index],
                "in_pool": pool.contains(&index),
                "layer_points": layers,
                "points": number(points[index]),
            }),
        );
    }
    let mut schedule_output = Map::new();
    for (size_index, value) in points_per_size.iter().enumerate() {
        schedule_output.insert((size_index + 1).to_string(), number(*value));
    }
    let mut required_output = Map::new();
    for (name, needed) in input.envs.iter().zip(&required) {
        required_output.insert(name.clone(), json!(needed));
    }
    let mut final_output = Map::new();
    for (uid, weight) in chain_uids.iter().zip(&chain_weights) {
        final_output.insert(uid.to_string(), number(*weight));
    }
    Ok(json!({
        "mode": "eps_pareto_legacy",
        "K": schedule_output,
        "best": best.map(|index| input.miners[index].hotkey.clone()),
        "required": required_output,
        "miners": miners_output,
        "final_weights": final_output,
        "chain": chain_section(&chain_uids, &chain_weights)?,
    }))
}

/// Hotkeys identify miners upstream and uids key the output, so both must be unique; so
/// must environment names, which key the counts.
fn check_unique(input: &LegacyInput) -> Result<(), MechanismError> {
    let mut environments = BTreeSet::new();
    for name in &input.envs {
        if !environments.insert(name) {
            return Err(MechanismError::invalid(format!(
                "envs: `{name}` is listed twice"
            )));
        }
    }
    let mut hotkeys = BTreeSet::new();
    let mut uids = BTreeSet::new();
    for (position, miner) in input.miners.iter().enumerate() {
        if !hotkeys.insert(&miner.hotkey) {
            return Err(MechanismError::invalid(format!(
                "miners[{position}]: hotkey `{}` appears twice",
                miner.hotkey
            )));
        }
        if !uids.insert(miner.uid) {
            return Err(MechanismError::invalid(format!(
                "miners[{position}]: uid {} appears twice",
                miner.uid
            )));
        }
    }
    Ok(())
}

/// Samples required per environment, from the largest count among active miners.
fn required_counts(
    miners: &[LegacyMiner],
    standings: &[Standing],
    environment_count: usize,
    config: &LegacyConfig,
) -> Vec<i64> {
    (0..environment_count)
        .map(|environment| {
            let largest = miners
                .iter()
                .zip(standings)
                .filter(|(miner, _)| miner.active)
                .map(|(_, standing)| standing.count[environment])
                .max()
                .unwrap_or(0);
            let largest = i64::try_from(largest).unwrap_or(i64::MAX);
            match config.eligibility_rule {
                EligibilityRule::V2ca3b18 => {
                    let capped = largest.min(config.max_samples_cap) as f64;
                    // Python's `int()` truncates toward zero.
                    let share = (config.eligibility_share * capped).trunc() as i64;
                    config
                        .min_samples_per_environment
                        .max(REQUIRED_SAMPLES_OFFSET.saturating_add(share))
                }
                EligibilityRule::V8d68f38 => {
                    (V8D68F38_REQUIRED_SHARE * largest as f64).trunc() as i64
                }
            }
        })
        .collect()
}

/// Points for winning a subset of each size 1..=N.
fn points_schedule(schedule: PointsSchedule, scale: f64, environment_count: usize) -> Vec<f64> {
    let mut points: Vec<f64> = Vec::with_capacity(environment_count);
    for size in 1..=environment_count {
        let value = if size == 1 {
            scale
        } else {
            match schedule {
                PointsSchedule::PowersOfTwo => scale * libm::pow(2.0, size as f64),
                PointsSchedule::Combinatoric => {
                    let previous = points.last().copied().unwrap_or(scale);
                    previous * binomial(environment_count, size - 1) as f64
                }
            }
        };
        points.push(value);
    }
    points
}

/// The not-worse tolerance and the better-by margin for one pair in one environment.
fn tolerances(
    first: (f64, u64),
    second: (f64, u64),
    config: &LegacyConfig,
) -> Result<(f64, f64), MechanismError> {
    let variance_term = |(accuracy, count): (f64, u64)| {
        let probability = if config.clip_p {
            accuracy.clamp(0.0, 1.0)
        } else {
            accuracy
        };
        let count = if config.cap_counts_in_variance {
            i64::try_from(count)
                .unwrap_or(i64::MAX)
                .min(config.sample_count_cap)
        } else {
            i64::try_from(count).unwrap_or(i64::MAX)
        };
        probability * (1.0 - probability) / (count.max(1) as f64)
    };
    let variance = variance_term(first) + variance_term(second);
    if variance < 0.0 {
        // Only an accuracy outside [0, 1] with CLIP_P off gets here; Python's math.sqrt
        // raises on it, so there is no upstream result to reproduce.
        return Err(MechanismError::invalid(format!(
            "an accuracy outside [0, 1] with CLIP_P off gives a negative variance ({variance}); \
             succ must lie between 0 and cnt"
        )));
    }
    let deviation = variance.sqrt();
    let not_worse = if config.z_not_worse > 0.0 {
        config.epsilon_floor.max(config.z_not_worse * deviation)
    } else {
        config.epsilon_floor
    };
    let better = if config.z_win > 0.0 {
        config.epsilon_win.max(config.z_win * deviation)
    } else {
        config.epsilon_win
    };
    Ok((not_worse, better.min(not_worse)))
}

/// Whether `first` dominates `second` on a subset: not worse anywhere and better somewhere,
/// or within tolerance everywhere and registered strictly earlier (a missing first block
/// counts as infinitely late).
fn dominates(
    first: (&LegacyMiner, &Standing),
    second: (&LegacyMiner, &Standing),
    subset: &[usize],
    config: &LegacyConfig,
) -> Result<bool, MechanismError> {
    let mut not_worse_everywhere = true;
    let mut better_somewhere = false;
    let mut close_everywhere = true;
    for &environment in subset {
        let first_accuracy = first.1.accuracy[environment];
        let second_accuracy = second.1.accuracy[environment];
        let (not_worse, better) = tolerances(
            (first_accuracy, first.1.count[environment]),
            (second_accuracy, second.1.count[environment]),
            config,
        )?;
        if first_accuracy < second_accuracy - not_worse {
            not_worse_everywhere = false;
        }
        if first_accuracy >= second_accuracy + better {
            better_somewhere = true;
        }
        if (first_accuracy - second_accuracy).abs() > not_worse {
            close_everywhere = false;
        }
    }
    let earlier = match (first.0.first_block, second.0.first_block) {
        (Some(first_block), Some(second_block)) => first_block < second_block,
        (Some(_), None) => true,
        (None, _) => false,
    };
    Ok((not_worse_everywhere && better_somewhere) || (close_everywhere && earlier))
}

/// The subset's winner: most pool members dominated, then earliest first block (missing =
/// latest), then (our deterministic deviation) the smallest hotkey. `None` for an empty pool.
fn subset_winner(
    miners: &[LegacyMiner],
    standings: &[Standing],
    pool: &[usize],
    subset: &[usize],
    config: &LegacyConfig,
) -> Result<Option<usize>, MechanismError> {
    let mut best: Option<(usize, usize)> = None;
    for &candidate in pool {
        let mut dominated = 0usize;
        for &other in pool {
            if other != candidate
                && dominates(
                    (&miners[candidate], &standings[candidate]),
                    (&miners[other], &standings[other]),
                    subset,
                    config,
                )?
            {
                dominated += 1;
            }
        }
        let better = match best {
            None => true,
            Some((leader, leader_dominated)) => {
                rank_candidates(
                    (&miners[candidate], dominated),
                    (&miners[leader], leader_dominated),
                ) == Ordering::Greater
            }
        };
        if better {
            best = Some((candidate, dominated));
        }
    }
    Ok(best.map(|(index, _)| index))
}

/// Orders two candidates for a subset win; `Greater` means `first` wins.
fn rank_candidates(first: (&LegacyMiner, usize), second: (&LegacyMiner, usize)) -> Ordering {
    first
        .1
        .cmp(&second.1)
        .then_with(|| match (first.0.first_block, second.0.first_block) {
            // -first_block: the earlier block is the larger key.
            (Some(first_block), Some(second_block)) => second_block.cmp(&first_block),
            (Some(_), None) => Ordering::Greater,
            (None, Some(_)) => Ordering::Less,
            (None, None) => Ordering::Equal,
        })
        .then_with(|| second.0.hotkey.cmp(&first.0.hotkey))
}

/// `calculate_weights`: returns the submitted uids and weights.
///
/// A burn of 1 or more, no miners, or no eligible miner give everything to the base uid.
/// Otherwise eligible miners share by points (all to the top-points eligible miner when no
/// eligible miner has points), scaled by 1 - burn, and the base hotkey gets the burn on top
/// (appended when it is not eligible). The uid list is the eligible uids in input order with
/// the base appended and the overall best moved last, as upstream orders it.
fn weights(
    input: &LegacyInput,
    eligible: &[bool],
    points: &[f64],
    best: Option<usize>,
) -> (Vec<i64>, Vec<f64>) {
    let burn = input.burn.clamp(0.0, 1.0);
    let eligible_indexes: Vec<usize> = (0..input.miners.len())
        .filter(|&index| eligible[index])
        .collect();
    if burn >= 1.0 || eligible_indexes.is_empty() {
        return (vec![input.base_uid], vec![1.0]);
    }
    let total = eligible_indexes
        .iter()
        .fold(0.0, |sum, &index| sum + points[index]);
    let entries: Vec<(usize, f64)> = if total > 0.0 {
        eligible_indexes
            .iter()
            .map(|&index| (index, points[index] / total))
            .collect()
    } else {
        let top = eligible_indexes
            .iter()
            .copied()
            .reduce(|leader, candidate| {
                let order = points[candidate].total_cmp(&points[leader]).then_with(|| {
                    input.miners[leader]
                        .hotkey
                        .cmp(&input.miners[candidate].hotkey)
                });
                if order == Ordering::Greater {
                    candidate
                } else {
                    leader
                }
            });
        eligible_indexes
            .iter()
            .map(|&index| (index, if Some(index) == top { 1.0 } else { 0.0 }))
            .collect()
    };
    let mut uids: Vec<i64> = entries
        .iter()
        .map(|(index, _)| input.miners[*index].uid)
        .collect();
    let mut values: Vec<f64> = entries.iter().map(|(_, weight)| *weight).collect();
    if burn > 0.0 {
        for value in &mut values {
            *value *= 1.0 - burn;
        }
        let base = entries
            .iter()
            .position(|(index, _)| input.miners[*index].hotkey == input.base_hotkey);
        match base {
            Some(position) => values[position] += burn,
            None => {
                uids.push(input.base_uid);
                values.push(burn);
            }
        }
    }
    if let Some(best_uid) = best.map(|index| input.miners[index].uid)
        && let Some(position) = uids.iter().position(|uid| *uid == best_uid)
    {
        let uid = uids.remove(position);
        let value = values.remove(position);
        uids.push(uid);
        values.push(value);
    }
    (uids, values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_match_the_spec() {
        assert_eq!(
            points_schedule(PointsSchedule::PowersOfTwo, 1.0, 3),
            [1.0, 4.0, 8.0]
        );
        assert_eq!(
            points_schedule(PointsSchedule::Combinatoric, 1.0, 5),
            [1.0, 5.0, 50.0, 500.0, 2500.0]
        );
    }

    #[test]
    fn tolerances_floor_and_cap() {
        let config = LegacyConfig::default();
        // No variance (accuracy 1): the floors apply.
        let (not_worse, better) = tolerances((1.0, 400), (1.0, 400), &config).unwrap();
        assert_eq!(not_worse, 0.005);
        assert_eq!(
            better, 0.005,
            "the win margin never exceeds the not-worse tolerance"
        );
        // Counts are capped at 1000 in the variance.
        let capped = tolerances((0.5, 5000), (0.5, 5000), &config).unwrap();
        let at_cap = tolerances((0.5, 1000), (0.5, 1000), &config).unwrap();
        assert_eq!(capped, at_cap);
        // 1.28 * sqrt(2 * 0.25 / 1000) = 0.0286 and 0.5 * sqrt(..) = 0.0112 < 1.5%.
        assert_eq!(at_cap.0, 1.28 * (0.5f64 / 1000.0).sqrt());
        assert_eq!(at_cap.1, 0.015);
    }
}
