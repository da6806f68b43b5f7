//! The `weightlog` binary end to end: every command through `std::process::Command`, each
//! test in its own temporary directory with its wallets under it (`--wallet.path`).
//!
//! The `$NACL` fixture coldkey costs one Argon2 run (512 MiB) per load: this file runs it
//! exactly twice (right and wrong password).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;
use weightlog_schema::bundle::ProofBundle;
use weightlog_schema::event::{ChallengeIssued, ProfileChanged};
use weightlog_schema::merkle::MerkleTree;
use weightlog_schema::{
    Checkpoint, EVENT_BYTES_MAX, Event, EventKind, Hash, Payload, SequencedEvent, SignedCheckpoint,
    encode, event_id, leaf_hash, samples,
};

const BIN: &str = env!("CARGO_BIN_EXE_weightlog");
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/chain-fixtures");
const PASSWORD_ENV: &str = "WEIGHTLOG_WALLET_PASSWORD";
const COLDKEY_SS58: &str = "5DfhGyQdFobKM8NsWvEeAKk5EQQgYe9AydgJ7rMB6E1EqRzV";
const COLDKEY_PASSWORD: &str = "correct horse battery staple";
const LOG: &str = "validator.wlog";
/// The profile of the logs these storage tests write: one with no projection, so that any
/// valid event may be appended (an append to a log of a built-in profile must also pass its
/// projection; see `append_refuses_what_the_profile_refuses`).
const PROFILE: &str = "custom";
/// Longest a single command may take before the test calls it a hang.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------
// Running the binary
// ---------------------------------------------------------------------------------------

#[derive(Debug)]
struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Output {
    #[track_caller]
    fn ok(self) -> Self {
        assert_eq!(self.code, 0, "command failed: {self:#?}");
        self
    }

    /// Exit `code` and a stderr that is one clear line (no panic, no backtrace).
    #[track_caller]
    fn fails(self, code: i32) -> Self {
        assert_eq!(self.code, code, "wrong exit code: {self:#?}");
        assert!(
            self.stderr.starts_with("weightlog: "),
            "stderr should be a `weightlog: ` message: {self:#?}"
        );
        self
    }

    #[track_caller]
    fn stderr_has(&self, needle: &str) -> &Self {
        assert!(
            self.stderr.contains(needle),
            "stderr should mention {needle:?}: {self:#?}"
        );
        self
    }
}

/// One test's directory: the log, its wallets and its files.
struct Env {
    dir: TempDir,
}

impl Env {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn wallets(&self) -> PathBuf {
        self.path("wallets")
    }

    fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, contents).expect("write test file");
        path
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).expect("read test file")
    }

    /// Runs the binary in the test directory, without a password in its environment.
    fn run(&self, args: &[&str]) -> Output {
        self.run_with(args, &[], None)
    }

    /// Runs the binary with extra environment variables and, optionally, bytes on stdin
    /// (stdin is null otherwise, so it is never a terminal).
    fn run_with(&self, args: &[&str], envs: &[(&str, &str)], stdin: Option<&[u8]>) -> Output {
        let mut command = Command::new(BIN);
        command
            .args(args)
            .current_dir(self.dir.path())
            // Never touch the real ~/.bittensor, whatever a test gets wrong.
            .env("HOME", self.dir.path())
            .env_remove(PASSWORD_ENV)
            .env("RUST_BACKTRACE", "0")
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in envs {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("spawn weightlog");
        if let Some(bytes) = stdin {
            let mut pipe = child.stdin.take().expect("stdin pipe");
            let bytes = bytes.to_vec();
            std::thread::spawn(move || {
                let _ = pipe.write_all(&bytes);
            });
        }
        let drain = |mut pipe: Box<dyn Read + Send>| {
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                let _ = pipe.read_to_end(&mut bytes);
                String::from_utf8_lossy(&bytes).into_owned()
            })
        };
        let stdout = drain(Box::new(child.stdout.take().expect("stdout pipe")));
        let stderr = drain(Box::new(child.stderr.take().expect("stderr pipe")));
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break status;
            }
            if started.elapsed() > COMMAND_TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                panic!("weightlog {args:?} hung for {COMMAND_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let output = Output {
            code: status.code().unwrap_or(-1),
            stdout: stdout.join().expect("stdout reader"),
            stderr: stderr.join().expect("stderr reader"),
        };
        assert!(
            !output.stderr.contains("panicked"),
            "weightlog {args:?} panicked: {output:#?}"
        );
        output
    }

    /// `--wallet.path <tmp>/wallets` plus wallet/hotkey names.
    fn wallet_args(&self, name: &str, hotkey: &str) -> Vec<String> {
        vec![
            "--wallet.path".into(),
            self.wallets().display().to_string(),
            "--wallet.name".into(),
            name.into(),
            "--wallet.hotkey".into(),
            hotkey.into(),
        ]
    }

    fn run_wallet(&self, args: &[&str], wallet: (&str, &str)) -> Output {
        self.run_wallet_with(args, wallet, &[])
    }

    fn run_wallet_with(
        &self,
        args: &[&str],
        (name, hotkey): (&str, &str),
        envs: &[(&str, &str)],
    ) -> Output {
        let wallet = self.wallet_args(name, hotkey);
        let mut all: Vec<&str> = args.to_vec();
        all.extend(wallet.iter().map(String::as_str));
        self.run_with(&all, envs, None)
    }

    /// `keys dev` for wallet `name`/`hotkey`; returns the address it printed.
    fn dev_key(&self, name: &str, hotkey: &str) -> String {
        let out = self.run_wallet(&["keys", "dev"], (name, hotkey)).ok();
        let address = out.stdout.lines().last().expect("address line").to_string();
        assert!(out.stdout.starts_with("wrote "), "{out:#?}");
        let shown = self.run_wallet(&["keys", "show"], (name, hotkey)).ok();
        assert_eq!(shown.stdout.trim(), address);
        address
    }

    /// A dev key in wallet `dev`/`default` and a log `LOG` it signs; returns the address.
    fn init_log(&self) -> String {
        let address = self.dev_key("dev", "default");
        let out = self
            .run_wallet(
                &["init", LOG, "--netuid", "7", "--profile", PROFILE],
                ("dev", "default"),
            )
            .ok();
        assert!(
            out.stdout.contains(&format!("signer  {address}")),
            "{out:#?}"
        );
        address
    }

    fn append(&self, jsonl: &str) -> Output {
        self.run_wallet(&["append", LOG, "--jsonl", jsonl], ("dev", "default"))
    }

    fn inspect(&self) -> serde_json::Value {
        let out = self.run(&["inspect", LOG, "--json"]).ok();
        serde_json::from_str(&out.stdout).expect("inspect --json prints JSON")
    }

    /// What must not change when an append is refused: size, root and last checkpoint.
    fn state(&self) -> (u64, String, String) {
        let summary = self.inspect();
        (
            summary["size"].as_u64().expect("size"),
            summary["root"].as_str().expect("root").to_string(),
            summary["last_checkpoint"]
                .as_str()
                .expect("last checkpoint")
                .to_string(),
        )
    }

    fn cat_json(&self, extra: &[&str]) -> Vec<SequencedEvent> {
        let mut args = vec!["cat", LOG, "--json"];
        args.extend(extra);
        let out = self.run(&args).ok();
        out.stdout
            .lines()
            .map(|line| serde_json::from_str(line).expect("cat --json line"))
            .collect()
    }

    fn checkpoint(&self, size: Option<u64>) -> String {
        let size = size.map(|size| size.to_string());
        let mut args = vec!["checkpoint", LOG];
        if let Some(size) = &size {
            args.extend(["--size", size.as_str()]);
        }
        self.run(&args).ok().stdout
    }
}

