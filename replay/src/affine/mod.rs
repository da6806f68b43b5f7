//! Affine (Bittensor SN120): the weight mechanisms of scoring.md section 1.
//!
//! Two generations are replayed, chosen by the input's `mode`:
//! - `stages_v2` ([`stages`]): the current four-stage scorer (per-environment averages and
//!   completeness gate, first-block Pareto filter, geometric-mean subset scoring with rank
//!   decay, the 1% threshold with redistribution to uid 0), followed by the validator's
//!   normalisation and burn and the SDK's u16 conversion.
//! - `eps_pareto_legacy` ([`legacy`]): the older epsilon-Pareto winner per environment
//!   subset, with the `pow2` (2ca3b18c) or `comb` (8d68f38) points schedule.
//!
//! Both share the chain step: the float weights the validator submits are converted to u16
//! by [`crate::emit::to_u16`] and reported beside the uids they belong to.

pub mod legacy;
pub mod stages;

use serde_json::{Value, json};

use crate::MechanismError;
use crate::emit::{self, Precision};

/// The most environment subsets one run scores. Both modes enumerate subsets combinatorially
/// (stages_v2 the last `MAX_LAYERS` sizes, the legacy mode all `2^N - 1`), and every subset
/// compares every pair of pool members; past this bound an input would run for hours instead
/// of failing, so it is refused. Upstream used at most 8 environments (255 subsets).
pub const SUBSETS_MAX: u128 = 65_536;

/// Runs the Affine mode the input names.
pub fn run(input: &Value) -> Result<Value, MechanismError> {
    match input.get("mode").and_then(Value::as_str) {
        Some("stages_v2") => stages::run(input),
        Some("eps_pareto_legacy") => legacy::run(input),
        Some(other) => Err(MechanismError::invalid(format!(
            "affine: unknown mode `{other}`; expected `stages_v2` or `eps_pareto_legacy`"
        ))),
        None => Err(MechanismError::invalid(
            "affine: `mode` must be the string `stages_v2` or `eps_pareto_legacy`",
        )),
    }
}

/// Every combination of `size` items out of `count`, as ascending index lists, in the order
/// Python's `itertools.combinations(range(count), size)` yields them. Both modes walk
/// environment subsets in this order, and the order reaches floating-point sums.
pub(crate) fn combinations(count: usize, size: usize) -> Vec<Vec<usize>> {
    let mut all = Vec::new();
    if size == 0 || size > count {
        return all;
    }
    let mut indices: Vec<usize> = (0..size).collect();
    loop {
        all.push(indices.clone());
        // Find the rightmost index that can still move right, as itertools does.
        let Some(position) = (0..size)
            .rev()
            .find(|&position| indices[position] != position + count - size)
        else {
            return all;
        };
        indices[position] += 1;
        for next in position + 1..size {
            indices[next] = indices[next - 1] + 1;
        }
    }
}

/// `C(n, k)`, saturating at `u128::MAX` (only compared against [`SUBSETS_MAX`] or used
/// where it is small).
pub(crate) fn binomial(n: usize, k: usize) -> u128 {
    if k > n {
        return 0;
    }
    let mut result: u128 = 1;
    for step in 0..k.min(n - k) {
        // Exact at every step: the running value is C(n, step + 1) after the division.
        let Some(product) = result.checked_mul((n - step) as u128) else {
            return u128::MAX;
        };
        result = product / (step + 1) as u128;
    }
    result
}

/// Refuses an input whose subsets of sizes `sizes` out of `count` environments exceed
/// [`SUBSETS_MAX`].
pub(crate) fn check_subset_count(
    count: usize,
    sizes: std::ops::RangeInclusive<usize>,
    field: &str,
) -> Result<(), MechanismError> {
    let total = sizes.fold(0u128, |total, size| {
        total.saturating_add(binomial(count, size))
    });
    if total > SUBSETS_MAX {
        return Err(MechanismError::invalid(format!(
            "{field}: {count} environments give {total} subsets to score, more than the \
             {SUBSETS_MAX} this replay accepts"
        )));
    }
    Ok(())
}

/// The chain section of an output: the submitted uids and float weights, and beside each the
/// u16 the SDK sends (0 where the conversion drops the entry), so the three lists stay
/// parallel.
pub(crate) fn chain_section(uids: &[i64], weights: &[f64]) -> Result<Value, MechanismError> {
    let mut chain_uids = Vec::with_capacity(uids.len());
    for uid in uids {
        let chain_uid = u16::try_from(*uid).map_err(|_| {
            MechanismError::invalid(format!(
                "uid {uid} cannot go on chain: uids must lie in 0..=65535"
            ))
        })?;
        chain_uids.push(chain_uid);
    }
    let emitted = emit::to_u16(&chain_uids, weights, Precision::Float64)?;
    let u16_weights: Vec<u16> = chain_uids
        .iter()
        .map(|uid| {
            emitted
                .uids
                .iter()
                .position(|emitted_uid| emitted_uid == uid)
                .and_then(|index| emitted.weights.get(index).copied())
                .unwrap_or(0)
        })
        .collect();
    Ok(json!({
        "uids": uids,
        "weights": weights,
        "u16": u16_weights,
    }))
}

/// A float for JSON output. JSON has no NaN or infinity, so a non-finite value (which the
/// mechanisms never produce from valid input) is written as `null`.
pub(crate) fn number(value: f64) -> Value {
    serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combinations_follow_itertools_order() {
        assert_eq!(
            combinations(4, 2),
            vec![
                vec![0, 1],
                vec![0, 2],
                vec![0, 3],
                vec![1, 2],
                vec![1, 3],
                vec![2, 3]
            ]
        );
        assert_eq!(combinations(3, 3), vec![vec![0, 1, 2]]);
        assert_eq!(combinations(3, 1), vec![vec![0], vec![1], vec![2]]);
        assert!(combinations(2, 3).is_empty());
        assert!(combinations(2, 0).is_empty());
    }

    #[test]
    fn binomials_and_the_subset_limit() {
        assert_eq!(binomial(5, 2), 10);
        assert_eq!(binomial(5, 0), 1);
        assert_eq!(binomial(3, 4), 0);
        assert_eq!(binomial(100, 50), 100_891_344_545_564_193_334_812_497_256);
        assert!(check_subset_count(8, 1..=8, "envs").is_ok());
        assert!(check_subset_count(17, 1..=17, "envs").is_err());
        assert!(check_subset_count(1000, 995..=1000, "environments").is_err());
    }

    #[test]
    fn chain_keeps_lists_parallel_and_refuses_large_uids() {
        let chain = chain_section(&[3, 0], &[0.0, 1.0]).unwrap();
        assert_eq!(chain["u16"], json!([0, 65535]));
        assert!(chain_section(&[70000], &[1.0]).is_err());
    }
}
