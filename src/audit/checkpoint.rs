//! Audit checkpoints: what an audit saves so the next audit of the same (grown) log reads
//! only the new events. It holds the Merkle frontier the auditor computed itself, the
//! projection's state with its hash, and the parameters in force.
//!
//! **API Boundary:** the file is the auditor's own, but it is read back from disk: its
//! digest and the projection state's hash are checked before anything in it is used, and
//! it must name the log being audited.

use serde::{Deserialize, Serialize};
use weightlog_replay::projection::{ProjectionCheckpoint, decode_reason, encode_reason};
use weightlog_schema::Hash;
use weightlog_schema::merkle::Frontier;

use super::AuditError;

/// The file format version.
pub const AUDIT_CHECKPOINT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Body {
    version: u32,
    origin: String,
    signer: String,
    /// The first seq not covered: events below were verified and folded.
    next_seq: u64,
    /// Decisions and evaluations below this seq were already compared (the audit folded
    /// past `next_seq` to here); a resumed audit folds them again without re-counting.
    checked_to: u64,
    frontier_roots: Vec<Hash>,
    profile: String,
    parameters_json: String,
    parameters_hash: Hash,
    projection: ProjectionCheckpoint,
}

/// A saved audit position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditCheckpoint {
    body: Body,
}

#[derive(Serialize, Deserialize)]
struct Stored {
    body: Body,
    /// blake3 of the body's bincode bytes: a damaged or edited file is refused.
    digest: Hash,
}

fn cannot_encode(error: bincode::error::EncodeError) -> AuditError {
    AuditError::Checkpoint(format!("cannot encode: {}", encode_reason(error)))
}

fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

impl AuditCheckpoint {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        origin: &str,
        signer: &str,
        frontier: &Frontier,
        profile: &str,
        parameters_json: &str,
        parameters_hash: Hash,
        projection: ProjectionCheckpoint,
        checked_to: u64,
    ) -> Self {
        Self {
            body: Body {
                version: AUDIT_CHECKPOINT_VERSION,
                origin: origin.into(),
                signer: signer.into(),
                next_seq: frontier.size(),
                checked_to: checked_to.max(frontier.size()),
                frontier_roots: frontier.roots().to_vec(),
                profile: profile.into(),
                parameters_json: parameters_json.into(),
                parameters_hash,
                projection,
            },
        }
    }

    /// The first seq a resumed audit reads.
    pub fn next_seq(&self) -> u64 {
        self.body.next_seq
    }

    /// Decisions and evaluations below this seq were compared by the audit that saved it.
    pub fn checked_to(&self) -> u64 {
        self.body.checked_to
    }

    pub fn origin(&self) -> &str {
        &self.body.origin
    }

    /// The SS58 address of the key the audited log was signed by.
    pub fn signer(&self) -> &str {
        &self.body.signer
    }

    pub fn state_hash(&self) -> Hash {
        self.body.projection.state_hash
    }

    pub(super) fn frontier(&self) -> Result<Frontier, AuditError> {
        Frontier::from_parts(self.body.next_seq, self.body.frontier_roots.clone()).ok_or_else(
            || AuditError::Checkpoint("its Merkle frontier does not fit its size".into()),
        )
    }

    pub(super) fn profile(&self) -> (&str, &str, Hash) {
        (
            &self.body.profile,
            &self.body.parameters_json,
            self.body.parameters_hash,
        )
    }

    pub(super) fn projection(&self) -> &ProjectionCheckpoint {
        &self.body.projection
    }

    /// The bytes of a [`Stored`] checkpoint. bincode writes a struct as its fields one after
    /// another, so those are the body's bytes followed by the digest's: the body (and the
    /// projection state in it) is encoded once.
    pub fn to_bytes(&self) -> Result<Vec<u8>, AuditError> {
        let mut bytes =
            bincode::serde::encode_to_vec(&self.body, config()).map_err(cannot_encode)?;
        let digest = Hash(*blake3::hash(&bytes).as_bytes());
        bincode::serde::encode_into_std_write(digest, &mut bytes, config())
            .map_err(cannot_encode)?;
        Ok(bytes)
    }

    /// Reads a saved checkpoint, checking its digest and its projection state's hash.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, AuditError> {
        let refused = |reason: String| AuditError::Checkpoint(reason);
        let (stored, read): (Stored, usize) = bincode::serde::decode_from_slice(bytes, config())
            .map_err(|error| {
                refused(format!("not an audit checkpoint: {}", decode_reason(error)))
            })?;
        if read != bytes.len() {
            return Err(refused("trailing bytes after the checkpoint".into()));
        }
        if stored.body.version != AUDIT_CHECKPOINT_VERSION {
            return Err(refused(format!(
                "format version {} is not {AUDIT_CHECKPOINT_VERSION}",
                stored.body.version
            )));
        }
        let body = bincode::serde::encode_to_vec(&stored.body, config()).map_err(cannot_encode)?;
        if Hash(*blake3::hash(&body).as_bytes()) != stored.digest {
            return Err(refused(
                "its digest does not match its content; the file was changed or damaged".into(),
            ));
        }
        let state = &stored.body.projection;
        if Hash(*blake3::hash(&state.state).as_bytes()) != state.state_hash {
            return Err(refused(format!(
                "the projection state does not hash to its recorded state hash {}",
                state.state_hash
            )));
        }
        if state.next_seq != stored.body.next_seq {
            return Err(refused(format!(
                "the projection covers seqs below {} but the frontier below {}",
                state.next_seq, stored.body.next_seq
            )));
        }
        Ok(Self { body: stored.body })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn saved() -> AuditCheckpoint {
        let mut frontier = Frontier::new();
        for seq in 0..5u8 {
            frontier.push(Hash([seq; 32]));
        }
        let state = vec![7; 300];
        let projection = ProjectionCheckpoint {
            name: "affine/stages_v2".into(),
            next_seq: frontier.size(),
            state_hash: Hash(*blake3::hash(&state).as_bytes()),
            state,
        };
        AuditCheckpoint::new(
            "log.redb",
            "5Gsju",
            &frontier,
            "affine",
            "{}",
            Hash([9; 32]),
            projection,
            3,
        )
    }

    #[test]
    fn the_bytes_are_the_stored_body_and_digest_and_read_back() {
        let checkpoint = saved();
        let bytes = checkpoint.to_bytes().unwrap();
        let body = bincode::serde::encode_to_vec(&checkpoint.body, config()).unwrap();
        let stored = Stored {
            body: checkpoint.body.clone(),
            digest: Hash(*blake3::hash(&body).as_bytes()),
        };
        assert_eq!(
            bytes,
            bincode::serde::encode_to_vec(&stored, config()).unwrap()
        );
        assert_eq!(AuditCheckpoint::from_bytes(&bytes).unwrap(), checkpoint);

        let mut damaged = bytes.clone();
        damaged[10] ^= 1;
        assert!(AuditCheckpoint::from_bytes(&damaged).is_err());
    }
}