fn jsonl(events: &[Event]) -> String {
    events
        .iter()
        .map(|event| serde_json::to_string(event).expect("event JSON") + "\n")
        .collect()
}

/// One event of every kind a validator appends (all but the genesis `LogOpened`).
fn every_kind(seed: u64) -> Vec<Event> {
    samples::one_of_each(seed)
        .into_iter()
        .filter(|event| event.kind() != EventKind::LogOpened)
        .collect()
}

// ---------------------------------------------------------------------------------------
// Help
// ---------------------------------------------------------------------------------------

#[test]
fn help_lists_every_command() {
    let env = Env::new();
    let out = env.run(&["--help"]).ok();
    let always = [
        "init",
        "append",
        "inspect",
        "cat",
        "checkpoint",
        "prove",
        "verify-proof",
        "verify",
        "recover",
        "replay",
        "keys",
        "schema",
        "gen-log",
    ];
    // The validator's commands are in a build with the `node` feature (the default).
    let node = ["node", "demo", "miner", "chain"];
    for command in always.iter().chain(&node) {
        let listed = out
            .stdout
            .lines()
            .any(|line| line.trim_start().starts_with(&format!("{command} ")));
        let expected = cfg!(feature = "node") || always.contains(command);
        assert_eq!(
            listed, expected,
            "--help lists `{command}`: {listed}, expected {expected}:\n{}",
            out.stdout
        );
    }

    let out = env.run(&["help", "append"]).ok();
    assert!(out.stdout.contains("--jsonl <FILE>"), "{}", out.stdout);
    assert!(out.stdout.contains("JSON Lines"), "{}", out.stdout);
    assert!(out.stdout.contains("stdin"), "{}", out.stdout);

    // Subcommand groups have help too.
    let out = env.run(&["prove", "--help"]).ok();
    assert!(out.stdout.contains("inclusion") && out.stdout.contains("consistency"));
    let out = env.run(&["keys", "--help"]).ok();
    assert!(out.stdout.contains("dev") && out.stdout.contains("show"));

    // No command is a usage error (exit 1, not the tampered code 2), not a crash.
    let out = env.run(&[]);
    assert_eq!(out.code, 1, "{out:#?}");
    assert!(out.stderr.contains("Usage"), "{out:#?}");
}

// ---------------------------------------------------------------------------------------
// Happy path
// ---------------------------------------------------------------------------------------

