//! The auditor: `weightlog replay verify`. Reads a log, proves it untampered and recomputes
//! every recorded weight decision (and, with `re_evaluate`, every evaluation an environment
//! can re-run) from the recorded evidence.
//!
//! How the work is split (DESIGN.md "Replay"):
//! - a rayon pool of `threads` workers reads chunks of [`CHUNK_EVENTS`] events straight
//!   from storage (each task its own range and read transaction), validates and decodes
//!   them and hashes their leaves; it also verifies every checkpoint signature, computes
//!   each weight decision from a fork of the projection state, and re-runs evaluations;
//! - the calling thread does what needs seq order: it pushes leaves onto the Merkle
//!   frontier, compares the root at every signed checkpoint, and folds the projection.
//!
//! **Architecture Invariant:** the report depends only on the log, never on `threads`: the
//! fold is sequential, parallel results are keyed by seq and the first problem is the one
//! with the lowest seq. Tests compare reports and state hashes across thread counts.

mod admission;
mod checkpoint;
mod fold;
mod pipeline;
pub mod properties;
mod source;

pub use admission::{ADMISSION_CHECKPOINT, Admission, AdmissionReport, admission};
pub use checkpoint::AuditCheckpoint;
pub use source::{LogSource, MemorySource, Source};

use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;
use weightlog_schema::Hash;

/// Events read, decoded and handed to the fold at a time: big enough to keep the workers
/// busy, small enough that a few chunks in flight stay a few megabytes.
pub const CHUNK_EVENTS: usize = 4096;
/// Most worker threads an audit starts. Each costs a stack and a share of the chunks in
/// flight; far past the machine's cores they only cost. (100,000 asked for took minutes
/// and gigabytes just to start.)
pub const THREADS_MAX: usize = 1024;
/// Chunks read and decoded ahead of the fold, at least (two per worker thread, plus two).
pub const CHUNKS_IN_FLIGHT_MIN: usize = 4;
/// Divergences listed in a report (the first ones by seq); `findings` counts them all.
pub const FINDINGS_LISTED_MAX: usize = 100;
/// A decision's `log_size` may lag its own seq by at most this many events by default (a
/// live node appends other events while it computes); `AuditOptions::decision_lag_events`
/// may lower it, never raise it past the fold's look-ahead of one chunk.
pub const DECISION_LAG_EVENTS_MAX: u64 = 1024;
const _: () = assert!(DECISION_LAG_EVENTS_MAX <= CHUNK_EVENTS as u64);

/// What to check and how.
#[derive(Debug, Clone)]
pub struct AuditOptions {
    /// Worker threads for the parallel stages (at least 1).
    pub threads: usize,
    /// Fold and compare decisions up to this seq (inclusive); the chain is still checked
    /// up to the first signed checkpoint that covers it.
    pub until: Option<u64>,
    /// Re-run every evaluation whose environment is built in and compare it.
    pub re_evaluate: bool,
    /// Resume from a checkpoint an earlier audit of the same log saved.
    pub from_checkpoint: Option<AuditCheckpoint>,
    /// How far a decision's `log_size` may lag its seq (at most
    /// [`DECISION_LAG_EVENTS_MAX`]). The checkpoint an audit saves is this many events
    /// before its fold limit, so a decision recorded after the limit but computed before it
    /// can still be recomputed by the next audit.
    pub decision_lag_events: u64,
    /// Re-embed every recorded embedding whose text the log holds with this model, and
    /// compare it with the record within [`crate::embed::quantize::RE_EMBED_COSINE_MIN`].
    pub re_embed: Option<Arc<dyn Reembedder>>,
    /// Capture a checkpoint to resume from (see `decision_lag_events` for where). Off, the
    /// audit returns none and skips encoding the projection's state there, which for a
    /// large state is a sizeable part of a replay.
    pub save_checkpoint: bool,
}

/// A sentence-embedding model an auditor re-embeds with (`crate::embed::Embedder`); a
/// trait so the audit does not care which backend runs it.
pub trait Reembedder: Send + Sync + std::fmt::Debug {
    /// blake3 of the weights; embeddings recorded with another model are not re-run.
    fn model_hash(&self) -> Hash;
    /// Unit-length embeddings of the texts, in order.
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, String>;
}

impl Default for AuditOptions {
    fn default() -> Self {
        Self {
            threads: 1,
            until: None,
            re_evaluate: false,
            from_checkpoint: None,
            decision_lag_events: DECISION_LAG_EVENTS_MAX,
            re_embed: None,
            save_checkpoint: false,
        }
    }
}

