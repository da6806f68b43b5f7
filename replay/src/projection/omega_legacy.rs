//! omega `legacy_winrate` and the `reputation` job driven by the log.
//!
//! Two projections over the same events: [`OmegaLegacyWinrate`] (the input of
//! `_try_win_rate_competition`) and [`OmegaReputation`] (the input of one run of
//! `scripts/update_reputation.py`). They read the two_pool projection's conventions
//! ([`super::omega`]) and add what these modes need.
//!
//! How an omega validator records its inputs (the event conventions these folds read):
//! - `LogOpened` / `ProfileChanged` with profile [`PROFILE`]: `parameters_json` may set
//!   `competitions`, upstream's COMPETITION_SCHEDULE as
//!   `[{"competition_id": "v4", "reward_percentage": 1.0}, ...]` (legacy_winrate; absent =
//!   the mechanism's default, `v4` with the whole reward), and `competition_id` (reputation:
//!   the competition whose scores and baseline the job reads; default `v4`). A malformed
//!   value is refused. A later profile event replaces the earlier one.
//! - `MetagraphObserved`: the uids (neurons listed by uid `0..n`) and their hotkeys
//!   (`AccountId::to_ss58()`). legacy_winrate's `n` is the newest metagraph's size; the
//!   reputation job's `active_hotkeys` are the newest metagraph's hotkeys.
//! - `ExternalScoreRecorded` from [`SOURCE_MODEL_SCORES`]: one answer of the scoring API for
//!   one competition, `extra_json`
//!   `{"competition_id": "v4", "entries": [{"block": 3011418, "model_hash": "6b1f.."}, ...]}`.
//!   `scores[i]` is the score of the i-th model entry and `entries[i]` (optional; when given,
//!   exactly one per score) holds the rest of it: `block` (integer or `null`; absent = absent
//!   in the API answer, which upstream reads as 0), `model_hash` (string or `null`) and
//!   `"score": null` when the API's score was `null` (the `scores` value must then be 0).
//!   A uid may appear several times (the API lists every model of a uid; upstream reads the
//!   first). A new answer for a competition replaces that competition's previous one. When a
//!   uid appears in the answers of several competitions, the entries of the newest answer come
//!   first in its `all_model_scores` list. The reputation job stores each score under the
//!   uid's hotkey at the time of the event (its table is keyed by hotkey); a uid outside the
//!   metagraph is refused there.
//! - `ExternalScoreRecorded` from [`SOURCE_BASELINE`], `extra_json`
//!   `{"competition_id": "v4", "baseline": 0.55}` (or `null`: the API had none).
//! - `ExternalScoreRecorded` from [`SOURCE_REPUTATION`]: the reputation table the job starts
//!   from, one reputation per uid, stored under the uid's hotkey at that moment; replaces the
//!   whole table (a validator records the job's result the same way). Hotkeys that have since
//!   left the metagraph stay in the table until the job deregisters them.
//! - `WeightsComputed` with mechanism [`LEGACY_MECHANISM`]: the EMA state the next legacy
//!   run blends into (`previous_weights`, one raw weight per uid, missing uids 0).
//!
//! Every value is finite; scores, reputations and weights that are not are refused, as are
//! inconsistent events. A refused event leaves the state unchanged.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use weightlog_schema::event::{ExternalScoreRecorded, WeightsComputed};
use weightlog_schema::{Event, Payload};

pub use super::omega::{
    DEFAULT_COMPETITION, PROFILE, SOURCE_BASELINE, SOURCE_MODEL_SCORES, SOURCE_REPUTATION,
};
use super::{Projection, hotkeys_in_uid_order, invalid, parse_event_json, profile_parameters};
use crate::MechanismError;

/// The `mechanism` of the legacy win-rate `WeightsComputed` events.
pub const LEGACY_MECHANISM: &str = "omega/legacy_winrate";

