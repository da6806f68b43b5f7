//! The MiniLM embedder: tokenizer, model and batching (the `embed` feature).

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use burn::tensor::{Device, Int, Tensor, TensorData};
use tokenizers::{Tokenizer, TruncationParams};

pub use super::model::HIDDEN_SIZE;
use super::model::MiniLm;
use crate::assets::{self, AssetDir, Cache};

/// sentence-transformers' `max_seq_length` for this model. tokenizer.json says 128;
/// keeping that would change every text of 129 to 256 tokens.
pub const TOKENS_MAX: usize = 256;
/// Texts per forward pass unless the caller says otherwise.
pub const BATCH_SIZE_DEFAULT: usize = 32;
/// The most texts one forward pass takes.
pub const BATCH_SIZE_MAX: usize = 1024;
/// About the most padded tokens one forward pass takes, so that its activations stay in the
/// cores' caches; see [`Embedder::embed`]. Chosen with `benches/embed.rs`: against no cap,
/// 256 short texts at batch 256 ran 279 to 420 sentences/s, and 64 texts of 200 tokens at
/// batch 32 ran 25 to 33; 512, 2048 and 4096 each did worse than 1024 on at least one of the
/// two.
pub const TOKENS_PER_PASS: usize = 1024;
/// BERT's `[PAD]` id, and the type id of padding.
const PAD_ID: i64 = 0;

#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error(transparent)]
    Asset(#[from] assets::AssetError),
    #[error("{path}: cannot load the model: {message}")]
    Load { path: PathBuf, message: String },
    #[error("{path}: cannot load the tokenizer: {message}")]
    Tokenizer { path: PathBuf, message: String },
    #[error("tokenizing failed: {0}")]
    Tokenize(String),
    #[error(
        "backend `{0}` is not built into this binary; rebuild with `--features {0}` (known backends: cpu, wgpu)"
    )]
    BackendNotBuilt(String),
    #[error("unknown backend `{0}`; known backends: cpu, wgpu")]
    UnknownBackend(String),
    #[error("batch size {0} is outside 1..={BATCH_SIZE_MAX}")]
    BatchSize(usize),
    #[error("the {backend} backend returned {got} values for {texts} texts")]
    Shape {
        backend: Backend,
        got: usize,
        texts: usize,
    },
}

/// Where the model runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backend {
    /// burn's pure-Rust CPU backend (flex); bit-identical across runs and thread counts.
    #[default]
    Cpu,
    /// burn's wgpu backend: Vulkan, Metal or DX12 on a GPU, or a software renderer.
    Wgpu,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Cpu => "cpu",
            Backend::Wgpu => "wgpu",
        })
    }
}

impl FromStr for Backend {
    type Err = EmbedError;

    fn from_str(name: &str) -> Result<Backend, EmbedError> {
        match name {
            "cpu" => Ok(Backend::Cpu),
            "wgpu" => Ok(Backend::Wgpu),
            other => Err(EmbedError::UnknownBackend(other.to_owned())),
        }
    }
}

impl Backend {
    /// Whether this binary was built with the backend.
    pub fn is_built(self) -> bool {
        match self {
            Backend::Cpu => true,
            Backend::Wgpu => cfg!(feature = "wgpu"),
        }
    }

    fn device(self) -> Result<Device, EmbedError> {
        match self {
            Backend::Cpu => Ok(Device::flex()),
            #[cfg(feature = "wgpu")]
            Backend::Wgpu => Ok(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice)),
            #[cfg(not(feature = "wgpu"))]
            Backend::Wgpu => Err(EmbedError::BackendNotBuilt("wgpu".into())),
        }
    }
}

/// Token ids of one text, as the model sees them. Every id is a real token: padding is
/// added per forward pass inside [`Embedder::embed`], so there is no mask to carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tokens {
    pub ids: Vec<u32>,
    pub type_ids: Vec<u32>,
}

/// A loaded model and tokenizer on one backend.
pub struct Embedder {
    model: MiniLm,
    tokenizer: Tokenizer,
    device: Device,
    backend: Backend,
    model_hash: weightlog_schema::Hash,
}

impl fmt::Debug for Embedder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Embedder")
            .field("backend", &self.backend)
            .field("model_hash", &self.model_hash.to_string())
            .finish_non_exhaustive()
    }
}

impl Embedder {
    /// The model from the cache named by the environment, fetched when missing.
    pub fn from_env(backend: Backend) -> Result<Embedder, EmbedError> {
        if !backend.is_built() {
            return Err(EmbedError::BackendNotBuilt(backend.to_string()));
        }
        let cache = Cache::from_env()?.with_progress(true);
        let asset = cache.ensure(assets::by_name(assets::MINILM)?)?;
        Embedder::load(&asset, backend)
    }

