//! The one hash type of the log and the RFC 6962-shaped leaf and node hashes (blake3).

use std::fmt;

/// Length of every hash in the log, in bytes.
pub const HASH_BYTES: usize = 32;

/// Domain-separation prefix of a leaf hash (RFC 6962 section 2.1).
pub const LEAF_PREFIX: u8 = 0x00;
/// Domain-separation prefix of an interior node hash (RFC 6962 section 2.1).
pub const NODE_PREFIX: u8 = 0x01;

/// A 32-byte blake3 digest: event ids, leaves, Merkle nodes and roots.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    rkyv::Archive,
    rkyv::Serialize,
    rkyv::Deserialize,
)]
#[rkyv(derive(Debug, PartialEq, Eq))]
pub struct Hash(pub [u8; HASH_BYTES]);

impl Hash {
    pub fn as_bytes(&self) -> &[u8; HASH_BYTES] {
        &self.0
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 hex digits, with or without a `0x` prefix.
    pub fn from_hex(text: &str) -> Result<Self, HashParseError> {
        let digits = text.strip_prefix("0x").unwrap_or(text);
        let mut bytes = [0u8; HASH_BYTES];
        hex::decode_to_slice(digits, &mut bytes).map_err(|_| HashParseError {
            text: text.chars().take(80).collect(),
        })?;
        Ok(Self(bytes))
    }

    /// The hash of the empty tree: blake3 of the empty string (RFC 6962 MTH({})).
    pub fn empty_tree() -> Self {
        Self(*blake3::hash(b"").as_bytes())
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", self.to_hex())
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not a hash: expected 64 hex digits")]
pub struct HashParseError {
    pub text: String,
}

/// Hash of one leaf: blake3(0x00 || canonical event bytes).
pub fn leaf_hash(event_bytes: &[u8]) -> Hash {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&[LEAF_PREFIX]);
    hasher.update(event_bytes);
    Hash(*hasher.finalize().as_bytes())
}

/// Hash of an interior node: blake3(0x01 || left || right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&[NODE_PREFIX]);
    hasher.update(&left.0);
    hasher.update(&right.0);
    Hash(*hasher.finalize().as_bytes())
}

/// Event id: blake3 of the canonical event bytes, without a domain prefix. It keys the
/// dedupe index; it is deliberately a different value from the leaf hash of the same bytes.
pub fn event_id(event_bytes: &[u8]) -> Hash {
    Hash(*blake3::hash(event_bytes).as_bytes())
}

// The JSON form of a hash is its hex string, which is what tools in other languages expect.
impl serde::Serialize for Hash {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for Hash {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Hash::from_hex(&text).map_err(serde::de::Error::custom)
    }
}

impl schemars::JsonSchema for Hash {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Hash".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "32-byte blake3 digest as 64 lower-case hex digits",
            "pattern": "^[0-9a-f]{64}$"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaf_node_and_id_are_domain_separated() {
        let bytes = [7u8; 64];
        let leaf = leaf_hash(&bytes);
        let id = event_id(&bytes);
        assert_ne!(leaf, id);
        let left = Hash(bytes[..32].try_into().unwrap());
        let right = Hash(bytes[32..].try_into().unwrap());
        // A node over (left, right) must differ from a leaf over the same 64 bytes.
        assert_ne!(node_hash(&left, &right), leaf);
    }

    #[test]
    fn hex_round_trip_and_errors() {
        let hash = leaf_hash(b"x");
        assert_eq!(Hash::from_hex(&hash.to_hex()).unwrap(), hash);
        assert_eq!(
            Hash::from_hex(&format!("0x{}", hash.to_hex())).unwrap(),
            hash
        );
        assert!(Hash::from_hex("abc").is_err());
        assert!(Hash::from_hex(&"zz".repeat(32)).is_err());
    }
}