/// One entry of the profile's `competitions` (upstream COMPETITION_SCHEDULE).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompetitionShare {
    pub competition_id: String,
    pub reward_percentage: f64,
}

/// One model entry of a scoring API answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelEntry {
    pub uid: u16,
    /// `None`: the API's score was `null`.
    pub score: Option<f64>,
    /// Outer `None`: no block in the answer; `Some(None)`: `null`.
    pub block: Option<Option<i64>>,
    pub model_hash: Option<String>,
}

/// The newest API answer of one competition.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelRound {
    /// The seq of the event that recorded it (orders competitions, newest first).
    pub seq: u64,
    pub entries: Vec<ModelEntry>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LegacyWinrateState {
    /// From the profile; `None`: the mechanism's default schedule.
    pub competitions: Option<Vec<CompetitionShare>>,
    /// The newest metagraph's size; `None` until one is observed.
    pub n: Option<u64>,
    /// competition -> its newest API answer.
    pub model_scores: BTreeMap<String, ModelRound>,
    /// The newest recorded decision (the EMA state), one raw weight per uid.
    pub previous_weights: Option<Vec<f64>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReputationState {
    /// From the profile; `None` means the default competition.
    pub competition_id: Option<String>,
    /// SS58 hotkey of every uid, from the newest metagraph; `None` until one is observed.
    pub hotkeys: Option<Vec<String>>,
    /// hotkey -> reputation, the newest recorded table.
    pub reputations: BTreeMap<String, f64>,
    /// competition -> hotkey -> score (`None`: the API's score was `null`).
    pub scores: BTreeMap<String, BTreeMap<String, Option<f64>>>,
    /// competition -> baseline (`None`: the API had none).
    pub baselines: BTreeMap<String, Option<f64>>,
}

/// The omega legacy win-rate projection.
#[derive(Debug, Clone, Copy, Default)]
pub struct OmegaLegacyWinrate;

/// The omega reputation-job projection.
#[derive(Debug, Clone, Copy, Default)]
pub struct OmegaReputation;

fn parse_parameters(seq: u64, parameters_json: &str) -> Result<Value, MechanismError> {
    let parameters: Value = parse_event_json(seq, "profile parameters", parameters_json)?;
    if !parameters.is_object() {
        return Err(invalid(seq, "profile parameters must be a JSON object"));
    }
    Ok(parameters)
}

fn profile_competitions(
    seq: u64,
    parameters: &Value,
) -> Result<Option<Vec<CompetitionShare>>, MechanismError> {
    let competitions = match parameters.get("competitions") {
        None | Some(Value::Null) => return Ok(None),
        Some(value) => value,
    };
    let competitions: Vec<CompetitionShare> = serde_json::from_value(competitions.clone())
        .map_err(|error| {
            invalid(
                seq,
                format!(
                    "profile `competitions` must be a list of \
                     {{\"competition_id\": string, \"reward_percentage\": number}}: {error}"
                ),
            )
        })?;
    let mut seen = BTreeSet::new();
    for competition in &competitions {
        if !seen.insert(competition.competition_id.as_str()) {
            return Err(invalid(
                seq,
                format!(
                    "profile `competitions` lists `{}` twice",
                    competition.competition_id
                ),
            ));
        }
        let share = competition.reward_percentage;
        if !share.is_finite() || share < 0.0 {
            return Err(invalid(
                seq,
                format!(
                    "profile `competitions`: reward_percentage of `{}` is {share}; it must be \
                     finite and >= 0",
                    competition.competition_id
                ),
            ));
        }
    }
    Ok(Some(competitions))
}

fn profile_competition(seq: u64, parameters: &Value) -> Result<Option<String>, MechanismError> {
    match parameters.get("competition_id") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(competition)) => Ok(Some(competition.clone())),
        Some(other) => Err(invalid(
            seq,
            format!("profile `competition_id` must be a string, not {other}"),
        )),
    }
}

