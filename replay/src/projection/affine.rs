//! affine `stages_v2` driven by the log: the per-sample scores, the completeness the Affine
//! API reports and the miners' model commitments are folded from events into the
//! `stages_v2` input of specs/mechanism-io. The legacy `eps_pareto_legacy` mode is not
//! projected (a profile asking for it is refused).
//!
//! How an affine validator records its inputs (the event conventions this fold reads):
//! - `LogOpened` / `ProfileChanged` with profile [`PROFILE`]: `parameters_json`
//!   `{"mode": "stages_v2", "environments": ["affine:sat", ...], "env_configs": {...},
//!   "burn_percentage": 0.0, "config": {...}}`. `environments` (the scoring environments, in
//!   API order) is required; `mode` may be left out; the other keys are optional and reach
//!   the mechanism unchanged (`config` holds the constant overrides of specs/mechanism-io).
//! - `MetagraphObserved`: the hotkey of every uid (`AccountId::to_ss58()`). When a uid's
//!   hotkey changes or the uid leaves the metagraph, another miner holds it: that uid's
//!   commitment, samples and completeness are dropped.
//! - `ExternalScoreRecorded` from [`SOURCE_COMMITMENTS`]: the miners and their on-chain
//!   model commitments, in the order the Affine API lists them (the order breaks ties);
//!   `scores` is unused and must be empty, `extra_json`
//!   `{"miners": [{"uid": 3, "model_repo": "org/m", "model_revision": "abc",
//!   "first_block": 1234}]}` (`first_block` may be `null`). It replaces the previous list.
//!   Every uid must be in the newest metagraph, and appear once. A uid whose model
//!   repository or revision changed loses its samples and completeness (they scored the
//!   previous model).
//! - `ChallengeIssued`: a task; its `environment` is the Affine environment its samples
//!   belong to (`seed`, `prompt`, `extra_json` are not needed here).
//! - `EvaluationRecorded` with evaluator [`EVALUATOR_SAMPLE`]: one per-sample score of the
//!   uid on the task `challenge_id` (which must have been issued). A miner's samples of an
//!   environment are kept in seq order; every event is one sample (recording a result twice
//!   counts it twice, as a repeated sample in the API's list would).
//! - `ExternalScoreRecorded` from [`SOURCE_COMPLETENESS`]: one environment's completeness as
//!   the Affine API reports it, a score per uid, with `extra_json`
//!   `{"environment": "affine:sat", "completed_count": {"3": 480}}` (`completed_count` and
//!   its entries optional). It replaces that environment's completeness of every uid.
//!
//! Other events leave the state unchanged. Nothing reads a clock or draws randomness.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use weightlog_schema::event::{ChallengeIssued, EvaluationRecorded, ExternalScoreRecorded};
use weightlog_schema::{Event, Payload};

use super::{Projection, hotkeys_by_uid, invalid, parse_event_json};
use crate::MechanismError;

pub const PROFILE: &str = "affine";
/// The only mode this projection builds.
pub const MODE: &str = "stages_v2";
/// Evaluator of the per-sample scores.
pub const EVALUATOR_SAMPLE: &str = "affine:sample";
/// Source of the miner list with model commitments.
pub const SOURCE_COMMITMENTS: &str = "affine:commitments";
/// Source of one environment's completeness per uid.
pub const SOURCE_COMPLETENESS: &str = "affine:completeness";

/// The profile's parameters, each JSON part kept as canonical (key-sorted) JSON text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    pub environments: Vec<String>,
    pub env_configs_json: Option<String>,
    pub burn_percentage: Option<f64>,
    pub config_json: Option<String>,
}

/// One miner's model commitment, as the API lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Commitment {
    pub uid: u16,
    /// The uid's hotkey when the list was recorded (kept equal to the metagraph's, since a
    /// hotkey change drops the commitment).
    pub hotkey: String,
    pub model_repo: String,
    pub model_revision: String,
    pub first_block: Option<i64>,
}

/// One miner's data in one environment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EnvironmentData {
    /// Per-sample scores in seq order.
    pub scores: Vec<f64>,
    pub completeness: Option<f64>,
    pub completed_count: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AffineState {
    pub profile: Option<Profile>,
    /// uid -> SS58 hotkey, from the newest metagraph.
    pub hotkeys: BTreeMap<u16, String>,
    /// The newest miner list, in API order.
    pub commitments: Vec<Commitment>,
    /// challenge_id -> environment.
    pub challenges: BTreeMap<String, String>,
    /// uid -> environment -> data.
    pub miners: BTreeMap<u16, BTreeMap<String, EnvironmentData>>,
}

