//! OMEGA Labs any-to-any (Bittensor SN21) validator weights, after
//! `omegalabsinc/omegalabs-anytoany-bittensor` @ e6c46117 (specs/scoring.md, section 4).
//!
//! Three modes are replayed, selected by the input's `mode`:
//! - `two_pool`: `run_baseline_incentive`, the live path (section 4.1), in float32 as the
//!   validator computes it with torch;
//! - `legacy_winrate`: `_try_win_rate_competition`, still in the validator file but no longer
//!   called (section 4.2), also in float32;
//! - `reputation`: one run of `scripts/update_reputation.py` (section 4.1, last paragraph),
//!   in float64 like the Python script.
//!
//! Input and output shapes: specs/mechanism-io/README.md, "omega_two_pool".

mod float32;
mod legacy_winrate;
mod reputation;
mod two_pool;

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::MechanismError;
use crate::emit::{Precision, to_u16};
use crate::error::parse;

pub use legacy_winrate::run_legacy_winrate;
pub use reputation::run_reputation;
pub use two_pool::run_two_pool;

/// The competition the live validator scores (`COMPETITION_SCHEDULE[0]` in
/// `constants/__init__.py`); used when the input names none.
pub const DEFAULT_COMPETITION_ID: &str = "v4";

/// Runs the omega mode the input's `mode` names and returns its output document.
pub fn run(input: &Value) -> Result<Value, MechanismError> {
    match input.get("mode").and_then(Value::as_str) {
        Some("two_pool") => run_two_pool(input),
        Some("legacy_winrate") => run_legacy_winrate(input),
        Some("reputation") => run_reputation(input),
        Some(other) => Err(MechanismError::invalid(format!(
            "unknown omega mode `{other}`; expected two_pool, legacy_winrate or reputation"
        ))),
        None => Err(MechanismError::invalid(
            "`mode` must be one of the strings two_pool, legacy_winrate, reputation",
        )),
    }
}

/// One model entry of the scoring API's `/all-model-scores` answer for a uid.
///
/// Upstream reads these with `dict.get`, so a missing key and a `null` value are different
/// things for `score` (missing defaults to 0 and counts as scored in the legacy path; `null`
/// means "failed") and for `block` (missing defaults to 0, `null` stays unknown). The double
/// `Option`s keep that difference: outer `None` = key absent, `Some(None)` = `null`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ModelEntry {
    #[serde(default)]
    pub competition_id: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub score: Option<Option<f64>>,
    #[serde(default, deserialize_with = "present")]
    pub block: Option<Option<i64>>,
    #[serde(default)]
    pub model_hash: Option<String>,
}

/// Marks a key that is present in the JSON (even as `null`) as `Some(..)`, so that serde's
/// `default` only applies to keys that are absent.
fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// Reads the optional top-level field `name` (absent and `null` both give `T`'s reading of
/// `null`), naming the field in any error.
pub(crate) fn optional_field<T: DeserializeOwned>(
    input: &Value,
    name: &str,
) -> Result<Option<T>, MechanismError> {
    match input.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => parse(value, name).map(Some),
    }
}

/// Reads the required top-level field `name`, naming the field in any error.
pub(crate) fn required_field<T: DeserializeOwned>(
    input: &Value,
    name: &str,
) -> Result<T, MechanismError> {
    optional_field(input, name)?
        .ok_or_else(|| MechanismError::invalid(format!("`{name}` is missing or null")))
}

