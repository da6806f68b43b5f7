//! Tier 3, the accuracy checks once labels exist: 3a against address risk labels
//! (`tier3a_ground_truth.py`) and 3b against the 30-day feature evolution
//! (`tier3b_evolution.py`), at chainswarm/risk-assesment @ 8c6e7a50.
//!
//! Upstream uses scikit-learn's `roc_auc_score` and `brier_score_loss`; both are rebuilt here
//! in scikit-learn's order of operations (ROC curve, then trapezoids summed pairwise).

use serde::Deserialize;

use crate::MechanismError;
use crate::numeric::pairwise_sum;

/// Share of the evolution score that is the ROC AUC.
const EVOLUTION_AUC_WEIGHT: f64 = 0.40;
/// Share of the evolution score that is one minus the Brier loss.
const EVOLUTION_BRIER_WEIGHT: f64 = 0.30;
/// Share of the evolution score that is the pattern accuracy.
const EVOLUTION_PATTERN_WEIGHT: f64 = 0.30;
/// AUC the evolution tier uses when every label is the same class.
const SINGLE_CLASS_AUC: f64 = 0.5;
/// Score from which an alert whose pattern gives no label of its own counts as illicit.
const ILLICIT_SCORE_THRESHOLD: f64 = 0.5;

/// Labelled scores of one miner (tier 3a): one row per submission joined to a labelled
/// address; label 1 for risk level high or critical, 0 for low or medium.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroundTruthInput {
    pub scores: Vec<f64>,
    pub labels: Vec<u8>,
    /// Distinct alerts the miner submitted for the date and window.
    pub total_alerts: u64,
}

/// Evolution-tracked scores of one miner (tier 3b): one row per submission whose alert has
/// a T+30 evolution snapshot, with that snapshot's pattern classification.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvolutionInput {
    pub scores: Vec<f64>,
    pub patterns: Vec<String>,
    /// Distinct alerts the miner submitted for the date and window.
    pub total_alerts: u64,
}

/// A tier's score (None when it had no rows) and its coverage.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TierResult {
    pub score: Option<f64>,
    pub coverage: f64,
}

impl TierResult {
    /// What upstream reports for a tier without rows.
    pub const EMPTY: TierResult = TierResult {
        score: None,
        coverage: 0.0,
    };
}

/// Rows over distinct submitted alerts, or 0 when the miner submitted none.
fn coverage(rows: usize, total_alerts: u64) -> f64 {
    if total_alerts > 0 {
        rows as f64 / total_alerts as f64
    } else {
        0.0
    }
}

/// scikit-learn's `brier_score_loss` refuses probabilities outside [0, 1]; upstream would
/// raise there, so such input is rejected, naming the field.
fn check_probabilities(scores: &[f64], miner: &str, field: &str) -> Result<(), MechanismError> {
    match scores.iter().find(|score| !(0.0..=1.0).contains(*score)) {
        Some(score) => Err(MechanismError::invalid(format!(
            "miner `{miner}`: {field}.scores holds {score}, outside [0, 1] (or not a number)"
        ))),
        None => Ok(()),
    }
}

impl GroundTruthInput {
    /// Tier 3a: the ROC AUC of the scores against the labels, with coverage labelled rows
    /// over submitted alerts.
    ///
    /// With a single label class scikit-learn's answer depends on its version (ValueError
    /// before 1.6, 0.0 in 1.6.0, NaN with a warning since 1.6.1); the current behaviour, NaN,
    /// is reproduced, so the final score becomes NaN (null in the output).
    pub fn evaluate(&self, miner: &str) -> Result<TierResult, MechanismError> {
        if self.scores.len() != self.labels.len() {
            return Err(MechanismError::invalid(format!(
                "miner `{miner}`: tier3a.scores has {} entries but tier3a.labels has {}",
                self.scores.len(),
                self.labels.len()
            )));
        }
        if let Some(label) = self.labels.iter().find(|label| **label > 1) {
            return Err(MechanismError::invalid(format!(
                "miner `{miner}`: tier3a.labels holds {label}; labels are 0 or 1"
            )));
        }
        check_probabilities(&self.scores, miner, "tier3a")?;
        if self.scores.is_empty() {
            return Ok(TierResult::EMPTY);
        }
        let area = roc_auc(&self.labels, &self.scores).unwrap_or(f64::NAN);
        Ok(TierResult {
            score: Some(area),
            coverage: coverage(self.scores.len(), self.total_alerts),
        })
    }
}

