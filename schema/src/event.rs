//! The v1 event kinds and the envelope every event is stored in.
//!
//! Each type here has two forms: a JSON (serde) form for humans and for tools in other
//! languages (documented by the JSON Schema files in `schema/json/`), and the canonical rkyv
//! form that is stored, hashed and proven (see `codec.rs`).
//!
//! **Architecture Invariant:** nothing here has a `usize`, a `HashMap` or any other type whose
//! encoding differs between platforms or runs. Lists keep the order the writer gave them.

use rkyv::{Archive, Deserialize as RkyvDeserialize, Serialize as RkyvSerialize};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::hash::Hash;
use crate::ss58;

/// The schema version this crate writes. Readers accept every version up to this one and
/// upcast older events on read.
pub const SCHEMA_VERSION: u16 = 1;

/// An event as the validator records it. Its canonical bytes are what the log stores, hashes
/// and proves. The sequence number is not part of these bytes: it is the event's position in
/// the log (its Merkle leaf index), which is what makes appends idempotent — the same event
/// always has the same bytes and so the same id.
#[derive(
    Debug,
    Clone,
    PartialEq,
    Archive,
    RkyvSerialize,
    RkyvDeserialize,
    Serialize,
    Deserialize,
    JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// Schema version of this event; 1 when omitted in JSON input.
    #[serde(default = "default_schema_version")]
    pub schema_version: u16,
    /// Wall-clock time the validator recorded, in milliseconds since the Unix epoch. It is
    /// data, never read by a projection as "now".
    pub timestamp_ms: u64,
    pub payload: Payload,
}

fn default_schema_version() -> u16 {
    SCHEMA_VERSION
}

impl Event {
    pub fn new(timestamp_ms: u64, payload: Payload) -> Self {
        Self {
            schema_version: SCHEMA_VERSION,
            timestamp_ms,
            payload,
        }
    }

    pub fn kind(&self) -> EventKind {
        self.payload.kind()
    }
}

/// An event together with its place in a log, as `cat`, the HTTP API and exports show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SequencedEvent {
    pub seq: u64,
    /// blake3 of the canonical bytes.
    pub id: Hash,
    #[serde(flatten)]
    pub event: Event,
}

/// The payload of an event; the JSON form carries its kind in the field `kind`.
#[derive(
    Debug,
    Clone,
    PartialEq,
    Archive,
    RkyvSerialize,
    RkyvDeserialize,
    Serialize,
    Deserialize,
    JsonSchema,
)]
#[serde(tag = "kind")]
pub enum Payload {
    LogOpened(LogOpened),
    ProfileChanged(ProfileChanged),
    MetagraphObserved(MetagraphObserved),
    EnvironmentRegistered(EnvironmentRegistered),
    ChallengeIssued(ChallengeIssued),
    ResponseReceived(ResponseReceived),
    EmbeddingComputed(EmbeddingComputed),
    EvaluationRecorded(EvaluationRecorded),
    ExternalScoreRecorded(ExternalScoreRecorded),
    GroundTruthRevealed(GroundTruthRevealed),
    WeightsComputed(WeightsComputed),
    WeightsSubmitted(WeightsSubmitted),
}

/// Genesis: the first event of every log (seq 0).
#[derive(
    Debug,
    Clone,
    PartialEq,
    Archive,
    RkyvSerialize,
    RkyvDeserialize,
    Serialize,
    Deserialize,
    JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct LogOpened {
    /// Random id that, with the validator hotkey, names this log (its checkpoint origin).
    pub log_id: LogId,
    pub netuid: u16,
    /// The hotkey that signs this log's checkpoints.
    pub validator_hotkey: AccountId,
    /// Profile name, e.g. `affine`, `loosh`.
    pub profile: String,
    /// The profile's parameters as JSON text, exactly as the mechanism reads them.
    pub parameters_json: String,
    /// blake3 of `parameters_json`; replay checks it.
    pub parameters_hash: Hash,
}

/// The validator switched profile or parameters; later decisions use these.
#[derive(
    Debug,
    Clone,
    PartialEq,
    Archive,
    RkyvSerialize,
    RkyvDeserialize,
    Serialize,
    Deserialize,
    JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct ProfileChanged {
    pub profile: String,
    pub parameters_json: String,
    pub parameters_hash: Hash,
}

