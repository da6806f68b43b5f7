//! Durable append and sequential read throughput of a weightlog log, side by side with
//! SQLite storing the same bytes.
//!
//! Run it with `cargo bench --bench append` (a few minutes on 2 cores, most of it the
//! release build). `cargo bench --bench append -- --test` runs every case once, as a smoke
//! test. Filter cases as usual: `cargo bench --bench append -- 'append/'`.
//!
//! # What is measured
//!
//! * `append/weightlog/N`: one [`Log::append_batch`] of N distinct events per iteration, for
//!   N in 1, 100 and 1000. That is the full pipeline: canonical rkyv encoding and checks,
//!   blake3 event id and leaf hash, Merkle tree nodes, the `by_id` dedupe lookup, the
//!   `by_challenge` and `by_uid` indexes, one sr25519-signed checkpoint, and
//!   a `Durability::Immediate` (fsync'd) redb commit, handed over to and acknowledged by the
//!   writer thread.
//! * `append/sqlite/N`, the baseline: SQLite (bundled, WAL, `synchronous=FULL`) with one
//!   transaction per batch, storing the same canonical bytes under the same id with the
//!   same dedupe (`ON CONFLICT (timestamp_ms, id) DO NOTHING` on a unique index keyed like
//!   weightlog's `by_id`) and the same secondary
//!   indexes (`by_challenge(challenge_id, seq)`, `by_uid(uid, seq)`). Encoding is inside the
//!   timed region for both: SQLite's side runs the same `EncodedEvent::new` (encode, checks,
//!   blake3 id, index keys), because an application storing events in SQLite would have to
//!   produce the bytes and the id too. SQLite does no Merkle tree, leaf hashes or signatures.
//! * `concurrent/{weightlog,sqlite}/8x1`: [`CONCURRENT_WRITERS`] threads each appending
//!   single events, as a live validator's tasks do. weightlog's writer groups whatever is
//!   queued into one commit; SQLite gets one connection shared behind a mutex (the fair
//!   setup: separate connections contend on SQLite's file lock and spend their time in its
//!   busy-handler's sleeps, about 150 events/s here), so it commits each event on its own.
//! * `read/{weightlog,sqlite}/{access,decode}`: a sequential scan of a store pre-filled with
//!   [`READ_EVENTS`] events (the same events in both), validating every event either
//!   zero-copy (`codec::access`, bytecheck only) or completely (`codec::decode`: owned event,
//!   canonical re-encode, semantic checks). weightlog reads with `Snapshot::for_each_raw`,
//!   SQLite with `SELECT bytes FROM events ORDER BY seq`.
//! * `context/*`: the parts that dominate small batches, for reading the numbers above: one
//!   sr25519 checkpoint signature, one durable redb commit (empty and of one row), one
//!   `fdatasync` of a 4 KiB append to a plain file, and per-event encoding and Merkle work.
//!
//! Events are a realistic mix (mostly responses, evaluations, embeddings and challenges),
//! each from a fresh seed so none is a duplicate (a duplicate would be a no-op append). They
//! are generated outside the timed region; the stores grow across iterations, as a real log
//! does. Every store lives in a temporary directory (on the file system of `TMPDIR`, which
//! decides what an fsync costs).
//!
//! Criterion prints elements (events) per second for each case; at the end the bench prints
//! a summary table with the weightlog/SQLite ratio per case, from the measured samples.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::hint::black_box;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput, criterion_group};
use rusqlite::{Connection, params};
use tempfile::TempDir;
use weightlog::keys::Hotkey;
use weightlog::log::{EncodedEvent, Genesis, Log, origin_for};
use weightlog_schema::event::LogId;
use weightlog_schema::merkle::Frontier;
use weightlog_schema::samples::sample;
use weightlog_schema::{Checkpoint, Event, EventKind, codec, leaf_hash};

/// Events per append for each append case.
const BATCH_SIZES: [usize; 3] = [1, 100, 1000];
/// Events in the stores that the read cases scan.
const READ_EVENTS: usize = 20_000;
/// Threads appending at once in the concurrent cases.
const CONCURRENT_WRITERS: u64 = 8;
/// Samples criterion takes per case (its minimum); each sample is one timed call.
const SAMPLES: usize = 10;

