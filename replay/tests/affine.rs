//! Affine edge cases and properties (scoring.md section 1): both modes through
//! `weightlog_replay::run_json`, with concrete expected values.
//!
//! Most stages_v2 cases use two environments `a` and `b` and one sample per environment, so
//! averages are exact: subsets are `L1_a`, `L1_b` (weight 1 each) and `L2_a_b` (weight 4),
//! six in total.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use weightlog_replay::{MechanismError, run_json};

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// A stages_v2 miner with one sample per environment: `(environment, score, completeness)`.
fn miner(uid: i64, first_block: Option<i64>, environments: &[(&str, f64, f64)]) -> Value {
    let mut data = serde_json::Map::new();
    for (name, score, completeness) in environments {
        data.insert(
            (*name).to_string(),
            json!({"scores": [score], "completeness": completeness, "completed_count": 1}),
        );
    }
    json!({
        "uid": uid,
        "hotkey": format!("hotkey-{uid}"),
        "model_revision": "revision",
        "model_repo": "org/affine-model",
        "first_block": first_block,
        "env": data,
    })
}

fn stages(miners: Vec<Value>, burn: f64) -> Value {
    json!({
        "mode": "stages_v2",
        "environments": ["a", "b"],
        "miners": miners,
        "burn_percentage": burn,
    })
}

fn run(input: &Value) -> Value {
    run_json(input).unwrap_or_else(|error| panic!("unexpected error: {error}"))
}

/// The submitted (uid -> weight) map of an output's chain section.
fn chain_weights(output: &Value) -> BTreeMap<i64, f64> {
    let uids = output["chain"]["uids"].as_array().unwrap();
    let weights = output["chain"]["weights"].as_array().unwrap();
    uids.iter()
        .zip(weights)
        .map(|(uid, weight)| (uid.as_i64().unwrap(), weight.as_f64().unwrap()))
        .collect()
}

/// The submitted (uid -> u16) map of an output's chain section.
fn chain_u16(output: &Value) -> BTreeMap<i64, u64> {
    let uids = output["chain"]["uids"].as_array().unwrap();
    let weights = output["chain"]["u16"].as_array().unwrap();
    uids.iter()
        .zip(weights)
        .map(|(uid, weight)| (uid.as_i64().unwrap(), weight.as_u64().unwrap()))
        .collect()
}

fn final_weight(output: &Value, uid: i64) -> f64 {
    output["final_weights"][uid.to_string()]
        .as_f64()
        .unwrap_or_else(|| panic!("no final weight for uid {uid}: {output}"))
}

fn assert_close(actual: f64, expected: f64) {
    assert!(
        (actual - expected).abs() <= 1e-12 * expected.abs().max(1.0),
        "expected {expected}, got {actual}"
    );
}

fn error_message(input: &Value) -> String {
    match run_json(input) {
        Ok(output) => panic!("expected an error, got {output}"),
        Err(error) => error.to_string(),
    }
}

/// splitmix64: a small deterministic generator for the permutation properties.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for index in (1..items.len()).rev() {
            let other = self.below(index + 1);
            items.swap(index, other);
        }
    }
}

// ---------------------------------------------------------------------------------------
// stages_v2
// ---------------------------------------------------------------------------------------

#[test]
fn stages_no_miners_sets_no_weights() {
    let output = run(&stages(vec![], 0.0));
    assert_eq!(
        output["chain"],
        json!({"uids": [], "weights": [], "u16": []})
    );
    assert_eq!(output["final_weights"], json!({}));
    // The burn is not applied to an empty vector: the validator sets nothing.
    let output = run(&stages(vec![], 0.5));
    assert_eq!(output["chain"]["uids"], json!([]));
}

#[test]
fn stages_single_miner_takes_every_subset() {
    let output = run(&stages(
        vec![miner(5, Some(100), &[("a", 0.5, 1.0), ("b", 0.5, 1.0)])],
        0.0,
    ));
    let record = &output["miners"]["5"];
    assert_eq!(record["cumulative_weight"], json!(6.0));
    assert_eq!(
        record["subset_ranks"],
        json!({"L1_a": 1, "L1_b": 1, "L2_a_b": 1})
    );
    assert_eq!(record["subset_scores"]["L2_a_b"], json!(0.5));
    assert_eq!(record["filtered_subsets"], json!([]));
    assert_eq!(
        output["chain"],
        json!({"uids": [5], "weights": [1.0], "u16": [65535]})
    );
}