/// `competition_id` of a model-scores or baseline event.
fn extra_competition(seq: u64, extra: &Value) -> Result<String, MechanismError> {
    match extra.get("competition_id") {
        Some(Value::String(competition)) => Ok(competition.clone()),
        _ => Err(invalid(
            seq,
            "extra_json must hold `competition_id` (a string)",
        )),
    }
}

fn parse_extra(seq: u64, external: &ExternalScoreRecorded) -> Result<Value, MechanismError> {
    let extra: Value = parse_event_json(seq, "extra_json is not JSON", &external.extra_json)?;
    if !extra.is_object() {
        return Err(invalid(seq, "extra_json must be a JSON object"));
    }
    Ok(extra)
}

/// One API answer: its competition and its model entries, in the order recorded.
fn model_round(
    seq: u64,
    external: &ExternalScoreRecorded,
) -> Result<(String, Vec<ModelEntry>), MechanismError> {
    let extra = parse_extra(seq, external)?;
    let competition = extra_competition(seq, &extra)?;
    let described: Option<&Vec<Value>> = match extra.get("entries") {
        None | Some(Value::Null) => None,
        Some(Value::Array(entries)) => {
            if entries.len() != external.scores.len() {
                return Err(invalid(
                    seq,
                    format!(
                        "extra_json `entries` has {} entries for {} scores; there must be one \
                         per score",
                        entries.len(),
                        external.scores.len()
                    ),
                ));
            }
            Some(entries)
        }
        Some(_) => return Err(invalid(seq, "extra_json `entries` must be a list")),
    };
    let mut entries = Vec::with_capacity(external.scores.len());
    for (position, score) in external.scores.iter().enumerate() {
        if !score.score.is_finite() {
            return Err(invalid(
                seq,
                format!("the score of uid {} is not a finite number", score.uid),
            ));
        }
        let mut entry = ModelEntry {
            uid: score.uid,
            score: Some(score.score),
            block: None,
            model_hash: None,
        };
        if let Some(described) = described {
            let Value::Object(fields) = &described[position] else {
                return Err(invalid(
                    seq,
                    format!("extra_json entries[{position}] must be an object"),
                ));
            };
            for (key, value) in fields {
                match (key.as_str(), value) {
                    ("block", Value::Null) => entry.block = Some(None),
                    ("block", block) => {
                        let block = block.as_i64().ok_or_else(|| {
                            invalid(
                                seq,
                                format!("extra_json entries[{position}].block must be an integer or null"),
                            )
                        })?;
                        entry.block = Some(Some(block));
                    }
                    ("model_hash", Value::Null) => {}
                    ("model_hash", Value::String(hash)) => entry.model_hash = Some(hash.clone()),
                    ("score", Value::Null) => {
                        if score.score != 0.0 {
                            return Err(invalid(
                                seq,
                                format!(
                                    "extra_json entries[{position}] says the score of uid {} was \
                                     null, but the recorded score is {}, not 0",
                                    score.uid, score.score
                                ),
                            ));
                        }
                        entry.score = None;
                    }
                    _ => {
                        return Err(invalid(
                            seq,
                            format!(
                                "extra_json entries[{position}]: unexpected `{key}`: {value} \
                                 (expected block, model_hash, or \"score\": null)"
                            ),
                        ));
                    }
                }
            }
        }
        entries.push(entry);
    }
    Ok((competition, entries))
}

fn baseline(
    seq: u64,
    external: &ExternalScoreRecorded,
) -> Result<(String, Option<f64>), MechanismError> {
    let extra = parse_extra(seq, external)?;
    let competition = extra_competition(seq, &extra)?;
    let baseline = match extra.get("baseline") {
        None | Some(Value::Null) => None,
        Some(value) => match value.as_f64() {
            Some(baseline) if baseline.is_finite() => Some(baseline),
            _ => {
                return Err(invalid(
                    seq,
                    format!("extra_json `baseline` must be a finite number or null, not {value}"),
                ));
            }
        },
    };
    Ok((competition, baseline))
}

