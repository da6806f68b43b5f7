//! Tier 2, the behavioural checks, computed from a miner's raw submission
//! (`packages/validation/tier2_behavioral.py` at chainswarm/risk-assesment @ 8c6e7a50).
//!
//! Upstream reads the rows from ClickHouse and computes with numpy and scipy; here the rows
//! come from the input and every numpy reduction is summed in numpy's pairwise order.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::MechanismError;
use crate::numeric::pairwise_sum;

/// Number of equal-width histogram bins over [0, 1] for the entropy check.
const ENTROPY_BINS: usize = 10;
/// Added to every normalised bin before the entropy, as upstream does, so empty bins count.
const ENTROPY_BIN_FLOOR: f64 = 1e-10;
/// Consistency upstream reports when there is no previous date or fewer than two shared
/// alerts to compare.
const CONSISTENCY_WITHOUT_HISTORY: f64 = 0.7;
/// Shared alerts needed before the day-over-day consistency is measured.
const CONSISTENCY_MINIMUM_SHARED_ALERTS: usize = 2;
/// Pairs (miner score, consensus) needed before the Spearman correlation is computed.
const RANK_MINIMUM_PAIRS: usize = 2;

/// The four behavioural components, as upstream names them in its results.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BehaviourComponents {
    pub distribution_entropy: f64,
    pub rank_correlation: f64,
    pub consistency: f64,
    pub address_consistency: f64,
}

impl BehaviourComponents {
    /// The tier 2 score: each component times 0.25, summed left to right as upstream does.
    pub fn score(&self) -> f64 {
        self.distribution_entropy * 0.25
            + self.rank_correlation * 0.25
            + self.consistency * 0.25
            + self.address_consistency * 0.25
    }
}

/// A miner's raw submission for one date and window, with what upstream's queries join to it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSubmission {
    /// Submitted scores, parallel to `alert_ids` (one row per submission).
    pub scores: Vec<f64>,
    /// Alert of each submitted score.
    pub alert_ids: Vec<String>,
    /// Per-alert median score over all submissions of the date and window (the miner's own
    /// included), as upstream's consensus query returns it.
    #[serde(default)]
    pub consensus: BTreeMap<String, f64>,
    /// The miner's scores on its latest previous date; absent or null when it has none.
    #[serde(default)]
    pub prev_scores: Option<BTreeMap<String, f64>>,
    /// Address of each alert (upstream joins `raw_alerts`); alerts without one are skipped by
    /// the address-consistency check, like the inner join does.
    #[serde(default)]
    pub address_of: BTreeMap<String, String>,
}

