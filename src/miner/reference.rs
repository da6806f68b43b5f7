//! The reference miner: an axum server answering `POST /challenge` for every built-in
//! environment, right with probability `quality` (drawn from the seed and challenge id, so a
//! run is reproducible), after a configured latency. With an [`Upstream`] it forwards prompts
//! to an OpenAI-compatible chat completions endpoint instead (proxy mode).
//!
//! Every request must carry Epistula v2 headers signed for this miner's hotkey, fresh and not
//! replayed, from an allowed validator when an allow-list is set: otherwise 401 with a JSON
//! `{"error": ...}` naming the reason. Answers are signed for the requesting validator.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::json;
use tokio::sync::oneshot;
use weightlog_schema::event::AccountId;

use super::MinerError;
use super::answers::{self, Draw};
use super::protocol::{CHALLENGE_PATH, ChallengeAnswer, ChallengeRequest};
use crate::epistula::{self, Headers, Verifier};
use crate::keys::Hotkey;

/// The largest request body accepted (413 above).
pub const REQUEST_BYTES_MAX: usize = 1 << 20;
/// The largest upstream response read in proxy mode.
pub const UPSTREAM_BYTES_MAX: usize = 4 << 20;
/// How long proxy mode waits for the upstream model.
pub const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(120);
/// Latency jitter: the sleep is `latency_ms` times a factor in 1 ± this.
const LATENCY_JITTER: f64 = 0.2;
/// How long `shutdown` waits for open connections before dropping them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// An OpenAI-compatible endpoint that answers in proxy mode.
#[derive(Clone, PartialEq, Eq)]
pub struct Upstream {
    /// Base URL; requests go to `{url}/v1/chat/completions`.
    pub url: String,
    pub model: String,
    /// Sent as `Authorization: Bearer {key}` when set.
    pub api_key: Option<String>,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key is a secret: Debug says only whether there is one.
        formatter
            .debug_struct("Upstream")
            .field("url", &self.url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// How the reference miner answers.
#[derive(Debug, Clone)]
pub struct ReferenceConfig {
    pub hotkey: Hotkey,
    /// Probability (0..=1) that an answer is correct.
    pub quality: f64,
    /// Mean delay before answering (± 20 % jitter).
    pub latency_ms: u64,
    /// Seeds every draw (correctness, jitter, wording).
    pub seed: u64,
    /// `None`: any validator whose signature verifies.
    pub allowed_validators: Option<BTreeSet<AccountId>>,
    /// Proxy mode: forward prompts here instead of answering from the built-in solvers.
    pub upstream: Option<Upstream>,
}

/// A reference miner serving in a spawned task.
#[derive(Debug)]
pub struct RunningMiner {
    pub addr: SocketAddr,
    pub hotkey: AccountId,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl RunningMiner {
    /// Stops accepting requests and waits (a few seconds at most) for open ones to finish.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(SHUTDOWN_GRACE, &mut task)
                .await
                .is_err()
        {
            task.abort();
        }
    }
}

impl Drop for RunningMiner {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

struct Miner {
    hotkey: Hotkey,
    own: AccountId,
    verifier: Verifier,
    quality: f64,
    latency_ms: u64,
    seed: u64,
    upstream: Option<(Upstream, reqwest::Client)>,
}

/// Serves the reference miner on `listener` in a spawned task (call inside a tokio runtime).
pub async fn spawn(
    config: ReferenceConfig,
    listener: tokio::net::TcpListener,
) -> Result<RunningMiner, MinerError> {
    if !(0.0..=1.0).contains(&config.quality) {
        return Err(MinerError::Config(format!(
            "quality must be in 0..=1, not {}",
            config.quality
        )));
    }
    let addr = listener.local_addr().map_err(MinerError::Listener)?;
    let own = AccountId(config.hotkey.public_key());
    let mut verifier = Verifier::new(Some(own), config.allowed_validators);
    verifier.require_signed_for = true;
    let upstream = match config.upstream {
        None => None,
        Some(upstream) => {
            crate::http::install_tls_provider();
            let client = reqwest::Client::builder()
                .user_agent(concat!("weightlog-miner/", env!("CARGO_PKG_VERSION")))
                .timeout(UPSTREAM_TIMEOUT)
                .build()
                .map_err(|error| MinerError::Http(error.to_string()))?;
            Some((upstream, client))
        }
    };
    let miner = Arc::new(Miner {
        hotkey: config.hotkey,
        own,
        verifier,
        quality: config.quality,
        latency_ms: config.latency_ms,
        seed: config.seed,
        upstream,
    });
    let router = Router::new()
        .route(CHALLENGE_PATH, post(challenge))
        .with_state(miner);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let serving = axum::serve(listener, router).with_graceful_shutdown(async move {
            let _ = stopped.await;
        });
        // Accept errors are retried inside axum; `serve` only returns on shutdown.
        let _ = serving.await;
    });
    Ok(RunningMiner {
        addr,
        hotkey: own,
        stop: Some(stop),
        task: Some(task),
    })
}

fn refuse(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "error": message.into() }))).into_response()
}

