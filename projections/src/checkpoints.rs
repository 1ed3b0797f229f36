//! `projection_checkpoints`: the position each projection has applied, to compare with the head.

use cairn_events::Position;
use rusqlite::{params, Connection};
use serde::Serialize;

use crate::PROJECTIONS;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Checkpoint {
    pub name: String,
    pub position: Position,
    pub updated_at: String,
}

/// Records that every projection has applied the log up to `position` (recorded at `at`).
pub fn record_all(conn: &Connection, position: Position, at: &str) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO projection_checkpoints (name, position, updated_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (name) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at",
    )?;
    for name in PROJECTIONS {
        stmt.execute(params![name, position, at])?;
    }
    Ok(())
}

pub fn all(conn: &Connection) -> rusqlite::Result<Vec<Checkpoint>> {
    conn.prepare("SELECT name, position, updated_at FROM projection_checkpoints ORDER BY name")?
        .query_map([], |r| {
            Ok(Checkpoint {
                name: r.get(0)?,
                position: r.get(1)?,
                updated_at: r.get(2)?,
            })
        })?
        .collect()
}

/// The least position any projection has applied (0 before the first event).
pub fn lowest(conn: &Connection) -> rusqlite::Result<Position> {
    conn.query_row(
        "SELECT coalesce(min(position), 0) FROM projection_checkpoints",
        [],
        |r| r.get(0),
    )
}
