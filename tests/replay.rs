//! The auditor (`weightlog replay verify`) on generated logs: honest logs match at every
//! thread count; a lying validator is caught only by re-evaluation; a careless one at its
//! decision, naming the uids; tampering at the seq; resuming reads only the new events.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::tamper::{rebuild_everything, with_table};
use redb::ReadableTable;
use weightlog::audit::{AuditCheckpoint, AuditOptions, AuditReport, LogSource, Verdict, audit};
use weightlog::genlog::{self, GenOptions, PROFILES};
use weightlog::log::LogReader;
use weightlog::log::tables::{CHECKPOINTS, EVENTS};
use weightlog_schema::event::Metric;
use weightlog_schema::{Payload, SignedCheckpoint, codec};

const BIN: &str = env!("CARGO_BIN_EXE_weightlog");

fn generated(directory: &Path, profile: &str, events: u64) -> PathBuf {
    let path = directory.join(format!("{profile}.redb"));
    genlog::generate(&path, &GenOptions::new(profile, events, 5)).expect("generate");
    path
}

fn run(path: &Path, options: AuditOptions) -> (AuditReport, Option<AuditCheckpoint>) {
    let source = LogSource::new(LogReader::open(path).expect("open"));
    audit(&source, &options, &|_| {}).expect("audit runs")
}

fn with_threads(threads: usize) -> AuditOptions {
    AuditOptions {
        threads,
        ..AuditOptions::default()
    }
}

fn finding(report: &AuditReport) -> &weightlog::audit::Finding {
    match &report.verdict {
        Verdict::Match => panic!("expected a finding: {report:?}"),
        Verdict::Tampered(finding) | Verdict::Invalid(finding) | Verdict::Diverged(finding) => {
            finding
        }
    }
}

#[test]
fn every_profile_replays_identically_at_1_2_and_8_threads() {
    let directory = tempfile::tempdir().unwrap();
    for profile in PROFILES {
        let path = generated(directory.path(), profile, 2_500);
        let (one, _) = run(&path, with_threads(1));
        assert_eq!(one.verdict, Verdict::Match, "{profile}: {one:?}");
        assert!(one.decisions_checked >= 2, "{profile}: {one:?}");
        assert_eq!(one.events_checked, 2_500);
        assert!(one.checkpoints_checked >= 3);
        for threads in [2, 8] {
            let (many, _) = run(&path, with_threads(threads));
            assert_eq!(many, one, "{profile} at {threads} threads");
        }
    }
}

/// Makes the evaluation of one wrong SAT answer say it was right, as a validator favouring
/// a miner would; the weights computed later follow the inflated score.
fn lying(directory: &Path) -> (PathBuf, u64) {
    let path = directory.join("liar.redb");
    let mut lied_at = None;
    let options = GenOptions::new("affine", 3_000, 9);
    genlog::generate_with(&path, &options, &mut |seq, event| {
        if let Payload::EvaluationRecorded(evaluation) = &mut event.payload
            && lied_at.is_none()
            && seq > 500
            && evaluation.score == 0.0
        {
            evaluation.score = 1.0;
            evaluation.metrics = vec![Metric {
                name: "clauses_satisfied".into(),
                value: 63.0,
            }];
            lied_at = Some(seq);
        }
    })
    .expect("generate");
    (path, lied_at.expect("a wrong answer to inflate"))
}

#[test]
fn a_lying_validator_passes_the_chain_and_weights_but_not_re_evaluation() {
    let directory = tempfile::tempdir().unwrap();
    let (path, lied_at) = lying(directory.path());
    let (plain, _) = run(&path, with_threads(2));
    assert_eq!(plain.verdict, Verdict::Match, "{plain:?}");
    assert!(plain.decisions_checked >= 2);

    let (audited, _) = run(
        &path,
        AuditOptions {
            threads: 2,
            re_evaluate: true,
            ..AuditOptions::default()
        },
    );
    assert!(audited.evaluations_checked > 100, "{audited:?}");
    assert_eq!(audited.evaluations_diverged, 1, "{audited:?}");
    let Verdict::Diverged(finding) = &audited.verdict else {
        panic!("{audited:?}");
    };
    assert_eq!(finding.seq, lied_at);
    assert_eq!(finding.kind, "EvaluationRecorded");
    assert_eq!(finding.recorded.as_ref().unwrap()["score"], 1.0);
    assert_eq!(finding.recomputed.as_ref().unwrap()["score"], 0.0);
}

