//! Wallet loading and the hotkey signer, against the btcli-written fixture wallet in
//! `shared/chain-fixtures/wallet/testw` (bittensor-wallet 4.1.1).
//!
//! The `$NACL` coldkey costs one Argon2i run (512 MiB, ~seconds) per load: this file runs it
//! exactly twice (right and wrong password).

use std::path::{Path, PathBuf};

use weightlog::keys::{
    Hotkey, KeyError, PasswordSource, WalletLocation, load_hotkey, load_keyfile, parse_keyfile,
    write_dev_hotkey,
};
use weightlog_schema::signature::{PublicKey, SignatureError};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/chain-fixtures");

const HOTKEY_SS58: &str = "5CcyqxXnJucaCnQQvvUg5EPzj1uoNAxACZvzArHw5aVDvgNH";
const HOTKEY_PUBLIC: &str = "189dac29296d31814dc8c56cf3d36a0543372bba7538fa322a4aebfebc39e056";
const COLDKEY_SS58: &str = "5DfhGyQdFobKM8NsWvEeAKk5EQQgYe9AydgJ7rMB6E1EqRzV";
const COLDKEY_PUBLIC: &str = "46ebddef8cd9bb167dc30878d7113b7e168e6f0646beffd77d69d39bad76b47a";
const DEV_MNEMONIC: &str = "bottom drive obey lake curtain smoke basket hold race lonely fit walk";
const COLDKEY_PASSWORD: &str = "correct horse battery staple";

fn wallets_dir() -> PathBuf {
    Path::new(FIXTURES).join("wallet")
}

fn fixture_location() -> WalletLocation {
    WalletLocation::new(wallets_dir(), "testw", "testh")
}

fn public(hex_text: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_text, &mut out).unwrap();
    out
}

/// A source that fails the test if an unencrypted file asks for a password.
fn no_password() -> PasswordSource {
    PasswordSource::Env
}

fn parse(json: &str) -> Result<Hotkey, KeyError> {
    parse_keyfile(json.as_bytes(), Path::new("/test/keyfile"), &no_password())
}

