//! One challenge round: `InferenceValidator.evaluate_responses` with its `ConsensusEngine`
//! (specs/scoring.md 2.1).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::MechanismError;
use crate::numeric::pairwise_sum;

use super::clustering::average_linkage_labels;
use super::entity::entity_weights;
use super::evaluate_input::{EvaluateConfig, EvaluateInput, Response, is_test_mode};
use super::outliers::local_outlier_factors;
use super::quality::{coherence, information_density, python_split, specificity};
use super::similarity::{cosine_matrix, dot, normalized};

/// Weight of the mean similarity to the rest of the consensus set in an individual score.
const BASE_SIMILARITY_WEIGHT: f64 = 0.40;
/// Weight of the quality score in an individual score.
const QUALITY_WEIGHT: f64 = 0.25;
/// Weight of the confidence in an individual score.
const CONFIDENCE_WEIGHT: f64 = 0.15;
/// Flat bonus for being in the consensus set.
const CONSENSUS_MEMBERSHIP_BONUS: f64 = 0.10;
/// Weight of the mean similarity to the consensus set for a response outside it.
const OUTSIDE_SIMILARITY_WEIGHT: f64 = 0.30;

/// How the round ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvaluateStatus {
    /// The consensus pipeline ran (two or more non-test responses).
    Ok,
    /// No responses at all: upstream returns `{}`.
    NoResponses,
    /// Every response was a test-mode response: all emissions 0.
    AllTestMode,
    /// One valid response, judged by its prompt relevance alone.
    SingleResponse,
    /// Upstream raises inside the evaluation (response times summing to 0, or outlier
    /// detection keeping nobody) and its `except` returns `{}`: no emissions are recorded.
    Failed,
}

impl EvaluateStatus {
    fn as_str(self) -> &'static str {
        match self {
            EvaluateStatus::Ok => "ok",
            EvaluateStatus::NoResponses => "no_responses",
            EvaluateStatus::AllTestMode => "all_test_mode",
            EvaluateStatus::SingleResponse => "single_response",
            EvaluateStatus::Failed => "failed",
        }
    }
}

/// The result of one round.
#[derive(Debug, Clone, PartialEq)]
pub struct EvaluateOutcome {
    pub status: EvaluateStatus,
    /// Why the round failed, for [`EvaluateStatus::Failed`].
    pub reason: Option<String>,
    /// θ = μ + λσ (1.0 / 0.0 for a single response that passes / fails).
    pub theta: f64,
    pub consensus_achieved: bool,
    /// Emission per hotkey, test-mode hotkeys included with 0.
    pub emissions: BTreeMap<String, f64>,
    /// Individual score per label (`str(uid)`), in upstream's dict order: consensus members
    /// first, then the others in input order.
    pub individual: Vec<(String, f64)>,
    /// Labels of the consensus set, in input order.
    pub kept: Vec<String>,
    /// The label whose emission gets the score-difference bonus, and that bonus.
    pub top_label: Option<String>,
    pub top_multiplier: f64,
    /// Quality per non-test response after the relevance gate, by label (diagnostic).
    pub quality: Vec<(String, f64)>,
}

impl EvaluateOutcome {
    fn empty(status: EvaluateStatus) -> Self {
        EvaluateOutcome {
            status,
            reason: None,
            theta: 0.0,
            consensus_achieved: false,
            emissions: BTreeMap::new(),
            individual: Vec::new(),
            kept: Vec::new(),
            top_label: None,
            top_multiplier: 1.0,
            quality: Vec::new(),
        }
    }

    fn failed(reason: &str) -> Self {
        EvaluateOutcome {
            reason: Some(reason.to_string()),
            ..EvaluateOutcome::empty(EvaluateStatus::Failed)
        }
    }

    /// The output document of the `evaluate` section.
    pub fn to_json(&self) -> Value {
        let individual: serde_json::Map<String, Value> = self
            .individual
            .iter()
            .map(|(label, score)| (label.clone(), json!(score)))
            .collect();
        let quality: serde_json::Map<String, Value> = self
            .quality
            .iter()
            .map(|(label, score)| (label.clone(), json!(score)))
            .collect();
        let mut output = json!({
            "status": self.status.as_str(),
            "theta": self.theta,
            "consensus_achieved": self.consensus_achieved,
            "emissions": self.emissions,
            "individual": individual,
            "kept": self.kept,
            "top_label": self.top_label,
            "top_multiplier": self.top_multiplier,
            "quality": quality,
        });
        if let (Some(reason), Some(fields)) = (&self.reason, output.as_object_mut()) {
            fields.insert("reason".to_string(), json!(reason));
        }
        output
    }
}

