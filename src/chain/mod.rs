//! The Bittensor chain: reading a subnet's metagraph and weight parameters at a pinned block,
//! and submitting weight decisions (specs/chain.md holds the facts).
//!
//! - [`Chain`]: the small async interface the live node uses, implemented by
//!   [`SubxtChain`] (a subtensor node over JSON-RPC) and, later, by a simulated chain.
//! - `client.rs`: [`SubxtChain`], on subxt's dynamic API (no generated code): connects,
//!   checks the runtime's metadata has what we use (`capabilities.rs`; endpoints in
//!   `network.rs`), reads state
//!   (`metagraph.rs`, values decoded by name in `values.rs`), submits (`calls.rs` builds the
//!   call, `signer.rs` signs it with the wallet hotkey).
//! - `preflight.rs`: the chain's own checks, run before signing; a failure is a [`Refusal`].
//! - `epoch.rs` + `timelock.rs`: the reveal round of a timelocked commit and its drand
//!   quicknet encryption (commit-reveal v4).
//!
//! **API Boundary:** everything a node sends back is untrusted: values are decoded against
//! the runtime's own type registry and missing or mistyped fields are errors, never panics.

mod calls;
mod capabilities;
mod client;
pub mod epoch;
mod metagraph;
mod network;
mod preflight;
mod signer;
mod sim;
pub mod timelock;
mod values;

use std::future::Future;

use weightlog_schema::event::{
    AccountId, MetagraphObserved, SubmissionOutcome, WeightHyperparameters, WeightsCall,
    WeightsSubmitted,
};
use weightlog_schema::hash::Hash;

pub use calls::{
    DecodedCall, DecodedExtrinsic, WeightsCallArgs, build_signed_offline, commit_hash_v2,
    decode_call, decode_extrinsic, weights_call_payload,
};
pub use capabilities::{Capabilities, REQUIRED_CALLS, REQUIRED_STORAGE, check_metadata};
pub use client::{
    ATTEMPTS_MAX, BuiltExtrinsic, CONNECT_TIMEOUT_MS, INCLUSION_TIMEOUT_MS, MORTALITY_BLOCKS,
    Prepared, SubmitOptions, SubxtChain, call_kind, plan_call,
};
pub use epoch::{EpochSchedule, EpochState, RevealPlan};
pub use metagraph::netuid_storage_index;
pub use network::Network;
pub use preflight::{COMMIT_REVEAL_VERSION_SUPPORTED, ROOT_NETUID, preflight};
pub use signer::HotkeySigner;
pub use sim::{SIM_FIRST_BLOCK, SIM_SPEC_VERSION, SimChain, SimConfig, SimSubmission};

/// A block: its number and hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BlockRef {
    pub number: u64,
    pub hash: Hash,
}

/// Our own neuron on the subnet, as far as weight setting cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OwnNeuron {
    pub uid: u16,
    pub validator_permit: bool,
    /// `LastUpdate` of our uid: the block we last set weights in (0 = never).
    pub last_update_block: u64,
    /// The subnet owner's hotkey is exempt from the permit check.
    pub is_subnet_owner: bool,
}

/// Everything weight setting depends on, read at one block.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SubnetState {
    pub netuid: u16,
    pub block: BlockRef,
    pub spec_version: u32,
    /// The hotkey the state was read for.
    pub hotkey: AccountId,
    pub hyperparameters: WeightHyperparameters,
    /// `SubnetworkN`: the number of uids.
    pub subnetwork_n: u16,
    /// `MechanismCountCurrent` (1 when the runtime has no mechanisms).
    pub mechanism_count: u8,
    /// The rule that decides when a timelocked commit reveals.
    pub epoch: EpochSchedule,
    /// `None` when the hotkey is not registered on the subnet.
    pub own: Option<OwnNeuron>,
}

/// One weight decision to put on chain: the u16 vectors of a `WeightsComputed` event.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WeightsDecision {
    /// Seq of the `WeightsComputed` event (0 for ad-hoc submissions from the CLI).
    pub decision_seq: u64,
    pub netuid: u16,
    /// 0 for the subnet's main mechanism.
    pub mechanism_id: u8,
    pub uids: Vec<u16>,
    pub weights: Vec<u16>,
    pub version_key: u64,
}

