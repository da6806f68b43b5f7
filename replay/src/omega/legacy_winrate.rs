//! `_try_win_rate_competition`: the OMEGA validator's earlier weights, still in the file but no
//! longer called (specs/scoring.md, section 4.2).
//!
//! Per competition: a softmax of `score / 0.01` over every metagraph uid, scaled to the
//! competition's reward share; a model that duplicates an older model's hash scores 0; uids
//! without a usable score get 0. The result is blended into the previous weights with an EMA
//! that keeps 90 % of the old weights. The validator computes in torch float32, so this
//! module does too.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use serde_json::{Value, json};

use super::float32::{softmax, sum};
use super::{
    DEFAULT_COMPETITION_ID, ModelEntry, check_previous_weights, metagraph_size, optional_field,
    parse_model_scores, required_field, weights_and_u16,
};
use crate::MechanismError;

/// Softmax temperature (`constants.temperature`).
pub const TEMPERATURE: f32 = 0.01;
/// Share of the old weights kept by the EMA (`constants.alpha`).
pub const OLD_WEIGHT_SHARE: f32 = 0.9;
/// Share of the new weights in the EMA: upstream writes `1 - alpha`, which in Python floats is
/// 0.09999999999999998 and becomes 0.1 once torch casts it to float32.
pub const NEW_WEIGHT_SHARE: f32 = 0.1;
/// Upstream starts from `failed_uids = set(range(256))`: only uids below this can be marked
/// as scored, so larger metagraphs are outside what the code can run.
pub const TRACKED_UIDS: usize = 256;

/// One entry of `COMPETITION_SCHEDULE`.
#[derive(Debug, Clone, Deserialize)]
struct Competition {
    competition_id: String,
    reward_percentage: f64,
}

/// What one competition contributes, kept for the output.
struct CompetitionResult {
    competition_id: String,
    scores: BTreeMap<usize, f64>,
    penalized_for_duplicate_hash: BTreeSet<usize>,
}

/// Runs the legacy win-rate mechanism on a `{"mode": "legacy_winrate", ...}` input.
///
/// Returns `{"status": "ok", "weights": [...], "u16": {...}, "competitions": [...]}` where
/// `weights` is the EMA state after this run (what the validator would set on chain).
pub fn run_legacy_winrate(input: &Value) -> Result<Value, MechanismError> {
    let n = metagraph_size(required_field(input, "n")?)?;
    if n > TRACKED_UIDS {
        return Err(MechanismError::invalid(format!(
            "n = {n}: the legacy win-rate code tracks failures for uids 0..255 only \
             (`failed_uids = set(range(256))`), so it cannot run on a larger metagraph"
        )));
    }
    let competitions: Vec<Competition> =
        optional_field(input, "competitions")?.unwrap_or_else(|| {
            vec![Competition {
                competition_id: DEFAULT_COMPETITION_ID.to_string(),
                reward_percentage: 1.0,
            }]
        });
    let mut seen = BTreeSet::new();
    for competition in &competitions {
        if !seen.insert(competition.competition_id.as_str()) {
            // Upstream would remove the same uid from `failed_uids` twice and raise KeyError.
            return Err(MechanismError::invalid(format!(
                "competitions: `{}` is listed twice",
                competition.competition_id
            )));
        }
        let share = competition.reward_percentage;
        if !share.is_finite() || share < 0.0 {
            return Err(MechanismError::invalid(format!(
                "competitions[{}].reward_percentage = {share}: must be finite and >= 0",
                competition.competition_id
            )));
        }
    }
    let model_scores = parse_model_scores(input)?;
    let previous_weights: Vec<f64> = optional_field(input, "previous_weights")?.unwrap_or_default();
    check_previous_weights(&previous_weights)?;

    let mut failed = [true; TRACKED_UIDS];
    let mut new_weights = vec![0.0f32; n];
    let mut results = Vec::with_capacity(competitions.len());
    for competition in &competitions {
        let result = run_competition(n, competition, &model_scores, &mut failed)?;
        let logits: Vec<f32> = (0..n)
            .map(|uid| result.scores.get(&uid).copied().unwrap_or(0.0) as f32 / TEMPERATURE)
            .collect();
        let mut competition_weights = softmax(&logits);
        // `curr *= scale / curr.sum()`: one float32 factor applied to every weight.
        let factor = competition.reward_percentage as f32 / sum(&competition_weights);
        for weight in &mut competition_weights {
            *weight *= factor;
        }
        for (total, weight) in new_weights.iter_mut().zip(&competition_weights) {
            *total += weight;
        }
        // Uids that have not been scored in any competition so far get nothing (upstream
        // zeroes them after every competition).
        for (uid, weight) in new_weights.iter_mut().enumerate() {
            if failed.get(uid).copied().unwrap_or(false) {
                *weight = 0.0;
            }
        }
        results.push(result);
    }

    // EMA with the previous weights, resized to the metagraph (cut or padded with zeros).
    let weights: Vec<f32> = (0..n)
        .map(|uid| {
            let old = previous_weights.get(uid).copied().unwrap_or(0.0) as f32;
            let blended = OLD_WEIGHT_SHARE * old + NEW_WEIGHT_SHARE * new_weights[uid];
            // `nan_to_num(0.0)`; nothing here can produce NaN from finite inputs, but the
            // step is kept as upstream has it.
            if blended.is_nan() { 0.0 } else { blended }
        })
        .collect();

    let (weights_json, chain) = weights_and_u16(&weights)?;
    let competitions_json: Vec<Value> = results
        .iter()
        .map(|result| {
            let scores: serde_json::Map<String, Value> = result
                .scores
                .iter()
                .map(|(uid, score)| (uid.to_string(), json!(score)))
                .collect();
            json!({
                "competition_id": result.competition_id,
                "scores": scores,
                "penalized_for_duplicate_hash": result.penalized_for_duplicate_hash,
            })
        })
        .collect();
    let scored_uids: Vec<usize> = (0..n)
        .filter(|&uid| !failed.get(uid).copied().unwrap_or(true))
        .collect();
    Ok(json!({
        "status": "ok",
        "competitions": competitions_json,
        "scored_uids": scored_uids,
        "weights": weights_json,
        "u16": chain,
    }))
}

