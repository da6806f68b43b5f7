//! Quantised embeddings: what the log records and what projections compute with.
//!
//! Scheme: symmetric i8 with one f32 scale per vector, `scale = max|x| / 127` and
//! `q[i] = round_half_even(x[i] / scale)`. For a unit vector of 384 components the
//! rounding error is at most `scale / 2` per component, which keeps the cosine between a
//! vector and its quantised form above 0.9998 (0.99985 at worst over the MiniLM fixture,
//! checked in tests/embed.rs); an auditor's
//! recomputed embedding is compared with the record by that cosine.
//!
//! Similarities between recorded vectors are integer dot products (exact, in i64), with one
//! f64 square root and division at the end: the same bits on every machine, whatever
//! backend produced the vectors.

/// The smallest cosine between an auditor's recomputed embedding and the recorded one that
/// counts as the same embedding. CPU backends differ by about 5e-7 per component and GPU
/// backends by a few 1e-6; i8 rounding costs up to about 1.5e-4 of cosine. A different text,
/// even a close paraphrase (cosine about 0.96 with MiniLM), is far below.
pub const RE_EMBED_COSINE_MIN: f64 = 0.999;

/// The largest magnitude of a quantised component.
pub const QUANTIZED_MAX: i32 = 127;

/// An i8 vector and its scale: component `i` is `vector[i] as f32 * scale`.
#[derive(Debug, Clone, PartialEq)]
pub struct Quantized {
    pub scale: f32,
    pub vector: Vec<i8>,
}

/// Quantise a vector. All-zero (or non-finite) input gives scale 0 and zeros.
pub fn quantize(values: &[f32]) -> Quantized {
    let max = values
        .iter()
        .filter(|value| value.is_finite())
        .fold(0.0f32, |max, value| max.max(value.abs()));
    if max == 0.0 {
        return Quantized {
            scale: 0.0,
            vector: vec![0; values.len()],
        };
    }
    let scale = max / QUANTIZED_MAX as f32;
    let vector = values
        .iter()
        .map(|value| {
            if !value.is_finite() {
                return 0;
            }
            let q = (value / scale).round_ties_even() as i32;
            q.clamp(-QUANTIZED_MAX, QUANTIZED_MAX) as i8
        })
        .collect();
    Quantized { scale, vector }
}

/// `sum a[i] * b[i]`, exactly.
pub fn dot(a: &[i8], b: &[i8]) -> i64 {
    assert_eq!(a.len(), b.len(), "vectors of one model have one dimension");
    a.iter()
        .zip(b)
        .map(|(x, y)| i64::from(*x) * i64::from(*y))
        .sum()
}

/// Cosine of two quantised vectors from integer dot products (the scales cancel). A zero
/// vector has cosine 0 with everything.
pub fn cosine(a: &[i8], b: &[i8]) -> f64 {
    let norms = dot(a, a) as f64 * dot(b, b) as f64;
    if norms == 0.0 {
        return 0.0;
    }
    dot(a, b) as f64 / norms.sqrt()
}

/// Cosine between a float vector (an auditor's recomputation) and a recorded one.
pub fn cosine_with_record(values: &[f32], record: &[i8]) -> f64 {
    assert_eq!(
        values.len(),
        record.len(),
        "vectors of one model have one dimension"
    );
    let mut dot = 0.0f64;
    let mut norm_values = 0.0f64;
    let mut norm_record = 0.0f64;
    for (value, q) in values.iter().zip(record) {
        let value = f64::from(*value);
        let q = f64::from(*q);
        dot += value * q;
        norm_values += value * value;
        norm_record += q * q;
    }
    let norms = norm_values * norm_record;
    if norms == 0.0 {
        return 0.0;
    }
    dot / norms.sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_largest_component_maps_to_127_and_signs_are_kept() {
        let q = quantize(&[0.5, -0.25, 0.0, -0.5]);
        assert_eq!(q.vector, [127, -64, 0, -127]);
        assert_eq!(q.scale, 0.5 / 127.0);
    }

    #[test]
    fn zero_and_non_finite_inputs_do_not_panic() {
        assert_eq!(quantize(&[0.0; 4]).vector, [0; 4]);
        assert_eq!(quantize(&[0.0; 4]).scale, 0.0);
        let q = quantize(&[f32::NAN, 1.0, f32::INFINITY]);
        assert_eq!(q.vector, [0, 127, 0]);
        assert_eq!(cosine(&[0, 0], &[1, 2]), 0.0);
    }

    #[test]
    fn integer_cosine_matches_the_float_cosine_of_the_dequantised_vectors() {
        let a = quantize(&[0.3, -0.1, 0.8, 0.2]);
        let b = quantize(&[0.1, 0.4, 0.7, -0.3]);
        let dequantise = |q: &Quantized| -> Vec<f64> {
            q.vector
                .iter()
                .map(|v| f64::from(*v) * f64::from(q.scale))
                .collect()
        };
        let (x, y) = (dequantise(&a), dequantise(&b));
        let float = x.iter().zip(&y).map(|(p, q)| p * q).sum::<f64>()
            / (x.iter().map(|p| p * p).sum::<f64>() * y.iter().map(|q| q * q).sum::<f64>()).sqrt();
        assert!((cosine(&a.vector, &b.vector) - float).abs() < 1e-12);
        assert_eq!(cosine(&a.vector, &a.vector), 1.0);
    }
}
