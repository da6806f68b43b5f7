//! The weight-setting step: `set_weights.set_weights` with `get_miner_ema_scores`, the
//! freshness gate and the sybil penalty (specs/scoring.md 2.2).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use crate::MechanismError;
use crate::emit::{Precision, to_u16};

use super::fields::{
    finite, object, optional, optional_array, refuse_unknown, required, required_array,
};

/// Upstream `EMA_ALPHA`: the weight of the newest emission.
pub const DEFAULT_ALPHA: f64 = 0.3;
/// Sybil scores at or above this make a miner a penalty candidate.
const SYBIL_PENALTY_THRESHOLD: f64 = 0.1;
/// Sybil scores at or above this are always penalised (the hard tier).
const SYBIL_HARD_PENALTY_SCORE_FLOOR: f64 = 0.60;
/// The largest penalty share.
const SYBIL_PENALTY_MAX: f64 = 1.0;
/// A penalised score never drops below this share of the EMA.
const SYBIL_PENALTY_MIN_RETENTION: f64 = 0.2;
/// At most this share of the serving miners is penalised from the soft tier.
const SYBIL_SAFETY_MAX_PENALIZED_FRACTION: f64 = 0.33;

/// The operation mode, chosen upstream from the blocks since the validator's last update
/// (< 4000 NORMAL, 4000..4499 DEGRADED, >= 4500 EMERGENCY).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Freshness gate of 3 h; all-zero weights skip the update.
    Normal,
    /// Freshness gate of 24 h; all-zero weights skip the update.
    Degraded,
    /// No freshness gate; all-zero weights become uniform so the validator keeps its seat.
    Emergency,
}

impl Mode {
    fn parse(text: &str) -> Result<Self, MechanismError> {
        match text {
            "NORMAL" => Ok(Mode::Normal),
            "DEGRADED" => Ok(Mode::Degraded),
            "EMERGENCY" => Ok(Mode::Emergency),
            other => Err(MechanismError::invalid(format!(
                "`weights.mode` must be NORMAL, DEGRADED or EMERGENCY, got `{other}`"
            ))),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Mode::Normal => "NORMAL",
            Mode::Degraded => "DEGRADED",
            Mode::Emergency => "EMERGENCY",
        }
    }
}

/// A node that passed the serving-miner filter, in the chain listing's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServingMiner {
    pub uid: u16,
    pub hotkey: String,
}

/// The `weights` section.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightsInput {
    /// Logged emissions per evaluation, oldest first. JSON objects reach this crate without
    /// their key order (serde_json without `preserve_order`), so each evaluation's emissions
    /// are in hotkey order.
    pub evaluations: Vec<BTreeMap<String, f64>>,
    pub alpha: f64,
    pub mode: Mode,
    /// The freshness gate's verdict per hotkey; a hotkey missing here is stale.
    pub fresh: BTreeMap<String, bool>,
    pub serving: Vec<ServingMiner>,
    pub sybil_scores: BTreeMap<String, f64>,
}

const WEIGHTS_KEYS: [&str; 6] = [
    "evaluations",
    "alpha",
    "mode",
    "fresh",
    "serving",
    "sybil_scores",
];

