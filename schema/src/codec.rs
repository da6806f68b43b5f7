//! Canonical bytes: the rkyv archive of an [`Event`], and the checks that make bytes from
//! outside safe to use.
//!
//! **API Boundary:** `decode` and `access` take untrusted bytes. They validate the archive
//! with bytecheck and never panic. `decode` also re-encodes what it read and requires the same
//! bytes back, so two different byte strings can never stand for one event (which would let
//! a log hold "the same" event under two ids).
//!
//! The format is rkyv 0.8 with little-endian, 32-bit relative pointers and unaligned
//! primitives: the bytes are the same on every platform, and a reader can validate a slice
//! straight out of redb without copying it to an aligned buffer.

use rkyv::rancor;

use crate::event::{ArchivedEvent, Event, Payload, SCHEMA_VERSION};
use crate::hash::Hash;

/// Largest canonical event accepted, in bytes (1 MiB). Miner responses larger than this
/// must be truncated or rejected by the caller before they become an event.
pub const EVENT_BYTES_MAX: usize = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("event is {size} bytes, over the limit of {EVENT_BYTES_MAX} bytes")]
    TooLarge { size: usize },
    #[error("event bytes are not a valid archive: {reason}")]
    Invalid { reason: String },
    #[error("event bytes are valid but not canonical (re-encoding gives different bytes)")]
    NonCanonical,
    #[error("event has schema version {found}; this build reads versions up to {SCHEMA_VERSION}")]
    UnsupportedVersion { found: u16 },
    #[error("{kind}: {reason}")]
    Semantic { kind: &'static str, reason: String },
}

/// Encodes an event into its canonical bytes, after checking what the types alone cannot.
pub fn encode(event: &Event) -> Result<Vec<u8>, CodecError> {
    check(event)?;
    let bytes = encode_unchecked(event);
    if bytes.len() > EVENT_BYTES_MAX {
        return Err(CodecError::TooLarge { size: bytes.len() });
    }
    Ok(bytes)
}

fn encode_unchecked(event: &Event) -> Vec<u8> {
    // Serialising plain owned data into a growable buffer cannot fail; a failure here is a
    // programmer error (an unsupported type in the schema), not bad input.
    match rkyv::to_bytes::<rancor::Error>(event) {
        Ok(bytes) => bytes.into_vec(),
        Err(error) => panic!("rkyv failed to serialise an event: {error}"),
    }
}

/// Whether `event` encodes to exactly `bytes`. The encoder writes into a [`Compare`] that
/// checks each write against `bytes` as it comes, so the check allocates nothing (a replay
/// runs it for every event) and stops at the first byte that differs.
fn encodes_to(event: &Event, bytes: &[u8]) -> bool {
    let compare = Compare {
        expected: bytes,
        written: 0,
    };
    match rkyv::api::high::to_bytes_in::<_, rancor::Failure>(event, compare) {
        Ok(compare) => compare.written == bytes.len(),
        Err(rancor::Failure) => false,
    }
}

/// An rkyv writer that keeps nothing: it compares what is written with `expected` and fails
/// at the first write that does not match (or runs past its end).
struct Compare<'a> {
    expected: &'a [u8],
    written: usize,
}

impl rkyv::ser::Positional for Compare<'_> {
    fn pos(&self) -> usize {
        self.written
    }
}

impl rkyv::ser::Writer<rancor::Failure> for Compare<'_> {
    fn write(&mut self, bytes: &[u8]) -> Result<(), rancor::Failure> {
        let end = self.written + bytes.len();
        if self.expected.get(self.written..end) != Some(bytes) {
            return Err(rancor::Failure);
        }
        self.written = end;
        Ok(())
    }
}

/// Validates untrusted bytes and returns a zero-copy view of the archived event.
/// This checks structure only; use [`decode`] for the full canonical and semantic checks.
pub fn access(bytes: &[u8]) -> Result<&ArchivedEvent, CodecError> {
    if bytes.len() > EVENT_BYTES_MAX {
        return Err(CodecError::TooLarge { size: bytes.len() });
    }
    // `rancor::Failure` carries no message (it is what `rancor::Error` is in a release
    // build); on the rare failure, validating again with `BoxedError` says what is wrong.
    rkyv::access::<ArchivedEvent, rancor::Failure>(bytes).map_err(|rancor::Failure| {
        CodecError::Invalid {
            reason: match rkyv::access::<ArchivedEvent, rancor::BoxedError>(bytes) {
                Err(error) => error.to_string(),
                Ok(_) => "the bytes are not a valid archived event".into(),
            },
        }
    })
}

/// Validates untrusted bytes completely: structure, canonical form, schema version and the
/// semantic rules of [`check`]. Returns the owned event.
pub fn decode(bytes: &[u8]) -> Result<Event, CodecError> {
    let archived = access(bytes)?;
    let version = archived.schema_version.to_native();
    if version == 0 || version > SCHEMA_VERSION {
        return Err(CodecError::UnsupportedVersion { found: version });
    }
    let event =
        rkyv::deserialize::<Event, rancor::Failure>(archived).map_err(|rancor::Failure| {
            CodecError::Invalid {
                reason: match rkyv::deserialize::<Event, rancor::BoxedError>(archived) {
                    Err(error) => error.to_string(),
                    Ok(_) => "the archived event does not deserialise".into(),
                },
            }
        })?;
    if !encodes_to(&event, bytes) {
        return Err(CodecError::NonCanonical);
    }
    check(&event)?;
    Ok(event)
}

