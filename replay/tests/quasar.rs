//! QUASAR edge cases and properties (specs/scoring.md section 3). Expected values for the
//! weight pipeline were computed with the upstream `weight_utils.py` under numpy 2.4 and the
//! EMA in numpy float32 (the same operations torch performs).

use serde_json::{Value, json};
use weightlog_replay::quasar::{ChainLimits, normalize_max_weight_f32, process_weights_for_netuid};
use weightlog_replay::{MechanismError, run_json};

fn run(input: Value) -> Value {
    run_json(&input).unwrap_or_else(|error| panic!("{error}"))
}

fn error_of(input: Value) -> String {
    match run_json(&input) {
        Ok(output) => panic!("expected an error, got {output}"),
        Err(error) => error.to_string(),
    }
}

fn floats(value: &Value) -> Vec<f64> {
    value
        .as_array()
        .expect("a list")
        .iter()
        .map(|item| item.as_f64().expect("a number"))
        .collect()
}

fn integers(value: &Value) -> Vec<u64> {
    value
        .as_array()
        .expect("a list")
        .iter()
        .map(|item| item.as_u64().expect("an integer"))
        .collect()
}

fn metric(dataset: &str, prediction: &str, ground_truth: &str) -> f64 {
    run(
        json!({"mode": "metric", "dataset": dataset, "prediction": prediction,
               "ground_truth": ground_truth}),
    )["score"]
        .as_f64()
        .unwrap()
}

// ---------------------------------------------------------------------------------------
// Validator loops

#[test]
fn no_tasks_gives_uniform_weights() {
    for mode in ["validator_v1", "validator_v2"] {
        let output = run(json!({"mode": mode, "n": 4, "tasks": []}));
        assert_eq!(floats(&output["scores"]), vec![0.0; 4]);
        // A zero L1 norm is replaced by 1, so the raw weights stay zero ...
        assert_eq!(floats(&output["raw_weights"]), vec![0.0; 4]);
        // ... and process_weights_for_netuid falls back to 1/n everywhere.
        assert_eq!(integers(&output["processed"]["uids"]), vec![0, 1, 2, 3]);
        assert_eq!(floats(&output["processed"]["weights"]), vec![0.25; 4]);
        assert_eq!(integers(&output["u16"]["weights"]), vec![65535; 4]);
        assert!(output["per_task"].as_array().unwrap().is_empty());
    }
}

#[test]
fn all_null_responses_reward_zero_and_count_failures() {
    let output = run(json!({
        "mode": "validator_v1", "n": 3,
        "tasks": [
            {"context_length": 1000, "dataset": "qasper", "expected_output": "x",
             "responses": {"0": null, "2": ""}},
            {"context_length": 1000, "dataset": "qasper", "expected_output": "x",
             "responses": {"0": null}}
        ]
    }));
    let rewards = &output["per_task"][0]["rewards"];
    assert_eq!(rewards["0"], json!(0.0));
    assert_eq!(rewards["2"], json!(0.0));
    assert_eq!(floats(&output["bucket_scores"]["32k"]), vec![0.0; 3]);
    assert_eq!(floats(&output["consecutive_failures"]), vec![2.0, 0.0, 1.0]);
    assert_eq!(floats(&output["processed"]["weights"]), vec![1.0 / 3.0; 3]);
}

#[test]
fn accuracies_replace_responses() {
    // 40000 tokens is v1's "50k" bucket (x1.5): 0.5 -> 0.75, 0.2 -> 0.3 (float32).
    let output = run(json!({
        "mode": "validator_v1", "n": 4,
        "tasks": [{"context_length": 40000, "dataset": "qasper", "expected_output": "ignored",
                   "accuracies": {"1": 0.5, "2": 0.2}}]
    }));
    let task = &output["per_task"][0];
    assert_eq!(task["bucket"], json!("50k"));
    assert_eq!(task["multiplier"], json!(1.5));
    assert_eq!(task["rewards"]["1"], json!(0.75));
    assert_eq!(task["rewards"]["2"], json!(f64::from(0.3f32)));
    assert_eq!(
        floats(&output["bucket_scores"]["50k"]),
        vec![0.0, 0.07500000298023224, 0.030000001192092896, 0.0]
    );
    assert_eq!(
        floats(&output["scores"]),
        vec![0.0, 1.0, 0.4000000059604645, 0.0]
    );
    assert_eq!(
        floats(&output["raw_weights"]),
        vec![0.0, 0.7142857313156128, 0.2857142984867096, 0.0]
    );
    assert_eq!(integers(&output["processed"]["uids"]), vec![1, 2]);
    assert_eq!(
        floats(&output["processed"]["weights"]),
        vec![0.7142857313156128, 0.2857142984867096]
    );
    assert_eq!(integers(&output["u16"]["uids"]), vec![1, 2]);
    assert_eq!(integers(&output["u16"]["weights"]), vec![65535, 26214]);
}

