//! The deterministic sandbox: equal (program, stdin, limits) give byte-identical results
//! across runs, threads and a wiped compiled-module cache; hostile programs end with a clear
//! verdict and leave the host alone; the example wasm plugin loads only with its pinned hash.
//!
//! python.wasm comes from the asset cache (`$WEIGHTLOG_CACHE`, fetched once if missing).
#![cfg(feature = "sandbox")]

use std::path::PathBuf;

use weightlog::assets::{self, Cache};
use weightlog::sandbox::plugin::{PluginError, WasmEnvironment, module_hash};
use weightlog::sandbox::wasi::{MONOTONIC_NS, REALTIME_NS};
use weightlog::sandbox::{self, Limits, Origin, RunResult, Sandbox, Verdict};
use weightlog_schema::Hash;
use weightlog_schema::event::{EnvironmentKind, EnvironmentRegistered};

fn python_wasm() -> PathBuf {
    let cache = Cache::from_env().expect("cache dir");
    let asset = cache
        .ensure(assets::by_name(assets::PYTHON_WASM).unwrap())
        .expect("python.wasm is cached or fetchable");
    asset.path(sandbox::PYTHON_WASM_FILE)
}

fn shared() -> &'static Sandbox {
    Sandbox::shared().expect("the shared sandbox")
}

fn run(program: &str, stdin: &str) -> RunResult {
    shared()
        .run_python(program, stdin.as_bytes(), &Limits::default())
        .expect("the sandbox runs the program")
}

fn small(fuel: u64, memory_bytes: u64, output_bytes: u64) -> Limits {
    Limits {
        fuel,
        memory_bytes,
        output_bytes,
    }
}

/// A program whose output covers what could differ between runs: hashing, randomness,
/// the clock, dict/set order, and id-free object reprs.
const WITNESS: &str = r#"
import sys, random, time, os
data = sys.stdin.read().split()
print(sum(int(x) for x in data))
print(hash("weightlog"), hash(("a", 1)))
print(sorted({"x", "y", "z"}), list({"b": 1, "a": 2}))
print(random.random(), os.urandom(8).hex())
print(time.time(), time.monotonic())
"#;

#[test]
fn the_same_program_input_and_fuel_give_byte_identical_results() {
    let first = run(WITNESS, "1 2 3 4");
    assert_eq!(first.verdict, Verdict::Ok, "{}", first.stderr_text());
    assert!(
        first.stdout_text().starts_with("10\n"),
        "{}",
        first.stdout_text()
    );
    assert!(first.fuel_used > 0 && first.fuel_used < first.limits.fuel);
    for _ in 0..2 {
        assert_eq!(run(WITNESS, "1 2 3 4"), first);
    }
    // Different input, different output: the result is a function of the input.
    assert_ne!(run(WITNESS, "5").stdout, first.stdout);
}

#[test]
fn results_are_identical_across_threads() {
    let alone = run(WITNESS, "7 8 9");
    let results: Vec<RunResult> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| run(WITNESS, "7 8 9")))
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().unwrap())
            .collect()
    });
    for result in results {
        assert_eq!(result, alone);
    }
}

#[test]
fn results_are_identical_after_a_compiled_module_cache_wipe() {
    let directory = tempfile::tempdir().unwrap();
    let compiled = directory.path().join("compiled");
    let wasm = python_wasm();
    let limits = small(600_000_000, 64 << 20, 1 << 16);

    let cold = Sandbox::new(&wasm, Some(&compiled)).unwrap();
    assert_eq!(cold.origin(), Origin::Compiled);
    let before = cold.run_python(WITNESS, b"1", &limits).unwrap();
    drop(cold);

    let warm = Sandbox::new(&wasm, Some(&compiled)).unwrap();
    assert_eq!(warm.origin(), Origin::Cached);
    assert_eq!(warm.run_python(WITNESS, b"1", &limits).unwrap(), before);
    drop(warm);

    // A torn cache entry is not trusted: it is recompiled.
    let entry = std::fs::read_dir(&compiled)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| {
            path.extension()
                .is_some_and(|extension| extension == "cwasm")
        })
        .expect("a compiled entry");
    let bytes = std::fs::read(&entry).unwrap();
    std::fs::write(&entry, &bytes[..bytes.len() / 2]).unwrap();
    let torn = Sandbox::new(&wasm, Some(&compiled)).unwrap();
    assert_eq!(torn.origin(), Origin::Compiled);
    drop(torn);

    std::fs::remove_dir_all(&compiled).unwrap();
    let rebuilt = Sandbox::new(&wasm, Some(&compiled)).unwrap();
    assert_eq!(rebuilt.origin(), Origin::Compiled);
    assert_eq!(rebuilt.run_python(WITNESS, b"1", &limits).unwrap(), before);
}

