//! `weightlog node` (the live validator) and `weightlog demo` (the whole loop on one machine).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use weightlog_schema::event::AccountId;

use super::{CliError, json_value};
use crate::chain::{Network, SimChain, SimConfig, SubmitOptions, SubxtChain};
use crate::keys::{Hotkey, PasswordSource, WalletLocation};
use crate::log::LogReader;
use crate::node::config::FileConfig;
use crate::node::demo::{self, DemoOptions};
use crate::node::{self, NodeError, NodeOptions};

#[derive(Debug, Args)]
pub struct NodeArgs {
    /// A TOML configuration file (flags and WEIGHTLOG_* variables override it).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[arg(long)]
    pub netuid: Option<u16>,
    /// affine, loosh, quasar, omega or aml.
    #[arg(long)]
    pub profile: Option<String>,
    /// The log file (created when missing, resumed when present) [default: PROFILE.wlog].
    #[arg(long, value_name = "PATH")]
    pub log: Option<PathBuf>,
    #[arg(long = "wallet.path", value_name = "DIR")]
    pub wallet_path: Option<PathBuf>,
    #[arg(long = "wallet.name", value_name = "NAME")]
    pub wallet_name: Option<String>,
    #[arg(long = "wallet.hotkey", value_name = "NAME")]
    pub wallet_hotkey: Option<String>,
    /// A development hotkey from 32 bytes of hex instead of a wallet (never for real funds).
    #[arg(long = "dev-seed", value_name = "HEX")]
    pub dev_seed: Option<String>,
    /// finney, test, local, a ws:// or wss:// URL, or `sim` (the simulated chain with
    /// reference miners on loopback) [default: sim].
    #[arg(long = "subtensor.network", value_name = "NETWORK")]
    pub network: Option<String>,
    #[arg(long = "api.host", value_name = "HOST")]
    pub api_host: Option<String>,
    /// Port of the HTTP API (0: any free port) [default: 8092].
    #[arg(long = "api.port", value_name = "PORT")]
    pub api_port: Option<u16>,
    /// Hotkey allowed to push challenges (repeat for more); enables POST /challenges.
    #[arg(long = "push.allow", value_name = "SS58")]
    pub push_allow: Vec<String>,
    /// Simulated chain: reference miners to start [default: 8].
    #[arg(long = "sim.miners")]
    pub sim_miners: Option<u16>,
    /// Simulated chain: milliseconds per block [default: 250].
    #[arg(long = "sim.block-ms")]
    pub sim_block_ms: Option<u64>,
    /// Simulated chain: tempo in blocks [default: 12].
    #[arg(long = "sim.tempo")]
    pub sim_tempo: Option<u16>,
    /// Simulated chain: seed of the miners' keys [default: 1].
    #[arg(long = "sim.seed")]
    pub sim_seed: Option<u64>,
    /// Pause between challenge rounds, in ms [default: 200].
    #[arg(long = "round-interval-ms")]
    pub round_interval_ms: Option<u64>,
    /// Stop after this many rounds.
    #[arg(long)]
    pub rounds: Option<u64>,
    /// Stop after this many weight decisions were included on chain.
    #[arg(long)]
    pub submissions: Option<u64>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// affine, loosh, quasar, omega or aml.
    #[arg(long, default_value = "affine")]
    pub profile: String,
    /// Reference miners, of graded quality.
    #[arg(long, default_value_t = 8)]
    pub miners: u16,
    /// Run at least this many blocks (weights are set at least twice regardless).
    #[arg(long)]
    pub blocks: Option<u64>,
    /// Directory for the log [default: a new temporary directory].
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|err| CliError::Input(format!("cannot start the async runtime: {err}")))
}

impl From<NodeError> for CliError {
    fn from(error: NodeError) -> Self {
        CliError::Input(error.to_string())
    }
}

fn dev_hotkey(hex_seed: &str) -> Result<Hotkey, CliError> {
    let mut seed = [0u8; 32];
    hex::decode_to_slice(hex_seed.trim_start_matches("0x"), &mut seed)
        .map_err(|_| CliError::Input("--dev-seed: expected 64 hex digits".into()))?;
    Ok(Hotkey::from_seed(&seed))
}

async fn ctrl_c() {
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}

