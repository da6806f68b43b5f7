//! The loosh `evaluate` projection: a challenge round rebuilt from events gives the same
//! evaluation as the example's JSON input (after the roundings the event form imposes);
//! checkpoint/resume at any point gives the same state; unusable events are refused.

mod common;

use common::{account, assert_resume_everywhere, examples_dir, hyperparameters};

use std::collections::BTreeMap;

use serde_json::{Value, json};
use weightlog_replay::projection::loosh::EVALUATOR_EMISSION;
use weightlog_replay::projection::loosh_evaluate::{
    ENVIRONMENT, EVALUATOR_QUALITY, LooshEvaluate, LooshEvaluateState, PROMPT_EMBEDDING_UID,
};
use weightlog_replay::projection::{Projection, ProjectionCheckpoint, fold};
use weightlog_replay::run_json;
use weightlog_schema::Hash;
use weightlog_schema::event::*;

const MODEL: Hash = Hash([7; 32]);
const T0: u64 = 1_800_000_000_000;

fn neuron(uid: u16, coldkey: AccountId, ip: Option<&str>) -> Neuron {
    Neuron {
        uid,
        hotkey: account(u64::from(uid)),
        coldkey,
        stake_rao: 1_000_000_000,
        validator_permit: false,
        active: true,
        registration_block: 1,
        axon: ip.map(|ip| Axon {
            ip: ip.to_string(),
            port: 8091,
            protocol: 4,
            version: 1,
        }),
    }
}

fn metagraph(timestamp_ms: u64, block: u64, neurons: Vec<Neuron>) -> Event {
    Event::new(
        timestamp_ms,
        Payload::MetagraphObserved(MetagraphObserved {
            netuid: 78,
            block,
            block_hash: Hash([1; 32]),
            spec_version: 393,
            neurons,
            hyperparameters: hyperparameters(),
        }),
    )
}

fn log_opened(timestamp_ms: u64, parameters: Value) -> Event {
    let parameters = parameters.to_string();
    Event::new(
        timestamp_ms,
        Payload::LogOpened(LogOpened {
            log_id: LogId([3; 16]),
            netuid: 78,
            validator_hotkey: account(60_000),
            profile: "loosh".into(),
            parameters_hash: weightlog_schema::codec::parameters_hash_of(&parameters),
            parameters_json: parameters,
        }),
    )
}

fn challenge(timestamp_ms: u64, id: &str, environment: &str, targets: Vec<u16>) -> Event {
    Event::new(
        timestamp_ms,
        Payload::ChallengeIssued(ChallengeIssued {
            challenge_id: id.into(),
            environment: environment.into(),
            seed: 0,
            prompt: "Explain validator consensus.".into(),
            extra_json: "{}".into(),
            target_uids: targets,
            deadline_ms: timestamp_ms + 30_000,
        }),
    )
}

fn response(timestamp_ms: u64, id: &str, uid: u16, outcome: ResponseOutcome, ms: u64) -> Event {
    Event::new(
        timestamp_ms,
        Payload::ResponseReceived(ResponseReceived {
            challenge_id: id.into(),
            uid,
            hotkey: account(u64::from(uid)),
            outcome,
            latency_ms: ms,
            attempts: 1,
            miner_signature: None,
        }),
    )
}

fn ok(text: &str) -> ResponseOutcome {
    ResponseOutcome::Ok { body: text.into() }
}

fn embedding(timestamp_ms: u64, id: &str, uid: u16, quantised: &(f32, Vec<i8>)) -> Event {
    Event::new(
        timestamp_ms,
        Payload::EmbeddingComputed(EmbeddingComputed {
            challenge_id: id.into(),
            uid,
            model_hash: MODEL,
            scale: quantised.0,
            vector: quantised.1.clone(),
        }),
    )
}

fn evaluation(timestamp_ms: u64, id: &str, uid: u16, evaluator: &str, score: f64) -> Event {
    Event::new(
        timestamp_ms,
        Payload::EvaluationRecorded(EvaluationRecorded {
            challenge_id: id.into(),
            uid,
            score,
            metrics: vec![],
            evaluator: evaluator.into(),
            fuel_used: None,
        }),
    )
}

