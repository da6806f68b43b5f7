//! [`Metrics`]: what the node counts while it runs, rendered in the Prometheus text
//! exposition format (version 0.0.4) by hand.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds (inclusive, milliseconds) of the miner latency histogram's buckets; `+Inf`
/// follows. Fixed, so dashboards can compare nodes.
pub const LATENCY_BUCKETS_MS: [u64; 13] = [
    5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000,
];

/// Counters and gauges the node updates and `GET /metrics` renders. Shared by reference
/// (`Arc<Metrics>`): every method takes `&self`.
#[derive(Debug, Default)]
pub struct Metrics {
    events_appended: AtomicU64,
    queue_depth: AtomicU64,
    log_size: AtomicU64,
    latency: Mutex<BTreeMap<(u16, Outcome), Histogram>>,
    scores: Mutex<BTreeMap<u16, f64>>,
    weights: Mutex<Weights>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    Ok,
    Error,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Error => "error",
        }
    }
}

#[derive(Debug, Default, Clone)]
struct Histogram {
    /// Observations at or below each bound of [`LATENCY_BUCKETS_MS`] (not cumulative).
    buckets: [u64; LATENCY_BUCKETS_MS.len()],
    /// Observations above the last bound.
    over: u64,
    sum_ms: u64,
}

#[derive(Debug, Default)]
struct Weights {
    block: Option<u64>,
    weights: BTreeMap<u16, u16>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding a metrics lock leaves numbers, never broken invariants.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics::default()
    }

    /// `count` more events were appended to the log.
    pub fn events_appended(&self, count: u64) {
        self.events_appended.fetch_add(count, Ordering::Relaxed);
    }

    /// Challenges waiting in the push queue.
    pub fn set_queue_depth(&self, depth: u64) {
        self.queue_depth.store(depth, Ordering::Relaxed);
    }

    /// Events in the log (the API sets it when it renders).
    pub fn set_log_size(&self, size: u64) {
        self.log_size.store(size, Ordering::Relaxed);
    }

    /// One miner query took `latency_ms`; `ok` is false when it failed or timed out.
    pub fn observe_miner_latency(&self, uid: u16, latency_ms: u64, ok: bool) {
        let outcome = if ok { Outcome::Ok } else { Outcome::Error };
        let mut latency = lock(&self.latency);
        let histogram = latency.entry((uid, outcome)).or_default();
        match LATENCY_BUCKETS_MS
            .iter()
            .position(|&bound| latency_ms <= bound)
        {
            Some(bucket) => histogram.buckets[bucket] += 1,
            None => histogram.over += 1,
        }
        histogram.sum_ms = histogram.sum_ms.saturating_add(latency_ms);
    }

    /// The current scores, replacing the previous set (a uid not named has no score).
    pub fn set_scores(&self, scores: &[(u16, f64)]) {
        *lock(&self.scores) = scores.iter().copied().collect();
    }

    /// The weights computed at `block`, replacing the previous set.
    pub fn set_weights(&self, block: u64, weights: &[(u16, u16)]) {
        *lock(&self.weights) = Weights {
            block: Some(block),
            weights: weights.iter().copied().collect(),
        };
    }

    /// Every metric family in the Prometheus text exposition format (0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::new();
        family(
            &mut out,
            "weightlog_events_appended_total",
            "counter",
            "Events this node appended to its log since it started.",
        );
        line(
            &mut out,
            "weightlog_events_appended_total",
            "",
            self.events_appended.load(Ordering::Relaxed),
        );
        family(
            &mut out,
            "weightlog_log_size",
            "gauge",
            "Events in the log.",
        );
        line(
            &mut out,
            "weightlog_log_size",
            "",
            self.log_size.load(Ordering::Relaxed),
        );
        family(
            &mut out,
            "weightlog_push_queue_depth",
            "gauge",
            "Pushed challenges waiting for the node.",
        );
        line(
            &mut out,
            "weightlog_push_queue_depth",
            "",
            self.queue_depth.load(Ordering::Relaxed),
        );

        family(
            &mut out,
            "weightlog_miner_latency_ms",
            "histogram",
            "Miner query latency in milliseconds, by uid and outcome.",
        );
        for (&(uid, outcome), histogram) in lock(&self.latency).iter() {
            let labels = format!("uid=\"{uid}\",outcome=\"{}\"", outcome.label());
            let mut cumulative = 0;
            for (bound, count) in LATENCY_BUCKETS_MS.iter().zip(histogram.buckets) {
                cumulative += count;
                line(
                    &mut out,
                    "weightlog_miner_latency_ms_bucket",
                    &format!("{labels},le=\"{bound}\""),
                    cumulative,
                );
            }
            cumulative += histogram.over;
            line(
                &mut out,
                "weightlog_miner_latency_ms_bucket",
                &format!("{labels},le=\"+Inf\""),
                cumulative,
            );
            line(
                &mut out,
                "weightlog_miner_latency_ms_sum",
                &labels,
                histogram.sum_ms,
            );
            line(
                &mut out,
                "weightlog_miner_latency_ms_count",
                &labels,
                cumulative,
            );
        }

        family(
            &mut out,
            "weightlog_miner_score",
            "gauge",
            "The latest score of each miner.",
        );
        for (uid, score) in lock(&self.scores).iter() {
            line(
                &mut out,
                "weightlog_miner_score",
                &format!("uid=\"{uid}\""),
                float(*score),
            );
        }

        let weights = lock(&self.weights);
        family(
            &mut out,
            "weightlog_weight",
            "gauge",
            "The latest u16 weight computed for each miner.",
        );
        for (uid, weight) in &weights.weights {
            line(
                &mut out,
                "weightlog_weight",
                &format!("uid=\"{uid}\""),
                weight,
            );
        }
        family(
            &mut out,
            "weightlog_weights_block",
            "gauge",
            "The block of the latest weights computed.",
        );
        if let Some(block) = weights.block {
            line(&mut out, "weightlog_weights_block", "", block);
        }
        out
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    // Writing to a String cannot fail.
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn line(out: &mut String, name: &str, labels: &str, value: impl std::fmt::Display) {
    if labels.is_empty() {
        let _ = writeln!(out, "{name} {value}");
    } else {
        let _ = writeln!(out, "{name}{{{labels}}} {value}");
    }
}

