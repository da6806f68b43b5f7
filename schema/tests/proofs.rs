//! Merkle roots, the frontier, and inclusion and consistency proofs, checked against a naive
//! reference written straight from the RFC 9162 definitions over a slice of leaf hashes.

use std::convert::Infallible;

use weightlog_schema::hash::{Hash, leaf_hash, node_hash};
use weightlog_schema::merkle::{Frontier, MerkleTree, SubtreeSource, root, subtree_root};
use weightlog_schema::proof::{
    ConsistencyProof, InclusionProof, ProofError, ProofGenError, consistency_proof,
    inclusion_proof, verify_consistency, verify_inclusion,
};

/// Largest tree the root and inclusion checks cover, every size and index below it.
const LARGEST_TREE_LEAVES: u64 = 300;
/// Largest new tree of the every-pair consistency check.
const LARGEST_CONSISTENCY_TREE_LEAVES: u64 = 64;
/// Largest tree whose inclusion proofs get every bit flipped.
const LARGEST_TAMPERED_INCLUSION_TREE_LEAVES: u64 = 64;
/// Largest new tree whose consistency proofs get every bit flipped.
const LARGEST_TAMPERED_CONSISTENCY_TREE_LEAVES: u64 = 32;
const HASH_BITS: usize = 256;

fn leaf(index: u64) -> Hash {
    leaf_hash(&index.to_le_bytes())
}

fn leaves(count: u64) -> Vec<Hash> {
    (0..count).map(leaf).collect()
}

fn to_usize(value: u64) -> usize {
    usize::try_from(value).unwrap()
}

/// The RFC split point k: the largest power of two strictly less than `count` (>= 2),
/// found the slow, obvious way.
fn reference_split(count: usize) -> usize {
    let mut split = 1;
    while split * 2 < count {
        split *= 2;
    }
    split
}

/// MTH straight from RFC 9162 section 2.1.1.
fn reference_root(leaves: &[Hash]) -> Hash {
    match leaves {
        [] => Hash::empty_tree(),
        [only] => *only,
        _ => {
            let split = reference_split(leaves.len());
            node_hash(
                &reference_root(&leaves[..split]),
                &reference_root(&leaves[split..]),
            )
        }
    }
}

/// Which side of the running hash a path element goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Left,
    Right,
}

/// PATH(m, D[n]) from RFC 9162 section 2.1.3.1, each element with its side.
fn reference_path(index: usize, leaves: &[Hash]) -> Vec<(Side, Hash)> {
    if leaves.len() <= 1 {
        return Vec::new();
    }
    let split = reference_split(leaves.len());
    if index < split {
        let mut path = reference_path(index, &leaves[..split]);
        path.push((Side::Right, reference_root(&leaves[split..])));
        path
    } else {
        let mut path = reference_path(index - split, &leaves[split..]);
        path.push((Side::Left, reference_root(&leaves[..split])));
        path
    }
}

/// The sides of PATH(m, D[n]) alone: the shape a verifier derives from (index, size).
fn reference_sides(index: u64, size: u64) -> Vec<Side> {
    if size <= 1 {
        return Vec::new();
    }
    let split = reference_split(to_usize(size)) as u64;
    let (mut sides, side) = if index < split {
        (reference_sides(index, split), Side::Right)
    } else {
        (reference_sides(index - split, size - split), Side::Left)
    };
    sides.push(side);
    sides
}

/// SUBPROOF(m, D[n], b) from RFC 9162 section 2.1.4.1.
fn reference_subproof(old_size: usize, leaves: &[Hash], complete: bool) -> Vec<Hash> {
    if old_size == leaves.len() {
        return if complete {
            Vec::new()
        } else {
            vec![reference_root(leaves)]
        };
    }
    let split = reference_split(leaves.len());
    if old_size <= split {
        let mut path = reference_subproof(old_size, &leaves[..split], complete);
        path.push(reference_root(&leaves[split..]));
        path
    } else {
        let mut path = reference_subproof(old_size - split, &leaves[split..], false);
        path.push(reference_root(&leaves[..split]));
        path
    }
}

/// A source over a tree that may hold more leaves than the size under test. It refuses any
/// subtree reaching past `size`, as a log must never read nodes newer than the tree a proof
/// is about.
struct Bounded<'a> {
    tree: &'a MerkleTree,
    size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct BeyondSize {
    level: u32,
    index: u64,
    size: u64,
}

