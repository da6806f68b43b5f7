//! The chain's own checks on a weight submission, run before anything is signed, so a
//! decision the chain would refuse is refused here with the reason instead of burning an
//! extrinsic (specs/chain.md section 1, "Chain-side rules").
//!
//! Pure: everything comes from [`SubnetState`], read at one block.

use super::{Refusal, SubnetState, WeightsDecision};

/// Netuid 0 is the root network; it cannot be weighted.
pub const ROOT_NETUID: u16 = 0;
/// The only timelocked commit-reveal version this client can produce.
pub const COMMIT_REVEAL_VERSION_SUPPORTED: u16 = 4;

/// Checks `decision` against the subnet as read in `state`, in the chain's order where it
/// matters. `inclusion_block` is the earliest block the extrinsic can land in.
pub fn preflight(
    state: &SubnetState,
    decision: &WeightsDecision,
    inclusion_block: u64,
) -> Result<(), Refusal> {
    let parameters = &state.hyperparameters;
    if decision.netuid == ROOT_NETUID {
        return Err(Refusal::RootNetuid);
    }
    if decision.netuid != state.netuid {
        return Err(Refusal::WrongSubnet {
            decision: decision.netuid,
            read: state.netuid,
        });
    }
    if parameters.commit_reveal_enabled
        && parameters.commit_reveal_version != COMMIT_REVEAL_VERSION_SUPPORTED
    {
        return Err(Refusal::UnknownCommitRevealVersion {
            version: parameters.commit_reveal_version,
        });
    }
    if decision.uids.len() != decision.weights.len() {
        return Err(Refusal::LengthMismatch {
            uids: decision.uids.len(),
            weights: decision.weights.len(),
        });
    }
    if decision.uids.is_empty() {
        return Err(Refusal::NothingToSet);
    }
    if decision.mechanism_id >= state.mechanism_count {
        return Err(Refusal::MechanismMissing {
            mechanism_id: decision.mechanism_id,
            count: state.mechanism_count,
        });
    }
    if decision.uids.len() > usize::from(state.subnetwork_n) {
        return Err(Refusal::TooManyUids {
            count: decision.uids.len(),
            subnetwork_n: state.subnetwork_n,
        });
    }
    let Some(own) = state.own else {
        return Err(Refusal::NotRegistered {
            hotkey: state.hotkey.to_string(),
            netuid: state.netuid,
        });
    };
    if parameters.weights_version_key != 0 && decision.version_key < parameters.weights_version_key
    {
        return Err(Refusal::VersionKeyTooLow {
            version_key: decision.version_key,
            required: parameters.weights_version_key,
        });
    }
    // 0 means the hotkey never set weights; the chain lets it through.
    if own.last_update_block != 0 {
        let since = inclusion_block.saturating_sub(own.last_update_block);
        if since < parameters.weights_rate_limit_blocks {
            return Err(Refusal::RateLimited {
                uid: own.uid,
                last_update_block: own.last_update_block,
                rate_limit_blocks: parameters.weights_rate_limit_blocks,
                next_allowed_block: own
                    .last_update_block
                    .saturating_add(parameters.weights_rate_limit_blocks),
            });
        }
    }
    let self_weight_only = decision.uids == [own.uid];
    if !own.validator_permit && !self_weight_only && !own.is_subnet_owner {
        return Err(Refusal::NoValidatorPermit {
            uid: own.uid,
            netuid: state.netuid,
        });
    }
    let mut seen = std::collections::BTreeSet::new();
    for &uid in &decision.uids {
        if !seen.insert(uid) {
            return Err(Refusal::DuplicateUid { uid });
        }
        if uid >= state.subnetwork_n {
            return Err(Refusal::UnknownUid {
                uid,
                subnetwork_n: state.subnetwork_n,
            });
        }
    }
    let min_required = parameters.min_allowed_weights.min(state.subnetwork_n);
    if !self_weight_only && decision.uids.len() < usize::from(min_required) {
        return Err(Refusal::TooFewWeights {
            count: decision.uids.len(),
            min_required,
        });
    }
    if parameters.max_weights_limit < u16::MAX {
        check_max_weight(decision, parameters.max_weights_limit)?;
    }
    Ok(())
}

/// The chain max-upscales the values (largest to 65535) and then refuses any single share
/// above `MaxWeightsLimit / 65535`.
fn check_max_weight(decision: &WeightsDecision, limit: u16) -> Result<(), Refusal> {
    let total: u64 = decision.weights.iter().map(|&w| u64::from(w)).sum();
    let Some(&largest) = decision.weights.iter().max() else {
        return Ok(());
    };
    if total == 0 || decision.uids.len() == 1 {
        return Ok(());
    }
    // largest / total > limit / 65535, in integers (max-upscaling preserves the shares).
    if u128::from(largest) * 65_535 > u128::from(limit) * u128::from(total) {
        return Err(Refusal::MaxWeightExceeded {
            share_per_65535: (u128::from(largest) * 65_535 / u128::from(total)) as u64,
            limit,
        });
    }
    Ok(())
}
