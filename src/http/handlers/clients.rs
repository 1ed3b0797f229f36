//! `/api/clients…`: register, list, read, change, delete; heartbeat, disconnect, rotate token.

use serde::Deserialize;
use uuid::Uuid;
use warp::http::StatusCode;
use warp::reply::Response;

use crate::commands::client::{RegisterClient, UpdateClient};
use crate::commands::new_token;
use crate::http::answers::{ClientCreated, ClientDeleted, HeartbeatAnswer, TokenRotated};
use crate::http::error::{ok, ApiError};
use crate::http::request::Request;
use crate::services::{history, ServiceError, Services};
use cairn_projections::clients::{self, ClientFilter};

const NOT_FOUND: &str = "CLIENT_NOT_FOUND";

pub async fn list(state: &Services, req: Request) -> Result<Response, ApiError> {
    let query = req.list_query()?;
    let filter = ClientFilter {
        status: req.query("status").map(str::parse).transpose()?,
        overdue: req.query_bool("overdue")?,
    };
    let mut page = state
        .read(move |conn| Ok(clients::list(conn, &query, &filter)?))
        .await?;
    for client in &mut page.items {
        state.presence.overlay(client);
    }
    Ok(ok(StatusCode::OK, page, None))
}

/// A client as it is now: its row, with the last-seen time presence keeps in memory.
pub async fn row(state: &Services, id: Uuid) -> Result<clients::Client, ApiError> {
    let mut client = state
        .read(move |conn| {
            clients::get(conn, &id.to_string())?
                .ok_or_else(|| ServiceError::not_found(NOT_FOUND, format!("client {id} not found")))
        })
        .await?;
    state.presence.overlay(&mut client);
    Ok(client)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewClient {
    name: String,
    client_id: Option<String>,
    ip_address: Option<String>,
}

pub async fn create(state: &Services, req: Request) -> Result<Response, ApiError> {
    let body: NewClient = req.json().await?;
    let token = new_token();
    let command = RegisterClient {
        id: Uuid::now_v7(),
        name: body.name,
        client_id: body.client_id,
        ip_address: body.ip_address,
        token: token.clone(),
    };
    let id = state.cairn.execute(command, req.metadata()).await?.output;
    let client = row(state, id).await?;
    Ok(ok(
        StatusCode::CREATED,
        ClientCreated { client, token },
        Some("client registered; the token is shown once"),
    ))
}

pub async fn get(state: &Services, req: Request) -> Result<Response, ApiError> {
    if let Some(at) = req.query_parsed("at")? {
        // As of a moment, a client may be named by the name it had (it may be deleted since).
        let id = match req.id(0, NOT_FOUND, "client") {
            Ok(id) => id,
            Err(_) => {
                let raw = req.params.first().map(String::as_str).unwrap_or_default();
                let name = percent_encoding::percent_decode_str(raw)
                    .decode_utf8_lossy()
                    .into_owned();
                history::client_named(&state.cairn, name).await?
            }
        };
        let client = history::client_at(&state.cairn, id, at).await?;
        return Ok(ok(StatusCode::OK, client, Some("as it was at the given position")));
    }
    let id = req.id(0, NOT_FOUND, "client")?;
    Ok(ok(StatusCode::OK, row(state, id).await?, None))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientChange {
    name: Option<String>,
    ip_address: Option<String>,
    backup_interval_seconds: Option<u64>,
    expected_version: Option<i64>,
}

pub async fn patch(state: &Services, req: Request) -> Result<Response, ApiError> {
    let id = req.id(0, NOT_FOUND, "client")?;
    let body: ClientChange = req.json().await?;
    if body.name.is_none() && body.ip_address.is_none() && body.backup_interval_seconds.is_none() {
        return Err(ApiError::validation(
            "send name, ip_address and/or backup_interval_seconds",
        ));
    }
    let command = UpdateClient {
        id,
        name: body.name,
        ip_address: body.ip_address,
        backup_interval_seconds: body.backup_interval_seconds,
        expected_version: body.expected_version,
    };
    state.cairn.execute(command, req.metadata()).await?;
    Ok(ok(StatusCode::OK, row(state, id).await?, Some("client updated")))
}

pub async fn delete(state: &Services, req: Request) -> Result<Response, ApiError> {
    let id = req.id(0, NOT_FOUND, "client")?;
    let expected = req.query_i64("expected_version")?;
    let done = state
        .presence
        .delete(&state.cairn, id, expected, state.config.retains(), req.metadata())
        .await?;
    Ok(ok(
        StatusCode::OK,
        ClientDeleted {
            id,
            files_deleted: done.files_deleted,
        },
        Some("client deleted"),
    ))
}

pub async fn heartbeat(state: &Services, req: Request) -> Result<Response, ApiError> {
    let id = req.id(0, NOT_FOUND, "client")?;
    req.caller().require_client(id)?;
    let ip = req.remote.map(|a| a.ip().to_string());
    let connected_now = state.presence.heartbeat(&state.cairn, id, ip, req.metadata()).await?;
    Ok(ok(
        StatusCode::OK,
        HeartbeatAnswer {
            id,
            status: clients::ClientStatus::Connected,
            connected_now,
        },
        None,
    ))
}

pub async fn disconnect(state: &Services, req: Request) -> Result<Response, ApiError> {
    let id = req.id(0, NOT_FOUND, "client")?;
    state
        .presence
        .disconnect(&state.cairn, id, req.caller(), req.metadata())
        .await?;
    Ok(ok(StatusCode::OK, row(state, id).await?, Some("client disconnected")))
}

pub async fn rotate_token(state: &Services, req: Request) -> Result<Response, ApiError> {
    let id = req.id(0, NOT_FOUND, "client")?;
    let token = new_token();
    state
        .presence
        .rotate_token(&state.cairn, id, token.clone(), req.metadata())
        .await?;
    Ok(ok(
        StatusCode::OK,
        TokenRotated { id, token },
        Some("token rotated; the old one no longer works; the new one is shown once"),
    ))
}

pub async fn storage(state: &Services, req: Request) -> Result<Response, ApiError> {
    let id = req.id(0, NOT_FOUND, "client")?;
    // The client must exist now (its history stays in the log after a deletion, but its page does not).
    row(state, id).await?;
    let history = state
        .read(move |conn| Ok(history::storage_history(conn, &id.to_string())?))
        .await?;
    Ok(ok(StatusCode::OK, history, None))
}

/// `GET /api/clients/{id}/archive?at=POSITION|TIME&format=tar|zip`: the client's files as they were then, one
/// archive streamed as it is made (the admin, or the client's own token).
pub async fn archive(state: &Services, req: Request) -> Result<Response, ApiError> {
    use crate::services::archive::{self, Format};
    use warp::http::{header, HeaderValue};
    use warp::Reply;
    let id = req.id(0, NOT_FOUND, "client")?;
    req.caller().require_client(id)?;
    let at = req.query_parsed::<crate::replay::Until>("at")?;
    let format = req.query_parsed::<Format>("format")?.unwrap_or(Format::Tar);
    let made = archive::archive(&state.cairn, id, at, format, req.metadata()).await?;
    let body = futures_util::stream::unfold(
        made.body,
        |mut rx| async move { rx.recv().await.map(|chunk| (chunk, rx)) },
    );
    let mut response = warp::reply::stream(body).into_response();
    let headers = response.headers_mut();
    let value = |s: &str| HeaderValue::from_str(s).map_err(ApiError::internal);
    let name = format!(
        "client-{id}-at-{}.{}",
        made.position,
        if format == Format::Zip { "zip" } else { "tar" }
    );
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
    headers.insert(
        header::CONTENT_DISPOSITION,
        value(&crate::http::answers::disposition(&name))?,
    );
    headers.insert("x-cairn-position", value(&made.position.to_string())?);
    headers.insert("x-cairn-files", value(&made.files.to_string())?);
    headers.insert("x-cairn-bytes", value(&made.bytes.to_string())?);
    Ok(response)
}

/// `GET /api/clients/{id}/restore?at=`: what an archive of that moment would hold, beside now.
pub async fn restore_preview(state: &Services, req: Request) -> Result<Response, ApiError> {
    let id = req.id(0, NOT_FOUND, "client")?;
    req.caller().require_client(id)?;
    let at = req.query_parsed::<crate::replay::Until>("at")?;
    let preview = crate::services::archive::preview(&state.cairn, id, at).await?;
    Ok(ok(StatusCode::OK, preview, None))
}
