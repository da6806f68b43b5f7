//! The quasar per-item projection (`metric`, `readme`, `api_score`, `hfa`): the examples of
//! specs/mechanism-io given as events give the same score / rewards as their JSON input;
//! checkpoint/resume at any point gives the same state hash; events the projection cannot use
//! are refused.

mod common;

use common::{
    account, assert_resume_everywhere, examples_dir, hyperparameters, indexed,
    quasar::{challenge, response, truth},
};

use serde_json::{Value, json};
use weightlog_replay::projection::quasar_items::{
    ENVIRONMENT, EVALUATOR_ACCURACY, EVALUATOR_HFA, PROFILE, QuasarItems,
};
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

fn profile_changed(timestamp_ms: u64, parameters: Value) -> Event {
    let parameters = parameters.to_string();
    Event::new(
        timestamp_ms,
        Payload::ProfileChanged(ProfileChanged {
            profile: PROFILE.into(),
            parameters_hash: weightlog_schema::codec::parameters_hash_of(&parameters),
            parameters_json: parameters,
        }),
    )
}

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
            netuid: 24,
            block,
            block_hash: Hash([1; 32]),
            spec_version: 393,
            neurons,
            hyperparameters: hyperparameters(),
        }),
    )
}

fn evaluation(
    timestamp_ms: u64,
    id: &str,
    uid: u16,
    evaluator: &str,
    score: f64,
    metrics: Vec<(&str, f64)>,
) -> Event {
    Event::new(
        timestamp_ms,
        Payload::EvaluationRecorded(EvaluationRecorded {
            challenge_id: id.into(),
            uid,
            score,
            metrics: metrics
                .into_iter()
                .map(|(name, value)| Metric {
                    name: name.into(),
                    value,
                })
                .collect(),
            evaluator: evaluator.into(),
            fuel_used: None,
        }),
    )
}

fn accuracy(timestamp_ms: u64, id: &str, uid: u16, score: f64) -> Event {
    evaluation(timestamp_ms, id, uid, EVALUATOR_ACCURACY, score, vec![])
}