impl std::fmt::Display for BeyondSize {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            formatter,
            "subtree (level {}, index {}) reaches past size {}",
            self.level, self.index, self.size
        )
    }
}

impl SubtreeSource for Bounded<'_> {
    type Error = BeyondSize;

    fn perfect_subtree(&self, level: u32, index: u64) -> Result<Hash, BeyondSize> {
        let end = (index + 1)
            .checked_shl(level)
            .filter(|end| *end >> level == index + 1);
        match end {
            Some(end) if end <= self.size => {
                let Ok(hash) = self.tree.perfect_subtree(level, index);
                Ok(hash)
            }
            _ => Err(BeyondSize {
                level,
                index,
                size: self.size,
            }),
        }
    }
}

fn bounded(tree: &MerkleTree, size: u64) -> Bounded<'_> {
    Bounded { tree, size }
}

fn shown<T, E: std::fmt::Display>(result: Result<T, E>, context: &str) -> T {
    result.unwrap_or_else(|error| panic!("{context}: {error}"))
}

fn flip_bit(hash: &mut Hash, bit: usize) {
    hash.0[bit / 8] ^= 1 << (bit % 8);
}

#[test]
fn roots_agree_with_reference_for_every_size() {
    let all = leaves(LARGEST_TREE_LEAVES);
    let tree = MerkleTree::from_leaves(all.clone());
    let mut pushed = MerkleTree::new();
    let mut frontier = Frontier::new();
    let mut stored_nodes = 0u64;
    for size in 0..=LARGEST_TREE_LEAVES {
        let context = format!("size {size}");
        let expected = reference_root(&all[..to_usize(size)]);
        let source = bounded(&tree, size);
        assert_eq!(shown(root(&source, size), &context), expected, "{context}");
        assert_eq!(tree.root_at(size), expected, "{context}");
        assert_eq!(pushed.len(), size);
        assert_eq!(pushed.root(), expected, "{context}");
        assert_eq!(frontier.size(), size);
        assert_eq!(frontier.root(), expected, "{context}");
        assert_eq!(
            shown(Frontier::from_source(&source, size), &context),
            frontier,
            "{context}"
        );
        if size == LARGEST_TREE_LEAVES {
            break;
        }

        let leaf = all[to_usize(size)];
        pushed.push(leaf);
        let completed = frontier.push(leaf);
        // Exactly the nodes whose last leaf is this one: the leaf and one node per carry.
        assert_eq!(
            completed.len() as u32,
            size.trailing_ones() + 1,
            "{context}"
        );
        assert_eq!(completed[0], (0, size, leaf), "{context}");
        for (position, &(level, index, hash)) in completed.iter().enumerate() {
            assert_eq!(level as usize, position, "{context}");
            assert_eq!((index + 1) << level, size + 1, "{context}");
            let Ok(stored) = tree.perfect_subtree(level, index);
            assert_eq!(hash, stored, "{context}, level {level}, index {index}");
        }
        stored_nodes += completed.len() as u64;
    }
    // Every complete node of the final tree was handed out once.
    let complete_nodes: u64 = (0..u64::BITS)
        .map(|level| LARGEST_TREE_LEAVES >> level)
        .sum();
    assert_eq!(stored_nodes, complete_nodes);
    assert_eq!(pushed, tree);
}

#[test]
fn subtree_root_matches_reference_for_reachable_ranges() {
    let all = leaves(LARGEST_CONSISTENCY_TREE_LEAVES);
    let tree = MerkleTree::from_leaves(all.clone());
    for end in 1..=LARGEST_CONSISTENCY_TREE_LEAVES {
        for start in 0..end {
            if !start.is_multiple_of((end - start).next_power_of_two()) {
                continue;
            }
            let Ok(hash) = subtree_root(&tree, start, end);
            let expected = reference_root(&all[to_usize(start)..to_usize(end)]);
            assert_eq!(hash, expected, "range [{start}, {end})");
        }
    }
    let Ok(empty) = subtree_root(&tree, 5, 5);
    assert_eq!(empty, Hash::empty_tree());
}

