//! Every event kind through JSON and rkyv; untrusted bytes are refused with errors, never
//! panics; the semantic rules and the size limit hold; the JSON Schema files are current.

use weightlog_schema::codec::{self, CodecError, EVENT_BYTES_MAX};
use weightlog_schema::event::*;
use weightlog_schema::samples::{one_of_each, sample};
use weightlog_schema::{Hash, json_schema};

const SEEDS: [u64; 4] = [0, 1, 2, 0xdead_beef];

#[test]
fn every_kind_round_trips_through_json_and_rkyv() {
    for seed in SEEDS {
        for event in one_of_each(seed) {
            let kind = event.kind();
            let json = serde_json::to_string(&event).unwrap();
            assert!(
                json.contains(&format!("\"kind\":\"{}\"", kind.name())),
                "{json}"
            );
            let from_json: Event = serde_json::from_str(&json).unwrap();
            assert_eq!(from_json, event, "JSON round trip of {kind}");

            let bytes = codec::encode(&event).unwrap();
            let decoded = codec::decode(&bytes).unwrap();
            assert_eq!(decoded, event, "rkyv round trip of {kind}");
            // Canonical: encoding the decoded event gives the same bytes, so the same id.
            assert_eq!(codec::encode(&decoded).unwrap(), bytes);
            // The zero-copy view agrees with the owned event.
            let archived = codec::access(&bytes).unwrap();
            assert_eq!(archived.timestamp_ms.to_native(), event.timestamp_ms);
        }
    }
}

#[test]
fn json_and_rkyv_forms_of_the_same_event_give_the_same_id() {
    for event in one_of_each(9) {
        let json = serde_json::to_string_pretty(&event).unwrap();
        let reparsed: Event = serde_json::from_str(&json).unwrap();
        let a = codec::encode(&event).unwrap();
        let b = codec::encode(&reparsed).unwrap();
        assert_eq!(
            weightlog_schema::event_id(&a),
            weightlog_schema::event_id(&b)
        );
    }
}

#[test]
fn truncated_bytes_are_rejected_with_an_error() {
    for event in one_of_each(3) {
        let bytes = codec::encode(&event).unwrap();
        for length in 0..bytes.len() {
            let result = codec::decode(&bytes[..length]);
            assert!(
                result.is_err(),
                "{} truncated to {length} bytes decoded",
                event.kind()
            );
        }
    }
}

#[test]
fn mutated_bytes_never_decode_to_the_original_and_never_panic() {
    for event in one_of_each(4) {
        let bytes = codec::encode(&event).unwrap();
        let mut rejected = 0usize;
        for position in 0..bytes.len() {
            for mask in [0x01u8, 0x80, 0xff] {
                let mut mutated = bytes.clone();
                mutated[position] ^= mask;
                match codec::decode(&mutated) {
                    Err(_) => rejected += 1,
                    // A change inside a string or a number can give another valid event;
                    // it is then a different event with a different id, which the Merkle
                    // leaf catches.
                    Ok(decoded) => assert_ne!(decoded, event),
                }
            }
        }
        assert!(rejected > 0, "no mutation of {} was rejected", event.kind());
    }
}

#[test]
fn structural_corruption_is_rejected() {
    let event = sample(EventKind::ChallengeIssued, 5);
    let bytes = codec::encode(&event).unwrap();
    // The enum tag of the payload lives in the root object at the end of the archive; every
    // byte of the root's last 8 bytes set to 0xff must break it (relative pointers and lengths
    // far out of bounds).
    for offset in 1..=8 {
        let mut mutated = bytes.clone();
        let position = mutated.len() - offset;
        mutated[position] = 0xff;
        assert!(
            codec::decode(&mutated).is_err(),
            "offset {offset} from the end"
        );
    }
    // Bytes that are valid but not in canonical form (padding before the data) are refused.
    let mut padded = vec![0u8; 16];
    padded.extend_from_slice(&bytes);
    assert_eq!(codec::decode(&padded), Err(CodecError::NonCanonical));
    assert!(codec::decode(&[]).is_err());
    assert!(codec::decode(&[0xff; 64]).is_err());
}