// ---------------------------------------------------------------------------------------
// Workload

/// A fresh event for every seed: the kind follows a fixed mix, the seed varies the content
/// (and the timestamp, so two seeds never give the same event).
fn event_for(seed: u64) -> Event {
    // Out of 20: 7 responses, 6 evaluations, 3 embeddings, 2 challenges, 2 others.
    let kind = match seed % 20 {
        0..=6 => EventKind::ResponseReceived,
        7..=12 => EventKind::EvaluationRecorded,
        13..=15 => EventKind::EmbeddingComputed,
        16 | 17 => EventKind::ChallengeIssued,
        18 => EventKind::GroundTruthRevealed,
        _ => match (seed / 20) % 3 {
            0 => EventKind::ExternalScoreRecorded,
            1 => EventKind::WeightsComputed,
            _ => EventKind::MetagraphObserved,
        },
    };
    sample(kind, seed)
}

/// Hands out events with seeds never used before by this generator.
struct Events {
    next_seed: u64,
}

impl Events {
    fn starting_at(first_seed: u64) -> Self {
        Self {
            next_seed: first_seed,
        }
    }

    /// Replaces `batch` with `n` fresh events.
    fn fill(&mut self, batch: &mut Vec<Event>, n: usize) {
        batch.clear();
        batch.extend((self.next_seed..self.next_seed + n as u64).map(event_for));
        self.next_seed += n as u64;
    }
}

// ---------------------------------------------------------------------------------------
// The two stores

fn create_log(path: &Path) -> Log {
    Log::create(
        path,
        Hotkey::from_seed(&[1; 32]),
        Genesis {
            netuid: 7,
            profile: "affine".into(),
            parameters_json: "{\"alpha\":0.1}".into(),
            timestamp_ms: 1_760_000_000_000,
            log_id: LogId([7; 16]),
        },
    )
    .expect("create the weightlog log")
}

/// The SQLite baseline: the same bytes, id, dedupe and secondary indexes as a weightlog log.
struct Sqlite {
    connection: Connection,
}

impl Sqlite {
    fn create(path: &Path) -> Self {
        let connection = Connection::open(path).expect("open the SQLite database");
        let mode: String = connection
            .query_row("PRAGMA journal_mode=WAL", [], |row| row.get(0))
            .expect("set WAL mode");
        assert_eq!(mode, "wal");
        connection
            .execute_batch(
                "PRAGMA synchronous=FULL;
                 CREATE TABLE events(
                     seq INTEGER PRIMARY KEY,
                     timestamp_ms INTEGER NOT NULL,
                     id BLOB NOT NULL,
                     bytes BLOB NOT NULL,
                     UNIQUE (timestamp_ms, id)
                 );
                 CREATE TABLE by_challenge(
                     challenge_id TEXT NOT NULL,
                     seq INTEGER NOT NULL,
                     PRIMARY KEY (challenge_id, seq)
                 ) WITHOUT ROWID;
                 CREATE TABLE by_uid(
                     uid INTEGER NOT NULL,
                     seq INTEGER NOT NULL,
                     PRIMARY KEY (uid, seq)
                 ) WITHOUT ROWID;",
            )
            .expect("create the SQLite schema");
        let synchronous: i64 = connection
            .query_row("PRAGMA synchronous", [], |row| row.get(0))
            .expect("read synchronous");
        assert_eq!(synchronous, 2, "synchronous must be FULL");
        Self { connection }
    }

