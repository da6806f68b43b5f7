//! Sentence embeddings per second on the CPU backend (burn flex), for 256 short texts and
//! for 64 texts of about 200 tokens, at batch 1, 32 and 256; beside, in the same run,
//! sentence-transformers on PyTorch CPU over the same texts and the same weights when a
//! peer interpreter is given.
//!
//! `cargo bench --bench embed` measures burn only. `benches/embed_peer.sh` makes a throwaway
//! venv with torch and sentence-transformers from PyPI and runs this bench with
//! `WEIGHTLOG_EMBED_PEER_PYTHON` set, so both columns come from one run on one machine.
//! The texts are written to `CARGO_TARGET_TMPDIR/embed-texts.json` for the peer.

use std::hint::black_box;
use std::process::Command;
use std::time::Instant;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use weightlog::embed::{Backend, Embedder};

const BATCH_SIZES: [usize; 3] = [1, 32, 256];
const SHORT_TEXTS: usize = 256;
const LONG_TEXTS: usize = 64;
/// Timed runs per figure in the printed table; the best counts.
const RUNS: usize = 3;

/// Short sentences (about 12 to 20 tokens), all different.
fn short_texts() -> Vec<String> {
    const SUBJECTS: [&str; 8] = [
        "The validator",
        "A miner",
        "The subnet owner",
        "An auditor",
        "The node",
        "My model",
        "The network",
        "Our team",
    ];
    const VERBS: [&str; 8] = [
        "scored",
        "rejected",
        "replayed",
        "verified",
        "answered",
        "embedded",
        "signed",
        "published",
    ];
    const OBJECTS: [&str; 4] = [
        "every response before the deadline.",
        "the weights at the end of the tempo.",
        "a long prompt about the weather in Canberra.",
        "the log with a fresh checkpoint.",
    ];
    (0..SHORT_TEXTS)
        .map(|index| {
            format!(
                "{} {} {} (round {index})",
                SUBJECTS[index % 8],
                VERBS[(index / 8) % 8],
                OBJECTS[(index / 64) % 4]
            )
        })
        .collect()
}

/// Paragraphs of about 200 tokens.
fn long_texts() -> Vec<String> {
    (0..LONG_TEXTS)
        .map(|index| {
            let mut text = format!("Report {index}: ");
            for sentence in 0..9 {
                text.push_str(&format!(
                    "In round {sentence} the validator sent challenge {} to every miner, \
                     collected the answers, embedded them and recorded the scores. ",
                    index * 10 + sentence
                ));
            }
            text
        })
        .collect()
}

fn bench(criterion: &mut Criterion) {
    let embedder =
        Embedder::from_env(Backend::Cpu).expect("the MiniLM asset (weightlog assets fetch)");
    let workloads = [("short", short_texts()), ("long-200-tokens", long_texts())];
    let mut group = criterion.benchmark_group("embed-cpu");
    group.sample_size(10);
    for (name, texts) in &workloads {
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        group.throughput(Throughput::Elements(refs.len() as u64));
        for batch in BATCH_SIZES {
            group.bench_with_input(BenchmarkId::new(*name, batch), &batch, |bencher, batch| {
                bencher.iter(|| black_box(embedder.embed(&refs, *batch).expect("embed")))
            });
        }
    }
    group.finish();

    // One timed run each, printed as sentences/s beside the peer's figures.
    let texts_path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("embed-texts.json");
    let texts_json = serde_json::json!({
        "short": workloads[0].1,
        "long": workloads[1].1,
        "batch_sizes": BATCH_SIZES,
    });
    std::fs::write(&texts_path, texts_json.to_string()).expect("write the texts");
    // The best of three timed runs, as the peer script reports PyTorch's.
    println!("\nsentences/s on this machine (best of {RUNS} timed runs each)");
    println!("{:<18} {:>6} {:>12}", "workload", "batch", "burn-cpu");
    for (name, texts) in &workloads {
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        for batch in BATCH_SIZES {
            let best = (0..RUNS)
                .map(|_| {
                    let started = Instant::now();
                    embedder.embed(&refs, batch).expect("embed");
                    refs.len() as f64 / started.elapsed().as_secs_f64()
                })
                .fold(0.0, f64::max);
            println!("{name:<18} {batch:>6} {best:>12.1}");
        }
    }
    if let Ok(python) = std::env::var("WEIGHTLOG_EMBED_PEER_PYTHON") {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/embed_peer.py");
        let status = Command::new(python)
            .arg(script)
            .arg(&texts_path)
            .status()
            .expect("run the PyTorch peer");
        assert!(status.success(), "the PyTorch peer failed");
    } else {
        println!(
            "(set WEIGHTLOG_EMBED_PEER_PYTHON, or run benches/embed_peer.sh, for PyTorch's column)"
        );
    }
}

criterion_group!(benches, bench);

fn main() {
    // Under `cargo test --bench embed` criterion runs each benchmark once; so does this.
    benches();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
}
