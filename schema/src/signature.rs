//! sr25519 (schnorrkel) public keys and signature verification, as substrate and Bittensor
//! use them: signing context `b"substrate"`, "simple" signatures over the raw message bytes.

use std::fmt;

use crate::ss58::{self, Ss58Error};

/// The schnorrkel signing context of substrate (and of every Bittensor wallet).
pub const SIGNING_CONTEXT: &[u8] = b"substrate";

/// Length of an sr25519 public key, in bytes.
pub const PUBLIC_KEY_BYTES: usize = 32;

/// Length of an sr25519 signature, in bytes.
pub const SIGNATURE_BYTES: usize = 64;

/// An sr25519 public key (a Bittensor account id / hotkey). The bytes are not checked on
/// construction; [`PublicKey::verify`] reports bytes that are not a valid key.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PublicKey(pub [u8; PUBLIC_KEY_BYTES]);

/// Why a signature was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("{ss58} (0x{hex}) is not a valid sr25519 public key: {reason}")]
    InvalidPublicKey {
        ss58: String,
        hex: String,
        reason: String,
    },
    #[error("malformed sr25519 signature: {reason}")]
    MalformedSignature { reason: String },
    #[error("signature does not verify for {signer}")]
    DoesNotVerify { signer: String },
}

impl PublicKey {
    pub fn as_bytes(&self) -> &[u8; PUBLIC_KEY_BYTES] {
        &self.0
    }

    /// Parses a Bittensor (prefix 42) SS58 address.
    pub fn from_ss58(address: &str) -> Result<Self, Ss58Error> {
        ss58::decode_bittensor(address).map(Self)
    }

    /// The Bittensor (prefix 42) SS58 address of this key.
    pub fn to_ss58(&self) -> String {
        ss58::encode_bittensor(&self.0)
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Checks an sr25519 signature over `message` made with [`SIGNING_CONTEXT`]
    /// (schnorrkel `verify_simple`, what substrate's `sr25519::Pair::verify` does).
    pub fn verify(
        &self,
        message: &[u8],
        signature: &[u8; SIGNATURE_BYTES],
    ) -> Result<(), SignatureError> {
        let public = schnorrkel::PublicKey::from_bytes(&self.0).map_err(|err| {
            SignatureError::InvalidPublicKey {
                ss58: self.to_ss58(),
                hex: self.to_hex(),
                reason: err.to_string(),
            }
        })?;
        let signature = schnorrkel::Signature::from_bytes(signature).map_err(|err| {
            SignatureError::MalformedSignature {
                reason: err.to_string(),
            }
        })?;
        public
            .verify_simple(SIGNING_CONTEXT, message, &signature)
            .map_err(|_| SignatureError::DoesNotVerify {
                signer: self.to_ss58(),
            })
    }
}

impl From<[u8; PUBLIC_KEY_BYTES]> for PublicKey {
    fn from(bytes: [u8; PUBLIC_KEY_BYTES]) -> Self {
        Self(bytes)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_ss58())
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_ss58())
    }
}

