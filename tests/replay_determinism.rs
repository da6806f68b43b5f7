//! Replay determinism on a fixed budget: the `replay_determinism` fuzz target's property
//! (`weightlog::audit::properties`) on scenarios drawn from a fixed byte stream, so
//! `cargo test` checks what `cargo fuzz` checks. Every scenario is replayed at 1 thread, at
//! 2..8 threads and split at a checkpoint, and all must agree.

use arbitrary::{Arbitrary, Unstructured};
use weightlog::audit::Verdict;
use weightlog::audit::properties::{Scenario, replay_determinism};
use weightlog::envs::rng::SplitMix64;
use weightlog::genlog::{GenOptions, PROFILES, events};

/// Scenarios per run: each is a generated log of up to a few hundred events, replayed four
/// times.
const SCENARIOS: u64 = 150;
const SCENARIO_BYTES: usize = 256;

#[test]
fn arbitrary_scenarios_replay_the_same_at_any_thread_count_and_split() {
    let mut verdicts = [0u32; 4];
    for index in 0..SCENARIOS {
        let mut stream = SplitMix64::new(index);
        let bytes: Vec<u8> = (0..SCENARIO_BYTES)
            .map(|_| stream.next_u64() as u8)
            .collect();
        let scenario = Scenario::arbitrary(&mut Unstructured::new(&bytes))
            .expect("enough bytes for a scenario");
        let report = scenario.check();
        verdicts[match report.verdict {
            Verdict::Match => 0,
            Verdict::Diverged(_) => 1,
            Verdict::Invalid(_) => 2,
            Verdict::Tampered(_) => 3,
        }] += 1;
    }
    // The budget must reach both honest and damaged logs, or it proves little.
    assert!(verdicts[0] > 0, "no scenario matched: {verdicts:?}");
    assert!(
        verdicts[1] + verdicts[2] > 0,
        "no scenario diverged: {verdicts:?}"
    );
}

#[test]
fn honest_generated_logs_match_at_every_split() {
    for profile in PROFILES {
        let events = events(&GenOptions::new(profile, 300, 11)).expect("generate");
        for split in [0, 1, 57, 150, 299] {
            let report = replay_determinism(&events, 3, split);
            assert_eq!(report.verdict, Verdict::Match, "{profile} split {split}");
            assert!(report.decisions_checked >= 1, "{profile}: {report:?}");
        }
    }
}
