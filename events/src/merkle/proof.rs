//! Proofs: built from the stored nodes by the recursive definitions of RFC 6962 (§2.1.1 PATH, §2.1.2 PROOF and
//! SUBPROOF), checked by the iterative algorithms of RFC 9162 (§2.1.3.2, §2.1.4.2).

use super::{node_hash, split, Frontier, Hash, Node, Nodes};

/// Why a proof could not be built, or does not hold.
#[derive(Debug, thiserror::Error)]
pub enum ProofError {
    #[error("no stored node at level {}, index {}: the tree is shorter than asked or damaged; run `cairn verify`", .0.level, .0.index)]
    Missing(Node),
    #[error("leaf {index} is not in a tree of {size} leaves")]
    LeafOutOfRange { index: u64, size: u64 },
    #[error("a tree of {from} leaves is not a prefix of one of {to}")]
    SizesOutOfOrder { from: u64, to: u64 },
    /// The proof does not lead to the root it should (or is malformed): the statement it makes is false.
    #[error("the proof does not hold: {0}")]
    Invalid(String),
    #[error("database error: {0}")]
    Sql(#[from] rusqlite::Error),
}

/// MTH over the first `size` leaves.
pub fn root(nodes: &mut dyn Nodes, size: u64) -> Result<Hash, ProofError> {
    Ok(Frontier::load(nodes, size)?.root())
}

/// MTH(D[start:end]) for a range of the tree's recursive decomposition: one stored node when the range is a
/// perfect aligned subtree, else its two halves split where RFC 6962 splits.
pub fn subtree_hash(nodes: &mut dyn Nodes, start: u64, end: u64) -> Result<Hash, ProofError> {
    let n = end - start;
    debug_assert!(n >= 1);
    if n.is_power_of_two() && start.is_multiple_of(n) {
        let level = n.trailing_zeros();
        return nodes.node(Node {
            level,
            index: start >> level,
        });
    }
    let k = split(n);
    let left = subtree_hash(nodes, start, start + k)?;
    let right = subtree_hash(nodes, start + k, end)?;
    Ok(node_hash(&left, &right))
}

/// The audit path of leaf `index` in the tree of `size` leaves (RFC 6962 §2.1.1), from the leaf up.
pub fn inclusion_proof(nodes: &mut dyn Nodes, index: u64, size: u64) -> Result<Vec<Hash>, ProofError> {
    if index >= size {
        return Err(ProofError::LeafOutOfRange { index, size });
    }
    let mut path = Vec::with_capacity(64);
    // PATH(m, D[start:end]) = PATH(m, left) : MTH(right), or PATH(m − k, right) : MTH(left).
    fn walk(nodes: &mut dyn Nodes, m: u64, start: u64, end: u64, path: &mut Vec<Hash>) -> Result<(), ProofError> {
        let n = end - start;
        if n == 1 {
            return Ok(());
        }
        let k = split(n);
        if m < k {
            walk(nodes, m, start, start + k, path)?;
            path.push(subtree_hash(nodes, start + k, end)?);
        } else {
            walk(nodes, m - k, start + k, end, path)?;
            path.push(subtree_hash(nodes, start, start + k)?);
        }
        Ok(())
    }
    walk(nodes, index, 0, size, &mut path)?;
    Ok(path)
}

/// The proof that the tree of `from` leaves is a prefix of the tree of `to` leaves (RFC 6962 §2.1.2); empty
/// when `from` is 0 or equals `to`.
pub fn consistency_proof(nodes: &mut dyn Nodes, from: u64, to: u64) -> Result<Vec<Hash>, ProofError> {
    if from > to {
        return Err(ProofError::SizesOutOfOrder { from, to });
    }
    let mut proof = Vec::with_capacity(64);
    if from == 0 || from == to {
        return Ok(proof);
    }
    // SUBPROOF(m, D[start:end], complete): `complete` says whether D[start:start+m] is a subtree whose hash the
    // verifier already holds (the old root), and then leaves it out.
    fn walk(
        nodes: &mut dyn Nodes,
        m: u64,
        start: u64,
        end: u64,
        complete: bool,
        proof: &mut Vec<Hash>,
    ) -> Result<(), ProofError> {
        let n = end - start;
        if m == n {
            if !complete {
                proof.push(subtree_hash(nodes, start, end)?);
            }
            return Ok(());
        }
        let k = split(n);
        if m <= k {
            walk(nodes, m, start, start + k, complete, proof)?;
            proof.push(subtree_hash(nodes, start + k, end)?);
        } else {
            walk(nodes, m - k, start + k, end, false, proof)?;
            proof.push(subtree_hash(nodes, start, start + k)?);
        }
        Ok(())
    }
    walk(nodes, from, 0, to, true, &mut proof)?;
    Ok(proof)
}

/// RFC 9162's walk up the tree from node `f` of a level whose last node is `s`, one step per hash of a path of
/// `count`: whether each hash is a left sibling (hashed before the running one). `Err` says whether the tree
/// needs "fewer" or "more" hashes than `count`.
fn sides(mut f: u64, mut s: u64, count: usize) -> Result<Vec<bool>, &'static str> {
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        if s == 0 {
            return Err("fewer");
        }
        let left = f & 1 == 1 || f == s;
        if left && f & 1 == 0 {
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        }
        out.push(left);
        f >>= 1;
        s >>= 1;
    }
    match s {
        0 => Ok(out),
        _ => Err("more"),
    }
}

