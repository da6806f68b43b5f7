//! The parallel stages: reading, decoding and hashing ranges of events, and checking
//! checkpoint signatures. Pure functions of their input, run on the audit's rayon pool.

use rayon::prelude::*;
use weightlog_schema::signature::PublicKey;
use weightlog_schema::{Event, Hash, SignedCheckpoint, codec, leaf_hash};

use super::{AuditError, Source};

/// One event after the parallel stage.
#[derive(Debug)]
pub(super) struct Decoded {
    pub seq: u64,
    pub leaf: Hash,
    pub event: Result<Event, String>,
}

/// Validates, decodes and hashes one event.
pub(super) fn decode_one(seq: u64, bytes: &[u8]) -> Decoded {
    Decoded {
        seq,
        leaf: leaf_hash(bytes),
        event: codec::decode(bytes).map_err(|error| error.to_string()),
    }
}

/// Reads, validates, decodes and hashes the events `from..to`: one task of the pool, so
/// reading is parallel too (each task reads its own range, straight from storage, with
/// no copy of the bytes).
pub(super) fn decode_range(
    source: &dyn Source,
    from: u64,
    to: u64,
) -> Result<Vec<Decoded>, AuditError> {
    let mut decoded = Vec::with_capacity(to.saturating_sub(from) as usize);
    source.read(from, to, &mut |seq, bytes| {
        decoded.push(decode_one(seq, bytes));
        true
    })?;
    Ok(decoded)
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
