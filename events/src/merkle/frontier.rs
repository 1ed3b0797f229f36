//! [`Frontier`]: the right edge of the tree, the roots of the perfect subtrees that make up its leaves (one per
//! bit of the size), so that appending a leaf and taking the root need no read.

use super::{leaf_hash, node_hash, Hash, Node, Nodes, ProofError};

/// The tree's right edge. Pushing a leaf emits every node it completes: the leaf, and each parent whose right
/// child it completes, at most one per level.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// The roots of the perfect subtrees, largest (leftmost) first: one for each set bit of `size`.
    edge: Vec<Hash>,
}

impl Frontier {
    /// The frontier of the stored tree of `size` leaves: one read per set bit of the size.
    pub fn load(nodes: &mut dyn Nodes, size: u64) -> Result<Self, ProofError> {
        let mut edge = Vec::with_capacity(size.count_ones() as usize);
        let mut start = 0u64;
        for level in (0..64).rev() {
            if size & (1 << level) != 0 {
                edge.push(nodes.node(Node {
                    level,
                    index: start >> level,
                })?);
                start += 1 << level;
            }
        }
        Ok(Self { size, edge })
    }

    /// The number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The root hash (RFC 6962 MTH): the edge folded from the right.
    pub fn root(&self) -> Hash {
        let mut hashes = self.edge.iter().rev();
        match hashes.next() {
            None => super::empty_root(),
            Some(last) => hashes.fold(*last, |right, left| node_hash(left, &right)),
        }
    }

    /// Appends a leaf whose data is `data` (for the log, an event's chain hash).
    pub fn push<E>(&mut self, data: &[u8], emit: impl FnMut(Node, &Hash) -> Result<(), E>) -> Result<(), E> {
        self.push_hash(leaf_hash(data), emit)
    }

    /// Appends a leaf by its leaf hash, handing `emit` each node it completes, the leaf first. When `emit`
    /// fails the frontier is left as it was.
    pub fn push_hash<E>(&mut self, leaf: Hash, mut emit: impl FnMut(Node, &Hash) -> Result<(), E>) -> Result<(), E> {
        let mut node = Node {
            level: 0,
            index: self.size,
        };
        let mut hash = leaf;
        emit(node, &hash)?;
        // Each set low bit of the index is a left sibling waiting on the edge for this right child.
        let mut merged = 0;
        while node.index & 1 == 1 {
            let left = &self.edge[self.edge.len() - 1 - merged];
            hash = node_hash(left, &hash);
            node = Node {
                level: node.level + 1,
                index: node.index >> 1,
            };
            emit(node, &hash)?;
            merged += 1;
        }
        self.edge.truncate(self.edge.len() - merged);
        self.edge.push(hash);
        self.size += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::Memory;
    use super::*;

    #[test]
    fn a_loaded_frontier_equals_the_one_that_was_pushed() {
        let leaves: Vec<Vec<u8>> = (0u32..100).map(|i| i.to_be_bytes().to_vec()).collect();
        let mut tree = Memory::default();
        for leaf in &leaves {
            tree.push(leaf);
            let size = tree.frontier.size();
            let loaded = Frontier::load(&mut tree, size).unwrap();
            assert_eq!(loaded, tree.frontier, "size {size}");
        }
        // The frontier of an older size is there too: every node it needs stays stored.
        let old = Frontier::load(&mut tree, 37).unwrap();
        let mut again = Memory::of(&leaves[..37]);
        assert_eq!(old.root(), again.frontier.root());
        assert_eq!(Frontier::load(&mut again, 37).unwrap(), old);
    }

    #[test]
    fn a_failed_emit_leaves_the_frontier_as_it_was() {
        let mut tree = Memory::of(&[vec![1], vec![2], vec![3]]);
        let before = tree.frontier.clone();
        let mut emitted = 0;
        let result = tree.frontier.push(&[4], |_, _| {
            emitted += 1;
            if emitted == 2 {
                Err("full")
            } else {
                Ok(())
            }
        });
        assert_eq!(result, Err("full"));
        assert_eq!(tree.frontier, before);
        assert!(Frontier::load(&mut Memory::of(&[]), 1).is_err());
    }
}