/// The example's data as events. The per-item examples name no hotkeys and no uids; item `i`
/// is answered by uid `i % 8` (whose hotkey, `account(uid)`, the metagraph and the responses
/// share), each item on a challenge of its own.
///
/// Both ways of recording each datum are exercised: `metric` examples carry the ground truth
/// in the challenge (-2, next to a second answered challenge, so the profile pins the scored
/// answer) or reveal it after the answer (-1); per-item challenges also target a second uid
/// whose error response is no item in `readme` / `api_score` mode (and gets no response at
/// all in `hfa` mode, where an error response would be a null-metrics item); accuracies come
/// with or without an ok response before them; results are recorded after all challenges
/// were issued, in item order.
fn as_events(name: &str, input: &Value) -> Vec<Event> {
    let mode = input["mode"].as_str().unwrap();
    let mut time = 1_700_000_000_000u64;
    let mut tick = || {
        time += 1_000;
        time
    };
    let mut events = vec![metagraph(16, tick())];
    if mode == "metric" {
        let pinned = name.ends_with("-2");
        let mut extra = json!({ "dataset": input["dataset"] });
        if let Some(classes) = input.get("all_classes").filter(|c| !c.is_null()) {
            extra["all_classes"] = classes.clone();
        }
        if pinned {
            extra["expected_output"] = input["ground_truth"].clone();
            events.push(profile(
                tick(),
                json!({ "mode": "metric", "challenge_id": "task-0", "uid": 3 }),
            ));
        } else {
            events.push(profile(tick(), json!({ "mode": "metric" })));
        }
        events.push(challenge(tick(), "task-0", extra, vec![3, 5]));
        events.push(response(tick(), "task-0", 5, None));
        events.push(response(
            tick(),
            "task-0",
            3,
            Some(input["prediction"].as_str().unwrap()),
        ));
        if pinned {
            events.push(challenge(
                tick(),
                "task-1",
                json!({ "dataset": "qasper", "expected_output": "other" }),
                vec![3],
            ));
            events.push(response(tick(), "task-1", 3, Some("another answer")));
        } else {
            events.push(truth(
                tick(),
                "task-0",
                input["ground_truth"].as_str().unwrap(),
            ));
        }
        return events;
    }
    events.push(profile(tick(), json!({ "mode": mode })));
    let items = input["items"].as_array().unwrap();
    for (index, item) in items.iter().enumerate() {
        let uid = (index % 8) as u16;
        let extra = match mode {
            "readme" => json!({ "bucket": item["bucket"], "dataset": "qasper" }),
            "api_score" => {
                json!({ "context_length": item["context_length"], "dataset": "qasper" })
            }
            "hfa" => {
                let mut task = item["task"].clone();
                // Not an HFA task key: left out of the mechanism input.
                task["dataset"] = json!("needle_haystack");
                task
            }
            other => panic!("not a per-item mode: {other}"),
        };
        events.push(challenge(
            tick(),
            &format!("item-{index}"),
            extra,
            vec![uid, uid + 8],
        ));
    }
    for (index, item) in items.iter().enumerate() {
        let uid = (index % 8) as u16;
        let id = format!("item-{index}");
        if index % 2 == 0 {
            events.push(response(tick(), &id, uid, Some("an answer")));
        }
        match mode {
            "readme" => events.push(accuracy(
                tick(),
                &id,
                uid,
                item["accuracy"].as_f64().unwrap(),
            )),
            "api_score" => events.push(accuracy(tick(), &id, uid, item["score"].as_f64().unwrap())),
            _ => match item.get("metrics").filter(|m| !m.is_null()) {
                None => events.push(response(tick(), &id, uid, None)),
                Some(metrics) => events.push(evaluation(
                    tick(),
                    &id,
                    uid,
                    EVALUATOR_HFA,
                    0.0,
                    metrics
                        .as_object()
                        .unwrap()
                        .iter()
                        .map(|(name, value)| (name.as_str(), value.as_f64().unwrap()))
                        .collect(),
                )),
            },
        }
        if mode != "hfa" && index % 3 == 0 {
            events.push(response(tick(), &id, uid + 8, None));
        }
    }
    events
}

#[test]
fn quasar_item_rewards_from_events_equal_rewards_from_json() {
    let mut checked = 0;
    for name in [
        "gen-quasar_metric-1",
        "gen-quasar_metric-2",
        "gen-quasar_readme-1",
        "gen-quasar_readme-2",
        "gen-quasar_api_score-1",
        "gen-quasar_api_score-2",
        "quasar_hfa",
        "gen-quasar_hfa-1",
        "gen-quasar_hfa-2",
    ] {
        let input: Value = serde_json::from_str(
            &std::fs::read_to_string(examples_dir().join(format!("{name}.input.json"))).unwrap(),
        )
        .unwrap();
        let events = as_events(name, &input);
        let from_json = run_json(&input).unwrap();
        let mut state = Default::default();
        fold(&QuasarItems, &mut state, indexed(&events)).unwrap();
        let rebuilt = QuasarItems.input(&state).unwrap();
        if input["mode"] != "hfa" {
            // Every datum is carried exactly: the rebuilt input is the example itself.
            assert_eq!(rebuilt, input, "{name}");
        } else {
            // Metrics are f64 in events, so an integer metric (`"tokens_per_second": 650`)
            // comes back as 650.0: the same number to the mechanism, a different JSON token.
            assert_eq!(
                rebuilt["items"].as_array().unwrap().len(),
                input["items"].as_array().unwrap().len(),
                "{name}"
            );
            for (got, want) in rebuilt["items"]
                .as_array()
                .unwrap()
                .iter()
                .zip(input["items"].as_array().unwrap())
            {
                assert_eq!(got["task"], want["task"], "{name}");
            }
        }
        let from_events = QuasarItems.output(&state).unwrap();
        let bits = |output: &Value| -> Vec<u64> {
            match output.get("rewards") {
                Some(rewards) => rewards
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r.as_f64().unwrap().to_bits())
                    .collect(),
                None => vec![output["score"].as_f64().unwrap().to_bits()],
            }
        };
        assert!(!bits(&from_json).is_empty(), "{name}");
        assert_eq!(bits(&from_events), bits(&from_json), "{name}");
        assert_eq!(from_events, from_json, "{name}");
        checked += 1;
    }
    assert_eq!(checked, 9);
}

