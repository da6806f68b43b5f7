//! The node's HTTP API over loopback: push-mode challenges refused for every kind of bad
//! input without touching the log, and every read route against a real log.
#![cfg(feature = "node")]

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use weightlog::api::{self, ApiConfig, ApiState, Metrics, PushConfig, PushedChallenge};
use weightlog::epistula::{self, Headers};
use weightlog::genlog::{self, GenOptions};
use weightlog::keys::Hotkey;
use weightlog::log::Log;
use weightlog_schema::bundle::{ProofBundle, Verified};
use weightlog_schema::event::{AccountId, ChallengeIssued, Payload};
use weightlog_schema::{Event, EventKind, SignedCheckpoint};

fn sender_key() -> Hotkey {
    Hotkey::from_seed(&[21; 32])
}

fn node_key() -> Hotkey {
    Hotkey::from_seed(&[22; 32])
}

fn account(key: &Hotkey) -> AccountId {
    AccountId(key.public_key())
}

/// A node's API served on a loopback port, with the pieces a test looks at.
struct Node {
    address: SocketAddr,
    log: Arc<Log>,
    metrics: Arc<Metrics>,
    queue: Option<mpsc::Receiver<PushedChallenge>>,
    stop: Option<oneshot::Sender<()>>,
    served: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    client: reqwest::Client,
}

