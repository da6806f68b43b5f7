//! Edge cases and properties of the AML mechanism (specs/scoring.md §5), through
//! `weightlog_replay::run_json`.

use serde_json::{Value, json};
use weightlog_replay::{MechanismError, run_json};

/// A miner that passes tier 1, with fixed behavioural components (tier 2 score 0.6).
fn passing_miner(days: i64) -> Value {
    json!({
        "days_since_submission": days,
        "tier1": {"has_all_alerts": 1.0, "score_range_valid": 1.0,
                  "no_duplicates": 1.0, "metadata_valid": 1.0},
        "tier2": {"distribution_entropy": 0.8, "rank_correlation": 0.6,
                  "consistency": 0.4, "address_consistency": 0.6},
        "tier3a": {"scores": [0.9, 0.2, 0.7, 0.1], "labels": [1, 0, 0, 1], "total_alerts": 8},
        "tier3b": {"scores": [0.8, 0.1, 0.5, 0.2],
                   "patterns": ["expanding_illicit", "benign_indicators", "ambiguous", "dormant"],
                   "total_alerts": 8}
    })
}

const PASSING_TIER2: f64 = 0.8 * 0.25 + 0.6 * 0.25 + 0.4 * 0.25 + 0.6 * 0.25;

fn run(input: Value) -> Value {
    run_json(&input).unwrap_or_else(|error| panic!("{error}"))
}

fn error_message(input: Value) -> String {
    match run_json(&input) {
        Ok(output) => panic!("expected an error, got {output}"),
        Err(MechanismError::Invalid(message)) | Err(MechanismError::Upstream(message)) => message,
    }
}

fn number(value: &Value) -> f64 {
    value
        .as_f64()
        .unwrap_or_else(|| panic!("{value} is not a number"))
}

#[test]
fn no_miners_gives_empty_results() {
    let output = run(json!({"miners": {}}));
    assert_eq!(
        output,
        json!({
            "miners": {}, "final_scores": {},
            "design": {"immediate": {}, "performance": {}, "ensemble_weights": {},
                       "ensemble_alert_scores": {}}
        })
    );
}

#[test]
fn a_check_just_below_one_fails_the_tier1_gate() {
    let mut miner = passing_miner(40);
    miner["tier1"]["score_range_valid"] = json!(0.9999999999999999);
    let output = run(json!({"miners": {"m": miner}}));
    let record = &output["miners"]["m"];
    assert_eq!(record["status"], "rejected");
    assert_eq!(record["reason"], "tier1_failed");
    assert_eq!(record["final_score"], 0.0);
    // 0.25 per check; the sum rounds to 1.0 although the gate fails.
    assert_eq!(record["tier1_score"], 1.0);
    assert!(record.get("tier2_score").is_none());
    assert_eq!(output["final_scores"]["m"], 0.0);
    // Design: no tier 2 score, so the immediate score is 0.2 * tier1.
    assert_eq!(output["design"]["immediate"]["m"], 0.2);
}

#[test]
fn tier2_below_minimum_warns_only_unless_gated() {
    let mut miner = passing_miner(10);
    miner["tier2"] = json!({"distribution_entropy": 0.1, "rank_correlation": 0.2,
                            "consistency": 0.3, "address_consistency": 0.4});
    let tier2 = 0.1 * 0.25 + 0.2 * 0.25 + 0.3 * 0.25 + 0.4 * 0.25;
    let output = run(json!({"miners": {"m": miner.clone()}}));
    let record = &output["miners"]["m"];
    assert_eq!(record["status"], "accepted");
    assert_eq!(record["reward_type"], "flat");
    assert_eq!(number(&record["tier2_score"]), tier2);
    assert_eq!(record["final_score"], 0.1);

    let gated = run(json!({"miners": {"m": miner}, "config": {"tier2_is_gate": true}}));
    let record = &gated["miners"]["m"];
    assert_eq!(record["status"], "rejected");
    assert_eq!(record["reason"], "tier2_below_minimum");
    assert_eq!(record["final_score"], 0.0);
    assert_eq!(
        number(&gated["design"]["immediate"]["m"]),
        0.2 * 1.0 + 0.3 * tier2
    );
}

