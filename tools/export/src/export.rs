//! One export run: read the log in seq order, check it against a signed checkpoint while
//! streaming its rows into Parquet files, and keep the files only if it checked out.
//!
//! **Integrity.** The run cites the first signed checkpoint at or after `--to` (by default
//! the newest one). It rebuilds the Merkle frontier of the events before `--from` from the
//! stored tree (O(log n) nodes), then pushes the leaf hash of every event from `--from` up
//! to the checkpoint's size, computed from the bytes it exports. The root must equal the
//! signed root and the signature must verify with the log's signer: that binds every
//! exported row to the signed checkpoint, whatever else is stored (a wrong stored prefix
//! node would change the root too). Bytes that do not decode are refused with their seq at
//! once; bytes that decode but do not hash to the signed root are located by running
//! `weightlog verify`'s full check, which names the first bad seq. The cost is one hash per
//! exported event plus at most one commit's worth past `--to`, not a pass over the whole log.

use std::path::{Path, PathBuf};

use parquet::basic::{Compression as ParquetCompression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use weightlog::log::{LogError, LogReader, verify_log};
use weightlog_schema::merkle::Frontier;
use weightlog_schema::{Hash, SignedCheckpoint, codec, event_id, leaf_hash};

use crate::error::ExportError;
use crate::metadata;
use crate::sink::{Dataset, Partition, WrittenFile};
use crate::tables::{CheckpointRow, EventRow, Table};

/// How column chunks are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Compression {
    /// zstd level 3: the smallest files; every reader named in the README reads it.
    Zstd,
    /// Snappy: faster to write and read, larger files.
    Snappy,
    None,
}

impl Compression {
    fn parquet(self) -> ParquetCompression {
        match self {
            Compression::Zstd => ParquetCompression::ZSTD(ZstdLevel::default()),
            Compression::Snappy => ParquetCompression::SNAPPY,
            Compression::None => ParquetCompression::UNCOMPRESSED,
        }
    }
}

/// What to export and how.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    pub log: PathBuf,
    pub out_dir: PathBuf,
    /// First seq to export.
    pub from: u64,
    /// End of the range (exclusive); the log's signed size when absent.
    pub to: Option<u64>,
    pub tables: Vec<Table>,
    pub partition: Option<Partition>,
    pub compression: Compression,
}

/// What a run wrote, and the checkpoint it was cut from.
#[derive(Debug, Clone)]
pub struct ExportSummary {
    pub from: u64,
    pub to: u64,
    pub checkpoint: SignedCheckpoint,
    pub files: Vec<WrittenFile>,
}

/// redb's page cache for the export's reader. An export reads each page once in seq order,
/// so a larger cache would only hold pages it will not read again (redb's default grows to
/// 1 GiB on a large log).
pub const READ_CACHE_BYTES_MAX: usize = 64 * 1024 * 1024;

