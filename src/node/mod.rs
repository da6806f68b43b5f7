//! The live validator node (DESIGN.md, "Live node"): metagraph sync, challenge rounds
//! (issue, query the miners, record their answers, evaluate on the blocking pool), and a
//! weight decision each tempo (computed by the profile's projection, appended as
//! `WeightsComputed`, submitted, and the outcome appended as `WeightsSubmitted`), with the
//! HTTP API beside it.
//!
//! **Architecture Invariant:** the node's working state is a fold of its own log. At start it
//! folds every event already stored; afterwards it folds what it (and the API, for pushed
//! challenges) appended, read back from the log in seq order. A restart after a crash
//! therefore loses nothing that was acknowledged and issues no challenge twice: challenge
//! ids and seeds follow from the number of challenges the log holds.

pub mod config;
pub mod demo;
pub mod drivers;

use std::collections::BTreeSet;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use weightlog_replay::projection::decision::Recomputed;
use weightlog_replay::projection::registry::{self, RunningProjection};
use weightlog_schema::event::{
    AccountId, ChallengeIssued, LogId, MetagraphObserved, ResponseOutcome, ResponseReceived,
    WeightsComputed,
};
use weightlog_schema::{Event, Hash, Payload};

use crate::api::{self, ApiConfig, ApiState, Metrics, PushConfig, PushedChallenge};
use crate::chain::{BlockRef, Chain, ChainError, WeightsDecision};
use crate::embed::Embedder;
use crate::keys::Hotkey;
use crate::log::{APPEND_BATCH_EVENTS_MAX, Genesis, Log, LogError};
use crate::miner::client::{ClientConfig, MinerClient, MinerTarget};
use crate::miner::protocol::ChallengeRequest;
use drivers::Driver;

