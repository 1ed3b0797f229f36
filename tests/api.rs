//! The HTTP API against a real server on port 0: each endpoint's happy and error paths, and a battery of bad
//! input, each answered with the right status and code, nothing stored, the server still up.
#![allow(clippy::unwrap_used)] // a test that cannot proceed should panic where it stopped

#[path = "common/api.rs"]
mod helpers;

use bytes::Bytes;
use helpers::{spawn_app, spawn_app_with, urlencode, ADMIN};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_needs_no_token_and_everything_else_does() {
    let app = spawn_app().await;
    let r = app.send("GET", "/api/health", None, &[], Bytes::new()).await;
    assert_eq!((r.status, r.data()["status"].clone()), (200, json!("ok")));
    assert!(r.headers.contains_key("x-request-id"));
    for (token, status, code) in [(None, 401, "UNAUTHORIZED"), (Some("wrong-token"), 401, "UNAUTHORIZED")] {
        let r = app.send("GET", "/api/status", token, &[], Bytes::new()).await;
        assert_eq!((r.status, r.code()), (status, code.to_owned()));
        assert_eq!(r.json()["success"], false);
    }
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
    let (_, client_token) = app.register("alpha").await;
    let r = app
        .send("GET", "/api/status", Some(&client_token), &[], Bytes::new())
        .await;
    assert_eq!(
        (r.status, r.code()),
        (403, "FORBIDDEN".to_owned()),
        "a client token is not an admin token"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reports_the_figures_of_the_old_server_and_the_log() {
    let app = spawn_app().await;
    let (id, token) = app.register("alpha").await;
    app.upload(&id, &token, "a.txt", b"same").await;
    app.upload(&id, &token, "b.txt", b"same").await;
    let s = app.get("/api/status").await.data();
    assert_eq!(
        (s["total_clients"].clone(), s["total_files"].clone()),
        (json!(1), json!(2))
    );
    assert_eq!(
        (s["storage_used_bytes"].clone(), s["stored_bytes"].clone()),
        (json!(8), json!(4))
    );
    assert_eq!(s["total_transfers"], 2);
    assert_eq!(s["events_total"], s["head_position"]);
    assert_eq!(s["events_total"], 7);
    assert_eq!(s["running"], true);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_are_registered_listed_read_changed_and_deleted() {
    let app = spawn_app().await;
    let r = app
        .post_json(
            "/api/clients",
            Some(ADMIN),
            json!({ "name": "alpha", "client_id": "host-1", "ip_address": "10.0.0.1" }),
        )
        .await;
    assert_eq!(r.status, 201);
    let d = r.data();
    let id = d["client"]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        (d["client"]["client_id"].clone(), d["client"]["status"].clone()),
        (json!("host-1"), json!("Registered"))
    );
    assert_eq!(d["token"].as_str().unwrap().len(), 64);
    assert!(
        d["client"].get("token_hash").is_none(),
        "the token's hash is never sent"
    );
    for name in ["bravo", "charlie"] {
        app.register(name).await;
    }

    let page = app.get("/api/clients?page=1&per_page=2&sort=-name").await.data();
    assert_eq!(
        (page["total"].clone(), page["pages"].clone(), page["per_page"].clone()),
        (json!(3), json!(2), json!(2))
    );
    assert_eq!(page["items"][0]["name"], "charlie");
    let found = app.get("/api/clients?q=rav").await.data();
    assert_eq!(found["items"][0]["name"], "bravo");

    let got = app.get(&format!("/api/clients/{id}")).await.data();
    assert_eq!(got["name"], "alpha");
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
    let r = app
        .admin(
            "PATCH",
            &format!("/api/clients/{id}"),
            json!({ "name": "alpha-3", "expected_version": 1 }),
        )
        .await;
    assert_eq!((r.status, r.code()), (409, "VERSION_CONFLICT".to_owned()));
    let r = app
        .admin("PATCH", &format!("/api/clients/{id}"), json!({ "name": "BRAVO" }))
        .await;
    assert_eq!((r.status, r.code()), (409, "CLIENT_NAME_TAKEN".to_owned()));
    let r = app.admin("PATCH", &format!("/api/clients/{id}"), json!({})).await;
    assert_eq!((r.status, r.code()), (400, "VALIDATION_ERROR".to_owned()));

    let r = app.admin("DELETE", &format!("/api/clients/{id}"), json!(null)).await;
    assert_eq!((r.status, r.data()["files_deleted"].clone()), (200, json!(0)));
    let r = app.get(&format!("/api/clients/{id}")).await;
    assert_eq!((r.status, r.code()), (404, "CLIENT_NOT_FOUND".to_owned()));
    let r = app.admin("DELETE", &format!("/api/clients/{id}"), json!(null)).await;
    assert_eq!((r.status, r.code()), (409, "CLIENT_DELETED".to_owned()));
    for bad in ["not-a-uuid", "00000000-0000-0000-0000-000000000000"] {
        let r = app.get(&format!("/api/clients/{bad}")).await;
        assert_eq!((r.status, r.code()), (404, "CLIENT_NOT_FOUND".to_owned()), "{bad}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_token_is_good_for_its_own_heartbeat_uploads_and_logs_only() {
    let app = spawn_app().await;
    let (a, a_token) = app.register("alpha").await;
    let (b, _) = app.register("bravo").await;
    let beat = app
        .send(
            "POST",
            &format!("/api/clients/{a}/heartbeat"),
            Some(&a_token),
            &[],
            Bytes::new(),
        )
        .await;
    assert_eq!((beat.status, beat.data()["connected_now"].clone()), (200, json!(true)));
    let again = app
        .send(
            "POST",
            &format!("/api/clients/{a}/heartbeat"),
            Some(&a_token),
            &[],
            Bytes::new(),
        )
        .await;
    assert_eq!(again.data()["connected_now"], false);
    assert_eq!(
        app.count("SELECT count(*) FROM events WHERE type = 'ClientConnected'"),
        1,
        "heartbeats do not flood the log"
    );
    assert_eq!(
        app.get(&format!("/api/clients/{a}")).await.data()["ip_address"],
        "127.0.0.1"
    );

    for (method, path) in [
        ("POST", format!("/api/clients/{b}/heartbeat")),
        ("POST", format!("/api/clients/{b}/files?name=x")),
        ("GET", format!("/api/clients/{b}/files")),
        ("POST", format!("/api/clients/{b}/disconnect")),
    ] {
        let r = app
            .send(method, &path, Some(&a_token), &[], Bytes::from_static(b"x"))
            .await;
        assert_eq!((r.status, r.code()), (403, "FORBIDDEN".to_owned()), "{method} {path}");
    }
    for path in ["/api/clients", "/api/files", "/api/logs", "/api/events", "/api/stats"] {
        let r = app.send("GET", path, Some(&a_token), &[], Bytes::new()).await;
        assert_eq!(r.status, 403, "{path}");
    }
    let r = app
        .post_json(
            "/api/logs",
            Some(&a_token),
            json!({ "level": "info", "message": "from a", "client_id": b }),
        )
        .await;
    assert_eq!(r.status, 403, "a client may not log as another");
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

    let r = app
        .send(
            "POST",
            &format!("/api/clients/{a}/disconnect"),
            Some(&a_token),
            &[],
            Bytes::new(),
        )
        .await;
    assert_eq!((r.status, r.data()["status"].clone()), (200, json!("Offline")));
    let r = app
        .send(
            "POST",
            &format!("/api/clients/{a}/disconnect"),
            Some(&a_token),
            &[],
            Bytes::new(),
        )
        .await;
    assert_eq!((r.status, r.code()), (409, "CLIENT_NOT_CONNECTED".to_owned()));
    let actor: String = {
        let conn = cairn_events::schema::open_read_only(&app.dir.path().join("cairn.db")).unwrap();
        conn.query_row("SELECT data FROM events WHERE type = 'ClientDisconnected'", [], |r| {
            r.get(0)
        })
        .unwrap()
    };
    assert!(actor.contains("\"client\""), "the client disconnected itself: {actor}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_a_token_retires_the_old_one_at_once() {
    let app = spawn_app().await;
    let (a, old) = app.register("alpha").await;
    let r = app.admin("POST", &format!("/api/clients/{a}/token"), json!(null)).await;
    let new = r.data()["token"].as_str().unwrap().to_owned();
    let r = app
        .send(
            "POST",
            &format!("/api/clients/{a}/heartbeat"),
            Some(&old),
            &[],
            Bytes::new(),
        )
        .await;
    assert_eq!(r.status, 401);
    let r = app
        .send(
            "POST",
            &format!("/api/clients/{a}/heartbeat"),
            Some(&new),
            &[],
            Bytes::new(),
        )
        .await;
    assert_eq!(r.status, 200);
    let r = app
        .send(
            "POST",
            &format!("/api/clients/{a}/token"),
            Some(&new),
            &[],
            Bytes::new(),
        )
        .await;
    assert_eq!(r.status, 403, "a client cannot rotate its own token");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_are_uploaded_listed_downloaded_with_ranges_verified_and_deleted() {
    let app = spawn_app().await;
    let (a, token) = app.register("alpha").await;
    let content: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let path = format!(
        "/api/clients/{a}/files?name=data.bin&path={}",
        urlencode("C:\\Users\\a\\..\\data.bin")
    );
    let r = app
        .send(
            "POST",
            &path,
            Some(&token),
            &[("content-type", "application/x-custom")],
            content.clone(),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
    let file = r.data();
    let id = file["id"].as_str().unwrap().to_owned();
    assert_eq!(
        (file["size"].clone(), file["mime_type"].clone()),
        (json!(100_000), json!("application/x-custom"))
    );
    assert_eq!(
        file["original_path"], "C:\\Users\\a\\..\\data.bin",
        "the client's path is kept as text"
    );

    let list = app.get("/api/files?client=".to_owned().as_str()).await.data();
    assert_eq!(list["total"], 1);
    let mine = app
        .send(
            "GET",
            &format!("/api/clients/{a}/files"),
            Some(&token),
            &[],
            Bytes::new(),
        )
        .await
        .data();
    assert_eq!(mine["items"][0]["id"], id.as_str());
    assert_eq!(app.get("/api/files?verified=false").await.data()["total"], 1);
    let r = app.get("/api/files?verified=maybe").await;
    assert_eq!((r.status, r.code()), (400, "INVALID_QUERY".to_owned()));

    let full = app.get(&format!("/api/files/{id}/content")).await;
    assert_eq!((full.status, full.body.to_vec() == content), (200, true));
    assert_eq!(full.headers["accept-ranges"], "bytes");
    assert!(full.headers["content-disposition"]
        .to_str()
        .unwrap()
        .contains("data.bin"));
    let part = app
        .send(
            "GET",
            &format!("/api/files/{id}/content"),
            Some(ADMIN),
            &[("range", "bytes=10-19")],
            Bytes::new(),
        )
        .await;
    assert_eq!((part.status, part.body.to_vec()), (206, content[10..20].to_vec()));
    assert_eq!(part.headers["content-range"], "bytes 10-19/100000");
    let tail = app
        .send(
            "GET",
            &format!("/api/files/{id}/content"),
            Some(ADMIN),
            &[("range", "bytes=-5")],
            Bytes::new(),
        )
        .await;
    assert_eq!(tail.body.to_vec(), content[99_995..].to_vec());
    let bad = app
        .send(
            "GET",
            &format!("/api/files/{id}/content"),
            Some(ADMIN),
            &[("range", "bytes=200000-")],
            Bytes::new(),
        )
        .await;
    assert_eq!((bad.status, bad.code()), (416, "RANGE_NOT_SATISFIABLE".to_owned()));
    assert_eq!(app.get(&format!("/api/files/{id}")).await.data()["downloads"], 3);
    assert_eq!(
        app.count("SELECT count(*) FROM events WHERE type = 'FileDownloaded'"),
        3
    );

    let v = app.admin("POST", &format!("/api/files/{id}/verify"), json!(null)).await;
    assert_eq!((v.status, v.data()["ok"].clone()), (200, json!(true)));
    assert_eq!(app.get(&format!("/api/files/{id}")).await.data()["verified"], true);

    let transfers = app.get("/api/transfers?status=Completed").await.data();
    assert_eq!(transfers["total"], 1);
    let r = app.get("/api/transfers?status=Lost").await;
    assert_eq!((r.status, r.code()), (400, "INVALID_QUERY".to_owned()));

    let d = app.admin("DELETE", &format!("/api/files/{id}"), json!(null)).await;
    assert_eq!(d.status, 200);
    let sha = file["checksum"].as_str().unwrap();
    assert!(
        !app.dir.path().join("blobs").join(&sha[..2]).join(sha).exists(),
        "the blob went with its last file"
    );
    for path in [format!("/api/files/{id}"), format!("/api/files/{id}/content")] {
        let r = app.get(&path).await;
        assert_eq!((r.status, r.code()), (404, "FILE_NOT_FOUND".to_owned()));
    }
    let r = app.admin("POST", &format!("/api/files/{id}/verify"), json!(null)).await;
    assert_eq!(r.status, 404);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_that_do_not_check_out_store_nothing() {
    let app = spawn_app_with(
        cairn::Options {
            durability: cairn_events::Durability::Normal,
            max_upload: 1000,
            ..cairn::Options::default()
        },
        std::time::Duration::from_secs(60),
    )
    .await;
    let (a, token) = app.register("alpha").await;
    let upload = |name: &str| format!("/api/clients/{a}/files?name={}", urlencode(name));

    let r = app
        .send(
            "POST",
            &upload("x"),
            Some(&token),
            &[("x-content-sha256", &"0".repeat(64))],
            Bytes::from_static(b"hello"),
        )
        .await;
    assert_eq!((r.status, r.code()), (400, "CHECKSUM_MISMATCH".to_owned()));
    let r = app
        .send(
            "POST",
            &upload("x"),
            Some(&token),
            &[("x-content-crc32", "deadbeef")],
            Bytes::from_static(b"hello"),
        )
        .await;
    assert_eq!((r.status, r.code()), (400, "CHECKSUM_MISMATCH".to_owned()));
    let right = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
    let r = app
        .send(
            "POST",
            &upload("ok"),
            Some(&token),
            &[("x-content-sha256", right), ("x-content-crc32", "3610a686")],
            Bytes::from_static(b"hello"),
        )
        .await;
    assert_eq!(r.status, 201, "matching declared checksums are accepted");
    for (header, value) in [("x-content-sha256", "xyz"), ("x-content-crc32", "nothex!")] {
        let r = app
            .send(
                "POST",
                &upload("x"),
                Some(&token),
                &[(header, value)],
                Bytes::from_static(b"hello"),
            )
            .await;
        assert_eq!((r.status, r.code()), (400, "VALIDATION_ERROR".to_owned()), "{header}");
    }
    let r = app
        .send("POST", &upload("big"), Some(&token), &[], vec![0u8; 5000])
        .await;
    assert_eq!((r.status, r.code()), (413, "PAYLOAD_TOO_LARGE".to_owned()));
    for name in ["../../etc/passwd", "a/b", "a\\b", "..", "nul\0byte", "bell\u{7}", ""] {
        let r = app
            .send("POST", &upload(name), Some(&token), &[], Bytes::from_static(b"x"))
            .await;
        assert_eq!((r.status, r.code()), (400, "VALIDATION_ERROR".to_owned()), "{name:?}");
    }
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
    assert_eq!(
        app.count("SELECT count(*) FROM files"),
        1,
        "only the upload that checked out"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM transfers WHERE status = 'Failed'"),
        2,
        "the mismatches failed their transfers"
    );
    assert_eq!(std::fs::read_dir(app.dir.path().join("blobs/tmp")).unwrap().count(), 0);
    assert!(!app.dir.path().join("etc").exists() && !app.dir.path().parent().unwrap().join("etc/passwd").exists());
    let r = app
        .send(
            "POST",
            "/api/clients/00000000-0000-0000-0000-000000000001/files?name=x",
            Some(ADMIN),
            &[],
            Bytes::from_static(b"x"),
        )
        .await;
    assert_eq!((r.status, r.code()), (404, "CLIENT_NOT_FOUND".to_owned()));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_disconnects_mid_upload_leaves_a_failed_transfer_and_no_file() {
    use tokio::io::AsyncWriteExt;
    let app = spawn_app().await;
    let (a, token) = app.register("alpha").await;
    let mut socket = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "POST /api/clients/{a}/files?name=partial.bin HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {token}\r\ncontent-length: 1000000\r\n\r\n"
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    socket.write_all(&[7u8; 4096]).await.unwrap();
    socket.flush().await.unwrap();
    // Wait until the server has started the transfer, then vanish.
    for _ in 0..200 {
        if app.count("SELECT count(*) FROM transfers") == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    drop(socket);
    let mut status = String::new();
    for _ in 0..300 {
        status = app.get("/api/transfers").await.data()["items"][0]["status"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        if status == "Failed" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(status, "Failed");
    assert_eq!(app.count("SELECT count(*) FROM files"), 0);
    assert_eq!(std::fs::read_dir(app.dir.path().join("blobs/tmp")).unwrap().count(), 0);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_oversized_and_unexpected_json_is_refused_and_nothing_is_stored() {
    let app = spawn_app().await;
    let cases: Vec<(Bytes, u16, &str)> = vec![
        (Bytes::from_static(b"{\"name\":"), 400, "INVALID_JSON"),
        (Bytes::from_static(b""), 400, "INVALID_JSON"),
        (Bytes::from_static(b"[1,2]"), 400, "INVALID_JSON"),
        (
            Bytes::from_static(b"{\"name\":\"x\",\"admin\":true}"),
            400,
            "INVALID_JSON",
        ),
        (Bytes::from_static(b"{\"name\":\"\xff\xfe\"}"), 400, "INVALID_JSON"),
        (
            Bytes::from(format!("{{\"name\":\"{}\"}}", "x".repeat(100_000))),
            413,
            "PAYLOAD_TOO_LARGE",
        ),
        (Bytes::from_static(b"{\"name\":\"   \"}"), 400, "VALIDATION_ERROR"),
        (
            Bytes::from(format!("{{\"name\":\"{}\"}}", "n".repeat(101))),
            400,
            "VALIDATION_ERROR",
        ),
        (
            Bytes::from_static(b"{\"name\":\"ctl\\u0007\"}"),
            400,
            "VALIDATION_ERROR",
        ),
        (
            Bytes::from_static(b"{\"name\":\"ok\",\"ip_address\":\"300.1.1.1\"}"),
            400,
            "VALIDATION_ERROR",
        ),
    ];
    for (body, status, code) in cases {
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
    }
    assert_eq!(app.count("SELECT count(*) FROM events"), 0, "nothing stored");
    assert_eq!(app.get("/api/health").await.status, 200, "the server is still up");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_paging_and_queries_are_400_and_unknown_routes_404_or_405() {
    let app = spawn_app().await;
    for q in [
        "page=-1",
        "page=0",
        "per_page=0",
        "per_page=100000",
        "page=abc",
        "per_page=99999999999999999999",
        "sort=password",
        "sort=name;DROP",
        "status=Lost",
    ] {
        let r = app.get(&format!("/api/clients?{q}")).await;
        assert_eq!((r.status, r.code()), (400, "INVALID_QUERY".to_owned()), "{q}");
    }
    for q in ["level=loud", "from=yesterday"] {
        let r = app.get(&format!("/api/logs?{q}")).await;
        assert_eq!((r.status, r.code()), (400, "INVALID_QUERY".to_owned()), "{q}");
    }
    let r = app.get("/api/clients?page=%FF").await;
    assert_eq!(r.status, 400, "a query that is not UTF-8");
    let r = app.get("/api/nowhere").await;
    assert_eq!((r.status, r.code()), (404, "ROUTE_NOT_FOUND".to_owned()));
    let r = app.admin("PUT", "/api/clients", json!({})).await;
    assert_eq!((r.status, r.code()), (405, "METHOD_NOT_ALLOWED".to_owned()));
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_are_recorded_filtered_exported_and_cleared() {
    let app = spawn_app().await;
    for (level, message, source) in [
        ("info", "started, all good", "agent"),
        ("error", "disk \"full\"\nretrying", "agent"),
        ("warning", "=cmd|slow", "server"),
    ] {
        let r = app
            .post_json(
                "/api/logs",
                Some(ADMIN),
                json!({ "level": level, "message": message, "source": source }),
            )
            .await;
        assert_eq!(r.status, 201);
    }
    let r = app
        .post_json("/api/logs", Some(ADMIN), json!({ "level": "loud", "message": "x" }))
        .await;
    assert_eq!((r.status, r.code()), (400, "VALIDATION_ERROR".to_owned()));
    let r = app
        .post_json(
            "/api/logs",
            Some(ADMIN),
            json!({ "level": "info", "message": "x", "client_id": "00000000-0000-0000-0000-000000000009" }),
        )
        .await;
    assert_eq!((r.status, r.code()), (404, "CLIENT_NOT_FOUND".to_owned()));

    assert_eq!(app.get("/api/logs?level=error").await.data()["total"], 1);
    assert_eq!(app.get("/api/logs?source=agent").await.data()["total"], 2);
    assert_eq!(app.get("/api/logs?q=disk").await.data()["items"][0]["level"], "error");

    let json_export = app.get("/api/logs/export?format=json&source=agent").await;
    assert_eq!(json_export.status, 200);
    let rows: serde_json::Value = serde_json::from_slice(&json_export.body).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 2);
    let jsonl = app.get("/api/logs/export?format=jsonl").await;
    assert_eq!(String::from_utf8_lossy(&jsonl.body).lines().count(), 3);
    let csv = app.get("/api/logs/export?format=csv").await;
    let text = String::from_utf8(csv.body.to_vec()).unwrap();
    assert!(csv.headers["content-type"].to_str().unwrap().starts_with("text/csv"));
    assert!(text.starts_with("id,recorded_at,level,source,client_id,file_id,message\r\n"));
    assert!(text.contains("\"disk \"\"full\"\"\nretrying\""), "quoted: {text}");
    assert!(text.contains("'=cmd|slow"), "defused: {text}");
    assert!(text.contains("\"started, all good\""));
    let r = app.get("/api/logs/export?format=xml").await;
    assert_eq!((r.status, r.code()), (400, "INVALID_QUERY".to_owned()));

    let r = app.admin("DELETE", "/api/logs", json!(null)).await;
    assert_eq!(r.data()["cleared"], 3);
    assert_eq!(app.get("/api/logs").await.data()["total"], 0);
    assert_eq!(app.count("SELECT count(*) FROM events WHERE type = 'LogRecorded'"), 3);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_trail_pages_filters_and_verifies_and_every_event_names_its_actor() {
    let app = spawn_app().await;
    let (a, token) = app.register("alpha").await;
    app.upload(&a, &token, "f.txt", b"content").await;
    for i in 0..5 {
        app.post_json(
            "/api/logs",
            Some(ADMIN),
            json!({ "level": "info", "message": format!("m{i}") }),
        )
        .await;
    }
    let page = app.get("/api/events?limit=3").await.data();
    assert_eq!(
        (
            page["events"].as_array().unwrap().len(),
            page["next_after"].clone(),
            page["total"].clone()
        ),
        (3, json!(3), json!(9))
    );
    let next = app.get("/api/events?limit=3&after=3").await.data();
    assert_eq!(next["events"][0]["position"], 4);
    let uploads = app
        .get(&format!("/api/events?actor={}", urlencode(&format!("client:{a}"))))
        .await
        .data();
    assert_eq!(uploads["total"], 3, "transfer started, file stored, transfer completed");
    let meta = &uploads["events"][0]["metadata"];
    assert!(
        meta["request_id"].is_string() && meta["remote_addr"].as_str().unwrap().starts_with("127.0.0.1"),
        "{meta}"
    );
    assert_eq!(app.get("/api/events?type=LogRecorded").await.data()["total"], 5);
    for q in ["limit=0", "limit=5000", "after=-1", "from=never"] {
        let r = app.get(&format!("/api/events?{q}")).await;
        assert_eq!((r.status, r.code()), (400, "INVALID_QUERY".to_owned()), "{q}");
    }

    let one = app.get("/api/events/1").await.data();
    assert_eq!(
        (one["type"].clone(), one["data"]["name"].clone()),
        (json!("ClientRegistered"), json!("alpha"))
    );
    assert_eq!(one["hash"].as_str().unwrap().len(), 64);
    for bad in ["999", "abc", "-1"] {
        let r = app.get(&format!("/api/events/{bad}")).await;
        assert_eq!((r.status, r.code()), (404, "EVENT_NOT_FOUND".to_owned()), "{bad}");
    }
    let history = app.get(&format!("/api/streams/client-{a}")).await.data();
    assert_eq!(history["events"][0]["type"], "ClientRegistered");
    let r = app.get("/api/streams/client-nobody").await;
    assert_eq!((r.status, r.code()), (404, "STREAM_NOT_FOUND".to_owned()));

    let v = app.get("/api/audit/verify").await.data();
    assert_eq!(
        (v["ok"].clone(), v["checked"].clone(), v["first_bad"].clone()),
        (json!(true), json!(9), json!(null))
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_a_position_a_client_and_a_file_answer_as_they_were_then() {
    let app = spawn_app().await;
    let (a, token) = app.register("alpha").await; // 1
    let f = app.upload(&a, &token, "f.txt", b"v1").await.data()["id"]
        .as_str()
        .unwrap()
        .to_owned(); // 2-4
    app.admin("PATCH", &format!("/api/clients/{a}"), json!({ "name": "renamed" }))
        .await; // 5
    app.admin("POST", &format!("/api/files/{f}/verify"), json!(null)).await; // 6

    let then = app.get(&format!("/api/clients/{a}?at=1")).await.data();
    assert_eq!(
        (then["name"].clone(), then["files_count"].clone()),
        (json!("alpha"), json!(0))
    );
    let later = app.get(&format!("/api/clients/{a}?at=4")).await.data();
    assert_eq!(
        (later["name"].clone(), later["files_count"].clone()),
        (json!("alpha"), json!(1))
    );
    let file_then = app.get(&format!("/api/files/{f}?at=5")).await.data();
    assert_eq!(
        (file_then["client_name"].clone(), file_then["verified"].clone()),
        (json!("renamed"), json!(false))
    );
    assert_eq!(app.get(&format!("/api/files/{f}?at=6")).await.data()["verified"], true);
    let r = app.get(&format!("/api/files/{f}?at=1")).await;
    assert_eq!(
        (r.status, r.code()),
        (404, "FILE_NOT_FOUND".to_owned()),
        "the file did not exist yet"
    );
    for at in ["0", "99", "x"] {
        let r = app.get(&format!("/api/clients/{a}?at={at}")).await;
        assert_eq!((r.status, r.code()), (400, "INVALID_QUERY".to_owned()), "at={at}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_count_by_bucket_and_in_total() {
    let app = spawn_app().await;
    let (a, token) = app.register("alpha").await;
    app.upload(&a, &token, "f.txt", b"12345").await;
    let s = app.get("/api/stats?bucket=hour").await.data();
    assert_eq!(s["buckets"][0]["uploads"], 1);
    assert_eq!(s["buckets"][0]["bucket"].as_str().unwrap().len(), 13);
    assert_eq!(
        (s["totals"]["bytes_in"].clone(), s["totals"]["registrations"].clone()),
        (json!(5), json!(1))
    );
    let far = app.get("/api/stats?from=2001-01-01&to=2001-01-02").await.data();
    assert_eq!(far["buckets"], json!([]));
    let r = app.get("/api/stats?bucket=week").await;
    assert_eq!((r.status, r.code()), (400, "INVALID_QUERY".to_owned()));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_client_is_marked_offline_after_the_timeout() {
    let app = spawn_app_with(
        cairn::Options {
            durability: cairn_events::Durability::Normal,
            ..cairn::Options::default()
        },
        std::time::Duration::from_millis(300),
    )
    .await;
    let (a, token) = app.register("alpha").await;
    app.send(
        "POST",
        &format!("/api/clients/{a}/heartbeat"),
        Some(&token),
        &[],
        Bytes::new(),
    )
    .await;
    let mut status = String::new();
    for _ in 0..100 {
        status = app.get(&format!("/api/clients/{a}")).await.data()["status"]
            .as_str()
            .unwrap()
            .to_owned();
        if status == "Offline" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(status, "Offline");
    let conn = cairn_events::schema::open_read_only(&app.dir.path().join("cairn.db")).unwrap();
    let data: String = conn
        .query_row("SELECT data FROM events WHERE type = 'ClientDisconnected'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(data.contains("\"timeout\""), "{data}");
    drop(conn);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_lists_every_route_the_server_answers() {
    let app = spawn_app().await;
    let doc = app
        .send("GET", "/api/openapi.json", None, &[], Bytes::new())
        .await
        .json();
    assert_eq!(doc["openapi"], "3.1.0");
    for route in cairn::http::router::routes() {
        let op = &doc["paths"][route.path][route.method.as_str().to_ascii_lowercase()];
        assert!(
            op.is_object(),
            "{} {} is missing from openapi.json",
            route.method,
            route.path
        );
    }
    app.stop().await;
}

/// Every endpoint of DESIGN.md's HTTP table (the live feed, `/api/live`, is the next issue's).
const DESIGN_ENDPOINTS: &[(&str, &str)] = &[
    ("get", "/api/health"),
    ("get", "/api/status"),
    ("get", "/api/system"),
    ("get", "/api/activity"),
    ("get", "/api/clients"),
    ("post", "/api/clients"),
    ("get", "/api/clients/{id}"),
    ("patch", "/api/clients/{id}"),
    ("delete", "/api/clients/{id}"),
    ("post", "/api/clients/{id}/heartbeat"),
    ("post", "/api/clients/{id}/disconnect"),
    ("post", "/api/clients/{id}/token"),
    ("get", "/api/files"),
    ("get", "/api/clients/{id}/files"),
    ("post", "/api/clients/{id}/files"),
    ("get", "/api/files/{id}"),
    ("delete", "/api/files/{id}"),
    ("get", "/api/files/{id}/content"),
    ("post", "/api/files/{id}/verify"),
    ("get", "/api/transfers"),
    ("get", "/api/logs"),
    ("post", "/api/logs"),
    ("delete", "/api/logs"),
    ("get", "/api/logs/export"),
    ("get", "/api/events"),
    ("get", "/api/events/{position}"),
    ("get", "/api/streams/{stream}"),
    ("get", "/api/audit/verify"),
    ("get", "/api/stats"),
    ("get", "/api/db"),
    ("get", "/api/db/health"),
    ("get", "/api/db/tables/{name}"),
    ("patch", "/api/db/tables/{name}/{id}"),
    ("delete", "/api/db/tables/{name}/{id}"),
    ("post", "/api/db/query"),
    ("post", "/api/db/backup"),
    ("post", "/api/db/optimize"),
    ("get", "/api/openapi.json"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_describes_every_endpoint_of_the_design() {
    let app = spawn_app().await;
    let doc = app
        .send("GET", "/api/openapi.json", None, &[], Bytes::new())
        .await
        .json();
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
async fn system_and_activity_show_the_machine_and_the_latest_events() {
    let app = spawn_app().await;
    let (a, token) = app.register("alpha").await;
    app.upload(&a, &token, "f.txt", b"abc").await;
    let s = app.get("/api/system").await.data();
    assert!(
        s["memory_total_bytes"].as_u64().unwrap() > 0 && s["process_rss_bytes"].as_u64().unwrap() > 0,
        "{s}"
    );
    assert!(s["disk_total_bytes"].as_u64().is_some(), "{s}");
    assert_eq!(s["blobs_bytes"], 3);
    let act = app.get("/api/activity?limit=2").await.data();
    let items = act["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["type"], "TransferCompleted", "newest first");
    assert_eq!(items[1]["summary"], "alpha stored f.txt (3 bytes)");
    for bad in ["0", "1000", "x"] {
        let r = app.get(&format!("/api/activity?limit={bad}")).await;
        assert_eq!(r.status, 400, "{bad}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_endpoints_inform_check_browse_back_up_and_optimize() {
    let app = spawn_app().await;
    let (a, token) = app.register("alpha").await;
    app.upload(&a, &token, "f.txt", b"abc").await;
    let info = app.get("/api/db").await.data();
    assert_eq!(info["schema_version"], cairn_events::schema::latest_version());
    assert_eq!(info["journal_mode"], "wal");
    let events = info["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "events")
        .unwrap()
        .clone();
    assert_eq!(events["rows"], 4);
    assert!(events["bytes"].as_i64().unwrap() > 0);
    assert_eq!(info["last_backup"], json!(null));

    let health = app.get("/api/db/health").await.data();
    assert_eq!(health["ok"], true, "{health}");
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

    let t = app.get("/api/db/tables/clients").await.data();
    assert_eq!(t["page"]["total"], 1);
    assert!(
        !t["columns"].as_array().unwrap().contains(&json!("token_hash")),
        "secrets stay hidden"
    );
    let t = app.get("/api/db/tables/events?per_page=2&sort=-position").await.data();
    assert_eq!(t["page"]["items"][0]["position"], 4);
    for bad in ["sqlite_master", "secrets", "clients;DROP"] {
        let r = app.get(&format!("/api/db/tables/{}", urlencode(bad))).await;
        assert_eq!((r.status, r.code()), (404, "TABLE_NOT_FOUND".to_owned()), "{bad}");
    }

    let b = app.admin("POST", "/api/db/backup", json!(null)).await;
    assert_eq!(b.status, 201);
    let path = b.data()["path"].as_str().unwrap().to_owned();
    assert!(std::path::Path::new(&path).exists());
    assert_eq!(
        app.get("/api/db").await.data()["last_backup"]["type"],
        "DatabaseBackedUp"
    );
    let o = app.admin("POST", "/api/db/optimize", json!(null)).await;
    assert_eq!(o.status, 200);
    assert_eq!(
        app.count("SELECT count(*) FROM events WHERE type = 'DatabaseOptimized'"),
        1
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_edits_become_events_and_the_log_itself_is_never_edited() {
    let app = spawn_app().await;
    let (a, token) = app.register("alpha").await;
    let f = app.upload(&a, &token, "f.txt", b"abc").await.data()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.post_json("/api/logs", Some(ADMIN), json!({ "level": "info", "message": "m" }))
        .await;

    let r = app
        .admin(
            "PATCH",
            &format!("/api/db/tables/clients/{a}"),
            json!({ "name": "renamed" }),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(app.get(&format!("/api/clients/{a}")).await.data()["name"], "renamed");
    assert_eq!(app.count("SELECT count(*) FROM events WHERE type = 'ClientUpdated'"), 1);
    let r = app
        .admin(
            "PATCH",
            &format!("/api/db/tables/clients/{a}"),
            json!({ "files_count": 99 }),
        )
        .await;
    assert_eq!((r.status, r.code()), (409, "NO_EVENT_FITS".to_owned()));
    for (method, path) in [
        ("PATCH", "/api/db/tables/events/1"),
        ("DELETE", "/api/db/tables/events/1"),
    ] {
        let r = app.admin(method, path, json!({ "data": "{}" })).await;
        assert_eq!((r.status, r.code()), (409, "EVENTS_IMMUTABLE".to_owned()), "{method}");
    }
    for (method, path) in [
        ("PATCH", "/api/db/tables/logs/5"),
        ("DELETE", "/api/db/tables/stats/x"),
        ("DELETE", "/api/db/tables/transfers/x"),
    ] {
        let r = app.admin(method, path, json!({ "level": "error" })).await;
        assert_eq!(
            (r.status, r.code()),
            (409, "NO_EVENT_FITS".to_owned()),
            "{method} {path}"
        );
    }
    let r = app
        .admin("DELETE", &format!("/api/db/tables/files/{f}"), json!(null))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(app.count("SELECT count(*) FROM events WHERE type = 'FileDeleted'"), 1);
    let r = app.admin("DELETE", "/api/db/tables/files/not-an-id", json!(null)).await;
    assert_eq!((r.status, r.code()), (404, "ROW_NOT_FOUND".to_owned()));
    let before = app.count("SELECT count(*) FROM events");
    let v = app.get("/api/audit/verify").await.data();
    assert_eq!((v["ok"].clone(), v["checked"].clone()), (json!(true), json!(before)));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sql_console_reads_and_refuses_to_write_or_escape() {
    let app = spawn_app().await;
    app.register("alpha").await;
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
    for sql in [
        "DELETE FROM events",
        "UPDATE clients SET name = 'x'",
        "DROP TABLE clients",
        "ATTACH DATABASE '/tmp/x.db' AS x",
        "SELECT * FROM pragma_database_list",
        "PRAGMA journal_mode = DELETE",
        "SELECT load_extension('/tmp/evil')",
    ] {
        let r = app.admin("POST", "/api/db/query", json!({ "sql": sql })).await;
        assert_eq!((r.status, r.code()), (400, "QUERY_REFUSED".to_owned()), "{sql}");
    }
    let r = app.admin("POST", "/api/db/query", json!({ "sql": " " })).await;
    assert_eq!((r.status, r.code()), (400, "VALIDATION_ERROR".to_owned()));
    let r = app.admin("POST", "/api/db/query", json!({ "query": "SELECT 1" })).await;
    assert_eq!((r.status, r.code()), (400, "INVALID_JSON".to_owned()));
    assert_eq!(app.count("SELECT count(*) FROM clients"), 1, "nothing was changed");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_log_is_reported_by_audit_verify_and_db_health() {
    let app = spawn_app().await;
    app.register("alpha").await;
    app.register("bravo").await;
    app.register("charlie").await;
    // Someone edits the log behind cairn's back.
    let conn = rusqlite::Connection::open(app.dir.path().join("cairn.db")).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
    conn.execute_batch("UPDATE events SET data = replace(data, 'bravo', 'BRAVO') WHERE position = 2")
        .unwrap();
    drop(conn);
    let v = app.get("/api/audit/verify").await;
    assert_eq!(
        (v.status, v.json()["message"].clone()),
        (200, json!("the chain is broken"))
    );
    let d = v.data();
    assert_eq!(
        (
            d["ok"].clone(),
            d["first_bad"]["position"].clone(),
            d["checked"].clone()
        ),
        (json!(false), json!(2), json!(1))
    );
    let health = app.get("/api/db/health").await.data();
    assert_eq!(health["ok"], false);
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
async fn concurrent_conflicting_changes_let_exactly_one_through() {
    let app = std::sync::Arc::new(spawn_app().await);
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
    assert_eq!(app.count("SELECT count(*) FROM events WHERE type = 'ClientUpdated'"), 1);
    match std::sync::Arc::try_unwrap(app) {
        Ok(app) => app.stop().await,
        Err(_) => panic!("a task still holds the app"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_upload_streams_through_and_downloads_identically() {
    let app = spawn_app().await;
    let (a, token) = app.register("alpha").await;
    let content: Vec<u8> = (0..(24u32 << 20))
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let r = app.upload(&a, &token, "big.bin", &content).await;
    assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
    let id = r.data()["id"].as_str().unwrap().to_owned();
    let back = app.get(&format!("/api/files/{id}/content")).await;
    assert_eq!(back.body.len(), content.len());
    assert!(back.body == content[..], "the content comes back byte for byte");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_is_served_without_a_token_and_weighs_under_300_kb() {
    let app = spawn_app().await;
    let mut total = 0;
    let files = cairn::http::web::files();
    for path in ["/index.html", "/styles.css", "/js/app.js", "/vendor/uplot/LICENSE"] {
        assert!(files.iter().any(|(p, _)| p == path), "{path} is embedded");
    }
    for (path, mime) in &files {
        let r = app.send("GET", path, None, &[], Bytes::new()).await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.headers["content-type"], mime.as_str(), "{path}");
        if path.ends_with(".js") {
            assert_eq!(mime, "text/javascript; charset=utf-8", "{path}");
        }
        total += r.body.len();
    }
    assert!(total < 300 * 1024, "the whole page weighs {total} bytes");
    let index = app.send("GET", "/", None, &[], Bytes::new()).await;
    assert!(String::from_utf8_lossy(&index.body).contains(r#"<script type="module" src="/js/app.js">"#));
    assert_eq!(
        app.send("GET", "/index.html", None, &[], Bytes::new()).await.status,
        200
    );
    let r = app.send("GET", "/js/nothing.js", None, &[], Bytes::new()).await;
    assert_eq!((r.status, r.code()), (404, "ROUTE_NOT_FOUND".to_owned()));
    let r = app.send("GET", "/api/status", None, &[], Bytes::new()).await;
    assert_eq!(r.status, 401, "the API still wants its token");
    app.stop().await;
}

#[test]
fn every_file_in_web_is_embedded() {
    fn walk(dir: &std::path::Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            if e.path().is_dir() {
                walk(&e.path(), out);
            } else {
                out.push(e.path().to_string_lossy().into_owned());
            }
        }
    }
    let web = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
    let mut found = Vec::new();
    walk(&web, &mut found);
    let mut served: Vec<String> = cairn::http::web::files()
        .iter()
        .map(|(p, _)| web.join(&p[1..]).to_string_lossy().into_owned())
        .collect();
    found.sort();
    served.sort();
    assert_eq!(found, served);
}