/// The rules an event must follow beyond its types: the things a projection relies on.
pub fn check(event: &Event) -> Result<(), CodecError> {
    let kind = event.kind().name();
    let fail = |reason: String| Err(CodecError::Semantic { kind, reason });
    if event.schema_version == 0 || event.schema_version > SCHEMA_VERSION {
        return Err(CodecError::UnsupportedVersion {
            found: event.schema_version,
        });
    }
    match &event.payload {
        Payload::LogOpened(opened) => check_profile(&opened.profile)
            .and_then(|()| check_parameters(&opened.parameters_json, &opened.parameters_hash))
            .or_else(fail),
        Payload::ProfileChanged(changed) => check_profile(&changed.profile)
            .and_then(|()| check_parameters(&changed.parameters_json, &changed.parameters_hash))
            .or_else(fail),
        Payload::MetagraphObserved(metagraph) => {
            for (position, neuron) in metagraph.neurons.iter().enumerate() {
                if u64::from(neuron.uid) != position as u64 {
                    return fail(format!(
                        "neuron at position {position} has uid {}; neurons must be listed in uid order from 0",
                        neuron.uid
                    ));
                }
            }
            Ok(())
        }
        Payload::ChallengeIssued(challenge) => check_challenge_id(&challenge.challenge_id)
            .and_then(|()| check_json("extra_json", &challenge.extra_json))
            .or_else(fail),
        Payload::ResponseReceived(response) => {
            check_challenge_id(&response.challenge_id).or_else(fail)
        }
        Payload::EmbeddingComputed(embedding) => {
            check_challenge_id(&embedding.challenge_id).or_else(fail)?;
            if embedding.vector.is_empty() {
                return fail("the vector is empty".into());
            }
            if !embedding.scale.is_finite() || embedding.scale < 0.0 {
                return fail(format!(
                    "scale {} is not a finite non-negative number",
                    embedding.scale
                ));
            }
            Ok(())
        }
        Payload::EvaluationRecorded(evaluation) => {
            check_challenge_id(&evaluation.challenge_id).or_else(fail)?;
            check_finite("score", evaluation.score).or_else(fail)?;
            for metric in &evaluation.metrics {
                check_finite(&metric.name, metric.value).or_else(fail)?;
            }
            Ok(())
        }
        Payload::ExternalScoreRecorded(external) => {
            for score in &external.scores {
                check_finite(format_args!("score of uid {}", score.uid), score.score)
                    .or_else(fail)?;
            }
            check_json("extra_json", &external.extra_json).or_else(fail)
        }
        Payload::GroundTruthRevealed(truth) => check_challenge_id(&truth.challenge_id)
            .and_then(|()| check_json("truth_json", &truth.truth_json))
            .or_else(fail),
        Payload::WeightsComputed(weights) => {
            if weights.uids.len() != weights.raw_weight_bits.len() {
                return fail(format!(
                    "{} uids but {} raw weights",
                    weights.uids.len(),
                    weights.raw_weight_bits.len()
                ));
            }
            if weights.u16_uids.len() != weights.u16_weights.len() {
                return fail(format!(
                    "{} u16 uids but {} u16 weights",
                    weights.u16_uids.len(),
                    weights.u16_weights.len()
                ));
            }
            Ok(())
        }
        Payload::EnvironmentRegistered(environment) => {
            check_json("parameters_json", &environment.parameters_json).or_else(fail)
        }
        Payload::WeightsSubmitted(_) => Ok(()),
    }
}

/// Largest challenge id, in bytes; ids key an index, so they stay short.
pub const CHALLENGE_ID_BYTES_MAX: usize = 256;

fn check_challenge_id(challenge_id: &str) -> Result<(), String> {
    if challenge_id.is_empty() {
        return Err("challenge_id is empty".into());
    }
    if challenge_id.len() > CHALLENGE_ID_BYTES_MAX {
        return Err(format!(
            "challenge_id is {} bytes, over the limit of {CHALLENGE_ID_BYTES_MAX}",
            challenge_id.len()
        ));
    }
    Ok(())
}

fn check_profile(profile: &str) -> Result<(), String> {
    if profile.trim().is_empty() {
        return Err("profile name is empty".into());
    }
    Ok(())
}

/// `name` is only formatted into the error, so a caller may pass `format_args!` and pay
/// nothing for a value that passes.
fn check_finite(name: impl std::fmt::Display, value: f64) -> Result<(), String> {
    if value.is_finite() {
        Ok(())
    } else {
        Err(format!("{name} is {value}; scores must be finite"))
    }
}

fn check_json(field: &str, text: &str) -> Result<(), String> {
    serde_json::from_str::<serde::de::IgnoredAny>(text)
        .map(|_| ())
        .map_err(|error| format!("{field} is not valid JSON: {error}"))
}

fn check_parameters(parameters_json: &str, parameters_hash: &Hash) -> Result<(), String> {
    check_json("parameters_json", parameters_json)?;
    let computed = parameters_hash_of(parameters_json);
    if &computed != parameters_hash {
        return Err(format!(
            "parameters_hash is {parameters_hash} but blake3(parameters_json) is {computed}"
        ));
    }
    Ok(())
}

/// The hash recorded beside a profile's parameters: blake3 of the JSON text.
pub fn parameters_hash_of(parameters_json: &str) -> Hash {
    Hash(*blake3::hash(parameters_json.as_bytes()).as_bytes())
}