/// Exports `options.from..to`. `progress` is called with (events done, events in range).
pub fn export(
    options: &ExportOptions,
    mut progress: impl FnMut(u64, u64),
) -> Result<ExportSummary, ExportError> {
    let reader = LogReader::open_with_cache(&options.log, Some(READ_CACHE_BYTES_MAX))?;
    let meta = reader.meta().clone();
    let snapshot = reader.snapshot()?;
    let newest = snapshot
        .last_checkpoint()?
        .ok_or(ExportError::NoCheckpoint)?;
    let signed_size = newest.checkpoint.size;
    let stored_size = snapshot.size()?;
    if stored_size != signed_size {
        return Err(ExportError::Corrupt {
            seq: signed_size.min(stored_size),
            reason: format!(
                "the log holds {stored_size} events but its newest signed checkpoint covers {signed_size}"
            ),
        });
    }
    let from = options.from;
    let to = options.to.unwrap_or(signed_size);
    if from > to || to > signed_size {
        return Err(ExportError::Range {
            from,
            to,
            size: signed_size,
        });
    }
    let cited = first_checkpoint_from(&snapshot, to)?.ok_or(ExportError::Corrupt {
        seq: to,
        reason: format!("no signed checkpoint covers seq {to} or later"),
    })?;
    let cited_size = cited.checkpoint.size;
    cited
        .verify(&meta.signer)
        .map_err(|error| ExportError::Corrupt {
            seq: cited_size.saturating_sub(1),
            reason: format!("checkpoint at size {cited_size}: {error}"),
        })?;
    if cited.checkpoint.origin != meta.origin {
        return Err(ExportError::Corrupt {
            seq: cited_size.saturating_sub(1),
            reason: format!(
                "checkpoint at size {cited_size} names origin {}, not the log's {}",
                cited.checkpoint.origin, meta.origin
            ),
        });
    }
    if refuse_overlap(options, from, to, &meta.origin)? {
        // An empty range where an earlier export ends (a `--resume` with nothing new):
        // there is nothing to add, and empty files would only clutter the folders.
        return Ok(ExportSummary {
            from,
            to,
            checkpoint: cited,
            files: Vec::new(),
        });
    }

    let key_values = vec![
        KeyValue::new(metadata::ORIGIN.into(), meta.origin.clone()),
        KeyValue::new(metadata::SIGNER.into(), meta.signer.to_ss58()),
        KeyValue::new(metadata::SEQ_FROM.into(), from.to_string()),
        KeyValue::new(metadata::SEQ_TO.into(), to.to_string()),
        KeyValue::new(metadata::LOG_SIZE.into(), cited_size.to_string()),
        KeyValue::new(
            metadata::MERKLE_ROOT.into(),
            cited.checkpoint.root.to_string(),
        ),
        KeyValue::new(metadata::CHECKPOINT.into(), cited.to_text()),
        KeyValue::new(
            metadata::SCHEMA_VERSION.into(),
            meta.schema_version.to_string(),
        ),
        KeyValue::new(
            metadata::EXPORT_FORMAT.into(),
            metadata::EXPORT_FORMAT_VERSION.to_string(),
        ),
    ];
    let properties = WriterProperties::builder()
        .set_compression(options.compression.parquet())
        .set_key_value_metadata(Some(key_values));
    let mut dataset = Dataset::new(&options.out_dir, from, to, properties, options.partition);

    let mut frontier = Frontier::from_source(&snapshot.stored_tree()?, from)?;
    let event_tables: Vec<Table> = options
        .tables
        .iter()
        .copied()
        .filter(|table| *table != Table::Checkpoints)
        .collect();
    let checkpoints_wanted = options.tables.contains(&Table::Checkpoints);
    // `for_each_raw` stops on a `LogError`; the export's own error waits here meanwhile.
    let mut failure: Option<ExportError> = None;
    let total = to - from;
    let streamed = snapshot.for_each_raw(from, cited_size, |seq, bytes| {
        let mut step = || -> Result<(), ExportError> {
            if seq != frontier.size() {
                return Err(ExportError::Corrupt {
                    seq: frontier.size(),
                    reason: format!(
                        "missing: the log jumps from seq {} to seq {seq}",
                        frontier.size().wrapping_sub(1)
                    ),
                });
            }
            frontier.push(leaf_hash(bytes));
            if seq >= to {
                return Ok(());
            }
            let event = codec::decode(bytes).map_err(|error| ExportError::Corrupt {
                seq,
                reason: format!("stored bytes are invalid: {error}"),
            })?;
            let timestamp_ms =
                i64::try_from(event.timestamp_ms).map_err(|_| ExportError::Unrepresentable {
                    seq,
                    reason: format!(
                        "timestamp {} ms is past what Parquet timestamps hold",
                        event.timestamp_ms
                    ),
                })?;
            let id: Hash = event_id(bytes);
            let row = EventRow {
                seq,
                timestamp_ms,
                id: &id,
                // The codec caps events at EVENT_BYTES_MAX (1 MiB), far below u32::MAX.
                size_bytes: bytes.len() as u32,
                event: &event,
            };
            for table in &event_tables {
                dataset.append_event(*table, &row)?;
            }
            if checkpoints_wanted && let Some(checkpoint) = snapshot.checkpoint_at(seq + 1)? {
                dataset.append_checkpoint(&CheckpointRow {
                    timestamp_ms,
                    checkpoint: &checkpoint,
                })?;
            }
            progress(seq + 1 - from, total);
            Ok(())
        };
        step().map_err(|error| {
            let seq_named = match &error {
                ExportError::Corrupt { seq, .. } => *seq,
                _ => seq,
            };
            failure = Some(error);
            LogError::Corrupt {
                seq: seq_named,
                reason: "export stopped".into(),
            }
        })
    });
    let checked = match (streamed, failure) {
        (_, Some(error)) => Err(error),
        (Err(error), None) => Err(error.into()),
        (Ok(()), None) => check_root(&reader, &frontier, &cited),
    };
    if let Err(error) = checked {
        dataset.abandon();
        return Err(error);
    }
    let files = dataset.finish(&options.tables)?;
    record_run(&options.out_dir, from, to, &options.tables)?;
    Ok(ExportSummary {
        from,
        to,
        checkpoint: cited,
        files,
    })
}