#[test]
fn invalid_utf8_in_a_string_is_rejected_at_every_position() {
    // Long and non-ASCII, so the vectorised check (blocks of 64 bytes) reads it, not only
    // its scalar tail. Each position in turn gets a byte that no UTF-8 text holds anywhere
    // (an overlong lead, a lead past U+10FFFF, 0xff).
    let mut event = sample(EventKind::ChallengeIssued, 9);
    let Payload::ChallengeIssued(challenge) = &mut event.payload else {
        unreachable!("a ChallengeIssued sample");
    };
    let prompt = "(¬x1 ∨ x2) ∧ (x3 ∨ ¬x4) — satisfy all clauses. ".repeat(8);
    challenge.prompt = prompt.clone();
    let bytes = codec::encode(&event).unwrap();
    let prompt = prompt.as_bytes();
    let start = bytes
        .windows(prompt.len())
        .position(|window| window == prompt)
        .expect("the prompt is stored as it is");
    for index in 0..prompt.len() {
        for bad in [0xc1, 0xf8, 0xff] {
            let mut mutated = bytes.clone();
            mutated[start + index] = bad;
            assert!(
                matches!(codec::decode(&mutated), Err(CodecError::Invalid { .. })),
                "byte {index} of the prompt set to {bad:#x}"
            );
        }
    }
}

/// Bytes that are not an event say what is wrong with them (rkyv's cheap error type, used
/// on the hot path, carries no message; the codec asks again for one).
#[test]
fn undecodable_bytes_say_why() {
    let bytes = codec::encode(&sample(EventKind::ChallengeIssued, 10)).unwrap();
    for bad in [
        b"not an event at all".to_vec(),
        bytes[..bytes.len() - 3].to_vec(),
    ] {
        match codec::decode(&bad) {
            Err(CodecError::Invalid { reason }) => {
                assert!(!reason.is_empty());
                assert!(!reason.contains("without error information"), "{reason}");
            }
            other => panic!("{} bytes decoded: {other:?}", bad.len()),
        }
    }
}

#[test]
fn oversized_events_are_refused() {
    let mut event = sample(EventKind::ChallengeIssued, 6);
    if let Payload::ChallengeIssued(challenge) = &mut event.payload {
        challenge.prompt = "x".repeat(EVENT_BYTES_MAX);
    }
    match codec::encode(&event) {
        Err(CodecError::TooLarge { size }) => assert!(size > EVENT_BYTES_MAX),
        other => panic!("expected TooLarge, got {other:?}"),
    }
    assert!(matches!(
        codec::decode(&vec![0u8; EVENT_BYTES_MAX + 1]),
        Err(CodecError::TooLarge { .. })
    ));
}

fn semantic_error(event: &Event) -> String {
    match codec::encode(event) {
        Err(error) => error.to_string(),
        Ok(_) => panic!("{} was accepted", event.kind()),
    }
}

#[test]
fn semantic_rules_are_enforced() {
    let mut evaluation = sample(EventKind::EvaluationRecorded, 7);
    if let Payload::EvaluationRecorded(inner) = &mut evaluation.payload {
        inner.score = f64::NAN;
    }
    assert!(semantic_error(&evaluation).contains("finite"));

    let mut external = sample(EventKind::ExternalScoreRecorded, 7);
    if let Payload::ExternalScoreRecorded(inner) = &mut external.payload {
        let last = inner.scores.last_mut().expect("the sample has scores");
        last.score = f64::INFINITY;
        let uid = last.uid;
        assert!(semantic_error(&external).contains(&format!("score of uid {uid} is inf")));
    } else {
        unreachable!("an ExternalScoreRecorded sample");
    }

    let mut opened = sample(EventKind::LogOpened, 7);
    if let Payload::LogOpened(inner) = &mut opened.payload {
        inner.parameters_hash = Hash([0; 32]);
    }
    assert!(semantic_error(&opened).contains("parameters_hash"));

    let mut weights = sample(EventKind::WeightsComputed, 7);
    if let Payload::WeightsComputed(inner) = &mut weights.payload {
        inner.raw_weight_bits.pop();
    }
    assert!(semantic_error(&weights).contains("raw weights"));

    let mut metagraph = sample(EventKind::MetagraphObserved, 7);
    if let Payload::MetagraphObserved(inner) = &mut metagraph.payload {
        inner.neurons.swap(0, 1);
    }
    assert!(semantic_error(&metagraph).contains("uid order"));

    let mut challenge = sample(EventKind::ChallengeIssued, 7);
    if let Payload::ChallengeIssued(inner) = &mut challenge.payload {
        inner.extra_json = "{not json".into();
    }
    assert!(semantic_error(&challenge).contains("extra_json"));

    let mut future = sample(EventKind::GroundTruthRevealed, 7);
    future.schema_version = SCHEMA_VERSION + 1;
    assert!(semantic_error(&future).contains("schema version"));
}

