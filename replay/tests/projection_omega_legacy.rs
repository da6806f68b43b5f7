//! omega `legacy_winrate` and `reputation` projections: the examples of specs/mechanism-io
//! given as events give the same output as their JSON input; checkpoint/resume at any point
//! gives the same state; events the projections cannot use are refused.

mod common;

use common::{account, assert_resume_everywhere, examples_dir, external, hyperparameters};

use std::collections::BTreeMap;

use serde_json::{Value, json};
use weightlog_replay::projection::omega_legacy::{
    LEGACY_MECHANISM, OmegaLegacyWinrate, OmegaReputation, PROFILE, SOURCE_BASELINE,
    SOURCE_MODEL_SCORES, SOURCE_REPUTATION,
};
use weightlog_replay::projection::{Projection, ProjectionCheckpoint, fold};
use weightlog_replay::run_json;
use weightlog_schema::Hash;
use weightlog_schema::event::*;

fn metagraph(hotkeys: &[AccountId], block: u64) -> Event {
    let neurons = hotkeys
        .iter()
        .enumerate()
        .map(|(uid, hotkey)| Neuron {
            uid: uid as u16,
            hotkey: *hotkey,
            coldkey: account(10_000 + uid as u64),
            stake_rao: 1_000,
            validator_permit: false,
            active: true,
            registration_block: 1,
            axon: None,
        })
        .collect();
    Event::new(
        block,
        Payload::MetagraphObserved(MetagraphObserved {
            netuid: 21,
            block,
            block_hash: Hash([1; 32]),
            spec_version: 393,
            neurons,
            hyperparameters: hyperparameters(),
        }),
    )
}

fn metagraph_of_size(n: u16, block: u64) -> Event {
    let hotkeys: Vec<AccountId> = (0..n).map(|uid| account(u64::from(uid))).collect();
    metagraph(&hotkeys, block)
}

fn decision(block: u64, weights: &[(u16, f64)]) -> Event {
    Event::new(
        block,
        Payload::WeightsComputed(WeightsComputed {
            block,
            mechanism: LEGACY_MECHANISM.into(),
            parameters_hash: Hash([0; 32]),
            log_size: block,
            uids: weights.iter().map(|(uid, _)| *uid).collect(),
            raw_weight_bits: weights.iter().map(|(_, weight)| weight.to_bits()).collect(),
            u16_uids: Vec::new(),
            u16_weights: Vec::new(),
        }),
    )
}

fn profile(block: u64, parameters: Value) -> Event {
    let parameters = parameters.to_string();
    Event::new(
        block,
        Payload::LogOpened(LogOpened {
            log_id: LogId([7; 16]),
            netuid: 21,
            validator_hotkey: account(99_999),
            profile: PROFILE.into(),
            parameters_hash: weightlog_schema::codec::parameters_hash_of(&parameters),
            parameters_json: parameters,
        }),
    )
}

fn example(name: &str) -> (Value, Value) {
    let read = |suffix: &str| -> Value {
        let path = examples_dir().join(format!("{name}.{suffix}.json"));
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
    };
    (read("input"), read("expected"))
}

fn fold_all<P: Projection>(projection: &P, events: &[Event]) -> P::State {
    let mut state = P::State::default();
    fold(
        projection,
        &mut state,
        events.iter().enumerate().map(|(seq, e)| (seq as u64, e)),
    )
    .unwrap();
    state
}

/// The raw weights of an output as bit patterns, so the comparison is bit-exact.
fn weight_bits(output: &Value) -> Vec<u64> {
    output["weights"]
        .as_array()
        .unwrap()
        .iter()
        .map(|weight| weight.as_f64().unwrap().to_bits())
        .collect()
}