/// The folder under the output directory where each run notes the tables it exported.
/// Hidden from dataset readers: its name starts with `_`, as Spark's and Hive's conventions
/// ask, and it holds no `*.parquet` file.
pub const RUNS_FOLDER: &str = "_runs";

/// Notes that the run `from..to` exported `tables`, in `RUNS_FOLDER/part-FROM-TO[-N].tables`
/// (one table name per line), so that `--resume` knows where each table ends even when a
/// run wrote it no file: a date-partitioned or embeddings table with no rows in the range.
/// An empty run moves no table's end, so it notes nothing.
fn record_run(out_dir: &Path, from: u64, to: u64, tables: &[Table]) -> Result<(), ExportError> {
    if from == to {
        return Ok(());
    }
    let folder = out_dir.join(RUNS_FOLDER);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ExportError::Io { path, source }
    };
    std::fs::create_dir_all(&folder).map_err(io(&folder))?;
    let names: String = tables.iter().map(|table| format!("{table}\n")).collect();
    let temp = folder.join(format!(".part-{from}-{to}.tables.partial"));
    std::fs::write(&temp, names).map_err(io(&temp))?;
    let mut again = 0;
    loop {
        let name = match again {
            0 => format!("part-{from}-{to}.tables"),
            _ => format!("part-{from}-{to}-{again}.tables"),
        };
        let path = folder.join(name);
        if !path.exists() {
            return std::fs::rename(&temp, &path).map_err(io(&path));
        }
        again += 1;
    }
}

/// The first stored checkpoint of size `size` or more. One is stored per commit, so this
/// looks at most one commit's worth of sizes (`APPEND_BATCH_EVENTS_MAX`) past `size`.
fn first_checkpoint_from(
    snapshot: &weightlog::log::reader::Snapshot,
    size: u64,
) -> Result<Option<SignedCheckpoint>, ExportError> {
    let stored_size = snapshot.size()?;
    for candidate in size.max(1)..=stored_size {
        if let Some(checkpoint) = snapshot.checkpoint_at(candidate)? {
            return Ok(Some(checkpoint));
        }
    }
    Ok(None)
}

/// The frontier of the streamed events must give the cited checkpoint's size and root.
fn check_root(
    reader: &LogReader,
    frontier: &Frontier,
    cited: &SignedCheckpoint,
) -> Result<(), ExportError> {
    let size = cited.checkpoint.size;
    if frontier.size() != size {
        return Err(ExportError::Corrupt {
            seq: frontier.size(),
            reason: format!(
                "missing: the checkpoint covers {size} events but the log stops at seq {}",
                frontier.size()
            ),
        });
    }
    let root = frontier.root();
    if root == cited.checkpoint.root {
        return Ok(());
    }
    // The exported bytes do not give the signed root. Only the full check can say which
    // event was changed; it is slow, but only a corrupted log gets here.
    let report = verify_log(reader, |_| {})?;
    match report.problem {
        Some(problem) => Err(ExportError::Corrupt {
            seq: problem.seq,
            reason: problem.reason,
        }),
        None => Err(ExportError::Corrupt {
            seq: size.saturating_sub(1),
            reason: format!(
                "the signed root at size {size} is {} but the events give {root}",
                cited.checkpoint.root
            ),
        }),
    }
}

/// Refuses a range that overlaps a file already exported for one of the tables, so an
/// incremental export never counts an event twice; a directory that holds another log's
/// export (checked on one file per table: a directory is one log's export); and files laid
/// out otherwise than this run's (flat beside `date=` folders, or the reverse), which a
/// reader's Hive partitioning cannot combine. File names carry their run's range
/// (`part-FROM-TO.parquet`, see `sink.rs`). Returns whether this range is empty and an
/// earlier export already ends where it is, so nothing is new.
fn refuse_overlap(
    options: &ExportOptions,
    from: u64,
    to: u64,
    origin: &str,
) -> Result<bool, ExportError> {
    let mut nothing_new = false;
    for table in &options.tables {
        let folder = options.out_dir.join(table.name());
        let existing = parquet_files(&folder)?;
        if let Some(path) = existing.first() {
            let found = stated_origin(path)?;
            if found != origin {
                return Err(ExportError::OtherLog {
                    path: path.clone(),
                    found,
                    expected: origin.to_string(),
                });
            }
        }
        let wanted = options.partition.is_some();
        if let Some(path) = existing
            .iter()
            .find(|path| date_partitioned(&folder, path) != wanted)
        {
            let layout = |dated: bool| if dated { "in date= folders" } else { "flat" };
            return Err(ExportError::Layout {
                path: path.clone(),
                found: layout(!wanted),
                wanted: layout(wanted),
            });
        }
        for path in existing {
            let Some((file_from, file_to)) = range_of(&path) else {
                continue;
            };
            if file_from < to && from < file_to {
                return Err(ExportError::Overlap {
                    path,
                    from: file_from,
                    to: file_to,
                });
            }
            nothing_new |= from == to && file_to == to;
        }
    }
    Ok(nothing_new)
}