#[test]
fn null_tier3_data_scores_zero_accuracy() {
    let mut miner = passing_miner(45);
    miner["tier3a"] = Value::Null;
    miner["tier3b"] = Value::Null;
    let output = run(json!({"miners": {"m": miner}}));
    let record = &output["miners"]["m"];
    assert_eq!(record["reward_type"], "accuracy_based");
    assert_eq!(record["tier3_score"], 0.0);
    assert_eq!(record["tier3a"], Value::Null);
    assert_eq!(record["tier3b"], Value::Null);
    assert_eq!(record["tier3a_coverage"], 0.0);
    assert_eq!(record["validation_status"], "no_tier3");
    assert_eq!(
        number(&record["final_score"]),
        PASSING_TIER2 * 0.1 + 0.0 * 0.9
    );
}

#[test]
fn flat_period_and_evolution_boundaries() {
    let output = run(json!({"miners": {
        "d28": passing_miner(28), "d29": passing_miner(29), "d30": passing_miner(30)
    }}));
    let miners = &output["miners"];
    // 28 < 29: flat reward.
    assert_eq!(miners["d28"]["reward_type"], "flat");
    assert_eq!(miners["d28"]["final_score"], 0.1);
    // 29: accuracy based, but tier 3b needs 30 days.
    assert_eq!(miners["d29"]["reward_type"], "accuracy_based");
    assert_eq!(miners["d29"]["tier3b"], Value::Null);
    assert_eq!(miners["d29"]["tier3b_coverage"], 0.0);
    // AUC of [0.9, 0.2, 0.7, 0.1] vs [1, 0, 0, 1]: positive 0.9 beats both negatives,
    // positive 0.1 beats none -> 2/4; coverage 4/8.
    assert_eq!(miners["d29"]["tier3a"], 0.5);
    assert_eq!(miners["d29"]["tier3a_coverage"], 0.5);
    let tier3_without_evolution = 0.5 * 0.5 * 0.5;
    assert_eq!(
        number(&miners["d29"]["tier3_score"]),
        tier3_without_evolution
    );
    // 30: tier 3b too.
    let evolution = number(&miners["d30"]["tier3b"]);
    // Labels: 1, 0, 1 (0.5 >= 0.5), 0; all four scores inside their ranges.
    let brier = (0.2f64 * 0.2 + 0.1 * 0.1 + 0.5 * 0.5 + 0.2 * 0.2) / 4.0;
    assert_eq!(evolution, 1.0 * 0.40 + (1.0 - brier) * 0.30 + 1.0 * 0.30);
    assert_eq!(
        number(&miners["d30"]["tier3_score"]),
        tier3_without_evolution + evolution * 0.5 * 0.5
    );
    assert_eq!(miners["d30"]["validation_status"], "complete");
}

#[test]
fn empty_history_makes_performance_the_immediate_score() {
    let mut null_history = passing_miner(40);
    null_history["history"] = Value::Null;
    let mut empty_history = passing_miner(40);
    empty_history["history"] = json!([]);
    let output = run(json!({"miners": {"m": passing_miner(40)}}));
    for other in [null_history, empty_history] {
        assert_eq!(
            run(json!({"miners": {"m": other}, "alert_scores": null})),
            output
        );
    }
    let immediate = 0.2 * 1.0 + 0.3 * PASSING_TIER2;
    assert_eq!(number(&output["design"]["immediate"]["m"]), immediate);
    assert_eq!(number(&output["design"]["performance"]["m"]), immediate);
    // One miner takes the whole ensemble.
    assert_eq!(output["design"]["ensemble_weights"]["m"], 1.0);
}

#[test]
fn history_window_keeps_the_latest_entries() {
    let mut miner = passing_miner(40);
    // 30 old entries of 1.0 would all fall inside a window of 31, but only 29 of them
    // remain beside the new immediate score in a window of 30.
    let mut history = vec![0.0];
    history.extend(std::iter::repeat_n(1.0, 29));
    miner["history"] = json!(history);
    let output = run(json!({"miners": {"m": miner}}));
    let immediate = 0.2 * 1.0 + 0.3 * PASSING_TIER2;
    let mut total = 0.0;
    for _ in 0..29 {
        total += 1.0;
    }
    total += immediate;
    assert_eq!(number(&output["design"]["performance"]["m"]), total / 30.0);
}

