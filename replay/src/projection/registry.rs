//! Which projection a log needs: chosen from the profile and parameters the validator
//! recorded (`LogOpened` / `ProfileChanged`), so a replay always runs what the validator ran.
//!
//! Profiles and the `parameters_json` key that selects among a profile's projections:
//!
//! | profile | selector | projection |
//! |---|---|---|
//! | `affine` | `mode`: `stages_v2` (default) or `eps_pareto_legacy` | [`AffineStagesV2`], [`AffineEpsParetoLegacy`] |
//! | `loosh` | — | [`LooshWeights`] (per-round evaluation: [`LooshEvaluate`](super::loosh_evaluate::LooshEvaluate)) |
//! | `quasar` | `validator`: `v1` or `v2` (read by the projection) | [`QuasarValidator`] |
//! | `quasar_items` | `mode`: metric, readme, api_score, hfa (read by the projection) | [`QuasarItems`] |
//! | `omega` | `mode`: `two_pool` (default), `legacy_winrate` or `reputation` | [`OmegaTwoPool`], [`OmegaLegacyWinrate`], [`OmegaReputation`] |
//! | `aml` | — | [`AmlScores`] |
//!
//! [`RunningProjection`] hides each projection's state type behind one object-safe
//! interface, so a replay can drive whichever the log names.

use serde_json::Value;
use weightlog_schema::{Event, Hash, Payload};

use super::affine::AffineStagesV2;
use super::affine_legacy::AffineEpsParetoLegacy;
use super::aml::AmlScores;
use super::decision::Recomputed;
use super::loosh::LooshWeights;
use super::omega::OmegaTwoPool;
use super::omega_legacy::{OmegaLegacyWinrate, OmegaReputation};
use super::quasar::QuasarValidator;
use super::quasar_items::QuasarItems;
use super::{Projection, ProjectionCheckpoint, state_hash};
use crate::MechanismError;

/// A projection with its state, behind an interface that does not name the state's type.
pub trait RunningProjection: Send {
    /// The projection's name (as in its checkpoints).
    fn name(&self) -> &'static str;
    /// Folds the event at `seq`; events must come in seq order.
    fn apply(&mut self, seq: u64, event: &Event) -> Result<(), MechanismError>;
    /// The mechanism's output for the state so far.
    fn output(&self) -> Result<Value, MechanismError>;
    /// The weight decision for the state so far. The mechanism output it is read from is
    /// dropped here (`output` gives it): for some mechanisms it lists every task recorded.
    fn decision(&self) -> Result<Recomputed, MechanismError>;
    /// A copy of this projection and its state, so a decision can be computed from it
    /// while the fold goes on.
    fn fork(&self) -> Box<dyn RunningProjection>;
    /// The determinism witness of the state so far.
    fn state_hash(&self) -> Result<Hash, MechanismError>;
    /// A checkpoint of the state, covering the seqs below `next_seq`.
    fn checkpoint(&self, next_seq: u64) -> Result<ProjectionCheckpoint, MechanismError>;
    /// Replaces the state with a checkpoint's (which must be for this projection).
    fn restore(&mut self, checkpoint: &ProjectionCheckpoint) -> Result<(), MechanismError>;
}

struct Running<P: Projection> {
    projection: P,
    state: P::State,
}

impl<P> RunningProjection for Running<P>
where
    P: Projection + Clone + Send + 'static,
    P::State: Send,
{
    fn name(&self) -> &'static str {
        P::NAME
    }

    fn apply(&mut self, seq: u64, event: &Event) -> Result<(), MechanismError> {
        self.projection.apply(&mut self.state, seq, event)
    }

    fn output(&self) -> Result<Value, MechanismError> {
        self.projection.output(&self.state)
    }

    fn decision(&self) -> Result<Recomputed, MechanismError> {
        let output = self.projection.output(&self.state)?;
        self.projection.decision(&self.state, &output)
    }

    fn fork(&self) -> Box<dyn RunningProjection> {
        Box::new(Running {
            projection: self.projection.clone(),
            state: self.state.clone(),
        })
    }

    fn state_hash(&self) -> Result<Hash, MechanismError> {
        state_hash(&self.state)
    }

    fn checkpoint(&self, next_seq: u64) -> Result<ProjectionCheckpoint, MechanismError> {
        ProjectionCheckpoint::capture::<P>(&self.state, next_seq)
    }

    fn restore(&mut self, checkpoint: &ProjectionCheckpoint) -> Result<(), MechanismError> {
        self.state = checkpoint.restore::<P>()?;
        Ok(())
    }
}

