//! Offline chain tests: extrinsic bytes against the spec-393 fixture metadata, the golden
//! vectors of shared/chain-fixtures/vectors.json, the drand round-1000 timelock known
//! answer, and the epoch-schedule tables.
#![cfg(feature = "node")]

use std::path::PathBuf;

use blake2::digest::consts::U32;
use blake2::{Blake2b, Digest};
use subxt::Metadata;
use subxt::ext::codec::{Compact, Decode, Encode};
use weightlog::chain::epoch::{
    EpochError, EpochSchedule, EpochState, QUICKNET_GENESIS_S, RevealPlan, reveal_round,
};
use weightlog::chain::timelock::{
    WeightsTlockPayload, decode_user_data, decrypt_with_signature, encrypt_to_round,
    encrypt_weights,
};
use weightlog::chain::{
    HotkeySigner, WeightsCallArgs, build_signed_offline, commit_hash_v2, decode_extrinsic,
};
use weightlog::keys::Hotkey;
use weightlog_replay::emit::{Precision, to_u16};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/chain-fixtures")
}

fn vectors() -> serde_json::Value {
    let text = std::fs::read_to_string(fixtures().join("vectors.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn metadata() -> Metadata {
    let bytes = std::fs::read(fixtures().join("subtensor_metadata_v16_spec393.scale")).unwrap();
    Metadata::decode(&mut &bytes[..]).unwrap()
}

fn unhex(text: &str) -> Vec<u8> {
    hex::decode(text.trim_start_matches("0x")).unwrap()
}

const GENESIS: [u8; 32] = [0x11; 32];
const SPEC_VERSION: u32 = 393;
const TRANSACTION_VERSION: u32 = 1;

fn signer() -> HotkeySigner {
    HotkeySigner::new(Hotkey::from_seed(&[1; 32]))
}

/// What the signature of a v4 extrinsic covers with the spec-393 extensions: call data,
/// the explicit extension bytes, then the implicit ones (spec and transaction version,
/// genesis, the era's checkpoint block, and `None` for the metadata hash); hashed with
/// blake2-256 when longer than 256 bytes.
fn signer_payload(call_data: &[u8], extensions: &[u8], checkpoint: [u8; 32]) -> Vec<u8> {
    let mut bytes = call_data.to_vec();
    bytes.extend_from_slice(extensions);
    bytes.extend_from_slice(&SPEC_VERSION.to_le_bytes());
    bytes.extend_from_slice(&TRANSACTION_VERSION.to_le_bytes());
    bytes.extend_from_slice(&GENESIS);
    bytes.extend_from_slice(&checkpoint);
    bytes.push(0);
    if bytes.len() > 256 {
        Blake2b::<U32>::digest(&bytes).to_vec()
    } else {
        bytes
    }
}

fn sign_offline(call: &WeightsCallArgs, mortal_from: Option<(u64, [u8; 32])>) -> Vec<u8> {
    build_signed_offline(
        metadata(),
        GENESIS,
        (SPEC_VERSION, TRANSACTION_VERSION),
        call,
        &signer(),
        7,
        mortal_from,
    )
    .unwrap()
}

#[test]
fn set_mechanism_weights_encodes_as_the_spec_says_and_decodes_back() {
    let call = WeightsCallArgs::Set {
        netuid: 1,
        mechanism_id: 0,
        uids: vec![0, 1, 2],
        weights: vec![65535, 32768, 1],
        version_key: 10_002_000,
    };
    let checkpoint = [0x22; 32];
    let bytes = sign_offline(&call, Some((1000, checkpoint)));
    let decoded = decode_extrinsic(&metadata(), &bytes).unwrap();
    // specs/chain.md section 7.4: pallet 7, call 119, then the SCALE arguments.
    assert_eq!(
        hex::encode(&decoded.call_data),
        "0777010000\
         0c000001000200\
         0cffff00800100\
         509e980000000000"
    );
    assert_eq!(decoded.call.pallet, "SubtensorModule");
    assert_eq!(decoded.call.call, "set_mechanism_weights");
    assert_eq!(
        (decoded.call.pallet_index, decoded.call.call_index),
        (7, 119)
    );
    let names: Vec<&str> = decoded
        .call
        .arguments
        .iter()
        .map(|(n, _)| n.as_str())
        .collect();
    assert_eq!(
        names,
        ["netuid", "mecid", "dests", "weights", "version_key"]
    );
    assert_eq!(
        decoded.call.argument("version_key").unwrap().to_string(),
        "10002000"
    );
    assert_eq!(decoded.signer, signer().hotkey().public_key());
    let payload = signer_payload(&decoded.call_data, &decoded.extensions, checkpoint);
    signer()
        .hotkey()
        .public()
        .verify(&payload, &decoded.signature)
        .unwrap();
    // The explicit extensions start with the mortal era, then the compact nonce 7.
    let era_bytes = &decoded.extensions[..2];
    assert_ne!(era_bytes, [0, 0], "the extrinsic is mortal");
    assert_eq!(decoded.extensions[2], Compact(7u64).encode()[0]);
}

#[test]
fn commit_timelocked_mechanism_weights_encodes_as_the_spec_says_and_decodes_back() {
    let commit = vec![0xde, 0xad, 0xbe, 0xef];
    let call = WeightsCallArgs::CommitTimelocked {
        netuid: 3,
        mechanism_id: 1,
        commit: commit.clone(),
        reveal_round: 1000,
        commit_reveal_version: 4,
    };
    let bytes = sign_offline(&call, None);
    let decoded = decode_extrinsic(&metadata(), &bytes).unwrap();
    assert_eq!(
        hex::encode(&decoded.call_data),
        "0776\
         0300\
         01\
         10deadbeef\
         e803000000000000\
         0400"
    );
    assert_eq!(decoded.call.call, "commit_timelocked_mechanism_weights");
    assert_eq!(
        (decoded.call.pallet_index, decoded.call.call_index),
        (7, 118)
    );
    let names: Vec<&str> = decoded
        .call
        .arguments
        .iter()
        .map(|(n, _)| n.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "netuid",
            "mecid",
            "commit",
            "reveal_round",
            "commit_reveal_version"
        ]
    );
    // Immortal: the era is the single byte 0 and the checkpoint is the genesis hash.
    assert_eq!(decoded.extensions[0], 0);
    let payload = signer_payload(&decoded.call_data, &decoded.extensions, GENESIS);
    signer()
        .hotkey()
        .public()
        .verify(&payload, &decoded.signature)
        .unwrap();
}

#[test]
fn a_commit_too_large_for_the_chain_is_refused_before_encoding() {
    let payload = WeightsTlockPayload {
        hotkey: vec![1; 32],
        uids: (0..1500).collect(),
        values: vec![65535; 1500],
        version_key: 0,
    };
    let error = encrypt_weights(&payload, 1000).unwrap_err();
    assert!(error.to_string().contains("at most 5000"), "{error}");
}

#[test]
fn crv2_commit_hash_matches_the_vector() {
    let vector = &vectors()["crv2_commit_hash"];
    let account: [u8; 32] = unhex(vector["account_public"].as_str().unwrap())
        .try_into()
        .unwrap();
    let list = |name: &str| -> Vec<u16> {
        vector[name]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u16)
            .collect()
    };
    let hash = commit_hash_v2(
        &account,
        vector["netuid_index"].as_u64().unwrap() as u16,
        &list("uids"),
        &list("values"),
        &list("salt"),
        vector["version_key"].as_u64().unwrap(),
    );
    assert_eq!(
        format!("0x{}", hex::encode(hash)),
        vector["blake2_256_of_scale_tuple"].as_str().unwrap()
    );
}

