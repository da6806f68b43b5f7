//! Incremental exports equal a full export of the same range; an empty range writes valid
//! empty files, unless an earlier export already ends there; overlapping ranges are refused.

mod common;

use std::path::Path;

use weightlog_export::{Compression, ExportError, ExportOptions, Table, export, metadata};

fn options(log: &Path, out_dir: &Path, from: u64, to: Option<u64>) -> ExportOptions {
    ExportOptions {
        log: log.to_path_buf(),
        out_dir: out_dir.to_path_buf(),
        from,
        to,
        tables: Table::ALL.to_vec(),
        partition: None,
        compression: Compression::Zstd,
    }
}

#[test]
fn two_incremental_exports_equal_one_full_export() {
    let directory = tempfile::tempdir().unwrap();
    let log = directory.path().join("log.redb");
    common::generate(&log, 400, 9);
    let full = directory.path().join("full");
    export(&options(&log, &full, 0, None), |_, _| {}).unwrap();

    let split = directory.path().join("split");
    // 150 is not a commit boundary (batches of 9 after the genesis), so the first part
    // cites the next checkpoint, and the checkpoints table splits by covered seq.
    let first = export(&options(&log, &split, 0, Some(150)), |_, _| {}).unwrap();
    assert_eq!(first.to, 150);
    assert!(first.checkpoint.checkpoint.size > 150);
    let before: Vec<_> = common::files_under(&split)
        .into_iter()
        .map(|path| (path.clone(), std::fs::read(&path).unwrap()))
        .collect();
    let second = export(&options(&log, &split, 150, None), |_, _| {}).unwrap();
    assert_eq!((second.from, second.to), (150, 401));
    // Old files are left as they were; new files were added beside them.
    for (path, bytes) in &before {
        assert_eq!(
            &std::fs::read(path).unwrap(),
            bytes,
            "{} was rewritten",
            path.display()
        );
    }
    assert!(common::files_under(&split).len() > before.len());

    for table in Table::ALL {
        let whole = common::table_rows(&full, table.name());
        assert!(!whole.is_empty(), "{table}");
        assert_eq!(whole, common::table_rows(&split, table.name()), "{table}");
    }
}

#[test]
fn an_overlapping_range_is_refused() {
    let directory = tempfile::tempdir().unwrap();
    let log = directory.path().join("log.redb");
    common::generate(&log, 50, 10);
    let out = directory.path().join("out");
    export(&options(&log, &out, 0, Some(30)), |_, _| {}).unwrap();
    let files = common::files_under(&out).len();
    let error = export(&options(&log, &out, 20, None), |_, _| {}).unwrap_err();
    assert!(
        matches!(
            error,
            ExportError::Overlap {
                from: 0,
                to: 30,
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(common::files_under(&out).len(), files, "nothing was added");
}

#[test]
fn an_empty_range_writes_valid_empty_files() {
    let directory = tempfile::tempdir().unwrap();
    let log = directory.path().join("log.redb");
    common::generate(&log, 50, 10);
    let out = directory.path().join("out");
    let summary = export(&options(&log, &out, 51, None), |_, _| {}).unwrap();
    assert_eq!((summary.from, summary.to), (51, 51));
    weightlog_export::readback::verify_export(&summary).unwrap();
    for table in Table::ALL {
        let files = common::files_under(&out.join(table.name()));
        if table == Table::Embeddings {
            // Their schema needs a vector width, which an empty range has not got.
            assert!(files.is_empty());
            continue;
        }
        assert_eq!(files.len(), 1, "{table}");
        let (rows, stated, schema) = common::read_parquet(&files[0]);
        assert!(rows.is_empty(), "{table}");
        assert_eq!(schema.field(0).name(), "seq", "{table}");
        assert_eq!(stated[metadata::SEQ_FROM], "51");
        assert_eq!(stated[metadata::SEQ_TO], "51");
        assert_eq!(stated[metadata::LOG_SIZE], "51");
    }
}

#[test]
fn a_range_past_the_log_is_refused() {
    let directory = tempfile::tempdir().unwrap();
    let log = directory.path().join("log.redb");
    common::generate(&log, 10, 10);
    let out = directory.path().join("out");
    let error = export(&options(&log, &out, 0, Some(12)), |_, _| {}).unwrap_err();
    assert!(
        matches!(error, ExportError::Range { size: 11, .. }),
        "{error}"
    );
    let error = export(&options(&log, &out, 5, Some(4)), |_, _| {}).unwrap_err();
    assert!(matches!(error, ExportError::Range { .. }), "{error}");
}

#[test]
fn resume_adds_only_what_the_log_gained() {
    let directory = tempfile::tempdir().unwrap();
    let log = directory.path().join("log.redb");
    common::generate(&log, 40, 10);
    let out = directory.path().join("out");
    let run = |extra: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_weightlog-export"))
            .arg(&log)
            .arg(&out)
            .args(extra)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    assert!(run(&["--resume"]).starts_with("exported seqs 0..41 "));
    // The validator appends more; the next run picks up where the files end.
    let appended = weightlog::log::Log::open(&log, common::validator_key()).unwrap();
    let more: Vec<_> = (40..75).map(common::event).collect();
    appended.append_batch(&more).unwrap();
    appended.close().unwrap();
    assert!(run(&["--resume"]).starts_with("exported seqs 41..76 "));
    // Nothing new: nothing written (not even empty files), and no error, however often.
    let files = common::files_under(&out);
    for _ in 0..2 {
        let summary = run(&["--resume"]);
        assert!(summary.starts_with("exported seqs 76..76 "), "{summary}");
        assert!(summary.contains("into 0 files"), "{summary}");
        assert_eq!(common::files_under(&out), files);
    }

    let full = directory.path().join("full");
    export(&options(&log, &full, 0, None), |_, _| {}).unwrap();
    for table in Table::ALL {
        assert_eq!(
            common::table_rows(&full, table.name()),
            common::table_rows(&out, table.name()),
            "{table}"
        );
    }
}

#[test]
fn a_directory_holding_another_logs_export_is_refused() {
    let directory = tempfile::tempdir().unwrap();
    let first = directory.path().join("first.redb");
    common::generate(&first, 20, 10);
    let second = directory.path().join("second.redb");
    let mut genesis = common::genesis();
    genesis.log_id = weightlog_schema::event::LogId([8; 16]);
    let log = weightlog::log::Log::create(&second, common::validator_key(), genesis).unwrap();
    log.append_batch(&(0..20).map(common::event).collect::<Vec<_>>())
        .unwrap();
    log.close().unwrap();
    let out = directory.path().join("out");
    export(&options(&first, &out, 0, Some(10)), |_, _| {}).unwrap();
    let error = export(&options(&second, &out, 10, None), |_, _| {}).unwrap_err();
    assert!(matches!(error, ExportError::OtherLog { .. }), "{error}");
}
