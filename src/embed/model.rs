//! all-MiniLM-L6-v2 as burn modules: BERT embeddings, a 6-layer post-norm encoder, mean
//! pooling over the attention mask and L2 normalisation. The weights come from the pinned
//! safetensors through burn-store; a load that leaves any module tensor unmatched fails.

use std::path::Path;

use burn::module::Module;
use burn::nn::{Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::gelu;
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Bool, Device, Int, Tensor, TensorData};
use burn_store::{KeyRemapper, ModuleSnapshot, PyTorchToBurnAdapter, SafetensorsStore};
use rayon::prelude::*;

use super::simd::widest_simd;
use super::{Backend, EmbedError};

/// The shape of all-MiniLM-L6-v2 (its config.json; checked at load).
pub const VOCABULARY_SIZE: usize = 30522;
pub const POSITIONS_MAX: usize = 512;
pub const TOKEN_TYPES: usize = 2;
pub const HIDDEN_SIZE: usize = 384;
pub const INTERMEDIATE_SIZE: usize = 1536;
pub const ATTENTION_HEADS: usize = 12;
pub const HEAD_SIZE: usize = HIDDEN_SIZE / ATTENTION_HEADS;
pub const LAYERS: usize = 6;
/// BERT's LayerNorm epsilon; burn's default (1e-5) would move every embedding.
pub const LAYER_NORM_EPSILON: f64 = 1e-12;

#[derive(Module, Debug)]
pub struct BertEmbeddings {
    word_embeddings: Embedding,
    position_embeddings: Embedding,
    token_type_embeddings: Embedding,
    layer_norm: LayerNorm,
}

/// One post-norm BERT layer. Its linear layers work on every token of the batch as one
/// `[tokens, features]` matrix, so each is one large matrix product (which the CPU backend
/// spreads over its threads) instead of one small product per text. Attention is
/// [`super::attention`] on the CPU and burn's attention op elsewhere; neither holds the
/// `[batch, heads, seq, seq]` scores that burn-nn's `TransformerEncoder` built (61 MB per
/// layer for 32 texts of 200 tokens).
#[derive(Module, Debug)]
pub struct EncoderLayer {
    query: Linear,
    key: Linear,
    value: Linear,
    attention_output: Linear,
    attention_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    output_norm: LayerNorm,
}

#[derive(Module, Debug)]
pub struct MiniLm {
    embeddings: BertEmbeddings,
    layers: Vec<EncoderLayer>,
}

fn layer_norm(device: &Device) -> LayerNorm {
    LayerNormConfig::new(HIDDEN_SIZE)
        .with_epsilon(LAYER_NORM_EPSILON)
        .init(device)
}

/// How attention leaves out padding. The CPU path ([`super::attention`]) computes each
/// text over its own length; other backends mask padded keys through burn's attention.
enum Padding<'a> {
    /// Each text's real token count.
    Lengths(&'a [usize]),
    /// `[batch, 1, sequence, sequence]`, true where the key is padding.
    Mask(Box<Tensor<4, Bool>>),
}

/// [`super::attention::self_attention`] on the projections' own buffers (flex hands a
/// tensor's storage over without a copy when nothing else holds it).
fn attention_on_cpu(
    query: Tensor<2>,
    key: Tensor<2>,
    value: Tensor<2>,
    lengths: &[usize],
    sequence: usize,
) -> Tensor<2> {
    let device = query.device();
    let [query, key, value] = [query, key, value].map(Tensor::into_data);
    let context = match (
        query.as_slice::<f32>(),
        key.as_slice::<f32>(),
        value.as_slice::<f32>(),
    ) {
        (Ok(query), Ok(key), Ok(value)) => {
            super::attention::self_attention(query, key, value, lengths, sequence)
        }
        _ => panic!("the model runs in f32, so its projections are f32"),
    };
    let rows = lengths.len() * sequence;
    Tensor::from_data(TensorData::new(context, [rows, HIDDEN_SIZE]), &device)
}

/// BERT's GELU, `x/2 * (1 + erf(x/sqrt 2))`, on the CPU backend, spread over rayon's
/// threads with [`erf`] below. burn's GELU maps the `[tokens, INTERMEDIATE_SIZE]`
/// activations on one thread with libm's branchy scalar `erff`; in a release build that
/// was a seventh of a long text's forward pass, with the other core idle.
fn gelu_parallel(activations: Tensor<2>) -> Tensor<2> {
    const CHUNK: usize = 16 * 1024;
    let device = activations.device();
    let mut data = activations.into_data();
    match data.as_mut_slice::<f32>() {
        Ok(values) => {
            values.par_chunks_mut(CHUNK).for_each(gelu_in_place);
            Tensor::from_data(data, &device)
        }
        // Not f32 (the model is loaded as f32, so this is not expected): burn's own GELU.
        Err(_) => gelu(Tensor::from_data(data, &device)),
    }
}

