//! The handlers, one file per area, and what they share.

mod audit;
mod clients;
mod db;
mod files;
mod logs;
mod status;
mod system;

pub use status::status_figures;

use rusqlite::Connection;
use warp::http::StatusCode;
use warp::reply::Response;

use super::error::{ok, ApiError};
use super::request::Request;
use super::router::Endpoint;
use super::AppState;

/// Runs the handler of an endpoint.
pub async fn dispatch(state: &AppState, endpoint: Endpoint, req: Request) -> Result<Response, ApiError> {
    use Endpoint::*;
    match endpoint {
        Health => Ok(ok(StatusCode::OK, serde_json::json!({ "status": "ok" }), None)),
        Status => status::status(state).await,
        OpenApi => Ok(warp::Reply::into_response(warp::reply::json(
            &super::openapi::document(),
        ))),
        ClientsList => clients::list(state, req).await,
        ClientsCreate => clients::create(state, req).await,
        ClientGet => clients::get(state, req).await,
        ClientPatch => clients::patch(state, req).await,
        ClientDelete => clients::delete(state, req).await,
        ClientHeartbeat => clients::heartbeat(state, req).await,
        ClientDisconnect => clients::disconnect(state, req).await,
        ClientToken => clients::rotate_token(state, req).await,
        FilesList => files::list(state, req).await,
        ClientFiles => files::of_client(state, req).await,
        Upload => files::upload(state, req).await,
        FileGet => files::get(state, req).await,
        FileDelete => files::delete(state, req).await,
        FileContent => files::content(state, req).await,
        FileVerify => files::verify(state, req).await,
        Transfers => files::transfers(state, req).await,
        LogsList => logs::list(state, req).await,
        LogsCreate => logs::create(state, req).await,
        LogsClear => logs::clear(state, req).await,
        LogsExport => logs::export(state, req).await,
        Events => audit::events(state, req).await,
        Event => audit::event(state, req).await,
        Stream => audit::stream(state, req).await,
        AuditVerify => audit::verify(state).await,
        Stats => audit::stats(state, req).await,
        System => system::system(state).await,
        Activity => system::activity(state, req).await,
        Db => db::info(state).await,
        DbHealth => db::health(state).await,
        DbTable => db::table(state, req).await,
        DbRowPatch => db::patch_row(state, req).await,
        DbRowDelete => db::delete_row(state, req).await,
        DbQuery => db::query(state, req).await,
        DbBackup => db::backup(state, req).await,
        DbOptimize => db::optimize(state, req).await,
        Live => Err(ApiError::bad(
            "WEBSOCKET_REQUIRED",
            "/api/live is a WebSocket: send an Upgrade request",
        )),
    }
}

/// Runs a read on a pooled read-only connection, off the async workers.
pub async fn read<T, F>(state: &AppState, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> Result<T, ApiError> + Send + 'static,
{
    let cairn = state.cairn.clone();
    tokio::task::spawn_blocking(move || {
        let conn = cairn.store().reader()?;
        f(&conn)
    })
    .await
    .map_err(ApiError::internal)?
}
