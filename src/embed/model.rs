//! all-MiniLM-L6-v2 as burn modules: BERT embeddings, a 6-layer post-norm encoder, mean
//! pooling over the attention mask and L2 normalisation. The weights come from the pinned
//! safetensors through burn-store; a load that leaves any module tensor unmatched fails.

use std::path::Path;

use burn::module::Module;
use burn::nn::transformer::{
    TransformerEncoder, TransformerEncoderConfig, TransformerEncoderInput,
};
use burn::nn::{Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig};
use burn::tensor::{Device, Int, Tensor};
use burn_store::{KeyRemapper, ModuleSnapshot, PyTorchToBurnAdapter, SafetensorsStore};

use super::EmbedError;

/// The shape of all-MiniLM-L6-v2 (its config.json; checked at load).
pub const VOCABULARY_SIZE: usize = 30522;
pub const POSITIONS_MAX: usize = 512;
pub const TOKEN_TYPES: usize = 2;
pub const HIDDEN_SIZE: usize = 384;
pub const INTERMEDIATE_SIZE: usize = 1536;
pub const ATTENTION_HEADS: usize = 12;
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

#[derive(Module, Debug)]
pub struct MiniLm {
    embeddings: BertEmbeddings,
    encoder: TransformerEncoder,
}

impl MiniLm {
    /// A model of the right shape with arbitrary weights; `load` fills every tensor.
    fn init(device: &Device) -> MiniLm {
        MiniLm {
            embeddings: BertEmbeddings {
                word_embeddings: EmbeddingConfig::new(VOCABULARY_SIZE, HIDDEN_SIZE).init(device),
                position_embeddings: EmbeddingConfig::new(POSITIONS_MAX, HIDDEN_SIZE).init(device),
                token_type_embeddings: EmbeddingConfig::new(TOKEN_TYPES, HIDDEN_SIZE).init(device),
                layer_norm: LayerNormConfig::new(HIDDEN_SIZE)
                    .with_epsilon(LAYER_NORM_EPSILON)
                    .init(device),
            },
            encoder: TransformerEncoderConfig::new(
                HIDDEN_SIZE,
                INTERMEDIATE_SIZE,
                ATTENTION_HEADS,
                LAYERS,
            )
            .with_norm_first(false)
            .with_layer_norm_eps(LAYER_NORM_EPSILON)
            .with_dropout(0.0)
            .init(device),
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
                "encoder.layers.$1.mha.$2.",
            ),
            (
                r"^encoder\.layer\.(\d+)\.attention\.output\.dense\.",
                "encoder.layers.$1.mha.output.",
            ),
            (
                r"^encoder\.layer\.(\d+)\.attention\.output\.LayerNorm\.",
                "encoder.layers.$1.norm_1.",
            ),
            (
                r"^encoder\.layer\.(\d+)\.intermediate\.dense\.",
                "encoder.layers.$1.pwff.linear_inner.",
            ),
            (
                r"^encoder\.layer\.(\d+)\.output\.dense\.",
                "encoder.layers.$1.pwff.linear_outer.",
            ),
            (
                r"^encoder\.layer\.(\d+)\.output\.LayerNorm\.",
                "encoder.layers.$1.norm_2.",
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

    /// Unit-length sentence embeddings `[batch, HIDDEN_SIZE]` of token ids `[batch, seq]`
    /// whose `mask` (1 = token, 0 = padding) marks the real tokens.
    pub fn forward(
        &self,
        token_ids: Tensor<2, Int>,
        token_type_ids: Tensor<2, Int>,
        mask: Tensor<2>,
    ) -> Tensor<2> {
        let [batch, sequence] = token_ids.dims();
        let device = token_ids.device();
        let positions = Tensor::<1, Int>::arange(0..sequence as i64, &device)
            .reshape([1, sequence])
            .repeat_dim(0, batch);
        let embedded = self.embeddings.word_embeddings.forward(token_ids)
            + self.embeddings.position_embeddings.forward(positions)
            + self
                .embeddings
                .token_type_embeddings
                .forward(token_type_ids);
        let embedded = self.embeddings.layer_norm.forward(embedded);
        // `mask_pad` marks padding with true.
        let padding = mask.clone().equal_elem(0.0);
        let hidden = self
            .encoder
            .forward(TransformerEncoderInput::new(embedded).mask_pad(padding));
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
