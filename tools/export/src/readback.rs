//! `--verify`: read every written file back with the Parquet reader and check that it holds
//! exactly the rows built from the log (count and digest) under the right checkpoint.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;

use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::digest::TableDigest;
use crate::error::ExportError;
use crate::export::ExportSummary;
use crate::metadata;
use crate::sink::WrittenFile;
use crate::tables::Table;

/// Rows and digest of one file as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileContents {
    pub rows: u64,
    pub digest: String,
    /// The file's key-value metadata.
    pub metadata: BTreeMap<String, String>,
}

/// Reads a Parquet file and digests its rows the way the export digested them.
pub fn read_file(path: &Path) -> Result<FileContents, ExportError> {
    let parquet_error = |source| ExportError::Parquet {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(|source| ExportError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(parquet_error)?;
    let metadata = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .map(|pairs| {
            pairs
                .iter()
                .map(|pair| (pair.key.clone(), pair.value.clone().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    let mut digest = TableDigest::new(builder.schema());
    for batch in builder.build().map_err(parquet_error)? {
        let batch = batch.map_err(|source| ExportError::Parquet {
            path: path.to_path_buf(),
            source: source.into(),
        })?;
        digest.update(&batch)?;
    }
    Ok(FileContents {
        rows: digest.rows(),
        digest: digest.finish(),
        metadata,
    })
}

/// Per table: rows and a digest over its files' digests, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableCheck {
    pub table: Table,
    pub files: usize,
    pub rows: u64,
    pub digest: String,
}

/// Re-reads every file of `summary` and compares it with what was built from the log.
pub fn verify_export(summary: &ExportSummary) -> Result<Vec<TableCheck>, ExportError> {
    let root = summary.checkpoint.checkpoint.root.to_string();
    let mut tables: BTreeMap<Table, (usize, u64, blake3::Hasher)> = BTreeMap::new();
    for file in &summary.files {
        check_file(file, &root)?;
        let entry = tables
            .entry(file.table)
            .or_insert_with(|| (0, 0, blake3::Hasher::new()));
        entry.0 += 1;
        entry.1 += file.rows;
        entry.2.update(file.digest.as_bytes());
    }
    Ok(tables
        .into_iter()
        .map(|(table, (files, rows, hasher))| TableCheck {
            table,
            files,
            rows,
            digest: hasher.finalize().to_hex().to_string(),
        })
        .collect())
}

fn check_file(file: &WrittenFile, root: &str) -> Result<(), ExportError> {
    let mismatch = |reason: String| ExportError::VerifyMismatch {
        path: file.path.clone(),
        reason,
    };
    let contents = read_file(&file.path)?;
    if contents.rows != file.rows {
        return Err(mismatch(format!(
            "{} rows read back, {} built from the log",
            contents.rows, file.rows
        )));
    }
    if contents.digest != file.digest {
        return Err(mismatch(format!(
            "the rows read back digest to {}, the log's to {}",
            contents.digest, file.digest
        )));
    }
    let stated = |key: &str| contents.metadata.get(key).map(String::as_str);
    if stated(metadata::MERKLE_ROOT) != Some(root) {
        return Err(mismatch(format!(
            "metadata root {:?} is not the checkpoint's {root}",
            stated(metadata::MERKLE_ROOT)
        )));
    }
    if stated(metadata::DIGEST) != Some(file.digest.as_str())
        || stated(metadata::ROWS) != Some(file.rows.to_string().as_str())
    {
        return Err(mismatch(
            "the digest or row count in the metadata differs".into(),
        ));
    }
    if stated(metadata::TABLE) != Some(file.table.name()) {
        return Err(mismatch(format!(
            "metadata names table {:?}",
            stated(metadata::TABLE)
        )));
    }
    Ok(())
}