/// A legacy_winrate example as events: the profile's competitions, a metagraph of `n` uids,
/// one API answer per competition (every entry of that competition, in the example's order
/// per uid, with its block and model hash), and the previous weights as the last decision.
/// The example has no hotkeys, and every value is carried exactly (scores and weights as f64
/// bits, blocks as integers), so the JSON is compared as it is.
fn legacy_as_events(input: &Value) -> Vec<Event> {
    /// One competition's API answer: `(uid, score)` per entry and the entries' other fields.
    type Round = (Vec<(u16, f64)>, Vec<Value>);
    let mut events = Vec::new();
    let mut parameters = json!({});
    if let Some(competitions) = input.get("competitions") {
        parameters["competitions"] = competitions.clone();
    }
    events.push(profile(0, parameters));
    let n = input["n"].as_u64().unwrap() as u16;
    events.push(metagraph_of_size(n, 1));
    // competition -> (scores, entries)
    let mut rounds: BTreeMap<String, Round> = BTreeMap::new();
    for (uid, entries) in input["all_model_scores"].as_object().unwrap() {
        let uid: u16 = uid.parse().unwrap();
        for entry in entries.as_array().unwrap() {
            let competition = entry["competition_id"].as_str().unwrap().to_string();
            let round = rounds.entry(competition).or_default();
            let mut described = serde_json::Map::new();
            let score = match entry.get("score") {
                Some(Value::Null) => {
                    described.insert("score".into(), Value::Null);
                    0.0
                }
                Some(score) => score.as_f64().unwrap(),
                None => panic!("the examples give every entry a score"),
            };
            for key in ["block", "model_hash"] {
                if let Some(value) = entry.get(key) {
                    described.insert(key.into(), value.clone());
                }
            }
            round.0.push((uid, score));
            round.1.push(Value::Object(described));
        }
    }
    assert!(rounds.len() <= 1, "one competition per example");
    for (competition, (scores, entries)) in rounds {
        events.push(external(
            SOURCE_MODEL_SCORES,
            2,
            scores,
            json!({"competition_id": competition, "entries": entries}),
        ));
    }
    if let Some(previous) = input["previous_weights"].as_array() {
        let weights: Vec<(u16, f64)> = previous
            .iter()
            .enumerate()
            .map(|(uid, weight)| (uid as u16, weight.as_f64().unwrap()))
            .collect();
        events.push(decision(3, &weights));
    }
    events
}

#[test]
fn legacy_winrate_weights_from_events_equal_weights_from_json() {
    for name in ["gen-omega_legacy_winrate-1", "gen-omega_legacy_winrate-2"] {
        let (input, expected) = example(name);
        let events = legacy_as_events(&input);
        let projection = OmegaLegacyWinrate;
        let state = fold_all(&projection, &events);
        let from_events = projection.output(&state).unwrap();
        let from_json = run_json(&input).unwrap();
        assert_eq!(weight_bits(&from_events), weight_bits(&from_json), "{name}");
        assert_eq!(from_events["u16"], from_json["u16"], "{name}");
        assert_eq!(from_events, from_json, "{name}");
        // And they are the example's expected weights (its float32 tolerance: 8 ulps, u16 +-1).
        let expected_weights = expected["weights"].as_array().unwrap();
        let weights = from_events["weights"].as_array().unwrap();
        assert_eq!(weights.len(), expected_weights.len(), "{name}");
        for (uid, (ours, theirs)) in weights.iter().zip(expected_weights).enumerate() {
            let (ours, theirs) = (ours.as_f64().unwrap(), theirs.as_f64().unwrap());
            assert!(
                (ours - theirs).abs() <= 1e-6,
                "{name}: uid {uid}: {ours} vs {theirs}"
            );
        }
    }
}

