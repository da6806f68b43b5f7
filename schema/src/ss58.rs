//! SS58 addresses (the substrate base58 account format), one-byte-prefix form only.
//!
//! Layout of the decoded bytes: `prefix (1) || public key (32) || checksum (2)`, where the
//! checksum is the first two bytes of blake2b-512(`b"SS58PRE"` || prefix || public key).
//! One-byte prefixes cover network ids 0..=63; Bittensor uses 42.

use blake2::{Blake2b512, Digest};

/// The SS58 network prefix of Bittensor (and of generic substrate chains).
pub const BITTENSOR_PREFIX: u8 = 42;

/// The largest network id that fits the one-byte prefix form.
pub const MAX_SIMPLE_PREFIX: u8 = 63;

/// Length of an sr25519 / ed25519 public key (account id), in bytes.
pub const PUBLIC_KEY_BYTES: usize = 32;

/// Length of the checksum appended to an address, in bytes.
pub const CHECKSUM_BYTES: usize = 2;

/// Length of a decoded one-byte-prefix address: prefix, public key, checksum.
pub const ADDRESS_BYTES: usize = 1 + PUBLIC_KEY_BYTES + CHECKSUM_BYTES;

const CHECKSUM_PREAMBLE: &[u8] = b"SS58PRE";

/// Longest piece of an offending address quoted back in an error message.
const QUOTE_CHARS: usize = 80;

/// Why a string is not an acceptable SS58 address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Ss58Error {
    #[error("`{address}` is not an SS58 address: it is not valid base58 ({reason})")]
    BadBase58 { address: String, reason: String },
    #[error(
        "`{address}` is not an SS58 address: it decodes to {length} bytes, expected {ADDRESS_BYTES} \
         (1 prefix byte, a 32-byte public key and a 2-byte checksum)"
    )]
    WrongLength { address: String, length: usize },
    #[error(
        "`{address}` is not a valid SS58 address: its checksum does not match (mistyped or truncated?)"
    )]
    BadChecksum { address: String },
    #[error(
        "`{address}` uses an unsupported SS58 prefix form (first byte {first_byte:#04x}); only \
         one-byte prefixes 0..=63 are supported"
    )]
    UnsupportedPrefix { address: String, first_byte: u8 },
    #[error(
        "`{address}` is an SS58 address for network prefix {found}, expected prefix {expected} (Bittensor)"
    )]
    WrongPrefix {
        address: String,
        expected: u8,
        found: u8,
    },
}

fn quote(address: &str) -> String {
    address.chars().take(QUOTE_CHARS).collect()
}

fn checksum(prefix: u8, public: &[u8; PUBLIC_KEY_BYTES]) -> [u8; CHECKSUM_BYTES] {
    let mut hasher = Blake2b512::new();
    hasher.update(CHECKSUM_PREAMBLE);
    hasher.update([prefix]);
    hasher.update(public);
    let digest = hasher.finalize();
    [digest[0], digest[1]]
}

/// Encodes a public key as an SS58 address with a one-byte network prefix.
///
/// # Panics
///
/// If `prefix` is above [`MAX_SIMPLE_PREFIX`] (63): such network ids need the two-byte form,
/// which this module does not implement. Prefixes are program constants, never user input.
pub fn encode(public: &[u8; PUBLIC_KEY_BYTES], prefix: u8) -> String {
    assert!(
        prefix <= MAX_SIMPLE_PREFIX,
        "SS58 prefix {prefix} needs the two-byte form, which is not supported"
    );
    let mut bytes = [0u8; ADDRESS_BYTES];
    bytes[0] = prefix;
    bytes[1..1 + PUBLIC_KEY_BYTES].copy_from_slice(public);
    bytes[1 + PUBLIC_KEY_BYTES..].copy_from_slice(&checksum(prefix, public));
    bs58::encode(bytes).into_string()
}

/// Encodes a public key as a Bittensor (prefix 42) SS58 address.
pub fn encode_bittensor(public: &[u8; PUBLIC_KEY_BYTES]) -> String {
    encode(public, BITTENSOR_PREFIX)
}

/// Decodes a one-byte-prefix SS58 address into its network prefix and public key, checking
/// the base58 alphabet, the length and the checksum.
pub fn decode(address: &str) -> Result<(u8, [u8; PUBLIC_KEY_BYTES]), Ss58Error> {
    let bytes = bs58::decode(address)
        .into_vec()
        .map_err(|err| Ss58Error::BadBase58 {
            address: quote(address),
            reason: err.to_string(),
        })?;
    let first_byte = bytes.first().copied().unwrap_or(0);
    // A two-byte-prefix address (first byte 64..=127) with a 32-byte key is one byte longer;
    // name that form rather than reporting a bare length mismatch.
    let two_byte_form =
        (MAX_SIMPLE_PREFIX + 1..0x80).contains(&first_byte) && bytes.len() == ADDRESS_BYTES + 1;
    if two_byte_form || (bytes.len() == ADDRESS_BYTES && first_byte > MAX_SIMPLE_PREFIX) {
        return Err(Ss58Error::UnsupportedPrefix {
            address: quote(address),
            first_byte,
        });
    }
    if bytes.len() != ADDRESS_BYTES {
        return Err(Ss58Error::WrongLength {
            address: quote(address),
            length: bytes.len(),
        });
    }
    let prefix = bytes[0];
    let mut public = [0u8; PUBLIC_KEY_BYTES];
    public.copy_from_slice(&bytes[1..1 + PUBLIC_KEY_BYTES]);
    if bytes[1 + PUBLIC_KEY_BYTES..] != checksum(prefix, &public) {
        return Err(Ss58Error::BadChecksum {
            address: quote(address),
        });
    }
    Ok((prefix, public))
}

