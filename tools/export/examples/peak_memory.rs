//! One export in a fresh process, printing rows per second and the process's peak
//! resident memory (VmHWM), so each compression's peak is measured alone:
//!
//! ```sh
//! cargo run --release -p weightlog-export --example peak_memory -- 1000000 zstd
//! ```
//!
//! The log is generated (deterministically, like the benchmark's) on first use and kept
//! under `target/export-bench/`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::PathBuf;
use std::time::Instant;

use weightlog_export::{Compression, ExportOptions, Table, export};

fn main() {
    let mut arguments = std::env::args().skip(1);
    let events: u64 = arguments
        .next()
        .and_then(|value| value.replace('_', "").parse().ok())
        .unwrap_or(1_000_000);
    let compression = match arguments.next().as_deref() {
        Some("snappy") => Compression::Snappy,
        Some("none") => Compression::None,
        _ => Compression::Zstd,
    };
    let folder = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/export-bench");
    std::fs::create_dir_all(&folder).expect("create target/export-bench");
    let log = folder.join(format!("log-{events}.redb"));
    if !log.exists() {
        let building = folder.join(format!("log-{events}.redb.building"));
        let _ = std::fs::remove_file(&building);
        let started = Instant::now();
        common::generate(&building, events, 10_000);
        std::fs::rename(&building, &log).expect("rename the generated log");
        eprintln!("generated {} in {:.1?}", log.display(), started.elapsed());
        // Measure the export in a process that did not also build the log.
        eprintln!("run again to measure");
        return;
    }
    let out = folder.join(format!("out-{events}-{compression:?}"));
    let _ = std::fs::remove_dir_all(&out);
    let started = Instant::now();
    let summary = export(
        &ExportOptions {
            log,
            out_dir: out.clone(),
            from: 0,
            to: None,
            tables: Table::ALL.to_vec(),
            partition: None,
            compression,
        },
        |_, _| {},
    )
    .expect("export");
    let seconds = started.elapsed().as_secs_f64();
    let rows: u64 = summary.files.iter().map(|file| file.rows).sum();
    let bytes: u64 = summary
        .files
        .iter()
        .map(|file| std::fs::metadata(&file.path).map_or(0, |meta| meta.len()))
        .sum();
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let peak = status
        .lines()
        .find(|line| line.starts_with("VmHWM:"))
        .unwrap_or("VmHWM: unknown");
    println!(
        "{compression:?}: {} events, {rows} rows in {seconds:.2} s = {:.0} rows/s ({:.0} events/s), {:.1} MiB written, peak {}",
        summary.to,
        rows as f64 / seconds,
        summary.to as f64 / seconds,
        bytes as f64 / (1 << 20) as f64,
        peak.trim_start_matches("VmHWM:").trim()
    );
    let _ = std::fs::remove_dir_all(&out);
}
