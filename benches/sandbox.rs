//! The deterministic sandbox against what upstream validators do for a DED test case.
//!
//! Run it with `cargo bench --bench sandbox` (`-- --test` runs each case once as a smoke
//! test). python.wasm comes from the asset cache (`$WEIGHTLOG_CACHE`).
//!
//! # What is measured
//!
//! * `ded_case/sandbox_warm`: one DED-style test case (a ten-line program reading a line of
//!   integers and printing a result) in [`Sandbox::run_python`] on a sandbox built once:
//!   a fresh store and instance (copy-on-write memory image), CPython's start-up, the
//!   program, teardown. Fuel-metered and deterministic.
//! * `ded_case/python3_subprocess`, the baseline: the same program and stdin in a fresh
//!   native `python3 -c` subprocess per test case, as upstream's DED/ABD run it (wall-clock
//!   limits, not reproducible).
//! * `first_run/with_module_cache`: a process's first run: build the sandbox from
//!   python.wasm with the compiled-module cache populated (read, hash-check and map the
//!   serialised module, link) plus one run.
//! * `first run without module cache`: the same with an empty cache (cranelift compiles
//!   all of python.wasm). It takes tens of seconds, so it is timed once, outside criterion,
//!   and printed on stderr.

use std::hint::black_box;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};
use weightlog::assets::{self, Cache};
use weightlog::sandbox::{self, Limits, Origin, Sandbox, Verdict};

const PROGRAM: &str = "\
xs = list(map(int, input().split()))
best = cur = xs[0]
for x in xs[1:]:
    cur = max(x, cur + x)
    best = max(best, cur)
print(best)
";
const STDIN: &str = "-2 1 -3 4 -1 2 1 -5 4\n";

fn python_wasm() -> std::path::PathBuf {
    let cache = Cache::from_env().expect("cache dir");
    cache
        .ensure(assets::by_name(assets::PYTHON_WASM).expect("pinned"))
        .expect("python.wasm")
        .path(sandbox::PYTHON_WASM_FILE)
}

fn python3_subprocess() -> Vec<u8> {
    let mut child = Command::new("python3")
        .args(["-c", PROGRAM])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(STDIN.as_bytes())
        .expect("write stdin");
    let output = child.wait_with_output().expect("python3 finishes");
    assert!(output.status.success());
    output.stdout
}

fn ded_case(criterion: &mut Criterion) {
    let sandbox = Sandbox::shared().expect("sandbox");
    let limits = Limits::default();
    let result = sandbox
        .run_python(PROGRAM, STDIN.as_bytes(), &limits)
        .unwrap();
    assert_eq!(result.verdict, Verdict::Ok);
    assert_eq!(result.stdout, python3_subprocess(), "both print the same");
    eprintln!("ded_case: fuel used per run {}", result.fuel_used);

    let mut group = criterion.benchmark_group("ded_case");
    group.bench_function("sandbox_warm", |bencher| {
        bencher.iter(|| {
            black_box(
                sandbox
                    .run_python(black_box(PROGRAM), STDIN.as_bytes(), &limits)
                    .unwrap(),
            )
        });
    });
    group.bench_function("python3_subprocess", |bencher| {
        bencher.iter(|| black_box(python3_subprocess()));
    });
    group.finish();
}

fn first_run(criterion: &mut Criterion) {
    let wasm = python_wasm();
    let directory = tempfile::tempdir().unwrap();
    let compiled = directory.path().join("compiled");
    let limits = Limits::default();

    let started = Instant::now();
    let cold = Sandbox::new(&wasm, Some(&compiled)).unwrap();
    assert_eq!(cold.origin(), Origin::Compiled);
    cold.run_python(PROGRAM, STDIN.as_bytes(), &limits).unwrap();
    eprintln!(
        "first run without module cache (compile + store + one run), timed once: {:.2?}",
        started.elapsed()
    );
    drop(cold);

    let mut group = criterion.benchmark_group("first_run");
    group.sample_size(10);
    group.bench_function("with_module_cache", |bencher| {
        bencher.iter(|| {
            let sandbox = Sandbox::new(&wasm, Some(&compiled)).unwrap();
            assert_eq!(sandbox.origin(), Origin::Cached);
            black_box(
                sandbox
                    .run_python(PROGRAM, STDIN.as_bytes(), &limits)
                    .unwrap(),
            )
        });
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
}

criterion_group! {
    name = benches;
    config = config();
    targets = ded_case, first_run
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