#[test]
fn init_append_inspect_cat_checkpoint_verify() {
    let env = Env::new();
    let address = env.init_log();
    let events = every_kind(3);
    assert_eq!(events.len(), EventKind::ALL.len() - 1);

    // Two commits: the first half, then everything (the first half is already there).
    env.write("first.jsonl", jsonl(&events[..6]));
    env.write("all.jsonl", jsonl(&events));
    let out = env.append("first.jsonl").ok();
    assert_eq!(
        out.stdout.trim(),
        "6 events: 6 new at seqs 1..=6; log size 7"
    );
    let out = env.append("all.jsonl").ok();
    assert_eq!(
        out.stdout.trim(),
        "11 events: 5 new at seqs 7..=11, 6 already in the log; log size 12"
    );
    let size = events.len() as u64 + 1;

    // inspect --json: size, root, counts by kind, checkpoint status.
    let summary = env.inspect();
    assert_eq!(summary["size"], size);
    assert_eq!(summary["signer"], address.as_str());
    assert_eq!(
        summary["last_checkpoint_status"],
        "signature valid, matches the stored root"
    );
    for kind in EventKind::ALL {
        assert_eq!(summary["counts_by_kind"][kind.name()], 1, "{kind}");
    }
    let root = summary["root"].as_str().unwrap().to_string();

    // cat --json: one line per event, seq 0..n, the payloads appended.
    let lines = env.cat_json(&[]);
    assert_eq!(lines.len() as u64, size);
    for (seq, line) in lines.iter().enumerate() {
        assert_eq!(line.seq, seq as u64);
        assert_eq!(line.id, event_id(&encode(&line.event).unwrap()));
    }
    assert_eq!(lines[0].event.kind(), EventKind::LogOpened);
    let Payload::LogOpened(opened) = &lines[0].event.payload else {
        unreachable!()
    };
    assert_eq!(opened.netuid, 7);
    assert_eq!(opened.profile, PROFILE);
    assert_eq!(opened.validator_hotkey.to_ss58(), address);
    let stored: Vec<Event> = lines[1..].iter().map(|line| line.event.clone()).collect();
    assert_eq!(stored, events);

    // The root is the Merkle root of the events cat printed, recomputed here.
    let leaves: Vec<Hash> = lines
        .iter()
        .map(|line| leaf_hash(&encode(&line.event).unwrap()))
        .collect();
    let tree = MerkleTree::from_leaves(leaves);
    assert_eq!(tree.root().to_hex(), root);
    assert_eq!(
        summary["origin"],
        summary["last_checkpoint"]
            .as_str()
            .unwrap()
            .lines()
            .next()
            .unwrap()
    );

    // cat limits.
    let range: Vec<u64> = env
        .cat_json(&["--from", "3", "--to", "6"])
        .iter()
        .map(|line| line.seq)
        .collect();
    assert_eq!(range, [3, 4, 5]);
    let tail: Vec<u64> = env
        .cat_json(&["--from", "10"])
        .iter()
        .map(|l| l.seq)
        .collect();
    assert_eq!(tail, [10, 11]);
    let head: Vec<u64> = env.cat_json(&["--to", "2"]).iter().map(|l| l.seq).collect();
    assert_eq!(head, [0, 1]);
    assert!(env.cat_json(&["--from", "12"]).is_empty());
    assert!(env.cat_json(&["--from", "5", "--to", "5"]).is_empty());
    assert!(env.cat_json(&["--from", "1000", "--to", "2000"]).is_empty());
    let to_past_end: Vec<u64> = env
        .cat_json(&["--from", "11", "--to", "99"])
        .iter()
        .map(|l| l.seq)
        .collect();
    assert_eq!(to_past_end, [11]);
    // The text form: one line per event with seq, timestamp and kind.
    let text = env.run(&["cat", LOG, "--from", "1"]).ok().stdout;
    let text_lines: Vec<&str> = text.lines().collect();
    assert_eq!(text_lines.len(), events.len());
    for (line, event) in text_lines.iter().zip(&events) {
        let fields: Vec<&str> = line.split('\t').collect();
        assert_eq!(fields[2], event.kind().name(), "{line}");
        assert_eq!(fields[1], event.timestamp_ms.to_string(), "{line}");
    }

    // checkpoint: the newest, and by size; each parses and verifies with `keys show`.
    let newest = env.checkpoint(None);
    let parsed = SignedCheckpoint::parse(&newest).expect("checkpoint text parses");
    parsed.verify_ss58(&address).expect("checkpoint verifies");
    assert_eq!(parsed.checkpoint.size, size);
    assert_eq!(parsed.checkpoint.root.to_hex(), root);
    assert_eq!(summary["last_checkpoint"], newest.as_str());
    for (checkpoint_size, expected_root) in [(1, tree.root_at(1)), (7, tree.root_at(7))] {
        let text = env.checkpoint(Some(checkpoint_size));
        let parsed = SignedCheckpoint::parse(&text).unwrap();
        parsed.verify_ss58(&address).unwrap();
        assert_eq!(parsed.checkpoint.size, checkpoint_size);
        assert_eq!(parsed.checkpoint.root, expected_root);
    }
    // No commit ended at size 5; the error names the sizes around it.
    env.run(&["checkpoint", LOG, "--size", "5"])
        .fails(1)
        .stderr_has("no signed checkpoint for size 5")
        .stderr_has("nearest sizes: 1 and 7");

    // verify, text and JSON.
    let out = env.run(&["verify", LOG]).ok();
    assert!(out.stdout.contains("ok: "), "{out:#?}");
    assert!(out.stdout.contains(&root), "{out:#?}");
    let out = env.run(&["verify", LOG, "--json"]).ok();
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["events_checked"], size);
    assert_eq!(report["checkpoints_checked"], 3);
    assert_eq!(report["problem"], serde_json::Value::Null);
    assert_eq!(report["root"], root.as_str());
}

