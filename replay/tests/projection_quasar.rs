//! The quasar validator projection: the examples of specs/mechanism-io given as events give
//! the same weights as their JSON input; checkpoint/resume at any point gives the same state
//! hash; events the projection cannot use are refused.

mod common;

use common::{
    account, assert_resume_everywhere, examples_dir, indexed,
    quasar::{challenge, response, truth},
};

use serde_json::{Value, json};
use weightlog_replay::projection::quasar::{EVALUATOR_ACCURACY, PROFILE, QuasarValidator, U16_MAX};
use weightlog_replay::projection::{Projection, fold};
use weightlog_replay::run_json;
use weightlog_schema::Hash;
use weightlog_schema::event::*;

fn profile(timestamp_ms: u64, parameters: Value) -> Event {
    let parameters = parameters.to_string();
    Event::new(
        timestamp_ms,
        Payload::LogOpened(LogOpened {
            log_id: LogId([7; 16]),
            netuid: 24,
            validator_hotkey: account(99_999),
            profile: PROFILE.into(),
            parameters_hash: weightlog_schema::codec::parameters_hash_of(&parameters),
            parameters_json: parameters,
        }),
    )
}

fn metagraph(n: u16, block: u64, min_allowed_weights: u16, max_weights_limit: u16) -> Event {
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
            netuid: 24,
            block,
            block_hash: Hash([1; 32]),
            spec_version: 393,
            neurons,
            hyperparameters: WeightHyperparameters {
                tempo: 360,
                min_allowed_weights,
                max_weights_limit,
                weights_version_key: 1,
                weights_rate_limit_blocks: 100,
                commit_reveal_enabled: false,
                reveal_period_epochs: 1,
                commit_reveal_version: 4,
            },
        }),
    )
}

fn accuracy(timestamp_ms: u64, id: &str, uid: u16, score: f64) -> Event {
    Event::new(
        timestamp_ms,
        Payload::EvaluationRecorded(EvaluationRecorded {
            challenge_id: id.into(),
            uid,
            score,
            metrics: vec![],
            evaluator: EVALUATOR_ACCURACY.into(),
            fuel_used: None,
        }),
    )
}

/// The example's data as events, and the JSON input to compare against: the example with
/// its chain limits as the chain states them (`max_weight_limit` is a u16 out of 65535 on
/// chain, so it is rounded to `round(limit * 65535) / 65535`; every example has 1.0 or
/// none, which that represents exactly; absent chain = the README defaults 1 and 1.0).
/// The examples key miners by uid and name no hotkeys; responses carry `account(uid)`,
/// which is also the metagraph's hotkey of that uid.
///
/// Both ways of recording each datum are exercised: even tasks carry `expected_output` in
/// the challenge, odd ones reveal it after the answers; a null answer is an error outcome
/// for some uids and no event at all for others; accuracies come with an ok response.
fn as_events(input: &Value) -> (Vec<Event>, Value) {
    let n = input["n"].as_u64().unwrap() as u16;
    let version = match input["mode"].as_str().unwrap() {
        "validator_v1" => "v1",
        "validator_v2" => "v2",
        other => panic!("not a validator example: {other}"),
    };
    let min_allowed_weights = input["chain"]["min_allowed_weights"].as_u64().unwrap_or(1) as u16;
    let limit = input["chain"]["max_weight_limit"].as_f64().unwrap_or(1.0);
    let max_weights_limit = (limit * U16_MAX).round() as u16;

    let mut time = 1_700_000_000_000u64;
    let mut tick = || {
        time += 1_000;
        time
    };
    let mut events = vec![
        profile(tick(), json!({ "validator": version })),
        metagraph(n, tick(), min_allowed_weights, max_weights_limit),
    ];
    for (index, task) in input["tasks"].as_array().unwrap().iter().enumerate() {
        let id = format!("task-{index}");
        let answers = task
            .get("responses")
            .or_else(|| task.get("accuracies"))
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let is_accuracies = task.get("accuracies").is_some();
        let targets: Vec<u16> = answers.keys().map(|key| key.parse().unwrap()).collect();
        let expected = task["expected_output"].as_str().unwrap_or_default();
        let reveal_later = index % 2 == 1;
        let mut extra = json!({
            "dataset": task["dataset"],
            "context_length": task["context_length"],
        });
        if let Some(classes) = task.get("all_classes").filter(|c| !c.is_null()) {
            extra["all_classes"] = classes.clone();
        }
        if !reveal_later {
            extra["expected_output"] = json!(expected);
        }
        events.push(challenge(tick(), &id, extra, targets));
        for (position, (key, answer)) in answers.iter().enumerate() {
            let uid: u16 = key.parse().unwrap();
            match (answer, is_accuracies) {
                (Value::Null, _) => {
                    if position % 2 == 0 {
                        events.push(response(tick(), &id, uid, None));
                    }
                }
                (Value::String(text), false) => {
                    events.push(response(tick(), &id, uid, Some(text)));
                }
                (value, true) => {
                    events.push(response(tick(), &id, uid, Some("an answer")));
                    events.push(accuracy(tick(), &id, uid, value.as_f64().unwrap()));
                }
                (other, false) => panic!("task {index}: response {other}"),
            }
        }
        if reveal_later {
            events.push(truth(tick(), &id, expected));
        }
    }

    let mut compared = input.clone();
    compared["chain"] = json!({
        "min_allowed_weights": min_allowed_weights,
        "max_weight_limit": f64::from(max_weights_limit) / U16_MAX,
    });
    (events, compared)
}

