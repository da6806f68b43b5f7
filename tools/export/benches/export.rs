//! Export throughput by compression: rows written per second exporting a generated log
//! (`WEIGHTLOG_EXPORT_BENCH_EVENTS` events, default 1,000,000; a small log in `cargo test`'s
//! single-pass mode). The generated log is kept under the target directory between runs.
//! Peak memory is measured per compression in a fresh process by the `peak_memory` example
//! (see the README's benchmark section).

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::PathBuf;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use weightlog_export::{Compression, ExportOptions, Table, export};

/// Events per commit in the generated log, as a busy validator's batches.
const BENCH_BATCH_EVENTS: u64 = 10_000;
/// Events of the log in `cargo test --bench export` (criterion's test mode).
const TEST_MODE_EVENTS: u64 = 2_000;

/// `cargo bench` passes `--bench`; `cargo test --bench` does not (criterion's test mode).
fn benchmarking() -> bool {
    std::env::args().any(|argument| argument == "--bench")
}

fn bench_events() -> u64 {
    if !benchmarking() {
        return TEST_MODE_EVENTS;
    }
    std::env::var("WEIGHTLOG_EXPORT_BENCH_EVENTS")
        .ok()
        .and_then(|value| value.replace('_', "").parse().ok())
        .unwrap_or(1_000_000)
}

/// The generated log for `events`: made once under `target/export-bench/` and reused when
/// benchmarking (a million events take minutes to append), in `scratch` in test mode.
fn bench_log(events: u64, scratch: &std::path::Path) -> PathBuf {
    let folder = if benchmarking() {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/export-bench")
    } else {
        scratch.to_path_buf()
    };
    std::fs::create_dir_all(&folder).unwrap();
    let path = folder.join(format!("log-{events}.redb"));
    if !path.exists() {
        let building = folder.join(format!("log-{events}.redb.building"));
        let _ = std::fs::remove_file(&building);
        common::generate(&building, events, BENCH_BATCH_EVENTS);
        std::fs::rename(&building, &path).unwrap();
    }
    path
}

fn exports(criterion: &mut Criterion) {
    let events = bench_events();
    let scratch = tempfile::tempdir().unwrap();
    let log = bench_log(events, scratch.path());
    let mut group = criterion.benchmark_group(format!("export {events} events"));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(1));
    for compression in [Compression::Zstd, Compression::Snappy, Compression::None] {
        let mut run = 0u64;
        let mut export_once = || {
            run += 1;
            let out = scratch.path().join(format!("{compression:?}-{run}"));
            let summary = export(
                &ExportOptions {
                    log: log.clone(),
                    out_dir: out.clone(),
                    from: 0,
                    to: None,
                    tables: Table::ALL.to_vec(),
                    partition: None,
                    compression,
                },
                |_, _| {},
            )
            .unwrap();
            std::fs::remove_dir_all(&out).unwrap();
            summary.files.iter().map(|file| file.rows).sum::<u64>()
        };
        let rows = export_once();
        group.throughput(Throughput::Elements(rows));
        group.bench_function(format!("{compression:?}").to_lowercase(), |bencher| {
            bencher.iter(&mut export_once)
        });
    }
    group.finish();
}

criterion_group!(benches, exports);
criterion_main!(benches);
