//! Reading the log: whole, by stream, filtered with a cursor, and scanned in order for verification and replay.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row};
use uuid::Uuid;

use crate::chain::{ChainError, ChainVerifier};
use crate::envelope::{Position, RecordedEvent};
use crate::error::StoreError;
use crate::schema;

/// The columns every read selects, in the order [`from_row`] expects them.
pub const COLUMNS: &str = "position, id, stream, version, type, schema, data, metadata, recorded_at, crc, hash";

/// Reads one row of [`COLUMNS`]. A malformed id or hash is an error naming the column, so `verify` can report it.
pub fn from_row(row: &Row<'_>) -> rusqlite::Result<RecordedEvent> {
    let id: String = row.get(1)?;
    let hash: String = row.get(10)?;
    let bad = |col: usize, what: &str| {
        rusqlite::Error::FromSqlConversionFailure(col, rusqlite::types::Type::Text, what.to_owned().into())
    };
    let hash_bytes = decode_hash(hash.as_bytes()).ok_or_else(|| bad(10, "hash is not 64 hex digits"))?;
    Ok(RecordedEvent {
        position: row.get(0)?,
        id: Uuid::parse_str(&id).map_err(|_| bad(1, "id is not a UUID"))?,
        stream: row.get(2)?,
        version: row.get(3)?,
        event_type: row.get(4)?,
        schema: row.get(5)?,
        data: row.get(6)?,
        metadata: row.get(7)?,
        recorded_at: row.get(8)?,
        crc: row.get(9)?,
        hash: hash_bytes,
    })
}

/// 64 hex digits to 32 bytes (a table lookup per digit: this runs once per event read, and the `hex` crate's
/// decoder was 5% of replay).
pub fn decode_hash(hex: &[u8]) -> Option<[u8; 32]> {
    const fn table() -> [u8; 256] {
        let mut t = [0xFF; 256];
        let mut i = 0;
        while i < 10 {
            t[b'0' as usize + i] = i as u8;
            i += 1;
        }
        let mut i = 0;
        while i < 6 {
            t[b'a' as usize + i] = 10 + i as u8;
            t[b'A' as usize + i] = 10 + i as u8;
            i += 1;
        }
        t
    }
    static DIGITS: [u8; 256] = table();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (o, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        let (hi, lo) = (DIGITS[pair[0] as usize], DIGITS[pair[1] as usize]);
        if hi | lo == 0xFF || hi > 15 || lo > 15 {
            return None;
        }
        *o = hi << 4 | lo;
    }
    Some(out)
}

/// The last committed position (0 for an empty log).
pub fn head(conn: &Connection) -> rusqlite::Result<Position> {
    conn.query_row("SELECT coalesce(max(position), 0) FROM events", [], |r| r.get(0))
}

pub fn event_at(conn: &Connection, position: Position) -> rusqlite::Result<Option<RecordedEvent>> {
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM events WHERE position = ?1"))?
        .query_row([position], from_row)
        .optional()
}

/// Events after `after`, in order, at most `limit`.
pub fn read_from(conn: &Connection, after: Position, limit: usize) -> rusqlite::Result<Vec<RecordedEvent>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM events WHERE position > ?1 ORDER BY position LIMIT ?2"
    ))?
    .query_map(rusqlite::params![after, limit as i64], from_row)?
    .collect()
}

/// One stream's events after version `after_version`, in order, at most `limit`.
pub fn read_stream(
    conn: &Connection,
    stream: &str,
    after_version: i64,
    limit: usize,
) -> rusqlite::Result<Vec<RecordedEvent>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM events WHERE stream = ?1 AND version > ?2 ORDER BY version LIMIT ?3"
    ))?
    .query_map(rusqlite::params![stream, after_version, limit as i64], from_row)?
    .collect()
}

/// The most one page of a filtered read returns.
pub const MAX_PAGE: usize = 1000;

