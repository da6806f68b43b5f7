//! weightlog-replay: the five scoring mechanisms (affine, loosh, quasar, omega, aml), the
//! Bittensor weights -> u16 step, and (later) projections over the log and the parallel
//! auditor.
//!
//! Each mechanism runs on the JSON input shapes of `specs/mechanism-io/` through
//! [`run_json`]; `weightlog mechanism run` is a thin wrapper around it.
//!
//! **Architecture Invariant:** nothing in this crate reads a clock, an environment
//! variable, a file or a random source. Floats use `+ - * / sqrt` in a fixed order;
//! transcendental functions come from the `libm` crate; sorts are stable with explicit
//! tie-breaks; maps whose order reaches an output are `BTreeMap`s.

pub mod affine;
pub mod aml;
pub mod emit;
pub mod error;
pub mod loosh;
pub mod numeric;
pub mod omega;
pub mod projection;
pub mod quasar;

pub use error::MechanismError;

use serde_json::Value;

/// Runs the mechanism an input selects and returns its output document.
///
/// The input's `mode` names the mechanism where it has one (the modes are distinct across
/// systems); loosh inputs are recognised by their `evaluate` / `weights` sections and aml
/// inputs by their `miners` object.
pub fn run_json(input: &Value) -> Result<Value, MechanismError> {
    let Some(object) = input.as_object() else {
        return Err(MechanismError::invalid("the input must be a JSON object"));
    };
    match object.get("mode") {
        Some(Value::String(mode)) => match mode.as_str() {
            "stages_v2" | "eps_pareto_legacy" => affine::run(input),
            "metric" | "readme" | "api_score" | "hfa" | "validator_v1" | "validator_v2" => {
                quasar::run(input)
            }
            "two_pool" | "legacy_winrate" | "reputation" => omega::run(input),
            other => Err(MechanismError::invalid(format!(
                "unknown mode `{other}`; expected one of stages_v2, eps_pareto_legacy, metric, \
                 readme, api_score, hfa, validator_v1, validator_v2, two_pool, legacy_winrate, \
                 reputation (loosh and aml inputs have no mode)"
            ))),
        },
        Some(_) => Err(MechanismError::invalid("`mode` must be a string")),
        None if object.contains_key("evaluate") || object.contains_key("weights") => {
            loosh::run(input)
        }
        None if object.get("miners").is_some_and(Value::is_object) => aml::run(input),
        None => Err(MechanismError::invalid(
            "cannot tell which mechanism this input is for: give a `mode`, a loosh \
             `evaluate`/`weights` section, or an aml `miners` object",
        )),
    }
}

/// Whether a mode computes in float32 upstream, so its floats compare within float32 ulps
/// (specs/mechanism-io/README.md, "How results are compared").
pub fn is_float32_mode(mode: &str) -> bool {
    matches!(
        mode,
        "validator_v1" | "validator_v2" | "two_pool" | "legacy_winrate"
    )
}
