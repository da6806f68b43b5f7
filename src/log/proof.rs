//! Proofs cut from the stored tree, packaged with the signed checkpoints they refer to.

use weightlog_schema::bundle::ProofBundle;
use weightlog_schema::proof::{self, ProofGenError};

use super::LogError;
use super::reader::Snapshot;

impl From<ProofGenError<LogError>> for LogError {
    fn from(error: ProofGenError<LogError>) -> Self {
        match error {
            ProofGenError::Proof(error) => LogError::Proof(error),
            ProofGenError::Source(error) => error,
        }
    }
}

impl Snapshot {
    /// The signed checkpoint text for exactly `size` events; an error names the checkpointed
    /// sizes around it when there is none.
    pub fn checkpoint_text(&self, size: u64) -> Result<String, LogError> {
        match self.checkpoint_at(size)? {
            Some(checkpoint) => Ok(checkpoint.to_text()),
            None => {
                let sizes: Vec<u64> = self
                    .checkpoint_texts()?
                    .into_iter()
                    .map(|(size, _)| size)
                    .collect();
                let below = sizes.iter().rev().find(|&&s| s < size);
                let above = sizes.iter().find(|&&s| s > size);
                Err(LogError::NoCheckpoint {
                    size,
                    below: below.map_or("none".into(), u64::to_string),
                    above: above.map_or("none".into(), u64::to_string),
                })
            }
        }
    }

    /// Proves that event `seq` is in the log of the signed checkpoint for `size` events
    /// (default: the newest checkpoint).
    pub fn inclusion_bundle(&self, seq: u64, size: Option<u64>) -> Result<ProofBundle, LogError> {
        let size = match size {
            Some(size) => size,
            None => self.last_checkpoint()?.map_or(0, |c| c.checkpoint.size),
        };
        let checkpoint = self.checkpoint_text(size)?;
        let tree = self.stored_tree()?;
        let proof = proof::inclusion_proof(&tree, seq, size)?;
        let bytes = self.event_bytes(seq)?;
        Ok(ProofBundle::Inclusion {
            event: self.event(seq)?,
            event_hex: hex::encode(&bytes),
            proof,
            checkpoint,
        })
    }

    /// Proves that the log of the checkpoint for `old_size` events is a prefix of the log of
    /// the checkpoint for `new_size` events.
    pub fn consistency_bundle(
        &self,
        old_size: u64,
        new_size: u64,
    ) -> Result<ProofBundle, LogError> {
        let old_checkpoint = self.checkpoint_text(old_size)?;
        let new_checkpoint = self.checkpoint_text(new_size)?;
        let tree = self.stored_tree()?;
        let proof = proof::consistency_proof(&tree, old_size, new_size)?;
        Ok(ProofBundle::Consistency {
            proof,
            old_checkpoint,
            new_checkpoint,
        })
    }
}