/// A filtered read of the log. Every field narrows; `after` is the cursor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    pub stream: Option<String>,
    pub event_type: Option<String>,
    /// Matched against the metadata's `actor`; a trailing `*` matches a prefix (`client:*`).
    pub actor: Option<String>,
    /// Only events after this position (the cursor).
    pub after: Option<Position>,
    /// Only events at or before this position.
    pub until: Option<Position>,
    /// Only events recorded at or after this time, in the log's form (see [`crate::normalize_time`]).
    pub from_time: Option<String>,
    /// Only events recorded before this time, in the log's form.
    pub to_time: Option<String>,
    /// At most this many (bounded by [`MAX_PAGE`]; 100 when unset).
    pub limit: Option<usize>,
}

/// One page of a filtered read, with the cursor for the next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventPage {
    pub events: Vec<RecordedEvent>,
    /// Pass as `after` to read the next page; `None` when this page reached the end.
    pub next_after: Option<Position>,
}

impl EventFilter {
    pub fn page_size(&self) -> usize {
        self.limit.unwrap_or(100).clamp(1, MAX_PAGE)
    }

    fn where_clause(&self) -> (String, Vec<Value>) {
        let mut clauses = Vec::new();
        let mut params = Vec::new();
        if let Some(s) = &self.stream {
            clauses.push("stream = ?");
            params.push(Value::Text(s.clone()));
        }
        if let Some(t) = &self.event_type {
            clauses.push("type = ?");
            params.push(Value::Text(t.clone()));
        }
        if let Some(a) = &self.actor {
            if let Some(prefix) = a.strip_suffix('*') {
                clauses.push("substr(json_extract(metadata, '$.actor'), 1, ?) = ?");
                params.push(Value::Integer(prefix.chars().count() as i64));
                params.push(Value::Text(prefix.to_owned()));
            } else {
                clauses.push("json_extract(metadata, '$.actor') = ?");
                params.push(Value::Text(a.clone()));
            }
        }
        if let Some(p) = self.after {
            clauses.push("position > ?");
            params.push(Value::Integer(p));
        }
        if let Some(p) = self.until {
            clauses.push("position <= ?");
            params.push(Value::Integer(p));
        }
        if let Some(t) = &self.from_time {
            clauses.push("recorded_at >= ?");
            params.push(Value::Text(t.clone()));
        }
        if let Some(t) = &self.to_time {
            clauses.push("recorded_at < ?");
            params.push(Value::Text(t.clone()));
        }
        if clauses.is_empty() {
            (String::new(), params)
        } else {
            (format!("WHERE {}", clauses.join(" AND ")), params)
        }
    }
}

/// Reads one page of events matching the filter, in position order.
pub fn query(conn: &Connection, filter: &EventFilter) -> rusqlite::Result<EventPage> {
    let (clause, mut params) = filter.where_clause();
    let size = filter.page_size();
    params.push(Value::Integer(size as i64 + 1));
    let mut events: Vec<RecordedEvent> = conn
        .prepare(&format!(
            "SELECT {COLUMNS} FROM events {clause} ORDER BY position LIMIT ?"
        ))?
        .query_map(rusqlite::params_from_iter(params), from_row)?
        .collect::<rusqlite::Result<_>>()?;
    let next_after = if events.len() > size {
        events.truncate(size);
        events.last().map(|e| e.position)
    } else {
        None
    };
    Ok(EventPage { events, next_after })
}

/// How many events match the filter (ignoring `limit` and the cursor).
pub fn count(conn: &Connection, filter: &EventFilter) -> rusqlite::Result<i64> {
    let f = EventFilter {
        after: None,
        limit: None,
        ..filter.clone()
    };
    let (clause, params) = f.where_clause();
    conn.query_row(
        &format!("SELECT count(*) FROM events {clause}"),
        rusqlite::params_from_iter(params),
        |r| r.get(0),
    )
}

/// The position of the last event recorded at or before `time` (0 if none).
pub fn position_at_time(conn: &Connection, time: &str) -> rusqlite::Result<Position> {
    conn.query_row(
        "SELECT coalesce(max(position), 0) FROM events WHERE recorded_at <= ?1",
        [time],
        |r| r.get(0),
    )
}