/// The affine `stages_v2` projection.
#[derive(Debug, Clone, Copy, Default)]
pub struct AffineStagesV2;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileParameters {
    #[serde(default)]
    mode: Option<String>,
    environments: Vec<String>,
    #[serde(default)]
    env_configs: Option<Map<String, Value>>,
    #[serde(default)]
    burn_percentage: Option<f64>,
    #[serde(default)]
    config: Option<Map<String, Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CommitmentsExtra {
    miners: Vec<CommitmentEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CommitmentEntry {
    uid: u16,
    model_repo: String,
    model_revision: String,
    first_block: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CompletenessExtra {
    environment: String,
    #[serde(default)]
    completed_count: BTreeMap<String, u64>,
}

impl AffineState {
    /// Forgets everything recorded about `uid` except its place in the metagraph.
    fn drop_uid(&mut self, uid: u16) {
        self.commitments.retain(|commitment| commitment.uid != uid);
        self.miners.remove(&uid);
    }

    /// Forgets `uid`'s samples and completeness (its model changed).
    fn drop_samples(&mut self, uid: u16) {
        self.miners.remove(&uid);
    }
}

/// `uid`'s hotkey in the newest metagraph (`hotkeys`): a miner's data is only taken for a
/// uid the chain knows, since the mechanism keys miners by hotkey.
pub(super) fn hotkey_of(
    hotkeys: &BTreeMap<u16, String>,
    seq: u64,
    uid: u16,
) -> Result<String, MechanismError> {
    hotkeys
        .get(&uid)
        .cloned()
        .ok_or_else(|| invalid(seq, format!("uid {uid} is not in the newest metagraph")))
}

/// `value`, refused unless finite: a NaN or infinity would poison every sum and ranking
/// the mechanism makes with it.
pub(super) fn finite(seq: u64, what: &str, value: f64) -> Result<f64, MechanismError> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(invalid(
            seq,
            format!("{what} must be a finite number, not {value}"),
        ))
    }
}

/// Refuses a profile naming an environment twice (`profile` names the profile in the
/// message): the mechanism's environment list is a set in a given order.
pub(super) fn check_unique_environments(
    seq: u64,
    profile: &str,
    environments: &[String],
) -> Result<(), MechanismError> {
    let mut seen = std::collections::BTreeSet::new();
    for name in environments {
        if !seen.insert(name) {
            return Err(invalid(
                seq,
                format!("{profile} lists environment `{name}` twice"),
            ));
        }
    }
    Ok(())
}

/// Refuses a miner-list event (from `source`) with per-uid scores: its miners are in
/// `extra_json`, and scores beside them would be silently ignored.
pub(super) fn check_no_scores(
    seq: u64,
    source: &str,
    external: &ExternalScoreRecorded,
) -> Result<(), MechanismError> {
    if !external.scores.is_empty() {
        return Err(invalid(
            seq,
            format!("{source} carries its miners in extra_json; its scores must be empty"),
        ));
    }
    Ok(())
}

/// Refuses a uid listed twice in one miner list from `source`: a miner has one entry.
pub(super) fn check_listed_once(
    seq: u64,
    source: &str,
    listed: impl IntoIterator<Item = u16>,
    uid: u16,
) -> Result<(), MechanismError> {
    if listed.into_iter().any(|known| known == uid) {
        return Err(invalid(seq, format!("{source} lists uid {uid} twice")));
    }
    Ok(())
}

/// Records the environment of an issued challenge (`challenges`: challenge id ->
/// environment). Re-issuing a challenge is allowed, but not in another environment: its
/// samples would then count in two places.
pub(super) fn record_challenge(
    seq: u64,
    challenges: &mut BTreeMap<String, String>,
    challenge: &ChallengeIssued,
) -> Result<(), MechanismError> {
    match challenges.get(&challenge.challenge_id) {
        Some(environment) if *environment != challenge.environment => Err(invalid(
            seq,
            format!(
                "challenge `{}` was issued in environment `{environment}`, not `{}`",
                challenge.challenge_id, challenge.environment
            ),
        )),
        Some(_) => Ok(()),
        None => {
            challenges.insert(
                challenge.challenge_id.clone(),
                challenge.environment.clone(),
            );
            Ok(())
        }
    }
}

/// The environment and score of a per-sample evaluation, after checking its challenge was
/// issued, its uid is in the newest metagraph and its score is finite: a sample must count
/// for a known task and miner.
pub(super) fn sample_of(
    seq: u64,
    challenges: &BTreeMap<String, String>,
    hotkeys: &BTreeMap<u16, String>,
    evaluation: &EvaluationRecorded,
) -> Result<(String, f64), MechanismError> {
    let Some(environment) = challenges.get(&evaluation.challenge_id).cloned() else {
        return Err(invalid(
            seq,
            format!(
                "sample of uid {} is for challenge `{}`, which was never issued",
                evaluation.uid, evaluation.challenge_id
            ),
        ));
    };
    hotkey_of(hotkeys, seq, evaluation.uid)?;
    let score = finite(seq, "a sample score", evaluation.score)?;
    Ok((environment, score))
}

fn profile_of(seq: u64, parameters_json: &str) -> Result<Profile, MechanismError> {
    let parameters: ProfileParameters = serde_json::from_str(parameters_json).map_err(|error| {
        MechanismError::invalid(format!("event {seq}: affine profile parameters: {error}"))
    })?;
    if let Some(mode) = parameters.mode.as_deref()
        && mode != MODE
    {
        return Err(MechanismError::invalid(format!(
            "event {seq}: the affine projection builds mode `{MODE}` only, not `{mode}`"
        )));
    }
    check_unique_environments(seq, "affine profile", &parameters.environments)?;
    if let Some(burn) = parameters.burn_percentage {
        finite(seq, "burn_percentage", burn)?;
    }
    Ok(Profile {
        environments: parameters.environments,
        env_configs_json: parameters
            .env_configs
            .map(|configs| Value::Object(configs).to_string()),
        burn_percentage: parameters.burn_percentage,
        config_json: parameters
            .config
            .map(|config| Value::Object(config).to_string()),
    })
}

/// An external score's `extra_json` (from `source`) parsed into `T`, with an error naming
/// the event and the source, since each source has its own `extra_json` shape.
pub(super) fn extra_of<T: serde::de::DeserializeOwned>(
    seq: u64,
    source: &str,
    extra_json: &str,
) -> Result<T, MechanismError> {
    parse_event_json(seq, &format!("{source} extra_json"), extra_json)
}

impl Projection for AffineStagesV2 {
    type State = AffineState;
    const NAME: &'static str = "affine/stages_v2";

