//! The validator's miner client: sends a signed [`ChallengeRequest`] to each miner's axon and
//! records what came back as a [`MinerReply`] (one `ResponseReceived` event each).
//!
//! Every request is bounded: a per-attempt timeout, a response size limit enforced while the
//! body streams in (a miner cannot make the validator buffer more than
//! [`ClientConfig::response_bytes_max`]), and a client-wide limit on requests in flight, shared
//! by every call on the client. Only failures that may pass on their own are retried: connect
//! errors, resets, timeouts and 5xx answers. A 4xx, a body that is too large, malformed or for
//! another challenge, or a bad signature is the miner's final answer.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use weightlog_schema::event::{AccountId, Neuron, ResponseOutcome, ResponseReceived, Signature};

use super::MinerError;
use super::protocol::{CHALLENGE_PATH, ChallengeAnswer, ChallengeRequest};
use crate::epistula::{self, Headers};
use crate::keys::Hotkey;

/// Requests in flight at once unless configured otherwise.
pub const CONCURRENCY_DEFAULT: usize = 32;
/// The largest response accepted unless configured otherwise.
pub const RESPONSE_BYTES_MAX_DEFAULT: usize = 1 << 20;
/// How much of an error response's body is quoted in the outcome's message.
const ERROR_QUOTE_CHARS_MAX: usize = 200;
/// How much of an error response's body is read at all.
const ERROR_BODY_BYTES_MAX: usize = 4_096;

/// How the client bounds and retries requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// Requests in flight at once across every call on one client (at least 1).
    pub concurrency: usize,
    /// Limit of one attempt: connect, send, and read the whole response.
    pub timeout: Duration,
    /// Requests made at most per query (at least 1), the first included.
    pub attempts: u32,
    /// Wait before the first retry; doubles before each further one.
    pub backoff: Duration,
    /// A longer response body is refused without being read further.
    pub response_bytes_max: usize,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            concurrency: CONCURRENCY_DEFAULT,
            timeout: Duration::from_secs(12),
            attempts: 3,
            backoff: Duration::from_millis(200),
            response_bytes_max: RESPONSE_BYTES_MAX_DEFAULT,
        }
    }
}

/// A miner to query: its uid, hotkey (the Epistula receiver) and base URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MinerTarget {
    pub uid: u16,
    pub hotkey: AccountId,
    /// Base URL without a trailing slash, e.g. `http://127.0.0.1:40123`.
    pub url: String,
}

impl MinerTarget {
    /// The target a metagraph neuron serves, or `None` when it serves nothing (no axon, an
    /// unparsable or unspecified address, port 0).
    pub fn from_neuron(neuron: &Neuron) -> Option<MinerTarget> {
        let axon = neuron.axon.as_ref()?;
        let ip: IpAddr = axon.ip.trim().parse().ok()?;
        if ip.is_unspecified() || axon.port == 0 {
            return None;
        }
        // SocketAddr's Display brackets IPv6 addresses as URLs need.
        Some(MinerTarget {
            uid: neuron.uid,
            hotkey: neuron.hotkey,
            url: format!("http://{}", SocketAddr::new(ip, axon.port)),
        })
    }
}

/// What one query of one miner gave.
#[derive(Debug, Clone, PartialEq)]
pub struct MinerReply {
    pub uid: u16,
    pub hotkey: AccountId,
    /// `Ok { body }` holds the answer text of a valid [`ChallengeAnswer`].
    pub outcome: ResponseOutcome,
    /// From the first request sent to the final outcome, retries and backoff included.
    pub latency_ms: u64,
    /// Requests made.
    pub attempts: u32,
    /// The miner's Epistula signature over its raw response body, when it signed it.
    pub miner_signature: Option<Signature>,
}

impl MinerReply {
    /// The `ResponseReceived` event that records this reply.
    pub fn into_event(self, challenge_id: &str) -> ResponseReceived {
        ResponseReceived {
            challenge_id: challenge_id.to_string(),
            uid: self.uid,
            hotkey: self.hotkey,
            outcome: self.outcome,
            latency_ms: self.latency_ms,
            attempts: self.attempts,
            miner_signature: self.miner_signature,
        }
    }
}

/// Queries miners. Cheap to clone: clones share the HTTP connection pool and the in-flight
/// limit.
#[derive(Clone)]
pub struct MinerClient {
    inner: Arc<Inner>,
}

struct Inner {
    hotkey: Hotkey,
    validator: AccountId,
    config: ClientConfig,
    http: reqwest::Client,
    in_flight: Semaphore,
}

impl std::fmt::Debug for MinerClient {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("MinerClient")
            .field("validator", &self.inner.validator.to_ss58())
            .field("config", &self.inner.config)
            .finish()
    }
}

/// Why one attempt failed, and whether another attempt may succeed.
struct Failure {
    message: String,
    retryable: bool,
}

impl Failure {
    fn fatal(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            retryable: false,
        }
    }

    fn transient(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            retryable: true,
        }
    }
}

