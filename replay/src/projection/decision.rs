//! Weight decisions: what a projection's mechanism output means on chain, in the shape a
//! `WeightsComputed` event records, so a validator and an auditor extract it the same way.
//!
//! Each system's output names its weights differently (affine's `chain`, loosh's `weights`
//! section, omega's per-uid `weights` with a `u16` object, quasar's `processed` vector,
//! aml's per-hotkey `final_scores`); the functions here read each shape into one
//! [`Decision`]. A projection whose mechanism sets no weights (quasar's per-item modes,
//! omega's reputation job, loosh's per-round evaluation), or whose mechanism declines to set
//! them in the current state (loosh skipping a round, omega keeping its weights when the
//! baseline is missing), gives [`Recomputed::NoWeights`] with the reason.

use serde_json::Value;
use weightlog_schema::event::WeightsComputed;

use crate::MechanismError;

/// One weight decision: the raw weights the mechanism computed and the u16 weights sent to
/// the chain (zeros dropped), as a `WeightsComputed` event records them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Decision {
    pub uids: Vec<u16>,
    /// IEEE-754 bit patterns of the raw weights, parallel to `uids`.
    pub raw_weight_bits: Vec<u64>,
    pub u16_uids: Vec<u16>,
    pub u16_weights: Vec<u16>,
}

/// What the mechanism gives for the current state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recomputed {
    Weights(Decision),
    /// The mechanism sets no weights now; the reason says why.
    NoWeights(String),
}

impl Decision {
    /// The decision a `WeightsComputed` event recorded.
    pub fn recorded(event: &WeightsComputed) -> Self {
        Self {
            uids: event.uids.clone(),
            raw_weight_bits: event.raw_weight_bits.clone(),
            u16_uids: event.u16_uids.clone(),
            u16_weights: event.u16_weights.clone(),
        }
    }

    /// The raw weights as floats.
    pub fn raw_weights(&self) -> Vec<f64> {
        self.raw_weight_bits
            .iter()
            .map(|bits| f64::from_bits(*bits))
            .collect()
    }

    /// The uids whose raw weight bits or u16 weight differ between two decisions, ascending:
    /// a uid present in one and absent from the other differs.
    pub fn differing_uids(&self, other: &Decision) -> Vec<u16> {
        let mut uids = std::collections::BTreeSet::new();
        let raw = |decision: &Decision| -> std::collections::BTreeMap<u16, u64> {
            decision
                .uids
                .iter()
                .copied()
                .zip(decision.raw_weight_bits.iter().copied())
                .collect()
        };
        let chain = |decision: &Decision| -> std::collections::BTreeMap<u16, u16> {
            decision
                .u16_uids
                .iter()
                .copied()
                .zip(decision.u16_weights.iter().copied())
                .collect()
        };
        let (raw_self, raw_other) = (raw(self), raw(other));
        let (chain_self, chain_other) = (chain(self), chain(other));
        for uid in raw_self.keys().chain(raw_other.keys()) {
            if raw_self.get(uid) != raw_other.get(uid) {
                uids.insert(*uid);
            }
        }
        for uid in chain_self.keys().chain(chain_other.keys()) {
            if chain_self.get(uid) != chain_other.get(uid) {
                uids.insert(*uid);
            }
        }
        // Same entries in another order still differ as recorded bytes; name every uid then.
        if uids.is_empty() && self != other {
            uids.extend(self.uids.iter().chain(&other.uids));
            uids.extend(self.u16_uids.iter().chain(&other.u16_uids));
        }
        uids.into_iter().collect()
    }
}

fn missing(what: &str) -> MechanismError {
    MechanismError::invalid(format!("mechanism output has no valid `{what}`"))
}

fn u16_list(value: Option<&Value>, what: &str) -> Result<Vec<u16>, MechanismError> {
    value
        .and_then(Value::as_array)
        .ok_or_else(|| missing(what))?
        .iter()
        .map(|item| {
            item.as_u64()
                .and_then(|number| u16::try_from(number).ok())
                .ok_or_else(|| missing(what))
        })
        .collect()
}

fn f64_list(value: Option<&Value>, what: &str) -> Result<Vec<f64>, MechanismError> {
    value
        .and_then(Value::as_array)
        .ok_or_else(|| missing(what))?
        .iter()
        .map(|item| item.as_f64().ok_or_else(|| missing(what)))
        .collect()
}

fn bits(weights: &[f64]) -> Vec<u64> {
    weights.iter().map(|weight| weight.to_bits()).collect()
}

/// A `{"uids": [..], "weights": [..]}` object of u16 weights.
fn u16_object(value: Option<&Value>, what: &str) -> Result<(Vec<u16>, Vec<u16>), MechanismError> {
    let value = value.ok_or_else(|| missing(what))?;
    let uids = u16_list(value.get("uids"), &format!("{what}.uids"))?;
    let weights = u16_list(value.get("weights"), &format!("{what}.weights"))?;
    if uids.len() != weights.len() {
        return Err(missing(what));
    }
    Ok((uids, weights))
}