/// The event form of an embedding: i8 with a per-vector scale `max|x| / 127` (as f32),
/// `v = round(x / scale)` clamped to [-127, 127].
fn quantise(values: &[f64]) -> (f32, Vec<i8>) {
    let max = values
        .iter()
        .fold(0.0_f64, |max, value| max.max(value.abs()));
    let scale = (max / 127.0) as f32;
    if scale == 0.0 {
        return (0.0, vec![0; values.len()]);
    }
    let vector = values
        .iter()
        .map(|value| (value / f64::from(scale)).round().clamp(-127.0, 127.0) as i8)
        .collect();
    (scale, vector)
}

/// What the projection reads back: `vector[i] as f64 * scale as f64`.
fn dequantise(quantised: &(f32, Vec<i8>)) -> Vec<f64> {
    quantised
        .1
        .iter()
        .map(|value| f64::from(*value) * f64::from(quantised.0))
        .collect()
}

fn floats(value: &Value) -> Vec<f64> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn is_test_mode(text: &str) -> bool {
    text.trim().starts_with("[TEST MODE]")
}

/// The example's `evaluate` section as events, and the section as the JSON input to compare
/// with: hotkeys and coldkeys replaced by the SS58 addresses the events carry, and the two
/// roundings of the event form applied to the JSON first — embeddings quantised to i8 with a
/// per-vector scale (then read back as `v * scale`), response times rounded to integer ms.
fn as_events(section: &Value) -> (Vec<Event>, Value) {
    let id = "round-1";
    let responses = section["responses"].as_array().unwrap();
    let uids: Vec<u16> = responses
        .iter()
        .map(|r| r["uid"].as_u64().unwrap() as u16)
        .collect();
    let fixture_hotkey_uid: BTreeMap<&str, u16> = responses
        .iter()
        .zip(&uids)
        .map(|(r, uid)| (r["hotkey"].as_str().unwrap(), *uid))
        .collect();
    // Fixture coldkeys (not SS58) -> generated accounts; one account per distinct coldkey.
    let mut coldkeys: BTreeMap<String, AccountId> = BTreeMap::new();
    let node_map = section.get("node_map").filter(|map| !map.is_null());
    if let Some(map) = node_map {
        for entry in map.as_object().unwrap().values() {
            if let Some(coldkey) = entry[1].as_str() {
                let next = 50_000 + coldkeys.len() as u64;
                coldkeys
                    .entry(coldkey.to_string())
                    .or_insert_with(|| account(next));
            }
        }
    }
    // Nodes: responders take their node-map entry; others (and responders without one) get
    // no axon and a coldkey of their own, which no entity cap groups.
    let max_uid = uids.iter().copied().max().unwrap_or(0) + 1;
    let mut neurons: Vec<Neuron> = (0..=max_uid)
        .map(|uid| neuron(uid, account(20_000 + u64::from(uid)), None))
        .collect();
    if let Some(map) = node_map {
        for (hotkey, entry) in map.as_object().unwrap() {
            let Some(&uid) = fixture_hotkey_uid.get(hotkey.as_str()) else {
                continue;
            };
            let coldkey = entry[1]
                .as_str()
                .map_or(account(20_000 + u64::from(uid)), |c| coldkeys[c]);
            neurons[usize::from(uid)] = neuron(uid, coldkey, entry[0].as_str());
        }
    }

    let mut events = Vec::new();
    let mut parameters = json!({"alpha": 0.3});
    if let Some(config) = section.get("config").filter(|c| !c.is_null()) {
        parameters["evaluate_config"] = config.clone();
    }
    events.push(log_opened(T0, parameters));
    events.push(metagraph(T0 + 1, 5_000_000, neurons));
    // A challenge of another environment, and a late answer to it: ignored.
    events.push(challenge(T0 + 2, "other-env", "affine:sat", vec![]));
    let mut targets = uids.clone();
    targets.push(max_uid);
    events.push(challenge(T0 + 3, id, ENVIRONMENT, targets));
    let prompt = quantise(&floats(&section["prompt_embedding"]));
    events.push(embedding(T0 + 4, id, PROMPT_EMBEDDING_UID, &prompt));
    let mut remapped_responses = Vec::new();
    let mut timestamp = T0 + 5;
    for (response, &uid) in responses.iter().zip(&uids) {
        let text = response["text"].as_str().unwrap();
        let latency = response["response_time_ms"].as_f64().unwrap().round() as u64;
        events.push(response_event(timestamp, id, uid, text, latency));
        let quantised = quantise(&floats(&response["embedding"]));
        events.push(embedding(timestamp + 1, id, uid, &quantised));
        timestamp += 2;
        let mut remapped = response.clone();
        remapped["hotkey"] = json!(account(u64::from(uid)).to_ss58());
        remapped["embedding"] = json!(dequantise(&quantised));
        remapped["response_time_ms"] = json!(latency as f64);
        remapped_responses.push(remapped);
    }
    // The one target that did not answer: an error outcome, which does not count.
    events.push(response(
        timestamp,
        id,
        max_uid,
        ResponseOutcome::Error {
            message: "timeout".into(),
        },
        30_000,
    ));
    events.push(response(timestamp + 1, "other-env", uids[0], ok("x"), 5));
    timestamp += 2;
    // Tier-4 scores, indexed over the responses that are not [TEST MODE].
    if let Some(scores) = section["quality_scores"].as_array() {
        let scored = responses
            .iter()
            .zip(&uids)
            .filter(|(r, _)| !is_test_mode(r["text"].as_str().unwrap()));
        for ((_, &uid), score) in scored.zip(scores) {
            events.push(evaluation(
                timestamp,
                id,
                uid,
                EVALUATOR_QUALITY,
                score.as_f64().unwrap(),
            ));
            timestamp += 1;
        }
    }

    let mut remapped = section.clone();
    remapped["prompt_embedding"] = json!(dequantise(&prompt));
    remapped["responses"] = json!(remapped_responses);
    if let Some(map) = node_map {
        remapped["node_map"] = Value::Object(
            map.as_object()
                .unwrap()
                .iter()
                .map(|(hotkey, entry)| {
                    let hotkey = match fixture_hotkey_uid.get(hotkey.as_str()) {
                        Some(uid) => account(u64::from(*uid)).to_ss58(),
                        None => hotkey.clone(),
                    };
                    let coldkey = entry[1]
                        .as_str()
                        .map_or(Value::Null, |c| json!(coldkeys[c].to_ss58()));
                    (hotkey, json!([entry[0], coldkey]))
                })
                .collect(),
        );
    }
    (events, json!({ "evaluate": remapped }))
}

