//! Input no client should send: malformed JSON, bodies that are not UTF-8 or too large, ids that name nothing,
//! names that try to leave the data directory, queries outside their limits. Each is answered with the right
//! status and code, nothing is stored, and the server stays up.

use crate::common_api::spawn_app;
use crate::helpers::assert_error;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_id_that_is_not_a_uuid_is_not_found() {
    let app = spawn_app().await;

    let r = app.get("/api/clients/not-a-uuid").await;

    assert_error(&r, 404, "CLIENT_NOT_FOUND");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_id_that_names_no_client_is_not_found() {
    let app = spawn_app().await;

    let r = app.get("/api/clients/00000000-0000-0000-0000-000000000000").await;

    assert_error(&r, 404, "CLIENT_NOT_FOUND");
    app.stop().await;
}