impl WeightsInput {
    /// Reads and checks the `weights` section; every error names the offending field.
    pub fn from_json(section: &Value) -> Result<Self, MechanismError> {
        let path = "weights";
        let fields = object(section, path)?;
        refuse_unknown(fields, &WEIGHTS_KEYS, path)?;
        let raw_evaluations = optional_array(fields, "evaluations", path)?.unwrap_or_default();
        let mut evaluations = Vec::with_capacity(raw_evaluations.len());
        for (index, raw) in raw_evaluations.iter().enumerate() {
            let evaluation_path = format_args!("weights.evaluations[{index}]");
            let evaluation = object(raw, evaluation_path)?;
            refuse_unknown(evaluation, &["emissions"], evaluation_path)?;
            // Upstream skips a result whose emissions are empty or null.
            let emissions: BTreeMap<String, f64> =
                optional(evaluation, "emissions", evaluation_path)?.unwrap_or_default();
            for (hotkey, emission) in &emissions {
                let emission_path = format_args!("{evaluation_path}.emissions.{hotkey}");
                finite(*emission, emission_path)?;
                if *emission < 0.0 {
                    return Err(MechanismError::invalid(format!(
                        "`{emission_path}` is negative ({emission}); emissions are >= 0"
                    )));
                }
            }
            evaluations.push(emissions);
        }
        let alpha = optional(fields, "alpha", path)?.unwrap_or(DEFAULT_ALPHA);
        finite(alpha, "weights.alpha")?;
        if !(0.0..=1.0).contains(&alpha) {
            return Err(MechanismError::invalid(format!(
                "`weights.alpha` must lie in [0, 1], got {alpha}"
            )));
        }
        let mode_text: String = required(fields, "mode", path)?;
        let mode = Mode::parse(&mode_text)?;
        let fresh: BTreeMap<String, bool> = optional(fields, "fresh", path)?.unwrap_or_default();
        let raw_serving = required_array(fields, "serving", path)?;
        let mut serving = Vec::with_capacity(raw_serving.len());
        let mut uids = BTreeSet::new();
        for (index, raw) in raw_serving.iter().enumerate() {
            let node_path = format_args!("weights.serving[{index}]");
            let node = object(raw, node_path)?;
            refuse_unknown(node, &["uid", "hotkey"], node_path)?;
            let miner = ServingMiner {
                uid: required(node, "uid", node_path)?,
                hotkey: required(node, "hotkey", node_path)?,
            };
            if !uids.insert(miner.uid) {
                return Err(MechanismError::invalid(format!(
                    "`{node_path}.uid` {} appears twice; the chain lists each uid once",
                    miner.uid
                )));
            }
            serving.push(miner);
        }
        let sybil_scores: BTreeMap<String, f64> =
            optional(fields, "sybil_scores", path)?.unwrap_or_default();
        for (hotkey, score) in &sybil_scores {
            finite(*score, format_args!("weights.sybil_scores.{hotkey}"))?;
        }
        Ok(WeightsInput {
            evaluations,
            alpha,
            mode,
            fresh,
            serving,
            sybil_scores,
        })
    }
}

/// Whether weights were submitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightsStatus {
    /// A weight vector was built and submitted.
    Set,
    /// No serving miner: upstream skips the round.
    SkippedNoServingMiners,
    /// Every weight is zero outside EMERGENCY mode: upstream skips, keeping the on-chain
    /// weights.
    SkippedAllZero,
}

impl WeightsStatus {
    fn as_str(self) -> &'static str {
        match self {
            WeightsStatus::Set => "set",
            WeightsStatus::SkippedNoServingMiners => "skipped_no_serving_miners",
            WeightsStatus::SkippedAllZero => "skipped_all_zero",
        }
    }
}

/// The result of the weight-setting step.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightsOutcome {
    pub status: WeightsStatus,
    pub mode: Mode,
    /// EMA per hotkey, in first-sighting order.
    pub ema: Vec<(String, f64)>,
    /// The EMA after the freshness gate and the sybil penalty, same order.
    pub after_gates: Vec<(String, f64)>,
    /// Whether EMERGENCY mode fell back to uniform weights.
    pub uniform: bool,
    /// The submitted vector over the serving miners (empty when skipped).
    pub uids: Vec<u16>,
    pub weights: Vec<f64>,
    /// The chain's u16 form of `weights`.
    pub u16_uids: Vec<u16>,
    pub u16_weights: Vec<u16>,
}

impl WeightsOutcome {
    /// The output document of the `weights` section.
    pub fn to_json(&self) -> Value {
        let as_object = |entries: &[(String, f64)]| -> serde_json::Map<String, Value> {
            entries
                .iter()
                .map(|(hotkey, value)| (hotkey.clone(), json!(value)))
                .collect()
        };
        json!({
            "status": self.status.as_str(),
            "mode": self.mode.as_str(),
            "ema": as_object(&self.ema),
            "after_gates": as_object(&self.after_gates),
            "uniform": self.uniform,
            "uids": self.uids,
            "weights": self.weights,
            "u16": {"uids": self.u16_uids, "weights": self.u16_weights},
        })
    }
}

/// `get_miner_ema_scores`: over the evaluations in order, the first sighting of a hotkey sets
/// its EMA to the emission, later ones to `alpha * e + (1 - alpha) * ema`. A hotkey missing
/// from a round keeps its EMA (no decay). The order of first sightings is kept because the
/// sybil soft tier breaks ties by it.
pub fn exponential_moving_averages(
    evaluations: &[BTreeMap<String, f64>],
    alpha: f64,
) -> Vec<(String, f64)> {
    let mut ema: Vec<(String, f64)> = Vec::new();
    let mut position: BTreeMap<String, usize> = BTreeMap::new();
    for emissions in evaluations {
        for (hotkey, &emission) in emissions {
            match position.get(hotkey) {
                Some(&index) => {
                    let previous = ema[index].1;
                    ema[index].1 = alpha * emission + (1.0 - alpha) * previous;
                }
                None => {
                    position.insert(hotkey.clone(), ema.len());
                    ema.push((hotkey.clone(), emission));
                }
            }
        }
    }
    ema
}

