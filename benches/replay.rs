//! `replay verify` throughput on a generated log, at 1 and at 2 worker threads, beside the
//! bound that blake3 leaf hashing alone sets for the same events (and, to show where the
//! rest of the time goes, reading them from redb and decoding them).
//!
//! `read_and_hash` is the ceiling for a replay that reads its log from redb this way: it
//! reads every event the way a replay does (chunks of [`CHUNK_EVENTS`] on the pool, no
//! copy) and hashes its leaf, and does nothing else: no validation, no decoding, no Merkle
//! tree, no fold.
//!
//! Run it with `cargo bench --bench replay`. The log (affine, seed 1,
//! `WEIGHTLOG_REPLAY_BENCH_EVENTS` events, default 1,000,000) is generated once and kept
//! beside the build (`CARGO_TARGET_TMPDIR`); `cargo test --bench replay` uses 3,000 events.
//! At the end the bench prints each figure once more from a timed run, the 2-thread
//! scaling ratio and the share of the hashing bound each replay reaches.
//!
//! `replay_profiles/<profile>/threads/{1,2}`: `replay verify` on a generated log of each
//! `gen-log` profile (seed 1, `WEIGHTLOG_REPLAY_BENCH_PROFILE_EVENTS` events, default
//! 200,000), so the cost of each mechanism's fold and decisions shows beside affine's.
//!
//! `admission/{whole_log,resumed}`: `append`'s check (`audit::admission`) of a batch of
//! [`ADMISSION_BATCH`] events onto the affine log of that size less the batch: folding the
//! whole log (no stored checkpoint), and resuming from the checkpoint the previous append
//! kept in the log.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group};
use rayon::prelude::*;
use weightlog::audit::{
    ADMISSION_CHECKPOINT, Admission, AuditOptions, CHUNK_EVENTS, LogSource, Source, Verdict,
    admission, audit,
};
use weightlog::genlog::{GenOptions, PROFILES, generate};
use weightlog::keys::Hotkey;
use weightlog::log::{APPEND_BATCH_EVENTS_MAX, EncodedEvent, Genesis, Log, LogReader};
use weightlog_schema::{Event, codec, leaf_hash};

/// The allocator the `weightlog` binary uses, so the bench measures what `replay verify`
/// does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const EVENTS_DEFAULT: u64 = 1_000_000;
const PROFILE_EVENTS_DEFAULT: u64 = 200_000;
const EVENTS_TEST_MODE: u64 = 3_000;
const THREAD_COUNTS: [usize; 2] = [1, 2];
/// Events per batch in the `admission` group.
const ADMISSION_BATCH: usize = 1_000;

fn benchmarking() -> bool {
    std::env::args().any(|argument| argument == "--bench")
}

/// The events of a generated log: `variable` when set, else `default` when benchmarking.
fn events(variable: &str, default: u64) -> u64 {
    match std::env::var(variable) {
        Ok(value) => value
            .parse()
            .unwrap_or_else(|_| panic!("{variable} is a number")),
        Err(_) if benchmarking() => default,
        Err(_) => EVENTS_TEST_MODE,
    }
}

/// The generated log, made once per profile and size.
fn log_path(profile: &str, events: u64) -> PathBuf {
    let path =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("replay-{profile}-{events}.redb"));
    let complete = path.exists()
        && LogReader::open(&path)
            .and_then(|reader| reader.size())
            .is_ok_and(|size| size == events);
    if !complete {
        let _ = std::fs::remove_file(&path);
        let started = Instant::now();
        let summary = generate(&path, &GenOptions::new(profile, events, 1)).expect("gen-log");
        eprintln!(
            "generated {} {profile} events ({} decisions) in {:.1} s at {}",
            summary.events,
            summary.decisions,
            started.elapsed().as_secs_f64(),
            path.display()
        );
    }
    path
}

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool")
}

fn replay(path: &Path, threads: usize) {
    let source = LogSource::open(path).expect("open");
    let options = AuditOptions {
        threads,
        ..AuditOptions::default()
    };
    let (report, _) = audit(&source, &options, &|_| {}).expect("audit");
    assert_eq!(report.verdict, Verdict::Match, "{report:?}");
    black_box(report);
}

