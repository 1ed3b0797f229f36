//! The route table against DESIGN.md's list of endpoints, the OpenAPI document, unknown routes and methods, and
//! the request id every answer carries.

use bytes::Bytes;

use crate::common_api::spawn_app;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_carries_a_request_id_even_without_a_token() {
    let app = spawn_app().await;

    let r = app.send("GET", "/api/health", None, &[], Bytes::new()).await;

    assert!(r.headers.contains_key("x-request-id"));
    app.stop().await;
}
