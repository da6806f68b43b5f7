//! [`SimChain`]: an in-process simulated subtensor for the demo and the tests. Blocks advance
//! with wall time at a configurable rate; the subnet holds registered neurons (hotkeys and
//! loopback axons), a tempo, a weights rate limit and the other weight hyper-parameters; and
//! submitted weights go through the same pre-flight checks as on the real chain
//! ([`preflight`]) and are stored, so a test can read back what the node set.
//!
//! It is a simulation, and says so: block hashes are `blake3("weightlog sim block" || n)`,
//! commit-reveal is off, and an accepted submission is "included" in the next block.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use weightlog_schema::event::{
    AccountId, MetagraphObserved, Neuron, SubmissionOutcome, WeightHyperparameters, WeightsCall,
    WeightsSubmitted,
};
use weightlog_schema::hash::Hash;

use super::{
    BlockRef, Chain, ChainError, EpochSchedule, OwnNeuron, SubmissionReport, SubnetState,
    WeightsDecision, preflight,
};

/// The runtime version the simulation reports.
pub const SIM_SPEC_VERSION: u32 = 393;
/// The block the simulation starts at.
pub const SIM_FIRST_BLOCK: u64 = 1_000;

#[derive(Debug, Clone)]
pub struct SimConfig {
    pub netuid: u16,
    /// Wall time per block.
    pub block_interval: Duration,
    /// Unix time (ms) of block [`SIM_FIRST_BLOCK`]: blocks follow the wall clock from there,
    /// so a node restarted against a new simulation of the same subnet sees the chain carry
    /// on rather than start over.
    pub genesis_ms: u64,
    pub hyperparameters: WeightHyperparameters,
}

impl SimConfig {
    /// A subnet with a short tempo for demos: `tempo` blocks of `block_interval`.
    pub fn quick(netuid: u16, block_interval: Duration, tempo: u16, genesis_ms: u64) -> SimConfig {
        SimConfig {
            netuid,
            block_interval,
            genesis_ms,
            hyperparameters: WeightHyperparameters {
                tempo,
                min_allowed_weights: 1,
                max_weights_limit: 65_535,
                weights_version_key: 0,
                weights_rate_limit_blocks: u64::from(tempo / 2).max(1),
                commit_reveal_enabled: false,
                reveal_period_epochs: 1,
                commit_reveal_version: 4,
            },
        }
    }
}

/// One accepted submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimSubmission {
    pub block: u64,
    pub hotkey: AccountId,
    pub decision: WeightsDecision,
}

#[derive(Debug)]
struct SimState {
    neurons: Vec<Neuron>,
    /// `LastUpdate` per uid.
    last_update: Vec<u64>,
    submitted: Vec<SimSubmission>,
}

/// The simulated chain. Cheap to clone (shared state).
#[derive(Debug, Clone)]
pub struct SimChain {
    config: SimConfig,
    /// The validator whose weights this chain accepts (it holds a uid with a permit).
    validator: AccountId,
    state: Arc<Mutex<SimState>>,
}

impl SimChain {
    /// A subnet with `neurons` (uids must be `0..n`) and the validator registered as the
    /// last uid, with a validator permit and stake.
    pub fn new(config: SimConfig, validator: AccountId, mut neurons: Vec<Neuron>) -> SimChain {
        let uid = neurons.len() as u16;
        neurons.push(Neuron {
            uid,
            hotkey: validator,
            coldkey: validator,
            stake_rao: 10_000 * 1_000_000_000,
            validator_permit: true,
            active: true,
            registration_block: 1,
            axon: None,
        });
        let last_update = vec![0; neurons.len()];
        SimChain {
            config,
            validator,
            state: Arc::new(Mutex::new(SimState {
                neurons,
                last_update,
                submitted: Vec::new(),
            })),
        }
    }

    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    /// The block the chain is at now.
    pub fn block_now(&self) -> u64 {
        let interval = self.config.block_interval.as_millis().max(1) as u64;
        let now = crate::epistula::now_ms().unwrap_or(self.config.genesis_ms);
        SIM_FIRST_BLOCK + now.saturating_sub(self.config.genesis_ms) / interval
    }

    /// Every submission accepted so far, oldest first.
    pub fn submitted(&self) -> Vec<SimSubmission> {
        self.lock().submitted.clone()
    }