#[test]
fn weights_at_exactly_the_minimum_are_kept_and_below_are_dropped() {
    let miners = json!({"a": passing_miner(40), "b": passing_miner(40),
                        "c": passing_miner(40), "d": passing_miner(40)});
    let alerts = json!({"a": {"x": 0.4}, "b": {"x": 0.4}, "c": {"x": 0.4}, "d": {"x": 0.4}});
    let at_minimum = run(
        json!({"miners": miners.clone(), "alert_scores": alerts.clone(),
                                "config": {"ensemble_min_weight": 0.25}}),
    );
    for name in ["a", "b", "c", "d"] {
        assert_eq!(at_minimum["design"]["ensemble_weights"][name], 0.25);
    }
    assert_eq!(
        number(&at_minimum["design"]["ensemble_alert_scores"]["x"]),
        0.25 * 0.4 + 0.25 * 0.4 + 0.25 * 0.4 + 0.25 * 0.4
    );
    let above = run(json!({"miners": miners, "alert_scores": alerts,
                           "config": {"ensemble_min_weight": 0.26}}));
    assert_eq!(above["design"]["ensemble_weights"], json!({}));
    // Alerts are still common to all submissions; with no weights they sum to 0.
    assert_eq!(above["design"]["ensemble_alert_scores"], json!({"x": 0.0}));
}

