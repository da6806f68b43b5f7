//! Inclusion and consistency proofs: generation (RFC 9162 section 2.1.3.1 and 2.1.4.1) over
//! any [`SubtreeSource`], and verification (RFC 9162 section 2.1.3.2 and 2.1.4.2).
//!
//! Verification takes untrusted proofs: every path, size and index a peer can send is
//! answered with a [`ProofError`], never a panic.

use std::convert::Infallible;
use std::iter;

use serde::{Deserialize, Serialize};

use crate::hash::{Hash, node_hash};
use crate::merkle::{SubtreeSource, split_point, subtree_root};

/// Why a proof could not be made or does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("leaf index {leaf_index} is out of range for a tree of size {tree_size}")]
    IndexOutOfRange { leaf_index: u64, tree_size: u64 },
    #[error("old tree size {old_size} is greater than new tree size {new_size}")]
    OldSizeGreaterThanNew { old_size: u64, new_size: u64 },
    #[error(
        "inclusion path has {length} hashes, more than leaf {leaf_index} of a tree of size \
         {tree_size} needs"
    )]
    InclusionPathTooLong {
        length: u64,
        leaf_index: u64,
        tree_size: u64,
    },
    #[error(
        "inclusion path has {length} hashes, fewer than leaf {leaf_index} of a tree of size \
         {tree_size} needs"
    )]
    InclusionPathTooShort {
        length: u64,
        leaf_index: u64,
        tree_size: u64,
    },
    #[error(
        "consistency path has {length} hashes, more than a proof from size {old_size} to size \
         {new_size} needs"
    )]
    ConsistencyPathTooLong {
        length: u64,
        old_size: u64,
        new_size: u64,
    },
    #[error(
        "consistency path has {length} hashes, fewer than a proof from size {old_size} to size \
         {new_size} needs"
    )]
    ConsistencyPathTooShort {
        length: u64,
        old_size: u64,
        new_size: u64,
    },
    #[error("computed root {computed} does not match expected root {expected}")]
    RootMismatch { computed: Hash, expected: Hash },
    #[error("computed old root {computed} does not match expected old root {expected}")]
    OldRootMismatch { computed: Hash, expected: Hash },
}

/// Why [`inclusion_proof`] or [`consistency_proof`] failed: bad arguments, or the source
/// could not deliver a subtree.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofGenError<E> {
    #[error(transparent)]
    Proof(#[from] ProofError),
    #[error("reading a Merkle subtree failed: {0}")]
    Source(E),
}

/// An in-memory source cannot fail, so its only error is a bad argument.
impl From<ProofGenError<Infallible>> for ProofError {
    fn from(error: ProofGenError<Infallible>) -> Self {
        match error {
            ProofGenError::Proof(error) => error,
            ProofGenError::Source(never) => match never {},
        }
    }
}

/// Proof that the leaf at `leaf_index` is in the tree of `tree_size` leaves: the RFC 9162
/// audit path, sibling hashes from the leaf up to the root. In JSON the hashes are hex
/// strings, as [`Hash`](struct@crate::Hash) serializes itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InclusionProof {
    pub leaf_index: u64,
    pub tree_size: u64,
    pub path: Vec<Hash>,
}

/// Proof that the tree of `old_size` leaves is a prefix of the tree of `new_size` leaves:
/// the RFC 9162 consistency path, from the lowest level up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsistencyProof {
    pub old_size: u64,
    pub new_size: u64,
    pub path: Vec<Hash>,
}

/// The RFC 9162 audit path PATH(m, D\[n\]) for `leaf_index` m in the tree of `tree_size` n
/// leaves, built from perfect subtrees of `src`. Only subtrees inside `[0, tree_size)` are
/// read, so `src` may hold a larger tree.
pub fn inclusion_proof<S: SubtreeSource>(
    src: &S,
    leaf_index: u64,
    tree_size: u64,
) -> Result<InclusionProof, ProofGenError<S::Error>> {
    if leaf_index >= tree_size {
        return Err(ProofError::IndexOutOfRange {
            leaf_index,
            tree_size,
        }
        .into());
    }
    // Walk the RFC recursion top-down: at each split the leaf's side is kept and the other
    // side's root is a path element. The RFC lists the path leaf-up, hence the reverse.
    let mut path = Vec::new();
    let (mut start, mut end) = (0, tree_size);
    while end - start > 1 {
        let middle = start + split_point(end - start);
        if leaf_index < middle {
            path.push(subtree_root(src, middle, end).map_err(ProofGenError::Source)?);
            end = middle;
        } else {
            path.push(subtree_root(src, start, middle).map_err(ProofGenError::Source)?);
            start = middle;
        }
    }
    path.reverse();
    Ok(InclusionProof {
        leaf_index,
        tree_size,
        path,
    })
}

