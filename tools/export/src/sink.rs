//! Where rows go: one Parquet file per table (per date partition, per embedding dimension)
//! per export run, written as a stream of row groups.
//!
//! Files are written under a hidden temporary name (`.part-….parquet.partial`, which
//! readers' `*.parquet` globs skip) and renamed only after the whole range checked out
//! against its signed checkpoint, so a refused log leaves no file behind and a reader never
//! sees half an export.
//!
//! Memory: each open file holds at most one record batch being built ([`BATCH_ROWS_MAX`]
//! rows or about [`BATCH_BYTES_MAX`] bytes) and one encoded row group in progress
//! ([`ROW_GROUP_ROWS_MAX`] rows or [`ROW_GROUP_BYTES_MAX`] bytes), and at most
//! [`OPEN_FILES_MAX`] files are open at once (the least recently used is closed first).

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use parquet::arrow::ArrowWriter;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};

use crate::digest::TableDigest;
use crate::error::ExportError;
use crate::metadata;
use crate::tables::{CheckpointRow, EventRow, Rows, Table};

/// Rows gathered per table before they are handed to the Parquet writer as one batch.
pub const BATCH_ROWS_MAX: usize = 8_192;
/// Approximate bytes gathered per table before the batch is handed over early.
pub const BATCH_BYTES_MAX: usize = 8 << 20;
/// Rows per row group: large enough for good compression and statistics, small enough to
/// hold in memory while it is encoded.
pub const ROW_GROUP_ROWS_MAX: usize = 131_072;
/// Encoded bytes per row group, whichever limit comes first.
pub const ROW_GROUP_BYTES_MAX: usize = 32 << 20;
/// Files open at once; only date partitions can open more than one per table.
pub const OPEN_FILES_MAX: usize = 16;

/// How files are laid out under each table's folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Partition {
    /// Hive-style `date=YYYY-MM-DD/` folders, by the event's UTC date.
    Date,
}

/// A written file and what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenFile {
    pub table: Table,
    pub path: PathBuf,
    pub rows: u64,
    /// Digest of the rows as built from the log (see `digest.rs`).
    pub digest: String,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct FileKey {
    table: Table,
    date: Option<String>,
    /// Embeddings only: the vector width is part of the file's schema.
    dimension: Option<u32>,
}

struct OpenFile {
    rows: Rows,
    writer: ArrowWriter<File>,
    digest: TableDigest,
    temp_path: PathBuf,
    final_path: PathBuf,
    last_used: u64,
}

/// The files of one export run.
pub struct Dataset {
    out_dir: PathBuf,
    /// `part-FROM-TO`: the run's range names its files, so a later run adds files.
    file_stem: String,
    properties: WriterProperties,
    partition: Option<Partition>,
    open: BTreeMap<FileKey, OpenFile>,
    /// Files closed early (evicted) in this run, so a reopened key gets a new name.
    opened_count: BTreeMap<FileKey, u32>,
    finished: Vec<(PathBuf, WrittenFile)>,
    /// Folders this run created, in the order it created them, so that a refused run
    /// removes them again.
    created_folders: Vec<PathBuf>,
    clock: u64,
}