/// numpy's `np.mean` of a 1-D float64 array.
fn mean(values: &[f64]) -> f64 {
    pairwise_sum(values) / values.len() as f64
}

/// numpy's `np.average(values, weights=weights)` (the caller has checked the weight sum).
fn weighted_average(values: &[f64], weights: &[f64]) -> f64 {
    let products: Vec<f64> = values.iter().zip(weights).map(|(v, w)| v * w).collect();
    pairwise_sum(&products) / pairwise_sum(weights)
}

/// Python's `min(a, b)`: the first unless the second is smaller.
fn python_min(first: f64, second: f64) -> f64 {
    if second < first { second } else { first }
}

/// `_calculate_score_difference_bonus`: the best-scoring label (a stable descending sort of
/// the score dict, so ties go to the earlier entry) and its multiplier
/// `min(1 + max_bonus * tanh(scale * (s1 - s2)), max_multiplier)`, 1.0 when `s1 - s2 <= 0`;
/// no label with fewer than two scores.
fn score_difference_bonus(
    individual: &[(String, f64)],
    config: &EvaluateConfig,
) -> (Option<String>, f64) {
    if individual.len() < 2 {
        return (None, 1.0);
    }
    let mut order: Vec<usize> = (0..individual.len()).collect();
    // Python's sorted(reverse=True) keeps ties in their original order.
    order.sort_by(|&a, &b| individual[b].1.total_cmp(&individual[a].1));
    let (highest_label, highest_score) = &individual[order[0]];
    let second_score = individual[order[1]].1;
    let difference = highest_score - second_score;
    if difference <= 0.0 {
        return (Some(highest_label.clone()), 1.0);
    }
    let multiplier = 1.0 + config.diff_max_bonus * libm::tanh(difference * config.diff_scale);
    (
        Some(highest_label.clone()),
        python_min(multiplier, config.diff_max_multiplier),
    )
}

