//! The subxt client against a JSON-RPC peer on loopback (tests/common/chain_peer.rs) that
//! serves the spec-393 fixture metadata and hand-built state: reading a metagraph, submitting
//! weights (plain and timelocked), retries, and the refusals that must submit nothing.
#![cfg(feature = "node")]

#[path = "common/chain_peer.rs"]
mod chain_peer;

use std::path::PathBuf;

use blake2::digest::consts::U32;
use blake2::{Blake2b, Digest};
use chain_peer::{
    ChainPeer, PeerState, SubmitBehaviour, account, block_hash, encode_as, number, set_field,
    storage_key, zero_value,
};
use subxt::Metadata;
use subxt::ext::codec::{Decode, Encode};
use weightlog::chain::timelock::decrypt_with_signature;
use weightlog::chain::{
    Chain, ChainError, HotkeySigner, Refusal, SubmitOptions, SubxtChain, WeightsDecision,
    decode_extrinsic,
};
use weightlog::keys::{Hotkey, PasswordSource, WalletLocation, load_hotkey};
use weightlog_schema::event::{SubmissionOutcome, WeightsCall};

const NETUID: u16 = 1;
const HEAD: u64 = 1000;
const SPEC_VERSION: u32 = 393;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/chain-fixtures")
}

fn metadata_bytes() -> Vec<u8> {
    std::fs::read(fixtures().join("subtensor_metadata_v16_spec393.scale")).unwrap()
}

fn metadata() -> Metadata {
    Metadata::decode(&mut &metadata_bytes()[..]).unwrap()
}

/// The fixture wallet's hotkey, loaded by the wallet code (seed 0x01 x 32).
fn wallet_hotkey() -> Hotkey {
    let location = WalletLocation::new(fixtures().join("wallet"), "testw", "testh");
    load_hotkey(&location, &PasswordSource::Given(String::new())).unwrap()
}

const MINER_A: [u8; 32] = [0xa1; 32];
const MINER_B: [u8; 32] = [0xb2; 32];
const COLDKEY: [u8; 32] = [0xc0; 32];

fn set(
    state: &mut PeerState,
    metadata: &Metadata,
    entry: &str,
    keys: Vec<chain_peer::Value>,
    value: Vec<u8>,
) {
    let key = storage_key(metadata, "SubtensorModule", entry, keys);
    state.storage.insert(key, value);
}

/// `get_metagraph(1)`: three uids, the validator first.
fn metagraph_answer(metadata: &Metadata, validator: [u8; 32]) -> Vec<u8> {
    metagraph_answer_with(
        metadata,
        validator,
        [(MINER_A, 0x7f00_0001, 8091), (MINER_B, 0x0a00_0002, 8092)],
    )
}

/// `get_metagraph(1)`: the validator as uid 0, then two miners (hotkey, IPv4 as a number,
/// port).
fn metagraph_answer_with(
    metadata: &Metadata,
    validator: [u8; 32],
    miners: [([u8; 32], u128, u16); 2],
) -> Vec<u8> {
    let method = metadata
        .runtime_api_trait_by_name("SubnetInfoRuntimeApi")
        .unwrap()
        .method_by_name("get_metagraph")
        .unwrap();
    let output = method.output_ty();
    let option = metadata.types().resolve(output).unwrap();
    let scale_info::TypeDef::Variant(variants) = &option.type_def else {
        panic!("get_metagraph returns an Option");
    };
    let some = variants.variants.iter().find(|v| v.name == "Some").unwrap();
    let mut graph = zero_value(metadata, some.fields[0].ty.id);
    let list = |items: Vec<chain_peer::Value>| chain_peer::Value::unnamed_composite(items);
    let axon = |ip: u128, port: u16| {
        chain_peer::Value::named_composite([
            ("block", number(1u8)),
            ("version", number(100u8)),
            ("ip", number(ip)),
            ("port", number(port)),
            ("ip_type", number(4u8)),
            ("protocol", number(4u8)),
            ("placeholder1", number(0u8)),
            ("placeholder2", number(0u8)),
        ])
    };
    set_field(
        &mut graph,
        "hotkeys",
        list(vec![
            account(&validator),
            account(&miners[0].0),
            account(&miners[1].0),
        ]),
    );
    set_field(&mut graph, "coldkeys", list(vec![account(&COLDKEY); 3]));
    set_field(
        &mut graph,
        "axons",
        list(vec![
            axon(0, 0),
            axon(miners[0].1, miners[0].2),
            axon(miners[1].1, miners[1].2),
        ]),
    );
    set_field(
        &mut graph,
        "active",
        list(vec![chain_peer::Value::bool(true); 3]),
    );
    set_field(
        &mut graph,
        "validator_permit",
        list(vec![
            chain_peer::Value::bool(true),
            chain_peer::Value::bool(false),
            chain_peer::Value::bool(false),
        ]),
    );
    set_field(
        &mut graph,
        "block_at_registration",
        list(vec![number(10u8), number(20u8), number(30u8)]),
    );
    set_field(
        &mut graph,
        "total_stake",
        list(vec![number(5_000_000_000_000u64), number(0u8), number(1u8)]),
    );
    let answer = chain_peer::Value::variant(
        "Some",
        subxt::ext::scale_value::Composite::Unnamed(vec![graph]),
    );
    encode_as(metadata, output, &answer)
}