/// Reads every event from redb as a replay does, without copying it; returns the bytes read.
fn read_only(path: &Path) -> usize {
    let source = LogSource::open(path).expect("open");
    let mut total = 0;
    source
        .read(0, u64::MAX, &mut |_, bytes| {
            total += black_box(bytes).len();
            true
        })
        .expect("read");
    total
}

/// Reads every event from redb in chunks on the pool, as a replay does, and hashes its leaf.
fn read_and_hash(path: &Path, count: u64, pool: &rayon::ThreadPool) {
    let source = LogSource::open(path).expect("open");
    pool.install(|| {
        let chunk = CHUNK_EVENTS as u64;
        (0..count.div_ceil(chunk))
            .into_par_iter()
            .for_each(|index| {
                let from = index * chunk;
                let to = (from + chunk).min(count);
                source
                    .read(from, to, &mut |_, bytes| {
                        black_box(leaf_hash(bytes));
                        true
                    })
                    .expect("read");
            })
    });
}

fn read_all(path: &Path) -> Vec<Vec<u8>> {
    let source = LogSource::open(path).expect("open");
    let mut all = Vec::new();
    source
        .read(0, u64::MAX, &mut |_, bytes| {
            all.push(bytes.to_vec());
            true
        })
        .expect("read");
    all
}

fn hash_all(events: &[Vec<u8>], pool: &rayon::ThreadPool) {
    pool.install(|| {
        events.par_iter().for_each(|bytes| {
            black_box(leaf_hash(bytes));
        })
    });
}

fn decode_all(events: &[Vec<u8>]) {
    for bytes in events {
        black_box(codec::decode(bytes).expect("valid"));
    }
}

fn timed(mut run: impl FnMut()) -> f64 {
    let mut best = f64::INFINITY;
    for _ in 0..3 {
        let started = Instant::now();
        run();
        best = best.min(started.elapsed().as_secs_f64());
    }
    best
}

fn benches(criterion: &mut Criterion) {
    let count = events("WEIGHTLOG_REPLAY_BENCH_EVENTS", EVENTS_DEFAULT);
    let path = log_path("affine", count);
    let bytes = read_all(&path);
    let total_bytes: usize = bytes.iter().map(Vec::len).sum();
    eprintln!(
        "{count} events, {:.1} MB of event bytes",
        total_bytes as f64 / 1e6
    );
    let pools: Vec<(usize, rayon::ThreadPool)> = THREAD_COUNTS
        .iter()
        .map(|threads| (*threads, pool(*threads)))
        .collect();

    let mut group = criterion.benchmark_group("replay");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(count));
    for (threads, pool) in &pools {
        group.bench_function(format!("verify/threads/{threads}"), |bench| {
            bench.iter(|| replay(&path, *threads))
        });
        group.bench_function(format!("leaf_hash_bound/threads/{threads}"), |bench| {
            bench.iter(|| hash_all(&bytes, pool))
        });
        group.bench_function(format!("read_and_hash/threads/{threads}"), |bench| {
            bench.iter(|| read_and_hash(&path, count, pool))
        });
    }
    group.bench_function("read_only/threads/1", |bench| {
        bench.iter(|| black_box(read_only(&path)))
    });
    group.bench_function("decode_only/threads/1", |bench| {
        bench.iter(|| decode_all(&bytes))
    });
    group.finish();

    if benchmarking() {
        let rate = |seconds: f64| count as f64 / seconds;
        let mut replay_rates = Vec::new();
        for (threads, pool) in &pools {
            let replay_seconds = timed(|| replay(&path, *threads));
            let hash_seconds = timed(|| hash_all(&bytes, pool));
            let ceiling_seconds = timed(|| read_and_hash(&path, count, pool));
            replay_rates.push(rate(replay_seconds));
            println!(
                "summary threads={threads}: replay verify {:.0} events/s, leaf hashing alone \
                 {:.0} events/s, replay reaches {:.1}% of the hashing bound; reading from redb \
                 and hashing, nothing else, {:.0} events/s ({:.1}% of the bound)",
                rate(replay_seconds),
                rate(hash_seconds),
                100.0 * hash_seconds / replay_seconds,
                rate(ceiling_seconds),
                100.0 * hash_seconds / ceiling_seconds
            );
        }
        println!(
            "summary scaling 1 -> 2 threads: x{:.2}",
            replay_rates[1] / replay_rates[0]
        );
    }
}

