//! loosh rounds on the engine side: what a loosh validator appends after collecting a
//! round's answers, and what an auditor recomputes from it.
//!
//! 1. [`embedding_events`]: the prompt and every successful answer embedded with MiniLM,
//!    quantised, as `EmbeddingComputed` (the prompt under
//!    [`PROMPT_EMBEDDING_UID`](weightlog_replay::projection::loosh_evaluate::PROMPT_EMBEDDING_UID)).
//! 2. [`emission_events`]: the loosh `evaluate` mechanism run on the round as the log holds
//!    it (the [`LooshEvaluate`] projection's input, built from the *recorded* vectors), one
//!    `EvaluationRecorded` per answering miner with evaluator [`EVALUATOR_EMISSION`]. The
//!    `loosh` profile's weights projection folds those into weights.
//!
//! Because step 2 reads only recorded vectors, a CPU validator, a GPU validator and an
//! auditor on either get the same emissions and weights from the same log; re-embedding
//! (`replay verify --re-embed`) checks the vectors themselves within a tolerance.

#[cfg(feature = "embed")]
mod embedding;
pub mod heatmap;

use std::collections::BTreeMap;

use serde_json::Value;
use weightlog_replay::MechanismError;
use weightlog_replay::projection::loosh::EVALUATOR_EMISSION;
use weightlog_replay::projection::loosh_evaluate::{LooshEvaluate, LooshEvaluateState, Round};
use weightlog_schema::event::EvaluationRecorded;

#[cfg(feature = "embed")]
pub use embedding::embedding_events;

/// The round's emissions by uid, computed from the round as the log holds it.
pub fn emissions(
    state: &LooshEvaluateState,
    challenge_id: &str,
) -> Result<BTreeMap<u16, f64>, MechanismError> {
    let input = LooshEvaluate.input_for(state, challenge_id)?;
    let round = state
        .rounds
        .iter()
        .find(|round| round.challenge_id == challenge_id)
        .ok_or_else(|| {
            MechanismError::invalid(format!("challenge `{challenge_id}` is not an open round"))
        })?;
    emissions_of(round, &input)
}

/// The emissions of `round` from its mechanism input (see [`LooshEvaluate::input_for`]).
pub fn emissions_of(round: &Round, input: &Value) -> Result<BTreeMap<u16, f64>, MechanismError> {
    let output = weightlog_replay::loosh::run(input)?;
    let by_hotkey = output
        .pointer("/evaluate/emissions")
        .and_then(Value::as_object)
        .ok_or_else(|| MechanismError::invalid("the loosh output has no emissions"))?;
    let mut by_uid = BTreeMap::new();
    for response in &round.responses {
        if let Some(value) = by_hotkey.get(&response.hotkey).and_then(Value::as_f64) {
            by_uid.insert(response.uid, value);
        }
    }
    Ok(by_uid)
}

/// `EvaluationRecorded` (evaluator [`EVALUATOR_EMISSION`]) for each miner the round's
/// evaluation gives an emission, in uid order. Appending the first closes the round.
pub fn emission_events(
    state: &LooshEvaluateState,
    challenge_id: &str,
) -> Result<Vec<EvaluationRecorded>, MechanismError> {
    Ok(emissions(state, challenge_id)?
        .into_iter()
        .map(|(uid, score)| EvaluationRecorded {
            challenge_id: challenge_id.to_owned(),
            uid,
            score,
            metrics: Vec::new(),
            evaluator: EVALUATOR_EMISSION.into(),
            fuel_used: None,
        })
        .collect())
}
