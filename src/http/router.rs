//! The route table: every endpoint, once. The router matches requests against it and the OpenAPI document is
//! generated from it, so an endpoint cannot exist undocumented.

use warp::http::Method;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No token.
    Public,
    /// The admin token.
    Admin,
    /// The admin token, or the token of the client the route names (checked by the handler).
    AdminOrClient,
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
    Stats,
    OpenApi,
    System,
    Activity,
    Db,
    DbHealth,
    DbTable,
    DbRowPatch,
    DbRowDelete,
    DbQuery,
    DbBackup,
    DbOptimize,
    Live,
}

pub struct Route {
    pub endpoint: Endpoint,
    pub method: Method,
    /// `/api/clients/{id}`: `{name}` segments are parameters.
    pub path: &'static str,
    pub access: Access,
    pub summary: &'static str,
}

macro_rules! routes {
    ($($endpoint:ident $method:ident $path:literal $access:ident $summary:literal;)*) => {
        /// Every route the server answers.
        pub fn routes() -> &'static [Route] {
            static ROUTES: std::sync::OnceLock<Vec<Route>> = std::sync::OnceLock::new();
            ROUTES.get_or_init(|| vec![$(Route {
                endpoint: Endpoint::$endpoint,
                method: Method::$method,
                path: $path,
                access: Access::$access,
                summary: $summary,
            }),*])
        }
    };
}

routes! {
    Health GET "/api/health" Public "Liveness: answers without a token.";
    Status GET "/api/status" Admin "Server figures: clients, files, transfers, storage, uptime, events, head position.";
    ClientsList GET "/api/clients" Admin "Clients, paginated (page, per_page, sort, q, status).";
    ClientsCreate POST "/api/clients" Admin "Registers a client; answers with its token, shown once.";
    ClientGet GET "/api/clients/{id}" Admin "One client; with ?at=POSITION, as it was then.";
    ClientPatch PATCH "/api/clients/{id}" Admin "Renames a client or changes its address (expected_version optional).";
    ClientDelete DELETE "/api/clients/{id}" Admin "Deletes a client and its files.";
    ClientHeartbeat POST "/api/clients/{id}/heartbeat" AdminOrClient "A client's heartbeat: connects it if it was not.";
    ClientDisconnect POST "/api/clients/{id}/disconnect" AdminOrClient "Marks a connected client offline.";
    ClientToken POST "/api/clients/{id}/token" Admin "Rotates a client's token; answers with the new one, shown once.";
    FilesList GET "/api/files" Admin "Files, paginated (page, per_page, sort, q, client, verified).";
    ClientFiles GET "/api/clients/{id}/files" AdminOrClient "One client's files, paginated.";
    Upload POST "/api/clients/{id}/files" AdminOrClient "Uploads a file: raw body; ?name=…&path=…; X-Content-SHA256 and X-Content-CRC32 optional.";
    FileGet GET "/api/files/{id}" Admin "One file; with ?at=POSITION, as it was then.";
    FileDelete DELETE "/api/files/{id}" Admin "Deletes a file (its blob goes when no other file holds the content).";
    FileContent GET "/api/files/{id}/content" Admin "Downloads a file; supports Range.";
    FileVerify POST "/api/files/{id}/verify" Admin "Re-reads a file's blob and checks both checksums.";
    Transfers GET "/api/transfers" Admin "Transfers, paginated (status, client).";
    LogsList GET "/api/logs" Admin "Log lines, paginated (level, source, client, q, from, to).";
    LogsCreate POST "/api/logs" AdminOrClient "Records a log line (a client logs as itself).";
    LogsClear DELETE "/api/logs" Admin "Clears the log table (the events stay).";
    LogsExport GET "/api/logs/export" Admin "Streams the log lines as json, csv or jsonl, with the list's filters.";
    Events GET "/api/events" Admin "The audit trail, filtered (stream, type, actor, after, from, to, limit), with a cursor.";
    Event GET "/api/events/{position}" Admin "One event.";
    Stream GET "/api/streams/{stream}" Admin "One entity's history.";
    AuditVerify GET "/api/audit/verify" Admin "Recomputes every CRC and the hash chain.";
    Stats GET "/api/stats" Admin "Counters per minute, hour or day (from, to, bucket), and totals.";
    OpenApi GET "/api/openapi.json" Public "This document.";
    System GET "/api/system" Admin "Telemetry: CPU, memory, the data directory's disk, the process's RSS.";
    Activity GET "/api/activity" Admin "The latest events, described for people (limit).";
    Db GET "/api/db" Admin "The database: tables with rows and sizes, schema and SQLite versions, WAL size, last backup.";
    DbHealth GET "/api/db/health" Admin "integrity_check, foreign_key_check, the chain, projection checkpoints against the head, WAL size.";
    DbTable GET "/api/db/tables/{name}" Admin "Browses one of the fixed tables, paginated and sortable.";
    DbRowPatch PATCH "/api/db/tables/{name}/{id}" Admin "Changes a row through the domain's event (409 where none fits; always on events).";
    DbRowDelete DELETE "/api/db/tables/{name}/{id}" Admin "Deletes a row through the domain's event (409 where none fits; always on events).";
    DbQuery POST "/api/db/query" Admin "Read-only SQL over the fixed tables: a read-only connection, an authorizer, a time limit, a row cap.";
    DbBackup POST "/api/db/backup" Admin "Writes an online backup into <data>/backups/.";
    DbOptimize POST "/api/db/optimize" Admin "ANALYZE and PRAGMA optimize, by the writer.";
    Live GET "/api/live" Public "The live feed, a WebSocket (token in Authorization or ?token=): send {\"op\":\"subscribe\",\"from\":P,\"streams\":[],\"types\":[]}.";
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

fn matches(template: &str, segments: &[&str]) -> Option<Vec<String>> {
    let parts: Vec<&str> = template.split('/').collect();
    if parts.len() != segments.len() {
        return None;
    }
    let mut params = Vec::new();
    for (part, seg) in parts.iter().zip(segments) {
        if part.starts_with('{') {
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
    }

    #[test]
    fn every_route_is_unique() {
        let mut seen = std::collections::HashSet::new();
        for r in routes() {
            assert!(seen.insert((r.method.clone(), r.path)), "{} {} twice", r.method, r.path);
        }
    }
}