/// A reputation example as events. Every hotkey of the example (active, with a reputation,
/// or with a score) gets a generated account. A first metagraph holds them all; the
/// reputation table, the scores (`null` ones as `"score": null` entries) and the baseline are
/// recorded while it is current; then the metagraph of the active hotkeys only is observed.
/// Returns the events and the example's JSON with its hotkeys replaced by their accounts'
/// SS58 addresses, and the map back. Reputations, scores and the baseline are carried as f64
/// bits, so nothing is rounded.
fn reputation_as_events(input: &Value) -> (Vec<Event>, Value, BTreeMap<String, String>) {
    let active: Vec<String> = serde_json::from_value(input["active_hotkeys"].clone()).unwrap();
    let reputations: BTreeMap<String, f64> =
        serde_json::from_value(input["reputations"].clone()).unwrap();
    let scores: BTreeMap<String, Option<f64>> =
        serde_json::from_value(input["scores"].clone()).unwrap();
    let mut everyone = active.clone();
    for hotkey in reputations.keys().chain(scores.keys()) {
        if !everyone.contains(hotkey) {
            everyone.push(hotkey.clone());
        }
    }
    let accounts: BTreeMap<&str, AccountId> = everyone
        .iter()
        .enumerate()
        .map(|(index, hotkey)| (hotkey.as_str(), account(1_000 + index as u64)))
        .collect();
    let ss58 = |hotkey: &str| accounts[hotkey].to_ss58();
    let uid = |hotkey: &str| everyone.iter().position(|h| h == hotkey).unwrap() as u16;

    let mut events = vec![profile(0, json!({}))];
    let all: Vec<AccountId> = everyone.iter().map(|h| accounts[h.as_str()]).collect();
    events.push(metagraph(&all, 1));
    events.push(external(
        SOURCE_REPUTATION,
        2,
        reputations.iter().map(|(h, r)| (uid(h), *r)).collect(),
        json!({}),
    ));
    let mut round = Vec::new();
    let mut entries = Vec::new();
    for (hotkey, score) in &scores {
        match score {
            Some(score) => {
                round.push((uid(hotkey), *score));
                entries.push(json!({}));
            }
            None => {
                round.push((uid(hotkey), 0.0));
                entries.push(json!({"score": null}));
            }
        }
    }
    events.push(external(
        SOURCE_MODEL_SCORES,
        3,
        round,
        json!({"competition_id": "v4", "entries": entries}),
    ));
    events.push(external(
        SOURCE_BASELINE,
        4,
        vec![],
        json!({"competition_id": "v4", "baseline": input["baseline"]}),
    ));
    let active_accounts: Vec<AccountId> = active.iter().map(|h| accounts[h.as_str()]).collect();
    events.push(metagraph(&active_accounts, 5));

    let mut remapped = input.clone();
    remapped["active_hotkeys"] = json!(active.iter().map(|h| ss58(h)).collect::<Vec<_>>());
    remapped["reputations"] = json!(
        reputations
            .iter()
            .map(|(h, r)| (ss58(h), *r))
            .collect::<BTreeMap<_, _>>()
    );
    remapped["scores"] = json!(
        scores
            .iter()
            .map(|(h, s)| (ss58(h), *s))
            .collect::<BTreeMap<_, _>>()
    );
    let back = everyone.iter().map(|h| (ss58(h), h.clone())).collect();
    (events, remapped, back)
}

#[test]
fn reputations_from_events_equal_reputations_from_json() {
    for name in ["gen-omega_reputation-1", "gen-omega_reputation-2"] {
        let (input, expected) = example(name);
        let (events, remapped, back) = reputation_as_events(&input);
        let projection = OmegaReputation;
        let state = fold_all(&projection, &events);
        let from_events = projection.output(&state).unwrap();
        let from_json = run_json(&remapped).unwrap();
        assert_eq!(from_events, from_json, "{name}");
        // Bit-exact reputations (the output `Value`s compare f64s exactly already; this
        // says so explicitly).
        let bits = |output: &Value| -> BTreeMap<String, u64> {
            output["reputations"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(h, r)| (h.clone(), r.as_f64().unwrap().to_bits()))
                .collect()
        };
        assert_eq!(bits(&from_events), bits(&from_json), "{name}");
        // Mapped back to the fixture's hotkeys, they are the example's expected reputations.
        let reputations = from_events["reputations"].as_object().unwrap();
        let wanted = expected["reputations"].as_object().unwrap();
        assert_eq!(reputations.len(), wanted.len(), "{name}");
        for (hotkey, reputation) in reputations {
            let fixture = &back[hotkey];
            let difference =
                (reputation.as_f64().unwrap() - wanted[fixture].as_f64().unwrap()).abs();
            assert!(difference < 1e-9, "{name}: {fixture}");
        }
    }
}

