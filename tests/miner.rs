//! The miner client against misbehaving loopback servers, the reference miner's request
//! checks, and its answers for every environment scored through the real client.
#![cfg(feature = "node")]

mod common;

use std::collections::BTreeSet;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::issued_challenge;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use weightlog::envs::{self, Environment};
use weightlog::epistula::{self, Headers};
use weightlog::keys::Hotkey;
use weightlog::miner::answers::{AmlAnswer, VideoResults};
use weightlog::miner::{
    ChallengeAnswer, ChallengeRequest, ClientConfig, MinerClient, MinerReply, MinerTarget,
    ReferenceConfig, RunningMiner, Upstream, spawn,
};
use weightlog_schema::event::{AccountId, Axon, Neuron, ResponseOutcome};

fn validator_key() -> Hotkey {
    Hotkey::from_seed(&[1; 32])
}

fn miner_key() -> Hotkey {
    Hotkey::from_seed(&[2; 32])
}

fn account(hotkey: &Hotkey) -> AccountId {
    AccountId(hotkey.public_key())
}

fn quick_config() -> ClientConfig {
    ClientConfig {
        concurrency: 8,
        timeout: Duration::from_millis(300),
        attempts: 3,
        backoff: Duration::from_millis(40),
        response_bytes_max: 1 << 20,
    }
}

fn client(config: ClientConfig) -> MinerClient {
    MinerClient::new(validator_key(), config).unwrap()
}

fn request(challenge_id: &str) -> ChallengeRequest {
    ChallengeRequest {
        challenge_id: challenge_id.into(),
        environment: "affine:sat".into(),
        prompt: "p".into(),
        deadline_ms: 0,
    }
}

fn target(addr: SocketAddr, uid: u16) -> MinerTarget {
    MinerTarget {
        uid,
        hotkey: account(&miner_key()),
        url: format!("http://{addr}"),
    }
}

fn error_of(reply: &MinerReply) -> &str {
    match &reply.outcome {
        ResponseOutcome::Error { message } => message,
        ResponseOutcome::Ok { body } => panic!("expected an error, got Ok {body:?}"),
    }
}

fn body_of(reply: &MinerReply) -> &str {
    match &reply.outcome {
        ResponseOutcome::Ok { body } => body,
        ResponseOutcome::Error { message } => panic!("expected an answer, got error {message}"),
    }
}

/// Reads one HTTP request (head and Content-Length body); returns its path.
async fn read_request(stream: &mut TcpStream) -> Option<String> {
    let mut data = Vec::new();
    let mut buffer = [0u8; 8192];
    let head_end = loop {
        let read = stream.read(&mut buffer).await.ok()?;
        if read == 0 {
            return None;
        }
        data.extend_from_slice(&buffer[..read]);
        if let Some(position) = data.windows(4).position(|window| window == b"\r\n\r\n") {
            break position + 4;
        }
    };
    let head = String::from_utf8_lossy(&data[..head_end]).to_string();
    let length: usize = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    while data.len() < head_end + length {
        let read = stream.read(&mut buffer).await.ok()?;
        if read == 0 {
            return None;
        }
        data.extend_from_slice(&buffer[..read]);
    }
    head.split_whitespace().nth(1).map(str::to_string)
}

/// A loopback server running `handler` on each connection; counts connections.
async fn raw_server<F, Fut>(handler: F) -> (SocketAddr, Arc<AtomicUsize>)
where
    F: Fn(TcpStream, usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = connections.clone();
    let handler = Arc::new(handler);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let index = counter.fetch_add(1, Ordering::SeqCst);
            let handler = handler.clone();
            tokio::spawn(async move { handler(stream, index).await });
        }
    });
    (addr, connections)
}

