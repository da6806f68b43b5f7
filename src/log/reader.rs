//! Readers: committed snapshots of a log, by seq range, by challenge, by uid, and a tail
//! that wakes when the writer commits.
//!
//! Every read happens in a redb read transaction, so it sees one committed state even while
//! the writer commits more.

use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use redb::{
    ReadOnlyTable, ReadTransaction, ReadableDatabase, ReadableTable, ReadableTableMetadata,
};
use weightlog_schema::codec;
use weightlog_schema::merkle::SubtreeSource;
use weightlog_schema::{Event, EventKind, Hash, SignedCheckpoint};

use super::tables::*;
use super::{LogError, LogMeta, open};

/// The database a reader reads: the writer's own handle, or a read-only open.
#[derive(Clone)]
pub(crate) enum Db {
    Writable(Arc<redb::Database>),
    ReadOnly(Arc<redb::ReadOnlyDatabase>),
}

impl Db {
    fn begin_read(&self) -> Result<ReadTransaction, redb::TransactionError> {
        match self {
            Db::Writable(database) => database.begin_read(),
            Db::ReadOnly(database) => database.begin_read(),
        }
    }
}

/// Wakes tails when the writer commits: holds the committed log size.
#[derive(Default)]
pub(crate) struct Notifier {
    size: Mutex<u64>,
    changed: Condvar,
}

impl Notifier {
    pub(crate) fn publish(&self, size: u64) {
        // A poisoned mutex only means another reader panicked; the size is still valid.
        let mut guard = self
            .size
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        *guard = size;
        self.changed.notify_all();
    }

    fn wait_past(&self, size: u64, timeout: Duration) -> u64 {
        let guard = self
            .size
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let (guard, _) = self
            .changed
            .wait_timeout_while(guard, timeout, |committed| *committed <= size)
            .unwrap_or_else(|poison| poison.into_inner());
        *guard
    }
}

/// Read access to a log. Cheap to clone.
#[derive(Clone)]
pub struct LogReader {
    db: Db,
    meta: LogMeta,
    notifier: Arc<Notifier>,
}

impl LogReader {
    pub(crate) fn new(db: Db, meta: LogMeta) -> Self {
        Self {
            db,
            meta,
            notifier: Arc::new(Notifier::default()),
        }
    }

    /// Opens a log for reading only (verify, cat, proofs). No key is needed.
    pub fn open(path: &Path) -> Result<LogReader, LogError> {
        Self::open_with_cache(path, None)
    }

    /// Like [`LogReader::open`], with redb's page cache capped at `cache_bytes` (`None`:
    /// redb's default, 1 GiB). A one-pass scan of a large log (an export) reads every page
    /// once, so a small cache costs little time and keeps its memory bounded.
    pub fn open_with_cache(path: &Path, cache_bytes: Option<usize>) -> Result<LogReader, LogError> {
        if !path.exists() {
            return Err(LogError::Missing { path: path.into() });
        }
        let mut builder = redb::Builder::new();
        if let Some(bytes) = cache_bytes {
            builder.set_cache_size(bytes);
        }
        // A read-only open refuses a file that needs repair after a crash. Repair writes to
        // the file, and what an auditor reads must stay as it was given: that takes an
        // explicit `recover`.
        let database = builder.open_read_only(path).map_err(|error| match error {
            redb::DatabaseError::RepairAborted => LogError::NeedsRecovery { path: path.into() },
            other => open::open_error(path, other),
        })?;
        let meta = open::read_meta(&database, path)?;
        let db = Db::ReadOnly(Arc::new(database));
        let reader = LogReader::new(db, meta);
        let size = reader.snapshot()?.size()?;
        reader.notifier.publish(size);
        Ok(reader)
    }

