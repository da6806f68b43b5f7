//! The aml projection: the examples of specs/mechanism-io rebuilt as events give the same
//! mechanism input and output as their JSON; checkpoint/resume at any point gives the same
//! state hash; events the projection cannot use are refused.

mod common;

use common::{account, assert_resume_everywhere, examples_dir, hyperparameters};

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};
use weightlog_replay::projection::aml::{
    AmlScores, ENVIRONMENT, EVALUATOR_IMMEDIATE, EVALUATOR_TIER1, EVALUATOR_TIER2, PROFILE,
    SOURCE_CONSENSUS, TIER1_METRICS, TIER2_METRICS,
};
use weightlog_replay::projection::{Projection, fold};
use weightlog_replay::run_json;
use weightlog_schema::Hash;
use weightlog_schema::event::*;

const HOUR_MS: u64 = 3_600_000;
const DAY_MS: u64 = 24 * HOUR_MS;
const NOW_MS: u64 = 1_800_000_000_000;

fn metagraph(n: u16, timestamp_ms: u64) -> Event {
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
        timestamp_ms,
        Payload::MetagraphObserved(MetagraphObserved {
            netuid: 74,
            block: timestamp_ms / 12_000,
            block_hash: Hash([1; 32]),
            spec_version: 393,
            neurons,
            hyperparameters: hyperparameters(),
        }),
    )
}