#[test]
fn hfa_error_responses_are_null_metrics_items() {
    let events = vec![
        metagraph(4, 1),
        profile(2, json!({ "mode": "hfa" })),
        challenge(
            3,
            "a",
            json!({ "type": "memory_retention", "context_length": 50000 }),
            vec![1, 2],
        ),
        response(4, "a", 2, None),
        evaluation(
            5,
            "a",
            1,
            EVALUATOR_HFA,
            0.0,
            vec![("memory_retention_score", 0.97), ("coherence_score", 0.8)],
        ),
    ];
    let mut state = Default::default();
    fold(&QuasarItems, &mut state, indexed(&events)).unwrap();
    let input = QuasarItems.input(&state).unwrap();
    assert_eq!(
        input,
        json!({
            "mode": "hfa",
            "items": [
                {"task": {"type": "memory_retention", "context_length": 50000}, "metrics": null},
                {
                    "task": {"type": "memory_retention", "context_length": 50000},
                    "metrics": {"memory_retention_score": 0.97, "coherence_score": 0.8},
                },
            ],
        })
    );
    let output = QuasarItems.output(&state).unwrap();
    assert_eq!(output, run_json(&input).unwrap());
    assert_eq!(output["rewards"][0], json!(0.0));
}

/// A varied stream: profile and metagraph changes, tasks, answers, errors, accuracies, truths,
/// and events the projection ignores.
fn stream(length: usize) -> Vec<Event> {
    let mut seed = 0x51a7_u64;
    let mut next = move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        seed >> 11
    };
    let mut events = vec![profile(0, json!({ "mode": "readme" })), metagraph(24, 1)];
    let buckets = ["32k", "124k", "512k", "1.5m", "2m"];
    // (challenge id, targets, next target to answer)
    let mut open: Vec<(String, Vec<u16>, usize)> = Vec::new();
    let mut issued = 0;
    while events.len() < length {
        let time = events.len() as u64 + 1;
        match next() % 8 {
            0 | 1 => {
                let id = format!("quasar-{issued}");
                issued += 1;
                let targets: Vec<u16> = (0..24).filter(|_| next() % 3 == 0).take(6).collect();
                events.push(challenge(
                    time,
                    &id,
                    json!({
                        "dataset": "qasper",
                        "bucket": buckets[(next() % 5) as usize],
                        "context_length": next() % 2_500_000,
                    }),
                    targets.clone(),
                ));
                open.push((id, targets, 0));
            }
            2..=4 if !open.is_empty() => {
                let slot = (next() % open.len() as u64) as usize;
                let (id, targets, answered) = &mut open[slot];
                if let Some(&uid) = targets.get(*answered) {
                    *answered += 1;
                    match next() % 4 {
                        0 => events.push(response(time, id, uid, None)),
                        1 => events.push(response(time, id, uid, Some("7 paragraphs"))),
                        _ => events.push(accuracy(time, id, uid, (next() % 1000) as f64 / 1000.0)),
                    }
                } else {
                    events.push(truth(time, id, "There are 7 paragraphs"));
                    open.remove(slot);
                }
            }
            5 => events.push(metagraph(24 + (next() % 4) as u16, time)),
            6 => events.push(profile_changed(
                time,
                json!({ "mode": if next() % 2 == 0 { "readme" } else { "api_score" } }),
            )),
            _ => match EventKind::ALL[(next() % 12) as usize] {
                // Another subnet's metagraph would change the uids' hotkeys.
                EventKind::MetagraphObserved => events.push(metagraph(24, time)),
                kind => events.push(weightlog_schema::samples::sample(kind, time)),
            },
        }
    }
    events
}

