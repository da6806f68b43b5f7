//! The Merkle tree of the log: RFC 6962 / RFC 9162 shape, blake3 instead of SHA-256.
//!
//! MTH({}) = blake3(""), MTH({d}) = leaf_hash(d), and for n > 1 with k the largest power of
//! two strictly less than n, MTH(D\[n\]) = node_hash(MTH(D\[0:k\]), MTH(D\[k:n\])).
//!
//! Storage only ever holds *perfect aligned* subtrees: the root of the 2^level leaves
//! `[index << level, (index + 1) << level)`, which is immutable once its last leaf is appended.
//! Every other hash the RFC recursion needs (the root of a prefix `[0, n)` and the "tail"
//! ranges `[a, n)` it splits off) is rebuilt from at most 64 perfect subtrees, so a log can
//! answer roots and proofs for any past size without storing anything per size.

use crate::hash::{Hash, node_hash};

/// Where the perfect aligned subtrees of a tree come from: an in-memory [`MerkleTree`], or
/// the log's stored nodes.
pub trait SubtreeSource {
    type Error;

    /// The root of the perfect subtree over leaves `[index << level, (index + 1) << level)`.
    /// Level 0 is the leaf hash itself. Callers in this crate only ask for subtrees whose
    /// leaves all lie below the tree size they are working on, so a source for an
    /// append-only log may serve any size up to its current one.
    fn perfect_subtree(&self, level: u32, index: u64) -> Result<Hash, Self::Error>;
}

/// The largest power of two strictly less than `count`: the RFC 6962 split point `k`.
/// Only meaningful for `count >= 2`.
pub(crate) fn split_point(count: u64) -> u64 {
    debug_assert!(count >= 2, "a range of {count} leaves has no split point");
    1 << (u64::BITS - 1 - (count - 1).leading_zeros())
}

/// Whether `[start, end)` is a range the RFC recursion from some prefix `[0, n)` reaches:
/// non-empty and `start` a multiple of the smallest power of two that is `>= end - start`.
/// Exactly these ranges decompose into aligned perfect subtrees along the RFC split points.
fn is_reachable_range(start: u64, end: u64) -> bool {
    if start >= end {
        return false;
    }
    match (end - start).checked_next_power_of_two() {
        Some(alignment) => start.is_multiple_of(alignment),
        // The range is longer than 2^63 leaves, so only a range starting at 0 fits in u64.
        None => start == 0,
    }
}

/// MTH(D\[start:end\]) built from the perfect aligned subtrees it is made of.
///
/// Precondition: `start == end` (the empty tree), or `[start, end)` is a range the RFC
/// recursion from a prefix `[0, n)` reaches, which means `start` is a multiple of the
/// smallest power of two `>= end - start`. Prefixes `[0, n)`, aligned perfect subtrees and
/// the tails `[k, n)` split off a prefix all qualify. Other ranges are a programmer error:
/// a debug build panics, a release build returns an unspecified hash.
///
/// The range splits into one perfect subtree per set bit of its length, largest first (that
/// is where the RFC split points fall), and the tree over them leans right; so this asks the
/// source for `popcount(end - start)` subtrees and hashes one fewer nodes.
pub fn subtree_root<S: SubtreeSource>(src: &S, start: u64, end: u64) -> Result<Hash, S::Error> {
    if start == end {
        return Ok(Hash::empty_tree());
    }
    debug_assert!(
        is_reachable_range(start, end),
        "[{start}, {end}) is not a range the RFC 6962 recursion reaches"
    );
    let length = end - start;
    let mut pieces = [Hash::default(); u64::BITS as usize];
    let mut count = 0;
    let mut offset = start;
    for level in (0..u64::BITS).rev() {
        if length & (1 << level) != 0 {
            pieces[count] = src.perfect_subtree(level, offset >> level)?;
            count += 1;
            offset += 1 << level;
        }
    }
    Ok(fold_right(&pieces[..count]))
}

/// Combines perfect subtree roots, ordered left to right and strictly decreasing in size,
/// into the root over all of them: node_hash(p0, node_hash(p1, ... node_hash(pn-1, pn))).
/// The empty list is the empty tree.
fn fold_right(pieces: &[Hash]) -> Hash {
    let mut rest = pieces.iter().rev();
    match rest.next() {
        None => Hash::empty_tree(),
        Some(last) => rest.fold(*last, |right, left| node_hash(left, &right)),
    }
}

/// MTH of the first `size` leaves; `size` 0 is [`Hash::empty_tree`].
pub fn root<S: SubtreeSource>(src: &S, size: u64) -> Result<Hash, S::Error> {
    subtree_root(src, 0, size)
}

/// A whole tree in memory, every level kept: for tests, tools and small logs that want
/// proofs without a database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerkleTree {
    /// `levels[level][index]` is the root of the complete perfect subtree `(level, index)`;
    /// `levels[0]` holds the leaf hashes. Incomplete subtrees are not stored, and
    /// `levels` always has at least the leaf level.
    levels: Vec<Vec<Hash>>,
}

