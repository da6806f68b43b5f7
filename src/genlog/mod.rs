//! `gen-log`: realistic synthetic logs for tests, benchmarks and the fuzzer.
//!
//! A generated log looks like a validator's: a genesis `LogOpened` naming the profile, a
//! metagraph every tempo, challenges with the miners' responses and the validator's
//! evaluations, the external scores each profile reads, and every so often a weight decision
//! (`WeightsComputed`, then `WeightsSubmitted`). The decisions are computed honestly: the
//! generator folds every event it writes into the profile's own projection
//! ([`weightlog_replay::projection::registry::for_genesis`]) and records what
//! `decision()` returns, so an auditor re-folding the events below a decision's `log_size`
//! gets it bit for bit.
//!
//! **These logs are synthetic.** They are signed by a throwaway key derived from the seed
//! ([`signing_key`]), their `log_id` is derived from the seed, their clock starts at
//! [`EPOCH_MS`] and advances [`EVENT_INTERVAL_MS`] per event, and every random choice comes
//! from [`SplitMix64`] seeded from the seed — so the same [`GenOptions`] always give the same
//! event bytes (checkpoint signatures, which sr25519 randomises, differ between runs).
//!
//! Each profile's scenario lives in its own file (`affine.rs`, `omega.rs`, `loosh.rs`,
//! `quasar.rs`, `aml.rs`) and follows the event conventions documented at the top of its
//! projection; `world.rs` holds the miners they share.

mod affine;
mod aml;
mod loosh;
mod omega;
mod quasar;
mod world;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use weightlog_replay::MechanismError;
use weightlog_replay::projection::decision::Recomputed;
use weightlog_replay::projection::registry::{self, RunningProjection};
use weightlog_schema::codec;
use weightlog_schema::event::{
    AccountId, LogId, LogOpened, SubmissionOutcome, WeightsCall, WeightsComputed, WeightsSubmitted,
};
use weightlog_schema::{Event, Hash, Payload};

use crate::envs::EnvError;
use crate::envs::rng::SplitMix64;
use crate::keys::Hotkey;
use crate::log::{APPEND_BATCH_EVENTS_MAX, Genesis, Log, LogError};

#[cfg(feature = "node")]
pub(crate) use aml::median;
use world::World;

/// The profiles `gen-log` writes, in the order they were built.
pub const PROFILES: [&str; 5] = ["affine", "omega", "loosh", "quasar", "aml"];
/// Timestamp of the genesis event: 2026-01-01T00:00:00Z.
pub const EPOCH_MS: u64 = 1_767_225_600_000;
/// Synthetic time between two consecutive events.
pub const EVENT_INTERVAL_MS: u64 = 1_200;
/// One block every 12 s, as on subtensor.
pub const BLOCK_INTERVAL_MS: u64 = 12_000;
/// The block at [`EPOCH_MS`].
pub const FIRST_BLOCK: u64 = 7_000_000;
/// Blocks between two metagraph snapshots (the subnet's tempo).
pub const TEMPO_BLOCKS: u64 = 360;
pub const MINERS_DEFAULT: u16 = 32;
/// More miners than a subnet holds is a mistake, not a benchmark.
pub const MINERS_MAX: u16 = 4_096;
/// Events per `append_batch`: one durable commit and one signed checkpoint each.
pub const BATCH_EVENTS: usize = 1_000;
/// Decisions are at least this many events apart in logs long enough for it (see
/// [`GenOptions::decision_interval_events`]).
pub const DECISION_INTERVAL_EVENTS_MIN: u64 = 200;
/// The smallest log `gen-log` writes: a genesis, a setup and one round.
pub const EVENTS_MIN: u64 = 2;

const _: () = assert!(BATCH_EVENTS <= APPEND_BATCH_EVENTS_MAX);

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenOptions {
    /// Number of events in the log, the genesis included.
    pub events: u64,
    /// One of [`PROFILES`].
    pub profile: String,
    pub seed: u64,
    /// Miners in the metagraph (uids `0..miners`).
    pub miners: u16,
    /// Events between weight decisions; `None` picks `max(events / 50, 200)`, but at most
    /// `events / 3` (see [`GenOptions::decision_interval_events`]).
    pub decision_interval: Option<u64>,
}

