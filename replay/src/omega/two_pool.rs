//! `run_baseline_incentive`: the live two-pool weights of the OMEGA validator
//! (specs/scoring.md, section 4.1).
//!
//! Up to three miners above the baseline share 75 % by a sharp softmax of their scores; up to
//! ten further miners with a positive score share 25 % by a softmax of reputation and score.
//! With nobody above the baseline the 75 % go to the burn uid 111. The validator computes the
//! weights in torch float32, so this module does too.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::float32::{softmax, sum};
use super::{
    DEFAULT_COMPETITION_ID, ModelEntry, check_previous_weights, metagraph_size, optional_field,
    parse_model_scores, required_field, weights_and_u16,
};
use crate::MechanismError;
use crate::error::parse;

/// Share of the weights for the miners above the baseline.
pub const ABOVE_POOL_SHARE: f32 = 0.75;
/// Share of the weights for the miners below the baseline.
pub const BELOW_POOL_SHARE: f32 = 0.25;
/// At most this many miners enter the above-baseline pool (`PLAYERS_IN_ABOVE_BASELINE`).
pub const ABOVE_POOL_PLAYERS: usize = 3;
/// At most this many miners enter the below-baseline pool (`PLAYERS_IN_BELOW_BASELINE`).
pub const BELOW_POOL_PLAYERS: usize = 10;
/// The uid that receives the above pool's share when nobody beats the baseline (`BURN_UID`).
pub const BURN_UID: usize = 111;
/// Softmax temperature of the above pool (`constants.temperature`).
pub const TEMPERATURE: f32 = 0.01;
/// Weight of reputation against score in the below pool (`W_REP`).
pub const REPUTATION_WEIGHT: f32 = 0.7;
/// Weight of score in the below pool: upstream writes `1 - W_REP`, which in Python floats is
/// 0.30000000000000004 and becomes 0.3 once torch casts it to float32.
pub const SCORE_WEIGHT: f32 = 0.3;
/// Reputation of a hotkey the reputation API does not know (or knows as `null`).
pub const DEFAULT_REPUTATION: f64 = 0.5;

/// The fields of a two_pool input (specs/mechanism-io/README.md).
struct TwoPoolInput {
    n: u64,
    hotkeys: Vec<String>,
    model_scores: BTreeMap<u64, Vec<ModelEntry>>,
    competition_id: Option<String>,
    baseline: Option<f64>,
    reputations: BTreeMap<String, ReputationRecord>,
    previous_weights: Option<Vec<f64>>,
}

impl TwoPoolInput {
    /// Reads every field on its own so that an error names the field it is about.
    fn read(input: &Value) -> Result<Self, MechanismError> {
        let raw_reputations: BTreeMap<String, Value> =
            optional_field(input, "reputations")?.unwrap_or_default();
        let mut reputations = BTreeMap::new();
        for (hotkey, value) in raw_reputations {
            let record: ReputationRecord = parse(&value, format_args!("reputations[{hotkey}]"))?;
            reputations.insert(hotkey, record);
        }
        Ok(TwoPoolInput {
            n: required_field(input, "n")?,
            hotkeys: required_field(input, "hotkeys")?,
            model_scores: parse_model_scores(input)?,
            competition_id: optional_field(input, "competition_id")?,
            baseline: optional_field(input, "baseline")?,
            reputations,
            previous_weights: optional_field(input, "previous_weights")?,
        })
    }
}

/// One hotkey's record from the reputation API.
#[derive(Debug, Deserialize)]
struct ReputationRecord {
    #[serde(default)]
    reputation: Option<f64>,
}