#[test]
fn inclusion_proofs_verify_for_every_size_and_index() {
    let all = leaves(LARGEST_TREE_LEAVES);
    let tree = MerkleTree::from_leaves(all.clone());
    for size in 1..=LARGEST_TREE_LEAVES {
        let expected_root = reference_root(&all[..to_usize(size)]);
        let source = bounded(&tree, size);
        for index in 0..size {
            let context = format!("size {size}, index {index}");
            let proof = shown(inclusion_proof(&source, index, size), &context);
            assert_eq!((proof.leaf_index, proof.tree_size), (index, size));
            shown(
                verify_inclusion(&leaf(index), &proof, &expected_root),
                &context,
            );
            if size <= LARGEST_CONSISTENCY_TREE_LEAVES {
                let reference = reference_path(to_usize(index), &all[..to_usize(size)]);
                let hashes: Vec<Hash> = reference.iter().map(|(_, hash)| *hash).collect();
                assert_eq!(proof.path, hashes, "{context}");
            }
        }
    }
}

#[test]
fn consistency_proofs_verify_for_every_pair() {
    let all = leaves(LARGEST_CONSISTENCY_TREE_LEAVES);
    let tree = MerkleTree::from_leaves(all.clone());
    let roots: Vec<Hash> = (0..=all.len())
        .map(|size| reference_root(&all[..size]))
        .collect();
    for new_size in 0..=LARGEST_CONSISTENCY_TREE_LEAVES {
        let source = bounded(&tree, new_size);
        for old_size in 0..=new_size {
            let context = format!("old size {old_size}, new size {new_size}");
            let proof = shown(consistency_proof(&source, old_size, new_size), &context);
            assert_eq!((proof.old_size, proof.new_size), (old_size, new_size));
            let (old, new) = (to_usize(old_size), to_usize(new_size));
            let expected = if old == 0 || old == new {
                Vec::new()
            } else {
                reference_subproof(old, &all[..new], true)
            };
            assert_eq!(proof.path, expected, "{context}");
            shown(
                verify_consistency(&roots[old], &roots[new], &proof),
                &context,
            );
        }
    }
}

#[test]
fn tampered_inclusion_proofs_fail() {
    let all = leaves(LARGEST_TAMPERED_INCLUSION_TREE_LEAVES + 2);
    let tree = MerkleTree::from_leaves(all.clone());
    for size in 1..=LARGEST_TAMPERED_INCLUSION_TREE_LEAVES {
        let root = reference_root(&all[..to_usize(size)]);
        for index in 0..size {
            let context = format!("size {size}, index {index}");
            let Ok(proof) = inclusion_proof(&tree, index, size) else {
                panic!("{context}: no proof");
            };
            let leaf = leaf(index);
            shown(verify_inclusion(&leaf, &proof, &root), &context);

            let mut tampered = proof.clone();
            for position in 0..tampered.path.len() {
                for bit in 0..HASH_BITS {
                    flip_bit(&mut tampered.path[position], bit);
                    let result = verify_inclusion(&leaf, &tampered, &root);
                    assert!(
                        matches!(result, Err(ProofError::RootMismatch { .. })),
                        "{context}, path {position}, bit {bit}: {result:?}"
                    );
                    flip_bit(&mut tampered.path[position], bit);
                }
            }
            let mut tampered_root = root;
            for bit in 0..HASH_BITS {
                flip_bit(&mut tampered_root, bit);
                let result = verify_inclusion(&leaf, &proof, &tampered_root);
                assert!(
                    matches!(result, Err(ProofError::RootMismatch { .. })),
                    "{context}, root bit {bit}: {result:?}"
                );
                flip_bit(&mut tampered_root, bit);
            }

            // Another leaf, or the same leaf claimed at another index, never verifies.
            for other in 0..size + 2 {
                if other == index {
                    continue;
                }
                assert!(verify_inclusion(&all[to_usize(other)], &proof, &root).is_err());
                let moved = InclusionProof {
                    leaf_index: other,
                    ..proof.clone()
                };
                let result = verify_inclusion(&leaf, &moved, &root);
                assert!(result.is_err(), "{context}, claimed index {other}");
                if other >= size {
                    assert_eq!(
                        result,
                        Err(ProofError::IndexOutOfRange {
                            leaf_index: other,
                            tree_size: size
                        })
                    );
                }
            }

            // A wrong tree size is caught unless it gives the path the very same shape; the
            // root alone does not commit to the size, the signed checkpoint pairs them.
            let sides = reference_sides(index, size);
            for other in 0..=LARGEST_TAMPERED_INCLUSION_TREE_LEAVES + 1 {
                if other == size {
                    continue;
                }
                let resized = InclusionProof {
                    tree_size: other,
                    ..proof.clone()
                };
                let result = verify_inclusion(&leaf, &resized, &root);
                let same_shape = index < other && reference_sides(index, other) == sides;
                assert_eq!(
                    result.is_ok(),
                    same_shape,
                    "{context}, claimed size {other}"
                );
            }

            for position in 0..=proof.path.len() {
                let mut longer = proof.clone();
                longer.path.insert(position, leaf);
                assert!(
                    matches!(
                        verify_inclusion(&leaf, &longer, &root),
                        Err(ProofError::InclusionPathTooLong { .. })
                    ),
                    "{context}, extra hash at {position}"
                );
            }
            for position in 0..proof.path.len() {
                let mut shorter = proof.clone();
                shorter.path.remove(position);
                assert!(
                    matches!(
                        verify_inclusion(&leaf, &shorter, &root),
                        Err(ProofError::InclusionPathTooShort { .. })
                    ),
                    "{context}, missing hash at {position}"
                );
            }
        }
    }
}

