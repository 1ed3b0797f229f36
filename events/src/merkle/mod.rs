//! The Merkle tree over the log: RFC 6962 §2.1 (MTH), with inclusion and consistency proofs.
//!
//! The event at position `p` is leaf `p − 1`, and its leaf data is the event's stored 32-byte chain hash (which
//! already commits to the event's canonical bytes and to everything before it). A leaf hashes as
//! `SHA-256(0x00 ‖ data)`, an interior node as `SHA-256(0x01 ‖ left ‖ right)`.
//!
//! - this file: the hashes, [`Node`] (a perfect subtree: a level and an index), and [`Nodes`], where the stored
//!   nodes are read from;
//! - `frontier`: [`Frontier`], the tree's right edge, which the writer pushes each new leaf onto and which
//!   gives the root of any size;
//! - `proof`: building proofs from stored nodes (the recursive definitions of RFC 6962 §2.1.1 and §2.1.2) and
//!   checking them (the iterative algorithms of RFC 9162 §2.1.3.2 and §2.1.4.2, a second reading of the same
//!   tree, so that a prover's mistake is not repeated by its verifier);
//! - `store`: the nodes in SQLite (`merkle_nodes`), written by the writer in the transaction of their events,
//!   caught up from the log when a database has none, checked against the log by `cairn verify`, and read as
//!   the tiles of c2sp.org/tlog-tiles.

mod frontier;
mod proof;
pub mod store;

use sha2::{Digest, Sha256};

pub use frontier::Frontier;
pub use proof::{
    consistency_proof, inclusion_proof, root, subtree_hash, verify_consistency, verify_inclusion, ProofError,
};

/// A SHA-256 hash: a leaf's, a node's, a root's.
pub type Hash = [u8; 32];

/// `SHA-256(0x00 ‖ data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

/// `SHA-256(0x01 ‖ left ‖ right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of the empty tree: `SHA-256()` of nothing.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// A perfect subtree: the `2^level` leaves from `index · 2^level`. Level 0 is a leaf.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Node {
    pub level: u32,
    pub index: u64,
}

impl Node {
    /// The first leaf it covers.
    pub fn start(self) -> u64 {
        self.index << self.level
    }
}

/// Where the hashes of complete perfect subtrees are read from: the database, or memory in tests.
pub trait Nodes {
    /// The hash of a node; an error when it is not stored (the tree is shorter than asked, or damaged).
    fn node(&mut self, node: Node) -> Result<Hash, ProofError>;
}

/// The largest power of two strictly below `n` (for `n ≥ 2`): where RFC 6962 splits a tree of `n` leaves.
pub(crate) fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

#[cfg(test)]
pub(crate) mod testing {
    //! An in-memory tree for the tests: every complete node kept in a map, as the writer would store it.

    use std::collections::HashMap;

    use super::*;

    #[derive(Default)]
    pub struct Memory {
        pub nodes: HashMap<Node, Hash>,
        pub frontier: Frontier,
    }

    impl Memory {
        pub fn of(leaves: &[Vec<u8>]) -> Self {
            let mut m = Self::default();
            for leaf in leaves {
                m.push(leaf);
            }
            m
        }

        pub fn push(&mut self, data: &[u8]) {
            let nodes = &mut self.nodes;
            self.frontier
                .push_hash(leaf_hash(data), |node, hash| -> Result<(), ()> {
                    nodes.insert(node, *hash);
                    Ok(())
                })
                .expect("memory does not fail");
        }
    }

    impl Nodes for Memory {
        fn node(&mut self, node: Node) -> Result<Hash, ProofError> {
            self.nodes.get(&node).copied().ok_or(ProofError::Missing(node))
        }
    }

    pub fn hex32(s: &str) -> Hash {
        hex::decode(s).expect("hex").try_into().expect("32 bytes")
    }

    /// The leaves of the published RFC 6962 vectors (transparency-dev/merkle's `testonly`).
    pub fn vector_leaves() -> Vec<Vec<u8>> {
        [
            "",
            "00",
            "10",
            "2021",
            "3031",
            "40414243",
            "5051525354555657",
            "606162636465666768696a6b6c6d6e6f",
        ]
        .iter()
        .map(|h| hex::decode(h).expect("hex"))
        .collect()
    }

    /// The roots of the trees of the first 1 … 8 vector leaves.
    pub const VECTOR_ROOTS: [&str; 8] = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    #[test]
    fn the_published_roots_and_nodes_are_reproduced() {
        assert_eq!(
            hex::encode(empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let leaves = vector_leaves();
        let mut tree = Memory::default();
        for (i, leaf) in leaves.iter().enumerate() {
            tree.push(leaf);
            assert_eq!(hex::encode(tree.frontier.root()), VECTOR_ROOTS[i], "size {}", i + 1);
            let size = i as u64 + 1;
            assert_eq!(hex::encode(root(&mut tree, size).unwrap()), VECTOR_ROOTS[i]);
        }
        // Some of the published complete-subtree hashes (NodeHashes), at each level.
        for (level, index, hash) in [
            (0, 1, "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            (0, 7, "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1"),
            (1, 1, "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            (1, 3, "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            (2, 1, "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ] {
            assert_eq!(hex::encode(tree.nodes[&Node { level, index }]), hash);
        }
        assert_eq!(tree.nodes.len(), 8 + 4 + 2 + 1);
    }

    #[test]
    fn split_is_the_largest_power_of_two_below() {
        assert_eq!(split(2), 1);
        assert_eq!(split(3), 2);
        assert_eq!(split(4), 2);
        assert_eq!(split(5), 4);
        assert_eq!(split(1 << 40), 1 << 39);
        assert_eq!(split((1 << 40) + 1), 1 << 40);
    }
}