fn running<P>(projection: P) -> Box<dyn RunningProjection>
where
    P: Projection + Clone + Send + 'static,
    P::State: Send,
{
    Box::new(Running {
        projection,
        state: P::State::default(),
    })
}

/// The profiles that have a projection. A log of any other profile has nothing to
/// recompute; a log of one of these whose parameters its projection cannot use is invalid.
pub const PROFILES: [&str; 6] = ["affine", "loosh", "quasar", "quasar_items", "omega", "aml"];

/// The projection for a profile and its parameters, with an empty state.
pub fn for_profile(
    profile: &str,
    parameters_json: &str,
) -> Result<Box<dyn RunningProjection>, MechanismError> {
    let parameters: Value = serde_json::from_str(parameters_json).map_err(|error| {
        MechanismError::invalid(format!("profile `{profile}` parameters: {error}"))
    })?;
    let mode = match parameters.get("mode") {
        None | Some(Value::Null) => None,
        Some(Value::String(mode)) => Some(mode.as_str()),
        Some(other) => {
            return Err(MechanismError::invalid(format!(
                "profile `{profile}`: mode must be a string, not {other}"
            )));
        }
    };
    let unknown_mode = |known: &str| {
        MechanismError::invalid(format!(
            "profile `{profile}` has no mode `{}`; known: {known}",
            mode.unwrap_or_default()
        ))
    };
    match profile {
        "affine" => match mode {
            None | Some("stages_v2") => Ok(running(AffineStagesV2)),
            Some("eps_pareto_legacy") => Ok(running(AffineEpsParetoLegacy)),
            Some(_) => Err(unknown_mode("stages_v2, eps_pareto_legacy")),
        },
        "loosh" => Ok(running(LooshWeights)),
        "quasar" => Ok(running(QuasarValidator)),
        "quasar_items" => Ok(running(QuasarItems)),
        "omega" => match mode {
            None | Some("two_pool") => Ok(running(OmegaTwoPool)),
            Some("legacy_winrate") => Ok(running(OmegaLegacyWinrate)),
            Some("reputation") => Ok(running(OmegaReputation)),
            Some(_) => Err(unknown_mode("two_pool, legacy_winrate, reputation")),
        },
        "aml" => Ok(running(AmlScores)),
        other => Err(MechanismError::invalid(format!(
            "no projection for profile `{other}`; known profiles: {}",
            PROFILES.join(", ")
        ))),
    }
}

/// The projection a log needs, from its genesis event (seq 0, `LogOpened`).
pub fn for_genesis(genesis: &Event) -> Result<Box<dyn RunningProjection>, MechanismError> {
    match &genesis.payload {
        Payload::LogOpened(opened) => for_profile(&opened.profile, &opened.parameters_json),
        other => Err(MechanismError::invalid(format!(
            "a log starts with LogOpened, not {}",
            other.kind()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`PROFILES`] is the list `for_profile` knows: each of them gets its projection or an
    /// error about its parameters, any other name gets "no projection".
    #[test]
    fn the_profiles_listed_are_the_profiles_known() {
        for profile in PROFILES {
            if let Err(error) = for_profile(profile, "{}") {
                assert!(
                    !error.to_string().contains("no projection for profile"),
                    "{profile}: {error}"
                );
            }
        }
        let error = for_profile("custom", "{}").err().expect("no projection");
        assert!(
            error
                .to_string()
                .contains("no projection for profile `custom`")
        );
    }
}
