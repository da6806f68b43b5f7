//! `weightlog demo`: the whole loop on one machine. A simulated chain ([`SimChain`]),
//! reference miners of graded quality on loopback, and a node with its own redb log run until
//! weights have been set (at least twice); then the auditor replays the node's log and
//! recomputes every decision and evaluation.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use weightlog_schema::Payload;
use weightlog_schema::event::{AccountId, Axon, Neuron};

use super::{NodeError, NodeOptions, NodeReport};
use crate::audit::{self, AuditOptions, AuditReport, LogSource};
use crate::chain::{SimChain, SimConfig};
use crate::embed::{Backend, Embedder};
use crate::keys::Hotkey;
use crate::log::LogReader;
use crate::miner::reference::{self, ReferenceConfig, RunningMiner};

/// The netuid each profile's subnet has on finney.
pub fn netuid_of(profile: &str) -> u16 {
    match profile {
        "affine" => 120,
        "loosh" => 78,
        "quasar" => 24,
        "omega" => 21,
        "aml" => 79,
        _ => 1,
    }
}

#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub profile: String,
    pub miners: u16,
    /// Run at least this many blocks (besides setting weights twice).
    pub blocks: Option<u64>,
    /// Where the log is written.
    pub dir: PathBuf,
    pub block_interval: Duration,
    pub tempo: u16,
    /// Weight decisions to set before stopping (at least 2).
    pub submissions: u64,
    /// Seed of the miners' keys and answers.
    pub seed: u64,
}

impl DemoOptions {
    pub fn new(profile: &str, dir: PathBuf) -> DemoOptions {
        DemoOptions {
            profile: profile.into(),
            miners: 8,
            blocks: None,
            dir,
            block_interval: Duration::from_millis(250),
            tempo: 12,
            submissions: 2,
            seed: 1,
        }
    }
}

/// One reference miner of the demo.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoMiner {
    pub uid: u16,
    pub hotkey: AccountId,
    pub quality: f64,
    pub latency_ms: u64,
}

/// A row of the demo's table.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoRow {
    pub uid: u16,
    pub quality: f64,
    /// Mean of the evaluations the node recorded for the uid.
    pub score: Option<f64>,
    /// Share of the last decision's u16 weights.
    pub weight: f64,
}

#[derive(Debug)]
pub struct DemoOutcome {
    pub miners: Vec<DemoMiner>,
    pub rows: Vec<DemoRow>,
    pub node: NodeReport,
    pub audit: AuditReport,
    pub log_path: PathBuf,
    pub decisions: u64,
}

/// The key of demo miner `uid`.
pub fn miner_key(seed: u64, uid: u16) -> Hotkey {
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"weightlog demo miner");
    hasher.update(&seed.to_le_bytes());
    hasher.update(&uid.to_le_bytes());
    Hotkey::from_seed(hasher.finalize().as_bytes())
}

/// Qualities from 0.95 down to 0.15, best first.
pub fn quality_of(uid: u16, count: u16) -> f64 {
    if count <= 1 {
        return 0.95;
    }
    0.95 - 0.8 * f64::from(uid) / f64::from(count - 1)
}

/// Starts `count` reference miners on loopback, uid `i` with [`quality_of`].
pub async fn spawn_miners(
    count: u16,
    seed: u64,
    validator: AccountId,
) -> Result<(Vec<RunningMiner>, Vec<DemoMiner>), NodeError> {
    let mut running = Vec::new();
    let mut miners = Vec::new();
    for uid in 0..count {
        let hotkey = miner_key(seed, uid);
        let quality = quality_of(uid, count);
        let latency_ms = 10 + u64::from(uid % 4) * 15;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let miner = reference::spawn(
            ReferenceConfig {
                hotkey: hotkey.clone(),
                quality,
                latency_ms,
                seed: seed.wrapping_add(u64::from(uid)),
                allowed_validators: Some([validator].into()),
                upstream: None,
            },
            listener,
        )
        .await
        .map_err(|error| NodeError::Miner(error.to_string()))?;
        miners.push(DemoMiner {
            uid,
            hotkey: AccountId(hotkey.public_key()),
            quality,
            latency_ms,
        });
        running.push(miner);
    }
    Ok((running, miners))
}

/// The neurons the simulated chain registers for running miners.
pub fn neurons(running: &[RunningMiner]) -> Vec<Neuron> {
    running
        .iter()
        .enumerate()
        .map(|(uid, miner)| Neuron {
            uid: uid as u16,
            hotkey: miner.hotkey,
            coldkey: miner.hotkey,
            stake_rao: 100 * 1_000_000_000,
            validator_permit: false,
            active: true,
            registration_block: 10,
            axon: Some(Axon {
                ip: miner.addr.ip().to_string(),
                port: miner.addr.port(),
                protocol: 4,
                version: 1,
            }),
        })
        .collect()
}

/// The MiniLM embedder when the profile needs it (loosh), fetched on first use.
pub fn embedder_for(profile: &str) -> Result<Option<Arc<Embedder>>, NodeError> {
    if profile != "loosh" {
        return Ok(None);
    }
    Embedder::from_env(Backend::Cpu)
        .map(|embedder| Some(Arc::new(embedder)))
        .map_err(|error| NodeError::Config(format!("the loosh profile embeds answers: {error}")))
}

