//! Numeric building blocks whose exact order of operations upstream code depends on.

/// numpy's pairwise summation of a contiguous float64 array (`np.sum`), in numpy's exact
/// order: a plain loop below 8 items; 8 interleaved accumulators combined as
/// `((r0+r1)+(r2+r3))+((r4+r5)+(r6+r7))` plus a tail loop up to 128 items; above that,
/// split at `n/2` rounded down to a multiple of 8 and recurse.
///
/// `np.add.reduce` starts from the identity, so `np.sum(a) == 0.0 + pairwise_sum(a)`; this
/// function returns the pairwise part (the two differ only for a sum of `-0.0`).
pub fn pairwise_sum(values: &[f64]) -> f64 {
    pairwise(values, 0.0, |a, b| a + b)
}

/// The same order over float32 values, accumulating in float32 (numpy's float32 `sum`).
pub fn pairwise_sum_f32(values: &[f32]) -> f32 {
    pairwise(values, 0.0, |a, b| a + b)
}

/// Items summed with the 8-accumulator loop before numpy splits the array in two.
const PAIRWISE_BLOCK_ITEMS: usize = 128;

fn pairwise<T: Copy>(values: &[T], zero: T, add: fn(T, T) -> T) -> T {
    let n = values.len();
    if n < 8 {
        let mut total = zero;
        for &value in values {
            total = add(total, value);
        }
        total
    } else if n <= PAIRWISE_BLOCK_ITEMS {
        let mut r = [zero; 8];
        r.copy_from_slice(&values[..8]);
        let whole = n - n % 8;
        let mut i = 8;
        while i < whole {
            for (j, accumulator) in r.iter_mut().enumerate() {
                *accumulator = add(*accumulator, values[i + j]);
            }
            i += 8;
        }
        let mut total = add(
            add(add(r[0], r[1]), add(r[2], r[3])),
            add(add(r[4], r[5]), add(r[6], r[7])),
        );
        for &value in &values[whole..] {
            total = add(total, value);
        }
        total
    } else {
        let mut half = n / 2;
        half -= half % 8;
        add(
            pairwise(&values[..half], zero, add),
            pairwise(&values[half..], zero, add),
        )
    }
}

/// Python's `round(x)` for floats: round half to even.
pub fn round_half_even(value: f64) -> f64 {
    value.round_ties_even()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_sums_are_sequential() {
        let values = [0.1, 0.2, 0.3];
        assert_eq!(pairwise_sum(&values), (0.1 + 0.2) + 0.3);
        assert_eq!(pairwise_sum(&[]), 0.0);
    }

    #[test]
    fn blocks_use_eight_accumulators() {
        let values: Vec<f64> = (0..20).map(|i| 1.0 / (i as f64 + 3.0)).collect();
        let mut r: Vec<f64> = values[..8].to_vec();
        for (j, accumulator) in r.iter_mut().enumerate() {
            *accumulator += values[8 + j];
        }
        let mut expected = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for value in &values[16..] {
            expected += value;
        }
        assert_eq!(pairwise_sum(&values).to_bits(), expected.to_bits());
    }

    #[test]
    fn large_sums_split_at_a_multiple_of_eight() {
        let values: Vec<f64> = (0..300).map(|i| 1.0 / (i as f64 + 1.0)).collect();
        // 300 / 2 = 150 -> 144.
        let expected = pairwise_sum(&values[..144]) + pairwise_sum(&values[144..]);
        assert_eq!(pairwise_sum(&values).to_bits(), expected.to_bits());
    }
}
