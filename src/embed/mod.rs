//! Sentence embeddings with all-MiniLM-L6-v2 on burn: the pure-Rust CPU backend (flex) by
//! default, wgpu behind the `wgpu` feature. Weights and tokenizer are the pinned asset
//! [`crate::assets::MINILM`].
//!
//! Embeddings are not bit-identical across backends or CPUs (see
//! ../shared/specs/embeddings.md §7; on one CPU backend they do not depend on batch make-up or
//! thread count), so the log records each one quantised
//! ([`quantize::Quantized`], `EmbeddingComputed`) and projections work from the record. An
//! auditor re-embeds with any backend and checks each record within
//! [`quantize::RE_EMBED_COSINE_MIN`].
//!
//! The embedder needs the `embed` feature; [`quantize`] (what the log records, and how an
//! auditor compares) is always there.

#[cfg(feature = "embed")]
mod attention;
#[cfg(feature = "embed")]
mod embedder;
#[cfg(feature = "embed")]
mod model;
pub mod quantize;
#[cfg(feature = "embed")]
mod simd;

#[cfg(feature = "embed")]
pub use embedder::*;
