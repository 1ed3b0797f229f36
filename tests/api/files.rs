//! Files: uploads (checked against declared checksums, cut short, large), lists, downloads with ranges,
//! verification, transfers and deletion.

use bytes::Bytes;
use serde_json::{json, Value};

use crate::common_api::{spawn_app, urlencode, Reply, TestApp, ADMIN};
use crate::helpers::{
    assert_error, assert_invalid_query, assert_no_file_stored, events_of_type, send_as, temporary_blobs,
};

/// A server with one client, alpha, that uploaded 100,000 bytes as `data.bin`, declaring its type and the
/// Windows path it came from.
struct Sample {
    app: TestApp,
    client: String,
    token: String,
    file: Value,
    content: Vec<u8>,
}

impl Sample {
    fn id(&self) -> &str {
        self.file["id"].as_str().unwrap()
    }

    /// A download of the file's content as the admin, with these headers.
    async fn download(&self, headers: &[(&str, &str)]) -> Reply {
        let path = format!("/api/files/{}/content", self.id());
        self.app.send("GET", &path, Some(ADMIN), headers, Bytes::new()).await
    }
}

async fn spawn_app_with_a_sample_file() -> Sample {
    let app = spawn_app().await;
    let (client, token) = app.register("alpha").await;
    let content: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let path = format!(
        "/api/clients/{client}/files?name=data.bin&path={}",
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
    Sample {
        file: r.data(),
        app,
        client,
        token,
        content,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_answers_the_files_size_and_declared_type() {
    let s = spawn_app_with_a_sample_file().await;

    assert_eq!(
        (s.file["size"].clone(), s.file["mime_type"].clone()),
        (json!(100_000), json!("application/x-custom"))
    );
    s.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uploads_client_path_is_kept_as_text() {
    let s = spawn_app_with_a_sample_file().await;

    assert_eq!(
        s.file["original_path"], "C:\\Users\\a\\..\\data.bin",
        "the client's path is kept as text"
    );
    s.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_client_filter_lists_every_file() {
    let s = spawn_app_with_a_sample_file().await;

    let list = s.app.get("/api/files?client=").await.data();

    assert_eq!(list["total"], 1);
    s.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_lists_its_own_files_with_its_own_token() {
    let s = spawn_app_with_a_sample_file().await;

    let mine = send_as(&s.app, "GET", &format!("/api/clients/{}/files", s.client), &s.token)
        .await
        .data();

    assert_eq!(mine["items"][0]["id"], s.id());
    s.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_file_is_listed_among_the_unverified() {
    let s = spawn_app_with_a_sample_file().await;

    assert_eq!(s.app.get("/api/files?verified=false").await.data()["total"], 1);
    s.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verified_filter_that_is_not_a_boolean_is_an_invalid_query() {
    let s = spawn_app_with_a_sample_file().await;

    assert_invalid_query(&s.app, "/api/files?verified=maybe").await;
    s.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_answers_the_whole_content() {
    let s = spawn_app_with_a_sample_file().await;

    let full = s.app.get(&format!("/api/files/{}/content", s.id())).await;

    assert_eq!((full.status, full.body.to_vec() == s.content), (200, true));
    s.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_says_it_accepts_ranges() {
    let s = spawn_app_with_a_sample_file().await;

    let full = s.download(&[]).await;

    assert_eq!(full.headers["accept-ranges"], "bytes");
    s.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_is_named_after_the_file() {
    let s = spawn_app_with_a_sample_file().await;

    let full = s.download(&[]).await;

    assert!(full.headers["content-disposition"]
        .to_str()
        .unwrap()
        .contains("data.bin"));
    s.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_range_download_answers_206_with_those_bytes() {
    let s = spawn_app_with_a_sample_file().await;

    let part = s.download(&[("range", "bytes=10-19")]).await;

    assert_eq!((part.status, part.body.to_vec()), (206, s.content[10..20].to_vec()));
    s.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_range_download_says_which_bytes_of_how_many_it_holds() {
    let s = spawn_app_with_a_sample_file().await;

    let part = s.download(&[("range", "bytes=10-19")]).await;

    assert_eq!(part.headers["content-range"], "bytes 10-19/100000");
    s.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suffix_range_download_answers_the_last_bytes() {
    let s = spawn_app_with_a_sample_file().await;

    let tail = s.download(&[("range", "bytes=-5")]).await;

    assert_eq!(tail.body.to_vec(), s.content[99_995..].to_vec());
    s.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_range_past_the_end_is_not_satisfiable() {
    let s = spawn_app_with_a_sample_file().await;

    let bad = s.download(&[("range", "bytes=200000-")]).await;

    assert_error(&bad, 416, "RANGE_NOT_SATISFIABLE");
    s.app.stop().await;
}

/// The sample downloaded whole, by a range, by a suffix range, and refused a range past its end.
async fn download_three_times_and_refuse_once(s: &Sample) {
    s.app.get(&format!("/api/files/{}/content", s.id())).await;
    s.download(&[("range", "bytes=10-19")]).await;
    s.download(&[("range", "bytes=-5")]).await;
    s.download(&[("range", "bytes=200000-")]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_download_but_a_refused_one_counts_on_the_file() {
    let s = spawn_app_with_a_sample_file().await;

    download_three_times_and_refuse_once(&s).await;

    assert_eq!(
        s.app.get(&format!("/api/files/{}", s.id())).await.data()["downloads"],
        3
    );
    s.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_download_but_a_refused_one_is_recorded_in_the_log() {
    let s = spawn_app_with_a_sample_file().await;

    download_three_times_and_refuse_once(&s).await;

    assert_eq!(events_of_type(&s.app, "FileDownloaded"), 3);
    s.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verifying_an_intact_file_answers_ok() {
    let s = spawn_app_with_a_sample_file().await;

    let v = s
        .app
        .admin("POST", &format!("/api/files/{}/verify", s.id()), json!(null))
        .await;

    assert_eq!((v.status, v.data()["ok"].clone()), (200, json!(true)));
    s.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verification_answers_verified_checksum_and_size_as_the_first_servers_clients_read_them() {
    let s = spawn_app_with_a_sample_file().await;
    let file = s.app.get(&format!("/api/files/{}", s.id())).await.data();

    let v = s
        .app
        .admin("POST", &format!("/api/files/{}/verify", s.id()), json!(null))
        .await
        .data();

    assert_eq!(v["verified"], json!(true));
    assert_eq!(v["checksum"], file["checksum"]);
    assert_eq!(v["size"], file["size"]);
    assert_eq!(v["actual_sha256"], file["checksum"], "the event's own fields stay");
    s.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verified_file_is_marked_verified() {
    let s = spawn_app_with_a_sample_file().await;
    let v = s
        .app
        .admin("POST", &format!("/api/files/{}/verify", s.id()), json!(null))
        .await;
    assert_eq!(v.status, 200);

    let file = s.app.get(&format!("/api/files/{}", s.id())).await.data();

    assert_eq!(file["verified"], true);
    s.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_upload_is_a_completed_transfer() {
    let s = spawn_app_with_a_sample_file().await;

    let transfers = s.app.get("/api/transfers?status=Completed").await.data();

    assert_eq!(transfers["total"], 1);
    s.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_status_that_does_not_exist_is_an_invalid_query() {
    let s = spawn_app_with_a_sample_file().await;

    assert_invalid_query(&s.app, "/api/transfers?status=Lost").await;
    s.app.stop().await;
}

/// The sample, deleted.
async fn spawn_app_with_a_deleted_file() -> Sample {
    let s = spawn_app_with_a_sample_file().await;
    let d = s
        .app
        .admin("DELETE", &format!("/api/files/{}", s.id()), json!(null))
        .await;
    assert_eq!(d.status, 200);
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_last_file_of_a_content_keeps_it_retained_and_counted_apart() {
    let s = spawn_app_with_a_deleted_file().await;

    let sha = s.file["checksum"].as_str().unwrap();
    assert!(
        s.app.dir.path().join("blobs").join(&sha[..2]).join(sha).exists(),
        "kept for restores until its retention ends"
    );
    let status = s.app.get("/api/status").await.data();
    assert_eq!(status["retained_blobs"], 1);
    assert_eq!(status["retained_bytes"], s.file["size"]);
    assert_eq!(status["stored_bytes"], 0);
    s.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_retention_the_last_file_takes_its_content_with_it_and_the_log_says_so() {
    let mut config = crate::common_api::test_config();
    config.retain_deleted = std::time::Duration::ZERO;
    let app = crate::common_api::spawn_app_config(config).await;
    let (a, token) = app.register("alpha").await;
    let id = crate::helpers::upload_id(&app, &a, &token, "x.txt", b"short-lived").await;
    let sha = app.get(&format!("/api/files/{id}")).await.data()["checksum"]
        .as_str()
        .unwrap()
        .to_owned();

    app.admin("DELETE", &format!("/api/files/{id}"), json!(null)).await;

    assert!(!app.dir.path().join("blobs").join(&sha[..2]).join(&sha).exists());
    let purged: Value = serde_json::from_str(&crate::helpers::data_of_the_event(&app, "BlobsPurged")).unwrap();
    assert_eq!(purged["reason"], "not retained");
    assert_eq!(purged["blobs"][0]["sha256"], json!(sha));
    assert_eq!(app.get("/api/status").await.data()["retained_bytes"], 0);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retained_content_is_purged_once_its_retention_ends_and_recorded() {
    let mut config = crate::common_api::test_config();
    config.retain_deleted = std::time::Duration::from_millis(500);
    config.retain_check = std::time::Duration::from_millis(100);
    let app = crate::common_api::spawn_app_config(config).await;
    let (a, token) = app.register("alpha").await;
    let id = crate::helpers::upload_id(&app, &a, &token, "x.txt", b"kept a while").await;
    let sha = app.get(&format!("/api/files/{id}")).await.data()["checksum"]
        .as_str()
        .unwrap()
        .to_owned();
    app.admin("DELETE", &format!("/api/files/{id}"), json!(null)).await;
    let blob = app.dir.path().join("blobs").join(&sha[..2]).join(&sha);
    assert!(blob.exists(), "kept at first");

    for _ in 0..100 {
        if !blob.exists() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    assert!(!blob.exists(), "purged after its retention");
    let purged: Value = serde_json::from_str(&crate::helpers::data_of_the_event(&app, "BlobsPurged")).unwrap();
    assert_eq!(purged["reason"], "retention");
    assert_eq!(app.get("/api/status").await.data()["retained_blobs"], 0);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_file_is_not_found() {
    let s = spawn_app_with_a_deleted_file().await;

    let r = s.app.get(&format!("/api/files/{}", s.id())).await;

    assert_error(&r, 404, "FILE_NOT_FOUND");
    s.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_files_content_is_not_found() {
    let s = spawn_app_with_a_deleted_file().await;

    let r = s.app.get(&format!("/api/files/{}/content", s.id())).await;

    assert_error(&r, 404, "FILE_NOT_FOUND");
    s.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verifying_a_deleted_file_is_not_found() {
    let s = spawn_app_with_a_deleted_file().await;

    let r = s
        .app
        .admin("POST", &format!("/api/files/{}/verify", s.id()), json!(null))
        .await;

    assert_eq!(r.status, 404);
    s.app.stop().await;
}

/// Uploads `hello` as `x` with these checksum headers.
async fn upload_hello(app: &TestApp, client: &str, token: &str, headers: &[(&str, &str)]) -> Reply {
    let path = format!("/api/clients/{client}/files?name={}", urlencode("x"));
    app.send("POST", &path, Some(token), headers, Bytes::from_static(b"hello"))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_whose_sha256_does_not_match_is_rejected_and_stores_nothing() {
    let app = spawn_app().await;
    let (a, token) = app.register("alpha").await;

    let r = upload_hello(&app, &a, &token, &[("x-content-sha256", &"0".repeat(64))]).await;

    assert_error(&r, 400, "CHECKSUM_MISMATCH");
    assert_no_file_stored(&app, 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_whose_crc32_does_not_match_is_rejected_and_stores_nothing() {
    let app = spawn_app().await;
    let (a, token) = app.register("alpha").await;

    let r = upload_hello(&app, &a, &token, &[("x-content-crc32", "deadbeef")]).await;

    assert_error(&r, 400, "CHECKSUM_MISMATCH");
    assert_no_file_stored(&app, 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_whose_declared_checksums_match_is_accepted() {
    let app = spawn_app().await;
    let (a, token) = app.register("alpha").await;
    let right = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    let r = upload_hello(
        &app,
        &a,
        &token,
        &[("x-content-sha256", right), ("x-content-crc32", "3610a686")],
    )
    .await;

    assert_eq!(r.status, 201, "matching declared checksums are accepted");
    assert_eq!(
        app.count("SELECT count(*) FROM files"),
        1,
        "the upload that checked out"
    );
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
    assert_eq!(temporary_blobs(&app), 0);
    app.stop().await;
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
async fn a_download_of_html_is_an_attachment_a_browser_may_not_sniff() {
    let app = spawn_app().await;
    let (a, token) = app.register("alpha").await;
    let path = format!("/api/clients/{a}/files?name=page.html");
    let up = app
        .send(
            "POST",
            &path,
            Some(&token),
            &[("content-type", "text/html")],
            Bytes::from_static(b"<script>x</script>"),
        )
        .await;
    let id = up.data()["id"].as_str().unwrap().to_owned();

    let r = app.get(&format!("/api/files/{id}/content")).await;

    assert_eq!(r.headers["x-content-type-options"], "nosniff");
    assert!(r.headers["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment;"));
    app.stop().await;
}
