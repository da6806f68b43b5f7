//! Crash safety: a child process appends in a loop and prints every acknowledged seq; the
//! parent kills it with SIGKILL at random moments, reopens the log and checks that every
//! acknowledged event is there, intact, and that `verify` passes.
//!
//! The child is this same test binary, re-run with `WEIGHTLOG_CRASH_CHILD` set, so no extra
//! binary is needed. Rounds: `WEIGHTLOG_CRASH_ROUNDS` (default 20).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use weightlog::log::{Log, LogReader, verify_log};
use weightlog_schema::{Hash, event_id};

const CHILD_ENV: &str = "WEIGHTLOG_CRASH_CHILD";
const ROUNDS_ENV: &str = "WEIGHTLOG_CRASH_ROUNDS";
const WRITER_THREADS: u64 = 3;

#[test]
fn sigkill_at_random_moments_loses_no_acknowledged_event() {
    if let Ok(path) = std::env::var(CHILD_ENV) {
        run_child(Path::new(&path));
        return;
    }
    let rounds: u32 = std::env::var(ROUNDS_ENV)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(20);
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("log.redb");
    common::new_log(&path).close().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
    let mut acknowledged: Vec<(u64, Hash)> = Vec::new();
    let mut killed_mid_append = 0;

    for round in 0..rounds {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "sigkill_at_random_moments_loses_no_acknowledged_event",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &path)
            .env("WEIGHTLOG_CRASH_ROUND", round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let collector = std::thread::spawn(move || {
            // Only whole lines count: a line cut by the kill was never fully printed.
            let mut lines = Vec::new();
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 0 {
                if line.ends_with('\n') {
                    lines.push(line.trim_end().to_string());
                }
                line.clear();
            }
            lines
        });
        std::thread::sleep(Duration::from_millis(rng.random_range(30..400)));
        child.kill().unwrap(); // SIGKILL on unix
        child.wait().unwrap();
        let lines = collector.join().unwrap();
        let mut round_acks = 0;
        for line in &lines {
            if let Some(rest) = line.strip_prefix("ack ") {
                let (seq, id) = rest.split_once(' ').unwrap();
                acknowledged.push((seq.parse().unwrap(), Hash::from_hex(id).unwrap()));
                round_acks += 1;
            }
        }
        if round_acks > 0 {
            killed_mid_append += 1;
        }

        // Reopening for writing runs redb's recovery and the log's own open checks.
        let log = Log::open(&path, common::validator_key())
            .unwrap_or_else(|error| panic!("round {round}: reopen failed: {error}"));
        let snapshot = log.reader().snapshot().unwrap();
        let size = snapshot.size().unwrap();
        for (seq, id) in &acknowledged {
            assert!(
                *seq < size,
                "round {round}: acknowledged seq {seq} lost (size {size})"
            );
            let bytes = snapshot.event_bytes(*seq).unwrap();
            assert_eq!(
                event_id(&bytes),
                *id,
                "round {round}: seq {seq} holds another event"
            );
        }
        drop(snapshot);
        log.close().unwrap();
        let report = verify_log(&LogReader::open(&path).unwrap(), |_| {}).unwrap();
        assert!(report.is_ok(), "round {round}: {:?}", report.problem);
        assert_eq!(report.events_checked, size);
    }
    assert!(
        killed_mid_append >= rounds / 2,
        "only {killed_mid_append} of {rounds} rounds were killed while appending"
    );
    assert!(!acknowledged.is_empty());
}

/// The child: several threads append distinct events (so group commit batches them) and
/// print `ack SEQ ID` after each acknowledgement, until the parent kills the process.
fn run_child(path: &Path) {
    let round: u64 = std::env::var("WEIGHTLOG_CRASH_ROUND")
        .unwrap()
        .parse()
        .unwrap();
    let log = Log::open(path, common::validator_key()).unwrap();
    let stdout = std::sync::Mutex::new(std::io::stdout());
    std::thread::scope(|scope| {
        for thread in 0..WRITER_THREADS {
            let (log, stdout) = (&log, &stdout);
            scope.spawn(move || {
                let mut rng = rand::rngs::StdRng::seed_from_u64((round << 8) + thread);
                // Disjoint sample seeds per round and thread, so every event is new.
                let mut next = (round << 40) + (thread << 32);
                loop {
                    let batch_size = rng.random_range(1..40u64);
                    let events = common::workload(next, batch_size);
                    next += batch_size;
                    let seqs = log.append_batch(&events).unwrap();
                    let mut out = stdout.lock().unwrap();
                    for (event, seq) in events.iter().zip(seqs) {
                        let id = event_id(&weightlog_schema::encode(event).unwrap());
                        writeln!(out, "ack {seq} {id}").unwrap();
                    }
                    out.flush().unwrap();
                }
            });
        }
    });
}