    /// Encodes and stores a batch in one durable transaction; returns the seqs, as
    /// `Log::append_batch` does (an event already stored keeps its seq).
    fn append_batch(&mut self, events: &[Event]) -> rusqlite::Result<Vec<i64>> {
        let encoded: Vec<EncodedEvent> = events
            .iter()
            .map(|event| EncodedEvent::new(event).expect("sample events are valid"))
            .collect();
        let transaction = self.connection.transaction()?;
        let mut seqs = Vec::with_capacity(encoded.len());
        {
            let mut insert = transaction.prepare_cached(
                "INSERT INTO events (timestamp_ms, id, bytes) VALUES (?1, ?2, ?3)
                 ON CONFLICT (timestamp_ms, id) DO NOTHING",
            )?;
            let mut existing = transaction
                .prepare_cached("SELECT seq FROM events WHERE timestamp_ms = ?1 AND id = ?2")?;
            let mut by_challenge = transaction
                .prepare_cached("INSERT INTO by_challenge (challenge_id, seq) VALUES (?1, ?2)")?;
            let mut by_uid =
                transaction.prepare_cached("INSERT INTO by_uid (uid, seq) VALUES (?1, ?2)")?;
            for event in &encoded {
                let id = &event.id.0[..];
                // SQLite integers are i64; sample timestamps are far below i64::MAX.
                let timestamp_ms = event.timestamp_ms as i64;
                if insert.execute(params![timestamp_ms, id, event.bytes])? == 0 {
                    seqs.push(existing.query_row(params![timestamp_ms, id], |row| row.get(0))?);
                    continue;
                }
                let seq = transaction.last_insert_rowid();
                if let Some(challenge_id) = &event.challenge_id {
                    by_challenge.execute(params![challenge_id, seq])?;
                }
                for uid in &event.uids {
                    by_uid.execute(params![uid, seq])?;
                }
                seqs.push(seq);
            }
        }
        transaction.commit()?;
        Ok(seqs)
    }

    fn count(&self) -> i64 {
        self.connection
            .query_row("SELECT count(*) FROM events", [], |row| row.get(0))
            .expect("count events")
    }
}

/// Prints how large a store grew during an append case: throughput falls as the indexes
/// outgrow what one commit touches, so the size is part of the result.
fn report_store(name: &str, events: u64, files: &[&Path]) {
    let bytes: u64 = files
        .iter()
        .filter_map(|path| std::fs::metadata(path).ok())
        .map(|metadata| metadata.len())
        .sum();
    println!(
        "{name} store after this case: {events} events, {:.1} MiB on disk",
        bytes as f64 / (1024.0 * 1024.0)
    );
}

// ---------------------------------------------------------------------------------------
// Our own record of the measured samples, for the summary table

/// Per case: events per iteration and every (iterations, measured time) criterion asked for.
/// Warm-up calls come first; the last [`SAMPLES`] are the measurement (flat sampling).
struct Record {
    events_per_iteration: u64,
    calls: Vec<(u64, Duration)>,
}

thread_local! {
    static RECORDS: RefCell<BTreeMap<String, Record>> = const { RefCell::new(BTreeMap::new()) };
}

fn record(case: &str, events_per_iteration: u64, iterations: u64, time: Duration) {
    RECORDS.with_borrow_mut(|records| {
        records
            .entry(case.to_string())
            .or_insert_with(|| Record {
                events_per_iteration,
                calls: Vec::new(),
            })
            .calls
            .push((iterations, time));
    });
}

/// Events per second over the measurement samples of a case.
fn events_per_second(case: &str) -> Option<f64> {
    RECORDS.with_borrow(|records| {
        let record = records.get(case)?;
        let measured = &record.calls[record.calls.len().saturating_sub(SAMPLES)..];
        let iterations: u64 = measured.iter().map(|(iterations, _)| iterations).sum();
        let seconds: f64 = measured.iter().map(|(_, time)| time.as_secs_f64()).sum();
        (seconds > 0.0).then(|| (iterations * record.events_per_iteration) as f64 / seconds)
    })
}