#[test]
fn a_careless_validator_is_named_at_its_decision_with_the_uids() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("careless.redb");
    let mut decisions = 0;
    let mut changed = None;
    let options = GenOptions::new("omega", 3_000, 4);
    genlog::generate_with(&path, &options, &mut |seq, event| {
        if let Payload::WeightsComputed(computed) = &mut event.payload {
            decisions += 1;
            if decisions == 2 && computed.u16_weights.len() >= 2 {
                // Hands one miner's weight to another.
                computed.u16_weights.swap(0, 1);
                if computed.u16_weights[0] != computed.u16_weights[1] {
                    changed = Some((seq, [computed.u16_uids[0], computed.u16_uids[1]]));
                }
            }
        }
    })
    .expect("generate");
    let (seq, uids) = changed.expect("a decision with two different weights");
    let (report, _) = run(&path, with_threads(2));
    let Verdict::Diverged(finding) = &report.verdict else {
        panic!("{report:?}");
    };
    assert_eq!(finding.seq, seq);
    assert_eq!(finding.kind, "WeightsComputed");
    let mut expected = uids.to_vec();
    expected.sort_unstable();
    assert_eq!(finding.uids, expected);
    assert!(finding.recorded.is_some() && finding.recomputed.is_some());
    assert_eq!(report.decisions_diverged, 1);
}

/// Replaces the stored bytes of `seq` with a valid event that says something else.
fn rewrite_event(path: &Path, seq: u64) {
    with_table(path, |transaction| {
        let mut events = transaction.open_table(EVENTS).unwrap();
        let bytes = events.get(seq).unwrap().unwrap().value().to_vec();
        let mut event = codec::decode(&bytes).unwrap();
        event.timestamp_ms += 1;
        events
            .insert(seq, codec::encode(&event).unwrap().as_slice())
            .unwrap();
    });
}

#[test]
fn an_event_changed_in_place_is_tampered_at_its_seq() {
    let directory = tempfile::tempdir().unwrap();
    let path = generated(directory.path(), "affine", 2_200);
    rewrite_event(&path, 1_234);
    let (report, _) = run(&path, with_threads(2));
    assert!(matches!(report.verdict, Verdict::Tampered(_)), "{report:?}");
    assert_eq!(finding(&report).seq, 1_234);

    // A careful forger also rebuilds the leaves and tree: the signed root still differs,
    // and the finding names the first seq of the commit the checkpoint covers.
    rebuild_everything(&path, None);
    let (report, _) = run(&path, with_threads(2));
    let found = finding(&report);
    assert!(matches!(report.verdict, Verdict::Tampered(_)));
    // gen-log commits the genesis alone, then 1,000 events at a time: 1..=1000, 1001..=2000.
    assert_eq!(found.seq, 1_001, "{found:?}");
    assert!(found.reason.contains("signed root"), "{found:?}");
}

#[test]
fn a_history_resigned_with_another_key_is_tampered() {
    let directory = tempfile::tempdir().unwrap();
    let path = generated(directory.path(), "quasar", 1_500);
    rewrite_event(&path, 700);
    let intruder = weightlog::keys::Hotkey::from_seed(&[9; 32]);
    rebuild_everything(&path, Some(&intruder));
    let (report, _) = run(&path, with_threads(2));
    let found = finding(&report);
    assert!(matches!(report.verdict, Verdict::Tampered(_)), "{report:?}");
    assert!(found.reason.contains("signed by"), "{found:?}");
    assert_eq!(
        found.seq, 0,
        "the first checkpoint is re-signed too: {found:?}"
    );
}

#[test]
fn a_checkpoint_resigned_with_another_key_is_tampered_at_its_range() {
    let directory = tempfile::tempdir().unwrap();
    let path = generated(directory.path(), "aml", 2_500);
    with_table(&path, |transaction| {
        let mut checkpoints = transaction.open_table(CHECKPOINTS).unwrap();
        // gen-log commits the genesis alone, then 1,000 events at a time.
        let text = checkpoints.get(2_001).unwrap().unwrap().value().to_string();
        let old = SignedCheckpoint::parse(&text).unwrap();
        let intruder = weightlog::keys::Hotkey::from_seed(&[3; 32]);
        let forged = old
            .checkpoint
            .sign(intruder.public(), |message| intruder.sign(message));
        checkpoints
            .insert(2_001, forged.to_text().as_str())
            .unwrap();
    });
    let (report, _) = run(&path, with_threads(2));
    let found = finding(&report);
    assert!(matches!(report.verdict, Verdict::Tampered(_)), "{report:?}");
    assert_eq!(found.seq, 1_001);
    assert!(
        found.reason.contains("checkpoint at size 2001"),
        "{found:?}"
    );
}

