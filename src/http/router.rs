//! The route table: every endpoint, once. The router matches requests against it and the OpenAPI document is
//! generated from it, so an endpoint cannot exist undocumented.

use cairn_events::EventView;
use cairn_projections::{clients::Client, files::File, logs::LogEntry, runs::Run, transfers::Transfer, Page};
use schemars::{Schema, SchemaGenerator};
use warp::http::Method;

use super::answers::*;
use crate::services::activity::Activity;
use crate::services::alerts::AlertsSetup;
use crate::services::archive::Preview;
use crate::services::console::QueryResult;
use crate::services::database::{Backup, BackupEntry, Health, Info, Optimized, TablePage, Verified};
use crate::services::fleet::{FleetClient, SiteSummary};
use crate::services::health::Attention;
use crate::services::history::StorageHistory;
use crate::services::proofs::{ConsistencyProof, InclusionProof};
use crate::services::status::Status;
use crate::telemetry::Sample;
use cairn_projections::alerts::{Delivery, Rule, Target};

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No token.
    Public,
    /// The admin token.
    Admin,
    /// The admin token, or the token of the client the route names (checked by the handler).
    AdminOrClient,
    /// The admin token, unless the server runs with `--metrics-public` (for a scraper without secrets).
    Metrics,
    /// The admin token, unless the server runs with `--public-proofs` (for auditors and mirrors).
    Proofs,
}

/// Every endpoint, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Health,
    Status,
    ClientsList,
    ClientsCreate,
    ClientGet,
    ClientPatch,
    ClientDelete,
    ClientHeartbeat,
    ClientDisconnect,
    ClientToken,
    ClientStorage,
    ClientArchive,
    ClientRestore,
    RunsList,
    RunStart,
    RunFinish,
    FileKnown,
    FilesList,
    ClientFiles,
    Upload,
    FileGet,
    FileDelete,
    FileContent,
    FileVerify,
    Transfers,
    LogsList,
    LogsCreate,
    LogsClear,
    LogsExport,
    Events,
    Event,
    Stream,
    AuditVerify,
    AuditCheckpoint,
    AuditKey,
    AuditInclusion,
    AuditConsistency,
    AuditTile,
    FleetSites,
    FleetSite,
    FleetClients,
    Stats,
    OpenApi,
    System,
    Activity,
    Attention,
    Alerts,
    AlertTargetCreate,
    AlertTargetDelete,
    AlertTargetTest,
    AlertRuleCreate,
    AlertRuleDelete,
    AlertDeliveries,
    Db,
    DbHealth,
    DbTable,
    DbRowPatch,
    DbRowDelete,
    DbQuery,
    DbBackup,
    DbBackups,
    DbBackupVerify,
    DbOptimize,
    Metrics,
    Live,
}

/// What a route answers when it succeeds.
#[derive(Clone, Copy)]
pub enum Answer {
    /// The envelope with this status, its `data` described by a type's JSON Schema.
    Json {
        status: u16,
        data: fn(&mut SchemaGenerator) -> Schema,
    },
    /// A body of its own (a download, an export, this document), with these statuses and content types.
    Raw {
        statuses: &'static [u16],
        content: &'static [&'static str],
    },
    /// A WebSocket upgrade (101).
    Upgrade,
}

pub struct Route {
    pub endpoint: Endpoint,
    pub method: Method,
    /// `/api/clients/{id}`: `{name}` segments are parameters.
    pub path: &'static str,
    pub access: Access,
    pub answer: Answer,
    pub summary: &'static str,
}

/// A route's [`Answer`]: `json STATUS Type`, `raw [STATUS, …] "mime" …`, or `upgrade`.
macro_rules! answer {
    (json $status:literal $ty:ty) => {
        Answer::Json {
            status: $status,
            data: |g| g.subschema_for::<$ty>(),
        }
    };
    (raw [$($status:literal),+] $($mime:literal)+) => {
        Answer::Raw {
            statuses: &[$($status),+],
            content: &[$($mime),+],
        }
    };
    (upgrade) => {
        Answer::Upgrade
    };
}

macro_rules! routes {
    ($($endpoint:ident $method:ident $path:literal $access:ident ($($answer:tt)+) $summary:literal;)*) => {
        /// Every route the server answers.
        pub fn routes() -> &'static [Route] {
            static ROUTES: std::sync::OnceLock<Vec<Route>> = std::sync::OnceLock::new();
            ROUTES.get_or_init(|| vec![$(Route {
                endpoint: Endpoint::$endpoint,
                method: Method::$method,
                path: $path,
                access: Access::$access,
                answer: answer!($($answer)+),
                summary: $summary,
            }),*])
        }
    };
}

