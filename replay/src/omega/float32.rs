//! The float32 arithmetic of the validator's torch code, one rounding at each point where
//! torch stores a float32.
//!
//! torch combines a float32 tensor with a Python float by first casting the Python float to
//! float32 (`0.75 * t`, `t / 0.01`), so every constant below is applied as an `f32`.

use crate::numeric::pairwise_sum_f32;

/// `torch.softmax(values, dim=0)` over a 1-D float32 tensor: subtract the maximum, take
/// `exp`, divide by the sum of the exponentials (summed in numpy's pairwise order, which for
/// vectors of fewer than 8 items is a plain left-to-right sum). Each exponential and each
/// quotient is stored as float32.
///
/// The exponent `value - maximum` is formed and exponentiated in float64 (`libm::exp`, so
/// every machine gets the same bits) and only the result is rounded to float32. torch rounds
/// the difference to float32 first; for a spread of tens (the legacy softmax of
/// `score / 0.01` over 256 uids) that rounding alone moves tiny weights by up to ~20 float32
/// ulps, whereas the reference implementation the examples come from does what is done here
/// (with it every omega example is within 2 float32 ulps, without it up to 23). For the
/// two-pool softmaxes, whose spreads are a few units, both agree to 1 ulp.
///
/// An empty input gives an empty output.
pub(crate) fn softmax(values: &[f32]) -> Vec<f32> {
    let Some(maximum) = values.iter().copied().reduce(f32::max) else {
        return Vec::new();
    };
    let exponentials: Vec<f32> = values
        .iter()
        .map(|value| libm::exp(f64::from(*value) - f64::from(maximum)) as f32)
        .collect();
    let total = pairwise_sum_f32(&exponentials);
    exponentials.iter().map(|value| value / total).collect()
}

/// Sum of a float32 tensor (numpy's pairwise order).
pub(crate) fn sum(values: &[f32]) -> f32 {
    pairwise_sum_f32(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_of_equal_values_is_uniform() {
        assert_eq!(softmax(&[2.0, 2.0, 2.0, 2.0]), vec![0.25; 4]);
        assert!(softmax(&[]).is_empty());
    }

    #[test]
    fn softmax_is_shift_invariant_and_sums_to_one() {
        let first = softmax(&[1.0, 2.0, 3.0]);
        let shifted = softmax(&[101.0, 102.0, 103.0]);
        assert_eq!(first, shifted);
        assert!((sum(&first) - 1.0).abs() <= 2.0 * f32::EPSILON);
        assert!(first[0] < first[1] && first[1] < first[2]);
    }

    #[test]
    fn large_spreads_underflow_to_zero_instead_of_overflowing() {
        let weights = softmax(&[0.0, 200.0]);
        assert_eq!(weights, vec![0.0, 1.0]);
    }
}