/// The decision's raw weights over uids `0..size`, after checking it is consistent.
fn decision_weights(
    seq: u64,
    decision: &WeightsComputed,
    n: Option<u64>,
) -> Result<Vec<f64>, MechanismError> {
    if decision.uids.len() != decision.raw_weight_bits.len() {
        return Err(invalid(
            seq,
            format!(
                "the decision has {} uids but {} raw weights",
                decision.uids.len(),
                decision.raw_weight_bits.len()
            ),
        ));
    }
    let size = decision
        .uids
        .iter()
        .map(|uid| usize::from(*uid) + 1)
        .max()
        .unwrap_or(0)
        .max(n.and_then(|n| usize::try_from(n).ok()).unwrap_or(0));
    let mut weights = vec![0.0; size];
    let mut seen = BTreeSet::new();
    for (uid, bits) in decision.uids.iter().zip(&decision.raw_weight_bits) {
        if !seen.insert(*uid) {
            return Err(invalid(seq, format!("the decision lists uid {uid} twice")));
        }
        let weight = f64::from_bits(*bits);
        if !weight.is_finite() || weight < 0.0 {
            return Err(invalid(
                seq,
                format!(
                    "the decision's weight for uid {uid} is {weight}; weights must be finite and >= 0"
                ),
            ));
        }
        weights[usize::from(*uid)] = weight;
    }
    Ok(weights)
}

fn hotkey_of(
    seq: u64,
    hotkeys: Option<&[String]>,
    uid: u16,
    what: &str,
) -> Result<String, MechanismError> {
    let hotkeys = hotkeys.unwrap_or_default();
    hotkeys.get(usize::from(uid)).cloned().ok_or_else(|| {
        invalid(
            seq,
            format!(
                "{what} for uid {uid} but the metagraph has {} uids",
                hotkeys.len()
            ),
        )
    })
}

impl Projection for OmegaLegacyWinrate {
    type State = LegacyWinrateState;
    const NAME: &'static str = "omega/legacy_winrate";

    fn apply(
        &self,
        state: &mut LegacyWinrateState,
        seq: u64,
        event: &Event,
    ) -> Result<(), MechanismError> {
        if let Some(parameters_json) = profile_parameters(event, PROFILE) {
            let parameters = parse_parameters(seq, parameters_json)?;
            state.competitions = profile_competitions(seq, &parameters)?;
            return Ok(());
        }
        match &event.payload {
            Payload::MetagraphObserved(metagraph) => {
                let hotkeys = hotkeys_in_uid_order(seq, metagraph)?;
                state.n = Some(hotkeys.len() as u64);
            }
            Payload::ExternalScoreRecorded(external) if external.source == SOURCE_MODEL_SCORES => {
                let (competition, entries) = model_round(seq, external)?;
                state
                    .model_scores
                    .insert(competition, ModelRound { seq, entries });
            }
            Payload::WeightsComputed(decision) if decision.mechanism == LEGACY_MECHANISM => {
                state.previous_weights = Some(decision_weights(seq, decision, state.n)?);
            }
            _ => {}
        }
        Ok(())
    }

    fn decision(
        &self,
        _state: &LegacyWinrateState,
        output: &Value,
    ) -> Result<super::decision::Recomputed, MechanismError> {
        super::decision::from_omega(output)
    }

