//! The sequential stage of an audit, and the threads around it.
//!
//! The fold thread receives decoded chunks in seq order and, for each event: checks the seq
//! follows, the bytes decoded, the stored leaf matches and the genesis rules hold; appends
//! the leaf to the Merkle frontier and compares the root at every signed checkpoint; and,
//! below the fold limit, folds the event into the profile's projection. Work that does not
//! need order (a weight decision computed from a fork of the state, an evaluation re-run) is
//! spawned on the pool and compared when all of it is in.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use crossbeam_channel::{Sender, unbounded};
use serde_json::{Value, json};
use weightlog_replay::MechanismError;
use weightlog_replay::projection::decision::{Decision, Recomputed};
use weightlog_replay::projection::registry::{
    PROFILES, RunningProjection, for_genesis, for_profile,
};
use weightlog_schema::event::{ChallengeIssued, EvaluationRecorded, Metric, ResponseOutcome};
use weightlog_schema::merkle::Frontier;
use weightlog_schema::{Event, Hash, Payload, codec};

use super::pipeline::{CheckedCheckpoint, Decoded, check_checkpoints, decode_range};
use super::{
    AuditCheckpoint, AuditError, AuditOptions, AuditReport, CHUNK_EVENTS, CHUNKS_IN_FLIGHT_MIN,
    Finding, Source, Verdict,
};
use crate::embed::quantize::{RE_EMBED_COSINE_MIN, cosine_with_record};
use crate::envs::{self, EnvError, Evaluation};
use crate::loosh;
use weightlog_replay::projection::Projection;
use weightlog_replay::projection::loosh::EVALUATOR_EMISSION;
use weightlog_replay::projection::loosh_evaluate::{
    ENVIRONMENT as LOOSH_ENVIRONMENT, LooshEvaluate, LooshEvaluateState, PROMPT_EMBEDDING_UID,
    Round,
};

/// A result computed on the pool, compared once all are in.
enum JobResult {
    Decision {
        seq: u64,
        recorded: Decision,
        recomputed: Result<Recomputed, MechanismError>,
    },
    Evaluation {
        seq: u64,
        recorded: EvaluationRecorded,
        recomputed: Result<Evaluation, EnvError>,
    },
    Embedding {
        seq: u64,
        challenge_id: String,
        uid: u16,
        /// The cosine between the recomputed embedding and the record, or why there is none.
        cosine: Result<f64, String>,
    },
}

/// Texts embedded together on the pool under `--re-embed`.
const RE_EMBED_BATCH_TEXTS: usize = 32;

/// A loosh round whose recorded emissions wait to be recomputed from its recorded
/// embeddings: the round as it stood when its first emission was recorded, and each
/// emission (seq, event) recorded for it.
struct PendingRound {
    round: Round,
    input: Result<Value, MechanismError>,
    recorded: Vec<(u64, EvaluationRecorded)>,
}

/// A recorded embedding waiting to be recomputed.
struct PendingEmbedding {
    seq: u64,
    challenge_id: String,
    uid: u16,
    text: String,
    record: Vec<i8>,
}

/// How a projection taking over at a profile switch fared.
enum Refold {
    Folded,
    /// It refused an event; the reason names it.
    Refused {
        reason: String,
    },
    /// The events before the switch do not hash to the audit's frontier.
    Changed,
}

/// The profile in force and the projection computing it.
struct Profile {
    name: String,
    parameters_json: String,
    parameters_hash: Hash,
    /// `Err`: no projection for this profile (why), so its decisions cannot be recomputed.
    projection: Result<Box<dyn RunningProjection>, String>,
}

/// What re-evaluation needs to remember: challenges of built-in environments and the
/// latest response of each miner to them.
#[derive(Default)]
struct Evidence {
    challenges: BTreeMap<String, Arc<ChallengeIssued>>,
    responses: BTreeMap<(String, u16), Option<String>>,
    /// Under `--re-embed`: the text each embedding should be of, by (challenge, uid), the
    /// prompt under [`PROMPT_EMBEDDING_UID`]. Dropped once its embedding is queued.
    texts: BTreeMap<(String, u16), String>,
    pending_embeddings: Vec<PendingEmbedding>,
    /// Under `--re-evaluate`: the loosh rounds as the log builds them (`None` once the
    /// projection refused an event: this log's emissions are then not re-run), and the
    /// rounds whose emissions were recorded, by challenge.
    loosh_rounds: Option<LooshEvaluateState>,
    pending_rounds: BTreeMap<String, PendingRound>,
}

struct Fold<'a> {
    source: &'a dyn Source,
    options: &'a AuditOptions,
    pool: &'a rayon::ThreadPool,
    start: u64,
    fold_limit: u64,
    frontier: Frontier,
    checkpoints: VecDeque<CheckedCheckpoint>,
    checkpoints_checked: u64,
    /// The size of the last checkpoint whose root matched.
    covered_to: u64,
    /// Leaves since then, to name a changed event when the next signed root differs.
    uncovered_leaves: Vec<Hash>,
    profile: Option<Profile>,
    /// log_size -> the decisions (seq, recorded) computed at that size.
    decision_points: BTreeMap<u64, Vec<(u64, Decision)>>,
    /// Decisions whose recomputation was spawned, with the mechanism and parameters hash
    /// in force where their fork was taken.
    scheduled: BTreeMap<u64, (&'static str, Hash)>,
    /// Decisions and evaluations below this seq were compared by the audit a resume
    /// started from; they are folded but not compared again.
    checked_to: u64,
    /// Where this audit saves its checkpoint: the decision lag before the fold limit.
    save_at: u64,
    /// Decisions already found wrong before recomputing (their recomputation is ignored).
    reported: BTreeSet<u64>,
    evidence: Evidence,
    jobs: Sender<JobResult>,
    divergences: Vec<Finding>,
    decisions_checked: u64,
    evaluations_checked: u64,
    evaluations_not_rerun: u64,
    embeddings_checked: u64,
    embeddings_not_rerun: u64,
    tampered: Option<Finding>,
    /// The first event the profile's projection refused (the chain check goes on).
    invalid: Option<Finding>,
    saved: Option<AuditCheckpoint>,
}