impl RawSubmission {
    /// Checks the shapes and numbers the computation relies on, naming the miner.
    pub fn validate(&self, miner: &str) -> Result<(), MechanismError> {
        if self.scores.len() != self.alert_ids.len() {
            return Err(MechanismError::invalid(format!(
                "miner `{miner}`: tier2_raw.scores has {} entries but tier2_raw.alert_ids has {}",
                self.scores.len(),
                self.alert_ids.len()
            )));
        }
        let finite = |mut values: std::slice::Iter<'_, f64>, field: &str| {
            if values.any(|value| !value.is_finite()) {
                Err(MechanismError::invalid(format!(
                    "miner `{miner}`: tier2_raw.{field} holds a non-finite number"
                )))
            } else {
                Ok(())
            }
        };
        finite(self.scores.iter(), "scores")?;
        let consensus: Vec<f64> = self.consensus.values().copied().collect();
        finite(consensus.iter(), "consensus")?;
        if let Some(previous) = &self.prev_scores {
            let previous: Vec<f64> = previous.values().copied().collect();
            finite(previous.iter(), "prev_scores")?;
        }
        Ok(())
    }

    /// The four components, each computed the way upstream's validator does.
    pub fn components(&self) -> BehaviourComponents {
        BehaviourComponents {
            distribution_entropy: self.distribution_entropy(),
            rank_correlation: self.rank_correlation(),
            consistency: self.consistency(),
            address_consistency: self.address_consistency(),
        }
    }

    /// The miner's score per alert, as upstream's `{alert_id: score}` dict builds it: a
    /// repeated alert keeps its last score.
    fn score_by_alert(&self) -> BTreeMap<&str, f64> {
        self.alert_ids
            .iter()
            .map(String::as_str)
            .zip(self.scores.iter().copied())
            .collect()
    }

    /// Shannon entropy of the 10-bin score histogram over [0, 1], divided by ln 10.
    ///
    /// Values outside [0, 1] fall in no bin but still count in the divisor, as in upstream's
    /// `hist / len(scores)`. scipy's `entropy` then renormalises the floored bins.
    pub fn distribution_entropy(&self) -> f64 {
        if self.scores.is_empty() {
            return 0.0;
        }
        let mut counts = [0_u64; ENTROPY_BINS];
        for &score in &self.scores {
            if let Some(count) = histogram_bin(score).and_then(|bin| counts.get_mut(bin)) {
                *count += 1;
            }
        }
        let total = self.scores.len() as f64;
        let floored: Vec<f64> = counts
            .iter()
            .map(|&count| count as f64 / total + ENTROPY_BIN_FLOOR)
            .collect();
        let floored_total = pairwise_sum(&floored);
        let terms: Vec<f64> = floored
            .iter()
            .map(|&value| {
                let probability = 1.0 * value / floored_total;
                entropy_term(probability)
            })
            .collect();
        pairwise_sum(&terms) / libm::log(ENTROPY_BINS as f64)
    }

    /// (Spearman ρ between the miner's scores and the consensus medians + 1) / 2, over the
    /// miner's alerts in alert-id order that have a consensus value.
    ///
    /// 0 when the miner submitted nothing, when no alert has a consensus value or when fewer
    /// than two pairs remain; NaN when either side is constant (scipy returns NaN there).
    pub fn rank_correlation(&self) -> f64 {
        let miner_scores = self.score_by_alert();
        if miner_scores.is_empty() {
            return 0.0;
        }
        let mut miner_side = Vec::new();
        let mut consensus_side = Vec::new();
        for (alert, &score) in &miner_scores {
            if let Some(&median) = self.consensus.get(*alert) {
                miner_side.push(score);
                consensus_side.push(median);
            }
        }
        if miner_side.len() < RANK_MINIMUM_PAIRS {
            return 0.0;
        }
        (spearman(&miner_side, &consensus_side) + 1.0) / 2.0
    }

    /// 1 − min(mean |today − previous|, 1) over the alerts scored on both dates.
    ///
    /// Upstream iterates a Python set of the shared alert ids, whose order depends on the
    /// hash seed; the shared alerts are taken in alert-id order here so the mean is the same
    /// on every run (it can differ from one upstream run in the last bit only).
    pub fn consistency(&self) -> f64 {
        let Some(previous) = &self.prev_scores else {
            return CONSISTENCY_WITHOUT_HISTORY;
        };
        if previous.is_empty() {
            return CONSISTENCY_WITHOUT_HISTORY;
        }
        let current = self.score_by_alert();
        let differences: Vec<f64> = current
            .iter()
            .filter_map(|(alert, &score)| {
                previous
                    .get(*alert)
                    .map(|&previous_score| (score - previous_score).abs())
            })
            .collect();
        if differences.len() < CONSISTENCY_MINIMUM_SHARED_ALERTS {
            return CONSISTENCY_WITHOUT_HISTORY;
        }
        let mean_difference = pairwise_sum(&differences) / differences.len() as f64;
        1.0 - mean_difference.min(1.0)
    }

    /// max(0, 1 + mean penalty) over addresses with more than one submitted score, the
    /// penalty growing with the standard deviation of that address's scores.
    ///
    /// 0 when no submitted alert has an address, 1 when no address has two scores. Addresses
    /// are visited in the order their first row appears, as upstream's dict does with the
    /// rows it reads.
    pub fn address_consistency(&self) -> f64 {
        let mut position_of_address: BTreeMap<&str, usize> = BTreeMap::new();
        let mut scores_by_address: Vec<Vec<f64>> = Vec::new();
        for (alert, &score) in self.alert_ids.iter().zip(&self.scores) {
            if let Some(address) = self.address_of.get(alert) {
                let position = *position_of_address
                    .entry(address.as_str())
                    .or_insert_with(|| {
                        scores_by_address.push(Vec::new());
                        scores_by_address.len() - 1
                    });
                if let Some(scores) = scores_by_address.get_mut(position) {
                    scores.push(score);
                }
            }
        }
        if scores_by_address.is_empty() {
            return 0.0;
        }
        let penalties: Vec<f64> = scores_by_address
            .iter()
            .filter(|scores| scores.len() > 1)
            .map(|scores| consistency_penalty(population_standard_deviation(scores)))
            .collect();
        if penalties.is_empty() {
            return 1.0;
        }
        let average_penalty = pairwise_sum(&penalties) / penalties.len() as f64;
        (1.0 + average_penalty).max(0.0)
    }
}

