//! `/api/db…`: the database itself: info, health, a table browser, row edits that become events, a read-only
//! SQL console, online backup and optimize. Each is a call to the [`database`] or [`console`] service.

use serde::Deserialize;
use serde_json::{Map, Value};
use warp::http::StatusCode;
use warp::reply::Response;

use crate::http::answers::Positions;
use crate::http::error::{ok, ApiError};
use crate::http::request::Request;
use crate::services::{console, database, Services};

fn param(req: &Request, index: usize) -> &str {
    req.params.get(index).map(String::as_str).unwrap_or_default()
}

pub async fn info(state: &Services) -> Result<Response, ApiError> {
    Ok(ok(StatusCode::OK, database::info(&state.cairn).await?, None))
}

pub async fn health(state: &Services) -> Result<Response, ApiError> {
    Ok(ok(
        StatusCode::OK,
        database::health(&state.cairn, state.publication_status()).await?,
        None,
    ))
}

pub async fn table(state: &Services, req: Request) -> Result<Response, ApiError> {
    let table = database::table(param(&req, 0))?; // an unknown table is a 404 before a bad query is a 400
    let page = database::browse(&state.cairn, table, req.list_query()?).await?;
    Ok(ok(StatusCode::OK, page, None))
}

pub async fn patch_row(state: &Services, req: Request) -> Result<Response, ApiError> {
    let (table, id) = (database::table(param(&req, 0))?, param(&req, 1));
    let change: Map<String, Value> = match table.name() {
        "clients" => req.json().await?,
        _ => Map::new(), // the service refuses these whatever the body
    };
    let positions = database::change_row(&state.cairn, table, id, change, req.metadata()).await?;
    Ok(ok(
        StatusCode::OK,
        Positions { positions },
        Some("recorded as ClientUpdated"),
    ))
}

pub async fn delete_row(state: &Services, req: Request) -> Result<Response, ApiError> {
    let (table, id) = (database::table(param(&req, 0))?, param(&req, 1));
    let positions = database::delete_row(
        &state.cairn,
        &state.presence,
        table,
        id,
        state.config.retains(),
        req.metadata(),
    )
    .await?;
    Ok(ok(StatusCode::OK, Positions { positions }, Some("recorded as events")))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Query {
    sql: String,
}

pub async fn query(state: &Services, req: Request) -> Result<Response, ApiError> {
    let q: Query = req.json().await?;
    Ok(ok(StatusCode::OK, console::query(&state.cairn, q.sql).await?, None))
}

pub async fn backup(state: &Services, req: Request) -> Result<Response, ApiError> {
    let backup = database::backup(&state.cairn, req.metadata()).await?;
    Ok(ok(StatusCode::CREATED, backup, Some("backup written")))
}

pub async fn backups(state: &Services) -> Result<Response, ApiError> {
    Ok(ok(StatusCode::OK, database::backups(&state.cairn).await?, None))
}

pub async fn verify_backup(state: &Services, req: Request) -> Result<Response, ApiError> {
    let name = req.params.first().cloned().unwrap_or_default();
    let name = percent_encoding::percent_decode_str(&name)
        .decode_utf8_lossy()
        .into_owned();
    let verified = database::verify_backup(&state.cairn, name, req.metadata()).await?;
    let message = if verified.ok {
        "the backup checks out"
    } else {
        "the backup is damaged"
    };
    Ok(ok(StatusCode::OK, verified, Some(message)))
}

pub async fn optimize(state: &Services, req: Request) -> Result<Response, ApiError> {
    let optimized = database::optimize(&state.cairn, req.metadata()).await?;
    Ok(ok(StatusCode::OK, optimized, Some("optimized")))
}
