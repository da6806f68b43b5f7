//! aml (chainswarm alert scoring) driven by the log: every input of the coordinator and of
//! the design-mode ensemble is derived from events, with no clock — "now" is the timestamp of
//! the newest event folded.
//!
//! Alerts are published in *batches* (upstream: one processing date and window). The event
//! conventions this fold reads:
//! - `LogOpened` / `ProfileChanged` with profile [`PROFILE`]: `parameters_json` is an object
//!   with an optional `config` object, the overrides of the validation configuration (the
//!   names of specs/mechanism-io, passed to the mechanism unchanged). Any other key is refused.
//! - `MetagraphObserved`: uid -> hotkey (SS58). Only miners in the newest metagraph are
//!   scored; uids in other events are resolved against the newest metagraph at that moment.
//! - `ChallengeIssued` with environment [`ENVIRONMENT`]: a batch; `challenge_id` names it and
//!   batches are ordered by issue. `extra_json` `{"addresses": {"alert_id": "0x.."}}`
//!   (optional) gives each alert's address.
//! - `ResponseReceived` with an `ok` outcome for a batch: the miner's submission, body
//!   `{"alert_ids": [..], "scores": [..]}` (parallel lists, in submission order). A later
//!   submission to the same batch replaces the earlier one. The miner's *first* submission
//!   starts its clock: `days_since_submission` = whole days from the earliest submission
//!   timestamp to now. `error` outcomes are ignored; a response to a challenge that is not
//!   an issued batch, or whose hotkey is not its uid's, is refused.
//! - `ExternalScoreRecorded` from [`SOURCE_CONSENSUS`] (the subnet database's per-alert median
//!   over all miners): `scores` empty, `extra_json`
//!   `{"challenge_id": "batch", "consensus": {"alert_id": 0.4}}`; merged into the batch.
//! - `EvaluationRecorded` with evaluator [`EVALUATOR_TIER1`]: the validator's integrity checks
//!   of the miner's submission to batch `challenge_id`; `metrics` are exactly
//!   `has_all_alerts`, `score_range_valid`, `no_duplicates`, `metadata_valid` (`score` is not
//!   read). The newest one per miner names the miner's *checked batch*; miners without one
//!   are not in the input.
//! - `EvaluationRecorded` with evaluator [`EVALUATOR_TIER2`]: behavioural components the
//!   validator computed itself for batch `challenge_id`; `metrics` exactly
//!   `distribution_entropy`, `rank_correlation`, `consistency`, `address_consistency`. When
//!   the checked batch has none, the input carries `tier2_raw` instead: the miner's
//!   submission to the checked batch, the batch's consensus and addresses restricted to the
//!   submitted alerts, and as `prev_scores` the miner's submission to the batch issued just
//!   before (absent when it submitted none there).
//! - `GroundTruthRevealed` for a batch: `truth_json` `{"labels": {"alert_id": 0|1}}` (tier 3a,
//!   label 1 = high or critical risk) and/or `{"patterns": {"alert_id": "dormant"}}` (tier 3b,
//!   the T+30 evolution pattern); later reveals add to earlier ones. Tier 3a of a miner uses
//!   the batch with the newest label reveal the miner submitted to: its submitted scores of
//!   the labelled alerts, in submission order, and `total_alerts` = the number of distinct
//!   alerts in that submission (null when no submitted alert has a label). Tier 3b likewise
//!   with patterns.
//! - `EvaluationRecorded` with evaluator [`EVALUATOR_IMMEDIATE`]: the design-mode immediate
//!   score (`score`) the validator computed in an earlier round; in seq order they form the
//!   miner's `history`.
//! - Design-mode `alert_scores`: when the newest batch is nobody's checked batch (it is still
//!   being aggregated), the submissions to it, alert -> score (a repeated alert keeps its last
//!   score).
//!
//! Every uid is resolved against the newest metagraph at the event; unknown uids, malformed
//! JSON text, missing or unknown metrics and references to batches never issued are refused
//! with `event {seq}: ...` and leave the state unchanged.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use weightlog_schema::event::ResponseOutcome;
use weightlog_schema::{Event, Payload};