#[test]
fn proofs_verify_offline_and_tampering_is_caught() {
    let env = Env::new();
    let address = env.init_log();
    let events = every_kind(4);
    env.write("first.jsonl", jsonl(&events[..4]));
    env.write("all.jsonl", jsonl(&events));
    env.append("first.jsonl").ok();
    env.append("all.jsonl").ok();
    let size = events.len() as u64 + 1; // checkpoints at 1, 5 and 12
    let other = Env::new().dev_key("other", "default");
    let verify_proof =
        |file: &str, signer: &str| env.run(&["verify-proof", file, "--signer", signer]);

    // Inclusion of every seq against the newest checkpoint.
    for seq in 0..size {
        let seq_text = seq.to_string();
        let file = format!("inclusion-{seq}.json");
        let out = env
            .run(&["prove", "inclusion", LOG, &seq_text, "--out", &file])
            .ok();
        assert!(
            out.stdout.is_empty(),
            "--out writes the file, not stdout: {out:#?}"
        );
        let out = verify_proof(&file, &address).ok();
        assert!(
            out.stdout.starts_with(&format!("ok: event {seq} (")),
            "{out:#?}"
        );
        assert!(
            out.stdout.contains(&format!("log at size {size},")),
            "{out:#?}"
        );
    }
    // ... and against an older checkpoint; stdout when there is no --out.
    let out = env
        .run(&["prove", "inclusion", LOG, "2", "--size", "5"])
        .ok();
    let bundle: ProofBundle = serde_json::from_str(&out.stdout).expect("proof JSON on stdout");
    let ProofBundle::Inclusion { proof, .. } = &bundle else {
        panic!("expected an inclusion proof: {bundle:?}");
    };
    assert_eq!((proof.leaf_index, proof.tree_size), (2, 5));
    env.write("inclusion-2-of-5.json", &out.stdout);
    verify_proof("inclusion-2-of-5.json", &address).ok();
    // A seq beyond the checkpoint, or a size without a checkpoint, is refused.
    env.run(&["prove", "inclusion", LOG, "7", "--size", "5"])
        .fails(1);
    env.run(&["prove", "inclusion", LOG, "12"]).fails(1);
    env.run(&["prove", "inclusion", LOG, "2", "--size", "6"])
        .fails(1)
        .stderr_has("6");

    // Consistency between checkpoint sizes.
    for (old, new) in [(1, 5), (5, size), (1, size), (size, size)] {
        let file = format!("consistency-{old}-{new}.json");
        env.run(&[
            "prove",
            "consistency",
            LOG,
            &old.to_string(),
            &new.to_string(),
            "--out",
            &file,
        ])
        .ok();
        let out = verify_proof(&file, &address).ok();
        assert!(
            out.stdout.contains(&format!(
                "log at size {old} is a prefix of the log at size {new},"
            )),
            "{out:#?}"
        );
    }
    env.run(&["prove", "consistency", LOG, "5", "1"]).fails(1);
    env.run(&["prove", "consistency", LOG, "3", "5"]).fails(1);

    // Another key's address: exit 2, naming both.
    let out = verify_proof("inclusion-3.json", &other).fails(2);
    out.stderr_has(&other).stderr_has(&address);
    verify_proof("consistency-5-12.json", &other).fails(2);
    // A --signer that is not an address is bad input.
    verify_proof("inclusion-3.json", "5notanaddress")
        .fails(1)
        .stderr_has("--signer");

    // One path hash changed (one hex digit): exit 2.
    for file in ["inclusion-3.json", "consistency-5-12.json"] {
        let mut json: serde_json::Value = serde_json::from_str(&env.read(file)).unwrap();
        let hash = json["proof"]["path"][0]
            .as_str()
            .expect("a path hash")
            .to_string();
        let mut changed = hash.into_bytes();
        changed[0] = if changed[0] == b'0' { b'1' } else { b'0' };
        json["proof"]["path"][0] = String::from_utf8(changed).unwrap().into();
        let tampered = format!("tampered-{file}");
        env.write(&tampered, serde_json::to_string_pretty(&json).unwrap());
        verify_proof(&tampered, &address)
            .fails(2)
            .stderr_has("proof does not verify");
    }
    // Other edits: the event JSON no longer matching its bytes, a different leaf index,
    // a different tree size.
    let original: serde_json::Value = serde_json::from_str(&env.read("inclusion-3.json")).unwrap();
    let mut edits = Vec::new();
    let mut json = original.clone();
    json["event"]["timestamp_ms"] = (json["event"]["timestamp_ms"].as_u64().unwrap() + 1).into();
    edits.push(json);
    let mut json = original.clone();
    json["proof"]["leaf_index"] = 4.into();
    edits.push(json);
    let mut json = original.clone();
    json["proof"]["tree_size"] = 5.into();
    edits.push(json);
    for (index, json) in edits.into_iter().enumerate() {
        let file = format!("edit-{index}.json");
        env.write(&file, serde_json::to_string(&json).unwrap());
        verify_proof(&file, &address).fails(2);
    }
    // Not a proof file at all: bad input, exit 1.
    env.write("garbage.json", "{\"type\":\"inclusion\"}");
    verify_proof("garbage.json", &address)
        .fails(1)
        .stderr_has("not a proof file");
    verify_proof("missing.json", &address)
        .fails(1)
        .stderr_has("missing.json");

    // --checkpoint: a checkpoint the auditor holds from elsewhere.
    std::fs::write(env.path("newest.txt"), env.checkpoint(None)).unwrap();
    std::fs::write(env.path("old.txt"), env.checkpoint(Some(5))).unwrap();
    env.run(&[
        "verify-proof",
        "inclusion-3.json",
        "--signer",
        &address,
        "--checkpoint",
        "newest.txt",
    ])
    .ok();
    env.run(&[
        "verify-proof",
        "consistency-5-12.json",
        "--signer",
        &address,
        "--checkpoint",
        "old.txt",
    ])
    .ok();
    env.run(&[
        "verify-proof",
        "consistency-5-12.json",
        "--signer",
        &address,
        "--checkpoint",
        "newest.txt",
    ])
    .ok();
    // ... one for another size does not match the inclusion proof's.
    env.run(&[
        "verify-proof",
        "inclusion-3.json",
        "--signer",
        &address,
        "--checkpoint",
        "old.txt",
    ])
    .fails(2);

    // A checkpoint of another log signed by the same key: a different origin.
    env.run(&[
        "init",
        "second.wlog",
        "--netuid",
        "7",
        "--profile",
        PROFILE,
        "--wallet.path",
        env.wallets().to_str().unwrap(),
        "--wallet.name",
        "dev",
    ])
    .ok();
    env.write("second.jsonl", jsonl(&every_kind(99)));
    env.run(&[
        "append",
        "second.wlog",
        "--jsonl",
        "second.jsonl",
        "--wallet.path",
        env.wallets().to_str().unwrap(),
        "--wallet.name",
        "dev",
    ])
    .ok();
    let second = env.run(&["checkpoint", "second.wlog"]).ok().stdout;
    assert_eq!(
        SignedCheckpoint::parse(&second).unwrap().checkpoint.size,
        size
    );
    env.write("second.txt", &second);
    env.run(&[
        "verify-proof",
        "inclusion-3.json",
        "--signer",
        &address,
        "--checkpoint",
        "second.txt",
    ])
    .fails(2)
    .stderr_has("origin");

    // A validly signed checkpoint of this log with the same size but another root: the log
    // was rewritten.
    let key = weightlog::keys::load_hotkey(
        &weightlog::keys::WalletLocation::new(env.wallets(), "dev", "default"),
        &weightlog::keys::PasswordSource::Env,
    )
    .unwrap();
    let newest = SignedCheckpoint::parse(&env.checkpoint(None)).unwrap();
    let forked = Checkpoint::new(
        newest.checkpoint.origin.clone(),
        newest.checkpoint.size,
        Hash([0xab; 32]),
    )
    .unwrap()
    .sign(key.public(), |message| key.sign(message));
    forked.verify_ss58(&address).unwrap();
    env.write("forked.txt", forked.to_text());
    env.run(&[
        "verify-proof",
        "inclusion-3.json",
        "--signer",
        &address,
        "--checkpoint",
        "forked.txt",
    ])
    .fails(2)
    .stderr_has("root");
    env.run(&[
        "verify-proof",
        "consistency-5-12.json",
        "--signer",
        &address,
        "--checkpoint",
        "forked.txt",
    ])
    .fails(2)
    .stderr_has("root");
    // The held checkpoint with its root edited (signature no longer valid).
    let held = env.read("newest.txt");
    let root_hex = newest.checkpoint.root.to_hex();
    let flipped = format!(
        "{}{}",
        if root_hex.starts_with('0') { '1' } else { '0' },
        &root_hex[1..]
    );
    env.write("edited.txt", held.replace(&root_hex, &flipped));
    env.run(&[
        "verify-proof",
        "inclusion-3.json",
        "--signer",
        &address,
        "--checkpoint",
        "edited.txt",
    ])
    .fails(2);
    // A held checkpoint that does not parse is bad input.
    env.write("broken.txt", "not a checkpoint");
    env.run(&[
        "verify-proof",
        "inclusion-3.json",
        "--signer",
        &address,
        "--checkpoint",
        "broken.txt",
    ])
    .fails(1)
    .stderr_has("broken.txt");
}

