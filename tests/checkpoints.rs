//! Signed checkpoints at the library level: the text form, its parser, signature checks
//! and domain separation, signed with the btcli-written fixture hotkey
//! (`shared/chain-fixtures/wallet/testw/hotkeys/testh`, a plain keyfile: no Argon2 run).

use std::path::Path;

use rand::{Rng, SeedableRng};
use weightlog::keys::{Hotkey, PasswordSource, load_keyfile};
use weightlog_schema::checkpoint::{CHECKPOINT_DOMAIN, ORIGIN_BYTES_MAX};
use weightlog_schema::ss58;
use weightlog_schema::{Checkpoint, CheckpointError, Hash, SignedCheckpoint};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/chain-fixtures");
const HOTKEY_SS58: &str = "5CcyqxXnJucaCnQQvvUg5EPzj1uoNAxACZvzArHw5aVDvgNH";
const COLDKEY_SS58: &str = "5DfhGyQdFobKM8NsWvEeAKk5EQQgYe9AydgJ7rMB6E1EqRzV";

fn fixture_hotkey() -> Hotkey {
    let path = Path::new(FIXTURES).join("wallet/testw/hotkeys/testh");
    let hotkey = load_keyfile(&path, &PasswordSource::default()).expect("load fixture hotkey");
    assert_eq!(hotkey.ss58(), HOTKEY_SS58);
    hotkey
}

fn other_key() -> Hotkey {
    Hotkey::from_seed(&[2; 32])
}

fn origin() -> String {
    format!("weightlog/netuid-7/{HOTKEY_SS58}/{}", "07".repeat(16))
}

fn root() -> Hash {
    Hash(*blake3::hash(b"a root").as_bytes())
}

fn signed(hotkey: &Hotkey, size: u64) -> SignedCheckpoint {
    Checkpoint::new(origin(), size, root())
        .expect("valid checkpoint")
        .sign(hotkey.public(), |message| hotkey.sign(message))
}

/// The text with line `index` (0-based, of the 5) replaced.
fn with_line(text: &str, index: usize, line: &str) -> String {
    let mut lines: Vec<&str> = text.split_terminator('\n').collect();
    assert_eq!(lines.len(), 5, "{text:?}");
    lines[index] = line;
    lines.join("\n") + "\n"
}

fn assert_malformed(text: &str, line: u32) {
    match SignedCheckpoint::parse(text) {
        Err(CheckpointError::Malformed {
            line: found,
            reason,
        }) => {
            assert_eq!(found, line, "{text:?}: {reason}");
            assert!(!reason.is_empty());
        }
        other => panic!("{text:?} should be malformed at line {line}, got {other:?}"),
    }
}

#[test]
fn text_round_trip() {
    let hotkey = fixture_hotkey();
    for size in [0, 1, 7, 1042, u64::MAX] {
        let checkpoint = signed(&hotkey, size);
        let text = checkpoint.to_text();
        let lines: Vec<&str> = text.split_terminator('\n').collect();
        assert_eq!(
            lines,
            [
                origin().as_str(),
                size.to_string().as_str(),
                root().to_hex().as_str(),
                "",
                format!("sig {HOTKEY_SS58} 0x{}", hex::encode(checkpoint.signature)).as_str(),
            ]
        );
        assert!(text.ends_with('\n'));
        let parsed = SignedCheckpoint::parse(&text).expect("parse");
        assert_eq!(parsed, checkpoint);
        assert_eq!(parsed.to_text(), text);
        parsed.verify_ss58(HOTKEY_SS58).expect("verify_ss58");
        parsed.verify(&hotkey.public()).expect("verify");
    }
}

#[test]
fn signatures_are_randomized_but_both_verify() {
    let hotkey = fixture_hotkey();
    let first = signed(&hotkey, 5);
    let second = signed(&hotkey, 5);
    assert_eq!(first.checkpoint, second.checkpoint);
    assert_ne!(first.signature, second.signature);
    first.verify_ss58(HOTKEY_SS58).unwrap();
    second.verify_ss58(HOTKEY_SS58).unwrap();
}

