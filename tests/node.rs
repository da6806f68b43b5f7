//! The live node end to end: demo-sized runs of every profile (better miners get more weight
//! and the node's own log replays to a match), the simulated chain's rules, and a node
//! killed with SIGKILL mid-run that resumes from its log.
#![cfg(feature = "node")]

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use weightlog::chain::{Chain, Refusal, SimChain, SimConfig, WeightsDecision};
use weightlog::keys::Hotkey;
use weightlog::log::LogReader;
use weightlog::node::demo::{DemoOptions, DemoOutcome, run_demo};
use weightlog_schema::Payload;
use weightlog_schema::event::{AccountId, SubmissionOutcome};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn demo(profile: &str, miners: u16) -> DemoOutcome {
    let dir = tempfile::tempdir().unwrap();
    let mut options = DemoOptions::new(profile, dir.path().to_path_buf());
    options.miners = miners;
    options.block_interval = Duration::from_millis(100);
    options.tempo = 20;
    let outcome = runtime().block_on(run_demo(options)).unwrap();
    // Keep the directory for a failing assertion's message, then let it go.
    drop(dir);
    outcome
}

/// The demo's weights favour the better half of the miners, every decision and evaluation
/// replays to a match, and weights were set at least twice.
fn check(outcome: &DemoOutcome) {
    let table: Vec<String> = outcome
        .rows
        .iter()
        .map(|row| {
            format!(
                "uid {} quality {:.2} score {:?} weight {:.4}",
                row.uid, row.quality, row.score, row.weight
            )
        })
        .collect();
    let table = table.join("\n");
    assert!(
        outcome.audit.is_match(),
        "the node's log must verify: {:?}\n{table}",
        outcome.audit.verdict
    );
    assert!(outcome.decisions >= 2, "two decisions at least\n{table}");
    assert!(outcome.node.submissions_included >= 2, "{table}");
    assert!(outcome.audit.decisions_checked >= 2, "{table}");
    let half = outcome.rows.len() / 2;
    let better: f64 = outcome.rows[..half].iter().map(|row| row.weight).sum();
    let worse: f64 = outcome.rows[outcome.rows.len() - half..]
        .iter()
        .map(|row| row.weight)
        .sum();
    assert!(
        better > worse,
        "the better half ({better:.4}) must outweigh the worse half ({worse:.4})\n{table}"
    );
}

#[test]
fn affine_demo_rewards_better_miners_and_verifies() {
    let outcome = demo("affine", 6);
    check(&outcome);
    assert!(
        outcome.audit.evaluations_checked > 0,
        "SAT verdicts are re-run"
    );
}

#[test]
fn loosh_demo_rewards_better_miners_and_verifies() {
    let outcome = demo("loosh", 6);
    check(&outcome);
    assert!(
        outcome.audit.embeddings_checked > 0,
        "answers are re-embedded"
    );
}

#[test]
fn quasar_demo_rewards_better_miners_and_verifies() {
    check(&demo("quasar", 6));
}

#[test]
fn omega_demo_rewards_better_miners_and_verifies() {
    check(&demo("omega", 6));
}

#[test]
fn aml_demo_rewards_better_miners_and_verifies() {
    check(&demo("aml", 6));
}

