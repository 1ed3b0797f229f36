//! The tree's nodes in SQLite: `merkle_nodes (id, hash)`, one row per complete perfect subtree of 256 leaves or
//! more, written by the writer in the transaction of the events they cover, so that a root or a proof is a few
//! reads by key.
//!
//! The levels below [`STORED_FROM`] are not stored: every node there lies inside one block of 256 leaves, whose
//! leaf data is the events' own `hash` column, so a read hashes the block (at most 256 leaves, one range read of
//! the log by position) instead of the writer storing each event's hash a second time with its parents. That keeps
//! the writer's cost to a hash or two per event and a row per 128 events
//! ([0015](../../../docs/decisions/0015-a-merkle-tree-and-signed-checkpoints.md)).
//!
//! A node's `id` is `level · 2^48 + index`: the nodes of one level are one range of keys, which is what a tile
//! reads (c2sp.org/tlog-tiles: tile `N` at level `L` holds the 256 hashes at tree level `8L` from `256N`).

use rusqlite::{params, Connection, OptionalExtension};

use super::{leaf_hash, node_hash, Frontier, Hash, Node, Nodes, ProofError};
use crate::envelope::Position;

/// The table of nodes.
pub const TABLE: &str = "merkle_nodes";

/// The lowest level stored: a node of 256 leaves, the root of a full level-0 tile.
pub const STORED_FROM: u32 = 8;

const LEVEL_SHIFT: u32 = 48;

/// The hashes in a full tile, and the leaves in a block.
pub const TILE_WIDTH: u64 = 256;

/// A node's key in [`TABLE`].
pub fn node_id(node: Node) -> i64 {
    ((node.level as i64) << LEVEL_SHIFT) | node.index as i64
}

/// The nodes of the tree over the log, read through one connection (the writer's, or a read-only one): the
/// stored ones by key, the others hashed from their block of the log's hashes (the last few blocks kept).
pub struct Stored<'c> {
    conn: &'c Connection,
    /// Recently read blocks: each level's complete nodes within the block, the leaves first.
    blocks: Vec<(u64, Vec<Vec<Hash>>)>,
}

impl<'c> Stored<'c> {
    pub fn new(conn: &'c Connection) -> Self {
        Self {
            conn,
            blocks: Vec::with_capacity(4),
        }
    }

    /// The complete nodes of block `block` below the stored levels, by level: the leaves the log holds (up to
    /// 256), then each level's pairs. One range read of the log and at most 511 hashes.
    fn block(&mut self, block: u64) -> Result<&[Vec<Hash>], ProofError> {
        if let Some(i) = self.blocks.iter().position(|(b, _)| *b == block) {
            return Ok(&self.blocks[i].1);
        }
        let mut levels = vec![leaf_hashes(self.conn, block * TILE_WIDTH, TILE_WIDTH)?];
        while levels.len() < STORED_FROM as usize {
            let below = &levels[levels.len() - 1];
            let pairs: Vec<Hash> = below
                .chunks_exact(2)
                .map(|pair| node_hash(&pair[0], &pair[1]))
                .collect();
            levels.push(pairs);
        }
        if self.blocks.len() == 4 {
            self.blocks.remove(0);
        }
        self.blocks.push((block, levels));
        Ok(&self.blocks[self.blocks.len() - 1].1)
    }
}

/// The leaf hashes of up to `count` leaves from leaf `first`: `SHA-256(0x00 ‖ hash)` of each event's hash.
fn leaf_hashes(conn: &Connection, first: u64, count: u64) -> Result<Vec<Hash>, ProofError> {
    let mut stmt =
        conn.prepare_cached("SELECT hash FROM events WHERE position > ?1 AND position <= ?2 ORDER BY position")?;
    let mut rows = stmt.query(params![first as i64, (first + count) as i64])?;
    let mut out = Vec::with_capacity(count as usize);
    while let Some(row) = rows.next()? {
        let hex: String = row.get(0)?;
        let hash = crate::reader::decode_hash(hex.as_bytes()).ok_or_else(|| {
            ProofError::Invalid(format!(
                "the stored hash of position {} is not 64 hex digits",
                first + out.len() as u64 + 1
            ))
        })?;
        out.push(leaf_hash(&hash));
    }
    Ok(out)
}

impl Nodes for Stored<'_> {
    fn node(&mut self, node: Node) -> Result<Hash, ProofError> {
        if node.level < STORED_FROM {
            let per_block = TILE_WIDTH >> node.level;
            let levels = self.block(node.index / per_block)?;
            return levels[node.level as usize]
                .get((node.index % per_block) as usize)
                .copied()
                .ok_or(ProofError::Missing(node));
        }
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
    if node.level < STORED_FROM {
        return Ok(());
    }
    conn.prepare_cached("INSERT INTO merkle_nodes (id, hash) VALUES (?1, ?2)")?
        .execute(params![node_id(node), &hash[..]])
        .map(drop)
}