#[test]
fn another_key_is_the_wrong_signer() {
    let hotkey = fixture_hotkey();
    let checkpoint = signed(&hotkey, 9);
    let other = other_key();
    match checkpoint.verify(&other.public()) {
        Err(CheckpointError::WrongSigner {
            size,
            found,
            expected,
        }) => {
            assert_eq!(size, 9);
            assert_eq!(found, HOTKEY_SS58);
            assert_eq!(expected, other.ss58());
        }
        other => panic!("expected WrongSigner, got {other:?}"),
    }
    assert!(matches!(
        checkpoint.verify_ss58(&other.ss58()),
        Err(CheckpointError::WrongSigner { .. })
    ));
    // The fixture coldkey is a real Bittensor key too, but not this checkpoint's signer.
    assert!(matches!(
        checkpoint.verify_ss58(COLDKEY_SS58),
        Err(CheckpointError::WrongSigner { .. })
    ));
    // An address that is not SS58 at all is reported, not a panic.
    let error = checkpoint.verify_ss58("not-an-address").unwrap_err();
    assert!(matches!(error, CheckpointError::WrongSigner { .. }));
    assert!(error.to_string().contains("not-an-address"), "{error}");
}

#[test]
fn swapped_signer_line_is_a_bad_signature() {
    let hotkey = fixture_hotkey();
    let checkpoint = signed(&hotkey, 12);
    let other = other_key();
    let text = checkpoint.to_text();
    let swapped = text.replace(HOTKEY_SS58, &other.ss58());
    // The origin names the fixture key too: only the signature line names the signer.
    let swapped = with_line(&swapped, 0, text.split('\n').next().expect("origin line"));
    assert_ne!(swapped, text);
    let parsed = SignedCheckpoint::parse(&swapped).expect("still well-formed");
    assert_eq!(parsed.signer, other.public());
    assert_eq!(parsed.signature, checkpoint.signature);
    match parsed.verify_ss58(&other.ss58()) {
        Err(CheckpointError::BadSignature { size, signer }) => {
            assert_eq!(size, 12);
            assert_eq!(signer, other.ss58());
        }
        result => panic!("expected BadSignature, got {result:?}"),
    }
    // Against the real signer, the swapped line is simply the wrong signer.
    assert!(matches!(
        parsed.verify_ss58(HOTKEY_SS58),
        Err(CheckpointError::WrongSigner { .. })
    ));
}

#[test]
fn changed_body_fails_verification() {
    let hotkey = fixture_hotkey();
    let checkpoint = signed(&hotkey, 1042);
    let text = checkpoint.to_text();

    let root_hex = root().to_hex();
    let mut changed_root = root_hex.clone().into_bytes();
    changed_root[17] = if changed_root[17] == b'0' { b'1' } else { b'0' };
    let changed_root = String::from_utf8(changed_root).unwrap();

    let tampered = [
        ("size + 1", with_line(&text, 1, "1043")),
        ("size - 1", with_line(&text, 1, "1041")),
        ("size 0", with_line(&text, 1, "0")),
        ("one root digit", with_line(&text, 2, &changed_root)),
        (
            "origin netuid",
            with_line(&text, 0, &origin().replace("netuid-7", "netuid-8")),
        ),
        (
            "origin log id",
            with_line(&text, 0, &origin().replace("0707", "0708")),
        ),
        (
            "origin suffix",
            with_line(&text, 0, &format!("{}x", origin())),
        ),
    ];
    for (what, text) in tampered {
        let parsed = SignedCheckpoint::parse(&text)
            .unwrap_or_else(|error| panic!("{what}: should parse: {error}"));
        assert_ne!(parsed.checkpoint, checkpoint.checkpoint, "{what}");
        match parsed.verify_ss58(HOTKEY_SS58) {
            Err(CheckpointError::BadSignature { .. }) => {}
            result => panic!("{what}: expected BadSignature, got {result:?}"),
        }
    }

    // The same through the struct, without the text form.
    let mut changed = checkpoint.clone();
    changed.checkpoint.size += 1;
    assert!(matches!(
        changed.verify(&hotkey.public()),
        Err(CheckpointError::BadSignature { .. })
    ));
    let mut changed = checkpoint.clone();
    changed.signature[0] ^= 1;
    assert!(changed.verify(&hotkey.public()).is_err());
    let mut changed = checkpoint;
    changed.signature[63] ^= 0x40;
    assert!(changed.verify(&hotkey.public()).is_err());
}