#[test]
fn the_simulated_chain_applies_the_chains_checks() {
    let validator = AccountId(Hotkey::from_seed(&[3; 32]).public_key());
    let now = weightlog::epistula::now_ms().unwrap();
    let chain = SimChain::new(
        SimConfig::quick(5, Duration::from_millis(50), 10, now),
        validator,
        Vec::new(),
    );
    let runtime = runtime();
    runtime.block_on(async {
        let head = chain.current_block().await.unwrap();
        let state = chain.subnet_state(5, head).await.unwrap();
        assert_eq!(
            state.own.unwrap().uid,
            0,
            "the validator holds the only uid"
        );
        assert!(chain.metagraph(6, head).await.is_err(), "no such subnet");
        let decision = WeightsDecision {
            decision_seq: 1,
            netuid: 5,
            mechanism_id: 0,
            uids: vec![0],
            weights: vec![65_535],
            version_key: 0,
        };
        let first = chain.submit_weights(&decision).await.unwrap();
        assert!(matches!(
            first.event.outcome,
            SubmissionOutcome::Included { .. }
        ));
        // Straight away again: the rate limit (tempo / 2 blocks) refuses it.
        let second = chain.submit_weights(&decision).await.unwrap();
        assert!(
            matches!(second.refusal, Some(Refusal::RateLimited { .. })),
            "{second:?}"
        );
        let unknown = WeightsDecision {
            uids: vec![9],
            ..decision.clone()
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        let third = chain.submit_weights(&unknown).await.unwrap();
        assert!(
            matches!(third.refusal, Some(Refusal::UnknownUid { .. })),
            "{third:?}"
        );
        assert_eq!(
            chain.submitted().len(),
            1,
            "only the accepted one is stored"
        );
        let later = chain.current_block().await.unwrap();
        assert!(later.number > head.number, "blocks advance with time");
    });
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Every event the node's API reports, as JSON by seq.
fn acknowledged(client: &reqwest::blocking::Client, port: u16) -> Vec<(u64, serde_json::Value)> {
    let mut events = Vec::new();
    loop {
        let url = format!(
            "http://127.0.0.1:{port}/events?from={}&limit=1000",
            events.len()
        );
        let page: serde_json::Value =
            serde_json::from_str(&client.get(url).send().unwrap().text().unwrap()).unwrap();
        let batch = page["events"].as_array().unwrap().clone();
        if batch.is_empty() {
            return events;
        }
        for item in batch {
            events.push((item["seq"].as_u64().unwrap(), item["event"].clone()));
        }
    }
}

#[test]
fn a_node_killed_mid_run_resumes_without_losing_or_repeating_anything() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("affine.wlog");
    let port = free_port();
    let args = |extra: &[&str]| {
        let mut args: Vec<String> = [
            "node",
            "--profile",
            "affine",
            "--subtensor.network",
            "sim",
            "--dev-seed",
            "4242424242424242424242424242424242424242424242424242424242424242",
            "--sim.miners",
            "4",
            "--sim.block-ms",
            "100",
            "--sim.tempo",
            "10",
            "--round-interval-ms",
            "50",
            "--api.port",
        ]
        .iter()
        .map(|arg| arg.to_string())
        .collect();
        args.push(port.to_string());
        args.push("--log".into());
        args.push(log.display().to_string());
        args.extend(extra.iter().map(|arg| arg.to_string()));
        args
    };
    let mut node = Command::new(env!("CARGO_BIN_EXE_weightlog"))
        .args(args(&[]))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    weightlog::http::install_tls_provider();
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    // Run until the node has set weights, and a little longer so the kill lands mid-round.
    let started = std::time::Instant::now();
    loop {
        assert!(
            node.try_wait().unwrap().is_none(),
            "the node exited before setting weights"
        );
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no weights in 120 s"
        );
        let latest = client
            .get(format!("http://127.0.0.1:{port}/weights/latest"))
            .send();
        if latest.is_ok_and(|response| response.status().is_success()) {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_millis(300));
    let before = acknowledged(&client, port);
    node.kill().unwrap(); // SIGKILL: no drain, no clean close.
    node.wait().unwrap();
    let decisions_before = before
        .iter()
        .filter(|(_, event)| event["payload"]["kind"] == "WeightsComputed")
        .count();

    // Restarted, it resumes from the log and runs until one more decision is included.
    let status = Command::new(env!("CARGO_BIN_EXE_weightlog"))
        .args(args(&["--submissions", "1"]))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "the restarted node failed: {}",
        String::from_utf8_lossy(&status.stderr)
    );

    let snapshot = LogReader::open(&log).unwrap().snapshot().unwrap();
    let size = snapshot.size().unwrap();
    let events = snapshot.range(0, size).unwrap();
    assert!(events.len() > before.len());
    for (seq, json) in &before {
        let stored = serde_json::to_value(&events[*seq as usize].1).unwrap();
        assert_eq!(
            &stored, json,
            "acknowledged event {seq} is stored unchanged"
        );
    }
    let mut ids = BTreeSet::new();
    let mut seeds = BTreeSet::new();
    let mut decisions = 0;
    for (seq, event) in &events {
        match &event.payload {
            Payload::ChallengeIssued(challenge) => {
                assert!(
                    ids.insert(challenge.challenge_id.clone()),
                    "challenge {} issued twice (seq {seq})",
                    challenge.challenge_id
                );
                assert!(seeds.insert(challenge.seed), "a seed reused at seq {seq}");
            }
            Payload::WeightsComputed(_) => decisions += 1,
            _ => {}
        }
    }
    assert!(decisions_before >= 1, "the first run set weights");
    assert!(
        decisions > decisions_before,
        "weights continue after the restart"
    );
    drop(snapshot);

    let verify = Command::new(env!("CARGO_BIN_EXE_weightlog"))
        .args(["replay", "verify", "--re-evaluate"])
        .arg(&log)
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "the resumed log verifies: {}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
}

