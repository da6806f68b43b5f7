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
    base58_address(&bytes)
}

const BASE58_ALPHABET: &[u8; 58] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

/// 58^5, the largest power of 58 below 2^32: base58 digits are produced five at a time.
const BASE58_POW5: u64 = 58u64.pow(5);

/// 35 bytes are below 2^280 < 58^50: ten groups of five digits hold any address.
const BASE58_GROUPS: usize = 10;

/// Base58 of an address's bytes, the same text as `bs58::encode`, which is generic over
/// the length and costs about a division per input byte per output digit. With the length
/// fixed, the number is held in nine 32-bit limbs and divided by 58^5 ten times, and every
/// division by a constant compiles to a multiplication: a few times faster, which matters
/// because replay encodes a hotkey for every response it folds.
fn base58_address(bytes: &[u8; ADDRESS_BYTES]) -> String {
    // Big-endian limbs; 35 = 3 + 8 * 4, so the first limb holds three bytes.
    let mut limbs = [0u32; 9];
    limbs[0] = u32::from_be_bytes([0, bytes[0], bytes[1], bytes[2]]);
    for (limb, chunk) in limbs[1..].iter_mut().zip(bytes[3..].chunks_exact(4)) {
        *limb = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
    }
    // Groups of five digits, least significant first.
    let mut groups = [0u32; BASE58_GROUPS];
    for group in &mut groups {
        let mut remainder = 0u64;
        for limb in &mut limbs {
            let current = (remainder << 32) | u64::from(*limb);
            *limb = (current / BASE58_POW5) as u32;
            remainder = current % BASE58_POW5;
        }
        *group = remainder as u32;
    }
    // Digits, most significant first.
    let mut digits = [0u8; BASE58_GROUPS * 5];
    for (out, group) in digits.chunks_exact_mut(5).zip(groups.iter().rev()) {
        let mut value = *group;
        for digit in out.iter_mut().rev() {
            *digit = (value % 58) as u8;
            value /= 58;
        }
    }
    // As in every base58: one '1' per leading zero byte, then the number without its
    // leading zero digits.
    let zero_bytes = bytes.iter().take_while(|byte| **byte == 0).count();
    let first_digit = digits
        .iter()
        .position(|digit| *digit != 0)
        .unwrap_or(digits.len());
    let mut text = String::with_capacity(zero_bytes + digits.len() - first_digit);
    text.extend(std::iter::repeat_n('1', zero_bytes));
    text.extend(
        digits[first_digit..]
            .iter()
            .map(|digit| char::from(BASE58_ALPHABET[usize::from(*digit)])),
    );
    text
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
    fn address_base58_agrees_with_bs58() {
        let check = |bytes: [u8; ADDRESS_BYTES]| {
            assert_eq!(
                base58_address(&bytes),
                bs58::encode(bytes).into_string(),
                "{bytes:?}"
            );
        };
        check([0; ADDRESS_BYTES]);
        check([0xff; ADDRESS_BYTES]);
        // Leading zero bytes become leading '1's, one each, before the number's digits.
        for zeros in 0..=ADDRESS_BYTES {
            let mut bytes = [0x5a; ADDRESS_BYTES];
            bytes[..zeros].fill(0);
            check(bytes);
            let mut low = [0; ADDRESS_BYTES];
            low[ADDRESS_BYTES - 1] = 1;
            low[..zeros].fill(0);
            check(low);
        }
        // Every limb boundary, with one byte set.
        for index in 0..ADDRESS_BYTES {
            for value in [1, 57, 58, 0x80, 0xff] {
                let mut bytes = [0; ADDRESS_BYTES];
                bytes[index] = value;
                check(bytes);
            }
        }
        // Pseudo-random addresses (xorshift64*, fixed seed).
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            state.wrapping_mul(0x2545_f491_4f6c_dd1d)
        };
        for _ in 0..20_000 {
            let mut bytes = [0; ADDRESS_BYTES];
            for chunk in bytes.chunks_mut(8) {
                chunk.copy_from_slice(&next().to_le_bytes()[..chunk.len()]);
            }
            // A quarter of them with a leading run of zeros.
            if next() % 4 == 0 {
                let zeros = (next() % 8) as usize;
                bytes[..zeros].fill(0);
            }
            check(bytes);
        }
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
