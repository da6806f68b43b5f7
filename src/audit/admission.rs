//! Whether a batch may be appended: the audit of the log with the batch after it, so that
//! `append` refuses exactly the events `replay verify` would call invalid for the log's
//! profile (an evaluation of a uid the metagraph does not hold, of a challenge never issued,
//! parameters the profile cannot use) before they are signed into the log for good.
//!
//! It folds the whole log (an audit of it, decisions recomputed too), so its cost grows
//! with the log; the live node does not use it, its own projection refuses such events.

use weightlog_schema::Hash;
use weightlog_schema::signature::PublicKey;

use super::{AuditError, AuditOptions, LogSource, Source, Verdict, audit};
use crate::log::{EncodedEvent, LogReader, Planned};

/// What the audit of the log with a batch after it says about the batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// The log's profile folds every new event.
    Admitted,
    /// The profile refuses `events[index]` (an index into the events passed in).
    Refused { index: usize, reason: String },
    /// The new events could not be checked, and why: the log's profile has no projection,
    /// or the log itself is already invalid or does not verify.
    Unchecked(String),
}

/// The audit of the log `reader` reads with `events` appended after it. Events the log
/// already holds (by timestamp and id) and repeats within `events` are left out, as an
/// append leaves them out; `LogOpened` is left to the log, which refuses it anyway.
pub fn admission(reader: &LogReader, events: &[EncodedEvent]) -> Result<Admission, AuditError> {
    let source = LogSource::new(reader.clone());
    let snapshot = reader.snapshot()?;
    let size = snapshot.size()?;
    let pending: Vec<(usize, &[u8])> = snapshot
        .planned_seqs(events)?
        .into_iter()
        .zip(events)
        .enumerate()
        .filter(|(_, (planned, event))| {
            matches!(planned, Planned::New(_))
                && event.kind != weightlog_schema::EventKind::LogOpened
        })
        .map(|(index, (_, event))| (index, event.bytes.as_slice()))
        .collect();
    if pending.is_empty() {
        return Ok(Admission::Admitted);
    }
    let with_batch = WithBatch {
        log: &source,
        size,
        batch: pending.iter().map(|(_, bytes)| *bytes).collect(),
    };
    let options = AuditOptions {
        threads: std::thread::available_parallelism().map_or(1, usize::from),
        ..AuditOptions::default()
    };
    let (report, _) = audit(&with_batch, &options, &|_| {})?;
    let batch_index = |seq: u64| {
        seq.checked_sub(size)
            .and_then(|offset| pending.get(offset as usize))
            .map(|(index, _)| *index)
    };
    Ok(match report.verdict {
        Verdict::Invalid(finding) | Verdict::Tampered(finding) => match batch_index(finding.seq) {
            Some(index) => Admission::Refused {
                index,
                reason: finding.reason,
            },
            None => Admission::Unchecked(format!(
                "the log itself does not pass `replay verify`: {finding}"
            )),
        },
        // A recorded decision that does not recompute is the audit's to report, not a
        // reason to refuse evidence; but with no projection nothing was checked.
        Verdict::Match | Verdict::Diverged(_) if report.state_hash.is_none() => {
            Admission::Unchecked("the log's profile has no projection to check them against".into())
        }
        Verdict::Match | Verdict::Diverged(_) => Admission::Admitted,
    })
}

/// The log on disk, then the batch as if appended (not covered by a signature yet, so the
/// audit does not ask for one).
struct WithBatch<'a> {
    log: &'a LogSource,
    size: u64,
    batch: Vec<&'a [u8]>,
}

impl Source for WithBatch<'_> {
    fn origin(&self) -> &str {
        self.log.origin()
    }

    fn signer(&self) -> &PublicKey {
        self.log.signer()
    }

    fn size(&self) -> Result<u64, AuditError> {
        Ok(self.size + self.batch.len() as u64)
    }

    fn checkpoints(&self) -> Result<Vec<(u64, String)>, AuditError> {
        self.log.checkpoints()
    }

    fn signed(&self) -> bool {
        false
    }

    fn read(
        &self,
        from: u64,
        to: u64,
        visit: &mut dyn FnMut(u64, &[u8]) -> bool,
    ) -> Result<(), AuditError> {
        let mut listening = true;
        if from < self.size {
            self.log.read(from, to.min(self.size), &mut |seq, bytes| {
                listening = visit(seq, bytes);
                listening
            })?;
        }
        let mut seq = from.max(self.size);
        while listening && seq < to {
            let Some(bytes) = self.batch.get((seq - self.size) as usize) else {
                break;
            };
            listening = visit(seq, bytes);
            seq += 1;
        }
        Ok(())
    }

    fn stored_leaves(&self, from: u64, to: u64) -> Result<Vec<(u64, Hash)>, AuditError> {
        self.log.stored_leaves(from, to.min(self.size))
    }
}
