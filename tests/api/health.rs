//! Backup health: the last completed backup and the expected interval per client, `ClientBackupOverdue` raised
//! by the monitor once per crossing and ended by the next backup, and `/api/attention`.

use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Value};

use crate::common_api::{spawn_app, spawn_app_config, test_config, TestApp};
use crate::helpers::{assert_error, data_of_the_event, disconnect, events_of_type, upload_id};

/// A server whose backup monitor looks every 100 ms.
async fn spawn_app_checking_backups() -> TestApp {
    let mut config = test_config();
    config.backup_check = Duration::from_millis(100);
    spawn_app_config(config).await
}

async fn client(app: &TestApp, id: &str) -> Value {
    app.get(&format!("/api/clients/{id}")).await.data()
}

async fn every(app: &TestApp, id: &str, seconds: Value) -> crate::common_api::Reply {
    app.admin(
        "PATCH",
        &format!("/api/clients/{id}"),
        json!({ "backup_interval_seconds": seconds }),
    )
    .await
}

/// Waits (at most 10 s) until `/api/clients/{id}` satisfies `done`.
async fn until(app: &TestApp, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..200 {
        let c = client(app, id).await;
        if done(&c) {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("client {id} never got there: {}", client(app, id).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_client_expects_a_daily_backup_and_has_none_yet() {
    let app = spawn_app().await;
    let (a, _) = app.register("alpha").await;

    let c = client(&app, &a).await;

    assert_eq!(c["backup_interval_seconds"], 86_400);
    assert_eq!(c["last_backup_at"], Value::Null);
    assert_eq!(c["backup_overdue_since"], Value::Null);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_file_is_the_clients_last_backup() {
    let app = spawn_app().await;
    let (a, token) = app.register("alpha").await;

    upload_id(&app, &a, &token, "a.txt", b"hello").await;

    let stored: Value = serde_json::from_str(&data_of_the_event(&app, "FileStored")).unwrap();
    assert_eq!(stored["client_id"], json!(a));
    let conn = cairn_events::schema::open_read_only(&app.dir.path().join("cairn.db")).unwrap();
    let at: String = conn
        .query_row("SELECT recorded_at FROM events WHERE type = 'FileStored'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(client(&app, &a).await["last_backup_at"], json!(at));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interval_out_of_bounds_or_of_the_wrong_type_is_refused_and_records_nothing() {
    let app = spawn_app().await;
    let (a, _) = app.register("alpha").await;

    for bad in [json!(0), json!(366 * 86_400 + 1)] {
        assert_error(&every(&app, &a, bad).await, 400, "VALIDATION_ERROR");
    }
    for bad in [json!(-1), json!("daily"), json!(1.5)] {
        let r = every(&app, &a, bad).await;
        assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.body));
    }
    assert_eq!(events_of_type(&app, "ClientUpdated"), 0);
    assert_eq!(client(&app, &a).await["backup_interval_seconds"], 86_400);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_past_its_interval_is_marked_overdue_once_and_its_next_backup_ends_it() {
    let app = spawn_app_checking_backups().await;
    let (a, token) = app.register("alpha").await;
    let (b, _) = app.register("bravo").await;

    let r = every(&app, &a, json!(1)).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.data()["backup_interval_seconds"], 1);

    let c = until(&app, &a, |c| !c["backup_overdue_since"].is_null()).await;
    let overdue: Value = serde_json::from_str(&data_of_the_event(&app, "ClientBackupOverdue")).unwrap();
    assert_eq!(overdue["client_id"], json!(a));
    assert_eq!(overdue["last_backup_at"], Value::Null);
    assert_eq!(overdue["interval_seconds"], 1);
    assert_eq!(c["backup_overdue_since"], overdue["due_at"]);
    // Due one second after its registration.
    let created = chrono::DateTime::parse_from_rfc3339(c["created_at"].as_str().unwrap()).unwrap();
    let due = chrono::DateTime::parse_from_rfc3339(overdue["due_at"].as_str().unwrap()).unwrap();
    assert_eq!(due - created, chrono::TimeDelta::seconds(1));

    let listed = app.get("/api/clients?overdue=true").await.data();
    assert_eq!(listed["total"], 1);
    assert_eq!(listed["items"][0]["id"], json!(a));
    assert_eq!(
        app.get("/api/clients?overdue=false").await.data()["items"][0]["id"],
        json!(b)
    );

    // Several more checks go by: still one event.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(events_of_type(&app, "ClientBackupOverdue"), 1);

    upload_id(&app, &a, &token, "a.txt", b"hello").await;
    let c = client(&app, &a).await;
    assert_eq!(c["backup_overdue_since"], Value::Null);
    assert!(c["last_backup_at"].is_string());
    // A second later it is late again, from that backup this time.
    until(&app, &a, |c| !c["backup_overdue_since"].is_null()).await;
    assert_eq!(events_of_type(&app, "ClientBackupOverdue"), 2);
    let conn = cairn_events::schema::open_read_only(&app.dir.path().join("cairn.db")).unwrap();
    let last: String = conn
        .query_row(
            "SELECT json_extract(data, '$.last_backup_at') FROM events WHERE type = 'ClientBackupOverdue'
             ORDER BY position DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(json!(last), c["last_backup_at"]);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_within_its_interval_is_never_marked() {
    let app = spawn_app_checking_backups().await;
    let (a, token) = app.register("alpha").await;
    every(&app, &a, json!(3600)).await;
    upload_id(&app, &a, &token, "a.txt", b"hello").await;

    tokio::time::sleep(Duration::from_millis(500)).await;

    assert_eq!(events_of_type(&app, "ClientBackupOverdue"), 0);
    assert_eq!(client(&app, &a).await["backup_overdue_since"], Value::Null);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_needs_attention_on_a_quiet_server() {
    let app = spawn_app().await;
    app.register("alpha").await;

    let attention = app.get("/api/attention").await.data();

    for section in [
        "failed_transfers",
        "failed_verifications",
        "overdue_clients",
        "offline_clients",
    ] {
        assert_eq!(attention[section]["count"], 0, "{section}");
        assert_eq!(attention[section]["items"], json!([]), "{section}");
    }
    assert!(attention["since"].is_string());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attention_lists_failed_transfers_and_verifications_overdue_and_offline_clients_by_name() {
    let app = spawn_app_checking_backups().await;
    let (a, token) = app.register("alpha").await;
    let (b, b_token) = app.register("bravo").await;
    // A failed transfer: the content is not what its checksum says.
    let path = format!("/api/clients/{a}/files?name=bad.txt");
    let r = app
        .send(
            "POST",
            &path,
            Some(&token),
            &[("x-content-sha256", &"0".repeat(64))],
            Bytes::from_static(b"hello"),
        )
        .await;
    assert_eq!(r.status, 400);
    // A failed verification: the blob changed on disk after it was stored.
    let file = upload_id(&app, &a, &token, "good.txt", b"good content").await;
    let sha = app.get(&format!("/api/files/{file}")).await.data()["checksum"]
        .as_str()
        .unwrap()
        .to_owned();
    let blob = app.dir.path().join("blobs").join(&sha[..2]).join(&sha);
    std::fs::write(&blob, b"rotten content").unwrap();
    let v = app
        .admin("POST", &format!("/api/files/{file}/verify"), json!(null))
        .await;
    assert_eq!(v.data()["verified"], false);
    // Bravo went offline; alpha is overdue.
    crate::helpers::heartbeat(&app, &b, &b_token).await;
    disconnect(&app, &b, &b_token).await;
    every(&app, &a, json!(1)).await;
    until(&app, &a, |c| !c["backup_overdue_since"].is_null()).await;

    let attention = app.get("/api/attention").await.data();

    let failed = &attention["failed_transfers"];
    assert_eq!(failed["count"], 1);
    assert_eq!(failed["items"][0]["client_name"], "alpha");
    assert_eq!(failed["items"][0]["filename"], "bad.txt");
    assert!(
        failed["items"][0]["error"].as_str().unwrap().contains("SHA-256"),
        "{failed}"
    );
    let verifications = &attention["failed_verifications"];
    assert_eq!(verifications["count"], 1);
    assert_eq!(verifications["items"][0]["file_id"], json!(file));
    assert_eq!(verifications["items"][0]["client_name"], "alpha");
    assert_eq!(attention["overdue_clients"]["items"][0]["name"], "alpha");
    assert_eq!(attention["offline_clients"]["count"], 1);
    assert_eq!(attention["offline_clients"]["items"][0]["name"], "bravo");

    // Verified again once the content is back: the file no longer needs attention.
    std::fs::write(&blob, b"good content").unwrap();
    app.admin("POST", &format!("/api/files/{file}/verify"), json!(null))
        .await;
    assert_eq!(
        app.get("/api/attention").await.data()["failed_verifications"]["count"],
        0
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clients_storage_history_follows_each_stored_and_deleted_file() {
    let app = spawn_app().await;
    let (a, token) = app.register("alpha").await;
    let (b, b_token) = app.register("bravo").await;
    let first = upload_id(&app, &a, &token, "one.txt", b"12345").await;
    upload_id(&app, &a, &token, "two.txt", b"123").await;
    upload_id(&app, &b, &b_token, "other.txt", b"1234567").await;
    app.admin("DELETE", &format!("/api/files/{first}"), json!(null)).await;

    let history = app.get(&format!("/api/clients/{a}/storage")).await.data();

    let points: Vec<(i64, i64)> = history["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["files"].as_i64().unwrap(), p["bytes"].as_i64().unwrap()))
        .collect();
    assert_eq!(points, [(1, 5), (2, 8), (1, 3)]);
    assert_eq!(history["changes"], 3);
    let unknown = uuid::Uuid::now_v7();
    assert_error(
        &app.get(&format!("/api/clients/{unknown}/storage")).await,
        404,
        "CLIENT_NOT_FOUND",
    );
    app.stop().await;
}
