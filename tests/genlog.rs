//! `gen-log`: every profile's synthetic log is a valid, verifiable log whose weight decisions
//! an auditor reproduces bit for bit from the events below each decision; generation is
//! deterministic; affine's evaluations re-run; the edit hook makes lying validators.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use tempfile::TempDir;
use weightlog::envs::{Environment, sat::Sat};
use weightlog::genlog::{self, GenError, GenOptions, PROFILES};
use weightlog::log::{LogReader, verify_log};
use weightlog_replay::projection::decision::{Decision, Recomputed};
use weightlog_replay::projection::registry::for_genesis;
use weightlog_schema::event::{ChallengeIssued, ResponseOutcome};
use weightlog_schema::{Event, EventKind, Payload, encode};

const BIN: &str = env!("CARGO_BIN_EXE_weightlog");

fn options(profile: &str, events: u64, seed: u64) -> GenOptions {
    GenOptions::new(profile, events, seed)
}

/// Every event of the log at `path`, in seq order.
fn read_log(path: &Path) -> Vec<Event> {
    let reader = LogReader::open(path).expect("open the generated log");
    let report = verify_log(&reader, |_| {}).expect("verify runs");
    assert!(report.is_ok(), "the generated log verifies: {report:?}");
    let snapshot = reader.snapshot().unwrap();
    let size = snapshot.size().unwrap();
    snapshot
        .range(0, size)
        .unwrap()
        .into_iter()
        .map(|(_, event)| event)
        .collect()
}

/// Re-folds `events` as an auditor would: at every `WeightsComputed`, the decision of the
/// events below its `log_size` must be the recorded one. Returns the recorded decisions, or
/// the seq of the first decision that does not reproduce.
fn audit(events: &[Event]) -> Result<Vec<Decision>, u64> {
    let mut running = for_genesis(&events[0]).expect("a projection for the genesis");
    let mut decisions = Vec::new();
    for (seq, event) in events.iter().enumerate() {
        let seq = seq as u64;
        if let Payload::WeightsComputed(recorded) = &event.payload {
            assert_eq!(recorded.log_size, seq, "log_size is the events folded");
            assert_eq!(recorded.mechanism, running.name());
            let recomputed = running.decision().expect("the decision recomputes");
            let Recomputed::Weights(decision) = recomputed else {
                panic!("seq {seq}: recorded weights, recomputed none: {recomputed:?}");
            };
            if decision != Decision::recorded(recorded) {
                return Err(seq);
            }
            decisions.push(decision);
        }
        running.apply(seq, event).expect("every event folds");
    }
    Ok(decisions)
}

fn kinds(events: &[Event]) -> BTreeMap<EventKind, u64> {
    let mut kinds = BTreeMap::new();
    for event in events {
        *kinds.entry(event.kind()).or_default() += 1;
    }
    kinds
}

/// A small log of `profile`: it verifies, equals the in-memory stream, holds at least two
/// non-empty decisions, each reproduced by an auditor.
fn check_profile(profile: &str, events: u64, expected_kinds: &[EventKind]) -> Vec<Event> {
    let directory = TempDir::new().unwrap();
    let path = directory.path().join(format!("{profile}.wlog"));
    let options = options(profile, events, 7);
    let summary = genlog::generate(&path, &options).expect("generate");
    assert_eq!(summary.events, events);
    assert_eq!(summary.signer_ss58, genlog::signing_key(7).ss58());
    let logged = read_log(&path);
    assert_eq!(logged.len() as u64, events);
    let streamed = genlog::events(&options).unwrap();
    assert_eq!(bytes(&logged), bytes(&streamed), "the log holds the stream");

    let decisions = audit(&logged).expect("every decision reproduces");
    assert!(
        decisions.len() >= 2,
        "{profile}: {} decisions",
        decisions.len()
    );
    assert_eq!(decisions.len() as u64, summary.decisions);
    for decision in &decisions {
        assert!(
            decision.u16_weights.iter().any(|weight| *weight > 0),
            "{profile}: a decision sets weights: {decision:?}"
        );
    }
    let found = kinds(&logged);
    for kind in expected_kinds {
        assert!(
            found.contains_key(kind),
            "{profile}: no {kind} in {found:?}"
        );
    }
    logged
}

fn bytes(events: &[Event]) -> Vec<Vec<u8>> {
    events.iter().map(|event| encode(event).unwrap()).collect()
}

const COMMON_KINDS: [EventKind; 4] = [
    EventKind::LogOpened,
    EventKind::MetagraphObserved,
    EventKind::WeightsComputed,
    EventKind::WeightsSubmitted,
];

