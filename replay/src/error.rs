//! The one error type of the mechanisms.

/// Why a mechanism produced no weights. The CLI prints it as `{"error": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MechanismError {
    /// The input does not follow the documented shape or holds values the mechanism cannot
    /// use (NaN, negative weights, unknown uids, ...).
    #[error("invalid input: {0}")]
    Invalid(String),
    /// An input on which the upstream implementation fails, reproduced as a failure (the
    /// spec documents each such case).
    #[error("{0}")]
    Upstream(String),
}

impl MechanismError {
    pub fn invalid(message: impl Into<String>) -> Self {
        MechanismError::Invalid(message.into())
    }

    pub fn upstream(message: impl Into<String>) -> Self {
        MechanismError::Upstream(message.into())
    }
}

impl From<serde_json::Error> for MechanismError {
    fn from(error: serde_json::Error) -> Self {
        MechanismError::Invalid(error.to_string())
    }
}

/// Parses a JSON value into a typed input, naming what was being read on error. `what` is
/// formatted only into the error, so a caller may pass `format_args!` and pay nothing for a
/// value that parses.
pub fn parse<T: serde::de::DeserializeOwned>(
    value: &serde_json::Value,
    what: impl std::fmt::Display,
) -> Result<T, MechanismError> {
    T::deserialize(value).map_err(|error| MechanismError::invalid(format!("{what}: {error}")))
}