fn print_summary() {
    let mut rows = Vec::new();
    for batch in BATCH_SIZES {
        rows.push((
            format!("append, batch {batch}"),
            format!("append/weightlog/{batch}"),
            format!("append/sqlite/{batch}"),
        ));
    }
    rows.push((
        format!("{CONCURRENT_WRITERS} writers x 1 event"),
        format!("concurrent/weightlog/{CONCURRENT_WRITERS}x1"),
        format!("concurrent/sqlite/{CONCURRENT_WRITERS}x1"),
    ));
    for check in ["access", "decode"] {
        rows.push((
            format!("sequential read + {check}"),
            format!("read/weightlog/{check}"),
            format!("read/sqlite/{check}"),
        ));
    }
    let mut lines = Vec::new();
    for (label, ours, theirs) in rows {
        let (ours, theirs) = (events_per_second(&ours), events_per_second(&theirs));
        if ours.is_none() && theirs.is_none() {
            continue;
        }
        let show = |rate: Option<f64>| rate.map_or("-".to_string(), |rate| format!("{rate:.0}"));
        let ratio = match (ours, theirs) {
            (Some(ours), Some(theirs)) => format!("{:.2}x", ours / theirs),
            _ => "-".into(),
        };
        lines.push(format!(
            "{label:<28} {:>14} {:>14} {ratio:>10}",
            show(ours),
            show(theirs)
        ));
    }
    if lines.is_empty() {
        return;
    }
    println!("\nSummary (events/s, mean over the measured samples):");
    println!(
        "{:<28} {:>14} {:>14} {:>10}",
        "case", "weightlog", "sqlite", "ratio"
    );
    for line in lines {
        println!("{line}");
    }
}

// ---------------------------------------------------------------------------------------
// Benchmarks

fn append(c: &mut Criterion) {
    let dir = TempDir::new().expect("temporary directory");
    let mut group = c.benchmark_group("append");
    group.sampling_mode(SamplingMode::Flat);
    for (index, batch_size) in BATCH_SIZES.into_iter().enumerate() {
        group.throughput(Throughput::Elements(batch_size as u64));
        // Each case has its own stores and its own seed range, so its events are fresh.
        let first_seed = (index as u64 + 1) << 40;

        let log_path = dir.path().join(format!("append-{batch_size}.wlog"));
        let log = create_log(&log_path);
        let mut events = Events::starting_at(first_seed);
        let mut batch = Vec::with_capacity(batch_size);
        let mut appended = 0u64;
        let case = format!("append/weightlog/{batch_size}");
        group.bench_function(format!("weightlog/{batch_size}"), |b| {
            b.iter_custom(|iterations| {
                let mut time = Duration::ZERO;
                for _ in 0..iterations {
                    events.fill(&mut batch, batch_size);
                    let start = Instant::now();
                    let seqs = log.append_batch(&batch).expect("weightlog append");
                    time += start.elapsed();
                    black_box(seqs);
                }
                appended += iterations * batch_size as u64;
                record(&case, batch_size as u64, iterations, time);
                time
            });
        });
        // A duplicate would be a no-op append; make sure every event was new.
        let size = log.reader().size().expect("log size");
        assert_eq!(size, 1 + appended, "weightlog: every appended event is new");
        log.close().expect("close the log");
        report_store("weightlog", size, &[&log_path]);

        let sqlite_path = dir.path().join(format!("append-{batch_size}.sqlite"));
        let mut sqlite = Sqlite::create(&sqlite_path);
        let mut events = Events::starting_at(first_seed);
        let mut appended = 0u64;
        let case = format!("append/sqlite/{batch_size}");
        group.bench_function(format!("sqlite/{batch_size}"), |b| {
            b.iter_custom(|iterations| {
                let mut time = Duration::ZERO;
                for _ in 0..iterations {
                    events.fill(&mut batch, batch_size);
                    let start = Instant::now();
                    let seqs = sqlite.append_batch(&batch).expect("SQLite append");
                    time += start.elapsed();
                    black_box(seqs);
                }
                appended += iterations * batch_size as u64;
                record(&case, batch_size as u64, iterations, time);
                time
            });
        });
        let count = sqlite.count() as u64;
        assert_eq!(count, appended, "SQLite: every appended event is new");
        report_store(
            "SQLite",
            count,
            &[&sqlite_path, &sqlite_path.with_extension("sqlite-wal")],
        );
    }
    group.finish();
}

