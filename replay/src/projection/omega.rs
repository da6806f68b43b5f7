//! omega `two_pool` driven by the log.
//!
//! How an omega validator records its inputs (the event conventions this fold reads):
//! - `LogOpened` / `ProfileChanged` with profile `omega`: `parameters_json` may set
//!   `competition_id` (default `v4`, upstream `COMPETITION_SCHEDULE[0]`).
//! - `MetagraphObserved`: the uids and their hotkeys.
//! - `ExternalScoreRecorded` from source [`SOURCE_MODEL_SCORES`], `extra_json`
//!   `{"competition_id": "v4"}`: one scoring round of one competition, a score per uid that
//!   has one. A new round replaces the previous one (upstream fetches all scores each time).
//! - `ExternalScoreRecorded` from [`SOURCE_BASELINE`], `extra_json`
//!   `{"competition_id": "v4", "baseline": 0.55}` (or `null`: the API had none).
//! - `ExternalScoreRecorded` from [`SOURCE_REPUTATION`]: a reputation per uid, stored under
//!   the uid's hotkey at that moment (upstream keys reputations by hotkey); replaces all.
//! - `WeightsComputed` with mechanism [`MECHANISM`]: the weights in force, which two_pool
//!   keeps when the baseline is missing.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use weightlog_schema::{Event, Payload};

use super::{Projection, parse_event_json};
use crate::MechanismError;

pub const SOURCE_MODEL_SCORES: &str = "omega:model_scores";
pub const SOURCE_BASELINE: &str = "omega:baseline";
pub const SOURCE_REPUTATION: &str = "omega:reputation";
/// The `mechanism` of omega's `WeightsComputed` events.
pub const MECHANISM: &str = "omega/two_pool";
/// Upstream `COMPETITION_SCHEDULE[0]`.
pub const DEFAULT_COMPETITION: &str = "v4";
pub const PROFILE: &str = "omega";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OmegaState {
    /// Set by the profile; `None` means the default competition.
    pub competition_id: Option<String>,
    /// SS58 hotkey of every uid, from the newest metagraph.
    pub hotkeys: Vec<String>,
    /// competition -> uid -> score, from the newest round of each competition.
    pub model_scores: BTreeMap<String, BTreeMap<u16, f64>>,
    /// competition -> baseline (`None`: the API had none).
    pub baselines: BTreeMap<String, Option<f64>>,
    /// hotkey -> reputation.
    pub reputations: BTreeMap<String, f64>,
    /// The newest recorded decision, one raw weight per uid, when there is one.
    pub previous_weights: Option<Vec<f64>>,
}

/// The omega two_pool projection.
#[derive(Debug, Clone, Copy, Default)]
pub struct OmegaTwoPool;

#[derive(Deserialize)]
struct CompetitionExtra {
    competition_id: String,
    #[serde(default)]
    baseline: Option<f64>,
}

fn competition_extra(seq: u64, text: &str) -> Result<CompetitionExtra, MechanismError> {
    parse_event_json(
        seq,
        "extra_json must hold `competition_id` (and for a baseline, `baseline`)",
        text,
    )
}

impl Projection for OmegaTwoPool {
    type State = OmegaState;
    const NAME: &'static str = "omega/two_pool";

    fn apply(&self, state: &mut OmegaState, seq: u64, event: &Event) -> Result<(), MechanismError> {
        match &event.payload {
            Payload::LogOpened(opened) if opened.profile == PROFILE => {
                state.competition_id = profile_competition(seq, &opened.parameters_json)?;
            }
            Payload::ProfileChanged(changed) if changed.profile == PROFILE => {
                state.competition_id = profile_competition(seq, &changed.parameters_json)?;
            }
            Payload::MetagraphObserved(metagraph) => {
                state.hotkeys = metagraph
                    .neurons
                    .iter()
                    .map(|neuron| neuron.hotkey.to_ss58())
                    .collect();
            }
            Payload::ExternalScoreRecorded(external) => match external.source.as_str() {
                SOURCE_MODEL_SCORES => {
                    let extra = competition_extra(seq, &external.extra_json)?;
                    let mut round = BTreeMap::new();
                    for score in &external.scores {
                        // Upstream takes a uid's first entry for the competition.
                        round.entry(score.uid).or_insert(score.score);
                    }
                    state.model_scores.insert(extra.competition_id, round);
                }
                SOURCE_BASELINE => {
                    let extra = competition_extra(seq, &external.extra_json)?;
                    state.baselines.insert(extra.competition_id, extra.baseline);
                }
                SOURCE_REPUTATION => {
                    let mut reputations = BTreeMap::new();
                    for score in &external.scores {
                        let hotkey = state.hotkeys.get(usize::from(score.uid)).ok_or_else(|| {
                            MechanismError::invalid(format!(
                                "event {seq}: reputation for uid {} but the metagraph has {} uids",
                                score.uid,
                                state.hotkeys.len()
                            ))
                        })?;
                        reputations.insert(hotkey.clone(), score.score);
                    }
                    state.reputations = reputations;
                }
                _ => {}
            },
            Payload::WeightsComputed(decision) if decision.mechanism == MECHANISM => {
                let size = state.hotkeys.len().max(
                    decision
                        .uids
                        .iter()
                        .map(|uid| usize::from(*uid) + 1)
                        .max()
                        .unwrap_or(0),
                );
                let mut weights = vec![0.0; size];
                for (uid, bits) in decision.uids.iter().zip(&decision.raw_weight_bits) {
                    weights[usize::from(*uid)] = f64::from_bits(*bits);
                }
                state.previous_weights = Some(weights);
            }
            _ => {}
        }
        Ok(())
    }

    fn decision(
        &self,
        _state: &OmegaState,
        output: &Value,
    ) -> Result<super::decision::Recomputed, MechanismError> {
        super::decision::from_omega(output)
    }

    fn input(&self, state: &OmegaState) -> Result<Value, MechanismError> {
        let competition = state
            .competition_id
            .as_deref()
            .unwrap_or(DEFAULT_COMPETITION);
        let mut all_model_scores = Map::new();
        if let Some(round) = state.model_scores.get(competition) {
            for (uid, score) in round {
                all_model_scores.insert(
                    uid.to_string(),
                    json!([{ "competition_id": competition, "score": score }]),
                );
            }
        }
        let reputations: Map<String, Value> = state
            .reputations
            .iter()
            .map(|(hotkey, reputation)| (hotkey.clone(), json!({ "reputation": reputation })))
            .collect();
        let mut input = json!({
            "mode": "two_pool",
            "n": state.hotkeys.len(),
            "hotkeys": state.hotkeys,
            "all_model_scores": all_model_scores,
            "competition_id": competition,
            "baseline": state.baselines.get(competition).copied().flatten(),
            "reputations": reputations,
        });
        if let Some(previous) = &state.previous_weights {
            input["previous_weights"] = json!(previous);
        }
        Ok(input)
    }
}

fn profile_competition(seq: u64, parameters_json: &str) -> Result<Option<String>, MechanismError> {
    let parameters: Value = parse_event_json(seq, "profile parameters", parameters_json)?;
    match parameters.get("competition_id") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(competition)) => Ok(Some(competition.clone())),
        Some(other) => Err(MechanismError::invalid(format!(
            "event {seq}: competition_id must be a string, not {other}"
        ))),
    }
}