/// The RFC 9162 consistency path PROOF(m, D\[n\]) from the tree of `old_size` m leaves to the
/// tree of `new_size` n leaves, built from perfect subtrees of `src`. Only subtrees inside
/// `[0, new_size)` are read.
///
/// Equal sizes and `old_size` 0 give an empty path: the RFC defines no proof for them, and
/// there is nothing to prove (the empty tree is a prefix of every tree).
pub fn consistency_proof<S: SubtreeSource>(
    src: &S,
    old_size: u64,
    new_size: u64,
) -> Result<ConsistencyProof, ProofGenError<S::Error>> {
    if old_size > new_size {
        return Err(ProofError::OldSizeGreaterThanNew { old_size, new_size }.into());
    }
    let mut path = Vec::new();
    if old_size != 0 && old_size != new_size {
        // SUBPROOF(m, D[n], b) walked top-down over the range [start, end): `complete` is
        // the RFC's b, true while the old tree's root is the root of the range itself, in
        // which case the verifier already knows it and it is left out of the path.
        let (mut start, mut end) = (0, new_size);
        let mut complete = true;
        while old_size != end {
            let middle = start + split_point(end - start);
            if old_size <= middle {
                path.push(subtree_root(src, middle, end).map_err(ProofGenError::Source)?);
                end = middle;
            } else {
                path.push(subtree_root(src, start, middle).map_err(ProofGenError::Source)?);
                start = middle;
                complete = false;
            }
        }
        if !complete {
            path.push(subtree_root(src, start, end).map_err(ProofGenError::Source)?);
        }
        path.reverse();
    }
    Ok(ConsistencyProof {
        old_size,
        new_size,
        path,
    })
}

/// Checks that `leaf` is at `proof.leaf_index` in the tree of `proof.tree_size` leaves whose
/// root is `root` (RFC 9162 section 2.1.3.2).
///
/// The walk tracks the index of the current node (`index`) and of the last node of its level
/// (`last_index`); their bits say on which side each path element goes and when a level has
/// no sibling to the right, so the path length is checked as a side effect.
pub fn verify_inclusion(
    leaf: &Hash,
    proof: &InclusionProof,
    root: &Hash,
) -> Result<(), ProofError> {
    let InclusionProof {
        leaf_index,
        tree_size,
        ref path,
    } = *proof;
    if leaf_index >= tree_size {
        return Err(ProofError::IndexOutOfRange {
            leaf_index,
            tree_size,
        });
    }
    let length = path.len() as u64;
    let mut index = leaf_index;
    let mut last_index = tree_size - 1;
    let mut computed = *leaf;
    for sibling in path {
        if last_index == 0 {
            return Err(ProofError::InclusionPathTooLong {
                length,
                leaf_index,
                tree_size,
            });
        }
        if index % 2 == 1 || index == last_index {
            computed = node_hash(sibling, &computed);
            // A left child with no right sibling: it is carried up unchanged until it
            // becomes a right child, so skip those levels.
            while index.is_multiple_of(2) && index != 0 {
                index /= 2;
                last_index /= 2;
            }
        } else {
            computed = node_hash(&computed, sibling);
        }
        index /= 2;
        last_index /= 2;
    }
    if last_index != 0 {
        return Err(ProofError::InclusionPathTooShort {
            length,
            leaf_index,
            tree_size,
        });
    }
    if computed != *root {
        return Err(ProofError::RootMismatch {
            computed,
            expected: *root,
        });
    }
    Ok(())
}