/// Replays a log with the auditor, re-running evaluations (and embeddings when given).
pub fn audit_log(
    path: &std::path::Path,
    embedder: Option<Arc<Embedder>>,
) -> Result<AuditReport, NodeError> {
    let source = LogSource::open(path)?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let options = AuditOptions {
        threads,
        re_evaluate: true,
        re_embed: embedder.map(|embedder| embedder as Arc<dyn audit::Reembedder>),
        ..AuditOptions::default()
    };
    audit::audit(&source, &options, &|_| {})
        .map(|(report, _)| report)
        .map_err(|error| NodeError::Evaluation(error.to_string()))
}

/// The table: each miner's quality, mean recorded score and share of the last decision.
pub fn table(
    path: &std::path::Path,
    miners: &[DemoMiner],
) -> Result<(Vec<DemoRow>, u64), NodeError> {
    let snapshot = LogReader::open(path)?.snapshot()?;
    let size = snapshot.size()?;
    let mut sums: BTreeMap<u16, (f64, u64)> = BTreeMap::new();
    let mut last = None;
    let mut decisions = 0;
    for (_, event) in snapshot.range(0, size)? {
        match event.payload {
            Payload::EvaluationRecorded(evaluation) => {
                let entry = sums.entry(evaluation.uid).or_default();
                entry.0 += evaluation.score;
                entry.1 += 1;
            }
            Payload::WeightsComputed(computed) => {
                decisions += 1;
                last = Some(computed);
            }
            _ => {}
        }
    }
    let weights: BTreeMap<u16, f64> = match &last {
        Some(computed) => {
            let total: f64 = computed.u16_weights.iter().map(|w| f64::from(*w)).sum();
            computed
                .u16_uids
                .iter()
                .zip(&computed.u16_weights)
                .map(|(uid, weight)| (*uid, f64::from(*weight) / total.max(1.0)))
                .collect()
        }
        None => BTreeMap::new(),
    };
    let rows = miners
        .iter()
        .map(|miner| DemoRow {
            uid: miner.uid,
            quality: miner.quality,
            score: sums
                .get(&miner.uid)
                .map(|(sum, count)| sum / (*count).max(1) as f64),
            weight: weights.get(&miner.uid).copied().unwrap_or(0.0),
        })
        .collect();
    Ok((rows, decisions))
}

/// Runs the demo: chain, miners, node until weights are set, then the audit.
pub async fn run_demo(options: DemoOptions) -> Result<DemoOutcome, NodeError> {
    if !super::drivers::PROFILES.contains(&options.profile.as_str()) {
        return Err(NodeError::Config(format!(
            "unknown profile `{}`; known: {}",
            options.profile,
            super::drivers::PROFILES.join(", ")
        )));
    }
    if options.miners == 0 || options.miners > 256 {
        return Err(NodeError::Config(format!(
            "--miners {}: the demo runs 1 to 256 miners",
            options.miners
        )));
    }
    std::fs::create_dir_all(&options.dir)?;
    let log_path = options.dir.join(format!("{}-demo.wlog", options.profile));
    if log_path.exists() {
        return Err(NodeError::Config(format!(
            "{} already exists; the demo writes a new log (remove it or pass another --dir)",
            log_path.display()
        )));
    }
    let embedder = {
        let profile = options.profile.clone();
        tokio::task::spawn_blocking(move || embedder_for(&profile))
            .await
            .map_err(|_| NodeError::Task("embedder load"))??
    };
    let validator = Hotkey::generate_dev();
    let validator_id = AccountId(validator.public_key());
    let (running, miners) = spawn_miners(options.miners, options.seed, validator_id).await?;
    let netuid = netuid_of(&options.profile);
    let chain = Arc::new(SimChain::new(
        SimConfig::quick(
            netuid,
            options.block_interval,
            options.tempo,
            crate::epistula::now_ms().unwrap_or(0),
        ),
        validator_id,
        neurons(&running),
    ));
    let mut node_options = NodeOptions::new(&options.profile, netuid, log_path.clone());
    node_options.round_interval = Duration::from_millis(20);
    node_options.client.timeout = Duration::from_secs(5);
    node_options.stop_after_submissions = Some(options.submissions.max(2));
    node_options.min_block = options
        .blocks
        .map(|blocks| crate::chain::SIM_FIRST_BLOCK + blocks);
    let node = super::run(
        node_options,
        validator,
        chain.clone(),
        embedder.clone(),
        std::future::pending::<()>(),
    )
    .await;
    for miner in running {
        miner.shutdown().await;
    }
    let node = node?;
    let audit = {
        let (path, embedder) = (log_path.clone(), embedder.clone());
        tokio::task::spawn_blocking(move || audit_log(&path, embedder))
            .await
            .map_err(|_| NodeError::Task("audit"))??
    };
    let (rows, decisions) = table(&log_path, &miners)?;
    Ok(DemoOutcome {
        miners,
        rows,
        node,
        audit,
        log_path,
        decisions,
    })
}