#[test]
fn json_input_is_strict() {
    let good = r#"{"timestamp_ms":1,"payload":{"kind":"GroundTruthRevealed","challenge_id":"c","truth_json":"1"}}"#;
    let event: Event = serde_json::from_str(good).unwrap();
    assert_eq!(
        event.schema_version, SCHEMA_VERSION,
        "schema_version defaults to the current one"
    );
    for bad in [
        r#"{"timestamp_ms":1,"payload":{"kind":"Nope"}}"#,
        r#"{"timestamp_ms":1,"payload":{"kind":"GroundTruthRevealed","challenge_id":"c","truth_json":"1","extra":2}}"#,
        r#"{"timestamp_ms":1,"surprise":0,"payload":{"kind":"GroundTruthRevealed","challenge_id":"c","truth_json":"1"}}"#,
        r#"{"timestamp_ms":-1,"payload":{"kind":"GroundTruthRevealed","challenge_id":"c","truth_json":"1"}}"#,
        r#"{"payload":{"kind":"GroundTruthRevealed","challenge_id":"c","truth_json":"1"}}"#,
        r#"{"timestamp_ms":1,"payload":{"kind":"ResponseReceived","challenge_id":"c","uid":1,"hotkey":"5notanaddress","outcome":{"status":"ok","body":""},"latency_ms":1,"attempts":1,"miner_signature":null}}"#,
    ] {
        assert!(
            serde_json::from_str::<Event>(bad).is_err(),
            "accepted: {bad}"
        );
    }
}

/// The checked-in JSON Schema files must match the types; regenerate with
/// `cargo run -- schema --out schema/json` (or `UPDATE_SCHEMAS=1 cargo test`).
#[test]
fn json_schema_files_are_current() {
    let directory = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("json");
    let update = std::env::var_os("UPDATE_SCHEMAS").is_some();
    let mut stale = Vec::new();
    for (name, text) in json_schema::json_schemas() {
        let path = directory.join(&name);
        if update {
            std::fs::create_dir_all(&directory).unwrap();
            std::fs::write(&path, &text).unwrap();
        } else if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            stale.push(name);
        }
    }
    assert!(
        stale.is_empty(),
        "stale JSON Schema files {stale:?}: run `cargo run -- schema --out schema/json`"
    );
}

#[test]
fn every_kind_validates_against_its_json_schema_shape() {
    // A light structural check without a validator crate: every sample's JSON has exactly
    // the properties its kind's schema lists (plus `kind`).
    let schemas = json_schema::json_schemas();
    for event in one_of_each(11) {
        let kind = event.kind().name();
        let (_, text) = schemas
            .iter()
            .find(|(name, _)| name == &format!("{kind}.schema.json"))
            .unwrap();
        let schema: serde_json::Value = serde_json::from_str(text).unwrap();
        let mut listed: Vec<String> = schema["properties"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        listed.sort();
        let json = serde_json::to_value(&event.payload).unwrap();
        let mut present: Vec<String> = json
            .as_object()
            .unwrap()
            .keys()
            .filter(|key| *key != "kind")
            .cloned()
            .collect();
        present.sort();
        assert_eq!(listed, present, "{kind}");
    }
}

/// `examples/events.jsonl` (used by the README's quick start) holds one valid event of each
/// kind after the genesis; regenerate with `UPDATE_SCHEMAS=1 cargo test`.
#[test]
fn example_jsonl_is_current() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/events.jsonl");
    let text: String = one_of_each(42)
        .into_iter()
        .filter(|event| event.kind() != EventKind::LogOpened)
        .map(|event| serde_json::to_string(&event).unwrap() + "\n")
        .collect();
    if std::env::var_os("UPDATE_SCHEMAS").is_some() {
        std::fs::write(&path, &text).unwrap();
    }
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        text,
        "run UPDATE_SCHEMAS=1 cargo test"
    );
}