#[test]
fn tampered_consistency_proofs_fail() {
    let all = leaves(LARGEST_TAMPERED_CONSISTENCY_TREE_LEAVES);
    let tree = MerkleTree::from_leaves(all.clone());
    let roots: Vec<Hash> = (0..=all.len())
        .map(|size| reference_root(&all[..size]))
        .collect();
    for new_size in 0..=LARGEST_TAMPERED_CONSISTENCY_TREE_LEAVES {
        for old_size in 0..=new_size {
            let context = format!("old size {old_size}, new size {new_size}");
            let Ok(proof) = consistency_proof(&tree, old_size, new_size) else {
                panic!("{context}: no proof");
            };
            let old_root = roots[to_usize(old_size)];
            let new_root = roots[to_usize(new_size)];
            shown(verify_consistency(&old_root, &new_root, &proof), &context);

            let mut tampered = proof.clone();
            for position in 0..tampered.path.len() {
                for bit in 0..HASH_BITS {
                    flip_bit(&mut tampered.path[position], bit);
                    let result = verify_consistency(&old_root, &new_root, &tampered);
                    assert!(result.is_err(), "{context}, path {position}, bit {bit}");
                    flip_bit(&mut tampered.path[position], bit);
                }
            }
            for bit in 0..HASH_BITS {
                let mut tampered_old = old_root;
                flip_bit(&mut tampered_old, bit);
                let result = verify_consistency(&tampered_old, &new_root, &proof);
                assert!(result.is_err(), "{context}, old root bit {bit}");
                let mut tampered_new = new_root;
                flip_bit(&mut tampered_new, bit);
                let result = verify_consistency(&old_root, &tampered_new, &proof);
                // Any tree extends the empty tree, so only a zero old size ignores the new
                // root.
                assert_eq!(result.is_ok(), old_size == 0 && new_size != 0, "{context}");
            }

            for position in 0..=proof.path.len() {
                let mut longer = proof.clone();
                longer.path.insert(position, old_root);
                assert!(
                    matches!(
                        verify_consistency(&old_root, &new_root, &longer),
                        Err(ProofError::ConsistencyPathTooLong { .. })
                    ),
                    "{context}, extra hash at {position}"
                );
            }
            for position in 0..proof.path.len() {
                let mut shorter = proof.clone();
                shorter.path.remove(position);
                assert!(
                    matches!(
                        verify_consistency(&old_root, &new_root, &shorter),
                        Err(ProofError::ConsistencyPathTooShort { .. })
                    ),
                    "{context}, missing hash at {position}"
                );
            }

            if old_size != new_size {
                let swapped = ConsistencyProof {
                    old_size: new_size,
                    new_size: old_size,
                    ..proof.clone()
                };
                assert_eq!(
                    verify_consistency(&new_root, &old_root, &swapped),
                    Err(ProofError::OldSizeGreaterThanNew {
                        old_size: new_size,
                        new_size: old_size
                    })
                );
                let result = verify_consistency(&new_root, &old_root, &proof);
                assert!(result.is_err(), "{context}, roots swapped");
            }
        }
    }
}

