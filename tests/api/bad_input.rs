//! Input no client should send: malformed JSON, bodies that are not UTF-8 or too large, ids that name nothing,
//! names that try to leave the data directory, queries outside their limits. Each is answered with the right
//! status and code, nothing is stored, and the server stays up.

use bytes::Bytes;

use crate::common_api::{spawn_app, urlencode, TestApp, ADMIN};
use crate::helpers::{assert_error, assert_invalid_query, assert_no_file_stored, spawn_app_with_upload_limit};

/// Registering a client with `body` is refused with `status` and `code`; nothing is stored and the server is
/// still up.
async fn assert_registration_refused(body: impl Into<Bytes>, status: u16, code: &str) {
    let app = spawn_app().await;
    let body = body.into();

    let r = app
        .send(
            "POST",
            "/api/clients",
            Some(ADMIN),
            &[("content-type", "application/json")],
            body.clone(),
        )
        .await;

    assert_eq!(
        (r.status, r.code()),
        (status, code.to_owned()),
        "{:?}",
        String::from_utf8_lossy(&body[..body.len().min(40)])
    );
    assert_eq!(app.count("SELECT count(*) FROM events"), 0, "nothing stored");
    assert_eq!(app.get("/api/health").await.status, 200, "the server is still up");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_body_cut_short_is_invalid_json() {
    assert_registration_refused(Bytes::from_static(b"{\"name\":"), 400, "INVALID_JSON").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_body_is_invalid_json() {
    assert_registration_refused(Bytes::from_static(b""), 400, "INVALID_JSON").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_array_instead_of_an_object_is_invalid_json() {
    assert_registration_refused(Bytes::from_static(b"[1,2]"), 400, "INVALID_JSON").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_field_the_endpoint_does_not_know_is_invalid_json() {
    assert_registration_refused(
        Bytes::from_static(b"{\"name\":\"x\",\"admin\":true}"),
        400,
        "INVALID_JSON",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_body_that_is_not_utf8_is_invalid_json() {
    assert_registration_refused(Bytes::from_static(b"{\"name\":\"\xff\xfe\"}"), 400, "INVALID_JSON").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_body_of_100_kb_is_too_large() {
    let body = format!("{{\"name\":\"{}\"}}", "x".repeat(100_000));

    assert_registration_refused(body, 413, "PAYLOAD_TOO_LARGE").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blank_client_name_is_a_validation_error() {
    assert_registration_refused(Bytes::from_static(b"{\"name\":\"   \"}"), 400, "VALIDATION_ERROR").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_name_of_101_characters_is_a_validation_error() {
    let body = format!("{{\"name\":\"{}\"}}", "n".repeat(101));

    assert_registration_refused(body, 400, "VALIDATION_ERROR").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_name_with_a_control_character_is_a_validation_error() {
    assert_registration_refused(
        Bytes::from_static(b"{\"name\":\"ctl\\u0007\"}"),
        400,
        "VALIDATION_ERROR",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ip_address_out_of_range_is_a_validation_error() {
    assert_registration_refused(
        Bytes::from_static(b"{\"name\":\"ok\",\"ip_address\":\"300.1.1.1\"}"),
        400,
        "VALIDATION_ERROR",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_below_one_is_an_invalid_query() {
    let app = spawn_app().await;

    for q in ["page=-1", "page=0"] {
        assert_invalid_query(&app, &format!("/api/clients?{q}")).await;
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_per_page_of_zero_or_past_its_limit_is_an_invalid_query() {
    let app = spawn_app().await;

    for q in ["per_page=0", "per_page=100000"] {
        assert_invalid_query(&app, &format!("/api/clients?{q}")).await;
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_that_is_not_a_number_is_an_invalid_query() {
    let app = spawn_app().await;

    assert_invalid_query(&app, "/api/clients?page=abc").await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_per_page_too_large_for_any_integer_is_an_invalid_query() {
    let app = spawn_app().await;

    assert_invalid_query(&app, "/api/clients?per_page=99999999999999999999").await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sorting_by_a_column_outside_the_list_is_an_invalid_query() {
    let app = spawn_app().await;

    assert_invalid_query(&app, "/api/clients?sort=password").await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sort_with_sql_in_it_is_an_invalid_query() {
    let app = spawn_app().await;

    assert_invalid_query(&app, "/api/clients?sort=name;DROP").await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_status_that_does_not_exist_is_an_invalid_query() {
    let app = spawn_app().await;

    assert_invalid_query(&app, "/api/clients?status=Lost").await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_level_that_does_not_exist_is_an_invalid_query() {
    let app = spawn_app().await;

    assert_invalid_query(&app, "/api/logs?level=loud").await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_date_that_is_not_a_date_is_an_invalid_query() {
    let app = spawn_app().await;

    assert_invalid_query(&app, "/api/logs?from=yesterday").await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_that_is_not_utf8_is_refused() {
    let app = spawn_app().await;

    let r = app.get("/api/clients?page=%FF").await;

    assert_eq!(r.status, 400, "a query that is not UTF-8");
    app.stop().await;
}

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

/// Uploads one byte as alpha under `name`; answers the server and its answer.
async fn upload_one_byte_named(name: &str) -> (TestApp, crate::common_api::Reply) {
    let app = spawn_app().await;
    let (a, token) = app.register("alpha").await;
    let path = format!("/api/clients/{a}/files?name={}", urlencode(name));
    let r = app
        .send("POST", &path, Some(&token), &[], Bytes::from_static(b"x"))
        .await;
    (app, r)
}

/// An upload under `name` is a validation error, and nothing is stored.
async fn assert_upload_name_refused(name: &str) {
    let (app, r) = upload_one_byte_named(name).await;
    assert_eq!((r.status, r.code()), (400, "VALIDATION_ERROR".to_owned()), "{name:?}");
    assert_no_file_stored(&app, 0);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_named_with_parent_folders_is_refused_and_writes_nothing_outside() {
    let (app, r) = upload_one_byte_named("../../etc/passwd").await;

    assert_error(&r, 400, "VALIDATION_ERROR");
    assert_no_file_stored(&app, 0);
    assert!(!app.dir.path().join("etc").exists() && !app.dir.path().parent().unwrap().join("etc/passwd").exists());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_named_with_a_slash_is_refused() {
    assert_upload_name_refused("a/b").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_named_with_a_backslash_is_refused() {
    assert_upload_name_refused("a\\b").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_named_dot_dot_is_refused() {
    assert_upload_name_refused("..").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_name_with_a_nul_byte_is_refused() {
    assert_upload_name_refused("nul\0byte").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_name_with_a_control_character_is_refused() {
    assert_upload_name_refused("bell\u{7}").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_upload_name_is_refused() {
    assert_upload_name_refused("").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_without_a_name_is_refused() {
    let app = spawn_app().await;
    let (a, token) = app.register("alpha").await;

    let r = app
        .send(
            "POST",
            &format!("/api/clients/{a}/files"),
            Some(&token),
            &[],
            Bytes::from_static(b"x"),
        )
        .await;

    assert_eq!(r.status, 400, "name is required");
    assert_no_file_stored(&app, 0);
    app.stop().await;
}

/// Uploads `hello` as alpha with one checksum header.
async fn upload_hello_with(header: &str, value: &str) -> (TestApp, crate::common_api::Reply) {
    let app = spawn_app().await;
    let (a, token) = app.register("alpha").await;
    let r = app
        .send(
            "POST",
            &format!("/api/clients/{a}/files?name=x"),
            Some(&token),
            &[(header, value)],
            Bytes::from_static(b"hello"),
        )
        .await;
    (app, r)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sha256_header_that_is_not_hex_is_a_validation_error() {
    let (app, r) = upload_hello_with("x-content-sha256", "xyz").await;

    assert_error(&r, 400, "VALIDATION_ERROR");
    assert_no_file_stored(&app, 0);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crc32_header_that_is_not_hex_is_a_validation_error() {
    let (app, r) = upload_hello_with("x-content-crc32", "nothex!").await;

    assert_error(&r, 400, "VALIDATION_ERROR");
    assert_no_file_stored(&app, 0);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_over_the_limit_is_too_large_and_stores_nothing() {
    let app = spawn_app_with_upload_limit(1000).await;
    let (a, token) = app.register("alpha").await;

    let r = app
        .send(
            "POST",
            &format!("/api/clients/{a}/files?name=big"),
            Some(&token),
            &[],
            vec![0u8; 5000],
        )
        .await;

    assert_error(&r, 413, "PAYLOAD_TOO_LARGE");
    assert_no_file_stored(&app, 0);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_for_a_client_that_does_not_exist_is_not_found() {
    let app = spawn_app().await;

    let r = app
        .send(
            "POST",
            "/api/clients/00000000-0000-0000-0000-000000000001/files?name=x",
            Some(ADMIN),
            &[],
            Bytes::from_static(b"x"),
        )
        .await;

    assert_error(&r, 404, "CLIENT_NOT_FOUND");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_name_with_a_direction_override_is_refused() {
    assert_upload_name_refused("invoice\u{202E}txt.exe").await;
    assert_upload_name_refused("report\u{2067}.pdf").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_name_that_is_not_utf8_once_decoded_is_refused_not_patched() {
    let app = spawn_app().await;
    let (a, token) = app.register("alpha").await;

    for name in ["caf%E9.txt", "%FF%FE", "ok.txt&path=%C3"] {
        let r = app
            .send(
                "POST",
                &format!("/api/clients/{a}/files?name={name}"),
                Some(&token),
                &[],
                Bytes::from_static(b"x"),
            )
            .await;
        assert_eq!((r.status, r.code()), (400, "INVALID_QUERY".to_owned()), "{name}");
    }

    assert_no_file_stored(&app, 0);
    let replaced = app.count("SELECT count(*) FROM events WHERE data LIKE '%' || char(65533) || '%'");
    assert_eq!(replaced, 0, "no U+FFFD reached the log");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_name_with_a_direction_override_is_a_validation_error() {
    assert_registration_refused(
        serde_json::json!({ "name": "admin\u{202E}" }).to_string(),
        400,
        "VALIDATION_ERROR",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_with_a_bad_path_or_type_is_refused_before_its_content_is_read() {
    let app = spawn_app().await;
    let (a, token) = app.register("alpha").await;
    // Small enough to sit in the socket's buffers whole: the server answers without reading it, and a larger
    // body would meet a closed connection before the client reads the answer.
    let body = Bytes::from(vec![0u8; 64 << 10]);

    let long_path = format!("/api/clients/{a}/files?name=x.bin&path={}", "p".repeat(5000));
    let r = app.send("POST", &long_path, Some(&token), &[], body.clone()).await;
    assert_eq!((r.status, r.code()), (400, "VALIDATION_ERROR".to_owned()));
    let bad_type = format!("/api/clients/{a}/files?name=x.bin");
    let r = app
        .send("POST", &bad_type, Some(&token), &[("content-type", "not a type")], body)
        .await;
    assert_eq!((r.status, r.code()), (400, "VALIDATION_ERROR".to_owned()));

    assert_eq!(
        app.count("SELECT count(*) FROM events WHERE type = 'TransferStarted'"),
        0,
        "refused before a transfer began"
    );
    assert_no_file_stored(&app, 0);
    app.stop().await;
}
