//! Proof files: everything an auditor needs to check one proof offline — the proof, the
//! signed checkpoint(s) it refers to and, for inclusion, the event's canonical bytes.
//!
//! Verification trusts only the SS58 address the auditor supplies (and, optionally, a
//! checkpoint the auditor obtained elsewhere); everything inside the file is checked.

use serde::{Deserialize, Serialize};

use crate::checkpoint::{CheckpointError, SignedCheckpoint};
use crate::codec::{self, CodecError};
use crate::event::Event;
use crate::hash::{Hash, leaf_hash};
use crate::proof::{
    ConsistencyProof, InclusionProof, ProofError, verify_consistency, verify_inclusion,
};
use crate::signature::PublicKey;

/// A proof as `weightlog prove` writes it (JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ProofBundle {
    /// Event `proof.leaf_index` is in the log of `checkpoint`.
    Inclusion {
        /// Canonical event bytes, hex.
        event_hex: String,
        /// The same event in JSON, for people; verification uses `event_hex`.
        event: Event,
        proof: InclusionProof,
        /// Signed checkpoint text for `proof.tree_size` events.
        checkpoint: String,
    },
    /// The log of `old_checkpoint` is a prefix of the log of `new_checkpoint`.
    Consistency {
        proof: ConsistencyProof,
        old_checkpoint: String,
        new_checkpoint: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    #[error("checkpoint: {0}")]
    Checkpoint(#[from] CheckpointError),
    #[error("event bytes: {0}")]
    Event(#[from] CodecError),
    #[error("event_hex is not hex")]
    EventHex,
    #[error("the event JSON does not match event_hex")]
    EventMismatch,
    #[error("the proof is for {proof_size} events but the checkpoint is for {checkpoint_size}")]
    SizeMismatch {
        proof_size: u64,
        checkpoint_size: u64,
    },
    #[error("the checkpoints are for different logs: {first} and {second}")]
    OriginMismatch { first: String, second: String },
    #[error("the trusted checkpoint does not match the one in the proof file: {reason}")]
    TrustedMismatch { reason: String },
    #[error("proof: {0}")]
    Proof(#[from] ProofError),
}

/// What a verified bundle established.
#[derive(Debug, Clone, PartialEq)]
pub enum Verified {
    Inclusion {
        seq: u64,
        size: u64,
        root: Hash,
        event: Event,
    },
    Consistency {
        old_size: u64,
        new_size: u64,
        old_root: Hash,
        new_root: Hash,
    },
}

impl ProofBundle {
    /// Verifies the bundle against the validator's public key. When `trusted` is given (a
    /// checkpoint the auditor got elsewhere), it must be signed by the same key and equal the
    /// bundle's checkpoint of the same role: the only one for inclusion; for consistency the
    /// old one when the sizes match, else the new one.
    pub fn verify(
        &self,
        signer: &PublicKey,
        trusted: Option<&SignedCheckpoint>,
    ) -> Result<Verified, BundleError> {
        match self {
            ProofBundle::Inclusion {
                event_hex,
                event,
                proof,
                checkpoint,
            } => {
                let checkpoint = SignedCheckpoint::parse(checkpoint)?;
                checkpoint.verify(signer)?;
                check_trusted(signer, trusted, &checkpoint)?;
                let body = &checkpoint.checkpoint;
                if proof.tree_size != body.size {
                    return Err(BundleError::SizeMismatch {
                        proof_size: proof.tree_size,
                        checkpoint_size: body.size,
                    });
                }
                let bytes = hex::decode(event_hex).map_err(|_| BundleError::EventHex)?;
                let decoded = codec::decode(&bytes)?;
                if &decoded != event {
                    return Err(BundleError::EventMismatch);
                }
                verify_inclusion(&leaf_hash(&bytes), proof, &body.root)?;
                Ok(Verified::Inclusion {
                    seq: proof.leaf_index,
                    size: body.size,
                    root: body.root,
                    event: decoded,
                })
            }
            ProofBundle::Consistency {
                proof,
                old_checkpoint,
                new_checkpoint,
            } => {
                let old = SignedCheckpoint::parse(old_checkpoint)?;
                let new = SignedCheckpoint::parse(new_checkpoint)?;
                old.verify(signer)?;
                new.verify(signer)?;
                // An auditor usually holds the older checkpoint and asks whether the log
                // still extends it; one holding the newer one may check that instead.
                let held = match trusted {
                    Some(trusted) if trusted.checkpoint.size == old.checkpoint.size => &old,
                    _ => &new,
                };
                check_trusted(signer, trusted, held)?;
                if old.checkpoint.origin != new.checkpoint.origin {
                    return Err(BundleError::OriginMismatch {
                        first: old.checkpoint.origin,
                        second: new.checkpoint.origin,
                    });
                }
                for (proof_size, checkpoint_size) in [
                    (proof.old_size, old.checkpoint.size),
                    (proof.new_size, new.checkpoint.size),
                ] {
                    if proof_size != checkpoint_size {
                        return Err(BundleError::SizeMismatch {
                            proof_size,
                            checkpoint_size,
                        });
                    }
                }
                verify_consistency(&old.checkpoint.root, &new.checkpoint.root, proof)?;
                Ok(Verified::Consistency {
                    old_size: old.checkpoint.size,
                    new_size: new.checkpoint.size,
                    old_root: old.checkpoint.root,
                    new_root: new.checkpoint.root,
                })
            }
        }
    }
}

fn check_trusted(
    signer: &PublicKey,
    trusted: Option<&SignedCheckpoint>,
    checkpoint: &SignedCheckpoint,
) -> Result<(), BundleError> {
    let Some(trusted) = trusted else {
        return Ok(());
    };
    trusted.verify(signer)?;
    let reason = if trusted.checkpoint.origin != checkpoint.checkpoint.origin {
        format!(
            "origin {} vs {}",
            trusted.checkpoint.origin, checkpoint.checkpoint.origin
        )
    } else if trusted.checkpoint.size != checkpoint.checkpoint.size {
        format!(
            "size {} vs {}",
            trusted.checkpoint.size, checkpoint.checkpoint.size
        )
    } else if trusted.checkpoint.root != checkpoint.checkpoint.root {
        format!(
            "root {} vs {}: the log was rewritten",
            trusted.checkpoint.root, checkpoint.checkpoint.root
        )
    } else {
        return Ok(());
    };
    Err(BundleError::TrustedMismatch { reason })
}