impl Default for MerkleTree {
    fn default() -> Self {
        Self::new()
    }
}

impl MerkleTree {
    pub fn new() -> Self {
        Self {
            levels: vec![Vec::new()],
        }
    }

    /// Builds every level at once, which is cheaper than pushing leaf by leaf.
    pub fn from_leaves(leaves: Vec<Hash>) -> Self {
        let mut levels = vec![leaves];
        loop {
            let next: Vec<Hash> = match levels.last() {
                Some(below) if below.len() >= 2 => below
                    .chunks_exact(2)
                    .map(|pair| node_hash(&pair[0], &pair[1]))
                    .collect(),
                _ => break,
            };
            levels.push(next);
        }
        Self { levels }
    }

    /// Appends a leaf hash and every perfect subtree it completes.
    pub fn push(&mut self, leaf: Hash) {
        let mut level = 0;
        let mut hash = leaf;
        loop {
            if self.levels.len() == level {
                self.levels.push(Vec::new());
            }
            let nodes = &mut self.levels[level];
            nodes.push(hash);
            if !nodes.len().is_multiple_of(2) {
                return;
            }
            hash = node_hash(&nodes[nodes.len() - 2], &nodes[nodes.len() - 1]);
            level += 1;
        }
    }

    /// Number of leaves.
    pub fn len(&self) -> u64 {
        self.levels[0].len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.levels[0].is_empty()
    }

    /// MTH of the first `size` leaves, for any `size <= len()`.
    ///
    /// # Panics
    /// If `size > len()`.
    pub fn root_at(&self, size: u64) -> Hash {
        assert!(
            size <= self.len(),
            "root of size {size} asked of a tree of {} leaves",
            self.len()
        );
        let Ok(hash) = root(self, size);
        hash
    }

    /// MTH of all leaves.
    pub fn root(&self) -> Hash {
        self.root_at(self.len())
    }
}

impl SubtreeSource for MerkleTree {
    type Error = std::convert::Infallible;

    /// # Panics
    /// If the subtree is not complete in this tree: asking for one is a programmer error.
    fn perfect_subtree(&self, level: u32, index: u64) -> Result<Hash, Self::Error> {
        let node = usize::try_from(level)
            .ok()
            .and_then(|level| self.levels.get(level))
            .zip(usize::try_from(index).ok())
            .and_then(|(nodes, index)| nodes.get(index));
        match node {
            Some(hash) => Ok(*hash),
            None => panic!(
                "perfect subtree (level {level}, index {index}) is not complete in a tree of {} leaves",
                self.len()
            ),
        }
    }
}

/// The incremental appender a log writer keeps in memory: the roots of the maximal perfect
/// subtrees of the current tree, one per set bit of the size (so at most 64), largest and
/// leftmost first. That is all it takes to append a leaf and to compute the current root in
/// O(log n), without reading storage.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Frontier {
    size: u64,
    /// `roots[i]` covers the i-th set bit of `size`, counting from the most significant.
    roots: Vec<Hash>,
}

impl Frontier {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of leaves appended so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf hash. Returns every perfect subtree this push completed, as
    /// `(level, index, hash)` from the leaf itself (level 0, index = old size) upwards, so the
    /// writer can store exactly the nodes that became immutable.
    ///
    /// # Panics
    /// If the tree already holds `u64::MAX` leaves.
    pub fn push(&mut self, leaf: Hash) -> Vec<(u32, u64, Hash)> {
        assert!(
            self.size < u64::MAX,
            "a Merkle tree holds at most u64::MAX leaves"
        );
        let mut completed = Vec::with_capacity(1 + self.size.trailing_ones() as usize);
        let mut level = 0;
        let mut index = self.size;
        let mut hash = leaf;
        completed.push((level, index, hash));
        // Every set low bit of the old size is a perfect subtree of exactly the current
        // height just left of the new one: merge them, as a binary counter carries.
        while index % 2 == 1 {
            let Some(left) = self.roots.pop() else {
                unreachable!("a set bit of the size always has a frontier root");
            };
            hash = node_hash(&left, &hash);
            level += 1;
            index /= 2;
            completed.push((level, index, hash));
        }
        self.roots.push(hash);
        self.size += 1;
        completed
    }

    /// Appends a leaf hash like [`Frontier::push`], without listing the subtrees it
    /// completed (for readers that only need roots: no allocation per leaf).
    ///
    /// # Panics
    /// If the tree already holds `u64::MAX` leaves.
    pub fn append(&mut self, leaf: Hash) {
        assert!(
            self.size < u64::MAX,
            "a Merkle tree holds at most u64::MAX leaves"
        );
        let mut index = self.size;
        let mut hash = leaf;
        while index % 2 == 1 {
            let Some(left) = self.roots.pop() else {
                unreachable!("a set bit of the size always has a frontier root");
            };
            hash = node_hash(&left, &hash);
            index /= 2;
        }
        self.roots.push(hash);
        self.size += 1;
    }

