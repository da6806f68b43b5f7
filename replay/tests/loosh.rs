//! Edge cases and properties of the loosh mechanism (specs/scoring.md section 2).

use std::path::Path;

use serde_json::{Value, json};
use weightlog_replay::{MechanismError, run_json};

fn run(input: Value) -> Value {
    run_json(&input).unwrap_or_else(|error| panic!("unexpected error: {error}"))
}

fn error_of(input: Value) -> String {
    match run_json(&input) {
        Ok(output) => panic!("expected an error, got {output}"),
        Err(error) => error.to_string(),
    }
}

fn number(value: &Value, pointer: &str) -> f64 {
    value
        .pointer(pointer)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("{pointer} missing in {value}"))
}

fn assert_close(actual: f64, expected: f64, what: &str) {
    let tolerance = (1e-12 * actual.abs().max(expected.abs())).max(1e-15);
    assert!(
        (actual - expected).abs() <= tolerance,
        "{what}: expected {expected}, got {actual}"
    );
}

fn response(uid: u16, text: &str, embedding: &[f64], time: f64) -> Value {
    json!({
        "uid": uid,
        "hotkey": format!("hk{uid}"),
        "text": text,
        "embedding": embedding,
        "response_time_ms": time,
    })
}

fn evaluate(prompt: &[f64], responses: Vec<Value>, quality: Option<Vec<f64>>) -> Value {
    run(json!({"evaluate": {
        "prompt_embedding": prompt,
        "responses": responses,
        "quality_scores": quality,
    }}))["evaluate"]
        .clone()
}