struct Subnet {
    commit_reveal: bool,
    commit_reveal_version: u16,
    last_update: u64,
    registered: bool,
}

impl Default for Subnet {
    fn default() -> Self {
        Self {
            commit_reveal: false,
            commit_reveal_version: 4,
            last_update: 0,
            registered: true,
        }
    }
}

fn peer_state(subnet: &Subnet, metadata_bytes: Vec<u8>) -> PeerState {
    let metadata = metadata();
    let validator = wallet_hotkey().public_key();
    let mut state = PeerState::new(metadata_bytes, SPEC_VERSION, HEAD);
    let n = number(NETUID);
    set(
        &mut state,
        &metadata,
        "SubnetworkN",
        vec![n.clone()],
        3u16.encode(),
    );
    set(
        &mut state,
        &metadata,
        "Tempo",
        vec![n.clone()],
        10u16.encode(),
    );
    set(
        &mut state,
        &metadata,
        "CommitRevealWeightsEnabled",
        vec![n.clone()],
        subnet.commit_reveal.encode(),
    );
    set(
        &mut state,
        &metadata,
        "CommitRevealWeightsVersion",
        vec![],
        subnet.commit_reveal_version.encode(),
    );
    set(
        &mut state,
        &metadata,
        "RevealPeriodEpochs",
        vec![n.clone()],
        1u64.encode(),
    );
    set(
        &mut state,
        &metadata,
        "WeightsVersionKey",
        vec![n.clone()],
        0u64.encode(),
    );
    set(
        &mut state,
        &metadata,
        "WeightsSetRateLimit",
        vec![n.clone()],
        100u64.encode(),
    );
    set(
        &mut state,
        &metadata,
        "MinAllowedWeights",
        vec![n.clone()],
        1u16.encode(),
    );
    set(
        &mut state,
        &metadata,
        "MaxWeightsLimit",
        vec![n.clone()],
        65535u16.encode(),
    );
    set(
        &mut state,
        &metadata,
        "MechanismCountCurrent",
        vec![n.clone()],
        1u8.encode(),
    );
    set(
        &mut state,
        &metadata,
        "ValidatorPermit",
        vec![n.clone()],
        vec![true, false, false].encode(),
    );
    set(
        &mut state,
        &metadata,
        "LastUpdate",
        vec![n.clone()],
        vec![subnet.last_update, 0, 0].encode(),
    );
    if subnet.registered {
        set(
            &mut state,
            &metadata,
            "Uids",
            vec![n.clone(), account(&validator)],
            0u16.encode(),
        );
    }
    if metadata
        .pallet_by_name("SubtensorModule")
        .and_then(|p| p.storage())
        .and_then(|s| s.entry_by_name("SubnetOwnerHotkey"))
        .is_some()
    {
        set(
            &mut state,
            &metadata,
            "SubnetOwnerHotkey",
            vec![n],
            MINER_B.encode(),
        );
    }
    state.runtime_calls.insert(
        "SubnetInfoRuntimeApi_get_metagraph".into(),
        metagraph_answer(&metadata, validator),
    );
    state
}

async fn connect(peer: &ChainPeer, hotkey: Hotkey) -> SubxtChain {
    let network = weightlog::chain::Network::parse(&peer.url).unwrap();
    let options = SubmitOptions {
        inclusion_timeout_ms: 2_000,
        ..SubmitOptions::default()
    };
    SubxtChain::connect(&network, Some(HotkeySigner::new(hotkey)), options)
        .await
        .unwrap_or_else(|err| {
            panic!(
                "connect: {err}; unknown methods {:?}",
                peer.with(|s| s.unknown_methods.clone())
            )
        })
}

fn decision(uids: Vec<u16>, weights: Vec<u16>) -> WeightsDecision {
    WeightsDecision {
        decision_seq: 42,
        netuid: NETUID,
        mechanism_id: 0,
        uids,
        weights,
        version_key: 7,
    }
}

/// The signed bytes cover call data, explicit extensions, spec and transaction version,
/// genesis, the era checkpoint (the finalized head when signing) and `None` for the metadata
/// hash.
fn assert_signed_by(
    bytes: &[u8],
    hotkey: &Hotkey,
    checkpoint: u64,
) -> weightlog::chain::DecodedExtrinsic {
    let decoded = decode_extrinsic(&metadata(), bytes).unwrap();
    assert_eq!(decoded.signer, hotkey.public_key());
    let mut payload = decoded.call_data.clone();
    payload.extend_from_slice(&decoded.extensions);
    payload.extend_from_slice(&SPEC_VERSION.to_le_bytes());
    payload.extend_from_slice(&1u32.to_le_bytes());
    payload.extend_from_slice(&block_hash(0));
    payload.extend_from_slice(&block_hash(checkpoint));
    payload.push(0);
    if payload.len() > 256 {
        payload = Blake2b::<U32>::digest(&payload).to_vec();
    }
    hotkey
        .public()
        .verify(&payload, &decoded.signature)
        .unwrap();
    decoded
}

