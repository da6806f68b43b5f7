//! `miner`: run the reference miner (src/miner/reference.rs) until Ctrl-C.

use std::collections::BTreeSet;
use std::path::PathBuf;

use clap::Args;
use weightlog_schema::event::AccountId;

use super::{CliError, WalletArgs};
use crate::keys::Hotkey;
use crate::miner::reference::{self, ReferenceConfig, Upstream};

#[derive(Debug, Args)]
pub struct MinerArgs {
    /// Port to listen on (0: any free port).
    #[arg(long)]
    pub port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Probability (0..=1) that an answer is correct.
    #[arg(long, default_value_t = 0.9)]
    pub quality: f64,
    /// Mean delay before answering, in milliseconds (± 20 % jitter).
    #[arg(long, default_value_t = 50)]
    pub latency_ms: u64,
    /// Seed of the miner's draws (which answers are right, jitter, wording).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// A development hotkey from a 32-byte seed (64 hex digits, optional 0x) instead of a
    /// wallet. Never for a hotkey that holds stake.
    #[arg(long, value_name = "HEX32", conflicts_with_all = ["wallet_path", "wallet_name", "wallet_hotkey"])]
    pub dev_seed: Option<String>,
    /// Accept requests only from these validator hotkeys (repeatable) [default: any].
    #[arg(long = "validator", value_name = "SS58")]
    pub validators: Vec<String>,
    /// Proxy mode: forward prompts to this OpenAI-compatible server
    /// (`{URL}/v1/chat/completions`).
    #[arg(long, value_name = "URL", requires = "upstream_model")]
    pub upstream: Option<String>,
    /// The model to ask upstream.
    #[arg(long, value_name = "MODEL", requires = "upstream")]
    pub upstream_model: Option<String>,
    /// Environment variable holding the upstream's API key (sent as a bearer token).
    #[arg(long, value_name = "VAR", requires = "upstream")]
    pub upstream_key_env: Option<String>,
    #[command(flatten)]
    pub wallet: WalletArgs,
}

fn dev_hotkey(hex_seed: &str) -> Result<Hotkey, CliError> {
    let digits = hex_seed.trim().trim_start_matches("0x");
    let mut seed = [0u8; 32];
    hex::decode_to_slice(digits, &mut seed).map_err(|_| {
        CliError::Input(format!(
            "--dev-seed must be 64 hex digits (32 bytes), not `{}`",
            hex_seed.chars().take(80).collect::<String>()
        ))
    })?;
    Ok(Hotkey::from_seed(&seed))
}

pub(super) fn miner(args: MinerArgs) -> Result<(), CliError> {
    let hotkey = match &args.dev_seed {
        Some(seed) => dev_hotkey(seed)?,
        None => args.wallet.load()?,
    };
    let allowed_validators = if args.validators.is_empty() {
        None
    } else {
        let mut allowed = BTreeSet::new();
        for address in &args.validators {
            let account = AccountId::from_ss58(address.trim()).map_err(|error| {
                CliError::Input(format!(
                    "--validator {address}: not an SS58 address: {error}"
                ))
            })?;
            allowed.insert(account);
        }
        Some(allowed)
    };
    let upstream = match (args.upstream, args.upstream_model) {
        (Some(url), Some(model)) => {
            let api_key = match &args.upstream_key_env {
                None => None,
                Some(variable) => Some(std::env::var(variable).map_err(|_| {
                    CliError::Input(format!(
                        "--upstream-key-env {variable}: the environment variable is not set"
                    ))
                })?),
            };
            Some(Upstream {
                url,
                model,
                api_key,
            })
        }
        _ => None,
    };
    let config = ReferenceConfig {
        hotkey,
        quality: args.quality,
        latency_ms: args.latency_ms,
        seed: args.seed,
        allowed_validators,
        upstream,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| CliError::Input(format!("cannot start the async runtime: {error}")))?;
    let address = format!("{}:{}", args.host, args.port);
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&address)
            .await
            .map_err(CliError::io(&PathBuf::from(&address)))?;
        let running = reference::spawn(config, listener)
            .await
            .map_err(|error| CliError::Input(error.to_string()))?;
        println!("miner listening on http://{}", running.addr);
        println!("hotkey {}", running.hotkey.to_ss58());
        let stopped = tokio::signal::ctrl_c().await;
        running.shutdown().await;
        stopped.map_err(|error| CliError::Input(format!("cannot wait for Ctrl-C: {error}")))
    })
}