#[test]
fn a_removed_event_is_tampered_at_its_seq() {
    let directory = tempfile::tempdir().unwrap();
    let path = generated(directory.path(), "loosh", 1_500);
    with_table(&path, |transaction| {
        transaction.open_table(EVENTS).unwrap().remove(612).unwrap();
    });
    let (report, _) = run(&path, with_threads(2));
    let found = finding(&report);
    assert!(matches!(report.verdict, Verdict::Tampered(_)), "{report:?}");
    assert_eq!(found.seq, 612);
    assert!(found.reason.contains("removed"), "{found:?}");
}

#[test]
fn resuming_from_a_checkpoint_reads_only_the_new_events() {
    let directory = tempfile::tempdir().unwrap();
    let path = generated(directory.path(), "affine", 3_000);
    let (full, not_asked) = run(&path, with_threads(2));
    assert_eq!(full.verdict, Verdict::Match);
    assert!(
        not_asked.is_none(),
        "a checkpoint is captured only when asked for"
    );

    // The checkpoint sits the decision lag (here 500 events) before the fold limit, so
    // the next audit can recompute a decision recorded late.
    let (first, saved) = run(
        &path,
        AuditOptions {
            threads: 2,
            until: Some(1_999),
            decision_lag_events: 500,
            save_checkpoint: true,
            ..AuditOptions::default()
        },
    );
    assert_eq!(first.verdict, Verdict::Match);
    assert_eq!(first.folded_to, 2_000);
    let saved = saved.expect("a checkpoint before the fold limit");
    assert_eq!((saved.next_seq(), saved.checked_to()), (1_500, 2_000));
    let bytes = saved.to_bytes().unwrap();
    // An audit of `log` resumed from the saved checkpoint, read back from its bytes.
    let resumed_on = |log: &Path| {
        run(
            log,
            AuditOptions {
                threads: 2,
                from_checkpoint: Some(AuditCheckpoint::from_bytes(&bytes).unwrap()),
                ..AuditOptions::default()
            },
        )
        .0
    };
    let second = resumed_on(&path);
    assert_eq!(second.verdict, Verdict::Match, "{second:?}");
    assert_eq!(second.resumed_from, 1_500);
    assert_eq!(
        second.events_checked, 1_500,
        "only the new events and the lag window are read"
    );
    assert_eq!(second.state_hash, full.state_hash);
    assert_eq!(second.root, full.root);
    assert_eq!(
        first.decisions_checked + second.decisions_checked,
        full.decisions_checked
    );

    // The same log with its history below the resume point rewritten and signed again by
    // its own key: it verifies alone, but not from this checkpoint, and the finding says
    // that the resumed history may be what differs.
    let rewritten = directory.path().join("rewritten.redb");
    std::fs::copy(&path, &rewritten).unwrap();
    rewrite_event(&rewritten, 100);
    rebuild_everything(&rewritten, Some(&genlog::signing_key(5)));
    let (alone, _) = run(&rewritten, with_threads(2));
    assert!(
        matches!(alone.verdict, Verdict::Match | Verdict::Diverged(_)),
        "{alone:?}"
    );
    let resumed = resumed_on(&rewritten);
    let found = finding(&resumed);
    assert!(
        matches!(resumed.verdict, Verdict::Tampered(_)),
        "{resumed:?}"
    );
    assert!(found.reason.contains("resume point 1500"), "{found:?}");

    // A log shorter than the resume point lost events; the report's projection and root
    // are those of the checkpoint, at its size, not labelled with the shorter log's.
    let shorter = directory.path().join("shorter");
    std::fs::create_dir(&shorter).unwrap();
    let short = generated(&shorter, "affine", 1_200);
    let cut_short = resumed_on(&short);
    assert!(
        matches!(cut_short.verdict, Verdict::Tampered(_)),
        "{cut_short:?}"
    );
    assert_eq!(
        (cut_short.log_size, cut_short.folded_to, cut_short.root_size),
        (1_200, 1_500, 1_500)
    );

    // A damaged checkpoint file is refused, and one of another log is not used.
    let mut damaged = bytes.clone();
    let middle = damaged.len() / 2;
    damaged[middle] ^= 1;
    assert_eq!(
        AuditCheckpoint::from_bytes(&damaged)
            .unwrap_err()
            .to_string(),
        "audit checkpoint: its digest does not match its content; the file was changed or damaged"
    );
    let cut = &bytes[..bytes.len() - 5];
    assert_eq!(
        AuditCheckpoint::from_bytes(cut).unwrap_err().to_string(),
        "audit checkpoint: not an audit checkpoint: the bytes end too soon"
    );
    let other = generated(directory.path(), "omega", 300);
    let source = LogSource::new(LogReader::open(&other).unwrap());
    let options = AuditOptions {
        from_checkpoint: Some(AuditCheckpoint::from_bytes(&bytes).unwrap()),
        ..AuditOptions::default()
    };
    let error = audit(&source, &options, &|_| {}).unwrap_err();
    assert!(error.to_string().contains("is for log"), "{error}");
}