impl Dataset {
    pub fn new(
        out_dir: &Path,
        from: u64,
        to: u64,
        properties_builder: parquet::file::properties::WriterPropertiesBuilder,
        partition: Option<Partition>,
    ) -> Dataset {
        let properties = properties_builder
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS_MAX))
            .set_max_row_group_bytes(Some(ROW_GROUP_BYTES_MAX))
            .set_statistics_enabled(EnabledStatistics::Page)
            .set_created_by(format!("weightlog-export {}", env!("CARGO_PKG_VERSION")))
            .build();
        Dataset {
            out_dir: out_dir.to_path_buf(),
            file_stem: format!("part-{from}-{to}"),
            properties,
            partition,
            open: BTreeMap::new(),
            opened_count: BTreeMap::new(),
            finished: Vec::new(),
            created_folders: Vec::new(),
            clock: 0,
        }
    }

    /// Adds the event's rows to `table`, when it has any.
    pub fn append_event(&mut self, table: Table, row: &EventRow) -> Result<(), ExportError> {
        let dimension = match (&row.event.payload, table) {
            (weightlog_schema::Payload::EmbeddingComputed(embedding), Table::Embeddings) => {
                // The codec caps an event at 1 MiB, so a vector's length fits a u32.
                Some(
                    u32::try_from(embedding.vector.len()).map_err(|_| ExportError::Corrupt {
                        seq: row.seq,
                        reason: "an embedding longer than u32::MAX".into(),
                    })?,
                )
            }
            _ => None,
        };
        if !takes(table, &row.event.payload) {
            return Ok(());
        }
        let key = self.key(table, row.timestamp_ms, dimension);
        let file = self.file(key)?;
        file.rows.append_event(row);
        flush_if_full(file)
    }

    /// Adds a signed checkpoint to the checkpoints table.
    pub fn append_checkpoint(&mut self, row: &CheckpointRow) -> Result<(), ExportError> {
        let key = self.key(Table::Checkpoints, row.timestamp_ms, None);
        let file = self.file(key)?;
        file.rows.append_checkpoint(row);
        flush_if_full(file)
    }

    fn key(&self, table: Table, timestamp_ms: i64, dimension: Option<u32>) -> FileKey {
        FileKey {
            table,
            date: self.partition.map(|Partition::Date| utc_date(timestamp_ms)),
            dimension,
        }
    }

    /// The open file for `key`, opening it (and closing the least recently used file when
    /// too many are open) as needed.
    fn file(&mut self, key: FileKey) -> Result<&mut OpenFile, ExportError> {
        self.clock += 1;
        if !self.open.contains_key(&key) {
            if self.open.len() >= OPEN_FILES_MAX {
                let oldest = self
                    .open
                    .iter()
                    .min_by_key(|(_, file)| file.last_used)
                    .map(|(key, _)| key.clone());
                if let Some(oldest) = oldest
                    && let Some(file) = self.open.remove(&oldest)
                {
                    self.close(file)?;
                }
            }
            let file = self.create(&key)?;
            self.open.insert(key.clone(), file);
        }
        let clock = self.clock;
        let file = self
            .open
            .get_mut(&key)
            .unwrap_or_else(|| unreachable!("the file was opened above"));
        file.last_used = clock;
        Ok(file)
    }

    fn create(&mut self, key: &FileKey) -> Result<OpenFile, ExportError> {
        let mut folder = self.out_dir.join(key.table.name());
        if let Some(dimension) = key.dimension {
            folder.push(format!("dimension={dimension}"));
        }
        if let Some(date) = &key.date {
            folder.push(format!("date={date}"));
        }
        let missing: Vec<PathBuf> = folder
            .ancestors()
            .take_while(|ancestor| !ancestor.as_os_str().is_empty() && !ancestor.exists())
            .map(Path::to_path_buf)
            .collect();
        std::fs::create_dir_all(&folder).map_err(|source| ExportError::Io {
            path: folder.clone(),
            source,
        })?;
        self.created_folders.extend(missing.into_iter().rev());
        let count = self.opened_count.entry(key.clone()).or_insert(0);
        let name = match *count {
            0 => format!("{}.parquet", self.file_stem),
            again => format!("{}-{again}.parquet", self.file_stem),
        };
        *count += 1;
        let final_path = folder.join(&name);
        if final_path.exists() {
            return Err(ExportError::Io {
                path: final_path,
                source: std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "refusing to overwrite an exported file",
                ),
            });
        }
        let temp_path = folder.join(format!(".{name}.partial"));
        let output = File::create(&temp_path).map_err(|source| ExportError::Io {
            path: temp_path.clone(),
            source,
        })?;
        let dimension = key.dimension.unwrap_or(0);
        let schema = key.table.schema(dimension);
        let mut writer =
            ArrowWriter::try_new(output, schema.clone(), Some(self.properties.clone())).map_err(
                |source| ExportError::Parquet {
                    path: temp_path.clone(),
                    source,
                },
            )?;
        writer.append_key_value_metadata(KeyValue::new(
            metadata::TABLE.to_string(),
            key.table.name().to_string(),
        ));
        Ok(OpenFile {
            rows: Rows::new(key.table, dimension),
            writer,
            digest: TableDigest::new(&schema),
            temp_path,
            final_path,
            last_used: self.clock,
        })
    }

    fn close(&mut self, mut file: OpenFile) -> Result<(), ExportError> {
        let table = file.rows.table();
        flush(&mut file)?;
        let rows = file.digest.rows();
        let digest = file.digest.finish();
        file.writer
            .append_key_value_metadata(KeyValue::new(metadata::ROWS.to_string(), rows.to_string()));
        file.writer
            .append_key_value_metadata(KeyValue::new(metadata::DIGEST.to_string(), digest.clone()));
        file.writer.close().map_err(|source| ExportError::Parquet {
            path: file.temp_path.clone(),
            source,
        })?;
        self.finished.push((
            file.temp_path,
            WrittenFile {
                table,
                path: file.final_path,
                rows,
                digest,
            },
        ));
        Ok(())
    }

    /// Closes every file, writes an empty file for each table in `tables` that got no rows
    /// (so a reader's glob and schema work on an empty range too), and gives the files
    /// their final names. Embeddings are the exception: their schema needs a vector width,
    /// which an empty range does not have.
    pub fn finish(mut self, tables: &[Table]) -> Result<Vec<WrittenFile>, ExportError> {
        for table in tables {
            let has_file = self.open.keys().any(|key| key.table == *table)
                || self.finished.iter().any(|(_, file)| file.table == *table);
            if !has_file && *table != Table::Embeddings && self.partition.is_none() {
                let key = FileKey {
                    table: *table,
                    date: None,
                    dimension: None,
                };
                self.file(key)?;
            }
        }
        while let Some((_, file)) = self.open.pop_first() {
            self.close(file)?;
        }
        let mut written = Vec::with_capacity(self.finished.len());
        for (temp_path, file) in std::mem::take(&mut self.finished) {
            std::fs::rename(&temp_path, &file.path).map_err(|source| ExportError::Io {
                path: file.path.clone(),
                source,
            })?;
            written.push(file);
        }
        written.sort_by(|left, right| (left.table, &left.path).cmp(&(right.table, &right.path)));
        Ok(written)
    }

    /// Removes every file of this run, and the folders it created for them: the log did not
    /// check out.
    pub fn abandon(mut self) {
        let temp_paths = self
            .open
            .values()
            .map(|file| file.temp_path.clone())
            .chain(self.finished.iter().map(|(temp, _)| temp.clone()))
            .collect::<Vec<_>>();
        self.open.clear();
        for path in temp_paths {
            // Best effort: a leftover hidden `.partial` file is skipped by readers anyway.
            let _ = std::fs::remove_file(path);
        }
        // Newest first, so a folder is empty by the time its parent is removed; a folder
        // that holds anything else is kept (`remove_dir` refuses it).
        for folder in self.created_folders.iter().rev() {
            let _ = std::fs::remove_dir(folder);
        }
    }
}