/// Checks that `leaf` (a leaf hash) is leaf `index` of the tree of `size` leaves whose root is `root`
/// (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(index: u64, size: u64, leaf: &Hash, proof: &[Hash], root: &Hash) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::LeafOutOfRange { index, size });
    }
    let sides = sides(index, size - 1, proof.len())
        .map_err(|more| ProofError::Invalid(format!("{} hashes where a tree of {size} needs {more}", proof.len())))?;
    let r = proof.iter().zip(sides).fold(*leaf, |r, (p, left)| match left {
        true => node_hash(p, &r),
        false => node_hash(&r, p),
    });
    if r != *root {
        return Err(ProofError::Invalid(format!(
            "the path from leaf {index} leads to {}, not to the root {}",
            hex::encode(r),
            hex::encode(root)
        )));
    }
    Ok(())
}

/// Checks that the tree of `from` leaves with root `old` is a prefix of the tree of `to` leaves with root `new`
/// (RFC 9162 §2.1.4.2).
pub fn verify_consistency(from: u64, to: u64, proof: &[Hash], old: &Hash, new: &Hash) -> Result<(), ProofError> {
    if from > to {
        return Err(ProofError::SizesOutOfOrder { from, to });
    }
    if from == to {
        if !proof.is_empty() {
            return Err(ProofError::Invalid("a proof between equal sizes is empty".into()));
        }
        if old != new {
            return Err(ProofError::Invalid(format!(
                "two different roots for the same {from} leaves: {} and {}",
                hex::encode(old),
                hex::encode(new)
            )));
        }
        return Ok(());
    }
    if from == 0 {
        return match proof.is_empty() {
            true => Ok(()),
            false => Err(ProofError::Invalid("a proof from the empty tree is empty".into())),
        };
    }
    if proof.is_empty() {
        return Err(ProofError::Invalid("an empty proof between different sizes".into()));
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if from.is_power_of_two() {
        path.push(*old);
    }
    path.extend_from_slice(proof);
    let (mut f, mut s) = (from - 1, to - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let sides = sides(f, s, path.len() - 1).map_err(|more| {
        ProofError::Invalid(format!(
            "{} hashes where sizes {from} and {to} need {more}",
            proof.len()
        ))
    })?;
    let (mut fr, mut sr) = (path[0], path[0]);
    for (c, left) in path[1..].iter().zip(sides) {
        if left {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
        } else {
            sr = node_hash(&sr, c);
        }
    }
    if fr != *old {
        return Err(ProofError::Invalid(format!(
            "the proof rebuilds {} for the first {from} leaves, not the old root {}",
            hex::encode(fr),
            hex::encode(old)
        )));
    }
    if sr != *new {
        return Err(ProofError::Invalid(format!(
            "the proof rebuilds {} for the {to} leaves, not the new root {}",
            hex::encode(sr),
            hex::encode(new)
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::{leaf_hash, node_hash};
    use super::*;

    fn hashes(list: &[&str]) -> Vec<Hash> {
        list.iter().map(|h| hex32(h)).collect()
    }

    #[test]
    fn the_published_inclusion_proofs_are_built_and_hold() {
        let leaves = vector_leaves();
        let mut tree = Memory::of(&leaves);
        // (leaf, size, proof), the leaf counted from 1 as in transparency-dev/merkle's verify_test.go.
        let vectors: [(u64, u64, Vec<Hash>); 5] = [
            (1, 1, vec![]),
            (
                1,
                8,
                hashes(&[
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ]),
            ),
            (
                6,
                8,
                hashes(&[
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ]),
            ),
            (
                3,
                3,
                hashes(&["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
            ),
            (
                2,
                5,
                hashes(&[
                    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                ]),
            ),
        ];
        for (leaf, size, want) in vectors {
            let index = leaf - 1;
            let got = inclusion_proof(&mut tree, index, size).unwrap();
            assert_eq!(got, want, "leaf {leaf} of {size}");
            let root = hex32(VECTOR_ROOTS[size as usize - 1]);
            let lh = leaf_hash(&leaves[index as usize]);
            verify_inclusion(index, size, &lh, &got, &root).unwrap();
            // A wrong index, a wrong size, a flipped bit, a hash too many or too few: each fails.
            assert!(verify_inclusion(index ^ 1, size, &lh, &got, &root).is_err() || size == 1);
            assert!(verify_inclusion(index, size * 2, &lh, &got, &root).is_err());
            for i in 0..got.len() {
                let mut bad = got.clone();
                bad[i][0] ^= 8;
                assert!(verify_inclusion(index, size, &lh, &bad, &root).is_err());
            }
            let mut longer = got.clone();
            longer.push(root);
            assert!(verify_inclusion(index, size, &lh, &longer, &root).is_err());
            if !got.is_empty() {
                assert!(verify_inclusion(index, size, &lh, &got[..got.len() - 1], &root).is_err());
            }
        }
    }

    #[test]
    fn the_published_consistency_proofs_are_built_and_hold() {
        let mut tree = Memory::of(&vector_leaves());
        let vectors: [(u64, u64, Vec<Hash>); 5] = [
            (1, 1, vec![]),
            (
                1,
                8,
                hashes(&[
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ]),
            ),
            (
                6,
                8,
                hashes(&[
                    "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ]),
            ),
            (
                2,
                5,
                hashes(&[
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                ]),
            ),
            (
                6,
                7,
                hashes(&[
                    "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                    "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ]),
            ),
        ];
        for (from, to, want) in vectors {
            let got = consistency_proof(&mut tree, from, to).unwrap();
            assert_eq!(got, want, "{from} → {to}");
            let old = hex32(VECTOR_ROOTS[from as usize - 1]);
            let new = hex32(VECTOR_ROOTS[to as usize - 1]);
            verify_consistency(from, to, &got, &old, &new).unwrap();
            if from != to {
                assert!(verify_consistency(from, to, &got, &new, &old).is_err());
                assert!(verify_consistency(from + 1, to, &got, &old, &new).is_err());
                assert!(verify_consistency(from, to, &[], &old, &new).is_err());
                for i in 0..got.len() {
                    let mut bad = got.clone();
                    bad[i][0] ^= 16;
                    assert!(verify_consistency(from, to, &bad, &old, &new).is_err());
                }
                assert!(verify_consistency(from, to, &got[..got.len() - 1], &old, &new).is_err());
            }
        }
        let empty = super::super::empty_root();
        verify_consistency(0, 5, &[], &empty, &hex32(VECTOR_ROOTS[4])).unwrap();
    }

    #[test]
    fn a_root_of_an_older_size_comes_from_the_stored_nodes() {
        let leaves: Vec<Vec<u8>> = (0u32..300).map(|i| i.to_le_bytes().to_vec()).collect();
        let mut all = Memory::of(&leaves);
        for size in [1u64, 2, 3, 7, 8, 9, 100, 255, 256, 257, 299, 300] {
            let expected = Memory::of(&leaves[..size as usize]).frontier.root();
            assert_eq!(root(&mut all, size).unwrap(), expected, "size {size}");
            assert_eq!(subtree_hash(&mut all, 0, size).unwrap(), expected);
        }
        // MTH of three leaves by hand.
        let three = Memory::of(&leaves[..3]);
        let l: Vec<Hash> = leaves[..3].iter().map(|d| leaf_hash(d)).collect();
        assert_eq!(three.frontier.root(), node_hash(&node_hash(&l[0], &l[1]), &l[2]));
        assert!(matches!(
            inclusion_proof(&mut all, 300, 300),
            Err(ProofError::LeafOutOfRange { .. })
        ));
        assert!(matches!(
            consistency_proof(&mut all, 5, 4),
            Err(ProofError::SizesOutOfOrder { .. })
        ));
        assert!(matches!(inclusion_proof(&mut all, 0, 301), Err(ProofError::Missing(_))));
    }
}