/// `CONCURRENT_WRITERS` threads each append `per_thread` single events to `append`; returns
/// the wall time from the moment all of them start.
fn run_writers(
    per_thread: u64,
    first_seed: u64,
    append: &(dyn Fn(u64, &Event) + Sync),
) -> Duration {
    let barrier = std::sync::Barrier::new(CONCURRENT_WRITERS as usize + 1);
    std::thread::scope(|scope| {
        for thread in 0..CONCURRENT_WRITERS {
            let barrier = &barrier;
            scope.spawn(move || {
                let base = first_seed + (thread << 32);
                let events: Vec<Event> = (base..base + per_thread).map(event_for).collect();
                barrier.wait();
                for event in &events {
                    append(thread, event);
                }
            });
        }
        barrier.wait();
        let start = Instant::now();
        // Leaving the scope joins every writer.
        start
    })
    .elapsed()
}

fn concurrent(c: &mut Criterion) {
    let dir = TempDir::new().expect("temporary directory");
    let mut group = c.benchmark_group("concurrent");
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(CONCURRENT_WRITERS));
    let name = format!("{CONCURRENT_WRITERS}x1");
    // Each sample uses seeds above every earlier sample's.
    let next_seed = std::sync::atomic::AtomicU64::new(1 << 56);
    let seeds = |per_thread: u64| {
        next_seed.fetch_add(
            per_thread.max(1) << 36,
            std::sync::atomic::Ordering::Relaxed,
        )
    };

    let log_path = dir.path().join("concurrent.wlog");
    let log = create_log(&log_path);
    let case = format!("concurrent/weightlog/{name}");
    group.bench_function(format!("weightlog/{name}"), |b| {
        b.iter_custom(|iterations| {
            let time = run_writers(iterations, seeds(iterations), &|_, event| {
                black_box(log.append(event).expect("weightlog append"));
            });
            record(&case, CONCURRENT_WRITERS, iterations, time);
            time
        });
    });
    let size = log.reader().size().expect("log size");
    log.close().expect("close the log");
    report_store("weightlog", size, &[&log_path]);

    let sqlite_path = dir.path().join("concurrent.sqlite");
    let sqlite = std::sync::Mutex::new(Sqlite::create(&sqlite_path));
    let case = format!("concurrent/sqlite/{name}");
    group.bench_function(format!("sqlite/{name}"), |b| {
        b.iter_custom(|iterations| {
            let time = run_writers(iterations, seeds(iterations), &|_, event| {
                let mut sqlite = sqlite.lock().expect("connection");
                black_box(
                    sqlite
                        .append_batch(std::slice::from_ref(event))
                        .expect("SQLite append"),
                );
            });
            record(&case, CONCURRENT_WRITERS, iterations, time);
            time
        });
    });
    let count = sqlite.lock().expect("connection").count() as u64;
    report_store(
        "SQLite",
        count,
        &[&sqlite_path, &sqlite_path.with_extension("sqlite-wal")],
    );
    group.finish();
}

fn read(c: &mut Criterion) {
    let dir = TempDir::new().expect("temporary directory");
    // The same events in both stores, appended in batches of 1000 (not timed).
    let log = create_log(&dir.path().join("read.wlog"));
    let mut sqlite = Sqlite::create(&dir.path().join("read.sqlite"));
    let mut events = Events::starting_at(1 << 50);
    let mut batch = Vec::new();
    for _ in 0..READ_EVENTS / 1000 {
        events.fill(&mut batch, 1000);
        log.append_batch(&batch).expect("fill the weightlog log");
        sqlite
            .append_batch(&batch)
            .expect("fill the SQLite database");
    }
    let n = READ_EVENTS as u64;
    assert_eq!(log.reader().size().expect("log size"), 1 + n);
    assert_eq!(sqlite.count() as u64, n);

    let mut group = c.benchmark_group("read");
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(n));
    type Check = fn(&[u8]);
    let checks: [(&str, Check); 2] = [
        ("access", |bytes| {
            black_box(codec::access(bytes).expect("valid event"));
        }),
        ("decode", |bytes| {
            black_box(codec::decode(bytes).expect("valid event"));
        }),
    ];
    for (name, check) in checks {
        // Seq 0 is the log's genesis; seqs 1..=n are the events SQLite holds as rows 1..=n.
        let case = format!("read/weightlog/{name}");
        group.bench_function(format!("weightlog/{name}"), |b| {
            b.iter_custom(|iterations| {
                let start = Instant::now();
                for _ in 0..iterations {
                    let mut seen = 0u64;
                    let snapshot = log.reader().snapshot().expect("snapshot");
                    snapshot
                        .for_each_raw(1, n + 1, |_, bytes| {
                            check(bytes);
                            seen += 1;
                            Ok(())
                        })
                        .expect("weightlog read");
                    assert_eq!(seen, n);
                }
                let time = start.elapsed();
                record(&case, n, iterations, time);
                time
            });
        });

        let case = format!("read/sqlite/{name}");
        group.bench_function(format!("sqlite/{name}"), |b| {
            b.iter_custom(|iterations| {
                let start = Instant::now();
                for _ in 0..iterations {
                    let mut seen = 0u64;
                    let mut statement = sqlite
                        .connection
                        .prepare_cached("SELECT bytes FROM events ORDER BY seq")
                        .expect("prepare");
                    let mut rows = statement.query([]).expect("SQLite read");
                    while let Some(row) = rows.next().expect("SQLite row") {
                        check(row.get_ref(0).expect("column").as_blob().expect("blob"));
                        seen += 1;
                    }
                    assert_eq!(seen, n);
                }
                let time = start.elapsed();
                record(&case, n, iterations, time);
                time
            });
        });
    }
    group.finish();
}