widest_simd! {
    /// [`gelu_of`] on every value, vectorised as widely as the CPU allows (the bits are
    /// the same at every width).
    fn gelu_in_place(values: &mut [f32]) = gelu_in_place_portable;
}

#[inline(always)]
fn gelu_in_place_portable(values: &mut [f32]) {
    for value in values {
        *value = gelu_of(*value);
    }
}

/// One activation's GELU, BERT's erf form, with [`erf`] below.
#[inline(always)]
fn gelu_of(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// Where [`erf`] returns exactly ±1: erf(3.9375) is 1 - 1.6e-8, which rounds to 1 in f32.
const ERF_SATURATES: f32 = 3.9375;

/// erf in f32 as `x * P(x²) / Q(x²)`, a degree 5/5 rational fitted (weighted least squares
/// iterated towards minimax, in f64) to erf on [0, 3.9375]. Evaluated in f32 it is within
/// 5e-7 of erf everywhere, and the GELU built on it within 1.5e-6 (a few ulp of the
/// activation); the tests below check both against libm's f64 `erf`.
/// It has no branch and no call, so the loop above compiles to vector instructions; plain
/// IEEE multiplies, adds and one divide make it give the same bits on every x86-64 CPU.
#[inline(always)]
fn erf(x: f32) -> f32 {
    const P: [f32; 6] = [
        // 2/sqrt(pi), erf's slope at 0, where the fit put it to within 2 ulp.
        std::f32::consts::FRAC_2_SQRT_PI,
        0.193_492_07,
        0.053_143_624,
        0.003_896_171_7,
        0.000_287_508_1,
        2.021_085e-6,
    ];
    const Q: [f32; 6] = [
        1.0,
        0.504_809_44,
        0.115_373_67,
        0.015_228_247,
        0.001_193_773_5,
        3.793_13e-5,
    ];
    let clamped = x.clamp(-ERF_SATURATES, ERF_SATURATES);
    let t = clamped * clamped;
    let p = ((((P[5] * t + P[4]) * t + P[3]) * t + P[2]) * t + P[1]) * t + P[0];
    let q = ((((Q[5] * t + Q[4]) * t + Q[3]) * t + Q[2]) * t + Q[1]) * t + Q[0];
    let value = (clamped * p / q).clamp(-1.0, 1.0);
    if x.abs() >= ERF_SATURATES {
        1.0f32.copysign(x)
    } else {
        value
    }
}

impl EncoderLayer {
    fn init(device: &Device) -> EncoderLayer {
        let square = || LinearConfig::new(HIDDEN_SIZE, HIDDEN_SIZE).init(device);
        EncoderLayer {
            query: square(),
            key: square(),
            value: square(),
            attention_output: square(),
            attention_norm: layer_norm(device),
            intermediate: LinearConfig::new(HIDDEN_SIZE, INTERMEDIATE_SIZE).init(device),
            output: LinearConfig::new(INTERMEDIATE_SIZE, HIDDEN_SIZE).init(device),
            output_norm: layer_norm(device),
        }
    }

    /// `hidden` is `[batch * sequence, HIDDEN_SIZE]`, text by text.
    fn forward(&self, hidden: Tensor<2>, padding: &Padding, sequence: usize) -> Tensor<2> {
        let query = self.query.forward(hidden.clone());
        let key = self.key.forward(hidden.clone());
        let value = self.value.forward(hidden.clone());
        let context = match padding {
            Padding::Lengths(lengths) => attention_on_cpu(query, key, value, lengths, sequence),
            Padding::Mask(mask) => {
                let batch = mask.dims()[0];
                let heads = |projection: Tensor<2>| {
                    projection
                        .reshape([batch, sequence, ATTENTION_HEADS, HEAD_SIZE])
                        .swap_dims(1, 2)
                };
                attention(
                    heads(query),
                    heads(key),
                    heads(value),
                    Some(mask.as_ref().clone()),
                    None,
                    AttentionModuleOptions::default(),
                )
                .swap_dims(1, 2)
                .reshape([batch * sequence, HIDDEN_SIZE])
            }
        };
        let hidden = self
            .attention_norm
            .forward(hidden + self.attention_output.forward(context));
        let inner = self.intermediate.forward(hidden.clone());
        let inner = match padding {
            Padding::Lengths(_) => gelu_parallel(inner),
            Padding::Mask(_) => gelu(inner),
        };
        self.output_norm
            .forward(hidden + self.output.forward(inner))
    }
}

impl MiniLm {
    /// A model of the right shape with arbitrary weights; `load` fills every tensor.
    fn init(device: &Device) -> MiniLm {
        MiniLm {
            embeddings: BertEmbeddings {
                word_embeddings: EmbeddingConfig::new(VOCABULARY_SIZE, HIDDEN_SIZE).init(device),
                position_embeddings: EmbeddingConfig::new(POSITIONS_MAX, HIDDEN_SIZE).init(device),
                token_type_embeddings: EmbeddingConfig::new(TOKEN_TYPES, HIDDEN_SIZE).init(device),
                layer_norm: layer_norm(device),
            },
            layers: (0..LAYERS).map(|_| EncoderLayer::init(device)).collect(),
        }
    }

    /// The model with the weights of a sentence-transformers safetensors file.
    pub fn load(weights: &Path, device: &Device) -> Result<MiniLm, EmbedError> {
        let load_error = |message: String| EmbedError::Load {
            path: weights.to_path_buf(),
            message,
        };
        // Hugging Face BERT names -> our module paths.
        let remapper = KeyRemapper::from_patterns(vec![
            (r"^embeddings\.LayerNorm\.", "embeddings.layer_norm."),
            (
                r"^encoder\.layer\.(\d+)\.attention\.self\.(query|key|value)\.",
                "layers.$1.$2.",
            ),
            (
                r"^encoder\.layer\.(\d+)\.attention\.output\.dense\.",
                "layers.$1.attention_output.",
            ),
            (
                r"^encoder\.layer\.(\d+)\.attention\.output\.LayerNorm\.",
                "layers.$1.attention_norm.",
            ),
            (
                r"^encoder\.layer\.(\d+)\.intermediate\.dense\.",
                "layers.$1.intermediate.",
            ),
            (
                r"^encoder\.layer\.(\d+)\.output\.dense\.",
                "layers.$1.output.",
            ),
            (
                r"^encoder\.layer\.(\d+)\.output\.LayerNorm\.",
                "layers.$1.output_norm.",
            ),
        ])
        .map_err(|error| load_error(error.to_string()))?;
        // The adapter transposes Linear weights ([out, in] -> [in, out]) and renames norm
        // weight/bias to gamma/beta. Without it the square attention matrices would load
        // untransposed with no error.
        let mut store = SafetensorsStore::from_file(weights)
            .with_from_adapter(PyTorchToBurnAdapter)
            .remap(remapper);
        let mut model = MiniLm::init(device);
        let result = model
            .load_from(&mut store)
            .map_err(|error| load_error(error.to_string()))?;
        if !result.missing.is_empty() || !result.errors.is_empty() {
            let missing: Vec<&str> = result
                .missing
                .iter()
                .map(|(path, _)| path.as_str())
                .collect();
            let errors: Vec<String> = result.errors.iter().map(ToString::to_string).collect();
            return Err(load_error(format!(
                "the weights do not fill the model: missing [{}], errors [{}]",
                missing.join(", "),
                errors.join("; ")
            )));
        }
        Ok(model)
    }

    /// Unit-length sentence embeddings `[batch, HIDDEN_SIZE]` of token ids `[batch, seq]`,
    /// padded on the right: text `i` has `lengths[i]` real tokens, then padding.
    pub fn forward(
        &self,
        token_ids: Tensor<2, Int>,
        token_type_ids: Tensor<2, Int>,
        lengths: &[usize],
        backend: Backend,
    ) -> Tensor<2> {
        let [batch, sequence] = token_ids.dims();
        let device = token_ids.device();
        assert!(
            lengths.len() == batch && lengths.iter().all(|length| *length <= sequence),
            "lengths {lengths:?} do not fit token ids of shape [{batch}, {sequence}]"
        );
        // 1 on each text's real tokens, 0 on its padding.
        let mut mask = vec![0.0f32; batch * sequence];
        for (row, length) in mask.chunks_exact_mut(sequence.max(1)).zip(lengths) {
            row[..*length].fill(1.0);
        }
        let mask = Tensor::<2>::from_data(TensorData::new(mask, [batch, sequence]), &device);
        let positions = Tensor::<1, Int>::arange(0..sequence as i64, &device)
            .reshape([1, sequence])
            .repeat_dim(0, batch);
        let embedded = self.embeddings.word_embeddings.forward(token_ids)
            + self.embeddings.position_embeddings.forward(positions)
            + self
                .embeddings
                .token_type_embeddings
                .forward(token_type_ids);
        let mut hidden = self
            .embeddings
            .layer_norm
            .forward(embedded)
            .reshape([batch * sequence, HIDDEN_SIZE]);
        let padding = match backend {
            Backend::Cpu => Padding::Lengths(lengths),
            // True where the key is padding, for every query row of its text.
            Backend::Wgpu => Padding::Mask(Box::new(
                mask.clone()
                    .equal_elem(0.0)
                    .reshape([batch, 1, 1, sequence])
                    .expand([batch, 1, sequence, sequence]),
            )),
        };
        for layer in &self.layers {
            hidden = layer.forward(hidden, &padding, sequence);
        }
        let hidden = hidden.reshape([batch, sequence, HIDDEN_SIZE]);
        // Mean over real tokens: padded positions count for nothing.
        let mask3 = mask.unsqueeze_dim::<3>(2);
        let summed = (hidden * mask3.clone()).sum_dim(1).squeeze_dim::<2>(1);
        let counts = mask3.sum_dim(1).squeeze_dim::<2>(1).clamp_min(1e-9);
        let mean = summed / counts;
        let norms = mean
            .clone()
            .powi_scalar(2)
            .sum_dim(1)
            .sqrt()
            .clamp_min(1e-12);
        mean / norms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every 64th f32 from -8 to 8 (about 34 million values, zero and both signs included).
    fn samples() -> impl Iterator<Item = f32> {
        let top = 8.0f32.to_bits();
        (0..=top)
            .step_by(64)
            .flat_map(|bits| [f32::from_bits(bits), -f32::from_bits(bits)])
    }

    #[test]
    fn erf_stays_within_5e_7_of_libm_and_is_odd() {
        let mut worst = 0.0f64;
        for x in samples() {
            let got = erf(x);
            worst = worst.max((f64::from(got) - libm::erf(f64::from(x))).abs());
            assert_eq!(got.to_bits(), (-erf(-x)).to_bits(), "erf is odd at {x}");
            assert!(got.abs() <= 1.0, "|erf({x})| = {got} > 1");
        }
        assert!(worst < 5e-7, "erf is {worst:e} from libm's");
        assert_eq!(erf(ERF_SATURATES), 1.0);
        assert_eq!(erf(-1e30), -1.0);
        assert_eq!(erf(0.0), 0.0);
        assert!(erf(f32::NAN).is_nan());
    }

    #[test]
    fn gelu_stays_within_1_5e_6_of_the_exact_one() {
        let mut worst = 0.0f64;
        let mut worst_ulps_positive = 0.0f64;
        for x in samples() {
            let exact = 0.5 * f64::from(x) * (1.0 + libm::erf(f64::from(x) / 2f64.sqrt()));
            let got = gelu_of(x);
            let error = (f64::from(got) - exact).abs();
            worst = worst.max(error);
            // Where 1 + erf does not cancel, the error is a few ulp of the activation.
            if x >= 1e-3 {
                worst_ulps_positive =
                    worst_ulps_positive.max(error / (exact * f64::from(f32::EPSILON)));
            }
        }
        assert!(worst < 1.5e-6, "GELU is {worst:e} from exact");
        assert!(
            worst_ulps_positive < 4.0,
            "GELU is {worst_ulps_positive} ulp from exact"
        );
    }

    #[test]
    fn gelu_gives_the_same_bits_at_every_vector_width() {
        // The values in a slice, so that the widest copy this CPU has runs on them.
        let mut widest: Vec<f32> = samples().step_by(97).collect();
        widest.extend([
            0.0,
            -0.0,
            f32::MAX,
            f32::MIN,
            f32::INFINITY,
            f32::NEG_INFINITY,
        ]);
        let mut portable = widest.clone();
        gelu_in_place(&mut widest);
        gelu_in_place_portable(&mut portable);
        let bits = |values: &[f32]| values.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&widest), bits(&portable));
    }
}