    /// The registered neurons (the validator last).
    pub fn neurons(&self) -> Vec<Neuron> {
        self.lock().neurons.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SimState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn block_ref(number: u64) -> BlockRef {
        let mut hasher = blake3::Hasher::new();
        hasher.update(b"weightlog sim block");
        hasher.update(&number.to_le_bytes());
        BlockRef {
            number,
            hash: Hash(*hasher.finalize().as_bytes()),
        }
    }

    fn check_netuid(&self, netuid: u16, at: BlockRef) -> Result<(), ChainError> {
        if netuid != self.config.netuid {
            return Err(ChainError::NoSuchSubnet {
                netuid,
                block: at.number,
            });
        }
        if at.number > self.block_now() {
            return Err(ChainError::UnknownBlock(at.number.to_string()));
        }
        Ok(())
    }

    fn state_at(&self, netuid: u16, at: BlockRef) -> Result<SubnetState, ChainError> {
        self.check_netuid(netuid, at)?;
        let state = self.lock();
        let own = state
            .neurons
            .iter()
            .find(|neuron| neuron.hotkey == self.validator)
            .map(|neuron| OwnNeuron {
                uid: neuron.uid,
                validator_permit: neuron.validator_permit,
                last_update_block: state.last_update[usize::from(neuron.uid)],
                is_subnet_owner: false,
            });
        let hyperparameters = self.config.hyperparameters.clone();
        Ok(SubnetState {
            netuid,
            block: at,
            spec_version: SIM_SPEC_VERSION,
            hotkey: self.validator,
            subnetwork_n: state.neurons.len() as u16,
            mechanism_count: 1,
            epoch: EpochSchedule::Modulo {
                head_block: at.number,
                netuid,
                tempo: hyperparameters.tempo,
            },
            hyperparameters,
            own,
        })
    }
}

impl Chain for SimChain {
    async fn current_block(&self) -> Result<BlockRef, ChainError> {
        Ok(Self::block_ref(self.block_now()))
    }

    async fn metagraph(&self, netuid: u16, at: BlockRef) -> Result<MetagraphObserved, ChainError> {
        self.check_netuid(netuid, at)?;
        Ok(MetagraphObserved {
            netuid,
            block: at.number,
            block_hash: at.hash,
            spec_version: SIM_SPEC_VERSION,
            neurons: self.lock().neurons.clone(),
            hyperparameters: self.config.hyperparameters.clone(),
        })
    }

    async fn subnet_state(&self, netuid: u16, at: BlockRef) -> Result<SubnetState, ChainError> {
        self.state_at(netuid, at)
    }

    async fn submit_weights(
        &self,
        decision: &WeightsDecision,
    ) -> Result<SubmissionReport, ChainError> {
        let head = Self::block_ref(self.block_now());
        let state = self.state_at(self.config.netuid, head)?;
        let inclusion_block = head.number + 1;
        if let Err(refusal) = preflight(&state, decision, inclusion_block) {
            return Ok(SubmissionReport::refused(
                decision,
                WeightsCall::SetMechanismWeights,
                SIM_SPEC_VERSION,
                head,
                refusal,
            ));
        }
        let mut hasher = blake3::Hasher::new();
        hasher.update(b"weightlog sim extrinsic");
        hasher.update(&decision.decision_seq.to_le_bytes());
        hasher.update(&inclusion_block.to_le_bytes());
        let extrinsic_hash = Hash(*hasher.finalize().as_bytes());
        {
            let mut chain = self.lock();
            if let Some(own) = state.own {
                chain.last_update[usize::from(own.uid)] = inclusion_block;
            }
            chain.submitted.push(SimSubmission {
                block: inclusion_block,
                hotkey: self.validator,
                decision: decision.clone(),
            });
        }
        Ok(SubmissionReport {
            event: WeightsSubmitted {
                decision_seq: decision.decision_seq,
                call: WeightsCall::SetMechanismWeights,
                extrinsic_hash: Some(extrinsic_hash),
                reveal_round: None,
                outcome: SubmissionOutcome::Included {
                    block: inclusion_block,
                },
                spec_version: Some(SIM_SPEC_VERSION),
            },
            spec_version: SIM_SPEC_VERSION,
            head,
            refusal: None,
            attempts: 1,
        })
    }
}