#[test]
fn quasar_weights_from_events_equal_weights_from_json() {
    let mut checked = 0;
    for name in [
        "quasar_validator_v1",
        "gen-quasar_validator_v1-1",
        "gen-quasar_validator_v1-2",
        "gen-quasar_validator_v2-1",
        "gen-quasar_validator_v2-2",
    ] {
        let input: Value = serde_json::from_str(
            &std::fs::read_to_string(examples_dir().join(format!("{name}.input.json"))).unwrap(),
        )
        .unwrap();
        let (events, compared) = as_events(&input);
        assert_eq!(
            compared["chain"],
            input.get("chain").cloned().unwrap_or(json!({
                "min_allowed_weights": 1, "max_weight_limit": 1.0
            })),
            "{name}: the example's chain limits are exact in u16 form"
        );
        let from_json = run_json(&compared).unwrap();
        let mut state = Default::default();
        fold(&QuasarValidator, &mut state, indexed(&events)).unwrap();
        let from_events = QuasarValidator.output(&state).unwrap();
        assert!(
            from_json["u16"]["weights"]
                .as_array()
                .is_some_and(|w| !w.is_empty()),
            "{name}: the example sets weights"
        );
        assert_eq!(from_events["u16"], from_json["u16"], "{name}");
        let bits = |output: &Value| -> Vec<u64> {
            output["raw_weights"]
                .as_array()
                .unwrap()
                .iter()
                .map(|w| w.as_f64().unwrap().to_bits())
                .collect()
        };
        assert_eq!(bits(&from_events), bits(&from_json), "{name}");
        // Everything else (per-task rewards, bucket EMA, failures) agrees too.
        assert_eq!(from_events, from_json, "{name}");
        checked += 1;
    }
    assert_eq!(checked, 5);
}