/// The bin numpy's `histogram(scores, bins=10, range=(0, 1))` puts a value in, or `None` when
/// the value lies outside [0, 1].
///
/// numpy computes `int(x * 10)` and then corrects it against the edges
/// `linspace(0, 1, 11)` = `i * 0.1`, whose float values (0.30000000000000004, ...) put values
/// such as 0.3, 0.6 and 0.7 one bin lower than `floor(10 x)`; the last bin includes 1.
pub fn histogram_bin(value: f64) -> Option<usize> {
    if !(0.0..=1.0).contains(&value) {
        return None;
    }
    let edge = |index: usize| -> f64 {
        if index == ENTROPY_BINS {
            1.0
        } else {
            index as f64 * 0.1
        }
    };
    let scaled = (value - 0.0) / (1.0 - 0.0) * ENTROPY_BINS as f64;
    // `value` is in [0, 1], so `scaled` is in [0, 10] and the cast is exact truncation.
    let mut index = scaled as usize;
    if index == ENTROPY_BINS {
        index -= 1;
    }
    if value < edge(index) {
        index -= 1;
    }
    if value >= edge(index + 1) && index != ENTROPY_BINS - 1 {
        index += 1;
    }
    Some(index)
}

/// scipy's `entr(x)`: −x·ln x for x > 0, and 0 at 0.
fn entropy_term(probability: f64) -> f64 {
    if probability > 0.0 {
        -probability * libm::log(probability)
    } else {
        0.0
    }
}

/// numpy's `std` (population, ddof 0): pairwise mean, squared deviations, pairwise mean,
/// square root.
fn population_standard_deviation(values: &[f64]) -> f64 {
    let count = values.len() as f64;
    let mean = pairwise_sum(values) / count;
    let squared: Vec<f64> = values
        .iter()
        .map(|value| {
            let deviation = value - mean;
            deviation * deviation
        })
        .collect();
    (pairwise_sum(&squared) / count).sqrt()
}

/// Upstream's step penalty for an address whose scores spread by `standard_deviation`.
fn consistency_penalty(standard_deviation: f64) -> f64 {
    if standard_deviation < 0.10 {
        0.0
    } else if standard_deviation < 0.15 {
        -0.05
    } else if standard_deviation < 0.25 {
        -0.10
    } else {
        -0.15
    }
}

/// scipy's `rankdata(method="average")`: 1-based ranks, tied values sharing the mean of
/// their positions.
pub fn average_ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<(f64, usize)> = values.iter().copied().zip(0..).collect();
    order.sort_by(|left, right| left.0.total_cmp(&right.0));
    let mut ranks = vec![0.0; values.len()];
    let mut start = 0;
    for tie_group in order.chunk_by(|left, right| left.0 == right.0) {
        let end = start + tie_group.len();
        // Positions start+1 ..= end share their mean, (start + 1 + end) / 2.
        let shared = 0.5 * ((end + start + 1) as f64);
        for &(_, index) in tie_group {
            if let Some(rank) = ranks.get_mut(index) {
                *rank = shared;
            }
        }
        start = end;
    }
    ranks
}