#[test]
fn stages_all_zero_scores_pay_the_earliest_miner() {
    // A later miner must beat 0 + 10% to survive, so the earliest takes every subset; its
    // geometric mean is 0, and a subset whose scores are all 0 still pays equally.
    let output = run(&stages(
        vec![
            miner(3, Some(200), &[("a", 0.0, 1.0), ("b", 0.0, 1.0)]),
            miner(4, Some(100), &[("a", 0.0, 1.0), ("b", 0.0, 1.0)]),
        ],
        0.0,
    ));
    assert_eq!(output["miners"]["4"]["cumulative_weight"], json!(6.0));
    assert_eq!(
        output["miners"]["3"]["filtered_subsets"],
        json!(["L1_a", "L1_b", "L2_a_b"])
    );
    assert_eq!(final_weight(&output, 4), 1.0);
    assert_eq!(final_weight(&output, 3), 0.0);
    assert_eq!(chain_weights(&output), BTreeMap::from([(4, 1.0)]));
}

#[test]
fn stages_zero_scores_that_survive_share_a_subset_equally() {
    // Neither filters the other in L2 (uid 2 wins only in `a`); both geometric means are 0,
    // so L2's weight 4 is split 2 / 2, and each wins one L1 subset.
    let output = run(&stages(
        vec![
            miner(1, Some(100), &[("a", 0.0, 1.0), ("b", 0.9, 1.0)]),
            miner(2, Some(200), &[("a", 0.5, 1.0), ("b", 0.0, 1.0)]),
        ],
        0.0,
    ));
    assert_eq!(
        output["miners"]["1"]["subset_weights"]["L2_a_b"],
        json!(2.0)
    );
    assert_eq!(
        output["miners"]["2"]["subset_weights"]["L2_a_b"],
        json!(2.0)
    );
    assert_eq!(final_weight(&output, 1), 0.5);
    assert_eq!(final_weight(&output, 2), 0.5);
}

/// Two miners whose L2 geometric means are bit-identical (0.5 * 0.8 == 0.8 * 0.5) and who
/// do not filter each other there: stage 3 breaks the tie by API order.
fn tied_pair(first_listed_is_one: bool) -> Value {
    let one = miner(1, Some(100), &[("a", 0.5, 1.0), ("b", 0.8, 1.0)]);
    let two = miner(2, Some(200), &[("a", 0.8, 1.0), ("b", 0.5, 1.0)]);
    let miners = if first_listed_is_one {
        vec![one, two]
    } else {
        vec![two, one]
    };
    stages(miners, 0.0)
}

#[test]
fn stages_exact_ties_are_broken_by_api_order() {
    for (first_listed_is_one, winner, loser) in [(true, 1, 2), (false, 2, 1)] {
        let output = run(&tied_pair(first_listed_is_one));
        let miners = &output["miners"];
        assert_eq!(
            miners[winner.to_string()]["subset_scores"]["L2_a_b"],
            miners[loser.to_string()]["subset_scores"]["L2_a_b"]
        );
        assert_eq!(
            miners[winner.to_string()]["subset_ranks"]["L2_a_b"],
            json!(1)
        );
        assert_eq!(
            miners[loser.to_string()]["subset_ranks"]["L2_a_b"],
            json!(2)
        );
        // Each wins one L1 subset (1.0); L2 pays 4 * (1 / 1.5) and 4 * (0.5 / 1.5).
        let winner_raw = 1.0 + 4.0 * (1.0 / 1.5);
        let loser_raw = 1.0 + 4.0 * (0.5 / 1.5);
        assert_close(final_weight(&output, winner), winner_raw / 6.0);
        assert_close(final_weight(&output, loser), loser_raw / 6.0);
    }
}

