//! weightlog-schema: the event types of a weightlog log, their canonical bytes, hashes,
//! the Merkle tree with its proofs, and signed checkpoints.
//!
//! This crate is pure: no I/O, no clock, no async. Everything an auditor needs to check a
//! log it was handed lives here, so an auditor's code path pulls in nothing else.

pub mod bundle;
pub mod checkpoint;
pub mod codec;
pub mod event;
pub mod hash;
pub mod json_schema;
pub mod merkle;
pub mod proof;
pub mod properties;
pub mod samples;
pub mod signature;
pub mod ss58;

// Linked only for its "std" feature: rkyv validates archived strings with simdutf8, which
// then picks its AVX2 or SSE4.2 check at run time (see the workspace Cargo.toml).
use simdutf8 as _;

pub use checkpoint::{Checkpoint, CheckpointError, SignedCheckpoint};
pub use codec::{CodecError, EVENT_BYTES_MAX, decode, encode};
pub use event::{Event, EventKind, Payload, SCHEMA_VERSION, SequencedEvent};
pub use hash::{Hash, event_id, leaf_hash, node_hash};