#[test]
fn malformed_texts_are_parse_errors() {
    let hotkey = fixture_hotkey();
    let checkpoint = signed(&hotkey, 7);
    let text = checkpoint.to_text();
    let signature_hex = hex::encode(checkpoint.signature);
    let lines: Vec<&str> = text.split_terminator('\n').collect();
    let body4 = lines[..4].join("\n") + "\n";

    // Structure.
    assert_malformed(text.strip_suffix('\n').unwrap(), 1);
    assert_malformed("", 1);
    assert_malformed("\n", 1);
    assert_malformed(&body4, 1);
    assert_malformed(&format!("{text}\n"), 1);
    assert_malformed(&format!("{text}extra\n"), 1);
    assert_malformed(&text.replace('\n', "\r\n"), 1);
    assert_malformed(&with_line(&text, 3, " "), 4);
    assert_malformed(&with_line(&text, 3, "x"), 4);

    // Origin.
    assert_malformed(&with_line(&text, 0, ""), 1);
    assert_malformed(&with_line(&text, 0, "has space"), 1);
    assert_malformed(&with_line(&text, 0, "tab\there"), 1);
    assert_malformed(&with_line(&text, 0, &"o".repeat(ORIGIN_BYTES_MAX + 1)), 1);

    // Size: canonical decimal only.
    for size in [
        "007",
        "07",
        "00",
        "+7",
        "-7",
        " 7",
        "7 ",
        "",
        "7.0",
        "0x7",
        "1e3",
        "٧", // Arabic-Indic seven
        "18446744073709551616",
    ] {
        assert_malformed(&with_line(&text, 1, size), 2);
    }

    // Root: 64 lower-case hex digits.
    let root_hex = root().to_hex();
    for root in [
        root_hex.to_uppercase(),
        format!("0x{root_hex}"),
        root_hex[..63].to_string(),
        format!("{root_hex}0"),
        format!("{}g", &root_hex[..63]),
        String::new(),
    ] {
        assert_malformed(&with_line(&text, 2, &root), 3);
    }

    // Signature line.
    let sig = |line: String| with_line(&text, 4, &line);
    for line in [
        format!("sig 5CcyqxXnJucaCnQQvvUg5EPzj1uoNAxACZvzArHw5aVDvgNh 0x{signature_hex}"), // bad checksum
        format!("sig 1 0x{signature_hex}"),
        // The same key under the Polkadot prefix (0): only prefix 42 is accepted.
        format!(
            "sig {} 0x{signature_hex}",
            ss58::encode(&hotkey.public_key(), 0)
        ),
        format!("sig {} 0x{signature_hex}", "0".repeat(48)), // not base58
        format!("sig {HOTKEY_SS58} {signature_hex}"),        // no 0x
        format!("sig {HOTKEY_SS58} 0x{}", &signature_hex[..126]), // short
        format!("sig {HOTKEY_SS58} 0x{signature_hex}00"),    // long
        format!("sig {HOTKEY_SS58} 0x{}zz", &signature_hex[..126]),
        format!("sig {HOTKEY_SS58} 0x"),
        format!("sig {HOTKEY_SS58}  0x{signature_hex}"),
        format!("sig  {HOTKEY_SS58} 0x{signature_hex}"),
        format!("sig {HOTKEY_SS58} 0x{signature_hex} "),
        format!("SIG {HOTKEY_SS58} 0x{signature_hex}"),
        format!("signature {HOTKEY_SS58} 0x{signature_hex}"),
        format!("sig {HOTKEY_SS58}"),
        "sig".to_string(),
        String::new(),
    ] {
        assert_malformed(&sig(line), 5);
    }
}

/// Random edits of a valid text never panic, and whatever still parses and verifies says
/// exactly what was signed.
#[test]
fn random_edits_never_panic_nor_change_the_signed_body() {
    let hotkey = fixture_hotkey();
    let checkpoint = signed(&hotkey, 77);
    let text = checkpoint.to_text().into_bytes();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0xc4ec_4b01);
    let alphabet = b"0123456789abcdefABCDEF x\n\r+-/5";
    let mut parsed_count = 0;
    for _ in 0..3000 {
        let mut mutated = text.clone();
        for _ in 0..rng.random_range(1..=3) {
            let position = rng.random_range(0..mutated.len());
            match rng.random_range(0..4) {
                0 => mutated[position] = alphabet[rng.random_range(0..alphabet.len())],
                1 => mutated[position] = rng.random(),
                2 => {
                    mutated.remove(position);
                }
                _ => mutated.insert(position, alphabet[rng.random_range(0..alphabet.len())]),
            }
        }
        let Ok(mutated) = String::from_utf8(mutated) else {
            continue;
        };
        if let Ok(parsed) = SignedCheckpoint::parse(&mutated) {
            parsed_count += 1;
            if parsed.verify_ss58(HOTKEY_SS58).is_ok() {
                assert_eq!(
                    parsed.checkpoint, checkpoint.checkpoint,
                    "an edited text verified with a different body: {mutated:?}"
                );
                assert_eq!(parsed.signer, checkpoint.signer);
            }
        }
    }
    assert!(
        parsed_count > 0,
        "no mutation parsed; the test is not testing"
    );

    // Arbitrary garbage.
    for length in 0..200 {
        let garbage: String = (0..length)
            .map(|_| char::from(rng.random_range(0x09u8..0x7f)))
            .collect();
        let _ = SignedCheckpoint::parse(&garbage);
    }
}