#[test]
fn stages_equal_first_blocks_order_by_uid_not_input_order() {
    // Identical miners registered at the same block: the smaller uid counts as earlier, so
    // the larger uid is filtered everywhere, whatever the input order.
    for order in [[4, 9], [9, 4]] {
        let miners = order
            .iter()
            .map(|uid| miner(*uid, Some(500), &[("a", 0.6, 1.0), ("b", 0.7, 1.0)]))
            .collect();
        let output = run(&stages(miners, 0.0));
        assert_eq!(chain_weights(&output), BTreeMap::from([(4, 1.0)]));
        assert_eq!(
            output["miners"]["9"]["filtered_subsets"],
            json!(["L1_a", "L1_b", "L2_a_b"])
        );
    }
}

/// Three miners where `small_uid` ends with a normalised share of 0.46% (raw 0.027, above the
/// raw threshold), values checked independently in Python.
fn small_share_case(small_uid: i64) -> Value {
    stages(
        vec![
            miner(small_uid, Some(100), &[("a", 0.9, 1.0), ("b", 0.0001, 1.0)]),
            miner(5, Some(200), &[("a", 0.5, 1.0), ("b", 0.95, 1.0)]),
            miner(7, Some(300), &[("a", 0.99, 1.0), ("b", 0.0, 1.0)]),
        ],
        0.0,
    )
}

#[test]
fn stages_uid_zero_below_threshold_is_dropped_not_redistributed() {
    let output = run(&small_share_case(0));
    assert_close(
        output["miners"]["0"]["cumulative_weight"].as_f64().unwrap(),
        0.02734170951386544,
    );
    assert_eq!(final_weight(&output, 0), 0.0);
    assert_close(final_weight(&output, 5), 0.8287763817476891);
    assert_close(final_weight(&output, 7), 0.16666666666666666);
    let total: f64 = [0, 5, 7]
        .iter()
        .map(|uid| final_weight(&output, *uid))
        .sum();
    assert_close(total, 0.9954430484143557);
    // The validator renormalises what is left.
    let chain = chain_weights(&output);
    assert_eq!(chain.keys().copied().collect::<Vec<_>>(), [5, 7]);
    assert_close(chain[&5], 0.8325703645907715);
    assert_close(chain[&7], 0.1674296354092286);
}

#[test]
fn stages_small_share_of_another_uid_goes_to_uid_zero() {
    let output = run(&small_share_case(3));
    assert_eq!(final_weight(&output, 3), 0.0);
    assert_close(final_weight(&output, 0), 0.00455695158564424);
    let total: f64 = [0, 3, 5, 7]
        .iter()
        .map(|uid| final_weight(&output, *uid))
        .sum();
    assert_close(total, 1.0);
    assert!(chain_weights(&output).contains_key(&0));
}

#[test]
fn stages_burn_zero_one_and_between() {
    let unburnt = run(&tied_pair(true));
    let shares = chain_weights(&unburnt);
    assert_close(shares[&1], (1.0 + 4.0 / 1.5) / 6.0);
    assert!(!shares.contains_key(&0));

    let burnt = run(&json!({
        "mode": "stages_v2", "environments": ["a", "b"],
        "miners": tied_pair(true)["miners"], "burn_percentage": 0.25,
    }));
    let burnt_shares = chain_weights(&burnt);
    assert_eq!(burnt_shares[&0], 0.25);
    assert_close(burnt_shares[&1], shares[&1] * 0.75);
    assert_close(burnt_shares[&2], shares[&2] * 0.75);

    let all_burnt = run(&json!({
        "mode": "stages_v2", "environments": ["a", "b"],
        "miners": tied_pair(true)["miners"], "burn_percentage": 1.0,
    }));
    assert_eq!(
        chain_weights(&all_burnt),
        BTreeMap::from([(0, 1.0), (1, 0.0), (2, 0.0)])
    );
    assert_eq!(
        chain_u16(&all_burnt),
        BTreeMap::from([(0, 65535), (1, 0), (2, 0)])
    );
    // Final (scorer-side) weights are untouched by the validator's burn.
    assert_eq!(final_weight(&all_burnt, 1), final_weight(&unburnt, 1));
}