/// A varied stream: profile and metagraph changes, tasks of both kinds, answers, errors,
/// truths, and events the projection ignores.
fn stream(length: usize) -> Vec<Event> {
    let mut seed = 0x9a5a_u64;
    let mut next = move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        seed >> 11
    };
    let mut events = vec![
        profile(0, json!({ "validator": "v1" })),
        metagraph(24, 1, 1, 65535),
    ];
    let datasets = ["qasper", "passage_count", "triviaqa", "gov_report"];
    // (challenge id, targets, next target to answer, uses accuracies)
    let mut open: Vec<(String, Vec<u16>, usize, bool)> = Vec::new();
    let mut issued = 0;
    while events.len() < length {
        let time = events.len() as u64 + 1;
        match next() % 8 {
            0 | 1 => {
                let id = format!("quasar-{issued}");
                issued += 1;
                let targets: Vec<u16> = (0..24).filter(|_| next() % 3 == 0).take(6).collect();
                let dataset = datasets[(next() % 4) as usize];
                events.push(challenge(
                    time,
                    &id,
                    json!({
                        "dataset": dataset,
                        "context_length": next() % 2_500_000,
                        "expected_output": "There are 7 paragraphs",
                    }),
                    targets.clone(),
                ));
                open.push((id, targets, 0, next() % 2 == 0));
            }
            2..=4 if !open.is_empty() => {
                let slot = (next() % open.len() as u64) as usize;
                let (id, targets, answered, accuracies) = &mut open[slot];
                if let Some(&uid) = targets.get(*answered) {
                    *answered += 1;
                    if next() % 5 == 0 {
                        events.push(response(time, id, uid, None));
                    } else if *accuracies {
                        events.push(accuracy(time, id, uid, (next() % 1000) as f64 / 1000.0));
                    } else {
                        events.push(response(time, id, uid, Some("There are 7 paragraphs")));
                    }
                } else {
                    events.push(truth(time, id, "There are 7 paragraphs"));
                    open.remove(slot);
                }
            }
            5 => events.push(metagraph(24 + (next() % 4) as u16, time, 1, 65535)),
            6 => events.push(profile(
                time,
                json!({ "validator": if next() % 2 == 0 { "v1" } else { "v2" } }),
            )),
            _ => events.push(weightlog_schema::samples::sample(
                EventKind::ALL[(next() % 12) as usize],
                time,
            )),
        }
    }
    events
}

#[test]
fn resuming_from_a_checkpoint_at_any_point_gives_the_same_state() {
    let events = stream(160);
    assert!(events.len() >= 100);
    let projection = QuasarValidator;
    let whole = assert_resume_everywhere(&projection, &events);
    assert!(whole.tasks.len() > 10, "the stream has tasks");
    projection.output(&whole).unwrap();
}

fn refused(state: &mut <QuasarValidator as Projection>::State, event: Event, needle: &str) {
    let error = QuasarValidator
        .apply(state, 42, &event)
        .unwrap_err()
        .to_string();
    assert!(error.contains("event 42"), "{error}");
    assert!(error.contains(needle), "`{needle}` not in: {error}");
}