#[test]
fn bad_origins_are_refused() {
    for origin in [
        String::new(),
        "a b".to_string(),
        "a\nb".to_string(),
        "a\u{0}b".to_string(),
        "a\u{2028}b".to_string(),
        "o".repeat(ORIGIN_BYTES_MAX + 1),
    ] {
        assert!(
            matches!(
                Checkpoint::new(origin.clone(), 1, root()),
                Err(CheckpointError::BadOrigin { .. })
            ),
            "{origin:?}"
        );
    }
    let longest = "o".repeat(ORIGIN_BYTES_MAX);
    let hotkey = fixture_hotkey();
    let checkpoint = Checkpoint::new(longest, 1, root())
        .unwrap()
        .sign(hotkey.public(), |message| hotkey.sign(message));
    let parsed = SignedCheckpoint::parse(&checkpoint.to_text()).unwrap();
    parsed.verify_ss58(HOTKEY_SS58).unwrap();
}

#[test]
fn the_signature_is_domain_separated() {
    assert_eq!(CHECKPOINT_DOMAIN, "weightlog/checkpoint/v1\n");
    let hotkey = fixture_hotkey();
    let body = Checkpoint::new(origin(), 3, root()).unwrap();
    let message = body.signed_message();
    assert!(message.starts_with(b"weightlog/checkpoint/v1\n"));
    assert_eq!(&message[CHECKPOINT_DOMAIN.len()..], body.body().as_bytes());
    assert_eq!(
        body.body(),
        format!("{}\n3\n{}\n", origin(), root().to_hex())
    );

    // What `sign` hands to the signer is exactly the domain-separated message.
    let mut seen = Vec::new();
    let checkpoint = body.clone().sign(hotkey.public(), |bytes| {
        seen = bytes.to_vec();
        hotkey.sign(bytes)
    });
    assert_eq!(seen, message);
    checkpoint.verify_ss58(HOTKEY_SS58).unwrap();
    hotkey
        .public()
        .verify(&message, &checkpoint.signature)
        .expect("the signature covers the domain-separated message");
    assert!(
        hotkey
            .public()
            .verify(body.body().as_bytes(), &checkpoint.signature)
            .is_err(),
        "the signature must not cover the bare body"
    );

    // A signature over the body without the prefix (say, a hotkey signing arbitrary text for
    // another protocol) is not a checkpoint signature.
    let bare = SignedCheckpoint {
        checkpoint: body.clone(),
        signer: hotkey.public(),
        signature: hotkey.sign(body.body().as_bytes()),
    };
    assert!(matches!(
        bare.verify_ss58(HOTKEY_SS58),
        Err(CheckpointError::BadSignature { .. })
    ));
    let reparsed = SignedCheckpoint::parse(&bare.to_text()).unwrap();
    assert!(matches!(
        reparsed.verify_ss58(HOTKEY_SS58),
        Err(CheckpointError::BadSignature { .. })
    ));

    // Nor is a signature under another domain (version bump) or over the whole text form.
    for prefix in ["weightlog/checkpoint/v2\n", "weightlog/checkpoint/v1", ""] {
        let mut other = prefix.as_bytes().to_vec();
        other.extend_from_slice(body.body().as_bytes());
        let forged = SignedCheckpoint {
            checkpoint: body.clone(),
            signer: hotkey.public(),
            signature: hotkey.sign(&other),
        };
        assert!(forged.verify_ss58(HOTKEY_SS58).is_err(), "{prefix:?}");
    }
}
