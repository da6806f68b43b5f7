//! Edge cases and properties of the OMEGA (SN21) mechanisms (specs/scoring.md, section 4),
//! run through the public entry point `run_json`.

use serde_json::{Map, Value, json};
use weightlog_replay::{MechanismError, run_json};

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// A two_pool input over uids `0..n` with hotkeys `hk<uid>`, v4 scores for the given uids
/// and the given baseline; reputations empty (every hotkey defaults to 0.5).
fn two_pool(n: usize, scores: &[(usize, f64)], baseline: Value) -> Value {
    let hotkeys: Vec<String> = (0..n).map(|uid| format!("hk{uid}")).collect();
    let mut all_model_scores = Map::new();
    for (uid, score) in scores {
        all_model_scores.insert(
            uid.to_string(),
            json!([{"competition_id": "v4", "score": score}]),
        );
    }
    json!({
        "mode": "two_pool",
        "n": n,
        "hotkeys": hotkeys,
        "all_model_scores": all_model_scores,
        "competition_id": "v4",
        "baseline": baseline,
        "reputations": {},
    })
}

fn weights(output: &Value) -> Vec<f64> {
    output["weights"]
        .as_array()
        .expect("weights list")
        .iter()
        .map(|value| value.as_f64().expect("weight number"))
        .collect()
}

fn uid_list(output: &Value, key: &str) -> Vec<u64> {
    output[key]
        .as_array()
        .expect("uid list")
        .iter()
        .map(|value| value.as_u64().expect("uid"))
        .collect()
}

fn error_message(input: &Value) -> String {
    match run_json(input) {
        Ok(output) => panic!("expected an error, got {output}"),
        Err(error) => error.to_string(),
    }
}

/// Deterministic pseudo-random numbers (splitmix64), for shuffles that every machine repeats.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Fisher-Yates shuffle.
    fn shuffle<T>(&mut self, items: &mut [T]) {
        for index in (1..items.len()).rev() {
            let other = (self.next() % (index as u64 + 1)) as usize;
            items.swap(index, other);
        }
    }
}

/// The same JSON object with its keys inserted in a shuffled order, and every nested object
/// shuffled too (so the test holds whether or not serde_json keeps insertion order).
fn shuffled_object(value: &Value, random: &mut SplitMix64) -> Value {
    match value {
        Value::Object(object) => {
            let mut entries: Vec<(&String, &Value)> = object.iter().collect();
            random.shuffle(&mut entries);
            let mut shuffled = Map::new();
            for (key, inner) in entries {
                shuffled.insert(key.clone(), shuffled_object(inner, random));
            }
            Value::Object(shuffled)
        }
        other => other.clone(),
    }
}

// ---------------------------------------------------------------------------------------
// two_pool
// ---------------------------------------------------------------------------------------

#[test]
fn two_pool_burn_on_a_metagraph_of_at_most_111_uids_is_the_upstream_failure() {
    for n in [0, 1, 50, 111] {
        let scores: Vec<(usize, f64)> = (0..n.min(5)).map(|uid| (uid, 0.2)).collect();
        let result = run_json(&two_pool(n, &scores, json!(0.5)));
        match result {
            Err(MechanismError::Upstream(message)) => {
                assert!(message.contains("111"), "{message}");
            }
            other => panic!("n = {n}: expected the upstream IndexError, got {other:?}"),
        }
    }
}

#[test]
fn two_pool_on_111_uids_with_a_miner_above_the_baseline_needs_no_burn_and_succeeds() {
    // Upstream only indexes uid 111 when nobody is above the baseline.
    let output = run_json(&two_pool(111, &[(3, 0.9)], json!(0.5))).unwrap();
    assert_eq!(uid_list(&output, "above"), vec![3]);
    let weights = weights(&output);
    assert_eq!(weights.len(), 111);
    assert_eq!(weights[3], 1.0);
    assert_eq!(output["u16"], json!({"uids": [3], "weights": [65535]}));
}

