//! The affine `eps_pareto_legacy` projection: the examples' data given as events gives the
//! weights their JSON input gives; checkpoint/resume at any point gives the same state hash;
//! events the projection cannot use are refused.

mod common;

use common::{
    account,
    affine::{challenge, metagraph, profile, sample},
    assert_resume_everywhere, examples_dir, external, indexed,
};

use serde_json::{Value, json};
use weightlog_replay::projection::affine_legacy::{
    AffineEpsParetoLegacy, AffineLegacyState, SOURCE_MINERS,
};
use weightlog_replay::projection::{Projection, fold};
use weightlog_replay::run_json;
use weightlog_schema::event::*;

fn miners(block: u64, entries: Value) -> Event {
    external(SOURCE_MINERS, block, vec![], json!({ "miners": entries }))
}

/// The per-sample scores whose sum, added in order from 0.0, is exactly `succ`: `floor(succ)`
/// ones, then the fractional part if any, then zeros up to `cnt` samples. Every partial sum
/// of ones is an exact integer, `succ - floor(succ)` is exact (Sterbenz), and
/// `floor(succ) + (succ - floor(succ))` rounds to `succ` itself, so no rounding is involved.
fn scores_summing_to(succ: f64, cnt: u64) -> Vec<f64> {
    assert!(succ >= 0.0 && succ.is_finite(), "succ {succ}");
    let whole = succ.floor();
    let fraction = succ - whole;
    let mut scores = vec![1.0; whole as usize];
    if fraction > 0.0 {
        scores.push(fraction);
    }
    assert!(
        scores.len() as u64 <= cnt,
        "succ {succ} needs more than {cnt} samples in [0, 1]"
    );
    scores.resize(cnt as usize, 0.0);
    let sum = scores.iter().fold(0.0, |sum, score| sum + score);
    assert_eq!(sum.to_bits(), succ.to_bits());
    scores
}

/// The example's data as events, and the example's JSON with its hotkeys replaced by the
/// SS58 addresses those events carry (fixture hotkeys are not valid SS58): uid `u` holds
/// `account(u)` in the metagraph, the base uid included.
fn as_events(input: &Value) -> (Vec<Event>, Value) {
    let entries = input["miners"].as_array().unwrap();
    let base_uid = input["base_uid"].as_u64().unwrap() as u16;
    let mut uids: Vec<u16> = entries
        .iter()
        .map(|entry| entry["uid"].as_u64().unwrap() as u16)
        .collect();
    // The base hotkey is not a miner's in these examples, so mapping by uid keeps every
    // hotkey comparison the mechanism makes.
    assert!(
        entries
            .iter()
            .all(|entry| entry["hotkey"] != input["base_hotkey"]),
        "the base hotkey is a miner's"
    );
    assert!(!uids.contains(&base_uid));
    uids.push(base_uid);
    uids.sort_unstable();

    let mut parameters = json!({ "mode": "eps_pareto_legacy", "envs": input["envs"] });
    if base_uid != 0 {
        parameters["base_uid"] = json!(base_uid);
    }
    for key in ["scale", "burn", "k_schedule", "config"] {
        if let Some(value) = input.get(key) {
            parameters[key] = value.clone();
        }
    }
    let mut events = vec![profile(0, &parameters), metagraph(&uids, 0, 1)];
    let list: Vec<Value> = entries
        .iter()
        .map(|entry| {
            json!({
                "uid": entry["uid"],
                "first_block": entry["first_block"],
                "active": entry["active"],
                "queryable": entry["queryable"],
                "model_repo": format!("org/affine-{}", entry["uid"]),
                "model_revision": "r0",
            })
        })
        .collect();
    events.push(miners(2, json!(list)));
    // One task per environment and sample index; every miner's i-th sample of an
    // environment answers task i of it.
    let mut issued: std::collections::BTreeMap<String, usize> = Default::default();
    let mut block = 3;
    for entry in entries {
        let uid = entry["uid"].as_u64().unwrap() as u16;
        let empty = serde_json::Map::new();
        let succ = entry["succ"].as_object().unwrap_or(&empty);
        for (environment, count) in entry["cnt"].as_object().unwrap_or(&empty) {
            let total = succ.get(environment).map_or(0.0, |s| s.as_f64().unwrap());
            let scores = scores_summing_to(total, count.as_u64().unwrap());
            for (index, score) in scores.into_iter().enumerate() {
                let challenge_id = format!("{environment}/{index}");
                let issued_count = issued.entry(environment.clone()).or_default();
                if index >= *issued_count {
                    events.push(challenge(block, &challenge_id, environment));
                    *issued_count = index + 1;
                }
                events.push(sample(block, &challenge_id, uid, score));
                block += 1;
            }
        }
        // A success total without samples has no event form; the mechanism reads it as 0.
        for (environment, total) in succ {
            if entry["cnt"]
                .get(environment)
                .is_none_or(|c| c.as_u64() == Some(0))
            {
                assert_eq!(total.as_f64(), Some(0.0), "uid {uid} {environment}");
            }
        }
    }

    let mut remapped = input.clone();
    for entry in remapped["miners"].as_array_mut().unwrap() {
        let uid = entry["uid"].as_u64().unwrap();
        entry["hotkey"] = json!(account(uid).to_ss58());
    }
    remapped["base_hotkey"] = json!(account(u64::from(base_uid)).to_ss58());
    (events, remapped)
}

