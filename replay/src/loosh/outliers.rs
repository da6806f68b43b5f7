//! Local outlier factors exactly as scikit-learn's `LocalOutlierFactor.fit` computes them on
//! its training data (the upstream call is `LocalOutlierFactor(n_neighbors=k).fit_predict(X)`).

use crate::numeric::pairwise_sum;

use super::similarity::euclidean;

/// scikit-learn adds this to the mean reachability distance so that more than `k` duplicates
/// give a huge density instead of a division by zero.
const DENSITY_EPSILON: f64 = 1e-10;

/// The local outlier factor of every point (scikit-learn's `-negative_outlier_factor_`).
///
/// Neighbours are the `k` nearest other points by Euclidean distance, ties broken by the lower
/// index (scikit-learn's tree and brute-force searches agree on distances; only the identity of
/// equally distant neighbours could differ). `k` is clamped to `1..=n-1` as scikit-learn does.
/// The k-distance of a point is the distance to its k-th neighbour; the reachability distance
/// from `i` to a neighbour `j` is `max(d(i, j), kdist(j))`; the local reachability density is
/// `1 / (mean reachability + 1e-10)`; the factor is the mean of `lrd(j) / lrd(i)` over the
/// neighbours (mean of ratios, as scikit-learn writes it, not ratio of means).
pub fn local_outlier_factors(points: &[Vec<f64>], neighbors: usize) -> Vec<f64> {
    let count = points.len();
    if count < 2 {
        return vec![1.0; count];
    }
    let k = neighbors.clamp(1, count - 1);
    let mut neighbor_indices = Vec::with_capacity(count);
    let mut neighbor_distances = Vec::with_capacity(count);
    for (index, point) in points.iter().enumerate() {
        let mut others: Vec<(f64, usize)> = points
            .iter()
            .enumerate()
            .filter(|(other, _)| *other != index)
            .map(|(other, candidate)| (euclidean(point, candidate), other))
            .collect();
        others.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        others.truncate(k);
        neighbor_distances.push(
            others
                .iter()
                .map(|(distance, _)| *distance)
                .collect::<Vec<_>>(),
        );
        neighbor_indices.push(others.iter().map(|(_, other)| *other).collect::<Vec<_>>());
    }
    let k_distance: Vec<f64> = neighbor_distances.iter().map(|row| row[k - 1]).collect();
    let densities: Vec<f64> = (0..count)
        .map(|index| {
            let reachability: Vec<f64> = neighbor_indices[index]
                .iter()
                .zip(&neighbor_distances[index])
                .map(|(&other, &distance)| f64::max(distance, k_distance[other]))
                .collect();
            1.0 / (pairwise_sum(&reachability) / k as f64 + DENSITY_EPSILON)
        })
        .collect();
    (0..count)
        .map(|index| {
            let ratios: Vec<f64> = neighbor_indices[index]
                .iter()
                .map(|&other| densities[other] / densities[index])
                .collect();
            pairwise_sum(&ratios) / k as f64
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_far_point_is_an_outlier_and_a_tight_group_is_not() {
        let points = vec![
            vec![0.0, 0.0],
            vec![0.1, 0.0],
            vec![0.0, 0.1],
            vec![0.1, 0.1],
            vec![5.0, 5.0],
        ];
        let factors = local_outlier_factors(&points, 2);
        assert!(factors[4] > 1.5, "{factors:?}");
        assert!(
            factors[..4].iter().all(|factor| *factor <= 1.5),
            "{factors:?}"
        );
    }

    #[test]
    fn identical_points_have_factor_one() {
        let points = vec![vec![1.0, 2.0]; 4];
        assert_eq!(local_outlier_factors(&points, 2), vec![1.0; 4]);
    }
}