#[test]
fn tied_performances_share_weight_equally_and_small_ones_drop() {
    let mut weak = passing_miner(40);
    weak["tier1"]["has_all_alerts"] = json!(0.0);
    weak["history"] = json!([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
    let output = run(
        json!({"miners": {"a": passing_miner(40), "b": passing_miner(40),
                                        "weak": weak},
                            "alert_scores": {"a": {"x": 0.2, "y": 0.6}, "b": {"x": 0.8},
                                             "weak": {"x": 1.0}}}),
    );
    let weights = &output["design"]["ensemble_weights"];
    // weak: immediate 0.15, performance 0.015; 0.015² share ≈ 0.0009 < 0.01.
    assert!(weights.get("weak").is_none(), "{weights}");
    assert_eq!(weights["a"], weights["b"]);
    assert_eq!(weights["a"], 0.5);
    // Only "x" is scored by every submission; "weak" has no weight so adds nothing.
    assert_eq!(
        output["design"]["ensemble_alert_scores"],
        json!({"x": 0.5 * 0.2 + 0.5 * 0.8})
    );
}

#[test]
fn tier2_from_raw_data_matches_hand_computed_components() {
    let mut miner = passing_miner(10);
    miner.as_object_mut().unwrap().remove("tier2");
    miner["tier2_raw"] = json!({
        "scores": [0.1, 0.35, 0.9, 0.95],
        "alert_ids": ["a", "b", "c", "d"],
        "consensus": {"a": 0.2, "b": 0.1, "c": 0.8, "d": 0.9},
        "prev_scores": {"a": 0.1, "b": 0.5},
        "address_of": {"a": "x", "b": "x"}
    });
    let output = run(json!({"miners": {"m": miner}}));
    let components = &output["miners"]["m"]["tier2_components"];
    // Ranks (1, 2, 3, 4) vs (2, 1, 3, 4): ρ = 0.8.
    assert!((number(&components["rank_correlation"]) - 0.9).abs() < 1e-15);
    // Shared alerts a (|0|) and b (|−0.15|): mean 0.075.
    assert!((number(&components["consistency"]) - 0.925).abs() < 1e-15);
    // Address x: scores 0.1, 0.35, std 0.125 -> penalty −0.05.
    assert!((number(&components["address_consistency"]) - 0.95).abs() < 1e-15);
    // Bins 1, 3, 9, 9.
    let probabilities = [0.25, 0.25, 0.5];
    let entropy: f64 = probabilities.iter().map(|p: &f64| -p * p.ln()).sum::<f64>() / 10f64.ln();
    assert!((number(&components["distribution_entropy"]) - entropy).abs() < 1e-8);
}

#[test]
fn constant_scores_make_the_rank_check_nan() {
    let mut miner = passing_miner(40);
    miner.as_object_mut().unwrap().remove("tier2");
    miner["tier2_raw"] = json!({
        "scores": [0.5, 0.5, 0.5], "alert_ids": ["a", "b", "c"],
        "consensus": {"a": 0.1, "b": 0.2, "c": 0.3}
    });
    let output = run(json!({"miners": {"m": miner}}));
    let record = &output["miners"]["m"];
    // NaN is written as null; it propagates to the final score as upstream's floats do.
    assert_eq!(record["tier2_components"]["rank_correlation"], Value::Null);
    assert_eq!(record["tier2_score"], Value::Null);
    assert_eq!(record["final_score"], Value::Null);
    // NaN performance fails `p > 0` and gets no ensemble weight.
    assert_eq!(output["design"]["ensemble_weights"], json!({}));
}

#[test]
fn single_class_ground_truth_gives_nan_like_current_scikit_learn() {
    let mut miner = passing_miner(29);
    miner["tier3a"] = json!({"scores": [0.2, 0.9], "labels": [1, 1], "total_alerts": 2});
    let output = run(json!({"miners": {"m": miner}}));
    assert_eq!(output["miners"]["m"]["tier3a"], Value::Null);
    assert_eq!(output["miners"]["m"]["tier3a_coverage"], 1.0);
}

#[test]
fn malformed_inputs_are_rejected_naming_the_problem() {
    let mut missing_tier1 = passing_miner(40);
    missing_tier1.as_object_mut().unwrap().remove("tier1");
    assert!(error_message(json!({"miners": {"m": missing_tier1}})).contains("tier1"));

    let mut null_check = passing_miner(40);
    null_check["tier1"]["no_duplicates"] = Value::Null; // what a NaN becomes in JSON
    assert!(error_message(json!({"miners": {"m": null_check}})).contains("null"));

    let mut out_of_range = passing_miner(40);
    out_of_range["tier1"]["metadata_valid"] = json!(1.5);
    assert!(error_message(json!({"miners": {"m": out_of_range}})).contains("metadata_valid"));

    let mut wrong_type = passing_miner(40);
    wrong_type["days_since_submission"] = json!("thirty");
    assert!(error_message(json!({"miners": {"m": wrong_type}})).contains("invalid type"));

    let mut mismatched = passing_miner(40);
    mismatched.as_object_mut().unwrap().remove("tier2");
    mismatched["tier2_raw"] = json!({"scores": [0.1, 0.2], "alert_ids": ["a"]});
    assert!(error_message(json!({"miners": {"m": mismatched}})).contains("alert_ids"));

    let mut both = passing_miner(40);
    both["tier2_raw"] = json!({"scores": [], "alert_ids": []});
    assert!(error_message(json!({"miners": {"m": both}})).contains("not both"));

    let mut neither = passing_miner(40);
    neither.as_object_mut().unwrap().remove("tier2");
    assert!(error_message(json!({"miners": {"m": neither}})).contains("tier2_raw"));

    let mut bad_label = passing_miner(40);
    bad_label["tier3a"]["labels"] = json!([1, 0, 2, 1]);
    assert!(error_message(json!({"miners": {"m": bad_label}})).contains("labels"));

    let mut bad_probability = passing_miner(40);
    bad_probability["tier3b"]["scores"] = json!([1.2, 0.1, 0.5, 0.2]);
    assert!(error_message(json!({"miners": {"m": bad_probability}})).contains("tier3b"));

    assert!(
        error_message(json!({"miners": {}, "config": {"tier2_wieght": 0.2}}))
            .contains("tier2_wieght")
    );
    assert!(
        error_message(json!({"miners": {}, "alert_scores": {"m": {"a": "high"}}}))
            .contains("invalid type")
    );
}

/// splitmix64: a small deterministic generator for the permutation property.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for index in (1..items.len()).rev() {
            let other = (self.next() % (index as u64 + 1)) as usize;
            items.swap(index, other);
        }
    }
}