#[test]
fn an_accuracy_of_null_is_a_missing_response() {
    let output = run(json!({
        "mode": "validator_v2", "n": 2,
        "tasks": [{"context_length": 600000, "dataset": "qasper", "expected_output": "",
                   "accuracies": {"0": null, "1": 1.0}}]
    }));
    assert_eq!(output["per_task"][0]["rewards"]["0"], json!(0.0));
    assert_eq!(output["per_task"][0]["rewards"]["1"], json!(1.0));
    assert_eq!(floats(&output["consecutive_failures"]), vec![1.0, 0.0]);
}

fn bucket_of(mode: &str, context_length: u64) -> (String, f64) {
    let output = run(json!({
        "mode": mode, "n": 1,
        "tasks": [{"context_length": context_length, "dataset": "qasper",
                   "expected_output": "", "accuracies": {"0": 0.0}}]
    }));
    let task = &output["per_task"][0];
    (
        task["bucket"].as_str().unwrap().to_string(),
        task["multiplier"].as_f64().unwrap(),
    )
}

#[test]
fn bucket_boundaries_are_half_open() {
    let v1 = |length| bucket_of("validator_v1", length);
    assert_eq!(v1(0), ("32k".to_string(), 1.0));
    assert_eq!(v1(31_999), ("32k".to_string(), 1.0));
    assert_eq!(v1(32_000), ("50k".to_string(), 1.5));
    assert_eq!(v1(124_000), ("256k".to_string(), 4.5));
    assert_eq!(v1(999_999), ("1m".to_string(), 12.0));
    assert_eq!(v1(1_000_000), ("1.5m".to_string(), 16.0));
    assert_eq!(v1(2_000_000), ("infinity".to_string(), 25.0));
    let v2 = |length| bucket_of("validator_v2", length);
    assert_eq!(v2(32_000), ("128k".to_string(), 0.1));
    assert_eq!(v2(128_000), ("500k".to_string(), 1.0));
    assert_eq!(v2(500_000), ("1M".to_string(), 1.5));
    assert_eq!(v2(1_999_999), ("2M".to_string(), 2.0));
    // >= 2e6 falls back to "2M" in v2.
    assert_eq!(v2(2_000_000), ("2M".to_string(), 2.0));

    let api = run(json!({"mode": "api_score", "items": [
        {"score": 0.5, "context_length": 31999},
        {"score": 0.5, "context_length": 32000},
        {"score": 0.5, "context_length": 500000},
        {"score": 0.5, "context_length": 2000000},
        {"score": 1.7, "context_length": 1999999},
        {"score": -0.3, "context_length": 1999999}
    ]}));
    assert_eq!(
        floats(&api["rewards"]),
        vec![0.05, 0.05, 0.75, 0.5, 2.0, 0.0]
    );
}

#[test]
fn min_allowed_weights_larger_than_n_gives_uniform() {
    let output = run(json!({
        "mode": "validator_v1", "n": 3,
        "chain": {"min_allowed_weights": 8, "max_weight_limit": 1.0},
        "tasks": [{"context_length": 40000, "dataset": "qasper", "expected_output": "",
                   "accuracies": {"0": 0.5}}]
    }));
    assert_eq!(integers(&output["processed"]["uids"]), vec![0, 1, 2]);
    assert_eq!(floats(&output["processed"]["weights"]), vec![1.0 / 3.0; 3]);
    assert_eq!(integers(&output["u16"]["weights"]), vec![65535; 3]);
}