    /// Recovers a log that was not closed cleanly (redb repairs it on a writable open,
    /// writing to the file) and returns its size. A log that needs nothing is left as it is.
    pub fn recover(path: &Path) -> Result<u64, LogError> {
        if !path.exists() {
            return Err(LogError::Missing { path: path.into() });
        }
        match Self::open(path) {
            Ok(reader) => return reader.size(),
            Err(LogError::NeedsRecovery { .. }) => {}
            Err(error) => return Err(error),
        }
        let database = redb::Database::open(path).map_err(|error| open::open_error(path, error))?;
        open::read_meta(&database, path)?;
        drop(database);
        Self::open(path)?.size()
    }

    pub fn meta(&self) -> &LogMeta {
        &self.meta
    }

    pub(crate) fn notifier(&self) -> Arc<Notifier> {
        self.notifier.clone()
    }

    /// A consistent view of the log as of the last commit.
    pub fn snapshot(&self) -> Result<Snapshot, LogError> {
        Ok(Snapshot {
            transaction: self.db.begin_read()?,
        })
    }

    /// Number of events committed.
    pub fn size(&self) -> Result<u64, LogError> {
        self.snapshot()?.size()
    }

    /// Follows the log from `from_seq`: yields committed events in order and waits for new
    /// commits when it has caught up. In the process that holds the writer, a commit wakes
    /// the tail at once; a reader in another process re-reads after each timeout.
    pub fn tail(&self, from_seq: u64) -> Tail {
        Tail {
            reader: self.clone(),
            next_seq: from_seq,
            buffered: Vec::new().into_iter(),
        }
    }
}

/// Where an event of a batch would land (see [`Snapshot::planned_seqs`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Planned {
    /// A new event, at this seq.
    New(u64),
    /// The log already holds it at this seq.
    InLog(u64),
    /// An earlier event of the same batch is the same event; it lands at this seq.
    Repeated(u64),
}

impl Planned {
    pub fn seq(self) -> u64 {
        match self {
            Planned::New(seq) | Planned::InLog(seq) | Planned::Repeated(seq) => seq,
        }
    }
}

/// A read transaction over a log.
pub struct Snapshot {
    transaction: ReadTransaction,
}

/// Decodes stored bytes, naming the seq when they are bad.
fn decode_stored(seq: u64, bytes: &[u8]) -> Result<Event, LogError> {
    codec::decode(bytes).map_err(|error| LogError::Corrupt {
        seq,
        reason: error.to_string(),
    })
}

impl Snapshot {
    pub(crate) fn transaction(&self) -> &ReadTransaction {
        &self.transaction
    }

    /// Number of events: one past the last seq.
    pub fn size(&self) -> Result<u64, LogError> {
        let events = self.transaction.open_table(EVENTS)?;
        Ok(events.last()?.map_or(0, |(seq, _)| seq.value() + 1))
    }

    /// The canonical bytes of one event.
    pub fn event_bytes(&self, seq: u64) -> Result<Vec<u8>, LogError> {
        let events = self.transaction.open_table(EVENTS)?;
        match events.get(seq)? {
            Some(bytes) => Ok(bytes.value().to_vec()),
            None => Err(LogError::NoSuchSeq {
                seq,
                size: self.size()?,
            }),
        }
    }

    /// One event, validated.
    pub fn event(&self, seq: u64) -> Result<Event, LogError> {
        decode_stored(seq, &self.event_bytes(seq)?)
    }

    /// Events with `from <= seq < to`, validated, in seq order.
    pub fn range(&self, from: u64, to: u64) -> Result<Vec<(u64, Event)>, LogError> {
        let events = self.transaction.open_table(EVENTS)?;
        let mut found = Vec::new();
        if from >= to {
            return Ok(found);
        }
        for entry in events.range(from..to)? {
            let (seq, bytes) = entry?;
            found.push((seq.value(), decode_stored(seq.value(), bytes.value())?));
        }
        Ok(found)
    }