/// scipy's `spearmanr` of two equally long samples: numpy's `corrcoef` of their average
/// ranks, `(cov · 1/(n−1)) / σx / σy` with `σ = sqrt(var · 1/(n−1))`, clipped to [−1, 1];
/// NaN when a side is constant (0 / 0, where scipy returns NaN too).
///
/// numpy forms the sums of products with BLAS, whose accumulation order is the library's;
/// pairwise sums are used here, so a result can differ from scipy's in the last bit.
pub fn spearman(left: &[f64], right: &[f64]) -> f64 {
    let left_ranks = average_ranks(left);
    let right_ranks = average_ranks(right);
    let count = left_ranks.len() as f64;
    let left_mean = pairwise_sum(&left_ranks) / count;
    let right_mean = pairwise_sum(&right_ranks) / count;
    let left_centred: Vec<f64> = left_ranks.iter().map(|rank| rank - left_mean).collect();
    let right_centred: Vec<f64> = right_ranks.iter().map(|rank| rank - right_mean).collect();
    let dot = |a: &[f64], b: &[f64]| -> f64 {
        let products: Vec<f64> = a.iter().zip(b).map(|(x, y)| x * y).collect();
        pairwise_sum(&products)
    };
    let scale = 1.0 / (count - 1.0);
    let covariance = dot(&left_centred, &right_centred) * scale;
    let left_variance = dot(&left_centred, &left_centred) * scale;
    let right_variance = dot(&right_centred, &right_centred) * scale;
    let correlation = covariance / left_variance.sqrt() / right_variance.sqrt();
    if correlation.is_nan() {
        correlation
    } else {
        correlation.clamp(-1.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_bins_follow_numpy_edges() {
        assert_eq!(histogram_bin(0.0), Some(0));
        assert_eq!(histogram_bin(0.1), Some(1));
        // 3 * 0.1 = 0.30000000000000004 > 0.3, so 0.3 stays in bin 2 (likewise 0.6, 0.7).
        assert_eq!(histogram_bin(0.3), Some(2));
        assert_eq!(histogram_bin(0.6), Some(5));
        assert_eq!(histogram_bin(0.7), Some(6));
        assert_eq!(histogram_bin(0.5), Some(5));
        assert_eq!(histogram_bin(0.99), Some(9));
        assert_eq!(histogram_bin(1.0), Some(9));
        assert_eq!(histogram_bin(-0.01), None);
        assert_eq!(histogram_bin(1.01), None);
    }

    #[test]
    fn average_ranks_share_ties() {
        assert_eq!(
            average_ranks(&[0.5, 0.1, 0.5, 0.9]),
            vec![2.5, 1.0, 2.5, 4.0]
        );
    }

    #[test]
    fn spearman_of_monotone_and_constant_samples() {
        assert_eq!(spearman(&[0.1, 0.2, 0.3], &[1.0, 5.0, 9.0]), 1.0);
        assert_eq!(spearman(&[0.1, 0.2, 0.3], &[9.0, 5.0, 1.0]), -1.0);
        assert!(spearman(&[0.4, 0.4, 0.4], &[1.0, 2.0, 3.0]).is_nan());
    }

    fn submission(scores: &[f64], alerts: &[&str]) -> RawSubmission {
        RawSubmission {
            scores: scores.to_vec(),
            alert_ids: alerts.iter().map(|alert| alert.to_string()).collect(),
            consensus: BTreeMap::new(),
            prev_scores: None,
            address_of: BTreeMap::new(),
        }
    }

    #[test]
    fn entropy_is_one_for_uniform_bins_and_low_for_one_bin() {
        let uniform: Vec<f64> = (0..10).map(|bin| bin as f64 / 10.0 + 0.05).collect();
        let alerts: Vec<String> = (0..10).map(|index| format!("a{index}")).collect();
        let alert_refs: Vec<&str> = alerts.iter().map(String::as_str).collect();
        let entropy = submission(&uniform, &alert_refs).distribution_entropy();
        assert!((entropy - 1.0).abs() < 1e-12, "{entropy}");
        let single = submission(&[0.55; 10], &alert_refs).distribution_entropy();
        assert!(single < 1e-7, "{single}");
        assert_eq!(submission(&[], &[]).distribution_entropy(), 0.0);
    }

    #[test]
    fn consistency_defaults_without_history_or_overlap() {
        let mut raw = submission(&[0.2, 0.4], &["a", "b"]);
        assert_eq!(raw.consistency(), 0.7);
        raw.prev_scores = Some(BTreeMap::from([("a".to_string(), 0.0)]));
        assert_eq!(raw.consistency(), 0.7);
        raw.prev_scores = Some(BTreeMap::from([
            ("a".to_string(), 0.0),
            ("b".to_string(), 0.0),
        ]));
        // mean |Δ| = 0.3.
        assert_eq!(raw.consistency(), 1.0 - (0.2 + 0.4) / 2.0);
    }

    #[test]
    fn address_penalties_step_with_spread() {
        let mut raw = submission(&[0.1, 0.12, 0.0, 1.0, 0.5], &["a", "b", "c", "d", "e"]);
        assert_eq!(raw.address_consistency(), 0.0, "no addresses known");
        raw.address_of = BTreeMap::from([
            ("a".to_string(), "x".to_string()),
            ("b".to_string(), "x".to_string()),
            ("c".to_string(), "y".to_string()),
            ("d".to_string(), "y".to_string()),
            ("e".to_string(), "z".to_string()),
        ]);
        // x: std 0.01 -> 0; y: std 0.5 -> -0.15; z has one alert and is skipped.
        assert_eq!(raw.address_consistency(), 1.0 + (0.0 + -0.15) / 2.0);
    }
}
