//! weightlog-export: Parquet snapshots of a weightlog log, one dataset per table, readable
//! by DuckDB, pandas, Polars and Spark.
//!
//! The data path reads in one direction: `export.rs` streams the log and checks it against
//! a signed checkpoint, `tables.rs` turns events into typed rows, `sink.rs` writes them as
//! row groups into per-table (and per-partition) files, `metadata.rs` names what each file
//! states about its origin, `digest.rs` and `readback.rs` check the files against the log.
//!
//! **Memory bound.** Whatever the log's size, the export holds at most
//! [`sink::OPEN_FILES_MAX`] open files (one per table unless `--partition date` spreads a
//! table over several days at once), each with one batch being built (at most
//! [`sink::BATCH_ROWS_MAX`] rows, flushed early at about [`sink::BATCH_BYTES_MAX`]) and one
//! encoded row group in progress (at most [`sink::ROW_GROUP_ROWS_MAX`] rows or
//! [`sink::ROW_GROUP_BYTES_MAX`] bytes), plus one decoded event (at most
//! `EVENT_BYTES_MAX`, 1 MiB, of canonical bytes). That is at most
//! 16 × (8 + 32) MiB ≈ 640 MiB in the worst case and about 14 × 40 MiB unpartitioned (13 tables,
//! embeddings of two widths); real
//! logs use far less (see the README's benchmark). On top of it, the log reader's redb page
//! cache grows with the pages read, up to [`export::READ_CACHE_BYTES_MAX`] (64 MiB).

pub mod digest;
pub mod error;
pub mod export;
pub mod metadata;
pub mod readback;
pub mod sink;
pub mod tables;

pub use error::ExportError;
pub use export::{Compression, ExportOptions, ExportSummary, export};
pub use sink::{Partition, WrittenFile};
pub use tables::Table;