#[test]
fn u16_weights_match_both_sdk_generations() {
    for case in vectors()["weights_u16"].as_array().unwrap() {
        let input: Vec<f64> = case["input"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let uids: Vec<u16> = (0..input.len() as u16).collect();
        for (precision, key) in [
            (Precision::Float32, "v10_float32"),
            (Precision::Float64, "v11_float64"),
        ] {
            let expected: Vec<(u16, u16)> = case[key]
                .as_array()
                .unwrap()
                .iter()
                .enumerate()
                .map(|(uid, v)| (uid as u16, v.as_u64().unwrap() as u16))
                .filter(|(_, weight)| *weight != 0)
                .collect();
            let emitted = to_u16(&uids, &input, precision).unwrap();
            let got: Vec<(u16, u16)> = emitted.uids.into_iter().zip(emitted.weights).collect();
            assert_eq!(got, expected, "{key} of {input:?}");
        }
    }
}

fn round_1000_signature() -> Vec<u8> {
    unhex(vectors()["drand"]["signature_hex"].as_str().unwrap())
}

#[test]
fn timelock_round_1000_known_answer() {
    let payload = WeightsTlockPayload {
        hotkey: signer().hotkey().public_key().to_vec(),
        uids: vec![0, 1, 2],
        values: vec![65535, 32768, 1],
        version_key: 10_002_000,
    };
    let commit = encrypt_weights(&payload, 1000).unwrap();
    let plain = decrypt_with_signature(&commit, &round_1000_signature()).unwrap();
    assert_eq!(WeightsTlockPayload::decode(&plain).unwrap(), payload);
    // The chain decodes the same bytes as (Vec<u8>, Vec<u16>, Vec<u16>, u64).
    let (hotkey, uids, values, version_key) =
        <(Vec<u8>, Vec<u16>, Vec<u16>, u64)>::decode(&mut &plain[..]).unwrap();
    assert_eq!(hotkey.len(), 32);
    assert_eq!(
        (uids, values, version_key),
        (vec![0, 1, 2], vec![65535, 32768, 1], 10_002_000)
    );
}

#[test]
fn timelock_needs_the_signature_of_its_own_round() {
    let commit = encrypt_to_round(b"not before round 1001", 1001).unwrap();
    assert!(decrypt_with_signature(&commit, &round_1000_signature()).is_err());
}

#[test]
fn timelock_decrypts_the_python_sdk_fixture() {
    let drand = &vectors()["drand"];
    let envelope =
        std::fs::read(fixtures().join(drand["python_envelope_file"].as_str().unwrap())).unwrap();
    let (ciphertext, round) = decode_user_data(&envelope).unwrap();
    assert_eq!(round, 1000);
    let plain = decrypt_with_signature(&ciphertext, &round_1000_signature()).unwrap();
    assert_eq!(
        plain,
        drand["python_envelope_plaintext"]
            .as_str()
            .unwrap()
            .as_bytes()
    );
}

struct ScheduleCase {
    name: &'static str,
    schedule: EpochSchedule,
    reveal_period_epochs: u64,
    expected: Result<(u64, u64), EpochError>,
}

fn stateful(
    head: u64,
    tempo: u16,
    last: u64,
    pending: u64,
    index: u64,
    since: u64,
) -> EpochSchedule {
    EpochSchedule::Stateful(EpochState {
        head_block: head,
        tempo,
        last_epoch_block: last,
        pending_epoch_at: pending,
        subnet_epoch_index: index,
        blocks_since_last_step: since,
    })
}

/// Cases worked out by hand from the chain rules (specs/chain.md section 1): an epoch fires
/// at the first block with `block - LastEpochBlock >= tempo`, at a pending owner epoch, or
/// when `BlocksSinceLastStep` passed 50,400; the commit lands at head + 1 and is filed under
/// that block's pre-coinbase epoch; it reveals in the first block whose pre-coinbase epoch is
/// `commit_epoch + RevealPeriodEpochs`. Expected values are `(commit_epoch, reveal_block)`.
#[test]
fn epoch_schedule_table() {
    let cases = [
        ScheduleCase {
            name: "mid-epoch commit reveals at the next epoch boundary",
            schedule: stateful(105, 10, 100, 0, 5, 5),
            reveal_period_epochs: 1,
            expected: Ok((5, 110)),
        },
        ScheduleCase {
            name: "a commit landing in an epoch block belongs to the new epoch",
            schedule: stateful(109, 10, 100, 0, 5, 9),
            reveal_period_epochs: 1,
            expected: Ok((6, 120)),
        },
        ScheduleCase {
            name: "two reveal epochs",
            schedule: stateful(105, 10, 100, 0, 5, 5),
            reveal_period_epochs: 2,
            expected: Ok((5, 120)),
        },
        ScheduleCase {
            name: "an owner-triggered epoch comes first",
            schedule: stateful(105, 10, 100, 107, 5, 5),
            reveal_period_epochs: 1,
            expected: Ok((5, 107)),
        },
        ScheduleCase {
            name: "too many blocks since the last step force an epoch",
            schedule: stateful(105, 10, 100, 0, 5, 50_401),
            reveal_period_epochs: 1,
            expected: Ok((6, 116)),
        },
        ScheduleCase {
            name: "finney-like tempo",
            schedule: stateful(1000, 360, 900, 0, 3, 100),
            reveal_period_epochs: 1,
            expected: Ok((3, 1260)),
        },
        ScheduleCase {
            name: "tempo 0 never reveals",
            schedule: stateful(105, 0, 100, 0, 5, 5),
            reveal_period_epochs: 1,
            expected: Err(EpochError::TempoZero),
        },
        ScheduleCase {
            name: "reveal period out of range",
            schedule: stateful(105, 10, 100, 0, 5, 5),
            reveal_period_epochs: 0,
            expected: Err(EpochError::RevealPeriod { epochs: 0 }),
        },
        ScheduleCase {
            name: "modulo rule: (106 + 2) / 11 = 9, epoch 10 starts at 108",
            schedule: EpochSchedule::Modulo {
                head_block: 105,
                netuid: 1,
                tempo: 10,
            },
            reveal_period_epochs: 1,
            expected: Ok((9, 108)),
        },
        ScheduleCase {
            name: "modulo rule, two epochs: epoch 11 starts at 119",
            schedule: EpochSchedule::Modulo {
                head_block: 105,
                netuid: 1,
                tempo: 10,
            },
            reveal_period_epochs: 2,
            expected: Ok((9, 119)),
        },
    ];
    for case in cases {
        let got = case
            .schedule
            .plan_reveal(case.reveal_period_epochs)
            .map(|plan| {
                assert_eq!(
                    plan.commit_block,
                    case.schedule.head_block() + 1,
                    "{}",
                    case.name
                );
                (plan.commit_epoch, plan.reveal_block)
            });
        assert_eq!(got, case.expected, "{}", case.name);
    }
}

#[test]
fn reveal_round_aims_three_blocks_past_the_reveal() {
    let plan = RevealPlan {
        commit_block: 106,
        commit_epoch: 5,
        reveal_block: 110,
    };
    let now_ms = (QUICKNET_GENESIS_S + 1000) * 1000;
    // Block 113 is 8 blocks (96 s) after head 105: round floor(1096 / 3).
    assert_eq!(reveal_round(&plan, 105, now_ms, 12_000), 365);
    // Fast-block localnet: 8 blocks of 250 ms, floor(1002 / 3).
    assert_eq!(reveal_round(&plan, 105, now_ms, 250), 334);
}