#[test]
fn fewer_non_zero_weights_than_allowed_pads_with_a_minimum() {
    // Two non-zero weights, min_allowed_weights 3 <= n = 5: every uid gets 1e-5 plus its
    // weight, normalised in float64.
    let output = run(json!({
        "mode": "validator_v1", "n": 5,
        "chain": {"min_allowed_weights": 3, "max_weight_limit": 1.0},
        "tasks": [{"context_length": 40000, "dataset": "qasper", "expected_output": "",
                   "accuracies": {"0": 0.5, "3": 0.25}}]
    }));
    assert_eq!(integers(&output["processed"]["uids"]), vec![0, 1, 2, 3, 4]);
    assert_eq!(
        floats(&output["processed"]["weights"]),
        vec![
            0.6666433345006371,
            9.999499727005336e-06,
            9.999499727005336e-06,
            0.33332666700018204,
            9.999499727005336e-06
        ]
    );
    assert_eq!(
        integers(&output["u16"]["weights"]),
        vec![65535, 1, 1, 32768, 1]
    );
}

#[test]
fn max_weight_limit_clips_the_largest_shares() {
    let output = run(json!({
        "mode": "validator_v1", "n": 4,
        "chain": {"min_allowed_weights": 1, "max_weight_limit": 0.4},
        "tasks": [{"context_length": 40000, "dataset": "qasper", "expected_output": "",
                   "accuracies": {"0": 1.0, "1": 0.4, "2": 0.2, "3": null}}]
    }));
    assert_eq!(
        floats(&output["raw_weights"]),
        vec![
            0.5263157486915588,
            0.31578946113586426,
            0.15789473056793213,
            0.0
        ]
    );
    assert_eq!(integers(&output["processed"]["uids"]), vec![0, 1, 2]);
    assert_eq!(
        floats(&output["processed"]["weights"]),
        vec![0.3999999761581421, 0.3999999761581421, 0.2000000774860382]
    );
    assert_eq!(
        integers(&output["u16"]["weights"]),
        vec![65535, 65535, 32768]
    );

    // n * limit <= 1 -> uniform; a limit of 1 -> plain normalisation.
    assert_eq!(normalize_max_weight_f32(&[1.0, 3.0], 0.5), vec![0.5, 0.5]);
    assert_eq!(normalize_max_weight_f32(&[1.0, 3.0], 1.0), vec![0.25, 0.75]);
    let processed = process_weights_for_netuid(
        &[0.0, 0.0],
        ChainLimits {
            min_allowed_weights: 1,
            max_weight_limit: 0.1,
        },
    )
    .unwrap();
    assert_eq!(processed.weights, vec![0.5, 0.5]);
}

#[test]
fn an_initial_state_is_the_ema_starting_point() {
    let state = json!({"bucket_scores": {"32k": [0.5, 0.0], "1m": {"1": 0.25}},
                       "consecutive_failures": {"1": 3}});
    // Without a scored task, update_scores never runs: the global scores stay as restored
    // (zeros here), so the weights are uniform whatever the buckets hold.
    let idle = run(json!({"mode": "validator_v1", "n": 2, "tasks": [], "state": state}));
    assert_eq!(floats(&idle["scores"]), vec![0.0, 0.0]);
    assert_eq!(floats(&idle["processed"]["weights"]), vec![0.5, 0.5]);
    assert_eq!(floats(&idle["bucket_scores"]["1m"]), vec![0.0, 0.25]);
    assert_eq!(floats(&idle["consecutive_failures"]), vec![0.0, 3.0]);
    // Restored global scores are used as they are.
    let restored = run(json!({"mode": "validator_v1", "n": 2, "tasks": [],
                              "state": {"scores": [0.25, 0.75]}}));
    assert_eq!(floats(&restored["raw_weights"]), vec![0.25, 0.75]);
    assert_eq!(integers(&restored["u16"]["weights"]), vec![21845, 65535]);
    // One task in "32k": uid 0 answers with accuracy 1.0 -> 0.1 + 0.9 * 0.5 in float32, and
    // the composite now includes the restored "1m" bucket.
    let output = run(json!({
        "mode": "validator_v1", "n": 2, "state": state,
        "tasks": [{"context_length": 10, "dataset": "qasper", "expected_output": "",
                   "accuracies": {"0": 1.0, "1": null}}]
    }));
    let expected = 1.0f32 * 0.1f32 + 0.5f32 * 0.9f32;
    assert_eq!(
        floats(&output["bucket_scores"]["32k"]),
        vec![f64::from(expected), 0.0]
    );
    assert_eq!(floats(&output["bucket_scores"]["1m"]), vec![0.0, 0.25]);
    assert_eq!(floats(&output["consecutive_failures"]), vec![0.0, 4.0]);
    let composite = [expected, 0.25f32];
    assert_eq!(
        floats(&output["scores"]),
        vec![1.0, f64::from(composite[1] / composite[0])]
    );
}

