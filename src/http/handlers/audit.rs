//! The audit endpoints: the event trail, one event, one entity's history, the chain's status, the state as of a
//! position; and the analytics counters.

use cairn_events::{reader, DomainEvent, EventFilter, RecordedEvent};
use cairn_projections::{clients, files, stats, Projections};
use rusqlite::Connection;
use serde_json::Value;
use uuid::Uuid;
use warp::http::StatusCode;
use warp::reply::Response;

use super::read;
use crate::http::error::{ok, ApiError};
use crate::http::request::Request;
use crate::http::AppState;

fn time(req: &Request, key: &'static str) -> Result<Option<String>, ApiError> {
    req.query(key)
        .map(|t| cairn_events::normalize_time(t).map_err(|e| ApiError::bad("INVALID_QUERY", format!("{key}: {e}"))))
        .transpose()
}

pub async fn events(state: &AppState, req: Request) -> Result<Response, ApiError> {
    let limit = req.query_i64("limit")?;
    if limit.is_some_and(|l| !(1..=reader::MAX_PAGE as i64).contains(&l)) {
        return Err(ApiError::bad(
            "INVALID_QUERY",
            format!("limit must be from 1 to {}", reader::MAX_PAGE),
        ));
    }
    let after = req.query_i64("after")?;
    if after.is_some_and(|a| a < 0) {
        return Err(ApiError::bad("INVALID_QUERY", "after must be 0 or more"));
    }
    let filter = EventFilter {
        stream: req.query("stream").map(str::to_owned),
        event_type: req.query("type").map(str::to_owned),
        actor: req.query("actor").map(str::to_owned),
        after,
        until: req.query_i64("until")?,
        from_time: time(&req, "from")?,
        to_time: time(&req, "to")?,
        limit: limit.map(|l| l as usize),
    };
    let (page, total) = read(state, move |conn| {
        Ok((reader::query(conn, &filter)?, reader::count(conn, &filter)?))
    })
    .await?;
    let events: Vec<Value> = page.events.iter().map(RecordedEvent::to_json).collect();
    Ok(ok(
        StatusCode::OK,
        serde_json::json!({ "events": events, "next_after": page.next_after, "total": total }),
        None,
    ))
}

pub async fn event(state: &AppState, req: Request) -> Result<Response, ApiError> {
    let raw = req.params.first().cloned().unwrap_or_default();
    let not_found = || ApiError::not_found("EVENT_NOT_FOUND", format!("no event at position {raw:?}"));
    let position: i64 = raw.parse().map_err(|_| not_found())?;
    let event = read(state, move |conn| Ok(reader::event_at(conn, position)?))
        .await?
        .ok_or_else(not_found)?;
    Ok(ok(StatusCode::OK, event.to_json(), None))
}

pub async fn stream(state: &AppState, req: Request) -> Result<Response, ApiError> {
    let stream = req.params.first().cloned().unwrap_or_default();
    let after = req.query_i64("after")?.unwrap_or(0).max(0);
    let limit = req
        .query_i64("limit")?
        .unwrap_or(reader::MAX_PAGE as i64)
        .clamp(1, reader::MAX_PAGE as i64) as usize;
    let name = stream.clone();
    let events = read(state, move |conn| Ok(reader::read_stream(conn, &name, after, limit)?)).await?;
    if events.is_empty() && after == 0 {
        return Err(ApiError::not_found(
            "STREAM_NOT_FOUND",
            format!("no events in stream {stream:?}"),
        ));
    }
    let json: Vec<Value> = events.iter().map(RecordedEvent::to_json).collect();
    Ok(ok(
        StatusCode::OK,
        serde_json::json!({ "stream": stream, "events": json }),
        None,
    ))
}

pub async fn verify(state: &AppState) -> Result<Response, ApiError> {
    let report = read(state, |conn| Ok(reader::verify_chain(conn, |_| {})?)).await?;
    let body = serde_json::json!({
        "ok": report.first_bad.is_none(),
        "checked": report.checked,
        "head": report.head,
        "head_hash": hex::encode(report.head_hash),
        "first_bad": report.first_bad.as_ref().map(|b| serde_json::json!({ "position": b.position(), "reason": b.to_string() })),
    });
    let message = if report.first_bad.is_none() {
        "the chain verifies"
    } else {
        "the chain is broken"
    };
    Ok(ok(StatusCode::OK, body, Some(message)))
}

pub async fn stats(state: &AppState, req: Request) -> Result<Response, ApiError> {
    let bucket: stats::Bucket = req.query("bucket").unwrap_or("minute").parse()?;
    let from = req.query("from").map(str::to_owned);
    let to = req.query("to").map(str::to_owned);
    let (buckets, totals) = read(state, move |conn| {
        Ok((
            stats::range(conn, from.as_deref(), to.as_deref(), bucket)?,
            stats::totals(conn)?,
        ))
    })
    .await?;
    Ok(ok(
        StatusCode::OK,
        serde_json::json!({ "buckets": buckets, "totals": totals }),
        None,
    ))
}

/// Applies, in an empty in-memory database, the events up to `at` that shape one entity's row.
fn replay_into_memory(
    conn: &Connection,
    at: i64,
    condition: &str,
    args: &[&dyn rusqlite::ToSql],
) -> Result<Connection, ApiError> {
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
        Projections::apply_event(&memory, &event, None).map_err(ApiError::internal)?;
    }
    Ok(memory)
}

fn check_position(conn: &Connection, at: i64) -> Result<(), ApiError> {
    let head = reader::head(conn)?;
    if at < 1 || at > head {
        return Err(ApiError::bad(
            "INVALID_QUERY",
            format!("at must be a position from 1 to {head}"),
        ));
    }
    Ok(())
}

/// A client as it was at position `at`: its own stream and the files stored and deleted for it.
pub async fn client_at(state: &AppState, id: Uuid, at: i64) -> Result<clients::Client, ApiError> {
    read(state, move |conn| {
        check_position(conn, at)?;
        let stream = cairn_events::catalogue::client_stream(id);
        let key = id.to_string();
        let memory = replay_into_memory(
            conn,
            at,
            "stream = ? OR (type IN ('FileStored', 'FileDeleted') AND json_extract(data, '$.client_id') = ?)",
            &[&stream, &key],
        )?;
        clients::get(&memory, &key)?.ok_or_else(|| {
            ApiError::not_found(
                "CLIENT_NOT_FOUND",
                format!("client {id} did not exist at position {at}"),
            )
        })
    })
    .await
}

/// A file as it was at position `at`: its own stream and its client's renames.
pub async fn file_at(state: &AppState, id: Uuid, at: i64) -> Result<files::File, ApiError> {
    read(state, move |conn| {
        check_position(conn, at)?;
        let stream = cairn_events::catalogue::file_stream(id);
        let client: Option<String> = reader::read_stream(conn, &stream, 0, 1)?
            .first()
            .and_then(|e| match e.decode() {
                Ok(DomainEvent::FileStored(f)) => Some(cairn_events::catalogue::client_stream(f.client_id)),
                _ => None,
            });
        let client = client.unwrap_or_default();
        let memory = replay_into_memory(conn, at, "stream = ? OR stream = ?", &[&stream, &client])?;
        files::get(&memory, &id.to_string())?
            .ok_or_else(|| ApiError::not_found("FILE_NOT_FOUND", format!("file {id} did not exist at position {at}")))
    })
    .await
}
