//! A corrupted log is refused with the seq named, and leaves no file behind.

mod common;

use std::path::Path;

use redb::Database;
use weightlog::log::tables::EVENTS;
use weightlog_export::{Compression, ExportError, ExportOptions, Table, export};
use weightlog_schema::encode;
use weightlog_schema::event::EventKind;
use weightlog_schema::samples::sample;

fn options(log: &Path, out_dir: &Path) -> ExportOptions {
    ExportOptions {
        log: log.to_path_buf(),
        out_dir: out_dir.to_path_buf(),
        from: 0,
        to: None,
        tables: Table::ALL.to_vec(),
        partition: None,
        compression: Compression::Zstd,
    }
}

/// Replaces the stored bytes of `seq`, as a validator editing its own file could.
fn overwrite(path: &Path, seq: u64, bytes: &[u8]) {
    let database = Database::open(path).unwrap();
    let transaction = database.begin_write().unwrap();
    transaction
        .open_table(EVENTS)
        .unwrap()
        .insert(seq, bytes)
        .unwrap();
    transaction.commit().unwrap();
}

fn refused_at(log: &Path, out: &Path) -> u64 {
    let out_existed = out.exists();
    match export(&options(log, out), |_, _| {}) {
        Err(ExportError::Corrupt { seq, .. }) => {
            assert!(
                out_existed || !out.exists(),
                "a refused export leaves no folder it created: {:?}",
                std::fs::read_dir(out).map(|entries| entries.count())
            );
            assert!(
                common::files_under(out).is_empty(),
                "a refused export leaves no file"
            );
            let leftovers = walk(out);
            assert!(
                leftovers.is_empty(),
                "temporary files were left: {leftovers:?}"
            );
            seq
        }
        other => panic!("the corrupted log was not refused: {other:?}"),
    }
}

fn walk(folder: &Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return Vec::new();
    };
    entries
        .flat_map(|entry| {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path)
            } else {
                vec![path]
            }
        })
        .collect()
}

#[test]
fn bytes_that_do_not_decode_are_named() {
    let directory = tempfile::tempdir().unwrap();
    let log = directory.path().join("log.redb");
    common::generate(&log, 60, 10);
    overwrite(&log, 23, b"not an event");
    let out = directory.path().join("out");
    assert_eq!(refused_at(&log, &out), 23);
    let message = export(&options(&log, &out), |_, _| {})
        .unwrap_err()
        .to_string();
    assert!(message.starts_with("event 23: "), "{message}");
}

#[test]
fn a_valid_forgery_is_caught_by_the_signed_root_and_named() {
    let directory = tempfile::tempdir().unwrap();
    let log = directory.path().join("log.redb");
    common::generate(&log, 60, 10);
    let forged = encode(&sample(EventKind::EvaluationRecorded, 999_999)).unwrap();
    overwrite(&log, 37, &forged);
    let out = directory.path().join("out");
    assert_eq!(refused_at(&log, &out), 37);
}

#[test]
fn a_forgery_before_an_incremental_range_is_outside_it() {
    // Exporting 40.. reads only the stored tree below 40, whose nodes still hash to the
    // signed root: the exported events are exactly the signed ones.
    let directory = tempfile::tempdir().unwrap();
    let log = directory.path().join("log.redb");
    common::generate(&log, 60, 10);
    let forged = encode(&sample(EventKind::EvaluationRecorded, 999_999)).unwrap();
    overwrite(&log, 13, &forged);
    let out = directory.path().join("out");
    let summary = export(
        &ExportOptions {
            from: 40,
            ..options(&log, &out)
        },
        |_, _| {},
    )
    .unwrap();
    assert_eq!(summary.from, 40);
    // And the range that holds the forgery is refused.
    let out = directory.path().join("out2");
    let error = export(
        &ExportOptions {
            to: Some(20),
            ..options(&log, &out)
        },
        |_, _| {},
    )
    .unwrap_err();
    assert!(
        matches!(error, ExportError::Corrupt { seq: 13, .. }),
        "{error}"
    );
}

#[test]
fn the_command_exits_2_and_names_the_seq() {
    let directory = tempfile::tempdir().unwrap();
    let log = directory.path().join("log.redb");
    common::generate(&log, 30, 10);
    overwrite(&log, 11, b"garbage");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_weightlog-export"))
        .arg(&log)
        .arg(directory.path().join("out"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("event 11: "), "{stderr}");
}