fn response_event(timestamp_ms: u64, id: &str, uid: u16, text: &str, latency: u64) -> Event {
    response(timestamp_ms, id, uid, ok(text), latency)
}

fn fold_all(events: &[Event]) -> Result<LooshEvaluateState, String> {
    let mut state = LooshEvaluateState::default();
    fold(
        &LooshEvaluate,
        &mut state,
        events.iter().enumerate().map(|(seq, e)| (seq as u64, e)),
    )
    .map_err(|error| error.to_string())?;
    Ok(state)
}

#[test]
fn loosh_evaluate_from_events_equals_evaluate_from_json() {
    let mut checked = 0;
    for name in ["loosh", "gen-loosh_evaluate-1", "gen-loosh_evaluate-2"] {
        let input: Value = serde_json::from_str(
            &std::fs::read_to_string(examples_dir().join(format!("{name}.input.json"))).unwrap(),
        )
        .unwrap();
        let expected: Value = serde_json::from_str(
            &std::fs::read_to_string(examples_dir().join(format!("{name}.expected.json"))).unwrap(),
        )
        .unwrap();
        let (events, remapped) = as_events(&input["evaluate"]);
        let from_json = run_json(&remapped).unwrap();
        let state = fold_all(&events).unwrap();
        assert_eq!(state.rounds.len(), 1, "{name}: one open round");
        let projected = LooshEvaluate.input(&state).unwrap();
        // The round's data is exactly the (rounded, remapped) JSON's.
        for key in ["prompt_embedding", "responses"] {
            assert_eq!(
                projected["evaluate"][key], remapped["evaluate"][key],
                "{name}: {key}"
            );
        }
        assert_eq!(
            LooshEvaluate.input_for(&state, "round-1").unwrap(),
            projected,
            "{name}"
        );
        let from_events = LooshEvaluate.output(&state).unwrap();
        // Bit-identical: the whole evaluate output (emissions, individual scores, theta,
        // kept labels, status), compared as JSON numbers (f64 equality).
        assert_eq!(from_events, from_json, "{name}");
        // The roundings leave the example's decisions as they were.
        let outcome = &from_events["evaluate"];
        for key in ["status", "consensus_achieved", "kept", "top_label"] {
            assert_eq!(outcome[key], expected["evaluate"][key], "{name}: {key}");
        }
        assert!(
            outcome["emissions"]
                .as_object()
                .unwrap()
                .keys()
                .all(|hotkey| AccountId::from_ss58(hotkey).is_ok()),
            "{name}: emissions are keyed by metagraph hotkeys"
        );
        checked += 1;
    }
    assert_eq!(checked, 3);
}

