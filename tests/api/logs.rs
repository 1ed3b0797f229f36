//! `/api/logs`: recording, filtering, exporting (JSON, JSON lines, CSV) and clearing log lines.

use serde_json::json;

use crate::common_api::{spawn_app, TestApp, ADMIN};
use crate::helpers::{assert_error, assert_invalid_query, events_of_type, log_line};

/// Three log lines: an agent's info and error (quotes and a newline in it), and a server warning that starts
/// like a spreadsheet formula.
async fn spawn_app_with_three_logs() -> TestApp {
    let app = spawn_app().await;
    for (level, message, source) in [
        ("info", "started, all good", "agent"),
        ("error", "disk \"full\"\nretrying", "agent"),
        ("warning", "=cmd|slow", "server"),
    ] {
        log_line(&app, json!({ "level": level, "message": message, "source": source })).await;
    }
    app
}

/// The CSV export of the three log lines.
async fn csv_export(app: &TestApp) -> String {
    let csv = app.get("/api/logs/export?format=csv").await;
    String::from_utf8(csv.body.to_vec()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_line_of_a_level_that_does_not_exist_is_a_validation_error() {
    let app = spawn_app().await;

    let r = app
        .post_json("/api/logs", Some(ADMIN), json!({ "level": "loud", "message": "x" }))
        .await;

    assert_error(&r, 400, "VALIDATION_ERROR");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_line_for_a_client_that_does_not_exist_is_not_found() {
    let app = spawn_app().await;

    let r = app
        .post_json(
            "/api/logs",
            Some(ADMIN),
            json!({ "level": "info", "message": "x", "client_id": "00000000-0000-0000-0000-000000000009" }),
        )
        .await;

    assert_error(&r, 404, "CLIENT_NOT_FOUND");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_filter_by_level() {
    let app = spawn_app_with_three_logs().await;

    assert_eq!(app.get("/api/logs?level=error").await.data()["total"], 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_filter_by_source() {
    let app = spawn_app_with_three_logs().await;

    assert_eq!(app.get("/api/logs?source=agent").await.data()["total"], 2);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_are_searched_by_their_message() {
    let app = spawn_app_with_three_logs().await;

    assert_eq!(app.get("/api/logs?q=disk").await.data()["items"][0]["level"], "error");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_json_export_is_an_array_of_the_filtered_lines() {
    let app = spawn_app_with_three_logs().await;

    let json_export = app.get("/api/logs/export?format=json&source=agent").await;

    assert_eq!(json_export.status, 200);
    let rows: serde_json::Value = serde_json::from_slice(&json_export.body).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 2);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_json_lines_export_is_one_line_per_log_line() {
    let app = spawn_app_with_three_logs().await;

    let jsonl = app.get("/api/logs/export?format=jsonl").await;

    assert_eq!(String::from_utf8_lossy(&jsonl.body).lines().count(), 3);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_csv_export_is_served_as_text_csv() {
    let app = spawn_app_with_three_logs().await;

    let csv = app.get("/api/logs/export?format=csv").await;

    assert!(csv.headers["content-type"].to_str().unwrap().starts_with("text/csv"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_csv_export_starts_with_its_header_row() {
    let app = spawn_app_with_three_logs().await;

    let text = csv_export(&app).await;

    assert!(text.starts_with("id,recorded_at,level,source,client_id,file_id,message\r\n"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_csv_export_quotes_a_message_with_quotes_and_a_newline() {
    let app = spawn_app_with_three_logs().await;

    let text = csv_export(&app).await;

    assert!(text.contains("\"disk \"\"full\"\"\nretrying\""), "quoted: {text}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_csv_export_defuses_a_message_that_starts_like_a_formula() {
    let app = spawn_app_with_three_logs().await;

    let text = csv_export(&app).await;

    assert!(text.contains("'=cmd|slow"), "defused: {text}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_csv_export_quotes_a_message_with_a_comma() {
    let app = spawn_app_with_three_logs().await;

    let text = csv_export(&app).await;

    assert!(text.contains("\"started, all good\""), "{text}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_format_that_does_not_exist_is_an_invalid_query() {
    let app = spawn_app_with_three_logs().await;

    assert_invalid_query(&app, "/api/logs/export?format=xml").await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clearing_the_logs_answers_how_many_lines_it_cleared() {
    let app = spawn_app_with_three_logs().await;

    let r = app.admin("DELETE", "/api/logs", json!(null)).await;

    assert_eq!(r.data()["cleared"], 3);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleared_logs_are_gone_from_the_list() {
    let app = spawn_app_with_three_logs().await;
    app.admin("DELETE", "/api/logs", json!(null)).await.data();

    assert_eq!(app.get("/api/logs").await.data()["total"], 0);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clearing_the_logs_keeps_their_events_in_the_log() {
    let app = spawn_app_with_three_logs().await;
    app.admin("DELETE", "/api/logs", json!(null)).await.data();

    assert_eq!(events_of_type(&app, "LogRecorded"), 3);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_csv_export_defuses_a_formula_behind_a_leading_tab_or_carriage_return() {
    let app = spawn_app().await;
    for message in ["\t=1+2", "\r=1+2"] {
        log_line(&app, json!({ "level": "info", "message": message, "source": "agent" })).await;
    }

    let text = csv_export(&app).await;

    assert!(text.contains("'\t=1+2"), "a tab is defused: {text:?}");
    assert!(
        text.contains("\"'\r=1+2\""),
        "a carriage return is defused and quoted: {text:?}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clients_log_lines_carry_its_name_and_filter_by_it() {
    let app = spawn_app().await;
    let (a, a_token) = app.register("workstation-21").await;
    let (_, b_token) = app.register("nas-02").await;
    for (token, message) in [(&a_token, "from a"), (&b_token, "from b")] {
        let r = app
            .post_json("/api/logs", Some(token), json!({ "level": "info", "message": message }))
            .await;
        assert_eq!(r.status, 201);
    }

    let mine = app.get(&format!("/api/logs?client={a}")).await.data();

    assert_eq!(mine["total"], 1);
    assert_eq!(mine["items"][0]["client_name"], "workstation-21");
    assert_eq!(mine["items"][0]["message"], "from a");
    let all = app.get("/api/logs").await.data();
    let names: Vec<&str> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["client_name"].as_str())
        .collect();
    assert_eq!(names, ["nas-02", "workstation-21"], "newest first, each by its name");
    app.stop().await;
}