#[test]
fn responses_are_scored_with_the_dataset_metric() {
    // The hand-made example's first task: "Paris is the capital" has F1 0.75 against the
    // gold answer, x1.5 in "50k" -> 1.125, clamped to 1.
    let output = run(json!({
        "mode": "validator_v1", "n": 4,
        "tasks": [{"context_length": 40000, "dataset": "qasper",
                   "expected_output": "the capital of France is Paris",
                   "responses": {"1": "Paris is the capital", "3": "London"}}]
    }));
    assert_eq!(output["per_task"][0]["rewards"]["1"], json!(1.0));
    assert_eq!(output["per_task"][0]["rewards"]["3"], json!(0.0));
}

#[test]
fn v2_grid_search_scores_zero_and_math_needs_accuracies() {
    let output = run(json!({
        "mode": "validator_v2", "n": 2,
        "tasks": [{"context_length": 600000, "dataset": "grid_search", "expected_output": "a",
                   "responses": {"0": "a"}}]
    }));
    assert_eq!(output["per_task"][0]["rewards"]["0"], json!(0.0));
    assert_eq!(floats(&output["consecutive_failures"]), vec![0.0, 0.0]);
    let message = error_of(json!({
        "mode": "validator_v2", "n": 2,
        "tasks": [{"context_length": 600000, "dataset": "quasar_execution_v1",
                   "expected_output": "4", "responses": {"0": "\\boxed{4}"}}]
    }));
    assert!(message.contains("math_verify"), "{message}");
    let accepted = run(json!({
        "mode": "validator_v2", "n": 2,
        "tasks": [{"context_length": 600000, "dataset": "quasar_execution_v1",
                   "expected_output": "4", "accuracies": {"0": 0.5}}]
    }));
    assert_eq!(accepted["per_task"][0]["rewards"]["0"], json!(0.75));
}

// ---------------------------------------------------------------------------------------
// Metrics

#[test]
fn empty_predictions_and_ground_truths() {
    assert_eq!(metric("qasper", "", "Paris"), 0.0);
    assert_eq!(metric("qasper", "Paris", ""), 0.0);
    assert_eq!(metric("gov_report", "", "Budget rose."), 0.0);
    assert_eq!(metric("gov_report", "Budget rose.", ""), 0.0);
    assert_eq!(metric("passage_count", "", "3"), 0.0);
    assert_eq!(metric("passage_count", "3 and 3", ""), 0.0);
    assert_eq!(metric("passage_retrieval_en", "Paragraph 3", ""), 0.0);
    assert_eq!(metric("passage_retrieval_en", "", "Paragraph 3"), 0.0);
    // fuzz.ratio checks equality before emptiness: two empty strings are equal.
    assert_eq!(metric("lcc", "", ""), 1.0);
    assert_eq!(metric("lcc", "", "x = 1"), 0.0);
    assert_eq!(metric("lcc", "x = 1", ""), 0.0);
    assert_eq!(metric("openai_mrcr_code", "", "0123456789abc"), 0.0);
    assert_eq!(metric("trec", "", "Food"), 0.0);
}

