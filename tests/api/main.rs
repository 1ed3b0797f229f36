//! The HTTP API against a real server on port 0: each endpoint's happy and error paths, and a battery of bad
//! input, each answered with the right status and code, nothing stored, the server still up.
#![allow(clippy::unwrap_used)] // a test that cannot proceed should panic where it stopped

mod audit;
mod auth;
mod bad_input;
mod clients;
#[path = "../common/api.rs"]
mod common_api;
mod files;
mod helpers;
mod logs;
mod routes;
mod status;

use bytes::Bytes;
use common_api::{spawn_app, urlencode, ADMIN};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_endpoints_inform_check_browse_back_up_and_optimize() {
    let app = spawn_app().await;
    let (a, token) = app.register("alpha").await;
    app.upload(&a, &token, "f.txt", b"abc").await;
    let info = app.get("/api/db").await.data();
    assert_eq!(info["schema_version"], cairn_events::schema::latest_version());
    assert_eq!(info["journal_mode"], "wal");
    let events = info["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "events")
        .unwrap()
        .clone();
    assert_eq!(events["rows"], 4);
    assert!(events["bytes"].as_i64().unwrap() > 0);
    assert_eq!(info["last_backup"], json!(null));

    let health = app.get("/api/db/health").await.data();
    assert_eq!(health["ok"], true, "{health}");
    let names: Vec<&str> = health["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "integrity_check",
            "foreign_key_check",
            "chain",
            "projections",
            "wal_size"
        ]
    );

    let t = app.get("/api/db/tables/clients").await.data();
    assert_eq!(t["page"]["total"], 1);
    assert!(
        !t["columns"].as_array().unwrap().contains(&json!("token_hash")),
        "secrets stay hidden"
    );
    let t = app.get("/api/db/tables/events?per_page=2&sort=-position").await.data();
    assert_eq!(t["page"]["items"][0]["position"], 4);
    for bad in ["sqlite_master", "secrets", "clients;DROP"] {
        let r = app.get(&format!("/api/db/tables/{}", urlencode(bad))).await;
        assert_eq!((r.status, r.code()), (404, "TABLE_NOT_FOUND".to_owned()), "{bad}");
    }

    let b = app.admin("POST", "/api/db/backup", json!(null)).await;
    assert_eq!(b.status, 201);
    let path = b.data()["path"].as_str().unwrap().to_owned();
    assert!(std::path::Path::new(&path).exists());
    assert_eq!(
        app.get("/api/db").await.data()["last_backup"]["type"],
        "DatabaseBackedUp"
    );
    let o = app.admin("POST", "/api/db/optimize", json!(null)).await;
    assert_eq!(o.status, 200);
    assert_eq!(
        app.count("SELECT count(*) FROM events WHERE type = 'DatabaseOptimized'"),
        1
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_edits_become_events_and_the_log_itself_is_never_edited() {
    let app = spawn_app().await;
    let (a, token) = app.register("alpha").await;
    let f = app.upload(&a, &token, "f.txt", b"abc").await.data()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.post_json("/api/logs", Some(ADMIN), json!({ "level": "info", "message": "m" }))
        .await;

    let r = app
        .admin(
            "PATCH",
            &format!("/api/db/tables/clients/{a}"),
            json!({ "name": "renamed" }),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(app.get(&format!("/api/clients/{a}")).await.data()["name"], "renamed");
    assert_eq!(app.count("SELECT count(*) FROM events WHERE type = 'ClientUpdated'"), 1);
    let r = app
        .admin(
            "PATCH",
            &format!("/api/db/tables/clients/{a}"),
            json!({ "files_count": 99 }),
        )
        .await;
    assert_eq!((r.status, r.code()), (409, "NO_EVENT_FITS".to_owned()));
    for (method, path) in [
        ("PATCH", "/api/db/tables/events/1"),
        ("DELETE", "/api/db/tables/events/1"),
    ] {
        let r = app.admin(method, path, json!({ "data": "{}" })).await;
        assert_eq!((r.status, r.code()), (409, "EVENTS_IMMUTABLE".to_owned()), "{method}");
    }
    for (method, path) in [
        ("PATCH", "/api/db/tables/logs/5"),
        ("DELETE", "/api/db/tables/stats/x"),
        ("DELETE", "/api/db/tables/transfers/x"),
    ] {
        let r = app.admin(method, path, json!({ "level": "error" })).await;
        assert_eq!(
            (r.status, r.code()),
            (409, "NO_EVENT_FITS".to_owned()),
            "{method} {path}"
        );
    }
    let r = app
        .admin("DELETE", &format!("/api/db/tables/files/{f}"), json!(null))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(app.count("SELECT count(*) FROM events WHERE type = 'FileDeleted'"), 1);
    let r = app.admin("DELETE", "/api/db/tables/files/not-an-id", json!(null)).await;
    assert_eq!((r.status, r.code()), (404, "ROW_NOT_FOUND".to_owned()));
    let before = app.count("SELECT count(*) FROM events");
    let v = app.get("/api/audit/verify").await.data();
    assert_eq!((v["ok"].clone(), v["checked"].clone()), (json!(true), json!(before)));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sql_console_reads_and_refuses_to_write_or_escape() {
    let app = spawn_app().await;
    app.register("alpha").await;
    let r = app
        .admin(
            "POST",
            "/api/db/query",
            json!({ "sql": "SELECT name, status FROM clients" }),
        )
        .await;
    let d = r.data();
    assert_eq!(
        (d["columns"].clone(), d["rows"][0].clone()),
        (json!(["name", "status"]), json!(["alpha", "Registered"]))
    );
    for sql in [
        "DELETE FROM events",
        "UPDATE clients SET name = 'x'",
        "DROP TABLE clients",
        "ATTACH DATABASE '/tmp/x.db' AS x",
        "SELECT * FROM pragma_database_list",
        "PRAGMA journal_mode = DELETE",
        "SELECT load_extension('/tmp/evil')",
    ] {
        let r = app.admin("POST", "/api/db/query", json!({ "sql": sql })).await;
        assert_eq!((r.status, r.code()), (400, "QUERY_REFUSED".to_owned()), "{sql}");
    }
    let r = app.admin("POST", "/api/db/query", json!({ "sql": " " })).await;
    assert_eq!((r.status, r.code()), (400, "VALIDATION_ERROR".to_owned()));
    let r = app.admin("POST", "/api/db/query", json!({ "query": "SELECT 1" })).await;
    assert_eq!((r.status, r.code()), (400, "INVALID_JSON".to_owned()));
    assert_eq!(app.count("SELECT count(*) FROM clients"), 1, "nothing was changed");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_log_is_reported_by_audit_verify_and_db_health() {
    let app = spawn_app().await;
    app.register("alpha").await;
    app.register("bravo").await;
    app.register("charlie").await;
    // Someone edits the log behind cairn's back.
    let conn = rusqlite::Connection::open(app.dir.path().join("cairn.db")).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
    conn.execute_batch("UPDATE events SET data = replace(data, 'bravo', 'BRAVO') WHERE position = 2")
        .unwrap();
    drop(conn);
    let v = app.get("/api/audit/verify").await;
    assert_eq!(
        (v.status, v.json()["message"].clone()),
        (200, json!("the chain is broken"))
    );
    let d = v.data();
    assert_eq!(
        (
            d["ok"].clone(),
            d["first_bad"]["position"].clone(),
            d["checked"].clone()
        ),
        (json!(false), json!(2), json!(1))
    );
    let health = app.get("/api/db/health").await.data();
    assert_eq!(health["ok"], false);
    let chain = health["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "chain")
        .unwrap()
        .clone();
    assert_eq!(chain["ok"], false);
    assert!(chain["detail"].as_str().unwrap().contains("position 2"), "{chain}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_is_served_without_a_token_and_weighs_under_300_kb() {
    let app = spawn_app().await;
    let mut total = 0;
    let files = cairn::http::web::files();
    for path in ["/index.html", "/styles.css", "/js/app.js", "/vendor/uplot/LICENSE"] {
        assert!(files.iter().any(|(p, _)| p == path), "{path} is embedded");
    }
    for (path, mime) in &files {
        let r = app.send("GET", path, None, &[], Bytes::new()).await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.headers["content-type"], mime.as_str(), "{path}");
        if path.ends_with(".js") {
            assert_eq!(mime, "text/javascript; charset=utf-8", "{path}");
        }
        total += r.body.len();
    }
    assert!(total < 300 * 1024, "the whole page weighs {total} bytes");
    let index = app.send("GET", "/", None, &[], Bytes::new()).await;
    assert!(String::from_utf8_lossy(&index.body).contains(r#"<script type="module" src="/js/app.js">"#));
    assert_eq!(
        app.send("GET", "/index.html", None, &[], Bytes::new()).await.status,
        200
    );
    let r = app.send("GET", "/js/nothing.js", None, &[], Bytes::new()).await;
    assert_eq!((r.status, r.code()), (404, "ROUTE_NOT_FOUND".to_owned()));
    let r = app.send("GET", "/api/status", None, &[], Bytes::new()).await;
    assert_eq!(r.status, 401, "the API still wants its token");
    app.stop().await;
}

#[test]
fn every_file_in_web_is_embedded() {
    fn walk(dir: &std::path::Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            if e.path().is_dir() {
                walk(&e.path(), out);
            } else {
                out.push(e.path().to_string_lossy().into_owned());
            }
        }
    }
    let web = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
    let mut found = Vec::new();
    walk(&web, &mut found);
    let mut served: Vec<String> = cairn::http::web::files()
        .iter()
        .map(|(p, _)| web.join(&p[1..]).to_string_lossy().into_owned())
        .collect();
    found.sort();
    served.sort();
    assert_eq!(found, served);
}
