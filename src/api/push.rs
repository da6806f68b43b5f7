//! Push mode: `POST /challenges` takes a challenge from an allowed, Epistula-signed sender,
//! appends it to the log and hands it to the node's queue; `GET /availability` tells a
//! coordinator whether there is room.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Map, Value, json};
use weightlog_schema::Event;
use weightlog_schema::event::{ChallengeIssued, Payload};

use super::error::ApiError;
use super::{PushedChallenge, Shared};
use crate::epistula::{self, Headers};
use crate::log::LogError;

/// Longest `challenge_id` a pushed challenge may carry, in characters.
pub const CHALLENGE_ID_CHARS_MAX: usize = 128;
/// Longest `environment` name, in characters.
pub const ENVIRONMENT_CHARS_MAX: usize = 128;
/// Most miners one pushed challenge may target.
pub const TARGET_UIDS_MAX: usize = 4_096;
/// Furthest in the future a deadline may lie: a week.
pub const DEADLINE_AHEAD_MS_MAX: u64 = 7 * 24 * 3_600_000;

/// The fields `POST /challenges` accepts; anything else is refused so a misspelt optional
/// field is not silently dropped.
const FIELDS: [&str; 7] = [
    "challenge_id",
    "environment",
    "seed",
    "prompt",
    "extra_json",
    "target_uids",
    "deadline_ms",
];

pub(crate) async fn post_challenge(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (Some(push), Some(verifier)) = (shared.api.config.push.as_ref(), &shared.verifier) else {
        return Err(ApiError::PushDisabled);
    };
    let body = body.map_err(|rejection| body_error(rejection, shared.api.config.body_bytes_max))?;

    // Authenticate before looking at the body: an unsigned sender learns nothing else.
    let signed = Headers::parse(|name| headers.get(name).and_then(|value| value.to_str().ok()))
        .map_err(ApiError::from_epistula)?;
    let now_ms = epistula::now_ms().map_err(|error| ApiError::Internal(error.to_string()))?;
    verifier
        .verify(&signed, &body, now_ms)
        .map_err(ApiError::from_epistula)?;

    let challenge = parse_challenge(&body, now_ms)?;

    // Claim the id for this request; a concurrent push of the same id gets 409.
    let claim = InFlight::claim(&shared, &challenge.challenge_id)?;
    let challenge_id = challenge.challenge_id.clone();
    let log = shared.api.log.clone();
    let existing = super::error::blocking(move || {
        Ok(log.reader().snapshot()?.seqs_by_challenge(&challenge_id)?)
    })
    .await?;
    if let Some(&seq) = existing.first() {
        return Err(ApiError::DuplicateChallenge {
            challenge_id: challenge.challenge_id,
            seq,
        });
    }

    // Reserve the queue slot before appending, so an appended challenge always has room.
    let permit = push.queue.try_reserve().map_err(|error| match error {
        tokio::sync::mpsc::error::TrySendError::Full(()) => ApiError::QueueFull {
            capacity: push.queue.max_capacity(),
        },
        tokio::sync::mpsc::error::TrySendError::Closed(()) => ApiError::QueueClosed,
    })?;

    let event = Event::new(now_ms, Payload::ChallengeIssued(challenge.clone()));
    let log = shared.api.log.clone();
    let seq = super::error::blocking(move || {
        log.append(&event).map_err(|error| match error {
            // The codec's own checks (extra_json, sizes) refuse what slipped past ours.
            LogError::BadEvent { source, .. } => ApiError::InvalidField {
                field: "challenge",
                reason: source.to_string(),
            },
            error => ApiError::Log(error),
        })
    })
    .await?;
    drop(claim);

    let challenge_id = challenge.challenge_id.clone();
    permit.send(PushedChallenge { seq, challenge });
    shared.api.metrics.events_appended(1);
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "seq": seq, "challenge_id": challenge_id })),
    ))
}

pub(crate) async fn availability(State(shared): State<Arc<Shared>>) -> Json<Value> {
    match &shared.api.config.push {
        Some(push) => {
            let capacity = push.queue.max_capacity();
            let free = push.queue.capacity();
            Json(json!({
                "push": true,
                "accepting": free > 0 && !push.queue.is_closed(),
                "queue_depth": capacity - free,
                "queue_capacity": capacity,
            }))
        }
        None => Json(json!({
            "push": false,
            "accepting": false,
            "queue_depth": 0,
            "queue_capacity": 0,
        })),
    }
}

