//! The route table against DESIGN.md's list of endpoints, the OpenAPI document, unknown routes and methods, and
//! the request id every answer carries.

use bytes::Bytes;
use serde_json::{json, Value};

use crate::common_api::{spawn_app, TestApp, ADMIN};
use crate::helpers::{assert_error, DESIGN_ENDPOINTS};

async fn openapi_document(app: &TestApp) -> Value {
    app.send("GET", "/api/openapi.json", None, &[], Bytes::new())
        .await
        .json()
}

#[test]
fn every_endpoint_of_the_design_is_in_the_route_table() {
    let routes: Vec<(String, &str)> = cairn::http::router::routes()
        .iter()
        .map(|r| (r.method.as_str().to_ascii_lowercase(), r.path))
        .collect();

    let missing: Vec<String> = DESIGN_ENDPOINTS
        .iter()
        .filter(|(m, p)| !routes.iter().any(|(rm, rp)| rm == m && rp == p))
        .map(|(m, p)| format!("{} {p}", m.to_uppercase()))
        .collect();

    assert!(missing.is_empty(), "missing from the route table: {missing:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_is_openapi_3_1_0() {
    let app = spawn_app().await;

    let doc = openapi_document(&app).await;

    assert_eq!(doc["openapi"], "3.1.0");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_lists_every_route_the_server_answers() {
    let app = spawn_app().await;

    let doc = openapi_document(&app).await;

    for route in cairn::http::router::routes() {
        // A last `{name*}` (a tile's path, slashes and all) is one `{name}` parameter in the document.
        let path = route.path.replace("*}", "}");
        let op = &doc["paths"][&path][route.method.as_str().to_ascii_lowercase()];
        assert!(
            op.is_object(),
            "{} {} is missing from openapi.json",
            route.method,
            route.path
        );
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_describes_every_endpoint_of_the_design() {
    let app = spawn_app().await;

    let doc = openapi_document(&app).await;

    let missing: Vec<String> = DESIGN_ENDPOINTS
        .iter()
        .filter(|(m, p)| !doc["paths"][*p][*m].is_object())
        .map(|(m, p)| format!("{} {p}", m.to_uppercase()))
        .collect();
    assert!(
        missing.is_empty(),
        "missing from openapi.json (and so from the router): {missing:?}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_that_does_not_exist_is_not_found() {
    let app = spawn_app().await;

    let r = app.get("/api/nowhere").await;

    assert_error(&r, 404, "ROUTE_NOT_FOUND");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_method_a_route_does_not_answer_is_not_allowed() {
    let app = spawn_app().await;

    let r = app.admin("PUT", "/api/clients", json!({})).await;

    assert_error(&r, 405, "METHOD_NOT_ALLOWED");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_carries_a_request_id_even_without_a_token() {
    let app = spawn_app().await;

    let r = app.send("GET", "/api/health", None, &[], Bytes::new()).await;

    assert!(r.headers.contains_key("x-request-id"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_id_a_caller_sends_is_answered_back() {
    let app = spawn_app().await;

    let r = app
        .send(
            "GET",
            "/api/clients",
            Some(ADMIN),
            &[("x-request-id", "trace-me-42")],
            Bytes::new(),
        )
        .await;

    assert_eq!(r.headers["x-request-id"], "trace-me-42");
    app.stop().await;
}