/// A penalty candidate: its position in the score list and its sybil score.
type Candidate = (usize, f64);

/// `_apply_sybil_penalty`: candidates are hotkeys with a sybil score >= 0.1 and a positive
/// score; the hard tier (>= 0.60) is always penalised, the soft tier only up to
/// `max(1, int(0.33 * serving))` worst (stable sort by score, descending); a penalised score
/// becomes `max(ema * (1 - min(s, 1)), 0.2 * ema)`.
fn apply_sybil_penalty(
    scores: &mut [(String, f64)],
    sybil_scores: &BTreeMap<String, f64>,
    serving_count: usize,
) {
    if sybil_scores.is_empty() {
        return;
    }
    let sybil_score = |hotkey: &str| sybil_scores.get(hotkey).copied().unwrap_or(0.0);
    let candidates: Vec<Candidate> = scores
        .iter()
        .enumerate()
        .filter(|(_, (hotkey, score))| {
            sybil_score(hotkey) >= SYBIL_PENALTY_THRESHOLD && *score > 0.0
        })
        .map(|(index, (hotkey, _))| (index, sybil_score(hotkey)))
        .collect();
    let (hard, mut soft): (Vec<Candidate>, Vec<Candidate>) = candidates
        .into_iter()
        .partition(|(_, score)| *score >= SYBIL_HARD_PENALTY_SCORE_FLOOR);
    // Python's int() truncates toward zero.
    let allowed = ((serving_count as f64 * SYBIL_SAFETY_MAX_PENALIZED_FRACTION) as usize).max(1);
    if soft.len() > allowed {
        soft.sort_by(|a, b| b.1.total_cmp(&a.1));
        soft.truncate(allowed);
    }
    for (index, score) in hard.into_iter().chain(soft) {
        let ema = scores[index].1;
        let penalty = if SYBIL_PENALTY_MAX < score {
            SYBIL_PENALTY_MAX
        } else {
            score
        };
        let penalized = ema * (1.0 - penalty);
        let floor = ema * SYBIL_PENALTY_MIN_RETENTION;
        scores[index].1 = if floor > penalized { floor } else { penalized };
    }
}

/// Runs the weight-setting step.
pub fn set_weights(input: &WeightsInput) -> Result<WeightsOutcome, MechanismError> {
    let ema = exponential_moving_averages(&input.evaluations, input.alpha);
    let mut after_gates = ema.clone();
    if input.mode != Mode::Emergency {
        for (hotkey, score) in after_gates.iter_mut() {
            if input.fresh.get(hotkey) != Some(&true) {
                *score = 0.0;
            }
        }
    }
    apply_sybil_penalty(&mut after_gates, &input.sybil_scores, input.serving.len());
    let mut outcome = WeightsOutcome {
        status: WeightsStatus::Set,
        mode: input.mode,
        ema,
        after_gates,
        uniform: false,
        uids: Vec::new(),
        weights: Vec::new(),
        u16_uids: Vec::new(),
        u16_weights: Vec::new(),
    };
    if input.serving.is_empty() {
        outcome.status = WeightsStatus::SkippedNoServingMiners;
        return Ok(outcome);
    }
    let score_of: BTreeMap<&str, f64> = outcome
        .after_gates
        .iter()
        .map(|(hotkey, score)| (hotkey.as_str(), *score))
        .collect();
    let uids: Vec<u16> = input.serving.iter().map(|miner| miner.uid).collect();
    let raw: Vec<f64> = input
        .serving
        .iter()
        .map(|miner| score_of.get(miner.hotkey.as_str()).copied().unwrap_or(0.0))
        .collect();
    // Python's sum() adds left to right.
    let mut total = 0.0;
    for weight in &raw {
        total += weight;
    }
    let weights: Vec<f64> = if total <= 0.0 {
        if input.mode != Mode::Emergency {
            outcome.status = WeightsStatus::SkippedAllZero;
            return Ok(outcome);
        }
        outcome.uniform = true;
        vec![1.0 / input.serving.len() as f64; input.serving.len()]
    } else {
        raw.iter().map(|weight| weight / total).collect()
    };
    let emitted = to_u16(&uids, &weights, Precision::Float64)?;
    outcome.uids = uids;
    outcome.weights = weights;
    outcome.u16_uids = emitted.uids;
    outcome.u16_weights = emitted.weights;
    Ok(outcome)
}
