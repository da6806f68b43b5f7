//! BERT self-attention on the CPU backend, straight on the projections' f32 rows.
//!
//! burn's flex attention works on `[batch, heads, seq, head]` copies of the projections,
//! masks padded keys, and takes its softmax through libm's scalar `expf`; in a release build
//! that was a quarter of a long text's forward pass. Here each (text, head) pair is one task
//! on rayon's pool: two gemm products read the heads in place through strides, the softmax
//! uses [`exp_non_positive`] (vectorisable), and a text's padding is skipped rather than
//! masked: padding sits at the end of each row (`Embedder::embed_pass` pads on the right),
//! so the first `length` keys are exactly the unmasked ones. Padded query rows get a zero
//! context; mean pooling never reads them and no real token attends to them.
//!
//! Every task runs gemm on one thread and writes only its own block of the output (its
//! text's rows, its head's columns), so the bits do not depend on how many threads rayon
//! has.

use rayon::prelude::*;

use super::model::{ATTENTION_HEADS, HEAD_SIZE, HIDDEN_SIZE};
use super::simd::widest_simd;

/// `softmax(q kᵀ / sqrt(HEAD_SIZE)) v` for every head of every text.
///
/// `query`, `key` and `value` are `[lengths.len() * sequence, HIDDEN_SIZE]` row-major, text
/// by text; `lengths[text]` is that text's real token count. Returns the context in the same
/// layout, head `h` in columns `h * HEAD_SIZE ..`, zero on padded rows.
pub(super) fn self_attention(
    query: &[f32],
    key: &[f32],
    value: &[f32],
    lengths: &[usize],
    sequence: usize,
) -> Vec<f32> {
    let rows = lengths.len() * sequence;
    assert!(
        query.len() == rows * HIDDEN_SIZE
            && key.len() == rows * HIDDEN_SIZE
            && value.len() == rows * HIDDEN_SIZE,
        "attention: projections of {} values for {rows} rows",
        query.len()
    );
    assert!(
        lengths.iter().all(|length| *length <= sequence),
        "attention: a text is longer than its batch's sequence"
    );
    let scale = 1.0 / (HEAD_SIZE as f32).sqrt();
    // Zero, so padded rows keep a zero context.
    let mut context = vec![0.0f32; rows * HIDDEN_SIZE];
    let output = SharedOutput(context.as_mut_ptr());
    (0..lengths.len() * ATTENTION_HEADS)
        .into_par_iter()
        .for_each(|task| {
            let (text, head) = (task / ATTENTION_HEADS, task % ATTENTION_HEADS);
            let length = lengths[text];
            if length == 0 {
                return;
            }
            // Offset of this text's first row, at this head's first column, in every
            // `[rows, HIDDEN_SIZE]` matrix here.
            let start = text * sequence * HIDDEN_SIZE + head * HEAD_SIZE;
            let mut scores = vec![0.0f32; length * length];
            // SAFETY: scores is length × length, row-major. The query block is `length`
            // rows of HEAD_SIZE values from `start`, rows HIDDEN_SIZE apart, inside
            // `query` (asserted above: length <= sequence and the text's rows exist); kᵀ
            // reads the same block of `key` with rows and columns swapped.
            unsafe {
                gemm::gemm(
                    length,
                    length,
                    HEAD_SIZE,
                    scores.as_mut_ptr(),
                    1,
                    length as isize,
                    false,
                    query[start..].as_ptr(),
                    1,
                    HIDDEN_SIZE as isize,
                    key[start..].as_ptr(),
                    HIDDEN_SIZE as isize,
                    1,
                    0.0,
                    scale,
                    false,
                    false,
                    false,
                    gemm::Parallelism::None,
                );
            }
            softmax_rows(&mut scores, length);
            // SAFETY: the destination is the same block of `context` as the query block
            // above: inside it, and written by this task alone, since each (text, head)
            // pair owns its rows' HEAD_SIZE columns and the pairs are distinct tasks.
            // `context` outlives the parallel loop. `scores` is length × length; the value
            // block is read as the query block was.
            unsafe {
                gemm::gemm(
                    length,
                    HEAD_SIZE,
                    length,
                    output.at(start),
                    1,
                    HIDDEN_SIZE as isize,
                    false,
                    scores.as_ptr(),
                    1,
                    length as isize,
                    value[start..].as_ptr(),
                    1,
                    HIDDEN_SIZE as isize,
                    0.0,
                    1.0,
                    false,
                    false,
                    false,
                    gemm::Parallelism::None,
                );
            }
        });
    context
}

