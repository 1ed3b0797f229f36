//! `/api/clients/{id}/runs…`: a backup agent's runs begin, end, and are listed.

use cairn_events::catalogue::RunCounts;
use serde::Deserialize;
use uuid::Uuid;
use warp::http::StatusCode;
use warp::reply::Response;

use crate::commands::run::{FinishRun, StartRun};
use crate::http::error::{ok, ApiError};
use crate::http::request::Request;
use crate::services::{ServiceError, Services};
use cairn_projections::runs::{self, RunFilter};

const NOT_FOUND: &str = "RUN_NOT_FOUND";

/// The client of the path, which the caller must be (or the admin), and which must exist.
async fn client_of(state: &Services, req: &Request) -> Result<Uuid, ApiError> {
    let client = req.id(0, "CLIENT_NOT_FOUND", "client")?;
    req.caller().require_client(client)?;
    super::clients::row(state, client).await?;
    Ok(client)
}

/// One run of `client` (another client's run is not found).
async fn row(state: &Services, client: Uuid, id: Uuid) -> Result<runs::Run, ApiError> {
    Ok(state
        .read(move |conn| {
            runs::get(conn, &id.to_string())?
                .filter(|r| r.client_id == client.to_string())
                .ok_or_else(|| ServiceError::not_found(NOT_FOUND, format!("backup run {id} not found")))
        })
        .await?)
}

pub async fn list(state: &Services, req: Request) -> Result<Response, ApiError> {
    let client = client_of(state, &req).await?;
    let query = req.list_query()?;
    let status = req.query("status").map(str::to_owned);
    if let Some(s) = &status {
        if !["running", "ok", "partial", "failed"].contains(&s.as_str()) {
            return Err(ApiError::bad(
                "INVALID_QUERY",
                format!("status must be running, ok, partial or failed, not {s:?}"),
            ));
        }
    }
    let filter = RunFilter {
        client_id: Some(client.to_string()),
        status,
    };
    let page = state.read(move |conn| Ok(runs::list(conn, &query, &filter)?)).await?;
    Ok(ok(StatusCode::OK, page, None))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewRun {
    folders: Vec<String>,
    agent_version: String,
    host: String,
}

pub async fn start(state: &Services, req: Request) -> Result<Response, ApiError> {
    let client = client_of(state, &req).await?;
    let key = req.idempotency_key()?;
    let body: NewRun = req.json().await?;
    if let Some(id) = key {
        if let Ok(run) = row(state, client, id).await {
            return Ok(ok(StatusCode::CREATED, run, Some("backup run already started")));
        }
    }
    let command = StartRun {
        run_id: key.unwrap_or_else(Uuid::now_v7),
        client_id: client,
        folders: body.folders,
        agent_version: body.agent_version,
        host: body.host,
    };
    let started = state.cairn.execute(command, req.metadata()).await?.output;
    Ok(ok(
        StatusCode::CREATED,
        row(state, client, started.run_id).await?,
        Some("backup run started"),
    ))
}

/// A run's end as the agent reports it: every count defaults to 0.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RunEnd {
    outcome: String,
    #[serde(default)]
    scanned: u64,
    #[serde(default)]
    new: u64,
    #[serde(default)]
    changed: u64,
    #[serde(default)]
    unchanged: u64,
    #[serde(default)]
    deleted: u64,
    #[serde(default)]
    failed: u64,
    #[serde(default)]
    bytes_sent: u64,
    #[serde(default)]
    bytes_skipped: u64,
    #[serde(default)]
    errors: Vec<String>,
}

pub async fn finish(state: &Services, req: Request) -> Result<Response, ApiError> {
    let client = client_of(state, &req).await?;
    let id = req.id(1, NOT_FOUND, "backup run")?;
    let run = row(state, client, id).await?;
    let body: RunEnd = req.json().await?;
    let duration_ms = chrono::DateTime::parse_from_rfc3339(&run.started_at)
        .map(|s| {
            (chrono::Utc::now() - s.with_timezone(&chrono::Utc))
                .num_milliseconds()
                .max(0) as u64
        })
        .unwrap_or(0);
    let command = FinishRun {
        run_id: id,
        client_id: client,
        outcome: body.outcome,
        counts: RunCounts {
            scanned: body.scanned,
            new: body.new,
            changed: body.changed,
            unchanged: body.unchanged,
            deleted: body.deleted,
            failed: body.failed,
            bytes_sent: body.bytes_sent,
            bytes_skipped: body.bytes_skipped,
        },
        duration_ms,
        errors: body.errors,
    };
    let finished = state.cairn.execute(command, req.metadata()).await?.output;
    let message = format!("backup run finished {}", finished.outcome);
    Ok(ok(StatusCode::OK, row(state, client, id).await?, Some(&message)))
}
