//! Keyfile contents: format detection (plain JSON, `$NACL`, legacy encryptions) and the
//! btwallet reader precedence `secretPhrase` -> `secretSeed` -> `privateKey`.

use std::path::Path;

use serde::Deserialize;
use weightlog_schema::ss58;
use zeroize::{Zeroize, Zeroizing};

use super::wallet::PasswordSource;
use super::{Hotkey, KeyError, SECRET_KEY_BYTES, SEED_BYTES, nacl};

/// `cryptoType` of an sr25519 key (0 is ed25519).
const CRYPTO_TYPE_SR25519: u64 = 1;

/// Legacy encryption formats of older bittensor wallets, recognised only to name them.
const LEGACY_FORMATS: [(&[u8], &str); 2] = [
    (b"$ANSIBLE_VAULT", "Ansible Vault ($ANSIBLE_VAULT)"),
    (b"gAAAAA", "Fernet (gAAAAA...)"),
];

/// The fields of a btcli JSON keyfile that matter here; unknown fields are ignored.
/// Secret strings are wiped when the value is dropped.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyfileJson {
    secret_phrase: Option<String>,
    secret_seed: Option<String>,
    private_key: Option<String>,
    ss58_address: Option<String>,
    public_key: Option<String>,
    account_id: Option<String>,
    crypto_type: Option<serde_json::Value>,
}

impl Drop for KeyfileJson {
    fn drop(&mut self) {
        self.secret_phrase.zeroize();
        self.secret_seed.zeroize();
        self.private_key.zeroize();
    }
}

/// Reads a keyfile's bytes into a hotkey. `path` is used in error messages only; an
/// encrypted (`$NACL`) file asks `password` for its password.
pub fn parse_keyfile(
    bytes: &[u8],
    path: &Path,
    password: &PasswordSource,
) -> Result<Hotkey, KeyError> {
    if bytes.starts_with(nacl::MAGIC) {
        let password = password.resolve(path)?;
        let plaintext = nacl::decrypt(bytes, &password, path)?;
        return parse_plain(&plaintext, path);
    }
    for (magic, format) in LEGACY_FORMATS {
        if bytes.starts_with(magic) {
            return Err(KeyError::UnsupportedEncryption {
                path: path.to_path_buf(),
                format,
            });
        }
    }
    parse_plain(bytes, path)
}

/// Parses an unencrypted keyfile: a JSON object.
fn parse_plain(bytes: &[u8], path: &Path) -> Result<Hotkey, KeyError> {
    let text = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let start = text.iter().position(|b| !b.is_ascii_whitespace());
    if start.map(|i| text[i]) != Some(b'{') {
        // Never echo the content: it may be a secret in a format we do not read.
        let detail = if start.is_none() {
            "the file is empty".to_string()
        } else {
            "it starts with neither `{` nor `$NACL`; bare-mnemonic and bare-hex legacy \
             keyfiles are not supported"
                .to_string()
        };
        return Err(KeyError::UnrecognizedFormat {
            path: path.to_path_buf(),
            detail,
        });
    }
    let json: KeyfileJson = serde_json::from_slice(text).map_err(|err| KeyError::Malformed {
        path: path.to_path_buf(),
        reason: describe_json_error(&err),
    })?;
    check_crypto_type(&json, path)?;
    let hotkey = derive(&json, path)?;
    check_address(&json, &hotkey, path)?;
    Ok(hotkey)
}

/// A JSON error without the offending text for syntax errors (it could be secret material).
fn describe_json_error(err: &serde_json::Error) -> String {
    use serde_json::error::Category;
    match err.classify() {
        Category::Data => format!("unexpected JSON content: {err}"),
        Category::Syntax | Category::Eof | Category::Io => format!(
            "invalid JSON at line {} column {}",
            err.line(),
            err.column()
        ),
    }
}