#[test]
fn the_cli_exit_codes_say_match_tampered_and_diverged() {
    let directory = tempfile::tempdir().unwrap();
    let good = generated(directory.path(), "omega", 1_200);
    let verify = |path: &Path, extra: &[&str]| {
        let output = Command::new(BIN)
            .args(["replay", "verify", "--json", "--threads", "2"])
            .args(extra)
            .arg(path)
            .output()
            .unwrap();
        let json: serde_json::Value = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|error| panic!("{error}: {output:?}"));
        (output.status.code(), json)
    };
    let saved = directory.path().join("audit.checkpoint");
    let (code, json) = verify(&good, &["--save-checkpoint", saved.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{json}");
    assert_eq!(json["verdict"], "match");
    assert_eq!(
        json["checkpoint_saved"]["next_seq"],
        1_200 - 1_024,
        "{json}"
    );

    // A fold limit closer to the genesis than the decision lag leaves no state to save:
    // the report says so, rather than blaming a mismatch.
    let early = directory.path().join("early.checkpoint");
    let (code, json) = verify(
        &good,
        &[
            "--until",
            "500",
            "--save-checkpoint",
            early.to_str().unwrap(),
        ],
    );
    assert_eq!(
        (code, &json["verdict"]),
        (Some(0), &serde_json::json!("match"))
    );
    assert_eq!(json["checkpoint_saved"], serde_json::Value::Null, "{json}");
    let reason = json["checkpoint_not_saved"].as_str().unwrap_or_default();
    assert!(reason.contains("--decision-lag (1024)"), "{json}");
    assert!(!early.exists());

    // Usage errors are errors (1), not the tampered code (2) clap would give them.
    for extra in [
        &["--threads", "abc"][..],
        &["--threads", "5000"],
        &["--until", "-1"],
    ] {
        let output = Command::new(BIN)
            .args(["replay", "verify"])
            .args(extra)
            .arg(&good)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1), "{extra:?}: {output:?}");
    }
    let (code, json) = verify(&good, &["--from-checkpoint", saved.to_str().unwrap()]);
    // Only the decision lag window before the saved end is read again.
    let window = weightlog::audit::DECISION_LAG_EVENTS_MAX;
    assert_eq!(
        (code, json["events_checked"].as_u64()),
        (Some(0), Some(window))
    );

    let (liar, lied_at) = lying(directory.path());
    let (code, json) = verify(&liar, &["--re-evaluate"]);
    assert_eq!(code, Some(3), "{json}");
    assert_eq!(json["verdict"], "diverged");
    assert_eq!(json["seq"], lied_at);

    rewrite_event(&good, 100);
    let (code, json) = verify(&good, &[]);
    assert_eq!(code, Some(2), "{json}");
    assert_eq!(json["verdict"], "tampered");
    assert_eq!(json["seq"], 100);

    if cfg!(feature = "embed") {
        // Re-embedding (with the real model) does not change what a tampered log is.
        let (code, json) = verify(&good, &["--re-embed"]);
        assert_eq!(code, Some(2), "{json}");
        assert_eq!(json["verdict"], "tampered");
        assert_eq!(json["seq"], 100);
    } else {
        // An auditor's build without the embedder says so, and audits nothing.
        let output = Command::new(BIN)
            .args(["replay", "verify", "--re-embed"])
            .arg(&good)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("without its `embed` feature"), "{stderr}");
    }
}