#[test]
fn an_infinite_loop_runs_out_of_fuel_at_the_same_point() {
    let limits = small(400_000_000, 64 << 20, 1 << 16);
    let spin = "print('start', flush=True)\nwhile True:\n    pass\n";
    let first = shared().run_python(spin, b"", &limits).unwrap();
    assert_eq!(first.verdict, Verdict::OutOfFuel, "{first:?}");
    assert_eq!(first.fuel_used, limits.fuel);
    assert_eq!(first.stdout_text(), "start\n");
    assert_eq!(shared().run_python(spin, b"", &limits).unwrap(), first);
}

#[test]
fn a_memory_bomb_hits_the_cap() {
    let limits = small(5_000_000_000, 48 << 20, 1 << 16);
    let bomb = "blocks = []\nwhile True:\n    blocks.append(bytearray(1 << 20))\n";
    let result = shared().run_python(bomb, b"", &limits).unwrap();
    assert_eq!(
        result.verdict,
        Verdict::OutOfMemory,
        "{}",
        result.stderr_text()
    );
    assert!(result.stderr_text().contains("MemoryError"), "{result:?}");
    assert_eq!(shared().run_python(bomb, b"", &limits).unwrap(), result);
    // A cap below python.wasm's initial memory refuses the instance at once.
    let tiny = shared()
        .run_python("print(1)", b"", &small(1_000_000, 1 << 20, 1 << 16))
        .unwrap();
    assert_eq!(tiny.verdict, Verdict::OutOfMemory, "{tiny:?}");
}

#[test]
fn huge_output_is_cut_at_the_cap() {
    let limits = small(2_000_000_000, 64 << 20, 10_000);
    let flood = "import sys\nwhile True:\n    sys.stdout.write('x' * 1000)\n";
    let result = shared().run_python(flood, b"", &limits).unwrap();
    assert_eq!(result.verdict, Verdict::OutputTooLarge, "{result:?}");
    assert_eq!(result.stdout.len(), 10_000);
    let stderr_flood =
        "import sys\nfor _ in range(100000):\n    print('e' * 100, file=sys.stderr)\n";
    let result = shared().run_python(stderr_flood, b"", &limits).unwrap();
    assert_eq!(result.verdict, Verdict::OutputTooLarge, "{result:?}");
    assert!(result.stderr.len() <= 10_000);
}

#[test]
fn deep_recursion_is_a_clean_error() {
    let result = run("def f(n):\n    return f(n + 1)\nf(0)\n", "");
    assert_eq!(result.verdict, Verdict::Error);
    assert!(
        result.stderr_text().contains("RecursionError"),
        "{result:?}"
    );
    // Lifting Python's limit moves the failure into the interpreter, still contained.
    let unbounded =
        "import sys\nsys.setrecursionlimit(10**8)\ndef f(n):\n    return f(n + 1)\nf(0)\n";
    let limits = small(3_000_000_000, 64 << 20, 1 << 16);
    let first = shared().run_python(unbounded, b"", &limits).unwrap();
    assert_ne!(first.verdict, Verdict::Ok, "{first:?}");
    assert_eq!(shared().run_python(unbounded, b"", &limits).unwrap(), first);
}

