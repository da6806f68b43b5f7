//! The log on redb: appends, idempotence, atomic batches, readers and indexes, tail, reopen,
//! concurrent writers, proofs cut from the stored tree.

mod common;

use std::time::Duration;

use common::{new_log, validator_key, workload};
use weightlog::keys::Hotkey;
use weightlog::log::{Log, LogError, LogReader, verify_log};
use weightlog_schema::bundle::{ProofBundle, Verified};
use weightlog_schema::event::EventKind;
use weightlog_schema::merkle::{self, MerkleTree};
use weightlog_schema::samples::sample;
use weightlog_schema::{Payload, leaf_hash};

#[test]
fn appends_get_dense_seqs_and_read_back() {
    let directory = tempfile::tempdir().unwrap();
    let log = new_log(&directory.path().join("log.redb"));
    let events = workload(0, 25);
    let first = log.append(&events[0]).unwrap();
    assert_eq!(first, 1, "seq 0 is the genesis");
    let rest = log.append_batch(&events[1..]).unwrap();
    assert_eq!(rest, (2..26).collect::<Vec<u64>>());

    let snapshot = log.reader().snapshot().unwrap();
    assert_eq!(snapshot.size().unwrap(), 26);
    assert_eq!(snapshot.event(0).unwrap().kind(), EventKind::LogOpened);
    let read: Vec<_> = snapshot
        .range(1, 26)
        .unwrap()
        .into_iter()
        .map(|(_, e)| e)
        .collect();
    assert_eq!(read, events);
    assert_eq!(snapshot.range(5, 3).unwrap().len(), 0);
    assert!(matches!(
        snapshot.event(26),
        Err(LogError::NoSuchSeq { seq: 26, size: 26 })
    ));

    // Counts by kind include the genesis.
    let counts = snapshot.kind_counts().unwrap();
    assert_eq!(counts.iter().map(|(_, count)| count).sum::<u64>(), 26);
    assert_eq!(counts[0], (EventKind::LogOpened, 1));

    // One checkpoint per commit: genesis, the single append, the batch.
    assert_eq!(snapshot.checkpoint_texts().unwrap().len(), 3);
    let last = snapshot.last_checkpoint().unwrap().unwrap();
    assert_eq!(last.checkpoint.size, 26);
    last.verify(&log.meta().signer).unwrap();
    let root = merkle::root(&snapshot.stored_tree().unwrap(), 26).unwrap();
    assert_eq!(last.checkpoint.root, root);
}

#[test]
fn indexes_find_events_by_challenge_and_by_uid() {
    let directory = tempfile::tempdir().unwrap();
    let log = new_log(&directory.path().join("log.redb"));
    let events = workload(100, 60);
    let seqs = log.append_batch(&events).unwrap();
    let snapshot = log.reader().snapshot().unwrap();
    for (event, seq) in events.iter().zip(&seqs) {
        if let Some(challenge_id) = event.payload.challenge_id() {
            let found = snapshot.seqs_by_challenge(challenge_id).unwrap();
            assert!(found.contains(seq));
            for other in &found {
                assert_eq!(
                    snapshot.event(*other).unwrap().payload.challenge_id(),
                    Some(challenge_id)
                );
            }
        }
        for uid in event.payload.uids() {
            let found = snapshot.seqs_by_uid(uid).unwrap();
            assert!(found.contains(seq), "uid {uid} -> seq {seq}");
            assert!(found.windows(2).all(|pair| pair[0] < pair[1]));
        }
    }
    assert!(
        snapshot
            .seqs_by_challenge("no-such-challenge")
            .unwrap()
            .is_empty()
    );
}

#[test]
fn appends_are_idempotent() {
    let directory = tempfile::tempdir().unwrap();
    let log = new_log(&directory.path().join("log.redb"));
    let events = workload(0, 5);
    let seqs = log.append_batch(&events).unwrap();
    let root_before = log
        .reader()
        .snapshot()
        .unwrap()
        .last_checkpoint()
        .unwrap()
        .unwrap();
    // The same events again: the same seqs, nothing new, no new checkpoint.
    assert_eq!(log.append_batch(&events).unwrap(), seqs);
    assert_eq!(log.append(&events[2]).unwrap(), seqs[2]);
    let snapshot = log.reader().snapshot().unwrap();
    assert_eq!(snapshot.size().unwrap(), 6);
    assert_eq!(snapshot.last_checkpoint().unwrap().unwrap(), root_before);
    // A duplicate inside one batch gets the seq of its first copy.
    let fresh = workload(50, 2);
    let batch = vec![fresh[0].clone(), fresh[1].clone(), fresh[0].clone()];
    assert_eq!(log.append_batch(&batch).unwrap(), vec![6, 7, 6]);
    assert_eq!(log.reader().size().unwrap(), 8);
}