#[tokio::test(flavor = "current_thread")]
async fn reads_the_metagraph_at_a_pinned_block() {
    let peer = ChainPeer::start(peer_state(&Subnet::default(), metadata_bytes())).await;
    let chain = connect(&peer, wallet_hotkey()).await;
    assert_eq!(chain.spec_version(), SPEC_VERSION);
    let head = chain.current_block().await.unwrap();
    assert_eq!(head.number, HEAD);
    assert_eq!(head.hash.0, block_hash(HEAD));
    let observed = chain.metagraph(NETUID, head).await.unwrap();
    assert_eq!(
        (observed.netuid, observed.block, observed.spec_version),
        (NETUID, HEAD, SPEC_VERSION)
    );
    assert_eq!(observed.block_hash.0, block_hash(HEAD));
    assert_eq!(observed.neurons.len(), 3);
    let validator = &observed.neurons[0];
    assert_eq!(validator.hotkey.0, wallet_hotkey().public_key());
    assert_eq!(validator.coldkey.0, COLDKEY);
    assert_eq!(validator.stake_rao, 5_000_000_000_000);
    assert!(validator.validator_permit && validator.active);
    assert_eq!(validator.registration_block, 10);
    assert_eq!(validator.axon, None, "ip 0 serves nothing");
    let miner = &observed.neurons[1];
    assert_eq!(miner.hotkey.0, MINER_A);
    assert!(!miner.validator_permit);
    let axon = miner.axon.as_ref().unwrap();
    assert_eq!(
        (axon.ip.as_str(), axon.port, axon.version),
        ("127.0.0.1", 8091, 100)
    );
    assert_eq!(observed.neurons[2].axon.as_ref().unwrap().ip, "10.0.0.2");
    let parameters = &observed.hyperparameters;
    assert_eq!(parameters.tempo, 10);
    assert_eq!(parameters.weights_rate_limit_blocks, 100);
    assert!(!parameters.commit_reveal_enabled);
    assert_eq!(parameters.commit_reveal_version, 4);
    // Our own uid and the epoch rule come with the subnet state.
    let state = chain.subnet_state(NETUID, head).await.unwrap();
    let own = state.own.unwrap();
    assert_eq!(
        (own.uid, own.validator_permit, own.last_update_block),
        (0, true, 0)
    );
    assert_eq!(state.spec_version, SPEC_VERSION);
    assert!(peer.submitted().is_empty());
}