    /// MTH of the current tree.
    pub fn root(&self) -> Hash {
        fold_right(&self.roots)
    }

    /// The roots of the maximal perfect subtrees, largest first: with [`Frontier::size`],
    /// everything needed to go on appending (an auditor saves them to resume later).
    pub fn roots(&self) -> &[Hash] {
        &self.roots
    }

    /// A frontier from its size and roots, as [`Frontier::roots`] gave them; `None` when
    /// the number of roots is not the number of set bits of `size`.
    pub fn from_parts(size: u64, roots: Vec<Hash>) -> Option<Self> {
        (roots.len() == size.count_ones() as usize).then_some(Self { size, roots })
    }

    /// Rebuilds the frontier of a tree of `size` leaves from its stored perfect subtrees,
    /// as a log does when it reopens.
    pub fn from_source<S: SubtreeSource>(src: &S, size: u64) -> Result<Self, S::Error> {
        let mut roots = Vec::with_capacity(size.count_ones() as usize);
        let mut offset = 0u64;
        for level in (0..u64::BITS).rev() {
            if size & (1 << level) != 0 {
                roots.push(src.perfect_subtree(level, offset >> level)?);
                offset += 1 << level;
            }
        }
        Ok(Self { size, roots })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::leaf_hash;

    fn leaves(count: u64) -> Vec<Hash> {
        (0..count).map(|i| leaf_hash(&i.to_le_bytes())).collect()
    }

    #[test]
    fn split_point_is_largest_power_of_two_below() {
        let expected = [
            (2, 1),
            (3, 2),
            (4, 2),
            (5, 4),
            (8, 4),
            (9, 8),
            (1 << 40, 1 << 39),
        ];
        for (count, split) in expected {
            assert_eq!(split_point(count), split, "count {count}");
        }
        assert_eq!(split_point(u64::MAX), 1 << 63);
    }

    #[test]
    fn reachable_ranges() {
        assert!(is_reachable_range(0, 7));
        assert!(is_reachable_range(4, 7));
        assert!(is_reachable_range(6, 7));
        assert!(is_reachable_range(8, 13));
        assert!(!is_reachable_range(2, 7), "length 5 needs alignment 8");
        assert!(!is_reachable_range(3, 3));
        assert!(is_reachable_range(0, u64::MAX));
        assert!(!is_reachable_range(1, u64::MAX));
    }

    #[test]
    fn small_trees_have_rfc_shape() {
        let hashes = leaves(7);
        let tree = MerkleTree::from_leaves(hashes.clone());
        let [a, b, c, d, e, f, g] = hashes[..] else {
            unreachable!()
        };
        let ab = node_hash(&a, &b);
        let cd = node_hash(&c, &d);
        let ef = node_hash(&e, &f);
        assert_eq!(tree.root_at(0), Hash::empty_tree());
        assert_eq!(tree.root_at(1), a);
        assert_eq!(tree.root_at(3), node_hash(&ab, &c));
        assert_eq!(tree.root_at(5), node_hash(&node_hash(&ab, &cd), &e));
        assert_eq!(
            tree.root_at(7),
            node_hash(&node_hash(&ab, &cd), &node_hash(&ef, &g))
        );
    }

    #[test]
    fn push_matches_from_leaves() {
        let hashes = leaves(37);
        let mut pushed = MerkleTree::new();
        for hash in &hashes {
            pushed.push(*hash);
        }
        assert_eq!(pushed, MerkleTree::from_leaves(hashes));
    }

    #[test]
    #[should_panic(expected = "not complete")]
    fn incomplete_subtree_panics() {
        let tree = MerkleTree::from_leaves(leaves(3));
        let _ = tree.perfect_subtree(1, 1);
    }

    #[test]
    fn frontier_holds_one_root_per_set_bit() {
        let mut frontier = Frontier::new();
        for (count, leaf) in (1u64..).zip(leaves(100)) {
            frontier.push(leaf);
            assert_eq!(frontier.roots.len() as u32, count.count_ones());
        }
    }

    #[test]
    fn append_and_from_parts_agree_with_push() {
        let mut pushed = Frontier::new();
        let mut appended = Frontier::new();
        for leaf in leaves(300) {
            pushed.push(leaf);
            appended.append(leaf);
            assert_eq!(appended, pushed);
            let rebuilt = Frontier::from_parts(appended.size(), appended.roots().to_vec());
            assert_eq!(rebuilt.as_ref(), Some(&appended));
        }
        assert_eq!(Frontier::from_parts(3, vec![Hash::empty_tree()]), None);
    }
}