fn profile(timestamp_ms: u64, parameters: &Value) -> Event {
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

fn batch(challenge_id: &str, timestamp_ms: u64, extra: &Value) -> Event {
    Event::new(
        timestamp_ms,
        Payload::ChallengeIssued(ChallengeIssued {
            challenge_id: challenge_id.into(),
            environment: ENVIRONMENT.into(),
            seed: 0,
            prompt: String::new(),
            extra_json: extra.to_string(),
            target_uids: Vec::new(),
            deadline_ms: timestamp_ms + DAY_MS,
        }),
    )
}

fn submission(challenge_id: &str, uid: u16, timestamp_ms: u64, alerts: &[(String, f64)]) -> Event {
    let body = json!({
        "alert_ids": alerts.iter().map(|(alert, _)| alert).collect::<Vec<_>>(),
        "scores": alerts.iter().map(|(_, score)| score).collect::<Vec<_>>(),
    });
    Event::new(
        timestamp_ms,
        Payload::ResponseReceived(ResponseReceived {
            challenge_id: challenge_id.into(),
            uid,
            hotkey: account(u64::from(uid)),
            outcome: ResponseOutcome::Ok {
                body: body.to_string(),
            },
            latency_ms: 1_000,
            attempts: 1,
            miner_signature: None,
        }),
    )
}

fn evaluation(
    evaluator: &str,
    challenge_id: &str,
    uid: u16,
    score: f64,
    metrics: Vec<(&str, f64)>,
) -> Event {
    Event::new(
        NOW_MS - HOUR_MS / 2,
        Payload::EvaluationRecorded(EvaluationRecorded {
            challenge_id: challenge_id.into(),
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

fn external(source: &str, extra: &Value) -> Event {
    Event::new(
        NOW_MS - HOUR_MS / 2,
        Payload::ExternalScoreRecorded(ExternalScoreRecorded {
            source: source.into(),
            block: NOW_MS / 12_000,
            scores: Vec::new(),
            extra_json: extra.to_string(),
        }),
    )
}

fn reveal(challenge_id: &str, truth: &Value) -> Event {
    Event::new(
        NOW_MS - HOUR_MS / 4,
        Payload::GroundTruthRevealed(GroundTruthRevealed {
            challenge_id: challenge_id.into(),
            truth_json: truth.to_string(),
        }),
    )
}

fn load(name: &str) -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(examples_dir().join(format!("{name}.input.json"))).unwrap(),
    )
    .unwrap()
}

fn pairs(map: &Value) -> Vec<(String, f64)> {
    map.as_object()
        .unwrap()
        .iter()
        .map(|(alert, score)| (alert.clone(), score.as_f64().unwrap()))
        .collect()
}

/// The example's data as events, and the example's JSON with its hotkeys replaced by the
/// SS58 addresses those events carry (fixture hotkeys are not all valid SS58).
///
/// Batches, in issue order: `onboard` (an empty first submission whose timestamp sets
/// `days_since_submission`), `t3a` and `t3b` (older batches whose labels and patterns are
/// revealed; each miner's tier 3 rows are its submitted alerts there, padded with unrevealed
/// alerts up to `total_alerts`), `prev` (the previous submission, `prev_scores`), `checked`
/// (the batch the tier 1/2 evaluations are about) and, in design mode, `ensemble` (the
/// batch being aggregated, `alert_scores`). Nothing is rounded: every number travels as an
/// f64 (directly, or as JSON text, which serde_json with float_roundtrip reads back exactly).
fn as_events(input: &Value) -> (Vec<Event>, Value) {
    let miners = input["miners"].as_object().unwrap();
    let mut names: Vec<&String> = miners.keys().collect();
    if let Some(alert_scores) = input["alert_scores"].as_object() {
        names.extend(alert_scores.keys());
    }
    names.sort();
    names.dedup();
    let uid_of: BTreeMap<&str, u16> = names
        .iter()
        .enumerate()
        .map(|(uid, name)| (name.as_str(), uid as u16))
        .collect();
    let ss58 = |name: &str| account(u64::from(uid_of[name])).to_ss58();

    let mut events = Vec::new();
    let parameters = match input.get("config") {
        Some(config) if !config.is_null() => json!({ "config": config }),
        _ => json!({}),
    };
    events.push(profile(NOW_MS - 90 * DAY_MS, &parameters));
    events.push(metagraph(names.len() as u16, NOW_MS - 89 * DAY_MS));
    let mut addresses = Map::new();
    let mut consensus = Map::new();
    for miner in miners.values() {
        if let Some(raw) = miner.get("tier2_raw") {
            addresses.extend(raw["address_of"].as_object().cloned().unwrap_or_default());
            consensus.extend(raw["consensus"].as_object().cloned().unwrap_or_default());
        }
    }
    let design = input["alert_scores"].is_object();
    let batch_time = NOW_MS - 88 * DAY_MS;
    events.push(batch("onboard", batch_time, &json!({})));
    events.push(batch("t3a", batch_time, &json!({})));
    events.push(batch("t3b", batch_time, &json!({})));
    events.push(batch("prev", batch_time, &json!({})));
    events.push(batch(
        "checked",
        batch_time,
        &json!({ "addresses": addresses }),
    ));
    if design {
        events.push(batch("ensemble", batch_time, &json!({})));
    }

    let mut labels = Map::new();
    let mut patterns = Map::new();
    let mut later = Vec::new();
    for (name, miner) in miners {
        let uid = uid_of[name.as_str()];
        let days = miner["days_since_submission"].as_u64().unwrap();
        events.push(submission(
            "onboard",
            uid,
            NOW_MS - days * DAY_MS - HOUR_MS,
            &[],
        ));
        for (tier, truth_field, truths) in [
            ("tier3a", "labels", &mut labels),
            ("tier3b", "patterns", &mut patterns),
        ] {
            let rows = &miner[tier];
            if rows.is_null() {
                continue;
            }
            let scores = rows["scores"].as_array().unwrap();
            assert!(!scores.is_empty(), "{name}: {tier} has rows");
            let total = rows["total_alerts"].as_u64().unwrap() as usize;
            let mut alerts = Vec::new();
            for (index, score) in scores.iter().enumerate() {
                let alert = format!("uid{uid}-{tier}-{index}");
                truths.insert(alert.clone(), rows[truth_field][index].clone());
                alerts.push((alert, score.as_f64().unwrap()));
            }
            for index in scores.len()..total {
                alerts.push((format!("uid{uid}-{tier}-unrevealed-{index}"), 0.5));
            }
            let batch_id = if tier == "tier3a" { "t3a" } else { "t3b" };
            events.push(submission(batch_id, uid, NOW_MS - HOUR_MS, &alerts));
        }
        if let Some(raw) = miner.get("tier2_raw") {
            if let Some(previous) = raw.get("prev_scores").filter(|value| !value.is_null()) {
                events.push(submission("prev", uid, NOW_MS - HOUR_MS, &pairs(previous)));
            }
            let alerts: Vec<(String, f64)> = raw["alert_ids"]
                .as_array()
                .unwrap()
                .iter()
                .zip(raw["scores"].as_array().unwrap())
                .map(|(alert, score)| {
                    (alert.as_str().unwrap().to_string(), score.as_f64().unwrap())
                })
                .collect();
            events.push(submission("checked", uid, NOW_MS - HOUR_MS, &alerts));
        } else {
            events.push(submission("checked", uid, NOW_MS - HOUR_MS, &[]));
            let components = &miner["tier2"];
            later.push(evaluation(
                EVALUATOR_TIER2,
                "checked",
                uid,
                0.0,
                TIER2_METRICS
                    .iter()
                    .map(|metric| (*metric, components[*metric].as_f64().unwrap()))
                    .collect(),
            ));
        }
        let checks = &miner["tier1"];
        later.push(evaluation(
            EVALUATOR_TIER1,
            "checked",
            uid,
            1.0,
            TIER1_METRICS
                .iter()
                .rev()
                .map(|metric| (*metric, checks[*metric].as_f64().unwrap()))
                .collect(),
        ));
        for (round, score) in miner["history"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            later.push(evaluation(
                EVALUATOR_IMMEDIATE,
                &format!("round-{round}"),
                uid,
                score.as_f64().unwrap(),
                Vec::new(),
            ));
        }
    }
    events.push(external(
        SOURCE_CONSENSUS,
        &json!({ "challenge_id": "checked", "consensus": consensus }),
    ));
    events.extend(later);
    events.push(reveal("t3a", &json!({ "labels": labels })));
    events.push(reveal("t3b", &json!({ "patterns": patterns })));
    if let Some(alert_scores) = input["alert_scores"].as_object() {
        for (name, scores) in alert_scores {
            events.push(submission(
                "ensemble",
                uid_of[name.as_str()],
                NOW_MS - HOUR_MS / 8,
                &pairs(scores),
            ));
        }
    }
    // The newest event sets "now".
    events.push(metagraph(names.len() as u16, NOW_MS));

    let remap = |value: &Value| -> Value {
        Value::Object(
            value
                .as_object()
                .unwrap()
                .iter()
                .map(|(name, v)| (ss58(name), v.clone()))
                .collect(),
        )
    };
    let mut remapped = input.clone();
    remapped["miners"] = remap(&input["miners"]);
    if design {
        remapped["alert_scores"] = remap(&input["alert_scores"]);
    }
    (events, remapped)
}

fn fold_all(events: &[Event]) -> <AmlScores as Projection>::State {
    let mut state = Default::default();
    fold(
        &AmlScores,
        &mut state,
        events.iter().enumerate().map(|(seq, e)| (seq as u64, e)),
    )
    .unwrap();
    state
}

/// Numbers as f64 (the fixtures write some floats as integers, `1` for `1.0`; the mechanism
/// reads both as the same f64).
fn normalized(value: &Value) -> Value {
    match value {
        Value::Number(number) => json!(number.as_f64().unwrap()),
        Value::Array(items) => Value::Array(items.iter().map(normalized).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(key, v)| (key.clone(), normalized(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The JSON the projection builds equals the example's (up to null/absent optional fields),
/// and so does the mechanism's output on it, bit for bit.
fn check_equivalence(name: &str, input: &Value) {
    let (events, remapped) = as_events(input);
    let state = fold_all(&events);
    // Optional fields absent from the projection but null in the example mean the same.
    let projected = normalized(&AmlScores.input(&state).unwrap());
    let expected = normalized(&remapped);
    assert!(projected == expected, "{name}: the projected input differs");

    let from_json = run_json(&remapped).unwrap();
    let from_events = AmlScores.output(&state).unwrap();
    assert!(
        from_json["final_scores"]
            .as_object()
            .unwrap()
            .values()
            .any(|score| score.as_f64().unwrap() > 0.0),
        "{name}: the example pays someone"
    );
    assert_eq!(
        from_events["final_scores"], from_json["final_scores"],
        "{name}"
    );
    assert_eq!(from_events, from_json, "{name}");
}

const EXAMPLES: [&str; 5] = [
    "aml",
    "gen-aml_code-1",
    "gen-aml_code-2",
    "gen-aml_design-1",
    "gen-aml_design-2",
];

#[test]
fn aml_scores_from_events_equal_scores_from_json() {
    for name in EXAMPLES {
        check_equivalence(name, &load(name));
    }
}

#[test]
fn config_overrides_come_from_the_profile() {
    for name in ["gen-aml_code-2", "gen-aml_design-2"] {
        let mut input = load(name);
        input["config"] = json!({
            "tier2_weight": 0.25,
            "tier3_weight": 0.75,
            "flat_period_days": 5,
            "tier3b_required_days": 20,
            "ensemble_alpha": 3.0,
            "history_window": 4,
        });
        check_equivalence(name, &input);
        let plain = run_json(&as_events(&load(name)).1).unwrap();
        let overridden = run_json(&as_events(&input).1).unwrap();
        assert_ne!(plain["final_scores"], overridden["final_scores"], "{name}");
    }
}

#[test]
fn resuming_from_a_checkpoint_at_any_point_gives_the_same_state() {
    let (mut events, _) = as_events(&load("gen-aml_design-2"));
    // Interleave events of kinds and profiles the projection ignores.
    let mut index = 0;
    while index < events.len() {
        if index % 7 == 3 {
            events.insert(
                index,
                weightlog_schema::samples::sample(EventKind::WeightsSubmitted, index as u64),
            );
        }
        index += 1;
    }
    assert!(events.len() >= 100, "{} events", events.len());
    let whole = assert_resume_everywhere(&AmlScores, &events);
    assert_eq!(
        AmlScores.output(&whole).unwrap(),
        run_json(&as_events(&load("gen-aml_design-2")).1).unwrap()
    );
}

fn refused(state: &mut <AmlScores as Projection>::State, event: Event, needle: &str) {
    let before = state.clone();
    let error = AmlScores
        .apply(state, 99, &event)
        .expect_err(needle)
        .to_string();
    assert!(error.contains("event 99"), "{error}");
    assert!(error.contains(needle), "{error} should mention {needle}");
    assert_eq!(*state, before, "a refused event leaves the state unchanged");
}

#[test]
fn events_the_projection_cannot_use_are_refused() {
    let mut state = Default::default();
    for (seq, event) in [
        metagraph(4, 1),
        batch("b1", 2, &json!({"addresses": {"a1": "0xabc"}})),
    ]
    .into_iter()
    .enumerate()
    {
        AmlScores.apply(&mut state, seq as u64, &event).unwrap();
    }
    let good = [("a1".to_string(), 0.5)];
    refused(&mut state, submission("nope", 1, 3, &good), "never issued");
    refused(&mut state, submission("b1", 9, 3, &good), "uid 9");
    let mut wrong_hotkey = submission("b1", 1, 3, &good);
    if let Payload::ResponseReceived(response) = &mut wrong_hotkey.payload {
        response.hotkey = account(2);
    }
    refused(&mut state, wrong_hotkey, "hotkey");
    let mut bad_body = submission("b1", 1, 3, &good);
    if let Payload::ResponseReceived(response) = &mut bad_body.payload {
        response.outcome = ResponseOutcome::Ok {
            body: r#"{"alert_ids": ["a1"], "scores": []}"#.into(),
        };
    }
    refused(&mut state, bad_body, "1 alert_ids but 0 scores");
    let mut not_json = submission("b1", 1, 3, &good);
    if let Payload::ResponseReceived(response) = &mut not_json.payload {
        response.outcome = ResponseOutcome::Ok {
            body: "I am a model".into(),
        };
    }
    refused(&mut state, not_json, "aml submission body");
    refused(
        &mut state,
        evaluation(
            EVALUATOR_TIER1,
            "b1",
            1,
            1.0,
            vec![("has_all_alerts", 1.0), ("score_range_valid", 1.0)],
        ),
        "lacks the metric `no_duplicates`",
    );
    refused(
        &mut state,
        evaluation(EVALUATOR_TIER2, "b1", 1, 1.0, vec![("entropy", 1.0)]),
        "unknown metric `entropy`",
    );
    refused(
        &mut state,
        evaluation(
            EVALUATOR_TIER1,
            "b1",
            1,
            1.0,
            TIER1_METRICS.iter().map(|metric| (*metric, 1.5)).collect(),
        ),
        "[0, 1]",
    );
    refused(
        &mut state,
        reveal("b1", &json!({"labels": {"a1": 3}})),
        "labels are 0 or 1",
    );
    refused(
        &mut state,
        reveal("b1", &json!({"risk": {}})),
        "aml truth_json",
    );
    refused(
        &mut state,
        reveal("b9", &json!({"labels": {}})),
        "never issued",
    );
    refused(
        &mut state,
        external(SOURCE_CONSENSUS, &json!({"consensus": {"a1": 0.5}})),
        "challenge_id",
    );
    refused(
        &mut state,
        profile(4, &json!({"config": {"tier2_wieght": 0.2}})),
        "tier2_wieght",
    );
    refused(&mut state, profile(4, &json!({"alpha": 0.3})), "alpha");
    refused(&mut state, batch("b1", 5, &json!({})), "already issued");

    // A miner with integrity checks but nothing to compute tier 2 from is refused when the
    // input is built, naming it.
    AmlScores
        .apply(
            &mut state,
            100,
            &evaluation(
                EVALUATOR_TIER1,
                "b1",
                1,
                1.0,
                TIER1_METRICS.iter().map(|metric| (*metric, 1.0)).collect(),
            ),
        )
        .unwrap();
    let error = AmlScores.input(&state).unwrap_err().to_string();
    assert!(error.contains("no submission"), "{error}");
    AmlScores
        .apply(&mut state, 101, &submission("b1", 1, 3, &good))
        .unwrap();
    let input = AmlScores.input(&state).unwrap();
    let hotkey = account(1).to_ss58();
    assert_eq!(
        input["miners"][&hotkey]["tier2_raw"]["address_of"],
        json!({"a1": "0xabc"})
    );
}

#[test]
fn newer_events_replace_older_ones() {
    let checks: Vec<(&str, f64)> = TIER1_METRICS.iter().map(|metric| (*metric, 1.0)).collect();
    let components: Vec<(&str, f64)> = TIER2_METRICS.iter().map(|metric| (*metric, 0.5)).collect();
    let alerts = |prefix: &str, n: usize| -> Vec<(String, f64)> {
        (0..n)
            .map(|i| (format!("{prefix}{i}"), 0.1 * i as f64))
            .collect()
    };
    let events = vec![
        profile(0, &json!({"config": {"flat_period_days": 1}})),
        metagraph(3, 0),
        batch("b0", 1, &json!({})),
        batch("b1", 2, &json!({})),
        submission("b0", 1, NOW_MS - 3 * DAY_MS - HOUR_MS, &alerts("x", 4)),
        submission("b1", 1, NOW_MS - HOUR_MS, &alerts("y", 5)),
        // A second submission to b1 replaces the first.
        submission("b1", 1, NOW_MS - HOUR_MS, &alerts("z", 3)),
        evaluation(EVALUATOR_TIER1, "b0", 1, 1.0, checks.clone()),
        evaluation(EVALUATOR_TIER2, "b0", 1, 1.0, components),
        reveal("b1", &json!({"labels": {"z0": 1, "z2": 0}})),
        // The newest label reveal the miner submitted to decides tier 3a.
        reveal("b0", &json!({"labels": {"x3": 1}})),
        reveal("b1", &json!({"patterns": {"z1": "dormant"}})),
        profile(NOW_MS, &json!({})),
    ];
    let mut state = fold_all(&events);
    let input = AmlScores.input(&state).unwrap();
    let hotkey = account(1).to_ss58();
    let miner = &input["miners"][&hotkey];
    assert_eq!(miner["days_since_submission"], json!(3));
    assert_eq!(
        miner["tier3a"],
        json!({"scores": [0.30000000000000004], "labels": [1], "total_alerts": 4})
    );
    assert_eq!(
        miner["tier3b"],
        json!({"scores": [0.1], "patterns": ["dormant"], "total_alerts": 3})
    );
    assert!(miner.get("tier2_raw").is_none() && miner["tier2"].is_object());
    assert!(
        input.get("config").is_none(),
        "the newest profile has no overrides"
    );
    // b1 is nobody's checked batch: its submissions are the design ensemble's alert scores.
    assert_eq!(
        input["alert_scores"],
        json!({ hotkey.clone(): {"z0": 0.0, "z1": 0.1, "z2": 0.2} })
    );
    // Once b1 is checked too (tier 2 from the raw submission), there is no ensemble batch.
    AmlScores
        .apply(
            &mut state,
            99,
            &evaluation(EVALUATOR_TIER1, "b1", 1, 1.0, checks),
        )
        .unwrap();
    let input = AmlScores.input(&state).unwrap();
    assert!(input.get("alert_scores").is_none());
    let raw = &input["miners"][&hotkey]["tier2_raw"];
    assert_eq!(raw["alert_ids"], json!(["z0", "z1", "z2"]));
    assert_eq!(
        raw["prev_scores"],
        json!({"x0": 0.0, "x1": 0.1, "x2": 0.2, "x3": 0.30000000000000004})
    );
    // A miner that left the metagraph (its uid has a new hotkey) is no longer scored.
    let mut replaced = metagraph(3, NOW_MS);
    if let Payload::MetagraphObserved(observed) = &mut replaced.payload {
        observed.neurons[1].hotkey = account(77);
    }
    AmlScores.apply(&mut state, 100, &replaced).unwrap();
    let input = AmlScores.input(&state).unwrap();
    assert_eq!(input["miners"], json!({}));
}
