//! The OpenAPI 3.1 document of the API, written by hand so it stays readable and needs no
//! generator. `tests/api.rs` checks that it lists every route the router serves.

use axum::Json;
use serde_json::{Value, json};

/// Every route, as (method, path); the document and the router's tests share it.
pub const ROUTES: [(&str, &str); 10] = [
    ("post", "/challenges"),
    ("get", "/availability"),
    ("get", "/stats"),
    ("get", "/checkpoint"),
    ("get", "/proof/inclusion"),
    ("get", "/proof/consistency"),
    ("get", "/events"),
    ("get", "/weights/latest"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
];

pub(crate) async fn openapi() -> Json<Value> {
    Json(document())
}

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } }
    })
}

fn json_response(description: &str, schema: Value) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": schema } }
    })
}

fn query(name: &str, required: bool, description: &str, schema: Value) -> Value {
    json!({
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": schema,
    })
}

fn unsigned() -> Value {
    json!({ "type": "integer", "minimum": 0 })
}

fn epistula_header(name: &str, description: &str) -> Value {
    json!({
        "name": name,
        "in": "header",
        "required": true,
        "description": description,
        "schema": { "type": "string" },
    })
}

/// The OpenAPI 3.1 document.
pub fn document() -> Value {
    let event = json!({ "$ref": "#/components/schemas/Event" });
    let seq_event = json!({
        "type": "object",
        "required": ["seq", "event"],
        "properties": { "seq": unsigned(), "event": event },
    });
    let bad_parameter = error_response("a query parameter is missing, malformed or out of range");
    let path_challenges = json!({ "post": {
                "summary": "Push a challenge (push mode only); Epistula v2 signed by an allowed sender for this node's hotkey",
                "parameters": [
                    epistula_header("Epistula-Version", "2"),
                    epistula_header("Epistula-Timestamp", "Unix time in milliseconds; refused when older than 8 s or more than 2 s ahead"),
                    epistula_header("Epistula-Uuid", "a fresh uuid v4 per request; a reused uuid is refused"),
                    epistula_header("Epistula-Signed-By", "the sender's hotkey (SS58); must be on the node's allow-list"),
                    epistula_header("Epistula-Signed-For", "this node's hotkey (SS58)"),
                    epistula_header("Epistula-Request-Signature", "0x + hex sr25519 signature of sha256_hex(body).uuid.timestamp.signed_for"),
                ],
                "requestBody": { "required": true, "content": { "application/json": { "schema": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["challenge_id", "environment", "seed", "prompt", "target_uids", "deadline_ms"],
                    "properties": {
                        "challenge_id": { "type": "string", "minLength": 1, "maxLength": 128 },
                        "environment": { "type": "string", "minLength": 1, "maxLength": 128 },
                        "seed": unsigned(),
                        "prompt": { "type": "string" },
                        "extra_json": { "description": "environment-specific data: a JSON object, or its text; default {}", "type": ["string", "object"] },
                        "target_uids": { "type": "array", "minItems": 1, "maxItems": 4096, "uniqueItems": true, "items": { "type": "integer", "minimum": 0, "maximum": 65535 } },
                        "deadline_ms": { "description": "Unix time in milliseconds, in the future (at most a week ahead)", "type": "integer", "minimum": 0 },
                    },
                } } } },
                "responses": {
                    "202": json_response("durable in the log and queued for the node", json!({
                        "type": "object",
                        "required": ["seq", "challenge_id"],
                        "properties": { "seq": unsigned(), "challenge_id": { "type": "string" } },
                    })),
                    "400": error_response("the body is not JSON"),
                    "401": error_response("unsigned, badly signed, stale, from the future, replayed, or signed for another receiver"),
                    "403": error_response("the sender is not allowed to push"),
                    "404": error_response("push mode is off"),
                    "409": error_response("the challenge_id is already in the log"),
                    "413": error_response("the body is over the size limit"),
                    "422": error_response("a field is missing or invalid (the message names it)"),
                    "500": error_response("the log could not append"),
                    "503": error_response("queue full, retry later; or the node is shutting down"),
                },
            } });
    let path_availability = json!({ "get": {
                "summary": "Whether the node takes pushed challenges now",
                "responses": { "200": json_response("room in the push queue", json!({
                    "type": "object",
                    "required": ["push", "accepting", "queue_depth", "queue_capacity"],
                    "properties": {
                        "push": { "type": "boolean" },
                        "accepting": { "type": "boolean" },
                        "queue_depth": unsigned(),
                        "queue_capacity": unsigned(),
                    },
                })) },
            } });
    let path_stats = json!({ "get": {
                "summary": "Log size, events per kind, uptime, origin and signer",
                "responses": { "200": json_response("statistics", json!({
                    "type": "object",
                    "required": ["size", "kinds", "uptime_s", "origin", "signer_ss58", "log_id", "schema_version"],
                    "properties": {
                        "size": unsigned(),
                        "kinds": { "type": "object", "additionalProperties": unsigned() },
                        "uptime_s": { "type": "number" },
                        "origin": { "type": "string" },
                        "signer_ss58": { "type": "string" },
                        "log_id": { "type": "string" },
                        "schema_version": unsigned(),
                    },
                })) },
            } });
    let path_checkpoint = json!({ "get": {
                "summary": "The newest signed checkpoint",
                "responses": {
                    "200": json_response("the checkpoint's fields and its signed text", json!({
                        "type": "object",
                        "required": ["origin", "size", "root", "signer_ss58", "signature", "text"],
                        "properties": {
                            "origin": { "type": "string" },
                            "size": unsigned(),
                            "root": { "type": "string" },
                            "signer_ss58": { "type": "string" },
                            "signature": { "type": "string" },
                            "text": { "type": "string" },
                        },
                    })),
                    "404": error_response("no checkpoint yet"),
                },
            } });
    let path_proof_inclusion = json!({ "get": {
                "summary": "Proof that event `seq` is in the log of the checkpoint for `size` events (the bundle `weightlog prove inclusion` writes; check it with `weightlog verify-proof`)",
                "parameters": [
                    query("seq", true, "the event's seq", unsigned()),
                    query("size", false, "a checkpointed log size; default the newest checkpoint", unsigned()),
                ],
                "responses": {
                    "200": json_response("an inclusion proof bundle", json!({ "$ref": "#/components/schemas/ProofBundle" })),
                    "400": bad_parameter.clone(),
                },
            } });
    let path_proof_consistency = json!({ "get": {
                "summary": "Proof that the log at size `from` is a prefix of the log at size `to` (the bundle `weightlog prove consistency` writes)",
                "parameters": [
                    query("from", true, "the older checkpointed size", unsigned()),
                    query("to", true, "the newer checkpointed size", unsigned()),
                ],
                "responses": {
                    "200": json_response("a consistency proof bundle", json!({ "$ref": "#/components/schemas/ProofBundle" })),
                    "400": bad_parameter.clone(),
                },
            } });
    let path_events = json!({ "get": {
                "summary": "A page of events from `from`, or with follow=true a live tail as newline-delimited JSON",
                "parameters": [
                    query("from", false, "first seq; default 0", unsigned()),
                    query("limit", false, "events per page; default 100, capped by the node's page limit", unsigned()),
                    query("follow", false, "stream events as they are committed, one JSON object per line, until the client disconnects", json!({ "type": "boolean" })),
                ],
                "responses": {
                    "200": {
                        "description": "a page of events (JSON) or a live tail (NDJSON)",
                        "content": {
                            "application/json": { "schema": {
                                "type": "object",
                                "required": ["from", "limit", "size", "next", "events"],
                                "properties": {
                                    "from": unsigned(),
                                    "limit": unsigned(),
                                    "size": unsigned(),
                                    "next": { "description": "the `from` of the next page", "type": "integer", "minimum": 0 },
                                    "events": { "type": "array", "items": seq_event.clone() },
                                },
                            } },
                            "application/x-ndjson": { "schema": seq_event },
                        },
                    },
                    "400": bad_parameter,
                    "503": error_response("too many live tails"),
                },
            } });
    let path_weights_latest = json!({ "get": {
                "summary": "The newest WeightsComputed event and the WeightsSubmitted for it, if any",
                "responses": {
                    "200": json_response("the latest weights", json!({
                        "type": "object",
                        "required": ["seq", "block", "uids", "raw_weight_bits", "u16_uids", "u16_weights", "submitted"],
                        "properties": {
                            "seq": unsigned(),
                            "timestamp_ms": unsigned(),
                            "block": unsigned(),
                            "mechanism": { "type": "string" },
                            "log_size": unsigned(),
                            "uids": { "type": "array", "items": unsigned() },
                            "raw_weight_bits": { "description": "raw weights as IEEE-754 f64 bit patterns", "type": "array", "items": unsigned() },
                            "raw_weights": { "type": "array", "items": { "type": "number" } },
                            "u16_uids": { "type": "array", "items": unsigned() },
                            "u16_weights": { "type": "array", "items": unsigned() },
                            "submitted": { "oneOf": [ { "type": "null" }, {
                                "type": "object",
                                "required": ["seq", "event"],
                                "properties": { "seq": unsigned(), "event": { "$ref": "#/components/schemas/Event" } },
                            } ] },
                        },
                    })),
                    "404": error_response("no weights computed yet"),
                },
            } });
    let path_metrics = json!({ "get": {
                "summary": "Prometheus metrics (text exposition format 0.0.4)",
                "responses": { "200": {
                    "description": "weightlog_events_appended_total, weightlog_log_size, weightlog_push_queue_depth, weightlog_miner_latency_ms (histogram by uid and outcome), weightlog_miner_score, weightlog_weight, weightlog_weights_block",
                    "content": { "text/plain; version=0.0.4": { "schema": { "type": "string" } } },
                } },
            } });
    let path_openapi_json = json!({ "get": {
                "summary": "This document",
                "responses": { "200": json_response("OpenAPI 3.1", json!({ "type": "object" })) },
            } });
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "weightlog node API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "A Bittensor validator's event log: push-mode challenges, signed checkpoints, Merkle proofs, events, weights and metrics. Every error is a JSON object {\"error\": \"...\"}.",
        },
        "paths": {
            "/challenges": path_challenges,
            "/availability": path_availability,
            "/stats": path_stats,
            "/checkpoint": path_checkpoint,
            "/proof/inclusion": path_proof_inclusion,
            "/proof/consistency": path_proof_consistency,
            "/events": path_events,
            "/weights/latest": path_weights_latest,
            "/metrics": path_metrics,
            "/openapi.json": path_openapi_json,
        },
        "components": { "schemas": {
            "Error": {
                "type": "object",
                "required": ["error"],
                "properties": { "error": { "type": "string" } },
            },
            "Event": {
                "description": "A log event in its JSON form: schema_version, timestamp_ms and a payload tagged by kind (schema/src/event.rs; `weightlog schema` prints its JSON Schema)",
                "type": "object",
            },
            "ProofBundle": {
                "description": "A proof with the signed checkpoints it refers to; verify with `weightlog verify-proof --signer <ss58>`",
                "type": "object",
            },
        } },
    })
}