routes! {
    Health GET "/api/health" Public (json 200 Alive) "Liveness: answers without a token.";
    Status GET "/api/status" Admin (json 200 Status) "Server figures: clients, files, transfers, storage, uptime, events, head position.";
    ClientsList GET "/api/clients" Admin (json 200 Page<Client>) "Clients, paginated (page, per_page, sort, q, status, overdue).";
    ClientsCreate POST "/api/clients" Admin (json 201 ClientCreated) "Registers a client; answers with its token, shown once.";
    ClientGet GET "/api/clients/{id}" Admin (json 200 Client) "One client; with ?at=POSITION, as it was then.";
    ClientPatch PATCH "/api/clients/{id}" Admin (json 200 Client) "Renames a client, changes its address or its expected backup interval (expected_version optional).";
    ClientDelete DELETE "/api/clients/{id}" Admin (json 200 ClientDeleted) "Deletes a client and its files.";
    ClientHeartbeat POST "/api/clients/{id}/heartbeat" AdminOrClient (json 200 HeartbeatAnswer) "A client's heartbeat: connects it if it was not.";
    ClientDisconnect POST "/api/clients/{id}/disconnect" AdminOrClient (json 200 Client) "Marks a connected client offline.";
    ClientToken POST "/api/clients/{id}/token" Admin (json 200 TokenRotated) "Rotates a client's token; answers with the new one, shown once.";
    ClientStorage GET "/api/clients/{id}/storage" Admin (json 200 StorageHistory) "A client's files and bytes stored after each of its changes, oldest first (at most 500 points).";
    ClientArchive GET "/api/clients/{id}/archive" AdminOrClient (raw [200] "application/x-tar" "application/zip") "A client's files as they were at a position or time (at, default now), as a tar or a zip (format) with MANIFEST.json last.";
    ClientRestore GET "/api/clients/{id}/restore" AdminOrClient (json 200 Preview) "What an archive of a moment (at) would hold: the files then, each against now (unchanged, changed, deleted), and those added since.";
    RunsList GET "/api/clients/{id}/runs" AdminOrClient (json 200 Page<Run>) "A client's backup runs, newest first, paginated (status).";
    RunStart POST "/api/clients/{id}/runs" AdminOrClient (json 201 Run) "Begins a backup run: {folders, agent_version, host}. Its uploads, known records and deletions name it (?run=ID).";
    RunFinish POST "/api/clients/{id}/runs/{run}/finish" AdminOrClient (json 200 Run) "Ends a run: {outcome: ok|partial|failed, scanned, new, changed, unchanged, deleted, failed, bytes_sent, bytes_skipped, errors}.";
    FileKnown POST "/api/clients/{id}/files/known" AdminOrClient (json 201 File) "Records a file whose content this client stored before, without the bytes: {name, path, sha256, size, mtime, mode}; 404 CONTENT_UNKNOWN means upload it.";
    FilesList GET "/api/files" Admin (json 200 Page<File>) "Files, paginated (page, per_page, sort, q, client, verified).";
    ClientFiles GET "/api/clients/{id}/files" AdminOrClient (json 200 Page<File>) "One client's files, paginated (verified, run: those a backup run stored).";
    Upload POST "/api/clients/{id}/files" AdminOrClient (json 201 File) "Uploads a file: raw body; ?name=…&path=…&mtime=…&mode=…&run=…; X-Content-SHA256 and X-Content-CRC32 optional.";
    FileGet GET "/api/files/{id}" Admin (json 200 File) "One file; with ?at=POSITION, as it was then.";
    FileDelete DELETE "/api/files/{id}" AdminOrClient (json 200 FileDeleted) "Deletes a file (?run=ID for a backup run's); a client may delete its own, whose content is then kept for the retention.";
    FileContent GET "/api/files/{id}/content" Admin (raw [200, 206] "application/octet-stream") "Downloads a file (in its own content type); supports Range.";
    FileVerify POST "/api/files/{id}/verify" Admin (json 200 Verification) "Re-reads a file's blob and checks both checksums.";
    Transfers GET "/api/transfers" Admin (json 200 Page<Transfer>) "Transfers, paginated (status, client).";
    LogsList GET "/api/logs" Admin (json 200 Page<LogEntry>) "Log lines, paginated (level, source, client, q, from, to).";
    LogsCreate POST "/api/logs" AdminOrClient (json 201 LogRecorded) "Records a log line (a client logs as itself).";
    LogsClear DELETE "/api/logs" Admin (json 200 LogsCleared) "Clears the log table (the events stay).";
    LogsExport GET "/api/logs/export" Admin (raw [200] "application/json" "text/csv" "application/jsonl") "Streams the log lines as json, csv or jsonl, with the list's filters.";
    Events GET "/api/events" Admin (json 200 EventsPage) "The audit trail, filtered (stream, type, actor, after, from, to, limit), with a cursor.";
    Event GET "/api/events/{position}" Admin (json 200 EventView) "One event.";
    Stream GET "/api/streams/{stream}" Admin (json 200 StreamHistory) "One entity's history.";
    AuditVerify GET "/api/audit/verify" Admin (json 200 ChainStatus) "Recomputes every CRC and the hash chain.";
    AuditCheckpoint GET "/api/audit/checkpoint" Proofs (raw [200] "text/plain") "The latest signed checkpoint of the log's Merkle tree (c2sp.org/tlog-checkpoint in a signed note, Ed25519), at most about a second behind the head.";
    AuditKey GET "/api/audit/key" Proofs (raw [200] "text/plain") "The key that verifies the checkpoints: <name>+<hex key ID>+<base64(0x01 ‖ public key)>.";
    AuditInclusion GET "/api/audit/proof/inclusion" Proofs (json 200 InclusionProof) "The proof that the event at position P is in the tree of size N (default: the latest checkpoint's): ?position=P&size=N.";
    AuditConsistency GET "/api/audit/proof/consistency" Proofs (json 200 ConsistencyProof) "The proof that the tree of size N1 is a prefix of the tree of size N2 (default: the latest checkpoint's): ?from=N1&to=N2.";
    AuditTile GET "/api/audit/tile/{tile*}" Proofs (raw [200] "application/octet-stream") "The tree's tiles (tile/<L>/<N>[.p/<W>]) and entry bundles (tile/entries/<N>[.p/<W>]) of c2sp.org/tlog-tiles, for a static mirror.";
    FleetSites GET "/api/fleet/sites" Admin (json 200 Vec<SiteSummary>) "A hub's sites, worst state first: up, lagging, down or broken, with each site's head, lag, chain and figures (404 NOT_A_HUB on a site).";
    FleetSite GET "/api/fleet/sites/{site}" Admin (json 200 SiteSummary) "One site of a hub's fleet.";
    FleetClients GET "/api/fleet/clients" Admin (json 200 Vec<FleetClient>) "Every site's clients (site, q: a name's part), by site and name, at most 1000.";
    Stats GET "/api/stats" Admin (json 200 StatsAnswer) "Counters per minute, hour or day (from, to, bucket), and totals.";
    OpenApi GET "/api/openapi.json" Public (raw [200] "application/json") "This document.";
    System GET "/api/system" Admin (json 200 Sample) "Telemetry: CPU, memory, the data directory's disk, the process's RSS.";
    Activity GET "/api/activity" Admin (json 200 Activity) "The latest events, described for people (limit).";
    Alerts GET "/api/alerts" Admin (json 200 AlertsSetup) "Alert targets and rules, the kinds a rule can name, and whether e-mail can be sent.";
    AlertTargetCreate POST "/api/alerts/targets" Admin (json 201 Target) "Adds a target: {name, kind: webhook|email, address}.";
    AlertTargetDelete DELETE "/api/alerts/targets/{id}" Admin (json 200 Removed) "Removes a target and its rules.";
    AlertTargetTest POST "/api/alerts/targets/{id}/test" Admin (json 202 TestRequested) "Sends a test alert to one target (delivered like any other).";
    AlertRuleCreate POST "/api/alerts/rules" Admin (json 201 Rule) "Routes alert kinds to a target: {target_id, kinds, client_id?}.";
    AlertRuleDelete DELETE "/api/alerts/rules/{id}" Admin (json 200 Removed) "Removes a rule.";
    AlertDeliveries GET "/api/alerts/deliveries" Admin (json 200 Page<Delivery>) "Every delivery attempt, newest first, paginated (target_id).";
    Attention GET "/api/attention" Admin (json 200 Attention) "What needs attention: failed transfers and verifications of the last 24 h, overdue and offline clients.";
    Db GET "/api/db" Admin (json 200 Info) "The database: tables with rows and sizes, schema and SQLite versions, WAL size, last backup.";
    DbHealth GET "/api/db/health" Admin (json 200 Health) "integrity_check, foreign_key_check, the chain, projection checkpoints against the head, WAL size.";
    DbTable GET "/api/db/tables/{name}" Admin (json 200 TablePage) "Browses one of the fixed tables, paginated and sortable.";
    DbRowPatch PATCH "/api/db/tables/{name}/{id}" Admin (json 200 Positions) "Changes a row through the domain's event (409 where none fits; always on events).";
    DbRowDelete DELETE "/api/db/tables/{name}/{id}" Admin (json 200 Positions) "Deletes a row through the domain's event (409 where none fits; always on events).";
    DbQuery POST "/api/db/query" Admin (json 200 QueryResult) "Read-only SQL over the fixed tables: a read-only connection, an authorizer, a time limit, a row cap.";
    DbBackup POST "/api/db/backup" Admin (json 201 Backup) "Writes a complete snapshot (the database and every blob it refers to) into <data>/backups/.";
    DbBackups GET "/api/db/backups" Admin (json 200 Vec<BackupEntry>) "The snapshots in <data>/backups/, newest first, with their size and last check.";
    DbBackupVerify POST "/api/db/backups/{name}/verify" Admin (json 200 Verified) "Checks a snapshot: its chain, every blob's SHA-256, and a replay.";
    DbOptimize POST "/api/db/optimize" Admin (json 200 Optimized) "ANALYZE and PRAGMA optimize, by the writer.";
    Metrics GET "/metrics" Metrics (raw [200] "application/openmetrics-text") "The figures in the OpenMetrics text format, for Prometheus (admin token unless --metrics-public).";
    Live GET "/api/live" Public (upgrade) "The live feed, a WebSocket (token in Authorization or ?token=): send {\"op\":\"subscribe\",\"from\":P,\"streams\":[],\"types\":[]}.";
}