    /// Calls `visit` with the raw bytes of every event in `from..to`, without copying them.
    pub fn for_each_raw(
        &self,
        from: u64,
        to: u64,
        mut visit: impl FnMut(u64, &[u8]) -> Result<(), LogError>,
    ) -> Result<(), LogError> {
        if from >= to {
            return Ok(());
        }
        let events = self.transaction.open_table(EVENTS)?;
        for entry in events.range(from..to)? {
            let (seq, bytes) = entry?;
            visit(seq.value(), bytes.value())?;
        }
        Ok(())
    }

    /// Seqs of every event of a challenge, ascending.
    pub fn seqs_by_challenge(&self, challenge_id: &str) -> Result<Vec<u64>, LogError> {
        let index = self.transaction.open_table(BY_CHALLENGE)?;
        let mut seqs = Vec::new();
        for entry in index.range((challenge_id, 0)..=(challenge_id, u64::MAX))? {
            seqs.push(entry?.0.value().1);
        }
        Ok(seqs)
    }

    /// Seqs of every event about a uid, ascending.
    pub fn seqs_by_uid(&self, uid: u16) -> Result<Vec<u64>, LogError> {
        let index = self.transaction.open_table(BY_UID)?;
        let mut seqs = Vec::new();
        for entry in index.range((uid, 0)..=(uid, u64::MAX))? {
            seqs.push(entry?.0.value().1);
        }
        Ok(seqs)
    }

    /// The seq of an event, by its timestamp and id, when the log holds it.
    pub fn seq_of(&self, timestamp_ms: u64, id: &Hash) -> Result<Option<u64>, LogError> {
        let index = self.transaction.open_table(BY_ID)?;
        Ok(index.get((timestamp_ms, &id.0))?.map(|seq| seq.value()))
    }

    /// Where each of `events` would be if they were appended now as one batch, in order:
    /// the seq the log already gives it (appends are idempotent, by timestamp and id), the
    /// seq of an earlier event of the batch with the same timestamp and id, or else the next
    /// free seq. The writer places them the same way.
    pub fn planned_seqs(&self, events: &[super::EncodedEvent]) -> Result<Vec<Planned>, LogError> {
        let mut next = self.size()?;
        let mut in_batch = std::collections::BTreeMap::new();
        let mut planned = Vec::with_capacity(events.len());
        for event in events {
            let key = (event.timestamp_ms, event.id);
            let place = if let Some(seq) = self.seq_of(event.timestamp_ms, &event.id)? {
                Planned::InLog(seq)
            } else if let Some(seq) = in_batch.get(&key) {
                Planned::Repeated(*seq)
            } else {
                in_batch.insert(key, next);
                next += 1;
                Planned::New(next - 1)
            };
            planned.push(place);
        }
        Ok(planned)
    }

    /// Events of each kind, in [`EventKind::ALL`] order. Counted by a zero-copy scan (over
    /// ten million events a second) rather than kept by the writer, so that appends do not
    /// touch one more table on every commit.
    pub fn kind_counts(&self) -> Result<Vec<(EventKind, u64)>, LogError> {
        let mut counts = EventKind::ALL.map(|kind| (kind, 0u64));
        self.for_each_raw(0, u64::MAX, |seq, bytes| {
            let event = codec::access(bytes).map_err(|error| LogError::Corrupt {
                seq,
                reason: error.to_string(),
            })?;
            counts[event.payload.kind() as usize].1 += 1;
            Ok(())
        })?;
        Ok(counts.to_vec())
    }

    /// The signed checkpoint stored for exactly `size` events, if one was written.
    pub fn checkpoint_at(&self, size: u64) -> Result<Option<SignedCheckpoint>, LogError> {
        let table = self.transaction.open_table(CHECKPOINTS)?;
        match table.get(size)? {
            Some(text) => Ok(Some(SignedCheckpoint::parse(text.value())?)),
            None => Ok(None),
        }
    }

    /// The newest signed checkpoint.
    pub fn last_checkpoint(&self) -> Result<Option<SignedCheckpoint>, LogError> {
        let table = self.transaction.open_table(CHECKPOINTS)?;
        match table.last()? {
            Some((_, text)) => Ok(Some(SignedCheckpoint::parse(text.value())?)),
            None => Ok(None),
        }
    }