/// Pushed challenges waiting for their miner queries.
pub const PUSH_QUEUE_CAPACITY: usize = 1_024;

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("chain: {0}")]
    Chain(#[from] ChainError),
    #[error("evaluation: {0}")]
    Evaluation(String),
    #[error("the {projection} projection refused seq {seq}: {reason}")]
    Projection {
        projection: String,
        seq: u64,
        reason: String,
    },
    #[error("miner client: {0}")]
    Miner(String),
    #[error("HTTP API: {0}")]
    Api(#[from] std::io::Error),
    #[error("the node's {0} task stopped unexpectedly")]
    Task(&'static str),
}

/// How to run a node.
#[derive(Debug)]
pub struct NodeOptions {
    pub profile: String,
    pub netuid: u16,
    pub log_path: PathBuf,
    /// Where the HTTP API listens (`None`: no API).
    pub api_addr: Option<SocketAddr>,
    /// Told the API's bound address once it listens (useful with port 0).
    pub api_bound: Option<tokio::sync::oneshot::Sender<SocketAddr>>,
    /// Hotkeys allowed to push challenges (`POST /challenges`); empty: push mode off.
    pub push_allowed: BTreeSet<AccountId>,
    /// Pause between two challenge rounds.
    pub round_interval: Duration,
    pub client: ClientConfig,
    /// Blocks between weight decisions (`None`: the subnet's tempo; 0: after every round).
    pub decision_interval_blocks: Option<u64>,
    /// Stop once this many decisions have been submitted in this run.
    pub stop_after_submissions: Option<u64>,
    /// Stop after this many rounds in this run.
    pub stop_after_rounds: Option<u64>,
    /// The stop conditions above apply only from this block on.
    pub min_block: Option<u64>,
}

impl NodeOptions {
    pub fn new(profile: &str, netuid: u16, log_path: PathBuf) -> NodeOptions {
        NodeOptions {
            profile: profile.into(),
            netuid,
            log_path,
            api_addr: None,
            api_bound: None,
            push_allowed: BTreeSet::new(),
            round_interval: Duration::from_millis(200),
            client: ClientConfig::default(),
            decision_interval_blocks: None,
            stop_after_submissions: None,
            stop_after_rounds: None,
            min_block: None,
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeReport {
    pub rounds: u64,
    pub decisions: u64,
    pub submissions_included: u64,
    pub log_size: u64,
    /// Events the node found in the log when it started (0 for a new log).
    pub resumed_from: u64,
}

fn now_ms() -> u64 {
    crate::epistula::now_ms().unwrap_or(0)
}

/// The seed of the `index`-th challenge of a log: unpredictable to miners (the log id is
/// random), reproducible from the log.
fn challenge_seed(log_id: &LogId, index: u64) -> u64 {
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"weightlog node challenge seed");
    hasher.update(&log_id.0);
    hasher.update(&index.to_le_bytes());
    let bytes = hasher.finalize();
    u64::from_le_bytes(bytes.as_bytes()[..8].try_into().unwrap_or([0; 8]))
}

/// The node's fold of its log.
struct Folded {
    projection: Box<dyn RunningProjection>,
    driver: Arc<Mutex<Box<dyn Driver>>>,
    parameters_hash: Hash,
    /// Seqs below this are folded.
    next_seq: u64,
    last_timestamp_ms: u64,
    challenges: u64,
    metagraph: Option<MetagraphObserved>,
    last_decision_block: Option<u64>,
    first_metagraph_block: Option<u64>,
    rounds_since_decision: u64,
}

impl Folded {
    fn fold(&mut self, seq: u64, event: &Event) -> Result<(), NodeError> {
        self.projection
            .apply(seq, event)
            .map_err(|error| NodeError::Projection {
                projection: self.projection.name().into(),
                seq,
                reason: error.to_string(),
            })?;
        lock(&self.driver).observe(seq, event)?;
        self.last_timestamp_ms = self.last_timestamp_ms.max(event.timestamp_ms);
        match &event.payload {
            Payload::LogOpened(opened) => self.parameters_hash = opened.parameters_hash,
            Payload::ProfileChanged(changed) => self.parameters_hash = changed.parameters_hash,
            Payload::ChallengeIssued(_) => self.challenges += 1,
            Payload::MetagraphObserved(metagraph) => {
                self.first_metagraph_block.get_or_insert(metagraph.block);
                self.metagraph = Some(metagraph.clone());
            }
            Payload::WeightsComputed(computed) => {
                self.last_decision_block = Some(computed.block);
                self.rounds_since_decision = 0;
            }
            _ => {}
        }
        self.next_seq = seq + 1;
        Ok(())
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

struct Node<C: Chain> {
    options: NodeOptions,
    chain: Arc<C>,
    log: Arc<Log>,
    folded: Folded,
    client: MinerClient,
    metrics: Arc<Metrics>,
    own_hotkey: AccountId,
    report: NodeReport,
}

/// Runs a node until `shutdown` resolves or a stop condition in `options` is met; then
/// drains the log's writer and returns what it did.
pub async fn run<C: Chain + 'static>(
    mut options: NodeOptions,
    hotkey: Hotkey,
    chain: Arc<C>,
    embedder: Option<Arc<Embedder>>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<NodeReport, NodeError> {
    let driver = drivers::for_profile(&options.profile, embedder)?;
    let own_hotkey = AccountId(hotkey.public_key());
    let log = if options.log_path.exists() {
        Log::open(&options.log_path, hotkey.clone())?
    } else {
        let mut log_id = [0u8; 16];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut log_id);
        Log::create(
            &options.log_path,
            hotkey.clone(),
            Genesis {
                netuid: options.netuid,
                profile: options.profile.clone(),
                parameters_json: driver.parameters_json(),
                timestamp_ms: now_ms(),
                log_id: LogId(log_id),
            },
        )?
    };
    let log = Arc::new(log);
    let genesis = log.reader().snapshot()?.event(0)?;
    if let Payload::LogOpened(opened) = &genesis.payload
        && (opened.profile != options.profile || opened.netuid != options.netuid)
    {
        return Err(NodeError::Config(format!(
            "{} is a log of profile `{}` on netuid {}, not `{}` on {}; pass the matching \
             --profile and --netuid or another --log",
            options.log_path.display(),
            opened.profile,
            opened.netuid,
            options.profile,
            options.netuid
        )));
    }
    let projection = registry::for_genesis(&genesis).map_err(|error| NodeError::Projection {
        projection: options.profile.clone(),
        seq: 0,
        reason: error.to_string(),
    })?;
    let folded = Folded {
        projection,
        driver: Arc::new(Mutex::new(driver)),
        parameters_hash: Hash([0; 32]),
        next_seq: 0,
        last_timestamp_ms: 0,
        challenges: 0,
        metagraph: None,
        last_decision_block: None,
        first_metagraph_block: None,
        rounds_since_decision: 0,
    };
    let client = MinerClient::new(hotkey.clone(), options.client.clone())
        .map_err(|error| NodeError::Miner(error.to_string()))?;
    let metrics = Arc::new(Metrics::new());
    let mut node = Node {
        options: NodeOptions {
            api_bound: options.api_bound.take(),
            ..options
        },
        chain,
        log,
        folded,
        client,
        metrics,
        own_hotkey,
        report: NodeReport {
            rounds: 0,
            decisions: 0,
            submissions_included: 0,
            log_size: 0,
            resumed_from: 0,
        },
    };
    node.catch_up().await?;
    node.report.resumed_from = node.folded.next_seq;

    let (push_tx, mut push_rx) = tokio::sync::mpsc::channel::<PushedChallenge>(PUSH_QUEUE_CAPACITY);
    let (api_stop_tx, api_stop_rx) = tokio::sync::oneshot::channel::<()>();
    let api_task = match node.options.api_addr {
        Some(addr) => {
            let push = (!node.options.push_allowed.is_empty()).then(|| PushConfig {
                allowed: node.options.push_allowed.clone(),
                receiver: node.own_hotkey,
                queue: push_tx.clone(),
            });
            let state = ApiState {
                log: node.log.clone(),
                metrics: node.metrics.clone(),
                config: Arc::new(ApiConfig {
                    push,
                    ..ApiConfig::default()
                }),
                started: Instant::now(),
            };
            let listener = tokio::net::TcpListener::bind(addr).await?;
            let bound = listener.local_addr()?;
            if let Some(tell) = node.options.api_bound.take() {
                let _ = tell.send(bound);
            }
            let router = api::router(state);
            Some(tokio::spawn(api::serve(listener, router, async move {
                let _ = api_stop_rx.await;
            })))
        }
        None => None,
    };
    drop(push_tx);

    let result = node.run_loop(shutdown, &mut push_rx).await;

    // Stop the API (it holds the log), then drain the writer.
    let _ = api_stop_tx.send(());
    if let Some(task) = api_task {
        let _ = task.await;
    }
    node.report.log_size = node.folded.next_seq;
    let report = node.report.clone();
    let mut log = node.log;
    drop(node.folded);
    // A connection the API was still closing may hold the log a moment longer.
    for _ in 0..50 {
        match Arc::try_unwrap(log) {
            Ok(owned) => {
                tokio::task::spawn_blocking(move || owned.close())
                    .await
                    .map_err(|_| NodeError::Task("log close"))??;
                return result.map(|()| report);
            }
            Err(shared) => {
                log = shared;
                tokio::time::sleep(Duration::from_millis(40)).await;
            }
        }
    }
    // Every append was durable when it returned; the last holder's drop stops the writer.
    drop(log);
    result.map(|()| report)
}

impl<C: Chain + 'static> Node<C> {
    async fn run_loop(
        &mut self,
        shutdown: impl Future<Output = ()> + Send,
        push_rx: &mut tokio::sync::mpsc::Receiver<PushedChallenge>,
    ) -> Result<(), NodeError> {
        tokio::pin!(shutdown);
        // A (re)started node reads the metagraph first: axons may have moved meanwhile.
        let mut force_metagraph = true;
        loop {
            let head = self.chain.current_block().await?;
            self.sync_metagraph(head, force_metagraph).await?;
            force_metagraph = false;
            while let Ok(pushed) = push_rx.try_recv() {
                self.metrics.set_queue_depth(push_rx.len() as u64);
                self.catch_up().await?;
                self.query_and_evaluate(pushed.challenge).await?;
            }
            self.round().await?;
            self.report.rounds += 1;
            let head = self.chain.current_block().await?;
            self.maybe_decide(head.number).await?;
            let stop = self
                .options
                .stop_after_submissions
                .is_some_and(|count| self.report.submissions_included >= count)
                || self
                    .options
                    .stop_after_rounds
                    .is_some_and(|count| self.report.rounds >= count);
            if stop
                && self
                    .options
                    .min_block
                    .is_none_or(|block| head.number >= block)
            {
                return Ok(());
            }
            tokio::select! {
                biased;
                () = &mut shutdown => return Ok(()),
                () = tokio::time::sleep(self.options.round_interval) => {}
            }
        }
    }

    /// Folds every event the log holds beyond what is folded.
    async fn catch_up(&mut self) -> Result<(), NodeError> {
        let log = self.log.clone();
        let from = self.folded.next_seq;
        let events = tokio::task::spawn_blocking(move || {
            let snapshot = log.reader().snapshot()?;
            let size = snapshot.size()?;
            snapshot.range(from, size)
        })
        .await
        .map_err(|_| NodeError::Task("log read"))??;
        for (seq, event) in events {
            self.folded.fold(seq, &event)?;
        }
        Ok(())
    }

    /// Appends payloads (durably), then folds them.
    async fn append(&mut self, payloads: Vec<Payload>) -> Result<Vec<u64>, NodeError> {
        if payloads.is_empty() {
            return Ok(Vec::new());
        }
        let timestamp_ms = now_ms().max(self.folded.last_timestamp_ms);
        let events: Vec<Event> = payloads
            .into_iter()
            .map(|payload| Event::new(timestamp_ms, payload))
            .collect();
        let count = events.len() as u64;
        let log = self.log.clone();
        let seqs = tokio::task::spawn_blocking(move || {
            let mut seqs = Vec::with_capacity(events.len());
            for chunk in events.chunks(APPEND_BATCH_EVENTS_MAX) {
                seqs.extend(log.append_batch(chunk)?);
            }
            Ok::<_, LogError>(seqs)
        })
        .await
        .map_err(|_| NodeError::Task("log append"))??;
        self.metrics.events_appended(count);
        self.catch_up().await?;
        Ok(seqs)
    }

    async fn sync_metagraph(&mut self, head: BlockRef, force: bool) -> Result<(), NodeError> {
        let tempo = self
            .folded
            .metagraph
            .as_ref()
            .map(|metagraph| u64::from(metagraph.hyperparameters.tempo).max(1));
        let due = match (&self.folded.metagraph, tempo) {
            (Some(metagraph), Some(tempo)) => head.number >= metagraph.block + tempo,
            _ => true,
        };
        if !due && !force {
            return Ok(());
        }
        let metagraph = self.chain.metagraph(self.options.netuid, head).await?;
        let extra = lock(&self.folded.driver).after_metagraph(&metagraph);
        self.append(vec![Payload::MetagraphObserved(metagraph)])
            .await?;
        self.append(extra).await?;
        Ok(())
    }

    fn targets(&self, only: Option<&[u16]>) -> Vec<MinerTarget> {
        let Some(metagraph) = &self.folded.metagraph else {
            return Vec::new();
        };
        metagraph
            .neurons
            .iter()
            .filter(|neuron| neuron.hotkey != self.own_hotkey)
            .filter(|neuron| only.is_none_or(|uids| uids.contains(&neuron.uid)))
            .filter_map(MinerTarget::from_neuron)
            .collect()
    }

    /// One round of the profile's own challenges.
    async fn round(&mut self) -> Result<(), NodeError> {
        let targets = self.targets(None);
        if targets.is_empty() {
            return Ok(());
        }
        let index = self.folded.challenges + 1;
        let log_id = self.log.meta().log_id;
        let seed = challenge_seed(&log_id, index);
        let uids = targets.iter().map(|target| target.uid).collect();
        let challenge = {
            let mut driver = lock(&self.folded.driver);
            let challenge_id = drivers::challenge_id(driver.profile(), index);
            let task = driver.task(index, &challenge_id, seed)?;
            let issued_ms = now_ms();
            ChallengeIssued {
                challenge_id,
                environment: task.environment,
                seed,
                prompt: task.prompt,
                extra_json: task.extra_json,
                target_uids: uids,
                deadline_ms: issued_ms + task.answer_within_ms,
            }
        };
        self.append(vec![Payload::ChallengeIssued(challenge.clone())])
            .await?;
        self.query_and_evaluate(challenge).await?;
        let block = self.chain.current_block().await?.number;
        let extra = lock(&self.folded.driver).after_round(index, block);
        self.append(extra).await?;
        self.folded.rounds_since_decision += 1;
        Ok(())
    }

    /// Queries a recorded challenge's miners, records their answers and evaluates them.
    async fn query_and_evaluate(&mut self, challenge: ChallengeIssued) -> Result<(), NodeError> {
        let targets = self.targets(Some(&challenge.target_uids));
        let request = ChallengeRequest {
            challenge_id: challenge.challenge_id.clone(),
            environment: challenge.environment.clone(),
            prompt: challenge.prompt.clone(),
            deadline_ms: challenge.deadline_ms,
        };
        let replies = self.client.query_many(&targets, &request).await;
        let mut responses: Vec<ResponseReceived> = Vec::with_capacity(replies.len());
        for reply in replies {
            let ok = matches!(reply.outcome, ResponseOutcome::Ok { .. });
            self.metrics
                .observe_miner_latency(reply.uid, reply.latency_ms, ok);
            let mut response = reply.into_event(&challenge.challenge_id);
            lock(&self.folded.driver).check_response(&challenge, &mut response);
            responses.push(response);
        }
        self.append(
            responses
                .iter()
                .cloned()
                .map(Payload::ResponseReceived)
                .collect(),
        )
        .await?;
        let mut scores = Vec::new();
        for step in 0.. {
            let driver = self.folded.driver.clone();
            let (challenge, responses) = (challenge.clone(), responses.clone());
            let payloads = tokio::task::spawn_blocking(move || {
                lock(&driver).evaluate(step, &challenge, &responses)
            })
            .await
            .map_err(|_| NodeError::Task("evaluation"))??;
            if payloads.is_empty() {
                break;
            }
            for payload in &payloads {
                if let Payload::EvaluationRecorded(evaluation) = payload {
                    scores.push((evaluation.uid, evaluation.score));
                }
            }
            self.append(payloads).await?;
        }
        if !scores.is_empty() {
            self.metrics.set_scores(&scores);
        }
        Ok(())
    }

    /// Takes a weight decision when a decision interval has passed since the last one and a
    /// round was evaluated since.
    async fn maybe_decide(&mut self, block: u64) -> Result<(), NodeError> {
        let Some(metagraph) = &self.folded.metagraph else {
            return Ok(());
        };
        // 0 decides after every round (for chains whose head a test holds still).
        let interval = self
            .options
            .decision_interval_blocks
            .unwrap_or(u64::from(metagraph.hyperparameters.tempo).max(1));
        let version_key = metagraph.hyperparameters.weights_version_key;
        // The first decision comes a full interval after the first metagraph, so it rests
        // on a tempo's worth of rounds rather than on the first one.
        let since = self
            .folded
            .last_decision_block
            .or(self.folded.first_metagraph_block);
        let due = since.is_none_or(|since| block >= since + interval);
        if !due || self.folded.rounds_since_decision == 0 {
            return Ok(());
        }
        self.catch_up().await?;
        let log_size = self.folded.next_seq;
        let recomputed =
            self.folded
                .projection
                .decision()
                .map_err(|error| NodeError::Projection {
                    projection: self.folded.projection.name().into(),
                    seq: log_size,
                    reason: error.to_string(),
                })?;
        let Recomputed::Weights(decision) = recomputed else {
            // Nothing to set now (e.g. too little evidence yet); try again next round.
            return Ok(());
        };
        let computed = WeightsComputed {
            block,
            mechanism: self.folded.projection.name().into(),
            parameters_hash: self.folded.parameters_hash,
            log_size,
            uids: decision.uids,
            raw_weight_bits: decision.raw_weight_bits,
            u16_uids: decision.u16_uids,
            u16_weights: decision.u16_weights,
        };
        let seqs = self
            .append(vec![Payload::WeightsComputed(computed.clone())])
            .await?;
        self.report.decisions += 1;
        let weights: Vec<(u16, u16)> = computed
            .u16_uids
            .iter()
            .copied()
            .zip(computed.u16_weights.iter().copied())
            .collect();
        self.metrics.set_weights(block, &weights);
        let decision =
            WeightsDecision::from_computed(seqs[0], self.options.netuid, &computed, version_key);
        let submission = self.chain.submit_weights(&decision).await?;
        if matches!(
            submission.event.outcome,
            weightlog_schema::event::SubmissionOutcome::Included { .. }
        ) {
            self.report.submissions_included += 1;
        }
        self.append(vec![Payload::WeightsSubmitted(submission.event)])
            .await?;
        Ok(())
    }
}