fn checked(decision: Decision) -> Result<Recomputed, MechanismError> {
    if decision.uids.len() != decision.raw_weight_bits.len()
        || decision.u16_uids.len() != decision.u16_weights.len()
    {
        return Err(MechanismError::invalid(
            "mechanism output lists a different number of uids and weights",
        ));
    }
    Ok(Recomputed::Weights(decision))
}

/// affine (both modes): `chain` = `{"uids", "weights", "u16"}`, the u16 list parallel to
/// the uids (zeros included).
pub fn from_affine(output: &Value) -> Result<Recomputed, MechanismError> {
    let chain = output.get("chain").ok_or_else(|| missing("chain"))?;
    let uids = u16_list(chain.get("uids"), "chain.uids")?;
    let weights = f64_list(chain.get("weights"), "chain.weights")?;
    let chain_weights = u16_list(chain.get("u16"), "chain.u16")?;
    if chain_weights.len() != uids.len() {
        return Err(missing("chain.u16"));
    }
    let (u16_uids, u16_weights) = uids
        .iter()
        .zip(&chain_weights)
        .filter(|(_, weight)| **weight != 0)
        .map(|(uid, weight)| (*uid, *weight))
        .unzip();
    checked(Decision {
        uids,
        raw_weight_bits: bits(&weights),
        u16_uids,
        u16_weights,
    })
}

/// loosh: the `weights` section; only `"status": "set"` sets weights.
pub fn from_loosh(output: &Value) -> Result<Recomputed, MechanismError> {
    let section = output.get("weights").ok_or_else(|| missing("weights"))?;
    let status = section
        .get("status")
        .and_then(Value::as_str)
        .ok_or_else(|| missing("weights.status"))?;
    if status != "set" {
        return Ok(Recomputed::NoWeights(format!(
            "loosh sets no weights now (status `{status}`)"
        )));
    }
    let uids = u16_list(section.get("uids"), "weights.uids")?;
    let weights = f64_list(section.get("weights"), "weights.weights")?;
    let (u16_uids, u16_weights) = u16_object(section.get("u16"), "weights.u16")?;
    checked(Decision {
        uids,
        raw_weight_bits: bits(&weights),
        u16_uids,
        u16_weights,
    })
}

/// omega `two_pool` / `legacy_winrate`: `weights` has one entry per uid (`0..n`), `u16` is
/// the chain object. `"status": "unchanged"` (baseline missing) sets nothing.
pub fn from_omega(output: &Value) -> Result<Recomputed, MechanismError> {
    let status = output
        .get("status")
        .and_then(Value::as_str)
        .ok_or_else(|| missing("status"))?;
    if status != "ok" {
        let reason = output
            .get("reason")
            .and_then(Value::as_str)
            .unwrap_or("the mechanism keeps its weights");
        return Ok(Recomputed::NoWeights(format!(
            "omega sets no weights now (status `{status}`: {reason})"
        )));
    }
    let weights = f64_list(output.get("weights"), "weights")?;
    let uids = uids_up_to(weights.len())?;
    let (u16_uids, u16_weights) = u16_object(output.get("u16"), "u16")?;
    checked(Decision {
        uids,
        raw_weight_bits: bits(&weights),
        u16_uids,
        u16_weights,
    })
}

/// quasar `validator_v1` / `validator_v2`: the `processed` vector (after the chain's
/// min-weights / max-weight processing) is what `set_weights` receives; `u16` is the chain
/// object.
pub fn from_quasar(output: &Value) -> Result<Recomputed, MechanismError> {
    let processed = output
        .get("processed")
        .ok_or_else(|| missing("processed"))?;
    let uids = u16_list(processed.get("uids"), "processed.uids")?;
    let weights = f64_list(processed.get("weights"), "processed.weights")?;
    let (u16_uids, u16_weights) = u16_object(output.get("u16"), "u16")?;
    checked(Decision {
        uids,
        raw_weight_bits: bits(&weights),
        u16_uids,
        u16_weights,
    })
}