#[test]
fn stages_null_first_block_fails_only_among_dated_miners() {
    let mixed = stages(
        vec![
            miner(1, Some(100), &[("a", 0.5, 1.0), ("b", 0.5, 1.0)]),
            miner(2, None, &[("a", 0.9, 1.0), ("b", 0.9, 1.0)]),
        ],
        0.0,
    );
    match run_json(&mixed) {
        Err(MechanismError::Upstream(message)) => assert!(message.contains("first_block")),
        other => panic!("expected the documented upstream failure, got {other:?}"),
    }
    // All undated: tuples compare by uid alone, as in Python, so uid 1 counts as earlier
    // and uid 2 (which beats it everywhere) filters it.
    let undated = stages(
        vec![
            miner(2, None, &[("a", 0.9, 1.0), ("b", 0.9, 1.0)]),
            miner(1, None, &[("a", 0.5, 1.0), ("b", 0.5, 1.0)]),
        ],
        0.0,
    );
    assert_eq!(chain_weights(&run(&undated)), BTreeMap::from([(2, 1.0)]));
    // A single undated miner is never compared.
    let single = stages(vec![miner(8, None, &[("a", 0.5, 1.0)])], 0.0);
    assert_eq!(chain_weights(&run(&single)), BTreeMap::from([(8, 1.0)]));
}

#[test]
fn stages_completeness_gate_and_missing_data() {
    // uid 1 has no data for `b` (average 0, threshold 0, invalid) and is below the
    // completeness gate in `a`: it is in no subset.
    let output = run(&stages(
        vec![
            miner(1, Some(100), &[("a", 0.9, 0.5)]),
            miner(2, Some(200), &[("a", 0.4, 1.0), ("b", 0.4, 1.0)]),
        ],
        0.0,
    ));
    let record = &output["miners"]["1"];
    assert_eq!(record["env_valid"], json!({"a": false, "b": false}));
    assert_eq!(record["env_threshold"]["b"], json!(0.0));
    assert_eq!(record["env_avg"]["b"], json!(0.0));
    assert_eq!(chain_weights(&output), BTreeMap::from([(2, 1.0)]));
}

#[test]
fn stages_skips_incomplete_entries_and_lets_repeated_uids_overwrite() {
    let mut no_hotkey = miner(1, Some(50), &[("a", 1.0, 1.0), ("b", 1.0, 1.0)]);
    no_hotkey.as_object_mut().unwrap().remove("hotkey");
    let mut bad_uid = miner(2, Some(60), &[("a", 1.0, 1.0), ("b", 1.0, 1.0)]);
    bad_uid["uid"] = json!("not a uid");
    let output = run(&stages(
        vec![
            no_hotkey,
            bad_uid,
            miner(3, Some(100), &[("a", 0.1, 1.0), ("b", 0.1, 1.0)]),
            miner(3, Some(100), &[("a", 0.7, 1.0), ("b", 0.6, 1.0)]),
        ],
        0.0,
    ));
    let miners = output["miners"].as_object().unwrap();
    assert_eq!(miners.keys().collect::<Vec<_>>(), ["3"]);
    assert_eq!(miners["3"]["env_avg"], json!({"a": 0.7, "b": 0.6}));
}

#[test]
fn stages_rejects_malformed_input_naming_the_field() {
    let mut bad_score = stages(vec![miner(1, Some(1), &[("a", 0.5, 1.0)])], 0.0);
    bad_score["miners"][0]["env"]["a"]["scores"] = json!([0.5, "NaN"]);
    let message = error_message(&bad_score);
    assert!(message.contains("scores[1]"), "{message}");

    let mut null_score = stages(vec![miner(1, Some(1), &[("a", 0.5, 1.0)])], 0.0);
    null_score["miners"][0]["env"]["a"]["scores"] = json!([null]);
    assert!(error_message(&null_score).contains("scores[0]"));

    // A sum that overflows to infinity would put NaN downstream; refused by name.
    let mut overflowing = stages(vec![miner(1, Some(1), &[("a", 0.5, 1.0)])], 0.0);
    overflowing["miners"][0]["env"]["a"]["scores"] = json!([1e308, 1e308]);
    assert!(error_message(&overflowing).contains("not finite"));

    let mut no_environments = stages(vec![], 0.0);
    no_environments
        .as_object_mut()
        .unwrap()
        .remove("environments");
    assert!(error_message(&no_environments).contains("environments"));

    let mut misspelt = stages(vec![], 0.0);
    misspelt["config"] = json!({"DECAY_FACTR": 0.5});
    assert!(error_message(&misspelt).contains("DECAY_FACTR"));

    let mut empty_range = stages(vec![], 0.0);
    empty_range["config"] = json!({"ENV_SCORE_RANGES": {"a": [1.0, 1.0]}});
    assert!(error_message(&empty_range).contains("ENV_SCORE_RANGES"));

    let mut repeated = stages(vec![], 0.0);
    repeated["environments"] = json!(["a", "a"]);
    assert!(error_message(&repeated).contains("twice"));

    let mut text_block = stages(vec![miner(1, Some(1), &[("a", 0.5, 1.0)])], 0.0);
    text_block["miners"][0]["first_block"] = json!("early");
    assert!(error_message(&text_block).contains("first_block"));
}