#[test]
fn append_from_stdin() {
    let env = Env::new();
    env.init_log();
    let events = every_kind(5);
    let wallet = env.wallet_args("dev", "default");
    let mut args = vec!["append", LOG, "--jsonl", "-"];
    args.extend(wallet.iter().map(String::as_str));
    let out = env
        .run_with(&args, &[], Some(jsonl(&events).as_bytes()))
        .ok();
    assert!(out.stdout.contains("11 new"), "{out:#?}");
    let stored: Vec<Event> = env
        .cat_json(&["--from", "1"])
        .into_iter()
        .map(|l| l.event)
        .collect();
    assert_eq!(stored, events);
}

// ---------------------------------------------------------------------------------------
// Idempotence
// ---------------------------------------------------------------------------------------

#[test]
fn appending_the_same_file_twice_changes_nothing() {
    let env = Env::new();
    env.init_log();
    let events = every_kind(6);
    // Blank lines are skipped.
    env.write("events.jsonl", jsonl(&events).replace('\n', "\n\n"));
    let out = env.append("events.jsonl").ok();
    assert_eq!(
        out.stdout.trim(),
        "11 events: 11 new at seqs 1..=11; log size 12"
    );
    let before = env.state();
    let out = env.append("events.jsonl").ok();
    assert_eq!(
        out.stdout.trim(),
        "11 events: 0 new, 11 already in the log; log size 12"
    );
    assert_eq!(env.state(), before);
    // The same event twice in one batch is stored once.
    env.write(
        "twice.jsonl",
        jsonl(&[events[0].clone(), events[0].clone()]),
    );
    let out = env.append("twice.jsonl").ok();
    assert!(
        out.stdout.contains("0 new, 2 already in the log"),
        "{out:#?}"
    );
    assert_eq!(env.state(), before);
    let fresh = samples::sample(EventKind::ChallengeIssued, 1000);
    env.write("dup.jsonl", jsonl(&[fresh.clone(), fresh]));
    let out = env.append("dup.jsonl").ok();
    assert_eq!(
        out.stdout.trim(),
        "2 events: 1 new at seq 12, 1 repeated in this batch; log size 13"
    );
    env.run(&["verify", LOG]).ok();
}

/// `cat --json` output appends back as it is: to the same log as a no-op (its genesis
/// included), and from seq 1 into a new log, where the events land at the same seqs with
/// the same ids. A line whose `id` or `seq` does not hold is refused.
#[test]
fn cat_json_output_appends_back() {
    let env = Env::new();
    env.init_log();
    env.write("events.jsonl", jsonl(&every_kind(21)));
    env.append("events.jsonl").ok();
    let before = env.state();
    let cat = |log: &str, from: &str| env.run(&["cat", log, "--json", "--from", from]).ok().stdout;
    env.write("all.jsonl", cat(LOG, "0"));
    let out = env.append("all.jsonl").ok();
    assert_eq!(
        out.stdout.trim(),
        "12 events: 0 new, 12 already in the log; log size 12"
    );
    assert_eq!(env.state(), before);

    let copy = "copy.wlog";
    let wallet = ("dev", "default");
    env.run_wallet(
        &["init", copy, "--netuid", "7", "--profile", PROFILE],
        wallet,
    )
    .ok();
    env.write("tail.jsonl", cat(LOG, "1"));
    let out = env
        .run_wallet(&["append", copy, "--jsonl", "tail.jsonl"], wallet)
        .ok();
    assert!(out.stdout.contains("11 new at seqs 1..=11"), "{out:#?}");
    assert_eq!(cat(copy, "1"), cat(LOG, "1"));

    // What jq does to an integer above 2^53: the line no longer matches its id.
    let mut challenge = samples::sample(EventKind::ChallengeIssued, 22);
    if let Payload::ChallengeIssued(ChallengeIssued { seed, .. }) = &mut challenge.payload {
        *seed = (1 << 53) + 1;
    }
    let line = |seq: u64, event: &Event| {
        serde_json::to_string(&SequencedEvent {
            seq,
            id: event_id(&encode(event).unwrap()),
            event: event.clone(),
        })
        .unwrap()
    };
    let exact = line(12, &challenge);
    let rounded = exact.replace("9007199254740993", "9007199254740992");
    assert_ne!(rounded, exact);
    refused(
        &env,
        "rounded.jsonl",
        &format!("{exact}\n{rounded}\n"),
        &["line 2", "its id is", "jq", "nothing was appended"],
    );
    // A seq that is not where the event lands: new, or already in the log elsewhere.
    refused(
        &env,
        "new-seq.jsonl",
        &format!("{}\n", line(13, &challenge)),
        &["line 1", "gives seq 13", "appended at seq 12"],
    );
    let held = env.cat_json(&["--from", "3", "--to", "4"]).remove(0).event;
    refused(
        &env,
        "held-seq.jsonl",
        &format!("{}\n", line(4, &held)),
        &["line 1", "gives seq 4", "holds it at seq 3"],
    );
    env.write("exact.jsonl", format!("{exact}\n"));
    let out = env.append("exact.jsonl").ok();
    assert!(out.stdout.contains("1 new at seq 12"), "{out:#?}");
}

// ---------------------------------------------------------------------------------------
// Bad input leaves the log unchanged
// ---------------------------------------------------------------------------------------

/// Appends `contents`; the command must fail with exit 1, name `needles` on stderr and
/// leave the log as it was.
#[track_caller]
fn refused(env: &Env, name: &str, contents: &str, needles: &[&str]) {
    let before = env.state();
    env.write(name, contents);
    let out = env.append(name).fails(1);
    for needle in needles {
        out.stderr_has(needle);
    }
    assert_eq!(env.state(), before, "{name} changed the log");
}

fn value(event: &Event) -> serde_json::Value {
    serde_json::to_value(event).unwrap()
}

