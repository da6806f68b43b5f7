//! drand quicknet timelock encryption of a CR-v4 weight commit (specs/chain.md section 1).
//!
//! Boneh–Franklin IBE to the quicknet public key, with identity `sha256(round as u64 BE)`,
//! over an AES-GCM key that encrypts the message; the ciphertext is the ark-serialize
//! compressed form of `timelock`'s `TLECiphertext`, which is what the chain's
//! `reveal_crv3_commits` decrypts once the round's pulse is on chain. The message is the
//! SCALE encoding of [`WeightsTlockPayload`].

use ark_serialize::{CanonicalDeserialize, CanonicalSerialize};
use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};
use subxt::ext::codec::{Decode, Encode};
use timelock::curves::drand::TinyBLS381;
use timelock::ibe::fullident::Identity;
use timelock::stream_ciphers::AESGCMStreamCipherProvider;
use timelock::tlock::{EngineBLS, TLECiphertext, tld, tle};

/// drand quicknet's BLS public key (G2, compressed), hex.
pub const QUICKNET_PUBLIC_KEY_HEX: &str = "83cf0f2896adee7eb8b5f01fcad3912212c437e0073e911fb90022d3e760183c8c4b450b6a0a6c3ac6a5776a2d1064510d1fec758c921cc22b0e17e63aaf4bcb5ed66304de9cf809bd274ca73bab4af5a6e9c76a4bc09e76eae8991ef5ece45a";
/// The chain refuses commits larger than this (`MAX_CRV3_COMMIT_SIZE_BYTES`).
pub const COMMIT_BYTES_MAX: usize = 5_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimelockError {
    #[error("timelock encryption failed: {0}")]
    Encrypt(String),
    #[error("timelock ciphertext is malformed: {0}")]
    Ciphertext(String),
    #[error("drand round signature is malformed: {0}")]
    Signature(String),
    #[error("timelock decryption failed (wrong round signature, or a corrupted ciphertext): {0}")]
    Decrypt(String),
    #[error("timelocked commit is {bytes} bytes; the chain accepts at most {COMMIT_BYTES_MAX}")]
    TooLarge { bytes: usize },
}

/// What the chain decrypts at the reveal round (`WeightsTlockPayload` in subtensor):
/// `hotkey` is the SCALE encoding of the AccountId32, i.e. its 32 bytes. Its SCALE form is
/// its fields in order (a struct encodes as the tuple of its fields).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightsTlockPayload {
    pub hotkey: Vec<u8>,
    pub uids: Vec<u16>,
    pub values: Vec<u16>,
    pub version_key: u64,
}

impl WeightsTlockPayload {
    pub fn encode(&self) -> Vec<u8> {
        (&self.hotkey, &self.uids, &self.values, self.version_key).encode()
    }

    /// Decodes a payload, refusing trailing bytes.
    pub fn decode(mut bytes: &[u8]) -> Result<Self, TimelockError> {
        let (hotkey, uids, values, version_key) =
            <(Vec<u8>, Vec<u16>, Vec<u16>, u64)>::decode(&mut bytes)
                .map_err(|err| TimelockError::Ciphertext(format!("payload: {err}")))?;
        if !bytes.is_empty() {
            return Err(TimelockError::Ciphertext(format!(
                "payload has {} trailing bytes",
                bytes.len()
            )));
        }
        Ok(Self {
            hotkey,
            uids,
            values,
            version_key,
        })
    }
}

/// The envelope the Python SDK (`bittensor-drand`'s `encrypt_at_round`) returns: SCALE
/// `(Vec<u8> ciphertext, u64 round)`. The chain call takes the two separately.
pub fn decode_user_data(mut bytes: &[u8]) -> Result<(Vec<u8>, u64), TimelockError> {
    let envelope = <(Vec<u8>, u64)>::decode(&mut bytes)
        .map_err(|err| TimelockError::Ciphertext(format!("envelope: {err}")))?;
    if !bytes.is_empty() {
        return Err(TimelockError::Ciphertext(format!(
            "envelope has {} trailing bytes",
            bytes.len()
        )));
    }
    Ok(envelope)
}

/// The IBE identity of a quicknet round: sha256 of the round number, big-endian.
fn round_identity(round: u64) -> Identity {
    let digest = Sha256::digest(round.to_be_bytes());
    Identity::new(b"", vec![digest.to_vec()])
}

fn quicknet_public_key() -> <TinyBLS381 as EngineBLS>::PublicKeyGroup {
    let bytes = match hex::decode(QUICKNET_PUBLIC_KEY_HEX) {
        Ok(bytes) => bytes,
        Err(_) => unreachable!("the quicknet key constant is valid hex"),
    };
    match <TinyBLS381 as EngineBLS>::PublicKeyGroup::deserialize_compressed(&bytes[..]) {
        Ok(key) => key,
        Err(_) => unreachable!("the quicknet key constant is a valid G2 point"),
    }
}

/// Encrypts `message` so that it can be read with quicknet's signature of `round`.
/// Randomised: two calls give different ciphertexts.
pub fn encrypt_to_round(message: &[u8], round: u64) -> Result<Vec<u8>, TimelockError> {
    let mut secret = zeroize::Zeroizing::new([0u8; 32]);
    OsRng.fill_bytes(secret.as_mut());
    let ciphertext = tle::<TinyBLS381, AESGCMStreamCipherProvider, OsRng>(
        quicknet_public_key(),
        *secret,
        message,
        round_identity(round),
        OsRng,
    )
    .map_err(|err| TimelockError::Encrypt(format!("{err:?}")))?;
    let mut bytes = Vec::new();
    ciphertext
        .serialize_compressed(&mut bytes)
        .map_err(|err| TimelockError::Encrypt(err.to_string()))?;
    Ok(bytes)
}

/// Decrypts a compressed ciphertext with the round's BLS signature (48 bytes, compressed G1),
/// as the chain does at reveal time. Used by tests and audits.
pub fn decrypt_with_signature(
    ciphertext: &[u8],
    signature: &[u8],
) -> Result<Vec<u8>, TimelockError> {
    let ciphertext = TLECiphertext::<TinyBLS381>::deserialize_compressed(ciphertext)
        .map_err(|err| TimelockError::Ciphertext(err.to_string()))?;
    let signature = <TinyBLS381 as EngineBLS>::SignatureGroup::deserialize_compressed(signature)
        .map_err(|err| TimelockError::Signature(err.to_string()))?;
    tld::<TinyBLS381, AESGCMStreamCipherProvider>(ciphertext, signature)
        .map_err(|err| TimelockError::Decrypt(format!("{err:?}")))
}

/// The `commit` argument of `commit_timelocked_mechanism_weights`: the payload, SCALE
/// encoded and encrypted to `round`.
pub fn encrypt_weights(
    payload: &WeightsTlockPayload,
    round: u64,
) -> Result<Vec<u8>, TimelockError> {
    let commit = encrypt_to_round(&payload.encode(), round)?;
    if commit.len() > COMMIT_BYTES_MAX {
        return Err(TimelockError::TooLarge {
            bytes: commit.len(),
        });
    }
    Ok(commit)
}