fn finding(seq: u64, kind: impl std::fmt::Display, reason: impl Into<String>) -> Finding {
    Finding {
        seq,
        kind: kind.to_string(),
        reason: reason.into(),
        recorded: None,
        recomputed: None,
        uids: Vec::new(),
    }
}

pub(super) fn run(
    source: &dyn Source,
    options: &AuditOptions,
    pool: &rayon::ThreadPool,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<(AuditReport, Option<AuditCheckpoint>), AuditError> {
    let size = source.size()?;
    let resume = options.from_checkpoint.as_ref();
    let start = resume.map_or(0, AuditCheckpoint::next_seq);
    if let Some(resume) = resume
        && resume.origin() != source.origin()
    {
        return Err(AuditError::Checkpoint(format!(
            "it is for log {}, not {}",
            resume.origin(),
            source.origin()
        )));
    }
    if let Some(resume) = resume
        && resume.signer() != source.signer().to_ss58()
    {
        return Err(AuditError::Checkpoint(format!(
            "it was taken of a log signed by {}, but this log is signed by {}",
            resume.signer(),
            source.signer().to_ss58()
        )));
    }
    let fold_limit = match options.until {
        Some(until) if until < start => {
            return Err(AuditError::Options(format!(
                "--until {until} is before the checkpoint's resume point {start}"
            )));
        }
        Some(until) => until.saturating_add(1).min(size),
        None => size,
    };

    let (sender, results) = unbounded();
    let mut fold = Fold {
        source,
        options,
        pool,
        start,
        fold_limit,
        frontier: Frontier::new(),
        checkpoints: VecDeque::new(),
        checkpoints_checked: 0,
        covered_to: start,
        uncovered_leaves: Vec::new(),
        profile: None,
        decision_points: BTreeMap::new(),
        scheduled: BTreeMap::new(),
        checked_to: resume.map_or(0, AuditCheckpoint::checked_to),
        save_at: fold_limit
            .saturating_sub(options.decision_lag_events)
            .max(start),
        reported: BTreeSet::new(),
        evidence: Evidence {
            loosh_rounds: options.re_evaluate.then(LooshEvaluateState::default),
            ..Evidence::default()
        },
        jobs: sender,
        divergences: Vec::new(),
        decisions_checked: 0,
        evaluations_checked: 0,
        evaluations_not_rerun: 0,
        embeddings_checked: 0,
        embeddings_not_rerun: 0,
        tampered: None,
        invalid: None,
        saved: None,
    };
    if let Some(resume) = resume {
        fold.resume(resume)?;
    }
    if start > size {
        fold.tampered = Some(finding(
            size,
            "missing",
            format!(
                "the log holds {size} events but an earlier audit verified {start}; events \
                 were removed"
            ),
        ));
    }

    // Checkpoints: signatures in parallel up front; roots compared in order below.
    let texts: Vec<(u64, String)> = source
        .checkpoints()?
        .into_iter()
        .filter(|(stored_size, _)| *stored_size >= start && (*stored_size > 0))
        .collect();
    let signer = *source.signer();
    let origin = source.origin().to_string();
    fold.checkpoints = pool
        .install(|| check_checkpoints(texts, &signer, &origin))
        .into();
    // The chain is checked up to the first checkpoint at or past the fold limit, so the
    // events folded are covered by a signature.
    let chain_end = if source.signed() && options.until.is_some() {
        fold.checkpoints
            .iter()
            .map(|checkpoint| checkpoint.stored_size)
            .find(|stored_size| *stored_size >= fold_limit)
            .unwrap_or(size)
            .min(size)
    } else {
        size
    };
    if fold.tampered.is_none() {
        fold.check_checkpoints_at_frontier()?;
    }
    if fold.tampered.is_none() && fold.frontier.size() == fold.save_at {
        fold.save()?;
    }

    if fold.tampered.is_none() && start < chain_end {
        fold.stream(start, chain_end, progress)?;
    }
    if fold.tampered.is_none() {
        fold.finish_chain(size);
    }
    fold.spawn_embeddings();
    fold.spawn_rounds();

    // Everything spawned holds a sender; dropping ours lets the receiver end when the
    // last job is in.
    drop(std::mem::replace(&mut fold.jobs, unbounded().0));
    if fold.tampered.is_none() {
        for result in results.iter() {
            fold.compare(result);
        }
    }
    fold.report(size)
}

impl Fold<'_> {
    fn resume(&mut self, resume: &AuditCheckpoint) -> Result<(), AuditError> {
        self.frontier = resume.frontier()?;
        let (name, parameters_json, parameters_hash) = resume.profile();
        let mut projection = for_profile(name, parameters_json)
            .map_err(|error| AuditError::Checkpoint(error.to_string()))?;
        projection
            .restore(resume.projection())
            .map_err(|error| AuditError::Checkpoint(error.to_string()))?;
        self.profile = Some(Profile {
            name: name.into(),
            parameters_json: parameters_json.into(),
            parameters_hash,
            projection: Ok(projection),
        });
        Ok(())
    }

    /// Reads, decodes and folds `from..to`: pool tasks each read and decode one chunk
    /// (a window of them in flight), and this thread folds the chunks in seq order.
    fn stream(
        &mut self,
        from: u64,
        to: u64,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<(), AuditError> {
        let source = self.source;
        let pool = self.pool;
        let ranges: Vec<(u64, u64)> = (from..to)
            .step_by(CHUNK_EVENTS)
            .map(|first| (first, first.saturating_add(CHUNK_EVENTS as u64).min(to)))
            .collect();
        let window = CHUNKS_IN_FLIGHT_MIN.max(2 * pool.current_num_threads() + 2);
        let (sender, receiver) = unbounded::<(usize, Result<Vec<Decoded>, AuditError>)>();
        pool.in_place_scope(|scope| -> Result<(), AuditError> {
            let spawn = |index: usize| {
                let (first, end) = ranges[index];
                let sender = sender.clone();
                scope.spawn(move |_| {
                    let _ = sender.send((index, decode_range(source, first, end)));
                });
            };
            let mut spawned = 0;
            while spawned < ranges.len() && spawned < window {
                spawn(spawned);
                spawned += 1;
            }
            let mut ready: BTreeMap<usize, Vec<Decoded>> = BTreeMap::new();
            let mut noted = 0;
            for next in 0..ranges.len() {
                // One chunk of look-ahead: a decision computed at `log_size` may be
                // recorded up to a chunk later, and its point must be known before the
                // fold passes it.
                while noted < (next + 2).min(ranges.len()) {
                    if let Some(chunk) = ready.get(&noted) {
                        self.note_decision_points(chunk);
                        noted += 1;
                        continue;
                    }
                    let Ok((index, decoded)) = receiver.recv() else {
                        return Err(AuditError::Options("a decoding task stopped".into()));
                    };
                    ready.insert(index, decoded?);
                }
                let Some(chunk) = ready.remove(&next) else {
                    return Err(AuditError::Options("a chunk went missing".into()));
                };
                for decoded in &chunk {
                    self.event(decoded)?;
                    if self.tampered.is_some() {
                        return Ok(());
                    }
                }
                // With more than one worker, every core is busy and the chunk is freed on
                // the pool, where its events were allocated (mimalloc frees a block on the
                // thread that allocated it faster). With one worker, that worker is what
                // the audit waits for, and this thread has time to spare.
                if pool.current_num_threads() > 1 {
                    scope.spawn(move |_| drop(chunk));
                }
                progress(self.frontier.size());
                if spawned < ranges.len() {
                    spawn(spawned);
                    spawned += 1;
                }
            }
            Ok(())
        })
    }

    /// Registers the points where the decisions recorded in `chunk` were computed.
    fn note_decision_points(&mut self, chunk: &[Decoded]) {
        for decoded in chunk {
            if let Ok(Event {
                payload: Payload::WeightsComputed(computed),
                ..
            }) = &decoded.event
                && decoded.seq < self.fold_limit
                && decoded.seq >= self.checked_to
                && computed.log_size <= decoded.seq
                && computed.log_size >= self.frontier.size().max(self.start)
            {
                self.decision_points
                    .entry(computed.log_size)
                    .or_default()
                    .push((decoded.seq, Decision::recorded(computed)));
            }
        }
    }

    fn event(&mut self, decoded: &Decoded) -> Result<(), AuditError> {
        let seq = decoded.seq;
        let expected = self.frontier.size();
        if seq != expected {
            self.tampered = Some(finding(
                expected,
                "missing",
                format!(
                    "the log jumps from seq {} to seq {seq}; events were removed",
                    expected.wrapping_sub(1)
                ),
            ));
            return Ok(());
        }
        let event = match &decoded.event {
            Ok(event) => event,
            Err(error) => {
                self.tampered = Some(finding(
                    seq,
                    "undecodable",
                    format!("the stored bytes are not a valid event: {error}"),
                ));
                return Ok(());
            }
        };
        let kind = event.kind();
        if let Some(reason) = self.genesis_problem(seq, event) {
            self.tampered = Some(finding(seq, kind, reason));
            return Ok(());
        }
        self.frontier.append(decoded.leaf);
        self.uncovered_leaves.push(decoded.leaf);
        self.check_checkpoints_at_frontier()?;
        if self.tampered.is_some() || seq >= self.fold_limit {
            return Ok(());
        }
        self.fold_event(seq, kind, event)?;
        if self.tampered.is_none() && self.frontier.size() == self.save_at {
            self.save()?;
        }
        Ok(())
    }

    fn genesis_problem(&self, seq: u64, event: &Event) -> Option<String> {
        let identity = self
            .source
            .signed()
            .then(|| (self.source.signer(), self.source.origin()));
        crate::log::verify::check_genesis(seq, &event.payload, identity)
    }

    /// Compares the frontier with every checkpoint stored for its size.
    fn check_checkpoints_at_frontier(&mut self) -> Result<(), AuditError> {
        let size = self.frontier.size();
        while let Some(checkpoint) = self.checkpoints.front() {
            if checkpoint.stored_size > size {
                return Ok(());
            }
            let Some(checkpoint) = self.checkpoints.pop_front() else {
                return Ok(());
            };
            let first = self.covered_to.min(size.saturating_sub(1));
            let reason = match &checkpoint.root {
                Err(reason) => Some(reason.clone()),
                Ok(_) if checkpoint.stored_size < size => Some(format!(
                    "stored at size {} but the audit is past it",
                    checkpoint.stored_size
                )),
                Ok(root) if *root != self.frontier.root() => {
                    if let Some(changed) = self.changed_leaf()? {
                        self.tampered = Some(changed);
                        return Ok(());
                    }
                    Some(format!(
                        "the signed root is {root} but the events give {}",
                        self.frontier.root()
                    ))
                }
                Ok(_) => None,
            };
            if let Some(reason) = reason {
                // After a resume, the frontier up to the resume point came from the audit
                // checkpoint, not from this log's events: they may be what differs.
                let resumed = if self.covered_to == self.start && self.start > 0 {
                    format!(
                        ", or the events below this audit's resume point {} are not the ones \
                         its audit checkpoint was taken of; an audit from the start tells which",
                        self.start
                    )
                } else {
                    String::new()
                };
                self.tampered = Some(finding(
                    first,
                    "checkpoint",
                    format!(
                        "checkpoint at size {}: {reason} (an event in seqs {first}..={} was \
                         changed after signing, or the checkpoint was not signed by the log's \
                         key{resumed})",
                        checkpoint.stored_size,
                        size.saturating_sub(1)
                    ),
                ));
                return Ok(());
            }
            self.checkpoints_checked += 1;
            self.covered_to = size;
            self.uncovered_leaves.clear();
        }
        Ok(())
    }

    /// When a signed root differs: the first event since the last good checkpoint whose
    /// bytes no longer hash to the leaf the log stored when it was written (a forger who
    /// also rewrote the stored leaves is named by the checkpoint instead).
    fn changed_leaf(&self) -> Result<Option<Finding>, AuditError> {
        let stored = self
            .source
            .stored_leaves(self.covered_to, self.frontier.size())?;
        for (seq, stored_leaf) in stored {
            let Some(index) = seq.checked_sub(self.covered_to) else {
                continue;
            };
            let Some(leaf) = self.uncovered_leaves.get(index as usize) else {
                continue;
            };
            if *leaf != stored_leaf {
                return Ok(Some(finding(
                    seq,
                    "changed",
                    "the event's bytes no longer hash to the leaf stored when it was written, \
                     and the signed root differs; the event was changed after it was signed",
                )));
            }
        }
        Ok(None)
    }

    /// After the last event: checkpoints past the end mean events were removed; events past
    /// the last checkpoint are not covered by a signature.
    fn finish_chain(&mut self, size: u64) {
        let reached = self.frontier.size();
        if let Some(checkpoint) = self.checkpoints.front()
            && (self.options.until.is_none() || reached == size)
        {
            self.tampered = Some(finding(
                reached,
                "missing",
                format!(
                    "a signed checkpoint covers {} events but the log holds {reached}; events \
                     {reached}..={} were removed",
                    checkpoint.stored_size,
                    checkpoint.stored_size.saturating_sub(1)
                ),
            ));
            return;
        }
        if self.source.signed() && self.covered_to < reached {
            self.tampered = Some(finding(
                self.covered_to,
                "uncovered",
                format!(
                    "events {}..={} are not covered by any signed checkpoint",
                    self.covered_to,
                    reached - 1
                ),
            ));
        }
        if reached == 0 {
            self.tampered = Some(finding(
                0,
                "missing",
                "the log has no events, not even its genesis",
            ));
        }
    }

    fn fold_event(
        &mut self,
        seq: u64,
        kind: weightlog_schema::EventKind,
        event: &Event,
    ) -> Result<(), AuditError> {
        // Decisions computed over exactly the events below `seq`.
        if let Some(decisions) = self.decision_points.remove(&seq) {
            for (decision_seq, recorded) in decisions {
                self.spawn_decision(decision_seq, recorded);
            }
        }
        if self.options.re_embed.is_some() {
            self.note_embedding_evidence(seq, event);
        }
        if self.options.re_evaluate {
            self.note_loosh_round(seq, event);
        }
        match &event.payload {
            Payload::LogOpened(opened) => {
                let projection = for_genesis(event).map_err(|error| error.to_string());
                if let Err(reason) = &projection {
                    self.note_unusable_profile(seq, kind, &opened.profile, reason);
                }
                self.profile = Some(Profile {
                    name: opened.profile.clone(),
                    parameters_json: opened.parameters_json.clone(),
                    parameters_hash: opened.parameters_hash,
                    projection,
                });
            }
            Payload::ProfileChanged(changed) => self.change_profile(seq, changed)?,
            Payload::WeightsComputed(computed) if seq >= self.checked_to => {
                self.decisions_checked += 1;
                if let Some(reason) = self.decision_problem(seq, computed) {
                    self.divergences.push(Finding {
                        recorded: Some(json!({
                            "mechanism": computed.mechanism,
                            "parameters_hash": computed.parameters_hash,
                            "log_size": computed.log_size,
                        })),
                        ..finding(seq, kind, reason)
                    });
                    self.reported.insert(seq);
                }
            }
            Payload::ChallengeIssued(challenge)
                if self.options.re_evaluate && envs::by_name(&challenge.environment).is_some() =>
            {
                self.evidence
                    .challenges
                    .insert(challenge.challenge_id.clone(), Arc::new(challenge.clone()));
            }
            Payload::ResponseReceived(response)
                if self.options.re_evaluate
                    && self
                        .evidence
                        .challenges
                        .contains_key(&response.challenge_id) =>
            {
                let body = match &response.outcome {
                    ResponseOutcome::Ok { body } => Some(body.clone()),
                    ResponseOutcome::Error { .. } => None,
                };
                self.evidence
                    .responses
                    .insert((response.challenge_id.clone(), response.uid), body);
            }
            Payload::EvaluationRecorded(evaluation)
                if self.options.re_evaluate
                    && seq >= self.checked_to
                    && evaluation.evaluator != EVALUATOR_EMISSION =>
            {
                self.spawn_evaluation(seq, evaluation);
            }
            _ => {}
        }
        if let Some(profile) = &mut self.profile
            && let Ok(projection) = &mut profile.projection
            && let Err(error) = projection.apply(seq, event)
        {
            let reason = format!("not a valid event of profile `{}`: {error}", profile.name);
            // The state is undefined from here: later decisions cannot be recomputed.
            profile.projection = Err(format!("it refused event {seq}"));
            if self.invalid.is_none() {
                self.invalid = Some(finding(seq, kind, reason));
            }
        }
        Ok(())
    }

    /// Why a recorded decision cannot be what the profile computed, before recomputing it.
    fn decision_problem(
        &self,
        seq: u64,
        computed: &weightlog_schema::event::WeightsComputed,
    ) -> Option<String> {
        if computed.log_size > seq {
            return Some(format!(
                "computed over {} events, more than the {seq} before it",
                computed.log_size
            ));
        }
        let lag = self.options.decision_lag_events;
        if seq - computed.log_size > lag {
            return Some(format!(
                "computed over {} events, more than {lag} events before it was recorded",
                computed.log_size
            ));
        }
        if computed.log_size < self.start {
            return Some(format!(
                "computed over {} events, before the audit checkpoint's resume point {}; \
                 audit from an earlier checkpoint",
                computed.log_size, self.start
            ));
        }
        // The profile that matters is the one in force where the decision was computed.
        if let Some((mechanism, parameters_hash)) = self.scheduled.get(&seq) {
            if computed.mechanism != *mechanism {
                return Some(format!(
                    "recorded mechanism `{}` but the profile in force at log size {} computes \
                     weights with `{mechanism}`",
                    computed.mechanism, computed.log_size
                ));
            }
            if computed.parameters_hash != *parameters_hash {
                return Some(format!(
                    "recorded parameters hash {} but the parameters in force at log size {} \
                     hash to {parameters_hash}",
                    computed.parameters_hash, computed.log_size
                ));
            }
            return None;
        }
        match &self.profile {
            None => Some("a decision before any profile was opened".into()),
            Some(Profile {
                name,
                projection: Err(reason),
                ..
            }) => Some(format!(
                "profile `{name}` has no projection to recompute it: {reason}"
            )),
            Some(_) => Some(format!(
                "computed over {} events, which the audit passed before it saw the decision",
                computed.log_size
            )),
        }
    }

    fn spawn_decision(&mut self, decision_seq: u64, recorded: Decision) {
        let Some(Profile {
            projection: Ok(projection),
            ..
        }) = &self.profile
        else {
            return;
        };
        let parameters_hash = self
            .profile
            .as_ref()
            .map_or(Hash([0; 32]), |profile| profile.parameters_hash);
        self.scheduled
            .insert(decision_seq, (projection.name(), parameters_hash));
        let fork = projection.fork();
        let sender = self.jobs.clone();
        self.pool.spawn(move || {
            let recomputed = fork.decision();
            let _ = sender.send(JobResult::Decision {
                seq: decision_seq,
                recorded,
                recomputed,
            });
        });
    }

    /// Under `--re-embed`: remember the texts (prompts and response bodies) and queue each
    /// recorded embedding whose text is known, a batch at a time.
    fn note_embedding_evidence(&mut self, seq: u64, event: &Event) {
        let Some(embedder) = &self.options.re_embed else {
            return;
        };
        match &event.payload {
            Payload::ChallengeIssued(challenge) => {
                self.evidence.texts.insert(
                    (challenge.challenge_id.clone(), PROMPT_EMBEDDING_UID),
                    challenge.prompt.clone(),
                );
            }
            Payload::ResponseReceived(response) => {
                if let ResponseOutcome::Ok { body } = &response.outcome {
                    self.evidence
                        .texts
                        .insert((response.challenge_id.clone(), response.uid), body.clone());
                }
            }
            Payload::EmbeddingComputed(embedding) if seq >= self.checked_to => {
                let key = (embedding.challenge_id.clone(), embedding.uid);
                let text = self.evidence.texts.remove(&key);
                match text {
                    Some(text) if embedding.model_hash == embedder.model_hash() => {
                        self.embeddings_checked += 1;
                        self.evidence.pending_embeddings.push(PendingEmbedding {
                            seq,
                            challenge_id: key.0,
                            uid: key.1,
                            text,
                            record: embedding.vector.clone(),
                        });
                        if self.evidence.pending_embeddings.len() >= RE_EMBED_BATCH_TEXTS {
                            self.spawn_embeddings();
                        }
                    }
                    _ => self.embeddings_not_rerun += 1,
                }
            }
            _ => {}
        }
    }

    /// Under `--re-evaluate`: follow the loosh rounds, and keep each round whose emissions
    /// are recorded, as it stood then, to recompute them.
    fn note_loosh_round(&mut self, seq: u64, event: &Event) {
        let Some(state) = &mut self.evidence.loosh_rounds else {
            if let Payload::EvaluationRecorded(evaluation) = &event.payload
                && evaluation.evaluator == EVALUATOR_EMISSION
                && seq >= self.checked_to
            {
                self.evaluations_not_rerun += 1;
            }
            return;
        };
        match &event.payload {
            Payload::ChallengeIssued(challenge) if challenge.environment == LOOSH_ENVIRONMENT => {
                self.spawn_rounds();
            }
            Payload::EvaluationRecorded(evaluation)
                if evaluation.evaluator == EVALUATOR_EMISSION && seq >= self.checked_to =>
            {
                let id = &evaluation.challenge_id;
                if !self.evidence.pending_rounds.contains_key(id)
                    && let Some(round) = state.rounds.iter().find(|r| &r.challenge_id == id)
                {
                    let pending = PendingRound {
                        round: round.clone(),
                        input: LooshEvaluate.input_for(state, id),
                        recorded: Vec::new(),
                    };
                    self.evidence.pending_rounds.insert(id.clone(), pending);
                }
                match self.evidence.pending_rounds.get_mut(id) {
                    Some(pending) => {
                        self.evaluations_checked += 1;
                        pending.recorded.push((seq, evaluation.clone()));
                    }
                    None => self.evaluations_not_rerun += 1,
                }
            }
            _ => {}
        }
        if let Some(state) = &mut self.evidence.loosh_rounds
            && LooshEvaluate.apply(state, seq, event).is_err()
        {
            // Not a log of loosh rounds this projection can follow (the profile's own
            // projection judges validity); its emissions are not re-run.
            self.evidence.loosh_rounds = None;
        }
    }

    /// Recompute the emissions of the rounds kept so far on the pool.
    fn spawn_rounds(&mut self) {
        for (_, pending) in std::mem::take(&mut self.evidence.pending_rounds) {
            let sender = self.jobs.clone();
            self.pool.spawn(move || {
                let emissions = pending
                    .input
                    .and_then(|input| loosh::emissions_of(&pending.round, &input));
                for (seq, recorded) in pending.recorded {
                    let recomputed = match &emissions {
                        Ok(emissions) => match emissions.get(&recorded.uid) {
                            Some(score) => Ok(Evaluation {
                                score: *score,
                                metrics: Vec::new(),
                                fuel_used: None,
                            }),
                            None => Err(EnvError::Invalid {
                                environment: LOOSH_ENVIRONMENT,
                                message: format!(
                                    "the round's recorded answers and embeddings give uid {} no \
                                     emission",
                                    recorded.uid
                                ),
                            }),
                        },
                        Err(error) => Err(EnvError::Invalid {
                            environment: LOOSH_ENVIRONMENT,
                            message: format!(
                                "the loosh evaluation of the recorded round fails: {error}"
                            ),
                        }),
                    };
                    let _ = sender.send(JobResult::Evaluation {
                        seq,
                        recorded,
                        recomputed,
                    });
                }
            });
        }
    }

    /// Recompute the queued embeddings on the pool.
    fn spawn_embeddings(&mut self) {
        let Some(embedder) = &self.options.re_embed else {
            return;
        };
        if self.evidence.pending_embeddings.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.evidence.pending_embeddings);
        let embedder = Arc::clone(embedder);
        let sender = self.jobs.clone();
        self.pool.spawn(move || {
            let texts: Vec<&str> = batch.iter().map(|pending| pending.text.as_str()).collect();
            let recomputed = embedder.embed(&texts);
            for (index, pending) in batch.iter().enumerate() {
                let cosine = match &recomputed {
                    Ok(embeddings) => match embeddings.get(index) {
                        Some(values) if values.len() == pending.record.len() => {
                            Ok(cosine_with_record(values, &pending.record))
                        }
                        Some(values) => Err(format!(
                            "the model gives {} dimensions, the record has {}",
                            values.len(),
                            pending.record.len()
                        )),
                        None => Err("the model returned too few embeddings".into()),
                    },
                    Err(error) => Err(error.clone()),
                };
                let _ = sender.send(JobResult::Embedding {
                    seq: pending.seq,
                    challenge_id: pending.challenge_id.clone(),
                    uid: pending.uid,
                    cosine,
                });
            }
        });
    }

    fn spawn_evaluation(&mut self, seq: u64, evaluation: &EvaluationRecorded) {
        let Some(challenge) = self.evidence.challenges.get(&evaluation.challenge_id) else {
            self.evaluations_not_rerun += 1;
            return;
        };
        let Some(environment) = envs::by_name(&challenge.environment) else {
            self.evaluations_not_rerun += 1;
            return;
        };
        // Without the sandbox feature the auditor's build cannot run a miner's program.
        if !environment
            .evaluators()
            .contains(&evaluation.evaluator.as_str())
            || (environment.runs_code() && !cfg!(feature = "sandbox"))
        {
            self.evaluations_not_rerun += 1;
            return;
        }
        self.evaluations_checked += 1;
        let challenge = Arc::clone(challenge);
        let response = self
            .evidence
            .responses
            .get(&(evaluation.challenge_id.clone(), evaluation.uid))
            .cloned()
            .flatten();
        let recorded = evaluation.clone();
        let sender = self.jobs.clone();
        self.pool.spawn(move || {
            let recomputed = environment.evaluate(&challenge, response.as_deref());
            let _ = sender.send(JobResult::Evaluation {
                seq,
                recorded,
                recomputed,
            });
        });
    }

    fn change_profile(
        &mut self,
        seq: u64,
        changed: &weightlog_schema::event::ProfileChanged,
    ) -> Result<(), AuditError> {
        let current = self
            .profile
            .as_ref()
            .and_then(|profile| profile.projection.as_ref().ok())
            .map(|projection| projection.name());
        let next = for_profile(&changed.profile, &changed.parameters_json);
        let switch = match (&next, current) {
            (Ok(next), Some(current)) => next.name() != current,
            _ => true,
        };
        let projection = if switch {
            match next {
                // A projection that takes over folds the whole log before the switch, as
                // the validator's node does when its profile changes.
                Ok(mut projection) => match self.refold(projection.as_mut(), seq)? {
                    Refold::Folded => Ok(projection),
                    // The change is what makes the log invalid (the events it refuses were
                    // valid before it), so the finding names the change; the reason names
                    // the event refused.
                    Refold::Refused { reason } => {
                        if self.invalid.is_none() {
                            self.invalid = Some(finding(seq, "ProfileChanged", reason.clone()));
                        }
                        Err(reason)
                    }
                    Refold::Changed => {
                        self.tampered = Some(finding(
                            self.start.min(seq),
                            "changed",
                            format!(
                                "the events below the audit checkpoint's resume point {} no \
                                 longer hash to the frontier that audit computed; the log's \
                                 history was changed",
                                self.start
                            ),
                        ));
                        Err("the log's history was changed".to_string())
                    }
                },
                Err(error) => {
                    let reason = error.to_string();
                    self.note_unusable_profile(seq, "ProfileChanged", &changed.profile, &reason);
                    Err(reason)
                }
            }
        } else {
            match self.profile.take().map(|profile| profile.projection) {
                Some(Ok(projection)) => Ok(projection),
                _ => Err("no projection".to_string()),
            }
        };
        self.profile = Some(Profile {
            name: changed.profile.clone(),
            parameters_json: changed.parameters_json.clone(),
            parameters_hash: changed.parameters_hash,
            projection,
        });
        Ok(())
    }

    /// A profile that has a projection, with parameters it cannot use, makes the log
    /// invalid there: nothing after it could be recomputed. (A profile with no projection
    /// at all is not an error: such a log has nothing to recompute.)
    fn note_unusable_profile(
        &mut self,
        seq: u64,
        kind: impl std::fmt::Display,
        profile: &str,
        reason: &str,
    ) {
        if PROFILES.contains(&profile) && self.invalid.is_none() {
            self.invalid = Some(finding(
                seq,
                kind,
                format!("profile `{profile}` cannot use these parameters: {reason}"),
            ));
        }
    }

    /// Folds the events below `to` into a projection taking over. The events `0..=to` are
    /// hashed again on the way and must give the frontier the audit holds: after a resume,
    /// the events below the resume point were verified by an earlier run, not this one.
    fn refold(
        &self,
        projection: &mut dyn RunningProjection,
        to: u64,
    ) -> Result<Refold, AuditError> {
        let mut refused = None;
        let mut frontier = Frontier::new();
        self.source
            .read(0, to.saturating_add(1), &mut |seq, bytes| {
                if seq != frontier.size() {
                    return false;
                }
                frontier.append(weightlog_schema::leaf_hash(bytes));
                if seq == to {
                    return true;
                }
                let applied = codec::decode(bytes)
                    .map_err(|error| error.to_string())
                    .and_then(|event| {
                        projection
                            .apply(seq, &event)
                            .map_err(|error| error.to_string())
                    });
                if let Err(reason) = applied {
                    refused = Some(format!(
                        "the projection taking over refuses event {seq}: {reason}"
                    ));
                    return false;
                }
                true
            })?;
        if let Some(reason) = refused {
            return Ok(Refold::Refused { reason });
        }
        if frontier != self.frontier {
            return Ok(Refold::Changed);
        }
        Ok(Refold::Folded)
    }

    fn save(&mut self) -> Result<(), AuditError> {
        if !self.options.save_checkpoint {
            return Ok(());
        }
        let Some(profile) = &self.profile else {
            return Ok(());
        };
        let Ok(projection) = &profile.projection else {
            return Ok(());
        };
        let state = projection
            .checkpoint(self.frontier.size())
            .map_err(|error| AuditError::Checkpoint(error.to_string()))?;
        self.saved = Some(AuditCheckpoint::new(
            self.source.origin(),
            &self.source.signer().to_ss58(),
            &self.frontier,
            &profile.name,
            &profile.parameters_json,
            profile.parameters_hash,
            state,
            self.fold_limit.max(self.checked_to),
        ));
        Ok(())
    }

    fn compare(&mut self, result: JobResult) {
        match result {
            JobResult::Decision {
                seq,
                recorded,
                recomputed,
            } => {
                if !self.reported.contains(&seq)
                    && let Some(divergence) = compare_decision(seq, &recorded, recomputed)
                {
                    self.divergences.push(divergence);
                }
            }
            JobResult::Evaluation {
                seq,
                recorded,
                recomputed,
            } => {
                if let Some(divergence) = compare_evaluation(seq, &recorded, recomputed) {
                    self.divergences.push(divergence);
                }
            }
            JobResult::Embedding {
                seq,
                challenge_id,
                uid,
                cosine,
            } => {
                let reason = match cosine {
                    Ok(cosine) if cosine >= RE_EMBED_COSINE_MIN => return,
                    Ok(cosine) => format!(
                        "uid {uid} on challenge `{challenge_id}`: the recomputed embedding has \
                         cosine {cosine:.6} with the recorded one, below the tolerance \
                         {RE_EMBED_COSINE_MIN}"
                    ),
                    Err(error) => {
                        format!("uid {uid} on challenge `{challenge_id}`: cannot re-embed: {error}")
                    }
                };
                self.divergences
                    .push(finding(seq, "EmbeddingComputed", reason));
            }
        }
    }

    fn report(self, size: u64) -> Result<(AuditReport, Option<AuditCheckpoint>), AuditError> {
        // A resume point past the log's end (events were removed) is where the projection
        // state is, not the fold limit below it.
        let folded_to = self.frontier.size().min(self.fold_limit).max(self.start);
        let (projection, state_hash) = final_state(self.profile.as_ref(), folded_to)?;
        let diverged = |kind: &str| {
            self.divergences
                .iter()
                .filter(|finding| finding.kind == kind)
                .count() as u64
        };
        let evaluations_diverged = diverged("EvaluationRecorded");
        let embeddings_diverged = diverged("EmbeddingComputed");
        let decisions_diverged =
            self.divergences.len() as u64 - evaluations_diverged - embeddings_diverged;
        let (verdict, findings) = match (self.tampered, self.invalid) {
            (Some(finding), _) => (Verdict::Tampered(finding), 1),
            (None, Some(finding)) => (Verdict::Invalid(finding), 1),
            (None, None) => match self
                .divergences
                .iter()
                .min_by_key(|finding| finding.seq)
                .cloned()
            {
                Some(first) => (Verdict::Diverged(first), self.divergences.len() as u64),
                None => (Verdict::Match, 0),
            },
        };
        let mut divergences = self.divergences;
        divergences.sort_by_key(|finding| finding.seq);
        divergences.truncate(super::FINDINGS_LISTED_MAX);
        let report = AuditReport {
            origin: self.source.origin().to_string(),
            signer: self.source.signer().to_ss58(),
            log_size: size,
            events_checked: self.frontier.size().saturating_sub(self.start),
            checkpoints_checked: self.checkpoints_checked,
            resumed_from: self.start,
            folded_to,
            projection,
            state_hash,
            root: self.frontier.root(),
            root_size: self.frontier.size(),
            decisions_checked: self.decisions_checked,
            decisions_diverged,
            evaluations_checked: self.evaluations_checked,
            evaluations_diverged,
            evaluations_not_rerun: self.evaluations_not_rerun,
            embeddings_checked: self.embeddings_checked,
            embeddings_diverged,
            embeddings_not_rerun: self.embeddings_not_rerun,
            findings,
            divergences,
            verdict,
        };
        Ok((report, self.saved))
    }
}