impl Node {
    async fn start(log: Log, push_queue: Option<usize>, config: ApiConfig) -> Node {
        let (push, queue) = match push_queue {
            Some(capacity) => {
                let (sender, receiver) = mpsc::channel(capacity);
                let push = PushConfig {
                    allowed: BTreeSet::from([account(&sender_key())]),
                    receiver: account(&node_key()),
                    queue: sender,
                };
                (Some(push), Some(receiver))
            }
            None => (None, None),
        };
        let log = Arc::new(log);
        let metrics = Arc::new(Metrics::new());
        let state = ApiState {
            log: log.clone(),
            metrics: metrics.clone(),
            config: Arc::new(ApiConfig { push, ..config }),
            started: Instant::now(),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let served = tokio::spawn(api::serve(listener, api::router(state), async move {
            let _ = stopped.await;
        }));
        weightlog::http::install_tls_provider();
        Node {
            address,
            log,
            metrics,
            queue,
            stop: Some(stop),
            served: Some(served),
            client: reqwest::Client::new(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    async fn get(&self, path: &str) -> (u16, String) {
        let response = self.client.get(self.url(path)).send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    }

    async fn get_json(&self, path: &str) -> (u16, Value) {
        let (status, text) = self.get(path).await;
        let value = serde_json::from_str(&text)
            .unwrap_or_else(|error| panic!("GET {path}: not JSON ({error}): {text}"));
        (status, value)
    }

    async fn post(&self, body: &[u8], headers: Option<&Headers>) -> (u16, Value) {
        let mut request = self
            .client
            .post(self.url("/challenges"))
            .header("content-type", "application/json")
            .body(body.to_vec());
        if let Some(headers) = headers {
            for (name, value) in headers.pairs() {
                request = request.header(name, value);
            }
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let value = serde_json::from_str(&text)
            .unwrap_or_else(|error| panic!("POST /challenges: not JSON ({error}): {text}"));
        (status, value)
    }

    fn size(&self) -> u64 {
        self.log.reader().size().unwrap()
    }

    async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(served) = self.served.take() {
            tokio::time::timeout(Duration::from_secs(10), served)
                .await
                .expect("the server stops within 10 s")
                .unwrap()
                .unwrap();
        }
    }
}

fn challenge_body(challenge_id: &str) -> Vec<u8> {
    let deadline_ms = epistula::now_ms().unwrap() + 60_000;
    json!({
        "challenge_id": challenge_id,
        "environment": "sat",
        "seed": 42,
        "prompt": "solve x",
        "target_uids": [1, 2, 3],
        "deadline_ms": deadline_ms,
    })
    .to_string()
    .into_bytes()
}

fn signed(body: &[u8]) -> Headers {
    Headers::sign_now(&sender_key(), body, Some(account(&node_key()))).unwrap()
}

fn new_log(dir: &Path) -> Log {
    common::new_log(&dir.join("node.redb"))
}

fn push_config(body_bytes_max: usize) -> ApiConfig {
    ApiConfig {
        body_bytes_max,
        ..ApiConfig::default()
    }
}

/// One refused push: (name, body, headers, expected status, a fragment of the message).
type Case = (&'static str, Vec<u8>, Option<Headers>, u16, &'static str);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_pushes_are_refused_with_their_reason_append_nothing_and_the_node_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::start(new_log(dir.path()), Some(8), push_config(4_096)).await;
    let size = node.size();
    let now = epistula::now_ms().unwrap();
    let body = challenge_body("c-1");
    let stranger = Hotkey::from_seed(&[23; 32]);
    let big = {
        let mut value: Value = serde_json::from_slice(&body).unwrap();
        value["prompt"] = json!("x".repeat(5_000));
        value.to_string().into_bytes()
    };
    let long_id = challenge_body(&"a".repeat(129));
    let empty_id = challenge_body("");
    let node_account = Some(account(&node_key()));
    let cases: Vec<Case> = vec![
        (
            "unsigned",
            body.clone(),
            None,
            401,
            "missing header Epistula-Version",
        ),
        (
            "wrongly signed",
            body.clone(),
            Some(signed(b"another body")),
            401,
            "signature does not verify",
        ),
        (
            "stale",
            body.clone(),
            Some(Headers::sign(
                &sender_key(),
                &body,
                node_account,
                now - 60_000,
                epistula::fresh_uuid(),
            )),
            401,
            "stale",
        ),
        (
            "from the future",
            body.clone(),
            Some(Headers::sign(
                &sender_key(),
                &body,
                node_account,
                now + 60_000,
                epistula::fresh_uuid(),
            )),
            401,
            "in the future",
        ),
        (
            "wrong receiver",
            body.clone(),
            Some(Headers::sign_now(&sender_key(), &body, Some(account(&stranger))).unwrap()),
            401,
            "not for this receiver",
        ),
        (
            "no receiver",
            body.clone(),
            Some(Headers::sign_now(&sender_key(), &body, None).unwrap()),
            401,
            "Epistula-Signed-For",
        ),
        (
            "not allowed",
            body.clone(),
            Some(Headers::sign_now(&stranger, &body, node_account).unwrap()),
            403,
            "not allowed",
        ),
        (
            "oversized",
            big.clone(),
            Some(signed(&big)),
            413,
            "over the limit of 4096 bytes",
        ),
        (
            "malformed",
            b"{\"challenge_id\":".to_vec(),
            Some(signed(b"{\"challenge_id\":")),
            400,
            "not valid JSON",
        ),
        (
            "empty id",
            empty_id.clone(),
            Some(signed(&empty_id)),
            422,
            "field `challenge_id`: empty",
        ),
        (
            "long id",
            long_id.clone(),
            Some(signed(&long_id)),
            422,
            "field `challenge_id`: 129 characters",
        ),
    ];
    for (name, body, headers, status, fragment) in cases {
        let (found, answer) = node.post(&body, headers.as_ref()).await;
        let message = answer["error"].as_str().unwrap_or_default();
        assert_eq!(found, status, "{name}: {answer}");
        assert!(
            message.contains(fragment),
            "{name}: `{message}` does not say `{fragment}`"
        );
        assert_eq!(node.size(), size, "{name}: the log changed");
        assert!(
            node.queue.as_mut().unwrap().try_recv().is_err(),
            "{name}: queued"
        );
    }

    // A valid push is accepted afterwards, is in the log and in the queue.
    let headers = signed(&body);
    let (status, answer) = node.post(&body, Some(&headers)).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer, json!({ "seq": size, "challenge_id": "c-1" }));
    assert_eq!(node.size(), size + 1);
    let pushed = node.queue.as_mut().unwrap().try_recv().unwrap();
    assert_eq!(pushed.seq, size);
    assert_eq!(pushed.challenge.challenge_id, "c-1");
    assert_eq!(pushed.challenge.extra_json, "{}");
    let stored = node.log.reader().snapshot().unwrap().event(size).unwrap();
    assert_eq!(
        stored.payload,
        Payload::ChallengeIssued(pushed.challenge.clone())
    );

    // The same request again is a replay; the same id freshly signed is a duplicate.
    let (status, answer) = node.post(&body, Some(&headers)).await;
    assert_eq!(status, 401, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("already used"),
        "{answer}"
    );
    let (status, answer) = node.post(&body, Some(&signed(&body))).await;
    assert_eq!(status, 409, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("`c-1` is already in the log"),
        "{answer}"
    );
    assert_eq!(node.size(), size + 1);
    assert!(node.queue.as_mut().unwrap().try_recv().is_err());

    let (_, metrics) = node.get("/metrics").await;
    assert!(
        metrics.contains("weightlog_events_appended_total 1\n"),
        "{metrics}"
    );
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_refuses_with_503_and_appends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::start(new_log(dir.path()), Some(1), ApiConfig::default()).await;
    let size = node.size();
    let first = challenge_body("q-1");
    assert_eq!(node.post(&first, Some(&signed(&first))).await.0, 202);
    let (_, availability) = node.get_json("/availability").await;
    assert_eq!(
        availability,
        json!({ "push": true, "accepting": false, "queue_depth": 1, "queue_capacity": 1 })
    );

    let second = challenge_body("q-2");
    let (status, answer) = node.post(&second, Some(&signed(&second))).await;
    assert_eq!(status, 503, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("queue full, retry later")
    );
    assert_eq!(node.size(), size + 1);

    // Once the node takes the first challenge there is room again.
    assert_eq!(
        node.queue
            .as_mut()
            .unwrap()
            .recv()
            .await
            .unwrap()
            .challenge
            .challenge_id,
        "q-1"
    );
    let (_, availability) = node.get_json("/availability").await;
    assert_eq!(availability["accepting"], json!(true));
    let (status, answer) = node.post(&second, Some(&signed(&second))).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(node.size(), size + 2);
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_push_mode_challenges_and_unknown_routes_are_404_json() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(new_log(dir.path()), None, ApiConfig::default()).await;
    let body = challenge_body("c-1");
    let (status, answer) = node.post(&body, Some(&signed(&body))).await;
    assert_eq!(status, 404);
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("push mode is off")
    );
    let (status, answer) = node.get_json("/no/such/route").await;
    assert_eq!(status, 404);
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("no route /no/such/route")
    );
    let (status, answer) = node.get_json("/weights/latest").await;
    assert_eq!(status, 404);
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("no weights computed yet")
    );
    let (_, availability) = node.get_json("/availability").await;
    assert_eq!(availability["push"], json!(false));
    assert_eq!(node.size(), 1);
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_read_route_answers_from_a_generated_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gen.redb");
    let options = GenOptions::new("affine", 2_500, 3);
    let summary = genlog::generate(&path, &options).unwrap();
    assert!(summary.decisions > 0);
    let log = Log::open(&path, genlog::signing_key(3)).unwrap();
    let signer = log.meta().signer;
    let config = ApiConfig {
        events_page_max: 50,
        ..ApiConfig::default()
    };
    let node = Node::start(log, None, config).await;
    let size = node.size();
    assert_eq!(size, 2_500);

    // /stats
    let (status, stats) = node.get_json("/stats").await;
    assert_eq!(status, 200, "{stats}");
    assert_eq!(stats["size"], json!(size));
    assert_eq!(stats["signer_ss58"], json!(summary.signer_ss58));
    let kinds: u64 = stats["kinds"]
        .as_object()
        .unwrap()
        .values()
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert_eq!(kinds, size);
    assert_eq!(stats["kinds"]["WeightsComputed"], json!(summary.decisions));

    // /checkpoint
    let (status, checkpoint) = node.get_json("/checkpoint").await;
    assert_eq!(status, 200, "{checkpoint}");
    assert_eq!(checkpoint["size"], json!(size));
    let parsed = SignedCheckpoint::parse(checkpoint["text"].as_str().unwrap()).unwrap();
    parsed.verify(&signer).unwrap();
    assert_eq!(checkpoint["root"], json!(parsed.checkpoint.root.to_hex()));

    // /proof/inclusion, at the newest checkpoint and at an older one.
    let sizes: Vec<u64> = node
        .log
        .reader()
        .snapshot()
        .unwrap()
        .checkpoint_texts()
        .unwrap()
        .into_iter()
        .map(|(size, _)| size)
        .collect();
    let older = sizes[sizes.len() / 2];
    for (query, seq, at) in [
        ("/proof/inclusion?seq=5".to_string(), 5, size),
        (format!("/proof/inclusion?seq=3&size={older}"), 3, older),
    ] {
        let (status, text) = node.get(&query).await;
        assert_eq!(status, 200, "{text}");
        let bundle: ProofBundle = serde_json::from_str(&text).unwrap();
        match bundle.verify(&signer, None).unwrap() {
            Verified::Inclusion {
                seq: proven,
                size: proven_size,
                ..
            } => {
                assert_eq!((proven, proven_size), (seq, at));
            }
            other => panic!("{query}: {other:?}"),
        }
    }
    // /proof/consistency
    let (status, text) = node
        .get(&format!("/proof/consistency?from={older}&to={size}"))
        .await;
    assert_eq!(status, 200, "{text}");
    let bundle: ProofBundle = serde_json::from_str(&text).unwrap();
    match bundle.verify(&signer, Some(&parsed)).unwrap() {
        Verified::Consistency {
            old_size, new_size, ..
        } => assert_eq!((old_size, new_size), (older, size)),
        other => panic!("{other:?}"),
    }
    // Bad proof parameters: 400 with the reason.
    for (query, fragment) in [
        ("/proof/inclusion".to_string(), "`seq` is required"),
        (
            "/proof/inclusion?seq=abc".to_string(),
            "expected a non-negative integer",
        ),
        (format!("/proof/inclusion?seq={size}"), ""),
        (
            "/proof/inclusion?seq=1&size=2".to_string(),
            "no signed checkpoint for size 2",
        ),
        (
            "/proof/inclusion?seq=1&bogus=2".to_string(),
            "unknown query parameter `bogus`",
        ),
        ("/proof/consistency?from=5".to_string(), "`to` is required"),
        (
            format!("/proof/consistency?from={size}&to={older}"),
            "is after",
        ),
    ] {
        let (status, answer) = node.get_json(&query).await;
        assert_eq!(status, 400, "{query}: {answer}");
        assert!(
            answer["error"].as_str().unwrap().contains(fragment),
            "{query}: {answer}"
        );
    }

    // /events paging: a page matches the log, `limit` is capped, `next` walks on.
    let (status, page) = node.get_json("/events?from=10&limit=5").await;
    assert_eq!(status, 200, "{page}");
    let expected = node.log.reader().snapshot().unwrap().range(10, 15).unwrap();
    let events = page["events"].as_array().unwrap();
    assert_eq!(events.len(), 5);
    for ((seq, event), found) in expected.iter().zip(events) {
        assert_eq!(found["seq"], json!(seq));
        assert_eq!(
            serde_json::from_value::<Event>(found["event"].clone()).unwrap(),
            *event
        );
    }
    assert_eq!(page["next"], json!(15));
    let (_, page) = node.get_json("/events?from=2490&limit=100000").await;
    assert_eq!(page["limit"], json!(50));
    assert_eq!(page["events"].as_array().unwrap().len(), 10);
    assert_eq!(page["next"], json!(size));
    let (_, page) = node.get_json(&format!("/events?from={}", size + 7)).await;
    assert_eq!(page["events"], json!([]));
    assert_eq!(page["next"], json!(size + 7));
    let (status, _) = node.get_json("/events?from=-1").await;
    assert_eq!(status, 400);

    // /weights/latest matches the newest WeightsComputed in the log.
    let all = node
        .log
        .reader()
        .snapshot()
        .unwrap()
        .range(0, size)
        .unwrap();
    let (computed_seq, computed) = all
        .iter()
        .rev()
        .find_map(|(seq, event)| match &event.payload {
            Payload::WeightsComputed(weights) => Some((*seq, weights.clone())),
            _ => None,
        })
        .unwrap();
    let (status, weights) = node.get_json("/weights/latest").await;
    assert_eq!(status, 200, "{weights}");
    assert_eq!(weights["seq"], json!(computed_seq));
    assert_eq!(weights["block"], json!(computed.block));
    assert_eq!(weights["u16_weights"], json!(computed.u16_weights));
    assert_eq!(weights["raw_weight_bits"], json!(computed.raw_weight_bits));
    let submitted = all.iter().rev().find(|(_, event)| {
        matches!(&event.payload, Payload::WeightsSubmitted(s) if s.decision_seq == computed_seq)
    });
    match submitted {
        Some((seq, _)) => assert_eq!(weights["submitted"]["seq"], json!(seq)),
        None => assert_eq!(weights["submitted"], Value::Null),
    }

    // /metrics after the node reports.
    node.metrics.events_appended(7);
    node.metrics.set_queue_depth(2);
    node.metrics.observe_miner_latency(3, 120, true);
    node.metrics.observe_miner_latency(3, 9_000, false);
    node.metrics.set_scores(&[(3, 0.25), (4, 0.75)]);
    node.metrics.set_weights(4_321, &[(3, 100), (4, 65_435)]);
    let response = node.client.get(node.url("/metrics")).send().await.unwrap();
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let metrics = response.text().await.unwrap();
    for expected in [
        "# TYPE weightlog_events_appended_total counter",
        "weightlog_events_appended_total 7\n",
        &format!("weightlog_log_size {size}\n"),
        "weightlog_push_queue_depth 2\n",
        "# TYPE weightlog_miner_latency_ms histogram",
        "weightlog_miner_latency_ms_bucket{uid=\"3\",outcome=\"ok\",le=\"250\"} 1\n",
        "weightlog_miner_latency_ms_bucket{uid=\"3\",outcome=\"error\",le=\"+Inf\"} 1\n",
        "weightlog_miner_latency_ms_count{uid=\"3\",outcome=\"error\"} 1\n",
        "weightlog_miner_score{uid=\"4\"} 0.75\n",
        "weightlog_weight{uid=\"4\"} 65435\n",
        "weightlog_weights_block 4321\n",
    ] {
        assert!(
            metrics.contains(expected),
            "missing {expected:?} in\n{metrics}"
        );
    }

    // /openapi.json lists every route with its method.
    let (status, document) = node.get_json("/openapi.json").await;
    assert_eq!(status, 200);
    assert_eq!(document["openapi"], json!("3.1.0"));
    for (method, route) in api::ROUTES {
        assert!(
            document["paths"][route][method].is_object(),
            "{method} {route} is not documented"
        );
    }
    assert_eq!(
        document["paths"].as_object().unwrap().len(),
        api::ROUTES.len()
    );
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_streams_events_committed_after_subscribing_and_ends_at_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(new_log(dir.path()), None, ApiConfig::default()).await;
    let mut response = node
        .client
        .get(node.url("/events?from=0&follow=true"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");

    let mut buffered = String::new();
    let mut next_line = async || -> Option<Value> {
        loop {
            if let Some(end) = buffered.find('\n') {
                let line: String = buffered.drain(..=end).collect();
                return Some(serde_json::from_str(&line).unwrap());
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), response.chunk())
                .await
                .expect("a line within 10 s")
                .unwrap()?;
            buffered.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    };
    let genesis = next_line().await.unwrap();
    assert_eq!(genesis["seq"], json!(0));
    assert_eq!(
        genesis["event"]["payload"]["kind"],
        json!("LogOpened"),
        "{genesis}"
    );

    // Appended after the client subscribed: it arrives on the open stream.
    let challenge = ChallengeIssued {
        challenge_id: "live-1".into(),
        environment: "sat".into(),
        seed: 1,
        prompt: "p".into(),
        extra_json: "{}".into(),
        target_uids: vec![1],
        deadline_ms: 1_900_000_000_000,
    };
    let appended = node
        .log
        .append(&Event::new(
            1_800_000_000_000,
            Payload::ChallengeIssued(challenge),
        ))
        .unwrap();
    assert_eq!(appended, 1);
    let live = next_line().await.unwrap();
    assert_eq!(live["seq"], json!(1));
    assert_eq!(
        serde_json::from_value::<Event>(live["event"].clone())
            .unwrap()
            .kind(),
        EventKind::ChallengeIssued
    );

    // Shutting the server down ends the stream (and does not wait for the client).
    let Node { stop, served, .. } = node;
    let _ = stop.unwrap().send(());
    assert_eq!(next_line().await, None);
    tokio::time::timeout(Duration::from_secs(10), served.unwrap())
        .await
        .expect("the server stops within 10 s")
        .unwrap()
        .unwrap();
}