/// A metagraph snapshot read from the chain at one block.
#[derive(
    Debug,
    Clone,
    PartialEq,
    Archive,
    RkyvSerialize,
    RkyvDeserialize,
    Serialize,
    Deserialize,
    JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct MetagraphObserved {
    pub netuid: u16,
    pub block: u64,
    pub block_hash: Hash,
    pub spec_version: u32,
    /// One entry per uid, in uid order.
    pub neurons: Vec<Neuron>,
    pub hyperparameters: WeightHyperparameters,
}

#[derive(
    Debug,
    Clone,
    PartialEq,
    Archive,
    RkyvSerialize,
    RkyvDeserialize,
    Serialize,
    Deserialize,
    JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct Neuron {
    pub uid: u16,
    pub hotkey: AccountId,
    pub coldkey: AccountId,
    /// Stake weight in rao (1 TAO = 1e9 rao).
    pub stake_rao: u64,
    pub validator_permit: bool,
    pub active: bool,
    pub registration_block: u64,
    /// Where the miner serves; absent when it serves nothing.
    pub axon: Option<Axon>,
}

#[derive(
    Debug,
    Clone,
    PartialEq,
    Archive,
    RkyvSerialize,
    RkyvDeserialize,
    Serialize,
    Deserialize,
    JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct Axon {
    /// IPv4 or IPv6 address in its textual form.
    pub ip: String,
    pub port: u16,
    pub protocol: u8,
    pub version: u32,
}

/// The subnet hyper-parameters that constrain weight setting.
#[derive(
    Debug,
    Clone,
    PartialEq,
    Archive,
    RkyvSerialize,
    RkyvDeserialize,
    Serialize,
    Deserialize,
    JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct WeightHyperparameters {
    pub tempo: u16,
    pub min_allowed_weights: u16,
    pub max_weights_limit: u16,
    pub weights_version_key: u64,
    pub weights_rate_limit_blocks: u64,
    pub commit_reveal_enabled: bool,
    pub reveal_period_epochs: u64,
    pub commit_reveal_version: u16,
}

/// A challenge environment the validator uses, pinned by the hash of its code.
#[derive(
    Debug,
    Clone,
    PartialEq,
    Archive,
    RkyvSerialize,
    RkyvDeserialize,
    Serialize,
    Deserialize,
    JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentRegistered {
    pub name: String,
    pub version: String,
    pub environment_kind: EnvironmentKind,
    /// blake3 of the wasm module or script, when the environment ships one.
    pub module_hash: Option<Hash>,
    pub parameters_json: String,
}

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Archive,
    RkyvSerialize,
    RkyvDeserialize,
    Serialize,
    Deserialize,
    JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum EnvironmentKind {
    /// Built into weightlog.
    Builtin,
    /// A wasm module with the environment ABI.
    Wasm,
    /// A Python program run in the sandbox.
    Script,
    /// Scored outside the validator (e.g. omega's external scorer).
    External,
}

#[derive(
    Debug,
    Clone,
    PartialEq,
    Archive,
    RkyvSerialize,
    RkyvDeserialize,
    Serialize,
    Deserialize,
    JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct ChallengeIssued {
    pub challenge_id: String,
    pub environment: String,
    pub seed: u64,
    pub prompt: String,
    /// Environment-specific data as JSON text.
    pub extra_json: String,
    pub target_uids: Vec<u16>,
    pub deadline_ms: u64,
}

#[derive(
    Debug,
    Clone,
    PartialEq,
    Archive,
    RkyvSerialize,
    RkyvDeserialize,
    Serialize,
    Deserialize,
    JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct ResponseReceived {
    pub challenge_id: String,
    pub uid: u16,
    pub hotkey: AccountId,
    pub outcome: ResponseOutcome,
    pub latency_ms: u64,
    pub attempts: u32,
    /// The miner's signature over its response, when it sent one.
    pub miner_signature: Option<Signature>,
}

#[derive(
    Debug,
    Clone,
    PartialEq,
    Archive,
    RkyvSerialize,
    RkyvDeserialize,
    Serialize,
    Deserialize,
    JsonSchema,
)]
#[serde(tag = "status", rename_all = "snake_case", deny_unknown_fields)]
pub enum ResponseOutcome {
    Ok { body: String },
    Error { message: String },
}

/// A quantised sentence embedding of one response.
#[derive(
    Debug,
    Clone,
    PartialEq,
    Archive,
    RkyvSerialize,
    RkyvDeserialize,
    Serialize,
    Deserialize,
    JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct EmbeddingComputed {
    pub challenge_id: String,
    pub uid: u16,
    /// blake3 of the model weights that produced the vector.
    pub model_hash: Hash,
    /// The real vector is `vector[i] as f32 * scale`.
    pub scale: f32,
    pub vector: Vec<i8>,
}

