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
    parse(present(object, key, &path)?, format_args!("`{path}.{key}`"))
}

/// An optional field: missing and `null` both read as `None`.
pub fn optional<T: DeserializeOwned>(
    object: &Map<String, Value>,
    key: &str,
    path: impl Display,
) -> Result<Option<T>, MechanismError> {
    given(object, key)
        .map(|value| parse(value, format_args!("`{path}.{key}`")))
        .transpose()
}

/// A required array field, borrowed rather than copied into a new `Vec<Value>`.
pub fn required_array<'a>(
    object: &'a Map<String, Value>,
    key: &str,
    path: impl Display,
) -> Result<&'a [Value], MechanismError> {
    array(present(object, key, &path)?, format_args!("`{path}.{key}`"))
}

/// An optional array field (missing and `null` read as `None`), borrowed.
pub fn optional_array<'a>(
    object: &'a Map<String, Value>,
    key: &str,
    path: impl Display,
) -> Result<Option<&'a [Value]>, MechanismError> {
    given(object, key)
        .map(|value| array(value, format_args!("`{path}.{key}`")))
        .transpose()
}

/// The value of a required field, or an error saying it is missing.
fn present<'a>(
    object: &'a Map<String, Value>,
    key: &str,
    path: impl Display,
) -> Result<&'a Value, MechanismError> {
    object
        .get(key)
        .ok_or_else(|| MechanismError::invalid(format!("`{path}.{key}` is missing")))
}

/// The value of an optional field: `None` when it is missing or `null`.
fn given<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    object.get(key).filter(|value| !value.is_null())
}

/// The items of an array; anything else gets serde's own message, as [`required`] gives.
fn array(value: &Value, what: impl Display) -> Result<&[Value], MechanismError> {
    match value {
        Value::Array(items) => Ok(items),
        other => Err(match parse::<Vec<Value>>(other, &what) {
            Err(error) => error,
            Ok(_) => MechanismError::invalid(format!("{what} must be an array")),
        }),
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