fn example(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/specs/mechanism-io")
        .join(format!("{name}.input.json"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// splitmix64: a small deterministic generator for the shuffles.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A Fisher-Yates permutation of `0..count`.
    fn permutation(&mut self, count: usize) -> Vec<usize> {
        let mut order: Vec<usize> = (0..count).collect();
        for index in (1..count).rev() {
            let other = (self.next() % (index as u64 + 1)) as usize;
            order.swap(index, other);
        }
        order
    }
}

// ---------------------------------------------------------------------------------------------
// evaluate: edge cases
// ---------------------------------------------------------------------------------------------

#[test]
fn no_responses_give_no_emissions() {
    let output = evaluate(&[1.0, 0.0], vec![], None);
    assert_eq!(output["status"], "no_responses");
    assert_eq!(output["emissions"], json!({}));
    assert_eq!(output["theta"], 0.0);
}

#[test]
fn all_test_mode_responses_get_zero() {
    let output = evaluate(
        &[1.0, 0.0],
        vec![
            response(1, "  [TEST MODE] hello", &[1.0, 0.0], 100.0),
            response(2, "[TEST MODE]", &[1.0, 0.0], 200.0),
        ],
        None,
    );
    assert_eq!(output["status"], "all_test_mode");
    assert_eq!(output["emissions"], json!({"hk1": 0.0, "hk2": 0.0}));
}

#[test]
fn test_mode_responses_are_removed_and_quality_scores_skip_them() {
    // Two valid responses with identical embeddings; the test-mode one sits between them and
    // has no quality score.
    let output = evaluate(
        &[1.0, 0.1, 0.0],
        vec![
            response(1, "first answer", &[1.0, 0.1, 0.0], 100.0),
            response(5, "[TEST MODE] ignored", &[0.0, 0.0, 1.0], 1.0),
            response(2, "second answer", &[1.0, 0.1, 0.0], 300.0),
        ],
        Some(vec![0.8, 0.5]),
    );
    assert_eq!(output["status"], "ok");
    assert_eq!(output["emissions"]["hk5"], 0.0);
    assert_eq!(output["kept"], json!(["1", "2"]));
    assert!(output["individual"].get("5").is_none());
}

#[test]
fn a_single_response_is_judged_by_prompt_relevance_alone() {
    let passing = evaluate(
        &[1.0, 0.0],
        vec![response(3, "anything", &[1.0, 0.1], 500.0)],
        None,
    );
    assert_eq!(passing["status"], "single_response");
    assert_eq!(passing["theta"], 1.0);
    assert_eq!(passing["emissions"], json!({"hk3": 1.0}));

    // cos = 0.1 / sqrt(1.01) < 0.20.
    let failing = evaluate(
        &[1.0, 0.0],
        vec![
            response(3, "anything", &[0.1, 1.0], 500.0),
            response(4, "[TEST MODE]", &[1.0, 0.0], 1.0),
        ],
        None,
    );
    assert_eq!(failing["theta"], 0.0);
    assert_eq!(failing["emissions"], json!({"hk3": 0.0, "hk4": 0.0}));
}

#[test]
fn two_responses_skip_outlier_detection_and_form_one_cluster() {
    let output = evaluate(
        &[1.0, 0.1, 0.0],
        vec![
            response(1, "first answer", &[1.0, 0.1, 0.0], 100.0),
            response(2, "second answer", &[2.0, 0.2, 0.0], 300.0),
        ],
        Some(vec![0.8, 0.5]),
    );
    assert_eq!(output["kept"], json!(["1", "2"]));
    let theta = number(&output, "/theta");
    // One pair of (numerically) parallel vectors: mean similarity 1, deviation 0.
    assert_close(theta, 1.0, "theta");
    assert_eq!(output["consensus_achieved"], true);
    let similarity = theta;
    let first = similarity * 0.40 + 0.8 * 0.25 + 0.15 + 0.10 + 0.0;
    let second = similarity * 0.40 + 0.5 * 0.25 + 0.15 + 0.10;
    assert_close(number(&output, "/individual/1"), first, "individual 1");
    assert_close(number(&output, "/individual/2"), second, "individual 2");
    assert_eq!(output["top_label"], "1");
    let multiplier = 1.0 + 0.5 * libm::tanh((first - second) * 0.1);
    assert_close(number(&output, "/top_multiplier"), multiplier, "multiplier");
    // Times 100 and 300 ms: ratios 0.75 and 0.25, both in consensus (x1.2).
    assert_close(
        number(&output, "/emissions/hk1"),
        0.75 * theta * 1.2 * multiplier,
        "emission 1",
    );
    assert_close(
        number(&output, "/emissions/hk2"),
        0.25 * theta * 1.2,
        "emission 2",
    );
}

#[test]
fn identical_embeddings_are_all_kept_with_theta_one() {
    let embedding = [0.3, 0.4, 0.5];
    let responses = (1..=5)
        .map(|uid| response(uid, "same words here", &embedding, 100.0 * f64::from(uid)))
        .collect();
    let output = evaluate(&embedding, responses, Some(vec![0.5; 5]));
    assert_eq!(output["kept"], json!(["1", "2", "3", "4", "5"]));
    assert_close(number(&output, "/theta"), 1.0, "theta");
    // Equal scores everywhere: the first in order is the top label, with no bonus.
    let scores: Vec<f64> = (1..=5)
        .map(|uid| number(&output, &format!("/individual/{uid}")))
        .collect();
    assert!(scores.iter().all(|score| (score - scores[0]).abs() < 1e-12));
}

#[test]
fn a_response_below_the_quality_threshold_leaves_the_consensus_set() {
    let output = evaluate(
        &[1.0, 1.0, 0.0],
        vec![
            response(1, "one two three four", &[1.0, 0.0, 0.0], 100.0),
            response(2, "alpha beta", &[0.0, 1.0, 0.0], 300.0),
        ],
        Some(vec![0.9, 0.2]),
    );
    assert_eq!(output["kept"], json!(["1"]));
    // Fewer than two left: theta 0 and every emission 0.
    assert_eq!(output["theta"], 0.0);
    assert_eq!(output["consensus_achieved"], false);
    assert_eq!(output["emissions"], json!({"hk1": 0.0, "hk2": 0.0}));
    // A lone member: no peers, so base similarity 0 and no diversity bonus.
    let member = 0.0 * 0.40 + 0.9 * 0.25 + 0.15 + 0.10 + 0.0;
    assert_close(number(&output, "/individual/1"), member, "member");
    // Outside: 0.30 * cos(2, 1) (= 0) + 2 / 4 words * 0.25 + 0.15.
    let outside = 0.0 * 0.30 + 2.0 / 4.0 * 0.25 + 0.15;
    assert_close(number(&output, "/individual/2"), outside, "outside");
    assert_eq!(output["top_label"], "1");
}

#[test]
fn the_relevance_gate_zeroes_quality_of_off_topic_responses() {
    // Response 2 is orthogonal to the prompt: its given quality 0.9 becomes 0.
    let output = evaluate(
        &[1.0, 0.0, 0.0],
        vec![
            response(1, "on topic", &[1.0, 0.1, 0.0], 100.0),
            response(2, "off topic", &[0.0, 0.0, 1.0], 100.0),
            response(3, "on topic too", &[1.0, 0.2, 0.0], 100.0),
        ],
        Some(vec![0.5, 0.9, 0.5]),
    );
    assert_eq!(output["quality"]["2"], 0.0);
    assert_eq!(output["kept"], json!(["1", "3"]));
}

#[test]
fn a_distant_response_is_dropped_as_an_outlier_unless_it_is_much_better() {
    let close = [[1.0, 0.0], [1.0, 0.01], [1.0, 0.02], [1.0, 0.03]];
    let build = |quality: Vec<f64>| {
        let mut responses: Vec<Value> = close
            .iter()
            .enumerate()
            .map(|(index, embedding)| response(index as u16 + 1, "words", embedding, 100.0))
            .collect();
        responses.push(response(9, "far away", &[-1.0, 5.0], 100.0));
        evaluate(&[1.0, 0.5], responses, Some(quality))
    };
    let normal = build(vec![0.5, 0.5, 0.5, 0.5, 0.5]);
    assert_eq!(normal["kept"], json!(["1", "2", "3", "4"]));
    // The outlier's quality beats the rest by more than 0.15: garbage consensus, keep it alone.
    let garbage = build(vec![0.4, 0.4, 0.4, 0.4, 0.9]);
    assert_eq!(garbage["kept"], json!(["9"]));
    assert_eq!(garbage["theta"], 0.0);
}

#[test]
fn response_times_summing_to_zero_record_no_emissions() {
    let output = evaluate(
        &[1.0, 0.0],
        vec![
            response(1, "a", &[1.0, 0.1], 0.0),
            response(2, "b", &[1.0, 0.2], 0.0),
        ],
        Some(vec![0.5, 0.5]),
    );
    assert_eq!(output["status"], "failed");
    assert_eq!(output["emissions"], json!({}));
}

#[test]
fn entity_caps_scale_scores_of_miners_sharing_an_ip() {
    let input = json!({"evaluate": {
        "prompt_embedding": [1.0, 0.1],
        "responses": [
            response(1, "a", &[1.0, 0.1], 100.0),
            response(2, "b", &[1.0, 0.1], 100.0),
            response(3, "c", &[1.0, 0.1], 100.0),
        ],
        "quality_scores": [0.5, 0.5, 0.5],
        "node_map": {"hk1": ["1.2.3.4", "ck1"], "hk2": ["1.2.3.4", "ck2"], "hk3": ["0.0.0.0", "ck3"]},
    }});
    let output = &run(input)["evaluate"];
    let capped = number(output, "/individual/1");
    let solo = number(output, "/individual/3");
    // Shared IP of two: cap 1/2. Base similarity is a cap-weighted mean of ~1 either way.
    assert_close(capped * 2.0, solo, "capped score is half");
}

// ---------------------------------------------------------------------------------------------
// weights
// ---------------------------------------------------------------------------------------------

fn serving(uids_and_hotkeys: &[(u16, &str)]) -> Value {
    Value::Array(
        uids_and_hotkeys
            .iter()
            .map(|(uid, hotkey)| json!({"uid": uid, "hotkey": hotkey}))
            .collect(),
    )
}

fn weights(section: Value) -> Value {
    run(json!({ "weights": section }))["weights"].clone()
}

#[test]
fn ema_updates_only_on_sighting_and_stale_miners_are_zeroed() {
    let output = weights(json!({
        "evaluations": [
            {"emissions": {"a": 0.4, "b": 0.2}},
            {"emissions": {"a": 0.1, "c": 0.9}},
        ],
        "mode": "NORMAL",
        "fresh": {"a": true, "b": true},
        "serving": serving(&[(1, "a"), (2, "b"), (3, "c")]),
    }));
    assert_close(number(&output, "/ema/a"), 0.3 * 0.1 + 0.7 * 0.4, "ema a");
    assert_eq!(output["ema"]["b"], 0.2);
    assert_eq!(output["ema"]["c"], 0.9);
    // c is missing from `fresh`, so stale.
    assert_eq!(output["after_gates"]["c"], 0.0);
    let total = (0.3 * 0.1 + 0.7 * 0.4) + 0.2;
    assert_eq!(output["uids"], json!([1, 2, 3]));
    assert_close(
        number(&output, "/weights/0"),
        (0.3 * 0.1 + 0.7 * 0.4) / total,
        "w a",
    );
    assert_close(number(&output, "/weights/1"), 0.2 / total, "w b");
    assert_eq!(output["weights"][2], 0.0);
    assert_eq!(output["u16"]["uids"], json!([1, 2]));
}

#[test]
fn emergency_mode_skips_the_freshness_gate() {
    let output = weights(json!({
        "evaluations": [{"emissions": {"a": 0.5, "b": 0.5}}],
        "mode": "EMERGENCY",
        "fresh": {},
        "serving": serving(&[(1, "a"), (2, "b")]),
    }));
    assert_eq!(output["status"], "set");
    assert_eq!(output["weights"], json!([0.5, 0.5]));
    assert_eq!(output["u16"]["weights"], json!([65535, 65535]));
}

#[test]
fn all_zero_weights_skip_outside_emergency_and_go_uniform_in_emergency() {
    let section = |mode: &str| {
        json!({
            "evaluations": [{"emissions": {"a": 0.0}}],
            "mode": mode,
            "fresh": {"a": true},
            "serving": serving(&[(4, "a"), (7, "b"), (9, "c")]),
        })
    };
    for mode in ["NORMAL", "DEGRADED"] {
        let output = weights(section(mode));
        assert_eq!(output["status"], "skipped_all_zero", "{mode}");
        assert_eq!(output["uids"], json!([]));
    }
    let output = weights(section("EMERGENCY"));
    assert_eq!(output["status"], "set");
    assert_eq!(output["uniform"], true);
    assert_eq!(output["weights"], json!([1.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0]));
    assert_eq!(output["u16"]["weights"], json!([65535, 65535, 65535]));
}

#[test]
fn no_evaluations_leave_the_ema_empty() {
    let section = |mode: &str| json!({"evaluations": [], "mode": mode, "serving": serving(&[(1, "a"), (2, "b")])});
    let normal = weights(section("NORMAL"));
    assert_eq!(normal["ema"], json!({}));
    assert_eq!(normal["status"], "skipped_all_zero");
    let emergency = weights(section("EMERGENCY"));
    assert_eq!(emergency["weights"], json!([0.5, 0.5]));
}

#[test]
fn degraded_mode_applies_the_freshness_verdicts() {
    let output = weights(json!({
        "evaluations": [{"emissions": {"a": 0.6, "b": 0.2}}],
        "mode": "DEGRADED",
        "fresh": {"a": false, "b": true},
        "serving": serving(&[(1, "a"), (2, "b")]),
    }));
    assert_eq!(output["after_gates"], json!({"a": 0.0, "b": 0.2}));
    assert_eq!(output["weights"], json!([0.0, 1.0]));
    assert_eq!(output["u16"], json!({"uids": [2], "weights": [65535]}));
}

#[test]
fn sybil_penalty_hits_the_hard_tier_always_and_the_soft_tier_up_to_a_third() {
    // Six serving miners: at most max(1, int(6 * 0.33)) = 1 soft-tier penalty.
    let output = weights(json!({
        "evaluations": [{"emissions": {"a": 1.0, "b": 1.0, "c": 1.0, "d": 1.0, "e": 1.0, "f": 0.0}}],
        "mode": "EMERGENCY",
        "serving": serving(&[(1, "a"), (2, "b"), (3, "c"), (4, "d"), (5, "e"), (6, "f")]),
        "sybil_scores": {"a": 0.3, "b": 0.5, "c": 0.7, "d": 0.05, "e": 1.5, "f": 0.9},
    }));
    let after = &output["after_gates"];
    // a: soft but spared (b is worse); b: soft, penalised to 1 - 0.5.
    assert_eq!(after["a"], 1.0);
    assert_eq!(after["b"], 0.5);
    // c: hard tier, max(1 - 0.7, 0.2) = 0.3 (approximately: 1 - 0.7 in binary).
    assert_close(number(after, "/c"), 1.0 - 0.7, "c");
    // d: below the 0.1 threshold.
    assert_eq!(after["d"], 1.0);
    // e: penalty capped at 1, then the 0.2 retention floor.
    assert_eq!(after["e"], 0.2);
    // f: zero EMA is never a candidate.
    assert_eq!(after["f"], 0.0);
}

#[test]
fn soft_tier_ties_are_broken_by_first_sighting_order() {
    // Three serving miners: one soft-tier penalty allowed; a and b tie at 0.3.
    let section = |first: &str, second: &str| {
        json!({
            "evaluations": [
                {"emissions": {first: 1.0}},
                {"emissions": {second: 1.0, "c": 1.0}},
            ],
            "mode": "EMERGENCY",
            "serving": serving(&[(1, "a"), (2, "b"), (3, "c")]),
            "sybil_scores": {"a": 0.3, "b": 0.3},
        })
    };
    let a_first = weights(section("a", "b"));
    assert_close(number(&a_first, "/after_gates/a"), 0.7, "a penalised");
    assert_eq!(a_first["after_gates"]["b"], 1.0);
    let b_first = weights(section("b", "a"));
    assert_eq!(b_first["after_gates"]["a"], 1.0);
    assert_close(number(&b_first, "/after_gates/b"), 0.7, "b penalised");
}

#[test]
fn no_serving_miner_skips_the_round() {
    let output = weights(json!({
        "evaluations": [{"emissions": {"a": 1.0}}],
        "mode": "NORMAL",
        "fresh": {"a": true},
        "serving": [],
    }));
    assert_eq!(output["status"], "skipped_no_serving_miners");
}

// ---------------------------------------------------------------------------------------------
// malformed input
// ---------------------------------------------------------------------------------------------

#[test]
fn malformed_inputs_are_rejected_with_the_field_named() {
    let good_response = response(1, "text", &[1.0, 0.0], 10.0);
    let with_response = |response: Value| json!({"evaluate": {"prompt_embedding": [1.0, 0.0], "responses": [response]}});
    // NaN cannot be written in JSON; serde_json turns it into null.
    let mut nan_embedding = good_response.clone();
    nan_embedding["embedding"] = json!([f64::NAN, 1.0]);
    // The full messages, so that the lazily formatted field names are checked whole.
    assert_eq!(
        error_of(with_response(nan_embedding)),
        "invalid input: `evaluate.responses[0].embedding`: invalid type: null, expected f64"
    );

    let mut negative_time = good_response.clone();
    negative_time["response_time_ms"] = json!(-5.0);
    let message = error_of(with_response(negative_time));
    assert!(message.contains("response_time_ms"), "{message}");

    let mut short_embedding = good_response.clone();
    short_embedding["embedding"] = json!([1.0]);
    let message = error_of(with_response(short_embedding));
    assert!(message.contains("dimensions"), "{message}");

    let mut missing_hotkey = good_response.clone();
    missing_hotkey.as_object_mut().unwrap().remove("hotkey");
    assert_eq!(
        error_of(with_response(missing_hotkey)),
        "invalid input: `evaluate.responses[0].hotkey` is missing"
    );

    let message = error_of(json!({"evaluate": {
        "prompt_embedding": [1.0, 0.0],
        "responses": [good_response.clone()],
        "quality_scores": [0.5, 0.5],
    }}));
    assert!(message.contains("quality_scores"), "{message}");

    let message = error_of(json!({"evaluate": {
        "prompt_embedding": [1.0, 0.0],
        "responses": [good_response.clone(), good_response.clone()],
    }}));
    assert!(message.contains("appears twice"), "{message}");

    let message = error_of(json!({"evaluate": {
        "prompt_embedding": [1.0, 0.0],
        "responses": [],
        "config": {"quality_treshold": 0.5},
    }}));
    assert!(message.contains("quality_treshold"), "{message}");

    let message = error_of(json!({"weights": {"mode": "CALM", "serving": []}}));
    assert!(message.contains("weights.mode"), "{message}");

    let message = error_of(json!({"weights": {"serving": []}}));
    assert!(message.contains("weights.mode"), "{message}");

    let message = error_of(json!({"weights": {
        "mode": "NORMAL",
        "serving": [],
        "evaluations": [{"emissions": {"a": -1.0}}],
    }}));
    assert_eq!(
        message,
        "invalid input: `weights.evaluations[0].emissions.a` is negative (-1); emissions are >= 0"
    );

    let message = error_of(json!({"weights": {
        "mode": "NORMAL",
        "serving": [],
        "sybil_scores": {"a": f64::INFINITY},
    }}));
    assert_eq!(
        message,
        "invalid input: `weights.sybil_scores`: invalid type: null, expected f64"
    );

    // Arrays are read in place; a value that is not one keeps serde's message.
    let message = error_of(json!({"weights": {"mode": "NORMAL", "serving": [], "evaluations": 5}}));
    assert_eq!(
        message,
        "invalid input: `weights.evaluations`: invalid type: integer `5`, expected a sequence"
    );
    let message = error_of(json!({"weights": {"mode": "NORMAL", "serving": "all"}}));
    assert_eq!(
        message,
        "invalid input: `weights.serving`: invalid type: string \"all\", expected a sequence"
    );
    let message = error_of(json!({"evaluate": {"prompt_embedding": [1.0], "responses": {}}}));
    assert_eq!(
        message,
        "invalid input: `evaluate.responses`: invalid type: map, expected a sequence"
    );

    let message = error_of(json!({"weights": {"mode": "NORMAL", "serving": [{"uid": 3}]}}));
    assert_eq!(
        message,
        "invalid input: `weights.serving[0].hotkey` is missing"
    );

    let message = error_of(json!({"weights": {"mode": "NORMAL", "serving": [], "alpha": 2.0}}));
    assert!(message.contains("weights.alpha"), "{message}");

    assert!(matches!(
        run_json(&json!({"evaluate": [], "weights": {}})),
        Err(MechanismError::Invalid(_))
    ));
}

// ---------------------------------------------------------------------------------------------
// order
// ---------------------------------------------------------------------------------------------

#[test]
fn permuting_serving_miners_does_not_change_the_weights() {
    let input = example("gen-loosh_weights-2");
    let baseline = run(input.clone())["weights"].clone();
    let by_uid = |output: &Value| -> Vec<(u64, f64)> {
        let uids = output["uids"].as_array().unwrap();
        let weights = output["weights"].as_array().unwrap();
        let mut pairs: Vec<(u64, f64)> = uids
            .iter()
            .zip(weights)
            .map(|(uid, weight)| (uid.as_u64().unwrap(), weight.as_f64().unwrap()))
            .collect();
        pairs.sort_by_key(|pair| pair.0);
        pairs
    };
    let u16_by_uid = |output: &Value| -> Vec<(u64, u64)> {
        let uids = output["u16"]["uids"].as_array().unwrap();
        let weights = output["u16"]["weights"].as_array().unwrap();
        let mut pairs: Vec<(u64, u64)> = uids
            .iter()
            .zip(weights)
            .map(|(uid, weight)| (uid.as_u64().unwrap(), weight.as_u64().unwrap()))
            .collect();
        pairs.sort_unstable();
        pairs
    };
    for seed in 1..=8 {
        let mut shuffled = input.clone();
        let serving = shuffled["weights"]["serving"].as_array().unwrap().clone();
        let order = SplitMix64(seed).permutation(serving.len());
        shuffled["weights"]["serving"] =
            Value::Array(order.iter().map(|&index| serving[index].clone()).collect());
        let output = run(shuffled)["weights"].clone();
        for ((uid, expected), (_, actual)) in by_uid(&baseline).into_iter().zip(by_uid(&output)) {
            assert_close(actual, expected, &format!("seed {seed} uid {uid}"));
        }
        assert_eq!(u16_by_uid(&output), u16_by_uid(&baseline), "seed {seed}");
        assert_eq!(output["ema"], baseline["ema"]);
    }
}

#[test]
fn permuting_responses_does_not_change_scores_or_emissions() {
    for name in ["gen-loosh_evaluate-1", "gen-loosh_evaluate-2", "loosh"] {
        let input = example(name);
        let baseline = run(input.clone())["evaluate"].clone();
        for seed in 1..=6 {
            let mut shuffled = input.clone();
            let responses = shuffled["evaluate"]["responses"]
                .as_array()
                .unwrap()
                .clone();
            let order = SplitMix64(seed).permutation(responses.len());
            shuffled["evaluate"]["responses"] = Value::Array(
                order
                    .iter()
                    .map(|&index| responses[index].clone())
                    .collect(),
            );
            if let Some(quality) = shuffled["evaluate"]["quality_scores"].as_array().cloned() {
                shuffled["evaluate"]["quality_scores"] =
                    Value::Array(order.iter().map(|&index| quality[index].clone()).collect());
            }
            let output = run(shuffled)["evaluate"].clone();
            let mut expected_kept: Vec<String> =
                serde_json::from_value(baseline["kept"].clone()).unwrap();
            let mut actual_kept: Vec<String> =
                serde_json::from_value(output["kept"].clone()).unwrap();
            expected_kept.sort();
            actual_kept.sort();
            assert_eq!(actual_kept, expected_kept, "{name} seed {seed}");
            for key in ["emissions", "individual"] {
                for (label, expected) in baseline[key].as_object().unwrap() {
                    assert_close(
                        output[key][label].as_f64().unwrap(),
                        expected.as_f64().unwrap(),
                        &format!("{name} seed {seed} {key} {label}"),
                    );
                }
            }
            assert_close(
                number(&output, "/theta"),
                number(&baseline, "/theta"),
                &format!("{name} seed {seed} theta"),
            );
        }
    }
}

#[test]
fn equal_top_scores_go_to_the_earlier_response() {
    let build = |first: u16, second: u16| {
        evaluate(
            &[1.0, 0.1],
            vec![
                response(first, "same", &[1.0, 0.1], 100.0),
                response(second, "same", &[1.0, 0.1], 100.0),
            ],
            Some(vec![0.5, 0.5]),
        )
    };
    let forward = build(1, 2);
    assert_eq!(forward["top_label"], "1");
    assert_eq!(forward["top_multiplier"], 1.0);
    let backward = build(2, 1);
    assert_eq!(backward["top_label"], "2");
}

#[test]
fn when_no_response_passes_the_quality_gate_nothing_is_scored() {
    // A config override raises the threshold above every quality score.
    let output = run(json!({"evaluate": {
        "prompt_embedding": [1.0, 0.1],
        "responses": [
            response(1, "a", &[1.0, 0.1], 100.0),
            response(2, "b", &[1.0, 0.2], 300.0),
        ],
        "quality_scores": [0.5, 0.6],
        "config": {"quality_threshold": 0.9},
    }}))["evaluate"]
        .clone();
    assert_eq!(output["status"], "ok");
    assert_eq!(output["kept"], json!([]));
    assert_eq!(output["individual"], json!({}));
    assert_eq!(output["theta"], 0.0);
    assert_eq!(output["top_label"], Value::Null);
    assert_eq!(output["emissions"], json!({"hk1": 0.0, "hk2": 0.0}));
}