/// Runs one challenge round.
pub fn evaluate(input: &EvaluateInput) -> Result<EvaluateOutcome, MechanismError> {
    let config = &input.config;
    if input.responses.is_empty() {
        return Ok(EvaluateOutcome::empty(EvaluateStatus::NoResponses));
    }
    let (test_mode, valid): (Vec<&Response>, Vec<&Response>) = input
        .responses
        .iter()
        .partition(|response| is_test_mode(&response.text));
    let zero_for_test_mode = |emissions: &mut BTreeMap<String, f64>| {
        for response in &test_mode {
            emissions.insert(response.hotkey.clone(), 0.0);
        }
    };
    if valid.is_empty() {
        let mut outcome = EvaluateOutcome::empty(EvaluateStatus::AllTestMode);
        zero_for_test_mode(&mut outcome.emissions);
        return Ok(outcome);
    }
    let prompt_unit = normalized(&input.prompt_embedding);
    let unit_embeddings: Vec<Vec<f64>> = valid
        .iter()
        .map(|response| normalized(&response.embedding))
        .collect();
    let relevance: Vec<f64> = unit_embeddings
        .iter()
        .map(|unit| dot(&prompt_unit, unit))
        .collect();
    let labels: Vec<String> = valid.iter().map(|r| r.uid.to_string()).collect();

    if let ([single], [single_relevance]) = (valid.as_slice(), relevance.as_slice()) {
        let passes = *single_relevance >= config.single_miner_min_relevance;
        let mut outcome = EvaluateOutcome::empty(EvaluateStatus::SingleResponse);
        outcome.theta = if passes { 1.0 } else { 0.0 };
        outcome
            .emissions
            .insert(single.hotkey.clone(), outcome.theta);
        zero_for_test_mode(&mut outcome.emissions);
        return Ok(outcome);
    }

    let valid_count = valid.len();
    let hotkeys: Vec<&str> = valid.iter().map(|r| r.hotkey.as_str()).collect();
    // Caps exist only when enabled and a node map is known (upstream tests the map's
    // truthiness, so an empty map means no caps at all).
    let caps: Option<Vec<f64>> = (config.entity_caps && !input.node_map.is_empty())
        .then(|| entity_weights(&hotkeys, &input.node_map, config));
    let similarity = cosine_matrix(&unit_embeddings);

    // Step 1: quality (Tier-4 composite when given, else the heuristic), then the raw
    // prompt-relevance gate, then the threshold.
    let mut quality: Vec<f64> = match &input.quality_scores {
        Some(scores) => scores.clone(),
        None => valid
            .iter()
            .zip(&relevance)
            .map(|(response, &relevance)| {
                relevance * config.w_relevance
                    + information_density(&response.text) * config.w_density
                    + specificity(&response.text) * config.w_specificity
                    + coherence(&response.text) * config.w_coherence
            })
            .collect(),
    };
    if config.min_raw_prompt_relevance > 0.0 {
        for (score, &relevance) in quality.iter_mut().zip(&relevance) {
            if relevance < config.min_raw_prompt_relevance {
                *score = 0.0;
            }
        }
    }
    let mut kept: Vec<usize> = (0..valid_count)
        .filter(|&index| quality[index] >= config.quality_threshold)
        .collect();

    let mut theta = 0.0;
    let mut individual: Vec<(String, f64)> = Vec::new();
    if !kept.is_empty() {
        // Step 2: quality-aware LOF outliers.
        if valid_count >= config.outlier_min_responses && kept.len() >= 3 {
            let points: Vec<Vec<f64>> = kept
                .iter()
                .map(|&index| valid[index].embedding.clone())
                .collect();
            let neighbors = config.lof_neighbors.min(kept.len() - 1);
            let factors = local_outlier_factors(&points, neighbors);
            let is_outlier: Vec<bool> = factors
                .iter()
                .map(|factor| -factor < config.lof_offset)
                .collect();
            if is_outlier.iter().any(|&outlier| outlier) {
                let pick = |want_outliers: bool| -> Vec<usize> {
                    kept.iter()
                        .zip(&is_outlier)
                        .filter(|(_, outlier)| **outlier == want_outliers)
                        .map(|(&index, _)| index)
                        .collect()
                };
                let outliers = pick(true);
                let inliers = pick(false);
                let quality_of = |members: &[usize]| -> f64 {
                    if members.is_empty() {
                        0.0
                    } else {
                        mean(&members.iter().map(|&i| quality[i]).collect::<Vec<_>>())
                    }
                };
                let delta = quality_of(&outliers) - quality_of(&inliers);
                kept = if delta > config.outlier_quality_delta {
                    outliers
                } else {
                    inliers
                };
                if kept.is_empty() {
                    // Upstream then computes cosine_similarity of zero samples, which raises;
                    // evaluate_responses catches it and returns {}.
                    return Ok(EvaluateOutcome::failed(
                        "outlier detection kept no response (upstream raises and records no \
                         emissions)",
                    ));
                }
            }
        }
        // Step 3: average-linkage clustering; keep the dominant cluster.
        if valid_count >= config.clustering_min_responses && kept.len() >= 2 {
            let distances: Vec<Vec<f64>> = kept
                .iter()
                .map(|&i| kept.iter().map(|&j| 1.0 - similarity[i][j]).collect())
                .collect();
            let cluster_of = average_linkage_labels(&distances, config.cluster_distance_threshold);
            let cluster_count = cluster_of.iter().copied().max().map_or(0, |max| max + 1);
            let mut votes = vec![Vec::new(); cluster_count];
            for (position, &cluster) in cluster_of.iter().enumerate() {
                let vote = caps.as_ref().map_or(1.0, |caps| caps[kept[position]]);
                votes[cluster].push(vote);
            }
            let totals: Vec<f64> = votes
                .iter()
                .map(|members| match &caps {
                    Some(_) => pairwise_sum(members),
                    None => members.len() as f64,
                })
                .collect();
            // numpy's argmax: the first maximum.
            let mut dominant = 0;
            for (cluster, total) in totals.iter().enumerate() {
                if *total > totals[dominant] {
                    dominant = cluster;
                }
            }
            kept = kept
                .iter()
                .zip(&cluster_of)
                .filter(|(_, cluster)| **cluster == dominant)
                .map(|(&index, _)| index)
                .collect();
        }
        // Step 5: quality-weighted μ and σ over the pairs i < j of the consensus set.
        if kept.len() >= 2 {
            let mut pair_similarities = Vec::new();
            let mut pair_weights = Vec::new();
            for (position, &i) in kept.iter().enumerate() {
                for &j in &kept[position + 1..] {
                    pair_similarities.push(similarity[i][j]);
                    let quality_weight = quality[i] * quality[j];
                    pair_weights.push(match &caps {
                        Some(caps) => quality_weight * (caps[i] * caps[j]),
                        None => quality_weight,
                    });
                }
            }
            if pairwise_sum(&pair_weights) > 0.0 {
                let weighted_mean = weighted_average(&pair_similarities, &pair_weights);
                let squared: Vec<f64> = pair_similarities
                    .iter()
                    .map(|s| (s - weighted_mean) * (s - weighted_mean))
                    .collect();
                let deviation = weighted_average(&squared, &pair_weights).sqrt();
                theta = weighted_mean + config.lambda_factor * deviation;
            }
        }
        individual =
            individual_scores(input, &valid, &kept, &quality, caps.as_deref(), &similarity);
    }
    let consensus_achieved = theta > config.threshold_min;
    let (top_label, top_multiplier) = score_difference_bonus(&individual, config);

    // Emissions: faster responses earn more, scaled by θ, the consensus bonus and the
    // top-score bonus. Python's `sum` adds left to right.
    let mut total_time = 0.0;
    for response in &valid {
        total_time += response.response_time_ms;
    }
    if total_time == 0.0 {
        return Ok(EvaluateOutcome::failed(
            "the response times sum to 0 (upstream raises ZeroDivisionError and records no \
             emissions)",
        ));
    }
    let kept_labels: Vec<String> = kept.iter().map(|&i| labels[i].clone()).collect();
    let mut emissions = BTreeMap::new();
    for (index, response) in valid.iter().enumerate() {
        let time_ratio = 1.0 - response.response_time_ms / total_time;
        let mut emission = time_ratio * theta;
        if kept.contains(&index) {
            emission *= config.consensus_bonus;
        }
        if top_label.as_deref() == Some(labels[index].as_str()) {
            emission *= top_multiplier;
        }
        emissions.insert(response.hotkey.clone(), emission);
    }
    zero_for_test_mode(&mut emissions);
    Ok(EvaluateOutcome {
        status: EvaluateStatus::Ok,
        reason: None,
        theta,
        consensus_achieved,
        emissions,
        individual,
        kept: kept_labels,
        top_label,
        top_multiplier,
        quality: labels.into_iter().zip(quality).collect(),
    })
}