/// The projection's name and the hash of its state at the end of the audit; a log with
/// no projection reports `none` and no hash (a zero hash would read as a witness that some
/// state hashed to it). A state that does not hash is an error, for the same reason.
fn final_state(
    profile: Option<&Profile>,
    folded_to: u64,
) -> Result<(String, Option<Hash>), AuditError> {
    match profile {
        Some(Profile {
            projection: Ok(projection),
            ..
        }) => {
            let name = projection.name();
            let hash = projection.state_hash().map_err(|error| AuditError::State {
                projection: name.to_string(),
                folded_to,
                reason: error.to_string(),
            })?;
            Ok((name.to_string(), Some(hash)))
        }
        _ => Ok(("none".to_string(), None)),
    }
}

fn evaluation_json(score: f64, metrics: &[Metric]) -> Value {
    json!({"score": score, "metrics": metrics})
}

fn same_float(left: f64, right: f64) -> bool {
    left.to_bits() == right.to_bits()
}

fn compare_evaluation(
    seq: u64,
    recorded: &EvaluationRecorded,
    recomputed: Result<Evaluation, EnvError>,
) -> Option<Finding> {
    let kind = "EvaluationRecorded";
    let recomputed = match recomputed {
        Ok(evaluation) => evaluation,
        Err(error) => {
            return Some(finding(
                seq,
                kind,
                format!(
                    "uid {} on challenge `{}`: the environment refuses to re-run it: {error}",
                    recorded.uid, recorded.challenge_id
                ),
            ));
        }
    };
    let same_metrics = recorded.metrics.len() == recomputed.metrics.len()
        && recorded
            .metrics
            .iter()
            .zip(&recomputed.metrics)
            .all(|(left, right)| left.name == right.name && same_float(left.value, right.value));
    // Sandbox fuel is deterministic, so a re-run must use exactly the recorded fuel.
    let same_fuel = recorded.fuel_used == recomputed.fuel_used;
    if same_float(recorded.score, recomputed.score) && same_metrics && same_fuel {
        return None;
    }
    Some(Finding {
        recorded: Some(evaluation_json(recorded.score, &recorded.metrics)),
        recomputed: Some(evaluation_json(recomputed.score, &recomputed.metrics)),
        uids: Vec::new(),
        ..finding(
            seq,
            kind,
            format!(
                "uid {} on challenge `{}`: recorded score {} (fuel {:?}) but re-running the \
                 evaluation gives {} (fuel {:?})",
                recorded.uid,
                recorded.challenge_id,
                recorded.score,
                recorded.fuel_used,
                recomputed.score,
                recomputed.fuel_used
            ),
        )
    })
}