/// Reads one competition's scores from the API answer, marks scored uids as no longer
/// failed, and zeroes the score of every model that duplicates an older model's hash.
///
/// Upstream defects resolved by their evident intent (specs/scoring.md lists none of them):
/// - an empty entry list for a uid makes upstream's `models_data[0]` raise IndexError before
///   its own `if not models_data: continue` runs; we skip the uid as that line intends;
/// - a first entry without `competition_id` makes `models_data[0]["competition_id"]` raise
///   KeyError; we treat it as belonging to no competition, as the live path
///   (`model_data.get("competition_id")`) does.
fn run_competition(
    n: usize,
    competition: &Competition,
    model_scores: &BTreeMap<u64, Vec<ModelEntry>>,
    failed: &mut [bool; TRACKED_UIDS],
) -> Result<CompetitionResult, MechanismError> {
    let mut scores: BTreeMap<usize, f64> = BTreeMap::new();
    let mut blocks: Vec<Option<i64>> = vec![None; n];
    let mut hashes: Vec<Option<&str>> = vec![None; n];
    // Only the first entry of a uid decides which competition the uid is in.
    for (&uid, entries) in model_scores {
        let Some(entry) = entries.first() else {
            continue;
        };
        if entry.competition_id.as_deref() != Some(competition.competition_id.as_str()) {
            continue;
        }
        let score = match entry.score {
            // `None` score: stays 0 and the uid stays failed.
            Some(None) => continue,
            Some(Some(score)) => score,
            // `model_data.get("score", 0)`: a missing score is a score of 0.
            None => 0.0,
        };
        let Some(tracked) = usize::try_from(uid)
            .ok()
            .and_then(|index| failed.get_mut(index))
        else {
            return Err(MechanismError::upstream(format!(
                "uid {uid} has a score, but upstream's `failed_uids` holds only uids 0..255 \
                 and `failed_uids.remove({uid})` raises KeyError"
            )));
        };
        *tracked = false;
        let Ok(index) = usize::try_from(uid) else {
            continue;
        };
        if index >= n {
            // Upstream stores it in its dicts but only ever reads metagraph uids.
            continue;
        }
        scores.insert(index, score);
        blocks[index] = match entry.block {
            // `model_data.get('block', 0)`.
            None => Some(0),
            Some(block) => block,
        };
        hashes[index] = entry.model_hash.as_deref().filter(|hash| !hash.is_empty());
    }

    // A model hash seen on several uids: every copy but the one with the strictly oldest
    // block scores 0 (equal blocks zero both, exactly as upstream's pairwise loop does).
    let mut penalized = BTreeSet::new();
    for uid in 0..n {
        let Some(hash) = hashes[uid] else {
            continue;
        };
        for other in 0..n {
            if other == uid || hashes[other] != Some(hash) {
                continue;
            }
            let Some(other_block) = blocks[other] else {
                continue;
            };
            let Some(block) = blocks[uid] else {
                return Err(MechanismError::invalid(format!(
                    "all_model_scores[{uid}]: block is null while its model_hash duplicates \
                     uid {other}'s; upstream would compare None with an int (TypeError)"
                )));
            };
            let newer = if block < other_block { other } else { uid };
            if let Some(score) = scores.get_mut(&newer) {
                *score = 0.0;
            }
            penalized.insert(newer);
        }
    }

    Ok(CompetitionResult {
        competition_id: competition.competition_id.clone(),
        scores,
        penalized_for_duplicate_hash: penalized,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_new_weight_share_is_what_torch_makes_of_one_minus_alpha() {
        assert_eq!((1.0f64 - 0.9) as f32, NEW_WEIGHT_SHARE);
        assert_eq!(0.9f64 as f32, OLD_WEIGHT_SHARE);
    }
}
