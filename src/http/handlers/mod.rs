//! The handlers, one file per area: each parses what its endpoint takes, calls a service or sends a command,
//! and answers with the envelope.

mod alerts;
mod audit;
mod clients;
mod db;
mod files;
mod fleet;
mod logs;
mod runs;
mod status;

use warp::http::StatusCode;
use warp::reply::Response;

use super::error::{ok, ApiError};
use super::request::Request;
use super::router::Endpoint;
use crate::services::Services;

/// Runs the handler of an endpoint.
pub async fn dispatch(state: &Services, endpoint: Endpoint, req: Request) -> Result<Response, ApiError> {
    use Endpoint::*;
    match endpoint {
        Health => Ok(ok(StatusCode::OK, super::answers::Alive { status: "ok" }, None)),
        Status => status::status(state).await,
        Metrics => status::metrics(state).await,
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
        ClientStorage => clients::storage(state, req).await,
        ClientArchive => clients::archive(state, req).await,
        ClientRestore => clients::restore_preview(state, req).await,
        RunsList => runs::list(state, req).await,
        RunStart => runs::start(state, req).await,
        RunFinish => runs::finish(state, req).await,
        FileKnown => files::known(state, req).await,
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
        AuditCheckpoint => audit::checkpoint(state).await,
        AuditKey => audit::key(state),
        AuditInclusion => audit::inclusion(state, req).await,
        AuditConsistency => audit::consistency(state, req).await,
        AuditTile => audit::tile(state, req).await,
        FleetSites => fleet::sites(state).await,
        FleetSite => fleet::site(state, req).await,
        FleetClients => fleet::clients(state, req).await,
        Stats => audit::stats(state, req).await,
        System => status::system(state).await,
        Activity => status::activity(state, req).await,
        Attention => status::attention(state).await,
        Alerts => alerts::setup(state).await,
        AlertTargetCreate => alerts::add_target(state, req).await,
        AlertTargetDelete => alerts::remove_target(state, req).await,
        AlertTargetTest => alerts::test(state, req).await,
        AlertRuleCreate => alerts::add_rule(state, req).await,
        AlertRuleDelete => alerts::remove_rule(state, req).await,
        AlertDeliveries => alerts::deliveries(state, req).await,
        Db => db::info(state).await,
        DbHealth => db::health(state).await,
        DbTable => db::table(state, req).await,
        DbRowPatch => db::patch_row(state, req).await,
        DbRowDelete => db::delete_row(state, req).await,
        DbQuery => db::query(state, req).await,
        DbBackup => db::backup(state, req).await,
        DbBackups => db::backups(state).await,
        DbBackupVerify => db::verify_backup(state, req).await,
        DbOptimize => db::optimize(state, req).await,
        Live => Err(ApiError::bad(
            "WEBSOCKET_REQUIRED",
            "/api/live is a WebSocket: send an Upgrade request",
        )),
    }
}