fn body_error(rejection: BytesRejection, body_bytes_max: usize) -> ApiError {
    let status = rejection.status();
    let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
        format!("the body is over the limit of {body_bytes_max} bytes")
    } else {
        format!("cannot read the body: {}", rejection.body_text())
    };
    ApiError::Body { status, message }
}

/// Removes a claimed challenge id from the in-flight set when the request ends, on every
/// path (success, refusal, or the client going away mid-append).
struct InFlight {
    shared: Arc<Shared>,
    challenge_id: String,
}

impl InFlight {
    fn claim(shared: &Arc<Shared>, challenge_id: &str) -> Result<InFlight, ApiError> {
        let mut in_flight = shared
            .pushes_in_flight
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if !in_flight.insert(challenge_id.to_string()) {
            return Err(ApiError::ChallengeInFlight {
                challenge_id: challenge_id.to_string(),
            });
        }
        Ok(InFlight {
            shared: shared.clone(),
            challenge_id: challenge_id.to_string(),
        })
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.shared
            .pushes_in_flight
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(&self.challenge_id);
    }
}

/// Reads and checks a pushed challenge; every refusal names the field.
pub(crate) fn parse_challenge(body: &[u8], now_ms: u64) -> Result<ChallengeIssued, ApiError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|error| ApiError::MalformedJson(error.to_string()))?;
    let Value::Object(object) = value else {
        return Err(ApiError::MalformedJson(
            "expected a JSON object with the challenge's fields".into(),
        ));
    };
    if let Some(unknown) = object.keys().find(|key| !FIELDS.contains(&key.as_str())) {
        return Err(ApiError::InvalidField {
            field: "body",
            reason: format!(
                "unknown field `{}`; the fields are {}",
                truncated(unknown),
                FIELDS.join(", ")
            ),
        });
    }
    let challenge_id = text(&object, "challenge_id", CHALLENGE_ID_CHARS_MAX)?;
    let environment = text(&object, "environment", ENVIRONMENT_CHARS_MAX)?;
    let seed = unsigned(&object, "seed")?;
    let prompt = match object.get("prompt") {
        Some(Value::String(prompt)) => prompt.clone(),
        Some(_) => return Err(invalid("prompt", "expected a string")),
        None => return Err(invalid("prompt", "missing")),
    };
    let extra_json = match object.get("extra_json") {
        None | Some(Value::Null) => "{}".to_string(),
        Some(Value::String(text)) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(_)) => text.clone(),
            Ok(_) => return Err(invalid("extra_json", "expected a JSON object as text")),
            Err(error) => {
                return Err(invalid("extra_json", &format!("not valid JSON: {error}")));
            }
        },
        // An object sent as itself rather than as text is what the caller meant.
        Some(Value::Object(extra)) => Value::Object(extra.clone()).to_string(),
        Some(_) => {
            return Err(invalid(
                "extra_json",
                "expected a JSON object (or its text)",
            ));
        }
    };
    let target_uids = uids(&object)?;
    let deadline_ms = unsigned(&object, "deadline_ms")?;
    if deadline_ms <= now_ms {
        return Err(invalid(
            "deadline_ms",
            &format!(
                "{deadline_ms} is not in the future (now is {now_ms}); it is Unix time in milliseconds"
            ),
        ));
    }
    if deadline_ms - now_ms > DEADLINE_AHEAD_MS_MAX {
        return Err(invalid(
            "deadline_ms",
            &format!("{deadline_ms} is more than {DEADLINE_AHEAD_MS_MAX} ms ahead"),
        ));
    }
    Ok(ChallengeIssued {
        challenge_id,
        environment,
        seed,
        prompt,
        extra_json,
        target_uids,
        deadline_ms,
    })
}

fn invalid(field: &'static str, reason: &str) -> ApiError {
    ApiError::InvalidField {
        field,
        reason: reason.to_string(),
    }
}

fn truncated(value: &str) -> String {
    value.chars().take(64).collect()
}

