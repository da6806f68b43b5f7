//! Reading JSON fields with error messages that name the field, which serde's own messages
//! (parsed from a `Value`) do not.

use std::fmt::Display;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::MechanismError;
use crate::error::parse;

/// The object at `path`, or an error naming it.
pub fn object(value: &Value, path: impl Display) -> Result<&Map<String, Value>, MechanismError> {
    value
        .as_object()
        .ok_or_else(|| MechanismError::invalid(format!("`{path}` must be a JSON object")))
}

/// A required field, parsed as `T`.
pub fn required<T: DeserializeOwned>(
    object: &Map<String, Value>,
    key: &str,
    path: impl Display,
) -> Result<T, MechanismError> {
    match object.get(key) {
        None => Err(MechanismError::invalid(format!(
            "`{path}.{key}` is missing"
        ))),
        Some(value) => parse(value, format_args!("`{path}.{key}`")),
    }
}

/// An optional field: missing and `null` both read as `None`.
pub fn optional<T: DeserializeOwned>(
    object: &Map<String, Value>,
    key: &str,
    path: impl Display,
) -> Result<Option<T>, MechanismError> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => parse(value, format_args!("`{path}.{key}`")).map(Some),
    }
}

/// Refuses keys outside `allowed`, so that a misspelt field is not silently ignored.
pub fn refuse_unknown(
    object: &Map<String, Value>,
    allowed: &[&str],
    path: impl Display,
) -> Result<(), MechanismError> {
    match object.keys().find(|key| !allowed.contains(&key.as_str())) {
        Some(unknown) => Err(MechanismError::invalid(format!(
            "unknown field `{path}.{unknown}`; expected one of {}",
            allowed.join(", ")
        ))),
        None => Ok(()),
    }
}

/// Refuses a NaN or infinite number (JSON cannot carry them, but a caller building a `Value`
/// in memory can).
pub fn finite(value: f64, path: impl Display) -> Result<f64, MechanismError> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(MechanismError::invalid(format!(
            "`{path}` must be a finite number, got {value}"
        )))
    }
}
