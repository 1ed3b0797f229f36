//! The tree's nodes in SQLite: `merkle_nodes (id, hash)`, one row per complete perfect subtree, written by the
//! writer in the transaction of the events they cover, so that a root or a proof is a few reads by key.
//!
//! A node's `id` is `level · 2^48 + index`: the nodes of one level are one range of keys, which is what a tile
//! reads (c2sp.org/tlog-tiles: tile `N` at level `L` holds the 256 hashes at tree level `8L` from `256N`).

use rusqlite::{params, Connection, OptionalExtension};

use super::{Frontier, Hash, Node, Nodes, ProofError};
use crate::envelope::Position;

/// The table of nodes.
pub const TABLE: &str = "merkle_nodes";

const LEVEL_SHIFT: u32 = 48;

/// The hashes in a full tile.
pub const TILE_WIDTH: u64 = 256;

/// A node's key in [`TABLE`].
pub fn node_id(node: Node) -> i64 {
    ((node.level as i64) << LEVEL_SHIFT) | node.index as i64
}

/// The stored nodes, read through one connection (the writer's, or a read-only one).
pub struct Stored<'c> {
    conn: &'c Connection,
}

impl<'c> Stored<'c> {
    pub fn new(conn: &'c Connection) -> Self {
        Self { conn }
    }
}

impl Nodes for Stored<'_> {
    fn node(&mut self, node: Node) -> Result<Hash, ProofError> {
        let bytes: Option<Vec<u8>> = self
            .conn
            .prepare_cached("SELECT hash FROM merkle_nodes WHERE id = ?1")?
            .query_row([node_id(node)], |r| r.get(0))
            .optional()?;
        bytes
            .and_then(|b| Hash::try_from(b.as_slice()).ok())
            .ok_or(ProofError::Missing(node))
    }
}

fn insert(conn: &Connection, node: Node, hash: &Hash) -> rusqlite::Result<()> {
    conn.prepare_cached("INSERT INTO merkle_nodes (id, hash) VALUES (?1, ?2)")?
        .execute(params![node_id(node), &hash[..]])
        .map(drop)
}

/// Appends the leaf of one event (its chain hash) and stores every node it completes.
pub fn append(conn: &Connection, frontier: &mut Frontier, event_hash: &Hash) -> rusqlite::Result<()> {
    frontier.push(event_hash, |node, hash| insert(conn, node, hash))
}

/// How many leaves the stored tree holds.
pub fn size(conn: &Connection) -> rusqlite::Result<u64> {
    let last: Option<i64> = conn.query_row(
        "SELECT max(id) FROM merkle_nodes WHERE id < ?1",
        [1i64 << LEVEL_SHIFT],
        |r| r.get(0),
    )?;
    Ok(last.map_or(0, |i| i as u64 + 1))
}

/// Leaves appended per transaction while catching up.
const CATCH_UP_CHUNK: u64 = 100_000;

