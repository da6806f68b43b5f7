//! A failed durable commit poisons the writer: the failing batch and every later one get
//! an error, nothing half-written is visible, and reopening the log recovers everything that
//! was acknowledged. The failure is real: a child process runs with a file-size limit
//! (RLIMIT_FSIZE), so redb's write fails with EFBIG part-way through the log's growth.

mod common;

use std::path::Path;
use std::process::Command;

use weightlog::log::{Log, LogError, LogReader, verify_log};

const CHILD_ENV: &str = "WEIGHTLOG_POISON_CHILD";
/// How far past its current size the child's log may grow before writes fail.
const GROWTH_BYTES_MAX: u64 = 2 << 20;

#[test]
fn a_failed_commit_poisons_the_writer_until_reopen() {
    if let Ok(path) = std::env::var(CHILD_ENV) {
        run_child(Path::new(&path));
        return;
    }
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("log.redb");
    let log = common::new_log(&path);
    log.append_batch(&common::workload(0, 10)).unwrap();
    log.close().unwrap();

    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_failed_commit_poisons_the_writer_until_reopen",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    eprintln!("child said:\n{stdout}");
    assert!(
        output.status.success(),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("poisoned by the failed commit"), "{stdout}");
    assert!(stdout.contains("still poisoned"), "{stdout}");
    let acknowledged: u64 = stdout
        .lines()
        .find_map(|line| line.strip_prefix("acknowledged size "))
        .and_then(|size| size.trim().parse().ok())
        .expect("the child reports the acknowledged size");
    assert!(
        acknowledged > 11,
        "the child appended nothing before the limit: {stdout}"
    );

    // Reopened without the limit: everything acknowledged is there, nothing more, and the
    // log takes appends again.
    let log = Log::open(&path, common::validator_key()).unwrap();
    assert_eq!(log.reader().size().unwrap(), acknowledged);
    log.append(&common::workload(1_000_000, 1)[0]).unwrap();
    log.close().unwrap();
    let report = verify_log(&LogReader::open(&path).unwrap(), |_| {}).unwrap();
    assert!(report.is_ok(), "{:?}", report.problem);
    assert_eq!(report.events_checked, acknowledged + 1);
}

fn run_child(path: &Path) {
    let length = std::fs::metadata(path).unwrap().len();
    // SAFETY: plain libc calls on this process: ignore SIGXFSZ so an oversized write fails
    // with EFBIG instead of killing the process, then cap the file size.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        let limit = libc::rlimit {
            rlim_cur: length + GROWTH_BYTES_MAX,
            rlim_max: libc::RLIM_INFINITY,
        };
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &limit), 0);
    }
    let log = Log::open(path, common::validator_key()).unwrap();
    let mut seed = 100_000;
    let mut acknowledged = log.reader().size().unwrap();
    let failure = loop {
        // EmbeddingComputed-heavy batches grow the file quickly.
        match log.append_batch(&common::workload(seed, 50)) {
            Ok(_) => acknowledged = log.reader().size().unwrap(),
            Err(error) => break error,
        }
        seed += 50;
        assert!(
            seed < 10_000_000,
            "the file-size limit never made a commit fail"
        );
    };
    assert!(matches!(failure, LogError::Poisoned { .. }), "{failure}");
    println!("poisoned by the failed commit: {failure}");
    match log.append(&common::workload(5_000_000, 1)[0]) {
        Err(LogError::Poisoned { .. }) => println!("still poisoned"),
        other => panic!("expected the writer to stay poisoned, got {other:?}"),
    }
    assert_eq!(
        log.reader().size().unwrap(),
        acknowledged,
        "a failed commit left events visible"
    );
    println!("acknowledged size {acknowledged}");
    // Dropping the log stops the writer; the process exits without any further commit.
}