#[test]
fn stages_score_ranges_rescale_and_config_overrides_apply() {
    let input = json!({
        "mode": "stages_v2",
        "environments": ["agentgym:sciworld"],
        "miners": [miner(1, Some(1), &[("agentgym:sciworld", 50.0, 1.0)])],
    });
    let output = run(&input);
    assert_eq!(
        output["miners"]["1"]["env_avg"]["agentgym:sciworld"],
        json!(0.75)
    );
    let mut stricter = input.clone();
    stricter["config"] = json!({"MIN_COMPLETENESS": 1.5});
    let output = run(&stricter);
    assert_eq!(
        output["miners"]["1"]["env_valid"]["agentgym:sciworld"],
        json!(false)
    );
    assert_eq!(output["chain"]["uids"], json!([]));
}

/// A random stages_v2 population: distinct first blocks, three environments, several samples
/// each, so no exact ties.
fn random_stages_input(generator: &mut SplitMix64) -> Value {
    let environments = ["x", "y", "z"];
    let count = 3 + generator.below(6);
    let mut miners = Vec::new();
    for index in 0..count {
        let mut data = serde_json::Map::new();
        for name in environments {
            if generator.below(8) == 0 {
                continue;
            }
            let scores: Vec<f64> = (0..1 + generator.below(5))
                .map(|_| generator.unit())
                .collect();
            let completeness = if generator.below(5) == 0 { 0.5 } else { 1.0 };
            data.insert(
                name.to_string(),
                json!({"scores": scores, "completeness": completeness}),
            );
        }
        miners.push(json!({
            "uid": index as i64 * 3 + 1,
            "hotkey": format!("hotkey-{index}"),
            "model_revision": "r",
            "model_repo": "org/m",
            "first_block": 1000 + generator.below(1000) as i64 * 10 + index as i64,
            "env": data,
        }));
    }
    json!({"mode": "stages_v2", "environments": environments, "miners": miners,
           "burn_percentage": 0.1})
}

#[test]
fn stages_miner_and_environment_order_do_not_matter_without_ties() {
    for seed in 0..24u64 {
        let mut generator = SplitMix64(seed);
        let input = random_stages_input(&mut generator);
        let reference = run(&input);
        let mut permuted = input.clone();
        let miners = permuted["miners"].as_array_mut().unwrap();
        generator.shuffle(miners);
        let environments = permuted["environments"].as_array_mut().unwrap();
        generator.shuffle(environments);
        let output = run(&permuted);
        // Summation order changes with the input order, so floats agree to rounding and the
        // u16 values exactly.
        assert_eq!(chain_u16(&output), chain_u16(&reference), "seed {seed}");
        let expected = chain_weights(&reference);
        let actual = chain_weights(&output);
        assert_eq!(
            expected.keys().collect::<Vec<_>>(),
            actual.keys().collect::<Vec<_>>()
        );
        for (uid, weight) in expected {
            assert_close(actual[&uid], weight);
        }
    }
}

// ---------------------------------------------------------------------------------------
// eps_pareto_legacy
// ---------------------------------------------------------------------------------------

fn legacy_miner(hotkey: &str, uid: i64, first_block: Option<i64>, accuracy: &[f64]) -> Value {
    let environments = ["SAT", "ABD"];
    let mut counts = serde_json::Map::new();
    let mut successes = serde_json::Map::new();
    for (name, accuracy) in environments.iter().zip(accuracy) {
        counts.insert((*name).to_string(), json!(500));
        successes.insert((*name).to_string(), json!(accuracy * 500.0));
    }
    json!({"hotkey": hotkey, "uid": uid, "first_block": first_block, "active": true,
           "queryable": true, "cnt": counts, "succ": successes})
}