#[test]
fn resuming_from_a_checkpoint_at_any_point_gives_the_same_state() {
    let events = stream(160);
    assert!(events.len() >= 100);
    let projection = QuasarItems;
    let whole = assert_resume_everywhere(&projection, &events);
    assert!(whole.items.len() > 10, "the stream has items");
    assert!(
        projection.output(&whole).unwrap()["rewards"]
            .as_array()
            .is_some_and(|rewards| rewards.len() > 10)
    );
}

fn refused(state: &mut <QuasarItems as Projection>::State, event: Event, needle: &str) {
    let before = state.clone();
    let error = QuasarItems
        .apply(state, 42, &event)
        .unwrap_err()
        .to_string();
    assert!(error.contains("event 42"), "{error}");
    assert!(error.contains(needle), "`{needle}` not in: {error}");
    assert_eq!(*state, before, "a refused event leaves the state unchanged");
}

fn input_refused(state: &<QuasarItems as Projection>::State, needle: &str) {
    let error = QuasarItems.input(state).unwrap_err().to_string();
    assert!(error.contains(needle), "`{needle}` not in: {error}");
}

#[test]
fn events_the_projection_cannot_use_are_refused() {
    let projection = QuasarItems;
    let mut state = Default::default();
    input_refused(&state, "names the mode");
    refused(
        &mut state,
        profile(0, json!({ "mode": "weights" })),
        "metric, readme",
    );
    refused(
        &mut state,
        profile(0, json!({ "modus": "readme" })),
        "\"mode\"",
    );
    refused(
        &mut state,
        profile(
            0,
            json!({ "mode": "readme", "challenge_id": "a", "uid": 1 }),
        ),
        "only metric mode",
    );
    refused(
        &mut state,
        profile(0, json!({ "mode": "metric", "uid": 1 })),
        "both `challenge_id` and `uid`",
    );
    projection
        .apply(&mut state, 0, &profile(0, json!({ "mode": "readme" })))
        .unwrap();
    projection.apply(&mut state, 1, &metagraph(4, 1)).unwrap();
    let mut shuffled = metagraph(4, 2);
    if let Payload::MetagraphObserved(observed) = &mut shuffled.payload {
        observed.neurons.swap(0, 1);
    }
    refused(&mut state, shuffled, "uid order");

    refused(
        &mut state,
        Event::new(
            3,
            Payload::ChallengeIssued(ChallengeIssued {
                challenge_id: "a".into(),
                environment: ENVIRONMENT.into(),
                seed: 0,
                prompt: String::new(),
                extra_json: "[1, 2]".into(),
                target_uids: vec![1],
                deadline_ms: 0,
            }),
        ),
        "must be a JSON object",
    );
    refused(
        &mut state,
        challenge(
            3,
            "a",
            json!({ "bucket": "32k", "expected_output": 7 }),
            vec![1],
        ),
        "`expected_output` must be a string",
    );
    refused(
        &mut state,
        challenge(3, "a", json!({ "bucket": "32k" }), vec![1, 1]),
        "same uid twice",
    );
    projection
        .apply(
            &mut state,
            3,
            &challenge(3, "a", json!({ "bucket": "32k" }), vec![1, 2]),
        )
        .unwrap();
    refused(
        &mut state,
        challenge(4, "a", json!({ "bucket": "32k" }), vec![1]),
        "issued twice",
    );

    // Responses: hotkey, uid range, targeting, duplicates.
    let mut forged = response(5, "a", 1, Some("x"));
    if let Payload::ResponseReceived(received) = &mut forged.payload {
        received.hotkey = account(77);
    }
    refused(&mut state, forged, "the metagraph has");
    refused(&mut state, response(5, "a", 9, Some("x")), "has 4 uids");
    refused(
        &mut state,
        response(5, "a", 3, Some("x")),
        "did not target it",
    );
    projection
        .apply(&mut state, 5, &response(5, "a", 1, Some("x")))
        .unwrap();
    refused(&mut state, response(6, "a", 1, None), "second response");

    // Evaluations: unknown challenge, targeting, finiteness, duplicates, after an error.
    refused(
        &mut state,
        accuracy(7, "zzz", 1, 0.5),
        "not a quasar challenge",
    );
    refused(&mut state, accuracy(7, "a", 3, 0.5), "did not target it");
    refused(&mut state, accuracy(7, "a", 1, f64::NAN), "must be finite");
    refused(
        &mut state,
        evaluation(
            7,
            "a",
            1,
            EVALUATOR_HFA,
            0.0,
            vec![("coherence_score", 0.5), ("coherence_score", 0.6)],
        ),
        "recorded twice",
    );
    refused(
        &mut state,
        evaluation(
            7,
            "a",
            1,
            EVALUATOR_HFA,
            0.0,
            vec![("coherence_score", f64::INFINITY)],
        ),
        "must be finite",
    );
    projection
        .apply(&mut state, 7, &accuracy(7, "a", 1, 0.5))
        .unwrap();
    refused(&mut state, accuracy(8, "a", 1, 0.6), "second evaluation");
    projection
        .apply(&mut state, 8, &response(8, "a", 2, None))
        .unwrap();
    refused(&mut state, accuracy(9, "a", 2, 0.6), "was an error");

    // Truths: shape and consistency.
    let mut bad_truth = truth(10, "a", "x");
    if let Payload::GroundTruthRevealed(revealed) = &mut bad_truth.payload {
        revealed.truth_json = "{\"labels\": [1]}".into();
    }
    refused(&mut state, bad_truth, "expected_output");
    projection
        .apply(&mut state, 10, &truth(10, "a", "x"))
        .unwrap();
    refused(&mut state, truth(11, "a", "y"), "different expected_output");

    // Other systems' events are ignored.
    let before = state.clone();
    // (A metagraph is every system's: it is not another system's event.)
    for (offset, kind) in EventKind::ALL
        .iter()
        .filter(|kind| **kind != EventKind::MetagraphObserved)
        .enumerate()
    {
        projection
            .apply(
                &mut state,
                20 + offset as u64,
                &weightlog_schema::samples::sample(*kind, 20 + offset as u64),
            )
            .unwrap();
    }
    assert_eq!(state, before);

    // The readme input works; the same log in other modes says what is missing.
    assert_eq!(
        projection.input(&state).unwrap(),
        json!({"mode": "readme", "items": [{"accuracy": 0.5, "bucket": "32k"}]})
    );
    let mut api = state.clone();
    projection
        .apply(
            &mut api,
            30,
            &profile_changed(30, json!({ "mode": "api_score" })),
        )
        .unwrap();
    input_refused(&api, "no number `context_length`");
    let mut hfa = state.clone();
    projection
        .apply(&mut hfa, 30, &profile_changed(30, json!({ "mode": "hfa" })))
        .unwrap();
    input_refused(&hfa, "wrong kind");
    let mut metric = state.clone();
    projection
        .apply(
            &mut metric,
            30,
            &profile_changed(30, json!({ "mode": "metric" })),
        )
        .unwrap();
    input_refused(&metric, "no string `dataset`");
    projection
        .apply(
            &mut metric,
            31,
            &challenge(31, "b", json!({ "dataset": "qasper" }), vec![1]),
        )
        .unwrap();
    projection
        .apply(&mut metric, 32, &response(32, "b", 1, Some("y")))
        .unwrap();
    input_refused(&metric, "exactly one ok answer");
    projection
        .apply(
            &mut metric,
            33,
            &profile_changed(
                33,
                json!({ "mode": "metric", "challenge_id": "b", "uid": 1 }),
            ),
        )
        .unwrap();
    input_refused(&metric, "no expected_output");
    projection
        .apply(
            &mut metric,
            34,
            &profile_changed(
                34,
                json!({ "mode": "metric", "challenge_id": "b", "uid": 2 }),
            ),
        )
        .unwrap();
    input_refused(&metric, "has no ok response");
}