#[test]
fn bad_jsonl_is_refused_and_leaves_the_log_unchanged() {
    let env = Env::new();
    env.init_log();
    env.write("base.jsonl", jsonl(&every_kind(7)[..3]));
    env.append("base.jsonl").ok();
    let good = |seed: u64| {
        serde_json::to_string(&samples::sample(EventKind::ChallengeIssued, seed)).unwrap()
    };

    // Malformed JSON on line 3 of 5.
    let lines = [
        good(1),
        good(2),
        "{\"timestamp_ms\": 1, \"payload\": {".to_string(),
        good(4),
        good(5),
    ];
    refused(
        &env,
        "malformed.jsonl",
        &(lines.join("\n") + "\n"),
        &["line 3"],
    );
    // The line number counts blank lines too.
    let lines = [good(1), String::new(), good(2), "not json".to_string()];
    refused(&env, "blank.jsonl", &lines.join("\n"), &["line 4"]);

    // An unknown kind.
    let mut unknown_kind = value(&samples::sample(EventKind::ChallengeIssued, 8));
    unknown_kind["payload"]["kind"] = "ChallengeCancelled".into();
    refused(
        &env,
        "kind.jsonl",
        &format!("{}\n{unknown_kind}\n", good(9)),
        &["line 2", "ChallengeCancelled"],
    );

    // Unknown fields, in the envelope and in the payload.
    let mut extra = value(&samples::sample(EventKind::ChallengeIssued, 10));
    extra["priority"] = 3.into();
    refused(
        &env,
        "field.jsonl",
        &format!("{extra}\n"),
        &["line 1", "priority"],
    );
    let mut extra = value(&samples::sample(EventKind::EvaluationRecorded, 11));
    extra["payload"]["grade"] = "A".into();
    refused(
        &env,
        "payload-field.jsonl",
        &format!("{}\n{extra}\n", good(12)),
        &["line 2", "grade"],
    );
    // A missing field and a wrong type.
    let mut missing = value(&samples::sample(EventKind::ChallengeIssued, 13));
    missing["payload"].as_object_mut().unwrap().remove("prompt");
    refused(
        &env,
        "missing-field.jsonl",
        &format!("{missing}\n"),
        &["line 1", "prompt"],
    );
    let mut wrong = value(&samples::sample(EventKind::ChallengeIssued, 14));
    wrong["payload"]["seed"] = "seven".into();
    refused(&env, "wrong-type.jsonl", &format!("{wrong}\n"), &["line 1"]);
    // A JSON value that is not an event.
    refused(&env, "array.jsonl", "[1,2,3]\n", &["line 1"]);

    // Semantic errors: a parameters_hash that is not blake3(parameters_json), and
    // extra_json that is not JSON.
    let mut changed = samples::sample(EventKind::ProfileChanged, 15);
    if let Payload::ProfileChanged(ProfileChanged {
        parameters_json, ..
    }) = &mut changed.payload
    {
        parameters_json.push(' ');
    }
    refused(
        &env,
        "hash.jsonl",
        &jsonl(&[samples::sample(EventKind::ChallengeIssued, 16), changed]),
        &["line 2", "parameters_hash", "nothing was appended"],
    );
    let mut challenge = samples::sample(EventKind::ChallengeIssued, 17);
    if let Payload::ChallengeIssued(ChallengeIssued { extra_json, .. }) = &mut challenge.payload {
        *extra_json = "{not json".into();
    }
    refused(
        &env,
        "extra.jsonl",
        &jsonl(&[challenge]),
        &["line 1", "extra_json", "nothing was appended"],
    );

    // An event over EVENT_BYTES_MAX (a 1,100,000-byte prompt), after a good and a blank line.
    let prompt_bytes = 1_100_000;
    assert!(prompt_bytes > EVENT_BYTES_MAX);
    let mut huge = samples::sample(EventKind::ChallengeIssued, 18);
    if let Payload::ChallengeIssued(ChallengeIssued { prompt, .. }) = &mut huge.payload {
        *prompt = "p".repeat(prompt_bytes);
    }
    let contents = format!("{}\n\n{}", good(19), jsonl(&[huge]));
    refused(
        &env,
        "huge.jsonl",
        &contents,
        &[
            "line 3",
            &EVENT_BYTES_MAX.to_string(),
            "nothing was appended",
        ],
    );

    // An empty file, a file of blank lines, a missing file.
    refused(&env, "empty.jsonl", "", &["empty.jsonl", "no events"]);
    refused(&env, "blanks.jsonl", "\n  \n\t\n", &["no events"]);
    let before = env.state();
    env.append("missing.jsonl")
        .fails(1)
        .stderr_has("missing.jsonl");
    assert_eq!(env.state(), before);
    // Not UTF-8.
    let before = env.state();
    env.write("binary.jsonl", [0xff, 0xfe, 0x00, b'\n']);
    env.append("binary.jsonl").fails(1).stderr_has("line 1");
    assert_eq!(env.state(), before);
    // A byte order mark before the first line is not part of the JSON.
    env.write("bom.jsonl", format!("\u{feff}{}\n", good(22)));
    env.append("bom.jsonl").ok();
    let before = env.state();
    // A line longer than any event's JSON is refused as it is read.
    let mut long = format!("{}\n", good(21)).into_bytes();
    long.resize(long.len() + 8 * EVENT_BYTES_MAX + 1, b' ');
    env.write("long.jsonl", long);
    env.append("long.jsonl")
        .fails(1)
        .stderr_has("line 2: longer than");
    assert_eq!(env.state(), before);

    // After all that, the log still checks out and takes good events.
    env.run(&["verify", LOG]).ok();
    env.write("good.jsonl", format!("{}\n", good(20)));
    env.append("good.jsonl").ok();
}

