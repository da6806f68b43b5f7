//! `GET /events?follow=true`: the log's live tail as newline-delimited JSON, one
//! `{"seq": n, "event": {...}}` per line, in a chunked body that ends when the client goes
//! away or the server shuts down.
//!
//! The tail ([`crate::log::Tail`]) blocks while it waits for commits, so each follower gets
//! a thread from tokio's blocking pool that feeds a small channel; the response body drains
//! it. A slow client fills the channel and the thread waits, so memory per follower is
//! bounded by [`FOLLOW_BUFFER_LINES`].

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use tokio::sync::{mpsc, watch};

use super::error::ApiError;
use super::{FOLLOWERS_MAX, Shared};

/// Lines buffered between a follower's tail thread and its response body.
pub const FOLLOW_BUFFER_LINES: usize = 256;
/// How often an idle tail looks whether its client left or the server is stopping.
const IDLE_CHECK: Duration = Duration::from_millis(200);

pub(crate) fn follow(
    shared: Arc<Shared>,
    from: u64,
    shutdown: Option<watch::Receiver<bool>>,
) -> Result<Response, ApiError> {
    let permit = shared
        .followers
        .clone()
        .try_acquire_owned()
        .map_err(|_| ApiError::TooManyFollowers(FOLLOWERS_MAX))?;
    let (sender, receiver) = mpsc::channel::<Bytes>(FOLLOW_BUFFER_LINES);
    let mut tail = shared.api.log.reader().tail(from);
    tokio::task::spawn_blocking(move || {
        // Held until the tail ends, so the follower limit counts live threads.
        let _permit = permit;
        let stopping = || shutdown.as_ref().is_some_and(|signal| *signal.borrow());
        while !sender.is_closed() && !stopping() {
            let line = match tail.next_timeout(IDLE_CHECK) {
                Ok(None) => continue,
                Ok(Some((seq, event))) => serde_json::json!({ "seq": seq, "event": event }),
                Err(error) => {
                    // The status line is long sent; say why the stream ends in-band.
                    let line = serde_json::json!({ "error": format!("the log: {error}") });
                    let _ = sender.blocking_send(Bytes::from(format!("{line}\n")));
                    break;
                }
            };
            if sender
                .blocking_send(Bytes::from(format!("{line}\n")))
                .is_err()
            {
                break;
            }
        }
    });
    Ok((
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(Lines(receiver)),
    )
        .into_response())
}

/// The receiving end of a follower's channel as a body stream.
struct Lines(mpsc::Receiver<Bytes>);

impl futures_core::Stream for Lines {
    type Item = Result<Bytes, std::convert::Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(context).map(|line| line.map(Ok))
    }
}
