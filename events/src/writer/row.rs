//! One row of the log: its `recorded_at` from the clock, its place in the hash chain, the insert, and the
//! projections applied to it in the same transaction.

use rusqlite::{params, Connection};

use super::{Projector, WriterState};
use crate::catalogue::DomainEvent;
use crate::chain::{canonical_bytes_into, chain_hash, crc, EventFields};
use crate::envelope::{NewEvent, Position, RecordedEvent};
use crate::error::StoreError;
use crate::merkle::{self, Frontier};

impl WriterState {
    /// Writes one row at the next position, chains it to the head, and applies the projections to it; the head
    /// moves to it and it waits in `pending` to be published after COMMIT.
    pub(super) fn insert(&mut self, stream: &str, version: i64, event: NewEvent) -> Result<Position, StoreError> {
        let position = self.head + 1;
        let now = now_rfc3339();
        let recorded_at = if now > self.last_time {
            now
        } else {
            self.last_time.clone()
        };
        canonical_bytes_into(
            &EventFields {
                position,
                id: event.id,
                stream,
                version,
                event_type: &event.event_type,
                schema: event.schema,
                data: &event.data,
                metadata: &event.metadata,
                recorded_at: &recorded_at,
            },
            &mut self.buf,
        );
        let crc = crc(&self.buf);
        let hash = chain_hash(&self.head_hash, &self.buf);
        let typed = event.typed;
        let recorded = RecordedEvent {
            position,
            id: event.id,
            stream: stream.to_owned(),
            version,
            event_type: event.event_type,
            schema: event.schema,
            data: event.data,
            metadata: event.metadata,
            recorded_at,
            crc,
            hash,
        };
        write_row(
            &self.conn,
            &mut *self.projector,
            self.tree.as_mut(),
            &recorded,
            typed.as_ref(),
        )?;
        self.head = position;
        self.head_hash = hash;
        self.last_time.clone_from(&recorded.recorded_at);
        self.pending.push(recorded);
        Ok(position)
    }
}

/// Inserts an event's row, appends its leaf to the Merkle tree (when the writer keeps one), and applies every
/// projection to it.
pub(super) fn write_row(
    conn: &Connection,
    projector: &mut dyn Projector,
    tree: Option<&mut Frontier>,
    e: &RecordedEvent,
    typed: Option<&DomainEvent>,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO events (position, id, stream, version, type, schema, data, metadata, recorded_at, crc, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        e.position,
        &*e.id.hyphenated().encode_lower(&mut uuid::Uuid::encode_buffer()),
        e.stream,
        e.version,
        e.event_type,
        e.schema,
        e.data,
        e.metadata,
        e.recorded_at,
        e.crc,
        hex_hash(&e.hash, &mut [0u8; 64]),
    ])?;
    if let Some(tree) = tree {
        merkle::store::append(conn, tree, &e.hash)?;
    }
    projector.apply(conn, e, typed).map_err(|err| StoreError::Projection {
        position: e.position,
        detail: err.to_string(),
    })
}

/// Lowercase hex of a hash, written into `buf` (one event at a time: no allocation on the hot path).
fn hex_hash<'b>(hash: &[u8; 32], buf: &'b mut [u8; 64]) -> &'b str {
    hex::encode_to_slice(hash, buf).expect("64 bytes hold the hex of 32");
    std::str::from_utf8(buf).expect("hex digits are ASCII")
}

/// RFC 3339 UTC with microseconds, the format of `recorded_at`: `2026-12-01T09:40:18.123456Z`, 27 bytes.
///
/// chrono's RFC 3339 writer, not its `format` (which parses its pattern on every call, and showed in the
/// writer's profile). `Utc::now()` comes from the system clock, which never reports a leap second, so the
/// seconds field stays below 60.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

#[cfg(test)]
mod tests {
    use super::now_rfc3339;

    #[test]
    fn recorded_at_is_rfc3339_utc_with_microseconds() {
        let t = now_rfc3339();
        assert_eq!(t.len(), 27, "{t}");
        assert!(t.ends_with('Z'));
        let parsed = chrono::DateTime::parse_from_rfc3339(&t).unwrap();
        assert_eq!(parsed.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(), t);
    }
}