const EXAMPLES: [&str; 5] = [
    "affine_eps_pareto_legacy",
    "gen-affine_eps_pareto_legacy-comb-1",
    "gen-affine_eps_pareto_legacy-comb-2",
    "gen-affine_eps_pareto_legacy-pow2-1",
    "gen-affine_eps_pareto_legacy-pow2-2",
];

fn example(name: &str) -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(examples_dir().join(format!("{name}.input.json"))).unwrap(),
    )
    .unwrap()
}

fn weight_bits(output: &Value) -> Vec<u64> {
    output["chain"]["weights"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_f64().unwrap().to_bits())
        .collect()
}

/// Folds the example's events and checks the projection's output against `run_json` on the
/// (remapped) JSON: chain uids, u16 weights and raw weights bit for bit, and every
/// intermediate value of the output.
fn check_equivalent(name: &str, input: &Value) {
    let (events, remapped) = as_events(input);
    let from_json = run_json(&remapped).unwrap();
    let mut state = AffineLegacyState::default();
    fold(&AffineEpsParetoLegacy, &mut state, indexed(&events)).unwrap();
    let from_events = AffineEpsParetoLegacy.output(&state).unwrap();
    let chain = &from_json["chain"];
    assert!(
        chain["u16"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_u64().unwrap() > 0),
        "{name}: the example sets weights"
    );
    assert_eq!(from_events["chain"]["uids"], chain["uids"], "{name}");
    assert_eq!(from_events["chain"]["u16"], chain["u16"], "{name}");
    assert_eq!(weight_bits(&from_events), weight_bits(&from_json), "{name}");
    assert_eq!(from_events, from_json, "{name}");
    // The projected succ totals are the example's, bit for bit.
    let projected = AffineEpsParetoLegacy.input(&state).unwrap();
    assert_eq!(
        projected["miners"].as_array().unwrap().len(),
        remapped["miners"].as_array().unwrap().len(),
        "{name}"
    );
    for (miner, original) in projected["miners"]
        .as_array()
        .unwrap()
        .iter()
        .zip(remapped["miners"].as_array().unwrap())
    {
        assert_eq!(miner["uid"], original["uid"], "{name}");
        assert_eq!(miner["hotkey"], original["hotkey"], "{name}");
        for (environment, total) in miner["succ"].as_object().unwrap() {
            assert_eq!(
                total.as_f64().unwrap().to_bits(),
                original["succ"][environment].as_f64().unwrap().to_bits(),
                "{name}: uid {} {environment}",
                miner["uid"]
            );
        }
    }
}

/// The acceptance test. Every value of the examples is carried exactly: counts as the number
/// of sample events, success totals as per-sample scores whose in-order sum is the total bit
/// for bit (see `scores_summing_to`), blocks and flags as they are; so no rounding is applied
/// and the outputs must be identical. Each example is also checked with the 8d68f38
/// eligibility rule given through the profile's `config`, which exercises that path and
/// gives weights to miners where the default rule gives everything to the base uid.
#[test]
fn affine_legacy_weights_from_events_equal_weights_from_json() {
    let mut checked = 0;
    for name in EXAMPLES {
        let input = example(name);
        check_equivalent(name, &input);
        let mut configured = input.clone();
        configured["config"] = json!({"ELIG_RULE": "v8d68f38"});
        check_equivalent(&format!("{name} with ELIG_RULE v8d68f38"), &configured);
        checked += 1;
    }
    assert_eq!(checked, 5);
}