/// Brings the stored tree to the log's `head`, on the writer's connection outside any transaction: nodes past
/// the head are dropped (a log cut short since: its checkpoints will say so), and the leaves the tree lacks (a
/// database from before the tree, or one the benchmark wrote without it) are read from the log and appended.
pub fn catch_up(conn: &Connection, head: Position) -> Result<Frontier, ProofError> {
    let head = head.max(0) as u64;
    let stored = size(conn)?;
    if stored > head {
        tracing::warn!(
            tree = stored,
            log = head,
            "the tree holds more leaves than the log; dropping the extra nodes"
        );
        conn.execute_batch("BEGIN IMMEDIATE")?;
        for level in 0..64u32 {
            let complete = head >> level;
            conn.execute(
                "DELETE FROM merkle_nodes WHERE id >= ?1 AND id < ?2",
                params![
                    node_id(Node { level, index: complete }),
                    ((level as i64) + 1) << LEVEL_SHIFT
                ],
            )?;
        }
        conn.execute_batch("COMMIT")?;
    }
    let mut stored = stored.min(head);
    let mut frontier = match Frontier::load(&mut Stored::new(conn), stored) {
        Ok(frontier) => frontier,
        Err(ProofError::Missing(node)) => {
            // The right edge is not all there: the tree was damaged behind the writer. It is derived from the
            // log, so it is built again from the first leaf.
            tracing::warn!(
                level = node.level,
                index = node.index,
                "the Merkle tree lacks a node of its right edge; rebuilding it from the log"
            );
            conn.execute("DELETE FROM merkle_nodes", [])?;
            stored = 0;
            Frontier::default()
        }
        Err(e) => return Err(e),
    };
    if stored == head {
        return Ok(frontier);
    }
    tracing::info!(from = stored, to = head, "building the Merkle tree over the log");
    let mut at = stored;
    while at < head {
        let end = (at + CATCH_UP_CHUNK).min(head);
        conn.execute_batch("BEGIN IMMEDIATE")?;
        let result = (|| -> Result<(), ProofError> {
            let mut stmt =
                conn.prepare("SELECT hash FROM events WHERE position > ?1 AND position <= ?2 ORDER BY position")?;
            let mut rows = stmt.query(params![at as i64, end as i64])?;
            while let Some(row) = rows.next()? {
                let hex: String = row.get(0)?;
                let hash = crate::reader::decode_hash(hex.as_bytes()).ok_or_else(|| {
                    ProofError::Invalid(format!(
                        "the stored hash of position {} is not 64 hex digits",
                        frontier.size() + 1
                    ))
                })?;
                append(conn, &mut frontier, &hash)?;
            }
            Ok(())
        })();
        match result {
            Ok(()) => conn.execute_batch("COMMIT")?,
            Err(e) => {
                conn.execute_batch("ROLLBACK")?;
                return Err(e);
            }
        }
        if frontier.size() != end {
            return Err(ProofError::Invalid(format!(
                "the log has a gap before position {}",
                frontier.size() + 1
            )));
        }
        at = end;
    }
    Ok(frontier)
}

/// The hashes of tile `index` at tile level `level`, `width` of them (256 for a full tile); `None` when the
/// tree does not hold that many yet.
pub fn tile(conn: &Connection, level: u32, index: u64, width: u64) -> Result<Option<Vec<u8>>, ProofError> {
    let tree_level = level * 8;
    if tree_level >= LEVEL_SHIFT || width == 0 || width > TILE_WIDTH {
        return Ok(None);
    }
    let first = Node {
        level: tree_level,
        index: index * TILE_WIDTH,
    };
    let mut stmt = conn.prepare_cached("SELECT hash FROM merkle_nodes WHERE id >= ?1 AND id < ?2 ORDER BY id")?;
    let mut rows = stmt.query(params![node_id(first), node_id(first) + width as i64])?;
    let mut out = Vec::with_capacity(width as usize * 32);
    while let Some(row) = rows.next()? {
        let hash: Vec<u8> = row.get(0)?;
        out.extend_from_slice(&hash);
    }
    Ok((out.len() == width as usize * 32).then_some(out))
}

/// The entry bundle `index` of c2sp.org/tlog-tiles: the leaf data (each event's chain hash, 32 bytes) of
/// `width` leaves from `256 · index`, each after its length as a big-endian `u16`; `None` when the log is
/// shorter.
pub fn entries(conn: &Connection, index: u64, width: u64) -> Result<Option<Vec<u8>>, ProofError> {
    if width == 0 || width > TILE_WIDTH {
        return Ok(None);
    }
    let first = index * TILE_WIDTH;
    let mut stmt =
        conn.prepare_cached("SELECT hash FROM events WHERE position > ?1 AND position <= ?2 ORDER BY position")?;
    let mut rows = stmt.query(params![first as i64, (first + width) as i64])?;
    let mut out = Vec::with_capacity(width as usize * 34);
    let mut n = 0;
    while let Some(row) = rows.next()? {
        let hex: String = row.get(0)?;
        let hash = crate::reader::decode_hash(hex.as_bytes())
            .ok_or_else(|| ProofError::Invalid(format!("the stored hash of position {} is not hex", first + n + 1)))?;
        out.extend_from_slice(&32u16.to_be_bytes());
        out.extend_from_slice(&hash);
        n += 1;
    }
    Ok((n == width).then_some(out))
}