/// The score range a pattern expects: (low, high), both inclusive.
pub fn expected_range(pattern: &str) -> (f64, f64) {
    match pattern {
        "expanding_illicit" => (0.70, 1.00),
        "benign_indicators" => (0.00, 0.30),
        "dormant" => (0.15, 0.25),
        _ => (0.30, 0.70),
    }
}

impl EvolutionInput {
    /// Tier 3b: 0.40·AUC + 0.30·(1 − Brier) + 0.30·pattern accuracy, with coverage tracked
    /// rows over submitted alerts.
    ///
    /// Labels: expanding_illicit 1, benign_indicators 0, any other pattern `score ≥ 0.5`.
    /// The AUC is 0.5 when all labels are one class (upstream guards this case itself).
    pub fn evaluate(&self, miner: &str) -> Result<TierResult, MechanismError> {
        if self.scores.len() != self.patterns.len() {
            return Err(MechanismError::invalid(format!(
                "miner `{miner}`: tier3b.scores has {} entries but tier3b.patterns has {}",
                self.scores.len(),
                self.patterns.len()
            )));
        }
        check_probabilities(&self.scores, miner, "tier3b")?;
        if self.scores.is_empty() {
            return Ok(TierResult::EMPTY);
        }
        let mut labels = Vec::with_capacity(self.scores.len());
        let mut pattern_matches = Vec::with_capacity(self.scores.len());
        for (&score, pattern) in self.scores.iter().zip(&self.patterns) {
            let (low, high) = expected_range(pattern);
            pattern_matches.push(if low <= score && score <= high {
                1.0
            } else {
                0.0
            });
            labels.push(match pattern.as_str() {
                "expanding_illicit" => 1,
                "benign_indicators" => 0,
                _ => u8::from(score >= ILLICIT_SCORE_THRESHOLD),
            });
        }
        let area = roc_auc(&labels, &self.scores).unwrap_or(SINGLE_CLASS_AUC);
        let brier = brier_loss(&labels, &self.scores);
        let pattern_accuracy = pairwise_sum(&pattern_matches) / pattern_matches.len() as f64;
        let score = area * EVOLUTION_AUC_WEIGHT
            + (1.0 - brier) * EVOLUTION_BRIER_WEIGHT
            + pattern_accuracy * EVOLUTION_PATTERN_WEIGHT;
        Ok(TierResult {
            score: Some(score),
            coverage: coverage(self.scores.len(), self.total_alerts),
        })
    }
}

/// scikit-learn's `brier_score_loss` for 0/1 labels, in its current (1.7+) two-column
/// form: each row's squared error summed over the columns (1 − label, label) against
/// (1 − score, score), the rows averaged in numpy's pairwise order, then halved.
///
/// Mathematically this is the mean of `(label − score)²`; the two-column order is kept
/// because `1 − score` rounds, which moves the last bit.
pub fn brier_loss(labels: &[u8], scores: &[f64]) -> f64 {
    let row_errors: Vec<f64> = labels
        .iter()
        .zip(scores)
        .map(|(&label, &score)| {
            let positive = f64::from(label);
            let negative_difference = (1.0 - positive) - (1.0 - score);
            let positive_difference = positive - score;
            negative_difference * negative_difference + positive_difference * positive_difference
        })
        .collect();
    let mut mean = pairwise_sum(&row_errors) / row_errors.len() as f64;
    mean *= 0.5;
    mean
}