#[test]
fn a_pushed_challenge_is_recorded_then_answered_and_evaluated_by_the_node() {
    use weightlog::envs::Environment;
    use weightlog::epistula::{Headers, fresh_uuid, now_ms};
    use weightlog::node::demo;
    use weightlog::node::{self as live, NodeOptions};

    weightlog::http::install_tls_provider();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("push.wlog");
    let validator = Hotkey::from_seed(&[21; 32]);
    let validator_id = AccountId(validator.public_key());
    let pusher = Hotkey::from_seed(&[22; 32]);
    runtime().block_on(async {
        let (running, _) = demo::spawn_miners(3, 5, validator_id).await.unwrap();
        let chain = Arc::new(SimChain::new(
            SimConfig::quick(120, Duration::from_millis(100), 50, now_ms().unwrap()),
            validator_id,
            demo::neurons(&running),
        ));
        let mut options = NodeOptions::new("affine", 120, log.clone());
        options.api_addr = Some("127.0.0.1:0".parse().unwrap());
        options.push_allowed = [AccountId(pusher.public_key())].into();
        options.round_interval = Duration::from_millis(100);
        let (tell, bound) = tokio::sync::oneshot::channel();
        options.api_bound = Some(tell);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let node = tokio::spawn(live::run(options, validator, chain, None, async move {
            let _ = stopped.await;
        }));
        let addr = bound.await.unwrap();

        let generated = weightlog::envs::sat::Sat
            .generate(77, &serde_json::json!({}))
            .unwrap();
        let body = serde_json::json!({
            "challenge_id": "pushed-1",
            "environment": "affine:sat",
            "seed": 77,
            "prompt": generated.prompt,
            "extra_json": generated.extra_json,
            "target_uids": [0, 1, 2],
            "deadline_ms": now_ms().unwrap() + 60_000,
        })
        .to_string();
        let headers = Headers::sign(
            &pusher,
            body.as_bytes(),
            Some(validator_id),
            now_ms().unwrap(),
            fresh_uuid(),
        );
        let client = reqwest::Client::new();
        let mut request = client
            .post(format!("http://{addr}/challenges"))
            .body(body.clone());
        for (name, value) in headers.pairs() {
            request = request.header(name, value);
        }
        let response = request.send().await.unwrap();
        assert_eq!(
            response.status().as_u16(),
            202,
            "{}",
            response.text().await.unwrap()
        );

        // The node answers it: three responses and three evaluations on that challenge.
        let started = std::time::Instant::now();
        loop {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the pushed challenge was not served"
            );
            let page: serde_json::Value = serde_json::from_str(
                &client
                    .get(format!("http://{addr}/events?from=0&limit=1000"))
                    .send()
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap(),
            )
            .unwrap();
            let on_pushed = |kind: &str| {
                page["events"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|item| {
                        item["event"]["payload"]["kind"] == kind
                            && item["event"]["payload"]["challenge_id"] == "pushed-1"
                    })
                    .count()
            };
            if on_pushed("ResponseReceived") == 3 && on_pushed("EvaluationRecorded") == 3 {
                assert_eq!(on_pushed("ChallengeIssued"), 1);
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        stop.send(()).unwrap();
        node.await.unwrap().unwrap();
        for miner in running {
            miner.shutdown().await;
        }
    });
}