impl GenOptions {
    pub fn new(profile: &str, events: u64, seed: u64) -> Self {
        Self {
            events,
            profile: profile.to_string(),
            seed,
            miners: MINERS_DEFAULT,
            decision_interval: None,
        }
    }

    /// Events between decisions: about 50 decisions per log, at least
    /// [`DECISION_INTERVAL_EVENTS_MIN`] events apart, but at least two decisions in a log
    /// of a few hundred events. A decision is taken at the first round boundary after the
    /// interval (a round is a challenge with its answers, about `2 × miners` events), so a
    /// log shorter than a round of many miners may hold none.
    pub fn decision_interval_events(&self) -> u64 {
        match self.decision_interval {
            Some(interval) => interval.max(1),
            None => (self.events / 50)
                .max(DECISION_INTERVAL_EVENTS_MIN)
                .min((self.events / 3).max(1)),
        }
    }
}

/// What was generated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenSummary {
    pub events: u64,
    /// `WeightsComputed` events written.
    pub decisions: u64,
    pub signer_ss58: String,
    pub log_id: LogId,
    /// Events per kind name.
    pub kinds: BTreeMap<&'static str, u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum GenError {
    #[error("no gen-log profile `{profile}`; known profiles: {}", PROFILES.join(", "))]
    UnknownProfile { profile: String },
    #[error("a log of {events} events is too short; ask for at least {EVENTS_MIN}")]
    TooFewEvents { events: u64 },
    #[error("{miners} miners: gen-log writes between 1 and {MINERS_MAX} miners")]
    Miners { miners: u16 },
    #[error("{path} already exists; refusing to overwrite it (choose another OUT path)")]
    AlreadyExists { path: PathBuf },
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("event {seq}: the projection refused it: {source}")]
    Projection { seq: u64, source: MechanismError },
    #[error("decision at log size {seq}: {source}")]
    Decision { seq: u64, source: MechanismError },
    #[error(transparent)]
    Environment(#[from] EnvError),
    #[error("the edit hook changed the genesis in a way `Log::create` cannot write: {reason}")]
    Genesis { reason: String },
}

/// The throwaway key that signs a generated log: sr25519 from
/// `blake3("weightlog gen-log" || seed as little-endian u64)`. Anyone can derive it, which is
/// the point: a generated log proves nothing about a real validator.
pub fn signing_key(seed: u64) -> Hotkey {
    Hotkey::from_seed(&derive(seed, b"weightlog gen-log", &[]))
}

/// 32 bytes derived from the seed for one purpose (`domain`) and index (`rest`).
pub(crate) fn derive(seed: u64, domain: &[u8], rest: &[u8]) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(domain);
    hasher.update(&seed.to_le_bytes());
    hasher.update(rest);
    *hasher.finalize().as_bytes()
}

/// Writes a new log at `out` (refuses an existing path).
pub fn generate(out: &Path, options: &GenOptions) -> Result<GenSummary, GenError> {
    generate_with(out, options, &mut |_, _| {})
}

/// Like [`generate`], with `edit` called on every event (its seq, the event) before it is
/// folded and appended, decisions included: a test can make a lying validator (inflate an
/// evaluation, and the weights computed later follow the lie) or a careless one (change a
/// `WeightsComputed` after it was computed). An edit the projection refuses stops the
/// generation with [`GenError::Projection`]; the batches already appended stay in the log,
/// which is closed cleanly.
pub fn generate_with(
    out: &Path,
    options: &GenOptions,
    edit: &mut dyn FnMut(u64, &mut Event),
) -> Result<GenSummary, GenError> {
    if out.exists() {
        return Err(GenError::AlreadyExists { path: out.into() });
    }
    let mut sink = LogSink {
        out,
        key: Some(signing_key(options.seed)),
        appender: None,
        batch: Vec::with_capacity(BATCH_EVENTS),
    };
    let summary = run(options, edit, &mut sink);
    // Whether or not generation failed, wait for the batches already sent, so the log on
    // disk is closed cleanly.
    let finished = sink.finish();
    let summary = summary?;
    finished?;
    Ok(summary)
}