/// Parses a 64-byte signature written as 128 hex digits, with or without `0x`
/// (how Epistula headers and the fixtures carry signatures).
pub fn signature_from_hex(text: &str) -> Result<[u8; SIGNATURE_BYTES], SignatureError> {
    let digits = text.strip_prefix("0x").unwrap_or(text);
    let mut bytes = [0u8; SIGNATURE_BYTES];
    hex::decode_to_slice(digits, &mut bytes).map_err(|err| SignatureError::MalformedSignature {
        reason: format!("expected 128 hex digits ({err})"),
    })?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    // From shared/chain-fixtures/vectors.json ("epistula_v2" and "btauth_v1"); produced by
    // bittensor-wallet 4.1.1 with the hotkey of seed 0x01 * 32.
    const SIGNER: &str = "5CcyqxXnJucaCnQQvvUg5EPzj1uoNAxACZvzArHw5aVDvgNH";
    const OTHER: &str = "5DfhGyQdFobKM8NsWvEeAKk5EQQgYe9AydgJ7rMB6E1EqRzV";
    const EPISTULA_MESSAGE: &str = "bc2e26c7affbafa5f39d72b32e402a75be5592137db64f1cd9282b54e1fa982f.0b6e2f3a-9c1d-4e5f-8a7b-123456789abc.1760000000000.5DfhGyQdFobKM8NsWvEeAKk5EQQgYe9AydgJ7rMB6E1EqRzV";
    const EPISTULA_SIGNATURE: &str = "0xd8d29bf1d97fcff955892067534a4859610edbb2db603b288b491593357ff56f441660759c4cf011d4881e325086e6181fcd17fb8d7b5ac616d0a50884cdc881";
    const BTAUTH_PAYLOAD: &str = "btauth/1\nsr25519\nPOST\n/score?x=1\nbc2e26c7affbafa5f39d72b32e402a75be5592137db64f1cd9282b54e1fa982f\n1760000000123456789\n5CcyqxXnJucaCnQQvvUg5EPzj1uoNAxACZvzArHw5aVDvgNH\n5DfhGyQdFobKM8NsWvEeAKk5EQQgYe9AydgJ7rMB6E1EqRzV";
    const BTAUTH_SIGNATURE: &str = "0x6a0e3849043d72589dfef087426db07459a577156edb1610fee74acc3fe3e03a3a46fb69d67d46459b675cdf61a73f591b3313335fe1b2d373eec7659f2e9182";

    #[test]
    fn epistula_vector_verifies() {
        let signer = PublicKey::from_ss58(SIGNER).unwrap();
        let signature = signature_from_hex(EPISTULA_SIGNATURE).unwrap();
        signer
            .verify(EPISTULA_MESSAGE.as_bytes(), &signature)
            .unwrap();
    }

    #[test]
    fn changed_message_or_other_signer_fails() {
        let signer = PublicKey::from_ss58(SIGNER).unwrap();
        let signature = signature_from_hex(EPISTULA_SIGNATURE).unwrap();
        let mut changed = EPISTULA_MESSAGE.as_bytes().to_vec();
        changed[0] ^= 1;
        let err = signer.verify(&changed, &signature).unwrap_err();
        assert_eq!(
            err,
            SignatureError::DoesNotVerify {
                signer: SIGNER.to_string()
            }
        );
        assert_eq!(
            err.to_string(),
            format!("signature does not verify for {SIGNER}")
        );

        let other = PublicKey::from_ss58(OTHER).unwrap();
        assert!(matches!(
            other.verify(EPISTULA_MESSAGE.as_bytes(), &signature),
            Err(SignatureError::DoesNotVerify { .. })
        ));

        let mut flipped = signature;
        flipped[5] ^= 0x10;
        assert!(
            signer
                .verify(EPISTULA_MESSAGE.as_bytes(), &flipped)
                .is_err()
        );
    }

    #[test]
    fn btauth_vector_verifies() {
        let signer = PublicKey::from_ss58(SIGNER).unwrap();
        let signature = signature_from_hex(BTAUTH_SIGNATURE).unwrap();
        signer
            .verify(BTAUTH_PAYLOAD.as_bytes(), &signature)
            .unwrap();
        assert!(signer.verify(b"btauth/1", &signature).is_err());
    }

    #[test]
    fn locally_made_signature_verifies_only_for_its_key() {
        let keypair = schnorrkel::Keypair::generate();
        let other = schnorrkel::Keypair::generate();
        let message = b"checkpoint 7";
        let signature = keypair.sign_simple(SIGNING_CONTEXT, message).to_bytes();
        let public = PublicKey(keypair.public.to_bytes());
        public.verify(message, &signature).unwrap();
        assert!(
            PublicKey(other.public.to_bytes())
                .verify(message, &signature)
                .is_err()
        );
        // A different signing context does not verify.
        let foreign = keypair.sign_simple(b"not-substrate", message).to_bytes();
        assert!(public.verify(message, &foreign).is_err());
    }

    #[test]
    fn malformed_inputs_give_clear_errors() {
        let signer = PublicKey::from_ss58(SIGNER).unwrap();
        // Missing schnorrkel marker bit (top bit of the last byte).
        let mut signature = signature_from_hex(EPISTULA_SIGNATURE).unwrap();
        signature[63] &= 0x7f;
        let err = signer
            .verify(EPISTULA_MESSAGE.as_bytes(), &signature)
            .unwrap_err();
        assert!(
            matches!(err, SignatureError::MalformedSignature { .. }),
            "{err}"
        );

        // Bytes that are not a Ristretto point.
        let bogus = PublicKey([0xff; 32]);
        let err = bogus
            .verify(b"x", &signature_from_hex(EPISTULA_SIGNATURE).unwrap())
            .unwrap_err();
        assert!(
            matches!(err, SignatureError::InvalidPublicKey { .. }),
            "{err}"
        );
        assert!(err.to_string().contains(&bogus.to_ss58()));

        assert!(signature_from_hex("0x1234").is_err());
        assert!(signature_from_hex(&"zz".repeat(64)).is_err());
        assert_eq!(
            signature_from_hex(&EPISTULA_SIGNATURE[2..]).unwrap(),
            signature_from_hex(EPISTULA_SIGNATURE).unwrap()
        );
        assert!(PublicKey::from_ss58("not an address").is_err());
        assert_eq!(format!("{signer}"), SIGNER);
        assert_eq!(format!("{signer:?}"), format!("PublicKey({SIGNER})"));
    }
}