impl WeightsDecision {
    /// The decision recorded by a `WeightsComputed` event at `seq`.
    pub fn from_computed(
        seq: u64,
        netuid: u16,
        computed: &weightlog_schema::event::WeightsComputed,
        version_key: u64,
    ) -> Self {
        Self {
            decision_seq: seq,
            netuid,
            mechanism_id: 0,
            uids: computed.u16_uids.clone(),
            weights: computed.u16_weights.clone(),
            version_key,
        }
    }
}

/// Why a decision was not submitted, or why the chain did not accept it. Each message says
/// what the chain would do and what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("netuid 0 is the root network; weights cannot be set on it")]
    RootNetuid,
    #[error("the decision is for netuid {decision} but the chain state was read for {read}")]
    WrongSubnet { decision: u16, read: u16 },
    #[error(
        "hotkey {hotkey} is not registered on netuid {netuid}; register it (btcli subnets \
         register) before setting weights"
    )]
    NotRegistered { hotkey: String, netuid: u16 },
    #[error(
        "uid {uid} on netuid {netuid} has no validator permit; the chain accepts its weights \
         only once it holds one (enough stake among the top validators)"
    )]
    NoValidatorPermit { uid: u16, netuid: u16 },
    #[error(
        "rate limited: uid {uid} last set weights at block {last_update_block} and the subnet \
         allows one update every {rate_limit_blocks} blocks; next allowed at block \
         {next_allowed_block}"
    )]
    RateLimited {
        uid: u16,
        last_update_block: u64,
        rate_limit_blocks: u64,
        next_allowed_block: u64,
    },
    #[error("{count} weights but the subnet requires at least {min_required} (MinAllowedWeights)")]
    TooFewWeights { count: usize, min_required: u16 },
    #[error(
        "version key {version_key} is below the subnet's WeightsVersionKey {required}; upgrade \
         the validator or pass --version-key {required}"
    )]
    VersionKeyTooLow { version_key: u64, required: u64 },
    #[error(
        "the subnet uses commit-reveal version {version}; this client only produces version {}",
        preflight::COMMIT_REVEAL_VERSION_SUPPORTED
    )]
    UnknownCommitRevealVersion { version: u16 },
    #[error("{uids} uids but {weights} weights")]
    LengthMismatch { uids: usize, weights: usize },
    #[error("no weights to set (every weight quantised to 0)")]
    NothingToSet,
    #[error("mechanism {mechanism_id} does not exist; the subnet has {count}")]
    MechanismMissing { mechanism_id: u8, count: u8 },
    #[error("{count} uids but the subnet has only {subnetwork_n}")]
    TooManyUids { count: usize, subnetwork_n: u16 },
    #[error("uid {uid} appears twice")]
    DuplicateUid { uid: u16 },
    #[error("uid {uid} does not exist; the subnet has {subnetwork_n} uids")]
    UnknownUid { uid: u16, subnetwork_n: u16 },
    #[error(
        "the largest weight is {share_per_65535}/65535 of the total, above the subnet's \
         MaxWeightsLimit {limit}/65535; clip the weights first"
    )]
    MaxWeightExceeded { share_per_65535: u64, limit: u16 },
    #[error("cannot plan the timelocked reveal: {0}")]
    Epoch(#[from] epoch::EpochError),
    #[error("cannot encrypt the timelocked commit: {0}")]
    Timelock(#[from] timelock::TimelockError),
    #[error("the transaction pool refused the extrinsic: {message}")]
    PoolRejected { message: String },
    #[error("the extrinsic was included in block {block} but failed: {error}")]
    DispatchFailed { block: u64, error: String },
    #[error("the extrinsic left the transaction pool without inclusion: {message}")]
    Dropped { message: String },
}

/// Failures of the connection or of the node's answers (as opposed to a [`Refusal`] of one
/// decision).
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    #[error("unknown network `{0}`: use finney, test, local, or a ws:// or wss:// URL")]
    UnknownNetwork(String),
    #[error("cannot connect to {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: Box<subxt::Error>,
    },
    #[error(
        "the runtime at {url} (spec_version {spec_version}) lacks what weightlog uses: {}; \
         the node runs a runtime this version of weightlog does not support",
        missing.join(", ")
    )]
    MissingFromMetadata {
        url: String,
        spec_version: u32,
        missing: Vec<String>,
    },
    #[error("chain request failed ({what}): {source}")]
    Rpc {
        what: String,
        #[source]
        source: Box<subxt::Error>,
    },
    #[error("cannot decode {what} from the node: {reason}")]
    Decode { what: String, reason: String },
    #[error("subnet {netuid} does not exist at block {block}")]
    NoSuchSubnet { netuid: u16, block: u64 },
    #[error("block {0} is unknown to the node (pruned, or not produced yet)")]
    UnknownBlock(String),
    #[error("cannot build the extrinsic: {0}")]
    Build(String),
    #[error("the system clock is before 1970")]
    Clock,
    #[error("no hotkey: pass --wallet.name / --wallet.hotkey to read our uid or submit weights")]
    NoHotkey,
}