fn legacy(miners: Vec<Value>, burn: f64) -> Value {
    json!({"mode": "eps_pareto_legacy", "envs": ["SAT", "ABD"], "miners": miners,
           "base_hotkey": "base", "base_uid": 0, "scale": 1.0, "burn": burn})
}

#[test]
fn legacy_no_miners_gives_everything_to_the_base_uid() {
    let output = run(&legacy(vec![], 0.0));
    assert_eq!(
        output["chain"],
        json!({"uids": [0], "weights": [1.0], "u16": [65535]})
    );
    assert_eq!(output["best"], Value::Null);
}

#[test]
fn legacy_single_miner_and_burn() {
    let single = || vec![legacy_miner("hk1", 4, Some(10), &[0.6, 0.4])];
    let output = run(&legacy(single(), 0.0));
    assert_eq!(output["K"], json!({"1": 1.0, "2": 4.0}));
    assert_eq!(output["miners"]["4"]["points"], json!(6.0));
    assert_eq!(chain_weights(&output), BTreeMap::from([(4, 1.0)]));

    let burnt = run(&legacy(single(), 0.25));
    assert_eq!(
        chain_weights(&burnt),
        BTreeMap::from([(0, 0.25), (4, 0.75)])
    );
    // The best miner is listed last.
    assert_eq!(burnt["chain"]["uids"], json!([0, 4]));

    let all_burnt = run(&legacy(single(), 1.0));
    assert_eq!(chain_weights(&all_burnt), BTreeMap::from([(0, 1.0)]));
    let over_burnt = run(&legacy(single(), 7.0));
    assert_eq!(chain_weights(&over_burnt), BTreeMap::from([(0, 1.0)]));
}

#[test]
fn legacy_all_zero_accuracy_goes_to_the_earliest_registration() {
    let output = run(&legacy(
        vec![
            legacy_miner("hk-late", 2, Some(300), &[0.0, 0.0]),
            legacy_miner("hk-early", 3, Some(100), &[0.0, 0.0]),
        ],
        0.0,
    ));
    assert_eq!(output["best"], json!("hk-early"));
    assert_eq!(output["miners"]["3"]["points"], json!(6.0));
    assert_eq!(chain_weights(&output), BTreeMap::from([(2, 0.0), (3, 1.0)]));
}

#[test]
fn legacy_exact_ties_go_to_the_smallest_hotkey_in_any_order() {
    // Both undated and identical: upstream's winner depends on Python's set order; ours is
    // the smallest hotkey.
    for order in [["hk-b", "hk-a"], ["hk-a", "hk-b"]] {
        let miners = order
            .iter()
            .map(|hotkey| {
                let uid = if *hotkey == "hk-a" { 1 } else { 2 };
                legacy_miner(hotkey, uid, None, &[0.7, 0.7])
            })
            .collect();
        let output = run(&legacy(miners, 0.0));
        assert_eq!(output["best"], json!("hk-a"));
        assert_eq!(chain_weights(&output), BTreeMap::from([(1, 1.0), (2, 0.0)]));
    }
}

#[test]
fn legacy_dated_miner_beats_an_undated_twin() {
    let output = run(&legacy(
        vec![
            legacy_miner("hk-a", 1, None, &[0.7, 0.7]),
            legacy_miner("hk-z", 2, Some(999), &[0.7, 0.7]),
        ],
        0.0,
    ));
    assert_eq!(output["best"], json!("hk-z"));
}

#[test]
fn legacy_ineligible_pool_falls_back_and_pays_the_base() {
    // 50 samples < the 100 required: nobody is eligible, the active and queryable miners
    // still compete for points, and the base uid takes the whole weight.
    let mut miner = legacy_miner("hk1", 4, Some(10), &[0.6, 0.4]);
    miner["cnt"] = json!({"SAT": 50, "ABD": 50});
    let output = run(&legacy(vec![miner], 0.3));
    assert_eq!(output["required"], json!({"SAT": 100, "ABD": 100}));
    assert_eq!(output["miners"]["4"]["eligible"], json!(false));
    assert_eq!(output["miners"]["4"]["points"], json!(6.0));
    assert_eq!(chain_weights(&output), BTreeMap::from([(0, 1.0)]));
}

