//! The `$NACL` keyfile encryption of bittensor-wallet (btcli >= 6 / btwallet):
//! `"$NACL" || nonce (24) || secretbox`, where the secretbox is libsodium's combined form
//! (Poly1305 tag first, then the XSalsa20 ciphertext), and the key is libsodium
//! `crypto_pwhash` Argon2i v1.3 with the SENSITIVE limits (t = 8, 512 MiB, p = 1) over the
//! password and a fixed salt.
//!
//! `crypto_secretbox` 0.1 uses the same tag-first layout as libsodium's `crypto_secretbox_easy`,
//! so its `decrypt` takes the bytes after the nonce unchanged.

use std::path::Path;

use argon2::{Algorithm, Argon2, Params, Version};
use crypto_secretbox::aead::{Aead, KeyInit};
use crypto_secretbox::{Key, Nonce, XSalsa20Poly1305};
use zeroize::Zeroizing;

use super::KeyError;

/// The prefix of a `$NACL` keyfile.
pub(crate) const MAGIC: &[u8] = b"$NACL";

/// The fixed Argon2 salt of bittensor-wallet's `$NACL` format.
const SALT: [u8; 16] = [
    0x13, 0x71, 0x83, 0xdf, 0xf1, 0x5a, 0x09, 0xbc, 0x9c, 0x90, 0xb5, 0x51, 0x87, 0x39, 0xe9, 0xb1,
];

/// libsodium `crypto_pwhash_MEMLIMIT_SENSITIVE` (512 MiB), in KiB.
const MEMORY_KIB: u32 = 524_288;
/// libsodium `crypto_pwhash_OPSLIMIT_SENSITIVE`.
const ITERATIONS: u32 = 8;
/// libsodium's Argon2 always runs with one lane.
const LANES: u32 = 1;

const KEY_BYTES: usize = 32;
const NONCE_BYTES: usize = 24;
const TAG_BYTES: usize = 16;

/// Derives the secretbox key from a password (about 512 MiB of memory and a few seconds).
fn derive_key(password: &[u8], path: &Path) -> Result<Zeroizing<[u8; KEY_BYTES]>, KeyError> {
    let kdf_error = |err: argon2::Error| KeyError::KeyDerivation {
        path: path.to_path_buf(),
        reason: err.to_string(),
    };
    let params = Params::new(MEMORY_KIB, ITERATIONS, LANES, Some(KEY_BYTES)).map_err(kdf_error)?;
    let argon2 = Argon2::new(Algorithm::Argon2i, Version::V0x13, params);
    let mut key = Zeroizing::new([0u8; KEY_BYTES]);
    argon2
        .hash_password_into(password, &SALT, key.as_mut())
        .map_err(kdf_error)?;
    Ok(key)
}

/// Refuses a `$NACL` body too short to hold a nonce and an authentication tag.
fn check_framing(body: &[u8], path: &Path) -> Result<(), KeyError> {
    if body.len() < NONCE_BYTES + TAG_BYTES {
        return Err(KeyError::Malformed {
            path: path.to_path_buf(),
            reason: format!(
                "$NACL data is {} bytes, shorter than a nonce and an authentication tag ({})",
                body.len(),
                NONCE_BYTES + TAG_BYTES
            ),
        });
    }
    Ok(())
}

/// Opens the body of a `$NACL` file (everything after the magic) with an already derived key.
fn open_with_key(
    body: &[u8],
    key: &[u8; KEY_BYTES],
    path: &Path,
) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    check_framing(body, path)?;
    let (nonce, sealed) = body.split_at(NONCE_BYTES);
    let cipher = XSalsa20Poly1305::new(Key::from_slice(key));
    // Authentication failure is the only error of `decrypt`: with a well-formed file it
    // means the password is wrong.
    cipher
        .decrypt(Nonce::from_slice(nonce), sealed)
        .map(Zeroizing::new)
        .map_err(|_| KeyError::WrongPassword {
            path: path.to_path_buf(),
        })
}

/// Decrypts a whole `$NACL` keyfile (including the magic) with `password`.
pub(crate) fn decrypt(
    data: &[u8],
    password: &str,
    path: &Path,
) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let body = data
        .strip_prefix(MAGIC)
        .ok_or_else(|| KeyError::Malformed {
            path: path.to_path_buf(),
            reason: "missing the $NACL prefix".to_string(),
        })?;
    // Check the framing before spending seconds and 512 MiB on the key derivation.
    check_framing(body, path)?;
    let key = derive_key(password.as_bytes(), path)?;
    open_with_key(body, &key, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Seals like libsodium's `crypto_secretbox_easy`: tag first, then the ciphertext.
    fn seal_with_key(
        plaintext: &[u8],
        key: &[u8; KEY_BYTES],
        nonce: &[u8; NONCE_BYTES],
    ) -> Vec<u8> {
        let cipher = XSalsa20Poly1305::new(Key::from_slice(key));
        let mut body = nonce.to_vec();
        body.extend(cipher.encrypt(Nonce::from_slice(nonce), plaintext).unwrap());
        body
    }

    #[test]
    fn open_round_trip_and_wrong_key() {
        let path = Path::new("/tmp/x");
        let key = [9u8; KEY_BYTES];
        let body = seal_with_key(b"{\"a\":1}", &key, &[3u8; NONCE_BYTES]);
        assert_eq!(body.len(), NONCE_BYTES + TAG_BYTES + 7);
        assert_eq!(
            open_with_key(&body, &key, path).unwrap().as_slice(),
            b"{\"a\":1}"
        );
        assert!(matches!(
            open_with_key(&body, &[8u8; KEY_BYTES], path),
            Err(KeyError::WrongPassword { .. })
        ));
        let mut tampered = body.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(matches!(
            open_with_key(&tampered, &key, path),
            Err(KeyError::WrongPassword { .. })
        ));
    }

    #[test]
    fn layout_is_nonce_then_tag_then_ciphertext() {
        // libsodium's crypto_secretbox_easy output is tag || ciphertext; check that the
        // crate's combined output splits the same way, so the file needs no reordering.
        use crypto_secretbox::aead::AeadInPlace;
        let key = [1u8; KEY_BYTES];
        let nonce = [2u8; NONCE_BYTES];
        let body = seal_with_key(b"xyz", &key, &nonce);
        assert_eq!(body.len(), NONCE_BYTES + TAG_BYTES + 3);
        let cipher = XSalsa20Poly1305::new(Key::from_slice(&key));
        let tag =
            crypto_secretbox::Tag::clone_from_slice(&body[NONCE_BYTES..NONCE_BYTES + TAG_BYTES]);
        let mut buffer = body[NONCE_BYTES + TAG_BYTES..].to_vec();
        cipher
            .decrypt_in_place_detached(Nonce::from_slice(&nonce), b"", &mut buffer, &tag)
            .unwrap();
        assert_eq!(buffer, b"xyz");
    }

    #[test]
    fn truncated_files_fail_without_key_derivation() {
        let path = Path::new("/tmp/x");
        let err = decrypt(b"$NACLshort", "pw", path).unwrap_err();
        assert!(matches!(err, KeyError::Malformed { .. }), "{err}");
        assert!(err.to_string().contains("/tmp/x"));
    }
}