/// Decodes an SS58 address that must carry the Bittensor prefix (42).
pub fn decode_bittensor(address: &str) -> Result<[u8; PUBLIC_KEY_BYTES], Ss58Error> {
    let (prefix, public) = decode(address)?;
    if prefix != BITTENSOR_PREFIX {
        return Err(Ss58Error::WrongPrefix {
            address: quote(address),
            expected: BITTENSOR_PREFIX,
            found: prefix,
        });
    }
    Ok(public)
}

#[cfg(test)]
mod tests {
    use super::*;

    // From shared/chain-fixtures/vectors.json ("keys").
    const SEED_01_SS58: &str = "5CcyqxXnJucaCnQQvvUg5EPzj1uoNAxACZvzArHw5aVDvgNH";
    const SEED_01_PUBLIC: &str = "189dac29296d31814dc8c56cf3d36a0543372bba7538fa322a4aebfebc39e056";
    const DEV_PHRASE_SS58: &str = "5DfhGyQdFobKM8NsWvEeAKk5EQQgYe9AydgJ7rMB6E1EqRzV";
    const DEV_PHRASE_PUBLIC: &str =
        "46ebddef8cd9bb167dc30878d7113b7e168e6f0646beffd77d69d39bad76b47a";

    fn public(hex_text: &str) -> [u8; 32] {
        let mut out = [0u8; 32];
        hex::decode_to_slice(hex_text, &mut out).unwrap();
        out
    }

    #[test]
    fn fixture_addresses_round_trip() {
        for (address, hex_text) in [
            (SEED_01_SS58, SEED_01_PUBLIC),
            (DEV_PHRASE_SS58, DEV_PHRASE_PUBLIC),
        ] {
            let key = public(hex_text);
            assert_eq!(encode_bittensor(&key), address);
            assert_eq!(encode(&key, BITTENSOR_PREFIX), address);
            assert_eq!(decode(address).unwrap(), (BITTENSOR_PREFIX, key));
            assert_eq!(decode_bittensor(address).unwrap(), key);
        }
    }

    #[test]
    fn other_prefixes_round_trip_and_are_refused_by_decode_bittensor() {
        let key = public(SEED_01_PUBLIC);
        for prefix in [0u8, 2, 63] {
            let address = encode(&key, prefix);
            assert_eq!(decode(&address).unwrap(), (prefix, key));
            let err = decode_bittensor(&address).unwrap_err();
            assert_eq!(
                err,
                Ss58Error::WrongPrefix {
                    address: address.clone(),
                    expected: 42,
                    found: prefix
                }
            );
            assert!(err.to_string().contains(&address));
        }
    }

    #[test]
    #[should_panic(expected = "two-byte form")]
    fn encode_refuses_two_byte_prefixes() {
        encode(&[0u8; 32], 64);
    }

    #[test]
    fn corrupted_addresses_fail() {
        // One character changed (still valid base58): the checksum catches it.
        let mut chars: Vec<char> = SEED_01_SS58.chars().collect();
        chars[10] = if chars[10] == 'a' { 'b' } else { 'a' };
        let changed: String = chars.into_iter().collect();
        let err = decode(&changed).unwrap_err();
        assert!(matches!(err, Ss58Error::BadChecksum { .. }), "{err}");
        assert!(err.to_string().contains(&changed));
        assert!(err.to_string().contains("checksum"));

        // Characters outside the base58 alphabet.
        let bad_alphabet = SEED_01_SS58.replace('x', "0");
        let err = decode(&bad_alphabet).unwrap_err();
        assert!(matches!(err, Ss58Error::BadBase58 { .. }), "{err}");
        assert!(err.to_string().contains("base58"));

        // Truncated.
        let err = decode(&SEED_01_SS58[..40]).unwrap_err();
        assert!(matches!(err, Ss58Error::WrongLength { .. }), "{err}");
        assert!(err.to_string().contains("expected 35"));

        // Empty.
        assert!(matches!(
            decode("").unwrap_err(),
            Ss58Error::WrongLength { length: 0, .. }
        ));

        // Two-byte prefix form (first byte 64..=127) and the reserved range.
        for (first, len) in [(0x40u8, 36), (0x7f, 36), (0x80, 35), (0xff, 35)] {
            let mut bytes = vec![first];
            bytes.resize(len, 7);
            let address = bs58::encode(bytes).into_string();
            assert!(matches!(
                decode(&address).unwrap_err(),
                Ss58Error::UnsupportedPrefix { .. }
            ));
        }

        // Swapping checksum bytes of a valid address.
        let mut bytes = bs58::decode(DEV_PHRASE_SS58).into_vec().unwrap();
        bytes.swap(33, 34);
        let swapped = bs58::encode(bytes).into_string();
        assert!(matches!(
            decode(&swapped).unwrap_err(),
            Ss58Error::BadChecksum { .. }
        ));
    }

    #[test]
    fn long_inputs_are_quoted_shortened() {
        let long = "1".repeat(500);
        let message = decode(&long).unwrap_err().to_string();
        assert!(message.len() < 300, "{message}");
    }
}
