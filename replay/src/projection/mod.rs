//! Projections: deterministic folds of log events into a mechanism's state, and
//! checkpoints of that state so a replay can resume.
//!
//! A projection never computes weights itself. It turns its state into the mechanism's
//! documented JSON input (specs/mechanism-io) and hands that to [`crate::run_json`], so the
//! weights a validator gets from its log are computed by exactly the code `weightlog
//! mechanism run` runs, and an auditor replaying the log runs it too.
//!
//! **Architecture Invariant:** `apply` sees events in seq order, one at a time, and reads
//! nothing but the event and the state; the state holds only ordered containers
//! (`BTreeMap`, `Vec`), so its bincode bytes — and their blake3 hash, the determinism
//! witness — depend only on the events folded.

pub mod affine;
pub mod affine_legacy;
pub mod aml;
pub mod decision;
pub mod loosh;
pub mod loosh_evaluate;
pub mod omega;
pub mod omega_legacy;
pub mod quasar;
pub mod quasar_items;
pub mod registry;

use std::collections::BTreeMap;
use std::io::Write;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use weightlog_schema::event::MetagraphObserved;
use weightlog_schema::{Event, Hash, Payload};

use crate::MechanismError;

/// A fold of events into the state one mechanism needs.
pub trait Projection {
    /// Everything the mechanism needs, built only from events.
    type State: Default + Clone + PartialEq + std::fmt::Debug + Serialize + DeserializeOwned;

    /// Names the projection in checkpoints (and in the log's `projections` table).
    const NAME: &'static str;

    /// Folds the event at `seq` into the state. Events that do not concern this projection
    /// leave the state unchanged.
    fn apply(&self, state: &mut Self::State, seq: u64, event: &Event)
    -> Result<(), MechanismError>;

    /// The mechanism input (the specs/mechanism-io JSON shape) for the current state.
    fn input(&self, state: &Self::State) -> Result<Value, MechanismError>;

    /// The mechanism's output for the current state: the same code as `mechanism run`.
    fn output(&self, state: &Self::State) -> Result<Value, MechanismError> {
        crate::run_json(&self.input(state)?)
    }

    /// The weight decision in `output` (this projection's [`Projection::output`] for
    /// `state`). Projections whose mechanism sets no weights keep this default.
    fn decision(
        &self,
        state: &Self::State,
        output: &Value,
    ) -> Result<decision::Recomputed, MechanismError> {
        let _ = (state, output);
        Ok(decision::Recomputed::NoWeights(format!(
            "projection `{}` computes no weights",
            Self::NAME
        )))
    }
}

/// A JSON object of `entries`, each value moved in: a `Value` placed inside `json!` is
/// serialised again, which copies all of it.
pub(crate) fn object<const N: usize>(entries: [(&str, Value); N]) -> Value {
    Value::Object(
        entries
            .into_iter()
            .map(|(key, value)| (key.to_string(), value))
            .collect(),
    )
}

/// An error about the event at `seq`, so a refused log points at the event to look at.
pub(crate) fn invalid(seq: u64, message: impl std::fmt::Display) -> MechanismError {
    MechanismError::invalid(format!("event {seq}: {message}"))
}

/// The SS58 hotkey of every uid of a metagraph whose neurons are listed in uid order (uid
/// `i` at index `i`), so a projection can index its hotkeys by uid; any other order is
/// refused rather than silently misattributing responses.
pub(crate) fn hotkeys_in_uid_order(
    seq: u64,
    metagraph: &MetagraphObserved,
) -> Result<Vec<String>, MechanismError> {
    for (index, neuron) in metagraph.neurons.iter().enumerate() {
        if usize::from(neuron.uid) != index {
            return Err(invalid(
                seq,
                format!(
                    "metagraph neuron {index} has uid {}; neurons must be in uid order \
                     (listed by uid 0..n)",
                    neuron.uid
                ),
            ));
        }
    }
    Ok(metagraph
        .neurons
        .iter()
        .map(|neuron| neuron.hotkey.to_ss58())
        .collect())
}