/// Appends the leaf of one event (its chain hash) and stores every node of 256 leaves or more it completes.
pub fn append(conn: &Connection, frontier: &mut Frontier, event_hash: &Hash) -> rusqlite::Result<()> {
    frontier.push(event_hash, |node, hash| insert(conn, node, hash))
}

/// The blocks of 256 leaves whose node is stored.
fn stored_blocks(conn: &Connection) -> rusqlite::Result<u64> {
    let last: Option<i64> = conn.query_row(
        "SELECT max(id) FROM merkle_nodes WHERE id >= ?1 AND id < ?2",
        [
            (STORED_FROM as i64) << LEVEL_SHIFT,
            (STORED_FROM as i64 + 1) << LEVEL_SHIFT,
        ],
        |r| r.get(0),
    )?;
    Ok(last.map_or(0, |id| (id - ((STORED_FROM as i64) << LEVEL_SHIFT)) as u64 + 1))
}

/// How many leaves the stored tree can prove: the log's events, when every block before its last is stored.
pub fn size(conn: &Connection) -> rusqlite::Result<u64> {
    let head = crate::reader::head(conn)?.max(0) as u64;
    let blocks = stored_blocks(conn)?;
    Ok(match blocks >= head / TILE_WIDTH {
        true => head,
        false => blocks * TILE_WIDTH,
    })
}

/// Leaves appended per transaction while catching up.
const CATCH_UP_CHUNK: u64 = 100_000;