#[test]
fn two_pool_on_112_uids_burns_75_percent_to_uid_111() {
    let output = run_json(&two_pool(112, &[(7, 0.3)], json!(0.5))).unwrap();
    assert_eq!(output["status"], "ok");
    assert_eq!(uid_list(&output, "above"), Vec::<u64>::new());
    assert_eq!(uid_list(&output, "below"), vec![7]);
    let weights = weights(&output);
    assert_eq!(weights.len(), 112);
    assert_eq!(weights[111], 0.75);
    assert_eq!(weights[7], 0.25);
    assert_eq!(weights.iter().filter(|&&weight| weight != 0.0).count(), 2);
    // 0.25 / 0.75 * 65535 = 21845.
    assert_eq!(
        output["u16"],
        json!({"uids": [7, 111], "weights": [21845, 65535]})
    );
}

#[test]
fn two_pool_without_any_model_score_gives_everything_to_the_burn_uid() {
    let output = run_json(&two_pool(256, &[], json!(0.5))).unwrap();
    let weights = weights(&output);
    // 0.75 alone, normalised by its own sum.
    assert_eq!(weights[111], 1.0);
    assert_eq!(weights.iter().sum::<f64>(), 1.0);
    assert_eq!(output["u16"], json!({"uids": [111], "weights": [65535]}));
    assert_eq!(output["scores"], json!({}));
}

#[test]
fn two_pool_with_all_scores_below_the_baseline_burns_and_ranks_the_below_pool() {
    let output = run_json(&two_pool(
        256,
        &[(1, 0.1), (2, 0.3), (3, 0.2), (4, 0.0), (5, -0.4)],
        json!(0.9),
    ))
    .unwrap();
    assert_eq!(uid_list(&output, "above"), Vec::<u64>::new());
    // Zero and negative scores enter no pool; the rest are ordered by score.
    assert_eq!(uid_list(&output, "below"), vec![2, 3, 1]);
    let weights = weights(&output);
    assert!((weights[111] - 0.75).abs() < 1e-7, "{}", weights[111]);
    // Same reputation, so the higher score gets more: softmax(0.35 + 0.3 * score).
    assert!(weights[2] > weights[3] && weights[3] > weights[1]);
    let below: f64 = weights[1] + weights[2] + weights[3];
    assert!((below - 0.25).abs() < 1e-7, "{below}");
    let expected_ratio = (0.3f64 * (0.3 - 0.1)).exp();
    assert!((weights[2] / weights[1] - expected_ratio).abs() < 1e-6);
    assert_eq!(weights[4], 0.0);
    assert_eq!(weights[5], 0.0);
}

#[test]
fn two_pool_with_more_than_three_above_sends_the_rest_to_the_below_pool() {
    let output = run_json(&two_pool(
        256,
        &[(10, 0.95), (11, 0.94), (12, 0.93), (13, 0.92), (14, 0.91)],
        json!(0.5),
    ))
    .unwrap();
    assert_eq!(uid_list(&output, "above"), vec![10, 11, 12]);
    assert_eq!(uid_list(&output, "below"), vec![13, 14]);
    let weights = weights(&output);
    assert_eq!(weights[111], 0.0, "no burn when someone is above");
    let above: f64 = weights[10] + weights[11] + weights[12];
    let below: f64 = weights[13] + weights[14];
    assert!((above - 0.75).abs() < 1e-7, "{above}");
    assert!((below - 0.25).abs() < 1e-7, "{below}");
    // Temperature 0.01: a 0.01 score gap is a factor e between neighbours.
    assert!((weights[10] / weights[11] - std::f64::consts::E).abs() < 1e-4);
    assert_eq!(output["u16"]["uids"], json!([10, 11, 12, 13, 14]));
}

#[test]
fn two_pool_keeps_only_the_ten_best_below_the_baseline() {
    let scores: Vec<(usize, f64)> = (0..15).map(|uid| (uid, 0.1 + uid as f64 * 0.01)).collect();
    let output = run_json(&two_pool(256, &scores, json!(0.9))).unwrap();
    assert_eq!(
        uid_list(&output, "below"),
        vec![14, 13, 12, 11, 10, 9, 8, 7, 6, 5]
    );
    let weights = weights(&output);
    assert!(weights[..5].iter().all(|&weight| weight == 0.0));
}

