//! Properties the fuzz targets check (fuzz/fuzz_targets) and ordinary tests run with a
//! fixed budget (schema/tests/properties.rs): one copy of each, so `cargo test` and
//! `cargo fuzz` prove the same thing. Each panics when its property fails.

use crate::merkle::MerkleTree;
use crate::proof::{consistency_proof, inclusion_proof, verify_consistency, verify_inclusion};
use crate::{codec, leaf_hash};

/// Largest tree [`proofs`] builds, in leaves.
pub const TREE_LEAVES_MAX: u64 = 2048;

/// Arbitrary bytes through validation and decoding: never a panic, and whatever decodes
/// re-encodes to the same bytes (the canonical form). The bytes as checkpoint text: never
/// a panic.
pub fn decode(data: &[u8]) {
    let _ = codec::access(data);
    if let Ok(event) = codec::decode(data) {
        let again = codec::encode(&event).expect("a decoded event encodes");
        assert_eq!(again, data, "decode accepted non-canonical bytes");
    }
    let _ = crate::SignedCheckpoint::parse(&String::from_utf8_lossy(data));
}

/// Arbitrary tree sizes and indices: valid inclusion and consistency proofs verify, and a
/// proof with one bit flipped, or a root with one bit flipped, fails.
pub fn proofs(size: u16, index: u16, old: u16, flip: u16, bit: u8) {
    let size = u64::from(size) % TREE_LEAVES_MAX + 1;
    let tree = MerkleTree::from_leaves((0..size).map(|i| leaf_hash(&i.to_le_bytes())).collect());
    let root = tree.root_at(size);
    let byte = usize::from(bit) % 32;
    let mask = 1 << (bit % 8);

    let index = u64::from(index) % size;
    let mut proof = inclusion_proof(&tree, index, size).expect("index is in range");
    let leaf = leaf_hash(&index.to_le_bytes());
    verify_inclusion(&leaf, &proof, &root).expect("a valid inclusion proof verifies");
    let mut bad_root = root;
    bad_root.0[byte] ^= mask;
    assert!(verify_inclusion(&leaf, &proof, &bad_root).is_err());
    if !proof.path.is_empty() {
        let position = usize::from(flip) % proof.path.len();
        proof.path[position].0[byte] ^= mask;
        assert!(verify_inclusion(&leaf, &proof, &root).is_err());
    }

    let old = u64::from(old) % (size + 1);
    let mut proof = consistency_proof(&tree, old, size).expect("old <= new");
    let old_root = tree.root_at(old);
    verify_consistency(&old_root, &root, &proof).expect("a valid consistency proof verifies");
    if !proof.path.is_empty() {
        let position = usize::from(flip) % proof.path.len();
        proof.path[position].0[byte] ^= mask;
        assert!(verify_consistency(&old_root, &root, &proof).is_err());
    }
}
