//! Time to compute weights with the scoring mechanisms, at realistic sizes, and how it grows
//! when the number of miners doubles.
//!
//! Run it with `cargo bench --bench mechanisms`.
//!
//! * `affine_stages_v2/{256,512}`: miners x 8 environments x 1000 samples each.
//! * `loosh_evaluate/{256,512}`: responses with 384-dimensional embeddings (one challenge
//!   round: quality gate, LOF, clustering, consensus, emissions).
//! * `omega_two_pool/{256,512}`: uids with model scores, a baseline and reputations.
//!
//! Inputs are the documented JSON shapes (specs/mechanism-io), generated deterministically
//! outside the timed region; the timed call is `weightlog_replay::run_json`, the function
//! `weightlog mechanism run` and the projections use. At the end the bench prints each
//! mechanism's time and its growth factor from 256 to 512 miners.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};
use serde_json::{Map, Value, json};

/// Miner counts measured; growth is reported between consecutive sizes.
const MINER_COUNTS: [u64; 2] = [256, 512];
const AFFINE_ENVIRONMENTS: usize = 8;
const AFFINE_SAMPLES: usize = 1000;
const EMBEDDING_DIMENSIONS: usize = 384;

/// splitmix64: a deterministic source for generated inputs.
struct Mix(u64);

impl Mix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Rounded to 4 decimals, like the values validators log.
    fn rounded(&mut self) -> f64 {
        (self.unit() * 10_000.0).round() / 10_000.0
    }
}

fn hotkey(uid: u64) -> String {
    format!("hotkey-{uid:05}")
}

fn affine_input(miners: u64) -> Value {
    let mut mix = Mix(1);
    let environments: Vec<String> = (0..AFFINE_ENVIRONMENTS)
        .map(|e| format!("affine:env{e}"))
        .collect();
    let miners: Vec<Value> = (0..miners)
        .map(|uid| {
            // Each miner has a skill per environment; samples pass with that probability.
            let mut env = Map::new();
            for name in &environments {
                let skill = mix.unit();
                let scores: Vec<f64> = (0..AFFINE_SAMPLES)
                    .map(|_| if mix.unit() < skill { 1.0 } else { 0.0 })
                    .collect();
                env.insert(
                    name.clone(),
                    json!({"scores": scores, "completeness": 0.9 + 0.1 * mix.unit()}),
                );
            }
            json!({
                "uid": uid,
                "hotkey": hotkey(uid),
                "model_revision": format!("rev{uid}"),
                "model_repo": format!("org/model-{uid}"),
                "first_block": 1_000_000 + mix.next() % 1_000_000,
                "env": env,
            })
        })
        .collect();
    json!({"mode": "stages_v2", "environments": environments, "miners": miners, "burn_percentage": 0.1})
}

fn loosh_input(responses: u64) -> Value {
    let mut mix = Mix(2);
    let mut vector = |base: &[f64], noise: f64| -> Vec<f64> {
        let raw: Vec<f64> = base
            .iter()
            .map(|b| b + noise * (mix.unit() - 0.5))
            .collect();
        let norm = raw.iter().map(|v| v * v).sum::<f64>().sqrt();
        raw.iter().map(|v| v / norm).collect()
    };
    let topic: Vec<f64> = (0..EMBEDDING_DIMENSIONS)
        .map(|i| ((i * 7919) % 97) as f64 / 97.0)
        .collect();
    let prompt = vector(&topic, 0.2);
    let words = [
        "answer",
        "model",
        "context",
        "because",
        "therefore",
        "result",
        "value",
        "data",
    ];
    let responses: Vec<Value> = (0..responses)
        .map(|uid| {
            // Most miners agree; every seventh wanders off topic.
            let noise = if uid % 7 == 0 { 4.0 } else { 0.4 };
            let text: Vec<&str> = (0..20 + uid % 30)
                .map(|i| words[((uid + i) % 8) as usize])
                .collect();
            json!({
                "uid": uid,
                "hotkey": hotkey(uid),
                "text": text.join(" "),
                "embedding": vector(&topic, noise),
                "response_time_ms": 500.0 + (uid % 100) as f64 * 20.0,
            })
        })
        .collect();
    json!({"evaluate": {"prompt_embedding": prompt, "responses": responses, "quality_scores": null}})
}

fn omega_input(uids: u64) -> Value {
    let mut mix = Mix(3);
    let hotkeys: Vec<String> = (0..uids).map(hotkey).collect();
    let mut scores = Map::new();
    let mut reputations = Map::new();
    for uid in 0..uids {
        if uid % 3 != 0 {
            scores.insert(
                uid.to_string(),
                json!([{"competition_id": "v4", "score": mix.rounded()}]),
            );
        }
        reputations.insert(hotkey(uid), json!({"reputation": mix.rounded()}));
    }
    json!({
        "mode": "two_pool", "n": uids, "hotkeys": hotkeys, "all_model_scores": scores,
        "competition_id": "v4", "baseline": 0.6, "reputations": reputations,
    })
}

thread_local! {
    /// case -> (miners -> mean seconds per call), for the growth summary.
    static TIMES: RefCell<BTreeMap<String, BTreeMap<u64, f64>>> = const { RefCell::new(BTreeMap::new()) };
}

fn bench(c: &mut Criterion, case: &str, make: fn(u64) -> Value) {
    let mut group = c.benchmark_group(case);
    for miners in MINER_COUNTS {
        let input = make(miners);
        // A mechanism that refuses its own benchmark input is a bug, not a slow case.
        weightlog_replay::run_json(&input)
            .unwrap_or_else(|error| panic!("{case} with {miners} miners: {error}"));
        group.bench_function(miners.to_string(), |b| {
            b.iter_custom(|iterations| {
                let start = Instant::now();
                for _ in 0..iterations {
                    black_box(weightlog_replay::run_json(black_box(&input)).ok());
                }
                let elapsed = start.elapsed();
                TIMES.with(|times| {
                    times
                        .borrow_mut()
                        .entry(case.to_string())
                        .or_default()
                        .insert(miners, elapsed.as_secs_f64() / iterations as f64);
                });
                elapsed
            });
        });
    }
    group.finish();
}

fn mechanisms(c: &mut Criterion) {
    bench(c, "affine_stages_v2", affine_input);
    bench(c, "loosh_evaluate", loosh_input);
    bench(c, "omega_two_pool", omega_input);
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = mechanisms
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    TIMES.with(|times| {
        let times = times.borrow();
        if times.is_empty() {
            return;
        }
        println!("\nSummary (mean time per weight computation; growth when miners double):");
        for (case, by_miners) in times.iter() {
            let line: Vec<String> = by_miners
                .iter()
                .map(|(miners, seconds)| format!("{miners} miners {:.3} ms", seconds * 1e3))
                .collect();
            let growth = match (
                by_miners.get(&MINER_COUNTS[0]),
                by_miners.get(&MINER_COUNTS[1]),
            ) {
                (Some(small), Some(large)) => format!("x{:.2}", large / small),
                _ => "-".into(),
            };
            println!("  {case:<18} {}  growth {growth}", line.join(", "));
        }
    });
}
