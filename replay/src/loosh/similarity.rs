//! Cosine similarity and Euclidean distance the way scikit-learn computes them.

/// Scales a vector to unit length as `sklearn.preprocessing.normalize` does: divide by the
/// square root of the sum of squares, and leave an all-zero vector as it is (scikit-learn
/// replaces a zero norm by 1), so its cosine with anything is 0.
pub fn normalized(vector: &[f64]) -> Vec<f64> {
    let mut squares = 0.0;
    for value in vector {
        squares += value * value;
    }
    let norm = squares.sqrt();
    let divisor = if norm == 0.0 { 1.0 } else { norm };
    vector.iter().map(|value| value / divisor).collect()
}

/// The dot product of two unit vectors, i.e. `cosine_similarity` for one pair.
pub fn dot(left: &[f64], right: &[f64]) -> f64 {
    let mut total = 0.0;
    for (a, b) in left.iter().zip(right) {
        total += a * b;
    }
    total
}

/// The full cosine-similarity matrix of already normalised vectors.
pub fn cosine_matrix(unit_vectors: &[Vec<f64>]) -> Vec<Vec<f64>> {
    unit_vectors
        .iter()
        .map(|row| unit_vectors.iter().map(|column| dot(row, column)).collect())
        .collect()
}

/// The Euclidean distance between two raw vectors, summed in index order.
pub fn euclidean(left: &[f64], right: &[f64]) -> f64 {
    let mut squares = 0.0;
    for (a, b) in left.iter().zip(right) {
        let difference = a - b;
        squares += difference * difference;
    }
    squares.sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_vectors_stay_zero_and_have_cosine_zero() {
        assert_eq!(normalized(&[0.0, 0.0]), vec![0.0, 0.0]);
        assert_eq!(dot(&normalized(&[0.0, 0.0]), &normalized(&[1.0, 2.0])), 0.0);
    }

    #[test]
    fn parallel_vectors_have_cosine_one() {
        let a = normalized(&[3.0, 4.0]);
        let b = normalized(&[6.0, 8.0]);
        assert!((dot(&a, &b) - 1.0).abs() < 1e-15);
        assert_eq!(euclidean(&[0.0, 0.0], &[3.0, 4.0]), 5.0);
    }
}
