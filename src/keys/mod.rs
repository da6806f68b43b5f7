//! Keys and wallets: the sr25519 hotkey that signs checkpoints and extrinsics, loaded from a
//! btcli-format wallet (`~/.bittensor/wallets/<wallet>/hotkeys/<hotkey>`).
//!
//! - [`Hotkey`]: an sr25519 keypair; signs with the substrate context.
//! - [`load_hotkey`] / [`load_keyfile`]: read plain or `$NACL`-encrypted keyfiles.
//! - [`write_dev_hotkey`]: create a fresh, unencrypted development hotkey.
//!
//! Secrets are never printed: `Debug` of every type here shows public data only.

mod keyfile;
mod nacl;
mod wallet;

use std::fmt;
use std::path::PathBuf;

use rand_core::{OsRng, RngCore};
use schnorrkel::{ExpansionMode, MiniSecretKey};
use sha2::Sha512;
use weightlog_schema::signature::{self, PublicKey, SIGNATURE_BYTES};
use weightlog_schema::ss58;
use zeroize::{Zeroize, Zeroizing};

pub use keyfile::parse_keyfile;
pub use wallet::{
    DEFAULT_HOTKEY, DEFAULT_WALLET, PASSWORD_ENV, PasswordSource, WalletLocation, load_hotkey,
    load_keyfile, write_dev_hotkey,
};

/// Length of a mini secret key (the `secretSeed` of a keyfile), in bytes.
pub const SEED_BYTES: usize = 32;
/// Length of an expanded schnorrkel secret (the `privateKey` of a keyfile), in bytes.
pub const SECRET_KEY_BYTES: usize = 64;

/// PBKDF2 rounds of substrate-bip39 (mnemonic entropy -> mini secret key).
const BIP39_PBKDF2_ROUNDS: u32 = 2048;

/// Everything that can go wrong loading or writing keys. Messages name the file and the fix.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "keyfile {} does not exist; create a development hotkey with `weightlog keys dev`, or \
         point --wallet.path / --wallet.name / --wallet.hotkey at an existing wallet",
        path.display()
    )]
    NotFound { path: PathBuf },
    #[error("cannot read keyfile {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write keyfile {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("refusing to overwrite existing keyfile {}; choose another --wallet.hotkey name or move the file away", path.display())]
    AlreadyExists { path: PathBuf },
    #[error(
        "cannot locate the default wallet directory ~/.bittensor/wallets: $HOME is not set; \
         pass --wallet.path"
    )]
    NoHomeDir,
    #[error("invalid wallet or hotkey name `{name}`: {reason}")]
    InvalidName { name: String, reason: &'static str },
    #[error(
        "keyfile {} is encrypted with the legacy {format} format, which weightlog does not read; \
         re-encrypt it with a current btcli (which writes the $NACL format), or regenerate the key \
         from its mnemonic with `btcli wallet regen-coldkey` / `btcli wallet regen-hotkey`",
        path.display()
    )]
    UnsupportedEncryption { path: PathBuf, format: &'static str },
    #[error(
        "keyfile {} is encrypted; set WEIGHTLOG_WALLET_PASSWORD or run interactively",
        path.display()
    )]
    PasswordUnavailable { path: PathBuf },
    #[error("cannot read the password for keyfile {}: {source}", path.display())]
    PasswordPrompt {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "wrong password for keyfile {} (or the encrypted file is corrupted)",
        path.display()
    )]
    WrongPassword { path: PathBuf },
    #[error("cannot derive the decryption key for keyfile {}: {reason}", path.display())]
    KeyDerivation { path: PathBuf, reason: String },
    #[error(
        "{} is not a Bittensor keyfile: expected a JSON object or a $NACL-encrypted file ({detail})",
        path.display()
    )]
    UnrecognizedFormat { path: PathBuf, detail: String },
    #[error("keyfile {} is malformed: {reason}", path.display())]
    Malformed { path: PathBuf, reason: String },
    #[error(
        "keyfile {} holds only a public key{}; it cannot sign. Point at the secret keyfile \
         (hotkeys/<name>, not hotkeys/<name>pub.txt or coldkeypub.txt)",
        path.display(),
        ss58.as_deref().map(|a| format!(" ({a})")).unwrap_or_default()
    )]
    PublicKeyOnly { path: PathBuf, ss58: Option<String> },
    #[error(
        "keyfile {} has cryptoType {crypto_type}; only sr25519 keys (cryptoType 1) are supported",
        path.display()
    )]
    UnsupportedCryptoType { path: PathBuf, crypto_type: String },
    #[error(
        "keyfile {} says its address is {in_file}, but its secret derives {derived}; the file is \
         inconsistent or edited, refusing to use it",
        path.display()
    )]
    AddressMismatch {
        path: PathBuf,
        in_file: String,
        derived: String,
    },
    #[error("invalid BIP-39 mnemonic: {reason}")]
    InvalidMnemonic { reason: String },
    #[error("invalid sr25519 secret key: {reason}")]
    InvalidSecretKey { reason: String },
}

