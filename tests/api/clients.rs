//! `/api/clients`: registering, listing, reading, changing and deleting clients; heartbeats, disconnections and
//! the timeout that marks a silent client offline.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::common_api::{spawn_app, spawn_app_with, TestApp, ADMIN};
use crate::helpers::{assert_error, data_of_the_event, disconnect, events_of_type, heartbeat};

/// Registers `alpha` with a host id and an address, as an agent would.
async fn register_alpha_with_its_host(app: &TestApp) -> crate::common_api::Reply {
    app.post_json(
        "/api/clients",
        Some(ADMIN),
        json!({ "name": "alpha", "client_id": "host-1", "ip_address": "10.0.0.1" }),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registered_client_keeps_its_host_id_and_starts_registered() {
    let app = spawn_app().await;

    let r = register_alpha_with_its_host(&app).await;

    assert_eq!(r.status, 201);
    let d = r.data();
    assert_eq!(
        (d["client"]["client_id"].clone(), d["client"]["status"].clone()),
        (json!("host-1"), json!("Registered"))
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registering_a_client_answers_its_64_character_token() {
    let app = spawn_app().await;

    let r = register_alpha_with_its_host(&app).await;

    assert_eq!(r.status, 201);
    assert_eq!(r.data()["token"].as_str().unwrap().len(), 64);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registered_clients_token_hash_is_never_sent() {
    let app = spawn_app().await;

    let r = register_alpha_with_its_host(&app).await;

    assert_eq!(r.status, 201);
    assert!(
        r.data()["client"].get("token_hash").is_none(),
        "the token's hash is never sent"
    );
    app.stop().await;
}

/// Three clients, alpha, bravo and charlie; answers alpha's id.
async fn spawn_app_with_three_clients() -> (TestApp, String) {
    let app = spawn_app().await;
    let r = register_alpha_with_its_host(&app).await;
    assert_eq!(r.status, 201);
    let id = r.data()["client"]["id"].as_str().unwrap().to_owned();
    for name in ["bravo", "charlie"] {
        app.register(name).await;
    }
    (app, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_list_answers_one_page_with_the_totals() {
    let (app, _) = spawn_app_with_three_clients().await;

    let page = app.get("/api/clients?page=1&per_page=2&sort=-name").await.data();

    assert_eq!(
        (page["total"].clone(), page["pages"].clone(), page["per_page"].clone()),
        (json!(3), json!(2), json!(2))
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_list_sorts_by_name_descending() {
    let (app, _) = spawn_app_with_three_clients().await;

    let page = app.get("/api/clients?page=1&per_page=2&sort=-name").await.data();

    assert_eq!(page["items"][0]["name"], "charlie");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_list_searches_within_names() {
    let (app, _) = spawn_app_with_three_clients().await;

    let found = app.get("/api/clients?q=rav").await.data();

    assert_eq!(found["items"][0]["name"], "bravo");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_is_read_by_its_id() {
    let (app, id) = spawn_app_with_three_clients().await;

    let got = app.get(&format!("/api/clients/{id}")).await.data();

    assert_eq!(got["name"], "alpha");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_is_renamed_at_the_version_it_was_read_at() {
    let (app, id) = spawn_app_with_three_clients().await;

    let r = app
        .admin(
            "PATCH",
            &format!("/api/clients/{id}"),
            json!({ "name": "alpha-2", "expected_version": 1 }),
        )
        .await;

    assert_eq!(
        (r.status, r.data()["name"].clone(), r.data()["version"].clone()),
        (200, json!("alpha-2"), json!(2))
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_at_a_version_that_has_passed_is_a_version_conflict() {
    let (app, id) = spawn_app_with_three_clients().await;
    let first = app
        .admin(
            "PATCH",
            &format!("/api/clients/{id}"),
            json!({ "name": "alpha-2", "expected_version": 1 }),
        )
        .await;
    assert_eq!(first.status, 200);

    let r = app
        .admin(
            "PATCH",
            &format!("/api/clients/{id}"),
            json!({ "name": "alpha-3", "expected_version": 1 }),
        )
        .await;

    assert_error(&r, 409, "VERSION_CONFLICT");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_cannot_take_another_clients_name_in_another_case() {
    let (app, id) = spawn_app_with_three_clients().await;

    let r = app
        .admin("PATCH", &format!("/api/clients/{id}"), json!({ "name": "BRAVO" }))
        .await;

    assert_error(&r, 409, "CLIENT_NAME_TAKEN");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_that_names_nothing_to_change_is_a_validation_error() {
    let (app, id) = spawn_app_with_three_clients().await;

    let r = app.admin("PATCH", &format!("/api/clients/{id}"), json!({})).await;

    assert_error(&r, 400, "VALIDATION_ERROR");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_client_answers_how_many_files_went_with_it() {
    let (app, id) = spawn_app_with_three_clients().await;

    let r = app.admin("DELETE", &format!("/api/clients/{id}"), json!(null)).await;

    assert_eq!((r.status, r.data()["files_deleted"].clone()), (200, json!(0)));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_client_is_not_found() {
    let (app, id) = spawn_app_with_three_clients().await;
    let deleted = app.admin("DELETE", &format!("/api/clients/{id}"), json!(null)).await;
    assert_eq!(deleted.status, 200);

    let r = app.get(&format!("/api/clients/{id}")).await;

    assert_error(&r, 404, "CLIENT_NOT_FOUND");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_deleted_client_is_a_conflict() {
    let (app, id) = spawn_app_with_three_clients().await;
    let deleted = app.admin("DELETE", &format!("/api/clients/{id}"), json!(null)).await;
    assert_eq!(deleted.status, 200);

    let r = app.admin("DELETE", &format!("/api/clients/{id}"), json!(null)).await;

    assert_error(&r, 409, "CLIENT_DELETED");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_conflicting_changes_let_exactly_one_through() {
    let app = Arc::new(spawn_app().await);
    let (a, _) = app.register("alpha").await;

    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let app = app.clone();
            let path = format!("/api/clients/{a}");
            tokio::spawn(async move {
                app.admin(
                    "PATCH",
                    &path,
                    json!({ "name": format!("name-{i}"), "expected_version": 1 }),
                )
                .await
                .status
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }

    statuses.sort();
    assert_eq!(statuses, [200, 409, 409, 409, 409, 409, 409, 409]);
    assert_eq!(events_of_type(&app, "ClientUpdated"), 1);
    match Arc::try_unwrap(app) {
        Ok(app) => app.stop().await,
        Err(_) => panic!("a task still holds the app"),
    }
}

/// A server whose heartbeat timeout is 300 ms.
async fn spawn_app_with_a_300_ms_timeout() -> TestApp {
    let options = cairn::Options {
        durability: cairn_events::Durability::Normal,
        ..cairn::Options::default()
    };
    spawn_app_with(options, Duration::from_millis(300)).await
}

/// The client once the timeout has marked it offline (it runs on the server's real clock: polled, at most 5 s).
async fn until_offline(app: &TestApp, id: &str) -> serde_json::Value {
    let mut client = serde_json::Value::Null;
    for _ in 0..100 {
        client = app.get(&format!("/api/clients/{id}")).await.data();
        if client["status"] == "Offline" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_client_is_marked_offline_after_the_timeout() {
    let app = spawn_app_with_a_300_ms_timeout().await;
    let (a, token) = app.register("alpha").await;
    heartbeat(&app, &a, &token).await;

    let client = until_offline(&app, &a).await;

    assert_eq!(client["status"], "Offline");
    let data = data_of_the_event(&app, "ClientDisconnected");
    assert!(data.contains("\"timeout\""), "{data}");
    app.stop().await;
}

/// The client's `last_seen` as the API answers it.
async fn last_seen(app: &TestApp, id: &str) -> String {
    app.get(&format!("/api/clients/{id}")).await.data()["last_seen"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_seen_moves_with_every_heartbeat_upload_and_log_line_not_only_at_transitions() {
    let app = spawn_app().await;
    let (a, token) = app.register("alpha").await;
    heartbeat(&app, &a, &token).await;
    let connected = last_seen(&app, &a).await;
    assert!(!connected.is_empty());

    let mut previous = connected;
    for step in ["heartbeat", "upload", "log"] {
        tokio::time::sleep(Duration::from_millis(5)).await;
        match step {
            "heartbeat" => assert_eq!(heartbeat(&app, &a, &token).await.status, 200),
            "upload" => assert_eq!(app.upload(&a, &token, "notes.txt", b"notes").await.status, 201),
            _ => {
                let r = app
                    .post_json("/api/logs", Some(&token), json!({ "level": "info", "message": "hi" }))
                    .await;
                assert_eq!(r.status, 201);
            }
        }
        let now = last_seen(&app, &a).await;
        assert!(now > previous, "a {step} moved last_seen: {previous} → {now}");
        let listed = app.get("/api/clients").await.data()["items"][0]["last_seen"].clone();
        assert_eq!(listed, json!(now), "the list says the same");
        previous = now;
    }
    assert_eq!(
        events_of_type(&app, "ClientConnected"),
        1,
        "signs of life are not events"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_timed_out_keeps_its_last_sign_of_life_not_the_time_of_the_timeout() {
    let app = spawn_app_with_a_300_ms_timeout().await;
    let (a, token) = app.register("alpha").await;
    heartbeat(&app, &a, &token).await;
    let r = app
        .post_json(
            "/api/logs",
            Some(&token),
            json!({ "level": "info", "message": "last words" }),
        )
        .await;
    assert_eq!(r.status, 201);
    let last = last_seen(&app, &a).await;

    let client = until_offline(&app, &a).await;

    assert_eq!(client["status"], "Offline");
    assert_eq!(client["last_seen"], json!(last), "Offline keeps the last sign of life");
    assert!(
        client["updated_at"].as_str().unwrap() > last.as_str(),
        "the timeout came later"
    );
    let data = data_of_the_event(&app, "ClientDisconnected");
    assert!(data.contains(&last), "the event records it: {data}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_heartbeat_connects_the_client() {
    let app = spawn_app().await;
    let (a, token) = app.register("alpha").await;

    let beat = heartbeat(&app, &a, &token).await;

    assert_eq!((beat.status, beat.data()["connected_now"].clone()), (200, json!(true)));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heartbeat_of_a_connected_client_does_not_connect_it_again() {
    let app = spawn_app().await;
    let (a, token) = app.register("alpha").await;
    heartbeat(&app, &a, &token).await;

    let again = heartbeat(&app, &a, &token).await;

    assert_eq!(again.data()["connected_now"], false);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_do_not_flood_the_log() {
    let app = spawn_app().await;
    let (a, token) = app.register("alpha").await;

    heartbeat(&app, &a, &token).await;
    heartbeat(&app, &a, &token).await;

    assert_eq!(
        events_of_type(&app, "ClientConnected"),
        1,
        "heartbeats do not flood the log"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heartbeat_records_the_address_it_came_from() {
    let app = spawn_app().await;
    let (a, token) = app.register("alpha").await;

    heartbeat(&app, &a, &token).await;

    assert_eq!(
        app.get(&format!("/api/clients/{a}")).await.data()["ip_address"],
        "127.0.0.1"
    );
    app.stop().await;
}

/// A client that sent its heartbeat, so is connected: answers its id and token.
async fn spawn_app_with_a_connected_client() -> (TestApp, String, String) {
    let app = spawn_app().await;
    let (a, token) = app.register("alpha").await;
    let beat = heartbeat(&app, &a, &token).await;
    assert_eq!(beat.status, 200);
    (app, a, token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connected_client_disconnects_itself_and_is_offline() {
    let (app, a, token) = spawn_app_with_a_connected_client().await;

    let r = disconnect(&app, &a, &token).await;

    assert_eq!((r.status, r.data()["status"].clone()), (200, json!("Offline")));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnecting_a_client_that_already_disconnected_is_a_conflict() {
    let (app, a, token) = spawn_app_with_a_connected_client().await;
    assert_eq!(disconnect(&app, &a, &token).await.status, 200);

    let r = disconnect(&app, &a, &token).await;

    assert_error(&r, 409, "CLIENT_NOT_CONNECTED");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_disconnects_itself_is_recorded_as_the_actor() {
    let (app, a, token) = spawn_app_with_a_connected_client().await;

    assert_eq!(disconnect(&app, &a, &token).await.status, 200);

    let actor = data_of_the_event(&app, "ClientDisconnected");
    assert!(actor.contains("\"client\""), "the client disconnected itself: {actor}");
    app.stop().await;
}