/// A generated omega log that switches to `legacy_winrate` at its end, followed by the
/// decision the new mode computes over the whole log (what the validator's node records).
fn switched_to_legacy_winrate() -> Vec<weightlog_schema::Event> {
    use weightlog_replay::projection::decision::Recomputed;
    use weightlog_replay::projection::registry::for_profile;
    use weightlog_schema::event::{ProfileChanged, WeightsComputed};
    use weightlog_schema::{Event, codec::parameters_hash_of};

    let mut events = genlog::events(&GenOptions::new("omega", 800, 2)).unwrap();
    let parameters_json = r#"{"mode":"legacy_winrate"}"#.to_string();
    let timestamp_ms = events.last().unwrap().timestamp_ms + 1;
    events.push(Event::new(
        timestamp_ms,
        Payload::ProfileChanged(ProfileChanged {
            profile: "omega".into(),
            parameters_hash: parameters_hash_of(&parameters_json),
            parameters_json: parameters_json.clone(),
        }),
    ));
    let mut legacy = for_profile("omega", &parameters_json).unwrap();
    for (seq, event) in events.iter().enumerate() {
        legacy.apply(seq as u64, event).unwrap();
    }
    let Recomputed::Weights(decision) = legacy.decision().unwrap() else {
        panic!("legacy_winrate sets weights on a generated omega log");
    };
    let honest = WeightsComputed {
        block: 1,
        mechanism: legacy.name().into(),
        parameters_hash: parameters_hash_of(&parameters_json),
        log_size: events.len() as u64,
        uids: decision.uids,
        raw_weight_bits: decision.raw_weight_bits,
        u16_uids: decision.u16_uids,
        u16_weights: decision.u16_weights,
    };
    events.push(Event::new(timestamp_ms, Payload::WeightsComputed(honest)));
    events
}

/// An auditor's build without the sandbox cannot run a miner's program: it counts those
/// evaluations as not re-run, not as divergences.
#[cfg(not(feature = "sandbox"))]
#[test]
fn without_the_sandbox_evaluations_that_run_code_are_not_re_run() {
    use weightlog::audit::MemorySource;
    use weightlog::envs::{Environment, ded};
    use weightlog_schema::Event;
    use weightlog_schema::event::{EvaluationRecorded, ResponseOutcome, ResponseReceived};

    let mut events = genlog::events(&GenOptions::new("affine", 300, 3)).unwrap();
    let options = AuditOptions {
        re_evaluate: true,
        ..with_threads(2)
    };
    let (before, _) = audit(&MemorySource::new(&events).unwrap(), &options, &|_| {}).unwrap();
    let (uid, hotkey) = common::first_responder(&events);
    let issued = common::issued_challenge(&ded::Ded, 12, &serde_json::json!({}));
    let timestamp_ms = events.last().unwrap().timestamp_ms;
    events.extend([
        Event::new(timestamp_ms + 1, Payload::ChallengeIssued(issued.clone())),
        Event::new(
            timestamp_ms + 2,
            Payload::ResponseReceived(ResponseReceived {
                challenge_id: issued.challenge_id.clone(),
                uid,
                hotkey,
                outcome: ResponseOutcome::Ok {
                    body: "print(1)".into(),
                },
                latency_ms: 10,
                attempts: 1,
                miner_signature: None,
            }),
        ),
        Event::new(
            timestamp_ms + 3,
            Payload::EvaluationRecorded(EvaluationRecorded {
                challenge_id: issued.challenge_id,
                uid,
                score: 1.0,
                metrics: Vec::new(),
                evaluator: ded::Ded.evaluators()[0].into(),
                fuel_used: Some(1),
            }),
        ),
    ]);
    let (report, _) = audit(&MemorySource::new(&events).unwrap(), &options, &|_| {}).unwrap();
    assert_eq!(report.verdict, Verdict::Match, "{report:?}");
    assert_eq!(report.evaluations_checked, before.evaluations_checked);
    assert_eq!(
        report.evaluations_not_rerun,
        before.evaluations_not_rerun + 1
    );
}

#[test]
fn a_log_whose_profile_has_no_projection_reports_no_state_hash() {
    use weightlog::audit::MemorySource;

    // A generated log up to its first decision, opened under a profile no projection knows.
    let mut events = genlog::events(&GenOptions::new("omega", 300, 1)).unwrap();
    let decision = events
        .iter()
        .position(|event| matches!(event.payload, Payload::WeightsComputed(_)))
        .unwrap_or(events.len());
    events.truncate(decision);
    let Payload::LogOpened(opened) = &mut events[0].payload else {
        panic!("a generated log opens with LogOpened");
    };
    opened.profile = "custom".into();
    let source = MemorySource::new(&events).unwrap();
    let (report, _) = audit(&source, &with_threads(2), &|_| {}).unwrap();
    assert_eq!(report.verdict, Verdict::Match, "{report:?}");
    assert_eq!(
        (report.projection.as_str(), report.state_hash),
        ("none", None)
    );
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["state_hash"], serde_json::Value::Null, "{json}");
}

