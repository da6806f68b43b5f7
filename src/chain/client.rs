//! [`SubxtChain`]: the [`Chain`] of a subtensor node over JSON-RPC (ws:// or wss://), on
//! subxt's dynamic API.
//!
//! Submission policy: the pre-flight checks run against state read at the finalized head;
//! the extrinsic is mortal ([`MORTALITY_BLOCKS`]) and carries the account's next nonce read
//! at signing time; we wait for inclusion up to [`INCLUSION_TIMEOUT_MS`]. Only a refusal by
//! the transaction pool at submission that a fresh nonce or era can cure (outdated, stale,
//! priority too low) is retried, with a freshly signed extrinsic: such an extrinsic never
//! entered the pool, so at most one extrinsic per decision can be included. A timeout is
//! recorded as `TimedOut` and not retried, because the extrinsic may still land.

use std::sync::RwLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use subxt::backend::BackendExt;
use subxt::backend::legacy::LegacyRpcMethods;
use subxt::client::{OnlineClient, RuntimeVersion};
use subxt::config::{DefaultExtrinsicParamsBuilder, Header};
use subxt::tx::TxStatus;
use subxt::utils::H256;
use subxt::{Metadata, SubstrateConfig};
use subxt_rpcs::RpcClient;
use weightlog_schema::event::{
    MetagraphObserved, SubmissionOutcome, WeightsCall, WeightsSubmitted,
};
use weightlog_schema::hash::Hash;

use super::calls::{WeightsCallArgs, weights_call_payload};
use super::capabilities::{Capabilities, check_metadata};
use super::epoch::{BLOCK_TIME_MS_DEFAULT, reveal_round};
use super::network::Network;
use super::preflight::preflight;
use super::signer::HotkeySigner;
use super::timelock::{WeightsTlockPayload, encrypt_weights};
use super::{
    BlockRef, Chain, ChainError, Refusal, SubmissionReport, SubnetState, WeightsDecision, metagraph,
};

/// Blocks an extrinsic stays valid for (≈ 13 minutes at 12 s blocks).
pub const MORTALITY_BLOCKS: u64 = 64;
/// How long to wait for inclusion once the pool accepted the extrinsic, in milliseconds.
pub const INCLUSION_TIMEOUT_MS: u64 = 120_000;
/// Extrinsics signed for one decision, at most (only pool rejections are retried).
pub const ATTEMPTS_MAX: u32 = 3;
/// How long connecting (and fetching the metadata) may take, in milliseconds.
pub const CONNECT_TIMEOUT_MS: u64 = 30_000;

/// Tunables of submission; [`Default`] holds the constants above and a 12 s block time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubmitOptions {
    pub inclusion_timeout_ms: u64,
    pub mortality_blocks: u64,
    pub attempts_max: u32,
    /// Block time used to turn the reveal block into a drand round (250 on fast-block
    /// localnets).
    pub block_time_ms: u64,
}

impl Default for SubmitOptions {
    fn default() -> Self {
        Self {
            inclusion_timeout_ms: INCLUSION_TIMEOUT_MS,
            mortality_blocks: MORTALITY_BLOCKS,
            attempts_max: ATTEMPTS_MAX,
            block_time_ms: BLOCK_TIME_MS_DEFAULT,
        }
    }
}

/// A signed extrinsic, ready to submit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltExtrinsic {
    /// SCALE bytes with the length prefix, as `author_submitExtrinsic` takes them.
    pub bytes: Vec<u8>,
    /// blake2-256 of `bytes`: the extrinsic hash.
    pub hash: Hash,
    pub call: WeightsCallArgs,
    pub reveal_round: Option<u64>,
}

/// A decision checked against the chain and, unless refused, signed.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub state: SubnetState,
    pub call: WeightsCall,
    pub extrinsic: Result<BuiltExtrinsic, Refusal>,
}

