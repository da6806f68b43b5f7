//! Creating and opening the redb file, and the checks a log passes before it is used.

use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable};
use weightlog_schema::event::LogId;
use weightlog_schema::merkle::{self, Frontier};
use weightlog_schema::signature::PublicKey;
use weightlog_schema::{SCHEMA_VERSION, SignedCheckpoint};

use super::reader::LogReader;
use super::tables::*;
use super::{LogError, LogMeta};

/// What the writer needs to continue a log: the Merkle frontier of its current size.
pub(super) struct WriterState {
    pub frontier: Frontier,
}

pub(super) fn create_database(path: &Path, meta: &LogMeta) -> Result<Database, LogError> {
    let database = Database::create(path).map_err(|error| open_error(path, error))?;
    let mut transaction = database.begin_write()?;
    transaction.set_durability(redb::Durability::Immediate)?;
    {
        let mut table = transaction.open_table(META)?;
        table.insert(META_FORMAT, FORMAT.as_bytes())?;
        table.insert(META_SCHEMA_VERSION, &meta.schema_version.to_le_bytes()[..])?;
        table.insert(META_LOG_ID, &meta.log_id.0[..])?;
        table.insert(META_ORIGIN, meta.origin.as_bytes())?;
        table.insert(META_SIGNER, &meta.signer.0[..])?;
        // Create every table up front so readers never meet a missing one.
        transaction.open_table(EVENTS)?;
        transaction.open_table(LEAVES)?;
        transaction.open_table(TREE)?;
        transaction.open_table(CHECKPOINTS)?;
        transaction.open_table(BY_ID)?;
        transaction.open_table(BY_CHALLENGE)?;
        transaction.open_table(BY_UID)?;
        transaction.open_table(PROJECTIONS)?;
    }
    transaction.commit()?;
    Ok(database)
}

/// Opens an existing log file for writing (this also repairs redb after a crash).
pub(super) fn open_database(path: &Path) -> Result<(Database, LogMeta), LogError> {
    if !path.exists() {
        return Err(LogError::Missing { path: path.into() });
    }
    let database = Database::open(path).map_err(|error| open_error(path, error))?;
    let meta = read_meta(&database, path)?;
    Ok((database, meta))
}

/// Names what went wrong opening the file: another process holding it, I/O, or a file that
/// is not a redb database at all.
pub(super) fn open_error(path: &Path, error: redb::DatabaseError) -> LogError {
    match error {
        redb::DatabaseError::DatabaseAlreadyOpen => LogError::Busy { path: path.into() },
        // redb reports a file that is not a redb database as invalid data.
        redb::DatabaseError::Storage(redb::StorageError::Io(error))
            if error.kind() == std::io::ErrorKind::InvalidData =>
        {
            not_a_log(path, &error.to_string())
        }
        redb::DatabaseError::Storage(redb::StorageError::Io(error)) => LogError::File {
            path: path.into(),
            reason: error.to_string(),
        },
        other => not_a_log(path, &other.to_string()),
    }
}

fn not_a_log(path: &Path, reason: &str) -> LogError {
    LogError::NotALog {
        path: path.into(),
        reason: reason.into(),
    }
}

pub(super) fn read_meta(
    database: &impl ReadableDatabase,
    path: &Path,
) -> Result<LogMeta, LogError> {
    let transaction = database.begin_read()?;
    let table = match transaction.open_table(META) {
        Ok(table) => table,
        Err(redb::TableError::TableDoesNotExist(_)) => {
            return Err(not_a_log(path, "it has no meta table"));
        }
        Err(error) => return Err(error.into()),
    };
    let get = |key: &str| -> Result<Vec<u8>, LogError> {
        match table.get(key)? {
            Some(value) => Ok(value.value().to_vec()),
            None => Err(not_a_log(path, &format!("meta has no `{key}`"))),
        }
    };
    let format = get(META_FORMAT)?;
    if format != FORMAT.as_bytes() {
        return Err(not_a_log(
            path,
            &format!(
                "format is `{}`, this build reads `{FORMAT}`",
                String::from_utf8_lossy(&format)
            ),
        ));
    }
    let schema_version = <[u8; 2]>::try_from(get(META_SCHEMA_VERSION)?.as_slice())
        .map(u16::from_le_bytes)
        .map_err(|_| not_a_log(path, "schema_version is not 2 bytes"))?;
    if schema_version > SCHEMA_VERSION {
        return Err(not_a_log(
            path,
            &format!(
                "it was written with schema version {schema_version}; this build reads up to {SCHEMA_VERSION}"
            ),
        ));
    }
    let log_id = <[u8; 16]>::try_from(get(META_LOG_ID)?.as_slice())
        .map(LogId)
        .map_err(|_| not_a_log(path, "log_id is not 16 bytes"))?;
    let origin =
        String::from_utf8(get(META_ORIGIN)?).map_err(|_| not_a_log(path, "origin is not UTF-8"))?;
    let signer = <[u8; 32]>::try_from(get(META_SIGNER)?.as_slice())
        .map(PublicKey)
        .map_err(|_| not_a_log(path, "signer is not 32 bytes"))?;
    Ok(LogMeta {
        log_id,
        origin,
        signer,
        schema_version,
    })
}

/// The checks every open makes, in O(log n): the last checkpoint is signed by the log's
/// signer, covers exactly the stored events, and its root is the root of the stored tree.
/// A full check of every event is `verify`.
pub(super) fn check_and_load(reader: &LogReader) -> Result<WriterState, LogError> {
    let snapshot = reader.snapshot()?;
    let size = snapshot.size()?;
    if size == 0 {
        return Err(LogError::OpenCheck {
            reason: "the log has no genesis event; it was never fully created (delete it and run `weightlog init` again)".into(),
        });
    }
    let tree = snapshot.stored_tree()?;
    let frontier = Frontier::from_source(&tree, size)?;
    let root = merkle::root(&tree, size)?;
    let checkpoints = snapshot.transaction().open_table(CHECKPOINTS)?;
    let Some((stored_size, text)) = checkpoints
        .last()?
        .map(|(size, text)| (size.value(), text.value().to_string()))
    else {
        return Err(LogError::OpenCheck {
            reason: format!("{size} events but no checkpoint"),
        });
    };
    let checkpoint = SignedCheckpoint::parse(&text)?;
    checkpoint.verify(&reader.meta().signer)?;
    let problem = if checkpoint.checkpoint.size != stored_size {
        Some(format!(
            "the checkpoint stored under size {stored_size} says size {}",
            checkpoint.checkpoint.size
        ))
    } else if stored_size != size {
        Some(format!(
            "the last checkpoint covers {stored_size} events but the log holds {size}"
        ))
    } else if checkpoint.checkpoint.origin != reader.meta().origin {
        Some(format!(
            "the last checkpoint has origin {} but the log's origin is {}",
            checkpoint.checkpoint.origin,
            reader.meta().origin
        ))
    } else if checkpoint.checkpoint.root != root {
        Some(format!(
            "the last checkpoint's root {} is not the stored tree's root {root}",
            checkpoint.checkpoint.root
        ))
    } else {
        None
    };
    match problem {
        Some(reason) => Err(LogError::OpenCheck {
            reason: format!("{reason}; run `weightlog verify` to find the first bad event"),
        }),
        None => Ok(WriterState { frontier }),
    }
}