#[test]
fn a_bad_event_rejects_the_whole_batch() {
    let directory = tempfile::tempdir().unwrap();
    let log = new_log(&directory.path().join("log.redb"));
    log.append_batch(&workload(0, 3)).unwrap();
    let before = log.reader().snapshot().unwrap().last_checkpoint().unwrap();

    // Seeds 12..16 give kinds Embedding, Evaluation, External, Challenge: index 1 is bad.
    let mut batch = workload(12, 4);
    if let Payload::EvaluationRecorded(evaluation) = &mut batch[1].payload {
        evaluation.score = f64::INFINITY;
    } else {
        panic!("workload order changed");
    }
    match log.append_batch(&batch) {
        Err(LogError::BadEvent { index: 1, source }) => {
            assert!(source.to_string().contains("finite"), "{source}")
        }
        other => panic!("expected BadEvent at index 1, got {other:?}"),
    }
    let mut oversized = sample(EventKind::ChallengeIssued, 1);
    if let Payload::ChallengeIssued(challenge) = &mut oversized.payload {
        challenge.prompt = "y".repeat(weightlog_schema::EVENT_BYTES_MAX + 1);
    }
    assert!(matches!(
        log.append_batch(&[batch[0].clone(), oversized]),
        Err(LogError::BadEvent { index: 1, .. })
    ));
    let snapshot = log.reader().snapshot().unwrap();
    assert_eq!(
        snapshot.size().unwrap(),
        4,
        "nothing of the bad batches was stored"
    );
    assert_eq!(snapshot.last_checkpoint().unwrap(), before);
    assert!(log.append_batch(&[]).unwrap().is_empty());
}

#[test]
fn reopen_continues_the_same_log() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("log.redb");
    let log = new_log(&path);
    log.append_batch(&workload(0, 10)).unwrap();
    let checkpoint = log
        .reader()
        .snapshot()
        .unwrap()
        .last_checkpoint()
        .unwrap()
        .unwrap();
    log.close().unwrap();

    let log = Log::open(&path, validator_key()).unwrap();
    let reopened = log
        .reader()
        .snapshot()
        .unwrap()
        .last_checkpoint()
        .unwrap()
        .unwrap();
    assert_eq!(reopened, checkpoint);
    assert_eq!(log.append(&workload(10, 1)[0]).unwrap(), 11);
    // Idempotence survives a reopen.
    assert_eq!(log.append(&workload(3, 1)[0]).unwrap(), 4);
    log.close().unwrap();

    let reader = LogReader::open(&path).unwrap();
    let report = verify_log(&reader, |_| {}).unwrap();
    assert!(report.is_ok(), "{:?}", report.problem);
    assert_eq!(report.events_checked, 12);
}

#[test]
fn only_the_signer_may_append_and_only_to_a_log() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("log.redb");
    new_log(&path).close().unwrap();
    match Log::open(&path, Hotkey::from_seed(&[2; 32])) {
        Err(LogError::WrongSigner { expected, found }) => {
            assert_eq!(expected, validator_key().ss58());
            assert_eq!(found, Hotkey::from_seed(&[2; 32]).ss58());
        }
        other => panic!("expected WrongSigner, got {:?}", other.err()),
    }
    assert!(matches!(
        Log::create(&path, validator_key(), common::genesis()),
        Err(LogError::AlreadyExists { .. })
    ));
    let missing = directory.path().join("missing.redb");
    assert!(matches!(
        LogReader::open(&missing),
        Err(LogError::Missing { .. })
    ));
    assert!(
        !missing.exists(),
        "opening a missing log must not create it"
    );

    let garbage = directory.path().join("garbage.redb");
    std::fs::write(&garbage, vec![0x5a; 10_000]).unwrap();
    assert!(matches!(
        LogReader::open(&garbage),
        Err(LogError::NotALog { .. })
    ));
    assert!(Log::open(&garbage, validator_key()).is_err());
}