/// aml: `final_scores` per hotkey become the weights of the hotkeys' uids (`hotkeys[uid]`),
/// in uid order, converted to u16 as the SDK does. Upstream publishes no weight-setting
/// code for its implemented scoring (scoring.md 5.1); the design document hands scores to
/// `set_weights` unchanged, and so do we.
pub fn from_aml(output: &Value, hotkeys: &[String]) -> Result<Recomputed, MechanismError> {
    let scores = output
        .get("final_scores")
        .and_then(Value::as_object)
        .ok_or_else(|| missing("final_scores"))?;
    let mut uids = Vec::new();
    let mut weights = Vec::new();
    for (uid, hotkey) in hotkeys.iter().enumerate() {
        if let Some(score) = scores.get(hotkey) {
            let score = score.as_f64().ok_or_else(|| missing("final_scores"))?;
            uids.push(u16::try_from(uid).map_err(|_| missing("final_scores"))?);
            weights.push(score);
        }
    }
    if uids.len() != scores.len() {
        return Err(MechanismError::invalid(
            "aml final_scores name a hotkey outside the newest metagraph",
        ));
    }
    if weights.iter().all(|weight| *weight == 0.0) {
        return Ok(Recomputed::NoWeights(
            "aml sets no weights now: every final score is 0".into(),
        ));
    }
    let emitted = crate::emit::to_u16(&uids, &weights, crate::emit::Precision::Float64)?;
    checked(Decision {
        uids,
        raw_weight_bits: bits(&weights),
        u16_uids: emitted.uids,
        u16_weights: emitted.weights,
    })
}

fn uids_up_to(n: usize) -> Result<Vec<u16>, MechanismError> {
    (0..n)
        .map(|uid| {
            u16::try_from(uid)
                .map_err(|_| MechanismError::invalid(format!("{n} weights exceed the u16 uids")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn weights(recomputed: Recomputed) -> Decision {
        match recomputed {
            Recomputed::Weights(decision) => decision,
            Recomputed::NoWeights(reason) => panic!("no weights: {reason}"),
        }
    }

    #[test]
    fn affine_drops_zero_u16_entries_but_keeps_raw_ones() {
        let output = json!({"chain": {"uids": [243, 0, 103], "weights": [0.0, 0.3653, 0.6347],
            "u16": [0, 37719, 65535]}});
        let decision = weights(from_affine(&output).unwrap());
        assert_eq!(decision.uids, vec![243, 0, 103]);
        assert_eq!(decision.raw_weights(), vec![0.0, 0.3653, 0.6347]);
        assert_eq!(decision.u16_uids, vec![0, 103]);
        assert_eq!(decision.u16_weights, vec![37719, 65535]);
    }

    #[test]
    fn loosh_and_omega_statuses_that_set_nothing() {
        let skipped = json!({"weights": {"status": "skipped_all_zero"}});
        assert!(matches!(
            from_loosh(&skipped).unwrap(),
            Recomputed::NoWeights(_)
        ));
        let unchanged = json!({"status": "unchanged", "reason": "baseline missing",
            "weights": [0.5, 0.5], "u16": {"uids": [0, 1], "weights": [65535, 65535]}});
        match from_omega(&unchanged).unwrap() {
            Recomputed::NoWeights(reason) => assert!(reason.contains("baseline missing")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn omega_weights_are_indexed_by_uid() {
        let output = json!({"status": "ok", "weights": [0.0, 0.25, 0.75],
            "u16": {"uids": [1, 2], "weights": [21845, 65535]}});
        let decision = weights(from_omega(&output).unwrap());
        assert_eq!(decision.uids, vec![0, 1, 2]);
        assert_eq!(decision.u16_uids, vec![1, 2]);
    }

    #[test]
    fn aml_maps_hotkeys_to_uids_and_converts_to_u16() {
        let output = json!({"final_scores": {"hk2": 0.5, "hk0": 0.25}});
        let hotkeys = vec!["hk0".to_string(), "hk1".to_string(), "hk2".to_string()];
        let decision = weights(from_aml(&output, &hotkeys).unwrap());
        assert_eq!(decision.uids, vec![0, 2]);
        assert_eq!(decision.raw_weights(), vec![0.25, 0.5]);
        assert_eq!(decision.u16_uids, vec![0, 2]);
        assert_eq!(decision.u16_weights, vec![32768, 65535]);
        let stranger = json!({"final_scores": {"hk9": 0.5}});
        assert!(from_aml(&stranger, &hotkeys).is_err());
    }

    #[test]
    fn differing_uids_names_changed_missing_and_extra_entries() {
        let base = Decision {
            uids: vec![0, 1, 2],
            raw_weight_bits: bits(&[0.2, 0.3, 0.5]),
            u16_uids: vec![0, 1, 2],
            u16_weights: vec![26214, 39321, 65535],
        };
        assert!(base.differing_uids(&base).is_empty());
        let mut changed = base.clone();
        changed.raw_weight_bits[1] = (0.3f64).next_up().to_bits();
        assert_eq!(base.differing_uids(&changed), vec![1]);
        let mut extra = base.clone();
        extra.u16_uids.push(7);
        extra.u16_weights.push(1);
        assert_eq!(base.differing_uids(&extra), vec![7]);
        let mut reordered = base.clone();
        reordered.uids.swap(0, 1);
        reordered.raw_weight_bits.swap(0, 1);
        assert_eq!(base.differing_uids(&reordered), vec![0, 1, 2]);
    }
}