#[test]
fn events_the_projection_cannot_use_are_refused() {
    let projection = QuasarValidator;
    let mut state = Default::default();
    // No profile, no metagraph: no input.
    assert!(
        projection
            .input(&state)
            .unwrap_err()
            .to_string()
            .contains("validator version")
    );
    refused(
        &mut state,
        profile(0, json!({ "validator": "v3" })),
        "\"v1\" or \"v2\"",
    );
    refused(
        &mut state,
        profile(0, json!({ "validator": "v1", "state": [1] })),
        "state",
    );
    projection
        .apply(&mut state, 0, &profile(0, json!({ "validator": "v2" })))
        .unwrap();
    assert!(
        projection
            .input(&state)
            .unwrap_err()
            .to_string()
            .contains("MetagraphObserved")
    );
    projection
        .apply(&mut state, 1, &metagraph(8, 1, 1, 65535))
        .unwrap();

    refused(
        &mut state,
        challenge(2, "bad", json!({ "dataset": "qasper" }), vec![1]),
        "context_length",
    );
    refused(
        &mut state,
        challenge(
            2,
            "bad",
            json!({ "dataset": "qasper", "context_length": -1 }),
            vec![1],
        ),
        ">= 0",
    );
    refused(
        &mut state,
        challenge(
            2,
            "bad",
            json!({ "dataset": "qasper", "context_length": 10 }),
            vec![1, 1],
        ),
        "same uid twice",
    );
    let task = json!({ "dataset": "qasper", "context_length": 40000 });
    projection
        .apply(&mut state, 2, &challenge(2, "t", task.clone(), vec![1, 2]))
        .unwrap();
    refused(&mut state, challenge(3, "t", task, vec![1]), "issued twice");
    refused(
        &mut state,
        response(3, "t", 3, Some("x")),
        "did not target it",
    );
    refused(
        &mut state,
        response(3, "t", 9, Some("x")),
        "metagraph has 8 uids",
    );
    let mut impostor = response(3, "t", 1, Some("x"));
    if let Payload::ResponseReceived(received) = &mut impostor.payload {
        received.hotkey = account(5);
    }
    refused(&mut state, impostor, "carries hotkey");
    projection
        .apply(&mut state, 3, &response(3, "t", 1, Some("Paris")))
        .unwrap();
    refused(
        &mut state,
        response(4, "t", 1, Some("x")),
        "second response",
    );
    // An answer without its expected output cannot be scored.
    assert!(
        projection
            .input(&state)
            .unwrap_err()
            .to_string()
            .contains("no expected_output")
    );
    refused(
        &mut state,
        accuracy(4, "unknown", 1, 0.5),
        "not a quasar challenge",
    );
    refused(&mut state, accuracy(4, "t", 2, f64::NAN), "finite");
    projection
        .apply(&mut state, 4, &accuracy(4, "t", 2, 0.5))
        .unwrap();
    refused(&mut state, accuracy(5, "t", 2, 0.6), "second accuracy");
    // uid 1 answered but has no accuracy while uid 2 has one.
    assert!(
        projection
            .input(&state)
            .unwrap_err()
            .to_string()
            .contains("uid 1 answered")
    );
    projection
        .apply(&mut state, 5, &accuracy(5, "t", 1, 0.25))
        .unwrap();
    refused(
        &mut state,
        Event::new(
            6,
            Payload::GroundTruthRevealed(GroundTruthRevealed {
                challenge_id: "t".into(),
                truth_json: "{\"labels\": [1]}".into(),
            }),
        ),
        "expected_output",
    );
    projection
        .apply(&mut state, 6, &truth(6, "t", "Paris"))
        .unwrap();
    refused(
        &mut state,
        truth(7, "t", "London"),
        "different expected_output",
    );
    projection.output(&state).unwrap();

    // Other environments' events are not the projection's business.
    let before = state.clone();
    for kind in EventKind::ALL {
        let event = weightlog_schema::samples::sample(kind, 9);
        if !matches!(
            event.payload,
            Payload::LogOpened(_) | Payload::ProfileChanged(_) | Payload::MetagraphObserved(_)
        ) {
            projection.apply(&mut state, 9, &event).unwrap();
        }
    }
    assert_eq!(state, before);
}

#[test]
fn the_profile_picks_the_version_and_the_starting_state() {
    let input: Value = serde_json::from_str(
        &std::fs::read_to_string(examples_dir().join("quasar_validator_v1.input.json")).unwrap(),
    )
    .unwrap();
    let (mut events, mut compared) = as_events(&input);
    let starting = json!({
        "bucket_scores": {"32k": {"1": 0.5, "3": 0.25}, "2M": {"4": 0.125}},
        "consecutive_failures": {"2": 3},
    });
    // A later profile change applies to the whole replay: v2 with a restored state.
    events.push(Event::new(
        1_800_000_000_000,
        Payload::ProfileChanged(ProfileChanged {
            profile: PROFILE.into(),
            parameters_json: json!({ "validator": "v2", "state": starting }).to_string(),
            parameters_hash: Hash([0; 32]),
        }),
    ));
    compared["mode"] = json!("validator_v2");
    compared["state"] = starting;
    let mut state = Default::default();
    fold(&QuasarValidator, &mut state, indexed(&events)).unwrap();
    let input_from_events = QuasarValidator.input(&state).unwrap();
    assert_eq!(input_from_events["mode"], "validator_v2");
    let from_json = run_json(&compared).unwrap();
    assert_eq!(QuasarValidator.output(&state).unwrap(), from_json);
    assert_eq!(from_json["consecutive_failures"][2], json!(4.0));
}