/// scikit-learn's binary `roc_auc_score`, or `None` when the labels hold one class only.
///
/// Follows `roc_curve` (scores sorted descending by reversing a stable ascending sort, one
/// point per distinct score, collinear points dropped, a leading (0, 0)), then `auc`: the
/// trapezoids `Δfpr · (tpr₁ + tpr₀) / 2` summed pairwise.
pub fn roc_auc(labels: &[u8], scores: &[f64]) -> Option<f64> {
    let positives = labels.iter().filter(|&&label| label == 1).count();
    if positives == 0 || positives == labels.len() {
        return None;
    }
    let mut ranked: Vec<(f64, f64)> = scores
        .iter()
        .zip(labels)
        .map(|(&score, &label)| (score, f64::from(label)))
        .collect();
    ranked.sort_by(|left, right| left.0.total_cmp(&right.0));
    ranked.reverse();

    // One threshold at the last position of every run of equal scores.
    let mut true_positives = Vec::new();
    let mut false_positives = Vec::new();
    let mut cumulative = 0.0;
    for (position, &(score, label)) in ranked.iter().enumerate() {
        cumulative += label;
        let run_ends = ranked
            .get(position + 1)
            .is_none_or(|&(next_score, _)| next_score != score);
        if run_ends {
            true_positives.push(cumulative);
            false_positives.push(1.0 + position as f64 - cumulative);
        }
    }

    // drop_intermediate: keep the ends and every point where the second difference of
    // either count is non-zero.
    if false_positives.len() > 2 {
        let bends: Vec<bool> = false_positives
            .windows(3)
            .zip(true_positives.windows(3))
            .map(|(false_window, true_window)| {
                second_difference(false_window) != 0.0 || second_difference(true_window) != 0.0
            })
            .collect();
        let keep: Vec<bool> = std::iter::once(true)
            .chain(bends)
            .chain(std::iter::once(true))
            .collect();
        let kept = |counts: &[f64]| -> Vec<f64> {
            counts
                .iter()
                .zip(&keep)
                .filter(|(_, keep)| **keep)
                .map(|(count, _)| *count)
                .collect()
        };
        false_positives = kept(&false_positives);
        true_positives = kept(&true_positives);
    }
    false_positives.insert(0, 0.0);
    true_positives.insert(0, 0.0);

    let false_total = *false_positives.last()?;
    let true_total = *true_positives.last()?;
    let false_rate: Vec<f64> = false_positives
        .iter()
        .map(|count| count / false_total)
        .collect();
    let true_rate: Vec<f64> = true_positives
        .iter()
        .map(|count| count / true_total)
        .collect();
    let trapezoids: Vec<f64> = false_rate
        .windows(2)
        .zip(true_rate.windows(2))
        .map(|(x, y)| match (x, y) {
            ([x0, x1], [y0, y1]) => (x1 - x0) * (y1 + y0) / 2.0,
            _ => 0.0,
        })
        .collect();
    Some(pairwise_sum(&trapezoids))
}

/// numpy's `diff(values, 2)` at one position: the difference of the two first differences
/// of a window of three.
fn second_difference(window: &[f64]) -> f64 {
    match window {
        [first, second, third] => (third - second) - (second - first),
        _ => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_of_perfect_inverted_and_tied_rankings() {
        assert_eq!(roc_auc(&[0, 0, 1, 1], &[0.1, 0.2, 0.8, 0.9]), Some(1.0));
        assert_eq!(roc_auc(&[1, 1, 0, 0], &[0.1, 0.2, 0.8, 0.9]), Some(0.0));
        assert_eq!(roc_auc(&[0, 1], &[0.5, 0.5]), Some(0.5));
        // Mann-Whitney: positives 0.35 (beats 0.1, loses to 0.4) and 0.8 (beats both) -> 3/4.
        assert_eq!(roc_auc(&[0, 1, 0, 1], &[0.1, 0.35, 0.4, 0.8]), Some(0.75));
        assert_eq!(roc_auc(&[1, 1], &[0.1, 0.2]), None);
    }

    #[test]
    fn brier_is_the_mean_squared_error() {
        assert_eq!(brier_loss(&[1, 0], &[0.5, 0.5]), 0.25);
        assert_eq!(brier_loss(&[1, 0], &[1.0, 0.0]), 0.0);
    }

    #[test]
    fn evolution_score_with_one_label_class_uses_half_auc() {
        let input = EvolutionInput {
            scores: vec![0.8, 0.9],
            patterns: vec!["expanding_illicit".into(), "expanding_illicit".into()],
            total_alerts: 4,
        };
        let result = input.evaluate("m").unwrap();
        let brier = (0.2 * 0.2 + 0.1f64 * 0.1) / 2.0;
        assert_eq!(
            result.score,
            Some(0.5 * 0.40 + (1.0 - brier) * 0.30 + 1.0 * 0.30)
        );
        assert_eq!(result.coverage, 0.5);
    }

    #[test]
    fn pattern_ranges_default_to_ambiguous() {
        assert_eq!(expected_range("dormant"), (0.15, 0.25));
        assert_eq!(expected_range("mixer_hop"), (0.30, 0.70));
    }
}