/// A varied, valid stream: rounds with and without quality scores, error outcomes, other
/// environments, metagraph and profile changes, rounds closed by their emissions and rounds
/// dropped by age.
fn stream(rounds: u64) -> Vec<Event> {
    let mut seed = 0x1005_u64;
    let mut next = move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        seed >> 11
    };
    let vector = |next: &mut dyn FnMut() -> u64| -> Vec<f64> {
        (0..12)
            .map(|_| (next() % 2001) as f64 / 1000.0 - 1.0)
            .collect()
    };
    let nodes = |n: u16, salt: u64| -> Vec<Neuron> {
        (0..n)
            .map(|uid| {
                let ip = format!("10.0.0.{}", (u64::from(uid) + salt) % 5);
                neuron(uid, account(20_000 + u64::from(uid) % 7), Some(&ip))
            })
            .collect()
    };
    let mut events = vec![
        log_opened(T0, json!({"evaluate_config": {"lof_neighbors": 2}})),
        metagraph(T0, 1, nodes(16, 0)),
    ];
    let mut timestamp = T0;
    for round in 0..rounds {
        timestamp += 3 * 3_600_000;
        let id = format!("c{round}");
        if next() % 3 == 0 {
            events.push(metagraph(timestamp, round + 2, nodes(16, next() % 5)));
        }
        if next() % 4 == 0 {
            let parameters =
                json!({"evaluate_config": {"threshold_min": 0.6 + (next() % 3) as f64 / 10.0}})
                    .to_string();
            events.push(Event::new(
                timestamp,
                Payload::ProfileChanged(ProfileChanged {
                    profile: "loosh".into(),
                    parameters_hash: weightlog_schema::codec::parameters_hash_of(&parameters),
                    parameters_json: parameters,
                }),
            ));
        }
        events.push(challenge(timestamp, &id, ENVIRONMENT, vec![]));
        events.push(challenge(timestamp, &format!("x{round}"), "other", vec![]));
        events.push(embedding(
            timestamp + 1,
            &id,
            PROMPT_EMBEDDING_UID,
            &quantise(&vector(&mut next)),
        ));
        let mut uids: Vec<u16> = Vec::new();
        while uids.len() < 5 {
            let uid = (next() % 16) as u16;
            if !uids.contains(&uid) {
                uids.push(uid);
            }
        }
        let with_quality = next() % 2 == 0;
        for (index, &uid) in uids.iter().enumerate() {
            let at = timestamp + 2 + index as u64;
            if index == 4 && next() % 2 == 0 {
                let error = ResponseOutcome::Error {
                    message: "refused".into(),
                };
                events.push(response(at, &id, uid, error, 900));
                continue;
            }
            let text = format!("Answer {round}-{index}: consensus needs stake. Blocks agree.");
            events.push(response_event(at, &id, uid, &text, 100 + next() % 5000));
            events.push(embedding(at, &id, uid, &quantise(&vector(&mut next))));
            if with_quality {
                let score = (next() % 1000) as f64 / 1000.0;
                events.push(evaluation(at, &id, uid, EVALUATOR_QUALITY, score));
            }
        }
        if round % 3 == 1 {
            // The previous round's emissions close it.
            let previous = format!("c{}", round - 1);
            events.push(evaluation(
                timestamp + 9,
                &previous,
                0,
                EVALUATOR_EMISSION,
                0.5,
            ));
        }
    }
    events
}