#[test]
fn affine_log_verifies_and_its_decisions_reproduce() {
    let mut expected = COMMON_KINDS.to_vec();
    expected.extend([
        EventKind::EnvironmentRegistered,
        EventKind::ChallengeIssued,
        EventKind::ResponseReceived,
        EventKind::EvaluationRecorded,
        EventKind::ExternalScoreRecorded,
    ]);
    let events = check_profile("affine", 2_000, &expected);

    // Every evaluation is what the SAT environment says of the recorded challenge and
    // response.
    let mut challenges: BTreeMap<String, ChallengeIssued> = BTreeMap::new();
    let mut responses: BTreeMap<(String, u16), Option<String>> = BTreeMap::new();
    let mut evaluated = 0;
    let mut scores = [0u64; 2];
    for event in &events {
        match &event.payload {
            Payload::ChallengeIssued(challenge) => {
                challenges.insert(challenge.challenge_id.clone(), challenge.clone());
            }
            Payload::ResponseReceived(response) => {
                let body = match &response.outcome {
                    ResponseOutcome::Ok { body } => Some(body.clone()),
                    ResponseOutcome::Error { .. } => None,
                };
                responses.insert((response.challenge_id.clone(), response.uid), body);
            }
            Payload::EvaluationRecorded(evaluation) => {
                let challenge = &challenges[&evaluation.challenge_id];
                let body = &responses[&(evaluation.challenge_id.clone(), evaluation.uid)];
                let verdict = Sat.evaluate(challenge, body.as_deref()).unwrap();
                assert_eq!(verdict.score.to_bits(), evaluation.score.to_bits());
                assert_eq!(verdict.metrics, evaluation.metrics);
                scores[(evaluation.score > 0.5) as usize] += 1;
                evaluated += 1;
            }
            _ => {}
        }
    }
    assert!(evaluated > 500, "{evaluated} evaluations");
    assert!(
        scores[0] > 50 && scores[1] > 50,
        "both verdicts occur: {scores:?}"
    );
}

#[test]
fn generation_is_deterministic_and_seeded() {
    for profile in PROFILES {
        let first = genlog::events(&options(profile, 600, 3)).unwrap();
        let again = genlog::events(&options(profile, 600, 3)).unwrap();
        let other = genlog::events(&options(profile, 600, 4)).unwrap();
        assert_eq!(first.len(), 600);
        assert_eq!(
            bytes(&first),
            bytes(&again),
            "{profile}: same options, same bytes"
        );
        assert_ne!(
            bytes(&first),
            bytes(&other),
            "{profile}: another seed differs"
        );
        assert!(
            matches!(first[0].payload, Payload::LogOpened(_)),
            "{profile}: starts with LogOpened"
        );
    }
}

/// The state hash after folding a 3,000-event log (seed 1) of each profile. A checkpoint
/// holds the state's bincode bytes and an audit resumes from it, so a change to how a state
/// is laid out or serialised (a field added, `Arc` sharing without serde's `rc` form) must
/// show here, not as checkpoints that no longer restore. A deliberate change to a generator
/// or a state moves these values: say so in its commit.
#[test]
fn every_profile_state_hashes_as_pinned() {
    let pinned = [
        (
            "affine",
            "9b22005eda5b304710dd8e71e577ab0f26d8948a38bdfc8118f996aff43b220c",
        ),
        (
            "omega",
            "549264175e2474ce979e23c3ac7ace40cce379dc7963a5140bffa2e02c94a55d",
        ),
        (
            "loosh",
            "b2662ca85eddb61c22882a7d46153c6a063820ab1e0edb4788f0858beab06f93",
        ),
        (
            "quasar",
            "94ebf905d37c7cdeb44e7230b7b7c357b64ec09e59813c375b34a32d23ed403a",
        ),
        (
            "aml",
            "c18ad31ba99be0ab4de04b743ec0e68969ab7316d5af0157fe58c41eaddecd99",
        ),
    ];
    assert_eq!(pinned.map(|(profile, _)| profile), PROFILES);
    for (profile, expected) in pinned {
        let events = genlog::events(&options(profile, 3000, 1)).unwrap();
        let mut running = for_genesis(&events[0]).expect("a projection for the genesis");
        for (seq, event) in events.iter().enumerate() {
            running.apply(seq as u64, event).expect("every event folds");
        }
        assert_eq!(
            running.state_hash().unwrap().to_hex(),
            expected,
            "{profile}: the state hash moved"
        );
    }
}

