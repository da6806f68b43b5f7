//! The parallel stages: decoding and hashing chunks of events, and checking checkpoint
//! signatures. Pure functions of their input, run on the audit's rayon pool.

use rayon::prelude::*;
use weightlog_schema::signature::PublicKey;
use weightlog_schema::{Event, Hash, SignedCheckpoint, codec, leaf_hash};

use super::RawEvent;

/// One event after the parallel stage.
#[derive(Debug)]
pub(super) struct Decoded {
    pub seq: u64,
    pub leaf: Hash,
    /// `false` when the log stored a different leaf hash for this seq.
    pub stored_leaf_matches: bool,
    pub event: Result<Event, String>,
}

fn decode_one(raw: RawEvent) -> Decoded {
    let leaf = leaf_hash(&raw.bytes);
    Decoded {
        seq: raw.seq,
        leaf,
        stored_leaf_matches: raw.stored_leaf.is_none_or(|stored| stored == leaf),
        event: codec::decode(&raw.bytes).map_err(|error| error.to_string()),
    }
}

/// Validates, decodes and hashes a chunk on the current pool, keeping seq order.
pub(super) fn decode_chunk(chunk: Vec<RawEvent>) -> Vec<Decoded> {
    chunk.into_par_iter().map(decode_one).collect()
}

/// A stored checkpoint after its signature and origin were checked.
#[derive(Debug)]
pub(super) struct CheckedCheckpoint {
    /// The size it is stored under.
    pub stored_size: u64,
    /// Its signed root, or why it is not a valid checkpoint of this log.
    pub root: Result<Hash, String>,
}

/// Parses every checkpoint and checks its signature, size and origin, in parallel.
pub(super) fn check_checkpoints(
    texts: Vec<(u64, String)>,
    signer: &PublicKey,
    origin: &str,
) -> Vec<CheckedCheckpoint> {
    texts
        .into_par_iter()
        .map(|(stored_size, text)| CheckedCheckpoint {
            stored_size,
            root: check_checkpoint(stored_size, &text, signer, origin),
        })
        .collect()
}

fn check_checkpoint(
    stored_size: u64,
    text: &str,
    signer: &PublicKey,
    origin: &str,
) -> Result<Hash, String> {
    let checkpoint = SignedCheckpoint::parse(text).map_err(|error| error.to_string())?;
    checkpoint
        .verify(signer)
        .map_err(|error| error.to_string())?;
    let body = &checkpoint.checkpoint;
    if body.size != stored_size {
        return Err(format!(
            "it is stored under size {stored_size} but says size {}",
            body.size
        ));
    }
    if body.origin != origin {
        return Err(format!("its origin is {}, not {origin}", body.origin));
    }
    Ok(body.root)
}