/// What comparing the stored tree with the log found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeCheck {
    /// Leaves checked (the log's events up to the head read first).
    pub leaves: u64,
    /// The root of the tree of those leaves, computed from the log.
    pub root: Hash,
    /// The first position whose leaf, or a node it completes, is not stored as the log gives it.
    pub first_bad: Option<(Position, String)>,
}

/// Recomputes the tree from the log's hashes up to `until` and compares every node with the stored one.
pub fn check(conn: &Connection, until: Position) -> Result<TreeCheck, ProofError> {
    let mut frontier = Frontier::default();
    let mut stored = Stored::new(conn);
    let mut first_bad = None;
    let mut stmt = conn.prepare("SELECT position, hash FROM events WHERE position <= ?1 ORDER BY position")?;
    let mut rows = stmt.query([until])?;
    while let Some(row) = rows.next()? {
        let position: Position = row.get(0)?;
        let hex: String = row.get(1)?;
        let Some(hash) = crate::reader::decode_hash(hex.as_bytes()) else {
            first_bad = Some((position, "its stored hash is not 64 hex digits".to_owned()));
            break;
        };
        let result = frontier.push(&hash, |node, computed| match stored.node(node) {
            Ok(h) if h == *computed => Ok(()),
            Ok(_) => Err(format!(
                "the stored node at level {}, index {} differs from the one its events give",
                node.level, node.index
            )),
            Err(ProofError::Missing(_)) => Err(format!("no node stored at level {}, index {}", node.level, node.index)),
            Err(e) => Err(e.to_string()),
        });
        if let Err(detail) = result {
            first_bad = Some((position, detail));
            break;
        }
    }
    drop(rows);
    drop(stmt);
    let leaves = frontier.size();
    if first_bad.is_none() {
        let in_tree = size(conn)?;
        if in_tree > leaves {
            first_bad = Some((
                leaves as Position + 1,
                format!("the tree holds {in_tree} leaves, the log only {leaves} events"),
            ));
        }
    }
    Ok(TreeCheck {
        leaves,
        root: frontier.root(),
        first_bad,
    })
}

#[cfg(test)]
mod tests {
    use super::super::{consistency_proof, inclusion_proof, leaf_hash, root, verify_consistency, verify_inclusion};
    use super::*;

