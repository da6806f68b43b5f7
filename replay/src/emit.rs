//! Weights -> u16, exactly as the Bittensor SDK converts them for the chain
//! (`convert_weights_and_uids_for_emit`; specs/chain.md "Float -> u16").

use crate::MechanismError;
use crate::numeric::round_half_even;

/// Largest u16 weight.
pub const U16_MAX: f64 = 65535.0;

/// Which SDK generation's arithmetic to follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// SDK 10.x: weights are cast to float32 first, then divided and scaled as Python floats.
    Float32,
    /// SDK 11.x: Python floats throughout.
    Float64,
}

/// What goes on chain: parallel uids and u16 weights, zeros dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Emitted {
    pub uids: Vec<u16>,
    pub weights: Vec<u16>,
}

/// Converts raw weights to chain weights: negatives and non-finite values are refused; an
/// all-zero vector emits nothing; otherwise each weight is divided by the largest, scaled
/// by 65535 and rounded half to even, and entries that round to 0 are dropped with their uid.
pub fn to_u16(
    uids: &[u16],
    weights: &[f64],
    precision: Precision,
) -> Result<Emitted, MechanismError> {
    if uids.len() != weights.len() {
        return Err(MechanismError::invalid(format!(
            "{} uids but {} weights",
            uids.len(),
            weights.len()
        )));
    }
    let mut values = Vec::with_capacity(weights.len());
    for (uid, weight) in uids.iter().zip(weights) {
        if !weight.is_finite() {
            return Err(MechanismError::invalid(format!(
                "weight of uid {uid} is {weight}"
            )));
        }
        if *weight < 0.0 {
            return Err(MechanismError::invalid(format!(
                "weight of uid {uid} is negative ({weight}); weights must be >= 0"
            )));
        }
        values.push(match precision {
            Precision::Float32 => f64::from(*weight as f32),
            Precision::Float64 => *weight,
        });
    }
    // The SDK tests `sum == 0`; with non-negative values that is "all zero".
    let max = values.iter().copied().fold(0.0f64, f64::max);
    if max == 0.0 {
        return Ok(Emitted::default());
    }
    let mut emitted = Emitted::default();
    for (uid, value) in uids.iter().zip(values) {
        let scaled = round_half_even(value / max * U16_MAX);
        if scaled > 0.0 {
            emitted.uids.push(*uid);
            // 0 < scaled <= 65535 because value <= max.
            emitted.weights.push(scaled as u16);
        }
    }
    Ok(emitted)
}

/// SDK 11.x `clip_to_max_weight` / 10.x `normalize_max_weight` in float64: the optional cap
/// on any one uid's share, applied before [`to_u16`]. `limit` is a share in (0, 1].
pub fn clip_to_max_weight(weights: &[f64], limit: f64) -> Vec<f64> {
    const EPSILON: f64 = 1e-7;
    let n = weights.len();
    if n == 0 {
        return Vec::new();
    }
    let sum: f64 = weights.iter().sum();
    if sum == 0.0 || n as f64 * limit <= 1.0 {
        return vec![1.0 / n as f64; n];
    }
    let mut sorted = weights.to_vec();
    sorted.sort_by(f64::total_cmp);
    let estimation: Vec<f64> = sorted.iter().map(|value| value / sum).collect();
    if estimation.iter().copied().fold(f64::MIN, f64::max) <= limit {
        return weights.iter().map(|value| value / sum).collect();
    }
    let mut cumulative = Vec::with_capacity(n);
    let mut running = 0.0;
    for value in &estimation {
        running += value;
        cumulative.push(running);
    }
    let n_values = (0..n)
        .filter(|&i| {
            let rest = (n - i - 1) as f64 * estimation[i];
            estimation[i] / (rest + cumulative[i] + EPSILON) < limit
        })
        .count();
    // n * limit > 1 and the max share exceeds the limit, so at least one value is below it.
    let n_values = n_values.max(1);
    let cutoff_scale =
        (limit * cumulative[n_values - 1] - EPSILON) / (1.0 - limit * (n - n_values) as f64);
    let cutoff = cutoff_scale * sum;
    let clipped: Vec<f64> = weights.iter().map(|value| value.min(cutoff)).collect();
    let clipped_sum: f64 = clipped.iter().sum();
    clipped.iter().map(|value| value / clipped_sum).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_becomes_65535_and_zeros_are_dropped() {
        let emitted = to_u16(&[0, 1, 2], &[0.0, 0.25, 0.75], Precision::Float64).unwrap();
        assert_eq!(emitted.uids, vec![1, 2]);
        assert_eq!(emitted.weights, vec![21845, 65535]);
    }

    #[test]
    fn all_zero_emits_nothing_and_bad_values_are_refused() {
        assert_eq!(
            to_u16(&[0, 1], &[0.0, 0.0], Precision::Float64).unwrap(),
            Emitted::default()
        );
        assert_eq!(
            to_u16(&[], &[], Precision::Float64).unwrap(),
            Emitted::default()
        );
        assert!(to_u16(&[0, 1], &[0.5, -0.1], Precision::Float64).is_err());
        assert!(to_u16(&[0, 1], &[0.5, f64::NAN], Precision::Float64).is_err());
        assert!(to_u16(&[0], &[0.5, 0.5], Precision::Float64).is_err());
    }

    #[test]
    fn halves_round_to_even() {
        // 0.5 / 1.0 * 65535 = 32767.5 -> 32768 (even).
        let emitted = to_u16(&[0, 1], &[0.5, 1.0], Precision::Float64).unwrap();
        assert_eq!(emitted.weights, vec![32768, 65535]);
    }

    #[test]
    fn clipping_caps_the_largest_share() {
        let clipped = clip_to_max_weight(&[1.0, 1.0, 8.0], 0.5);
        assert!((clipped.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!(clipped[2] <= 0.5 + 1e-6, "{clipped:?}");
        assert_eq!(clip_to_max_weight(&[0.0, 0.0], 0.5), vec![0.5, 0.5]);
        let unclipped = clip_to_max_weight(&[1.0, 2.0, 3.0, 4.0], 0.5);
        assert_eq!(unclipped, vec![0.1, 0.2, 0.3, 0.4]);
    }
}