#[test]
fn a_log_of_a_few_hundred_events_holds_two_decisions() {
    for profile in PROFILES {
        let events = genlog::events(&options(profile, 300, 1)).unwrap();
        let decisions = audit(&events).unwrap();
        assert!(
            decisions.len() >= 2,
            "{profile}: {} decisions",
            decisions.len()
        );
    }
}

#[test]
fn a_lying_validator_changes_the_later_weights() {
    let options = options("affine", 1_200, 11);
    let honest = genlog::events(&options).unwrap();
    // Fail every evaluation of the miner holding the most weight in the first decision.
    let first = honest
        .iter()
        .find_map(|event| match &event.payload {
            Payload::WeightsComputed(decision) => Some(decision.clone()),
            _ => None,
        })
        .unwrap();
    let (favourite, _) = first
        .u16_uids
        .iter()
        .zip(&first.u16_weights)
        .max_by_key(|(_, weight)| **weight)
        .unwrap();
    let favourite = *favourite;
    let mut lied = 0;
    let mut lie = |_seq: u64, event: &mut Event| {
        if let Payload::EvaluationRecorded(evaluation) = &mut event.payload
            && evaluation.uid == favourite
        {
            evaluation.score = 0.0;
            lied += 1;
        }
    };
    let directory = TempDir::new().unwrap();
    let path = directory.path().join("lying.wlog");
    genlog::generate_with(&path, &options, &mut lie).unwrap();
    assert!(lied > 0);
    let lying = read_log(&path);
    // The decisions follow the lie, so the audit of the events as recorded still passes...
    let decisions = audit(&lying).expect("the lie is folded into the decisions");
    let honest_decisions = audit(&honest).unwrap();
    assert_eq!(decisions.len(), honest_decisions.len());
    // ...but the weights differ from the honest ones.
    assert_ne!(decisions, honest_decisions, "the lie changed the weights");
}

#[test]
fn a_careless_validator_is_caught_by_the_audit() {
    let options = options("affine", 800, 5);
    let mut edit = |_seq: u64, event: &mut Event| {
        if let Payload::WeightsComputed(decision) = &mut event.payload
            && let Some(weight) = decision.u16_weights.first_mut()
        {
            *weight = weight.wrapping_add(1);
        }
    };
    let mut events = Vec::new();
    genlog::for_each_event(&options, &mut edit, &mut |_, event| {
        events.push(event);
        Ok(())
    })
    .unwrap();
    let first = events
        .iter()
        .position(|event| event.kind() == EventKind::WeightsComputed)
        .unwrap() as u64;
    assert_eq!(
        audit(&events),
        Err(first),
        "the audit names the edited decision"
    );
}

#[test]
fn bad_options_are_clear_errors() {
    let error = genlog::events(&options("bittensor", 100, 1)).unwrap_err();
    assert!(matches!(error, GenError::UnknownProfile { .. }));
    let message = error.to_string();
    for profile in PROFILES {
        assert!(message.contains(profile), "{message}");
    }
    assert!(matches!(
        genlog::events(&options("affine", 1, 1)),
        Err(GenError::TooFewEvents { .. })
    ));
    let mut no_miners = options("affine", 100, 1);
    no_miners.miners = 0;
    assert!(matches!(
        genlog::events(&no_miners),
        Err(GenError::Miners { .. })
    ));
    let directory = TempDir::new().unwrap();
    let path = directory.path().join("taken");
    std::fs::write(&path, b"not a log").unwrap();
    assert!(matches!(
        genlog::generate(&path, &options("affine", 100, 1)),
        Err(GenError::AlreadyExists { .. })
    ));
    assert_eq!(std::fs::read(&path).unwrap(), b"not a log");
}

