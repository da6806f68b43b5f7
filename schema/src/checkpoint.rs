//! Signed checkpoints: `(origin, size, root)` in a small text form, signed with the
//! validator's sr25519 hotkey so any Bittensor tool can check it from the SS58 address.
//!
//! The text form (every line ends with `\n`):
//!
//! ```text
//! weightlog/netuid-7/5Ccy…DVvgNH/2f1c…          <- origin
//! 1042                                          <- size: number of events
//! 9a3e…                                          <- root: 64 hex digits
//!                                               <- blank line
//! sig 5CcyqxXnJucaCnQQvvUg5EPzj1uoNAxACZvzArHw5aVDvgNH 0x…128 hex…
//! ```
//!
//! The signature covers [`CHECKPOINT_DOMAIN`] followed by the three body lines. The domain
//! prefix keeps a checkpoint signature from ever being valid as an Epistula request or an
//! extrinsic payload signed by the same hotkey, and vice versa.

use crate::hash::Hash;
use crate::signature::PublicKey;

/// Prefix of every signed checkpoint message (domain separation).
pub const CHECKPOINT_DOMAIN: &str = "weightlog/checkpoint/v1\n";
/// Longest origin accepted, in bytes.
pub const ORIGIN_BYTES_MAX: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error("checkpoint origin is invalid: {reason}")]
    BadOrigin { reason: String },
    #[error("checkpoint text is malformed at line {line}: {reason}")]
    Malformed { line: u32, reason: String },
    #[error("checkpoint for size {size} is signed by {found}, expected {expected}")]
    WrongSigner {
        size: u64,
        found: String,
        expected: String,
    },
    #[error(
        "checkpoint for size {size}: signature does not verify for {signer}; the checkpoint was changed after signing"
    )]
    BadSignature { size: u64, signer: String },
}

/// The unsigned body of a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Names the log: `weightlog/netuid-N/<hotkey ss58>/<log id hex>`.
    pub origin: String,
    /// Number of events the root commits to.
    pub size: u64,
    pub root: Hash,
}

/// A checkpoint with the signer's public key and signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    pub checkpoint: Checkpoint,
    pub signer: PublicKey,
    pub signature: [u8; 64],
}

impl Checkpoint {
    pub fn new(origin: String, size: u64, root: Hash) -> Result<Self, CheckpointError> {
        check_origin(&origin)?;
        Ok(Self { origin, size, root })
    }

    /// The three body lines.
    pub fn body(&self) -> String {
        format!("{}\n{}\n{}\n", self.origin, self.size, self.root.to_hex())
    }

    /// The exact bytes the hotkey signs.
    pub fn signed_message(&self) -> Vec<u8> {
        let mut message = CHECKPOINT_DOMAIN.as_bytes().to_vec();
        message.extend_from_slice(self.body().as_bytes());
        message
    }

    /// Attaches a signature made by `sign` over [`Self::signed_message`].
    pub fn sign(self, signer: PublicKey, sign: impl FnOnce(&[u8]) -> [u8; 64]) -> SignedCheckpoint {
        let signature = sign(&self.signed_message());
        SignedCheckpoint {
            checkpoint: self,
            signer,
            signature,
        }
    }
}

fn check_origin(origin: &str) -> Result<(), CheckpointError> {
    let reason = if origin.is_empty() {
        "it is empty"
    } else if origin.len() > ORIGIN_BYTES_MAX {
        "it is longer than 256 bytes"
    } else if origin.chars().any(|c| c.is_control() || c.is_whitespace()) {
        "it holds whitespace or a control character"
    } else {
        return Ok(());
    };
    Err(CheckpointError::BadOrigin {
        reason: reason.into(),
    })
}

impl SignedCheckpoint {
    /// The full text form: body, blank line, signature line.
    pub fn to_text(&self) -> String {
        format!(
            "{}\nsig {} 0x{}\n",
            self.checkpoint.body(),
            self.signer.to_ss58(),
            hex::encode(self.signature)
        )
    }

    /// Parses the text form. This checks syntax only; call [`Self::verify`] to check the
    /// signature.
    pub fn parse(text: &str) -> Result<Self, CheckpointError> {
        let malformed = |line: u32, reason: &str| CheckpointError::Malformed {
            line,
            reason: reason.to_string(),
        };
        let Some(text) = text.strip_suffix('\n') else {
            return Err(malformed(1, "the text does not end with a newline"));
        };
        let lines: Vec<&str> = text.split('\n').collect();
        let [origin, size, root, blank, signature_line] = lines.as_slice() else {
            return Err(malformed(
                1,
                "expected 5 lines: origin, size, root, a blank line, a signature line",
            ));
        };
        check_origin(origin).map_err(|error| malformed(1, &error.to_string()))?;
        // Canonical decimal only: a size with a sign or leading zeros would sign a different
        // body than it displays.
        let size_valid = !size.is_empty()
            && size.bytes().all(|b| b.is_ascii_digit())
            && (size.len() == 1 || !size.starts_with('0'));
        let size: u64 = size_valid
            .then(|| size.parse().ok())
            .flatten()
            .ok_or_else(|| malformed(2, "size is not a canonical decimal number"))?;
        let root_is_lower_hex = root.len() == 64
            && root
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !root_is_lower_hex {
            return Err(malformed(3, "root is not 64 lower-case hex digits"));
        }
        let root = Hash::from_hex(root).map_err(|error| malformed(3, &error.to_string()))?;
        if !blank.is_empty() {
            return Err(malformed(4, "expected a blank line after the body"));
        }
        let parts: Vec<&str> = signature_line.split(' ').collect();
        let ["sig", address, signature_hex] = parts.as_slice() else {
            return Err(malformed(5, "expected `sig <ss58> 0x<signature hex>`"));
        };
        let signer =
            PublicKey::from_ss58(address).map_err(|error| malformed(5, &error.to_string()))?;
        let mut signature = [0u8; 64];
        let digits = signature_hex
            .strip_prefix("0x")
            .ok_or_else(|| malformed(5, "signature must start with 0x"))?;
        // One text per checkpoint: lower-case hex only, like the root.
        if digits.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(malformed(5, "signature must be lower-case hex"));
        }
        hex::decode_to_slice(digits, &mut signature)
            .map_err(|_| malformed(5, "signature is not 128 hex digits"))?;
        Ok(Self {
            checkpoint: Checkpoint {
                origin: origin.to_string(),
                size,
                root,
            },
            signer,
            signature,
        })
    }

    /// Checks that `expected_signer` signed this checkpoint.
    pub fn verify(&self, expected_signer: &PublicKey) -> Result<(), CheckpointError> {
        let size = self.checkpoint.size;
        if &self.signer != expected_signer {
            return Err(CheckpointError::WrongSigner {
                size,
                found: self.signer.to_ss58(),
                expected: expected_signer.to_ss58(),
            });
        }
        self.signer
            .verify(&self.checkpoint.signed_message(), &self.signature)
            .map_err(|_| CheckpointError::BadSignature {
                size,
                signer: self.signer.to_ss58(),
            })
    }

    /// Checks the signature against an SS58 address.
    pub fn verify_ss58(&self, expected_address: &str) -> Result<(), CheckpointError> {
        let expected = PublicKey::from_ss58(expected_address).map_err(|error| {
            CheckpointError::WrongSigner {
                size: self.checkpoint.size,
                found: self.signer.to_ss58(),
                expected: format!("{expected_address} ({error})"),
            }
        })?;
        self.verify(&expected)
    }
}