#[test]
fn metric_values_on_known_cases() {
    assert_eq!(
        metric(
            "qasper",
            "index response country country index",
            "the index country planet response 395"
        ),
        0.6
    );
    assert_eq!(
        metric("passage_count", "There are 22 or 23 paragraphs, 22", "22"),
        2.0 / 3.0
    );
    assert_eq!(
        metric("passage_retrieval_en", "Paragraph 15", "Paragraph 15"),
        1.0
    );
    assert_eq!(
        metric("passage_retrieval_en", "Paragraph 28", "Paragraph 15"),
        0.0
    );
    // Code similarity skips comment lines and takes the first clean one.
    assert_eq!(metric("repobench-p", "# hint\nx = 1", "x = 1"), 1.0);
    // MRCR: equal hash prefix, then difflib's ratio of the stripped rests: "abcd" against
    // "abcde" -> 2 * 4 / 9.
    assert_eq!(
        metric("openai_mrcr_code", "0123456789 abcd", "0123456789abcde"),
        8.0 / 9.0
    );
    assert_eq!(
        metric("openai_mrcr_code", "X123456789abcd", "0123456789abcd"),
        0.0
    );
    // Unknown datasets use the qa F1 metric.
    assert_eq!(metric("no_such_dataset", "Paris", "paris."), 1.0);
}

#[test]
fn classification_reproduces_the_remove_while_iterating_quirk() {
    let score = |classes: Value, prediction: &str, gold: &str| -> f64 {
        run(
            json!({"mode": "metric", "dataset": "trec", "prediction": prediction,
                   "ground_truth": gold, "all_classes": classes}),
        )["score"]
            .as_f64()
            .unwrap()
    };
    // Matches [Count, Coun, Country]: "Count" is removed, "Coun" slides into its slot and
    // is skipped, so [Coun, Country] remain and the gold one scores 1/2.
    assert_eq!(
        score(json!(["Count", "Coun", "Country"]), "Country", "Country"),
        0.5
    );
    // The order of all_classes matters: [Coun, Country, Count] removes "Coun", skips
    // "Country", then removes "Count" -> only the gold class is left.
    assert_eq!(
        score(json!(["Coun", "Country", "Count"]), "Country", "Country"),
        1.0
    );
    // [Coun, Count, Country] removes "Coun" and skips "Count" -> [Count, Country].
    assert_eq!(
        score(json!(["Coun", "Count", "Country"]), "Country", "Country"),
        0.5
    );
    // Without classes (or with an empty list) nothing matches.
    assert_eq!(score(json!([]), "Country", "Country"), 0.0);
    assert_eq!(score(Value::Null, "Country", "Country"), 0.0);
}

#[test]
fn chinese_datasets_are_rejected() {
    for dataset in [
        "multifieldqa_zh",
        "dureader",
        "vcsum",
        "passage_retrieval_zh",
    ] {
        let message = error_of(json!({"mode": "metric", "dataset": dataset,
                                      "prediction": "a", "ground_truth": "a"}));
        assert!(
            message.contains(dataset) && message.contains("Chinese"),
            "{message}"
        );
    }
    let message = error_of(json!({
        "mode": "validator_v1", "n": 2,
        "tasks": [{"context_length": 1, "dataset": "dureader", "expected_output": "a",
                   "responses": {"0": "a"}}]
    }));
    assert!(message.contains("dureader"), "{message}");
}

// ---------------------------------------------------------------------------------------
// Per-item modes

#[test]
fn readme_and_hfa_items() {
    let readme = run(json!({"mode": "readme", "items": [
        {"accuracy": 0.5, "bucket": "124k"}, {"accuracy": 0.9, "bucket": "2m"},
        {"accuracy": 0.0, "bucket": "32k"}
    ]}));
    assert_eq!(floats(&readme["rewards"]), vec![0.6, 1.0, 0.0]);

    let hfa = run(json!({"mode": "hfa", "items": [
        {"task": {"type": "memory_retention", "context_length": 50000, "scale_factor": 4},
         "metrics": {"memory_retention_score": 0.97, "position_understanding_score": 0.7,
                     "coherence_score": 0.8, "tokens_per_second": 650,
                     "scaling_efficiency": 0.9}},
        {"task": {}, "metrics": null},
        {"task": {}, "metrics": {"memory_retention_score": "high"}},
        {"task": {}, "metrics": {}}
    ]}));
    let rewards = floats(&hfa["rewards"]);
    assert_eq!(rewards[0], 0.9155465000000002);
    assert_eq!(&rewards[1..], &[0.0, 0.0, 0.0]);
}