/// A varied stream: profile changes, metagraphs that move hotkeys, miner lists that change
/// revisions and flags, tasks, samples, and events of other kinds that are ignored.
fn stream(length: u64) -> Vec<Event> {
    let mut seed = 0x1e9a_u64;
    let mut next = move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        seed >> 11
    };
    let environments = ["SAT", "ABD", "DED"];
    let uids: Vec<u16> = (0..12).collect();
    let mut events = vec![
        profile(
            0,
            &json!({"mode": "eps_pareto_legacy", "envs": environments}),
        ),
        metagraph(&uids, 0, 0),
    ];
    let mut challenges = 0u64;
    for block in 1..length {
        let event = match next() % 10 {
            0 => {
                // Sometimes uids 10 and 11 change hands.
                let base = if next() % 2 == 0 { 0 } else { 1_000 };
                let mut event = metagraph(&uids, 0, block);
                if let Payload::MetagraphObserved(observed) = &mut event.payload {
                    for neuron in &mut observed.neurons {
                        if neuron.uid >= 10 {
                            neuron.hotkey = account(base + u64::from(neuron.uid));
                        }
                    }
                }
                event
            }
            1 => {
                let mut list = Vec::new();
                for uid in uids.iter().skip(1) {
                    if next() % 5 == 0 {
                        continue;
                    }
                    // Now and then a miner commits a new revision.
                    let revision = if next() % 8 == 0 { "r1" } else { "r0" };
                    list.push(json!({
                        "uid": uid,
                        "first_block": 100 + next() % 50,
                        "active": next() % 6 != 0,
                        "queryable": next() % 6 != 0,
                        "model_repo": format!("org/affine-{uid}"),
                        "model_revision": revision,
                    }));
                }
                miners(block, json!(list))
            }
            2 | 3 => {
                challenges += 1;
                challenge(
                    block,
                    &format!("task-{challenges}"),
                    environments[(next() % 3) as usize],
                )
            }
            4..=6 if challenges > 0 => sample(
                block,
                &format!("task-{}", 1 + next() % challenges),
                (next() % 12) as u16,
                (next() % 2) as f64,
            ),
            7 => profile(
                block,
                &json!({
                    "mode": "eps_pareto_legacy",
                    "envs": environments,
                    "burn": (next() % 10) as f64 / 10.0,
                    "k_schedule": if next() % 2 == 0 { "pow2" } else { "comb" },
                    "config": {"MIN_SAMPLES_PER_ENV": 1},
                }),
            ),
            _ => weightlog_schema::samples::sample(EventKind::EmbeddingComputed, block),
        };
        events.push(event);
    }
    events
}

#[test]
fn resuming_from_a_checkpoint_at_any_point_gives_the_same_state() {
    let events = stream(300);
    assert!(events.len() >= 100);
    let projection = AffineEpsParetoLegacy;
    let whole = assert_resume_everywhere(&projection, &events);
    // The stream leaves data to score, and the state gives a valid input.
    assert!(!whole.miners.is_empty() && !whole.counters.is_empty());
    projection.output(&whole).unwrap();
}

#[test]
fn a_new_hotkey_or_model_forgets_the_old_counters() {
    let projection = AffineEpsParetoLegacy;
    let mut state = AffineLegacyState::default();
    let list = |revision: &str| {
        miners(
            2,
            json!([
                {"uid": 1, "first_block": 10, "active": true, "queryable": true,
                 "model_repo": "o/affine-a", "model_revision": revision},
                {"uid": 2, "first_block": null, "active": true, "queryable": false},
            ]),
        )
    };
    let events = vec![
        profile(0, &json!({"mode": "eps_pareto_legacy", "envs": ["SAT"]})),
        metagraph(&[0, 1, 2], 0, 1),
        list("r"),
        challenge(3, "t", "SAT"),
        sample(4, "t", 1, 1.0),
        sample(5, "t", 1, 0.25),
        sample(6, "t", 2, 0.5),
    ];
    fold(&projection, &mut state, indexed(&events)).unwrap();
    let input = projection.input(&state).unwrap();
    assert_eq!(input["base_hotkey"], json!(account(0).to_ss58()));
    assert_eq!(input["base_uid"], json!(0));
    assert_eq!(input["miners"][0]["cnt"], json!({"SAT": 2}));
    assert_eq!(input["miners"][0]["succ"], json!({"SAT": 1.25}));
    assert_eq!(input["miners"][1]["first_block"], Value::Null);
    assert_eq!(input["miners"][1]["queryable"], json!(false));
    // uid 2 changes hands: its entry and counters go.
    let mut moved = metagraph(&[0, 1, 2], 0, 7);
    if let Payload::MetagraphObserved(observed) = &mut moved.payload {
        observed.neurons[2].hotkey = account(777);
    }
    projection.apply(&mut state, 7, &moved).unwrap();
    assert!(!state.counters.contains_key(&2));
    assert_eq!(state.miners.len(), 1);
    // uid 1 commits a new revision: its counters restart.
    projection.apply(&mut state, 8, &list("s")).unwrap();
    assert!(state.counters.is_empty());
    let input = projection.input(&state).unwrap();
    assert_eq!(input["miners"][0]["cnt"], json!({}));
    assert_eq!(input["miners"][1]["hotkey"], json!(account(777).to_ss58()));
    // The same revision again keeps them.
    projection
        .apply(&mut state, 9, &sample(9, "t", 1, 1.0))
        .unwrap();
    projection.apply(&mut state, 10, &list("s")).unwrap();
    assert_eq!(state.counters[&1]["SAT"].cnt, 1);
    projection.output(&state).unwrap();
}