fn decision_json(decision: &Decision) -> Value {
    json!({
        "uids": decision.uids,
        "raw_weights": decision.raw_weights(),
        "raw_weight_bits": decision.raw_weight_bits,
        "u16_uids": decision.u16_uids,
        "u16_weights": decision.u16_weights,
    })
}

fn compare_decision(
    seq: u64,
    recorded: &Decision,
    recomputed: Result<Recomputed, MechanismError>,
) -> Option<Finding> {
    let kind = "WeightsComputed";
    let recorded_json = Some(decision_json(recorded));
    match recomputed {
        Err(error) => Some(Finding {
            recorded: recorded_json,
            ..finding(
                seq,
                kind,
                format!("the mechanism fails on the recorded evidence: {error}"),
            )
        }),
        Ok(Recomputed::NoWeights(reason)) => Some(Finding {
            recorded: recorded_json,
            uids: recorded.uids.clone(),
            ..finding(
                seq,
                kind,
                format!("weights were recorded but the mechanism sets none: {reason}"),
            )
        }),
        Ok(Recomputed::Weights(recomputed)) if recomputed != *recorded => {
            let uids = recorded.differing_uids(&recomputed);
            Some(Finding {
                recorded: recorded_json,
                recomputed: Some(decision_json(&recomputed)),
                uids,
                ..finding(
                    seq,
                    kind,
                    "the recorded weights are not the ones the recorded evidence gives",
                )
            })
        }
        Ok(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use serde::ser::{Error as _, Serialize, Serializer};
    use weightlog_replay::projection::{ProjectionCheckpoint, state_hash};

    use super::*;

    /// A state that refuses to encode, as a state holding something bincode cannot write
    /// would.
    #[derive(Clone)]
    struct Unencodable;

    impl Serialize for Unencodable {
        fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
            Err(S::Error::custom("a value with no encoding"))
        }
    }

    /// A running projection whose state is [`Unencodable`]; only its state hash is asked
    /// for here.
    struct Stuck(Unencodable);

    impl RunningProjection for Stuck {
        fn name(&self) -> &'static str {
            "stuck"
        }
        fn apply(&mut self, _: u64, _: &Event) -> Result<(), MechanismError> {
            Ok(())
        }
        fn output(&self) -> Result<Value, MechanismError> {
            Err(MechanismError::invalid("no output"))
        }
        fn decision(&self) -> Result<Recomputed, MechanismError> {
            Err(MechanismError::invalid("no decision"))
        }
        fn fork(&self) -> Box<dyn RunningProjection> {
            Box::new(Stuck(self.0.clone()))
        }
        fn state_hash(&self) -> Result<Hash, MechanismError> {
            state_hash(&self.0)
        }
        fn checkpoint(&self, _: u64) -> Result<ProjectionCheckpoint, MechanismError> {
            Err(MechanismError::invalid("no checkpoint"))
        }
        fn restore(&mut self, _: &ProjectionCheckpoint) -> Result<(), MechanismError> {
            Err(MechanismError::invalid("no checkpoint"))
        }
    }

    fn profile(projection: Result<Box<dyn RunningProjection>, String>) -> Profile {
        Profile {
            name: "test".into(),
            parameters_json: "{}".into(),
            parameters_hash: Hash([0; 32]),
            projection,
        }
    }

    #[test]
    fn a_state_that_does_not_hash_stops_the_report() {
        let stuck = profile(Ok(Box::new(Stuck(Unencodable))));
        let error = final_state(Some(&stuck), 42).unwrap_err();
        assert_eq!(
            error.to_string(),
            "projection `stuck` over seqs below 42: invalid input: cannot encode the \
             projection state: a value with no encoding"
        );
    }

    #[test]
    fn the_report_carries_the_state_hash_or_none() {
        let running = for_profile("affine", "{}").unwrap();
        let expected = running.state_hash().unwrap();
        let affine = profile(Ok(running));
        assert_eq!(
            final_state(Some(&affine), 0).unwrap(),
            ("affine/stages_v2".to_string(), Some(expected))
        );
        let without = profile(Err("no projection for this profile".into()));
        for profile in [None, Some(&without)] {
            assert_eq!(final_state(profile, 0).unwrap(), ("none".to_string(), None));
        }
    }
}
