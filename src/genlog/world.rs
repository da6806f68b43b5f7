//! The miners every scenario shares: uids `0..n`, hotkeys and coldkeys derived from the seed,
//! and a hidden quality in [0.2, 0.95] that decides how well each miner answers. The
//! metagraph is observed every tempo; at every observation after the first, one uid chosen
//! at random changes hands (a new miner registers on it, with a new hotkey and quality), so
//! the projections' handling of a uid that another miner now holds is exercised.

use weightlog_schema::event::{
    AccountId, Axon, MetagraphObserved, Neuron, ResponseOutcome, ResponseReceived,
    WeightHyperparameters,
};
use weightlog_schema::{Hash, Payload};

use super::{TEMPO_BLOCKS, derive};
use crate::envs::rng::SplitMix64;

/// Stake of a miner: well under the 999 TAO that makes a node a validator for loosh.
const MINER_STAKE_RAO_MAX: u64 = 500 * 1_000_000_000;
/// Share of responses that fail (time out) instead of answering.
pub const ERROR_RATE: f64 = 0.03;

#[derive(Debug, Clone)]
pub struct Miner {
    pub uid: u16,
    pub hotkey: AccountId,
    pub coldkey: AccountId,
    /// How likely the miner is to answer well, in [0.2, 0.95].
    pub quality: f64,
    pub stake_rao: u64,
    pub registration_block: u64,
}

#[derive(Debug, Clone)]
pub struct World {
    pub seed: u64,
    pub miners: Vec<Miner>,
    /// Block of the newest metagraph observed.
    metagraph_block: Option<u64>,
    /// Registrations after the first metagraph, numbering the keys they derive.
    registrations: u64,
}

fn miner(seed: u64, uid: u16, generation: u64, rng: &mut SplitMix64, block: u64) -> Miner {
    let mut index = uid.to_le_bytes().to_vec();
    if generation > 0 {
        index.extend_from_slice(&generation.to_le_bytes());
    }
    Miner {
        uid,
        hotkey: AccountId(derive(seed, b"gen-log miner hotkey", &index)),
        coldkey: AccountId(derive(seed, b"gen-log miner coldkey", &index)),
        quality: 0.2 + 0.75 * rng.unit(),
        stake_rao: rng.below(MINER_STAKE_RAO_MAX),
        registration_block: block,
    }
}

impl World {
    pub fn new(seed: u64, miners: u16, rng: &mut SplitMix64) -> Self {
        let miners = (0..miners)
            .map(|uid| {
                let block = super::FIRST_BLOCK - 1 - rng.below(100_000);
                miner(seed, uid, 0, rng, block)
            })
            .collect();
        Self {
            seed,
            miners,
            metagraph_block: None,
            registrations: 0,
        }
    }

    /// The metagraph, when a tempo has passed since the last one (or none was observed).
    pub fn observe(&mut self, netuid: u16, block: u64, rng: &mut SplitMix64) -> Option<Payload> {
        if self
            .metagraph_block
            .is_some_and(|last| block < last + TEMPO_BLOCKS)
        {
            return None;
        }
        if self.metagraph_block.is_some() {
            self.registrations += 1;
            let uid = rng.below(self.miners.len() as u64) as usize;
            self.miners[uid] = miner(self.seed, uid as u16, self.registrations, rng, block);
        }
        self.metagraph_block = Some(block);
        Some(self.metagraph(netuid, block))
    }

    pub fn uids(&self) -> Vec<u16> {
        self.miners.iter().map(|miner| miner.uid).collect()
    }

    /// The metagraph at `block`: every miner, in uid order, serving on an axon.
    pub fn metagraph(&self, netuid: u16, block: u64) -> Payload {
        let neurons = self
            .miners
            .iter()
            .map(|miner| Neuron {
                uid: miner.uid,
                hotkey: miner.hotkey,
                coldkey: miner.coldkey,
                stake_rao: miner.stake_rao,
                validator_permit: false,
                active: true,
                registration_block: miner.registration_block,
                axon: Some(Axon {
                    ip: format!("10.{}.{}.{}", miner.uid >> 8, miner.uid & 0xff, 7),
                    port: 8091,
                    protocol: 4,
                    version: 900,
                }),
            })
            .collect();
        Payload::MetagraphObserved(MetagraphObserved {
            netuid,
            block,
            block_hash: Hash(derive(
                self.seed,
                b"gen-log block hash",
                &block.to_le_bytes(),
            )),
            spec_version: 275,
            neurons,
            hyperparameters: WeightHyperparameters {
                tempo: TEMPO_BLOCKS as u16,
                min_allowed_weights: 1,
                max_weights_limit: 65_535,
                weights_version_key: 0,
                weights_rate_limit_blocks: 100,
                commit_reveal_enabled: false,
                reveal_period_epochs: 1,
                commit_reveal_version: 4,
            },
        })
    }
}

/// A miner's response to a challenge: `body` when it answered, else a timeout.
pub fn response(
    rng: &mut SplitMix64,
    miner: &Miner,
    challenge_id: &str,
    body: Option<String>,
) -> Payload {
    let outcome = match body {
        Some(body) => ResponseOutcome::Ok { body },
        None => ResponseOutcome::Error {
            message: "timed out after 60000 ms".into(),
        },
    };
    Payload::ResponseReceived(ResponseReceived {
        challenge_id: challenge_id.to_string(),
        uid: miner.uid,
        hotkey: miner.hotkey,
        outcome,
        latency_ms: 300 + rng.below(20_000),
        attempts: 1 + (rng.below(10) == 0) as u32,
        miner_signature: None,
    })
}

/// Whether this response fails instead of answering.
pub fn fails(rng: &mut SplitMix64) -> bool {
    rng.unit() < ERROR_RATE
}