#[test]
fn events_the_projection_cannot_use_are_refused() {
    let projection = AffineEpsParetoLegacy;
    let error = |state: &mut AffineLegacyState, event: Event| {
        projection.apply(state, 9, &event).unwrap_err().to_string()
    };
    let mut state = AffineLegacyState::default();
    assert!(
        projection
            .input(&state)
            .unwrap_err()
            .to_string()
            .contains("profile")
    );
    let current = error(
        &mut state,
        profile(0, &json!({"mode": "stages_v2", "envs": ["SAT"]})),
    );
    assert!(
        current.contains("`eps_pareto_legacy` only") && current.contains("stages_v2"),
        "{current}"
    );
    let no_mode = error(&mut state, profile(0, &json!({"envs": ["SAT"]})));
    assert!(no_mode.contains("mode"), "{no_mode}");
    let missing = error(
        &mut state,
        profile(0, &json!({"mode": "eps_pareto_legacy", "burn": 0.1})),
    );
    assert!(missing.contains("envs"), "{missing}");
    let twice = error(
        &mut state,
        profile(
            0,
            &json!({"mode": "eps_pareto_legacy", "envs": ["SAT", "SAT"]}),
        ),
    );
    assert!(twice.contains("twice"), "{twice}");
    let schedule = error(
        &mut state,
        profile(
            0,
            &json!({"mode": "eps_pareto_legacy", "envs": ["SAT"], "k_schedule": "pow3"}),
        ),
    );
    assert!(schedule.contains("pow3"), "{schedule}");
    let config = error(
        &mut state,
        profile(
            0,
            &json!({"mode": "eps_pareto_legacy", "envs": ["SAT"], "config": {"EPS": 1}}),
        ),
    );
    assert!(
        config.contains("config") && config.contains("EPS"),
        "{config}"
    );
    let big_uid = error(
        &mut state,
        profile(
            0,
            &json!({"mode": "eps_pareto_legacy", "envs": ["SAT"], "base_uid": 70000}),
        ),
    );
    assert!(big_uid.contains("70000"), "{big_uid}");
    assert_eq!(state, AffineLegacyState::default());

    projection
        .apply(
            &mut state,
            0,
            &profile(
                0,
                &json!({"mode": "eps_pareto_legacy", "envs": ["SAT"], "base_uid": 5}),
            ),
        )
        .unwrap();
    projection
        .apply(&mut state, 1, &metagraph(&[0, 1], 0, 1))
        .unwrap();
    let no_base = projection.input(&state).unwrap_err().to_string();
    assert!(no_base.contains("base uid 5"), "{no_base}");
    let mut doubled = metagraph(&[0, 1], 0, 2);
    if let Payload::MetagraphObserved(observed) = &mut doubled.payload {
        observed.neurons[1].uid = 0;
    }
    let doubled = error(&mut state, doubled);
    assert!(doubled.contains("uid 0 twice"), "{doubled}");
    let entry = |uid: u16| json!({"uid": uid, "first_block": 1, "active": true, "queryable": true});
    let unknown_uid = error(&mut state, miners(2, json!([entry(5)])));
    assert!(unknown_uid.contains("event 9: uid 5"), "{unknown_uid}");
    let repeated = error(&mut state, miners(2, json!([entry(1), entry(1)])));
    assert!(repeated.contains("uid 1 twice"), "{repeated}");
    let no_flags = error(
        &mut state,
        miners(2, json!([{"uid": 1, "first_block": 1, "active": true}])),
    );
    assert!(no_flags.contains("queryable"), "{no_flags}");
    let scored = error(
        &mut state,
        external(SOURCE_MINERS, 2, vec![(1, 1.0)], json!({"miners": []})),
    );
    assert!(scored.contains("must be empty"), "{scored}");
    let never_issued = error(&mut state, sample(3, "nope", 1, 0.5));
    assert!(never_issued.contains("never issued"), "{never_issued}");
    projection
        .apply(&mut state, 3, &challenge(3, "t", "SAT"))
        .unwrap();
    let moved = error(&mut state, challenge(3, "t", "ABD"));
    assert!(moved.contains("environment `SAT`"), "{moved}");
    let nan = error(&mut state, sample(4, "t", 1, f64::NAN));
    assert!(nan.contains("finite"), "{nan}");
    let stranger = error(&mut state, sample(4, "t", 9, 0.5));
    assert!(stranger.contains("uid 9"), "{stranger}");
    // A refused event leaves the state as it was: only the profile, metagraph and task.
    assert!(state.miners.is_empty() && state.counters.is_empty());
    assert_eq!(state.hotkeys.len(), 2);
    assert_eq!(state.challenges.len(), 1);
}
