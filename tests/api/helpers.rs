//! What the API tests share beyond `tests/common/api.rs`: asserting error envelopes, the client's own requests,
//! reading the log behind the server, a tampered log, and DESIGN.md's list of endpoints.

use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;

use crate::common_api::{spawn_app, spawn_app_with, Reply, TestApp, ADMIN};

/// Every endpoint of DESIGN.md's HTTP table (the live feed, `/api/live`, is the next issue's).
pub const DESIGN_ENDPOINTS: &[(&str, &str)] = &[
    ("get", "/api/health"),
    ("get", "/api/status"),
    ("get", "/api/system"),
    ("get", "/api/activity"),
    ("get", "/api/clients"),
    ("post", "/api/clients"),
    ("get", "/api/clients/{id}"),
    ("patch", "/api/clients/{id}"),
    ("delete", "/api/clients/{id}"),
    ("post", "/api/clients/{id}/heartbeat"),
    ("post", "/api/clients/{id}/disconnect"),
    ("post", "/api/clients/{id}/token"),
    ("get", "/api/files"),
    ("get", "/api/clients/{id}/files"),
    ("post", "/api/clients/{id}/files"),
    ("get", "/api/files/{id}"),
    ("delete", "/api/files/{id}"),
    ("get", "/api/files/{id}/content"),
    ("post", "/api/files/{id}/verify"),
    ("get", "/api/transfers"),
    ("get", "/api/logs"),
    ("post", "/api/logs"),
    ("delete", "/api/logs"),
    ("get", "/api/logs/export"),
    ("get", "/api/events"),
    ("get", "/api/events/{position}"),
    ("get", "/api/streams/{stream}"),
    ("get", "/api/audit/verify"),
    ("get", "/api/stats"),
    ("get", "/api/db"),
    ("get", "/api/db/health"),
    ("get", "/api/db/tables/{name}"),
    ("patch", "/api/db/tables/{name}/{id}"),
    ("delete", "/api/db/tables/{name}/{id}"),
    ("post", "/api/db/query"),
    ("post", "/api/db/backup"),
    ("post", "/api/db/optimize"),
    ("get", "/api/openapi.json"),
];

/// The answer is the error envelope with this status and code.
#[track_caller]
pub fn assert_error(r: &Reply, status: u16, code: &str) {
    assert_eq!(
        (r.status, r.code()),
        (status, code.to_owned()),
        "{}",
        String::from_utf8_lossy(&r.body)
    );
}

/// An admin `GET` of `path` is refused as `400 INVALID_QUERY`.
pub async fn assert_invalid_query(app: &TestApp, path: &str) {
    let r = app.get(path).await;
    assert_eq!(
        (r.status, r.code()),
        (400, "INVALID_QUERY".to_owned()),
        "{path}: {}",
        String::from_utf8_lossy(&r.body)
    );
}

/// A request with `token` and an empty body.
pub async fn send_as(app: &TestApp, method: &str, path: &str, token: &str) -> Reply {
    app.send(method, path, Some(token), &[], Bytes::new()).await
}

/// A client's heartbeat, with its own token.
pub async fn heartbeat(app: &TestApp, id: &str, token: &str) -> Reply {
    send_as(app, "POST", &format!("/api/clients/{id}/heartbeat"), token).await
}

/// A client's disconnection, with its own token.
pub async fn disconnect(app: &TestApp, id: &str, token: &str) -> Reply {
    send_as(app, "POST", &format!("/api/clients/{id}/disconnect"), token).await
}

/// How many events of `event_type` the log holds.
pub fn events_of_type(app: &TestApp, event_type: &str) -> i64 {
    app.count(&format!("SELECT count(*) FROM events WHERE type = '{event_type}'"))
}

/// The JSON data of the one event of `event_type`, as stored.
pub fn data_of_the_event(app: &TestApp, event_type: &str) -> String {
    let conn = cairn_events::schema::open_read_only(&app.dir.path().join("cairn.db")).unwrap();
    conn.query_row("SELECT data FROM events WHERE type = ?1", [event_type], |r| r.get(0))
        .unwrap()
}

/// How many files wait in the blob store's temporary folder.
pub fn temporary_blobs(app: &TestApp) -> usize {
    std::fs::read_dir(app.dir.path().join("blobs/tmp")).unwrap().count()
}

/// Posts a log line as the admin; it must be recorded.
pub async fn log_line(app: &TestApp, body: Value) {
    let r = app.post_json("/api/logs", Some(ADMIN), body).await;
    assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
}

/// Uploads a file as the client and answers its id.
pub async fn upload_id(app: &TestApp, client: &str, token: &str, name: &str, content: &[u8]) -> String {
    let r = app.upload(client, token, name, content).await;
    assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
    r.data()["id"].as_str().unwrap().to_owned()
}

/// A server whose uploads may be at most `max_upload` bytes.
pub async fn spawn_app_with_upload_limit(max_upload: u64) -> TestApp {
    spawn_app_with(
        cairn::Options {
            durability: cairn_events::Durability::Normal,
            max_upload,
            ..cairn::Options::default()
        },
        Duration::from_secs(60),
    )
    .await
}

/// A server with three registered clients (positions 1 to 3) whose log someone edited behind cairn's back:
/// the second event's data no longer matches its hash.
pub async fn spawn_app_with_a_tampered_log() -> TestApp {
    let app = spawn_app().await;
    app.register("alpha").await;
    app.register("bravo").await;
    app.register("charlie").await;
    let conn = rusqlite::Connection::open(app.dir.path().join("cairn.db")).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    conn.execute_batch("UPDATE events SET data = replace(data, 'bravo', 'BRAVO') WHERE position = 2")
        .unwrap();
    drop(conn);
    app
}

/// After a refused upload: no file, `failed` failed transfers, and nothing left in the blob store's temporary
/// folder.
#[track_caller]
pub fn assert_no_file_stored(app: &TestApp, failed: i64) {
    assert_eq!(app.count("SELECT count(*) FROM files"), 0, "no file is stored");
    assert_eq!(
        app.count("SELECT count(*) FROM transfers WHERE status = 'Failed'"),
        failed,
        "failed transfers"
    );
    assert_eq!(temporary_blobs(app), 0, "no temporary blob is left");
}