#[test]
fn concurrent_writers_get_unique_dense_seqs() {
    let directory = tempfile::tempdir().unwrap();
    let log = new_log(&directory.path().join("log.redb"));
    let threads = 4u64;
    let per_thread = 150u64;
    let mut all: Vec<u64> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|thread| {
                let log = &log;
                scope.spawn(move || {
                    workload(thread * 10_000, per_thread)
                        .iter()
                        .map(|event| log.append(event).unwrap())
                        .collect::<Vec<u64>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|handle| handle.join().unwrap())
            .collect()
    });
    all.sort_unstable();
    assert_eq!(all, (1..=threads * per_thread).collect::<Vec<u64>>());
    let report = verify_log(log.reader(), |_| {}).unwrap();
    assert!(report.is_ok(), "{:?}", report.problem);
    assert!(report.checkpoints_checked <= threads * per_thread + 1);
}

#[test]
fn tail_wakes_on_new_commits() {
    let directory = tempfile::tempdir().unwrap();
    let log = new_log(&directory.path().join("log.redb"));
    let events = workload(0, 30);
    let mut tail = log.reader().tail(1);
    assert!(
        tail.next_timeout(Duration::from_millis(20))
            .unwrap()
            .is_none()
    );
    std::thread::scope(|scope| {
        let reader = scope.spawn(move || {
            let mut seen = Vec::new();
            while seen.len() < 30 {
                if let Some((seq, event)) = tail.next_timeout(Duration::from_secs(10)).unwrap() {
                    seen.push((seq, event));
                } else {
                    panic!("tail timed out after {} events", seen.len());
                }
            }
            seen
        });
        for chunk in events.chunks(7) {
            log.append_batch(chunk).unwrap();
            std::thread::sleep(Duration::from_millis(5));
        }
        let seen = reader.join().unwrap();
        let seqs: Vec<u64> = seen.iter().map(|(seq, _)| *seq).collect();
        assert_eq!(seqs, (1..=30).collect::<Vec<u64>>());
        let tailed: Vec<_> = seen.into_iter().map(|(_, event)| event).collect();
        assert_eq!(tailed, events);
    });
}

#[test]
fn proofs_from_the_stored_tree_verify() {
    let directory = tempfile::tempdir().unwrap();
    let log = new_log(&directory.path().join("log.redb"));
    for chunk in workload(0, 40).chunks(6) {
        log.append_batch(chunk).unwrap();
    }
    let snapshot = log.reader().snapshot().unwrap();
    let size = snapshot.size().unwrap();
    let signer = log.meta().signer;

    // The stored tree agrees with an in-memory tree built from the event bytes.
    let mut tree = MerkleTree::new();
    for seq in 0..size {
        tree.push(leaf_hash(&snapshot.event_bytes(seq).unwrap()));
    }
    let stored = snapshot.stored_tree().unwrap();
    for prefix in 0..=size {
        assert_eq!(merkle::root(&stored, prefix).unwrap(), tree.root_at(prefix));
    }

    for seq in 0..size {
        let bundle = snapshot.inclusion_bundle(seq, None).unwrap();
        match bundle.verify(&signer, None).unwrap() {
            Verified::Inclusion {
                seq: proven,
                size: proven_size,
                ..
            } => {
                assert_eq!((proven, proven_size), (seq, size))
            }
            other => panic!("{other:?}"),
        }
        // A proof cut for another event's bytes does not verify.
        if let ProofBundle::Inclusion {
            event_hex,
            event,
            proof,
            checkpoint,
        } = bundle
        {
            let other = (seq + 1) % size;
            let forged = ProofBundle::Inclusion {
                event_hex: hex::encode(snapshot.event_bytes(other).unwrap()),
                event: snapshot.event(other).unwrap(),
                proof,
                checkpoint: checkpoint.clone(),
            };
            assert!(forged.verify(&signer, None).is_err());
            drop((event_hex, event));
        }
    }
    // Every pair of checkpointed sizes is consistent.
    let sizes: Vec<u64> = snapshot
        .checkpoint_texts()
        .unwrap()
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    for (i, old) in sizes.iter().enumerate() {
        for new in &sizes[i..] {
            let bundle = snapshot.consistency_bundle(*old, *new).unwrap();
            assert!(bundle.verify(&signer, None).is_ok(), "{old} -> {new}");
        }
    }
    // A size without a checkpoint is refused with a helpful error.
    let error = snapshot
        .inclusion_bundle(1, Some(3))
        .unwrap_err()
        .to_string();
    assert!(error.contains("no signed checkpoint for size 3"), "{error}");
    // Another signer's key does not verify these proofs.
    let other = Hotkey::from_seed(&[9; 32]).public();
    assert!(
        snapshot
            .inclusion_bundle(0, None)
            .unwrap()
            .verify(&other, None)
            .is_err()
    );
}

