//! The audit endpoints: the event trail, one event, one entity's history, the chain's status, the signed
//! checkpoint, the proofs and the tree's tiles; and the analytics counters. (The state as of a position is `?at=`
//! on a client or a file.)

use cairn_events::{reader, EventFilter, RecordedEvent};
use cairn_projections::stats;
use warp::http::StatusCode;
use warp::reply::Response;

use crate::http::answers::{BadLink, ChainStatus, EventsPage, StatsAnswer, StreamHistory};
use crate::http::error::{ok, ApiError};
use crate::http::request::Request;
use crate::services::{proofs, Services};

fn time(req: &Request, key: &'static str) -> Result<Option<String>, ApiError> {
    req.query(key)
        .map(|t| cairn_events::normalize_time(t).map_err(|e| ApiError::bad("INVALID_QUERY", format!("{key}: {e}"))))
        .transpose()
}

pub async fn events(state: &Services, req: Request) -> Result<Response, ApiError> {
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
    let (page, total) = state
        .read(move |conn| Ok((reader::query(conn, &filter)?, reader::count(conn, &filter)?)))
        .await?;
    let answer = EventsPage {
        events: page.events.iter().map(RecordedEvent::view).collect(),
        next_after: page.next_after,
        total,
    };
    Ok(ok(StatusCode::OK, answer, None))
}

pub async fn event(state: &Services, req: Request) -> Result<Response, ApiError> {
    let raw = req.params.first().cloned().unwrap_or_default();
    let not_found = || ApiError::not_found("EVENT_NOT_FOUND", format!("no event at position {raw:?}"));
    let position: i64 = raw.parse().map_err(|_| not_found())?;
    let event = state
        .read(move |conn| Ok(reader::event_at(conn, position)?))
        .await?
        .ok_or_else(not_found)?;
    Ok(ok(StatusCode::OK, event.view(), None))
}

pub async fn stream(state: &Services, req: Request) -> Result<Response, ApiError> {
    let stream = req.params.first().cloned().unwrap_or_default();
    let after = req.query_i64("after")?.unwrap_or(0).max(0);
    let limit = req
        .query_i64("limit")?
        .unwrap_or(reader::MAX_PAGE as i64)
        .clamp(1, reader::MAX_PAGE as i64) as usize;
    let name = stream.clone();
    let events = state
        .read(move |conn| Ok(reader::read_stream(conn, &name, after, limit)?))
        .await?;
    if events.is_empty() && after == 0 {
        return Err(ApiError::not_found(
            "STREAM_NOT_FOUND",
            format!("no events in stream {stream:?}"),
        ));
    }
    let events = events.iter().map(RecordedEvent::view).collect();
    Ok(ok(StatusCode::OK, StreamHistory { stream, events }, None))
}

pub async fn verify(state: &Services) -> Result<Response, ApiError> {
    let report = state.read(|conn| Ok(reader::verify_chain(conn, |_| {})?)).await?;
    let body = ChainStatus {
        ok: report.first_bad.is_none(),
        checked: report.checked,
        head: report.head,
        head_hash: hex::encode(report.head_hash),
        first_bad: report.first_bad.as_ref().map(|b| BadLink {
            position: b.position(),
            reason: b.to_string(),
        }),
    };
    let message = if report.first_bad.is_none() {
        "the chain verifies"
    } else {
        "the chain is broken"
    };
    Ok(ok(StatusCode::OK, body, Some(message)))
}

pub async fn stats(state: &Services, req: Request) -> Result<Response, ApiError> {
    let bucket: stats::Bucket = req.query("bucket").unwrap_or("minute").parse()?;
    let from = req.query("from").map(str::to_owned);
    let to = req.query("to").map(str::to_owned);
    let (buckets, totals) = state
        .read(move |conn| {
            Ok((
                stats::range(conn, from.as_deref(), to.as_deref(), bucket)?,
                stats::totals(conn)?,
            ))
        })
        .await?;
    Ok(ok(StatusCode::OK, StatsAnswer { buckets, totals }, None))
}

/// A body of its own with its content type and caching.
fn body(bytes: impl Into<bytes::Bytes>, content_type: &'static str, cache: &'static str) -> Response {
    let mut response = Response::new(bytes.into().into());
    let headers = response.headers_mut();
    headers.insert(
        warp::http::header::CONTENT_TYPE,
        warp::http::HeaderValue::from_static(content_type),
    );
    headers.insert(
        warp::http::header::CACHE_CONTROL,
        warp::http::HeaderValue::from_static(cache),
    );
    response
}

pub async fn checkpoint(state: &Services) -> Result<Response, ApiError> {
    let signed = proofs::latest(state).await?;
    // Mutable: no cache beyond a second or so (c2sp.org/tlog-tiles).
    Ok(body(signed.note, "text/plain; charset=utf-8", "no-cache"))
}

pub fn key(state: &Services) -> Result<Response, ApiError> {
    let key = format!("{}\n", state.proofs.verifier().encode());
    Ok(body(key, "text/plain; charset=utf-8", "no-cache"))
}

/// A size of the tree in the query: a number from 0.
fn size(req: &Request, key: &'static str) -> Result<Option<u64>, ApiError> {
    match req.query_i64(key)? {
        Some(n) if n < 0 => Err(ApiError::bad("INVALID_QUERY", format!("{key} is 0 or more"))),
        n => Ok(n.map(|n| n as u64)),
    }
}

pub async fn inclusion(state: &Services, req: Request) -> Result<Response, ApiError> {
    let position = req
        .query_i64("position")?
        .ok_or_else(|| ApiError::bad("INVALID_QUERY", "position is required"))?;
    let proof = proofs::inclusion(state, position, size(&req, "size")?).await?;
    Ok(ok(StatusCode::OK, proof, None))
}

pub async fn consistency(state: &Services, req: Request) -> Result<Response, ApiError> {
    let from = size(&req, "from")?.ok_or_else(|| ApiError::bad("INVALID_QUERY", "from is required"))?;
    let proof = proofs::consistency(state, from, size(&req, "to")?).await?;
    Ok(ok(StatusCode::OK, proof, None))
}

pub async fn tile(state: &Services, req: Request) -> Result<Response, ApiError> {
    let path = req.params.first().cloned().unwrap_or_default();
    let bytes = proofs::tile(state, path).await?;
    // A tile's path names its content for ever (a partial one by its width): cache it for good.
    Ok(body(
        bytes,
        "application/octet-stream",
        "public, max-age=31536000, immutable",
    ))
}