#[test]
fn two_pool_with_a_missing_null_or_zero_baseline_keeps_the_previous_weights() {
    let previous: Vec<f64> = (0..256)
        .map(|uid| {
            if uid == 9 {
                0.6
            } else if uid == 4 {
                0.4
            } else {
                0.0
            }
        })
        .collect();
    let mut inputs = Vec::new();
    let mut absent = two_pool(256, &[(1, 0.9)], json!(null));
    absent.as_object_mut().unwrap().remove("baseline");
    inputs.push(absent);
    inputs.push(two_pool(256, &[(1, 0.9)], json!(null)));
    inputs.push(two_pool(256, &[(1, 0.9)], json!(0)));
    inputs.push(two_pool(256, &[(1, 0.9)], json!(0.0)));
    for mut input in inputs {
        input["previous_weights"] = json!(previous);
        let output = run_json(&input).unwrap();
        assert_eq!(output["status"], "unchanged");
        let weights = weights(&output);
        assert_eq!(weights[9], f64::from(0.6f32));
        assert_eq!(weights[4], f64::from(0.4f32));
        assert_eq!(weights.iter().filter(|&&weight| weight != 0.0).count(), 2);
        // 0.4 / 0.6 * 65535 = 43690.
        assert_eq!(
            output["u16"],
            json!({"uids": [4, 9], "weights": [43690, 65535]})
        );
    }
    // Without previous weights the validator's initial state is all zeros: nothing to emit.
    let output = run_json(&two_pool(256, &[(1, 0.9)], json!(0))).unwrap();
    assert_eq!(output["status"], "unchanged");
    assert!(weights(&output).iter().all(|&weight| weight == 0.0));
    assert_eq!(output["u16"], json!({"uids": [], "weights": []}));
}

#[test]
fn two_pool_ties_are_broken_by_ascending_uid() {
    // Four equal scores above the baseline: the three lowest uids take the above pool, the
    // fourth competes below, and the three above share 75 % equally.
    let output = run_json(&two_pool(
        256,
        &[(40, 0.8), (7, 0.8), (200, 0.8), (13, 0.8)],
        json!(0.5),
    ))
    .unwrap();
    assert_eq!(uid_list(&output, "above"), vec![7, 13, 40]);
    assert_eq!(uid_list(&output, "below"), vec![200]);
    let weights = weights(&output);
    assert_eq!(weights[7], 0.25);
    assert_eq!(weights[13], 0.25);
    assert_eq!(weights[40], 0.25);
    assert_eq!(weights[200], 0.25);
}

#[test]
fn two_pool_hotkeys_without_reputation_count_as_half() {
    let scores = [(1, 0.2), (2, 0.3), (3, 0.25)];
    let without = two_pool(256, &scores, json!(0.9));
    let mut explicit = without.clone();
    explicit["reputations"] = json!({
        "hk1": {"reputation": 0.5},
        "hk2": {"reputation": null},
        "hk3": {}
    });
    let mut absent = without.clone();
    absent.as_object_mut().unwrap().remove("reputations");
    let mut null = without.clone();
    null["reputations"] = Value::Null;
    let reference = run_json(&without).unwrap();
    for input in [explicit, absent, null] {
        assert_eq!(run_json(&input).unwrap()["weights"], reference["weights"]);
    }
    assert_eq!(
        reference["reputations"],
        json!({"1": 0.5, "2": 0.5, "3": 0.5})
    );

    // A known reputation changes the split: uid 1's high reputation outweighs uid 2's score.
    let mut reputed = without.clone();
    reputed["reputations"] = json!({"hk1": {"reputation": 1.0}, "hk2": {"reputation": 0.0}});
    let output = run_json(&reputed).unwrap();
    let weights = weights(&output);
    assert!(weights[1] > weights[3] && weights[3] > weights[2]);
    // Logits 0.7 * rep + 0.3 * score: uid 1 = 0.76, uid 2 = 0.09.
    let expected_ratio = (0.76f64 - 0.09).exp();
    assert!((weights[1] / weights[2] - expected_ratio).abs() < 1e-5);
}