#[test]
fn a_log_held_by_a_writer_is_reported_busy() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("log.redb");
    let log = new_log(&path);
    match LogReader::open(&path) {
        Err(LogError::Busy { path: busy }) => assert_eq!(busy, path),
        other => panic!("expected Busy, got {:?}", other.err()),
    }
    assert!(matches!(
        Log::open(&path, validator_key()),
        Err(LogError::Busy { .. })
    ));
    log.close().unwrap();
    assert!(LogReader::open(&path).is_ok());
}

#[test]
fn only_init_writes_log_opened_and_profiles_have_names() {
    let directory = tempfile::tempdir().unwrap();
    let log = new_log(&directory.path().join("log.redb"));
    let batch = vec![workload(0, 1).remove(0), sample(EventKind::LogOpened, 1)];
    assert!(matches!(
        log.append_batch(&batch),
        Err(LogError::BadEvent { index: 1, .. })
    ));
    let mut nameless = sample(EventKind::ProfileChanged, 1);
    if let Payload::ProfileChanged(changed) = &mut nameless.payload {
        changed.profile = " ".into();
    }
    let error = log.append(&nameless).unwrap_err().to_string();
    assert!(error.contains("profile name is empty"), "{error}");
    assert_eq!(log.reader().size().unwrap(), 1);
    let missing_directory = directory.path().join("no/such/dir/log.redb");
    let error = Log::create(&missing_directory, validator_key(), common::genesis())
        .err()
        .unwrap();
    assert!(error.to_string().contains("no/such/dir"), "{error}");
}

#[test]
fn projection_checkpoints_are_stored_and_read_back() {
    use weightlog_replay::projection::omega::OmegaTwoPool;
    use weightlog_replay::projection::{Projection, ProjectionCheckpoint, fold};

    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("log.redb");
    let log = new_log(&path);
    log.append_batch(&workload(0, 20)).unwrap();
    let events = log.reader().snapshot().unwrap().range(0, 21).unwrap();
    let mut state = Default::default();
    fold(
        &OmegaTwoPool,
        &mut state,
        events.iter().map(|(seq, event)| (*seq, event)),
    )
    .unwrap();
    let checkpoint = ProjectionCheckpoint::capture::<OmegaTwoPool>(&state, 21).unwrap();
    log.store_projection(&checkpoint).unwrap();
    // A checkpoint past the end of the log is refused.
    let mut ahead = checkpoint.clone();
    ahead.next_seq = 22;
    assert!(matches!(
        log.store_projection(&ahead),
        Err(LogError::Projection(_))
    ));
    log.close().unwrap();

    let reader = LogReader::open(&path).unwrap();
    let stored = reader
        .snapshot()
        .unwrap()
        .projection(OmegaTwoPool::NAME)
        .unwrap()
        .unwrap();
    assert_eq!(stored, checkpoint);
    assert_eq!(stored.restore::<OmegaTwoPool>().unwrap(), state);
    assert!(
        reader
            .snapshot()
            .unwrap()
            .projection("nothing")
            .unwrap()
            .is_none()
    );
    // Projections are outside the Merkle tree: the log still verifies.
    assert!(verify_log(&reader, |_| {}).unwrap().is_ok());
}

/// A log that was not closed cleanly (here: copied while its writer had it open, as a
/// crash leaves it) is refused by every reader, byte for byte untouched, until `recover`
/// repairs it; then it reads and verifies as before.
#[test]
fn a_reader_never_repairs_a_log_recover_does() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("log.redb");
    let crashed = directory.path().join("crashed.redb");
    let log = new_log(&path);
    log.append_batch(&workload(1, 20)).unwrap();
    std::fs::copy(&path, &crashed).unwrap();
    log.close().unwrap();

    let before = std::fs::read(&crashed).unwrap();
    let error = LogReader::open(&crashed)
        .err()
        .expect("a log that needs recovery");
    assert!(matches!(error, LogError::NeedsRecovery { .. }), "{error}");
    assert!(error.to_string().contains("weightlog recover"), "{error}");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_weightlog"))
        .arg("verify")
        .arg(&crashed)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("needs recovery"));
    assert_eq!(
        std::fs::read(&crashed).unwrap(),
        before,
        "the reader wrote to it"
    );

    assert_eq!(LogReader::recover(&crashed).unwrap(), 21);
    let report = verify_log(&LogReader::open(&crashed).unwrap(), |_| {}).unwrap();
    assert!(report.is_ok(), "{:?}", report.problem);
    // A log that needs nothing is not written to.
    let clean = std::fs::read(&path).unwrap();
    assert_eq!(LogReader::recover(&path).unwrap(), 21);
    assert_eq!(std::fs::read(&path).unwrap(), clean);
}