/// Runs the two-pool mechanism on a `{"mode": "two_pool", ...}` input.
///
/// Returns `{"status": "ok", "above": [...], "below": [...], "scores": {uid: score},
/// "weights": [...], "u16": {...}}`; with a missing or zero baseline the validator keeps its
/// previous weights, reported as `{"status": "unchanged", "weights": previous, ...}`. With
/// nobody above the baseline on a metagraph of at most 111 uids the validator fails (it
/// indexes uid 111); that is reported as an upstream error.
pub fn run_two_pool(input: &Value) -> Result<Value, MechanismError> {
    let input = TwoPoolInput::read(input)?;
    let n = metagraph_size(input.n)?;
    if input.hotkeys.len() != n {
        return Err(MechanismError::invalid(format!(
            "hotkeys has {} entries but n = {n}; the metagraph gives one hotkey per uid",
            input.hotkeys.len()
        )));
    }
    let competition_id = input
        .competition_id
        .as_deref()
        .unwrap_or(DEFAULT_COMPETITION_ID);
    let model_scores = &input.model_scores;
    if let Some(baseline) = input.baseline
        && !baseline.is_finite()
    {
        return Err(MechanismError::invalid("baseline is not a finite number"));
    }
    let reputations = &input.reputations;
    for (hotkey, record) in reputations {
        if let Some(reputation) = record.reputation
            && !reputation.is_finite()
        {
            return Err(MechanismError::invalid(format!(
                "reputations[{hotkey}].reputation is not a finite number"
            )));
        }
    }
    let previous_weights = input.previous_weights.unwrap_or_else(|| vec![0.0; n]);
    check_previous_weights(&previous_weights)?;

    // Step 1: one score per metagraph uid, the first entry of this competition.
    let scores = scores_per_uid(n, model_scores, competition_id);
    // Step 2: uids by score, best first. The sort is stable and starts from uid order, so
    // equal scores keep ascending uid order (Python's `sorted(..., reverse=True)` is stable).
    let mut ranked: Vec<usize> = (0..n).collect();
    // Scores are finite (checked on input), so `partial_cmp` is total here and, like Python,
    // treats -0.0 and 0.0 as equal.
    ranked.sort_by(|&a, &b| {
        scores[b]
            .partial_cmp(&scores[a])
            .unwrap_or(Ordering::Equal)
            .then(a.cmp(&b))
    });

    // Step 3: `if not baseline: return` keeps the weights the validator already holds.
    let baseline = match input.baseline {
        Some(baseline) if baseline != 0.0 => baseline,
        _ => return unchanged(&previous_weights, n),
    };

    // Step 4: reputation per uid through its hotkey; unknown or null -> 0.5.
    let reputation_of = |uid: usize| -> f64 {
        input
            .hotkeys
            .get(uid)
            .and_then(|hotkey| reputations.get(hotkey))
            .and_then(|record| record.reputation)
            .unwrap_or(DEFAULT_REPUTATION)
    };

    // Step 5: split. A miner above the baseline that finds the above pool full competes in
    // the below pool.
    let mut above: Vec<usize> = Vec::new();
    let mut below_candidates: Vec<usize> = Vec::new();
    for &uid in &ranked {
        let score = scores[uid];
        if score > baseline && above.len() < ABOVE_POOL_PLAYERS {
            above.push(uid);
        } else if score > 0.0 {
            below_candidates.push(uid);
        }
    }
    // Upstream sorts the candidates by score again (stably); they already are in that order.
    let below: Vec<usize> = below_candidates
        .into_iter()
        .take(BELOW_POOL_PLAYERS)
        .collect();

    // Steps 6 and 7, in float32.
    let mut weights = vec![0.0f32; n];
    if above.is_empty() {
        let Some(burn) = weights.get_mut(BURN_UID) else {
            return Err(MechanismError::upstream(format!(
                "no miner is above the baseline, so the validator burns 75 % by assigning it \
                 to uid {BURN_UID}, which does not exist on a metagraph of {n} uids \
                 (upstream raises IndexError and sets no weights)"
            )));
        };
        *burn = ABOVE_POOL_SHARE;
    } else {
        let logits: Vec<f32> = above
            .iter()
            .map(|&uid| scores[uid] as f32 / TEMPERATURE)
            .collect();
        for (&uid, share) in above.iter().zip(softmax(&logits)) {
            weights[uid] = ABOVE_POOL_SHARE * share;
        }
    }
    if !below.is_empty() {
        let logits: Vec<f32> = below
            .iter()
            .map(|&uid| {
                REPUTATION_WEIGHT * reputation_of(uid) as f32 + SCORE_WEIGHT * scores[uid] as f32
            })
            .collect();
        for (&uid, share) in below.iter().zip(softmax(&logits)) {
            weights[uid] = BELOW_POOL_SHARE * share;
        }
    }
    // Step 7: normalise (with an empty below pool the above pool ends up with 100 %).
    let total = sum(&weights);
    if total > 0.0 {
        for weight in &mut weights {
            *weight /= total;
        }
    }

    let (weights_json, chain) = weights_and_u16(&weights)?;
    let mut pool_scores = Map::new();
    let mut pool_reputations = Map::new();
    for &uid in above.iter().chain(&below) {
        pool_scores.insert(uid.to_string(), json!(scores[uid]));
        pool_reputations.insert(uid.to_string(), json!(reputation_of(uid)));
    }
    Ok(json!({
        "status": "ok",
        "competition_id": competition_id,
        "baseline": baseline,
        "above": above,
        "below": below,
        "scores": pool_scores,
        "reputations": pool_reputations,
        "weights": weights_json,
        "u16": chain,
    }))
}