/// uid -> SS58 hotkey of a metagraph, in any neuron order. A uid listed twice is refused:
/// it would leave which hotkey holds the uid up to the listing order.
pub(crate) fn hotkeys_by_uid(
    seq: u64,
    metagraph: &MetagraphObserved,
) -> Result<BTreeMap<u16, String>, MechanismError> {
    let mut hotkeys = BTreeMap::new();
    for neuron in &metagraph.neurons {
        if hotkeys
            .insert(neuron.uid, neuron.hotkey.to_ss58())
            .is_some()
        {
            return Err(invalid(
                seq,
                format!("the metagraph lists uid {} twice", neuron.uid),
            ));
        }
    }
    Ok(hotkeys)
}

/// An event's JSON text (`extra_json`, `parameters_json`, ...; `what` names it in the error,
/// e.g. `"profile parameters"`) parsed into `T`, with an error naming the event's seq so a
/// refused log points at the event.
pub(crate) fn parse_event_json<T: DeserializeOwned>(
    seq: u64,
    what: &str,
    json: &str,
) -> Result<T, MechanismError> {
    serde_json::from_str(json).map_err(|error| invalid(seq, format!("{what}: {error}")))
}

/// The `parameters_json` of a `LogOpened` or `ProfileChanged` event for `profile`, and
/// `None` for any other event: a projection reads only its own profile's parameters.
pub(crate) fn profile_parameters<'a>(event: &'a Event, profile: &str) -> Option<&'a str> {
    match &event.payload {
        Payload::LogOpened(opened) if opened.profile == profile => Some(&opened.parameters_json),
        Payload::ProfileChanged(changed) if changed.profile == profile => {
            Some(&changed.parameters_json)
        }
        _ => None,
    }
}

/// Folds `events` (ascending seqs) into `state`.
pub fn fold<'a, P: Projection>(
    projection: &P,
    state: &mut P::State,
    events: impl IntoIterator<Item = (u64, &'a Event)>,
) -> Result<(), MechanismError> {
    for (seq, event) in events {
        projection.apply(state, seq, event)?;
    }
    Ok(())
}

/// Folds `events` (seqs from 0) with a checkpoint taken after the first `split` of them:
/// capture, encode, decode, restore, then fold the rest. The state must equal folding them
/// all at once; this is how replays and tests show that a resume changes nothing.
pub fn fold_resumed_at<P: Projection>(
    projection: &P,
    events: &[Event],
    split: usize,
) -> Result<P::State, MechanismError> {
    let split = split.min(events.len());
    let mut first = P::State::default();
    fold(projection, &mut first, seqs(&events[..split], 0))?;
    let checkpoint = ProjectionCheckpoint::capture::<P>(&first, split as u64)?;
    let restored = ProjectionCheckpoint::from_bytes(&checkpoint.to_bytes()?)?;
    let mut state = restored.restore::<P>()?;
    fold(projection, &mut state, seqs(&events[split..], split as u64))?;
    Ok(state)
}

/// `events` paired with consecutive seqs from `first_seq`.
pub fn seqs(events: &[Event], first_seq: u64) -> impl Iterator<Item = (u64, &Event)> {
    events
        .iter()
        .enumerate()
        .map(move |(offset, event)| (first_seq + offset as u64, event))
}

fn bincode_config() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// The canonical bytes of a state: bincode 2, standard configuration.
pub fn state_bytes<S: Serialize>(state: &S) -> Result<Vec<u8>, MechanismError> {
    bincode::serde::encode_to_vec(state, bincode_config())
        .map_err(|error| cannot_encode(encode_reason(error)))
}

fn cannot_encode(error: impl std::fmt::Display) -> MechanismError {
    MechanismError::invalid(format!("cannot encode the projection state: {error}"))
}

/// Why bincode could not encode a value, in words: bincode's own `Display` is its `Debug`
/// form (`OtherString("...")`), which wraps the reason a `Serialize` gave.
pub fn encode_reason(error: bincode::error::EncodeError) -> String {
    use bincode::error::EncodeError;
    match error {
        EncodeError::OtherString(reason) => reason,
        EncodeError::Other(reason) => reason.to_string(),
        EncodeError::Serde(bincode::serde::EncodeError::SequenceMustHaveLength) => {
            "a sequence without a length, which bincode cannot write".to_string()
        }
        other => other.to_string(),
    }
}

