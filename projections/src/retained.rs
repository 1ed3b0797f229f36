//! `retained_blobs`: content no file holds any more, kept until its retention ends (`BlobsPurged`), so that an
//! archive of a moment before a deletion still has it.

use cairn_events::{ApplyError, DomainEvent, RecordedEvent};
use rusqlite::{params, Connection};

pub fn apply(conn: &Connection, e: &RecordedEvent, event: &DomainEvent) -> Result<(), ApplyError> {
    match event {
        // Applied after the files table: the file's row is gone already.
        DomainEvent::FileDeleted(f) => {
            let held: bool = conn
                .prepare_cached("SELECT EXISTS (SELECT 1 FROM files WHERE checksum = ?1)")?
                .query_row([&f.sha256], |r| r.get(0))?;
            if !held {
                conn.prepare_cached(
                    "INSERT INTO retained_blobs (sha256, size, since, position, by_client) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (sha256) DO UPDATE SET since = excluded.since, position = excluded.position,
                         by_client = excluded.by_client",
                )?
                .execute(params![
                    f.sha256,
                    f.size as i64,
                    e.recorded_at,
                    e.position,
                    f.reason == "client"
                ])?;
            }
        }
        DomainEvent::FileStored(f) => {
            conn.prepare_cached("DELETE FROM retained_blobs WHERE sha256 = ?1")?
                .execute([&f.sha256])?;
        }
        DomainEvent::BlobsPurged(p) => {
            let mut stmt = conn.prepare_cached("DELETE FROM retained_blobs WHERE sha256 = ?1")?;
            for b in &p.blobs {
                stmt.execute([&b.sha256])?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// A retained content's size, if it is retained.
pub fn size_of(conn: &Connection, sha256: &str) -> rusqlite::Result<Option<u64>> {
    use rusqlite::OptionalExtension;
    conn.prepare_cached("SELECT size FROM retained_blobs WHERE sha256 = ?1")?
        .query_row([sha256], |r| r.get::<_, i64>(0))
        .optional()
        .map(|s| s.map(|s| s as u64))
}

/// Content retained since before `time` (RFC 3339), or since before `client_time` when its client deleted it
/// (kept longer: see [`CLIENT_FLOOR`]), oldest first, at most `limit`.
pub fn expired(conn: &Connection, time: &str, client_time: &str, limit: usize) -> rusqlite::Result<Vec<(String, u64)>> {
    conn.prepare_cached(
        "SELECT sha256, size FROM retained_blobs
         WHERE since <= ?1 AND (by_client = 0 OR since <= ?2) ORDER BY since LIMIT ?3",
    )?
    .query_map(params![time, client_time, limit as i64], |r| {
        Ok((r.get(0)?, r.get::<_, i64>(1)? as u64))
    })?
    .collect()
}

/// Content a client deleted with its own token is retained at least this long, whatever the server's retention.
pub const CLIENT_FLOOR: std::time::Duration = std::time::Duration::from_secs(30 * 86_400);

/// Every retained content (for the first purge's check that the blob is still there), at most `limit`.
pub fn all(conn: &Connection, limit: usize) -> rusqlite::Result<Vec<(String, u64)>> {
    expired(conn, "9999", "9999", limit)
}

/// How many contents are retained, and their bytes.
pub fn totals(conn: &Connection) -> rusqlite::Result<(i64, i64)> {
    conn.query_row("SELECT count(*), coalesce(sum(size), 0) FROM retained_blobs", [], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })
}
