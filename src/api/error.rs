//! Every refusal the API makes: a status and a JSON body `{"error": "<message>"}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::epistula::EpistulaError;
use crate::log::LogError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(
        "push mode is off on this node: it does not take challenges over HTTP (configure push senders to enable it)"
    )]
    PushDisabled,
    /// The body could not be read (over the size limit, or the connection failed).
    #[error("{message}")]
    Body { status: StatusCode, message: String },
    #[error("unauthorized: {0}")]
    Unauthorized(EpistulaError),
    #[error("forbidden: {0}")]
    Forbidden(EpistulaError),
    #[error("the body is not valid JSON: {0}")]
    MalformedJson(String),
    #[error("field `{field}`: {reason}")]
    InvalidField { field: &'static str, reason: String },
    #[error(
        "challenge `{challenge_id}` is already in the log (seq {seq}); push a new challenge_id"
    )]
    DuplicateChallenge { challenge_id: String, seq: u64 },
    #[error("challenge `{challenge_id}` is being pushed by another request right now")]
    ChallengeInFlight { challenge_id: String },
    #[error("queue full, retry later ({capacity} challenges are waiting for the node)")]
    QueueFull { capacity: usize },
    #[error("the node is shutting down and takes no more challenges")]
    QueueClosed,
    #[error("too many live tails ({0} at once); retry later or page with `limit`")]
    TooManyFollowers(usize),
    #[error("{0}")]
    BadParameter(String),
    #[error("{0}")]
    NotFound(String),
    #[error("method {method} is not allowed on {path}")]
    MethodNotAllowed { method: String, path: String },
    #[error("the log: {0}")]
    Log(#[from] LogError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::PushDisabled | ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Body { status, .. } => *status,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::MalformedJson(_) | ApiError::BadParameter(_) => StatusCode::BAD_REQUEST,
            ApiError::InvalidField { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::DuplicateChallenge { .. } | ApiError::ChallengeInFlight { .. } => {
                StatusCode::CONFLICT
            }
            ApiError::QueueFull { .. } | ApiError::QueueClosed | ApiError::TooManyFollowers(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Log(_) | ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A refused Epistula check: 403 when the sender is simply not on the allow-list, 401
    /// for everything else (unsigned, bad signature, stale, replayed, wrong receiver).
    pub(crate) fn from_epistula(error: EpistulaError) -> ApiError {
        match error {
            EpistulaError::NotAllowed(_) => ApiError::Forbidden(error),
            error => ApiError::Unauthorized(error),
        }
    }

    /// A log error from a read with request parameters: a seq or size the log does not
    /// have is the caller's mistake (400), anything else is the node's (500).
    pub(crate) fn from_read(error: LogError) -> ApiError {
        match error {
            LogError::NoSuchSeq { .. } | LogError::NoCheckpoint { .. } | LogError::Proof(_) => {
                ApiError::BadParameter(error.to_string())
            }
            error => ApiError::Log(error),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.to_string() });
        (self.status(), Json(body)).into_response()
    }
}

pub(crate) async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound(format!(
        "no route {}; GET /openapi.json lists the routes",
        uri.path()
    ))
}

pub(crate) async fn method_not_allowed(
    method: axum::http::Method,
    uri: axum::http::Uri,
) -> ApiError {
    ApiError::MethodNotAllowed {
        method: method.to_string(),
        path: uri.path().to_string(),
    }
}

/// Runs a blocking log read on tokio's blocking pool.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| ApiError::Internal(format!("a blocking task failed: {error}")))?
}