    fn table() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(include_str!("../../../migrations/0009_merkle_tree.sql"))
            .unwrap();
        conn
    }

    fn data(i: u64) -> Hash {
        let mut h = [0u8; 32];
        h[..8].copy_from_slice(&i.to_be_bytes());
        h
    }

    #[test]
    fn stored_nodes_give_the_same_tree_as_memory() {
        let conn = table();
        let mut frontier = Frontier::default();
        let mut memory = super::super::testing::Memory::default();
        for i in 0..1000u64 {
            append(&conn, &mut frontier, &data(i)).unwrap();
            memory.push(&data(i));
        }
        assert_eq!(size(&conn).unwrap(), 1000);
        assert_eq!(frontier.root(), memory.frontier.root());
        let mut stored = Stored::new(&conn);
        assert_eq!(Frontier::load(&mut stored, 1000).unwrap(), frontier);
        for (i, n) in [(0u64, 1u64), (999, 1000), (513, 777)] {
            let proof = inclusion_proof(&mut stored, i, n).unwrap();
            let r = root(&mut stored, n).unwrap();
            verify_inclusion(i, n, &leaf_hash(&data(i)), &proof, &r).unwrap();
        }
        let proof = consistency_proof(&mut stored, 300, 1000).unwrap();
        let (old, new) = (root(&mut stored, 300).unwrap(), root(&mut stored, 1000).unwrap());
        verify_consistency(300, 1000, &proof, &old, &new).unwrap();
    }

    #[test]
    fn tiles_hold_the_hashes_of_their_level() {
        let conn = table();
        let mut frontier = Frontier::default();
        for i in 0..70_000u64 {
            append(&conn, &mut frontier, &data(i)).unwrap();
        }
        // A tree of 70,000: 273 full level-0 tiles and one of 112, a full level-1 tile and one of 17, and a
        // level-2 tile of 1 (the example of c2sp.org/tlog-tiles).
        assert!(tile(&conn, 0, 272, 256).unwrap().is_some());
        assert!(tile(&conn, 0, 273, 256).unwrap().is_none());
        assert_eq!(tile(&conn, 0, 273, 112).unwrap().unwrap().len(), 112 * 32);
        assert!(tile(&conn, 0, 273, 113).unwrap().is_none());
        let level1 = tile(&conn, 1, 0, 256).unwrap().unwrap();
        assert!(tile(&conn, 1, 1, 17).unwrap().is_some());
        assert!(tile(&conn, 1, 1, 18).unwrap().is_none());
        assert!(tile(&conn, 2, 0, 1).unwrap().is_some());
        assert!(tile(&conn, 2, 0, 2).unwrap().is_none());
        // Each level-1 hash is the root of a full level-0 tile: 256 leaves.
        let mut stored = Stored::new(&conn);
        let hash_of_tile_3 = super::super::subtree_hash(&mut stored, 3 * 256, 4 * 256).unwrap();
        assert_eq!(&level1[3 * 32..4 * 32], &hash_of_tile_3);
        let leaf0 = tile(&conn, 0, 0, 1).unwrap().unwrap();
        assert_eq!(leaf0, leaf_hash(&data(0)));
    }

    #[test]
    fn catching_up_builds_the_tree_from_the_log_and_drops_what_is_past_it() {
        let conn = Connection::open_in_memory().unwrap();
        for file in [
            include_str!("../../../migrations/0001_events.sql"),
            include_str!("../../../migrations/0009_merkle_tree.sql"),
        ] {
            conn.execute_batch(file).unwrap();
        }
        for p in 1..=20i64 {
            conn.execute(
                "INSERT INTO events (position, id, stream, version, type, schema, data, metadata, recorded_at, crc, hash)
                 VALUES (?1, ?2, 'log', ?1, 'T', 1, '{}', '{}', 't', 0, ?3)",
                params![p, format!("id-{p}"), hex::encode(data(p as u64))],
            )
            .unwrap();
        }
        let frontier = catch_up(&conn, 20).unwrap();
        assert_eq!(frontier.size(), 20);
        assert_eq!(check(&conn, 20).unwrap().first_bad, None);
        // A log cut short: the tree follows it down, and the check agrees.
        conn.execute("DELETE FROM events WHERE position > 13", []).unwrap();
        let before = check(&conn, 13).unwrap();
        assert_eq!(before.first_bad.map(|(p, _)| p), Some(14));
        let frontier = catch_up(&conn, 13).unwrap();
        assert_eq!(frontier.size(), 13);
        assert_eq!(size(&conn).unwrap(), 13);
        let after = check(&conn, 13).unwrap();
        assert_eq!(after.first_bad, None);
        assert_eq!(after.root, frontier.root());
        // A node changed behind the writer's back is named by the first event it covers.
        conn.execute(
            "UPDATE merkle_nodes SET hash = zeroblob(32) WHERE id = ?1",
            [node_id(Node { level: 1, index: 3 })],
        )
        .unwrap();
        assert_eq!(check(&conn, 13).unwrap().first_bad.map(|(p, _)| p), Some(8));
    }
}