pub(super) fn node(args: NodeArgs) -> Result<(), CliError> {
    let mut config = match &args.config {
        Some(path) => FileConfig::load(path).map_err(CliError::Input)?,
        None => FileConfig::default(),
    };
    config
        .apply_env(|name| std::env::var(name).ok())
        .map_err(CliError::Input)?;
    let profile = args.profile.or(config.profile).ok_or_else(|| {
        CliError::Input("--profile is required (affine, loosh, quasar, omega, aml)".into())
    })?;
    let netuid = args
        .netuid
        .or(config.netuid)
        .unwrap_or_else(|| demo::netuid_of(&profile));
    let log_path = args
        .log
        .or(config.log)
        .unwrap_or_else(|| PathBuf::from(format!("{profile}.wlog")));
    let network = args
        .network
        .or(config.subtensor.network)
        .unwrap_or_else(|| "sim".into());
    let hotkey = match &args.dev_seed {
        Some(seed) => dev_hotkey(seed)?,
        None => {
            let location = WalletLocation::new(
                args.wallet_path
                    .or(config.wallet.path)
                    .unwrap_or_else(WalletLocation::default_path),
                args.wallet_name
                    .or(config.wallet.name)
                    .unwrap_or_else(|| "default".into()),
                args.wallet_hotkey
                    .or(config.wallet.hotkey)
                    .unwrap_or_else(|| "default".into()),
            );
            crate::keys::load_hotkey(&location, &PasswordSource::EnvOrPrompt)?
        }
    };
    let host = args
        .api_host
        .or(config.api.host)
        .unwrap_or_else(|| "127.0.0.1".into());
    let port = args.api_port.or(config.api.port).unwrap_or(8092);
    let api_addr: SocketAddr = format!("{host}:{port}")
        .parse()
        .map_err(|_| CliError::Input(format!("--api.host {host}: not an IP address")))?;
    let mut push_allowed = BTreeSet::new();
    for ss58 in args
        .push_allow
        .iter()
        .chain(config.api.push_allow.iter().flatten())
    {
        push_allowed.insert(
            AccountId::from_ss58(ss58)
                .map_err(|err| CliError::Input(format!("--push.allow {ss58}: {err}")))?,
        );
    }
    let mut options = NodeOptions::new(&profile, netuid, log_path.clone());
    options.api_addr = Some(api_addr);
    options.push_allowed = push_allowed;
    if let Some(ms) = args.round_interval_ms.or(config.round_interval_ms) {
        options.round_interval = Duration::from_millis(ms);
    }
    if let Some(ms) = config.miners.timeout_ms {
        options.client.timeout = Duration::from_millis(ms);
    }
    if let Some(concurrency) = config.miners.concurrency {
        options.client.concurrency = concurrency.max(1);
    }
    if let Some(attempts) = config.miners.attempts {
        options.client.attempts = attempts.max(1);
    }
    options.stop_after_rounds = args.rounds;
    options.stop_after_submissions = args.submissions;
    let (tell, bound) = tokio::sync::oneshot::channel();
    options.api_bound = Some(tell);

    let runtime = runtime()?;
    runtime.block_on(async move {
        let embedder = {
            let profile = profile.clone();
            tokio::task::spawn_blocking(move || demo::embedder_for(&profile))
                .await
                .map_err(|_| CliError::Input("the embedder failed to load".into()))??
        };
        tokio::spawn(async move {
            if let Ok(addr) = bound.await {
                eprintln!("weightlog node: HTTP API on http://{addr}");
            }
        });
        eprintln!(
            "weightlog node: profile {profile}, netuid {netuid}, hotkey {}, log {}, chain {network}",
            hotkey.ss58(),
            log_path.display()
        );
        let report = if network == "sim" {
            let miners = args.sim_miners.or(config.sim.miners).unwrap_or(8);
            let seed = args.sim_seed.or(config.sim.seed).unwrap_or(1);
            let block_ms = args.sim_block_ms.or(config.sim.block_ms).unwrap_or(250);
            let tempo = args.sim_tempo.or(config.sim.tempo).unwrap_or(12);
            // The simulated chain's clock starts at the log's genesis, so a restarted node
            // sees it carry on.
            let genesis_ms = if log_path.exists() {
                // The node is this log's writer: after a crash, recovering it is its job
                // (opening it for appending would recover it too, later).
                LogReader::recover(&log_path)?;
                LogReader::open(&log_path)?
                    .snapshot()?
                    .event(0)?
                    .timestamp_ms
            } else {
                crate::epistula::now_ms().unwrap_or(0)
            };
            let (running, miners_table) =
                demo::spawn_miners(miners, seed, AccountId(hotkey.public_key())).await?;
            for miner in &miners_table {
                eprintln!(
                    "  reference miner uid {} quality {:.2} at {}",
                    miner.uid,
                    miner.quality,
                    running[usize::from(miner.uid)].addr
                );
            }
            let chain = Arc::new(SimChain::new(
                SimConfig::quick(netuid, Duration::from_millis(block_ms.max(1)), tempo, genesis_ms),
                AccountId(hotkey.public_key()),
                demo::neurons(&running),
            ));
            let report = node::run(options, hotkey, chain, embedder, ctrl_c()).await;
            for miner in running {
                miner.shutdown().await;
            }
            report?
        } else {
            let network = Network::parse(&network)?;
            let signer = crate::chain::HotkeySigner::new(hotkey.clone());
            let chain =
                Arc::new(SubxtChain::connect(&network, Some(signer), SubmitOptions::default()).await?);
            node::run(options, hotkey, chain, embedder, ctrl_c()).await?
        };
        eprintln!(
            "weightlog node: stopped after {} rounds and {} decisions ({} included); log holds {} events (resumed at {})",
            report.rounds,
            report.decisions,
            report.submissions_included,
            report.log_size,
            report.resumed_from
        );
        Ok(())
    })
}

