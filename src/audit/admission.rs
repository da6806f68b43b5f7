//! Whether a batch may be appended: the audit of the log with the batch after it, so that
//! `append` refuses exactly the events `replay verify` would call invalid for the log's
//! profile (an evaluation of a uid the metagraph does not hold, of a challenge never issued,
//! parameters the profile cannot use) before they are signed into the log for good.
//!
//! The audit saves a checkpoint near its end, which `append` keeps in the log's
//! `projections` table ([`ADMISSION_CHECKPOINT`]); the next admission resumes there and
//! folds only the events after it, so its cost follows the batch, not the log. The
//! checkpoint is derived data the log's own signed roots check on resume: one that does not
//! fit the log (damaged, or of another history) is ignored and the whole log is folded. The
//! live node does not use this module; its own projection refuses such events.

use weightlog_schema::Hash;
use weightlog_schema::signature::PublicKey;

use super::{AuditCheckpoint, AuditError, AuditOptions, LogSource, Source, Verdict, audit};
use crate::log::{EncodedEvent, LogReader, Planned};

/// The name `append` keeps its admission checkpoint under, in the log's `projections` table.
pub const ADMISSION_CHECKPOINT: &str = "audit/admission";

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

/// An admission, and what it cost.
#[derive(Debug)]
pub struct AdmissionReport {
    pub admission: Admission,
    /// The first seq the audit read: 0, or where the stored checkpoint let it resume.
    pub resumed_from: u64,
    /// Where the next admission may resume once the batch is appended (store it under
    /// [`ADMISSION_CHECKPOINT`]); `None` when the batch was not admitted, or the log is too
    /// short for one.
    pub checkpoint: Option<AuditCheckpoint>,
}

/// The audit of the log `reader` reads with `events` appended after it. Events the log
/// already holds (by timestamp and id) and repeats within `events` are left out, as an
/// append leaves them out; `LogOpened` is left to the log, which refuses it anyway.
pub fn admission(
    reader: &LogReader,
    events: &[EncodedEvent],
) -> Result<AdmissionReport, AuditError> {
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
        return Ok(AdmissionReport {
            admission: Admission::Admitted,
            resumed_from: size,
            checkpoint: None,
        });
    }
    let with_batch = WithBatch {
        log: &source,
        size,
        batch: pending.iter().map(|(_, bytes)| *bytes).collect(),
    };
    let stored = snapshot
        .projection_bytes(ADMISSION_CHECKPOINT)?
        .and_then(|bytes| AuditCheckpoint::from_bytes(&bytes).ok())
        // Past the log's end it would skip batch events. (One of another log the audit
        // refuses itself, and the whole log decides below.)
        .filter(|checkpoint| checkpoint.next_seq() <= size);
    let mut options = AuditOptions {
        threads: std::thread::available_parallelism().map_or(1, usize::from),
        save_checkpoint: true,
        from_checkpoint: stored,
        ..AuditOptions::default()
    };
    let mut outcome = audit(&with_batch, &options, &|_| {});
    // A resume that fails, or finds fault with the log itself, may be the checkpoint's
    // doing: the whole log decides.
    let log_at_fault = match &outcome {
        Ok((report, _)) => match &report.verdict {
            Verdict::Invalid(finding) | Verdict::Tampered(finding) => finding.seq < size,
            Verdict::Match | Verdict::Diverged(_) => false,
        },
        Err(_) => true,
    };
    if options.from_checkpoint.is_some() && log_at_fault {
        options.from_checkpoint = None;
        outcome = audit(&with_batch, &options, &|_| {});
    }
    let (report, checkpoint) = outcome?;
    let batch_index = |seq: u64| {
        seq.checked_sub(size)
            .and_then(|offset| pending.get(offset as usize))
            .map(|(index, _)| *index)
    };
    let admission = match report.verdict {
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
    };
    Ok(AdmissionReport {
        checkpoint: checkpoint.filter(|_| admission == Admission::Admitted),
        admission,
        resumed_from: report.resumed_from,
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