fn text(
    object: &Map<String, Value>,
    field: &'static str,
    chars_max: usize,
) -> Result<String, ApiError> {
    let text = match object.get(field) {
        Some(Value::String(text)) => text,
        Some(_) => return Err(invalid(field, "expected a string")),
        None => return Err(invalid(field, "missing")),
    };
    if text.trim().is_empty() {
        return Err(invalid(field, "empty"));
    }
    let chars = text.chars().count();
    if chars > chars_max {
        return Err(invalid(
            field,
            &format!("{chars} characters, over the limit of {chars_max}"),
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(invalid(field, "contains control characters"));
    }
    Ok(text.clone())
}

fn unsigned(object: &Map<String, Value>, field: &'static str) -> Result<u64, ApiError> {
    match object.get(field) {
        Some(value) => value
            .as_u64()
            .ok_or_else(|| invalid(field, "expected a non-negative integer below 2^64")),
        None => Err(invalid(field, "missing")),
    }
}

fn uids(object: &Map<String, Value>) -> Result<Vec<u16>, ApiError> {
    const FIELD: &str = "target_uids";
    let list = match object.get(FIELD) {
        Some(Value::Array(list)) => list,
        Some(_) => return Err(invalid(FIELD, "expected an array of uids")),
        None => return Err(invalid(FIELD, "missing")),
    };
    if list.is_empty() {
        return Err(invalid(FIELD, "empty; name at least one miner uid"));
    }
    if list.len() > TARGET_UIDS_MAX {
        return Err(invalid(
            FIELD,
            &format!("{} uids, over the limit of {TARGET_UIDS_MAX}", list.len()),
        ));
    }
    let mut uids = Vec::with_capacity(list.len());
    let mut seen = std::collections::BTreeSet::new();
    for (index, value) in list.iter().enumerate() {
        let uid = value
            .as_u64()
            .and_then(|uid| u16::try_from(uid).ok())
            .ok_or_else(|| invalid(FIELD, &format!("item {index} is not a uid (0 to 65535)")))?;
        if !seen.insert(uid) {
            return Err(invalid(FIELD, &format!("uid {uid} appears twice")));
        }
        uids.push(uid);
    }
    Ok(uids)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW_MS: u64 = 1_800_000_000_000;

    fn check(body: &str, expected: Result<(), &str>) {
        match (parse_challenge(body.as_bytes(), NOW_MS), expected) {
            (Ok(_), Ok(())) => {}
            (Err(error), Err(fragment)) => assert!(
                error.to_string().contains(fragment),
                "{body}: `{error}` does not say `{fragment}`"
            ),
            (found, expected) => panic!("{body}: expected {expected:?}, found {found:?}"),
        }
    }

    #[test]
    fn pushed_challenges_are_checked_field_by_field() {
        let ok = r#""challenge_id":"c1","environment":"sat","seed":1,"prompt":"p","target_uids":[1,2],"deadline_ms":1800000060000"#;
        check(&format!("{{{ok}}}"), Ok(()));
        check(&format!("{{{ok},\"extra_json\":\"{{}}\"}}"), Ok(()));
        check(&format!("{{{ok},\"extra_json\":{{\"a\":1}}}}"), Ok(()));
        check("{", Err("not valid JSON"));
        check("[]", Err("JSON object"));
        check(&format!("{{{ok},\"x\":1}}"), Err("unknown field `x`"));
        check(
            &format!("{{{}}}", ok.replace("\"c1\"", "\"\"")),
            Err("field `challenge_id`: empty"),
        );
        let long = "a".repeat(129);
        check(
            &format!("{{{}}}", ok.replace("\"c1\"", &format!("\"{long}\""))),
            Err("field `challenge_id`: 129 characters"),
        );
        check(
            &format!("{{{}}}", ok.replace("\"seed\":1", "\"seed\":-1")),
            Err("field `seed`"),
        );
        check(
            &format!("{{{}}}", ok.replace("[1,2]", "[1,1]")),
            Err("uid 1 appears twice"),
        );
        check(
            &format!("{{{}}}", ok.replace("[1,2]", "[70000]")),
            Err("item 0 is not a uid"),
        );
        check(
            &format!("{{{}}}", ok.replace("1800000060000", "1700000000000")),
            Err("field `deadline_ms`: 1700000000000 is not in the future"),
        );
        check(
            &format!("{{{ok},\"extra_json\":\"[1]\"}}"),
            Err("field `extra_json`"),
        );
        check(
            &format!("{{{}}}", ok.replace("\"prompt\":\"p\",", "")),
            Err("field `prompt`: missing"),
        );
    }
}
