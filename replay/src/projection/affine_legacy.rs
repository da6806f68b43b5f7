//! affine `eps_pareto_legacy` driven by the log: the per-sample results, the miner list
//! (first block, active, queryable) and the profile's parameters are folded from events into
//! the `eps_pareto_legacy` input of specs/mechanism-io (scoring.md 1.2). The current
//! `stages_v2` mode is projected by [`super::affine`]; this projection refuses an affine
//! profile asking for it, as that one refuses this mode.
//!
//! How a legacy affine validator records its inputs (the event conventions this fold reads;
//! the task and sample conventions are those of [`super::affine`]):
//! - `LogOpened` / `ProfileChanged` with profile [`PROFILE`]: `parameters_json`
//!   `{"mode": "eps_pareto_legacy", "envs": ["SAT", "ABD"], "base_uid": 0, "scale": 1.0,
//!   "burn": 0.0, "k_schedule": "pow2", "config": {...}}`. `mode` (exactly [`MODE`]) and
//!   `envs` (the scored environments, in `ENVS` order) are required; `base_uid` defaults to
//!   0 (upstream's base uid); `scale`, `burn`, `k_schedule` (`"pow2"` or `"comb"`) and
//!   `config` (the constant overrides of specs/mechanism-io) are optional and reach the
//!   mechanism unchanged when given. The base hotkey is the newest metagraph's hotkey of
//!   `base_uid`.
//! - `MetagraphObserved`: the hotkey of every uid (`AccountId::to_ss58()`). When a uid's
//!   hotkey changes or the uid leaves the metagraph, another miner holds it: that uid's
//!   miner-list entry and its counters are dropped.
//! - `ExternalScoreRecorded` from [`SOURCE_MINERS`]: the miners the validator scores, in its
//!   order (the order of the submitted uids and of ties), with what it learnt from the chain
//!   and its probes; `scores` is unused and must be empty, `extra_json`
//!   `{"miners": [{"uid": 3, "first_block": 1234, "active": true, "queryable": true,
//!   "model_repo": "org/affine-m", "model_revision": "abc"}]}` (`first_block` may be `null`;
//!   `model_repo` / `model_revision` may be left out). It replaces the previous list. Every
//!   uid must be in the newest metagraph, and appear once. A uid whose recorded model
//!   repository or revision changed loses its counters, as upstream resets them when
//!   `(model, revision)` changes.
//! - `ChallengeIssued`: a task; its `environment` is the environment its samples count in
//!   (`seed`, `prompt`, `extra_json` are not needed here).
//! - `EvaluationRecorded` with evaluator [`EVALUATOR_SAMPLE`]: one successful per-sample
//!   result of the uid on the task `challenge_id` (which must have been issued); upstream
//!   counts only `response.success` results, so a validator records no sample for a failed
//!   response. Each event does `cnt[env] += 1; succ[env] += score`, in seq order (recording
//!   a result twice counts it twice).
//!
//! Other events leave the state unchanged; a refused event leaves it as it was. Nothing reads
//! a clock or draws randomness.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use weightlog_schema::{Event, Payload};

use super::affine::{
    check_listed_once, check_no_scores, check_unique_environments, extra_of, finite, hotkey_of,
    record_challenge, sample_of,
};
use super::{Projection, hotkeys_by_uid};
use crate::MechanismError;
use crate::affine::legacy::{LegacyConfig, PointsSchedule};

/// The profile name and the per-sample evaluator are shared with [`super::affine`]; the
/// profile's `mode` tells the two projections apart.
pub use super::affine::{EVALUATOR_SAMPLE, PROFILE};
/// The only mode this projection builds.
pub const MODE: &str = "eps_pareto_legacy";
/// Source of the miner list with first block, active and queryable.
pub const SOURCE_MINERS: &str = "affine:legacy_miners";

/// The profile's parameters, each JSON part kept as canonical (key-sorted) JSON text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LegacyProfile {
    pub envs: Vec<String>,
    pub base_uid: u16,
    pub scale: Option<f64>,
    pub burn: Option<f64>,
    pub k_schedule: Option<String>,
    pub config_json: Option<String>,
}

/// One miner of the newest miner list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LegacyMinerEntry {
    pub uid: u16,
    /// The uid's hotkey when the list was recorded (kept equal to the metagraph's, since a
    /// hotkey change drops the entry).
    pub hotkey: String,
    pub first_block: Option<i64>,
    pub active: bool,
    pub queryable: bool,
    pub model_repo: Option<String>,
    pub model_revision: Option<String>,
}

