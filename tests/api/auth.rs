//! Tokens: the admin's, a client's and what a client's may not do, and rotating one.

use bytes::Bytes;
use serde_json::json;

use crate::common_api::{spawn_app, TestApp};
use crate::helpers::{assert_error, send_as};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_without_a_token_is_unauthorized() {
    let app = spawn_app().await;

    let r = app.send("GET", "/api/status", None, &[], Bytes::new()).await;

    assert_error(&r, 401, "UNAUTHORIZED");
    assert_eq!(r.json()["success"], false);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_with_a_wrong_token_is_unauthorized() {
    let app = spawn_app().await;

    let r = app
        .send("GET", "/api/status", Some("wrong-token"), &[], Bytes::new())
        .await;

    assert_error(&r, 401, "UNAUTHORIZED");
    assert_eq!(r.json()["success"], false);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_basic_authorization_is_unauthorized() {
    let app = spawn_app().await;

    let r = app
        .send(
            "GET",
            "/api/status",
            None,
            &[("authorization", "Basic abc")],
            Bytes::new(),
        )
        .await;

    assert_eq!(r.status, 401);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_token_is_not_an_admin_token() {
    let app = spawn_app().await;
    let (_, client_token) = app.register("alpha").await;

    let r = send_as(&app, "GET", "/api/status", &client_token).await;

    assert_eq!(
        (r.status, r.code()),
        (403, "FORBIDDEN".to_owned()),
        "a client token is not an admin token"
    );
    app.stop().await;
}

/// Two clients, alpha and bravo: answers alpha's id and token and bravo's id.
async fn spawn_app_with_two_clients() -> (TestApp, String, String, String) {
    let app = spawn_app().await;
    let (a, a_token) = app.register("alpha").await;
    let (b, _) = app.register("bravo").await;
    (app, a, a_token, b)
}

/// `method path` with alpha's token (and a body of one byte) is forbidden.
async fn assert_forbidden_to_alpha(app: &TestApp, a_token: &str, method: &str, path: &str) {
    let r = app
        .send(method, path, Some(a_token), &[], Bytes::from_static(b"x"))
        .await;
    assert_eq!((r.status, r.code()), (403, "FORBIDDEN".to_owned()), "{method} {path}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_token_cannot_send_another_clients_heartbeat() {
    let (app, _, a_token, b) = spawn_app_with_two_clients().await;

    assert_forbidden_to_alpha(&app, &a_token, "POST", &format!("/api/clients/{b}/heartbeat")).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_token_cannot_upload_as_another_client() {
    let (app, _, a_token, b) = spawn_app_with_two_clients().await;

    assert_forbidden_to_alpha(&app, &a_token, "POST", &format!("/api/clients/{b}/files?name=x")).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_token_cannot_read_another_clients_files() {
    let (app, _, a_token, b) = spawn_app_with_two_clients().await;

    assert_forbidden_to_alpha(&app, &a_token, "GET", &format!("/api/clients/{b}/files")).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_token_cannot_disconnect_another_client() {
    let (app, _, a_token, b) = spawn_app_with_two_clients().await;

    assert_forbidden_to_alpha(&app, &a_token, "POST", &format!("/api/clients/{b}/disconnect")).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_token_cannot_read_the_admins_lists() {
    let (app, _, a_token, _) = spawn_app_with_two_clients().await;

    for path in ["/api/clients", "/api/files", "/api/logs", "/api/events", "/api/stats"] {
        let r = send_as(&app, "GET", path, &a_token).await;

        assert_eq!(r.status, 403, "{path}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_token_cannot_log_as_another_client() {
    let (app, _, a_token, b) = spawn_app_with_two_clients().await;

    let r = app
        .post_json(
            "/api/logs",
            Some(&a_token),
            json!({ "level": "info", "message": "from a", "client_id": b }),
        )
        .await;

    assert_eq!(r.status, 403, "a client may not log as another");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_token_logs_as_its_own_client() {
    let (app, a, a_token, _) = spawn_app_with_two_clients().await;

    let r = app
        .post_json(
            "/api/logs",
            Some(&a_token),
            json!({ "level": "info", "message": "from a" }),
        )
        .await;

    assert_eq!(r.status, 201);
    let logs = app.get("/api/logs").await.data();
    assert_eq!(logs["items"][0]["client_id"], a.as_str());
    app.stop().await;
}

/// A client whose token the admin rotated: answers its id, its old token and its new one.
async fn spawn_app_with_a_rotated_token() -> (TestApp, String, String, String) {
    let app = spawn_app().await;
    let (a, old) = app.register("alpha").await;
    let r = app.admin("POST", &format!("/api/clients/{a}/token"), json!(null)).await;
    let new = r.data()["token"].as_str().unwrap().to_owned();
    (app, a, old, new)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_a_token_retires_the_old_one_at_once() {
    let (app, a, old, _) = spawn_app_with_a_rotated_token().await;

    let r = send_as(&app, "POST", &format!("/api/clients/{a}/heartbeat"), &old).await;

    assert_eq!(r.status, 401);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_token_works_at_once() {
    let (app, a, _, new) = spawn_app_with_a_rotated_token().await;

    let r = send_as(&app, "POST", &format!("/api/clients/{a}/heartbeat"), &new).await;

    assert_eq!(r.status, 200);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_cannot_rotate_its_own_token() {
    let (app, a, _, new) = spawn_app_with_a_rotated_token().await;

    let r = send_as(&app, "POST", &format!("/api/clients/{a}/token"), &new).await;

    assert_eq!(r.status, 403, "a client cannot rotate its own token");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bearer_scheme_is_read_whatever_its_case() {
    let app = spawn_app().await;

    for scheme in ["bearer", "BEARER", "BeArEr"] {
        let auth = format!("{scheme} {}", crate::common_api::ADMIN);
        let r = app
            .send("GET", "/api/status", None, &[("authorization", &auth)], Bytes::new())
            .await;
        assert_eq!(r.status, 200, "{scheme}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_token_cannot_log_under_the_servers_own_sources() {
    let (app, _, a_token, _) = spawn_app_with_two_clients().await;

    for source in ["admin", "System", " server "] {
        let r = app
            .post_json(
                "/api/logs",
                Some(&a_token),
                json!({ "level": "info", "message": "trust me", "source": source }),
            )
            .await;
        assert_eq!((r.status, r.code()), (403, "FORBIDDEN".to_owned()), "{source:?}");
    }
    let admin = app
        .post_json(
            "/api/logs",
            Some(crate::common_api::ADMIN),
            json!({ "level": "info", "message": "really", "source": "server" }),
        )
        .await;
    assert_eq!(admin.status, 201, "the admin may");
    assert_eq!(
        app.count("SELECT count(*) FROM logs"),
        1,
        "only the admin's line was recorded"
    );
    app.stop().await;
}