// ---------------------------------------------------------------------------------------
// Malformed inputs

#[test]
fn malformed_inputs_are_rejected_with_a_named_problem() {
    let cases = [
        (json!({"mode": "validator_v1", "tasks": []}), "n"),
        (
            json!({"mode": "validator_v1", "n": 0, "tasks": []}),
            "n must be",
        ),
        (
            json!({"mode": "validator_v1", "n": 2, "tasks": [
                {"context_length": 1, "dataset": "qasper", "expected_output": "",
                 "accuracies": {"five": 1.0}}]}),
            "tasks[0].accuracies: key `five` is not a uid in 0..2",
        ),
        (
            json!({"mode": "validator_v1", "n": 2, "tasks": [
                {"context_length": 1, "dataset": "qasper", "expected_output": "",
                 "accuracies": {"2": 1.0}}]}),
            "tasks[0].accuracies: key `2` is not a uid in 0..2",
        ),
        (
            json!({"mode": "validator_v1", "n": 2, "tasks": [
                {"context_length": 1, "dataset": "qasper", "expected_output": "",
                 "accuracies": {"0": 1.0}},
                {"context_length": 1, "dataset": "qasper", "expected_output": "",
                 "responses": {"7": "a"}}]}),
            "tasks[1].responses: key `7` is not a uid in 0..2",
        ),
        (
            json!({"mode": "validator_v1", "n": 2, "tasks": [
                {"context_length": 1, "dataset": "qasper", "expected_output": "",
                 "accuracies": {"0": "NaN"}}]}),
            "validator_v1",
        ),
        (
            json!({"mode": "validator_v1", "n": 2, "tasks": [
                {"context_length": -5, "dataset": "qasper", "expected_output": "",
                 "accuracies": {"0": 1.0}}]}),
            "tasks[0].context_length must be >= 0, got -5",
        ),
        (
            json!({"mode": "validator_v1", "n": 2, "tasks": [
                {"context_length": 1, "dataset": "qasper", "expected_output": "",
                 "accuracies": {"0": 1.0}, "responses": {"0": "a"}}]}),
            "both",
        ),
        (
            json!({"mode": "validator_v2", "n": 2, "tasks": [],
                   "chain": {"min_allowed_weights": 1, "max_weight_limit": 1.5}}),
            "max_weight_limit",
        ),
        (
            json!({"mode": "validator_v2", "n": 2, "tasks": [],
                   "state": {"bucket_scores": {"64k": [0.0, 0.0]}}}),
            "64k",
        ),
        (
            json!({"mode": "validator_v2", "n": 2, "tasks": [],
                   "state": {"bucket_scores": {"2M": [0.0]}}}),
            "expected n = 2",
        ),
        (
            json!({"mode": "validator_v2", "n": 2, "tasks": [],
                   "state": {"scores": [0.0, "x"]}}),
            "state.scores[1] must be a finite number, got \"x\"",
        ),
        (
            json!({"mode": "validator_v2", "n": 2, "tasks": [],
                   "state": {"consecutive_failures": {"1": -1.0}}}),
            "state.consecutive_failures.1 must be a finite non-negative number, got -1.0",
        ),
        (
            json!({"mode": "readme", "items": [{"accuracy": 0.5, "bucket": "3m"}]}),
            "3m",
        ),
        (
            json!({"mode": "api_score", "items": [{"score": "NaN", "context_length": 1}]}),
            "api_score",
        ),
        (json!({"mode": "api_score"}), "items"),
        (
            json!({"mode": "metric", "dataset": "qasper", "prediction": 3, "ground_truth": "3"}),
            "metric",
        ),
    ];
    for (input, needle) in cases {
        let result = run_json(&input);
        match result {
            Err(MechanismError::Invalid(message)) => {
                assert!(message.contains(needle), "`{needle}` not in: {message}")
            }
            other => panic!("{input}: expected an invalid-input error, got {other:?}"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Order properties

/// splitmix64: a small deterministic generator for shuffles.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for index in (1..items.len()).rev() {
            let other = (self.next() % (index as u64 + 1)) as usize;
            items.swap(index, other);
        }
    }
}

/// A validator input as JSON text whose response objects list their uids in `order`.
fn validator_text(mode: &str, order: &[usize]) -> String {
    let answers = [
        "Paris is the capital",
        "London",
        "capital of France",
        "",
        "the capital is Paris, France",
        "Rome",
    ];
    let responses: Vec<String> = order
        .iter()
        .map(|uid| format!("\"{uid}\": {}", json!(answers[*uid])))
        .collect();
    let accuracies: Vec<String> = order
        .iter()
        .map(|uid| format!("\"{uid}\": {}", 0.1 * (*uid as f64 + 1.0)))
        .collect();
    format!(
        r#"{{"mode": "{mode}", "n": 8,
            "chain": {{"min_allowed_weights": 2, "max_weight_limit": 0.3}},
            "tasks": [
              {{"context_length": 40000, "dataset": "qasper",
                "expected_output": "the capital of France is Paris",
                "responses": {{{}}}}},
              {{"context_length": 700000, "dataset": "passage_count", "expected_output": "7",
                "accuracies": {{{}}}}}
            ]}}"#,
        responses.join(", "),
        accuracies.join(", ")
    )
}

