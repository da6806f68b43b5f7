//! The log on redb: one writer thread with group commit, concurrent readers, proofs and a
//! sequential verifier.
//!
//! Data flows one way: callers encode events (`append`), the writer stores and commits them
//! (`writer.rs`), readers read committed snapshots (`reader.rs`), proofs are cut from the
//! stored tree (`proof.rs`), and `verify.rs` re-derives everything from the event bytes.
//!
//! **Architecture Invariant:** an acknowledged append is durable: the writer acknowledges
//! only after a `Durability::Immediate` commit that also holds the leaves, tree nodes,
//! indexes and a signed checkpoint of the new size.

mod open;
pub mod proof;
pub mod reader;
pub mod tables;
pub mod verify;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use weightlog_schema::codec::{self, CodecError};
use weightlog_schema::event::{AccountId, LogId, LogOpened, Payload};
use weightlog_schema::signature::PublicKey;
use weightlog_schema::{CheckpointError, Event, EventKind, Hash};

use weightlog_replay::projection::ProjectionCheckpoint;

use crate::keys::Hotkey;

pub use reader::{LogReader, Planned, Tail};
pub use verify::{VerifyReport, verify_log};
pub use writer::{COMMIT_BATCH_EVENTS_MAX, QUEUE_REQUESTS_MAX};

/// Most events one `append_batch` call may hold; a batch is committed atomically.
pub const APPEND_BATCH_EVENTS_MAX: usize = 100_000;

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("storage: {0}")]
    Storage(#[from] redb::Error),
    #[error("{path}: no log there; create one with `weightlog init`")]
    Missing { path: PathBuf },
    #[error("{path} already exists; refusing to overwrite it")]
    AlreadyExists { path: PathBuf },
    #[error("{path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("{path} is open in another process (a running node?); stop it or read a copy")]
    Busy { path: PathBuf },
    #[error("{path}: not a weightlog log ({reason})")]
    NotALog { path: PathBuf, reason: String },
    #[error(
        "{path} was not closed cleanly (a crash?) and needs recovery, which writes to the \
         file; a reader never writes to a log. Run `weightlog recover {path}` (on a copy, to \
         keep this file as it is), or open it for appending"
    )]
    NeedsRecovery { path: PathBuf },
    #[error(
        "the log is signed by {expected}, but the loaded hotkey is {found}; load the validator's hotkey"
    )]
    WrongSigner { expected: String, found: String },
    #[error("event {index} of the batch: {source}")]
    BadEvent { index: usize, source: CodecError },
    #[error("a batch of {events} events is over the limit of {APPEND_BATCH_EVENTS_MAX}")]
    BatchTooLarge { events: usize },
    #[error(
        "the writer is poisoned by a failed commit ({reason}); nothing more is written until the log is reopened"
    )]
    Poisoned { reason: String },
    #[error("the writer thread has stopped")]
    WriterStopped,
    #[error("event {seq}: {reason}")]
    Corrupt { seq: u64, reason: String },
    #[error(
        "no signed checkpoint for size {size} (one is written per commit; nearest sizes: {below} and {above})"
    )]
    NoCheckpoint {
        size: u64,
        below: String,
        above: String,
    },
    #[error("the log was changed outside weightlog: {reason}")]
    OpenCheck { reason: String },
    #[error("no event at seq {seq}; the log holds {size} events")]
    NoSuchSeq { seq: u64, size: u64 },
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error("projection checkpoint: {0}")]
    Projection(String),
    #[error("proof: {0}")]
    Proof(#[from] weightlog_schema::proof::ProofError),
}

macro_rules! storage_error_from {
    ($($error:ty),*) => {
        $(impl From<$error> for LogError {
            fn from(error: $error) -> Self {
                LogError::Storage(error.into())
            }
        })*
    };
}
storage_error_from!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError
);

/// What `init` needs besides the key.
#[derive(Debug, Clone)]
pub struct Genesis {
    pub netuid: u16,
    pub profile: String,
    pub parameters_json: String,
    pub timestamp_ms: u64,
    /// Random unless a test pins it.
    pub log_id: LogId,
}