/// The same event stream without a log (for fuzzing and in-memory tests): events in seq
/// order, starting with the `LogOpened` at seq 0. Holds every event; use [`for_each_event`]
/// for long streams.
pub fn events(options: &GenOptions) -> Result<Vec<Event>, GenError> {
    let mut events = Vec::new();
    for_each_event(options, &mut |_, _| {}, &mut |_, event| {
        events.push(event);
        Ok(())
    })?;
    Ok(events)
}

/// The event stream handed to `sink` one event at a time (seq, event), after `edit`.
pub fn for_each_event(
    options: &GenOptions,
    edit: &mut dyn FnMut(u64, &mut Event),
    sink: &mut dyn FnMut(u64, Event) -> Result<(), GenError>,
) -> Result<GenSummary, GenError> {
    let mut sink = FnSink { sink };
    run(options, edit, &mut sink)
}

trait Sink {
    fn push(&mut self, seq: u64, event: Event) -> Result<(), GenError>;
}

struct FnSink<'a> {
    sink: &'a mut dyn FnMut(u64, Event) -> Result<(), GenError>,
}

impl Sink for FnSink<'_> {
    fn push(&mut self, seq: u64, event: Event) -> Result<(), GenError> {
        (self.sink)(seq, event)
    }
}

/// Batches waiting for the appending thread: one being appended, one ready, one being filled.
const QUEUED_BATCHES_MAX: usize = 2;

/// Streams events into a new log in batches of [`BATCH_EVENTS`]; the log is created from
/// the first event (the genesis), which `Log::create` writes itself. Batches are appended on
/// a thread of their own, so generating the next batch overlaps the durable commit of the
/// previous one (the commit waits on the disk).
struct LogSink<'a> {
    out: &'a Path,
    key: Option<Hotkey>,
    appender: Option<Appender>,
    batch: Vec<Event>,
}

struct Appender {
    sender: std::sync::mpsc::SyncSender<Vec<Event>>,
    thread: std::thread::JoinHandle<Result<(), LogError>>,
}

impl Appender {
    fn start(log: Log) -> Self {
        let (sender, receiver) = std::sync::mpsc::sync_channel::<Vec<Event>>(QUEUED_BATCHES_MAX);
        let thread = std::thread::spawn(move || {
            for batch in receiver {
                log.append_batch(&batch)?;
            }
            log.close()
        });
        Self { sender, thread }
    }

    /// Waits for every batch sent to be durable and closes the log.
    fn finish(self) -> Result<(), GenError> {
        drop(self.sender);
        match self.thread.join() {
            Ok(result) => Ok(result?),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

impl LogSink<'_> {
    fn send(&mut self) -> Result<(), GenError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH_EVENTS));
        let sent = match &self.appender {
            Some(appender) => appender.sender.send(batch).is_ok(),
            None => unreachable!("events after the genesis come after the log is created"),
        };
        if !sent {
            // The appending thread stopped on an error: report it.
            if let Some(appender) = self.appender.take() {
                appender.finish()?;
            }
            return Err(GenError::Log(LogError::WriterStopped));
        }
        Ok(())
    }

    /// Appends what is left and closes the log.
    fn finish(mut self) -> Result<(), GenError> {
        self.send()?;
        match self.appender.take() {
            Some(appender) => appender.finish(),
            None => Ok(()),
        }
    }

    fn create(&mut self, event: &Event) -> Result<(), GenError> {
        let (Payload::LogOpened(opened), Some(genesis)) = (&event.payload, Genesis::of(event))
        else {
            return Err(GenError::Genesis {
                reason: format!("seq 0 is a {}, not LogOpened", event.kind()),
            });
        };
        let Some(key) = self.key.take() else {
            return Err(GenError::Genesis {
                reason: "a second genesis".into(),
            });
        };
        let signer = key.public_key();
        if opened.validator_hotkey.0 != signer
            || opened.parameters_hash != codec::parameters_hash_of(&opened.parameters_json)
            || event.schema_version != weightlog_schema::SCHEMA_VERSION
        {
            return Err(GenError::Genesis {
                reason: "its hotkey, parameters hash and schema version must stay as generated"
                    .into(),
            });
        }
        self.appender = Some(Appender::start(Log::create(self.out, key, genesis)?));
        Ok(())
    }
}