#[derive(
    Debug,
    Clone,
    PartialEq,
    Archive,
    RkyvSerialize,
    RkyvDeserialize,
    Serialize,
    Deserialize,
    JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct EvaluationRecorded {
    pub challenge_id: String,
    pub uid: u16,
    pub score: f64,
    /// Named metrics in the order the evaluator produced them.
    pub metrics: Vec<Metric>,
    /// Which evaluator produced the score (environment name and version).
    pub evaluator: String,
    /// Sandbox fuel the evaluation used, when it ran in the sandbox.
    pub fuel_used: Option<u64>,
}

impl EvaluationRecorded {
    /// An evaluation outside the sandbox whose score is its one named metric.
    pub fn single_metric(
        challenge_id: impl Into<String>,
        uid: u16,
        evaluator: &str,
        metric: &str,
        score: f64,
    ) -> Self {
        Self {
            challenge_id: challenge_id.into(),
            uid,
            score,
            metrics: vec![Metric {
                name: metric.into(),
                value: score,
            }],
            evaluator: evaluator.into(),
            fuel_used: None,
        }
    }
}

#[derive(
    Debug,
    Clone,
    PartialEq,
    Archive,
    RkyvSerialize,
    RkyvDeserialize,
    Serialize,
    Deserialize,
    JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct Metric {
    pub name: String,
    pub value: f64,
}

/// Scores from a scorer outside the validator (e.g. omega's).
#[derive(
    Debug,
    Clone,
    PartialEq,
    Archive,
    RkyvSerialize,
    RkyvDeserialize,
    Serialize,
    Deserialize,
    JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct ExternalScoreRecorded {
    pub source: String,
    pub block: u64,
    pub scores: Vec<UidScore>,
    pub extra_json: String,
}

#[derive(
    Debug,
    Clone,
    PartialEq,
    Archive,
    RkyvSerialize,
    RkyvDeserialize,
    Serialize,
    Deserialize,
    JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct UidScore {
    pub uid: u16,
    pub score: f64,
}

/// Delayed ground truth for a challenge (aml).
#[derive(
    Debug,
    Clone,
    PartialEq,
    Archive,
    RkyvSerialize,
    RkyvDeserialize,
    Serialize,
    Deserialize,
    JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct GroundTruthRevealed {
    pub challenge_id: String,
    pub truth_json: String,
}

/// A weight decision: the mechanism's raw weights and their u16 form for the chain.
#[derive(
    Debug,
    Clone,
    PartialEq,
    Archive,
    RkyvSerialize,
    RkyvDeserialize,
    Serialize,
    Deserialize,
    JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct WeightsComputed {
    pub block: u64,
    pub mechanism: String,
    pub parameters_hash: Hash,
    /// Number of events in the log the projection was computed over (seqs below it).
    pub log_size: u64,
    pub uids: Vec<u16>,
    /// Raw weights as IEEE-754 f64 bit patterns, so they compare bit for bit.
    pub raw_weight_bits: Vec<u64>,
    /// The uids sent to the chain (zeros dropped) and their u16 weights.
    pub u16_uids: Vec<u16>,
    pub u16_weights: Vec<u16>,
}

/// What became of submitting a weight decision to the chain.
#[derive(
    Debug,
    Clone,
    PartialEq,
    Archive,
    RkyvSerialize,
    RkyvDeserialize,
    Serialize,
    Deserialize,
    JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct WeightsSubmitted {
    /// Seq of the `WeightsComputed` event submitted.
    pub decision_seq: u64,
    pub call: WeightsCall,
    pub extrinsic_hash: Option<Hash>,
    /// Drand round at which a timelocked commit reveals.
    pub reveal_round: Option<u64>,
    pub outcome: SubmissionOutcome,
    /// The runtime's `spec_version` the decision was checked and signed against (`None` when
    /// the chain was not asked, e.g. in synthetic logs).
    #[serde(default)]
    pub spec_version: Option<u32>,
}

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Archive,
    RkyvSerialize,
    RkyvDeserialize,
    Serialize,
    Deserialize,
    JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum WeightsCall {
    SetWeights,
    SetMechanismWeights,
    CommitTimelockedMechanismWeights,
}