/// What matching a path against the table found.
pub enum Match {
    Found(&'static Route, Vec<String>),
    /// The path exists with other methods.
    WrongMethod(Vec<Method>),
    None,
}

/// Finds the route of a request.
pub fn find(method: &Method, path: &str) -> Match {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let mut allowed = Vec::new();
    for route in routes() {
        if let Some(params) = matches(route.path, &segments) {
            if route.method == *method {
                return Match::Found(route, params);
            }
            allowed.push(route.method.clone());
        }
    }
    if allowed.is_empty() {
        Match::None
    } else {
        Match::WrongMethod(allowed)
    }
}

/// Matches a path's segments against a template; a last part `{name*}` takes one or more segments, joined
/// with `/` (a tile's path).
fn matches(template: &str, segments: &[&str]) -> Option<Vec<String>> {
    let parts: Vec<&str> = template.split('/').collect();
    let rest = parts.last().is_some_and(|p| p.ends_with("*}"));
    if rest {
        if segments.len() < parts.len() {
            return None;
        }
    } else if parts.len() != segments.len() {
        return None;
    }
    let mut params = Vec::new();
    for (i, (part, seg)) in parts.iter().zip(segments).enumerate() {
        if rest && i == parts.len() - 1 {
            let tail = &segments[i..];
            if tail.iter().any(|s| s.is_empty()) {
                return None;
            }
            let decoded: Option<Vec<String>> = tail.iter().map(|s| percent_decode(s)).collect();
            params.push(decoded?.join("/"));
        } else if part.starts_with('{') {
            if seg.is_empty() {
                return None;
            }
            params.push(percent_decode(seg)?);
        } else if part != seg {
            return None;
        }
    }
    Some(params)
}

/// A path segment, percent-decoded; `None` when a `%` is not followed by two hex digits or the bytes are not
/// UTF-8 (such a segment names nothing).
fn percent_decode(s: &str) -> Option<String> {
    let well_formed = s
        .split('%')
        .skip(1)
        .all(|rest| rest.len() >= 2 && rest.as_bytes()[..2].iter().all(u8::is_ascii_hexdigit));
    if !well_formed {
        return None;
    }
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .ok()
        .map(|c| c.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_match_their_templates_and_methods() {
        assert!(
            matches!(find(&Method::GET, "/api/clients"), Match::Found(r, p) if r.endpoint == Endpoint::ClientsList && p.is_empty())
        );
        assert!(
            matches!(find(&Method::GET, "/api/clients/abc"), Match::Found(r, p) if r.endpoint == Endpoint::ClientGet && p == ["abc"])
        );
        assert!(matches!(find(&Method::GET, "/api/streams/client-1%2Fx"), Match::Found(_, p) if p == ["client-1/x"]));
        assert!(matches!(find(&Method::PUT, "/api/clients"), Match::WrongMethod(m) if m.len() == 2));
        assert!(matches!(find(&Method::GET, "/api/nothing"), Match::None));
        assert!(matches!(find(&Method::GET, "/api/clients//files"), Match::None));
        assert!(matches!(find(&Method::GET, "/api/streams/%zz"), Match::None));
        assert!(
            matches!(find(&Method::GET, "/api/audit/tile/0/x001/234.p/7"), Match::Found(r, p) if r.endpoint == Endpoint::AuditTile && p == ["0/x001/234.p/7"])
        );
        assert!(matches!(find(&Method::GET, "/api/audit/tile"), Match::None));
        assert!(matches!(find(&Method::GET, "/api/audit/tile/0//1"), Match::None));
    }

    #[test]
    fn every_route_is_unique() {
        let mut seen = std::collections::HashSet::new();
        for r in routes() {
            assert!(seen.insert((r.method.clone(), r.path)), "{} {} twice", r.method, r.path);
        }
    }
}