impl Sink for LogSink<'_> {
    fn push(&mut self, seq: u64, event: Event) -> Result<(), GenError> {
        if seq == 0 {
            return self.create(&event);
        }
        self.batch.push(event);
        if self.batch.len() >= BATCH_EVENTS {
            self.send()?;
        }
        Ok(())
    }
}

/// What every profile's scenario can use while it writes a round: the miners, the random
/// source and the synthetic clock of the next event.
pub(crate) struct Context {
    pub world: World,
    pub rng: SplitMix64,
    /// Seq of the next event written.
    pub seq: u64,
    pub seed: u64,
}

impl Context {
    pub fn timestamp_ms(&self) -> u64 {
        timestamp_of(self.seq)
    }

    pub fn block(&self) -> u64 {
        block_of(self.seq)
    }
}

pub(crate) fn timestamp_of(seq: u64) -> u64 {
    EPOCH_MS + seq * EVENT_INTERVAL_MS
}

pub(crate) fn block_of(seq: u64) -> u64 {
    FIRST_BLOCK + seq * EVENT_INTERVAL_MS / BLOCK_INTERVAL_MS
}

/// One profile's validator: its genesis parameters and its rounds of events.
pub(crate) trait Scenario {
    fn netuid(&self) -> u16;
    fn parameters_json(&self) -> String;
    /// The next events the validator records (everything up to the next point where a
    /// decision may be taken). Called again until the log is long enough.
    fn round(&mut self, context: &mut Context, out: &mut Vec<Payload>) -> Result<(), GenError>;
}

fn scenario(options: &GenOptions, context: &mut Context) -> Result<Box<dyn Scenario>, GenError> {
    Ok(match options.profile.as_str() {
        "affine" => Box::new(affine::Affine::new(context)),
        "omega" => Box::new(omega::Omega::new(context)),
        "loosh" => Box::new(loosh::Loosh::new(context)),
        "quasar" => Box::new(quasar::Quasar::new(context)),
        "aml" => Box::new(aml::Aml::new(context)),
        other => {
            return Err(GenError::UnknownProfile {
                profile: other.to_string(),
            });
        }
    })
}

/// The generator: writes rounds, folds every event into the projection, and takes a
/// decision at the first round boundary after each interval.
struct Driver<'a> {
    running: Box<dyn RunningProjection>,
    parameters_hash: Hash,
    edit: &'a mut dyn FnMut(u64, &mut Event),
    sink: &'a mut dyn Sink,
    seq: u64,
    limit: u64,
    decisions: u64,
    kinds: BTreeMap<&'static str, u64>,
}

impl Driver<'_> {
    fn emit(&mut self, payload: Payload) -> Result<u64, GenError> {
        let seq = self.seq;
        let mut event = Event::new(timestamp_of(seq), payload);
        (self.edit)(seq, &mut event);
        self.running
            .apply(seq, &event)
            .map_err(|source| GenError::Projection { seq, source })?;
        *self.kinds.entry(event.kind().name()).or_default() += 1;
        self.sink.push(seq, event)?;
        self.seq += 1;
        Ok(seq)
    }

    fn room(&self) -> u64 {
        self.limit - self.seq
    }

    /// Computes the decision over every event folded so far and records it.
    fn decide(&mut self, seed: u64) -> Result<(), GenError> {
        let log_size = self.seq;
        let recomputed = self
            .running
            .decision()
            .map_err(|source| GenError::Decision {
                seq: log_size,
                source,
            })?;
        let Recomputed::Weights(decision) = recomputed else {
            return Ok(());
        };
        let block = block_of(log_size);
        let decision_seq = self.emit(Payload::WeightsComputed(WeightsComputed {
            block,
            mechanism: self.running.name().into(),
            parameters_hash: self.parameters_hash,
            log_size,
            uids: decision.uids,
            raw_weight_bits: decision.raw_weight_bits,
            u16_uids: decision.u16_uids,
            u16_weights: decision.u16_weights,
        }))?;
        self.decisions += 1;
        if self.room() > 0 {
            let hash = derive(seed, b"gen-log extrinsic", &decision_seq.to_le_bytes());
            self.emit(Payload::WeightsSubmitted(WeightsSubmitted {
                decision_seq,
                call: WeightsCall::SetWeights,
                extrinsic_hash: Some(Hash(hash)),
                reveal_round: None,
                outcome: SubmissionOutcome::Included { block: block + 1 },
                spec_version: None,
            }))?;
        }
        Ok(())
    }
}