fn context(c: &mut Criterion) {
    let dir = TempDir::new().expect("temporary directory");
    let mut group = c.benchmark_group("context");

    // One checkpoint signature, as the writer makes once per commit.
    let hotkey = Hotkey::from_seed(&[1; 32]);
    let origin = origin_for(7, &hotkey.public(), &LogId([7; 16]));
    let root = leaf_hash(b"a root");
    group.throughput(Throughput::Elements(1));
    group.bench_function("sr25519_sign_checkpoint", |b| {
        b.iter(|| {
            let checkpoint =
                Checkpoint::new(origin.clone(), black_box(123_456), root).expect("valid origin");
            let signed = checkpoint.sign(hotkey.public(), |message| hotkey.sign(message));
            black_box(signed.to_text())
        });
    });

    // One durable redb commit, empty and holding one small row.
    let database =
        redb::Database::create(dir.path().join("commit.redb")).expect("create redb database");
    const TABLE: redb::TableDefinition<u64, u64> = redb::TableDefinition::new("t");
    let mut key = 0u64;
    for rows in [0, 1] {
        group.bench_function(format!("redb_durable_commit_{rows}_rows"), |b| {
            b.iter(|| {
                let mut transaction = database.begin_write().expect("begin");
                transaction
                    .set_durability(redb::Durability::Immediate)
                    .expect("durability");
                if rows > 0 {
                    let mut table = transaction.open_table(TABLE).expect("table");
                    table.insert(key, key).expect("insert");
                    key += 1;
                }
                transaction.commit().expect("commit");
            });
        });
    }

    // The floor under any durable commit: one fdatasync of a small append.
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.path().join("fsync.bin"))
        .expect("open file");
    let page = [0x5a_u8; 4096];
    group.bench_function("fdatasync_4k_append", |b| {
        b.iter(|| {
            file.write_all(&page).expect("write");
            file.sync_data().expect("fdatasync");
        });
    });

    // Per-event CPU work of the pipeline, outside any transaction.
    let mut events = Events::starting_at(1 << 60);
    let mut batch = Vec::new();
    events.fill(&mut batch, 1000);
    group.throughput(Throughput::Elements(batch.len() as u64));
    group.bench_function("encode_1000_events", |b| {
        b.iter(|| {
            for event in &batch {
                black_box(EncodedEvent::new(event).expect("valid event"));
            }
        });
    });
    let encoded: Vec<Vec<u8>> = batch
        .iter()
        .map(|event| codec::encode(event).expect("valid event"))
        .collect();
    group.bench_function("leaf_hash_and_merkle_push_1000_events", |b| {
        let mut frontier = Frontier::new();
        b.iter(|| {
            for bytes in &encoded {
                black_box(frontier.push(leaf_hash(bytes)));
            }
        });
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(SAMPLES)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = append, concurrent, read, context
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    print_summary();
}
