//! When a timelocked weight commit reveals: the subnet's epoch schedule and the drand round
//! that covers the reveal block (specs/chain.md "Which path is current").
//!
//! Two schedules exist on chain. Runtimes since spec 423 run a stateful scheduler: an epoch
//! fires at the first block where `block - LastEpochBlock >= Tempo`, or at an owner-requested
//! `PendingEpochAt`, or when `BlocksSinceLastStep` exceeds the largest tempo; the epoch index
//! the automatic reveal compares against is read *before* that block's coinbase runs. Older
//! runtimes (no `SubnetEpochIndex` in their metadata) use the modulo rule
//! `epoch(block) = (block + netuid + 1) / (tempo + 1)`.
//!
//! Everything here is pure: the head state and the wall-clock time come in as arguments.

/// The largest tempo a subnet owner may set (≈ 7 days of 12 s blocks); also the chain's
/// threshold of `BlocksSinceLastStep` past which an epoch is forced.
pub const TEMPO_BLOCKS_MAX: u64 = 50_400;
/// A commit is built against the head block and included, at the earliest, in the next one.
pub const COMMIT_INCLUSION_OFFSET_BLOCKS: u64 = 1;
/// Blocks added after the predicted reveal block, so the drand pulse the reveal needs has
/// already been ingested by the chain when that block runs.
pub const REVEAL_SAFETY_BLOCKS: u64 = 3;
/// Block time of finney and testnet, in milliseconds.
pub const BLOCK_TIME_MS_DEFAULT: u64 = 12_000;
/// drand quicknet: genesis (Unix seconds) and period (seconds).
pub const QUICKNET_GENESIS_S: u64 = 1_692_803_367;
pub const QUICKNET_PERIOD_S: u64 = 3;

/// Why no reveal block can be predicted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EpochError {
    #[error("tempo is 0: the subnet runs no epochs, so a timelocked commit would never reveal")]
    TempoZero,
    #[error(
        "no block within {blocks_max} blocks of {from_block} reaches epoch {target_epoch}; \
         the epoch schedule read from the chain is inconsistent"
    )]
    SimulationBound {
        from_block: u64,
        target_epoch: u64,
        blocks_max: u64,
    },
    #[error("reveal period of {epochs} epochs is out of the chain's range 1..=100")]
    RevealPeriod { epochs: u64 },
}

/// The stateful scheduler's storage values for one subnet, read at `head_block`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EpochState {
    pub head_block: u64,
    pub tempo: u16,
    pub last_epoch_block: u64,
    /// 0 when no owner-triggered epoch is pending.
    pub pending_epoch_at: u64,
    pub subnet_epoch_index: u64,
    pub blocks_since_last_step: u64,
}

/// Which rule decides a block's epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EpochSchedule {
    /// Spec 423 and later.
    Stateful(EpochState),
    /// Runtimes before the scheduler: `(block + netuid + 1) / (tempo + 1)`.
    Modulo {
        head_block: u64,
        netuid: u16,
        tempo: u16,
    },
}

impl EpochState {
    /// Whether the chain's coinbase runs this subnet's epoch at `block`, given the state left
    /// by the previous block.
    pub fn epoch_fires_at(&self, block: u64) -> bool {
        if self.tempo == 0 {
            return false;
        }
        if self.pending_epoch_at > 0 && block >= self.pending_epoch_at {
            return true;
        }
        if self.blocks_since_last_step > TEMPO_BLOCKS_MAX {
            return true;
        }
        block.saturating_sub(self.last_epoch_block) >= u64::from(self.tempo)
    }

    /// The epoch index the automatic reveal sees at `block`: it runs before the coinbase,
    /// but already counts an epoch that fires in this block.
    pub fn epoch_before_coinbase(&self, block: u64) -> u64 {
        if self.epoch_fires_at(block) {
            self.subnet_epoch_index.saturating_add(1)
        } else {
            self.subnet_epoch_index
        }
    }

    /// The state after `block`'s coinbase ran.
    pub fn after_block(&self, block: u64) -> Self {
        let mut next = *self;
        next.head_block = block;
        next.blocks_since_last_step = next.blocks_since_last_step.saturating_add(1);
        if next.epoch_fires_at(block) {
            next.last_epoch_block = block;
            next.pending_epoch_at = 0;
            next.subnet_epoch_index = next.subnet_epoch_index.saturating_add(1);
            next.blocks_since_last_step = 0;
        }
        next
    }
}

/// Where a commit sent now lands and reveals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RevealPlan {
    /// The block the commit is expected in (head + 1).
    pub commit_block: u64,
    pub commit_epoch: u64,
    /// The first block whose epoch is `commit_epoch + reveal_period_epochs`.
    pub reveal_block: u64,
}

impl EpochSchedule {
    pub fn head_block(&self) -> u64 {
        match self {
            Self::Stateful(state) => state.head_block,
            Self::Modulo { head_block, .. } => *head_block,
        }
    }

    /// The reveal block of a commit built against the head and included in the next block.
    pub fn plan_reveal(&self, reveal_period_epochs: u64) -> Result<RevealPlan, EpochError> {
        if !(1..=100).contains(&reveal_period_epochs) {
            return Err(EpochError::RevealPeriod {
                epochs: reveal_period_epochs,
            });
        }
        match *self {
            Self::Stateful(state) => plan_stateful(state, reveal_period_epochs),
            Self::Modulo {
                head_block,
                netuid,
                tempo,
            } => plan_modulo(head_block, netuid, tempo, reveal_period_epochs),
        }
    }
}