#[test]
fn two_pool_uses_the_first_entry_of_the_competition_and_defaults_to_v4() {
    let mut input = two_pool(256, &[], json!(0.5));
    input["all_model_scores"] = json!({
        // Another competition's entry first, then an entry without a competition id, then v4.
        "5": [{"competition_id": "v2", "score": 0.99},
              {"score": 0.98},
              {"competition_id": "v4", "score": 0.7},
              {"competition_id": "v4", "score": 0.95}],
        // Only another competition: no score.
        "6": [{"competition_id": "v2", "score": 0.99}],
        // A null score stays 0, even with a later good entry.
        "8": [{"competition_id": "v4", "score": null},
              {"competition_id": "v4", "score": 0.9}],
        // Uids outside the metagraph are never looked up.
        "300": [{"competition_id": "v4", "score": 0.99}]
    });
    let mut without_id = input.clone();
    without_id.as_object_mut().unwrap().remove("competition_id");
    for candidate in [input.clone(), without_id] {
        let output = run_json(&candidate).unwrap();
        assert_eq!(uid_list(&output, "above"), vec![5]);
        assert_eq!(uid_list(&output, "below"), Vec::<u64>::new());
        assert_eq!(output["scores"], json!({"5": 0.7}));
        assert_eq!(weights(&output)[5], 1.0);
    }
    // Another competition id selects other entries.
    input["competition_id"] = json!("v2");
    let output = run_json(&input).unwrap();
    assert_eq!(uid_list(&output, "above"), vec![5, 6]);
}

#[test]
fn two_pool_entry_order_within_a_uid_matters() {
    // The first matching entry wins, so reversing a uid's entries changes its score.
    let mut first = two_pool(256, &[], json!(0.5));
    first["all_model_scores"] = json!({"9": [{"competition_id": "v4", "score": 0.3},
                                             {"competition_id": "v4", "score": 0.9}]});
    let mut second = first.clone();
    second["all_model_scores"] = json!({"9": [{"competition_id": "v4", "score": 0.9},
                                              {"competition_id": "v4", "score": 0.3}]});
    let first = run_json(&first).unwrap();
    let second = run_json(&second).unwrap();
    assert_eq!(uid_list(&first, "below"), vec![9]);
    assert_eq!(uid_list(&second, "above"), vec![9]);
    assert_eq!(weights(&first)[111], 0.75);
    assert_eq!(weights(&second)[9], 1.0);
}

#[test]
fn two_pool_is_independent_of_the_order_of_objects_in_the_input() {
    let scores: Vec<(usize, f64)> = (0..40)
        .map(|uid| (uid * 5 + 1, 0.2 + (uid as f64 * 0.37) % 0.6))
        .collect();
    let mut input = two_pool(256, &scores, json!(0.55));
    let mut reputations = Map::new();
    for uid in (0..256).step_by(3) {
        reputations.insert(
            format!("hk{uid}"),
            json!({"reputation": (uid as f64 * 0.013) % 1.0}),
        );
    }
    input["reputations"] = Value::Object(reputations);
    let reference = run_json(&input).unwrap();
    for seed in 0..8 {
        let mut random = SplitMix64(seed);
        let shuffled = shuffled_object(&input, &mut random);
        assert_eq!(run_json(&shuffled).unwrap(), reference, "seed {seed}");
    }
}

#[test]
fn two_pool_rejects_malformed_input_naming_the_problem() {
    let base = two_pool(256, &[(1, 0.6)], json!(0.5));
    let cases: Vec<(Value, &str)> = vec![
        (
            {
                let mut input = base.clone();
                input["all_model_scores"] =
                    json!({"1": [{"competition_id": "v4", "score": "NaN"}]});
                input
            },
            "all_model_scores[1]",
        ),
        (
            {
                let mut input = base.clone();
                input["baseline"] = json!("NaN");
                input
            },
            "baseline",
        ),
        (
            {
                let mut input = base.clone();
                input["reputations"] = json!({"hk1": {"reputation": "NaN"}});
                input
            },
            "reputations[hk1]",
        ),
        (
            {
                let mut input = base.clone();
                input.as_object_mut().unwrap().remove("n");
                input
            },
            "`n`",
        ),
        (
            {
                let mut input = base.clone();
                input["n"] = json!(-3);
                input
            },
            "n",
        ),
        (
            {
                let mut input = base.clone();
                input["hotkeys"] = json!(["hk0"]);
                input
            },
            "hotkeys",
        ),
        (
            {
                let mut input = base.clone();
                input["all_model_scores"] = json!({"abc": []});
                input
            },
            "all_model_scores",
        ),
        (
            {
                let mut input = base.clone();
                input["all_model_scores"] = json!({"01": []});
                input
            },
            "all_model_scores",
        ),
        (
            {
                let mut input = base.clone();
                input["all_model_scores"] = json!({"1": {"competition_id": "v4"}});
                input
            },
            "all_model_scores[1]",
        ),
        (
            {
                let mut input = two_pool(256, &[(1, 0.6)], json!(0));
                input["previous_weights"] = json!([0.5]);
                input
            },
            "previous_weights",
        ),
        (
            {
                let mut input = two_pool(256, &[(1, 0.6)], json!(0));
                let mut previous = vec![0.0; 256];
                previous[3] = -1.0;
                input["previous_weights"] = json!(previous);
                input
            },
            "previous_weights[3]",
        ),
        (json!({"mode": "two_pool"}), "`n`"),
    ];
    for (input, needle) in cases {
        let message = error_message(&input);
        assert!(
            message.contains(needle),
            "message `{message}` should mention `{needle}`"
        );
    }
}