/// The API's scores keyed by uid, read from the input's `all_model_scores` (absent or `null`
/// = no scores). Keys must be canonical decimal uids: upstream looks entries up with
/// `str(uid)` (two_pool) or converts keys with `int(uid)` (legacy), so any other key would be
/// either silently unreachable or a crash; we refuse it instead.
pub(crate) fn parse_model_scores(
    input: &Value,
) -> Result<BTreeMap<u64, Vec<ModelEntry>>, MechanismError> {
    let raw: BTreeMap<String, Value> =
        optional_field(input, "all_model_scores")?.unwrap_or_default();
    let mut by_uid = BTreeMap::new();
    for (key, value) in raw {
        let entries: Vec<ModelEntry> = parse(&value, format_args!("all_model_scores[{key}]"))?;
        let uid: u64 = key.parse().map_err(|_| {
            MechanismError::invalid(format!(
                "all_model_scores: key `{key}` is not a uid (a non-negative decimal integer)"
            ))
        })?;
        if uid.to_string() != key {
            return Err(MechanismError::invalid(format!(
                "all_model_scores: key `{key}` is not written as a plain uid (expected `{uid}`)"
            )));
        }
        for (position, entry) in entries.iter().enumerate() {
            if let Some(Some(score)) = entry.score
                && !score.is_finite()
            {
                return Err(MechanismError::invalid(format!(
                    "all_model_scores[{key}][{position}].score is not a finite number"
                )));
            }
        }
        by_uid.insert(uid, entries);
    }
    Ok(by_uid)
}

/// Checks the metagraph size: uids are emitted as u16 on chain, so at most 65536 of them.
pub(crate) fn metagraph_size(n: u64) -> Result<usize, MechanismError> {
    if n > u64::from(u16::MAX) + 1 {
        return Err(MechanismError::invalid(format!(
            "n = {n}: a metagraph holds at most 65536 uids"
        )));
    }
    usize::try_from(n).map_err(|_| MechanismError::invalid(format!("n = {n} is too large")))
}

/// Checks previous weights: finite and non-negative (the chain cannot take others).
pub(crate) fn check_previous_weights(weights: &[f64]) -> Result<(), MechanismError> {
    for (uid, weight) in weights.iter().enumerate() {
        if !weight.is_finite() || *weight < 0.0 {
            return Err(MechanismError::invalid(format!(
                "previous_weights[{uid}] = {weight}: weights must be finite and >= 0"
            )));
        }
    }
    Ok(())
}

/// The float32 weight vector over uids `0..n` as the output's `weights` list and its chain
/// form `{"uids": [...], "weights": [...]}` (the SDK's u16 conversion of a float32 tensor).
pub(crate) fn weights_and_u16(weights: &[f32]) -> Result<(Value, Value), MechanismError> {
    let as_f64: Vec<f64> = weights.iter().copied().map(f64::from).collect();
    let mut uids = Vec::with_capacity(weights.len());
    for uid in 0..weights.len() {
        uids.push(u16::try_from(uid).map_err(|_| {
            MechanismError::invalid(format!("uid {uid} does not fit the chain's u16 uids"))
        })?);
    }
    let emitted = to_u16(&uids, &as_f64, Precision::Float32)?;
    let chain = serde_json::json!({"uids": emitted.uids, "weights": emitted.weights});
    Ok((serde_json::json!(as_f64), chain))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn uid_keys_must_be_plain_decimal_integers() {
        let good = json!({"all_model_scores": {"7": [], "12": [{"score": null}]}});
        let parsed = parse_model_scores(&good).unwrap();
        assert_eq!(parsed.keys().copied().collect::<Vec<_>>(), vec![7, 12]);
        assert_eq!(parsed[&12][0].score, Some(None));
        for bad in ["-1", "07", "+7", "seven", "1.0", ""] {
            let input = json!({"all_model_scores": {bad: []}});
            assert!(parse_model_scores(&input).is_err(), "{bad}");
        }
        assert!(parse_model_scores(&json!({})).unwrap().is_empty());
    }

    #[test]
    fn a_missing_score_and_a_null_score_stay_distinct() {
        let input = json!({"all_model_scores": {"1": [{"competition_id": "v4"},
                                                      {"score": null, "block": null}]}});
        let parsed = parse_model_scores(&input).unwrap();
        assert_eq!(parsed[&1][0].score, None);
        assert_eq!(parsed[&1][0].block, None);
        assert_eq!(parsed[&1][1].score, Some(None));
        assert_eq!(parsed[&1][1].block, Some(None));
    }
}