fn check_crypto_type(json: &KeyfileJson, path: &Path) -> Result<(), KeyError> {
    match &json.crypto_type {
        None | Some(serde_json::Value::Null) => Ok(()),
        Some(serde_json::Value::Number(n)) if n.as_u64() == Some(CRYPTO_TYPE_SR25519) => Ok(()),
        Some(other) => {
            let name = match other.as_u64() {
                Some(0) => " (ed25519)".to_string(),
                _ => String::new(),
            };
            Err(KeyError::UnsupportedCryptoType {
                path: path.to_path_buf(),
                crypto_type: format!("{other}{name}"),
            })
        }
    }
}

/// `0x`-prefixed (or bare) hex of exactly `N` bytes.
fn parse_hex<const N: usize>(text: &str) -> Option<Zeroizing<[u8; N]>> {
    let digits = text.strip_prefix("0x").unwrap_or(text);
    let mut out = Zeroizing::new([0u8; N]);
    hex::decode_to_slice(digits, out.as_mut()).ok()?;
    Some(out)
}

fn non_empty(field: &Option<String>) -> Option<&str> {
    field.as_deref().filter(|s| !s.is_empty())
}

fn derive(json: &KeyfileJson, path: &Path) -> Result<Hotkey, KeyError> {
    let malformed = |reason: String| KeyError::Malformed {
        path: path.to_path_buf(),
        reason,
    };
    if let Some(phrase) = non_empty(&json.secret_phrase) {
        return Hotkey::from_phrase(phrase)
            .map_err(|err| malformed(format!("secretPhrase: {err}")));
    }
    // btwallet wrote `secretSeed` as raw bytes when they happened to be valid UTF-8, so a
    // non-hex seed is a known quirk: fall back to `privateKey`.
    let seed_text = non_empty(&json.secret_seed);
    if let Some(seed) = seed_text.and_then(parse_hex::<SEED_BYTES>) {
        return Ok(Hotkey::from_seed(&seed));
    }
    if let Some(private) = non_empty(&json.private_key) {
        let secret = parse_hex::<SECRET_KEY_BYTES>(private).ok_or_else(|| {
            malformed("privateKey is not 0x followed by 128 hex digits (64 bytes)".to_string())
        })?;
        return Hotkey::from_schnorrkel_secret(&secret)
            .map_err(|err| malformed(format!("privateKey: {err}")));
    }
    if seed_text.is_some() {
        return Err(malformed(
            "secretSeed is not 0x followed by 64 hex digits and there is no privateKey to fall \
             back to"
                .to_string(),
        ));
    }
    if json.ss58_address.is_some() || json.public_key.is_some() || json.account_id.is_some() {
        return Err(KeyError::PublicKeyOnly {
            path: path.to_path_buf(),
            ss58: json.ss58_address.clone(),
        });
    }
    Err(malformed(
        "it has none of the fields secretPhrase, secretSeed, privateKey".to_string(),
    ))
}

/// The derived key must match the address (and public key) the file claims.
fn check_address(json: &KeyfileJson, hotkey: &Hotkey, path: &Path) -> Result<(), KeyError> {
    let derived = hotkey.public_key();
    let mismatch = |in_file: String| KeyError::AddressMismatch {
        path: path.to_path_buf(),
        in_file,
        derived: hotkey.ss58(),
    };
    if let Some(address) = non_empty(&json.ss58_address) {
        let (_, public) = ss58::decode(address).map_err(|err| KeyError::Malformed {
            path: path.to_path_buf(),
            reason: format!("ss58Address: {err}"),
        })?;
        if public != derived {
            return Err(mismatch(address.to_string()));
        }
    }
    // publicKey / accountId are only cross-checked when they parse; btwallet ignores them.
    for field in [&json.public_key, &json.account_id] {
        if let Some(public) = non_empty(field).and_then(parse_hex::<32>)
            && *public != derived
        {
            return Err(mismatch(format!(
                "{} (publicKey/accountId)",
                ss58::encode_bittensor(&public)
            )));
        }
    }
    Ok(())
}
