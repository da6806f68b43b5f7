//! Tampering: history rewritten in place through redb (as a validator could do to its own
//! file) is found by `verify`, which names the seq; removed events likewise; nothing panics.

mod common;

use std::path::Path;

use common::tamper::{rebuild_everything, with_table};
use redb::ReadableTable;
use weightlog::log::tables::{CHECKPOINTS, EVENTS};
use weightlog::log::{Log, LogError, LogReader, VerifyReport, verify_log};
use weightlog_schema::event::EventKind;
use weightlog_schema::samples::sample;
use weightlog_schema::{SignedCheckpoint, encode};

/// A log of 1 + `events` events; `commit_size` events per commit.
fn build(path: &Path, events: u64, commit_size: usize) {
    let log = common::new_log(path);
    for chunk in common::workload(0, events).chunks(commit_size) {
        log.append_batch(chunk).unwrap();
    }
    log.close().unwrap();
}

fn verify(path: &Path) -> VerifyReport {
    verify_log(&LogReader::open(path).unwrap(), |_| {}).unwrap()
}

fn problem_seq(report: &VerifyReport) -> u64 {
    report
        .problem
        .as_ref()
        .expect("tampering was not found")
        .seq
}

/// Another valid event, encoded: what a validator would write instead of the original.
fn forged_bytes() -> Vec<u8> {
    encode(&sample(EventKind::EvaluationRecorded, 999_999)).unwrap()
}

#[test]
fn an_event_rewritten_in_place_is_named() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("log.redb");
    build(&path, 40, 5);
    assert!(verify(&path).is_ok());
    with_table(&path, |transaction| {
        let mut events = transaction.open_table(EVENTS).unwrap();
        events.insert(17, forged_bytes().as_slice()).unwrap();
    });
    let report = verify(&path);
    assert_eq!(problem_seq(&report), 17);
    let reason = &report.problem.as_ref().unwrap().reason;
    assert!(reason.contains("leaf hash does not match"), "{reason}");
    assert_eq!(
        report.events_checked, 17,
        "the events before it were checked"
    );
}

#[test]
fn a_careful_forgery_is_caught_by_the_signed_checkpoint() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("log.redb");
    // One event per commit, so every seq has its own signed checkpoint.
    build(&path, 30, 1);
    with_table(&path, |transaction| {
        let mut events = transaction.open_table(EVENTS).unwrap();
        events.insert(17, forged_bytes().as_slice()).unwrap();
    });
    rebuild_everything(&path, None);
    let report = verify(&path);
    assert_eq!(problem_seq(&report), 17, "{:?}", report.problem);
    let reason = &report.problem.as_ref().unwrap().reason;
    assert!(reason.contains("checkpoint at size 18"), "{reason}");
    // Opening the log for writing refuses it too: the last checkpoint's root is wrong.
    match Log::open(&path, common::validator_key()) {
        Err(LogError::OpenCheck { reason }) => assert!(reason.contains("root"), "{reason}"),
        other => panic!("expected OpenCheck, got {:?}", other.err()),
    }
}

#[test]
fn a_resigned_history_is_caught_by_an_auditors_old_checkpoint() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("log.redb");
    build(&path, 30, 3);
    // An auditor kept the checkpoint for 16 events.
    let held = LogReader::open(&path)
        .unwrap()
        .snapshot()
        .unwrap()
        .checkpoint_at(16)
        .unwrap()
        .unwrap();
    // The validator rewrites seq 10 and re-signs everything with its own key: the file is
    // internally consistent again...
    with_table(&path, |transaction| {
        let mut events = transaction.open_table(EVENTS).unwrap();
        events.insert(10, forged_bytes().as_slice()).unwrap();
    });
    rebuild_everything(&path, Some(&common::validator_key()));
    assert!(verify(&path).is_ok());
    // ...but it no longer extends what the auditor holds.
    let reader = LogReader::open(&path).unwrap();
    let snapshot = reader.snapshot().unwrap();
    let size = snapshot.size().unwrap();
    let bundle = snapshot.consistency_bundle(16, size).unwrap();
    let error = bundle
        .verify(&reader.meta().signer, Some(&held))
        .unwrap_err();
    assert!(error.to_string().contains("rewritten"), "{error}");
}

#[test]
fn a_removed_event_is_named() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("log.redb");
    build(&path, 40, 4);
    with_table(&path, |transaction| {
        let mut events = transaction.open_table(EVENTS).unwrap();
        events.remove(23).unwrap();
    });
    let report = verify(&path);
    assert_eq!(problem_seq(&report), 23);
    assert!(report.problem.unwrap().reason.contains("missing"));
}

#[test]
fn removed_events_at_the_end_are_named() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("log.redb");
    build(&path, 20, 4);
    with_table(&path, |transaction| {
        let mut events = transaction.open_table(EVENTS).unwrap();
        events.remove(20).unwrap();
        events.remove(19).unwrap();
    });
    let report = verify(&path);
    assert_eq!(problem_seq(&report), 19);
    assert!(report.problem.unwrap().reason.contains("removed"));
    assert!(Log::open(&path, common::validator_key()).is_err());
}

#[test]
fn garbage_bytes_are_named_without_a_panic() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("log.redb");
    build(&path, 12, 3);
    for (seq, bytes) in [
        (5u64, vec![0xffu8; 40]),
        (6, vec![]),
        (7, forged_bytes()[..20].to_vec()),
    ] {
        with_table(&path, |transaction| {
            let mut events = transaction.open_table(EVENTS).unwrap();
            events.insert(seq, bytes.as_slice()).unwrap();
        });
    }
    let report = verify(&path);
    assert_eq!(problem_seq(&report), 5);
    assert!(report.problem.unwrap().reason.contains("invalid"));
    // Readers name the seq too.
    let reader = LogReader::open(&path).unwrap();
    match reader.snapshot().unwrap().range(0, 13) {
        Err(LogError::Corrupt { seq: 5, .. }) => {}
        other => panic!("expected Corrupt at 5, got {other:?}"),
    }
}

#[test]
fn a_forged_checkpoint_signature_is_named() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("log.redb");
    build(&path, 9, 3);
    // A checkpoint re-signed by another key (someone without the validator's key).
    with_table(&path, |transaction| {
        let mut checkpoints = transaction.open_table(CHECKPOINTS).unwrap();
        let text = checkpoints.get(7).unwrap().unwrap().value().to_string();
        let old = SignedCheckpoint::parse(&text).unwrap();
        let intruder = weightlog::keys::Hotkey::from_seed(&[3; 32]);
        let forged = old
            .checkpoint
            .sign(intruder.public(), |message| intruder.sign(message));
        checkpoints.insert(7, forged.to_text().as_str()).unwrap();
    });
    let report = verify(&path);
    let problem = report.problem.unwrap();
    assert!(
        problem.reason.contains("checkpoint at size 7"),
        "{}",
        problem.reason
    );
    assert!(problem.reason.contains("signed by"), "{}", problem.reason);
    assert_eq!(
        problem.seq, 4,
        "first seq of the commit the checkpoint covers"
    );
}