/// Each uid's score: the first model entry whose `competition_id` matches; a `null` score
/// stays 0, a missing one reads as 0 (`model_data.get("score", 0.0)`). Entries without a
/// `competition_id` never match. Keys of uids outside the metagraph are not looked up.
fn scores_per_uid(
    n: usize,
    model_scores: &BTreeMap<u64, Vec<ModelEntry>>,
    competition_id: &str,
) -> Vec<f64> {
    let mut scores = vec![0.0f64; n];
    for (uid, score) in scores.iter_mut().enumerate() {
        let Some(entries) = model_scores.get(&(uid as u64)) else {
            continue;
        };
        let first_match = entries
            .iter()
            .find(|entry| entry.competition_id.as_deref() == Some(competition_id));
        if let Some(entry) = first_match {
            *score = match entry.score {
                Some(Some(value)) => value,
                Some(None) | None => 0.0,
            };
        }
    }
    scores
}

/// The answer when the validator returns early: its weights stay what they were.
fn unchanged(previous_weights: &[f64], n: usize) -> Result<Value, MechanismError> {
    if previous_weights.len() != n {
        return Err(MechanismError::invalid(format!(
            "previous_weights has {} entries but n = {n}; the validator would hand both to \
             set_weights, which needs one weight per uid",
            previous_weights.len()
        )));
    }
    let as_f32: Vec<f32> = previous_weights.iter().map(|&value| value as f32).collect();
    let (weights_json, chain) = weights_and_u16(&as_f32)?;
    Ok(json!({
        "status": "unchanged",
        "reason": "baseline missing or 0: run_baseline_incentive returns without updating weights",
        "above": [],
        "below": [],
        "scores": {},
        "weights": weights_json,
        "u16": chain,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(competition_id: Option<&str>, score: Option<Option<f64>>) -> ModelEntry {
        ModelEntry {
            competition_id: competition_id.map(str::to_string),
            score,
            block: None,
            model_hash: None,
        }
    }

    #[test]
    fn the_first_entry_of_the_competition_gives_the_score() {
        let mut model_scores = BTreeMap::new();
        model_scores.insert(
            0,
            vec![
                entry(Some("v2"), Some(Some(0.9))),
                entry(None, Some(Some(0.8))),
                entry(Some("v4"), Some(Some(0.4))),
                entry(Some("v4"), Some(Some(0.7))),
            ],
        );
        model_scores.insert(1, vec![entry(Some("v4"), Some(None))]);
        model_scores.insert(2, vec![entry(Some("v4"), None)]);
        model_scores.insert(9, vec![entry(Some("v4"), Some(Some(0.5)))]);
        assert_eq!(scores_per_uid(3, &model_scores, "v4"), vec![0.4, 0.0, 0.0]);
        assert_eq!(scores_per_uid(3, &model_scores, "v2"), vec![0.9, 0.0, 0.0]);
    }

    #[test]
    fn the_score_weight_is_what_torch_makes_of_one_minus_the_reputation_weight() {
        assert_eq!((1.0f64 - 0.7) as f32, SCORE_WEIGHT);
        assert_eq!(0.7f64 as f32, REPUTATION_WEIGHT);
    }
}