    fn apply(
        &self,
        state: &mut AffineState,
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
                let recorded: Vec<u16> = state
                    .commitments
                    .iter()
                    .map(|commitment| commitment.uid)
                    .chain(state.miners.keys().copied())
                    .collect();
                for uid in recorded {
                    if state.hotkeys.get(&uid) != hotkeys.get(&uid) {
                        state.drop_uid(uid);
                    }
                }
                state.hotkeys = hotkeys;
            }
            Payload::ExternalScoreRecorded(external) if external.source == SOURCE_COMMITMENTS => {
                check_no_scores(seq, SOURCE_COMMITMENTS, external)?;
                let extra: CommitmentsExtra =
                    extra_of(seq, SOURCE_COMMITMENTS, &external.extra_json)?;
                let mut commitments: Vec<Commitment> = Vec::with_capacity(extra.miners.len());
                for entry in extra.miners {
                    check_listed_once(
                        seq,
                        SOURCE_COMMITMENTS,
                        commitments.iter().map(|known| known.uid),
                        entry.uid,
                    )?;
                    if entry.model_repo.is_empty() || entry.model_revision.is_empty() {
                        return Err(MechanismError::invalid(format!(
                            "event {seq}: uid {} has an empty model_repo or model_revision",
                            entry.uid
                        )));
                    }
                    commitments.push(Commitment {
                        uid: entry.uid,
                        hotkey: hotkey_of(&state.hotkeys, seq, entry.uid)?,
                        model_repo: entry.model_repo,
                        model_revision: entry.model_revision,
                        first_block: entry.first_block,
                    });
                }
                let changed: Vec<u16> = commitments
                    .iter()
                    .filter(|new| {
                        state.commitments.iter().any(|old| {
                            old.uid == new.uid
                                && (old.model_repo != new.model_repo
                                    || old.model_revision != new.model_revision)
                        })
                    })
                    .map(|commitment| commitment.uid)
                    .collect();
                for uid in changed {
                    state.drop_samples(uid);
                }
                state.commitments = commitments;
            }
            Payload::ChallengeIssued(challenge) => {
                record_challenge(seq, &mut state.challenges, challenge)?;
            }
            Payload::EvaluationRecorded(evaluation) if evaluation.evaluator == EVALUATOR_SAMPLE => {
                let (environment, score) =
                    sample_of(seq, &state.challenges, &state.hotkeys, evaluation)?;
                state
                    .miners
                    .entry(evaluation.uid)
                    .or_default()
                    .entry(environment)
                    .or_default()
                    .scores
                    .push(score);
            }
            Payload::ExternalScoreRecorded(external) if external.source == SOURCE_COMPLETENESS => {
                let extra: CompletenessExtra =
                    extra_of(seq, SOURCE_COMPLETENESS, &external.extra_json)?;
                let mut completeness = BTreeMap::new();
                for score in &external.scores {
                    hotkey_of(&state.hotkeys, seq, score.uid)?;
                    let value = finite(seq, "completeness", score.score)?;
                    if completeness.insert(score.uid, value).is_some() {
                        return Err(MechanismError::invalid(format!(
                            "event {seq}: {SOURCE_COMPLETENESS} lists uid {} twice",
                            score.uid
                        )));
                    }
                }
                let mut counts = BTreeMap::new();
                for (uid, count) in &extra.completed_count {
                    let uid: u16 = uid.parse().map_err(|_| {
                        MechanismError::invalid(format!(
                            "event {seq}: completed_count key `{uid}` is not a uid"
                        ))
                    })?;
                    if !completeness.contains_key(&uid) {
                        return Err(MechanismError::invalid(format!(
                            "event {seq}: completed_count of uid {uid}, which has no \
                             completeness in this event"
                        )));
                    }
                    counts.insert(uid, *count);
                }
                for environments in state.miners.values_mut() {
                    if let Some(data) = environments.get_mut(&extra.environment) {
                        data.completeness = None;
                        data.completed_count = None;
                    }
                }
                for (uid, value) in completeness {
                    let data = state
                        .miners
                        .entry(uid)
                        .or_default()
                        .entry(extra.environment.clone())
                        .or_default();
                    data.completeness = Some(value);
                    data.completed_count = counts.get(&uid).copied();
                }
                // An environment left with neither samples nor completeness has no data.
                for environments in state.miners.values_mut() {
                    environments
                        .retain(|_, data| !data.scores.is_empty() || data.completeness.is_some());
                }
                state
                    .miners
                    .retain(|_, environments| !environments.is_empty());
            }
            _ => {}
        }
        Ok(())
    }

    fn decision(
        &self,
        _state: &AffineState,
        output: &Value,
    ) -> Result<super::decision::Recomputed, MechanismError> {
        super::decision::from_affine(output)
    }

    fn input(&self, state: &AffineState) -> Result<Value, MechanismError> {
        let Some(profile) = &state.profile else {
            return Err(MechanismError::invalid(format!(
                "no `{PROFILE}` profile was recorded: the environments are unknown"
            )));
        };
        let miners: Vec<Value> = state
            .commitments
            .iter()
            .map(|commitment| {
                let environments: Map<String, Value> = state
                    .miners
                    .get(&commitment.uid)
                    .map(|environments| {
                        environments
                            .iter()
                            .map(|(name, data)| {
                                let scores = data.scores.iter().copied().map(Value::from);
                                let mut entry = Map::new();
                                entry.insert("scores".into(), Value::Array(scores.collect()));
                                if let Some(completeness) = data.completeness {
                                    entry.insert("completeness".into(), completeness.into());
                                }
                                if let Some(count) = data.completed_count {
                                    entry.insert("completed_count".into(), count.into());
                                }
                                (name.clone(), Value::Object(entry))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let mut miner = json!({
                    "uid": commitment.uid,
                    "hotkey": commitment.hotkey,
                    "model_repo": commitment.model_repo,
                    "model_revision": commitment.model_revision,
                    "first_block": commitment.first_block,
                });
                // Moved in: a value inside `json!` is serialised again, copying every sample.
                miner["env"] = Value::Object(environments);
                miner
            })
            .collect();
        let mut input = json!({
            "mode": MODE,
            "environments": profile.environments,
        });
        input["miners"] = Value::Array(miners);
        let parse = |text: &str, what: &str| {
            serde_json::from_str::<Value>(text).map_err(|error| {
                MechanismError::invalid(format!("stored affine {what} does not parse: {error}"))
            })
        };
        if let Some(configs) = &profile.env_configs_json {
            input["env_configs"] = parse(configs, "env_configs")?;
        }
        if let Some(burn) = profile.burn_percentage {
            input["burn_percentage"] = json!(burn);
        }
        if let Some(config) = &profile.config_json {
            input["config"] = parse(config, "config")?;
        }
        Ok(input)
    }
}
