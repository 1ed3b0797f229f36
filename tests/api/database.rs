//! `/api/db`: information, health, browsing tables, row edits (which become events; the log itself is never
//! edited), the read-only SQL console, backup and optimize.

use serde_json::{json, Value};

use crate::common_api::{spawn_app, urlencode, TestApp};
use crate::helpers::{assert_error, events_of_type, log_line, spawn_app_with_a_tampered_log, upload_id};

/// alpha registered and uploaded `f.txt`, three bytes: four events. Answers alpha's id and the file's.
async fn spawn_app_with_a_file() -> (TestApp, String, String) {
    let app = spawn_app().await;
    let (a, token) = app.register("alpha").await;
    let f = upload_id(&app, &a, &token, "f.txt", b"abc").await;
    (app, a, f)
}

/// What `GET /api/db` says of the `events` table.
fn events_table(info: &Value) -> Value {
    info["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "events")
        .unwrap()
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_is_at_the_latest_schema_version() {
    let (app, _, _) = spawn_app_with_a_file().await;

    let info = app.get("/api/db").await.data();

    assert_eq!(info["schema_version"], cairn_events::schema::latest_version());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_journals_ahead_in_wal_mode() {
    let (app, _, _) = spawn_app_with_a_file().await;

    let info = app.get("/api/db").await.data();

    assert_eq!(info["journal_mode"], "wal");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_information_counts_each_tables_rows_and_bytes() {
    let (app, _, _) = spawn_app_with_a_file().await;

    let events = events_table(&app.get("/api/db").await.data());

    assert_eq!(events["rows"], 4);
    assert!(events["bytes"].as_i64().unwrap() > 0);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_never_backed_up_has_no_last_backup() {
    let (app, _, _) = spawn_app_with_a_file().await;

    let info = app.get("/api/db").await.data();

    assert_eq!(info["last_backup"], json!(null));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sound_database_is_healthy() {
    let (app, _, _) = spawn_app_with_a_file().await;

    let health = app.get("/api/db/health").await.data();

    assert_eq!(health["ok"], true, "{health}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_health_check_runs_integrity_keys_chain_projections_and_wal_checks_in_order() {
    let (app, _, _) = spawn_app_with_a_file().await;

    let health = app.get("/api/db/health").await.data();

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
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_log_makes_the_database_unhealthy() {
    let app = spawn_app_with_a_tampered_log().await;

    let health = app.get("/api/db/health").await.data();

    assert_eq!(health["ok"], false);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_logs_chain_check_fails_naming_the_edited_position() {
    let app = spawn_app_with_a_tampered_log().await;

    let health = app.get("/api/db/health").await.data();

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
async fn a_table_is_browsed_a_page_at_a_time() {
    let (app, _, _) = spawn_app_with_a_file().await;

    let t = app.get("/api/db/tables/clients").await.data();

    assert_eq!(t["page"]["total"], 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browsing_the_clients_table_hides_the_token_hashes() {
    let (app, _, _) = spawn_app_with_a_file().await;

    let t = app.get("/api/db/tables/clients").await.data();

    assert!(
        !t["columns"].as_array().unwrap().contains(&json!("token_hash")),
        "secrets stay hidden"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_is_browsed_in_the_order_asked() {
    let (app, _, _) = spawn_app_with_a_file().await;

    let t = app.get("/api/db/tables/events?per_page=2&sort=-position").await.data();

    assert_eq!(t["page"]["items"][0]["position"], 4);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_internal_unknown_and_injected_table_names_are_not_found() {
    let (app, _, _) = spawn_app_with_a_file().await;

    for bad in ["sqlite_master", "secrets", "clients;DROP"] {
        let r = app.get(&format!("/api/db/tables/{}", urlencode(bad))).await;

        assert_eq!((r.status, r.code()), (404, "TABLE_NOT_FOUND".to_owned()), "{bad}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_is_written_where_it_says() {
    let (app, _, _) = spawn_app_with_a_file().await;

    let b = app.admin("POST", "/api/db/backup", json!(null)).await;

    assert_eq!(b.status, 201);
    let path = b.data()["path"].as_str().unwrap().to_owned();
    assert!(std::path::Path::new(&path).exists());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_becomes_the_databases_last_backup() {
    let (app, _, _) = spawn_app_with_a_file().await;
    assert_eq!(app.admin("POST", "/api/db/backup", json!(null)).await.status, 201);

    let info = app.get("/api/db").await.data();

    assert_eq!(info["last_backup"]["type"], "DatabaseBackedUp");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn optimizing_the_database_is_recorded() {
    let (app, _, _) = spawn_app_with_a_file().await;

    let o = app.admin("POST", "/api/db/optimize", json!(null)).await;

    assert_eq!(o.status, 200);
    assert_eq!(events_of_type(&app, "DatabaseOptimized"), 1);
    app.stop().await;
}

/// alpha, its file `f.txt` and one log line: five events. Answers alpha's id and the file's.
async fn spawn_app_with_a_client_a_file_and_a_log_line() -> (TestApp, String, String) {
    let (app, a, f) = spawn_app_with_a_file().await;
    log_line(&app, json!({ "level": "info", "message": "m" })).await;
    (app, a, f)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editing_a_client_row_renames_the_client() {
    let (app, a, _) = spawn_app_with_a_client_a_file_and_a_log_line().await;

    let r = app
        .admin(
            "PATCH",
            &format!("/api/db/tables/clients/{a}"),
            json!({ "name": "renamed" }),
        )
        .await;

    assert_eq!(r.status, 200);
    assert_eq!(app.get(&format!("/api/clients/{a}")).await.data()["name"], "renamed");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editing_a_client_row_becomes_a_client_updated_event() {
    let (app, a, _) = spawn_app_with_a_client_a_file_and_a_log_line().await;

    let r = app
        .admin(
            "PATCH",
            &format!("/api/db/tables/clients/{a}"),
            json!({ "name": "renamed" }),
        )
        .await;

    assert_eq!(r.status, 200);
    assert_eq!(events_of_type(&app, "ClientUpdated"), 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editing_a_column_no_event_changes_is_refused() {
    let (app, a, _) = spawn_app_with_a_client_a_file_and_a_log_line().await;

    let r = app
        .admin(
            "PATCH",
            &format!("/api/db/tables/clients/{a}"),
            json!({ "files_count": 99 }),
        )
        .await;

    assert_error(&r, 409, "NO_EVENT_FITS");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_row_cannot_be_edited() {
    let (app, _, _) = spawn_app_with_a_client_a_file_and_a_log_line().await;

    let r = app
        .admin("PATCH", "/api/db/tables/events/1", json!({ "data": "{}" }))
        .await;

    assert_error(&r, 409, "EVENTS_IMMUTABLE");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_row_cannot_be_deleted() {
    let (app, _, _) = spawn_app_with_a_client_a_file_and_a_log_line().await;

    let r = app
        .admin("DELETE", "/api/db/tables/events/1", json!({ "data": "{}" }))
        .await;

    assert_error(&r, 409, "EVENTS_IMMUTABLE");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_row_cannot_be_edited_for_no_event_fits() {
    let (app, _, _) = spawn_app_with_a_client_a_file_and_a_log_line().await;

    let r = app
        .admin("PATCH", "/api/db/tables/logs/5", json!({ "level": "error" }))
        .await;

    assert_error(&r, 409, "NO_EVENT_FITS");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stats_row_cannot_be_deleted_for_no_event_fits() {
    let (app, _, _) = spawn_app_with_a_client_a_file_and_a_log_line().await;

    let r = app
        .admin("DELETE", "/api/db/tables/stats/x", json!({ "level": "error" }))
        .await;

    assert_error(&r, 409, "NO_EVENT_FITS");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_row_cannot_be_deleted_for_no_event_fits() {
    let (app, _, _) = spawn_app_with_a_client_a_file_and_a_log_line().await;

    let r = app
        .admin("DELETE", "/api/db/tables/transfers/x", json!({ "level": "error" }))
        .await;

    assert_error(&r, 409, "NO_EVENT_FITS");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_file_row_becomes_a_file_deleted_event() {
    let (app, _, f) = spawn_app_with_a_client_a_file_and_a_log_line().await;

    let r = app
        .admin("DELETE", &format!("/api/db/tables/files/{f}"), json!(null))
        .await;

    assert_eq!(r.status, 200);
    assert_eq!(events_of_type(&app, "FileDeleted"), 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_row_that_does_not_exist_is_not_found() {
    let (app, _, _) = spawn_app_with_a_client_a_file_and_a_log_line().await;

    let r = app.admin("DELETE", "/api/db/tables/files/not-an-id", json!(null)).await;

    assert_error(&r, 404, "ROW_NOT_FOUND");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_row_edits_and_refusals_the_whole_log_still_verifies() {
    let (app, a, f) = spawn_app_with_a_client_a_file_and_a_log_line().await;
    let renamed = app
        .admin(
            "PATCH",
            &format!("/api/db/tables/clients/{a}"),
            json!({ "name": "renamed" }),
        )
        .await;
    assert_eq!(renamed.status, 200);
    app.admin(
        "PATCH",
        &format!("/api/db/tables/clients/{a}"),
        json!({ "files_count": 99 }),
    )
    .await;
    for (method, path) in [
        ("PATCH", "/api/db/tables/events/1"),
        ("DELETE", "/api/db/tables/events/1"),
    ] {
        app.admin(method, path, json!({ "data": "{}" })).await;
    }
    for (method, path) in [
        ("PATCH", "/api/db/tables/logs/5"),
        ("DELETE", "/api/db/tables/stats/x"),
        ("DELETE", "/api/db/tables/transfers/x"),
    ] {
        app.admin(method, path, json!({ "level": "error" })).await;
    }
    let deleted = app
        .admin("DELETE", &format!("/api/db/tables/files/{f}"), json!(null))
        .await;
    assert_eq!(deleted.status, 200);
    app.admin("DELETE", "/api/db/tables/files/not-an-id", json!(null)).await;

    let before = app.count("SELECT count(*) FROM events");
    let v = app.get("/api/audit/verify").await.data();

    assert_eq!((v["ok"].clone(), v["checked"].clone()), (json!(true), json!(before)));
    app.stop().await;
}

/// One client, alpha: the console's only row to read and to protect.
async fn spawn_app_with_one_client() -> TestApp {
    let app = spawn_app().await;
    app.register("alpha").await;
    app
}

/// The console refuses `sql` as `400 QUERY_REFUSED`, and nothing was changed.
async fn assert_console_refuses(sql: &str) {
    let app = spawn_app_with_one_client().await;

    let r = app.admin("POST", "/api/db/query", json!({ "sql": sql })).await;

    assert_eq!((r.status, r.code()), (400, "QUERY_REFUSED".to_owned()), "{sql}");
    assert_eq!(app.count("SELECT count(*) FROM clients"), 1, "nothing was changed");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_that_is_wrong_is_invalid_sql_not_refused() {
    let app = spawn_app_with_one_client().await;
    for sql in ["SELEC 1", "SELECT nope FROM clients"] {
        let r = app.admin("POST", "/api/db/query", json!({ "sql": sql })).await;
        assert_eq!((r.status, r.code()), (400, "INVALID_SQL".to_owned()), "{sql}");
    }
    let r = app
        .admin(
            "POST",
            "/api/db/query",
            json!({ "sql": "SELECT hex(randomblob(400000000))" }),
        )
        .await;
    assert_eq!((r.status, r.code()), (400, "QUERY_TOO_LARGE".to_owned()));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_answers_a_select_with_its_columns_and_rows() {
    let app = spawn_app_with_one_client().await;

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
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_refuses_to_delete_events() {
    assert_console_refuses("DELETE FROM events").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_refuses_to_update_a_table() {
    assert_console_refuses("UPDATE clients SET name = 'x'").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_refuses_to_drop_a_table() {
    assert_console_refuses("DROP TABLE clients").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_refuses_to_attach_another_database() {
    assert_console_refuses("ATTACH DATABASE '/tmp/x.db' AS x").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_refuses_to_list_the_database_files() {
    assert_console_refuses("SELECT * FROM pragma_database_list").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_refuses_to_change_a_pragma() {
    assert_console_refuses("PRAGMA journal_mode = DELETE").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_refuses_to_load_an_extension() {
    assert_console_refuses("SELECT load_extension('/tmp/evil')").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blank_console_query_is_a_validation_error() {
    let app = spawn_app_with_one_client().await;

    let r = app.admin("POST", "/api/db/query", json!({ "sql": " " })).await;

    assert_error(&r, 400, "VALIDATION_ERROR");
    assert_eq!(app.count("SELECT count(*) FROM clients"), 1, "nothing was changed");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_console_request_without_its_sql_field_is_invalid_json() {
    let app = spawn_app_with_one_client().await;

    let r = app.admin("POST", "/api/db/query", json!({ "query": "SELECT 1" })).await;

    assert_error(&r, 400, "INVALID_JSON");
    assert_eq!(app.count("SELECT count(*) FROM clients"), 1, "nothing was changed");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_without_rowid_is_browsed_in_the_order_asked_too() {
    let (app, _, _) = spawn_app_with_a_file().await;

    for sort in ["uploads", "-bytes_in", "bucket"] {
        let r = app.get(&format!("/api/db/tables/stats?sort={sort}")).await;
        assert_eq!(r.status, 200, "sort={sort}: {:?}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.data()["page"]["total"], 1, "sort={sort}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_taken_while_uploads_run_holds_every_blob_it_names_checks_out_and_serves() {
    let app = crate::common_api::spawn_app().await;
    let (a, token) = app.register("alpha").await;
    for i in 0..5 {
        crate::helpers::upload_id(
            &app,
            &a,
            &token,
            &format!("before-{i}.bin"),
            format!("content {i}").as_bytes(),
        )
        .await;
    }
    // Uploads keep coming while the snapshot is taken.
    let uploading = {
        let client = cairn::client::Client::at(app.addr, &token).unwrap();
        let a = a.clone();
        tokio::spawn(async move {
            for i in 0..40 {
                let path = format!("/api/clients/{a}/files?name=during-{i}.bin");
                let req = client
                    .request(cairn::client::Method::POST, &path)
                    .body(vec![i as u8; 40_000 + i * 100]);
                let _ = client.send(req).await;
            }
        })
    };
    let snapshots = tempfile::tempdir().unwrap();
    let root = app.dir.path().to_owned();
    let dest = snapshots.path().to_owned();
    let taken = tokio::task::spawn_blocking(move || cairn::snapshot::take(&root, &dest))
        .await
        .unwrap()
        .unwrap();
    uploading.await.unwrap();

    assert!(taken.missing.is_empty(), "{taken:?}");
    assert!(taken.blobs >= 5 && taken.linked == taken.blobs, "{taken:?}");
    let dest = snapshots.path().to_owned();
    let checked = tokio::task::spawn_blocking(move || cairn::snapshot::verify(&dest))
        .await
        .unwrap()
        .unwrap();
    assert!(checked.ok(), "{checked:?}");
    assert_eq!(checked.blobs_checked, taken.blobs);
    app.stop().await;

    // The snapshot is a data directory: a server runs on it as it is, and its files download.
    let snap = crate::common_api::spawn_app_in(
        snapshots,
        "127.0.0.1:0",
        cairn::Options {
            durability: cairn_events::Durability::Normal,
            ..cairn::Options::default()
        },
        std::time::Duration::from_secs(60),
        cairn::services::feed::LiveConfig::default(),
    )
    .await;
    let files = snap.get("/api/files?per_page=100").await.data();
    assert_eq!(files["total"], taken.files);
    let first = files["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["filename"] == "before-0.bin")
        .unwrap();
    let content = snap
        .get(&format!("/api/files/{}/content", first["id"].as_str().unwrap()))
        .await;
    assert_eq!(content.body.as_ref(), b"content 0");
    snap.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_backups_keep_the_newest_and_each_can_be_verified() {
    let mut config = crate::common_api::test_config();
    config.backup_every = Some(std::time::Duration::from_millis(300));
    config.backup_keep = 2;
    let app = crate::common_api::spawn_app_config(config).await;
    let (a, token) = app.register("alpha").await;
    crate::helpers::upload_id(&app, &a, &token, "x.txt", b"backed up").await;

    let mut removed = 0;
    for _ in 0..100 {
        removed = crate::helpers::events_of_type(&app, "DatabaseBackupRemoved");
        if removed >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(removed >= 2, "old snapshots are removed");
    let listed = app.get("/api/db/backups").await.data();
    let list = listed.as_array().unwrap();
    assert!(
        list.len() <= 3,
        "the newest 2 are kept (a third may be being written): {listed}"
    );
    assert!(list[0]["snapshot"]["taken_at"].as_str() >= list[1]["snapshot"]["taken_at"].as_str());
    assert_eq!(list[0]["verified"], Value::Null);
    let name = list[0]["name"].as_str().unwrap().to_owned();

    let v = app
        .admin("POST", &format!("/api/db/backups/{name}/verify"), json!(null))
        .await;

    assert_eq!(v.status, 200, "{}", String::from_utf8_lossy(&v.body));
    assert_eq!(v.data()["ok"], true, "{}", v.data());
    let again = app.get("/api/db/backups").await.data();
    let entry = again
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == name.as_str())
        .unwrap();
    assert_eq!(entry["verified"]["ok"], true);
    assert!(crate::helpers::events_of_type(&app, "DatabaseBackupVerified") == 1);
    // (A bare ".." never reaches the route: the URL is normalised first.)
    for bad in ["nothing-here", "%2E%2E%2Fcairn.db", "cairn-x%2F..%2F.."] {
        assert_error(
            &app.admin("POST", &format!("/api/db/backups/{bad}/verify"), json!(null))
                .await,
            404,
            "BACKUP_NOT_FOUND",
        );
    }
    app.stop().await;
}