/// Calls `f` with every event after `after` and up to `until`, in order, reading in chunks so memory stays flat.
pub fn scan<F>(conn: &Connection, after: Position, until: Option<Position>, mut f: F) -> rusqlite::Result<Position>
where
    F: FnMut(rusqlite::Result<RecordedEvent>) -> ControlFlow<()>,
{
    let until = until.unwrap_or(i64::MAX);
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM events WHERE position > ?1 AND position <= ?2 ORDER BY position"
    ))?;
    let mut rows = stmt.query(rusqlite::params![after, until])?;
    let mut last = after;
    while let Some(row) = rows.next()? {
        let position: Position = row.get(0)?;
        last = position;
        if f(from_row(row)).is_break() {
            break;
        }
    }
    Ok(last)
}

/// The result of checking the whole chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Events that matched before the first one that did not (all of them when the chain is intact).
    pub checked: i64,
    pub head: Position,
    pub head_hash: [u8; 32],
    pub first_bad: Option<ChainError>,
}

/// Recomputes every CRC and the hash chain, in order; stops at the first event that does not match.
/// `progress` is called every 100,000 events with the number checked. The log checked is the one up to the
/// head read first: events appended while it runs are left to the next check, never taken for a break.
pub fn verify_chain(conn: &Connection, mut progress: impl FnMut(i64)) -> Result<VerifyReport, StoreError> {
    let head = head(conn)?;
    let mut verifier = ChainVerifier::new();
    let mut first_bad = None;
    let mut expected = 1;
    scan(conn, 0, Some(head), |row| {
        let result = match row {
            Ok(event) => verifier.check(&event),
            Err(e) => Err(ChainError::Unreadable {
                position: expected,
                detail: e.to_string(),
            }),
        };
        expected += 1;
        match result {
            Ok(()) => {
                if verifier.checked() % 100_000 == 0 {
                    progress(verifier.checked());
                }
                ControlFlow::Continue(())
            }
            Err(e) => {
                first_bad = Some(e);
                ControlFlow::Break(())
            }
        }
    })?;
    if first_bad.is_none() && verifier.checked() != head {
        first_bad = Some(ChainError::Gap {
            position: verifier.checked() + 1,
            expected: verifier.checked() + 1,
        });
    }
    Ok(VerifyReport {
        checked: verifier.checked(),
        head,
        head_hash: verifier.head_hash(),
        first_bad,
    })
}

/// A small pool of read-only connections. WAL lets them read while the writer writes.
pub struct ReadPool {
    path: PathBuf,
    /// Idle connections. A std mutex: it is held only to push or pop, never across an await.
    idle: Mutex<Vec<Connection>>,
    max_idle: usize,
}

/// A connection borrowed from the pool; it goes back when dropped.
pub struct PooledConnection<'p> {
    pool: &'p ReadPool,
    conn: Option<Connection>,
}

impl std::ops::Deref for PooledConnection<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.conn
            .as_ref()
            .expect("a pooled connection is present until it is dropped")
    }
}

impl Drop for PooledConnection<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            let mut idle = self.pool.idle.lock().unwrap_or_else(|p| p.into_inner());
            if idle.len() < self.pool.max_idle {
                idle.push(conn);
            }
        }
    }
}

impl ReadPool {
    pub fn new(path: &Path, max_idle: usize) -> Self {
        Self {
            path: path.to_owned(),
            idle: Mutex::new(Vec::new()),
            max_idle,
        }
    }

    pub fn get(&self) -> Result<PooledConnection<'_>, StoreError> {
        let reused = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match reused {
            Some(c) => c,
            None => schema::open_read_only(&self.path)?,
        };
        Ok(PooledConnection {
            pool: self,
            conn: Some(conn),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::decode_hash;

    #[test]
    fn hashes_decode_from_hex_of_either_case_and_nothing_else() {
        let bytes: Vec<u8> = (0..32).map(|i| i * 7).collect();
        let lower = hex::encode(&bytes);
        assert_eq!(decode_hash(lower.as_bytes()).unwrap().to_vec(), bytes);
        assert_eq!(decode_hash(lower.to_uppercase().as_bytes()).unwrap().to_vec(), bytes);
        assert_eq!(decode_hash(&lower.as_bytes()[..62]), None);
        let mut bad = lower.clone().into_bytes();
        bad[10] = b'g';
        assert_eq!(decode_hash(&bad), None);
    }
}