/// A subtensor node over JSON-RPC.
pub struct SubxtChain {
    url: String,
    client: OnlineClient<SubstrateConfig>,
    rpc: LegacyRpcMethods<SubstrateConfig>,
    capabilities: RwLock<Capabilities>,
    signer: Option<HotkeySigner>,
    options: SubmitOptions,
}

impl std::fmt::Debug for SubxtChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubxtChain")
            .field("url", &self.url)
            .field("spec_version", &self.spec_version())
            .finish_non_exhaustive()
    }
}

fn now_ms() -> Result<u64, ChainError> {
    let elapsed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|_| ChainError::Clock)?;
    Ok(u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX))
}

/// The node's refusal in full: subxt's message leaves out the JSON-RPC error's `data`, which is
/// where substrate says why (`Transaction is outdated`, `Custom error: 6`, ...).
fn pool_error_message(error: &subxt::Error) -> String {
    if let subxt::Error::Rpc(subxt::error::RpcError::ClientError(subxt_rpcs::Error::User(user))) =
        error
    {
        return match &user.data {
            Some(data) => format!(
                "{} ({}): {}",
                user.message,
                user.code,
                data.get().trim_matches('"')
            ),
            None => format!("{} ({})", user.message, user.code),
        };
    }
    error.to_string()
}

/// Pool errors that a freshly signed extrinsic (new nonce, new era) can cure.
fn is_retryable(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    [
        "outdated",
        "stale",
        "priority is too low",
        "too low priority",
    ]
    .iter()
    .any(|needle| message.contains(needle))
}

/// The call that carries `decision` given the subnet's commit-reveal setting.
pub fn call_kind(state: &SubnetState) -> WeightsCall {
    if state.hyperparameters.commit_reveal_enabled {
        WeightsCall::CommitTimelockedMechanismWeights
    } else {
        WeightsCall::SetMechanismWeights
    }
}

/// The call's arguments: plain weights, or the weights timelocked to the drand round that
/// covers the predicted reveal block. Pure apart from the timelock's randomness.
pub fn plan_call(
    state: &SubnetState,
    decision: &WeightsDecision,
    hotkey: &[u8; 32],
    now_ms: u64,
    block_time_ms: u64,
) -> Result<(WeightsCallArgs, Option<u64>), Refusal> {
    if !state.hyperparameters.commit_reveal_enabled {
        return Ok((
            WeightsCallArgs::Set {
                netuid: decision.netuid,
                mechanism_id: decision.mechanism_id,
                uids: decision.uids.clone(),
                weights: decision.weights.clone(),
                version_key: decision.version_key,
            },
            None,
        ));
    }
    let plan = state
        .epoch
        .plan_reveal(state.hyperparameters.reveal_period_epochs)?;
    let round = reveal_round(&plan, state.epoch.head_block(), now_ms, block_time_ms);
    let payload = WeightsTlockPayload {
        hotkey: hotkey.to_vec(),
        uids: decision.uids.clone(),
        values: decision.weights.clone(),
        version_key: decision.version_key,
    };
    let commit = encrypt_weights(&payload, round)?;
    Ok((
        WeightsCallArgs::CommitTimelocked {
            netuid: decision.netuid,
            mechanism_id: decision.mechanism_id,
            commit,
            reveal_round: round,
            commit_reveal_version: state.hyperparameters.commit_reveal_version,
        },
        Some(round),
    ))
}

