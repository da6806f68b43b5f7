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
    #[error("the range --from {from} --to {to} is not inside the log's {size} signed events")]
    Range { from: u64, to: u64, size: u64 },
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
    #[error("verify: {path}: {reason}")]
    VerifyMismatch { path: PathBuf, reason: String },
    #[error(transparent)]
    Digest(#[from] crate::digest::UnsupportedType),
}
