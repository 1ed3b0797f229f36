//! A site's replica on the hub: its events as the site recorded them, each checked against the chain before it
//! is kept, and every read table built from them by the same projections, in a database of its own
//! (`<hub data>/sites/<site>/cairn.db`) that only the hub's ingest writes. The hub's figures for a site are read
//! from it, so they are the site's own, event for event.

use std::path::{Path, PathBuf};

use cairn_events::chain::{canonical_bytes_into, chain_hash, crc, EventFields, GENESIS};
use cairn_events::merkle::{self, Frontier};
use cairn_events::{reader, schema, Durability, Position, RecordedEvent, StoreError};
use cairn_projections::{checkpoints, rebuild, Projections};
use rusqlite::Connection;

/// Where a site's replica lives under the hub's data directory.
pub fn dir(hub: &Path, site: &str) -> PathBuf {
    hub.join("sites").join(site)
}

/// Why the replica stopped following its site: the first position that does not follow, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    pub position: Position,
    pub detail: String,
}

/// What applying a batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    pub applied: usize,
    /// Events already applied (a redelivery after a crash or a reconnection), skipped.
    pub skipped: usize,
    /// Set when the batch broke the chain (at most once: nothing is applied after).
    pub broke: Option<Broken>,
}

pub struct Replica {
    dir: PathBuf,
    conn: Connection,
    head: Position,
    head_hash: [u8; 32],
    tree: Frontier,
    broken: Option<Broken>,
    buf: Vec<u8>,
}

impl Replica {
    /// Opens (creating) the replica in `dir`; a replica found broken before stays broken.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir)?;
        let conn = schema::open_writable(&crate::datadir::db_path(dir), Durability::Normal)?;
        let head = reader::head(&conn)?;
        let head_hash = match reader::event_at(&conn, head)? {
            Some(e) => e.hash,
            None => GENESIS,
        };
        let tree = merkle::store::catch_up(&conn, head)?;
        let broken = std::fs::read_to_string(dir.join("broken")).ok().and_then(|text| {
            let (position, detail) = text.split_once('\n')?;
            Some(Broken {
                position: position.parse().ok()?,
                detail: detail.trim_end().to_owned(),
            })
        });
        Ok(Self {
            dir: dir.to_owned(),
            conn,
            head,
            head_hash,
            tree,
            broken,
            buf: Vec::with_capacity(1024),
        })
    }

    pub fn head(&self) -> Position {
        self.head
    }

    pub fn head_hash(&self) -> [u8; 32] {
        self.head_hash
    }

    pub fn broken(&self) -> Option<&Broken> {
        self.broken.as_ref()
    }

    /// Applies events in order, in one transaction: each must be the next position and chain from the one
    /// before (its CRC and hash recomputed); one already applied is skipped; the first that does not follow
    /// breaks the replica there, and nothing after it is applied, now or later.
    pub fn apply(&mut self, events: &[RecordedEvent]) -> Result<Applied, StoreError> {
        let mut out = Applied::default();
        if self.broken.is_some() {
            out.skipped = events.len();
            return Ok(out);
        }
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        let (head, head_hash, tree) = (self.head, self.head_hash, self.tree.clone());
        let result = self.apply_in_transaction(events, &mut out);
        match result.and_then(|()| Ok(self.conn.execute_batch("COMMIT")?)) {
            Ok(()) => {}
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                (self.head, self.head_hash, self.tree) = (head, head_hash, tree);
                return Err(e);
            }
        }
        if let Some(broken) = out.broke.clone() {
            self.keep_broken(broken)?;
        }
        Ok(out)
    }

    /// Breaks the replica at the next position (a message that is not an event arrived there).
    pub fn break_here(&mut self, detail: String) -> Result<Broken, StoreError> {
        let broken = Broken {
            position: self.head + 1,
            detail,
        };
        self.keep_broken(broken.clone())?;
        Ok(broken)
    }

    fn keep_broken(&mut self, broken: Broken) -> Result<(), StoreError> {
        std::fs::write(
            self.dir.join("broken"),
            format!("{}\n{}\n", broken.position, broken.detail),
        )?;
        self.broken = Some(broken);
        Ok(())
    }

    fn apply_in_transaction(&mut self, events: &[RecordedEvent], out: &mut Applied) -> Result<(), StoreError> {
        for e in events {
            if e.position <= self.head {
                out.skipped += 1;
                continue;
            }
            if let Some(detail) = self.does_not_follow(e) {
                out.broke = Some(Broken {
                    position: self.head + 1,
                    detail,
                });
                break;
            }
            rebuild::insert_event(&self.conn, e)?;
            merkle::store::append(&self.conn, &mut self.tree, &e.hash)?;
            Projections::apply_event(&self.conn, e, None).map_err(|err| StoreError::Projection {
                position: e.position,
                detail: err.to_string(),
            })?;
            self.head = e.position;
            self.head_hash = e.hash;
            out.applied += 1;
        }
        if out.applied > 0 {
            let at = reader::event_at(&self.conn, self.head)?
                .map(|e| e.recorded_at)
                .unwrap_or_default();
            checkpoints::record_all(&self.conn, self.head, &at)?;
        }
        Ok(())
    }

    /// Why `e` cannot be the next event, if it cannot.
    fn does_not_follow(&mut self, e: &RecordedEvent) -> Option<String> {
        let expected = self.head + 1;
        if e.position != expected {
            return Some(format!(
                "position {} arrived where {expected} was due (a gap or a reordering)",
                e.position
            ));
        }
        canonical_bytes_into(&EventFields::from(e), &mut self.buf);
        let computed = crc(&self.buf);
        if computed != e.crc {
            return Some(format!("its CRC-32 is {:08x}, its bytes give {computed:08x}", e.crc));
        }
        if chain_hash(&self.head_hash, &self.buf) != e.hash {
            return Some("its hash does not chain from the event before it".into());
        }
        None
    }
}
