//! Sustained push-mode load on the node's HTTP API over loopback.
//!
//! Run it with `cargo bench --bench push`; `cargo bench --bench push -- --test` runs a
//! short smoke version (a few hundred requests) in seconds.
//!
//! # What is measured
//!
//! The real router ([`weightlog::api::router`]) served by [`weightlog::api::serve`] on a
//! `127.0.0.1:0` listener, in front of a real redb log in a temporary directory, with a task
//! draining the push queue as the node would. A bounded load generator keeps
//! [`IN_FLIGHT`] Epistula-signed `POST /challenges` requests in flight (each with a fresh
//! uuid and challenge id), so every request pays the whole path: signature and freshness
//! checks, the replay cache, JSON checks, the duplicate lookup, the queue reservation and a
//! durable (fsync'd) group commit before its `202`.
//!
//! * `push/signed_challenges`: criterion's throughput, [`REQUESTS_PER_ITERATION`] accepted
//!   challenges per iteration.
//! * Then a long sustained run of [`SUSTAINED_REQUESTS`] requests (override with
//!   `WEIGHTLOG_PUSH_REQUESTS`), printing challenges accepted per second, the p50 and p99
//!   latency from sending a request to its durable `202`, and the process's resident memory
//!   (`VmRSS`) after the run. The load generator shares the process (and the two cores) with
//!   the server, so these are lower bounds for a node whose pushers live elsewhere.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use tokio::runtime::Runtime;
use tokio::sync::mpsc;
use weightlog::api::{self, ApiConfig, ApiState, Metrics, PushConfig};
use weightlog::epistula::{self, Headers};
use weightlog::keys::Hotkey;
use weightlog::log::{Genesis, Log};
use weightlog_schema::event::{AccountId, LogId};

/// Requests the load generator keeps in flight.
const IN_FLIGHT: usize = 64;
/// Accepted challenges per criterion iteration.
const REQUESTS_PER_ITERATION: u64 = 256;
/// Requests in the long sustained run.
const SUSTAINED_REQUESTS: u64 = 50_000;
/// Requests in the sustained run under `--test`.
const SUSTAINED_REQUESTS_TEST: u64 = 300;
/// The push queue's capacity: the node's backlog.
const QUEUE_CAPACITY: usize = 4_096;

/// A node serving the API on loopback, and a client that pushes to it.
struct Bench {
    runtime: Runtime,
    address: SocketAddr,
    client: reqwest::Client,
    sender: Hotkey,
    receiver: AccountId,
    /// Makes every challenge id unique across iterations and runs.
    next_id: Arc<AtomicU64>,
    log: Arc<Log>,
    _dir: tempfile::TempDir,
}

impl Bench {
    fn start() -> Bench {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let dir = tempfile::tempdir().expect("temp dir");
        let node_key = Hotkey::from_seed(&[31; 32]);
        let receiver = AccountId(node_key.public_key());
        let sender = Hotkey::from_seed(&[32; 32]);
        let genesis = Genesis {
            netuid: 7,
            profile: "affine".into(),
            parameters_json: "{}".into(),
            timestamp_ms: epistula::now_ms().expect("clock"),
            log_id: LogId([9; 16]),
        };
        let log = Arc::new(
            Log::create(&dir.path().join("push.redb"), node_key, genesis).expect("create log"),
        );
        let (queue, mut pushed) = mpsc::channel(QUEUE_CAPACITY);
        let state = ApiState {
            log: log.clone(),
            metrics: Arc::new(Metrics::new()),
            config: Arc::new(ApiConfig {
                push: Some(PushConfig {
                    allowed: BTreeSet::from([AccountId(sender.public_key())]),
                    receiver,
                    queue,
                }),
                ..ApiConfig::default()
            }),
            started: Instant::now(),
        };
        let address = runtime.block_on(async {
            // The node's consumer: takes challenges as fast as they come.
            tokio::spawn(async move { while pushed.recv().await.is_some() {} });
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind loopback");
            let address = listener.local_addr().expect("local address");
            tokio::spawn(api::serve(
                listener,
                api::router(state),
                std::future::pending(),
            ));
            address
        });
        weightlog::http::install_tls_provider();
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(IN_FLIGHT)
            .build()
            .expect("http client");
        Bench {
            runtime,
            address,
            client,
            sender,
            receiver,
            next_id: Arc::new(AtomicU64::new(0)),
            log,
            _dir: dir,
        }
    }