impl Genesis {
    /// The genesis a `LogOpened` event records (the inverse of [`Genesis::event`], the
    /// signer aside); `None` for an event of another kind.
    pub fn of(event: &Event) -> Option<Genesis> {
        let Payload::LogOpened(opened) = &event.payload else {
            return None;
        };
        Some(Genesis {
            netuid: opened.netuid,
            profile: opened.profile.clone(),
            parameters_json: opened.parameters_json.clone(),
            timestamp_ms: event.timestamp_ms,
            log_id: opened.log_id,
        })
    }

    /// The `LogOpened` event (seq 0) of a log with this genesis whose signer is `signer`.
    pub fn event(&self, signer: &PublicKey) -> Event {
        Event::new(
            self.timestamp_ms,
            Payload::LogOpened(LogOpened {
                log_id: self.log_id,
                netuid: self.netuid,
                validator_hotkey: AccountId(signer.0),
                profile: self.profile.clone(),
                parameters_hash: codec::parameters_hash_of(&self.parameters_json),
                parameters_json: self.parameters_json.clone(),
            }),
        )
    }
}

/// Log-wide facts from the `meta` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogMeta {
    pub log_id: LogId,
    pub origin: String,
    pub signer: PublicKey,
    pub schema_version: u16,
}

/// The checkpoint origin of a log: it names the subnet, the signer and the log.
pub fn origin_for(netuid: u16, signer: &PublicKey, log_id: &LogId) -> String {
    format!(
        "weightlog/netuid-{netuid}/{}/{}",
        signer.to_ss58(),
        log_id.to_hex()
    )
}

/// An event encoded by the caller, ready for the writer: encoding and validation happen on
/// the caller's thread so bad input is refused before it reaches the writer.
#[derive(Debug, Clone)]
pub struct EncodedEvent {
    pub bytes: Vec<u8>,
    pub id: Hash,
    pub timestamp_ms: u64,
    pub kind: EventKind,
    pub challenge_id: Option<String>,
    pub uids: Vec<u16>,
}

impl EncodedEvent {
    pub fn new(event: &Event) -> Result<Self, CodecError> {
        let bytes = codec::encode(event)?;
        Ok(Self {
            id: weightlog_schema::event_id(&bytes),
            timestamp_ms: event.timestamp_ms,
            kind: event.kind(),
            challenge_id: event.payload.challenge_id().map(str::to_string),
            uids: event.payload.uids(),
            bytes,
        })
    }
}

/// A log open for appending. Reads go through [`Log::reader`].
pub struct Log {
    path: PathBuf,
    reader: LogReader,
    writer: writer::WriterHandle,
}

impl Log {
    /// Creates a new log at `path` and appends its genesis `LogOpened` (seq 0).
    pub fn create(path: &Path, hotkey: Hotkey, genesis: Genesis) -> Result<Log, LogError> {
        if path.exists() {
            return Err(LogError::AlreadyExists { path: path.into() });
        }
        let signer = PublicKey(hotkey.public_key());
        let opened = genesis.event(&signer);
        // Validate the genesis before creating any file, so bad parameters leave nothing behind.
        let encoded =
            EncodedEvent::new(&opened).map_err(|source| LogError::BadEvent { index: 0, source })?;
        let meta = LogMeta {
            origin: origin_for(genesis.netuid, &signer, &genesis.log_id),
            log_id: genesis.log_id,
            signer,
            schema_version: weightlog_schema::SCHEMA_VERSION,
        };
        let database = open::create_database(path, &meta)?;
        let log = Self::start(path, database, meta, hotkey, true)?;
        log.writer.append(vec![encoded])?;
        Ok(log)
    }

    /// Opens an existing log for appending; `hotkey` must be the log's signer.
    pub fn open(path: &Path, hotkey: Hotkey) -> Result<Log, LogError> {
        let (database, meta) = open::open_database(path)?;
        let found = PublicKey(hotkey.public_key());
        if found != meta.signer {
            return Err(LogError::WrongSigner {
                expected: meta.signer.to_ss58(),
                found: found.to_ss58(),
            });
        }
        Self::start(path, database, meta, hotkey, false)
    }