#[test]
fn resuming_from_a_checkpoint_at_any_point_gives_the_same_state() {
    let events = stream(30);
    assert!(events.len() >= 100, "{} events", events.len());
    let projection = LooshEvaluate;
    let whole = assert_resume_everywhere(&projection, &events);
    assert!(
        !whole.rounds.is_empty() && whole.rounds.len() < 30,
        "some rounds closed or aged out, some open"
    );
    // The newest round evaluates.
    let output = projection.output(&whole).unwrap();
    assert!(output["evaluate"]["status"].is_string(), "{output}");
    let mut renamed = ProjectionCheckpoint::capture::<LooshEvaluate>(&whole, 0).unwrap();
    renamed.name = "loosh/weights".into();
    assert!(renamed.restore::<LooshEvaluate>().is_err());
}

/// A small valid prefix: profile, metagraph of 4 nodes, an open round `c` targeting 0..3
/// with its prompt embedding (4 dimensions) and uid 1's response.
fn prefix() -> Vec<Event> {
    let nodes = (0..4)
        .map(|uid| neuron(uid, account(20_000 + u64::from(uid)), Some("10.0.0.1")))
        .collect();
    vec![
        log_opened(T0, json!({})),
        metagraph(T0, 1, nodes),
        challenge(T0 + 1, "c", ENVIRONMENT, vec![0, 1, 2, 3]),
        embedding(T0 + 2, "c", PROMPT_EMBEDDING_UID, &(0.01, vec![1, 2, 3, 4])),
        response_event(T0 + 3, "c", 1, "An answer.", 700),
    ]
}

/// The error folding `extra` after the prefix gives.
fn refusal(extra: Event) -> String {
    let mut events = prefix();
    let seq = events.len();
    events.push(extra);
    let error = fold_all(&events).unwrap_err();
    assert!(error.contains(&format!("event {seq}: ")), "{error}");
    error
}