#[test]
fn legacy_schedules_and_eligibility_rules() {
    let mut input = legacy(
        vec![
            legacy_miner("hk1", 1, Some(10), &[0.6, 0.4]),
            legacy_miner("hk2", 2, Some(20), &[0.5, 0.5]),
        ],
        0.0,
    );
    input["envs"] = json!(["SAT", "ABD", "DED"]);
    input["k_schedule"] = json!("comb");
    input["scale"] = json!(2.0);
    input["miners"][0]["cnt"]["DED"] = json!(1000);
    input["miners"][1]["cnt"]["DED"] = json!(899);
    let output = run(&input);
    assert_eq!(output["K"], json!({"1": 2.0, "2": 6.0, "3": 18.0}));
    // 10 + int(0.1 * 1000) = 110 for DED.
    assert_eq!(output["required"]["DED"], json!(110));
    input["config"] = json!({"ELIG_RULE": "v8d68f38"});
    let output = run(&input);
    assert_eq!(
        output["required"],
        json!({"SAT": 450, "ABD": 450, "DED": 900})
    );
    assert_eq!(output["miners"]["2"]["eligible"], json!(false));
}

#[test]
fn legacy_rejects_malformed_input_naming_the_problem() {
    let duplicate = legacy(
        vec![
            legacy_miner("hk1", 1, Some(10), &[0.6, 0.4]),
            legacy_miner("hk1", 2, Some(20), &[0.5, 0.5]),
        ],
        0.0,
    );
    assert!(error_message(&duplicate).contains("hk1"));
    let mut negative_count = legacy(vec![legacy_miner("hk1", 1, Some(10), &[0.6, 0.4])], 0.0);
    negative_count["miners"][0]["cnt"]["SAT"] = json!(-5);
    assert!(error_message(&negative_count).contains("eps_pareto_legacy input"));
    let mut schedule = legacy(vec![], 0.0);
    schedule["k_schedule"] = json!("cubic");
    assert!(error_message(&schedule).contains("cubic"));
    // 2^17 - 1 subsets exceed the replay's bound instead of running for hours.
    let mut many_environments = legacy(vec![], 0.0);
    many_environments["envs"] = json!((0..17).map(|index| format!("E{index}")).collect::<Vec<_>>());
    assert!(error_message(&many_environments).contains("subsets"));
    let mut no_base = legacy(vec![], 0.0);
    no_base.as_object_mut().unwrap().remove("base_hotkey");
    assert!(error_message(&no_base).contains("base_hotkey"));
}

#[test]
fn legacy_miner_and_environment_order_do_not_matter() {
    for seed in 0..24u64 {
        let mut generator = SplitMix64(seed + 1000);
        let environments = ["SAT", "ABD", "DED"];
        let mut miners = Vec::new();
        for index in 0..2 + generator.below(6) {
            let mut counts = serde_json::Map::new();
            let mut successes = serde_json::Map::new();
            for name in environments {
                let count = 50 + generator.below(400);
                counts.insert(name.to_string(), json!(count));
                successes.insert(name.to_string(), json!(generator.below(count + 1) as f64));
            }
            // Some undated miners and some identical records make exact ties likely.
            let first_block = (generator.below(3) != 0).then(|| generator.below(5) as i64);
            miners.push(json!({"hotkey": format!("hk{index}"), "uid": index + 10,
                "first_block": first_block, "active": true,
                "queryable": generator.below(6) != 0, "cnt": counts, "succ": successes}));
        }
        let input = json!({"mode": "eps_pareto_legacy", "envs": environments,
            "miners": miners, "base_hotkey": "base", "base_uid": 0, "burn": 0.2});
        let reference = run(&input);
        let mut permuted = input.clone();
        generator.shuffle(permuted["miners"].as_array_mut().unwrap());
        generator.shuffle(permuted["envs"].as_array_mut().unwrap());
        let output = run(&permuted);
        assert_eq!(
            chain_weights(&output),
            chain_weights(&reference),
            "seed {seed}"
        );
        assert_eq!(output["final_weights"], reference["final_weights"]);
        assert_eq!(output["best"], reference["best"]);
    }
}