/// A float as Prometheus spells it.
fn float(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value.is_infinite() {
        if value > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        format!("{value:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_histogram_is_cumulative_and_every_family_is_rendered() {
        let metrics = Metrics::new();
        metrics.events_appended(3);
        metrics.observe_miner_latency(4, 7, true);
        metrics.observe_miner_latency(4, 70_000, true);
        metrics.observe_miner_latency(4, 3, false);
        metrics.set_scores(&[(4, 0.5)]);
        metrics.set_weights(120, &[(4, 65535)]);
        let text = metrics.render();
        for expected in [
            "weightlog_events_appended_total 3\n",
            "weightlog_miner_latency_ms_bucket{uid=\"4\",outcome=\"ok\",le=\"5\"} 0\n",
            "weightlog_miner_latency_ms_bucket{uid=\"4\",outcome=\"ok\",le=\"10\"} 1\n",
            "weightlog_miner_latency_ms_bucket{uid=\"4\",outcome=\"ok\",le=\"60000\"} 1\n",
            "weightlog_miner_latency_ms_bucket{uid=\"4\",outcome=\"ok\",le=\"+Inf\"} 2\n",
            "weightlog_miner_latency_ms_sum{uid=\"4\",outcome=\"ok\"} 70007\n",
            "weightlog_miner_latency_ms_count{uid=\"4\",outcome=\"error\"} 1\n",
            "weightlog_miner_score{uid=\"4\"} 0.5\n",
            "weightlog_weight{uid=\"4\"} 65535\n",
            "weightlog_weights_block 120\n",
            "# TYPE weightlog_miner_latency_ms histogram\n",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in\n{text}");
        }
        assert_eq!(float(f64::NAN), "NaN");
        assert_eq!(float(1.0), "1.0");
    }
}