fn run(
    options: &GenOptions,
    edit: &mut dyn FnMut(u64, &mut Event),
    sink: &mut dyn Sink,
) -> Result<GenSummary, GenError> {
    if !PROFILES.contains(&options.profile.as_str()) {
        return Err(GenError::UnknownProfile {
            profile: options.profile.clone(),
        });
    }
    if options.events < EVENTS_MIN {
        return Err(GenError::TooFewEvents {
            events: options.events,
        });
    }
    if options.miners == 0 || options.miners > MINERS_MAX {
        return Err(GenError::Miners {
            miners: options.miners,
        });
    }
    let key = signing_key(options.seed);
    let validator = AccountId(key.public_key());
    let mut rng = SplitMix64::new(options.seed);
    let world = World::new(options.seed, options.miners, &mut rng);
    let mut context = Context {
        world,
        rng,
        seq: 0,
        seed: options.seed,
    };
    let mut scenario = scenario(options, &mut context)?;
    let parameters_json = scenario.parameters_json();
    let parameters_hash = codec::parameters_hash_of(&parameters_json);
    let mut log_id = [0u8; 16];
    log_id.copy_from_slice(&derive(options.seed, b"gen-log log id", &[])[..16]);
    let genesis = Event::new(
        timestamp_of(0),
        Payload::LogOpened(LogOpened {
            log_id: LogId(log_id),
            netuid: scenario.netuid(),
            validator_hotkey: validator,
            profile: options.profile.clone(),
            parameters_json,
            parameters_hash,
        }),
    );
    let running = registry::for_genesis(&genesis)
        .map_err(|source| GenError::Projection { seq: 0, source })?;
    let mut driver = Driver {
        running,
        parameters_hash,
        edit,
        sink,
        seq: 0,
        limit: options.events,
        decisions: 0,
        kinds: BTreeMap::new(),
    };
    driver.emit(genesis.payload)?;

    let interval = options.decision_interval_events();
    let mut next_decision = interval;
    let mut round = Vec::new();
    while driver.room() > 0 {
        context.seq = driver.seq;
        round.clear();
        scenario.round(&mut context, &mut round)?;
        assert!(!round.is_empty(), "a scenario round writes events");
        for payload in round.drain(..) {
            if driver.room() == 0 {
                break;
            }
            driver.emit(payload)?;
        }
        if driver.seq >= next_decision && driver.room() > 0 {
            driver.decide(options.seed)?;
            next_decision = driver.seq + interval;
        }
    }
    assert_eq!(
        driver.seq, options.events,
        "the log holds exactly the events asked"
    );
    Ok(GenSummary {
        events: driver.seq,
        decisions: driver.decisions,
        signer_ss58: key.ss58(),
        log_id: LogId(log_id),
        kinds: driver.kinds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_are_about_fifty_per_log_and_two_in_a_short_one() {
        let interval = |events| GenOptions::new("affine", events, 0).decision_interval_events();
        assert_eq!(interval(1_000_000), 20_000);
        assert_eq!(interval(10_000), 200);
        assert_eq!(interval(300), 100);
        assert_eq!(interval(2), 1);
        let mut pinned = GenOptions::new("affine", 1_000, 0);
        pinned.decision_interval = Some(0);
        assert_eq!(pinned.decision_interval_events(), 1);
    }

    #[test]
    fn the_clock_gives_a_block_every_ten_events() {
        assert_eq!(timestamp_of(0), EPOCH_MS);
        assert_eq!(timestamp_of(10) - timestamp_of(0), BLOCK_INTERVAL_MS);
        assert_eq!(block_of(9), FIRST_BLOCK);
        assert_eq!(block_of(10), FIRST_BLOCK + 1);
    }

    #[test]
    fn the_key_and_log_id_follow_the_seed() {
        assert_eq!(signing_key(1).ss58(), signing_key(1).ss58());
        assert_ne!(signing_key(1).ss58(), signing_key(2).ss58());
        assert_ne!(derive(1, b"a", &[]), derive(1, b"b", &[]));
    }
}
