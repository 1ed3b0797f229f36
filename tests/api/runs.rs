//! Backup runs and what the agent leans on: a run begins and ends once; uploads, known-content records and
//! deletions name it; `files/known` answers only for content this client stored; a client deletes only its own
//! files and cannot purge their content; mtime and mode are recorded; the last good backup follows the runs.

use serde_json::{json, Value};

use crate::common_api::{spawn_app, urlencode, TestApp};
use crate::helpers::{assert_error, events_of_type, send_as, upload_id};

async fn start(app: &TestApp, client: &str, token: &str) -> String {
    let r = app
        .post_json(
            &format!("/api/clients/{client}/runs"),
            Some(token),
            json!({ "folders": ["/home/ada"], "agent_version": "0.1.0", "host": "ada-laptop" }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.data()["status"], "running");
    r.data()["id"].as_str().unwrap().to_owned()
}

async fn finish(app: &TestApp, client: &str, token: &str, run: &str, body: Value) -> crate::common_api::Reply {
    app.post_json(&format!("/api/clients/{client}/runs/{run}/finish"), Some(token), body)
        .await
}

async fn known(app: &TestApp, client: &str, token: &str, run: Option<&str>, body: Value) -> crate::common_api::Reply {
    let query = run.map(|r| format!("?run={r}")).unwrap_or_default();
    app.post_json(&format!("/api/clients/{client}/files/known{query}"), Some(token), body)
        .await
}

fn sha(content: &[u8]) -> String {
    hex::encode(<sha2::Sha256 as sha2::Digest>::digest(content))
}

#[tokio::test]
async fn a_run_begins_names_its_uploads_and_ends_once_and_its_ok_end_is_the_last_good_backup() {
    let app = spawn_app().await;
    let (a, token) = app.register("alpha").await;
    let run = start(&app, &a, &token).await;
    let path = format!(
        "/api/clients/{a}/files?name=plan.txt&path={}&mtime={}&mode={}&run={run}",
        urlencode("/home/ada/plan.txt"),
        urlencode("2026-11-30T09:15:00.123456789+01:00"),
        0o100640
    );
    let up = app.send("POST", &path, Some(&token), &[], "the plan").await;
    assert_eq!(up.status, 201, "{}", String::from_utf8_lossy(&up.body));
    let file = up.data();
    assert_eq!(
        file["mtime"], "2026-11-30T08:15:00.123456789Z",
        "kept in UTC to the nanosecond"
    );
    assert_eq!(file["mode"], 0o100640);
    assert_eq!(file["run_id"], run.as_str());
    let transfer = app.get(&format!("/api/transfers?client={a}")).await.data()["items"][0].clone();
    assert_eq!(transfer["run_id"], run.as_str(), "the upload's transfer names its run");
    // Files stored inside a run are not the last backup: the run's ok end is.
    let client = app.get(&format!("/api/clients/{a}")).await.data();
    assert_eq!(client["last_backup_at"], Value::Null);

    let end = json!({ "outcome": "ok", "scanned": 1, "new": 1, "bytes_sent": 8, "errors": [] });
    let done = finish(&app, &a, &token, &run, end.clone()).await;
    assert_eq!(done.status, 200, "{}", String::from_utf8_lossy(&done.body));
    let done = done.data();
    assert_eq!(
        (done["status"].clone(), done["new"].clone(), done["bytes_sent"].clone()),
        (json!("ok"), json!(1), json!(8))
    );
    assert!(done["duration_ms"].as_i64().unwrap() >= 0);
    let client = app.get(&format!("/api/clients/{a}")).await.data();
    assert_eq!(client["last_backup_at"], done["finished_at"]);
    assert_eq!(client["last_run_at"], done["finished_at"]);

    assert_error(&finish(&app, &a, &token, &run, end).await, 409, "RUN_FINISHED");
    let late = app
        .send(
            "POST",
            &format!("/api/clients/{a}/files?name=late&run={run}"),
            Some(&token),
            &[],
            "x",
        )
        .await;
    assert_error(&late, 409, "RUN_FINISHED");
    let runs = send_as(&app, "GET", &format!("/api/clients/{a}/runs"), &token)
        .await
        .data();
    assert_eq!(runs["total"], 1);
    assert_eq!(runs["items"][0]["folders"], json!(["/home/ada"]));
    app.stop().await;
}

#[tokio::test]
async fn a_run_refuses_bad_ends_other_clients_and_bad_metadata() {
    let app = spawn_app().await;
    let (a, token) = app.register("alpha").await;
    let (b, other) = app.register("bravo").await;
    let run = start(&app, &a, &token).await;
    for (body, why) in [
        (json!({ "outcome": "ok", "failed": 2 }), "ok with failures"),
        (json!({ "outcome": "fine" }), "an unknown outcome"),
        (json!({ "outcome": "ok", "scanned": -1 }), "a negative count"),
        (json!({ "outcome": "ok", "extra": 1 }), "an unknown field"),
    ] {
        let r = finish(&app, &a, &token, &run, body).await;
        assert_eq!(r.status, 400, "{why}: {}", String::from_utf8_lossy(&r.body));
    }
    let r = app
        .send(
            "POST",
            &format!("/api/clients/{a}/runs/{run}/finish"),
            Some(&token),
            &[("content-type", "application/json")],
            "{not json",
        )
        .await;
    assert_eq!(r.status, 400);
    // Another client's token, another client's run, an unknown run.
    assert_error(
        &finish(&app, &a, &other, &run, json!({ "outcome": "ok" })).await,
        403,
        "FORBIDDEN",
    );
    assert_error(
        &finish(&app, &b, &other, &run, json!({ "outcome": "ok" })).await,
        404,
        "RUN_NOT_FOUND",
    );
    let nobody = uuid::Uuid::now_v7();
    assert_error(
        &finish(&app, &a, &token, &nobody.to_string(), json!({ "outcome": "ok" })).await,
        404,
        "RUN_NOT_FOUND",
    );
    let up = app
        .send(
            "POST",
            &format!("/api/clients/{b}/files?name=x&run={run}"),
            Some(&other),
            &[],
            "x",
        )
        .await;
    assert_error(&up, 404, "RUN_NOT_FOUND");
    let up = app
        .send(
            "POST",
            &format!("/api/clients/{a}/files?name=x&run=not-a-uuid"),
            Some(&token),
            &[],
            "x",
        )
        .await;
    assert_eq!(up.status, 400);
    // Metadata that is not a time or not a file's mode.
    for query in ["mtime=yesterday", "mode=16877", "mode=-1", "mode=999999999"] {
        let r = app
            .send(
                "POST",
                &format!("/api/clients/{a}/files?name=x&{query}"),
                Some(&token),
                &[],
                "x",
            )
            .await;
        assert_eq!(r.status, 400, "{query}: {}", String::from_utf8_lossy(&r.body));
    }
    let r = app
        .post_json(
            &format!("/api/clients/{a}/runs"),
            Some(&token),
            json!({ "folders": [], "agent_version": "1", "host": "h" }),
        )
        .await;
    assert_error(&r, 400, "VALIDATION_ERROR");
    // A symbolic link's content is its target: never empty.
    let r = app
        .send(
            "POST",
            &format!("/api/clients/{a}/files?name=link&mode={}", 0o120777),
            Some(&token),
            &[],
            "",
        )
        .await;
    assert_error(&r, 400, "VALIDATION_ERROR");
    assert_eq!(events_of_type(&app, "FileStored"), 0, "nothing stored by any of these");
    app.stop().await;
}

#[tokio::test]
async fn known_content_is_recorded_without_its_bytes_only_for_the_client_that_stored_it() {
    let app = spawn_app().await;
    let (a, token) = app.register("alpha").await;
    let (b, other) = app.register("bravo").await;
    let content = b"the quarterly figures";
    let first = upload_id(&app, &a, &token, "q3.xlsx", content).await;
    let transfers = events_of_type(&app, "TransferStarted");
    let body = json!({ "name": "q3 copy.xlsx", "path": "/home/ada/q3 copy.xlsx", "sha256": sha(content), "size": content.len(), "mtime": "2026-12-01T10:00:00Z", "mode": 0o100600 });

    let r = known(&app, &a, &token, None, body.clone()).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.data()["checksum"], sha(content));
    assert_eq!(r.data()["size"], content.len());
    assert_eq!(
        events_of_type(&app, "TransferStarted"),
        transfers,
        "no transfer: no bytes moved"
    );
    let copy = r.data()["id"].as_str().unwrap().to_owned();
    let bytes = app.get(&format!("/api/files/{copy}/content")).await;
    assert_eq!(&bytes.body[..], content);

    // Bravo holds no such content of its own: the hash alone does not give it alpha's file.
    assert_error(
        &known(&app, &b, &other, None, body.clone()).await,
        404,
        "CONTENT_UNKNOWN",
    );
    // Nor does a wrong size, an unknown hash, or a malformed one.
    let mut wrong = body.clone();
    wrong["size"] = json!(3);
    assert_error(&known(&app, &a, &token, None, wrong).await, 404, "CONTENT_UNKNOWN");
    let mut unknown = body.clone();
    unknown["sha256"] = json!(sha(b"never stored"));
    assert_error(&known(&app, &a, &token, None, unknown).await, 404, "CONTENT_UNKNOWN");
    let mut bad = body.clone();
    bad["sha256"] = json!("abc");
    assert_error(&known(&app, &a, &token, None, bad).await, 400, "VALIDATION_ERROR");
    let mut traversal = body.clone();
    traversal["name"] = json!("../../etc/passwd");
    assert_error(&known(&app, &a, &token, None, traversal).await, 400, "VALIDATION_ERROR");
    // Bravo uploads it, then may record it again itself.
    upload_id(&app, &b, &other, "q3.xlsx", content).await;
    assert_eq!(known(&app, &b, &other, None, body.clone()).await.status, 201);

    // Once every file of alpha that held it is deleted, the content is retained: still known.
    send_as(&app, "DELETE", &format!("/api/files/{first}"), &token).await;
    send_as(&app, "DELETE", &format!("/api/files/{copy}"), &token).await;
    assert_eq!(known(&app, &a, &token, None, body.clone()).await.status, 201);
    app.stop().await;
}

