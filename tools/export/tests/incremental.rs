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

/// Runs the binary on `log` into `out` with `extra` arguments; its exit status, stdout and
/// stderr.
fn binary(log: &Path, out: &Path, extra: &[&str]) -> (std::process::ExitStatus, String, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_weightlog-export"))
        .arg(log)
        .arg(out)
        .args(extra)
        .output()
        .unwrap();
    (
        output.status,
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

/// `--resume` continues each table from its own end: a table an earlier run left out gets
/// the seqs it missed (QA found them silently skipped), and tables written by date
/// partition, which get no file for a range without rows, are not re-read from seq 0.
#[test]
fn resume_continues_each_table_from_its_own_end() {
    let directory = tempfile::tempdir().unwrap();
    let log = directory.path().join("log.redb");
    common::generate(&log, 60, 10);
    let out = directory.path().join("out");
    let ok = |extra: &[&str]| {
        let (status, stdout, stderr) = binary(&log, &out, extra);
        assert!(status.success(), "{extra:?}: {stderr}");
        stdout
    };
    ok(&["--to", "11"]);
    ok(&["--from", "11", "--to", "31", "--tables", "events"]);
    let resumed = ok(&["--resume"]);
    assert!(resumed.contains("exported seqs 11..61 "), "{resumed}");
    assert!(resumed.contains("exported seqs 31..61 "), "{resumed}");
    let full = directory.path().join("full");
    export(&options(&log, &full, 0, None), |_, _| {}).unwrap();
    for table in Table::ALL {
        assert_eq!(
            common::table_rows(&full, table.name()),
            common::table_rows(&out, table.name()),
            "{table}"
        );
    }
    let files = common::files_under(&out);
    assert!(ok(&["--resume"]).contains("into 0 files"));
    assert_eq!(common::files_under(&out), files);

    // By date: two runs, the second of a range in which some tables have no rows at all.
    let dated = directory.path().join("dated");
    let (status, _, stderr) = binary(&log, &dated, &["--partition", "date", "--to", "3"]);
    assert!(status.success(), "{stderr}");
    let (status, stdout, stderr) = binary(&log, &dated, &["--partition", "date", "--resume"]);
    assert!(status.success(), "{stderr}");
    assert_eq!(stdout.matches("exported seqs").count(), 1, "{stdout}");
    assert!(stdout.starts_with("exported seqs 3..61 "), "{stdout}");
}

/// Flat files beside `date=` folders (or the reverse) break a reader's Hive partitioning,
/// so an export into a directory laid out the other way is refused and writes nothing.
#[test]
fn a_run_laid_out_otherwise_than_the_directory_is_refused() {
    let directory = tempfile::tempdir().unwrap();
    let log = directory.path().join("log.redb");
    common::generate(&log, 40, 10);
    for (first, second) in [(None, Some("date")), (Some("date"), None)] {
        let out = directory.path().join(format!("out-{first:?}"));
        let layout = |partition: Option<&str>, range: &[&'static str]| {
            let mut extra: Vec<&str> = range.to_vec();
            if let Some(partition) = partition {
                extra.extend(["--partition", partition]);
            }
            binary(&log, &out, &extra)
        };
        assert!(layout(first, &["--to", "11"]).0.success());
        let files = common::files_under(&out);
        let (status, _, stderr) = layout(second, &["--resume"]);
        assert_eq!(status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("laid out"), "{stderr}");
        assert_eq!(common::files_under(&out), files);
    }
}

/// Range errors name the bound at fault, and a resume point past `--to` says so.
#[test]
fn range_errors_name_the_bound_at_fault() {
    let directory = tempfile::tempdir().unwrap();
    let log = directory.path().join("log.redb");
    common::generate(&log, 20, 10);
    let out = directory.path().join("out");
    let stderr = |extra: &[&str]| {
        let (status, _, stderr) = binary(&log, &out, extra);
        assert_eq!(status.code(), Some(1), "{extra:?}: {stderr}");
        stderr
    };
    assert!(stderr(&["--from", "22"]).contains("--from 22 is past the log's 21 signed events"));
    assert!(stderr(&["--to", "22"]).contains("--to 22 is past the log's 21 signed events"));
    assert!(stderr(&["--from", "9", "--to", "3"]).contains("--from 9 is after --to 3"));
    assert!(binary(&log, &out, &["--to", "11"]).0.success());
    let message = stderr(&["--resume", "--to", "5"]);
    assert!(message.contains("starts"), "{message}");
    assert!(message.contains("at seq 11"), "{message}");
    assert!(message.contains("past --to 5"), "{message}");
}

/// A reader that closes stdout early (`| head`) does not make the export panic.
#[test]
fn a_closed_stdout_is_not_a_crash() {
    let directory = tempfile::tempdir().unwrap();
    let log = directory.path().join("log.redb");
    common::generate(&log, 40, 10);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_weightlog-export"))
        .arg(&log)
        .arg(directory.path().join("out"))
        .arg("--verify")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{:?}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}