// ---------------------------------------------------------------------------------------
// legacy_winrate
// ---------------------------------------------------------------------------------------

fn legacy(n: usize, all_model_scores: Value, previous_weights: Option<Vec<f64>>) -> Value {
    let mut input = json!({
        "mode": "legacy_winrate",
        "n": n,
        "competitions": [{"competition_id": "v4", "reward_percentage": 1.0}],
        "all_model_scores": all_model_scores,
    });
    if let Some(previous) = previous_weights {
        input["previous_weights"] = json!(previous);
    }
    input
}

#[test]
fn legacy_softmax_covers_all_uids_but_pays_only_scored_ones_with_ema() {
    let output = run_json(&legacy(
        4,
        json!({
            "0": [{"competition_id": "v4", "score": 0.5, "block": 10, "model_hash": "a"}],
            "1": [{"competition_id": "v4", "score": 0.5, "block": 11, "model_hash": "b"}],
            // A null score: failed, paid nothing.
            "2": [{"competition_id": "v4", "score": null}]
        }),
        None,
    ))
    .unwrap();
    let weights = weights(&output);
    // softmax over 4 uids with logits 50, 50, 0, 0: uids 0 and 1 get (1 - 2e-22) / 2 each,
    // then 0.1 of that through the EMA from zero previous weights.
    assert_eq!(weights[0], weights[1]);
    assert!((weights[0] - 0.05).abs() < 1e-8, "{}", weights[0]);
    assert_eq!(weights[2], 0.0);
    assert_eq!(weights[3], 0.0);
    assert_eq!(output["scored_uids"], json!([0, 1]));
}

#[test]
fn legacy_duplicate_model_hash_zeroes_the_newer_block() {
    let output = run_json(&legacy(
        3,
        json!({
            "0": [{"competition_id": "v4", "score": 0.9, "block": 20, "model_hash": "same"}],
            "1": [{"competition_id": "v4", "score": 0.5, "block": 10, "model_hash": "same"}],
            "2": [{"competition_id": "v4", "score": 0.5, "block": 30, "model_hash": "other"}]
        }),
        None,
    ))
    .unwrap();
    assert_eq!(
        output["competitions"][0]["penalized_for_duplicate_hash"],
        json!([0])
    );
    assert_eq!(output["competitions"][0]["scores"]["0"], json!(0.0));
    let weights = weights(&output);
    // Uid 0 (newer copy) falls to score 0 and still gets its small softmax share.
    assert_eq!(weights[1], weights[2]);
    assert!(weights[0] < weights[1] * 1e-20 && weights[0] > 0.0);

    // Equal blocks: both copies are zeroed, exactly as upstream's pairwise loop does.
    let tied = run_json(&legacy(
        3,
        json!({
            "0": [{"competition_id": "v4", "score": 0.9, "block": 20, "model_hash": "same"}],
            "1": [{"competition_id": "v4", "score": 0.5, "block": 20, "model_hash": "same"}],
            "2": [{"competition_id": "v4", "score": 0.5, "block": 30, "model_hash": ""}]
        }),
        None,
    ))
    .unwrap();
    assert_eq!(
        tied["competitions"][0]["penalized_for_duplicate_hash"],
        json!([0, 1])
    );
}