/// An sr25519 hotkey (a schnorrkel keypair). Signs with the substrate signing context, so its
/// signatures verify with [`weightlog_schema::signature::PublicKey::verify`] and on chain.
#[derive(Clone)]
pub struct Hotkey {
    keypair: schnorrkel::Keypair,
}

impl Hotkey {
    /// From a 32-byte mini secret key (a keyfile's `secretSeed`), expanded in Ed25519 mode:
    /// the same key as substrate's `sr25519::Pair::from_seed` and btcli's `create_from_seed`.
    pub fn from_seed(seed: &[u8; SEED_BYTES]) -> Self {
        let mini = match MiniSecretKey::from_bytes(seed) {
            Ok(mini) => mini,
            // from_bytes only checks the length, which the array type fixes.
            Err(_) => unreachable!("a 32-byte mini secret key is always accepted"),
        };
        Self {
            keypair: mini.expand_to_keypair(ExpansionMode::Ed25519),
        }
    }

    /// From a BIP-39 mnemonic (English, no password), the substrate-bip39 way: the mini secret
    /// key is the first 32 bytes of PBKDF2-HMAC-SHA512(entropy, salt "mnemonic", 2048 rounds).
    /// Derivation paths (`//hard`, `/soft`, `///password`) are not supported.
    pub fn from_phrase(phrase: &str) -> Result<Self, KeyError> {
        let mnemonic =
            bip39::Mnemonic::parse_in(bip39::Language::English, phrase).map_err(|err| {
                KeyError::InvalidMnemonic {
                    reason: err.to_string(),
                }
            })?;
        let (mut entropy, length) = mnemonic.to_entropy_array();
        let mut derived = Zeroizing::new([0u8; 64]);
        pbkdf2::pbkdf2_hmac::<Sha512>(
            &entropy[..length],
            b"mnemonic",
            BIP39_PBKDF2_ROUNDS,
            derived.as_mut(),
        );
        entropy.zeroize();
        let mut seed = Zeroizing::new([0u8; SEED_BYTES]);
        seed.copy_from_slice(&derived[..SEED_BYTES]);
        Ok(Self::from_seed(&seed))
    }

    /// From a 64-byte expanded schnorrkel secret (key || nonce; a keyfile's `privateKey`).
    pub fn from_schnorrkel_secret(secret: &[u8; SECRET_KEY_BYTES]) -> Result<Self, KeyError> {
        let secret = schnorrkel::SecretKey::from_bytes(secret).map_err(|err| {
            KeyError::InvalidSecretKey {
                reason: err.to_string(),
            }
        })?;
        Ok(Self {
            keypair: secret.to_keypair(),
        })
    }

    /// A fresh random key from the operating system's entropy source (for development).
    pub fn generate_dev() -> Self {
        Self::from_seed(&random_seed())
    }

    pub fn public_key(&self) -> [u8; 32] {
        self.keypair.public.to_bytes()
    }

    /// The public key as the schema crate's verifier type.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.public_key())
    }

    /// The Bittensor (prefix 42) SS58 address of this key.
    pub fn ss58(&self) -> String {
        ss58::encode_bittensor(&self.public_key())
    }

    /// An sr25519 signature over `message` with the substrate signing context. Signatures are
    /// randomized: signing the same message twice gives different bytes, both valid.
    pub fn sign(&self, message: &[u8]) -> [u8; SIGNATURE_BYTES] {
        self.keypair
            .sign_simple(signature::SIGNING_CONTEXT, message)
            .to_bytes()
    }

    /// The underlying schnorrkel keypair, for signers that need it (e.g. extrinsic signing).
    pub fn keypair(&self) -> &schnorrkel::Keypair {
        &self.keypair
    }

    /// The 64-byte expanded secret (key || nonce), as written to a keyfile's `privateKey`.
    fn secret_bytes(&self) -> Zeroizing<[u8; SECRET_KEY_BYTES]> {
        Zeroizing::new(self.keypair.secret.to_bytes())
    }
}

impl fmt::Debug for Hotkey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hotkey")
            .field("ss58", &self.ss58())
            .finish_non_exhaustive()
    }
}

fn random_seed() -> Zeroizing<[u8; SEED_BYTES]> {
    let mut seed = Zeroizing::new([0u8; SEED_BYTES]);
    OsRng.fill_bytes(seed.as_mut());
    seed
}