/// Checks that the tree of `proof.old_size` leaves with root `old_root` is a prefix of the
/// tree of `proof.new_size` leaves with root `new_root` (RFC 9162 section 2.1.4.2).
///
/// Equal sizes need an empty path and equal roots. Old size 0 needs an empty path and
/// `old_root` equal to [`Hash::empty_tree`]; any new root extends it.
pub fn verify_consistency(
    old_root: &Hash,
    new_root: &Hash,
    proof: &ConsistencyProof,
) -> Result<(), ProofError> {
    let ConsistencyProof {
        old_size,
        new_size,
        ref path,
    } = *proof;
    let length = path.len() as u64;
    if old_size > new_size {
        return Err(ProofError::OldSizeGreaterThanNew { old_size, new_size });
    }
    if old_size == 0 || old_size == new_size {
        if !path.is_empty() {
            return Err(ProofError::ConsistencyPathTooLong {
                length,
                old_size,
                new_size,
            });
        }
        if old_size == 0 && *old_root != Hash::empty_tree() {
            return Err(ProofError::OldRootMismatch {
                computed: Hash::empty_tree(),
                expected: *old_root,
            });
        }
        if old_size == new_size && old_root != new_root {
            return Err(ProofError::RootMismatch {
                computed: *old_root,
                expected: *new_root,
            });
        }
        return Ok(());
    }

    // When the old tree is perfect its root is a node of the new tree the path leaves out,
    // because the verifier has it already.
    let old_is_perfect = old_size.is_power_of_two();
    let mut hashes = iter::once(old_root)
        .filter(|_| old_is_perfect)
        .chain(path.iter());
    let Some(first) = hashes.next() else {
        return Err(ProofError::ConsistencyPathTooShort {
            length,
            old_size,
            new_size,
        });
    };
    // `old_index` and `new_index` are the indices of the last node of the old and the new
    // tree on the current level; `old_computed` and `new_computed` the roots being rebuilt.
    let mut old_index = old_size - 1;
    let mut new_index = new_size - 1;
    // Levels where the old tree's last node is a right child are inside the first hash.
    while old_index % 2 == 1 {
        old_index /= 2;
        new_index /= 2;
    }
    let mut old_computed = *first;
    let mut new_computed = *first;
    for hash in hashes {
        if new_index == 0 {
            return Err(ProofError::ConsistencyPathTooLong {
                length,
                old_size,
                new_size,
            });
        }
        if old_index % 2 == 1 || old_index == new_index {
            old_computed = node_hash(hash, &old_computed);
            new_computed = node_hash(hash, &new_computed);
            while old_index.is_multiple_of(2) && old_index != 0 {
                old_index /= 2;
                new_index /= 2;
            }
        } else {
            new_computed = node_hash(&new_computed, hash);
        }
        old_index /= 2;
        new_index /= 2;
    }
    if new_index != 0 {
        return Err(ProofError::ConsistencyPathTooShort {
            length,
            old_size,
            new_size,
        });
    }
    if old_computed != *old_root {
        return Err(ProofError::OldRootMismatch {
            computed: old_computed,
            expected: *old_root,
        });
    }
    if new_computed != *new_root {
        return Err(ProofError::RootMismatch {
            computed: new_computed,
            expected: *new_root,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::leaf_hash;
    use crate::merkle::MerkleTree;

    fn tree(size: u64) -> MerkleTree {
        MerkleTree::from_leaves((0..size).map(|i| leaf_hash(&i.to_le_bytes())).collect())
    }

    #[test]
    fn seven_leaf_paths_match_rfc_example() {
        // RFC 9162 section 2.1.5: the tree of 7 leaves d0 .. d6.
        let tree = tree(7);
        let node = |level, index| {
            let Ok(hash) = tree.perfect_subtree(level, index);
            hash
        };
        let inclusion = inclusion_proof(&tree, 0, 7).unwrap();
        let l = node_hash(&node(1, 2), &node(0, 6));
        assert_eq!(inclusion.path, vec![node(0, 1), node(1, 1), l]);
        let inclusion = inclusion_proof(&tree, 3, 7).unwrap();
        assert_eq!(inclusion.path, vec![node(0, 2), node(1, 0), l]);
        let inclusion = inclusion_proof(&tree, 4, 7).unwrap();
        assert_eq!(inclusion.path, vec![node(0, 5), node(0, 6), node(2, 0)]);
        let inclusion = inclusion_proof(&tree, 6, 7).unwrap();
        assert_eq!(inclusion.path, vec![node(1, 2), node(2, 0)]);

        let consistency = consistency_proof(&tree, 3, 7).unwrap();
        assert_eq!(
            consistency.path,
            vec![node(0, 2), node(0, 3), node(1, 0), l]
        );
        let consistency = consistency_proof(&tree, 4, 7).unwrap();
        assert_eq!(consistency.path, vec![l]);
        let consistency = consistency_proof(&tree, 6, 7).unwrap();
        assert_eq!(consistency.path, vec![node(1, 2), node(0, 6), node(2, 0)]);
    }

    #[test]
    fn bad_arguments_are_errors() {
        let tree = tree(5);
        assert_eq!(
            ProofError::from(inclusion_proof(&tree, 5, 5).unwrap_err()),
            ProofError::IndexOutOfRange {
                leaf_index: 5,
                tree_size: 5
            }
        );
        assert_eq!(
            ProofError::from(consistency_proof(&tree, 4, 3).unwrap_err()),
            ProofError::OldSizeGreaterThanNew {
                old_size: 4,
                new_size: 3
            }
        );
    }

    #[test]
    fn messages_name_the_numbers() {
        let error = ProofError::IndexOutOfRange {
            leaf_index: 9,
            tree_size: 4,
        };
        assert_eq!(
            error.to_string(),
            "leaf index 9 is out of range for a tree of size 4"
        );
        let computed = Hash([0xab; 32]);
        let expected = Hash([0xcd; 32]);
        let error = ProofError::RootMismatch { computed, expected };
        assert_eq!(
            error.to_string(),
            format!("computed root {computed} does not match expected root {expected}")
        );
    }

    #[test]
    fn proofs_serialize_hashes_as_hex() {
        let tree = tree(6);
        let inclusion = inclusion_proof(&tree, 2, 6).unwrap();
        let json = serde_json::to_value(&inclusion).unwrap();
        assert_eq!(json["leaf_index"], 2);
        assert_eq!(json["tree_size"], 6);
        assert_eq!(json["path"][0], inclusion.path[0].to_hex());
        let back: InclusionProof = serde_json::from_value(json).unwrap();
        assert_eq!(back, inclusion);

        let consistency = consistency_proof(&tree, 3, 6).unwrap();
        let text = serde_json::to_string(&consistency).unwrap();
        let back: ConsistencyProof = serde_json::from_str(&text).unwrap();
        assert_eq!(back, consistency);

        let bad = r#"{"old_size":1,"new_size":2,"path":["zz"]}"#;
        assert!(serde_json::from_str::<ConsistencyProof>(bad).is_err());
    }
}