    fn input(&self, state: &LegacyWinrateState) -> Result<Value, MechanismError> {
        let n = state.n.ok_or_else(|| {
            MechanismError::invalid("omega legacy_winrate: no metagraph has been observed yet")
        })?;
        let mut rounds: Vec<(&String, &ModelRound)> = state.model_scores.iter().collect();
        // Newest answer first; seqs are distinct, so the order is total.
        rounds.sort_by_key(|(_, round)| std::cmp::Reverse(round.seq));
        let mut by_uid: BTreeMap<u16, Vec<Value>> = BTreeMap::new();
        for (competition, round) in rounds {
            for entry in &round.entries {
                let mut value = Map::new();
                value.insert("competition_id".into(), json!(competition));
                value.insert("score".into(), json!(entry.score));
                if let Some(block) = entry.block {
                    value.insert("block".into(), json!(block));
                }
                if let Some(hash) = &entry.model_hash {
                    value.insert("model_hash".into(), json!(hash));
                }
                by_uid
                    .entry(entry.uid)
                    .or_default()
                    .push(Value::Object(value));
            }
        }
        let all_model_scores: Map<String, Value> = by_uid
            .into_iter()
            .map(|(uid, entries)| (uid.to_string(), Value::Array(entries)))
            .collect();
        let mut input = json!({
            "mode": "legacy_winrate",
            "n": n,
            "all_model_scores": all_model_scores,
        });
        if let Some(competitions) = &state.competitions {
            input["competitions"] = json!(competitions);
        }
        if let Some(previous) = &state.previous_weights {
            input["previous_weights"] = json!(previous);
        }
        Ok(input)
    }
}

impl Projection for OmegaReputation {
    type State = ReputationState;
    const NAME: &'static str = "omega/reputation";

    fn apply(
        &self,
        state: &mut ReputationState,
        seq: u64,
        event: &Event,
    ) -> Result<(), MechanismError> {
        if let Some(parameters_json) = profile_parameters(event, PROFILE) {
            let parameters = parse_parameters(seq, parameters_json)?;
            state.competition_id = profile_competition(seq, &parameters)?;
            return Ok(());
        }
        match &event.payload {
            Payload::MetagraphObserved(metagraph) => {
                state.hotkeys = Some(hotkeys_in_uid_order(seq, metagraph)?);
            }
            Payload::ExternalScoreRecorded(external) => match external.source.as_str() {
                SOURCE_MODEL_SCORES => {
                    let (competition, entries) = model_round(seq, external)?;
                    let mut scores = BTreeMap::new();
                    for entry in entries {
                        let hotkey =
                            hotkey_of(seq, state.hotkeys.as_deref(), entry.uid, "a score")?;
                        // The first entry of a uid is its model, as upstream reads it.
                        scores.entry(hotkey).or_insert(entry.score);
                    }
                    state.scores.insert(competition, scores);
                }
                SOURCE_BASELINE => {
                    let (competition, baseline) = baseline(seq, external)?;
                    state.baselines.insert(competition, baseline);
                }
                SOURCE_REPUTATION => {
                    let mut reputations = BTreeMap::new();
                    for score in &external.scores {
                        if !score.score.is_finite() {
                            return Err(invalid(
                                seq,
                                format!(
                                    "the reputation of uid {} is not a finite number",
                                    score.uid
                                ),
                            ));
                        }
                        let hotkey =
                            hotkey_of(seq, state.hotkeys.as_deref(), score.uid, "a reputation")?;
                        if reputations.insert(hotkey, score.score).is_some() {
                            return Err(invalid(
                                seq,
                                format!("uid {} has two reputations", score.uid),
                            ));
                        }
                    }
                    state.reputations = reputations;
                }
                _ => {}
            },
            _ => {}
        }
        Ok(())
    }

    fn input(&self, state: &ReputationState) -> Result<Value, MechanismError> {
        let hotkeys = state.hotkeys.as_ref().ok_or_else(|| {
            MechanismError::invalid("omega reputation: no metagraph has been observed yet")
        })?;
        let competition = state
            .competition_id
            .as_deref()
            .unwrap_or(DEFAULT_COMPETITION);
        Ok(json!({
            "mode": "reputation",
            "reputations": state.reputations,
            "active_hotkeys": hotkeys,
            "scores": state.scores.get(competition).cloned().unwrap_or_default(),
            "baseline": state.baselines.get(competition).copied().flatten(),
        }))
    }
}