#[test]
fn legacy_ema_keeps_ninety_percent_of_the_old_weights_resized_to_the_metagraph() {
    let scores = json!({"0": [{"competition_id": "v4", "score": 0.8}]});
    // Longer previous weights are cut, shorter ones padded with zeros.
    let long = run_json(&legacy(2, scores.clone(), Some(vec![0.0, 1.0, 5.0]))).unwrap();
    let weights_long = weights(&long);
    assert_eq!(weights_long.len(), 2);
    assert_eq!(weights_long[1], f64::from(0.9f32 * 1.0));
    let short = run_json(&legacy(3, scores, Some(vec![0.0]))).unwrap();
    let weights_short = weights(&short);
    assert_eq!(weights_short.len(), 3);
    // Uid 0 alone is scored: all of the new weight, times 0.1.
    assert_eq!(weights_short[0], f64::from(0.1f32 * 1.0));
    assert_eq!(weights_short[2], 0.0);
}

#[test]
fn legacy_competition_order_matters_because_failed_uids_are_zeroed_after_each() {
    let scores = json!({
        "0": [{"competition_id": "a", "score": 0.01}],
        "1": [{"competition_id": "b", "score": 0.01}]
    });
    let run = |order: Value| {
        let mut input = legacy(3, scores.clone(), None);
        input["competitions"] = order;
        weights(&run_json(&input).unwrap())
    };
    let a_first = run(json!([
        {"competition_id": "a", "reward_percentage": 0.5},
        {"competition_id": "b", "reward_percentage": 0.5}
    ]));
    let b_first = run(json!([
        {"competition_id": "b", "reward_percentage": 0.5},
        {"competition_id": "a", "reward_percentage": 0.5}
    ]));
    // With a first, uid 1 is still failed when competition a's shares are zeroed, so only
    // uid 0 keeps a share of both competitions; with b first it is the other way round.
    assert!(a_first[0] > a_first[1], "{a_first:?}");
    assert!(b_first[1] > b_first[0], "{b_first:?}");
    assert_eq!(a_first[0], b_first[1]);
}

#[test]
fn legacy_missing_score_counts_as_scored_zero_and_empty_lists_are_skipped() {
    let output = run_json(&legacy(
        3,
        json!({
            "0": [{"competition_id": "v4"}],
            "1": [],
            "2": [{"competition_id": "v2", "score": 0.9}, {"competition_id": "v4", "score": 0.9}]
        }),
        None,
    ))
    .unwrap();
    // Uid 0 is scored (score 0) so it gets the uniform share; uid 1 has nothing; uid 2's
    // first entry belongs to another competition, so it is not in this one.
    assert_eq!(output["scored_uids"], json!([0]));
    let weights = weights(&output);
    assert!((weights[0] - 0.1 / 3.0).abs() < 1e-8, "{}", weights[0]);
    assert_eq!(weights[1], 0.0);
    assert_eq!(weights[2], 0.0);
}

#[test]
fn legacy_is_independent_of_the_order_of_objects_in_the_input() {
    let mut scores = Map::new();
    for uid in (0..256).step_by(7) {
        scores.insert(
            uid.to_string(),
            json!([{"competition_id": "v4", "score": 0.3 + (uid as f64 * 0.011) % 0.5,
                    "block": 1000 + uid % 13, "model_hash": format!("h{}", uid % 17)}]),
        );
    }
    let previous: Vec<f64> = (0..256).map(|uid| (uid % 5) as f64 * 0.001).collect();
    let input = legacy(256, Value::Object(scores), Some(previous));
    let reference = run_json(&input).unwrap();
    for seed in 0..8 {
        let mut random = SplitMix64(seed);
        assert_eq!(
            run_json(&shuffled_object(&input, &mut random)).unwrap(),
            reference,
            "seed {seed}"
        );
    }
}