#[tokio::test]
async fn a_client_deletes_only_its_own_files_and_their_content_is_kept_whatever_the_server_keeps() {
    let mut config = crate::common_api::test_config();
    config.retain_deleted = std::time::Duration::ZERO; // the server itself keeps nothing deleted
    let app = crate::common_api::spawn_app_config(config).await;
    let (a, token) = app.register("alpha").await;
    let (_, other) = app.register("bravo").await;
    let f = upload_id(&app, &a, &token, "diary.txt", b"dear diary").await;
    let run = start(&app, &a, &token).await;

    assert_error(
        &send_as(&app, "DELETE", &format!("/api/files/{f}"), &other).await,
        404,
        "FILE_NOT_FOUND",
    );
    let gone = send_as(&app, "DELETE", &format!("/api/files/{f}?run={run}"), &token).await;
    assert_eq!(gone.status, 200, "{}", String::from_utf8_lossy(&gone.body));
    let deleted: Value = serde_json::from_str(&crate::helpers::data_of_the_event(&app, "FileDeleted")).unwrap();
    assert_eq!(
        (deleted["reason"].clone(), deleted["run_id"].clone()),
        (json!("client"), json!(run))
    );
    assert_eq!(
        events_of_type(&app, "BlobsPurged"),
        0,
        "a client's deletion purges nothing"
    );
    let status = app.get("/api/status").await.data();
    assert_eq!(status["retained_blobs"], 1, "{status}");
    // The archive of before the deletion still has it.
    let before = app.count("SELECT max(position) FROM events WHERE type = 'BackupRunStarted'");
    let archive = app.get(&format!("/api/clients/{a}/archive?at={before}")).await;
    assert_eq!(archive.status, 200);
    assert!(archive.body.windows(10).any(|w| w == b"dear diary"));
    // An admin's deletion on such a server does purge at once.
    let g = upload_id(&app, &a, &token, "other.txt", b"other").await;
    assert_eq!(
        app.admin("DELETE", &format!("/api/files/{g}"), Value::Null)
            .await
            .status,
        200
    );
    assert_eq!(events_of_type(&app, "BlobsPurged"), 1);
    // Purged content is no longer known: the agent must upload it again.
    let again = json!({ "name": "other.txt", "sha256": sha(b"other"), "size": 5 });
    assert_error(&known(&app, &a, &token, None, again).await, 404, "CONTENT_UNKNOWN");
    app.stop().await;
}