/// A varied stream: metagraph changes, profile changes, API answers for two competitions,
/// baselines, reputation tables and legacy decisions, plus events of other kinds the
/// projections ignore.
fn stream(length: u64) -> Vec<Event> {
    let mut seed = 0x0e6a_u64;
    let mut next = move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        seed >> 11
    };
    let mut events = vec![
        profile(
            0,
            json!({"competitions": [{"competition_id": "v4", "reward_percentage": 1.0}]}),
        ),
        metagraph_of_size(220, 0),
    ];
    for block in 2..length {
        let event = match next() % 8 {
            0 => metagraph_of_size(200 + (next() % 57) as u16, block),
            1 | 2 => {
                let count = 1 + next() % 25;
                let mut scores = Vec::new();
                let mut entries = Vec::new();
                for _ in 0..count {
                    let uid = (next() % 200) as u16;
                    if next() % 10 == 0 {
                        scores.push((uid, 0.0));
                        entries.push(json!({"score": null, "block": null}));
                    } else {
                        scores.push((uid, (next() % 1000) as f64 / 1000.0));
                        entries.push(json!({
                            "block": 3_000_000 + next() % 1000,
                            "model_hash": format!("{:x}", next() % 8),
                        }));
                    }
                }
                let competition = if next() % 3 == 0 { "v2" } else { "v4" };
                external(
                    SOURCE_MODEL_SCORES,
                    block,
                    scores,
                    json!({"competition_id": competition, "entries": entries}),
                )
            }
            3 => external(
                SOURCE_BASELINE,
                block,
                vec![],
                json!({"competition_id": "v4", "baseline": (next() % 100) as f64 / 100.0}),
            ),
            4 => external(
                SOURCE_REPUTATION,
                block,
                (0..40)
                    .map(|uid| (uid, (next() % 100) as f64 / 100.0))
                    .collect(),
                json!({}),
            ),
            5 => decision(
                block,
                &[
                    (1, 0.25),
                    ((next() % 200) as u16 + 2, (next() % 100) as f64 / 100.0),
                ],
            ),
            6 => profile(
                block,
                json!({
                    "competition_id": if next() % 2 == 0 { "v2" } else { "v4" },
                    "competitions": [
                        {"competition_id": "v4", "reward_percentage": 0.75},
                        {"competition_id": "v2", "reward_percentage": 0.25},
                    ],
                }),
            ),
            _ => weightlog_schema::samples::sample(EventKind::ChallengeIssued, block),
        };
        events.push(event);
    }
    events
}

#[test]
fn resuming_from_a_checkpoint_at_any_point_gives_the_same_state() {
    let events = stream(240);
    assert!(events.len() >= 100);
    assert_resume_everywhere(&OmegaLegacyWinrate, &events);
    assert_resume_everywhere(&OmegaReputation, &events);
    // The folded states are inputs the mechanism runs.
    let legacy = fold_all(&OmegaLegacyWinrate, &events);
    OmegaLegacyWinrate.output(&legacy).unwrap();
    let reputation = fold_all(&OmegaReputation, &events);
    OmegaReputation.output(&reputation).unwrap();
}

#[test]
fn a_checkpoint_of_one_projection_is_refused_by_the_other() {
    let events = stream(60);
    let state = fold_all(&OmegaLegacyWinrate, &events);
    let checkpoint = ProjectionCheckpoint::capture::<OmegaLegacyWinrate>(&state, 60).unwrap();
    assert!(checkpoint.restore::<OmegaReputation>().is_err());
    let mut changed = checkpoint.clone();
    let last = changed.state.len() - 1;
    changed.state[last] ^= 1;
    let error = changed
        .restore::<OmegaLegacyWinrate>()
        .unwrap_err()
        .to_string();
    assert!(error.contains("changed"), "{error}");
}

#[test]
fn the_newest_answer_comes_first_and_the_profile_sets_the_competitions() {
    let events = vec![
        profile(
            0,
            json!({"competitions": [{"competition_id": "v4", "reward_percentage": 0.5},
                                    {"competition_id": "v2", "reward_percentage": 0.5}]}),
        ),
        metagraph_of_size(8, 1),
        external(
            SOURCE_MODEL_SCORES,
            2,
            vec![(3, 0.5)],
            json!({"competition_id": "v4"}),
        ),
        external(
            SOURCE_MODEL_SCORES,
            3,
            vec![(3, 0.25), (4, 0.75)],
            json!({"competition_id": "v2", "entries": [{"block": 7}, {"block": null}]}),
        ),
    ];
    let projection = OmegaLegacyWinrate;
    let state = fold_all(&projection, &events);
    let input = projection.input(&state).unwrap();
    assert_eq!(
        input["all_model_scores"]["3"],
        json!([{"competition_id": "v2", "score": 0.25, "block": 7},
               {"competition_id": "v4", "score": 0.5}])
    );
    assert_eq!(
        input["all_model_scores"]["4"],
        json!([{"competition_id": "v2", "score": 0.75, "block": null}])
    );
    assert_eq!(input["competitions"][1]["competition_id"], "v2");
    assert_eq!(input["n"], 8);
    projection.output(&state).unwrap();
}

/// Applies `event` at seq 9 to a copy of `state`: it must be refused with an error that
/// contains `needle`, and leave the state as it was.
fn refused<P: Projection>(projection: &P, state: &P::State, event: &Event, needle: &str) {
    let mut copy = state.clone();
    let error = projection
        .apply(&mut copy, 9, event)
        .unwrap_err()
        .to_string();
    assert!(error.contains("event 9"), "{error}");
    assert!(error.contains(needle), "`{needle}` not in: {error}");
    assert_eq!(&copy, state);
}