/// One miner's counters in one environment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counter {
    pub cnt: u64,
    /// The sum of the sample scores, added in seq order.
    pub succ: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AffineLegacyState {
    pub profile: Option<LegacyProfile>,
    /// uid -> SS58 hotkey, from the newest metagraph.
    pub hotkeys: BTreeMap<u16, String>,
    /// The newest miner list, in the validator's order.
    pub miners: Vec<LegacyMinerEntry>,
    /// challenge_id -> environment.
    pub challenges: BTreeMap<String, String>,
    /// uid -> environment -> counters.
    pub counters: BTreeMap<u16, BTreeMap<String, Counter>>,
}

/// The affine `eps_pareto_legacy` projection.
#[derive(Debug, Clone, Copy, Default)]
pub struct AffineEpsParetoLegacy;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileParameters {
    #[serde(default)]
    mode: Option<String>,
    envs: Vec<String>,
    #[serde(default)]
    base_uid: u16,
    #[serde(default)]
    scale: Option<f64>,
    #[serde(default)]
    burn: Option<f64>,
    #[serde(default)]
    k_schedule: Option<String>,
    #[serde(default)]
    config: Option<Map<String, Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MinersExtra {
    miners: Vec<MinerEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MinerEntry {
    uid: u16,
    first_block: Option<i64>,
    active: bool,
    queryable: bool,
    #[serde(default)]
    model_repo: Option<String>,
    #[serde(default)]
    model_revision: Option<String>,
}

fn profile_of(seq: u64, parameters_json: &str) -> Result<LegacyProfile, MechanismError> {
    let parameters: ProfileParameters = serde_json::from_str(parameters_json).map_err(|error| {
        MechanismError::invalid(format!(
            "event {seq}: affine legacy profile parameters: {error}"
        ))
    })?;
    match parameters.mode.as_deref() {
        Some(MODE) => {}
        Some(mode) => {
            return Err(MechanismError::invalid(format!(
                "event {seq}: the affine legacy projection builds mode `{MODE}` only, not \
                 `{mode}`"
            )));
        }
        None => {
            return Err(MechanismError::invalid(format!(
                "event {seq}: an affine profile without `mode` is `stages_v2`; the legacy \
                 projection needs `\"mode\": \"{MODE}\"`"
            )));
        }
    }
    check_unique_environments(seq, "affine legacy profile", &parameters.envs)?;
    if let Some(scale) = parameters.scale {
        finite(seq, "scale", scale)?;
    }
    if let Some(burn) = parameters.burn {
        finite(seq, "burn", burn)?;
    }
    if let Some(schedule) = &parameters.k_schedule {
        serde_json::from_value::<PointsSchedule>(json!(schedule)).map_err(|_| {
            MechanismError::invalid(format!(
                "event {seq}: k_schedule must be `pow2` or `comb`, not `{schedule}`"
            ))
        })?;
    }
    let config_json = match parameters.config {
        Some(config) => {
            let config = Value::Object(config);
            serde_json::from_value::<LegacyConfig>(config.clone()).map_err(|error| {
                MechanismError::invalid(format!("event {seq}: affine legacy config: {error}"))
            })?;
            Some(config.to_string())
        }
        None => None,
    };
    Ok(LegacyProfile {
        envs: parameters.envs,
        base_uid: parameters.base_uid,
        scale: parameters.scale,
        burn: parameters.burn,
        k_schedule: parameters.k_schedule,
        config_json,
    })
}

impl Projection for AffineEpsParetoLegacy {
    type State = AffineLegacyState;
    const NAME: &'static str = "affine/eps_pareto_legacy";

    fn apply(
        &self,
        state: &mut AffineLegacyState,
        seq: u64,
        event: &Event,
    ) -> Result<(), MechanismError> {
        match &event.payload {
            Payload::LogOpened(opened) if opened.profile == PROFILE => {
                state.profile = Some(profile_of(seq, &opened.parameters_json)?);
            }
            Payload::ProfileChanged(changed) if changed.profile == PROFILE => {
                state.profile = Some(profile_of(seq, &changed.parameters_json)?);
            }
            Payload::MetagraphObserved(metagraph) => {
                let hotkeys = hotkeys_by_uid(seq, metagraph)?;
                let moved = |uid: &u16| state.hotkeys.get(uid) != hotkeys.get(uid);
                let miners: Vec<LegacyMinerEntry> = state
                    .miners
                    .iter()
                    .filter(|miner| !moved(&miner.uid))
                    .cloned()
                    .collect();
                let counters: BTreeMap<u16, BTreeMap<String, Counter>> = state
                    .counters
                    .iter()
                    .filter(|(uid, _)| !moved(uid))
                    .map(|(uid, counters)| (*uid, counters.clone()))
                    .collect();
                state.miners = miners;
                state.counters = counters;
                state.hotkeys = hotkeys;
            }
            Payload::ExternalScoreRecorded(external) if external.source == SOURCE_MINERS => {
                check_no_scores(seq, SOURCE_MINERS, external)?;
                let extra: MinersExtra = extra_of(seq, SOURCE_MINERS, &external.extra_json)?;
                let mut miners: Vec<LegacyMinerEntry> = Vec::with_capacity(extra.miners.len());
                for entry in extra.miners {
                    check_listed_once(
                        seq,
                        SOURCE_MINERS,
                        miners.iter().map(|known| known.uid),
                        entry.uid,
                    )?;
                    miners.push(LegacyMinerEntry {
                        uid: entry.uid,
                        hotkey: hotkey_of(&state.hotkeys, seq, entry.uid)?,
                        first_block: entry.first_block,
                        active: entry.active,
                        queryable: entry.queryable,
                        model_repo: entry.model_repo,
                        model_revision: entry.model_revision,
                    });
                }
                for new in &miners {
                    let changed = state.miners.iter().any(|old| {
                        old.uid == new.uid
                            && (old.model_repo != new.model_repo
                                || old.model_revision != new.model_revision)
                    });
                    if changed {
                        state.counters.remove(&new.uid);
                    }
                }
                state.miners = miners;
            }
            Payload::ChallengeIssued(challenge) => {
                record_challenge(seq, &mut state.challenges, challenge)?;
            }
            Payload::EvaluationRecorded(evaluation) if evaluation.evaluator == EVALUATOR_SAMPLE => {
                let (environment, score) =
                    sample_of(seq, &state.challenges, &state.hotkeys, evaluation)?;
                let counter = state
                    .counters
                    .entry(evaluation.uid)
                    .or_default()
                    .entry(environment)
                    .or_default();
                counter.cnt += 1;
                counter.succ += score;
            }
            _ => {}
        }
        Ok(())
    }

    fn decision(
        &self,
        _state: &AffineLegacyState,
        output: &Value,
    ) -> Result<super::decision::Recomputed, MechanismError> {
        super::decision::from_affine(output)
    }

    fn input(&self, state: &AffineLegacyState) -> Result<Value, MechanismError> {
        let Some(profile) = &state.profile else {
            return Err(MechanismError::invalid(format!(
                "no `{PROFILE}` profile with mode `{MODE}` was recorded: the environments are \
                 unknown"
            )));
        };
        let Some(base_hotkey) = state.hotkeys.get(&profile.base_uid) else {
            return Err(MechanismError::invalid(format!(
                "the base uid {} is not in the newest metagraph: the base hotkey is unknown",
                profile.base_uid
            )));
        };
        let miners: Vec<Value> = state
            .miners
            .iter()
            .map(|miner| {
                let mut cnt = Map::new();
                let mut succ = Map::new();
                if let Some(counters) = state.counters.get(&miner.uid) {
                    for (environment, counter) in counters {
                        cnt.insert(environment.clone(), json!(counter.cnt));
                        succ.insert(environment.clone(), json!(counter.succ));
                    }
                }
                json!({
                    "hotkey": miner.hotkey,
                    "uid": miner.uid,
                    "first_block": miner.first_block,
                    "active": miner.active,
                    "queryable": miner.queryable,
                    "cnt": cnt,
                    "succ": succ,
                })
            })
            .collect();
        let mut input = json!({
            "mode": MODE,
            "envs": profile.envs,
            "miners": miners,
            "base_hotkey": base_hotkey,
            "base_uid": profile.base_uid,
        });
        if let Some(scale) = profile.scale {
            input["scale"] = json!(scale);
        }
        if let Some(burn) = profile.burn {
            input["burn"] = json!(burn);
        }
        if let Some(schedule) = &profile.k_schedule {
            input["k_schedule"] = json!(schedule);
        }
        if let Some(config) = &profile.config_json {
            input["config"] = serde_json::from_str::<Value>(config).map_err(|error| {
                MechanismError::invalid(format!(
                    "stored affine legacy config does not parse: {error}"
                ))
            })?;
        }
        Ok(input)
    }
}