#[derive(
    Debug,
    Clone,
    PartialEq,
    Archive,
    RkyvSerialize,
    RkyvDeserialize,
    Serialize,
    Deserialize,
    JsonSchema,
)]
#[serde(tag = "status", rename_all = "snake_case", deny_unknown_fields)]
pub enum SubmissionOutcome {
    Included { block: u64 },
    Rejected { reason: String },
    TimedOut,
}

/// The kind of an event, as a compact code for indexes and counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum EventKind {
    LogOpened = 0,
    ProfileChanged = 1,
    MetagraphObserved = 2,
    EnvironmentRegistered = 3,
    ChallengeIssued = 4,
    ResponseReceived = 5,
    EmbeddingComputed = 6,
    EvaluationRecorded = 7,
    ExternalScoreRecorded = 8,
    GroundTruthRevealed = 9,
    WeightsComputed = 10,
    WeightsSubmitted = 11,
}

impl EventKind {
    pub const ALL: [EventKind; 12] = [
        EventKind::LogOpened,
        EventKind::ProfileChanged,
        EventKind::MetagraphObserved,
        EventKind::EnvironmentRegistered,
        EventKind::ChallengeIssued,
        EventKind::ResponseReceived,
        EventKind::EmbeddingComputed,
        EventKind::EvaluationRecorded,
        EventKind::ExternalScoreRecorded,
        EventKind::GroundTruthRevealed,
        EventKind::WeightsComputed,
        EventKind::WeightsSubmitted,
    ];

    pub fn name(self) -> &'static str {
        match self {
            EventKind::LogOpened => "LogOpened",
            EventKind::ProfileChanged => "ProfileChanged",
            EventKind::MetagraphObserved => "MetagraphObserved",
            EventKind::EnvironmentRegistered => "EnvironmentRegistered",
            EventKind::ChallengeIssued => "ChallengeIssued",
            EventKind::ResponseReceived => "ResponseReceived",
            EventKind::EmbeddingComputed => "EmbeddingComputed",
            EventKind::EvaluationRecorded => "EvaluationRecorded",
            EventKind::ExternalScoreRecorded => "ExternalScoreRecorded",
            EventKind::GroundTruthRevealed => "GroundTruthRevealed",
            EventKind::WeightsComputed => "WeightsComputed",
            EventKind::WeightsSubmitted => "WeightsSubmitted",
        }
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Payload {
    pub fn kind(&self) -> EventKind {
        match self {
            Payload::LogOpened(_) => EventKind::LogOpened,
            Payload::ProfileChanged(_) => EventKind::ProfileChanged,
            Payload::MetagraphObserved(_) => EventKind::MetagraphObserved,
            Payload::EnvironmentRegistered(_) => EventKind::EnvironmentRegistered,
            Payload::ChallengeIssued(_) => EventKind::ChallengeIssued,
            Payload::ResponseReceived(_) => EventKind::ResponseReceived,
            Payload::EmbeddingComputed(_) => EventKind::EmbeddingComputed,
            Payload::EvaluationRecorded(_) => EventKind::EvaluationRecorded,
            Payload::ExternalScoreRecorded(_) => EventKind::ExternalScoreRecorded,
            Payload::GroundTruthRevealed(_) => EventKind::GroundTruthRevealed,
            Payload::WeightsComputed(_) => EventKind::WeightsComputed,
            Payload::WeightsSubmitted(_) => EventKind::WeightsSubmitted,
        }
    }

    /// The challenge this event belongs to, for the `by_challenge` index.
    pub fn challenge_id(&self) -> Option<&str> {
        match self {
            Payload::ChallengeIssued(event) => Some(&event.challenge_id),
            Payload::ResponseReceived(event) => Some(&event.challenge_id),
            Payload::EmbeddingComputed(event) => Some(&event.challenge_id),
            Payload::EvaluationRecorded(event) => Some(&event.challenge_id),
            Payload::GroundTruthRevealed(event) => Some(&event.challenge_id),
            _ => None,
        }
    }

    /// The uids this event is about, for the `by_uid` index (ascending, no duplicates).
    pub fn uids(&self) -> Vec<u16> {
        let mut uids = match self {
            Payload::ResponseReceived(event) => vec![event.uid],
            Payload::EmbeddingComputed(event) => vec![event.uid],
            Payload::EvaluationRecorded(event) => vec![event.uid],
            Payload::ExternalScoreRecorded(event) => event.scores.iter().map(|s| s.uid).collect(),
            _ => Vec::new(),
        };
        uids.sort_unstable();
        uids.dedup();
        uids
    }
}

impl ArchivedPayload {
    /// The kind of an archived event, read without deserialising it.
    pub fn kind(&self) -> EventKind {
        match self {
            ArchivedPayload::LogOpened(_) => EventKind::LogOpened,
            ArchivedPayload::ProfileChanged(_) => EventKind::ProfileChanged,
            ArchivedPayload::MetagraphObserved(_) => EventKind::MetagraphObserved,
            ArchivedPayload::EnvironmentRegistered(_) => EventKind::EnvironmentRegistered,
            ArchivedPayload::ChallengeIssued(_) => EventKind::ChallengeIssued,
            ArchivedPayload::ResponseReceived(_) => EventKind::ResponseReceived,
            ArchivedPayload::EmbeddingComputed(_) => EventKind::EmbeddingComputed,
            ArchivedPayload::EvaluationRecorded(_) => EventKind::EvaluationRecorded,
            ArchivedPayload::ExternalScoreRecorded(_) => EventKind::ExternalScoreRecorded,
            ArchivedPayload::GroundTruthRevealed(_) => EventKind::GroundTruthRevealed,
            ArchivedPayload::WeightsComputed(_) => EventKind::WeightsComputed,
            ArchivedPayload::WeightsSubmitted(_) => EventKind::WeightsSubmitted,
        }
    }
}

/// A 16-byte log id; hex in JSON.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Archive,
    RkyvSerialize,
    RkyvDeserialize,
)]
pub struct LogId(pub [u8; 16]);

