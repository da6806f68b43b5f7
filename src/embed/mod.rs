//! Sentence embeddings with all-MiniLM-L6-v2 on burn: the pure-Rust CPU backend (flex) by
//! default, wgpu behind the `wgpu` feature. Weights and tokenizer are the pinned asset
//! [`crate::assets::MINILM`].
//!
//! Embeddings are not bit-identical across backends, batch make-ups or CPUs (see
//! ../shared/specs/embeddings.md §7), so the log records each one quantised
//! ([`quantize::Quantized`], `EmbeddingComputed`) and projections work from the record. An
//! auditor re-embeds with any backend and checks each record within
//! [`quantize::RE_EMBED_COSINE_MIN`].

mod attention;
mod model;
pub mod quantize;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use burn::tensor::{Device, Int, Tensor, TensorData};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

use crate::assets::{self, AssetDir, Cache};
pub use model::HIDDEN_SIZE;
use model::MiniLm;

/// sentence-transformers' `max_seq_length` for this model. tokenizer.json says 128;
/// keeping that would change every text of 129 to 256 tokens.
pub const TOKENS_MAX: usize = 256;
/// Texts per forward pass unless the caller says otherwise.
pub const BATCH_SIZE_DEFAULT: usize = 32;
/// The most texts one forward pass takes.
pub const BATCH_SIZE_MAX: usize = 1024;

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

/// Token ids of one text, as the model sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tokens {
    pub ids: Vec<u32>,
    pub type_ids: Vec<u32>,
    pub mask: Vec<u32>,
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
        let mut tokenizer = self.tokenizer.clone();
        tokenizer.with_padding(None);
        texts
            .iter()
            .map(|text| {
                let encoding = tokenizer
                    .encode(*text, true)
                    .map_err(|error| EmbedError::Tokenize(error.to_string()))?;
                Ok(Tokens {
                    ids: encoding.get_ids().to_vec(),
                    type_ids: encoding.get_type_ids().to_vec(),
                    mask: encoding.get_attention_mask().to_vec(),
                })
            })
            .collect()
    }

    /// Unit-length embeddings, `batch_size` texts per forward pass (padded to the longest
    /// in each batch). The same texts in the same batches give the same bits on the CPU
    /// backend; another batch make-up may move the last bits.
    pub fn embed(&self, texts: &[&str], batch_size: usize) -> Result<Vec<Vec<f32>>, EmbedError> {
        if !(1..=BATCH_SIZE_MAX).contains(&batch_size) {
            return Err(EmbedError::BatchSize(batch_size));
        }
        let mut embeddings = Vec::with_capacity(texts.len());
        for batch in texts.chunks(batch_size) {
            embeddings.extend(self.embed_batch(batch)?);
        }
        Ok(embeddings)
    }

    fn embed_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|error| EmbedError::Tokenize(error.to_string()))?;
        let batch = encodings.len();
        let sequence = encodings.first().map_or(0, |encoding| encoding.len());
        let mut ids = Vec::with_capacity(batch * sequence);
        let mut type_ids = Vec::with_capacity(batch * sequence);
        let mut mask = Vec::with_capacity(batch * sequence);
        let mut lengths = Vec::with_capacity(batch);
        for encoding in &encodings {
            assert_eq!(encoding.len(), sequence, "batch padding gives one length");
            ids.extend(encoding.get_ids().iter().map(|id| i64::from(*id)));
            type_ids.extend(encoding.get_type_ids().iter().map(|id| i64::from(*id)));
            mask.extend(encoding.get_attention_mask().iter().map(|m| *m as f32));
            let length = encoding
                .get_attention_mask()
                .iter()
                .filter(|m| **m == 1)
                .count();
            // The model skips padding by length, so it must all come after the tokens.
            assert!(
                encoding.get_attention_mask()[length..]
                    .iter()
                    .all(|m| *m == 0),
                "the tokenizer pads on the right"
            );
            lengths.push(length);
        }
        let shape = [batch, sequence];
        let ids = Tensor::<2, Int>::from_data(TensorData::new(ids, shape), &self.device);
        let type_ids = Tensor::<2, Int>::from_data(TensorData::new(type_ids, shape), &self.device);
        let mask = Tensor::<2>::from_data(TensorData::new(mask, shape), &self.device);
        let output = self
            .model
            .forward(ids, type_ids, mask, &lengths, self.backend);
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
    tokenizer.with_padding(Some(PaddingParams {
        strategy: PaddingStrategy::BatchLongest,
        ..Default::default()
    }));
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
