//! `chain metagraph`, `chain set-weights`: talking to a subtensor node (src/chain/).

use clap::{Args, Subcommand};
use weightlog_replay::emit::{Precision, to_u16};

use super::{CliError, WalletArgs};
use crate::chain::{
    BlockRef, Chain, ChainError, Network, SubmitOptions, SubxtChain, WeightsDecision,
    decode_extrinsic,
};

#[derive(Debug, Subcommand)]
pub enum ChainCommand {
    /// Print a subnet's metagraph and weight hyper-parameters at a block (the newest
    /// finalized one by default), as a table or as the `MetagraphObserved` event (`--json`).
    Metagraph(MetagraphArgs),
    /// Check a weight decision against the chain and submit it (`set_mechanism_weights`, or
    /// a drand-timelocked `commit_timelocked_mechanism_weights` when the subnet has
    /// commit-reveal on). `--dry-run` prints the signed extrinsic and its decoded call instead.
    SetWeights(SetWeightsArgs),
}

#[derive(Debug, Clone, Args)]
pub struct NetworkArgs {
    /// finney, test, local, or a ws:// / wss:// URL.
    #[arg(
        long = "subtensor.network",
        value_name = "NETWORK",
        default_value = "finney"
    )]
    pub network: String,
    #[arg(long)]
    pub netuid: u16,
}

#[derive(Debug, Args)]
pub struct MetagraphArgs {
    #[command(flatten)]
    pub network: NetworkArgs,
    /// Block number to read at [default: the newest finalized block].
    #[arg(long)]
    pub block: Option<u64>,
    /// Print the `MetagraphObserved` event value as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SetWeightsArgs {
    #[command(flatten)]
    pub network: NetworkArgs,
    /// Uids, comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    pub uids: Vec<u16>,
    /// Weights, comma-separated, one per uid: any non-negative numbers; they are converted
    /// to u16 as the SDK does (divided by the largest, times 65535, rounded half to even,
    /// zeros dropped).
    #[arg(long, value_delimiter = ',', required = true)]
    pub weights: Vec<f64>,
    /// Version key [default: the subnet's WeightsVersionKey].
    #[arg(long)]
    pub version_key: Option<u64>,
    /// Mechanism (0 is the subnet's main one).
    #[arg(long, default_value_t = 0)]
    pub mechanism: u8,
    /// Seq of the `WeightsComputed` event this submits, recorded in `WeightsSubmitted`.
    #[arg(long, default_value_t = 0)]
    pub decision_seq: u64,
    /// Block time used to aim a timelocked commit at its drand round, in ms (250 on
    /// fast-block localnets).
    #[arg(long, default_value_t = crate::chain::epoch::BLOCK_TIME_MS_DEFAULT)]
    pub block_time_ms: u64,
    /// Sign but do not submit: print the extrinsic hex and its decoded call.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub wallet: WalletArgs,
}

impl From<ChainError> for CliError {
    fn from(error: ChainError) -> Self {
        CliError::Input(error.to_string())
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| CliError::Input(format!("cannot start the async runtime: {err}")))
}

pub(super) fn chain(command: ChainCommand) -> Result<(), CliError> {
    let runtime = runtime()?;
    match command {
        ChainCommand::Metagraph(args) => runtime.block_on(metagraph(args)),
        ChainCommand::SetWeights(args) => runtime.block_on(set_weights(args)),
    }
}

fn to_json(value: &impl serde::Serialize) -> Result<String, CliError> {
    serde_json::to_string_pretty(value).map_err(|err| CliError::Input(err.to_string()))
}

async fn metagraph(args: MetagraphArgs) -> Result<(), CliError> {
    let network = Network::parse(&args.network.network)?;
    let chain = SubxtChain::connect(&network, None, SubmitOptions::default()).await?;
    let at: BlockRef = match args.block {
        Some(number) => chain.block_at(number).await?,
        None => chain.current_block().await?,
    };
    let observed = chain.metagraph(args.network.netuid, at).await?;
    if args.json {
        println!("{}", to_json(&observed)?);
        return Ok(());
    }
    let parameters = &observed.hyperparameters;
    println!(
        "netuid {} at block {} ({}), spec_version {}, {} uids",
        observed.netuid,
        observed.block,
        observed.block_hash.to_hex(),
        observed.spec_version,
        observed.neurons.len()
    );
    println!(
        "tempo {}  min_allowed_weights {}  max_weights_limit {}  version_key {}  rate_limit {} blocks  \
         commit_reveal {} (v{}, {} epochs)",
        parameters.tempo,
        parameters.min_allowed_weights,
        parameters.max_weights_limit,
        parameters.weights_version_key,
        parameters.weights_rate_limit_blocks,
        if parameters.commit_reveal_enabled {
            "on"
        } else {
            "off"
        },
        parameters.commit_reveal_version,
        parameters.reveal_period_epochs
    );
    println!(
        "{:>5}  {:<48}  {:>16}  permit  active  axon",
        "uid", "hotkey", "stake (rao)"
    );
    for neuron in &observed.neurons {
        let axon = neuron
            .axon
            .as_ref()
            .map(|axon| format!("{}:{}", axon.ip, axon.port))
            .unwrap_or_else(|| "-".to_string());
        println!(
            "{:>5}  {:<48}  {:>16}  {:<6}  {:<6}  {}",
            neuron.uid,
            neuron.hotkey.to_string(),
            neuron.stake_rao,
            neuron.validator_permit,
            neuron.active,
            axon
        );
    }
    Ok(())
}

async fn set_weights(args: SetWeightsArgs) -> Result<(), CliError> {
    let network = Network::parse(&args.network.network)?;
    let emitted = to_u16(&args.uids, &args.weights, Precision::Float64)
        .map_err(|err| CliError::Input(format!("--weights: {err}")))?;
    let hotkey = args.wallet.load()?;
    let signer = crate::chain::HotkeySigner::new(hotkey);
    let options = SubmitOptions {
        block_time_ms: args.block_time_ms,
        ..SubmitOptions::default()
    };
    let chain = SubxtChain::connect(&network, Some(signer), options).await?;
    let version_key = match args.version_key {
        Some(key) => key,
        None => {
            let head = chain.current_block().await?;
            chain
                .subnet_state(args.network.netuid, head)
                .await?
                .hyperparameters
                .weights_version_key
        }
    };
    let decision = WeightsDecision {
        decision_seq: args.decision_seq,
        netuid: args.network.netuid,
        mechanism_id: args.mechanism,
        uids: emitted.uids,
        weights: emitted.weights,
        version_key,
    };
    if args.dry_run {
        let prepared = chain.prepare_weights(&decision).await?;
        let built = prepared
            .extrinsic
            .map_err(|refusal| CliError::Input(format!("refused: {refusal}")))?;
        let decoded = decode_extrinsic(&chain.metadata(), &built.bytes)?;
        println!(
            "spec_version {} at block {}",
            prepared.state.spec_version, prepared.state.block.number
        );
        println!("extrinsic 0x{}", hex::encode(&built.bytes));
        println!("hash 0x{}", built.hash.to_hex());
        if let Some(round) = built.reveal_round {
            println!("reveal_round {round}");
        }
        println!(
            "signer {}",
            weightlog_schema::ss58::encode_bittensor(&decoded.signer)
        );
        println!("call {}", decoded.call);
        return Ok(());
    }
    let report = chain.submit_weights(&decision).await?;
    println!("{}", to_json(&report.event)?);
    match report.refusal {
        Some(refusal) => Err(CliError::Input(format!(
            "weights not set (spec_version {}): {refusal}",
            report.spec_version
        ))),
        None => Ok(()),
    }
}
