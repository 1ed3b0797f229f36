//! The OpenAPI document against the server it describes: every route's answers, happy and unhappy, are
//! checked against the schema the document gives for their status (as a schema-checking fuzzer would), and
//! every route is exercised at least once.
#![allow(clippy::unwrap_used)] // a test that cannot proceed should panic where it stopped

#[path = "common/api.rs"]
mod helpers;

use std::collections::BTreeSet;

use bytes::Bytes;
use helpers::{spawn_app, Reply, TestApp, ADMIN};
use serde_json::{json, Value};

/// The document, and the routes seen answering so far.
struct Checker {
    doc: Value,
    seen: BTreeSet<(String, String)>,
}

impl Checker {
    async fn new(app: &TestApp) -> Self {
        let doc = app
            .send("GET", "/api/openapi.json", None, &[], Bytes::new())
            .await
            .json();
        assert_eq!(doc["openapi"], "3.1.0");
        Self {
            doc,
            seen: BTreeSet::new(),
        }
    }

    /// The path template of the document that `path` (without its query) matches.
    fn template(&self, path: &str) -> String {
        let path = path.split('?').next().unwrap();
        let segments: Vec<&str> = path.split('/').collect();
        self.doc["paths"]
            .as_object()
            .unwrap()
            .keys()
            .find(|t| {
                let parts: Vec<&str> = t.split('/').collect();
                // `/api/audit/tile/{tile}` takes the rest of the path, slashes and all.
                let rest = t.ends_with("/tile/{tile}") && segments.len() > parts.len();
                (parts.len() == segments.len() || rest)
                    && parts.iter().zip(&segments).all(|(p, s)| p.starts_with('{') || p == s)
            })
            .unwrap_or_else(|| panic!("no path of the document matches {path}"))
            .clone()
    }

    /// Checks one answer against the document: its status is documented (or falls to `default`), its content
    /// type is one the document names, and a JSON body validates against the schema given for it.
    fn check(&mut self, method: &str, path: &str, r: &Reply) {
        let template = self.template(path);
        let operation = &self.doc["paths"][&template][method.to_ascii_lowercase()];
        assert!(operation.is_object(), "{method} {template} is not in the document");
        let status = r.status.to_string();
        let response = match &operation["responses"][&status] {
            Value::Null => {
                assert!(r.status >= 400, "{method} {path}: success {status} is not documented");
                &operation["responses"]["default"]
            }
            found => found,
        };
        self.seen.insert((method.to_owned(), template.clone()));
        let content = &response["content"];
        let mime = r.headers.get("content-type").map(|v| v.to_str().unwrap().to_owned());
        let Some(mime) = mime else {
            assert!(
                content.is_null(),
                "{method} {path}: no content type, yet the document says {content}"
            );
            return;
        };
        let base = mime.split(';').next().unwrap().trim();
        let media = content
            .as_object()
            .and_then(|c| c.get(base).or_else(|| c.get("application/octet-stream")))
            .unwrap_or_else(|| panic!("{method} {path} {status}: {mime} is not among {content}"));
        if base != "application/json" {
            return;
        }
        let schema = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "components": self.doc["components"],
            "allOf": [media["schema"]],
        });
        let validator = jsonschema::validator_for(&schema)
            .unwrap_or_else(|e| panic!("{method} {template}: the document's schema does not compile: {e}"));
        let body = r.json();
        let errors: Vec<String> = validator
            .iter_errors(&body)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{method} {path} {status} breaks the document:\n{}\nbody: {body}",
            errors.join("\n")
        );
    }
}