impl MinerClient {
    /// A client signing with the validator's `hotkey`.
    pub fn new(hotkey: Hotkey, config: ClientConfig) -> Result<MinerClient, MinerError> {
        if config.concurrency == 0 || config.concurrency > Semaphore::MAX_PERMITS {
            return Err(MinerError::Config(format!(
                "concurrency must be in 1..={}, not {}",
                Semaphore::MAX_PERMITS,
                config.concurrency
            )));
        }
        if config.attempts == 0 {
            return Err(MinerError::Config(
                "attempts must be at least 1 (the first request counts)".into(),
            ));
        }
        if config.timeout.is_zero() {
            return Err(MinerError::Config("timeout must be above zero".into()));
        }
        crate::http::install_tls_provider();
        let http = reqwest::Client::builder()
            .user_agent(concat!("weightlog/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(config.timeout)
            // A miner's axon is an address on the chain; it does not get to send the
            // validator elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .map_err(|error| MinerError::Http(error.to_string()))?;
        Ok(MinerClient {
            inner: Arc::new(Inner {
                validator: AccountId(hotkey.public_key()),
                hotkey,
                in_flight: Semaphore::new(config.concurrency),
                config,
                http,
            }),
        })
    }

    /// The validator hotkey requests are signed with.
    pub fn validator(&self) -> AccountId {
        self.inner.validator
    }

    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// Queries one miner, retrying transient failures. Never fails: a failure is the
    /// reply's `Error` outcome.
    pub async fn query(&self, target: &MinerTarget, request: &ChallengeRequest) -> MinerReply {
        let config = &self.inner.config;
        let started = Instant::now();
        let body = match serde_json::to_vec(request) {
            Ok(body) => body,
            Err(error) => {
                return reply(
                    target,
                    started,
                    0,
                    Err(format!("cannot encode the request: {error}")),
                );
            }
        };
        let mut attempts = 0u32;
        let mut backoff = config.backoff;
        loop {
            attempts += 1;
            let result = {
                // The permit is held while the request is in flight, not while backing off.
                let _permit = match self.inner.in_flight.acquire().await {
                    Ok(permit) => permit,
                    Err(_) => {
                        return reply(
                            target,
                            started,
                            attempts,
                            Err("the client is shut down".into()),
                        );
                    }
                };
                match tokio::time::timeout(
                    config.timeout,
                    self.attempt(target, &request.challenge_id, &body),
                )
                .await
                {
                    Ok(result) => result,
                    Err(_) => Err(Failure::transient(format!(
                        "timed out after {} ms",
                        config.timeout.as_millis()
                    ))),
                }
            };
            match result {
                Ok(answer) => return reply(target, started, attempts, Ok(answer)),
                Err(failure) if failure.retryable && attempts < config.attempts => {
                    tokio::time::sleep(backoff).await;
                    backoff = backoff.saturating_mul(2);
                }
                Err(failure) => {
                    let message = if attempts > 1 {
                        format!("{} (after {attempts} attempts)", failure.message)
                    } else {
                        failure.message
                    };
                    return reply(target, started, attempts, Err(message));
                }
            }
        }
    }

    /// Queries every target concurrently (at most [`ClientConfig::concurrency`] requests in
    /// flight across all calls on this client); the replies are in target order.
    pub async fn query_many(
        &self,
        targets: &[MinerTarget],
        request: &ChallengeRequest,
    ) -> Vec<MinerReply> {
        let mut tasks = tokio::task::JoinSet::new();
        for (index, target) in targets.iter().enumerate() {
            let client = self.clone();
            let target = target.clone();
            let request = request.clone();
            tasks.spawn(async move { (index, client.query(&target, &request).await) });
        }
        let mut replies: Vec<Option<MinerReply>> = vec![None; targets.len()];
        while let Some(joined) = tasks.join_next().await {
            // A query never panics by design; a panicked task leaves its slot empty and is
            // reported below as an error outcome.
            if let Ok((index, reply)) = joined {
                replies[index] = Some(reply);
            }
        }
        replies
            .into_iter()
            .zip(targets)
            .map(|(reply, target)| {
                reply.unwrap_or_else(|| MinerReply {
                    uid: target.uid,
                    hotkey: target.hotkey,
                    outcome: ResponseOutcome::Error {
                        message: "internal error: the query task failed".into(),
                    },
                    latency_ms: 0,
                    attempts: 0,
                    miner_signature: None,
                })
            })
            .collect()
    }

    /// One request: sign, send, read the bounded body, check the answer and its signature.
    async fn attempt(
        &self,
        target: &MinerTarget,
        challenge_id: &str,
        body: &[u8],
    ) -> Result<(String, Option<Signature>), Failure> {
        let inner = &self.inner;
        // A fresh uuid and timestamp per attempt: the miner refuses a replayed uuid.
        let headers = Headers::sign_now(&inner.hotkey, body, Some(target.hotkey))
            .map_err(|error| Failure::fatal(format!("cannot sign the request: {error}")))?;
        let url = format!("{}{CHALLENGE_PATH}", target.url.trim_end_matches('/'));
        let mut builder = inner
            .http
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_vec());
        for (name, value) in headers.pairs() {
            builder = builder.header(name, value);
        }
        let mut response = builder.send().await.map_err(send_failure)?;
        let status = response.status();
        if !status.is_success() {
            let text = read_limited(&mut response, ERROR_BODY_BYTES_MAX)
                .await
                .map(|(bytes, _)| quote(&bytes))
                .unwrap_or_default();
            let message = format!("miner answered HTTP {}: {text}", status.as_u16());
            return Err(if status.is_server_error() {
                Failure::transient(message)
            } else {
                Failure::fatal(message)
            });
        }
        let limit = inner.config.response_bytes_max;
        let exceeds = || Failure::fatal(format!("response exceeds {limit} bytes"));
        if response
            .content_length()
            .is_some_and(|length| length > limit as u64)
        {
            return Err(exceeds());
        }
        let signed = response_headers(response.headers())?;
        let (raw, complete) = read_limited(&mut response, limit).await?;
        if !complete {
            return Err(exceeds());
        }
        let signature = match signed {
            None => None,
            Some(headers) => Some(self.check_signature(target, &headers, &raw)?),
        };
        let answer: ChallengeAnswer = serde_json::from_slice(&raw)
            .map_err(|error| Failure::fatal(format!("malformed response: {error}")))?;
        if answer.challenge_id != challenge_id {
            return Err(Failure::fatal(format!(
                "answer is for challenge {}, not {challenge_id}",
                quote(answer.challenge_id.as_bytes())
            )));
        }
        Ok((answer.answer, signature))
    }

    fn check_signature(
        &self,
        target: &MinerTarget,
        headers: &Headers,
        raw: &[u8],
    ) -> Result<Signature, Failure> {
        if headers.signed_by != target.hotkey {
            return Err(Failure::fatal(format!(
                "response signed by {} not the miner's hotkey {}",
                headers.signed_by.to_ss58(),
                target.hotkey.to_ss58()
            )));
        }
        if let Some(signed_for) = &headers.signed_for
            && *signed_for != self.inner.validator
        {
            return Err(Failure::fatal(format!(
                "response signed for {}, not this validator {}",
                signed_for.to_ss58(),
                self.inner.validator.to_ss58()
            )));
        }
        headers
            .verify_signature(raw)
            .map_err(|error| Failure::fatal(format!("bad response signature: {error}")))?;
        Ok(Signature(headers.signature))
    }
}

fn reply(
    target: &MinerTarget,
    started: Instant,
    attempts: u32,
    result: Result<(String, Option<Signature>), String>,
) -> MinerReply {
    let (outcome, miner_signature) = match result {
        Ok((body, signature)) => (ResponseOutcome::Ok { body }, signature),
        Err(message) => (ResponseOutcome::Error { message }, None),
    };
    MinerReply {
        uid: target.uid,
        hotkey: target.hotkey,
        outcome,
        latency_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        attempts,
        miner_signature,
    }
}

/// The response's Epistula headers: `None` when it carries none (unsigned responses are
/// accepted), an error when it carries some that do not parse.
fn response_headers(map: &reqwest::header::HeaderMap) -> Result<Option<Headers>, Failure> {
    let signed = [
        epistula::HEADER_SIGNATURE,
        epistula::HEADER_SIGNED_BY,
        epistula::HEADER_VERSION,
    ]
    .iter()
    .any(|name| map.contains_key(*name));
    if !signed {
        return Ok(None);
    }
    Headers::parse(|name| map.get(name).and_then(|value| value.to_str().ok()))
        .map(Some)
        .map_err(|error| Failure::fatal(format!("bad response signature: {error}")))
}

/// Reads at most `limit` bytes of the body: the bytes, and whether that was all of it. Stops
/// at the first chunk past the limit without reading the rest.
async fn read_limited(
    response: &mut reqwest::Response,
    limit: usize,
) -> Result<(Vec<u8>, bool), Failure> {
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > limit {
                    let room = limit - body.len();
                    body.extend_from_slice(&chunk[..room]);
                    return Ok((body, false));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok((body, true)),
            Err(error) => {
                return Err(Failure::transient(format!(
                    "reading the response failed: {}",
                    describe(&error)
                )));
            }
        }
    }
}

/// A failure to send (no response at all): connect refused, reset, closed mid-request.
fn send_failure(error: reqwest::Error) -> Failure {
    let what = if error.is_connect() {
        "cannot connect"
    } else if error.is_timeout() {
        "timed out"
    } else {
        "request failed"
    };
    let message = format!("{what}: {}", describe(&error));
    if error.is_builder() || error.is_redirect() {
        Failure::fatal(message)
    } else {
        Failure::transient(message)
    }
}

/// An error with its chain of causes ("error sending request: connection closed ...").
fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let line = cause.to_string();
        if !text.contains(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        source = cause.source();
    }
    text
}

/// Untrusted text for a message: lossy UTF-8, control characters escaped, truncated.
fn quote(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut quoted = String::new();
    for character in text.chars().take(ERROR_QUOTE_CHARS_MAX) {
        if character.is_control() {
            quoted.extend(character.escape_default());
        } else {
            quoted.push(character);
        }
    }
    if text.chars().count() > ERROR_QUOTE_CHARS_MAX {
        quoted.push('…');
    }
    quoted
}