impl ChainError {
    pub(crate) fn rpc(what: impl Into<String>) -> impl FnOnce(subxt::Error) -> ChainError {
        let what = what.into();
        move |source| ChainError::Rpc {
            what,
            source: Box::new(source),
        }
    }

    pub(crate) fn decode(what: impl Into<String>, reason: impl ToString) -> ChainError {
        ChainError::Decode {
            what: what.into(),
            reason: reason.to_string(),
        }
    }
}

/// What became of one decision: the `WeightsSubmitted` event to append (which records the
/// runtime's `spec_version` too), and the runtime it was decided against.
#[derive(Debug, Clone, PartialEq)]
pub struct SubmissionReport {
    pub event: WeightsSubmitted,
    /// The runtime's spec_version the decision was checked and signed against.
    pub spec_version: u32,
    /// The head the pre-flight checks read.
    pub head: BlockRef,
    /// Set when nothing was submitted, or the chain did not accept it; `event.outcome` is then
    /// `Rejected` with this refusal's message.
    pub refusal: Option<Refusal>,
    /// Extrinsics sent to the pool (0 when refused before signing). Only a pool rejection is
    /// retried, so at most one of them can ever be included.
    pub attempts: u32,
}

impl SubmissionReport {
    /// A decision refused before anything was signed.
    pub fn refused(
        decision: &WeightsDecision,
        call: WeightsCall,
        spec_version: u32,
        head: BlockRef,
        refusal: Refusal,
    ) -> Self {
        Self {
            event: WeightsSubmitted {
                decision_seq: decision.decision_seq,
                call,
                extrinsic_hash: None,
                reveal_round: None,
                outcome: SubmissionOutcome::Rejected {
                    reason: refusal.to_string(),
                },
                spec_version: Some(spec_version),
            },
            spec_version,
            head,
            refusal: Some(refusal),
            attempts: 0,
        }
    }
}

/// A Bittensor chain as the live node sees it. Implemented by [`SubxtChain`] and by the
/// simulated chain the demo uses. Methods are async and `Send` so a node can run them on a
/// multi-threaded runtime.
pub trait Chain: Send + Sync {
    /// The newest finalized block.
    fn current_block(&self) -> impl Future<Output = Result<BlockRef, ChainError>> + Send;

    /// The subnet's metagraph at `at`, as the event the node appends.
    fn metagraph(
        &self,
        netuid: u16,
        at: BlockRef,
    ) -> impl Future<Output = Result<MetagraphObserved, ChainError>> + Send;

    /// The weight parameters, epoch schedule and our own neuron at `at`.
    fn subnet_state(
        &self,
        netuid: u16,
        at: BlockRef,
    ) -> impl Future<Output = Result<SubnetState, ChainError>> + Send;

    /// Checks and submits one decision: `set_mechanism_weights` when commit-reveal is off,
    /// `commit_timelocked_mechanism_weights` when it is on. A refusal (by our pre-flight, the
    /// pool or the runtime) is an `Ok` report whose event records why; `Err` means the node
    /// could not be asked.
    fn submit_weights(
        &self,
        decision: &WeightsDecision,
    ) -> impl Future<Output = Result<SubmissionReport, ChainError>> + Send;
}