#[test]
fn missing_or_foreign_files_are_clear_errors() {
    let env = Env::new();
    env.dev_key("dev", "default");
    // Not a log: random bytes (checked read-only: the file is left as it was).
    let mut bytes = vec![0u8; 64 * 1024];
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for byte in &mut bytes {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        *byte = state as u8;
    }
    env.write("random.bin", &bytes);
    for args in [
        vec!["verify", "random.bin"],
        vec!["inspect", "random.bin"],
        vec!["cat", "random.bin"],
        vec!["checkpoint", "random.bin"],
        vec!["prove", "inclusion", "random.bin", "0"],
    ] {
        let out = env.run(&args);
        let code = out.code;
        assert_ne!(code, 0, "{out:#?}");
        out.fails(code)
            .stderr_has("random.bin")
            .stderr_has("not a weightlog log");
    }
    env.write("one.jsonl", jsonl(&every_kind(1)[..1]));
    env.run_wallet(
        &["append", "random.bin", "--jsonl", "one.jsonl"],
        ("dev", "default"),
    )
    .fails(1)
    .stderr_has("not a weightlog log");
    assert_eq!(std::fs::read(env.path("random.bin")).unwrap(), bytes);
    env.write("empty.bin", "");
    env.run(&["verify", "empty.bin"])
        .fails(1)
        .stderr_has("not a weightlog log");
    std::fs::create_dir(env.path("a-directory")).unwrap();
    let out = env.run(&["verify", "a-directory"]);
    assert_ne!(out.code, 0);

    // A missing log: exit 1 and a hint.
    for args in [
        vec!["verify", "nope.wlog"],
        vec!["inspect", "nope.wlog"],
        vec!["cat", "nope.wlog"],
        vec!["checkpoint", "nope.wlog"],
    ] {
        env.run(&args)
            .fails(1)
            .stderr_has("nope.wlog")
            .stderr_has("weightlog init");
    }
    env.run_wallet(
        &["append", "nope.wlog", "--jsonl", "one.jsonl"],
        ("dev", "default"),
    )
    .fails(1)
    .stderr_has("weightlog init");
    assert!(
        !env.path("nope.wlog").exists(),
        "append must not create a log"
    );

    // init refuses to overwrite anything.
    env.write("taken.wlog", "precious");
    env.run_wallet(
        &["init", "taken.wlog", "--netuid", "1", "--profile", "x"],
        ("dev", "default"),
    )
    .fails(1)
    .stderr_has("taken.wlog");
    assert_eq!(env.read("taken.wlog"), "precious");

    // A missing wallet: the message says how to make one.
    env.run_wallet(
        &["init", "new.wlog", "--netuid", "1", "--profile", "x"],
        ("nobody", "default"),
    )
    .fails(1)
    .stderr_has("keys dev");
    assert!(!env.path("new.wlog").exists());
    // keys dev never overwrites.
    env.run_wallet(&["keys", "dev"], ("dev", "default"))
        .fails(1)
        .stderr_has("refusing to overwrite");
}

// ---------------------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------------------

#[test]
fn encrypted_wallet_password() {
    let env = Env::new();
    let hotkeys = env.wallets().join("enc/hotkeys");
    std::fs::create_dir_all(&hotkeys).unwrap();
    std::fs::copy(
        Path::new(FIXTURES).join("wallet/testw/coldkey"),
        hotkeys.join("default"),
    )
    .unwrap();
    let wallet = ("enc", "default");

    // No password and stdin not a terminal: a clear error, not a hang (no Argon2 run).
    for envs in [&[][..], &[(PASSWORD_ENV, "")][..]] {
        env.run_wallet_with(
            &["init", LOG, "--netuid", "7", "--profile", PROFILE],
            wallet,
            envs,
        )
        .fails(1)
        .stderr_has("encrypted")
        .stderr_has(PASSWORD_ENV);
        assert!(!env.path(LOG).exists());
    }

    // The right password (Argon2 run 1).
    let out = env
        .run_wallet_with(
            &["init", LOG, "--netuid", "7", "--profile", PROFILE],
            wallet,
            &[(PASSWORD_ENV, COLDKEY_PASSWORD)],
        )
        .ok();
    assert!(
        out.stdout.contains(&format!("signer  {COLDKEY_SS58}")),
        "{out:#?}"
    );
    let before = env.state();
    assert_eq!(env.inspect()["signer"], COLDKEY_SS58);
    SignedCheckpoint::parse(&env.checkpoint(None))
        .unwrap()
        .verify_ss58(COLDKEY_SS58)
        .unwrap();

    // A wrong password (Argon2 run 2): exit 1, the password named, the log unchanged.
    env.write("events.jsonl", jsonl(&every_kind(8)));
    let append = ["append", LOG, "--jsonl", "events.jsonl"];
    env.run_wallet_with(&append, wallet, &[(PASSWORD_ENV, "wrong")])
        .fails(1)
        .stderr_has("wrong password");
    assert_eq!(env.state(), before);

    // No password: a clear error before any Argon2 run.
    env.run_wallet(&append, wallet)
        .fails(1)
        .stderr_has(PASSWORD_ENV)
        .stderr_has("hotkeys/default");
    env.run_wallet(&["keys", "show"], wallet)
        .fails(1)
        .stderr_has(PASSWORD_ENV);
    assert_eq!(env.state(), before);
    env.run(&["verify", LOG]).ok();
}

#[test]
fn a_different_key_cannot_append() {
    let env = Env::new();
    let owner = env.init_log();
    let intruder = env.dev_key("dev", "intruder");
    assert_ne!(owner, intruder);
    let before = env.state();
    env.write("events.jsonl", jsonl(&every_kind(9)));
    env.run_wallet(
        &["append", LOG, "--jsonl", "events.jsonl"],
        ("dev", "intruder"),
    )
    .fails(1)
    .stderr_has(&owner)
    .stderr_has(&intruder);
    assert_eq!(env.state(), before);
    // The owner still can.
    env.append("events.jsonl").ok();
    env.run(&["verify", LOG]).ok();
}

#[test]
fn bad_wallet_names_are_refused() {
    let env = Env::new();
    for (name, hotkey) in [("..", "default"), ("dev", "a/b"), ("", "default")] {
        env.run_wallet(&["keys", "dev"], (name, hotkey))
            .fails(1)
            .stderr_has("invalid wallet or hotkey name");
    }
    assert!(!env.path("hotkeys").exists());
    assert!(!env.dir.path().join("a").exists());
}

// ---------------------------------------------------------------------------------------
// Schema
// ---------------------------------------------------------------------------------------

#[test]
fn schema_writes_the_json_schemas() {
    let env = Env::new();
    let out = env.run(&["schema", "--out", "out/json"]).ok();
    let expected: BTreeMap<String, String> = weightlog_schema::json_schema::json_schemas()
        .into_iter()
        .collect();
    let mut written = BTreeMap::new();
    for entry in std::fs::read_dir(env.path("out/json")).unwrap() {
        let entry = entry.unwrap();
        written.insert(
            entry.file_name().into_string().unwrap(),
            std::fs::read_to_string(entry.path()).unwrap(),
        );
    }
    assert_eq!(written, expected);
    assert_eq!(out.stdout.lines().count(), expected.len());
    for name in expected.keys() {
        assert!(out.stdout.contains(name.as_str()), "{out:#?}");
    }
    // Every written schema is JSON.
    for text in written.values() {
        serde_json::from_str::<serde_json::Value>(text).unwrap();
    }
}

// ---------------------------------------------------------------------------------------
// Regressions: bugs found while writing these tests, fixed since.
// ---------------------------------------------------------------------------------------