#[tokio::test]
async fn a_retry_with_the_same_idempotency_key_finds_what_the_first_attempt_made() {
    let app = spawn_app().await;
    let (a, token) = app.register("alpha").await;
    let (b, other) = app.register("bravo").await;
    let key = uuid::Uuid::now_v7().to_string();
    let runs = format!("/api/clients/{a}/runs");
    let body = json!({ "folders": ["/srv"], "agent_version": "0.1.0", "host": "h" }).to_string();
    let headers = [("content-type", "application/json"), ("idempotency-key", key.as_str())];
    let first = app.send("POST", &runs, Some(&token), &headers, body.clone()).await;
    let again = app.send("POST", &runs, Some(&token), &headers, body).await;
    assert_eq!((first.status, again.status), (201, 201));
    assert_eq!(first.data()["id"], again.data()["id"]);
    assert_eq!(first.data()["id"], key.as_str(), "the key is the run's id");
    assert_eq!(events_of_type(&app, "BackupRunStarted"), 1);

    let upload = format!("/api/clients/{a}/files?name=one.txt&run={key}");
    let file_key = uuid::Uuid::now_v7().to_string();
    let headers = [("idempotency-key", file_key.as_str())];
    let first = app.send("POST", &upload, Some(&token), &headers, "one").await;
    let again = app.send("POST", &upload, Some(&token), &headers, "one").await;
    assert_eq!(
        (first.status, again.status),
        (201, 201),
        "{}",
        String::from_utf8_lossy(&again.body)
    );
    assert_eq!(first.data()["id"], again.data()["id"]);
    assert_eq!(
        (
            events_of_type(&app, "FileStored"),
            events_of_type(&app, "TransferStarted")
        ),
        (1, 1)
    );
    // Another client's key of the same id is not this file: its upload is refused, nothing stored.
    let theirs = app
        .send(
            "POST",
            &format!("/api/clients/{b}/files?name=one.txt"),
            Some(&other),
            &headers,
            "one",
        )
        .await;
    assert_eq!(theirs.status, 409, "{}", String::from_utf8_lossy(&theirs.body));
    assert_eq!(events_of_type(&app, "FileStored"), 1);

    let known_key = uuid::Uuid::now_v7().to_string();
    let claim = json!({ "name": "copy.txt", "sha256": sha(b"one"), "size": 3 }).to_string();
    let path = format!("/api/clients/{a}/files/known?run={key}");
    let headers = [
        ("content-type", "application/json"),
        ("idempotency-key", known_key.as_str()),
    ];
    let first = app.send("POST", &path, Some(&token), &headers, claim.clone()).await;
    let again = app.send("POST", &path, Some(&token), &headers, claim).await;
    assert_eq!((first.status, again.status), (201, 201));
    assert_eq!(first.data()["id"], again.data()["id"]);
    assert_eq!(events_of_type(&app, "FileStored"), 2);

    let bad = app
        .send("POST", &upload, Some(&token), &[("idempotency-key", "not-a-uuid")], "x")
        .await;
    assert_error(&bad, 400, "VALIDATION_ERROR");
    app.stop().await;
}
