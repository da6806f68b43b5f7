//! Projections over events: checkpoint/resume at any point gives the same state hash; a
//! changed checkpoint is refused; and the same data given as events or as the JSON input of
//! specs/mechanism-io gives the same weights.

mod common;

use common::{account, assert_resume_everywhere, examples_dir, external, hyperparameters};

use std::collections::BTreeMap;

use serde_json::{Value, json};
use weightlog_replay::projection::omega::{
    MECHANISM, OmegaTwoPool, SOURCE_BASELINE, SOURCE_MODEL_SCORES, SOURCE_REPUTATION,
};
use weightlog_replay::projection::{Projection, ProjectionCheckpoint, fold};
use weightlog_replay::run_json;
use weightlog_schema::Hash;
use weightlog_schema::event::*;

fn metagraph(n: u16, block: u64) -> Event {
    let neurons = (0..n)
        .map(|uid| Neuron {
            uid,
            hotkey: account(u64::from(uid)),
            coldkey: account(10_000 + u64::from(uid)),
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

fn decision(block: u64, weights: &[(u16, f64)]) -> Event {
    Event::new(
        block,
        Payload::WeightsComputed(WeightsComputed {
            block,
            mechanism: MECHANISM.into(),
            parameters_hash: Hash([0; 32]),
            log_size: block,
            uids: weights.iter().map(|(uid, _)| *uid).collect(),
            raw_weight_bits: weights.iter().map(|(_, weight)| weight.to_bits()).collect(),
            u16_uids: Vec::new(),
            u16_weights: Vec::new(),
        }),
    )
}

/// A varied stream: metagraph changes, several rounds of scores, baselines, reputations
/// and decisions, plus events of other kinds the projection ignores.
fn stream(length: u64) -> Vec<Event> {
    let mut seed = 0x5eed_u64;
    let mut next = move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        seed >> 11
    };
    let mut events = vec![metagraph(120, 0)];
    for block in 1..length {
        let event = match next() % 6 {
            0 => metagraph(112 + (next() % 16) as u16, block),
            1 => external(
                SOURCE_MODEL_SCORES,
                block,
                (0..20)
                    .map(|_| ((next() % 112) as u16, (next() % 1000) as f64 / 1000.0))
                    .collect(),
                json!({"competition_id": if next() % 4 == 0 { "v2" } else { "v4" }}),
            ),
            2 => external(
                SOURCE_BASELINE,
                block,
                vec![],
                json!({"competition_id": "v4", "baseline": 0.5}),
            ),
            3 => external(
                SOURCE_REPUTATION,
                block,
                (0..30)
                    .map(|uid| (uid, (next() % 100) as f64 / 100.0))
                    .collect(),
                json!({}),
            ),
            4 => decision(block, &[(1, 0.25), (111, 0.75)]),
            _ => weightlog_schema::samples::sample(EventKind::ChallengeIssued, block),
        };
        events.push(event);
    }
    events
}

#[test]
fn resuming_from_a_checkpoint_at_any_point_gives_the_same_state() {
    assert_resume_everywhere(&OmegaTwoPool, &stream(300));
}

#[test]
fn a_changed_checkpoint_is_refused() {
    let events = stream(50);
    let mut state = Default::default();
    fold(
        &OmegaTwoPool,
        &mut state,
        events.iter().enumerate().map(|(seq, e)| (seq as u64, e)),
    )
    .unwrap();
    let checkpoint = ProjectionCheckpoint::capture::<OmegaTwoPool>(&state, 50).unwrap();
    let mut changed = checkpoint.clone();
    let last = changed.state.len() - 1;
    changed.state[last] ^= 1;
    let error = changed.restore::<OmegaTwoPool>().unwrap_err().to_string();
    assert!(error.contains("changed"), "{error}");
    let mut renamed = checkpoint.clone();
    renamed.name = "loosh/weights".into();
    assert!(renamed.restore::<OmegaTwoPool>().is_err());
    let mut bytes = checkpoint.to_bytes().unwrap();
    bytes.push(0);
    let refusal = |bytes: &[u8]| {
        ProjectionCheckpoint::from_bytes(bytes)
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        refusal(&bytes),
        "invalid input: projection checkpoint has trailing bytes"
    );
    assert_eq!(
        refusal(&[1, 2, 3]),
        "invalid input: not a projection checkpoint: the bytes end too soon"
    );
    // A state cut short under a hash that matches it: the hash check passes, decoding
    // says why it fails.
    let mut cut = checkpoint.clone();
    cut.state.truncate(cut.state.len() / 2);
    cut.state_hash = Hash(*blake3::hash(&cut.state).as_bytes());
    assert_eq!(
        cut.restore::<OmegaTwoPool>().unwrap_err().to_string(),
        "invalid input: checkpoint state does not decode: the bytes end too soon"
    );
}

#[test]
fn events_the_projection_cannot_use_are_refused() {
    let mut state = Default::default();
    let projection = OmegaTwoPool;
    projection.apply(&mut state, 0, &metagraph(4, 0)).unwrap();
    let bad_extra = external(SOURCE_BASELINE, 1, vec![], json!({"baseline": 0.5}));
    assert!(
        projection
            .apply(&mut state, 1, &bad_extra)
            .unwrap_err()
            .to_string()
            .contains("competition_id")
    );
    let unknown_uid = external(SOURCE_REPUTATION, 2, vec![(9, 0.5)], json!({}));
    assert!(
        projection
            .apply(&mut state, 2, &unknown_uid)
            .unwrap_err()
            .to_string()
            .contains("uid 9")
    );
}

/// The example's data as events, and the example's JSON with its hotkeys replaced by the
/// SS58 addresses those events carry (fixture hotkeys are not all valid SS58).
fn as_events(input: &Value) -> (Vec<Event>, Value) {
    let n = input["n"].as_u64().unwrap();
    let fixture_hotkeys: Vec<String> = serde_json::from_value(input["hotkeys"].clone()).unwrap();
    let ss58: Vec<String> = (0..n).map(|uid| account(uid).to_ss58()).collect();
    let by_fixture: BTreeMap<&str, usize> = fixture_hotkeys
        .iter()
        .enumerate()
        .map(|(uid, hotkey)| (hotkey.as_str(), uid))
        .collect();
    let competition = input["competition_id"].as_str().unwrap_or("v4").to_string();

    let mut events = Vec::new();
    let parameters = json!({ "competition_id": input["competition_id"] }).to_string();
    events.push(Event::new(
        0,
        Payload::ProfileChanged(ProfileChanged {
            profile: "omega".into(),
            parameters_hash: weightlog_schema::codec::parameters_hash_of(&parameters),
            parameters_json: parameters,
        }),
    ));
    events.push(metagraph(n as u16, 1));
    let mut round = Vec::new();
    for (uid, entries) in input["all_model_scores"].as_object().unwrap() {
        let first = entries
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["competition_id"] == competition.as_str());
        if let Some(score) = first.and_then(|entry| entry["score"].as_f64()) {
            round.push((uid.parse::<u16>().unwrap(), score));
        }
    }
    events.push(external(
        SOURCE_MODEL_SCORES,
        2,
        round,
        json!({ "competition_id": competition }),
    ));
    events.push(external(
        SOURCE_BASELINE,
        3,
        vec![],
        json!({ "competition_id": competition, "baseline": input["baseline"] }),
    ));
    let mut reputations = Vec::new();
    let mut remapped_reputations = serde_json::Map::new();
    if let Some(map) = input["reputations"].as_object() {
        for (hotkey, entry) in map {
            if let (Some(&uid), Some(reputation)) = (
                by_fixture.get(hotkey.as_str()),
                entry["reputation"].as_f64(),
            ) {
                reputations.push((uid as u16, reputation));
                remapped_reputations.insert(ss58[uid].clone(), json!({ "reputation": reputation }));
            }
        }
    }
    events.push(external(SOURCE_REPUTATION, 4, reputations, json!({})));

    let mut remapped = input.clone();
    remapped["hotkeys"] = json!(ss58);
    remapped["reputations"] = Value::Object(remapped_reputations);
    (events, remapped)
}

#[test]
fn omega_weights_from_events_equal_weights_from_json() {
    let mut checked = 0;
    for name in [
        "omega_two_pool",
        "gen-omega_two_pool-1",
        "gen-omega_two_pool-2",
    ] {
        let input: Value = serde_json::from_str(
            &std::fs::read_to_string(examples_dir().join(format!("{name}.input.json"))).unwrap(),
        )
        .unwrap();
        let (events, remapped) = as_events(&input);
        let from_json = run_json(&remapped).unwrap();
        let mut state = Default::default();
        fold(
            &OmegaTwoPool,
            &mut state,
            events.iter().enumerate().map(|(seq, e)| (seq as u64, e)),
        )
        .unwrap();
        let from_events = OmegaTwoPool.output(&state).unwrap();
        assert_eq!(from_events["u16"], from_json["u16"], "{name}");
        assert_eq!(from_events["weights"], from_json["weights"], "{name}");
        checked += 1;
    }
    assert_eq!(checked, 3);
}

mod loosh_weights {
    use super::*;
    use weightlog_replay::projection::loosh::{EVALUATOR_EMISSION, LooshWeights, SOURCE_SYBIL};

    const HOUR_MS: u64 = 3_600_000;
    const NOW_MS: u64 = 1_800_000_000_000;
    const BLOCK: u64 = 5_000_000;

    fn neuron(uid: u16, serving: bool, stake_rao: u64) -> Neuron {
        Neuron {
            uid,
            hotkey: account(u64::from(uid)),
            coldkey: account(20_000 + u64::from(uid)),
            stake_rao,
            validator_permit: false,
            active: true,
            registration_block: 1,
            axon: serving.then(|| Axon {
                ip: format!("10.0.{}.{}", uid / 256, uid % 256),
                port: 8091,
                protocol: 4,
                version: 1,
            }),
        }
    }

    /// The example's `weights` section as events, and the section with its hotkeys replaced
    /// by the SS58 addresses those events carry.
    fn as_events(section: &Value) -> (Vec<Event>, Value) {
        let serving: Vec<(u16, String)> = section["serving"]
            .as_array()
            .unwrap()
            .iter()
            .map(|node| {
                (
                    node["uid"].as_u64().unwrap() as u16,
                    node["hotkey"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        // Every hotkey the section names gets a uid: serving ones keep theirs, the others
        // get fresh uids and no axon.
        let mut uid_of: BTreeMap<String, u16> = serving
            .iter()
            .map(|(uid, hotkey)| (hotkey.clone(), *uid))
            .collect();
        let mut next_uid = serving.iter().map(|(uid, _)| *uid).max().unwrap_or(0) + 1;
        let mut named: Vec<String> = Vec::new();
        for evaluation in section["evaluations"].as_array().unwrap() {
            if let Some(emissions) = evaluation["emissions"].as_object() {
                named.extend(emissions.keys().cloned());
            }
        }
        for key in ["fresh", "sybil_scores"] {
            if let Some(map) = section[key].as_object() {
                named.extend(map.keys().cloned());
            }
        }
        for hotkey in named {
            uid_of.entry(hotkey).or_insert_with(|| {
                next_uid += 1;
                next_uid - 1
            });
        }
        let validator_uid = next_uid;
        let ss58 = |hotkey: &str| account(u64::from(uid_of[hotkey])).to_ss58();
        let serving_uids: Vec<u16> = serving.iter().map(|(uid, _)| *uid).collect();
        let mut neurons: Vec<Neuron> = (0..=validator_uid)
            .map(|uid| neuron(uid, serving_uids.contains(&uid), 1_000_000_000))
            .collect();
        neurons[usize::from(validator_uid)] = neuron(validator_uid, true, 5_000 * 1_000_000_000);
        let metagraph_at = |timestamp_ms: u64| {
            let mut event = metagraph(0, BLOCK);
            event.timestamp_ms = timestamp_ms;
            if let Payload::MetagraphObserved(observed) = &mut event.payload {
                observed.neurons = neurons.clone();
            }
            event
        };

        let mut events = Vec::new();
        let parameters = match section.get("alpha") {
            Some(alpha) if !alpha.is_null() => json!({ "alpha": alpha }).to_string(),
            _ => "{}".to_string(),
        };
        events.push(Event::new(
            NOW_MS - 30 * HOUR_MS,
            Payload::LogOpened(LogOpened {
                log_id: LogId([3; 16]),
                netuid: 78,
                validator_hotkey: account(u64::from(validator_uid)),
                profile: "loosh".into(),
                parameters_hash: weightlog_schema::codec::parameters_hash_of(&parameters),
                parameters_json: parameters,
            }),
        ));
        events.push(metagraph_at(NOW_MS - 29 * HOUR_MS));
        let gap = match section["mode"].as_str().unwrap() {
            "NORMAL" => Some(100),
            "DEGRADED" => Some(4_200),
            _ => None,
        };
        if let Some(gap) = gap {
            events.push(Event::new(
                NOW_MS - 28 * HOUR_MS,
                Payload::WeightsSubmitted(WeightsSubmitted {
                    decision_seq: 0,
                    call: WeightsCall::SetMechanismWeights,
                    extrinsic_hash: None,
                    reveal_round: None,
                    outcome: SubmissionOutcome::Included { block: BLOCK - gap },
                    spec_version: None,
                }),
            ));
        }
        // Fresh miners answered an hour ago; stale ones 27 hours ago (outside both windows).
        if let Some(fresh) = section["fresh"].as_object() {
            for (hotkey, is_fresh) in fresh {
                let age = if is_fresh.as_bool().unwrap() {
                    HOUR_MS
                } else {
                    27 * HOUR_MS
                };
                let uid = uid_of[hotkey.as_str()];
                events.push(Event::new(
                    NOW_MS - age,
                    Payload::ResponseReceived(ResponseReceived {
                        challenge_id: format!("fresh-{uid}"),
                        uid,
                        hotkey: account(u64::from(uid)),
                        outcome: ResponseOutcome::Ok {
                            body: "answer".into(),
                        },
                        latency_ms: 800,
                        attempts: 1,
                        miner_signature: None,
                    }),
                ));
            }
        }
        events.sort_by_key(|event| event.timestamp_ms);
        let evaluations = section["evaluations"].as_array().unwrap();
        for (index, evaluation) in evaluations.iter().enumerate() {
            let Some(emissions) = evaluation["emissions"].as_object() else {
                continue;
            };
            let timestamp_ms = NOW_MS - HOUR_MS + index as u64;
            for (hotkey, emission) in emissions {
                events.push(Event::new(
                    timestamp_ms,
                    Payload::EvaluationRecorded(EvaluationRecorded {
                        challenge_id: format!("round-{index}"),
                        uid: uid_of[hotkey.as_str()],
                        score: emission.as_f64().unwrap(),
                        metrics: vec![],
                        evaluator: EVALUATOR_EMISSION.into(),
                        fuel_used: None,
                    }),
                ));
            }
        }
        if let Some(sybil) = section["sybil_scores"].as_object() {
            let scores = sybil
                .iter()
                .map(|(hotkey, score)| (uid_of[hotkey.as_str()], score.as_f64().unwrap()))
                .collect();
            events.push(external(SOURCE_SYBIL, BLOCK, scores, json!({})));
            events.last_mut().unwrap().timestamp_ms = NOW_MS - 1;
        }
        // The newest event sets "now".
        events.push(metagraph_at(NOW_MS));

        let remap_keys = |value: &Value| -> Value {
            match value.as_object() {
                Some(map) => Value::Object(
                    map.iter()
                        .map(|(hotkey, v)| (ss58(hotkey), v.clone()))
                        .collect(),
                ),
                None => value.clone(),
            }
        };
        let mut remapped = section.clone();
        // Upstream lists serving miners in the chain's uid order, as the projection does;
        // the generated examples list them shuffled, which changes the last bits of sums.
        let mut serving = serving.clone();
        serving.sort_by_key(|(uid, _)| *uid);
        remapped["serving"] = json!(
            serving
                .iter()
                .map(|(uid, hotkey)| json!({"uid": uid, "hotkey": ss58(hotkey)}))
                .collect::<Vec<_>>()
        );
        remapped["fresh"] = remap_keys(&section["fresh"]);
        remapped["sybil_scores"] = remap_keys(&section["sybil_scores"]);
        remapped["evaluations"] = json!(
            evaluations
                .iter()
                .map(|evaluation| json!({"emissions": remap_keys(&evaluation["emissions"])}))
                .collect::<Vec<_>>()
        );
        (events, json!({ "weights": remapped }))
    }

    /// uid -> (u16 weight, raw weight) of a weights output; u16 is 0 where dropped.
    fn by_uid(output: &Value) -> BTreeMap<u64, (u64, Value)> {
        let weights = &output["weights"];
        let u16_uids = weights["u16"]["uids"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let u16_of = |uid: &Value| {
            u16_uids
                .iter()
                .position(|candidate| candidate == uid)
                .map_or(0, |index| {
                    weights["u16"]["weights"][index].as_u64().unwrap()
                })
        };
        let uids = weights["uids"].as_array().cloned().unwrap_or_default();
        uids.iter()
            .enumerate()
            .map(|(index, uid)| {
                (
                    uid.as_u64().unwrap(),
                    (u16_of(uid), weights["weights"][index].clone()),
                )
            })
            .collect()
    }

    #[test]
    fn loosh_weights_from_events_equal_weights_from_json() {
        let mut checked = 0;
        for name in ["loosh", "gen-loosh_weights-1", "gen-loosh_weights-2"] {
            let input: Value = serde_json::from_str(
                &std::fs::read_to_string(examples_dir().join(format!("{name}.input.json")))
                    .unwrap(),
            )
            .unwrap();
            let (events, remapped) = as_events(&input["weights"]);
            let from_json = run_json(&remapped).unwrap();
            let mut state = Default::default();
            fold(
                &LooshWeights,
                &mut state,
                events.iter().enumerate().map(|(seq, e)| (seq as u64, e)),
            )
            .unwrap();
            let projected_input = LooshWeights.input(&state).unwrap();
            assert_eq!(
                projected_input["weights"]["mode"], input["weights"]["mode"],
                "{name}"
            );
            let from_events = LooshWeights.output(&state).unwrap();
            let expected = by_uid(&from_json);
            assert!(
                expected.values().any(|(u16_weight, _)| *u16_weight > 0),
                "{name}: the example sets weights"
            );
            assert_eq!(by_uid(&from_events), expected, "{name}");
            assert_eq!(
                from_events["weights"]["status"], from_json["weights"]["status"],
                "{name}"
            );
            checked += 1;
        }
        assert_eq!(checked, 3);
    }

    #[test]
    fn old_rounds_leave_the_state() {
        let (events, _) = as_events(&json!({
            "evaluations": [{"emissions": {"a": 0.5}}], "mode": "NORMAL",
            "fresh": {"a": true}, "serving": [{"uid": 1, "hotkey": "a"}],
        }));
        let mut state = Default::default();
        fold(
            &LooshWeights,
            &mut state,
            events.iter().enumerate().map(|(seq, e)| (seq as u64, e)),
        )
        .unwrap();
        assert_eq!(state.rounds.len(), 1);
        let mut later = metagraph(2, BLOCK);
        later.timestamp_ms = NOW_MS + 25 * HOUR_MS;
        LooshWeights
            .apply(&mut state, events.len() as u64, &later)
            .unwrap();
        assert!(
            state.rounds.is_empty(),
            "a round older than the 24 h lookback is dropped"
        );
    }
}