/// `append` accepts a second `LogOpened`, signs a checkpoint over it, and `verify` then
/// rejects the log forever ("a second LogOpened; only seq 0 may open a log").
#[test]
fn append_refuses_a_second_log_opened() {
    let env = Env::new();
    env.init_log();
    let before = env.state();
    let opened = env.cat_json(&[]).remove(0).event;
    let mut second = opened.clone();
    second.timestamp_ms += 1;
    env.write("opened.jsonl", jsonl(&[second]));
    env.append("opened.jsonl").fails(1).stderr_has("LogOpened");
    assert_eq!(env.state(), before);
    env.run(&["verify", LOG]).ok();
}

/// Asking for a proof at a size without a checkpoint says the log "was changed outside
/// weightlog" (LogError::OpenCheck, src/log/proof.rs) although nothing is wrong with it.
#[test]
fn a_missing_checkpoint_size_is_not_called_tampering() {
    let env = Env::new();
    env.init_log();
    for args in [
        vec!["prove", "inclusion", LOG, "0", "--size", "6"],
        vec!["prove", "consistency", LOG, "0", "1"],
    ] {
        let out = env.run(&args).fails(1);
        out.stderr_has("no signed checkpoint for size");
        assert!(
            !out.stderr.contains("changed outside weightlog"),
            "an honest log is called tampered: {out:#?}"
        );
    }
}

/// A log whose redb pages are damaged makes `verify`, `inspect` and `cat` panic inside redb
/// (`btree.rs: internal error: entered unreachable code`, exit 101) instead of reporting a
/// corrupt file.
#[test]
fn a_damaged_log_is_an_error_not_a_panic() {
    let env = Env::new();
    env.init_log();
    let mut bytes = std::fs::read(env.path(LOG)).unwrap();
    bytes[4096..4096 + 2000].fill(0);
    env.write("damaged.wlog", &bytes);
    for command in ["verify", "inspect", "cat"] {
        let out = env.run_with(&[command, "damaged.wlog"], &[], None);
        assert!(
            out.code == 1 || out.code == 2,
            "`{command}` on a damaged log: {out:#?}"
        );
    }
}

/// `init` refuses parameters its profile's projection cannot use, and `append` refuses an
/// event the projection refuses (what `replay verify` would call invalid), naming its line
/// and leaving the log as it was. The log then takes the valid rest and audits as a match.
#[test]
fn append_refuses_what_the_profile_refuses() {
    let env = Env::new();
    env.dev_key("dev", "default");
    let wallet = ("dev", "default");
    let init = |parameters: Option<&str>| {
        let mut args = vec!["init", LOG, "--netuid", "7", "--profile", "affine"];
        if let Some(parameters) = parameters {
            args.extend(["--parameters", parameters]);
        }
        env.run_wallet(&args, wallet)
    };
    init(None)
        .fails(1)
        .stderr_has("profile `affine` needs --parameters FILE")
        .stderr_has("missing field `environments`")
        .stderr_has("no log was created");
    env.write("nonsense.json", r#"{"mode":"nonsense"}"#);
    init(Some("nonsense.json"))
        .fails(1)
        .stderr_has("--parameters nonsense.json: ")
        .stderr_has("no mode `nonsense`");
    assert!(!env.path(LOG).exists());

    // A generated affine log's parameters and events, appended to a log the dev key signs.
    let generated =
        weightlog::genlog::events(&weightlog::genlog::GenOptions::new("affine", 600, 1))
            .expect("generated events");
    let Payload::LogOpened(opened) = &generated[0].payload else {
        panic!("a log starts with LogOpened")
    };
    env.write("affine.json", &opened.parameters_json);
    init(Some("affine.json")).ok();
    env.write("first.jsonl", jsonl(&generated[1..400]));
    env.append("first.jsonl").ok();
    let before = env.state();

    // An evaluation of a uid the metagraph does not hold, on line 2 of the batch.
    let mut stranger = generated[400..]
        .iter()
        .find(|event| matches!(event.payload, Payload::EvaluationRecorded(_)))
        .expect("an evaluation")
        .clone();
    if let Payload::EvaluationRecorded(evaluation) = &mut stranger.payload {
        evaluation.uid = 999;
    }
    let mut batch = vec![generated[400].clone(), stranger];
    batch.extend_from_slice(&generated[401..]);
    env.write("stranger.jsonl", jsonl(&batch));
    env.append("stranger.jsonl")
        .fails(1)
        .stderr_has("line 2: the log's profile refuses this event")
        .stderr_has("uid 999")
        .stderr_has("nothing was appended");
    assert_eq!(env.state(), before);

    env.write("rest.jsonl", jsonl(&generated[400..]));
    env.append("rest.jsonl").ok();
    let out = env.run(&["replay", "verify", LOG]).ok();
    assert!(out.stdout.contains("verdict      MATCH"), "{out:#?}");
}

/// A proof or an audit checkpoint is never written over the log (or any file that is not
/// one); an audit refuses such a path before it starts.
#[test]
fn outputs_are_not_written_over_other_files() {
    let env = Env::new();
    env.init_log();
    env.write("events.jsonl", jsonl(&every_kind(3)));
    env.append("events.jsonl").ok();
    let log_bytes = std::fs::read(env.path(LOG)).expect("read log");
    env.run(&["prove", "inclusion", LOG, "1", "--out", LOG])
        .fails(1)
        .stderr_has("is a database")
        .stderr_has("refusing to overwrite it with a proof");
    env.run(&["replay", "verify", LOG, "--save-checkpoint", LOG])
        .fails(1)
        .stderr_has("refusing to overwrite it with an audit checkpoint");
    env.write("notes.txt", "mine");
    env.run(&["prove", "inclusion", LOG, "1", "--out", "notes.txt"])
        .fails(1)
        .stderr_has("exists and is not one");
    assert_eq!(std::fs::read(env.path(LOG)).expect("read log"), log_bytes);
    assert_eq!(env.read("notes.txt"), "mine");

    // A proof replaces an older proof.
    env.run(&["prove", "inclusion", LOG, "1", "--out", "proof.json"])
        .ok();
    env.run(&["prove", "inclusion", LOG, "2", "--out", "proof.json"])
        .ok();
    let proof: ProofBundle = serde_json::from_str(&env.read("proof.json")).expect("a proof");
    let ProofBundle::Inclusion { proof, .. } = proof else {
        panic!("an inclusion proof")
    };
    assert_eq!(proof.leaf_index, 2);
}
