//! The node's HTTP API (axum): push-mode challenges from allowed senders, and read-only views
//! of the log (stats, checkpoints, proofs, events with a live tail, the latest weights,
//! Prometheus metrics and an OpenAPI document).
//!
//! - `push.rs`: `POST /challenges` and `GET /availability`.
//! - `read.rs`: the read-only routes over the log.
//! - `follow.rs`: `GET /events?follow=true`, a newline-delimited JSON live tail.
//! - `metrics.rs`: [`Metrics`], the counters the node bumps, rendered as Prometheus text.
//! - `openapi.rs`: the OpenAPI 3.1 document, written by hand.
//! - `error.rs`: [`ApiError`], every refusal as a status and a JSON `{"error": ...}` body.
//!
//! **API Boundary:** everything a request carries (headers, query, body) is untrusted. Every
//! refusal is a 4xx with a message naming what was wrong; a refused push appends nothing.
//!
//! **Architecture Invariant:** a `202` to `POST /challenges` means the `ChallengeIssued` event
//! is durable in the log and the challenge is in the node's queue: the queue slot is reserved
//! before the append, so an accepted challenge is never dropped for lack of room.

mod error;
mod follow;
mod metrics;
mod openapi;
mod push;
mod read;

use std::collections::{BTreeSet, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use tokio::sync::{Semaphore, watch};
use weightlog_schema::event::{AccountId, ChallengeIssued};

use crate::epistula::Verifier;
use crate::log::Log;

pub use error::ApiError;
pub use metrics::{LATENCY_BUCKETS_MS, Metrics};
pub use openapi::{ROUTES, document as openapi_document};

/// Default limit on a request body: 1 MiB, the size of the largest event.
pub const BODY_BYTES_MAX_DEFAULT: usize = 1 << 20;
/// Default limit on the events one `GET /events` page returns.
pub const EVENTS_PAGE_MAX_DEFAULT: usize = 1_000;
/// Live tails (`GET /events?follow=true`) served at once; each holds a blocking thread.
pub const FOLLOWERS_MAX: usize = 64;

/// How the API behaves; the node builds it from its configuration.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Larger request bodies are refused with 413.
    pub body_bytes_max: usize,
    /// `GET /events?limit=` is capped at this.
    pub events_page_max: usize,
    /// `None`: push mode is off and `POST /challenges` answers 404.
    pub push: Option<PushConfig>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            body_bytes_max: BODY_BYTES_MAX_DEFAULT,
            events_page_max: EVENTS_PAGE_MAX_DEFAULT,
            push: None,
        }
    }
}

/// Push mode: who may push challenges, to whom they must be signed, and where accepted
/// challenges go.
#[derive(Debug, Clone)]
pub struct PushConfig {
    /// Senders (hotkeys) allowed to push; anyone else gets 403.
    pub allowed: BTreeSet<AccountId>,
    /// The node's own hotkey: requests must be signed for it (`Epistula-Signed-For`).
    pub receiver: AccountId,
    /// Accepted challenges, in the order they were appended. Its capacity is the push
    /// backlog: when full, pushes are refused with 503 until the node catches up.
    pub queue: tokio::sync::mpsc::Sender<PushedChallenge>,
}

/// A challenge accepted by `POST /challenges`: durable in the log at `seq`.
#[derive(Debug, Clone)]
pub struct PushedChallenge {
    pub seq: u64,
    pub challenge: ChallengeIssued,
}

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct ApiState {
    pub log: Arc<Log>,
    pub metrics: Arc<Metrics>,
    pub config: Arc<ApiConfig>,
    pub started: std::time::Instant,
}

/// The state behind the router: the caller's [`ApiState`] plus what must live as long as the
/// router (the Epistula verifier and its replay cache, pushes in flight, the follower limit).
pub(crate) struct Shared {
    pub(crate) api: ApiState,
    pub(crate) verifier: Option<Verifier>,
    /// Challenge ids being appended right now: a second push of the same id while the first
    /// is in flight gets 409 rather than racing it into the log.
    pub(crate) pushes_in_flight: Mutex<HashSet<String>>,
    pub(crate) followers: Arc<Semaphore>,
}

/// Resolves the follow streams' shutdown: `serve` puts its receiver into every request.
#[derive(Clone)]
pub(crate) struct ShutdownSignal(pub(crate) watch::Receiver<bool>);

/// The API's routes over `state`. One router holds one Epistula verifier, so a replayed
/// request is caught for as long as the router serves.
pub fn router(state: ApiState) -> Router {
    let verifier = state.config.push.as_ref().map(|push| {
        let mut verifier = Verifier::new(Some(push.receiver), Some(push.allowed.clone()));
        verifier.require_signed_for = true;
        verifier
    });
    let body_bytes_max = state.config.body_bytes_max;
    let shared = Arc::new(Shared {
        api: state,
        verifier,
        pushes_in_flight: Mutex::new(HashSet::new()),
        followers: Arc::new(Semaphore::new(FOLLOWERS_MAX)),
    });
    Router::new()
        .route("/challenges", post(push::post_challenge))
        .route("/availability", get(push::availability))
        .route("/stats", get(read::stats))
        .route("/checkpoint", get(read::checkpoint))
        .route("/proof/inclusion", get(read::proof_inclusion))
        .route("/proof/consistency", get(read::proof_consistency))
        .route("/events", get(read::events))
        .route("/weights/latest", get(read::weights_latest))
        .route("/metrics", get(read::metrics))
        .route("/openapi.json", get(openapi::openapi))
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(DefaultBodyLimit::max(body_bytes_max))
        .with_state(shared)
}

/// Serves `router` on `listener` until `shutdown` resolves, then stops accepting, ends live
/// tails and waits for the requests in flight.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop, stopped) = watch::channel(false);
    let router = router.layer(axum::Extension(ShutdownSignal(stopped)));
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            shutdown.await;
            // Live tails never end by themselves; tell them to, or the graceful shutdown
            // would wait for them forever.
            let _ = stop.send(true);
        })
        .await
}