#[test]
fn legacy_rejects_inputs_upstream_cannot_run() {
    let too_big = legacy(257, json!({}), None);
    assert!(error_message(&too_big).contains("256"));
    let beyond = legacy(
        256,
        json!({"300": [{"competition_id": "v4", "score": 0.5}]}),
        None,
    );
    assert!(matches!(
        run_json(&beyond),
        Err(MechanismError::Upstream(_))
    ));
    let mut duplicated = legacy(4, json!({}), None);
    duplicated["competitions"] = json!([
        {"competition_id": "v4", "reward_percentage": 0.5},
        {"competition_id": "v4", "reward_percentage": 0.5}
    ]);
    assert!(error_message(&duplicated).contains("twice"));
    let null_block = legacy(
        3,
        json!({
            "0": [{"competition_id": "v4", "score": 0.5, "block": null, "model_hash": "x"}],
            "1": [{"competition_id": "v4", "score": 0.5, "block": 3, "model_hash": "x"}]
        }),
        None,
    );
    assert!(error_message(&null_block).contains("block is null"));
    let nan = legacy(
        3,
        json!({"0": [{"competition_id": "v4", "score": "NaN"}]}),
        None,
    );
    assert!(error_message(&nan).contains("all_model_scores[0]"));
    let negative = legacy(3, json!({}), Some(vec![0.1, -0.2]));
    assert!(error_message(&negative).contains("previous_weights[1]"));
    let mut bad_share = legacy(3, json!({}), None);
    bad_share["competitions"] = json!([{"competition_id": "v4"}]);
    assert!(error_message(&bad_share).contains("competitions"));
}

// ---------------------------------------------------------------------------------------
// reputation
// ---------------------------------------------------------------------------------------

#[test]
fn reputation_moves_half_a_percent_towards_beating_the_baseline() {
    let output = run_json(&json!({
        "mode": "reputation",
        "reputations": {"old_good": 0.8, "old_bad": 0.8, "unscored": 0.3, "gone": 0.9},
        "active_hotkeys": ["old_good", "old_bad", "unscored", "new_good", "new_silent"],
        "scores": {"old_good": 0.7, "old_bad": 0.6, "unscored": null, "new_good": 0.9,
                   "gone": 0.9},
        "baseline": 0.6
    }))
    .unwrap();
    assert_eq!(
        output["reputations"],
        json!({
            "old_good": (1.0 - 0.005) * 0.8 + 0.005,
            // Equal to the baseline is not above it.
            "old_bad": (1.0 - 0.005) * 0.8,
            "unscored": 0.3,
            "new_good": (1.0 - 0.005) * 0.5 + 0.005,
            "new_silent": 0.5
        })
    );
    assert_eq!(output["deregistered"], json!(["gone"]));
    assert_eq!(output["new"], json!(["new_good", "new_silent"]));
}

#[test]
fn reputation_without_baseline_uses_zero() {
    let output = run_json(&json!({
        "mode": "reputation",
        "reputations": {"a": 0.5},
        "active_hotkeys": ["a"],
        "scores": {"a": 0.01}
    }))
    .unwrap();
    assert_eq!(
        output["reputations"]["a"],
        json!((1.0 - 0.005) * 0.5 + 0.005)
    );
}

#[test]
fn reputation_is_independent_of_input_order() {
    let hotkeys: Vec<String> = (0..30).map(|index| format!("hk{index}")).collect();
    let mut reputations = Map::new();
    let mut scores = Map::new();
    for (index, hotkey) in hotkeys.iter().enumerate() {
        if index % 4 != 0 {
            reputations.insert(hotkey.clone(), json!(index as f64 / 40.0));
        }
        if index % 3 != 0 {
            scores.insert(hotkey.clone(), json!((index as f64 * 0.07) % 1.0));
        }
    }
    let input = json!({"mode": "reputation", "reputations": reputations,
                       "active_hotkeys": hotkeys, "scores": scores, "baseline": 0.5});
    let reference = run_json(&input).unwrap();
    for seed in 0..8 {
        let mut random = SplitMix64(seed);
        let mut shuffled = shuffled_object(&input, &mut random);
        let mut active = hotkeys.clone();
        random.shuffle(&mut active);
        shuffled["active_hotkeys"] = json!(active);
        assert_eq!(run_json(&shuffled).unwrap(), reference, "seed {seed}");
    }
}

#[test]
fn reputation_rejects_malformed_input() {
    let missing = json!({"mode": "reputation", "reputations": {}});
    assert!(error_message(&missing).contains("active_hotkeys"));
    let null_reputation = json!({"mode": "reputation", "reputations": {"a": null},
                                 "active_hotkeys": ["a"]});
    assert!(error_message(&null_reputation).contains("reputations"));
    let text_score = json!({"mode": "reputation", "active_hotkeys": ["a"],
                            "scores": {"a": "NaN"}});
    assert!(error_message(&text_score).contains("scores"));
}

#[test]
fn unknown_omega_mode_is_rejected() {
    assert!(weightlog_replay::omega::run(&json!({"mode": "three_pool"})).is_err());
}