impl SubxtChain {
    /// Connects, fetches the runtime's metadata and checks it has everything we use.
    /// `signer` is needed for [`Chain::subnet_state`] and submissions, not for reading
    /// metagraphs.
    pub async fn connect(
        network: &Network,
        signer: Option<HotkeySigner>,
        options: SubmitOptions,
    ) -> Result<Self, ChainError> {
        let url = network.url().to_string();
        let connect_error = |source: subxt::Error| ChainError::Connect {
            url: url.clone(),
            source: Box::new(source),
        };
        let timeout = Duration::from_millis(CONNECT_TIMEOUT_MS);
        let connecting = async {
            // ws:// is allowed: `local` and loopback nodes have no TLS.
            let rpc_client = RpcClient::from_insecure_url(&url)
                .await
                .map_err(|err| connect_error(err.into()))?;
            let client = OnlineClient::<SubstrateConfig>::from_rpc_client(rpc_client.clone())
                .await
                .map_err(connect_error)?;
            Ok::<_, ChainError>((rpc_client, client))
        };
        let (rpc_client, client) =
            tokio::time::timeout(timeout, connecting)
                .await
                .map_err(|_| {
                    connect_error(subxt::Error::Other(format!(
                        "no answer within {CONNECT_TIMEOUT_MS} ms"
                    )))
                })??;
        let capabilities = check_metadata(&client.metadata()).map_err(|missing| {
            ChainError::MissingFromMetadata {
                url: url.clone(),
                spec_version: client.runtime_version().spec_version,
                missing,
            }
        })?;
        Ok(Self {
            url,
            client,
            rpc: LegacyRpcMethods::new(rpc_client),
            capabilities: RwLock::new(capabilities),
            signer,
            options,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The spec_version of the runtime whose metadata the client holds.
    pub fn spec_version(&self) -> u32 {
        self.client.runtime_version().spec_version
    }

    pub fn metadata(&self) -> Metadata {
        self.client.metadata()
    }

    pub fn capabilities(&self) -> Capabilities {
        match self.capabilities.read() {
            Ok(capabilities) => *capabilities,
            Err(poisoned) => *poisoned.into_inner(),
        }
    }

    fn signer(&self) -> Result<&HotkeySigner, ChainError> {
        self.signer.as_ref().ok_or(ChainError::NoHotkey)
    }

    /// The block with this number on the node's canonical chain.
    pub async fn block_at(&self, number: u64) -> Result<BlockRef, ChainError> {
        let hash = self
            .rpc
            .chain_get_block_hash(Some(number.into()))
            .await
            .map_err(|err| ChainError::rpc("chain_getBlockHash")(err.into()))?
            .ok_or_else(|| ChainError::UnknownBlock(number.to_string()))?;
        Ok(BlockRef {
            number,
            hash: Hash(hash.0),
        })
    }

    /// Follows a runtime upgrade: when the node's runtime is newer than the metadata we
    /// hold, fetch the new metadata and check it again before signing anything with it.
    async fn follow_runtime_upgrade(&self) -> Result<(), ChainError> {
        let version = self
            .rpc
            .state_get_runtime_version(None)
            .await
            .map_err(|err| ChainError::rpc("state_getRuntimeVersion")(err.into()))?;
        if version.spec_version == self.spec_version() {
            return Ok(());
        }
        let head = self.current_block().await?;
        let at = H256(head.hash.0);
        let backend = self.client.backend();
        let metadata = match backend.metadata_at_version(16, at).await {
            Ok(metadata) => metadata,
            Err(_) => backend
                .metadata_at_version(15, at)
                .await
                .map_err(ChainError::rpc("fetch the upgraded runtime's metadata"))?,
        };
        let capabilities =
            check_metadata(&metadata).map_err(|missing| ChainError::MissingFromMetadata {
                url: self.url.clone(),
                spec_version: version.spec_version,
                missing,
            })?;
        self.client.set_metadata(metadata);
        self.client.set_runtime_version(RuntimeVersion {
            spec_version: version.spec_version,
            transaction_version: version.transaction_version,
        });
        match self.capabilities.write() {
            Ok(mut current) => *current = capabilities,
            Err(poisoned) => *poisoned.into_inner() = capabilities,
        }
        Ok(())
    }

    async fn read_state(
        &self,
        netuid: u16,
        mechanism_id: u8,
        at: BlockRef,
    ) -> Result<SubnetState, ChainError> {
        let hotkey = self.signer()?.account_id().0;
        metagraph::subnet_state(
            &self.client,
            &self.capabilities(),
            at,
            self.spec_version(),
            netuid,
            mechanism_id,
            &hotkey,
        )
        .await
    }

    async fn sign(&self, call: &WeightsCallArgs) -> Result<(Vec<u8>, Hash), ChainError> {
        let signer = self.signer()?;
        let params = DefaultExtrinsicParamsBuilder::<SubstrateConfig>::new()
            .mortal(self.options.mortality_blocks)
            .build();
        let mut partial = self
            .client
            .tx()
            .create_partial(&weights_call_payload(call), &signer.account_id(), params)
            .await
            .map_err(ChainError::rpc("build the extrinsic (nonce, era)"))?;
        let signed = partial.sign(signer);
        Ok((signed.encoded().to_vec(), Hash(signed.hash().0)))
    }

    /// Reads the chain at the head, runs the pre-flight checks and, unless refused, signs
    /// the extrinsic with a fresh nonce, without submitting it (`set-weights --dry-run`).
    pub async fn prepare_weights(
        &self,
        decision: &WeightsDecision,
    ) -> Result<Prepared, ChainError> {
        self.follow_runtime_upgrade().await?;
        let head = self.current_block().await?;
        let state = self
            .read_state(decision.netuid, decision.mechanism_id, head)
            .await?;
        let call = call_kind(&state);
        let refused = |refusal| Prepared {
            state: state.clone(),
            call,
            extrinsic: Err(refusal),
        };
        if let Err(refusal) = preflight(&state, decision, head.number.saturating_add(1)) {
            return Ok(refused(refusal));
        }
        let hotkey = self.signer()?.account_id().0;
        let (args, reveal_round) = match plan_call(
            &state,
            decision,
            &hotkey,
            now_ms()?,
            self.options.block_time_ms,
        ) {
            Ok(planned) => planned,
            Err(refusal) => return Ok(refused(refusal)),
        };
        let (bytes, hash) = self.sign(&args).await?;
        Ok(Prepared {
            state,
            call,
            extrinsic: Ok(BuiltExtrinsic {
                bytes,
                hash,
                call: args,
                reveal_round,
            }),
        })
    }

    async fn block_number(&self, hash: H256) -> Result<u64, ChainError> {
        let header = self
            .rpc
            .chain_get_header(Some(hash))
            .await
            .map_err(|err| ChainError::rpc("chain_getHeader")(err.into()))?
            .ok_or_else(|| ChainError::UnknownBlock(format!("{hash:?}")))?;
        Ok(header.number().into())
    }

    /// Submits signed bytes and follows them to inclusion. `Err(message)` is a pool
    /// rejection at submission (nothing entered the pool).
    async fn submit_and_follow(
        &self,
        bytes: &[u8],
    ) -> Result<Result<Followed, String>, ChainError> {
        let tx = subxt::tx::SubmittableTransaction::from_bytes(self.client.clone(), bytes.to_vec());
        let mut progress = match tx.submit_and_watch().await {
            Ok(progress) => progress,
            Err(err) => return Ok(Err(pool_error_message(&err))),
        };
        let deadline =
            tokio::time::Instant::now() + Duration::from_millis(self.options.inclusion_timeout_ms);
        loop {
            let status = match tokio::time::timeout_at(deadline, progress.next()).await {
                // Timed out, or the node closed the subscription: the extrinsic may still land.
                Err(_) | Ok(None) | Ok(Some(Err(_))) => return Ok(Ok(Followed::TimedOut)),
                Ok(Some(Ok(status))) => status,
            };
            let in_block = match status {
                TxStatus::Validated | TxStatus::Broadcasted | TxStatus::NoLongerInBestBlock => {
                    continue;
                }
                TxStatus::InBestBlock(in_block) | TxStatus::InFinalizedBlock(in_block) => in_block,
                TxStatus::Error { message }
                | TxStatus::Invalid { message }
                | TxStatus::Dropped { message } => {
                    return Ok(Ok(Followed::Failed(Refusal::Dropped { message })));
                }
            };
            let block = self.block_number(in_block.block_hash()).await?;
            return match in_block.wait_for_success().await {
                Ok(_) => Ok(Ok(Followed::Included { block })),
                Err(subxt::Error::Runtime(error)) => {
                    Ok(Ok(Followed::Failed(Refusal::DispatchFailed {
                        block,
                        error: error.to_string(),
                    })))
                }
                Err(other) => Err(ChainError::rpc("read the inclusion block's events")(other)),
            };
        }
    }
}

/// Where a submitted extrinsic ended up.
enum Followed {
    Included {
        block: u64,
    },
    TimedOut,
    /// Left the pool, or included with a failed dispatch.
    Failed(Refusal),
}

impl Chain for SubxtChain {
    async fn current_block(&self) -> Result<BlockRef, ChainError> {
        let hash = self
            .rpc
            .chain_get_finalized_head()
            .await
            .map_err(|err| ChainError::rpc("chain_getFinalizedHead")(err.into()))?;
        Ok(BlockRef {
            number: self.block_number(hash).await?,
            hash: Hash(hash.0),
        })
    }

    async fn metagraph(&self, netuid: u16, at: BlockRef) -> Result<MetagraphObserved, ChainError> {
        let version = self
            .rpc
            .state_get_runtime_version(Some(H256(at.hash.0)))
            .await
            .map_err(|err| ChainError::rpc("state_getRuntimeVersion")(err.into()))?;
        metagraph::metagraph(
            &self.client,
            &self.capabilities(),
            at,
            version.spec_version,
            netuid,
        )
        .await
    }

    async fn subnet_state(&self, netuid: u16, at: BlockRef) -> Result<SubnetState, ChainError> {
        self.read_state(netuid, 0, at).await
    }

    async fn submit_weights(
        &self,
        decision: &WeightsDecision,
    ) -> Result<SubmissionReport, ChainError> {
        let mut prepared = self.prepare_weights(decision).await?;
        let mut attempts = 0;
        loop {
            let (spec_version, head) = (prepared.state.spec_version, prepared.state.block);
            let built = match prepared.extrinsic {
                Ok(built) => built,
                Err(refusal) => {
                    let mut report = SubmissionReport::refused(
                        decision,
                        prepared.call,
                        spec_version,
                        head,
                        refusal,
                    );
                    report.attempts = attempts;
                    return Ok(report);
                }
            };
            attempts += 1;
            let (outcome, refusal) = match self.submit_and_follow(&built.bytes).await? {
                Ok(Followed::Included { block }) => (SubmissionOutcome::Included { block }, None),
                Ok(Followed::TimedOut) => (SubmissionOutcome::TimedOut, None),
                Ok(Followed::Failed(refusal)) => (
                    SubmissionOutcome::Rejected {
                        reason: refusal.to_string(),
                    },
                    Some(refusal),
                ),
                Err(message) if is_retryable(&message) && attempts < self.options.attempts_max => {
                    // Never entered the pool: sign again with a fresh nonce and era.
                    prepared = self.prepare_weights(decision).await?;
                    continue;
                }
                Err(message) => {
                    let refusal = Refusal::PoolRejected { message };
                    (
                        SubmissionOutcome::Rejected {
                            reason: refusal.to_string(),
                        },
                        Some(refusal),
                    )
                }
            };
            return Ok(SubmissionReport {
                event: WeightsSubmitted {
                    decision_seq: decision.decision_seq,
                    call: prepared.call,
                    extrinsic_hash: Some(built.hash),
                    reveal_round: built.reveal_round,
                    outcome,
                    spec_version: Some(spec_version),
                },
                spec_version,
                head,
                refusal,
                attempts,
            });
        }
    }
}
