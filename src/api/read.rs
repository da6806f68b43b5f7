//! The read-only routes: stats, the newest checkpoint, proofs, pages of events, the latest
//! weights and the metrics. Log reads are blocking (redb), so they run on tokio's blocking
//! pool.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use weightlog_schema::EventKind;
use weightlog_schema::codec;
use weightlog_schema::event::Payload;

use super::error::{ApiError, blocking};
use super::{Shared, ShutdownSignal, follow};
use crate::log::LogError;
use crate::log::reader::Snapshot;

/// Events scanned per read transaction when looking backwards for the latest weights.
const WEIGHTS_SCAN_EVENTS: u64 = 4_096;
/// `GET /events` without `limit` returns this many events (capped by the configured page).
const EVENTS_PAGE_DEFAULT: usize = 100;

/// A request's query parameters, checked against the names a route takes.
pub(crate) struct Params(BTreeMap<String, String>);

impl Params {
    pub(crate) fn parse(query: Option<String>, known: &[&str]) -> Result<Params, ApiError> {
        let mut params = BTreeMap::new();
        for pair in query.as_deref().unwrap_or("").split('&') {
            if pair.is_empty() {
                continue;
            }
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            if !known.contains(&name) {
                return Err(ApiError::BadParameter(format!(
                    "unknown query parameter `{}`; this route takes {}",
                    name.chars().take(64).collect::<String>(),
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                )));
            }
            if params.insert(name.to_string(), value.to_string()).is_some() {
                return Err(ApiError::BadParameter(format!(
                    "query parameter `{name}` is given twice"
                )));
            }
        }
        Ok(Params(params))
    }

    pub(crate) fn number(&self, name: &str) -> Result<Option<u64>, ApiError> {
        self.0
            .get(name)
            .map(|value| {
                value.parse::<u64>().map_err(|_| {
                    ApiError::BadParameter(format!(
                        "query parameter `{name}`: expected a non-negative integer, found `{}`",
                        value.chars().take(32).collect::<String>()
                    ))
                })
            })
            .transpose()
    }

    pub(crate) fn required(&self, name: &str) -> Result<u64, ApiError> {
        self.number(name)?
            .ok_or_else(|| ApiError::BadParameter(format!("query parameter `{name}` is required")))
    }

    pub(crate) fn flag(&self, name: &str) -> Result<bool, ApiError> {
        match self.0.get(name).map(String::as_str) {
            None | Some("false") | Some("0") => Ok(false),
            Some("true") | Some("1") | Some("") => Ok(true),
            Some(other) => Err(ApiError::BadParameter(format!(
                "query parameter `{name}`: expected true or false, found `{}`",
                other.chars().take(32).collect::<String>()
            ))),
        }
    }
}

fn snapshot(shared: &Shared) -> Result<Snapshot, ApiError> {
    Ok(shared.api.log.reader().snapshot()?)
}

pub(crate) async fn stats(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    Params::parse(query, &[])?;
    let uptime_s = shared.api.started.elapsed().as_secs_f64();
    let reader_shared = shared.clone();
    let (size, counts) = blocking(move || {
        let snapshot = snapshot(&reader_shared)?;
        Ok((snapshot.size()?, snapshot.kind_counts()?))
    })
    .await?;
    let meta = shared.api.log.meta();
    let kinds: serde_json::Map<String, Value> = counts
        .into_iter()
        .map(|(kind, count)| (kind.name().to_string(), json!(count)))
        .collect();
    Ok(Json(json!({
        "size": size,
        "kinds": kinds,
        "uptime_s": uptime_s,
        "origin": meta.origin,
        "signer_ss58": meta.signer.to_ss58(),
        "log_id": meta.log_id.to_hex(),
        "schema_version": meta.schema_version,
    })))
}

pub(crate) async fn checkpoint(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    Params::parse(query, &[])?;
    let checkpoint = blocking(move || Ok(snapshot(&shared)?.last_checkpoint()?))
        .await?
        .ok_or_else(|| ApiError::NotFound("the log has no signed checkpoint yet".into()))?;
    Ok(Json(json!({
        "origin": checkpoint.checkpoint.origin,
        "size": checkpoint.checkpoint.size,
        "root": checkpoint.checkpoint.root.to_hex(),
        "signer_ss58": checkpoint.signer.to_ss58(),
        "signature": format!("0x{}", hex::encode(checkpoint.signature)),
        "text": checkpoint.to_text(),
    })))
}

pub(crate) async fn proof_inclusion(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let params = Params::parse(query, &["seq", "size"])?;
    let seq = params.required("seq")?;
    let size = params.number("size")?;
    let bundle = blocking(move || {
        snapshot(&shared)?
            .inclusion_bundle(seq, size)
            .map_err(ApiError::from_read)
    })
    .await?;
    bundle_json(&bundle)
}

pub(crate) async fn proof_consistency(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let params = Params::parse(query, &["from", "to"])?;
    let from = params.required("from")?;
    let to = params.required("to")?;
    if from > to {
        return Err(ApiError::BadParameter(format!(
            "`from` ({from}) is after `to` ({to}); a consistency proof goes from an older size to a newer one"
        )));
    }
    let bundle = blocking(move || {
        snapshot(&shared)?
            .consistency_bundle(from, to)
            .map_err(ApiError::from_read)
    })
    .await?;
    bundle_json(&bundle)
}

