//! The replay-determinism property, shared by the `replay_determinism` fuzz target and the
//! ordinary tests (tests/replay_determinism.rs): replaying the same events at 1 thread, at
//! `threads` threads, and in two runs split at `split` with a checkpoint between them gives
//! the same state hash, the same decisions checked and the same findings.

use weightlog_schema::Event;

use super::{AuditOptions, AuditReport, MemorySource, Verdict, audit};

fn run(source: &MemorySource, options: AuditOptions) -> (AuditReport, Option<super::AuditCheckpoint>) {
    audit(source, &options, &|_| {}).expect("an in-memory audit runs")
}

/// Panics when a replay of `events` depends on the thread count or on a checkpoint split.
pub fn replay_determinism(events: &[Event], threads: usize, split: u64) -> AuditReport {
    let source = MemorySource::new(events).expect("the events encode");
    let options = |threads: usize| AuditOptions {
        threads,
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
    assert_eq!(second.state_hash, single.state_hash, "a resume changed the state");
    assert_eq!(second.projection, single.projection);
    assert_eq!(
        first.decisions_checked + second.decisions_checked,
        single.decisions_checked
    );
    let mut findings = first.divergences.clone();
    findings.extend(second.divergences.iter().cloned());
    findings.truncate(super::FINDINGS_LISTED_MAX);
    assert_eq!(findings, single.divergences, "a resume changed the findings");
    let expected = match (&first.verdict, &second.verdict) {
        (Verdict::Tampered(_) | Verdict::Invalid(_), _) => &first.verdict,
        (_, Verdict::Tampered(_) | Verdict::Invalid(_)) => &second.verdict,
        (Verdict::Diverged(_), _) => &first.verdict,
        (Verdict::Match, other) => other,
    };
    assert_eq!(expected, &single.verdict, "a resume changed the verdict");
    single
}