/// Brings the stored tree to the log's `head`, outside any transaction, and answers its right edge: nodes past
/// the head are dropped (a log cut short since: its checkpoints will say so), and the blocks the tree lacks (a
/// database from before the tree, or one the benchmark wrote without it) are hashed from the log and stored.
pub fn catch_up(conn: &Connection, head: Position) -> Result<Frontier, ProofError> {
    let head = head.max(0) as u64;
    let whole = head / TILE_WIDTH;
    let blocks = stored_blocks(conn)?;
    if blocks > whole {
        tracing::warn!(
            tree = blocks * TILE_WIDTH,
            log = head,
            "the tree covers more leaves than the log holds; dropping the extra nodes"
        );
        conn.execute_batch("BEGIN IMMEDIATE")?;
        for level in STORED_FROM..64u32 {
            conn.execute(
                "DELETE FROM merkle_nodes WHERE id >= ?1 AND id < ?2",
                params![
                    node_id(Node {
                        level,
                        index: head >> level
                    }),
                    ((level as i64) + 1) << LEVEL_SHIFT
                ],
            )?;
        }
        conn.execute_batch("COMMIT")?;
    }
    // A whole number of blocks: every node of the edge is a stored one.
    let mut from = blocks.min(whole) * TILE_WIDTH;
    let mut frontier = match Frontier::load(&mut Stored::new(conn), from) {
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
            from = 0;
            Frontier::default()
        }
        Err(e) => return Err(e),
    };
    if head - from > TILE_WIDTH {
        tracing::info!(from, to = head, "building the Merkle tree over the log");
    }
    while from < head {
        let end = (from + CATCH_UP_CHUNK).min(head);
        conn.execute_batch("BEGIN IMMEDIATE")?;
        let result = (|| -> Result<(), ProofError> {
            let mut stmt =
                conn.prepare("SELECT hash FROM events WHERE position > ?1 AND position <= ?2 ORDER BY position")?;
            let mut rows = stmt.query(params![from as i64, end as i64])?;
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
        from = end;
    }
    Ok(frontier)
}

/// The hashes of tile `index` at tile level `level`, `width` of them (256 for a full tile); `None` when the
/// tree does not hold that many yet. Level 0 is the leaves' hashes, from the log; above, stored nodes.
pub fn tile(conn: &Connection, level: u32, index: u64, width: u64) -> Result<Option<Vec<u8>>, ProofError> {
    let tree_level = level * 8;
    if tree_level >= LEVEL_SHIFT || width == 0 || width > TILE_WIDTH {
        return Ok(None);
    }
    if level == 0 {
        let leaves = leaf_hashes(conn, index * TILE_WIDTH, width)?;
        return Ok((leaves.len() as u64 == width).then(|| leaves.concat()));
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
            // Below the stored levels a node is hashed from the log itself: nothing to compare.
            _ if node.level < STORED_FROM => Ok(()),
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
        let blocks = stored_blocks(conn)?;
        if blocks > leaves / TILE_WIDTH {
            first_bad = Some((
                leaves as Position + 1,
                format!(
                    "the tree holds nodes over {} leaves, the log only {leaves} events",
                    blocks * TILE_WIDTH
                ),
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
    use super::super::{consistency_proof, inclusion_proof, root, subtree_hash, verify_consistency, verify_inclusion};
    use super::*;

    fn data(i: u64) -> Hash {
        let mut h = [0u8; 32];
        h[..8].copy_from_slice(&i.to_be_bytes());
        h
    }

    /// A log of `n` events (their hashes are what the tree reads) with its tree, as the writer keeps them.
    fn log_of(n: u64) -> (Connection, Frontier) {
        let conn = Connection::open_in_memory().unwrap();
        for file in [
            include_str!("../../../migrations/0001_events.sql"),
            include_str!("../../../migrations/0009_merkle_tree.sql"),
        ] {
            conn.execute_batch(file).unwrap();
        }
        let mut frontier = Frontier::default();
        conn.execute_batch("BEGIN").unwrap();
        for i in 0..n {
            add_event(&conn, i as i64 + 1);
            append(&conn, &mut frontier, &data(i)).unwrap();
        }
        conn.execute_batch("COMMIT").unwrap();
        (conn, frontier)
    }

    fn add_event(conn: &Connection, p: i64) {
        conn.execute(
            "INSERT INTO events (position, id, stream, version, type, schema, data, metadata, recorded_at, crc, hash)
             VALUES (?1, ?2, 'log', ?1, 'T', 1, '{}', '{}', 't', 0, ?3)",
            params![p, format!("id-{p}"), hex::encode(data(p as u64 - 1))],
        )
        .unwrap();
    }

    #[test]
    fn stored_and_hashed_nodes_give_the_same_tree_as_memory() {
        let (conn, frontier) = log_of(1000);
        let mut memory = super::super::testing::Memory::default();
        for i in 0..1000u64 {
            memory.push(&data(i));
        }
        assert_eq!(size(&conn).unwrap(), 1000);
        assert_eq!(frontier.root(), memory.frontier.root());
        // Only the nodes of 256 leaves and more are rows: 3 at level 8, 1 at level 9.
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM merkle_nodes", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 4);
        let mut stored = Stored::new(&conn);
        assert_eq!(Frontier::load(&mut stored, 1000).unwrap(), frontier);
        for (node, hash) in &memory.nodes {
            assert_eq!(stored.node(*node).unwrap(), *hash, "{node:?}");
        }
        for (i, n) in [(0u64, 1u64), (999, 1000), (513, 777), (255, 256), (256, 257)] {
            let proof = inclusion_proof(&mut stored, i, n).unwrap();
            let r = root(&mut stored, n).unwrap();
            verify_inclusion(i, n, &leaf_hash(&data(i)), &proof, &r).unwrap();
        }
        let proof = consistency_proof(&mut stored, 300, 1000).unwrap();
        let (old, new) = (root(&mut stored, 300).unwrap(), root(&mut stored, 1000).unwrap());
        verify_consistency(300, 1000, &proof, &old, &new).unwrap();
        assert!(matches!(
            stored.node(Node { level: 3, index: 125 }),
            Err(ProofError::Missing(_))
        ));
    }

    #[test]
    fn tiles_hold_the_hashes_of_their_level() {
        let (conn, _) = log_of(70_000);
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
        assert_eq!(
            &level1[3 * 32..4 * 32],
            &subtree_hash(&mut stored, 3 * 256, 4 * 256).unwrap()
        );
        assert_eq!(tile(&conn, 0, 0, 1).unwrap().unwrap(), leaf_hash(&data(0)));
    }

    #[test]
    fn catching_up_builds_the_tree_from_the_log_and_drops_what_is_past_it() {
        let (conn, kept) = log_of(600);
        conn.execute("DELETE FROM merkle_nodes", []).unwrap();
        assert_eq!(size(&conn).unwrap(), 0);
        let frontier = catch_up(&conn, 600).unwrap();
        assert_eq!(frontier, kept);
        assert_eq!(size(&conn).unwrap(), 600);
        assert_eq!(check(&conn, 600).unwrap().first_bad, None);
        // A log cut short below a stored node: the check names the first event past it, and catching up
        // drops the node and agrees.
        conn.execute("DELETE FROM events WHERE position > 300", []).unwrap();
        assert_eq!(check(&conn, 300).unwrap().first_bad.map(|(p, _)| p), Some(301));
        let frontier = catch_up(&conn, 300).unwrap();
        assert_eq!(frontier.size(), 300);
        let after = check(&conn, 300).unwrap();
        assert_eq!(after.first_bad, None);
        assert_eq!(after.root, frontier.root());
        // A stored node changed behind the writer's back is named by the event that completes it.
        for p in 301..=600 {
            add_event(&conn, p);
        }
        catch_up(&conn, 600).unwrap();
        conn.execute(
            "UPDATE merkle_nodes SET hash = zeroblob(32) WHERE id = ?1",
            [node_id(Node { level: 8, index: 1 })],
        )
        .unwrap();
        assert_eq!(check(&conn, 600).unwrap().first_bad.map(|(p, _)| p), Some(512));
    }
}