fn bundle_json(bundle: &weightlog_schema::bundle::ProofBundle) -> Result<Json<Value>, ApiError> {
    serde_json::to_value(bundle)
        .map(Json)
        .map_err(|error| ApiError::Internal(format!("cannot write the proof as JSON: {error}")))
}

pub(crate) async fn events(
    State(shared): State<Arc<Shared>>,
    shutdown: Option<axum::Extension<ShutdownSignal>>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(query, &["from", "limit", "follow"])?;
    let from = params.number("from")?.unwrap_or(0);
    if params.flag("follow")? {
        if params.number("limit")?.is_some() {
            return Err(ApiError::BadParameter(
                "`limit` pages a batch read; a live tail (`follow=true`) has no limit".into(),
            ));
        }
        return follow::follow(shared, from, shutdown.map(|signal| signal.0.0));
    }
    let page_max = shared.api.config.events_page_max;
    let limit = params
        .number("limit")?
        .map_or(EVENTS_PAGE_DEFAULT as u64, |limit| limit)
        .min(page_max as u64);
    let (size, events) = blocking(move || {
        let snapshot = snapshot(&shared)?;
        let size = snapshot.size()?;
        let to = from.saturating_add(limit).min(size);
        Ok((size, snapshot.range(from, to)?))
    })
    .await?;
    // An empty page (caught up, or past the end) starts the next one at the same place.
    let next = events.last().map_or(from, |(seq, _)| seq + 1);
    let events = events
        .into_iter()
        .map(|(seq, event)| json!({ "seq": seq, "event": event }))
        .collect::<Vec<_>>();
    Ok(Json(json!({
        "from": from,
        "limit": limit,
        "size": size,
        "next": next,
        "events": events,
    }))
    .into_response())
}

pub(crate) async fn weights_latest(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    Params::parse(query, &[])?;
    let found =
        blocking(move || latest_weights(&snapshot(&shared)?).map_err(ApiError::Log)).await?;
    let Some((seq, computed, submitted)) = found else {
        return Err(ApiError::NotFound(
            "no weights computed yet: the log holds no WeightsComputed event".into(),
        ));
    };
    let Payload::WeightsComputed(weights) = &computed.payload else {
        return Err(ApiError::Internal(format!(
            "event {seq} was found as WeightsComputed but is a {}",
            computed.kind()
        )));
    };
    let raw_weights: Vec<f64> = weights
        .raw_weight_bits
        .iter()
        .map(|bits| f64::from_bits(*bits))
        .collect();
    let submitted = submitted.map(|(seq, event)| json!({ "seq": seq, "event": event }));
    Ok(Json(json!({
        "seq": seq,
        "timestamp_ms": computed.timestamp_ms,
        "block": weights.block,
        "mechanism": weights.mechanism,
        "log_size": weights.log_size,
        "uids": weights.uids,
        "raw_weight_bits": weights.raw_weight_bits,
        "raw_weights": raw_weights,
        "u16_uids": weights.u16_uids,
        "u16_weights": weights.u16_weights,
        "submitted": submitted,
    })))
}

type Found = (u64, weightlog_schema::Event);

/// The newest `WeightsComputed` and the newest `WeightsSubmitted` for it. Scans backwards
/// without decoding (the archived kind is read in place), so a decision far back in a long
/// log costs a pass over its bytes, not a decode of every event.
fn latest_weights(
    snapshot: &Snapshot,
) -> Result<Option<(u64, weightlog_schema::Event, Option<Found>)>, LogError> {
    let size = snapshot.size()?;
    let mut to = size;
    let mut computed_seq = None;
    while to > 0 && computed_seq.is_none() {
        let from = to.saturating_sub(WEIGHTS_SCAN_EVENTS);
        snapshot.for_each_raw(from, to, |seq, bytes| {
            if kind_of(seq, bytes)? == EventKind::WeightsComputed {
                computed_seq = Some(seq);
            }
            Ok(())
        })?;
        to = from;
    }
    let Some(computed_seq) = computed_seq else {
        return Ok(None);
    };
    let computed = snapshot.event(computed_seq)?;
    let mut submitted = None;
    let mut candidates = Vec::new();
    snapshot.for_each_raw(computed_seq + 1, size, |seq, bytes| {
        if kind_of(seq, bytes)? == EventKind::WeightsSubmitted {
            candidates.push(seq);
        }
        Ok(())
    })?;
    for seq in candidates {
        let event = snapshot.event(seq)?;
        if let Payload::WeightsSubmitted(submission) = &event.payload
            && submission.decision_seq == computed_seq
        {
            submitted = Some((seq, event));
        }
    }
    Ok(Some((computed_seq, computed, submitted)))
}

fn kind_of(seq: u64, bytes: &[u8]) -> Result<EventKind, LogError> {
    codec::access(bytes)
        .map(|event| event.payload.kind())
        .map_err(|error| LogError::Corrupt {
            seq,
            reason: error.to_string(),
        })
}

pub(crate) async fn metrics(State(shared): State<Arc<Shared>>) -> Result<Response, ApiError> {
    let metrics = shared.api.metrics.clone();
    if let Some(push) = &shared.api.config.push {
        metrics.set_queue_depth((push.queue.max_capacity() - push.queue.capacity()) as u64);
    }
    let size = blocking(move || Ok(shared.api.log.reader().size()?)).await?;
    metrics.set_log_size(size);
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        metrics.render(),
    )
        .into_response())
}