#[test]
fn events_the_projection_cannot_use_are_refused() {
    let expect = |error: String, needle: &str| {
        assert!(error.contains(needle), "{error} (wanted `{needle}`)");
    };
    // Rounds that are not open.
    expect(
        refusal(embedding(T0 + 4, "nope", 1, &(0.01, vec![1, 2, 3, 4]))),
        "`nope`, which is not an open loosh round",
    );
    expect(
        refusal(evaluation(T0 + 4, "nope", 1, EVALUATOR_QUALITY, 0.5)),
        "not an open loosh round",
    );
    // Embeddings and scores before (or without) the response.
    expect(
        refusal(embedding(T0 + 4, "c", 2, &(0.01, vec![1, 2, 3, 4]))),
        "no successful response from it",
    );
    expect(
        refusal(evaluation(T0 + 4, "c", 2, EVALUATOR_QUALITY, 0.5)),
        "no successful response from it",
    );
    // Inconsistent embeddings.
    expect(
        refusal(embedding(T0 + 4, "c", 1, &(0.01, vec![1, 2, 3]))),
        "has 3 dimensions, but round `c` has 4",
    );
    let mut other_model = embedding(T0 + 4, "c", 1, &(0.01, vec![1, 2, 3, 4]));
    if let Payload::EmbeddingComputed(e) = &mut other_model.payload {
        e.model_hash = Hash([9; 32]);
    }
    expect(refusal(other_model), "comes from model");
    expect(
        refusal(embedding(T0 + 4, "c", 1, &(f32::NAN, vec![1, 2, 3, 4]))),
        "scale must be finite",
    );
    expect(
        refusal(embedding(
            T0 + 4,
            "c",
            PROMPT_EMBEDDING_UID,
            &(0.01, vec![1, 2, 3, 4]),
        )),
        "already has a prompt embedding",
    );
    expect(
        refusal(evaluation(T0 + 4, "c", 1, EVALUATOR_QUALITY, f64::INFINITY)),
        "must be finite",
    );
    // Responses that contradict the metagraph or the challenge.
    let mut wrong_hotkey = response_event(T0 + 4, "c", 2, "x", 5);
    if let Payload::ResponseReceived(r) = &mut wrong_hotkey.payload {
        r.hotkey = account(999);
    }
    expect(refusal(wrong_hotkey), "but the newest metagraph has");
    expect(
        refusal(response_event(T0 + 4, "c", 9, "x", 5)),
        "uid 9 is not in the newest metagraph",
    );
    expect(
        refusal(response_event(T0 + 4, "c", 1, "again", 5)),
        "already answered",
    );
    let mut untargeted = prefix();
    untargeted[2] = challenge(T0 + 1, "c", ENVIRONMENT, vec![0, 2]);
    untargeted.truncate(4);
    untargeted.push(response_event(T0 + 3, "c", 1, "x", 5));
    let error = fold_all(&untargeted).unwrap_err();
    assert!(error.contains("event 4: "), "{error}");
    expect(error, "did not target it");
    expect(
        refusal(challenge(T0 + 4, "c", ENVIRONMENT, vec![])),
        "issued twice",
    );
    // Profile parameters the mechanism would refuse.
    let bad_config = Event::new(
        T0 + 4,
        Payload::ProfileChanged(ProfileChanged {
            profile: "loosh".into(),
            parameters_json: json!({"evaluate_config": {"no_such_knob": 1}}).to_string(),
            parameters_hash: Hash([0; 32]),
        }),
    );
    expect(refusal(bad_config), "no_such_knob");

    // Rounds that cannot be evaluated yet are refused by `input`, naming the round.
    let state = fold_all(&prefix()).unwrap();
    let mut events = prefix();
    events.push(response_event(T0 + 4, "c", 2, "Another answer.", 800));
    events.push(embedding(T0 + 5, "c", 1, &(0.01, vec![1, 2, 3, 5])));
    events.push(embedding(T0 + 5, "c", 2, &(0.01, vec![2, 2, 3, 5])));
    events.push(evaluation(T0 + 6, "c", 1, EVALUATOR_QUALITY, 0.7));
    let partial = fold_all(&events).unwrap();
    let error = LooshEvaluate.input(&partial).unwrap_err().to_string();
    assert!(error.contains("not for uids [2]"), "{error}");
    events.push(evaluation(T0 + 7, "c", 2, EVALUATOR_QUALITY, 0.6));
    let complete = fold_all(&events).unwrap();
    let input = LooshEvaluate.input(&complete).unwrap();
    assert_eq!(input["evaluate"]["quality_scores"], json!([0.7, 0.6]));
    LooshEvaluate.output(&complete).unwrap();
    let error = LooshEvaluate.input(&state).unwrap_err().to_string();
    assert!(error.contains("uid 1 has no embedding"), "{error}");
    let mut no_prompt = prefix();
    no_prompt.remove(3);
    let error = LooshEvaluate
        .input(&fold_all(&no_prompt).unwrap())
        .unwrap_err()
        .to_string();
    assert!(error.contains("no prompt embedding"), "{error}");
    let error = LooshEvaluate
        .input(&LooshEvaluateState::default())
        .unwrap_err()
        .to_string();
    assert!(error.contains("no open loosh round"), "{error}");
    assert!(LooshEvaluate.input_for(&complete, "nope").is_err());
    // Emissions close the round.
    events.push(evaluation(T0 + 8, "c", 1, EVALUATOR_EMISSION, 1.0));
    assert!(fold_all(&events).unwrap().rounds.is_empty());
}
