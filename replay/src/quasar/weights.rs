//! The template validator's weight pipeline (specs/scoring.md 3.2 and 3.6): L1-normalise the
//! float32 scores, `process_weights_for_netuid`, then the u16 conversion.
//!
//! Upstream runs this in numpy on float32 arrays. The arithmetic below stores every
//! intermediate where numpy would, in float32 or float64 as numpy's promotion rules decide.
//! Where numpy 1.x and 2.x promote differently (a numpy float32 *scalar* combined with a
//! Python number), NumPy 2 (NEP 50) is followed: the Python number takes the float32 type.

use crate::MechanismError;
use crate::emit::{Emitted, Precision, to_u16};
use crate::numeric::{pairwise_sum, pairwise_sum_f32};

/// `epsilon` of `normalize_max_weight`.
const NORMALIZE_EPSILON: f64 = 1e-7;
/// Weight every uid starts from when fewer than `min_allowed_weights` are non-zero.
const MINIMUM_EVEN_WEIGHT: f64 = 1e-5;

/// The chain hyperparameters `process_weights_for_netuid` reads.
#[derive(Debug, Clone, Copy)]
pub struct ChainLimits {
    pub min_allowed_weights: u64,
    pub max_weight_limit: f64,
}

/// Processed weights: float32 on the usual path, float64 on the two fallback paths (numpy
/// builds those arrays with `np.ones`, which is float64).
#[derive(Debug, Clone, PartialEq)]
pub struct Processed {
    pub uids: Vec<u16>,
    pub weights: Vec<f64>,
}

/// `set_weights`' normalisation: `scores / ||scores||_1` in float32, the norm summed in numpy's
/// pairwise order; a zero norm is replaced by 1 (quasar/base/validator.py @ 950a77c).
pub fn l1_normalise(scores: &[f32]) -> Vec<f32> {
    let absolute: Vec<f32> = scores.iter().map(|value| value.abs()).collect();
    let mut norm = pairwise_sum_f32(&absolute);
    if norm == 0.0 || norm.is_nan() {
        norm = 1.0;
    }
    scores.iter().map(|value| value / norm).collect()
}

/// `process_weights_for_netuid` for uids `0..n` (the metagraph's uids).
pub fn process_weights_for_netuid(
    weights: &[f32],
    limits: ChainLimits,
) -> Result<Processed, MechanismError> {
    let n = weights.len();
    let all_uids = (0..n)
        .map(|uid| u16::try_from(uid).map_err(|_| MechanismError::invalid("n exceeds 65536")))
        .collect::<Result<Vec<u16>, _>>()?;
    let non_zero: Vec<(u16, f32)> = all_uids
        .iter()
        .zip(weights)
        .filter(|(_, weight)| **weight > 0.0)
        .map(|(uid, weight)| (*uid, *weight))
        .collect();
    if non_zero.is_empty() || (n as u64) < limits.min_allowed_weights {
        return Ok(Processed {
            uids: all_uids,
            weights: vec![1.0 / n as f64; n],
        });
    }
    if (non_zero.len() as u64) < limits.min_allowed_weights {
        let mut padded = vec![MINIMUM_EVEN_WEIGHT; n];
        for (uid, weight) in &non_zero {
            padded[usize::from(*uid)] += f64::from(*weight);
        }
        return Ok(Processed {
            uids: all_uids,
            weights: normalize_max_weight_f64(&padded, limits.max_weight_limit),
        });
    }
    // exclude_quantile is 0, so the lowest quantile is the minimum and every non-zero weight
    // is kept.
    let values: Vec<f32> = non_zero.iter().map(|(_, weight)| *weight).collect();
    Ok(Processed {
        uids: non_zero.iter().map(|(uid, _)| *uid).collect(),
        weights: normalize_max_weight_f32(&values, limits.max_weight_limit)
            .into_iter()
            .map(f64::from)
            .collect(),
    })
}