async fn call(app: &TestApp, c: &mut Checker, method: &str, path: &str, body: Value) -> Reply {
    let r = app.admin(method, path, body).await;
    c.check(method, path, &r);
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_of_every_route_matches_the_openapi_document() {
    let app = spawn_app().await;
    let mut c = Checker::new(&app).await;
    let none = Value::Null;

    for path in ["/api/health", "/api/openapi.json"] {
        let r = app.send("GET", path, None, &[], Bytes::new()).await;
        c.check("GET", path, &r);
    }
    call(&app, &mut c, "GET", "/api/status", none.clone()).await;
    call(&app, &mut c, "GET", "/api/system", none.clone()).await;
    call(&app, &mut c, "GET", "/metrics", none.clone()).await;
    let r = app.send("GET", "/metrics", None, &[], Bytes::new()).await; // 401
    c.check("GET", "/metrics", &r);

    // Clients: register, read, change, heartbeat, disconnect, rotate; and their refusals.
    let created = call(&app, &mut c, "POST", "/api/clients", json!({ "name": "alpha" })).await;
    assert_eq!(created.status, 201);
    let a = created.data()["client"]["id"].as_str().unwrap().to_owned();
    let token = created.data()["token"].as_str().unwrap().to_owned();
    call(&app, &mut c, "POST", "/api/clients", json!({ "name": "alpha" })).await; // 409
    call(&app, &mut c, "POST", "/api/clients", json!({ "nom": "x" })).await; // 400
    call(&app, &mut c, "GET", "/api/clients", none.clone()).await;
    call(&app, &mut c, "GET", "/api/clients?status=Nope", none.clone()).await; // 400
    call(&app, &mut c, "GET", &format!("/api/clients/{a}"), none.clone()).await;
    call(&app, &mut c, "GET", "/api/clients/not-an-id", none.clone()).await; // 404
    call(
        &app,
        &mut c,
        "PATCH",
        &format!("/api/clients/{a}"),
        json!({ "name": "alpha prime" }),
    )
    .await;
    let beat = app
        .send(
            "POST",
            &format!("/api/clients/{a}/heartbeat"),
            Some(&token),
            &[],
            Bytes::new(),
        )
        .await;
    c.check("POST", &format!("/api/clients/{a}/heartbeat"), &beat);
    call(
        &app,
        &mut c,
        "POST",
        &format!("/api/clients/{a}/disconnect"),
        none.clone(),
    )
    .await;
    call(
        &app,
        &mut c,
        "POST",
        &format!("/api/clients/{a}/disconnect"),
        none.clone(),
    )
    .await; // 409
    let rotated = call(&app, &mut c, "POST", &format!("/api/clients/{a}/token"), none.clone()).await;
    let token = rotated.data()["token"].as_str().unwrap().to_owned();

    // Files: upload, list, read, download (whole and a range), verify, and the state as of a position.
    let path = format!("/api/clients/{a}/files?name=notes.txt");
    let up = app.upload(&a, &token, "notes.txt", b"remember the milk").await;
    c.check("POST", &path, &up);
    let f = up.data()["id"].as_str().unwrap().to_owned();
    let bad = app
        .send(
            "POST",
            &path,
            Some(&token),
            &[("x-content-sha256", &"0".repeat(64))],
            Bytes::from_static(b"x"),
        )
        .await;
    c.check("POST", &path, &bad); // 400 CHECKSUM_MISMATCH
    call(&app, &mut c, "GET", "/api/files", none.clone()).await;
    call(&app, &mut c, "GET", &format!("/api/clients/{a}/files"), none.clone()).await;
    // A backup run: started, a file recorded from known content (and one refused), listed, finished twice.
    let run = call(
        &app,
        &mut c,
        "POST",
        &format!("/api/clients/{a}/runs"),
        json!({ "folders": ["/home/ada"], "agent_version": "0.1.0", "host": "ada-laptop" }),
    )
    .await
    .data()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let sha = up.data()["checksum"].as_str().unwrap().to_owned();
    let size = up.data()["size"].as_u64().unwrap();
    let known = format!("/api/clients/{a}/files/known?run={run}");
    call(
        &app,
        &mut c,
        "POST",
        &known,
        json!({ "name": "again.txt", "sha256": sha, "size": size }),
    )
    .await;
    let unknown = json!({ "name": "new.txt", "sha256": "ab".repeat(32), "size": 1 });
    call(&app, &mut c, "POST", &known, unknown).await; // 404 CONTENT_UNKNOWN
    call(&app, &mut c, "GET", &format!("/api/clients/{a}/runs"), none.clone()).await;
    let finish = format!("/api/clients/{a}/runs/{run}/finish");
    let end = json!({ "outcome": "ok", "scanned": 1, "new": 1, "bytes_skipped": size });
    call(&app, &mut c, "POST", &finish, end.clone()).await;
    call(&app, &mut c, "POST", &finish, end).await; // 409 RUN_FINISHED
    call(&app, &mut c, "GET", &format!("/api/files/{f}"), none.clone()).await;
    call(&app, &mut c, "GET", &format!("/api/files/{f}?at=1"), none.clone()).await; // 404: not yet
    call(&app, &mut c, "GET", &format!("/api/clients/{a}?at=1"), none.clone()).await;
    call(&app, &mut c, "GET", &format!("/api/files/{f}/content"), none.clone()).await;
    let range = app
        .send(
            "GET",
            &format!("/api/files/{f}/content"),
            Some(ADMIN),
            &[("range", "bytes=0-3")],
            Bytes::new(),
        )
        .await;
    assert_eq!(range.status, 206);
    c.check("GET", &format!("/api/files/{f}/content"), &range);
    let unsatisfiable = app
        .send(
            "GET",
            &format!("/api/files/{f}/content"),
            Some(ADMIN),
            &[("range", "bytes=99-")],
            Bytes::new(),
        )
        .await;
    c.check("GET", &format!("/api/files/{f}/content"), &unsatisfiable); // 416
    call(&app, &mut c, "POST", &format!("/api/files/{f}/verify"), none.clone()).await;
    call(&app, &mut c, "GET", "/api/transfers", none.clone()).await;

    // Logs.
    call(
        &app,
        &mut c,
        "POST",
        "/api/logs",
        json!({ "level": "info", "message": "hello" }),
    )
    .await;
    call(
        &app,
        &mut c,
        "POST",
        "/api/logs",
        json!({ "level": "loud", "message": "x" }),
    )
    .await; // 400
    call(&app, &mut c, "GET", "/api/logs", none.clone()).await;
    for format in ["json", "csv", "jsonl"] {
        call(
            &app,
            &mut c,
            "GET",
            &format!("/api/logs/export?format={format}"),
            none.clone(),
        )
        .await;
    }
    call(&app, &mut c, "GET", "/api/logs/export?format=xml", none.clone()).await; // 400

    // Audit and analytics.
    call(&app, &mut c, "GET", "/api/events?limit=5", none.clone()).await;
    call(&app, &mut c, "GET", "/api/events/1", none.clone()).await;
    call(&app, &mut c, "GET", "/api/events/999999", none.clone()).await; // 404
    call(&app, &mut c, "GET", &format!("/api/streams/client-{a}"), none.clone()).await;
    call(&app, &mut c, "GET", "/api/audit/verify", none.clone()).await;
    call(&app, &mut c, "GET", "/api/audit/checkpoint", none.clone()).await;
    call(&app, &mut c, "GET", "/api/audit/key", none.clone()).await;
    call(
        &app,
        &mut c,
        "GET",
        "/api/audit/proof/inclusion?position=1",
        none.clone(),
    )
    .await;
    call(
        &app,
        &mut c,
        "GET",
        "/api/audit/proof/inclusion?position=0",
        none.clone(),
    )
    .await; // 400
    call(&app, &mut c, "GET", "/api/audit/proof/consistency?from=1", none.clone()).await;
    call(&app, &mut c, "GET", "/api/audit/tile/0/000.p/1", none.clone()).await;
    call(&app, &mut c, "GET", "/api/audit/tile/0/999", none.clone()).await; // 404
                                                                            // The fleet's routes answer on a hub; here, a site, NOT_A_HUB (tests/fleet.rs and tests/browser/fleet.rs
                                                                            // check a hub's answers).
    for path in ["/api/fleet/sites", "/api/fleet/sites/paris", "/api/fleet/clients?q=a"] {
        assert_eq!(call(&app, &mut c, "GET", path, none.clone()).await.status, 404);
    }
    call(&app, &mut c, "GET", "/api/stats?bucket=hour", none.clone()).await;
    call(&app, &mut c, "GET", "/api/activity?limit=10", none.clone()).await;
    call(&app, &mut c, "GET", "/api/attention", none.clone()).await;
    call(&app, &mut c, "GET", &format!("/api/clients/{a}/storage"), none.clone()).await;
    call(&app, &mut c, "GET", &format!("/api/clients/{a}/archive"), none.clone()).await;
    call(
        &app,
        &mut c,
        "GET",
        &format!("/api/clients/{a}/restore?at=1"),
        none.clone(),
    )
    .await;
    call(&app, &mut c, "GET", &format!("/api/clients/{a}/restore"), none.clone()).await;
    call(
        &app,
        &mut c,
        "GET",
        &format!("/api/clients/{a}/archive?format=zip"),
        none.clone(),
    )
    .await;
    call(
        &app,
        &mut c,
        "GET",
        &format!("/api/clients/{a}/archive?format=rar"),
        none.clone(),
    )
    .await; // 400

    // Alerts.
    call(&app, &mut c, "GET", "/api/alerts", none.clone()).await;
    let target = call(
        &app,
        &mut c,
        "POST",
        "/api/alerts/targets",
        json!({ "name": "ops", "kind": "webhook", "address": "http://127.0.0.1:9/hook" }),
    )
    .await
    .data()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    call(&app, &mut c, "POST", "/api/alerts/targets", json!({ "kind": "pager" })).await; // 400
    let rule = call(
        &app,
        &mut c,
        "POST",
        "/api/alerts/rules",
        json!({ "target_id": target, "kinds": ["transfer_failed"] }),
    )
    .await
    .data()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    call(
        &app,
        &mut c,
        "POST",
        &format!("/api/alerts/targets/{target}/test"),
        none.clone(),
    )
    .await;
    call(&app, &mut c, "GET", "/api/alerts/deliveries?per_page=5", none.clone()).await;
    call(
        &app,
        &mut c,
        "DELETE",
        &format!("/api/alerts/rules/{rule}"),
        none.clone(),
    )
    .await;
    call(
        &app,
        &mut c,
        "DELETE",
        &format!("/api/alerts/rules/{rule}"),
        none.clone(),
    )
    .await; // 404
    call(
        &app,
        &mut c,
        "DELETE",
        &format!("/api/alerts/targets/{target}"),
        none.clone(),
    )
    .await;

    // The database.
    call(&app, &mut c, "GET", "/api/db", none.clone()).await; // after a backup below, too
    call(&app, &mut c, "GET", "/api/db/health", none.clone()).await;
    call(&app, &mut c, "GET", "/api/db/tables/clients", none.clone()).await;
    call(&app, &mut c, "GET", "/api/db/tables/nothing", none.clone()).await; // 404
    call(
        &app,
        &mut c,
        "PATCH",
        &format!("/api/db/tables/clients/{a}"),
        json!({ "name": "alpha again" }),
    )
    .await;
    call(&app, &mut c, "PATCH", "/api/db/tables/events/1", json!({})).await; // 409
    call(
        &app,
        &mut c,
        "POST",
        "/api/db/query",
        json!({ "sql": "SELECT count(*) FROM events" }),
    )
    .await;
    call(
        &app,
        &mut c,
        "POST",
        "/api/db/query",
        json!({ "sql": "DELETE FROM events" }),
    )
    .await; // 400
    call(&app, &mut c, "POST", "/api/db/backup", none.clone()).await;
    let backups = call(&app, &mut c, "GET", "/api/db/backups", none.clone()).await.data();
    let name = backups[0]["name"].as_str().unwrap().to_owned();
    call(
        &app,
        &mut c,
        "POST",
        &format!("/api/db/backups/{name}/verify"),
        none.clone(),
    )
    .await;
    call(&app, &mut c, "POST", "/api/db/backups/none/verify", none.clone()).await; // 404
    call(&app, &mut c, "GET", "/api/db", none.clone()).await;
    call(&app, &mut c, "POST", "/api/db/optimize", none.clone()).await;
    call(&app, &mut c, "GET", "/api/live", none.clone()).await; // 400: not an upgrade

    // The deletions last.
    call(&app, &mut c, "DELETE", "/api/logs", none.clone()).await;
    call(&app, &mut c, "DELETE", &format!("/api/files/{f}"), none.clone()).await;
    call(&app, &mut c, "DELETE", &format!("/api/files/{f}"), none.clone()).await; // 404
    let b = call(&app, &mut c, "POST", "/api/clients", json!({ "name": "bravo" }))
        .await
        .data()["client"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    call(
        &app,
        &mut c,
        "DELETE",
        &format!("/api/db/tables/clients/{b}"),
        none.clone(),
    )
    .await;
    call(&app, &mut c, "DELETE", &format!("/api/clients/{a}"), none.clone()).await;
    call(&app, &mut c, "DELETE", &format!("/api/clients/{a}"), none.clone()).await; // 409 deleted

    let documented: BTreeSet<(String, String)> = c.doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, methods)| {
            methods
                .as_object()
                .unwrap()
                .keys()
                .map(|m| (m.to_ascii_uppercase(), path.clone()))
                .collect::<Vec<_>>()
        })
        .collect();
    let unseen: Vec<_> = documented.difference(&c.seen).collect();
    assert!(unseen.is_empty(), "routes never exercised: {unseen:?}");
    app.stop().await;
}