fn flush_if_full(file: &mut OpenFile) -> Result<(), ExportError> {
    if file.rows.rows() >= BATCH_ROWS_MAX || file.rows.bytes() >= BATCH_BYTES_MAX {
        flush(file)?;
    }
    Ok(())
}

fn flush(file: &mut OpenFile) -> Result<(), ExportError> {
    if file.rows.rows() == 0 {
        return Ok(());
    }
    let table = file.rows.table();
    let batch = file
        .rows
        .finish()
        .map_err(|source| ExportError::Arrow { table, source })?;
    file.digest.update(&batch)?;
    file.writer
        .write(&batch)
        .map_err(|source| ExportError::Parquet {
            path: file.temp_path.clone(),
            source,
        })
}

/// Whether an event gives `table` any rows.
fn takes(table: Table, payload: &weightlog_schema::Payload) -> bool {
    use weightlog_schema::Payload;
    matches!(
        (table, payload),
        (Table::Events, _)
            | (Table::Challenges, Payload::ChallengeIssued(_))
            | (Table::Responses, Payload::ResponseReceived(_))
            | (Table::Evaluations, Payload::EvaluationRecorded(_))
            | (Table::Embeddings, Payload::EmbeddingComputed(_))
            | (Table::Metagraph, Payload::MetagraphObserved(_))
            | (Table::Weights, Payload::WeightsComputed(_))
            | (Table::Submissions, Payload::WeightsSubmitted(_))
            | (Table::ExternalScores, Payload::ExternalScoreRecorded(_))
            | (Table::GroundTruth, Payload::GroundTruthRevealed(_))
            | (
                Table::Profiles,
                Payload::LogOpened(_) | Payload::ProfileChanged(_)
            )
            | (Table::Environments, Payload::EnvironmentRegistered(_))
    )
}

/// `YYYY-MM-DD` of a Unix time in milliseconds, in UTC (Howard Hinnant's civil-from-days).
pub fn utc_date(timestamp_ms: i64) -> String {
    const DAY_MS: i64 = 86_400_000;
    let days = timestamp_ms.div_euclid(DAY_MS) + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::utc_date;

    #[test]
    fn dates_are_utc_calendar_days() {
        assert_eq!(utc_date(0), "1970-01-01");
        assert_eq!(utc_date(86_399_999), "1970-01-01");
        assert_eq!(utc_date(86_400_000), "1970-01-02");
        assert_eq!(utc_date(951_782_400_000), "2000-02-29");
        assert_eq!(utc_date(1_760_000_000_000), "2025-10-09");
    }
}
