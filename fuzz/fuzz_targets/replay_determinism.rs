//! Arbitrary event sequences (a generated log of one profile, then arbitrary damage built
//! with `arbitrary`): replay at 1 thread and at 2..8 threads, and split at a checkpoint and
//! resumed, gives identical state hashes, decisions and findings. The property lives in
//! `weightlog::audit::properties`, where `cargo test` also runs it
//! (tests/replay_determinism.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;
use weightlog::audit::properties::Scenario;

fuzz_target!(|scenario: Scenario| {
    scenario.check();
});