#[tokio::test(flavor = "current_thread")]
async fn submits_set_mechanism_weights_when_commit_reveal_is_off() {
    let peer = ChainPeer::start(peer_state(&Subnet::default(), metadata_bytes())).await;
    let hotkey = wallet_hotkey();
    let chain = connect(&peer, hotkey.clone()).await;
    let report = chain
        .submit_weights(&decision(vec![1, 2], vec![65535, 32768]))
        .await
        .unwrap();
    assert_eq!(report.refusal, None, "{report:?}");
    assert_eq!(report.spec_version, SPEC_VERSION);
    assert_eq!(report.attempts, 1);
    let event = &report.event;
    assert_eq!(event.decision_seq, 42);
    assert_eq!(event.call, WeightsCall::SetMechanismWeights);
    assert_eq!(
        event.outcome,
        SubmissionOutcome::Included { block: HEAD + 1 }
    );
    assert_eq!(event.reveal_round, None);
    assert_eq!(event.spec_version, Some(SPEC_VERSION));
    let submitted = peer.submitted();
    assert_eq!(submitted.len(), 1);
    let extrinsic_hash: [u8; 32] = Blake2b::<U32>::digest(&submitted[0]).into();
    assert_eq!(event.extrinsic_hash.unwrap().0, extrinsic_hash);
    let decoded = assert_signed_by(&submitted[0], &hotkey, HEAD);
    assert_eq!(decoded.call.call, "set_mechanism_weights");
    // netuid 1, mecid 0, dests [1, 2], weights [65535, 32768], version_key 7.
    assert_eq!(
        hex::encode(&decoded.call_data),
        "0777010000\
         0801000200\
         08ffff0080\
         0700000000000000"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn commits_timelocked_weights_when_commit_reveal_is_on() {
    let subnet = Subnet {
        commit_reveal: true,
        ..Subnet::default()
    };
    let peer = ChainPeer::start(peer_state(&subnet, metadata_bytes())).await;
    let hotkey = wallet_hotkey();
    let chain = connect(&peer, hotkey.clone()).await;
    let report = chain
        .submit_weights(&decision(vec![1, 2], vec![65535, 32768]))
        .await
        .unwrap();
    assert_eq!(report.refusal, None, "{report:?}");
    assert_eq!(
        report.event.call,
        WeightsCall::CommitTimelockedMechanismWeights
    );
    assert_eq!(
        report.event.outcome,
        SubmissionOutcome::Included { block: HEAD + 1 }
    );
    let round = report.event.reveal_round.unwrap();
    let submitted = peer.submitted();
    assert_eq!(submitted.len(), 1);
    let decoded = assert_signed_by(&submitted[0], &hotkey, HEAD);
    assert_eq!(decoded.call.call, "commit_timelocked_mechanism_weights");
    // Arguments: netuid, mecid, the commit, its round, version 4.
    let data = &decoded.call_data;
    assert_eq!(&data[..5], [7, 118, 1, 0, 0]);
    let mut rest = &data[5..];
    let commit = Vec::<u8>::decode(&mut rest).unwrap();
    let (encoded_round, version) = <(u64, u16)>::decode(&mut rest).unwrap();
    assert!(rest.is_empty());
    assert_eq!((encoded_round, version), (round, 4));
    // Spec 393 has no stateful scheduler: epoch(b) = (b + 2) / 11, the commit lands in
    // 1001 (epoch 91), epoch 92 starts at block 1010; +3 safety blocks = 13 blocks ahead.
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let expected = (now_s + 13 * 12 - weightlog::chain::epoch::QUICKNET_GENESIS_S) / 3;
    assert!(
        round.abs_diff(expected) <= 2,
        "round {round}, expected about {expected}"
    );
    // A ciphertext for a future round cannot be opened with round 1000's signature.
    let signature = hex::decode(
        "b44679b9a59af2ec876b1a6b1ad52ea9b1615fc3982b19576350f93447cb1125e342b73a8dd2bacbe47e4b6b63ed5e39",
    )
    .unwrap();
    assert!(decrypt_with_signature(&commit, &signature).is_err());
}

#[tokio::test(flavor = "current_thread")]
async fn retries_an_outdated_extrinsic_once_with_a_fresh_one() {
    let peer = ChainPeer::start(peer_state(&Subnet::default(), metadata_bytes())).await;
    peer.with(|state| {
        state.submit_plan = vec![SubmitBehaviour::Reject("Transaction is outdated".into())];
    });
    let chain = connect(&peer, wallet_hotkey()).await;
    let report = chain
        .submit_weights(&decision(vec![1, 2], vec![65535, 32768]))
        .await
        .unwrap();
    assert_eq!(report.attempts, 2);
    assert_eq!(
        report.event.outcome,
        SubmissionOutcome::Included { block: HEAD + 1 }
    );
    // Only the second extrinsic entered the pool and the block.
    assert_eq!(peer.submitted().len(), 2);
    assert_eq!(peer.with(|s| s.bodies.len()), 1);
}

#[tokio::test(flavor = "current_thread")]
async fn a_pool_rejection_that_a_retry_cannot_cure_is_recorded() {
    let peer = ChainPeer::start(peer_state(&Subnet::default(), metadata_bytes())).await;
    peer.with(|state| {
        state.submit_plan = vec![SubmitBehaviour::Reject("Custom error: 4".into())];
    });
    let chain = connect(&peer, wallet_hotkey()).await;
    let report = chain
        .submit_weights(&decision(vec![1, 2], vec![65535, 32768]))
        .await
        .unwrap();
    assert_eq!(report.attempts, 1);
    assert!(
        matches!(report.refusal, Some(Refusal::PoolRejected { .. })),
        "{report:?}"
    );
    let SubmissionOutcome::Rejected { reason } = &report.event.outcome else {
        panic!("{report:?}");
    };
    assert!(reason.contains("Custom error: 4"), "{reason}");
    assert!(report.event.extrinsic_hash.is_some());
}

#[tokio::test(flavor = "current_thread")]
async fn an_extrinsic_never_included_times_out() {
    let peer = ChainPeer::start(peer_state(&Subnet::default(), metadata_bytes())).await;
    peer.with(|state| state.submit_plan = vec![SubmitBehaviour::Stall]);
    let chain = connect(&peer, wallet_hotkey()).await;
    let report = chain
        .submit_weights(&decision(vec![1, 2], vec![65535, 32768]))
        .await
        .unwrap();
    assert_eq!(report.event.outcome, SubmissionOutcome::TimedOut);
    assert_eq!(
        report.attempts, 1,
        "a timed-out extrinsic may still land: no retry"
    );
}

/// Submits `decision` against `subnet` with `hotkey` and checks it is refused with nothing
/// sent to the pool; returns the refusal.
async fn refused(subnet: Subnet, hotkey: Hotkey, decision: WeightsDecision) -> Refusal {
    let peer = ChainPeer::start(peer_state(&subnet, metadata_bytes())).await;
    let chain = connect(&peer, hotkey).await;
    let report = chain.submit_weights(&decision).await.unwrap();
    assert!(peer.submitted().is_empty(), "nothing may be submitted");
    assert_eq!(report.attempts, 0);
    assert_eq!(report.event.extrinsic_hash, None);
    assert_eq!(report.spec_version, SPEC_VERSION);
    let refusal = report.refusal.clone().expect("a refusal");
    assert_eq!(
        report.event.outcome,
        SubmissionOutcome::Rejected {
            reason: refusal.to_string()
        },
        "the event records why"
    );
    refusal
}

#[tokio::test(flavor = "current_thread")]
async fn refuses_an_unregistered_hotkey() {
    let stranger = Hotkey::from_seed(&[9; 32]);
    let subnet = Subnet {
        registered: false,
        ..Subnet::default()
    };
    let refusal = refused(subnet, stranger, decision(vec![1, 2], vec![65535, 32768])).await;
    assert!(
        matches!(refusal, Refusal::NotRegistered { netuid: NETUID, .. }),
        "{refusal}"
    );
    assert!(refusal.to_string().contains("not registered on netuid 1"));
}

#[tokio::test(flavor = "current_thread")]
async fn refuses_a_rate_limited_submission() {
    let subnet = Subnet {
        last_update: HEAD - 10,
        ..Subnet::default()
    };
    let refusal = refused(
        subnet,
        wallet_hotkey(),
        decision(vec![1, 2], vec![65535, 32768]),
    )
    .await;
    assert_eq!(
        refusal,
        Refusal::RateLimited {
            uid: 0,
            last_update_block: HEAD - 10,
            rate_limit_blocks: 100,
            next_allowed_block: HEAD + 90,
        }
    );
    assert!(refusal.to_string().contains("next allowed at block 1090"));
}

#[tokio::test(flavor = "current_thread")]
async fn refuses_an_unknown_commit_reveal_version() {
    let subnet = Subnet {
        commit_reveal: true,
        commit_reveal_version: 5,
        ..Subnet::default()
    };
    let refusal = refused(
        subnet,
        wallet_hotkey(),
        decision(vec![1, 2], vec![65535, 32768]),
    )
    .await;
    assert_eq!(refusal, Refusal::UnknownCommitRevealVersion { version: 5 });
    assert!(refusal.to_string().contains("only produces version 4"));
}

#[tokio::test(flavor = "current_thread")]
async fn refuses_weights_for_a_uid_that_does_not_exist() {
    let refusal = refused(
        Subnet::default(),
        wallet_hotkey(),
        decision(vec![1, 7], vec![65535, 1]),
    )
    .await;
    assert_eq!(
        refusal,
        Refusal::UnknownUid {
            uid: 7,
            subnetwork_n: 3
        }
    );
}

/// The fixture metadata with one call of SubtensorModule removed.
fn metadata_without_call(call: &str) -> Vec<u8> {
    use subxt::ext::frame_metadata::{RuntimeMetadata, RuntimeMetadataPrefixed};
    let mut prefixed = RuntimeMetadataPrefixed::decode(&mut &metadata_bytes()[..]).unwrap();
    let RuntimeMetadata::V16(metadata) = &mut prefixed.1 else {
        panic!("the fixture is V16");
    };
    let pallet = metadata
        .pallets
        .iter()
        .find(|p| p.name == "SubtensorModule")
        .unwrap();
    let calls = pallet.calls.as_ref().unwrap().ty.id;
    let ty = metadata
        .types
        .types
        .iter_mut()
        .find(|t| t.id == calls)
        .unwrap();
    let scale_info::TypeDef::Variant(variants) = &mut ty.ty.type_def else {
        panic!("calls are an enum");
    };
    let before = variants.variants.len();
    variants.variants.retain(|v| v.name != call);
    assert_eq!(variants.variants.len(), before - 1);
    prefixed.encode()
}

#[tokio::test(flavor = "current_thread")]
async fn refuses_to_start_on_a_runtime_without_a_call_we_use() {
    let bytes = metadata_without_call("commit_timelocked_mechanism_weights");
    let peer = ChainPeer::start(peer_state(&Subnet::default(), bytes)).await;
    let network = weightlog::chain::Network::parse(&peer.url).unwrap();
    let error = SubxtChain::connect(
        &network,
        Some(HotkeySigner::new(wallet_hotkey())),
        SubmitOptions::default(),
    )
    .await
    .unwrap_err();
    let ChainError::MissingFromMetadata {
        spec_version,
        missing,
        ..
    } = &error
    else {
        panic!("{error}");
    };
    assert_eq!(*spec_version, SPEC_VERSION);
    assert_eq!(
        missing,
        &["SubtensorModule.call(commit_timelocked_mechanism_weights)"]
    );
    assert!(
        error
            .to_string()
            .contains("commit_timelocked_mechanism_weights")
    );
    assert!(peer.submitted().is_empty());
}

fn run_cli(args: Vec<String>) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_weightlog"))
        .args(args)
        .output()
        .unwrap()
}

fn wallet_args() -> Vec<String> {
    let path = fixtures().join("wallet");
    vec![
        "--wallet.path".into(),
        path.display().to_string(),
        "--wallet.name".into(),
        "testw".into(),
        "--wallet.hotkey".into(),
        "testh".into(),
    ]
}

#[tokio::test(flavor = "current_thread")]
async fn cli_dry_run_prints_the_signed_extrinsic_and_submits_nothing() {
    let peer = ChainPeer::start(peer_state(&Subnet::default(), metadata_bytes())).await;
    let mut args: Vec<String> = [
        "chain",
        "set-weights",
        "--subtensor.network",
        &peer.url,
        "--netuid",
        "1",
        "--uids",
        "1,2",
        "--weights",
        "0.5,0.25",
        "--version-key",
        "7",
        "--dry-run",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(wallet_args());
    let output = tokio::task::spawn_blocking(move || run_cli(args))
        .await
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("SubtensorModule.set_mechanism_weights (call 7/119)"),
        "{stdout}"
    );
    let hex_line = stdout
        .lines()
        .find_map(|line| line.strip_prefix("extrinsic 0x"))
        .unwrap();
    let bytes = hex::decode(hex_line).unwrap();
    let decoded = assert_signed_by(&bytes, &wallet_hotkey(), HEAD);
    // 0.5 and 0.25 -> 65535 and 32768 (half to even of 32767.5).
    assert_eq!(
        hex::encode(&decoded.call_data),
        "0777010000\
         0801000200\
         08ffff0080\
         0700000000000000"
    );
    assert!(peer.submitted().is_empty(), "a dry run submits nothing");
}

#[tokio::test(flavor = "current_thread")]
async fn cli_metagraph_json_is_the_event_value() {
    let peer = ChainPeer::start(peer_state(&Subnet::default(), metadata_bytes())).await;
    let args: Vec<String> = [
        "chain",
        "metagraph",
        "--subtensor.network",
        &peer.url,
        "--netuid",
        "1",
        "--json",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let output = tokio::task::spawn_blocking(move || run_cli(args))
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let observed: weightlog_schema::event::MetagraphObserved =
        serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!((observed.netuid, observed.block), (NETUID, HEAD));
    assert_eq!(observed.neurons[1].hotkey.0, MINER_A);
}

#[tokio::test(flavor = "current_thread")]
async fn cli_set_weights_refusal_exits_1_with_the_reason() {
    let subnet = Subnet {
        last_update: HEAD - 10,
        ..Subnet::default()
    };
    let peer = ChainPeer::start(peer_state(&subnet, metadata_bytes())).await;
    let mut args: Vec<String> = [
        "chain",
        "set-weights",
        "--subtensor.network",
        &peer.url,
        "--netuid",
        "1",
        "--uids",
        "1",
        "--weights",
        "1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(wallet_args());
    let output = tokio::task::spawn_blocking(move || run_cli(args))
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("rate limited"), "{stderr}");
    // The WeightsSubmitted value that records the refusal is printed for the log.
    let event: weightlog_schema::event::WeightsSubmitted =
        serde_json::from_slice(&output.stdout).unwrap();
    assert!(matches!(event.outcome, SubmissionOutcome::Rejected { .. }));
    assert!(peer.submitted().is_empty());
}

/// The fixture metadata without `SubnetInfoRuntimeApi`, as on runtimes that predate it.
fn metadata_without_metagraph_api() -> Vec<u8> {
    use subxt::ext::frame_metadata::{RuntimeMetadata, RuntimeMetadataPrefixed};
    let mut prefixed = RuntimeMetadataPrefixed::decode(&mut &metadata_bytes()[..]).unwrap();
    let RuntimeMetadata::V16(metadata) = &mut prefixed.1 else {
        panic!("the fixture is V16");
    };
    let before = metadata.apis.len();
    metadata
        .apis
        .retain(|api| api.name != "SubnetInfoRuntimeApi");
    assert_eq!(metadata.apis.len(), before - 1);
    prefixed.encode()
}

#[tokio::test(flavor = "current_thread")]
async fn reads_the_metagraph_from_storage_maps_without_the_runtime_api() {
    let metadata = metadata();
    let validator = wallet_hotkey().public_key();
    let mut state = peer_state(&Subnet::default(), metadata_without_metagraph_api());
    state.runtime_calls.clear();
    let n = number(NETUID);
    let hotkeys = [validator, MINER_A, MINER_B];
    for (uid, hotkey) in hotkeys.iter().enumerate() {
        let uid_key = number(uid as u16);
        set(
            &mut state,
            &metadata,
            "Keys",
            vec![n.clone(), uid_key.clone()],
            hotkey.encode(),
        );
        set(
            &mut state,
            &metadata,
            "Owner",
            vec![account(hotkey)],
            COLDKEY.encode(),
        );
        set(
            &mut state,
            &metadata,
            "BlockAtRegistration",
            vec![n.clone(), uid_key],
            (10u64 * (uid as u64 + 1)).encode(),
        );
        set(
            &mut state,
            &metadata,
            "TotalHotkeyAlpha",
            vec![account(hotkey), n.clone()],
            (1_000u64 * uid as u64).encode(),
        );
    }
    // AxonInfo: block u64, version u32, ip u128, port u16, ip_type, protocol, 2 placeholders.
    let axon = (5u64, 100u32, 0x7f00_0001u128, 8091u16, 4u8, 4u8, 0u8, 0u8).encode();
    set(
        &mut state,
        &metadata,
        "Axons",
        vec![n.clone(), account(&MINER_A)],
        axon,
    );
    set(
        &mut state,
        &metadata,
        "Active",
        vec![n],
        vec![true, true, false].encode(),
    );
    let peer = ChainPeer::start(state).await;
    let chain = connect(&peer, wallet_hotkey()).await;
    assert!(!chain.capabilities().metagraph_api);
    let head = chain.current_block().await.unwrap();
    let observed = chain.metagraph(NETUID, head).await.unwrap();
    assert_eq!(observed.neurons.len(), 3);
    let hotkeys_read: Vec<[u8; 32]> = observed.neurons.iter().map(|n| n.hotkey.0).collect();
    assert_eq!(hotkeys_read, hotkeys);
    let miner = &observed.neurons[1];
    assert_eq!(miner.coldkey.0, COLDKEY);
    assert_eq!((miner.stake_rao, miner.registration_block), (1_000, 20));
    assert!(miner.active && !miner.validator_permit);
    assert_eq!(miner.axon.as_ref().unwrap().ip, "127.0.0.1");
    assert_eq!(observed.neurons[2].axon, None);
    assert!(!observed.neurons[2].active);
    assert!(observed.neurons[0].validator_permit);
}

/// `System.Events` holding one `ExtrinsicFailed` for extrinsic 0 with SubtensorModule's
/// error `error_index`.
fn extrinsic_failed_events(metadata: &Metadata, error_index: u8) -> Vec<u8> {
    use subxt::ext::scale_value::Composite;
    type V = chain_peer::Value;
    let events_ty = metadata
        .pallet_by_name("System")
        .unwrap()
        .storage()
        .unwrap()
        .entry_by_name("Events")
        .unwrap()
        .entry_type()
        .value_ty();
    let variant_fields = |type_id: u32, name: &str| -> Vec<(String, u32)> {
        let ty = metadata.types().resolve(type_id).unwrap();
        let scale_info::TypeDef::Variant(variants) = &ty.type_def else {
            panic!("{name}: not an enum");
        };
        let variant = variants.variants.iter().find(|v| v.name == name).unwrap();
        variant
            .fields
            .iter()
            .map(|f| (f.name.clone().unwrap_or_default(), f.ty.id))
            .collect()
    };
    let runtime_event = metadata.outer_enums().event_enum_ty();
    let system_event = variant_fields(runtime_event, "System")[0].1;
    let failed = variant_fields(system_event, "ExtrinsicFailed");
    let fields = failed.iter().map(|(name, ty)| {
        let value = if name == "dispatch_error" {
            let module = V::named_composite([
                ("index", number(7u8)),
                (
                    "error",
                    V::unnamed_composite([
                        number(error_index),
                        number(0u8),
                        number(0u8),
                        number(0u8),
                    ]),
                ),
            ]);
            V::variant("Module", Composite::Unnamed(vec![module]))
        } else {
            zero_value(metadata, *ty)
        };
        (name.clone(), value)
    });
    let event = V::variant(
        "System",
        Composite::Unnamed(vec![V::variant(
            "ExtrinsicFailed",
            Composite::Named(fields.collect()),
        )]),
    );
    let record = V::named_composite([
        (
            "phase",
            V::variant("ApplyExtrinsic", Composite::Unnamed(vec![number(0u8)])),
        ),
        ("event", event),
        ("topics", V::unnamed_composite([])),
    ]);
    encode_as(metadata, events_ty, &V::unnamed_composite([record]))
}

#[tokio::test(flavor = "current_thread")]
async fn an_included_extrinsic_whose_dispatch_failed_is_recorded_as_rejected() {
    let metadata = metadata();
    let error_index = 6u8;
    let error_name = metadata
        .pallet_by_name("SubtensorModule")
        .unwrap()
        .error_variant_by_index(error_index)
        .unwrap()
        .name
        .clone();
    let mut state = peer_state(&Subnet::default(), metadata_bytes());
    let events_key = storage_key(&metadata, "System", "Events", vec![]);
    state
        .storage
        .insert(events_key, extrinsic_failed_events(&metadata, error_index));
    let peer = ChainPeer::start(state).await;
    let chain = connect(&peer, wallet_hotkey()).await;
    let report = chain
        .submit_weights(&decision(vec![1, 2], vec![65535, 32768]))
        .await
        .unwrap();
    assert_eq!(report.attempts, 1);
    let Some(Refusal::DispatchFailed { block, error }) = &report.refusal else {
        panic!("{report:?}");
    };
    assert_eq!(*block, HEAD + 1);
    assert!(error.contains(&error_name), "{error} names {error_name}");
    let SubmissionOutcome::Rejected { reason } = &report.event.outcome else {
        panic!("{report:?}");
    };
    assert!(reason.contains(&error_name));
    assert!(report.event.extrinsic_hash.is_some());
}

/// `weightlog node --subtensor.network URL`: the node reads its metagraph from the chain
/// (here the peer), queries the miners it lists, and submits its decision as one extrinsic
/// that carries exactly the recorded u16 vectors, signed by the log's hotkey.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_reads_its_metagraph_from_the_chain_and_submits_its_decision() {
    use weightlog::miner::reference::{self, ReferenceConfig};
    use weightlog::node::{self, NodeOptions};
    use weightlog_schema::Payload;

    let validator = wallet_hotkey();
    let mut running = Vec::new();
    let mut registered = Vec::new();
    for (byte, quality) in [(31u8, 1.0), (32, 0.0)] {
        let hotkey = Hotkey::from_seed(&[byte; 32]);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let miner = reference::spawn(
            ReferenceConfig {
                hotkey: hotkey.clone(),
                quality,
                latency_ms: 5,
                seed: u64::from(byte),
                allowed_validators: None,
                upstream: None,
            },
            listener,
        )
        .await
        .unwrap();
        registered.push((hotkey.public_key(), 0x7f00_0001u128, miner.addr.port()));
        running.push(miner);
    }
    let mut state = peer_state(&Subnet::default(), metadata_bytes());
    state.runtime_calls.insert(
        "SubnetInfoRuntimeApi_get_metagraph".into(),
        metagraph_answer_with(
            &metadata(),
            validator.public_key(),
            [registered[0], registered[1]],
        ),
    );
    let peer = ChainPeer::start(state).await;
    let chain = std::sync::Arc::new(connect(&peer, validator.clone()).await);

    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("affine.wlog");
    let mut options = NodeOptions::new("affine", NETUID, log.clone());
    // The peer's head does not move: decide after every round. affine's stages need a
    // sample of each of its three environments before any weight is non-zero, so the first
    // decisions are refused before signing ("every weight quantised to 0") and recorded so;
    // the node stops once one is included.
    options.decision_interval_blocks = Some(0);
    options.stop_after_submissions = Some(1);
    options.stop_after_rounds = Some(6);
    let report = node::run(
        options,
        validator.clone(),
        chain,
        None,
        std::future::pending(),
    )
    .await
    .unwrap();
    for miner in running {
        miner.shutdown().await;
    }
    let snapshot = weightlog::log::LogReader::open(&log)
        .unwrap()
        .snapshot()
        .unwrap();
    let events = snapshot.range(0, snapshot.size().unwrap()).unwrap();
    let mut computed = std::collections::BTreeMap::new();
    let mut included = Vec::new();
    let mut refused = Vec::new();
    let mut observed_spec = None;
    let mut version_key = None;
    let mut answered = 0;
    for (seq, event) in &events {
        match &event.payload {
            Payload::MetagraphObserved(metagraph) => {
                observed_spec = Some(metagraph.spec_version);
                version_key = Some(metagraph.hyperparameters.weights_version_key);
            }
            Payload::ResponseReceived(response) => {
                answered += usize::from(matches!(
                    response.outcome,
                    weightlog_schema::event::ResponseOutcome::Ok { .. }
                ));
            }
            Payload::WeightsComputed(weights) => {
                computed.insert(*seq, weights.clone());
            }
            Payload::WeightsSubmitted(submitted) => match &submitted.outcome {
                _ if submitted.spec_version != Some(SPEC_VERSION) => {
                    panic!("seq {seq} does not record the runtime's spec_version: {submitted:?}")
                }
                SubmissionOutcome::Included { .. } => {
                    assert_eq!(submitted.call, WeightsCall::SetMechanismWeights);
                    included.push(submitted.decision_seq);
                }
                SubmissionOutcome::Rejected { reason } => refused.push(reason.clone()),
                SubmissionOutcome::TimedOut => panic!("timed out at seq {seq}"),
            },
            _ => {}
        }
    }
    assert_eq!(report.submissions_included, 1, "{report:?} {refused:?}");
    assert_eq!(included.len(), 1, "{refused:?}");
    assert_eq!(
        computed.len(),
        included.len() + refused.len(),
        "every decision's outcome is recorded"
    );
    assert_eq!(
        observed_spec,
        Some(SPEC_VERSION),
        "the runtime's spec_version is recorded"
    );
    assert!(
        answered >= 2,
        "the miners registered on chain were queried and answered"
    );
    let computed = &computed[&included[0]];
    let submitted = peer.submitted();
    assert_eq!(
        submitted.len(),
        1,
        "one extrinsic, for the one decision not refused before signing"
    );
    let decoded = assert_signed_by(&submitted[0], &validator, HEAD);
    assert_eq!(decoded.call.call, "set_mechanism_weights");
    // netuid, mechanism 0, the recorded u16 uids and weights, the subnet's version key.
    let vector = |values: &[u16]| {
        let mut bytes = vec![(values.len() as u8) << 2];
        for value in values {
            bytes.extend_from_slice(&value.to_le_bytes());
        }
        bytes
    };
    let mut expected = vec![0x07, 0x77];
    expected.extend_from_slice(&NETUID.to_le_bytes());
    expected.push(0);
    expected.extend(vector(&computed.u16_uids));
    expected.extend(vector(&computed.u16_weights));
    expected.extend_from_slice(&version_key.unwrap().to_le_bytes());
    assert_eq!(hex::encode(&decoded.call_data), hex::encode(expected));
}