fn plan_stateful(state: EpochState, reveal_period_epochs: u64) -> Result<RevealPlan, EpochError> {
    if state.tempo == 0 {
        return Err(EpochError::TempoZero);
    }
    let commit_block = state
        .head_block
        .saturating_add(COMMIT_INCLUSION_OFFSET_BLOCKS);
    // The head's own coinbase already ran; blocks between the head and the commit block run
    // theirs before the commit is applied.
    let mut before = state;
    for block in state.head_block.saturating_add(1)..commit_block {
        before = before.after_block(block);
    }
    // The extrinsic is applied after the commit block's coinbase, but the chain files the
    // commit under the epoch its reveal step saw, which is the pre-coinbase index.
    let commit_epoch = before.epoch_before_coinbase(commit_block);
    let target_epoch = commit_epoch.saturating_add(reveal_period_epochs);
    let blocks_max = reveal_period_epochs
        .saturating_add(1)
        .saturating_mul(TEMPO_BLOCKS_MAX);
    let mut previous = before;
    for block in commit_block..=commit_block.saturating_add(blocks_max) {
        // Exact equality: the chain reveals a commit only in that one epoch.
        if previous.epoch_before_coinbase(block) == target_epoch {
            return Ok(RevealPlan {
                commit_block,
                commit_epoch,
                reveal_block: block,
            });
        }
        previous = previous.after_block(block);
    }
    Err(EpochError::SimulationBound {
        from_block: commit_block,
        target_epoch,
        blocks_max,
    })
}

fn plan_modulo(
    head_block: u64,
    netuid: u16,
    tempo: u16,
    reveal_period_epochs: u64,
) -> Result<RevealPlan, EpochError> {
    if tempo == 0 {
        return Err(EpochError::TempoZero);
    }
    let period = u64::from(tempo) + 1;
    let offset = u64::from(netuid) + 1;
    let commit_block = head_block.saturating_add(COMMIT_INCLUSION_OFFSET_BLOCKS);
    let commit_epoch = commit_block.saturating_add(offset) / period;
    let target_epoch = commit_epoch.saturating_add(reveal_period_epochs);
    // The first block b with (b + offset) / period == target_epoch.
    let reveal_block = target_epoch
        .saturating_mul(period)
        .saturating_sub(offset)
        .max(commit_block);
    Ok(RevealPlan {
        commit_block,
        commit_epoch,
        reveal_block,
    })
}

/// The drand quicknet round to encrypt to: the round current at the wall-clock time the
/// reveal block (plus [`REVEAL_SAFETY_BLOCKS`]) is expected, counting `block_time_ms` per
/// block from the head observed at `now_ms`. Never below 1.
pub fn reveal_round(plan: &RevealPlan, head_block: u64, now_ms: u64, block_time_ms: u64) -> u64 {
    let target_block = plan.reveal_block.saturating_add(REVEAL_SAFETY_BLOCKS);
    let blocks_ahead = target_block.saturating_sub(head_block);
    let target_ms = now_ms.saturating_add(blocks_ahead.saturating_mul(block_time_ms));
    let since_genesis_ms = target_ms.saturating_sub(QUICKNET_GENESIS_S * 1000);
    (since_genesis_ms / (QUICKNET_PERIOD_S * 1000)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(head_block: u64, tempo: u16, last_epoch_block: u64) -> EpochState {
        EpochState {
            head_block,
            tempo,
            last_epoch_block,
            pending_epoch_at: 0,
            subnet_epoch_index: 7,
            blocks_since_last_step: head_block - last_epoch_block,
        }
    }

    #[test]
    fn epoch_fires_when_tempo_blocks_have_passed() {
        let head = state(120, 50, 100);
        assert!(!head.epoch_fires_at(149));
        assert!(head.epoch_fires_at(150));
        assert_eq!(head.epoch_before_coinbase(150), 8);
        let after = head.after_block(150);
        assert_eq!(
            (
                after.last_epoch_block,
                after.subnet_epoch_index,
                after.blocks_since_last_step
            ),
            (150, 8, 0)
        );
    }

    #[test]
    fn pending_owner_epoch_fires_early_and_clears() {
        let mut head = state(120, 50, 100);
        head.pending_epoch_at = 125;
        assert!(!head.epoch_fires_at(124));
        assert!(head.epoch_fires_at(125));
        let after = head.after_block(125);
        assert_eq!(after.pending_epoch_at, 0);
        assert_eq!(after.last_epoch_block, 125);
    }

    #[test]
    fn zero_tempo_never_fires_and_cannot_plan() {
        let head = state(120, 0, 100);
        assert!(!head.epoch_fires_at(10_000));
        assert_eq!(
            EpochSchedule::Stateful(head).plan_reveal(1),
            Err(EpochError::TempoZero)
        );
    }

    #[test]
    fn reveal_round_counts_quicknet_rounds_from_genesis() {
        let plan = RevealPlan {
            commit_block: 101,
            commit_epoch: 0,
            reveal_block: 110,
        };
        // 13 blocks of 12 s after a head seen exactly at genesis + 300 s.
        let now_ms = (QUICKNET_GENESIS_S + 300) * 1000;
        assert_eq!(
            reveal_round(&plan, 100, now_ms, 12_000),
            (300 + 13 * 12) / 3
        );
        // Before genesis the round is clamped to 1.
        assert_eq!(reveal_round(&plan, 100, 0, 12_000), 1);
    }
}