async fn challenge(State(miner): State<Arc<Miner>>, headers: HeaderMap, body: Body) -> Response {
    let body: Bytes = match axum::body::to_bytes(body, REQUEST_BYTES_MAX).await {
        Ok(body) => body,
        Err(_) => {
            return refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body exceeds {REQUEST_BYTES_MAX} bytes"),
            );
        }
    };
    let signed = Headers::parse(|name| headers.get(name).and_then(|value| value.to_str().ok()));
    let verified = signed.and_then(|signed| {
        let now_ms = epistula::now_ms()?;
        miner.verifier.verify(&signed, &body, now_ms)
    });
    let validator = match verified {
        Ok(validator) => validator,
        Err(error) => return refuse(StatusCode::UNAUTHORIZED, error.to_string()),
    };
    let request: ChallengeRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(error) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                format!("malformed challenge request: {error}"),
            );
        }
    };
    let answer = match &miner.upstream {
        Some((upstream, client)) => match ask_upstream(client, upstream, &request.prompt).await {
            Ok(answer) => answer,
            Err(reason) => {
                return refuse(
                    StatusCode::BAD_GATEWAY,
                    format!("upstream failed: {reason}"),
                );
            }
        },
        None => {
            let draw = Draw::new(miner.seed, &request.challenge_id);
            let correct = draw.unit("correct") < miner.quality;
            let answer = match answers::answer(
                &request.environment,
                &request.prompt,
                correct,
                miner.quality,
                &draw,
            ) {
                Ok(answer) => answer,
                Err(error) => return refuse(StatusCode::BAD_REQUEST, error.to_string()),
            };
            let jitter = 1.0 + (draw.unit("latency") * 2.0 - 1.0) * LATENCY_JITTER;
            let delay_ms = (miner.latency_ms as f64 * jitter).round() as u64;
            if delay_ms > 0 {
                tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            }
            answer
        }
    };
    signed_answer(&miner, validator, request.challenge_id, answer)
}

fn signed_answer(
    miner: &Miner,
    validator: AccountId,
    challenge_id: String,
    answer: String,
) -> Response {
    let body = match serde_json::to_vec(&ChallengeAnswer {
        challenge_id,
        answer,
    }) {
        Ok(body) => body,
        Err(error) => {
            return refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot encode the answer: {error}"),
            );
        }
    };
    let signature = match Headers::sign_now(&miner.hotkey, &body, Some(validator)) {
        Ok(signature) => signature,
        Err(error) => return refuse(StatusCode::INTERNAL_SERVER_ERROR, error.to_string()),
    };
    debug_assert_eq!(signature.signed_by, miner.own);
    let mut response = Response::new(Body::from(body));
    let map = response.headers_mut();
    map.insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    for (name, value) in signature.pairs() {
        // Both always parse (ASCII names, hex and decimal values); `from_bytes` lowercases.
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            map.insert(name, value);
        }
    }
    response
}

/// Proxy mode: the upstream model's answer to `prompt`, or why there is none.
async fn ask_upstream(
    client: &reqwest::Client,
    upstream: &Upstream,
    prompt: &str,
) -> Result<String, String> {
    let url = format!("{}/v1/chat/completions", upstream.url.trim_end_matches('/'));
    let payload = json!({
        "model": upstream.model,
        "messages": [{ "role": "user", "content": prompt }],
    });
    let mut request = client
        .post(&url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(payload.to_string());
    if let Some(key) = &upstream.api_key {
        request = request.bearer_auth(key);
    }
    let mut response = request
        .send()
        .await
        .map_err(|error| format!("{url}: {error}"))?;
    let status = response.status();
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|error| format!("{url}: reading the response: {error}"))?
    {
        if body.len() + chunk.len() > UPSTREAM_BYTES_MAX {
            return Err(format!(
                "{url}: response exceeds {UPSTREAM_BYTES_MAX} bytes"
            ));
        }
        body.extend_from_slice(&chunk);
    }
    if !status.is_success() {
        let text: String = String::from_utf8_lossy(&body).chars().take(200).collect();
        return Err(format!("{url} answered HTTP {}: {text}", status.as_u16()));
    }
    let value: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|error| format!("{url}: the response is not JSON: {error}"))?;
    value
        .pointer("/choices/0/message/content")
        .and_then(serde_json::Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| format!("{url}: the response has no choices[0].message.content"))
}