/// `_compute_individual_scores` for a non-empty consensus set `kept` (indices into `valid`).
fn individual_scores(
    input: &EvaluateInput,
    valid: &[&Response],
    kept: &[usize],
    quality: &[f64],
    caps: Option<&[f64]>,
    similarity: &[Vec<f64>],
) -> Vec<(String, f64)> {
    let config = &input.config;
    let mut scores = Vec::with_capacity(valid.len());
    for &i in kept {
        let others: Vec<usize> = kept.iter().copied().filter(|&j| j != i).collect();
        let other_similarities: Vec<f64> = others.iter().map(|&j| similarity[i][j]).collect();
        // A lone member has no peers: base similarity 0 and no diversity bonus.
        let base = if others.is_empty() {
            0.0
        } else {
            match caps {
                Some(caps) => {
                    let other_weights: Vec<f64> = others.iter().map(|&j| caps[j]).collect();
                    if pairwise_sum(&other_weights) > 0.0 {
                        weighted_average(&other_similarities, &other_weights)
                    } else {
                        mean(&other_similarities)
                    }
                }
                None => mean(&other_similarities),
            }
        };
        let diversity = if config.diversity && !others.is_empty() {
            let uniqueness = 1.0 - mean(&other_similarities);
            if quality[i] > config.diversity_quality_gate {
                let bonus = uniqueness
                    * (quality[i] / config.diversity_quality_gate)
                    * config.max_diversity_bonus;
                python_min(bonus, config.max_diversity_bonus)
            } else {
                0.0
            }
        } else {
            0.0
        };
        let confidence = if config.use_confidence {
            valid[i].confidence * CONFIDENCE_WEIGHT
        } else {
            0.0
        };
        let mut score = base * BASE_SIMILARITY_WEIGHT
            + quality[i] * QUALITY_WEIGHT
            + confidence
            + CONSENSUS_MEMBERSHIP_BONUS
            + diversity;
        if let Some(caps) = caps {
            score *= caps[i];
        }
        scores.push((valid[i].uid.to_string(), score));
    }
    // Responses outside the consensus set: similarity to the set, a word-count proxy for
    // quality (upstream has no quality score for them any more) and the confidence.
    let longest = valid
        .iter()
        .map(|response| python_split(&response.text).len())
        .max()
        .unwrap_or(0);
    for (index, response) in valid.iter().enumerate() {
        if kept.contains(&index) {
            continue;
        }
        let to_consensus: Vec<f64> = kept.iter().map(|&j| similarity[index][j]).collect();
        let mean_similarity = mean(&to_consensus);
        let words = python_split(&response.text).len();
        let length_score = if longest > 0 {
            words as f64 / longest as f64 * QUALITY_WEIGHT
        } else {
            0.0
        };
        let confidence = if config.use_confidence {
            response.confidence * CONFIDENCE_WEIGHT
        } else {
            0.0
        };
        let mut score = mean_similarity * OUTSIDE_SIMILARITY_WEIGHT + length_score + confidence;
        if let Some(caps) = caps {
            score *= caps[index];
        }
        scores.push((response.uid.to_string(), score));
    }
    scores
}