use super::{Projection, hotkeys_in_uid_order, invalid, object, parse_event_json};
use crate::MechanismError;
use crate::aml::config::AmlConfig;

pub const PROFILE: &str = "aml";
/// The environment of the `ChallengeIssued` events that publish alert batches.
pub const ENVIRONMENT: &str = "aml";
pub const EVALUATOR_TIER1: &str = "aml:tier1";
pub const EVALUATOR_TIER2: &str = "aml:tier2";
pub const EVALUATOR_IMMEDIATE: &str = "aml:immediate";
pub const SOURCE_CONSENSUS: &str = "aml:consensus";
pub const DAY_MS: u64 = 86_400_000;
/// The metric names of a tier 1 evaluation, in the mechanism's field order.
pub const TIER1_METRICS: [&str; 4] = [
    "has_all_alerts",
    "score_range_valid",
    "no_duplicates",
    "metadata_valid",
];
/// The metric names of a tier 2 evaluation, in the mechanism's field order.
pub const TIER2_METRICS: [&str; 4] = [
    "distribution_entropy",
    "rank_correlation",
    "consistency",
    "address_consistency",
];

/// One alert batch.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    pub challenge_id: String,
    /// alert -> address.
    pub addresses: BTreeMap<String, String>,
    /// alert -> consensus score.
    pub consensus: BTreeMap<String, f64>,
    /// alert -> label, and the seq of the newest label reveal.
    pub labels: BTreeMap<String, u8>,
    pub labels_seq: Option<u64>,
    /// alert -> evolution pattern, and the seq of the newest pattern reveal.
    pub patterns: BTreeMap<String, String>,
    pub patterns_seq: Option<u64>,
}

/// Everything recorded about one miner (by hotkey).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MinerRecord {
    pub first_submission_ms: Option<u64>,
    /// batch -> (alert, score) in submission order. Shared, not copied, when a decision
    /// forks the state: a submission is only ever replaced whole.
    pub submissions: BTreeMap<String, Arc<[(String, f64)]>>,
    /// The newest integrity checks: (batch, values in [`TIER1_METRICS`] order).
    pub tier1: Option<(String, [f64; 4])>,
    /// batch -> behavioural components in [`TIER2_METRICS`] order.
    pub tier2: BTreeMap<String, [f64; 4]>,
    /// Immediate scores, oldest first.
    pub history: Vec<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AmlState {
    /// The profile's `config` overrides as JSON text (`None`: upstream defaults).
    pub config_json: Option<String>,
    /// Timestamp of the newest event folded: the projection's "now".
    pub now_ms: u64,
    /// SS58 hotkey of every uid, from the newest metagraph.
    pub hotkeys: Vec<String>,
    /// Batches in issue order. Shared when a decision forks the state; the fold copies a
    /// batch only when a later consensus or reveal changes it.
    pub batches: Vec<Arc<Batch>>,
    /// Shared when a decision forks the state, as batches are; the fold copies a miner's
    /// record only when it changes while a fork still holds it.
    pub miners: BTreeMap<String, Arc<MinerRecord>>,
}