#[test]
fn the_command_writes_a_log_and_refuses_an_existing_path() {
    let directory = TempDir::new().unwrap();
    let path = directory.path().join("cli.wlog");
    let run = |args: &[&str]| {
        Command::new(BIN)
            .args(args)
            .output()
            .expect("run the weightlog binary")
    };
    let path_text = path.to_str().unwrap();
    let args = [
        "gen-log",
        "--events",
        "500",
        "--profile",
        "affine",
        "--seed",
        "9",
        "--miners",
        "8",
        path_text,
    ];
    let output = run(&args);
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.contains("500 events"), "{stdout}");
    assert!(stdout.contains(path_text), "{stdout}");
    assert!(stdout.contains(&genlog::signing_key(9).ss58()), "{stdout}");
    assert_eq!(read_log(&path).len(), 500);

    let again = run(&args);
    assert_eq!(again.status.code(), Some(1));
    let stderr = String::from_utf8(again.stderr).unwrap();
    assert!(stderr.contains("already exists"), "{stderr}");

    let unknown = run(&[
        "gen-log",
        "--events",
        "10",
        "--profile",
        "nope",
        directory.path().join("other").to_str().unwrap(),
    ]);
    assert_eq!(unknown.status.code(), Some(1));
    let stderr = String::from_utf8(unknown.stderr).unwrap();
    assert!(
        stderr.contains("affine, omega, loosh, quasar, aml"),
        "{stderr}"
    );
}

#[test]
fn omega_log_verifies_and_its_decisions_reproduce() {
    let mut expected = COMMON_KINDS.to_vec();
    expected.extend([
        EventKind::ChallengeIssued,
        EventKind::ResponseReceived,
        EventKind::EvaluationRecorded,
        EventKind::ExternalScoreRecorded,
    ]);
    check_profile("omega", 1_500, &expected);
}

#[test]
fn loosh_log_verifies_and_its_decisions_reproduce() {
    let mut expected = COMMON_KINDS.to_vec();
    expected.extend([
        EventKind::ChallengeIssued,
        EventKind::ResponseReceived,
        EventKind::EvaluationRecorded,
        EventKind::ExternalScoreRecorded,
    ]);
    check_profile("loosh", 1_500, &expected);
}

#[test]
fn quasar_log_verifies_and_its_decisions_reproduce() {
    let mut expected = COMMON_KINDS.to_vec();
    expected.extend([
        EventKind::ChallengeIssued,
        EventKind::ResponseReceived,
        EventKind::EvaluationRecorded,
    ]);
    check_profile("quasar", 1_500, &expected);
}

#[test]
fn aml_log_verifies_and_its_decisions_reproduce() {
    let mut expected = COMMON_KINDS.to_vec();
    expected.extend([
        EventKind::ChallengeIssued,
        EventKind::ResponseReceived,
        EventKind::EvaluationRecorded,
        EventKind::ExternalScoreRecorded,
        EventKind::GroundTruthRevealed,
    ]);
    check_profile("aml", 1_500, &expected);
}

#[test]
fn a_long_log_holds_every_kind_a_validator_writes() {
    let mut found = BTreeMap::new();
    let summary = genlog::for_each_event(
        &options("affine", 10_000, 2),
        &mut |_, _| {},
        &mut |_, event| {
            *found.entry(event.kind()).or_insert(0u64) += 1;
            Ok(())
        },
    )
    .unwrap();
    assert_eq!(summary.events, 10_000);
    assert!(
        found[&EventKind::MetagraphObserved] >= 2,
        "a metagraph every tempo: {found:?}"
    );
    for kind in [
        EventKind::ChallengeIssued,
        EventKind::ResponseReceived,
        EventKind::EvaluationRecorded,
        EventKind::ExternalScoreRecorded,
        EventKind::WeightsComputed,
        EventKind::WeightsSubmitted,
    ] {
        assert!(found.contains_key(&kind), "no {kind}: {found:?}");
    }
    let by_name: BTreeMap<&str, u64> = found.iter().map(|(kind, n)| (kind.name(), *n)).collect();
    assert_eq!(
        summary.kinds, by_name,
        "the summary counts the kinds written"
    );
}

/// Over a dozen thousand events the metagraph is observed a few times and a uid changes
/// hands; every profile's decisions still reproduce.
#[test]
fn decisions_reproduce_when_a_uid_changes_hands() {
    for profile in PROFILES {
        let events = genlog::events(&options(profile, 12_000, 3)).unwrap();
        let mut hotkeys = std::collections::BTreeSet::new();
        let mut metagraphs = 0;
        for event in &events {
            if let Payload::MetagraphObserved(metagraph) = &event.payload {
                metagraphs += 1;
                hotkeys.extend(metagraph.neurons.iter().map(|neuron| neuron.hotkey));
            }
        }
        assert!(metagraphs >= 3, "{profile}: {metagraphs} metagraphs");
        assert!(
            hotkeys.len() > usize::from(genlog::MINERS_DEFAULT),
            "{profile}: some uid changed hands"
        );
        let decisions = audit(&events).expect("every decision reproduces");
        assert!(
            decisions.len() >= 40,
            "{profile}: {} decisions",
            decisions.len()
        );
    }
}