#[test]
fn bad_requests_and_source_failures_are_errors() {
    let tree = MerkleTree::from_leaves(leaves(20));
    for (index, size) in [(0, 0), (5, 5), (6, 5), (u64::MAX, 5), (u64::MAX, u64::MAX)] {
        let expected = ProofError::IndexOutOfRange {
            leaf_index: index,
            tree_size: size,
        };
        assert_eq!(
            inclusion_proof(&tree, index, size),
            Err(ProofGenError::Proof(expected.clone()))
        );
        let proof = InclusionProof {
            leaf_index: index,
            tree_size: size,
            path: Vec::new(),
        };
        assert_eq!(
            verify_inclusion(&leaf(0), &proof, &Hash::empty_tree()),
            Err(expected)
        );
    }
    assert_eq!(
        consistency_proof(&tree, 6, 5),
        Err(ProofGenError::<Infallible>::Proof(
            ProofError::OldSizeGreaterThanNew {
                old_size: 6,
                new_size: 5
            }
        ))
    );

    // A source that holds only 10 leaves reports the first subtree it cannot serve.
    let source = bounded(&tree, 10);
    let error = inclusion_proof(&source, 3, 20).unwrap_err();
    assert!(matches!(
        error,
        ProofGenError::Source(BeyondSize { size: 10, .. })
    ));
    assert!(
        error
            .to_string()
            .starts_with("reading a Merkle subtree failed: subtree"),
        "{error}"
    );
    let error = consistency_proof(&source, 3, 20).unwrap_err();
    assert!(matches!(
        error,
        ProofGenError::Source(BeyondSize { size: 10, .. })
    ));
    assert!(root(&source, 11).is_err());
    assert!(Frontier::from_source(&source, 11).is_err());

    // Equal sizes and size 0 need empty paths and the right roots.
    let roots: Vec<Hash> = (0..=20).map(|size| tree.root_at(size)).collect();
    let equal = ConsistencyProof {
        old_size: 7,
        new_size: 7,
        path: Vec::new(),
    };
    assert_eq!(verify_consistency(&roots[7], &roots[7], &equal), Ok(()));
    assert_eq!(
        verify_consistency(&roots[7], &roots[8], &equal),
        Err(ProofError::RootMismatch {
            computed: roots[7],
            expected: roots[8]
        })
    );
    let from_empty = ConsistencyProof {
        old_size: 0,
        new_size: 7,
        path: Vec::new(),
    };
    assert_eq!(
        verify_consistency(&roots[0], &roots[7], &from_empty),
        Ok(())
    );
    assert_eq!(
        verify_consistency(&roots[1], &roots[7], &from_empty),
        Err(ProofError::OldRootMismatch {
            computed: Hash::empty_tree(),
            expected: roots[1]
        })
    );
    let empty_path = ConsistencyProof {
        old_size: 3,
        new_size: 7,
        path: Vec::new(),
    };
    assert!(matches!(
        verify_consistency(&roots[3], &roots[7], &empty_path),
        Err(ProofError::ConsistencyPathTooShort { length: 0, .. })
    ));
}

/// A tree whose leaves are all the same hash: every perfect subtree of a level has the same
/// root, so sizes up to `u64::MAX` cost only O(64) hashes and the edges of the size range
/// (level 63, the last index) get exercised.
struct UniformTree {
    /// `perfect[level]` is the root of every perfect subtree of that level.
    perfect: Vec<Hash>,
}

impl UniformTree {
    fn new() -> Self {
        let mut perfect = vec![leaf(0)];
        for level in 1..u64::BITS as usize {
            perfect.push(node_hash(&perfect[level - 1], &perfect[level - 1]));
        }
        Self { perfect }
    }

    /// MTH from the RFC recursion on sizes.
    fn reference_root(&self, size: u64) -> Hash {
        if size.is_power_of_two() {
            return self.perfect[size.trailing_zeros() as usize];
        }
        let split = 1u64 << (63 - size.leading_zeros());
        node_hash(
            &self.perfect[split.trailing_zeros() as usize],
            &self.reference_root(size - split),
        )
    }
}