/// `replay verify` on a log of every `gen-log` profile, at 1 and at 2 threads.
fn profiles(criterion: &mut Criterion) {
    let count = events(
        "WEIGHTLOG_REPLAY_BENCH_PROFILE_EVENTS",
        PROFILE_EVENTS_DEFAULT,
    );
    let paths: Vec<(&str, PathBuf)> = PROFILES
        .iter()
        .map(|profile| (*profile, log_path(profile, count)))
        .collect();
    let mut group = criterion.benchmark_group("replay_profiles");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements(count));
    for (profile, path) in &paths {
        for threads in THREAD_COUNTS {
            group.bench_function(format!("{profile}/threads/{threads}"), |bench| {
                bench.iter(|| replay(path, threads))
            });
        }
    }
    group.finish();

    if benchmarking() {
        for (profile, path) in &paths {
            let rates: Vec<f64> = THREAD_COUNTS
                .iter()
                .map(|threads| count as f64 / timed(|| replay(path, *threads)))
                .collect();
            println!(
                "summary profile={profile} ({count} events): replay verify {:.0} events/s at 1 \
                 thread, {:.0} at 2 (x{:.2})",
                rates[0],
                rates[1],
                rates[1] / rates[0]
            );
        }
    }
}

/// `append`'s check on a log of the profile bench's size: the whole log folded, and resumed
/// from a kept checkpoint.
fn admission_cost(criterion: &mut Criterion) {
    let count = events(
        "WEIGHTLOG_REPLAY_BENCH_PROFILE_EVENTS",
        PROFILE_EVENTS_DEFAULT,
    );
    let events: Vec<Event> = LogReader::open(&log_path("affine", count))
        .and_then(|reader| reader.snapshot()?.range(0, u64::MAX))
        .expect("the generated log reads")
        .into_iter()
        .map(|(_, event)| event)
        .collect();
    let genesis = Genesis::of(&events[0]).expect("seq 0 opens the log");
    // The generated log less its last batch, the batch to be appended.
    let directory = tempfile::tempdir().expect("temporary directory");
    let log = Log::create(
        &directory.path().join("log.redb"),
        Hotkey::from_seed(&[7; 32]),
        genesis,
    )
    .expect("create the log");
    let split = events.len() - ADMISSION_BATCH;
    for chunk in events[1..split].chunks(APPEND_BATCH_EVENTS_MAX) {
        log.append_batch(chunk).expect("append");
    }
    let batch: Vec<EncodedEvent> = events[split..]
        .iter()
        .map(|event| EncodedEvent::new(event).expect("encodes"))
        .collect();
    let admitted = || {
        let report = admission(log.reader(), &batch).expect("admission runs");
        assert_eq!(report.admission, Admission::Admitted);
        report
    };

    let mut group = criterion.benchmark_group("admission");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements(ADMISSION_BATCH as u64));
    group.bench_function("whole_log", |bench| bench.iter(admitted));
    let kept = admitted().checkpoint.expect("a checkpoint");
    log.store_projection_bytes(ADMISSION_CHECKPOINT, &kept.to_bytes().expect("encodes"))
        .expect("store the checkpoint");
    assert_eq!(admitted().resumed_from, kept.next_seq());
    group.bench_function("resumed", |bench| bench.iter(admitted));
    group.finish();
    log.close().expect("close");
}

criterion_group!(replay_benches, benches, profiles, admission_cost);

fn main() {
    replay_benches();
    Criterion::default().configure_from_args().final_summary();
}