/// A 32-byte sr25519 public key (hotkey or coldkey); SS58 (prefix 42) in JSON.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Archive,
    RkyvSerialize,
    RkyvDeserialize,
)]
pub struct AccountId(pub [u8; 32]);

/// A 64-byte sr25519 signature; `0x`-prefixed hex in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Archive, RkyvSerialize, RkyvDeserialize)]
pub struct Signature(pub [u8; 64]);

impl AccountId {
    pub fn to_ss58(&self) -> String {
        ss58::encode_bittensor(&self.0)
    }

    pub fn from_ss58(address: &str) -> Result<Self, ss58::Ss58Error> {
        ss58::decode_bittensor(address).map(Self)
    }
}

impl std::fmt::Display for AccountId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_ss58())
    }
}

impl LogId {
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

/// JSON forms of the fixed-size byte types: strings with a pattern, so other languages can
/// validate them.
macro_rules! string_json_form {
    ($type:ty, $name:literal, $description:literal, $pattern:literal, $to:expr, $from:expr) => {
        impl Serialize for $type {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let to: fn(&$type) -> String = $to;
                serializer.serialize_str(&to(self))
            }
        }

        impl<'de> Deserialize<'de> for $type {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                let from: fn(&str) -> Result<$type, String> = $from;
                from(&text).map_err(serde::de::Error::custom)
            }
        }

        impl JsonSchema for $type {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                $name.into()
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({
                    "type": "string",
                    "description": $description,
                    "pattern": $pattern
                })
            }
        }
    };
}

fn fixed_hex<const N: usize>(text: &str, what: &str) -> Result<[u8; N], String> {
    let digits = text.strip_prefix("0x").unwrap_or(text);
    let mut bytes = [0u8; N];
    hex::decode_to_slice(digits, &mut bytes)
        .map_err(|_| format!("`{text}` is not a {what}: expected {} hex digits", N * 2))?;
    Ok(bytes)
}

string_json_form!(
    LogId,
    "LogId",
    "16-byte log id as 32 hex digits",
    "^[0-9a-f]{32}$",
    |id| id.to_hex(),
    |text| fixed_hex::<16>(text, "log id").map(LogId)
);

string_json_form!(
    AccountId,
    "AccountId",
    "sr25519 public key as an SS58 address (prefix 42)",
    "^[1-9A-HJ-NP-Za-km-z]{46,48}$",
    |account| account.to_ss58(),
    |text| AccountId::from_ss58(text).map_err(|error| error.to_string())
);

string_json_form!(
    Signature,
    "Signature",
    "64-byte sr25519 signature as 0x-prefixed hex",
    "^0x[0-9a-f]{128}$",
    |signature| format!("0x{}", hex::encode(signature.0)),
    |text| fixed_hex::<64>(text, "signature").map(Signature)
);