/// Whether `path`, a file under the table folder `folder`, lies in a `date=` partition.
fn date_partitioned(folder: &Path, path: &Path) -> bool {
    path.strip_prefix(folder).is_ok_and(|relative| {
        relative
            .components()
            .any(|component| component.as_os_str().to_string_lossy().starts_with("date="))
    })
}

/// The origin a file's metadata states (empty when it states none), read from its footer.
fn stated_origin(path: &Path) -> Result<String, ExportError> {
    use parquet::file::reader::FileReader;
    let file = std::fs::File::open(path).map_err(|source| ExportError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let reader =
        parquet::file::serialized_reader::SerializedFileReader::new(file).map_err(|source| {
            ExportError::Parquet {
                path: path.to_path_buf(),
                source,
            }
        })?;
    Ok(reader
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .and_then(|pairs| {
            pairs
                .iter()
                .find(|pair| pair.key == metadata::ORIGIN)
                .and_then(|pair| pair.value.clone())
        })
        .unwrap_or_default())
}

/// Where the previous exports in `out_dir` end, for each of `tables`: the largest `TO` of
/// the runs that exported it ([`RUNS_FOLDER`]) and of its files' names; 0 for a table never
/// exported. `--resume` continues each table from its own end, so a table an earlier run
/// left out (or one that is new to the directory) is not left with a gap.
pub fn exported_ends(out_dir: &Path, tables: &[Table]) -> Result<Vec<(Table, u64)>, ExportError> {
    let mut runs: Vec<((u64, u64), Vec<String>)> = Vec::new();
    let folder = out_dir.join(RUNS_FOLDER);
    match std::fs::read_dir(&folder) {
        Ok(entries) => {
            for entry in entries {
                let path = entry
                    .map_err(|source| ExportError::Io {
                        path: folder.clone(),
                        source,
                    })?
                    .path();
                let Some(range) = path
                    .file_name()
                    .and_then(|name| name.to_str())
                    .and_then(|name| name.strip_suffix(".tables"))
                    .and_then(|stem| range_of(Path::new(&format!("{stem}.parquet"))))
                else {
                    continue;
                };
                let text = std::fs::read_to_string(&path)
                    .map_err(|source| ExportError::Io { path, source })?;
                runs.push((range, text.lines().map(str::to_string).collect()));
            }
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(ExportError::Io {
                path: folder,
                source,
            });
        }
    }
    let mut ends = Vec::with_capacity(tables.len());
    for table in tables {
        let mut end = 0;
        for path in parquet_files(&out_dir.join(table.name()))? {
            if let Some((_, to)) = range_of(&path) {
                end = end.max(to);
            }
        }
        for ((_, to), names) in &runs {
            if names.iter().any(|name| name == table.name()) {
                end = end.max(*to);
            }
        }
        ends.push((*table, end));
    }
    Ok(ends)
}

/// The seq range in an exported file's name: `part-FROM-TO[-N].parquet`.
pub fn range_of(path: &Path) -> Option<(u64, u64)> {
    let name = path.file_name()?.to_str()?;
    let stem = name.strip_prefix("part-")?.strip_suffix(".parquet")?;
    let mut parts = stem.split('-');
    let from = parts.next()?.parse().ok()?;
    let to = parts.next()?.parse().ok()?;
    Some((from, to))
}

/// Every `*.parquet` file under `folder`, recursively (partitions), sorted; none when the
/// folder does not exist.
pub fn parquet_files(folder: &Path) -> Result<Vec<PathBuf>, ExportError> {
    let mut found = Vec::new();
    let mut pending = vec![folder.to_path_buf()];
    while let Some(folder) = pending.pop() {
        let entries = match std::fs::read_dir(&folder) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => {
                return Err(ExportError::Io {
                    path: folder,
                    source,
                });
            }
        };
        for entry in entries {
            let entry = entry.map_err(|source| ExportError::Io {
                path: folder.clone(),
                source,
            })?;
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path
                .extension()
                .is_some_and(|extension| extension == "parquet")
                && !entry.file_name().to_string_lossy().starts_with('.')
            {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}