/// Why bincode could not decode bytes, in words, for the errors a damaged or foreign file
/// gives (see [`encode_reason`]).
pub fn decode_reason(error: bincode::error::DecodeError) -> String {
    use bincode::error::DecodeError;
    match error {
        DecodeError::UnexpectedEnd { .. } => "the bytes end too soon".to_string(),
        DecodeError::UnexpectedVariant {
            type_name, found, ..
        } => format!("{found} is not a variant of `{type_name}`"),
        DecodeError::Utf8 { inner } => format!("a string is not UTF-8 ({inner})"),
        DecodeError::InvalidBooleanValue(byte) => format!("{byte} is not a boolean"),
        DecodeError::OtherString(reason) => reason,
        DecodeError::Other(reason) => reason.to_string(),
        other => other.to_string(),
    }
}

/// The determinism witness: blake3 of the state's canonical bytes ([`state_bytes`]).
/// The bytes are streamed into the hash through a small buffer rather than collected
/// first: a large state would otherwise be written out whole, in a vector grown by copies,
/// only to be hashed and dropped.
pub fn state_hash<S: Serialize>(state: &S) -> Result<Hash, MechanismError> {
    let mut hasher = blake3::Hasher::new();
    let mut buffered = std::io::BufWriter::with_capacity(STATE_HASH_BUFFER, &mut hasher);
    bincode::serde::encode_into_std_write(state, &mut buffered, bincode_config())
        .map_err(|error| cannot_encode(encode_reason(error)))?;
    buffered.flush().map_err(cannot_encode)?;
    drop(buffered);
    Ok(Hash(*hasher.finalize().as_bytes()))
}

/// Bytes gathered before each hasher update: bincode writes a field at a time, and blake3
/// is fastest fed whole chunks.
const STATE_HASH_BUFFER: usize = 64 * 1024;

/// A projection's state after every event below `next_seq`, with its hash.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProjectionCheckpoint {
    pub name: String,
    /// The first seq not folded into the state.
    pub next_seq: u64,
    pub state_hash: Hash,
    pub state: Vec<u8>,
}

impl ProjectionCheckpoint {
    pub fn capture<P: Projection>(state: &P::State, next_seq: u64) -> Result<Self, MechanismError> {
        let bytes = state_bytes(state)?;
        Ok(Self {
            name: P::NAME.to_string(),
            next_seq,
            state_hash: Hash(*blake3::hash(&bytes).as_bytes()),
            state: bytes,
        })
    }

    /// The state, after checking the checkpoint is for `P` and its bytes match its hash (a
    /// checkpoint read from a file is untrusted).
    pub fn restore<P: Projection>(&self) -> Result<P::State, MechanismError> {
        if self.name != P::NAME {
            return Err(MechanismError::invalid(format!(
                "checkpoint is for projection `{}`, not `{}`",
                self.name,
                P::NAME
            )));
        }
        let computed = Hash(*blake3::hash(&self.state).as_bytes());
        if computed != self.state_hash {
            return Err(MechanismError::invalid(format!(
                "checkpoint state hashes to {computed}, not the recorded {}; it was changed",
                self.state_hash
            )));
        }
        let (state, read) = bincode::serde::decode_from_slice(&self.state, bincode_config())
            .map_err(|error| {
                MechanismError::invalid(format!(
                    "checkpoint state does not decode: {}",
                    decode_reason(error)
                ))
            })?;
        if read != self.state.len() {
            return Err(MechanismError::invalid(
                "checkpoint state has trailing bytes",
            ));
        }
        Ok(state)
    }

    /// The stored form (bincode of this struct).
    pub fn to_bytes(&self) -> Result<Vec<u8>, MechanismError> {
        state_bytes(self)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, MechanismError> {
        let (checkpoint, read) = bincode::serde::decode_from_slice(bytes, bincode_config())
            .map_err(|error| {
                MechanismError::invalid(format!(
                    "not a projection checkpoint: {}",
                    decode_reason(error)
                ))
            })?;
        if read != bytes.len() {
            return Err(MechanismError::invalid(
                "projection checkpoint has trailing bytes",
            ));
        }
        Ok(checkpoint)
    }
}