/// The context buffer, shared by the tasks that each write their own block of it.
struct SharedOutput(*mut f32);

// SAFETY: the tasks write disjoint blocks (see the second gemm call) and nothing reads the
// buffer until the parallel loop is over.
unsafe impl Sync for SharedOutput {}

impl SharedOutput {
    /// The element at `offset`. A method, so closures capture the whole (Sync) wrapper.
    fn at(&self, offset: usize) -> *mut f32 {
        self.0.wrapping_add(offset)
    }
}

widest_simd! {
    /// Every `length`-long row of `scores` through [`softmax_in_place`], vectorised as
    /// widely as the CPU allows (the bits are the same at every width).
    fn softmax_rows(scores: &mut [f32], length: usize) = softmax_rows_portable;
}

#[inline(always)]
fn softmax_rows_portable(scores: &mut [f32], length: usize) {
    for row in scores.chunks_exact_mut(length) {
        softmax_in_place(row);
    }
}

/// `row := softmax(row)`, shifted by the row's maximum so every exponent is <= 0.
#[inline(always)]
fn softmax_in_place(row: &mut [f32]) {
    let max = fold_in_lanes(row, f32::NEG_INFINITY, f32::max);
    for score in row.iter_mut() {
        *score = exp_non_positive(*score - max);
    }
    let inverse = 1.0 / fold_in_lanes(row, 0.0, |sum, value| sum + value);
    for score in row.iter_mut() {
        *score *= inverse;
    }
}

/// `values` folded with `op` in eight interleaved lanes, then the lanes and the tail in
/// order. The order is fixed, so are the bits; and unlike one running fold (a chain the
/// compiler must keep in order) the lanes fit in vector registers.
#[inline(always)]
fn fold_in_lanes(values: &[f32], init: f32, op: impl Fn(f32, f32) -> f32) -> f32 {
    const LANES: usize = 8;
    let mut lanes = [init; LANES];
    let mut chunks = values.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (lane, value) in lanes.iter_mut().zip(chunk) {
            *lane = op(*lane, *value);
        }
    }
    let folded = lanes.into_iter().fold(init, &op);
    chunks
        .remainder()
        .iter()
        .fold(folded, |acc, value| op(acc, *value))
}

