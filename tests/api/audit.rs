//! The audit trail: `/api/events` (pages, filters, one event), `/api/streams/{stream}`, `/api/audit/verify`, and
//! `?at=POSITION`, the state as it was then.

use serde_json::json;

use crate::common_api::{spawn_app, urlencode, TestApp};
use crate::helpers::{assert_error, assert_invalid_query, log_line, spawn_app_with_a_tampered_log, upload_id};

/// Nine events: alpha registered (1), its upload of `f.txt` (2 to 4), five log lines (5 to 9). Answers alpha's
/// id.
async fn spawn_app_with_nine_events() -> (TestApp, String) {
    let app = spawn_app().await;
    let (a, token) = app.register("alpha").await;
    upload_id(&app, &a, &token, "f.txt", b"content").await;
    for i in 0..5 {
        log_line(&app, json!({ "level": "info", "message": format!("m{i}") })).await;
    }
    (app, a)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_list_answers_a_page_with_the_cursor_to_the_next() {
    let (app, _) = spawn_app_with_nine_events().await;

    let page = app.get("/api/events?limit=3").await.data();

    assert_eq!(
        (
            page["events"].as_array().unwrap().len(),
            page["next_after"].clone(),
            page["total"].clone()
        ),
        (3, json!(3), json!(9))
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_page_of_events_starts_after_the_cursor() {
    let (app, _) = spawn_app_with_nine_events().await;

    let next = app.get("/api/events?limit=3&after=3").await.data();

    assert_eq!(next["events"][0]["position"], 4);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_filter_by_actor() {
    let (app, a) = spawn_app_with_nine_events().await;

    let uploads = app
        .get(&format!("/api/events?actor={}", urlencode(&format!("client:{a}"))))
        .await
        .data();

    assert_eq!(uploads["total"], 3, "transfer started, file stored, transfer completed");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_names_the_request_and_the_address_it_came_from() {
    let (app, a) = spawn_app_with_nine_events().await;

    let uploads = app
        .get(&format!("/api/events?actor={}", urlencode(&format!("client:{a}"))))
        .await
        .data();

    let meta = &uploads["events"][0]["metadata"];
    assert!(
        meta["request_id"].is_string() && meta["remote_addr"].as_str().unwrap().starts_with("127.0.0.1"),
        "{meta}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_filter_by_type() {
    let (app, _) = spawn_app_with_nine_events().await;

    assert_eq!(app.get("/api/events?type=LogRecorded").await.data()["total"], 5);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_limit_of_zero_or_past_its_maximum_is_an_invalid_query() {
    let app = spawn_app().await;

    for q in ["limit=0", "limit=5000"] {
        assert_invalid_query(&app, &format!("/api/events?{q}")).await;
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_negative_event_cursor_is_an_invalid_query() {
    let app = spawn_app().await;

    assert_invalid_query(&app, "/api/events?after=-1").await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_date_that_is_not_a_date_is_an_invalid_query() {
    let app = spawn_app().await;

    assert_invalid_query(&app, "/api/events?from=never").await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_is_read_by_its_position() {
    let (app, _) = spawn_app_with_nine_events().await;

    let one = app.get("/api/events/1").await.data();

    assert_eq!(
        (one["type"].clone(), one["data"]["name"].clone()),
        (json!("ClientRegistered"), json!("alpha"))
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_carries_its_sha256_hash() {
    let (app, _) = spawn_app_with_nine_events().await;

    let one = app.get("/api/events/1").await.data();

    assert_eq!(one["hash"].as_str().unwrap().len(), 64);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_position_past_the_head_is_not_found() {
    let (app, _) = spawn_app_with_nine_events().await;

    let r = app.get("/api/events/999").await;

    assert_error(&r, 404, "EVENT_NOT_FOUND");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_position_that_is_not_a_number_or_negative_is_not_found() {
    let (app, _) = spawn_app_with_nine_events().await;

    for bad in ["abc", "-1"] {
        let r = app.get(&format!("/api/events/{bad}")).await;

        assert_eq!((r.status, r.code()), (404, "EVENT_NOT_FOUND".to_owned()), "{bad}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_answers_its_history_from_the_first_event() {
    let (app, a) = spawn_app_with_nine_events().await;

    let history = app.get(&format!("/api/streams/client-{a}")).await.data();

    assert_eq!(history["events"][0]["type"], "ClientRegistered");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_that_does_not_exist_is_not_found() {
    let (app, _) = spawn_app_with_nine_events().await;

    let r = app.get("/api/streams/client-nobody").await;

    assert_error(&r, 404, "STREAM_NOT_FOUND");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untouched_log_verifies_in_full() {
    let (app, _) = spawn_app_with_nine_events().await;

    let v = app.get("/api/audit/verify").await.data();

    assert_eq!(
        (v["ok"].clone(), v["checked"].clone(), v["first_bad"].clone()),
        (json!(true), json!(9), json!(null))
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_log_says_the_chain_is_broken() {
    let app = spawn_app_with_a_tampered_log().await;

    let v = app.get("/api/audit/verify").await;

    assert_eq!(
        (v.status, v.json()["message"].clone()),
        (200, json!("the chain is broken"))
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_log_fails_verification_at_the_edited_event() {
    let app = spawn_app_with_a_tampered_log().await;

    let d = app.get("/api/audit/verify").await.data();

    assert_eq!(
        (
            d["ok"].clone(),
            d["first_bad"]["position"].clone(),
            d["checked"].clone()
        ),
        (json!(false), json!(2), json!(1))
    );
    app.stop().await;
}

/// alpha registered (1), uploaded `f.txt` (2 to 4), was renamed `renamed` (5), and the file was verified (6).
/// Answers alpha's id and the file's.
async fn spawn_app_with_a_history() -> (TestApp, String, String) {
    let app = spawn_app().await;
    let (a, token) = app.register("alpha").await;
    let f = upload_id(&app, &a, &token, "f.txt", b"v1").await;
    app.admin("PATCH", &format!("/api/clients/{a}"), json!({ "name": "renamed" }))
        .await;
    app.admin("POST", &format!("/api/files/{f}/verify"), json!(null)).await;
    (app, a, f)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_at_its_registration_has_its_first_name_and_no_files() {
    let (app, a, _) = spawn_app_with_a_history().await;

    let then = app.get(&format!("/api/clients/{a}?at=1")).await.data();

    assert_eq!(
        (then["name"].clone(), then["files_count"].clone()),
        (json!("alpha"), json!(0))
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_as_it_was_is_found_by_the_name_it_had_even_after_a_rename_or_deletion() {
    let (app, a, _) = spawn_app_with_a_history().await;

    let by_old_name = app.get("/api/clients/ALPHA?at=1").await;
    let by_new_name = app.get("/api/clients/renamed?at=4").await;
    app.admin("DELETE", &format!("/api/clients/{a}"), json!(null)).await;
    let deleted = app.get("/api/clients/renamed?at=4").await;
    let nobody = app.get("/api/clients/nobody?at=1").await;
    let not_as_of = app.get("/api/clients/renamed").await;

    assert_eq!((by_old_name.status, by_old_name.data()["id"].clone()), (200, json!(a)));
    assert_eq!(by_old_name.data()["name"], "alpha");
    assert_eq!(by_new_name.data()["id"], json!(a), "the last name it had finds it too");
    assert_eq!((deleted.status, deleted.data()["name"].clone()), (200, json!("alpha")));
    assert_eq!((nobody.status, nobody.code()), (404, "CLIENT_NOT_FOUND".to_owned()));
    assert_eq!(
        not_as_of.status, 404,
        "a name is for the state as of a moment; now, ids"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_after_its_upload_has_one_file_and_still_its_first_name() {
    let (app, a, _) = spawn_app_with_a_history().await;

    let later = app.get(&format!("/api/clients/{a}?at=4")).await.data();

    assert_eq!(
        (later["name"].clone(), later["files_count"].clone()),
        (json!("alpha"), json!(1))
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_before_its_verification_is_unverified_under_its_clients_new_name() {
    let (app, _, f) = spawn_app_with_a_history().await;

    let file_then = app.get(&format!("/api/files/{f}?at=5")).await.data();

    assert_eq!(
        (file_then["client_name"].clone(), file_then["verified"].clone()),
        (json!("renamed"), json!(false))
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_at_its_verification_is_verified() {
    let (app, _, f) = spawn_app_with_a_history().await;

    assert_eq!(app.get(&format!("/api/files/{f}?at=6")).await.data()["verified"], true);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_before_its_upload_is_not_found() {
    let (app, _, f) = spawn_app_with_a_history().await;

    let r = app.get(&format!("/api/files/{f}?at=1")).await;

    assert_eq!(
        (r.status, r.code()),
        (404, "FILE_NOT_FOUND".to_owned()),
        "the file did not exist yet"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_position_of_zero_or_past_the_head_is_an_invalid_query() {
    let (app, a, _) = spawn_app_with_a_history().await;

    for at in ["0", "99"] {
        assert_invalid_query(&app, &format!("/api/clients/{a}?at={at}")).await;
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_position_that_is_not_a_number_is_an_invalid_query() {
    let (app, a, _) = spawn_app_with_a_history().await;

    assert_invalid_query(&app, &format!("/api/clients/{a}?at=x")).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moment_given_as_a_time_answers_the_state_after_the_last_event_recorded_by_then() {
    let (app, a, _) = spawn_app_with_a_history().await;
    let events = app.get("/api/events?limit=10").await.data();
    let first = events["events"][0]["recorded_at"].as_str().unwrap().to_owned();
    let upload = events["events"][3]["recorded_at"].as_str().unwrap().to_owned();

    let then = app
        .get(&format!("/api/clients/{a}?at={}", urlencode(&first)))
        .await
        .data();
    let later = app
        .get(&format!("/api/clients/{a}?at={}", urlencode(&upload)))
        .await
        .data();

    assert_eq!(then["files_count"], 0, "at the registration's time: {then}");
    assert_eq!(later["files_count"], 1, "at the upload's time: {later}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_time_before_the_first_event_is_an_invalid_query() {
    let (app, a, _) = spawn_app_with_a_history().await;

    assert_invalid_query(&app, &format!("/api/clients/{a}?at=2001-01-01T00:00:00Z")).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_answer_shows_a_token_hash_though_the_log_keeps_it() {
    let app = spawn_app().await;
    let (a, _) = app.register("alpha").await;
    app.admin("POST", &format!("/api/clients/{a}/token"), json!(null)).await;
    let hashes: Vec<String> = {
        let conn = cairn_events::schema::open_read_only(&app.dir.path().join("cairn.db")).unwrap();
        let mut stmt = conn
            .prepare("SELECT json_extract(data, '$.token_hash') FROM events WHERE type IN ('ClientRegistered', 'ClientTokenRotated')")
            .unwrap();
        stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
    };
    assert_eq!(hashes.len(), 2, "the log itself keeps both hashes, for replay");
    let shows_a_hash = |text: &str| text.contains("token_hash") || hashes.iter().any(|h| text.contains(h.as_str()));

    for path in [
        "/api/events".to_owned(),
        format!("/api/streams/client-{a}"),
        "/api/events/1".to_owned(),
        "/api/db/tables/events".to_owned(),
    ] {
        let r = app.get(&path).await;
        assert_eq!(r.status, 200, "{path}");
        assert!(
            !shows_a_hash(&String::from_utf8_lossy(&r.body)),
            "{path} shows a token hash"
        );
    }
    for sql in [
        "SELECT data FROM events",
        "SELECT json_extract(data, '$.token_hash') FROM main.events",
        "SELECT e.data FROM main.events AS e",
        "WITH x AS (SELECT data FROM main.events) SELECT * FROM x",
        "SELECT token_hash FROM clients",
    ] {
        let r = app.admin("POST", "/api/db/query", json!({ "sql": sql })).await;
        assert_eq!(r.status, 200, "{sql}: {:?}", String::from_utf8_lossy(&r.body));
        let rows = r.data()["rows"].to_string();
        assert!(!shows_a_hash(&rows), "{sql}: {rows}");
    }
    let through_the_view = app
        .admin(
            "POST",
            "/api/db/query",
            json!({ "sql": "SELECT data FROM events WHERE position = 1" }),
        )
        .await;
    assert_eq!(
        through_the_view.data()["rows"][0][0]
            .as_str()
            .map(|d| d.contains("alpha")),
        Some(true)
    );
    app.stop().await;
}