    /// Starts the writer. `is_new` is true only for a file `create` just made, which has no
    /// events yet and so nothing to check.
    fn start(
        path: &Path,
        database: redb::Database,
        meta: LogMeta,
        hotkey: Hotkey,
        is_new: bool,
    ) -> Result<Log, LogError> {
        let database = Arc::new(database);
        let reader = LogReader::new(reader::Db::Writable(database.clone()), meta.clone());
        let state = if is_new {
            open::WriterState {
                frontier: weightlog_schema::merkle::Frontier::new(),
            }
        } else {
            open::check_and_load(&reader)?
        };
        let writer = writer::WriterHandle::spawn(database, meta, hotkey, state, reader.notifier());
        Ok(Log {
            path: path.into(),
            reader,
            writer,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn meta(&self) -> &LogMeta {
        self.reader.meta()
    }

    pub fn reader(&self) -> &LogReader {
        &self.reader
    }

    /// Appends one event; returns its seq once it is durable. Appending an event that is
    /// already in the log returns the seq it already has.
    pub fn append(&self, event: &Event) -> Result<u64, LogError> {
        let seqs = self.append_batch(std::slice::from_ref(event))?;
        Ok(seqs[0])
    }

    /// Appends events atomically: all are durable when this returns, or none is stored.
    pub fn append_batch(&self, events: &[Event]) -> Result<Vec<u64>, LogError> {
        if events.len() > APPEND_BATCH_EVENTS_MAX {
            return Err(LogError::BatchTooLarge {
                events: events.len(),
            });
        }
        let encoded = events
            .iter()
            .enumerate()
            .map(|(index, event)| {
                EncodedEvent::new(event).map_err(|source| LogError::BadEvent { index, source })
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.append_encoded(encoded)
    }

    /// Appends events the caller already encoded (see [`EncodedEvent::new`]).
    pub fn append_encoded(&self, events: Vec<EncodedEvent>) -> Result<Vec<u64>, LogError> {
        if events.len() > APPEND_BATCH_EVENTS_MAX {
            return Err(LogError::BatchTooLarge {
                events: events.len(),
            });
        }
        if events.is_empty() {
            return Ok(Vec::new());
        }
        // Seq 0 is the only LogOpened; `verify` refuses any other, so refuse it here
        // before it is signed into the log. The log's own genesis is already in it, so
        // it is a no-op like any event the log holds (`cat --json` output appends back).
        if events
            .iter()
            .any(|event| event.kind == EventKind::LogOpened)
        {
            let snapshot = self.reader.snapshot()?;
            for (index, event) in events.iter().enumerate() {
                if event.kind == EventKind::LogOpened
                    && snapshot.seq_of(event.timestamp_ms, &event.id)?.is_none()
                {
                    return Err(LogError::BadEvent {
                        index,
                        source: CodecError::Semantic {
                            kind: EventKind::LogOpened.name(),
                            reason: "only `weightlog init` writes LogOpened (seq 0); record a \
                                     profile change with ProfileChanged"
                                .into(),
                        },
                    });
                }
            }
        }
        self.writer.append(events)
    }

    /// Stores a projection checkpoint durably, replacing the previous one of the same name.
    /// It is derived data (any auditor can recompute it), so it lives outside the Merkle
    /// tree; its state hash is what replays compare.
    pub fn store_projection(&self, checkpoint: &ProjectionCheckpoint) -> Result<(), LogError> {
        let size = self.reader.size()?;
        if checkpoint.next_seq > size {
            return Err(LogError::Projection(format!(
                "`{}` covers seqs below {}, but the log holds {size} events",
                checkpoint.name, checkpoint.next_seq
            )));
        }
        let bytes = checkpoint
            .to_bytes()
            .map_err(|error| LogError::Projection(error.to_string()))?;
        self.store_projection_bytes(&checkpoint.name, &bytes)
    }

    /// Stores derived bytes durably under `name` in the `projections` table, replacing what
    /// was there: outside the Merkle tree, so nothing an auditor checks; the caller's format
    /// (see [`Snapshot::projection_bytes`](reader::Snapshot::projection_bytes)).
    pub fn store_projection_bytes(&self, name: &str, bytes: &[u8]) -> Result<(), LogError> {
        // redb runs one write transaction at a time, so this waits for the writer's commit
        // in progress rather than racing it.
        let mut transaction = self.writer.database().begin_write()?;
        transaction.set_durability(redb::Durability::Immediate)?;
        transaction
            .open_table(tables::PROJECTIONS)?
            .insert(name, bytes)?;
        transaction.commit()?;
        Ok(())
    }

    /// Stops the writer after it has committed everything queued.
    pub fn close(self) -> Result<(), LogError> {
        self.writer.shutdown()
    }
}
