//! The replay-determinism property, shared by the `replay_determinism` fuzz target and the
//! ordinary tests (tests/replay_determinism.rs): replaying the same events at 1 thread, at
//! `threads` threads, and in two runs split at `split` with a checkpoint between them gives
//! the same state hash, the same decisions checked and the same findings.

use weightlog_schema::Event;

use super::{AuditOptions, AuditReport, MemorySource, Verdict, audit};

fn run(
    source: &MemorySource,
    options: AuditOptions,
) -> (AuditReport, Option<super::AuditCheckpoint>) {
    audit(source, &options, &|_| {}).expect("an in-memory audit runs")
}

/// Panics when a replay of `events` depends on the thread count or on a checkpoint split.
pub fn replay_determinism(events: &[Event], threads: usize, split: u64) -> AuditReport {
    let source = MemorySource::new(events).expect("the events encode");
    // Generated decisions have no lag, so the checkpoint can sit exactly at the split.
    let options = |threads: usize| AuditOptions {
        threads,
        decision_lag_events: 0,
        ..AuditOptions::default()
    };
    let (single, _) = run(&source, options(1));
    let (parallel, _) = run(&source, options(threads.max(1)));
    assert_eq!(single, parallel, "1 thread and {threads} threads disagree");

    let size = events.len() as u64;
    if size == 0 {
        return single;
    }
    let split = split % size;
    let (first, saved) = run(
        &source,
        AuditOptions {
            until: Some(split),
            save_checkpoint: true,
            ..options(threads)
        },
    );
    let Some(saved) = saved else {
        // No state to resume from: the profile has no projection, or it refused an event
        // at or before the split (then the whole replay says so too).
        if let Verdict::Invalid(finding) | Verdict::Tampered(finding) = &first.verdict {
            assert!(finding.seq <= split);
            assert_eq!(first.verdict, single.verdict);
        }
        return single;
    };
    assert_eq!(saved.next_seq(), split + 1);
    let (second, _) = run(
        &source,
        AuditOptions {
            from_checkpoint: Some(saved),
            ..options(threads)
        },
    );
    assert_eq!(
        second.state_hash, single.state_hash,
        "a resume changed the state"
    );
    assert_eq!(second.projection, single.projection);
    assert_eq!(
        first.decisions_checked + second.decisions_checked,
        single.decisions_checked
    );
    let mut findings = first.divergences.clone();
    findings.extend(second.divergences.iter().cloned());
    findings.truncate(super::FINDINGS_LISTED_MAX);
    assert_eq!(
        findings, single.divergences,
        "a resume changed the findings"
    );
    let expected = match (&first.verdict, &second.verdict) {
        (Verdict::Tampered(_) | Verdict::Invalid(_), _) => &first.verdict,
        (_, Verdict::Tampered(_) | Verdict::Invalid(_)) => &second.verdict,
        (Verdict::Diverged(_), _) => &first.verdict,
        (Verdict::Match, other) => other,
    };
    assert_eq!(expected, &single.verdict, "a resume changed the verdict");
    single
}

/// An arbitrary replay: a generated log of one profile, then arbitrary damage to its
/// evidence (events dropped, duplicated, swapped, scores and uids changed). Decisions keep
/// being recomputed at their own seq, so most such logs diverge or are refused somewhere;
/// what must not change is how the replay says so.
#[derive(Debug, Clone, arbitrary::Arbitrary)]
pub struct Scenario {
    pub profile: u8,
    pub seed: u64,
    pub events: u16,
    pub miners: u8,
    pub threads: u8,
    pub split: u16,
    pub mutations: Vec<Mutation>,
}

/// One change to a generated event sequence (positions wrap around; seq 0 is kept).
#[derive(Debug, Clone, arbitrary::Arbitrary)]
pub enum Mutation {
    Drop(u16),
    Duplicate(u16),
    SwapWithNext(u16),
    /// Replaces the score of an evaluation (or of an external score) with these bits.
    Score(u16, u64),
    /// Moves a response or evaluation to another uid.
    Uid(u16, u16),
}

/// Events in a scenario: enough for a few decisions, few enough to fuzz quickly.
pub const SCENARIO_EVENTS_MIN: u64 = 20;
pub const SCENARIO_EVENTS_MAX: u64 = 420;
pub const SCENARIO_MUTATIONS_MAX: usize = 16;

impl Scenario {
    /// The events of the scenario.
    pub fn events(&self) -> Vec<Event> {
        let profiles = crate::genlog::PROFILES;
        let profile = profiles[usize::from(self.profile) % profiles.len()];
        let events = SCENARIO_EVENTS_MIN
            + u64::from(self.events) % (SCENARIO_EVENTS_MAX - SCENARIO_EVENTS_MIN);
        let mut options = crate::genlog::GenOptions::new(profile, events, self.seed);
        options.miners = 1 + u16::from(self.miners % 12);
        let mut events = crate::genlog::events(&options).expect("generated options are valid");
        for mutation in self.mutations.iter().take(SCENARIO_MUTATIONS_MAX) {
            mutate(&mut events, mutation);
        }
        // A decision is recomputed over the events before it, wherever it now stands.
        for (seq, event) in events.iter_mut().enumerate() {
            if let weightlog_schema::Payload::WeightsComputed(computed) = &mut event.payload {
                computed.log_size = seq as u64;
            }
        }
        events
    }

    /// Runs [`replay_determinism`] on the scenario.
    pub fn check(&self) -> AuditReport {
        let threads = 2 + usize::from(self.threads % 7);
        replay_determinism(&self.events(), threads, u64::from(self.split))
    }
}

fn mutate(events: &mut Vec<Event>, mutation: &Mutation) {
    use weightlog_schema::Payload;
    if events.len() < 3 {
        return;
    }
    // Positions 1..len: the genesis stays first.
    let positions = events.len() - 1;
    let position = |at: u16| 1 + usize::from(at) % positions;
    match mutation {
        Mutation::Drop(at) => {
            events.remove(position(*at));
        }
        Mutation::Duplicate(at) => {
            let at = position(*at);
            events.insert(at, events[at].clone());
        }
        Mutation::SwapWithNext(at) => {
            let at = position(*at);
            if at + 1 < events.len() {
                events.swap(at, at + 1);
            }
        }
        Mutation::Score(at, bits) => {
            let value = f64::from_bits(*bits);
            let at = position(*at);
            let before = events[at].clone();
            match &mut events[at].payload {
                Payload::EvaluationRecorded(evaluation) => evaluation.score = value,
                Payload::ExternalScoreRecorded(external) => {
                    if let Some(first) = external.scores.first_mut() {
                        first.score = value;
                    }
                }
                _ => {}
            }
            // Only changes that still make a valid event: a log cannot hold anything else.
            if weightlog_schema::codec::encode(&events[at]).is_err() {
                events[at] = before;
            }
        }
        Mutation::Uid(at, uid) => match &mut events[position(*at)].payload {
            Payload::EvaluationRecorded(evaluation) => evaluation.uid = *uid,
            Payload::ResponseReceived(response) => response.uid = *uid,
            _ => {}
        },
    }
}