    /// Pushes `count` challenges with [`IN_FLIGHT`] in flight; returns the wall time and each
    /// request's latency to its `202`.
    fn push(&self, count: u64) -> (Duration, Vec<Duration>) {
        self.runtime.block_on(async {
            let remaining = Arc::new(AtomicU64::new(count));
            let started = Instant::now();
            let mut workers = tokio::task::JoinSet::new();
            for _ in 0..IN_FLIGHT {
                let remaining = remaining.clone();
                let next_id = self.next_id.clone();
                let client = self.client.clone();
                let sender = self.sender.clone();
                let receiver = self.receiver;
                let url = format!("http://{}/challenges", self.address);
                workers.spawn(async move {
                    let mut latencies = Vec::new();
                    while remaining
                        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                            left.checked_sub(1)
                        })
                        .is_ok()
                    {
                        let id = next_id.fetch_add(1, Ordering::Relaxed);
                        let body = challenge(id);
                        let sent = Instant::now();
                        let headers =
                            Headers::sign_now(&sender, &body, Some(receiver)).expect("sign");
                        let mut request = client.post(&url).body(body);
                        for (name, value) in headers.pairs() {
                            request = request.header(name, value);
                        }
                        let response = request.send().await.expect("send");
                        let status = response.status();
                        let text = response.text().await.expect("read the answer");
                        assert_eq!(status.as_u16(), 202, "challenge {id}: {text}");
                        latencies.push(sent.elapsed());
                    }
                    latencies
                });
            }
            let mut latencies = Vec::with_capacity(count as usize);
            while let Some(done) = workers.join_next().await {
                latencies.extend(done.expect("a load worker panicked"));
            }
            (started.elapsed(), latencies)
        })
    }
}

fn challenge(id: u64) -> Vec<u8> {
    let deadline_ms = epistula::now_ms().expect("clock") + 60_000;
    serde_json::json!({
        "challenge_id": format!("bench-{id}"),
        "environment": "sat",
        "seed": id,
        "prompt": "Is (a or b) and (not a or c) and (not b or not c) satisfiable?",
        "target_uids": [1, 2, 3, 4, 5, 6, 7, 8],
        "deadline_ms": deadline_ms,
    })
    .to_string()
    .into_bytes()
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 * fraction).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index]
}

/// The process's resident memory in KiB, from `/proc/self/status` (Linux only).
fn resident_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn sustained(bench: &Bench, requests: u64) {
    let before = bench.log.reader().size().expect("log size");
    let (elapsed, mut latencies) = bench.push(requests);
    latencies.sort();
    let after = bench.log.reader().size().expect("log size");
    assert_eq!(
        after - before,
        requests,
        "every accepted challenge is in the log"
    );
    let rate = requests as f64 / elapsed.as_secs_f64();
    let milliseconds = |duration: Duration| duration.as_secs_f64() * 1e3;
    let rss = resident_kib().map_or("unknown".to_string(), |kib| {
        format!("{:.1} MiB", kib as f64 / 1024.0)
    });
    println!(
        "push sustained: {requests} challenges accepted in {:.2} s with {IN_FLIGHT} in flight: \
         {rate:.0} accepted/s; latency to the durable 202: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; \
         log size {after}; VmRSS after the run {rss}",
        elapsed.as_secs_f64(),
        milliseconds(percentile(&latencies, 0.50)),
        milliseconds(percentile(&latencies, 0.99)),
        milliseconds(percentile(&latencies, 1.0)),
    );
}

fn main() {
    let test_mode = std::env::args().any(|argument| argument == "--test");
    let bench = Bench::start();

    let mut criterion = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .configure_from_args();
    let mut group = criterion.benchmark_group("push");
    group.throughput(Throughput::Elements(REQUESTS_PER_ITERATION));
    group.bench_function("signed_challenges", |bencher| {
        bencher.iter_custom(|iterations| {
            let (elapsed, _) = bench.push(iterations * REQUESTS_PER_ITERATION);
            elapsed
        })
    });
    group.finish();

    let requests = if test_mode {
        SUSTAINED_REQUESTS_TEST
    } else {
        std::env::var("WEIGHTLOG_PUSH_REQUESTS")
            .ok()
            .and_then(|value| value.parse().ok())
            .unwrap_or(SUSTAINED_REQUESTS)
    };
    sustained(&bench, requests);
    criterion.final_summary();
}