#[test]
fn the_order_of_a_tasks_responses_does_not_change_the_weights() {
    for mode in ["validator_v1", "validator_v2"] {
        let baseline: Value =
            serde_json::from_str(&validator_text(mode, &[0, 1, 2, 3, 4, 5])).unwrap();
        let expected = run(baseline);
        for seed in 1..=8u64 {
            let mut order = vec![0, 1, 2, 3, 4, 5];
            SplitMix64(seed).shuffle(&mut order);
            let input: Value = serde_json::from_str(&validator_text(mode, &order)).unwrap();
            let output = run(input);
            assert_eq!(output, expected, "{mode}, order {order:?}");
        }
    }
}

#[test]
fn per_item_rewards_follow_their_items() {
    let items: Vec<Value> = (0..12)
        .map(|index| json!({"score": 0.07 * index as f64, "context_length": 150_000 * index}))
        .collect();
    let baseline = floats(&run(json!({"mode": "api_score", "items": items}))["rewards"]);
    for seed in 1..=5u64 {
        let mut order: Vec<usize> = (0..items.len()).collect();
        SplitMix64(seed).shuffle(&mut order);
        let shuffled: Vec<Value> = order.iter().map(|index| items[*index].clone()).collect();
        let rewards = floats(&run(json!({"mode": "api_score", "items": shuffled}))["rewards"]);
        for (position, index) in order.iter().enumerate() {
            assert_eq!(rewards[position].to_bits(), baseline[*index].to_bits());
        }
    }
}

#[test]
fn the_order_of_tasks_matters_for_the_ema() {
    let task = |accuracy: f64| {
        json!({"context_length": 10, "dataset": "qasper", "expected_output": "",
               "accuracies": {"0": accuracy, "1": 0.5}})
    };
    let forward = run(json!({"mode": "validator_v1", "n": 2, "tasks": [task(1.0), task(0.0)]}));
    let backward = run(json!({"mode": "validator_v1", "n": 2, "tasks": [task(0.0), task(1.0)]}));
    // uid 0: 0.9 * 0.1 = 0.09 versus 0.1 + 0.9 * 0 = 0.1 (float32).
    assert_eq!(
        forward["bucket_scores"]["32k"][0],
        json!(f64::from(
            0.0f32 * 0.1 + (1.0f32 * 0.1 + 0.0f32 * 0.9) * 0.9
        ))
    );
    assert_eq!(
        backward["bucket_scores"]["32k"][0],
        json!(f64::from(
            1.0f32 * 0.1 + (0.0f32 * 0.1 + 0.0f32 * 0.9) * 0.9
        ))
    );
    assert_ne!(forward["scores"], backward["scores"]);
}