pub(super) fn demo(args: DemoArgs) -> Result<(), CliError> {
    let dir = match args.dir {
        Some(dir) => dir,
        None => {
            let base = std::env::temp_dir().join(format!(
                "weightlog-demo-{}-{}",
                std::process::id(),
                crate::epistula::now_ms().unwrap_or(0)
            ));
            std::fs::create_dir_all(&base).map_err(|source| CliError::Io {
                path: base.clone(),
                source,
            })?;
            base
        }
    };
    let mut options = DemoOptions::new(&args.profile, dir);
    options.miners = args.miners;
    options.blocks = args.blocks;
    eprintln!(
        "weightlog demo: a simulated chain, {} reference miners on loopback and a validator node with the {} profile; running until weights are set twice...",
        options.miners, options.profile
    );
    let outcome = runtime()?.block_on(demo::run_demo(options))?;
    println!(
        "\n{} node: {} rounds, {} weight decisions, {} included on the simulated chain; log {} ({} events)\n",
        args.profile,
        outcome.node.rounds,
        outcome.decisions,
        outcome.node.submissions_included,
        outcome.log_path.display(),
        outcome.node.log_size
    );
    println!(
        "{:>4}  {:>7}  {:>10}  {:>8}",
        "uid", "quality", "mean score", "weight"
    );
    for row in &outcome.rows {
        let score = row
            .score
            .map_or_else(|| "-".to_string(), |score| format!("{score:.4}"));
        println!(
            "{:>4}  {:>7.2}  {:>10}  {:>8.4}",
            row.uid, row.quality, score, row.weight
        );
    }
    let audit = &outcome.audit;
    println!(
        "\naudit: {} events, {} checkpoints, {} decisions and {} evaluations recomputed{}: {}",
        audit.events_checked,
        audit.checkpoints_checked,
        audit.decisions_checked,
        audit.evaluations_checked,
        if audit.embeddings_checked > 0 {
            format!(", {} embeddings re-embedded", audit.embeddings_checked)
        } else {
            String::new()
        },
        if audit.is_match() {
            "MATCH"
        } else {
            "MISMATCH"
        }
    );
    if audit.is_match() {
        Ok(())
    } else {
        // The exit code says "diverged" whatever happens to the verdict's text.
        let verdict = json_value(&audit.verdict)
            .map_or_else(|error| error.to_string(), |verdict| verdict.to_string());
        Err(CliError::Diverged(format!(
            "the demo's own log did not verify: {verdict}"
        )))
    }
}
