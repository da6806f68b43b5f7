//! Real readers: the export read by DuckDB and by pyarrow (installed from PyPI by `.ci/run`)
//! gives the log's row counts, weight sums per decision and Merkle root.
//!
//! Set `WEIGHTLOG_SKIP_PYTHON_READERS=1` to skip it on a machine without them; otherwise a
//! missing `python3`, `duckdb` or `pyarrow` fails the test, so CI cannot pass silently.

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use weightlog::log::LogReader;
use weightlog_schema::Payload;

#[test]
fn duckdb_and_pyarrow_read_the_export() {
    if std::env::var_os("WEIGHTLOG_SKIP_PYTHON_READERS").is_some_and(|value| value == "1") {
        eprintln!("skipped: WEIGHTLOG_SKIP_PYTHON_READERS=1");
        return;
    }
    let directory = tempfile::tempdir().unwrap();
    let log = directory.path().join("log.redb");
    common::generate(&log, 500, 25);
    let out = directory.path().join("out");
    // The binary, as a user runs it: two incremental runs; --verify re-reads the files.
    for range in [["--to", "200"], ["--from", "200"]] {
        let status = Command::new(env!("CARGO_BIN_EXE_weightlog-export"))
            .arg(&log)
            .arg(&out)
            .args(range)
            .arg("--verify")
            .status()
            .unwrap();
        assert!(status.success(), "weightlog-export {range:?}: {status}");
    }

    let reader = LogReader::open(&log).unwrap();
    let snapshot = reader.snapshot().unwrap();
    let events = snapshot.range(0, u64::MAX).unwrap();
    let mut rows: BTreeMap<&str, u64> = BTreeMap::new();
    let mut weight_sums = BTreeMap::new();
    let mut uid_3_decisions = 0;
    for (seq, event) in &events {
        *rows.entry("events").or_default() += 1;
        let (table, count) = match &event.payload {
            Payload::ChallengeIssued(_) => ("challenges", 1),
            Payload::ResponseReceived(_) => ("responses", 1),
            Payload::EvaluationRecorded(_) => ("evaluations", 1),
            Payload::EmbeddingComputed(_) => ("embeddings", 1),
            Payload::MetagraphObserved(observed) => ("metagraph", observed.neurons.len() as u64),
            Payload::WeightsComputed(decision) => {
                let total: u64 = decision
                    .u16_weights
                    .iter()
                    .map(|&weight| u64::from(weight))
                    .sum();
                weight_sums.insert(seq.to_string(), total);
                uid_3_decisions += u64::from(decision.uids.contains(&3));
                ("weights", decision.uids.len() as u64)
            }
            Payload::WeightsSubmitted(_) => ("submissions", 1),
            Payload::ExternalScoreRecorded(recorded) => {
                ("external_scores", recorded.scores.len() as u64)
            }
            Payload::GroundTruthRevealed(_) => ("ground_truth", 1),
            Payload::LogOpened(_) | Payload::ProfileChanged(_) => ("profiles", 1),
            Payload::EnvironmentRegistered(_) => ("environments", 1),
        };
        *rows.entry(table).or_default() += count;
    }
    rows.insert(
        "checkpoints",
        snapshot.checkpoint_texts().unwrap().len() as u64,
    );
    // The signed root at every size, as JSON text values.
    let roots: Vec<String> = snapshot
        .checkpoint_texts()
        .unwrap()
        .into_iter()
        .map(|(size, text)| {
            let root = weightlog_schema::SignedCheckpoint::parse(&text)
                .unwrap()
                .checkpoint
                .root;
            format!("\"{size}\": \"{root}\"")
        })
        .collect();
    let files = common::files_under(&out).len();
    let expected = format!(
        "{{\"rows\": {}, \"weight_sums\": {}, \"roots\": {{{}}}, \"files\": {files}, \"origin\": \"{}\", \"uid_3_decisions\": {uid_3_decisions}}}",
        json_object(
            rows.iter()
                .map(|(table, count)| (table.to_string(), *count))
        ),
        json_object(weight_sums.into_iter()),
        roots.join(", "),
        reader.meta().origin,
    );
    let expected_path = directory.path().join("expected.json");
    std::fs::write(&expected_path, expected).unwrap();

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/readers.py");
    let output = Command::new("python3")
        .arg(script)
        .arg(&out)
        .arg(&expected_path)
        .output()
        .unwrap_or_else(|error| {
            panic!(
                "python3 could not be run ({error}); install it with duckdb and pyarrow as .ci/run does, or set WEIGHTLOG_SKIP_PYTHON_READERS=1"
            )
        });
    assert!(
        output.status.success(),
        "the Python readers failed (missing modules? `python3 -m pip install duckdb pyarrow`, or set WEIGHTLOG_SKIP_PYTHON_READERS=1):\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn json_object(entries: impl Iterator<Item = (String, u64)>) -> String {
    let body: Vec<String> = entries
        .map(|(key, value)| format!("\"{key}\": {value}"))
        .collect();
    format!("{{{}}}", body.join(", "))
}