/// The aml projection.
#[derive(Debug, Clone, Copy, Default)]
pub struct AmlScores;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Parameters {
    #[serde(default)]
    config: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchExtra {
    #[serde(default)]
    addresses: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Submission {
    alert_ids: Vec<String>,
    scores: Vec<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsensusExtra {
    challenge_id: String,
    consensus: BTreeMap<String, f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Truth {
    #[serde(default)]
    labels: Option<BTreeMap<String, u8>>,
    #[serde(default)]
    patterns: Option<BTreeMap<String, String>>,
}

impl AmlState {
    fn hotkey_of(&self, seq: u64, uid: u16) -> Result<String, MechanismError> {
        self.hotkeys
            .get(usize::from(uid))
            .cloned()
            .ok_or_else(|| invalid(seq, format!("uid {uid} is not in the newest metagraph")))
    }

    /// Where the batch `challenge_id` sits in `batches`. Batch ids are unique, so searching
    /// from the newest (which events mostly name) finds the same batch sooner.
    fn batch_position(&self, challenge_id: &str) -> Option<usize> {
        self.batches
            .iter()
            .rposition(|batch| batch.challenge_id == challenge_id)
    }

    /// The batch to change; a copy of it when a forked state still shares it.
    fn batch_mut(&mut self, seq: u64, challenge_id: &str) -> Result<&mut Batch, MechanismError> {
        let position = self
            .batch_position(challenge_id)
            .ok_or_else(|| invalid(seq, format!("batch `{challenge_id}` was never issued")))?;
        Ok(Arc::make_mut(&mut self.batches[position]))
    }

    /// The record of the miner with `hotkey` to change (a new one for a new miner); a copy
    /// of it when a forked state still shares it.
    fn miner_mut(&mut self, hotkey: String) -> &mut MinerRecord {
        Arc::make_mut(self.miners.entry(hotkey).or_default())
    }

    fn has_batch(&self, challenge_id: &str) -> bool {
        self.batch_position(challenge_id).is_some()
    }
}

/// The four values of `metrics`, which must be exactly `names` (any order, each once).
fn four_metrics(
    seq: u64,
    evaluator: &str,
    metrics: &[weightlog_schema::event::Metric],
    names: [&str; 4],
) -> Result<[f64; 4], MechanismError> {
    let mut values = [None; 4];
    for metric in metrics {
        let Some(index) = names.iter().position(|name| *name == metric.name) else {
            return Err(invalid(
                seq,
                format!(
                    "{evaluator} has an unknown metric `{}`; expected {}",
                    metric.name,
                    names.join(", ")
                ),
            ));
        };
        if values[index].is_some() {
            return Err(invalid(
                seq,
                format!("{evaluator} repeats the metric `{}`", metric.name),
            ));
        }
        if !metric.value.is_finite() {
            return Err(invalid(
                seq,
                format!("{evaluator} metric `{}` is not finite", metric.name),
            ));
        }
        values[index] = Some(metric.value);
    }
    let mut out = [0.0; 4];
    for (index, value) in values.into_iter().enumerate() {
        out[index] = value.ok_or_else(|| {
            invalid(
                seq,
                format!("{evaluator} lacks the metric `{}`", names[index]),
            )
        })?;
    }
    Ok(out)
}

fn profile_config(seq: u64, parameters_json: &str) -> Result<Option<String>, MechanismError> {
    let parameters: Parameters = parse_event_json(seq, "aml profile parameters", parameters_json)?;
    match parameters.config {
        None | Some(Value::Null) => Ok(None),
        Some(config) => {
            AmlConfig::deserialize(&config)
                .map_err(|error| invalid(seq, format!("aml profile parameters config: {error}")))?;
            Ok(Some(config.to_string()))
        }
    }
}

impl Projection for AmlScores {
    type State = AmlState;
    const NAME: &'static str = "aml/scores";

    fn apply(&self, state: &mut AmlState, seq: u64, event: &Event) -> Result<(), MechanismError> {
        match &event.payload {
            Payload::LogOpened(opened) if opened.profile == PROFILE => {
                state.config_json = profile_config(seq, &opened.parameters_json)?;
            }
            Payload::ProfileChanged(changed) if changed.profile == PROFILE => {
                state.config_json = profile_config(seq, &changed.parameters_json)?;
            }
            Payload::MetagraphObserved(metagraph) => {
                state.hotkeys = hotkeys_in_uid_order(seq, metagraph)?;
            }
            Payload::ChallengeIssued(issued) if issued.environment == ENVIRONMENT => {
                if state.has_batch(&issued.challenge_id) {
                    return Err(invalid(
                        seq,
                        format!("batch `{}` was already issued", issued.challenge_id),
                    ));
                }
                let extra: BatchExtra = if issued.extra_json.trim().is_empty() {
                    BatchExtra {
                        addresses: BTreeMap::new(),
                    }
                } else {
                    parse_event_json(seq, "aml batch extra_json", &issued.extra_json)?
                };
                state.batches.push(Arc::new(Batch {
                    challenge_id: issued.challenge_id.clone(),
                    addresses: extra.addresses,
                    ..Batch::default()
                }));
            }
            Payload::ResponseReceived(response) => {
                let ResponseOutcome::Ok { body } = &response.outcome else {
                    return Ok(());
                };
                if !state.has_batch(&response.challenge_id) {
                    return Err(invalid(
                        seq,
                        format!(
                            "submission to batch `{}`, which was never issued",
                            response.challenge_id
                        ),
                    ));
                }
                let hotkey = state.hotkey_of(seq, response.uid)?;
                if response.hotkey.to_ss58() != hotkey {
                    return Err(invalid(
                        seq,
                        format!(
                            "the response's hotkey {} is not uid {}'s hotkey {hotkey}",
                            response.hotkey.to_ss58(),
                            response.uid
                        ),
                    ));
                }
                let submission: Submission = parse_event_json(seq, "aml submission body", body)?;
                if submission.alert_ids.len() != submission.scores.len() {
                    return Err(invalid(
                        seq,
                        format!(
                            "the submission has {} alert_ids but {} scores",
                            submission.alert_ids.len(),
                            submission.scores.len()
                        ),
                    ));
                }
                if submission.scores.iter().any(|score| !score.is_finite()) {
                    return Err(invalid(seq, "the submission holds a non-finite score"));
                }
                let miner = state.miner_mut(hotkey);
                miner.first_submission_ms = Some(
                    miner
                        .first_submission_ms
                        .map_or(event.timestamp_ms, |first| first.min(event.timestamp_ms)),
                );
                miner.submissions.insert(
                    response.challenge_id.clone(),
                    submission
                        .alert_ids
                        .into_iter()
                        .zip(submission.scores)
                        .collect(),
                );
            }
            Payload::ExternalScoreRecorded(external) if external.source == SOURCE_CONSENSUS => {
                if !external.scores.is_empty() {
                    return Err(invalid(
                        seq,
                        "aml consensus carries its scores in extra_json, not per uid",
                    ));
                }
                let extra: ConsensusExtra =
                    parse_event_json(seq, "aml consensus extra_json", &external.extra_json)?;
                if extra.consensus.values().any(|value| !value.is_finite()) {
                    return Err(invalid(seq, "aml consensus holds a non-finite score"));
                }
                let batch = state.batch_mut(seq, &extra.challenge_id)?;
                batch.consensus.extend(extra.consensus);
            }
            Payload::EvaluationRecorded(evaluation)
                if evaluation.evaluator == EVALUATOR_TIER1
                    || evaluation.evaluator == EVALUATOR_TIER2 =>
            {
                if !state.has_batch(&evaluation.challenge_id) {
                    return Err(invalid(
                        seq,
                        format!(
                            "{} of batch `{}`, which was never issued",
                            evaluation.evaluator, evaluation.challenge_id
                        ),
                    ));
                }
                let hotkey = state.hotkey_of(seq, evaluation.uid)?;
                let tier1 = evaluation.evaluator == EVALUATOR_TIER1;
                let (evaluator, names) = if tier1 {
                    (EVALUATOR_TIER1, TIER1_METRICS)
                } else {
                    (EVALUATOR_TIER2, TIER2_METRICS)
                };
                let values = four_metrics(seq, evaluator, &evaluation.metrics, names)?;
                if tier1 && values.iter().any(|value| !(0.0..=1.0).contains(value)) {
                    return Err(invalid(seq, "integrity checks lie in [0, 1]"));
                }
                let miner = state.miner_mut(hotkey);
                let batch_id = evaluation.challenge_id.clone();
                if tier1 {
                    miner.tier1 = Some((batch_id, values));
                } else {
                    miner.tier2.insert(batch_id, values);
                }
            }
            Payload::EvaluationRecorded(evaluation)
                if evaluation.evaluator == EVALUATOR_IMMEDIATE =>
            {
                if !evaluation.score.is_finite() {
                    return Err(invalid(seq, "the immediate score is not finite"));
                }
                let hotkey = state.hotkey_of(seq, evaluation.uid)?;
                state.miner_mut(hotkey).history.push(evaluation.score);
            }
            Payload::GroundTruthRevealed(revealed) => {
                let truth: Truth = parse_event_json(seq, "aml truth_json", &revealed.truth_json)?;
                if truth.labels.is_none() && truth.patterns.is_none() {
                    return Err(invalid(
                        seq,
                        "aml truth_json reveals neither `labels` nor `patterns`",
                    ));
                }
                let batch = state.batch_mut(seq, &revealed.challenge_id)?;
                if let Some(labels) = truth.labels {
                    if let Some((alert, label)) = labels.iter().find(|(_, label)| **label > 1) {
                        return Err(invalid(
                            seq,
                            format!("alert `{alert}` has label {label}; labels are 0 or 1"),
                        ));
                    }
                    batch.labels.extend(labels);
                    batch.labels_seq = Some(seq);
                }
                if let Some(patterns) = truth.patterns {
                    batch.patterns.extend(patterns);
                    batch.patterns_seq = Some(seq);
                }
            }
            _ => {}
        }
        state.now_ms = state.now_ms.max(event.timestamp_ms);
        Ok(())
    }

    fn decision(
        &self,
        state: &AmlState,
        output: &Value,
    ) -> Result<super::decision::Recomputed, MechanismError> {
        super::decision::from_aml(output, &state.hotkeys)
    }

    fn input(&self, state: &AmlState) -> Result<Value, MechanismError> {
        let checked: Vec<&str> = state
            .miners
            .values()
            .filter_map(|miner| miner.tier1.as_ref().map(|(batch, _)| batch.as_str()))
            .collect();
        let mut miners = Map::new();
        for (hotkey, miner) in &state.miners {
            if !state.hotkeys.contains(hotkey) {
                continue;
            }
            let Some((batch_id, checks)) = &miner.tier1 else {
                continue;
            };
            let Some(first_ms) = miner.first_submission_ms else {
                return Err(MechanismError::invalid(format!(
                    "miner `{hotkey}` has integrity checks but no submission"
                )));
            };
            let days = (state.now_ms.saturating_sub(first_ms) / DAY_MS) as i64;
            let position = state.batch_position(batch_id).ok_or_else(|| {
                MechanismError::invalid(format!("batch `{batch_id}` was never issued"))
            })?;
            let batch = &state.batches[position];
            let mut record = Map::new();
            record.insert("days_since_submission".into(), json!(days));
            let tier1: Map<String, Value> = TIER1_METRICS
                .iter()
                .zip(checks)
                .map(|(name, value)| ((*name).to_string(), json!(value)))
                .collect();
            record.insert("tier1".into(), Value::Object(tier1));
            if let Some(components) = miner.tier2.get(batch_id) {
                let tier2: Map<String, Value> = TIER2_METRICS
                    .iter()
                    .zip(components)
                    .map(|(name, value)| ((*name).to_string(), json!(value)))
                    .collect();
                record.insert("tier2".into(), Value::Object(tier2));
            } else {
                let submission = miner.submissions.get(batch_id).ok_or_else(|| {
                    MechanismError::invalid(format!(
                        "miner `{hotkey}` has neither tier 2 components nor a submission for \
                         its checked batch `{batch_id}`"
                    ))
                })?;
                let consensus: Map<String, Value> = submission
                    .iter()
                    .filter_map(|(alert, _)| {
                        batch
                            .consensus
                            .get(alert)
                            .map(|value| (alert.clone(), json!(value)))
                    })
                    .collect();
                let address_of: Map<String, Value> = submission
                    .iter()
                    .filter_map(|(alert, _)| {
                        batch
                            .addresses
                            .get(alert)
                            .map(|address| (alert.clone(), json!(address)))
                    })
                    .collect();
                let scores: Vec<Value> = submission.iter().map(|(_, score)| json!(score)).collect();
                let alert_ids: Vec<Value> = submission
                    .iter()
                    .map(|(alert, _)| Value::from(alert.as_str()))
                    .collect();
                let mut raw = object([
                    ("scores", Value::Array(scores)),
                    ("alert_ids", Value::Array(alert_ids)),
                    ("consensus", Value::Object(consensus)),
                    ("address_of", Value::Object(address_of)),
                ]);
                let previous = position
                    .checked_sub(1)
                    .and_then(|index| miner.submissions.get(&state.batches[index].challenge_id));
                if let Some(previous) = previous {
                    let prev_scores: Map<String, Value> = previous
                        .iter()
                        .map(|(alert, score)| (alert.clone(), json!(score)))
                        .collect();
                    raw["prev_scores"] = Value::Object(prev_scores);
                }
                record.insert("tier2_raw".into(), raw);
            }
            record.insert(
                "tier3a".into(),
                tier3(
                    state,
                    miner,
                    |batch| batch.labels_seq,
                    |batch, alert| batch.labels.get(alert).map(|label| json!(label)),
                    "labels",
                ),
            );
            record.insert(
                "tier3b".into(),
                tier3(
                    state,
                    miner,
                    |batch| batch.patterns_seq,
                    |batch, alert| batch.patterns.get(alert).map(|pattern| json!(pattern)),
                    "patterns",
                ),
            );
            if !miner.history.is_empty() {
                record.insert("history".into(), json!(miner.history));
            }
            miners.insert(hotkey.clone(), Value::Object(record));
        }
        let mut input = object([("miners", Value::Object(miners))]);
        if let Some(config) = &state.config_json {
            input["config"] = serde_json::from_str(config)?;
        }
        if let Some(newest) = state.batches.last()
            && !checked.contains(&newest.challenge_id.as_str())
        {
            let mut alert_scores = Map::new();
            for (hotkey, miner) in &state.miners {
                if !state.hotkeys.contains(hotkey) {
                    continue;
                }
                if let Some(submission) = miner.submissions.get(&newest.challenge_id) {
                    let scores: BTreeMap<&str, f64> = submission
                        .iter()
                        .map(|(alert, score)| (alert.as_str(), *score))
                        .collect();
                    alert_scores.insert(hotkey.clone(), json!(scores));
                }
            }
            input["alert_scores"] = Value::Object(alert_scores);
        }
        Ok(input)
    }
}

/// A miner's tier 3 input from the revealed batch (newest reveal first) it submitted to:
/// `{"scores", <field>, "total_alerts"}`, or null when none of its alerts was revealed.
fn tier3(
    state: &AmlState,
    miner: &MinerRecord,
    reveal_seq: impl Fn(&Batch) -> Option<u64>,
    truth_of: impl Fn(&Batch, &str) -> Option<Value>,
    field: &str,
) -> Value {
    let chosen = state
        .batches
        .iter()
        .filter_map(|batch| {
            let seq = reveal_seq(batch)?;
            let submission = miner.submissions.get(&batch.challenge_id)?;
            Some((seq, batch, submission))
        })
        .max_by_key(|(seq, _, _)| *seq);
    let Some((_, batch, submission)) = chosen else {
        return Value::Null;
    };
    let mut scores = Vec::new();
    let mut truths = Vec::new();
    for (alert, score) in submission.iter() {
        if let Some(truth) = truth_of(batch, alert) {
            scores.push(json!(score));
            truths.push(truth);
        }
    }
    if scores.is_empty() {
        return Value::Null;
    }
    let total_alerts = submission
        .iter()
        .map(|(alert, _)| alert.as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .len() as u64;
    object([
        ("scores", Value::Array(scores)),
        (field, Value::Array(truths)),
        ("total_alerts", Value::from(total_alerts)),
    ])
}
