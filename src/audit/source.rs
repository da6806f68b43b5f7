//! Where an audit reads events from: a log on disk ([`LogSource`]) or events in memory
//! ([`MemorySource`], for the fuzzer and tests that need no signatures).
//!
//! **API Boundary:** everything a source returns is untrusted; the audit checks it.

use weightlog_schema::signature::PublicKey;
use weightlog_schema::{Event, Hash, codec};

use super::AuditError;
use crate::log::LogError;
use crate::log::reader::LogReader;
use crate::log::tables::LEAVES;

/// A log to audit.
pub trait Source: Sync {
    /// The checkpoint origin the log claims.
    fn origin(&self) -> &str;
    /// The key every checkpoint must be signed by.
    fn signer(&self) -> &PublicKey;
    /// Number of events when the audit starts.
    fn size(&self) -> Result<u64, AuditError>;
    /// Every stored signed checkpoint as (stored size, text), ascending.
    fn checkpoints(&self) -> Result<Vec<(u64, String)>, AuditError>;
    /// Whether every event must be covered by a signed checkpoint (a log on disk); an
    /// in-memory sequence has none.
    fn signed(&self) -> bool;
    /// Calls `visit` with each event's seq and bytes, `from..to` in seq order, until it
    /// returns `false`. Sources are read from several threads at once, each its own range.
    fn read(
        &self,
        from: u64,
        to: u64,
        visit: &mut dyn FnMut(u64, &[u8]) -> bool,
    ) -> Result<(), AuditError>;
    /// The leaf hashes the log stored for `from..to` (a log on disk keeps them; an in-memory
    /// sequence does not). Read only to name the changed event when a signed root differs.
    fn stored_leaves(&self, from: u64, to: u64) -> Result<Vec<(u64, Hash)>, AuditError>;
}

/// A log on disk.
pub struct LogSource {
    reader: LogReader,
}

/// redb's page cache for a log an audit opens itself. An audit reads each page once, in seq
/// order, so a cache buys it nothing beyond the few branch pages each chunk's read passes
/// through again. redb's default (1 GiB) grew with the log, to 600 MB of memory for a
/// 1M-event log, and every new cache page was a fresh page fault. Smaller is faster still,
/// with the same page faults: with a cache that fits in a core's L2, the buffers redb reads
/// pages into are most likely still in the CPU cache when they are reused. On the replay
/// bench 1 MiB beat 16 MiB by about 12% (512 KiB to 2 MiB did as well; 4 MiB was between).
pub const AUDIT_READ_CACHE_BYTES: usize = 1024 * 1024;

impl LogSource {
    pub fn new(reader: LogReader) -> Self {
        Self { reader }
    }

    /// Opens the log at `path` for an audit, with a page cache of
    /// [`AUDIT_READ_CACHE_BYTES`].
    pub fn open(path: &std::path::Path) -> Result<Self, LogError> {
        Ok(Self::new(LogReader::open_with_cache(
            path,
            Some(AUDIT_READ_CACHE_BYTES),
        )?))
    }

    /// The log being audited.
    pub fn reader(&self) -> &LogReader {
        &self.reader
    }
}

impl Source for LogSource {
    fn origin(&self) -> &str {
        &self.reader.meta().origin
    }

    fn signer(&self) -> &PublicKey {
        &self.reader.meta().signer
    }

    fn size(&self) -> Result<u64, AuditError> {
        Ok(self.reader.size()?)
    }

    fn checkpoints(&self) -> Result<Vec<(u64, String)>, AuditError> {
        Ok(self.reader.snapshot()?.checkpoint_texts()?)
    }

    fn signed(&self) -> bool {
        true
    }

    fn read(
        &self,
        from: u64,
        to: u64,
        visit: &mut dyn FnMut(u64, &[u8]) -> bool,
    ) -> Result<(), AuditError> {
        // `for_each_raw` visits the whole range; once `visit` says stop, the rest is skipped.
        let mut listening = true;
        self.reader
            .snapshot()?
            .for_each_raw(from, to, |seq, bytes| {
                if listening {
                    listening = visit(seq, bytes);
                }
                Ok(())
            })?;
        Ok(())
    }

    fn stored_leaves(&self, from: u64, to: u64) -> Result<Vec<(u64, Hash)>, AuditError> {
        let snapshot = self.reader.snapshot()?;
        let leaves = snapshot
            .transaction()
            .open_table(LEAVES)
            .map_err(LogError::from)?;
        let mut found = Vec::new();
        if from < to {
            for entry in leaves.range(from..to).map_err(LogError::from)? {
                let (seq, hash) = entry.map_err(LogError::from)?;
                found.push((seq.value(), Hash(*hash.value())));
            }
        }
        Ok(found)
    }
}

/// Events in memory, seqs from 0, without signatures or stored leaves.
pub struct MemorySource {
    origin: String,
    signer: PublicKey,
    events: Vec<Vec<u8>>,
}

impl MemorySource {
    /// Encodes `events` canonically; an event that does not encode is an error.
    pub fn new(events: &[Event]) -> Result<Self, AuditError> {
        let events = events
            .iter()
            .enumerate()
            .map(|(seq, event)| {
                codec::encode(event).map_err(|error| {
                    AuditError::Options(format!("event {seq} does not encode: {error}"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::from_bytes(events))
    }

    /// Raw bytes as they are (possibly invalid: the audit reports them).
    pub fn from_bytes(events: Vec<Vec<u8>>) -> Self {
        Self {
            origin: "memory".into(),
            signer: PublicKey([0; 32]),
            events,
        }
    }
}

impl Source for MemorySource {
    fn origin(&self) -> &str {
        &self.origin
    }

    fn signer(&self) -> &PublicKey {
        &self.signer
    }

    fn size(&self) -> Result<u64, AuditError> {
        Ok(self.events.len() as u64)
    }

    fn checkpoints(&self) -> Result<Vec<(u64, String)>, AuditError> {
        Ok(Vec::new())
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
        let to = to.min(self.events.len() as u64);
        for seq in from..to {
            if !visit(seq, &self.events[seq as usize]) {
                break;
            }
        }
        Ok(())
    }

    fn stored_leaves(&self, _from: u64, _to: u64) -> Result<Vec<(u64, Hash)>, AuditError> {
        Ok(Vec::new())
    }
}