    /// The model from a verified asset directory.
    pub fn load(asset: &AssetDir, backend: Backend) -> Result<Embedder, EmbedError> {
        let device = backend.device()?;
        let weights = asset.path("model.safetensors");
        let model = MiniLm::load(&weights, &device)?;
        let tokenizer_path = asset.path("tokenizer.json");
        let tokenizer = load_tokenizer(&tokenizer_path)?;
        let model_hash = weightlog_schema::Hash::from_hex(asset.blake3("model.safetensors"))
            .map_err(|error| EmbedError::Load {
                path: weights.clone(),
                message: format!("pinned blake3 is not a hash: {error}"),
            })?;
        Ok(Embedder {
            model,
            tokenizer,
            device,
            backend,
            model_hash,
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// blake3 of the weights, as `EmbeddingComputed.model_hash` records it.
    pub fn model_hash(&self) -> weightlog_schema::Hash {
        self.model_hash
    }

    /// The token ids of each text (truncated at [`TOKENS_MAX`], unpadded).
    pub fn tokens(&self, texts: &[&str]) -> Result<Vec<Tokens>, EmbedError> {
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|error| EmbedError::Tokenize(error.to_string()))?;
        Ok(encodings
            .iter()
            .map(|encoding| Tokens {
                ids: encoding.get_ids().to_vec(),
                type_ids: encoding.get_type_ids().to_vec(),
            })
            .collect())
    }

    /// Unit-length embeddings, one per text, in the order given; at most `batch_size` texts
    /// per forward pass.
    ///
    /// As sentence-transformers does, the texts go through longest first, so each pass pads
    /// its texts to lengths close to their own. A pass also stops at about
    /// [`TOKENS_PER_PASS`] padded tokens, which keeps its activations in cache. On the CPU
    /// backend none of this shows in the result: a text's embedding does not depend on the
    /// other texts, their order or the batch size, nor on the thread count.
    pub fn embed(&self, texts: &[&str], batch_size: usize) -> Result<Vec<Vec<f32>>, EmbedError> {
        if !(1..=BATCH_SIZE_MAX).contains(&batch_size) {
            return Err(EmbedError::BatchSize(batch_size));
        }
        let tokens = self.tokens(texts)?;
        let mut order: Vec<usize> = (0..tokens.len()).collect();
        order.sort_by_key(|index| std::cmp::Reverse(tokens[*index].ids.len()));
        let mut embeddings = vec![Vec::new(); tokens.len()];
        let mut rest = &order[..];
        while let Some(first) = rest.first() {
            let longest = tokens[*first].ids.len().max(1);
            let take = batch_size
                .min(TOKENS_PER_PASS / longest)
                .clamp(1, rest.len());
            let (pass, after) = rest.split_at(take);
            let pass_tokens: Vec<&Tokens> = pass.iter().map(|index| &tokens[*index]).collect();
            for (index, embedding) in pass.iter().zip(self.embed_pass(&pass_tokens)?) {
                embeddings[*index] = embedding;
            }
            rest = after;
        }
        Ok(embeddings)
    }

    /// One forward pass over texts already tokenized, padded on the right to the longest.
    fn embed_pass(&self, texts: &[&Tokens]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let batch = texts.len();
        let sequence = texts.iter().map(|text| text.ids.len()).max().unwrap_or(0);
        let mut ids = vec![PAD_ID; batch * sequence];
        let mut type_ids = vec![PAD_ID; batch * sequence];
        let mut lengths = Vec::with_capacity(batch);
        for (row, text) in texts.iter().enumerate() {
            let length = text.ids.len();
            let at = row * sequence;
            for (slot, id) in ids[at..at + length].iter_mut().zip(&text.ids) {
                *slot = i64::from(*id);
            }
            for (slot, id) in type_ids[at..at + length].iter_mut().zip(&text.type_ids) {
                *slot = i64::from(*id);
            }
            lengths.push(length);
        }
        let shape = [batch, sequence];
        let ids = Tensor::<2, Int>::from_data(TensorData::new(ids, shape), &self.device);
        let type_ids = Tensor::<2, Int>::from_data(TensorData::new(type_ids, shape), &self.device);
        let output = self.model.forward(ids, type_ids, &lengths, self.backend);
        let values: Vec<f32> =
            output
                .into_data()
                .try_into_vec::<f32>()
                .map_err(|error| EmbedError::Load {
                    path: PathBuf::from("<model output>"),
                    message: format!("{error:?}"),
                })?;
        if values.len() != batch * HIDDEN_SIZE {
            return Err(EmbedError::Shape {
                backend: self.backend,
                got: values.len(),
                texts: batch,
            });
        }
        Ok(values
            .chunks_exact(HIDDEN_SIZE)
            .map(<[f32]>::to_vec)
            .collect())
    }
}

fn load_tokenizer(path: &std::path::Path) -> Result<Tokenizer, EmbedError> {
    let tokenizer_error = |message: String| EmbedError::Tokenizer {
        path: path.to_path_buf(),
        message,
    };
    let mut tokenizer =
        Tokenizer::from_file(path).map_err(|error| tokenizer_error(error.to_string()))?;
    tokenizer
        .with_truncation(Some(TruncationParams {
            max_length: TOKENS_MAX,
            ..Default::default()
        }))
        .map_err(|error| tokenizer_error(error.to_string()))?;
    // Passes are padded by [`Embedder::embed_pass`], after sorting by length.
    tokenizer.with_padding(None);
    Ok(tokenizer)
}

impl crate::audit::Reembedder for Embedder {
    fn model_hash(&self) -> weightlog_schema::Hash {
        self.model_hash
    }

    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, String> {
        Embedder::embed(self, texts, BATCH_SIZE_DEFAULT).map_err(|error| error.to_string())
    }
}