#[test]
fn host_files_do_not_exist_for_the_guest() {
    for path in [
        "/etc/passwd",
        "/etc/hostname",
        "/proc/self/environ",
        "/root",
        "../../etc/passwd",
    ] {
        let program = format!(
            "try:\n    open({path:?}).read()\n    print('read')\nexcept OSError as error:\n    print('refused', type(error).__name__)\n"
        );
        let result = run(&program, "");
        assert_eq!(
            result.verdict,
            Verdict::Ok,
            "{path}: {}",
            result.stderr_text()
        );
        assert!(
            result.stdout_text().starts_with("refused"),
            "{path}: {result:?}"
        );
    }
    let listing = run(
        "import os\ntry:\n    print(sorted(os.listdir('/')))\nexcept OSError as error:\n    print('refused', type(error).__name__)\n",
        "",
    );
    assert!(!listing.stdout_text().contains("etc"), "{listing:?}");
    let write = run(
        "try:\n    open('/tmp/weightlog-sandbox-escape', 'w').write('x')\n    print('wrote')\nexcept OSError:\n    print('refused')\n",
        "",
    );
    assert_eq!(write.stdout_text(), "refused\n", "{write:?}");
    assert!(!std::path::Path::new("/tmp/weightlog-sandbox-escape").exists());
}

#[test]
fn sockets_and_subprocesses_are_unavailable() {
    let socket = run(
        "try:\n    import socket\n    s = socket.socket()\n    s.connect(('127.0.0.1', 80))\n    print('connected')\nexcept Exception as error:\n    print('refused', type(error).__name__)\n",
        "",
    );
    assert!(socket.stdout_text().starts_with("refused"), "{socket:?}");
    for program in [
        "import os\nos.system('touch /tmp/weightlog-sandbox-escape')\n",
        "import subprocess\nsubprocess.run(['touch', '/tmp/weightlog-sandbox-escape'])\n",
        "import os\nos.fork()\n",
    ] {
        let result = run(program, "");
        assert_eq!(result.verdict, Verdict::Error, "{program}: {result:?}");
        assert!(!result.stderr.is_empty());
    }
    assert!(!std::path::Path::new("/tmp/weightlog-sandbox-escape").exists());
}

#[test]
fn the_clock_reads_the_same_fixed_values_twice() {
    let result = run(
        "import time\na = (time.time_ns(), time.monotonic_ns(), time.perf_counter_ns())\ntime.sleep(0.5)\nb = (time.time_ns(), time.monotonic_ns(), time.perf_counter_ns())\nprint(a == b, a[0], a[1])\n",
        "",
    );
    assert_eq!(result.verdict, Verdict::Ok, "{}", result.stderr_text());
    assert_eq!(
        result.stdout_text(),
        format!("True {REALTIME_NS} {MONOTONIC_NS}\n")
    );
}

#[test]
fn limits_above_the_maxima_are_refused_before_running() {
    let limits = Limits {
        fuel: sandbox::FUEL_MAX + 1,
        ..Limits::default()
    };
    assert!(shared().run_python("print(1)", b"", &limits).is_err());
}

const DIGIT_PLUGIN: &str = include_str!("../plugins/digit.wat");