/// A built-in profile with parameters its projection cannot use is not a log with no
/// projection (which would pass with nothing recomputed): it is invalid where they appear.
#[test]
fn a_built_in_profile_with_parameters_it_cannot_use_is_invalid() {
    use weightlog::audit::MemorySource;
    use weightlog_schema::codec::parameters_hash_of;
    use weightlog_schema::event::ProfileChanged;

    let invalid_at = |events: &[weightlog_schema::Event]| {
        let (report, _) = audit(
            &MemorySource::new(events).unwrap(),
            &with_threads(2),
            &|_| {},
        )
        .unwrap();
        let Verdict::Invalid(finding) = report.verdict else {
            panic!("{report:?}");
        };
        finding
    };
    let nonsense = r#"{"mode":"nonsense"}"#.to_string();
    let mut events = genlog::events(&GenOptions::new("omega", 300, 1)).unwrap();
    let Payload::LogOpened(opened) = &mut events[0].payload else {
        panic!("a generated log opens with LogOpened");
    };
    opened.parameters_hash = parameters_hash_of(&nonsense);
    opened.parameters_json = nonsense.clone();
    let finding = invalid_at(&events);
    assert_eq!((finding.seq, finding.kind.as_str()), (0, "LogOpened"));
    assert!(finding.reason.contains("no mode `nonsense`"), "{finding:?}");

    // The same through a profile change half way.
    let mut events = genlog::events(&GenOptions::new("omega", 300, 1)).unwrap();
    let timestamp_ms = events[150].timestamp_ms;
    events.insert(
        150,
        weightlog_schema::Event::new(
            timestamp_ms,
            Payload::ProfileChanged(ProfileChanged {
                profile: "omega".into(),
                parameters_hash: parameters_hash_of(&nonsense),
                parameters_json: nonsense,
            }),
        ),
    );
    events.truncate(151);
    let finding = invalid_at(&events);
    assert_eq!(
        (finding.seq, finding.kind.as_str()),
        (150, "ProfileChanged")
    );
}

#[test]
fn a_profile_change_to_another_mode_switches_the_projection_over_the_whole_log() {
    use weightlog::audit::MemorySource;

    let mut events = switched_to_legacy_winrate();
    let source = MemorySource::new(&events).unwrap();
    let (report, _) = audit(&source, &with_threads(2), &|_| {}).unwrap();
    assert_eq!(report.verdict, Verdict::Match, "{report:?}");
    assert_eq!(report.projection, "omega/legacy_winrate");

    // The same decision recorded under the old mode's name is a divergence.
    let last = events.len() - 1;
    if let Payload::WeightsComputed(computed) = &mut events[last].payload {
        computed.mechanism = "omega/two_pool".into();
    }
    let source = MemorySource::new(&events).unwrap();
    let (report, _) = audit(&source, &with_threads(2), &|_| {}).unwrap();
    let Verdict::Diverged(found) = &report.verdict else {
        panic!("{report:?}");
    };
    assert_eq!(found.seq, last as u64);
    assert!(found.reason.contains("omega/legacy_winrate"), "{found:?}");
}

#[test]
fn a_profile_switch_after_a_resume_rehashes_the_history_it_refolds() {
    use weightlog::audit::MemorySource;

    let events = switched_to_legacy_winrate();
    let source = MemorySource::new(&events).unwrap();
    let options = AuditOptions {
        threads: 2,
        until: Some(499),
        decision_lag_events: 0,
        save_checkpoint: true,
        ..AuditOptions::default()
    };
    let (first, saved) = audit(&source, &options, &|_| {}).unwrap();
    assert_eq!(first.verdict, Verdict::Match, "{first:?}");
    let saved = saved.expect("a checkpoint at seq 500");
    let resumed = || AuditOptions {
        threads: 2,
        from_checkpoint: Some(saved.clone()),
        decision_lag_events: 0,
        ..AuditOptions::default()
    };

    // Unchanged, the resumed audit matches and ends in the new mode.
    let (report, _) = audit(&source, &resumed(), &|_| {}).unwrap();
    assert_eq!(report.verdict, Verdict::Match, "{report:?}");
    assert_eq!(report.projection, "omega/legacy_winrate");

    // The history below the resume point changes: the switch refolds it and must notice.
    let mut changed = events.clone();
    changed[100].timestamp_ms += 1;
    let source = MemorySource::new(&changed).unwrap();
    let (report, _) = audit(&source, &resumed(), &|_| {}).unwrap();
    let Verdict::Tampered(found) = &report.verdict else {
        panic!("{report:?}");
    };
    assert!(found.reason.contains("history was changed"), "{found:?}");
}