impl SubtreeSource for UniformTree {
    type Error = Infallible;

    fn perfect_subtree(&self, level: u32, index: u64) -> Result<Hash, Infallible> {
        assert!(
            index <= u64::MAX >> level,
            "subtree (level {level}, index {index})"
        );
        Ok(self.perfect[level as usize])
    }
}

#[test]
fn huge_trees_prove_and_verify() {
    let uniform = UniformTree::new();
    let sizes = [
        1,
        2,
        3,
        (1 << 32) + 12_345,
        (1 << 63) - 1,
        1 << 63,
        (1 << 63) + 1,
        u64::MAX - 1,
        u64::MAX,
    ];
    for size in sizes {
        let root_hash = uniform.reference_root(size);
        let Ok(computed) = root(&uniform, size);
        assert_eq!(computed, root_hash, "size {size}");
        let Ok(frontier) = Frontier::from_source(&uniform, size);
        assert_eq!(frontier.root(), root_hash, "size {size}");
        for index in [0, 1, size / 2, size.saturating_sub(2), size - 1] {
            if index >= size {
                continue;
            }
            let context = format!("size {size}, index {index}");
            let Ok(proof) = inclusion_proof(&uniform, index, size) else {
                panic!("{context}: no proof");
            };
            assert!(proof.path.len() <= 64, "{context}");
            shown(verify_inclusion(&leaf(0), &proof, &root_hash), &context);
            let mut tampered = proof.clone();
            if let Some(first) = tampered.path.first_mut() {
                flip_bit(first, 0);
                assert!(verify_inclusion(&leaf(0), &tampered, &root_hash).is_err());
            }
        }
        for old_size in sizes.into_iter().filter(|old_size| *old_size <= size) {
            let context = format!("old size {old_size}, new size {size}");
            let Ok(proof) = consistency_proof(&uniform, old_size, size) else {
                panic!("{context}: no proof");
            };
            let old_root = uniform.reference_root(old_size);
            shown(verify_consistency(&old_root, &root_hash, &proof), &context);
        }
    }
}

#[test]
fn garbage_proofs_are_rejected_without_panicking() {
    let junk: Vec<Hash> = (0..200).map(|i| leaf(i + 1_000)).collect();
    let sizes = [1, 2, 3, 64, 1 << 63, u64::MAX - 1, u64::MAX];
    for tree_size in sizes {
        for leaf_index in [0, 1, tree_size / 2, tree_size - 1, tree_size, u64::MAX] {
            for length in [0, 1, 2, 63, 64, 65, 127, 128, 129, 200] {
                let proof = InclusionProof {
                    leaf_index,
                    tree_size,
                    path: junk[..length].to_vec(),
                };
                assert!(verify_inclusion(&leaf(0), &proof, &leaf(1)).is_err());
            }
        }
        for old_size in [0, 1, 2, 3, 64, 1 << 63, u64::MAX - 1, u64::MAX] {
            for length in [0, 1, 2, 63, 64, 65, 127, 128, 129, 200] {
                let proof = ConsistencyProof {
                    old_size,
                    new_size: tree_size,
                    path: junk[..length].to_vec(),
                };
                assert!(verify_consistency(&leaf(0), &leaf(1), &proof).is_err());
            }
        }
    }
}

#[test]
fn proofs_round_trip_through_json() {
    let tree = MerkleTree::from_leaves(leaves(11));
    let Ok(inclusion) = inclusion_proof(&tree, 9, 11) else {
        panic!("no inclusion proof");
    };
    let text = serde_json::to_string(&inclusion).unwrap();
    assert!(text.contains(&inclusion.path[0].to_hex()), "{text}");
    assert_eq!(
        serde_json::from_str::<InclusionProof>(&text).unwrap(),
        inclusion
    );

    let Ok(consistency) = consistency_proof(&tree, 5, 11) else {
        panic!("no consistency proof");
    };
    let text = serde_json::to_string(&consistency).unwrap();
    let back: ConsistencyProof = serde_json::from_str(&text).unwrap();
    assert_eq!(back, consistency);
    shown(
        verify_consistency(&tree.root_at(5), &tree.root_at(11), &back),
        "after JSON",
    );
}