#[test]
fn the_example_plugin_loads_pinned_and_a_changed_module_is_refused() {
    let engine = sandbox::engine().unwrap();
    let pinned = module_hash(DIGIT_PLUGIN.as_bytes());
    let registration = EnvironmentRegistered {
        name: "plugin:digit".into(),
        version: "1".into(),
        environment_kind: EnvironmentKind::Wasm,
        module_hash: Some(pinned),
        parameters_json: "{}".into(),
    };
    let plugin =
        WasmEnvironment::from_registration(&engine, &registration, DIGIT_PLUGIN.as_bytes())
            .expect("the pinned module loads");
    assert_eq!(plugin.blake3(), &pinned);

    let (challenge, fuel) = plugin.generate(1_234, &serde_json::json!({})).unwrap();
    assert!(challenge.prompt.contains("digit 4"), "{challenge:?}");
    assert_eq!(challenge.extra_json, r#"{"digit":4}"#);
    assert!(fuel > 0);
    assert_eq!(
        plugin.generate(1_234, &serde_json::json!({})).unwrap(),
        (challenge.clone(), fuel)
    );
    let right = plugin
        .evaluate(1_234, &challenge.extra_json, Some("4"))
        .unwrap();
    assert_eq!(right.score, 1.0);
    assert!(right.fuel_used > 0);
    assert_eq!(
        plugin
            .evaluate(1_234, &challenge.extra_json, Some("5"))
            .unwrap()
            .score,
        0.0
    );
    assert_eq!(
        plugin
            .evaluate(1_234, &challenge.extra_json, None)
            .unwrap()
            .score,
        0.0
    );

    let changed = DIGIT_PLUGIN.replace("Reply with", "Answer with");
    let refused = WasmEnvironment::from_registration(&engine, &registration, changed.as_bytes());
    assert!(
        matches!(refused, Err(PluginError::HashMismatch { .. })),
        "{refused:?}"
    );
    let builtin = EnvironmentRegistered {
        environment_kind: EnvironmentKind::Builtin,
        ..registration
    };
    assert!(matches!(
        WasmEnvironment::from_registration(&engine, &builtin, DIGIT_PLUGIN.as_bytes()),
        Err(PluginError::NotWasm { .. })
    ));
}

#[test]
fn a_plugin_that_imports_the_host_is_refused() {
    let engine = sandbox::engine().unwrap();
    let importing = r#"(module (import "wasi_snapshot_preview1" "clock_time_get" (func (param i32 i64 i32) (result i32))) (memory (export "memory") 1))"#;
    let refused = WasmEnvironment::load(
        &engine,
        "importing",
        importing.as_bytes(),
        &module_hash(importing.as_bytes()),
    );
    assert!(
        matches!(refused, Err(PluginError::Abi { .. })),
        "{refused:?}"
    );
    let wrong = Hash([0; 32]);
    assert!(matches!(
        WasmEnvironment::load(&engine, "digit", DIGIT_PLUGIN.as_bytes(), &wrong),
        Err(PluginError::HashMismatch { .. })
    ));
}

#[test]
fn a_plugin_that_loops_runs_out_of_fuel() {
    let engine = sandbox::engine().unwrap();
    let looping = r#"(module (memory (export "memory") 1)
        (func (export "alloc") (param i32) (result i32) (i32.const 0))
        (func (export "generate") (param i64 i32 i32) (result i64) (loop $l (br $l)) (i64.const 0))
        (func (export "evaluate") (param i64 i32 i32 i32 i32) (result i64) (i64.const 0)))"#;
    let plugin = WasmEnvironment::load(
        &engine,
        "looping",
        looping.as_bytes(),
        &module_hash(looping.as_bytes()),
    )
    .unwrap();
    assert!(matches!(
        plugin.generate(1, &serde_json::json!({})),
        Err(PluginError::OutOfFuel { .. })
    ));
    // evaluate returns an empty result, which is not a verdict.
    assert!(matches!(
        plugin.evaluate(1, "{}", Some("x")),
        Err(PluginError::Call { .. })
    ));
}

#[test]
fn the_cli_runs_a_program_and_reports_its_verdict() {
    let directory = tempfile::tempdir().unwrap();
    let program = directory.path().join("sum.py");
    let stdin = directory.path().join("input.txt");
    std::fs::write(
        &program,
        "import sys\nprint(sum(map(int, sys.stdin.read().split())))\n",
    )
    .unwrap();
    std::fs::write(&stdin, "20 22").unwrap();
    let weightlog = env!("CARGO_BIN_EXE_weightlog");
    let output = std::process::Command::new(weightlog)
        .args([
            "sandbox",
            "run",
            "--json",
            "--fuel",
            "900000000",
            "--memory-mb",
            "64",
        ])
        .arg(&program)
        .arg("--stdin")
        .arg(&stdin)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["verdict"], "ok");
    assert_eq!(json["stdout"], "42\n");
    assert_eq!(json["fuel"], 900_000_000u64);
    assert!(json["fuel_used"].as_u64().is_some_and(|fuel| fuel > 0));

    std::fs::write(&program, "while True:\n    pass\n").unwrap();
    let output = std::process::Command::new(weightlog)
        .args(["sandbox", "run", "--fuel", "300000000"])
        .arg(&program)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("verdict: out_of_fuel"), "{stderr}");
    assert!(
        stderr.contains("fuel used 300000000 of 300000000"),
        "{stderr}"
    );
}
