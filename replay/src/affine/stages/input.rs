//! Reading `stages_v2` miners the way upstream's stage 1 accepts them: malformed entries
//! are skipped rather than refused, repeated uids overwrite, and sample scores may be plain
//! numbers or sample objects.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::MechanismError;

/// One environment's data for one miner, as the API reports it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct EnvironmentData {
    pub(super) scores: Vec<f64>,
    pub(super) completeness: f64,
}

/// A miner that passed stage 1's entry checks.
#[derive(Debug, Clone)]
pub(super) struct Miner {
    pub(super) uid: i64,
    pub(super) hotkey: Value,
    pub(super) first_block: Option<i64>,
    /// Indexed like the input's `environments`; `None` where the API has no data.
    pub(super) environments: Vec<Option<EnvironmentData>>,
}

/// Environment names must be unique: upstream keys subsets by name, so a repeated name
/// would make two different subsets share one key.
pub(super) fn check_environment_names(environments: &[String]) -> Result<(), MechanismError> {
    let mut seen = BTreeSet::new();
    for name in environments {
        if !seen.insert(name) {
            return Err(MechanismError::invalid(format!(
                "environments: `{name}` is listed twice"
            )));
        }
    }
    Ok(())
}

/// Python's `int(value)` for the uid field, or `None` where upstream's conversion fails and
/// the entry is skipped: integers as they are, floats truncated toward zero, strings holding
/// a decimal integer (surrounding whitespace allowed).
fn uid_of(value: &Value) -> Option<i64> {
    match value {
        Value::Number(number) => number.as_i64().or_else(|| {
            let float = number.as_f64()?;
            // `int(float)` truncates; values beyond i64 are not uids.
            let truncated = float.trunc();
            (truncated.abs() < 9.0e18).then_some(truncated as i64)
        }),
        Value::String(text) => text.trim().parse::<i64>().ok(),
        _ => None,
    }
}

/// Whether a required entry field counts as missing upstream (absent, null or empty).
fn is_missing(entry: &serde_json::Map<String, Value>, field: &str) -> bool {
    match entry.get(field) {
        None | Some(Value::Null) => true,
        Some(Value::String(text)) => text.is_empty(),
        Some(_) => false,
    }
}

/// Stage 1's entry checks. Entries without a usable uid, or missing hotkey, model revision
/// or model repository, are skipped as upstream does. A repeated uid replaces the earlier
/// entry's data but keeps its position, as assigning to an existing Python dict key does.
pub(super) fn read_miners(
    entries: &[Value],
    environments: &[String],
) -> Result<Vec<Miner>, MechanismError> {
    let mut miners: Vec<Miner> = Vec::new();
    let mut position_of_uid: BTreeMap<i64, usize> = BTreeMap::new();
    for (position, entry) in entries.iter().enumerate() {
        let Some(object) = entry.as_object() else {
            return Err(MechanismError::invalid(format!(
                "miners[{position}] must be an object"
            )));
        };
        let Some(uid) = object.get("uid").and_then(uid_of) else {
            continue;
        };
        if ["hotkey", "model_revision", "model_repo"]
            .iter()
            .any(|field| is_missing(object, field))
        {
            continue;
        }
        let first_block = match object.get("first_block") {
            None | Some(Value::Null) => None,
            Some(value) => Some(value.as_i64().ok_or_else(|| {
                MechanismError::invalid(format!(
                    "miners[{position}].first_block must be an integer block number or null, \
                     got {value}"
                ))
            })?),
        };
        let environment_map = match object.get("env") {
            None | Some(Value::Null) => None,
            Some(Value::Object(map)) => Some(map),
            Some(other) => {
                return Err(MechanismError::invalid(format!(
                    "miners[{position}].env must be an object keyed by environment, got {other}"
                )));
            }
        };
        let mut data = Vec::with_capacity(environments.len());
        for name in environments {
            let value = environment_map.and_then(|map| map.get(name));
            data.push(match value {
                None | Some(Value::Null) => None,
                Some(value) => Some(read_environment(value, position, name)?),
            });
        }
        let miner = Miner {
            uid,
            hotkey: object.get("hotkey").cloned().unwrap_or(Value::Null),
            first_block,
            environments: data,
        };
        match position_of_uid.get(&uid) {
            Some(&existing) => {
                if let Some(slot) = miners.get_mut(existing) {
                    *slot = miner;
                }
            }
            None => {
                position_of_uid.insert(uid, miners.len());
                miners.push(miner);
            }
        }
    }
    Ok(miners)
}

/// One environment entry: `scores` (numbers, or sample objects whose missing `score` counts
/// as 0 as upstream's `sample.get("score", 0)` does) and `completeness` (missing counts as 0,
/// so the environment is invalid).
fn read_environment(
    value: &Value,
    position: usize,
    name: &str,
) -> Result<EnvironmentData, MechanismError> {
    let where_ = || format!("miners[{position}].env[{name}]");
    let Some(object) = value.as_object() else {
        return Err(MechanismError::invalid(format!(
            "{} must be an object with `scores` and `completeness`",
            where_()
        )));
    };
    let mut scores = Vec::new();
    match object.get("scores") {
        None | Some(Value::Null) => {}
        Some(Value::Array(samples)) => {
            for (index, sample) in samples.iter().enumerate() {
                let score = match sample {
                    Value::Number(number) => number.as_f64(),
                    Value::Object(fields) => match fields.get("score") {
                        None => Some(0.0),
                        Some(score) => score.as_f64(),
                    },
                    _ => None,
                };
                // JSON numbers are always finite; a NaN or infinite score cannot be written,
                // so anything that is not a number is refused here.
                let Some(score) = score else {
                    return Err(MechanismError::invalid(format!(
                        "{}.scores[{index}] must be a finite number (or an object with a \
                         numeric `score`), got {sample}",
                        where_()
                    )));
                };
                scores.push(score);
            }
        }
        Some(other) => {
            return Err(MechanismError::invalid(format!(
                "{}.scores must be a list, got {other}",
                where_()
            )));
        }
    }
    let completeness = match object.get("completeness") {
        None | Some(Value::Null) => 0.0,
        Some(value) => value.as_f64().ok_or_else(|| {
            MechanismError::invalid(format!(
                "{}.completeness must be a number, got {value}",
                where_()
            ))
        })?,
    };
    Ok(EnvironmentData {
        scores,
        completeness,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn uids_convert_like_python_int() {
        assert_eq!(uid_of(&json!(7)), Some(7));
        assert_eq!(uid_of(&json!("12")), Some(12));
        assert_eq!(uid_of(&json!(" 3 ")), Some(3));
        assert_eq!(uid_of(&json!(4.9)), Some(4));
        assert_eq!(uid_of(&json!("x")), None);
        assert_eq!(uid_of(&json!(null)), None);
    }
}