#[test]
fn a_decision_recorded_after_the_save_point_but_computed_before_it_is_recomputed_on_resume() {
    use weightlog::audit::MemorySource;
    use weightlog_replay::projection::decision::Recomputed;
    use weightlog_replay::projection::registry::for_genesis;

    // A live node computes at log size L and records the decision a few events later.
    let mut events = genlog::events(&GenOptions::new("omega", 1_200, 3)).unwrap();
    let decision_seq = events
        .iter()
        .rposition(|event| matches!(event.payload, Payload::WeightsComputed(_)))
        .expect("a decision");
    let lagged_size = decision_seq as u64 - 5;
    let mut projection = for_genesis(&events[0]).unwrap();
    for (seq, event) in events.iter().enumerate().take(lagged_size as usize) {
        projection.apply(seq as u64, event).unwrap();
    }
    let Recomputed::Weights(decision) = projection.decision().unwrap() else {
        panic!("omega sets weights here");
    };
    if let Payload::WeightsComputed(computed) = &mut events[decision_seq].payload {
        computed.log_size = lagged_size;
        computed.uids = decision.uids;
        computed.raw_weight_bits = decision.raw_weight_bits;
        computed.u16_uids = decision.u16_uids;
        computed.u16_weights = decision.u16_weights;
    }
    let source = MemorySource::new(&events).unwrap();
    let (full, _) = audit(&source, &with_threads(2), &|_| {}).unwrap();
    assert_eq!(full.verdict, Verdict::Match, "{full:?}");

    // The first audit ends between the computation and the record.
    let options = AuditOptions {
        threads: 2,
        until: Some(decision_seq as u64 - 2),
        decision_lag_events: 64,
        save_checkpoint: true,
        ..AuditOptions::default()
    };
    let (first, saved) = audit(&source, &options, &|_| {}).unwrap();
    assert_eq!(first.verdict, Verdict::Match, "{first:?}");
    let resumed = AuditOptions {
        threads: 2,
        from_checkpoint: saved,
        decision_lag_events: 64,
        ..AuditOptions::default()
    };
    let (second, _) = audit(&source, &resumed, &|_| {}).unwrap();
    assert_eq!(second.verdict, Verdict::Match, "{second:?}");
    assert_eq!(
        first.decisions_checked + second.decisions_checked,
        full.decisions_checked
    );
    assert_eq!(second.state_hash, full.state_hash);
}

/// `append`'s check (`audit::admission`) resumes from the checkpoint the previous append
/// kept in the log, so it folds the batch rather than the whole log, and decides as a fold of
/// the whole log does: a bad event is refused at the same index either way, and a stored
/// checkpoint that does not fit the log is ignored.
#[test]
fn admission_resumes_where_the_last_append_kept_its_checkpoint() {
    use weightlog::audit::{ADMISSION_CHECKPOINT, Admission, admission};
    use weightlog::log::{EncodedEvent, Genesis, Log};

    let directory = tempfile::tempdir().unwrap();
    let generated_log = generated(directory.path(), "affine", 6_000);
    let events: Vec<weightlog_schema::Event> = LogReader::open(&generated_log)
        .unwrap()
        .snapshot()
        .unwrap()
        .range(0, u64::MAX)
        .unwrap()
        .into_iter()
        .map(|(_, event)| event)
        .collect();
    // The generated events under another validator's log: the prefix appended unchecked.
    let path = directory.path().join("copy.redb");
    let genesis = Genesis::of(&events[0]).expect("seq 0 opens the log");
    let key = || weightlog::keys::Hotkey::from_seed(&[7; 32]);
    let log = Log::create(&path, key(), genesis.clone()).unwrap();
    log.append_batch(&events[1..3_000]).unwrap();
    let encoded = |range: std::ops::Range<usize>| -> Vec<EncodedEvent> {
        events[range]
            .iter()
            .map(|event| EncodedEvent::new(event).unwrap())
            .collect()
    };

    let first = admission(log.reader(), &encoded(3_000..4_000)).unwrap();
    assert_eq!(first.admission, Admission::Admitted);
    assert_eq!(first.resumed_from, 0, "nothing stored yet: the whole log");
    let kept = first.checkpoint.expect("a checkpoint near the batch's end");
    log.append_batch(&events[3_000..4_000]).unwrap();
    log.store_projection_bytes(ADMISSION_CHECKPOINT, &kept.to_bytes().unwrap())
        .unwrap();

    let good = encoded(4_000..5_000);
    let resumed = admission(log.reader(), &good).unwrap();
    assert_eq!(resumed.admission, Admission::Admitted);
    assert_eq!(resumed.resumed_from, kept.next_seq());
    assert!(resumed.resumed_from > 2_000, "{}", resumed.resumed_from);

    // An evaluation of a uid the metagraph does not hold, in the middle of the batch.
    let mut bad = good.clone();
    let index = events[4_000..5_000]
        .iter()
        .position(|event| matches!(event.payload, Payload::EvaluationRecorded(_)))
        .expect("an evaluation in the batch");
    let mut evaluation = events[4_000 + index].clone();
    if let Payload::EvaluationRecorded(recorded) = &mut evaluation.payload {
        recorded.uid = 999;
    }
    bad[index] = EncodedEvent::new(&evaluation).unwrap();
    let refused = |report: weightlog::audit::AdmissionReport| match report.admission {
        Admission::Refused { index, .. } => (index, report.resumed_from, report.checkpoint),
        other => panic!("the bad batch was not refused: {other:?}"),
    };
    let (at, from, checkpoint) = refused(admission(log.reader(), &bad).unwrap());
    assert_eq!((at, from), (index, kept.next_seq()));
    assert!(checkpoint.is_none(), "a refused batch keeps no checkpoint");

    // A checkpoint that does not fit: the whole log decides, the same way.
    log.store_projection_bytes(ADMISSION_CHECKPOINT, b"not a checkpoint")
        .unwrap();
    assert_eq!(refused(admission(log.reader(), &bad).unwrap()).0, index);
    let whole = admission(log.reader(), &good).unwrap();
    assert_eq!(
        (whole.admission, whole.resumed_from),
        (Admission::Admitted, 0)
    );
    log.close().unwrap();

    // Nor does one of another history under the same origin (the genesis a millisecond
    // later, so every root differs): the signed roots refuse the resume.
    let other = Log::create(
        &directory.path().join("other.redb"),
        key(),
        Genesis {
            timestamp_ms: genesis.timestamp_ms + 1,
            ..genesis
        },
    )
    .unwrap();
    other.append_batch(&events[1..4_000]).unwrap();
    other
        .store_projection_bytes(ADMISSION_CHECKPOINT, &kept.to_bytes().unwrap())
        .unwrap();
    let whole = admission(other.reader(), &good).unwrap();
    assert_eq!(
        (whole.admission, whole.resumed_from),
        (Admission::Admitted, 0)
    );
    other.close().unwrap();
}