    /// Every stored checkpoint as (stored size, text), ascending by size.
    pub fn checkpoint_texts(&self) -> Result<Vec<(u64, String)>, LogError> {
        let table = self.transaction.open_table(CHECKPOINTS)?;
        let mut texts = Vec::with_capacity(table.len()? as usize);
        for entry in table.iter()? {
            let (size, text) = entry?;
            texts.push((size.value(), text.value().to_string()));
        }
        Ok(texts)
    }

    /// The stored checkpoint of a projection, checked against its own hash on restore.
    pub fn projection(
        &self,
        name: &str,
    ) -> Result<Option<weightlog_replay::projection::ProjectionCheckpoint>, LogError> {
        let Some(bytes) = self.projection_bytes(name)? else {
            return Ok(None);
        };
        weightlog_replay::projection::ProjectionCheckpoint::from_bytes(&bytes)
            .map(Some)
            .map_err(|error| LogError::Projection(format!("`{name}`: {error}")))
    }

    /// The bytes stored under `name` in the `projections` table, unchecked: derived data
    /// whose reader checks it (see `Log::store_projection_bytes`).
    pub fn projection_bytes(&self, name: &str) -> Result<Option<Vec<u8>>, LogError> {
        let table = self.transaction.open_table(PROJECTIONS)?;
        Ok(table.get(name)?.map(|bytes| bytes.value().to_vec()))
    }

    /// The stored Merkle tree, for roots and proofs.
    pub fn stored_tree(&self) -> Result<StoredTree, LogError> {
        Ok(StoredTree {
            leaves: self.transaction.open_table(LEAVES)?,
            nodes: self.transaction.open_table(TREE)?,
        })
    }
}

/// The Merkle tree as stored: leaves plus every complete aligned subtree root.
pub struct StoredTree {
    leaves: ReadOnlyTable<u64, &'static [u8; 32]>,
    nodes: ReadOnlyTable<(u8, u64), &'static [u8; 32]>,
}

impl SubtreeSource for StoredTree {
    type Error = LogError;

    fn perfect_subtree(&self, level: u32, index: u64) -> Result<Hash, LogError> {
        let first_seq = index << level;
        let missing = || LogError::Corrupt {
            seq: first_seq,
            reason: format!("the stored Merkle tree has no node at level {level}, index {index}"),
        };
        if level == 0 {
            return self
                .leaves
                .get(index)?
                .map(|hash| Hash(*hash.value()))
                .ok_or_else(missing);
        }
        let level = u8::try_from(level).map_err(|_| missing())?;
        self.nodes
            .get((level, index))?
            .map(|hash| Hash(*hash.value()))
            .ok_or_else(missing)
    }
}

/// Follows a log; see [`LogReader::tail`].
pub struct Tail {
    reader: LogReader,
    next_seq: u64,
    buffered: std::vec::IntoIter<(u64, Event)>,
}

/// Most events a tail reads per read transaction.
const TAIL_READ_EVENTS_MAX: u64 = 1024;

impl Tail {
    /// The next event, waiting up to `timeout` for one to be committed. `Ok(None)` means the
    /// timeout passed with nothing new.
    pub fn next_timeout(&mut self, timeout: Duration) -> Result<Option<(u64, Event)>, LogError> {
        if let Some(next) = self.buffered.next() {
            return Ok(Some(next));
        }
        let mut size = self.reader.size()?;
        if size <= self.next_seq {
            self.reader.notifier.wait_past(self.next_seq, timeout);
            size = self.reader.size()?;
            if size <= self.next_seq {
                return Ok(None);
            }
        }
        let to = size.min(self.next_seq + TAIL_READ_EVENTS_MAX);
        let events = self.reader.snapshot()?.range(self.next_seq, to)?;
        self.next_seq = to;
        self.buffered = events.into_iter();
        Ok(self.buffered.next())
    }
}