/// `normalize_max_weight` on a float32 array.
pub fn normalize_max_weight_f32(weights: &[f32], limit: f64) -> Vec<f32> {
    let length = weights.len();
    if length == 0 {
        return Vec::new();
    }
    let mut values = weights.to_vec();
    values.sort_by(f32::total_cmp);
    if pairwise_sum_f32(weights) == 0.0 || length as f64 * limit <= 1.0 {
        return vec![1.0f32 / length as f32; length];
    }
    let limit_f32 = limit as f32;
    let epsilon_f32 = NORMALIZE_EPSILON as f32;
    let values_sum = pairwise_sum_f32(&values);
    let estimation: Vec<f32> = values.iter().map(|value| value / values_sum).collect();
    let estimation_max = estimation.iter().copied().fold(f32::MIN, f32::max);
    if estimation_max <= limit_f32 {
        let sum = pairwise_sum_f32(weights);
        return weights.iter().map(|value| value / sum).collect();
    }
    let mut cumulative = Vec::with_capacity(length);
    let mut running = 0.0f32;
    for value in &estimation {
        running += value;
        cumulative.push(running);
    }
    let below_limit = (0..length)
        .filter(|&index| {
            let rest = (length - index - 1) as f32 * estimation[index];
            estimation[index] / (rest + cumulative[index] + epsilon_f32) < limit_f32
        })
        .count();
    // `cumsum[n_values - 1]` with n_values = 0 reads the last element in numpy.
    let cumulative_at = if below_limit == 0 {
        cumulative[length - 1]
    } else {
        cumulative[below_limit - 1]
    };
    // numerator: float32 (Python float times a float32 scalar); denominator: a float64 numpy
    // scalar (the count is an int64); their quotient and the cutoff are float64.
    let numerator = limit_f32 * cumulative_at - epsilon_f32;
    let denominator = 1.0 - (limit * (length - below_limit) as f64);
    let cutoff_scale = f64::from(numerator) / denominator;
    let cutoff = cutoff_scale * f64::from(values_sum);
    let clipped: Vec<f32> = weights
        .iter()
        .map(|value| {
            if f64::from(*value) > cutoff {
                cutoff as f32
            } else {
                *value
            }
        })
        .collect();
    let clipped_sum = pairwise_sum_f32(&clipped);
    clipped.iter().map(|value| value / clipped_sum).collect()
}

/// `normalize_max_weight` on a float64 array (the fallback path's `np.ones(n) * 1e-5`).
pub fn normalize_max_weight_f64(weights: &[f64], limit: f64) -> Vec<f64> {
    let length = weights.len();
    if length == 0 {
        return Vec::new();
    }
    let mut values = weights.to_vec();
    values.sort_by(f64::total_cmp);
    if pairwise_sum(weights) == 0.0 || length as f64 * limit <= 1.0 {
        return vec![1.0 / length as f64; length];
    }
    let values_sum = pairwise_sum(&values);
    let estimation: Vec<f64> = values.iter().map(|value| value / values_sum).collect();
    let estimation_max = estimation.iter().copied().fold(f64::MIN, f64::max);
    if estimation_max <= limit {
        let sum = pairwise_sum(weights);
        return weights.iter().map(|value| value / sum).collect();
    }
    let mut cumulative = Vec::with_capacity(length);
    let mut running = 0.0;
    for value in &estimation {
        running += value;
        cumulative.push(running);
    }
    let below_limit = (0..length)
        .filter(|&index| {
            let rest = (length - index - 1) as f64 * estimation[index];
            estimation[index] / (rest + cumulative[index] + NORMALIZE_EPSILON) < limit
        })
        .count();
    let cumulative_at = if below_limit == 0 {
        cumulative[length - 1]
    } else {
        cumulative[below_limit - 1]
    };
    let cutoff_scale = (limit * cumulative_at - NORMALIZE_EPSILON)
        / (1.0 - (limit * (length - below_limit) as f64));
    let cutoff = cutoff_scale * values_sum;
    let clipped: Vec<f64> = weights.iter().map(|value| value.min(cutoff)).collect();
    let clipped_sum = pairwise_sum(&clipped);
    clipped.iter().map(|value| value / clipped_sum).collect()
}

/// The template's `convert_weights_and_uids_for_emit`: values are turned into Python floats
/// (exact for float32) and scaled by the largest.
pub fn emit(processed: &Processed) -> Result<Emitted, MechanismError> {
    to_u16(&processed.uids, &processed.weights, Precision::Float64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_scores_normalise_to_zero_and_process_to_uniform() {
        let raw = l1_normalise(&[0.0, 0.0, 0.0, 0.0]);
        assert_eq!(raw, vec![0.0; 4]);
        let processed = process_weights_for_netuid(
            &raw,
            ChainLimits {
                min_allowed_weights: 1,
                max_weight_limit: 1.0,
            },
        )
        .unwrap();
        assert_eq!(processed.uids, vec![0, 1, 2, 3]);
        assert_eq!(processed.weights, vec![0.25; 4]);
    }

    #[test]
    fn clipping_caps_the_largest_share_in_float32() {
        let clipped = normalize_max_weight_f32(&[0.1, 0.1, 0.8], 0.5);
        let sum: f32 = clipped.iter().sum();
        assert!((sum - 1.0).abs() < 1e-6);
        assert!(clipped[2] <= 0.5 + 1e-6, "{clipped:?}");
        assert!(clipped[2] > 0.45, "{clipped:?}");
    }
}