/// What was wrong, at which seq.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub seq: u64,
    /// The event kind at `seq` (or the kind the problem concerns).
    pub kind: String,
    pub reason: String,
    /// What the log holds, when a value was compared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recorded: Option<Value>,
    /// What the auditor computed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recomputed: Option<Value>,
    /// For weights: the uids whose raw or u16 weight differs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub uids: Vec<u16>,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "seq {} ({}): {}", self.seq, self.kind, self.reason)?;
        if !self.uids.is_empty() {
            let uids: Vec<String> = self.uids.iter().map(u16::to_string).collect();
            write!(f, "; uids that differ: {}", uids.join(", "))?;
        }
        Ok(())
    }
}

/// The outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// Untampered, and every decision (and re-run evaluation) matched.
    Match,
    /// The log is not what its signer signed, or is not a valid log: the first bad seq.
    Tampered(Finding),
    /// The log is what its signer signed, but an event is not valid input for its
    /// profile's projection, so nothing after it can be recomputed.
    Invalid(Finding),
    /// The log is intact but a recorded decision or evaluation does not follow from the
    /// recorded evidence: the first one, by seq.
    Diverged(Finding),
}

/// Everything an audit found; the same facts for the human summary and `--json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditReport {
    pub origin: String,
    pub signer: String,
    /// Events in the log when the audit started.
    pub log_size: u64,
    /// Events whose bytes, leaf and checkpoint coverage were checked (this run).
    pub events_checked: u64,
    /// Signed checkpoints whose signature and root were checked (this run).
    pub checkpoints_checked: u64,
    /// The first seq this run read (0, or the resume point).
    pub resumed_from: u64,
    /// Seqs below this were folded into the projection.
    pub folded_to: u64,
    /// The projection in force at the end, and its state hash there (the determinism
    /// witness); `none` and no hash when the log's profile has no projection.
    pub projection: String,
    pub state_hash: Option<Hash>,
    /// The Merkle root of the events checked, and the size it covers.
    pub root: Hash,
    pub root_size: u64,
    pub decisions_checked: u64,
    pub decisions_diverged: u64,
    pub evaluations_checked: u64,
    pub evaluations_diverged: u64,
    /// Evaluations not re-run: no built-in environment decides them, or they run a miner's
    /// program and this build has no sandbox (the `sandbox` feature).
    pub evaluations_not_rerun: u64,
    /// With `re_embed`: embeddings recomputed and compared, those outside the tolerance,
    /// and those not re-run (another model, or no recorded text to embed).
    pub embeddings_checked: u64,
    pub embeddings_diverged: u64,
    pub embeddings_not_rerun: u64,
    /// How many findings of the verdict's class there were in all.
    pub findings: u64,
    /// The first [`FINDINGS_LISTED_MAX`] divergences by seq (whatever the verdict).
    pub divergences: Vec<Finding>,
    #[serde(flatten)]
    pub verdict: Verdict,
}

impl AuditReport {
    pub fn is_match(&self) -> bool {
        self.verdict == Verdict::Match
    }
}

/// An audit that could not run (as opposed to one that found problems).
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error(transparent)]
    Log(#[from] crate::log::LogError),
    #[error("cannot start {threads} worker threads: {reason}")]
    Threads { threads: usize, reason: String },
    #[error("audit checkpoint: {0}")]
    Checkpoint(String),
    #[error("{0}")]
    Options(String),
    /// The final state did not hash, so the report would have no determinism witness.
    #[error("projection `{projection}` over seqs below {folded_to}: {reason}")]
    State {
        projection: String,
        folded_to: u64,
        reason: String,
    },
}

/// Audits a log. With the report comes, when `options.save_checkpoint` asks for it, a
/// checkpoint of the state at the fold limit (when the profile has a projection and the
/// audit got there), which a later audit of the same log can resume from; save it only
/// when the report matched.
pub fn audit(
    source: &dyn Source,
    options: &AuditOptions,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<(AuditReport, Option<AuditCheckpoint>), AuditError> {
    if options.threads == 0 {
        return Err(AuditError::Options("--threads must be at least 1".into()));
    }
    if options.threads > THREADS_MAX {
        return Err(AuditError::Options(format!(
            "--threads {} is more than the {THREADS_MAX} an audit starts",
            options.threads
        )));
    }
    if options.decision_lag_events > DECISION_LAG_EVENTS_MAX {
        return Err(AuditError::Options(format!(
            "a decision lag of {} events is more than the {DECISION_LAG_EVENTS_MAX} the fold looks ahead",
            options.decision_lag_events
        )));
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(options.threads)
        .thread_name(|index| format!("weightlog-audit-{index}"))
        .build()
        .map_err(|error| AuditError::Threads {
            threads: options.threads,
            reason: error.to_string(),
        })?;
    fold::run(source, options, &pool, progress)
}
