//! The projection a log needs is chosen from its recorded profile, and running it through
//! the registry's object-safe interface gives exactly what the projection gives directly.

mod common;

use common::{account, hyperparameters, indexed};
use serde_json::json;
use weightlog_replay::projection::omega::{OmegaTwoPool, SOURCE_BASELINE, SOURCE_MODEL_SCORES};
use weightlog_replay::projection::registry::{for_genesis, for_profile};
use weightlog_replay::projection::{Projection, fold, state_bytes, state_hash};
use weightlog_schema::Hash;
use weightlog_schema::codec::parameters_hash_of;
use weightlog_schema::event::*;

#[test]
fn profiles_and_modes_select_their_projection() {
    for (profile, parameters, name) in [
        ("affine", "{}", "affine/stages_v2"),
        ("affine", r#"{"mode": "stages_v2"}"#, "affine/stages_v2"),
        (
            "affine",
            r#"{"mode": "eps_pareto_legacy"}"#,
            "affine/eps_pareto_legacy",
        ),
        ("loosh", r#"{"alpha": 0.3}"#, "loosh/weights"),
        ("quasar", r#"{"validator": "v1"}"#, "quasar/validator"),
        ("quasar_items", r#"{"mode": "hfa"}"#, "quasar/items"),
        ("omega", "{}", "omega/two_pool"),
        (
            "omega",
            r#"{"mode": "legacy_winrate"}"#,
            "omega/legacy_winrate",
        ),
        ("omega", r#"{"mode": "reputation"}"#, "omega/reputation"),
        ("aml", "{}", "aml/scores"),
    ] {
        assert_eq!(
            for_profile(profile, parameters).unwrap().name(),
            name,
            "{profile} {parameters}"
        );
    }
}

#[test]
fn unknown_profiles_modes_and_bad_parameters_are_refused() {
    for (profile, parameters, needle) in [
        ("bitcoin", "{}", "no projection for profile `bitcoin`"),
        ("affine", r#"{"mode": "elo"}"#, "no mode `elo`"),
        ("omega", r#"{"mode": "win_rate"}"#, "no mode `win_rate`"),
        ("omega", r#"{"mode": 3}"#, "mode must be a string"),
        ("aml", "{not json", "parameters"),
    ] {
        let error = for_profile(profile, parameters).err().unwrap().to_string();
        assert!(error.contains(needle), "{profile} {parameters}: {error}");
    }
    let not_genesis = weightlog_schema::samples::sample(EventKind::ChallengeIssued, 1);
    assert!(for_genesis(&not_genesis).is_err());
}

fn omega_log() -> Vec<Event> {
    let parameters = r#"{"competition_id": "v4"}"#.to_string();
    let genesis = Event::new(
        0,
        Payload::LogOpened(LogOpened {
            log_id: LogId([9; 16]),
            netuid: 21,
            validator_hotkey: account(999),
            profile: "omega".into(),
            parameters_hash: parameters_hash_of(&parameters),
            parameters_json: parameters,
        }),
    );
    let neurons = (0..130u16)
        .map(|uid| Neuron {
            uid,
            hotkey: account(u64::from(uid)),
            coldkey: account(5_000 + u64::from(uid)),
            stake_rao: 1,
            validator_permit: false,
            active: true,
            registration_block: 1,
            axon: None,
        })
        .collect();
    let metagraph = Event::new(
        1,
        Payload::MetagraphObserved(MetagraphObserved {
            netuid: 21,
            block: 10,
            block_hash: Hash([2; 32]),
            spec_version: 393,
            neurons,
            hyperparameters: hyperparameters(),
        }),
    );
    let external =
        |timestamp_ms: u64, source: &str, scores: Vec<UidScore>, extra: serde_json::Value| {
            Event::new(
                timestamp_ms,
                Payload::ExternalScoreRecorded(ExternalScoreRecorded {
                    source: source.into(),
                    block: 10,
                    scores,
                    extra_json: extra.to_string(),
                }),
            )
        };
    let scores = (0..40u16)
        .map(|uid| UidScore {
            uid: uid * 3,
            score: f64::from(uid % 17) / 17.0,
        })
        .collect();
    vec![
        genesis,
        metagraph,
        external(
            2,
            SOURCE_MODEL_SCORES,
            scores,
            json!({"competition_id": "v4"}),
        ),
        external(
            3,
            SOURCE_BASELINE,
            vec![],
            json!({"competition_id": "v4", "baseline": 0.6}),
        ),
    ]
}

#[test]
fn the_registry_runs_exactly_what_the_projection_runs() {
    let events = omega_log();
    let mut running = for_genesis(&events[0]).unwrap();
    assert_eq!(running.name(), OmegaTwoPool::NAME);
    for (seq, event) in indexed(&events) {
        running.apply(seq, event).unwrap();
    }
    let mut state = Default::default();
    fold(&OmegaTwoPool, &mut state, indexed(&events)).unwrap();
    assert_eq!(
        running.output().unwrap(),
        OmegaTwoPool.output(&state).unwrap()
    );
    assert_eq!(running.state_hash().unwrap(), state_hash(&state).unwrap());

    // A checkpoint through the registry restores into a fresh running projection.
    let checkpoint = running.checkpoint(events.len() as u64).unwrap();
    let mut resumed = for_genesis(&events[0]).unwrap();
    resumed.restore(&checkpoint).unwrap();
    assert_eq!(resumed.state_hash().unwrap(), running.state_hash().unwrap());
    // ... but not into another projection.
    let mut other = for_profile("aml", "{}").unwrap();
    assert!(other.restore(&checkpoint).is_err());
}

#[test]
fn the_state_hash_is_blake3_of_the_state_bytes() {
    let blake3_of = |bytes: &[u8]| Hash(*blake3::hash(bytes).as_bytes());
    // Several hundred kilobytes, so the hash crosses any buffer it is streamed through.
    let state: Vec<(String, f64)> = (0..50_000)
        .map(|index| (format!("5hotkey{index}"), index as f64 / 7.0))
        .collect();
    let bytes = state_bytes(&state).unwrap();
    assert!(bytes.len() > 500_000, "{} bytes", bytes.len());
    assert_eq!(state_hash(&state).unwrap(), blake3_of(&bytes));
    assert_eq!(state_hash(&()).unwrap(), blake3_of(&[]));

    let events = omega_log();
    let mut running = for_genesis(&events[0]).unwrap();
    for (seq, event) in indexed(&events) {
        running.apply(seq, event).unwrap();
    }
    let checkpoint = running.checkpoint(events.len() as u64).unwrap();
    assert_eq!(checkpoint.state_hash, blake3_of(&checkpoint.state));
    assert_eq!(running.state_hash().unwrap(), checkpoint.state_hash);
}
