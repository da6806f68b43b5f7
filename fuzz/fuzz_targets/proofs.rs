//! Arbitrary tree sizes and indices: valid proofs verify, and a mutated proof or root fails.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weightlog_schema::merkle::MerkleTree;
use weightlog_schema::proof::{consistency_proof, inclusion_proof, verify_consistency, verify_inclusion};
use weightlog_schema::leaf_hash;

/// Largest tree the target builds, in leaves.
const TREE_LEAVES_MAX: u64 = 2048;

fuzz_target!(|input: (u16, u16, u16, u16, u8)| {
    let (size, index, old, flip, bit) = input;
    let size = u64::from(size) % TREE_LEAVES_MAX + 1;
    let tree = MerkleTree::from_leaves((0..size).map(|i| leaf_hash(&i.to_le_bytes())).collect());
    let root = tree.root_at(size);

    let index = u64::from(index) % size;
    let mut proof = inclusion_proof(&tree, index, size).expect("in range");
    let leaf = leaf_hash(&index.to_le_bytes());
    verify_inclusion(&leaf, &proof, &root).expect("a valid inclusion proof verifies");
    let mut bad_root = root;
    bad_root.0[usize::from(bit) % 32] ^= 1 << (bit % 8);
    assert!(verify_inclusion(&leaf, &proof, &bad_root).is_err());
    if !proof.path.is_empty() {
        let position = usize::from(flip) % proof.path.len();
        proof.path[position].0[usize::from(bit) % 32] ^= 1 << (bit % 8);
        assert!(verify_inclusion(&leaf, &proof, &root).is_err());
    }

    let old = u64::from(old) % (size + 1);
    let mut proof = consistency_proof(&tree, old, size).expect("old <= new");
    let old_root = tree.root_at(old);
    verify_consistency(&old_root, &root, &proof).expect("a valid consistency proof verifies");
    if !proof.path.is_empty() {
        let position = usize::from(flip) % proof.path.len();
        proof.path[position].0[usize::from(bit) % 32] ^= 1 << (bit % 8);
        assert!(verify_consistency(&old_root, &root, &proof).is_err());
    }
});