fn http_response(status: &str, headers: &[(&str, String)], body: &[u8]) -> Vec<u8> {
    let mut text = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    let mut bytes = text.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// A server answering every request with one fixed response.
async fn fixed_server(response: Vec<u8>) -> (SocketAddr, Arc<AtomicUsize>) {
    let response = Arc::new(response);
    raw_server(move |mut stream, _| {
        let response = response.clone();
        async move {
            if read_request(&mut stream).await.is_some() {
                let _ = stream.write_all(&response).await;
                let _ = stream.shutdown().await;
            }
        }
    })
    .await
}

fn answer_body(challenge_id: &str) -> Vec<u8> {
    serde_json::to_vec(&ChallengeAnswer {
        challenge_id: challenge_id.into(),
        answer: "x1=True".into(),
    })
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_miner_times_out_after_every_attempt_with_backoff() {
    let (addr, connections) = raw_server(|mut stream, _| async move {
        let _ = read_request(&mut stream).await;
        tokio::time::sleep(Duration::from_secs(30)).await;
    })
    .await;
    let config = ClientConfig {
        timeout: Duration::from_millis(150),
        ..quick_config()
    };
    let started = Instant::now();
    let reply = client(config.clone())
        .query(&target(addr, 3), &request("c1"))
        .await;
    let message = error_of(&reply);
    assert!(message.contains("timed out after 150 ms"), "{message}");
    assert!(message.contains("after 3 attempts"), "{message}");
    assert_eq!(reply.attempts, 3);
    assert_eq!(connections.load(Ordering::SeqCst), 3);
    // Three timeouts plus backoff of 40 ms then 80 ms.
    let floor = 3 * 150 + 40 + 80;
    assert!(reply.latency_ms >= floor, "latency {}", reply.latency_ms);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(reply.uid, 3);
    assert!(reply.miner_signature.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_is_retried_then_reported() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let reply = client(quick_config())
        .query(&target(addr, 1), &request("c1"))
        .await;
    assert!(error_of(&reply).contains("cannot connect"), "{reply:?}");
    assert_eq!(reply.attempts, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_is_a_malformed_response_and_is_not_retried() {
    let (addr, connections) =
        fixed_server(http_response("200 OK", &[], b"<html>hello</html>")).await;
    let reply = client(quick_config())
        .query(&target(addr, 1), &request("c1"))
        .await;
    assert!(
        error_of(&reply).starts_with("malformed response:"),
        "{reply:?}"
    );
    assert_eq!(reply.attempts, 1);
    assert_eq!(connections.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_for_another_challenge_is_refused() {
    let (addr, _) = fixed_server(http_response("200 OK", &[], &answer_body("other"))).await;
    let reply = client(quick_config())
        .query(&target(addr, 1), &request("c1"))
        .await;
    assert_eq!(error_of(&reply), "answer is for challenge other, not c1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_body_is_refused_quickly_without_buffering_it() {
    const HUNDRED_MB: usize = 100 << 20;
    // Declared length: refused before reading.
    let (declared, _) = raw_server(|mut stream, _| async move {
        if read_request(&mut stream).await.is_some() {
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {HUNDRED_MB}\r\n\r\n");
            let _ = stream.write_all(head.as_bytes()).await;
            let chunk = vec![b'a'; 64 << 10];
            for _ in 0..(HUNDRED_MB / chunk.len()) {
                if stream.write_all(&chunk).await.is_err() {
                    return;
                }
            }
        }
    })
    .await;
    // Chunked, no length: stopped at the limit while streaming.
    let (streamed, _) = raw_server(|mut stream, _| async move {
        if read_request(&mut stream).await.is_some() {
            let head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
            let _ = stream.write_all(head.as_bytes()).await;
            let chunk = vec![b'a'; 64 << 10];
            let mut framed = format!("{:x}\r\n", chunk.len()).into_bytes();
            framed.extend_from_slice(&chunk);
            framed.extend_from_slice(b"\r\n");
            for _ in 0..(HUNDRED_MB / chunk.len()) {
                if stream.write_all(&framed).await.is_err() {
                    return;
                }
            }
            let _ = stream.write_all(b"0\r\n\r\n").await;
        }
    })
    .await;
    let config = ClientConfig {
        timeout: Duration::from_secs(10),
        ..quick_config()
    };
    let client = client(config);
    for addr in [declared, streamed] {
        let started = Instant::now();
        let reply = client.query(&target(addr, 1), &request("c1")).await;
        assert_eq!(error_of(&reply), "response exceeds 1048576 bytes");
        assert_eq!(reply.attempts, 1);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "took {:?}",
            started.elapsed()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_closed_mid_request_is_retried_then_reported() {
    let (addr, connections) = raw_server(|mut stream, _| async move {
        let mut first = [0u8; 16];
        let _ = stream.read(&mut first).await;
        drop(stream);
    })
    .await;
    let reply = client(quick_config())
        .query(&target(addr, 1), &request("c1"))
        .await;
    let message = error_of(&reply);
    assert!(message.contains("after 3 attempts"), "{message}");
    assert_eq!(reply.attempts, 3);
    assert_eq!(connections.load(Ordering::SeqCst), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_5xx_is_retried_and_a_4xx_is_not() {
    let ok = Arc::new(http_response("200 OK", &[], &answer_body("c1")));
    let (flaky, flaky_connections) = raw_server(move |mut stream, index| {
        let ok = ok.clone();
        async move {
            if read_request(&mut stream).await.is_some() {
                let response = if index == 0 {
                    http_response("503 Service Unavailable", &[], b"busy")
                } else {
                    ok.to_vec()
                };
                let _ = stream.write_all(&response).await;
            }
        }
    })
    .await;
    let client = client(quick_config());
    let reply = client.query(&target(flaky, 1), &request("c1")).await;
    assert_eq!(body_of(&reply), "x1=True");
    assert_eq!(reply.attempts, 2);
    assert_eq!(flaky_connections.load(Ordering::SeqCst), 2);

    let (refusing, refusing_connections) =
        fixed_server(http_response("401 Unauthorized", &[], br#"{"error":"no"}"#)).await;
    let reply = client.query(&target(refusing, 1), &request("c1")).await;
    assert_eq!(
        error_of(&reply),
        r#"miner answered HTTP 401: {"error":"no"}"#
    );
    assert_eq!(reply.attempts, 1);
    assert_eq!(refusing_connections.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_signatures_are_checked_and_kept() {
    let body = answer_body("c1");
    let validator = Some(account(&validator_key()));
    let signed_by = |key: &Hotkey, signed: &[u8]| {
        Headers::sign_now(key, signed, validator)
            .unwrap()
            .pairs()
            .into_iter()
            .collect::<Vec<_>>()
    };
    let client = client(quick_config());

    let good = signed_by(&miner_key(), &body);
    let (addr, _) = fixed_server(http_response("200 OK", &good, &body)).await;
    let reply = client.query(&target(addr, 1), &request("c1")).await;
    assert_eq!(body_of(&reply), "x1=True");
    let signature = reply.miner_signature.expect("the signature is kept");
    let expected = Headers::parse(|name| {
        good.iter()
            .find(|(header, _)| *header == name)
            .map(|(_, value)| value.as_str())
    })
    .unwrap();
    assert_eq!(signature.0, expected.signature);

    let impostor = Hotkey::from_seed(&[9; 32]);
    let (addr, _) =
        fixed_server(http_response("200 OK", &signed_by(&impostor, &body), &body)).await;
    let reply = client.query(&target(addr, 1), &request("c1")).await;
    let message = error_of(&reply);
    assert!(
        message.starts_with(&format!(
            "response signed by {} not the miner's hotkey",
            impostor.ss58()
        )),
        "{message}"
    );
    assert!(reply.miner_signature.is_none());

    let (addr, _) = fixed_server(http_response(
        "200 OK",
        &signed_by(&miner_key(), b"another body"),
        &body,
    ))
    .await;
    let reply = client.query(&target(addr, 1), &request("c1")).await;
    assert!(
        error_of(&reply).starts_with("bad response signature"),
        "{reply:?}"
    );

    let (addr, _) = fixed_server(http_response("200 OK", &[], &body)).await;
    let reply = client.query(&target(addr, 1), &request("c1")).await;
    assert_eq!(body_of(&reply), "x1=True");
    assert!(reply.miner_signature.is_none(), "unsigned is accepted");
    let event = reply.into_event("c1");
    assert_eq!(event.challenge_id, "c1");
    assert_eq!(event.attempts, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_many_keeps_target_order_and_the_concurrency_limit() {
    let in_flight = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let (now, peak) = (in_flight.clone(), most.clone());
    let (addr, _) = raw_server(move |mut stream, _| {
        let (now, peak) = (now.clone(), peak.clone());
        async move {
            let Some(path) = read_request(&mut stream).await else {
                return;
            };
            let current = now.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(current, Ordering::SeqCst);
            // Later targets answer sooner, so completion order is not target order.
            let uid: u64 = path
                .trim_start_matches("/u")
                .trim_end_matches("/challenge")
                .parse()
                .unwrap_or(0);
            tokio::time::sleep(Duration::from_millis(60 - uid * 4)).await;
            now.fetch_sub(1, Ordering::SeqCst);
            let body = serde_json::to_vec(&ChallengeAnswer {
                challenge_id: "c1".into(),
                answer: format!("uid {uid}"),
            })
            .unwrap();
            let _ = stream.write_all(&http_response("200 OK", &[], &body)).await;
        }
    })
    .await;
    let config = ClientConfig {
        concurrency: 3,
        timeout: Duration::from_secs(5),
        ..quick_config()
    };
    let client = client(config);
    let targets: Vec<MinerTarget> = (0..12)
        .map(|uid| MinerTarget {
            uid,
            hotkey: account(&miner_key()),
            url: format!("http://{addr}/u{uid}"),
        })
        .collect();
    // Two calls at once share the client's limit.
    let challenge = request("c1");
    let (first, second) = tokio::join!(
        client.query_many(&targets, &challenge),
        client.query_many(&targets[..4], &challenge),
    );
    for (index, reply) in first.iter().enumerate() {
        assert_eq!(reply.uid, index as u16);
        assert_eq!(body_of(reply), format!("uid {index}"));
    }
    assert_eq!(second.len(), 4);
    let peak = most.load(Ordering::SeqCst);
    assert!(peak <= 3, "{peak} requests were in flight");
    assert!(peak >= 2, "requests did overlap ({peak})");
}

#[test]
fn targets_come_from_neurons_that_serve() {
    let neuron = |ip: &str, port: u16| Neuron {
        uid: 5,
        hotkey: account(&miner_key()),
        coldkey: account(&validator_key()),
        stake_rao: 0,
        validator_permit: false,
        active: true,
        registration_block: 0,
        axon: Some(Axon {
            ip: ip.into(),
            port,
            protocol: 4,
            version: 0,
        }),
    };
    let target = MinerTarget::from_neuron(&neuron("10.0.0.7", 8091)).unwrap();
    assert_eq!(target.url, "http://10.0.0.7:8091");
    assert_eq!(target.uid, 5);
    assert_eq!(
        MinerTarget::from_neuron(&neuron("::1", 80)).unwrap().url,
        "http://[::1]:80"
    );
    assert!(MinerTarget::from_neuron(&neuron("0.0.0.0", 8091)).is_none());
    assert!(MinerTarget::from_neuron(&neuron("10.0.0.7", 0)).is_none());
    assert!(MinerTarget::from_neuron(&neuron("not an ip", 1)).is_none());
    let mut silent = neuron("10.0.0.7", 1);
    silent.axon = None;
    assert!(MinerTarget::from_neuron(&silent).is_none());
}

// ------------------------------------------------------------------ the reference miner

async fn reference(quality: f64, seed: u64) -> RunningMiner {
    reference_with(quality, seed, None, None).await
}

async fn reference_with(
    quality: f64,
    seed: u64,
    allowed_validators: Option<BTreeSet<AccountId>>,
    upstream: Option<Upstream>,
) -> RunningMiner {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    spawn(
        ReferenceConfig {
            hotkey: Hotkey::from_seed(&[2 + seed as u8; 32]),
            quality,
            latency_ms: 0,
            seed,
            allowed_validators,
            upstream,
        },
        listener,
    )
    .await
    .unwrap()
}

fn miner_target(miner: &RunningMiner, uid: u16) -> MinerTarget {
    MinerTarget {
        uid,
        hotkey: miner.hotkey,
        url: format!("http://{}", miner.addr),
    }
}

/// Posts `body` with `headers` straight to a miner; returns (status, body text).
async fn post_raw(
    miner: &RunningMiner,
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> (u16, String) {
    let http = reqwest::Client::new();
    let mut builder = http
        .post(format!("http://{}/challenge", miner.addr))
        .body(body);
    for (name, value) in headers {
        builder = builder.header(*name, value);
    }
    let response = builder.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

fn signed(
    key: &Hotkey,
    body: &[u8],
    signed_for: AccountId,
    timestamp_ms: u64,
) -> Vec<(&'static str, String)> {
    Headers::sign(
        key,
        body,
        Some(signed_for),
        timestamp_ms,
        epistula::fresh_uuid(),
    )
    .pairs()
}

fn assert_refused(result: (u16, String), status: u16, needle: &str) {
    assert_eq!(result.0, status, "{}", result.1);
    let value: serde_json::Value = serde_json::from_str(&result.1).unwrap();
    let message = value["error"].as_str().unwrap();
    assert!(
        message.contains(needle),
        "{message:?} should say {needle:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_miner_refuses_what_it_must() {
    let miner = reference(1.0, 0).await;
    let validator = validator_key();
    let body = serde_json::to_vec(&request("c1")).unwrap();
    let now = epistula::now_ms().unwrap();

    assert_refused(
        post_raw(&miner, &[], body.clone()).await,
        401,
        "missing header Epistula-Version",
    );
    let wrong_body = signed(&validator, b"{}", miner.hotkey, now);
    assert_refused(
        post_raw(&miner, &wrong_body, body.clone()).await,
        401,
        "does not verify",
    );
    let other = account(&Hotkey::from_seed(&[42; 32]));
    assert_refused(
        post_raw(&miner, &signed(&validator, &body, other, now), body.clone()).await,
        401,
        "not for this receiver",
    );
    assert_refused(
        post_raw(
            &miner,
            &signed(&validator, &body, miner.hotkey, now - 60_000),
            body.clone(),
        )
        .await,
        401,
        "stale",
    );
    let unbound = Headers::sign(&validator, &body, None, now, epistula::fresh_uuid()).pairs();
    assert_refused(
        post_raw(&miner, &unbound, body.clone()).await,
        401,
        "Epistula-Signed-For",
    );

    let once = signed(&validator, &body, miner.hotkey, now);
    assert_eq!(post_raw(&miner, &once, body.clone()).await.0, 200);
    assert_refused(
        post_raw(&miner, &once, body.clone()).await,
        401,
        "already used",
    );

    let malformed = b"{\"challenge_id\": 3".to_vec();
    assert_refused(
        post_raw(
            &miner,
            &signed(&validator, &malformed, miner.hotkey, now),
            malformed,
        )
        .await,
        400,
        "malformed challenge request",
    );
    let unknown = serde_json::to_vec(&ChallengeRequest {
        environment: "chess:blitz".into(),
        ..request("c2")
    })
    .unwrap();
    assert_refused(
        post_raw(
            &miner,
            &signed(&validator, &unknown, miner.hotkey, now),
            unknown,
        )
        .await,
        400,
        "unknown environment chess:blitz",
    );
    let huge = vec![b' '; (1 << 20) + 1];
    assert_refused(
        post_raw(&miner, &signed(&validator, &huge, miner.hotkey, now), huge).await,
        413,
        "exceeds",
    );
    miner.shutdown().await;

    let strict = reference_with(1.0, 0, Some(BTreeSet::from([other])), None).await;
    assert_refused(
        post_raw(
            &strict,
            &signed(&validator, &body, strict.hotkey, now),
            body.clone(),
        )
        .await,
        401,
        "not allowed",
    );
    let through_client = client(quick_config())
        .query(&miner_target(&strict, 1), &request("c1"))
        .await;
    assert!(
        error_of(&through_client).contains("HTTP 401"),
        "{through_client:?}"
    );
    assert_eq!(through_client.attempts, 1);
    strict.shutdown().await;
}

// ------------------------------------------------------------------ answers, scored

async fn ask(
    client: &MinerClient,
    miner: &RunningMiner,
    environment: &str,
    challenge_id: &str,
    prompt: &str,
) -> String {
    let request = ChallengeRequest {
        challenge_id: challenge_id.into(),
        environment: environment.into(),
        prompt: prompt.into(),
        deadline_ms: 0,
    };
    let reply = client.query(&miner_target(miner, 1), &request).await;
    assert!(reply.miner_signature.is_some(), "the reference miner signs");
    body_of(&reply).to_string()
}

/// Scores of a quality-1 and a quality-0 miner on `seeds` challenges of an environment.
async fn scores(
    environment: &dyn Environment,
    seeds: std::ops::Range<u64>,
    parameters: serde_json::Value,
) -> (Vec<f64>, Vec<f64>) {
    let client = client(quick_config());
    let (good, bad) = (reference(1.0, 1).await, reference(0.0, 2).await);
    let (mut good_scores, mut bad_scores) = (Vec::new(), Vec::new());
    for seed in seeds {
        let challenge = issued_challenge(environment, seed, &parameters);
        for (miner, scores) in [(&good, &mut good_scores), (&bad, &mut bad_scores)] {
            let answer = ask(
                &client,
                miner,
                environment.name(),
                &challenge.challenge_id,
                &challenge.prompt,
            )
            .await;
            let score =
                tokio::task::block_in_place(|| environment.evaluate(&challenge, Some(&answer)))
                    .unwrap()
                    .score;
            scores.push(score);
        }
    }
    good.shutdown().await;
    bad.shutdown().await;
    (good_scores, bad_scores)
}

fn assert_all(scores: &[f64], expected: f64, what: &str) {
    assert!(
        scores.iter().all(|score| *score == expected),
        "{what}: {scores:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quality_decides_sat_elr_and_hvm_scores() {
    for environment in [
        &envs::sat::Sat as &dyn Environment,
        &envs::elr::Elr,
        &envs::hvm::Hvm,
    ] {
        let (good, bad) = scores(environment, 0..8, json!({})).await;
        assert_all(&good, 1.0, environment.name());
        assert_all(&bad, 0.0, environment.name());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quality_decides_abd_and_ded_scores_in_the_sandbox() {
    for environment in [&envs::abd::Abd as &dyn Environment, &envs::ded::Ded] {
        let (good, bad) = scores(environment, 0..5, json!({})).await;
        assert_all(&good, 1.0, environment.name());
        assert_all(&bad, 0.0, environment.name());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quality_decides_quasar_accuracy() {
    let needle = &envs::needle::Needle;
    let client = client(quick_config());
    let (good, bad) = (reference(1.0, 1).await, reference(0.0, 2).await);
    for seed in 0..6 {
        let challenge = issued_challenge(needle, seed, &json!({"context_length": 400}));
        let hidden: envs::needle::Hidden = serde_json::from_str(&challenge.extra_json).unwrap();
        for name in ["quasar:long_context", "quasar:needle"] {
            let right = ask(
                &client,
                &good,
                name,
                &challenge.challenge_id,
                &challenge.prompt,
            )
            .await;
            assert_eq!(right, hidden.answer);
            assert_eq!(
                needle.evaluate(&challenge, Some(&right)).unwrap().score,
                1.0
            );
            let wrong = ask(
                &client,
                &bad,
                name,
                &challenge.challenge_id,
                &challenge.prompt,
            )
            .await;
            assert_eq!(wrong.len(), 7, "a plausible number: {wrong}");
            assert_eq!(
                weightlog_replay::quasar::metric_score("narrativeqa", &wrong, &hidden.answer, &[])
                    .unwrap(),
                0.0
            );
        }
    }
    good.shutdown().await;
    bad.shutdown().await;
}

fn content_words(text: &str) -> BTreeSet<String> {
    const STOP: [&str; 24] = [
        "the", "and", "for", "with", "that", "this", "are", "from", "its", "into", "when", "while",
        "what", "which", "their", "they", "them", "than", "then", "more", "most", "some", "such",
        "here",
    ];
    text.split(|character: char| !character.is_alphanumeric())
        .map(str::to_lowercase)
        .filter(|word| word.len() > 3 && !STOP.contains(&word.as_str()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loosh_answers_agree_on_topic_and_differ_off_topic() {
    let prompt_env = &envs::prompt::Prompt;
    let client = client(quick_config());
    let (first, second, off) = (
        reference(1.0, 1).await,
        reference(1.0, 3).await,
        reference(0.0, 2).await,
    );
    let mut reworded = 0;
    for seed in 0..12 {
        let challenge = issued_challenge(prompt_env, seed, &json!({}));
        let a = ask(
            &client,
            &first,
            "loosh:inference",
            &challenge.challenge_id,
            &challenge.prompt,
        )
        .await;
        let b = ask(
            &client,
            &second,
            "loosh:inference",
            &challenge.challenge_id,
            &challenge.prompt,
        )
        .await;
        let c = ask(
            &client,
            &off,
            "loosh:inference",
            &challenge.challenge_id,
            &challenge.prompt,
        )
        .await;
        let (a_words, b_words, c_words) = (content_words(&a), content_words(&b), content_words(&c));
        let shared = a_words.intersection(&b_words).count();
        assert!(
            shared >= 10,
            "on-topic answers share {shared} content words:\n{a}\n{b}"
        );
        let topic: envs::prompt::Posed = serde_json::from_str(&challenge.extra_json).unwrap();
        let topic_words = content_words(&topic.topic);
        assert!(topic_words.iter().any(|word| a_words.contains(word)), "{a}");
        assert_eq!(
            a_words.intersection(&c_words).count(),
            0,
            "off-topic shares words:\n{a}\n{c}"
        );
        if a != b {
            reworded += 1;
        }
    }
    assert!(reworded >= 10, "miners word their answers differently");
    for miner in [first, second, off] {
        miner.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn video_search_and_aml_answers_have_their_shape_and_follow_quality() {
    let client = client(quick_config());
    let (good, bad) = (reference(1.0, 1).await, reference(0.0, 2).await);
    let query = "red panda climbing";
    let results: VideoResults =
        serde_json::from_str(&ask(&client, &good, "omega:video_search", "v1", query).await)
            .unwrap();
    assert_eq!(results.results.len(), 5);
    for result in &results.results {
        assert!(!result.video_id.is_empty());
        for word in query.split_whitespace() {
            assert!(result.description.contains(word), "{}", result.description);
        }
    }
    let unrelated: VideoResults =
        serde_json::from_str(&ask(&client, &bad, "omega:video_search", "v1", query).await).unwrap();
    assert_eq!(unrelated.results.len(), 5);
    for result in &unrelated.results {
        for word in query.split_whitespace() {
            assert!(
                !result.description.to_lowercase().contains(word),
                "{}",
                result.description
            );
        }
    }

    let alerts: Vec<serde_json::Value> = (0..40)
        .map(|index| json!({"alert_id": format!("a{index}"), "address": format!("0x{index:040x}"), "risk_signal": (index as f64) / 40.0}))
        .collect();
    let prompt = json!({ "alerts": alerts }).to_string();
    let error_of_miner = |answer: &str| {
        let answer: AmlAnswer = serde_json::from_str(answer).unwrap();
        assert_eq!(
            answer.alert_ids,
            (0..40).map(|index| format!("a{index}")).collect::<Vec<_>>()
        );
        assert_eq!(answer.scores.len(), 40);
        answer
            .scores
            .iter()
            .enumerate()
            .map(|(index, score)| {
                assert!((0.0..=1.0).contains(score));
                assert_eq!((score * 10_000.0).round() / 10_000.0, *score, "4 decimals");
                (score - index as f64 / 40.0).abs()
            })
            .fold(0.0f64, f64::max)
    };
    assert_eq!(
        error_of_miner(&ask(&client, &good, "aml", "a1", &prompt).await),
        0.0
    );
    let noisy = error_of_miner(&ask(&client, &bad, "aml", "a1", &prompt).await);
    assert!(noisy > 0.1 && noisy <= 0.5 + 1e-9, "noise {noisy}");
    good.shutdown().await;
    bad.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_mode_answers_with_the_upstream_model_and_reports_its_failure() {
    let seen = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let record = seen.clone();
    let (upstream, _) = raw_server(move |mut stream, _| {
        let record = record.clone();
        async move {
            // Read the whole request to check what was forwarded.
            let mut data = Vec::new();
            let mut buffer = [0u8; 4096];
            loop {
                let read = stream.read(&mut buffer).await.unwrap_or(0);
                if read == 0 {
                    return;
                }
                data.extend_from_slice(&buffer[..read]);
                let text = String::from_utf8_lossy(&data).to_string();
                if let Some((head, body)) = text.split_once("\r\n\r\n")
                    && body.ends_with('}')
                    && serde_json::from_str::<serde_json::Value>(body).is_ok()
                {
                    record.lock().unwrap().push(format!("{head}\n\n{body}"));
                    let reply = json!({"choices": [{"message": {"role": "assistant", "content": "forty-two"}}]});
                    let _ = stream
                        .write_all(&http_response("200 OK", &[("Content-Type", "application/json".into())], reply.to_string().as_bytes()))
                        .await;
                    return;
                }
            }
        }
    })
    .await;
    let miner = reference_with(
        0.0,
        1,
        None,
        Some(Upstream {
            url: format!("http://{upstream}"),
            model: "tiny-model".into(),
            api_key: Some("sk-test".into()),
        }),
    )
    .await;
    let client = client(quick_config());
    let answer = ask(
        &client,
        &miner,
        "loosh:inference",
        "p1",
        "What is six times seven?",
    )
    .await;
    assert_eq!(answer, "forty-two");
    let forwarded = seen.lock().unwrap()[0].clone();
    assert!(
        forwarded.starts_with("POST /v1/chat/completions"),
        "{forwarded}"
    );
    assert!(
        forwarded
            .to_lowercase()
            .contains("authorization: bearer sk-test"),
        "{forwarded}"
    );
    let body: serde_json::Value =
        serde_json::from_str(forwarded.split_once("\n\n").unwrap().1).unwrap();
    assert_eq!(body["model"], "tiny-model");
    assert_eq!(body["messages"][0]["content"], "What is six times seven?");
    miner.shutdown().await;

    let (broken, _) = fixed_server(http_response(
        "500 Internal Server Error",
        &[],
        b"model crashed",
    ))
    .await;
    let failing = reference_with(
        1.0,
        1,
        None,
        Some(Upstream {
            url: format!("http://{broken}"),
            model: "tiny-model".into(),
            api_key: None,
        }),
    )
    .await;
    let config = ClientConfig {
        attempts: 1,
        ..quick_config()
    };
    let reply = MinerClient::new(validator_key(), config)
        .unwrap()
        .query(&miner_target(&failing, 1), &request("c9"))
        .await;
    let message = error_of(&reply);
    assert!(message.contains("HTTP 502"), "{message}");
    assert!(message.contains("model crashed"), "{message}");
    failing.shutdown().await;
}

#[test]
fn the_miner_command_prints_its_address_and_hotkey_and_answers() {
    use std::io::BufRead;
    /// Kills the miner even when an assertion fails first.
    struct Stopped(std::process::Child);
    impl Drop for Stopped {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_weightlog"))
        .args([
            "miner",
            "--port",
            "0",
            "--quality",
            "1",
            "--latency-ms",
            "0",
        ])
        .args(["--dev-seed", &"02".repeat(32)])
        .args(["--validator", &validator_key().ss58()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let child = Stopped(child);
    let mut lines = std::io::BufReader::new(stdout).lines();
    let address = lines.next().unwrap().unwrap();
    let hotkey = lines.next().unwrap().unwrap();
    let url = address
        .strip_prefix("miner listening on ")
        .unwrap()
        .to_string();
    assert_eq!(hotkey, format!("hotkey {}", miner_key().ss58()));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let reply = runtime.block_on(async {
        let challenge = issued_challenge(&envs::sat::Sat, 5, &json!({}));
        let target = MinerTarget {
            uid: 0,
            hotkey: account(&miner_key()),
            url,
        };
        let request = ChallengeRequest {
            challenge_id: challenge.challenge_id.clone(),
            environment: challenge.environment.clone(),
            prompt: challenge.prompt.clone(),
            deadline_ms: 0,
        };
        let reply = client(quick_config()).query(&target, &request).await;
        let score = envs::sat::Sat
            .evaluate(&challenge, Some(body_of(&reply)))
            .unwrap()
            .score;
        (score, reply.miner_signature.is_some())
    });
    drop(child);
    assert_eq!(reply, (1.0, true));
}