/// An input with several miners, raw tier 2 data and ensemble submissions, built with its
/// miners, alert rows and submissions in the order `seed` picks.
fn shuffled_input(seed: u64) -> Value {
    let mut generator = SplitMix64(seed);
    let mut names: Vec<String> = (0..6).map(|index| format!("miner{index}")).collect();
    generator.shuffle(&mut names);
    let mut miners = Vec::new();
    let mut submissions = Vec::new();
    for name in &names {
        let number: usize = name.trim_start_matches("miner").parse().unwrap();
        let mut rows: Vec<(String, f64)> = (0..12)
            .map(|alert| {
                let score = ((alert * 7 + number * 3) % 11) as f64 / 10.0;
                (format!("alert{alert:02}"), score)
            })
            .collect();
        generator.shuffle(&mut rows);
        let mut miner = passing_miner(25 + 3 * number as i64);
        miner.as_object_mut().unwrap().remove("tier2");
        miner["tier2_raw"] = json!({
            "scores": rows.iter().map(|row| row.1).collect::<Vec<_>>(),
            "alert_ids": rows.iter().map(|row| row.0.clone()).collect::<Vec<_>>(),
            "consensus": (0..12).map(|alert| (format!("alert{alert:02}"),
                                              json!((alert % 5) as f64 / 5.0)))
                                .collect::<serde_json::Map<_, _>>(),
            "prev_scores": (0..6).map(|alert| (format!("alert{alert:02}"), json!(0.5)))
                                 .collect::<serde_json::Map<_, _>>(),
            "address_of": (0..12).map(|alert| (format!("alert{alert:02}"),
                                               json!(format!("0x{}", alert % 4))))
                                 .collect::<serde_json::Map<_, _>>()
        });
        miner["history"] = json!([0.3, 0.1 * number as f64, 0.2]);
        miners.push(format!("\"{name}\": {miner}"));
        let mut alerts: Vec<String> = (0..5)
            .map(|alert| format!("\"alert{alert}\": {}", (alert + number) as f64 / 10.0))
            .collect();
        generator.shuffle(&mut alerts);
        submissions.push(format!("\"{name}\": {{{}}}", alerts.join(", ")));
    }
    let text = format!(
        "{{\"miners\": {{{}}}, \"alert_scores\": {{{}}}}}",
        miners.join(", "),
        submissions.join(", ")
    );
    serde_json::from_str(&text).unwrap()
}

#[test]
fn permuting_miners_alert_rows_and_submissions_changes_nothing() {
    let reference = run(shuffled_input(0));
    assert!(
        !reference["design"]["ensemble_weights"]
            .as_object()
            .unwrap()
            .is_empty()
    );
    for seed in 1..8 {
        assert_eq!(run(shuffled_input(seed)), reference, "seed {seed}");
    }
}

#[test]
fn order_matters_for_repeated_alerts_and_history() {
    // A repeated alert keeps its last score (upstream builds a dict from the rows), so the
    // order of the rows decides which score the rank check sees.
    let raw = |scores: [f64; 3]| {
        let mut miner = passing_miner(10);
        miner.as_object_mut().unwrap().remove("tier2");
        miner["tier2_raw"] = json!({
            "scores": scores, "alert_ids": ["a", "b", "a"],
            "consensus": {"a": 0.9, "b": 0.5}
        });
        run(json!({"miners": {"m": miner}}))["miners"]["m"]["tier2_components"]["rank_correlation"]
            .clone()
    };
    // Alerts a, b: (0.9, 0.5) against consensus (0.9, 0.5) agree, (0.1, 0.5) disagree.
    // numpy's corrcoef gives ρ = −0.9999999999999998 for the latter, as scipy does.
    assert_eq!(raw([0.1, 0.5, 0.9]), 1.0);
    assert_eq!(raw([0.9, 0.5, 0.1]), 5.551115123125783e-17);

    // The rolling window keeps the latest entries, so history order matters too.
    let with_history = |history: Vec<f64>| {
        let mut miner = passing_miner(40);
        miner["history"] = json!(history);
        run(json!({"miners": {"m": miner}, "config": {"history_window": 2}}))["design"]
            ["performance"]["m"]
            .clone()
    };
    let immediate = 0.2 * 1.0 + 0.3 * PASSING_TIER2;
    assert_eq!(
        number(&with_history(vec![0.0, 1.0])),
        (1.0 + immediate) / 2.0
    );
    assert_eq!(
        number(&with_history(vec![1.0, 0.0])),
        (0.0 + immediate) / 2.0
    );
}