/// A profile change whose projection refuses the history it must fold (affine's legacy
/// mode cannot read the `stages_v2` parameters of the log's genesis) makes the log invalid
/// at the change, not at the event refused (that one was valid when it was appended), so
/// `append`'s check refuses the change itself.
#[test]
fn a_profile_change_whose_projection_refuses_the_history_is_invalid_at_the_change() {
    use weightlog::audit::{Admission, MemorySource, admission};
    use weightlog::log::{EncodedEvent, Genesis, Log};
    use weightlog_schema::codec::parameters_hash_of;
    use weightlog_schema::event::ProfileChanged;

    let mut events = genlog::events(&GenOptions::new("affine", 300, 4)).unwrap();
    let parameters_json = r#"{"mode":"eps_pareto_legacy","envs":["SAT"]}"#.to_string();
    let change = weightlog_schema::Event::new(
        events.last().unwrap().timestamp_ms + 1,
        Payload::ProfileChanged(ProfileChanged {
            profile: "affine".into(),
            parameters_hash: parameters_hash_of(&parameters_json),
            parameters_json,
        }),
    );
    let (report, _) = audit(
        &MemorySource::new(&events).unwrap(),
        &with_threads(2),
        &|_| {},
    )
    .unwrap();
    assert_eq!(report.verdict, Verdict::Match, "{report:?}");
    events.push(change.clone());
    let (report, _) = audit(
        &MemorySource::new(&events).unwrap(),
        &with_threads(2),
        &|_| {},
    )
    .unwrap();
    let Verdict::Invalid(found) = &report.verdict else {
        panic!("{report:?}");
    };
    assert_eq!(
        (found.seq, found.kind.as_str()),
        (events.len() as u64 - 1, "ProfileChanged")
    );
    assert!(
        found
            .reason
            .contains("the projection taking over refuses event 0"),
        "{found:?}"
    );

    let directory = tempfile::tempdir().unwrap();
    let genesis = Genesis::of(&events[0]).expect("seq 0 opens the log");
    let log = Log::create(
        &directory.path().join("log.redb"),
        weightlog::keys::Hotkey::from_seed(&[7; 32]),
        genesis,
    )
    .unwrap();
    log.append_batch(&events[1..events.len() - 1]).unwrap();
    let checked = admission(log.reader(), &[EncodedEvent::new(&change).unwrap()]).unwrap();
    match checked.admission {
        Admission::Refused { index: 0, reason } => {
            assert!(reason.contains("refuses event 0"), "{reason}");
        }
        other => panic!("the change was not refused: {other:?}"),
    }
    log.close().unwrap();
}