#[test]
fn events_the_projections_cannot_use_are_refused() {
    let legacy = OmegaLegacyWinrate;
    let mut state = Default::default();
    // No metagraph yet: no input.
    assert!(
        legacy
            .input(&state)
            .unwrap_err()
            .to_string()
            .contains("metagraph")
    );
    legacy
        .apply(&mut state, 0, &metagraph_of_size(4, 0))
        .unwrap();
    let scores =
        |extra: Value, score: f64| external(SOURCE_MODEL_SCORES, 1, vec![(1, score)], extra);
    refused(&legacy, &state, &scores(json!({}), 0.5), "competition_id");
    refused(
        &legacy,
        &state,
        &scores(json!({"competition_id": "v4"}), f64::NAN),
        "not a finite number",
    );
    refused(
        &legacy,
        &state,
        &scores(json!({"competition_id": "v4", "entries": []}), 0.5),
        "one per score",
    );
    refused(
        &legacy,
        &state,
        &scores(
            json!({"competition_id": "v4", "entries": [{"block": "old"}]}),
            0.5,
        ),
        "block must be an integer",
    );
    refused(
        &legacy,
        &state,
        &scores(
            json!({"competition_id": "v4", "entries": [{"score": null}]}),
            0.5,
        ),
        "was null",
    );
    refused(
        &legacy,
        &state,
        &scores(
            json!({"competition_id": "v4", "entries": [{"hash": "x"}]}),
            0.5,
        ),
        "unexpected `hash`",
    );
    refused(
        &legacy,
        &state,
        &profile(
            1,
            json!({"competitions": [{"competition_id": "v4", "reward_percentage": -1.0}]}),
        ),
        "reward_percentage",
    );
    refused(
        &legacy,
        &state,
        &profile(
            1,
            json!({"competitions": [{"competition_id": "v4", "reward_percentage": 0.5},
                                    {"competition_id": "v4", "reward_percentage": 0.5}]}),
        ),
        "twice",
    );
    refused(
        &legacy,
        &state,
        &profile(1, json!({"competitions": "v4"})),
        "competitions",
    );
    refused(
        &legacy,
        &state,
        &decision(1, &[(0, -0.5)]),
        "finite and >= 0",
    );
    refused(
        &legacy,
        &state,
        &decision(1, &[(0, 0.5), (0, 0.5)]),
        "twice",
    );
    let mut mismatched = decision(1, &[(0, 0.5)]);
    if let Payload::WeightsComputed(computed) = &mut mismatched.payload {
        computed.raw_weight_bits.push(0);
    }
    refused(&legacy, &state, &mismatched, "raw weights");
    let mut shuffled = metagraph_of_size(3, 1);
    if let Payload::MetagraphObserved(observed) = &mut shuffled.payload {
        observed.neurons.swap(0, 2);
    }
    refused(&legacy, &state, &shuffled, "listed by uid");

    let reputation = OmegaReputation;
    let mut state = Default::default();
    reputation
        .apply(&mut state, 0, &metagraph_of_size(4, 0))
        .unwrap();
    refused(
        &reputation,
        &state,
        &external(SOURCE_REPUTATION, 1, vec![(9, 0.5)], json!({})),
        "uid 9",
    );
    refused(
        &reputation,
        &state,
        &external(SOURCE_REPUTATION, 1, vec![(1, 0.5), (1, 0.6)], json!({})),
        "two reputations",
    );
    refused(
        &reputation,
        &state,
        &external(SOURCE_REPUTATION, 1, vec![(1, f64::INFINITY)], json!({})),
        "not a finite number",
    );
    refused(
        &reputation,
        &state,
        &external(
            SOURCE_MODEL_SCORES,
            1,
            vec![(7, 0.5)],
            json!({"competition_id": "v4"}),
        ),
        "uid 7",
    );
    refused(
        &reputation,
        &state,
        &external(SOURCE_BASELINE, 1, vec![], json!({"baseline": 0.5})),
        "competition_id",
    );
    refused(
        &reputation,
        &state,
        &external(
            SOURCE_BASELINE,
            1,
            vec![],
            json!({"competition_id": "v4", "baseline": "high"}),
        ),
        "baseline",
    );
    refused(
        &reputation,
        &state,
        &profile(1, json!({"competition_id": 4})),
        "must be a string",
    );
    refused(&reputation, &state, &profile(1, json!([1])), "JSON object");
}