/// e^x for x <= 0, within a few ulp (the tests check against libm's f64 `exp`).
///
/// x = k ln 2 + r with |r| <= ln 2 / 2 (ln 2 split in two so k ln 2 is exact), e^r by its
/// Taylor series to r⁷ (truncation under 6e-9), and 2^k built in the exponent bits. Below
/// -87 the result would leave the normal range; it is pinned at e^-87 (1.6e-38), which is
/// nothing beside the row maximum's e^0. No branch, no call: the softmax loop vectorises,
/// and plain IEEE arithmetic gives the same bits on every x86-64 CPU.
#[inline(always)]
pub(super) fn exp_non_positive(x: f32) -> f32 {
    const LN2_HIGH: f32 = 0.693_359_4;
    const LN2_LOW: f32 = -2.121_944_4e-4;
    // Adding and removing 1.5 × 2²³ rounds to the nearest integer without a call.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 0.0);
    let rounded = x * std::f32::consts::LOG2_E + ROUND;
    let k = rounded - ROUND;
    let r = x - k * LN2_HIGH - k * LN2_LOW;
    let series = 1.0
        + r * (1.0
            + r * (1.0 / 2.0
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0
                        + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    // `rounded` is 1.5 × 2²³ + k exactly, so its bits are ROUND's bits + k: k's integer is
    // read from them with integer arithmetic, which vectorises (an `as i32` cast
    // saturates, and compiled to a scalar conversion per lane).
    let k_bits = rounded.to_bits().wrapping_sub(ROUND.to_bits());
    let two_to_k = f32::from_bits(k_bits.wrapping_add(127) << 23);
    series * two_to_k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_stays_within_4_ulp_of_libm_down_to_minus_87() {
        let mut worst_ulps = 0.0f64;
        // Every 16th f32 from -87 to -0.
        for bits in (0..=87.0f32.to_bits()).step_by(16) {
            let x = -f32::from_bits(bits);
            let exact = libm::exp(f64::from(x));
            let got = f64::from(exp_non_positive(x));
            worst_ulps = worst_ulps.max((got - exact).abs() / (exact * f64::from(f32::EPSILON)));
        }
        assert!(worst_ulps < 4.0, "exp is {worst_ulps} ulp from libm's");
        assert_eq!(exp_non_positive(0.0), 1.0);
        assert_eq!(exp_non_positive(-1e30), exp_non_positive(-87.0));
    }

    /// Attention written out in f64, masking padded keys as BERT does.
    fn attention_reference(
        query: &[f32],
        key: &[f32],
        value: &[f32],
        lengths: &[usize],
        sequence: usize,
    ) -> Vec<f64> {
        let mut context = vec![0.0f64; query.len()];
        let at = |matrix: &[f32], row: usize, column: usize| {
            f64::from(matrix[row * HIDDEN_SIZE + column])
        };
        for (text, length) in lengths.iter().enumerate() {
            for head in 0..ATTENTION_HEADS {
                let columns = head * HEAD_SIZE..(head + 1) * HEAD_SIZE;
                for i in 0..*length {
                    let row = text * sequence + i;
                    let scores: Vec<f64> = (0..*length)
                        .map(|j| {
                            columns
                                .clone()
                                .map(|c| at(query, row, c) * at(key, text * sequence + j, c))
                                .sum::<f64>()
                                / (HEAD_SIZE as f64).sqrt()
                        })
                        .collect();
                    let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let weights: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
                    let total: f64 = weights.iter().sum();
                    for c in columns.clone() {
                        context[row * HIDDEN_SIZE + c] = (0..*length)
                            .map(|j| weights[j] / total * at(value, text * sequence + j, c))
                            .sum();
                    }
                }
            }
        }
        context
    }

    #[test]
    fn attention_matches_a_plain_f64_one_and_ignores_padding() {
        let (lengths, sequence) = ([5usize, 9, 1, 0], 9);
        let rows = lengths.len() * sequence;
        // Deterministic values in [-2, 2), different for each matrix.
        let fill = |salt: u64| -> Vec<f32> {
            (0..rows * HIDDEN_SIZE)
                .map(|index| {
                    let mixed = (index as u64 ^ salt).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
                    (mixed as f32 / (1u64 << 24) as f32) * 4.0 - 2.0
                })
                .collect()
        };
        let (query, key, mut value) = (fill(1), fill(2), fill(3));
        let got = self_attention(&query, &key, &value, &lengths, sequence);
        let want = attention_reference(&query, &key, &value, &lengths, sequence);
        for (index, (got, want)) in got.iter().zip(&want).enumerate() {
            assert!(
                (f64::from(*got) - want).abs() < 1e-5,
                "context value {index}: {got} against {want}"
            );
        }
        // Text 0 has 5 tokens: rows 5 to 8 are padding and get a zero context, and so does
        // every row of text 3, which has none.
        assert!(
            got[5 * HIDDEN_SIZE..9 * HIDDEN_SIZE]
                .iter()
                .all(|v| *v == 0.0)
        );
        assert!(got[27 * HIDDEN_SIZE..].iter().all(|v| *v == 0.0));
        // A padded key counts for nothing: a huge value there changes no bit.
        value[7 * HIDDEN_SIZE] = 1e6;
        let again = self_attention(&query, &key, &value, &lengths, sequence);
        assert_eq!(got, again);
    }

    #[test]
    fn softmax_gives_the_same_bits_at_every_vector_width() {
        // Rows of every length up to 40 (tails of every size after the 8-lane folds), with
        // scores from -60 to 60, so some exponents reach the -87 floor.
        for length in 1..=40usize {
            let mut widest: Vec<f32> = (0..length * length)
                .map(|index| {
                    let mixed = (index as u64 + 7).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
                    (mixed as f32 / (1u64 << 24) as f32) * 120.0 - 60.0
                })
                .collect();
            let mut portable = widest.clone();
            softmax_rows(&mut widest, length);
            softmax_rows_portable(&mut portable, length);
            let bits = |values: &[f32]| values.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&widest), bits(&portable), "rows of {length}");
        }
    }
}
