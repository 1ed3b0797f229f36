//! The state as of a moment: a client or a file as it was at a position (or a time) of the log. The moment is
//! the same [`Until`] that `cairn replay --until` takes, resolved the same way; the entity's events up to it
//! are applied by the same projections, into an empty database in memory, so the answer is what a replay to
//! that moment would hold for it.

use cairn_events::catalogue::{client_stream, file_stream};
use cairn_events::{reader, DomainEvent, Position};
use cairn_projections::{clients, files, Projections};
use rusqlite::Connection;
use uuid::Uuid;

use super::ServiceError;
use crate::replay::{self, Until};
use crate::Cairn;

/// A client as it was at `at`: its own stream and the files stored and deleted for it.
pub async fn client_at(cairn: &Cairn, id: Uuid, at: Until) -> Result<clients::Client, ServiceError> {
    super::read(cairn, move |conn| {
        let position = position(conn, &at)?;
        let stream = client_stream(id);
        let key = id.to_string();
        let memory = replay_into_memory(
            conn,
            position,
            "stream = ? OR (type IN ('FileStored', 'FileDeleted') AND json_extract(data, '$.client_id') = ?)",
            &[&stream, &key],
        )?;
        clients::get(&memory, &key)?.ok_or_else(|| {
            ServiceError::not_found(
                "CLIENT_NOT_FOUND",
                format!("client {id} did not exist at position {position}"),
            )
        })
    })
    .await
}

/// The client that bore `name` last (in any case), deleted clients included: the audit asks for a client as it
/// was by the name people know it by. Found in the log, not the read table, which has forgotten the deleted.
pub async fn client_named(cairn: &Cairn, name: String) -> Result<Uuid, ServiceError> {
    super::read(cairn, move |conn| {
        let found: Option<String> = conn
            .query_row(
                "SELECT json_extract(data, '$.client_id') FROM events
                 WHERE type IN ('ClientRegistered', 'ClientUpdated') AND lower(json_extract(data, '$.name')) = lower(?1)
                 ORDER BY position DESC LIMIT 1",
                [&name],
                |r| r.get(0),
            )
            .map(Some)
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                other => Err(other),
            })?;
        found
            .and_then(|id| Uuid::parse_str(&id).ok())
            .ok_or_else(|| ServiceError::not_found("CLIENT_NOT_FOUND", format!("no client was ever named {name:?}")))
    })
    .await
}

/// A file as it was at `at`: its own stream and its client's renames.
pub async fn file_at(cairn: &Cairn, id: Uuid, at: Until) -> Result<files::File, ServiceError> {
    super::read(cairn, move |conn| {
        let position = position(conn, &at)?;
        let stream = file_stream(id);
        let client = reader::read_stream(conn, &stream, 0, 1)?
            .first()
            .and_then(|e| match e.decode() {
                Ok(DomainEvent::FileStored(f)) => Some(client_stream(f.client_id)),
                _ => None,
            })
            .unwrap_or_default();
        let memory = replay_into_memory(conn, position, "stream = ? OR stream = ?", &[&stream, &client])?;
        files::get(&memory, &id.to_string())?.ok_or_else(|| {
            ServiceError::not_found(
                "FILE_NOT_FOUND",
                format!("file {id} did not exist at position {position}"),
            )
        })
    })
    .await
}

/// The position `at` names, which must hold an event.
fn position(conn: &Connection, at: &Until) -> Result<Position, ServiceError> {
    let head = reader::head(conn)?;
    let position = match at {
        Until::Position(p) => *p, // a position past the head names no event: not the head
        Until::Time(_) => replay::resolve(conn, at)?,
    };
    if position < 1 || position > head {
        return Err(ServiceError::invalid(
            "INVALID_QUERY",
            match at {
                Until::Position(_) => format!("at must be a position from 1 to {head}"),
                Until::Time(t) => format!("no event was recorded at or before {t}"),
            },
        ));
    }
    Ok(position)
}

/// Applies, in an empty in-memory database, the events up to `at` that shape one entity's row.
fn replay_into_memory(
    conn: &Connection,
    at: Position,
    condition: &str,
    args: &[&dyn rusqlite::ToSql],
) -> Result<Connection, ServiceError> {
    let memory = cairn_events::schema::open_memory()?;
    let mut stmt = conn.prepare(&format!(
        "SELECT {} FROM events WHERE position <= ? AND ({condition}) ORDER BY position",
        reader::COLUMNS
    ))?;
    let mut params: Vec<&dyn rusqlite::ToSql> = vec![&at];
    params.extend_from_slice(args);
    let mut rows = stmt.query(params.as_slice())?;
    while let Some(row) = rows.next()? {
        let event = reader::from_row(row)?;
        Projections::apply_event(&memory, &event, None).map_err(ServiceError::internal)?;
    }
    Ok(memory)
}

/// One point of a client's storage over time: after the event at `position`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct StoragePoint {
    pub position: i64,
    pub at: String,
    pub files: i64,
    pub bytes: i64,
}

/// A client's stored files and bytes after each of its `FileStored` and `FileDeleted` events, oldest first; at
/// most `max_points` (evenly thinned, the last always kept).
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct StorageHistory {
    pub client_id: String,
    pub points: Vec<StoragePoint>,
    /// How many changes there were before thinning.
    pub changes: i64,
}

pub const MAX_STORAGE_POINTS: usize = 500;

pub fn storage_history(conn: &rusqlite::Connection, client: &str) -> rusqlite::Result<StorageHistory> {
    let mut stmt = conn.prepare_cached(
        "SELECT position, recorded_at, type, json_extract(data, '$.size') FROM events
         WHERE type IN ('FileStored', 'FileDeleted') AND json_extract(data, '$.client_id') = ?1
         ORDER BY position",
    )?;
    let mut rows = stmt.query([client])?;
    let (mut files, mut bytes) = (0i64, 0i64);
    let mut all = Vec::new();
    while let Some(r) = rows.next()? {
        let kind: String = r.get(2)?;
        let size: i64 = r.get::<_, Option<i64>>(3)?.unwrap_or(0);
        let sign = if kind == "FileStored" { 1 } else { -1 };
        files += sign;
        bytes += sign * size;
        all.push(StoragePoint {
            position: r.get(0)?,
            at: r.get(1)?,
            files,
            bytes,
        });
    }
    let changes = all.len() as i64;
    let points = if all.len() <= MAX_STORAGE_POINTS {
        all
    } else {
        let step = all.len().div_ceil(MAX_STORAGE_POINTS);
        let last = all.len() - 1;
        all.into_iter()
            .enumerate()
            .filter(|(i, _)| i % step == 0 || *i == last)
            .map(|(_, p)| p)
            .collect()
    };
    Ok(StorageHistory {
        client_id: client.to_owned(),
        points,
        changes,
    })
}