fn fixture_hotkey_json() -> serde_json::Map<String, serde_json::Value> {
    let bytes = std::fs::read(fixture_location().hotkey_file()).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[test]
fn fixture_hotkey_loads_through_private_key_fallback() {
    let location = fixture_location();
    assert!(location.hotkey_file().ends_with("testw/hotkeys/testh"));
    assert!(
        location
            .hotkey_pub_file()
            .ends_with("testw/hotkeys/testhpub.txt")
    );
    // The fixture's secretSeed is raw bytes, not hex: the reader must fall back.
    let raw = fixture_hotkey_json();
    let seed = raw["secretSeed"].as_str().unwrap();
    assert!(hex::decode(seed.trim_start_matches("0x")).is_err());

    let hotkey = load_hotkey(&location, &no_password()).unwrap();
    assert_eq!(hotkey.ss58(), HOTKEY_SS58);
    assert_eq!(hotkey.public_key(), public(HOTKEY_PUBLIC));
    assert_eq!(
        Hotkey::from_seed(&[1u8; 32]).public_key(),
        public(HOTKEY_PUBLIC)
    );

    // Debug shows the address and nothing secret.
    let debug = format!("{hotkey:?}");
    assert!(debug.contains(HOTKEY_SS58), "{debug}");
    let private = raw["privateKey"].as_str().unwrap();
    assert!(!debug.contains(&private[2..18]), "{debug}");
}

#[test]
fn hex_secret_seed_is_used_before_private_key() {
    // A valid secretSeed wins over a privateKey of another key (then the address check
    // decides which one the file claims).
    let mut json = fixture_hotkey_json();
    json.insert("secretSeed".into(), format!("0x{}", "01".repeat(32)).into());
    let other_private = hex::encode(Hotkey::from_seed(&[2u8; 32]).keypair().secret.to_bytes());
    json.insert("privateKey".into(), format!("0x{other_private}").into());
    let hotkey = parse(&serde_json::Value::Object(json).to_string()).unwrap();
    assert_eq!(hotkey.ss58(), HOTKEY_SS58);

    // A secretPhrase wins over everything.
    let phrase_only = format!(
        r#"{{"secretPhrase":"{DEV_MNEMONIC}","secretSeed":"0x{}","cryptoType":1,"ss58Address":"{COLDKEY_SS58}"}}"#,
        "01".repeat(32)
    );
    assert_eq!(parse(&phrase_only).unwrap().ss58(), COLDKEY_SS58);
}

#[test]
fn nacl_coldkey_decrypts_and_wrong_password_is_refused() {
    let location = fixture_location();
    let coldkey_path = location.coldkey_file();
    let head = std::fs::read(&coldkey_path).unwrap();
    assert!(head.starts_with(b"$NACL"));

    // Argon2 run 1 of 2.
    let coldkey = load_keyfile(
        &coldkey_path,
        &PasswordSource::Given(COLDKEY_PASSWORD.to_string()),
    )
    .unwrap();
    assert_eq!(coldkey.ss58(), COLDKEY_SS58);
    assert_eq!(coldkey.public_key(), public(COLDKEY_PUBLIC));
    assert_eq!(
        Hotkey::from_phrase(DEV_MNEMONIC).unwrap().public_key(),
        public(COLDKEY_PUBLIC)
    );

    // Argon2 run 2 of 2.
    let err = load_keyfile(
        &coldkey_path,
        &PasswordSource::Given("correct horse battery stapler".to_string()),
    )
    .unwrap_err();
    match &err {
        KeyError::WrongPassword { path } => assert_eq!(path, &coldkey_path),
        other => panic!("expected WrongPassword, got {other:?}"),
    }
    assert!(err.to_string().contains("wrong password"), "{err}");
    assert!(err.to_string().contains("coldkey"), "{err}");
}

#[test]
fn encrypted_file_without_a_password_source_is_a_clear_error() {
    // Env with the variable unset (the test process never sets it): no argon2 run happens,
    // the error comes before key derivation.
    if std::env::var_os("WEIGHTLOG_WALLET_PASSWORD").is_some() {
        return;
    }
    let err = load_keyfile(&fixture_location().coldkey_file(), &PasswordSource::Env).unwrap_err();
    assert!(matches!(err, KeyError::PasswordUnavailable { .. }), "{err}");
    let message = err.to_string();
    assert!(message.contains("WEIGHTLOG_WALLET_PASSWORD"), "{message}");
    assert!(message.contains("coldkey"), "{message}");
    // Truncated $NACL data fails before key derivation too.
    let err = parse_keyfile(
        b"$NACL0123456789",
        Path::new("/x/coldkey"),
        &PasswordSource::Given("pw".into()),
    )
    .unwrap_err();
    assert!(matches!(err, KeyError::Malformed { .. }), "{err}");
    assert!(format!("{:?}", PasswordSource::Given("hunter2".into())).contains("redacted"));
    assert!(!format!("{:?}", PasswordSource::Given("hunter2".into())).contains("hunter2"));
}

#[test]
fn public_only_files_are_refused() {
    let location = fixture_location();
    for path in [location.coldkeypub_file(), location.hotkey_pub_file()] {
        let err = load_keyfile(&path, &no_password()).unwrap_err();
        assert!(matches!(err, KeyError::PublicKeyOnly { .. }), "{err}");
        let message = err.to_string();
        assert!(message.contains("only a public key"), "{message}");
        assert!(message.contains(&path.display().to_string()), "{message}");
    }
}

#[test]
fn crypto_type_other_than_sr25519_is_refused() {
    let mut json = fixture_hotkey_json();
    json.insert("cryptoType".into(), 0.into());
    let err = parse(&serde_json::Value::Object(json.clone()).to_string()).unwrap_err();
    assert!(
        matches!(err, KeyError::UnsupportedCryptoType { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("ed25519"), "{err}");
    assert!(err.to_string().contains("cryptoType 1"), "{err}");

    json.insert("cryptoType".into(), 2.into());
    assert!(matches!(
        parse(&serde_json::Value::Object(json.clone()).to_string()),
        Err(KeyError::UnsupportedCryptoType { .. })
    ));

    // Absent cryptoType (older wallets) is sr25519.
    json.remove("cryptoType");
    assert_eq!(
        parse(&serde_json::Value::Object(json).to_string())
            .unwrap()
            .ss58(),
        HOTKEY_SS58
    );
}

#[test]
fn address_mismatch_is_refused() {
    let mut json = fixture_hotkey_json();
    json.insert("ss58Address".into(), COLDKEY_SS58.into());
    let err = parse(&serde_json::Value::Object(json).to_string()).unwrap_err();
    match &err {
        KeyError::AddressMismatch {
            in_file, derived, ..
        } => {
            assert_eq!(in_file, COLDKEY_SS58);
            assert_eq!(derived, HOTKEY_SS58);
        }
        other => panic!("expected AddressMismatch, got {other:?}"),
    }
    let message = err.to_string();
    assert!(
        message.contains(COLDKEY_SS58) && message.contains(HOTKEY_SS58),
        "{message}"
    );

    // A mismatching publicKey is caught too.
    let mut json = fixture_hotkey_json();
    json.insert("publicKey".into(), format!("0x{COLDKEY_PUBLIC}").into());
    assert!(matches!(
        parse(&serde_json::Value::Object(json).to_string()),
        Err(KeyError::AddressMismatch { .. })
    ));

    // An ss58Address that is not an address is malformed.
    let mut json = fixture_hotkey_json();
    json.insert("ss58Address".into(), "5Ccyqx".into());
    assert!(matches!(
        parse(&serde_json::Value::Object(json).to_string()),
        Err(KeyError::Malformed { .. })
    ));
}

#[test]
fn garbage_and_legacy_formats_give_clear_errors() {
    let path = Path::new("/test/keyfile");
    let cases: [(&[u8], &str); 5] = [
        (b"", "empty"),
        (b"bottom drive obey lake", "neither"),
        (b"\x00\x01\x02\xff", "neither"),
        (b"{\"secretSeed\": ", "invalid JSON"),
        (b"{\"cryptoType\":1}", "none of the fields"),
    ];
    for (bytes, expected) in cases {
        let err = parse_keyfile(bytes, path, &no_password()).unwrap_err();
        let message = err.to_string();
        assert!(message.contains(expected), "{message}");
        assert!(message.contains("/test/keyfile"), "{message}");
        // Nothing of the file is echoed back.
        assert!(!message.contains("bottom"), "{message}");
    }

    for (bytes, format) in [
        (&b"$ANSIBLE_VAULT;1.1;AES256\n6134..."[..], "Ansible Vault"),
        (&b"gAAAAABkZ3x..."[..], "Fernet"),
    ] {
        let err = parse_keyfile(bytes, path, &no_password()).unwrap_err();
        assert!(
            matches!(err, KeyError::UnsupportedEncryption { .. }),
            "{err}"
        );
        let message = err.to_string();
        assert!(message.contains(format), "{message}");
        assert!(message.contains("btcli"), "{message}");
    }

    // Bad hex in privateKey (with no usable seed) and a bad mnemonic.
    let err = parse(r#"{"privateKey":"0x1234"}"#).unwrap_err();
    assert!(err.to_string().contains("privateKey"), "{err}");
    let err = parse(r#"{"secretPhrase":"not a real mnemonic at all"}"#).unwrap_err();
    assert!(err.to_string().contains("secretPhrase"), "{err}");
    let err = parse(r#"{"secretSeed":"0xnothex"}"#).unwrap_err();
    assert!(err.to_string().contains("secretSeed"), "{err}");
}

#[test]
fn missing_wallet_names_the_path_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let location = WalletLocation::new(dir.path(), "nowallet", "nohotkey");
    let err = load_hotkey(&location, &no_password()).unwrap_err();
    assert!(matches!(err, KeyError::NotFound { .. }), "{err}");
    let message = err.to_string();
    assert!(message.contains("nowallet/hotkeys/nohotkey"), "{message}");
    assert!(message.contains("weightlog keys dev"), "{message}");
    assert!(message.contains("--wallet.path"), "{message}");

    for bad in ["", "..", "a/b"] {
        let location = WalletLocation::new(dir.path(), "w", bad);
        assert!(matches!(
            load_hotkey(&location, &no_password()),
            Err(KeyError::InvalidName { .. })
        ));
    }
    let default = WalletLocation::default();
    assert_eq!(default.name, "default");
    assert_eq!(default.hotkey, "default");
    assert!(default.path.ends_with(".bittensor/wallets"));
}

#[test]
fn dev_hotkey_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let location = WalletLocation::new(dir.path().join("wallets"), "dev", "h1");
    let written = write_dev_hotkey(&location).unwrap();
    let loaded = load_hotkey(&location, &no_password()).unwrap();
    assert_eq!(written.public_key(), loaded.public_key());
    assert_eq!(written.ss58(), loaded.ss58());

    // btcli's field set, with a hex seed that reproduces the key.
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(location.hotkey_file()).unwrap()).unwrap();
    assert_eq!(json["cryptoType"], 1);
    assert_eq!(json["ss58Address"], written.ss58());
    assert_eq!(json["accountId"], json["publicKey"]);
    let seed_hex = json["secretSeed"].as_str().unwrap();
    let mut seed = [0u8; 32];
    hex::decode_to_slice(&seed_hex[2..], &mut seed).unwrap();
    assert_eq!(Hotkey::from_seed(&seed).public_key(), written.public_key());
    assert_eq!(json["privateKey"].as_str().unwrap().len(), 2 + 128);

    // The public file carries no secret and is itself refused as a signing key.
    let pub_json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(location.hotkey_pub_file()).unwrap()).unwrap();
    assert_eq!(pub_json["ss58Address"], written.ss58());
    assert!(pub_json.get("privateKey").is_none() && pub_json.get("secretSeed").is_none());

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(location.hotkey_file())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // Never overwrites.
    let err = write_dev_hotkey(&location).unwrap_err();
    assert!(matches!(err, KeyError::AlreadyExists { .. }), "{err}");
    assert_eq!(
        load_hotkey(&location, &no_password()).unwrap().public_key(),
        written.public_key()
    );

    // A second hotkey in the same wallet is a different random key.
    let second = WalletLocation::new(dir.path().join("wallets"), "dev", "h2");
    assert_ne!(
        write_dev_hotkey(&second).unwrap().public_key(),
        written.public_key()
    );
}

#[test]
fn sign_and_verify_with_schema_public_key() {
    let hotkey = Hotkey::from_seed(&[1u8; 32]);
    let other = Hotkey::generate_dev();
    let message = b"weightlog checkpoint 42";
    let signature = hotkey.sign(message);

    let public = PublicKey::from_ss58(&hotkey.ss58()).unwrap();
    assert_eq!(public, hotkey.public());
    public.verify(message, &signature).unwrap();
    // Randomized signatures: a second one differs but verifies too.
    let again = hotkey.sign(message);
    assert_ne!(again, signature);
    public.verify(message, &again).unwrap();

    let err = other.public().verify(message, &signature).unwrap_err();
    assert_eq!(
        err,
        SignatureError::DoesNotVerify {
            signer: other.ss58()
        }
    );
    assert!(
        public
            .verify(b"weightlog checkpoint 43", &signature)
            .is_err()
    );

    // Keys from the 64-byte schnorrkel secret sign identically verifiable signatures.
    let secret = hotkey.keypair().secret.to_bytes();
    let same = Hotkey::from_schnorrkel_secret(&secret).unwrap();
    assert_eq!(same.public_key(), hotkey.public_key());
    public.verify(message, &same.sign(message)).unwrap();
}
