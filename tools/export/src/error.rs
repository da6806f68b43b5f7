//! Errors of the export, gathered into one enum the CLI prints as one line.

use std::path::PathBuf;

use weightlog::log::LogError;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error(
        "event {seq}: {reason}; the log does not check out, so nothing was exported (`weightlog verify LOG` gives the full report)"
    )]
    Corrupt { seq: u64, reason: String },
    #[error("event {seq}: {reason}")]
    Unrepresentable { seq: u64, reason: String },
    #[error(
        "{path} was exported from log {found}, not from this log ({expected}); use another directory"
    )]
    OtherLog {
        path: PathBuf,
        found: String,
        expected: String,
    },
    #[error("{}", range_message(*from, *to, *size))]
    Range { from: u64, to: u64, size: u64 },
    #[error("{0}")]
    Resume(String),
    #[error("the log has no signed checkpoint; it was never committed")]
    NoCheckpoint,
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Parquet {
        path: PathBuf,
        source: parquet::errors::ParquetError,
    },
    #[error("building the {table} table: {source}")]
    Arrow {
        table: crate::tables::Table,
        source: arrow_schema::ArrowError,
    },
    #[error(
        "{path} already holds seqs {from}..{to} of this table; exporting them again would count them twice (pick --from past {to}, or another directory)"
    )]
    Overlap { path: PathBuf, from: u64, to: u64 },
    #[error(
        "{path} is laid out {found}, and this run would write its files {wanted}, which readers cannot combine (use the same --partition, or another directory)"
    )]
    Layout {
        path: PathBuf,
        found: &'static str,
        wanted: &'static str,
    },
    #[error("verify: {path}: {reason}")]
    VerifyMismatch { path: PathBuf, reason: String },
    #[error(transparent)]
    Digest(#[from] crate::digest::UnsupportedType),
}

/// Why `from..to` is not a range of a log of `size` signed events, naming only the bound at
/// fault (a user who gave no `--to` gets `size` there).
fn range_message(from: u64, to: u64, size: u64) -> String {
    if from > size {
        format!("--from {from} is past the log's {size} signed events")
    } else if to > size {
        format!("--to {to} is past the log's {size} signed events")
    } else {
        format!("--from {from} is after --to {to}")
    }
}
