//! Point-in-time archives: `GET /api/clients/{id}/archive` as a tar and as a zip, as of now and of an earlier
//! position, byte for byte, with a manifest; content gone from the blob store reported missing; a client token
//! limited to its own client; bad input refused.

use std::collections::BTreeMap;
use std::io::Read;

use serde_json::{json, Value};

use crate::common_api::{spawn_app, TestApp, ADMIN};
use crate::helpers::{assert_error, events_of_type, send_as, upload_id};

/// The archive's files by path (the manifest apart), and its manifest.
fn untar(body: &[u8]) -> (BTreeMap<String, Vec<u8>>, Value) {
    let mut files = BTreeMap::new();
    let mut manifest = Value::Null;
    for entry in tar::Archive::new(body).entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        if path == "MANIFEST.json" {
            manifest = serde_json::from_slice(&data).unwrap();
        } else {
            files.insert(path, data);
        }
    }
    (files, manifest)
}

async fn archive(app: &TestApp, client: &str, query: &str, token: &str) -> crate::common_api::Reply {
    send_as(app, "GET", &format!("/api/clients/{client}/archive{query}"), token).await
}

async fn upload_at(app: &TestApp, client: &str, token: &str, name: &str, path: &str, content: &[u8]) -> String {
    let r = app
        .send(
            "POST",
            &format!(
                "/api/clients/{client}/files?name={name}&path={}",
                crate::common_api::urlencode(path)
            ),
            Some(token),
            &[],
            bytes::Bytes::copy_from_slice(content),
        )
        .await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    r.data()["id"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_archive_now_holds_each_file_at_its_recorded_path_byte_for_byte_and_a_manifest() {
    let app = spawn_app().await;
    let (a, token) = app.register("alpha").await;
    upload_at(
        &app,
        &a,
        &token,
        "report.pdf",
        "C:\\docs\\report.pdf",
        b"%PDF quarterly",
    )
    .await;
    upload_at(&app, &a, &token, "notes.txt", "/home/ada/notes.txt", b"remember").await;
    upload_id(&app, &a, &token, "bare.bin", &[0u8, 1, 2, 255]).await;

    let r = archive(&app, &a, "", ADMIN).await;

    assert_eq!(r.status, 200);
    assert_eq!(r.headers.get("content-type").unwrap(), "application/x-tar");
    let (files, manifest) = untar(&r.body);
    let expected: BTreeMap<String, Vec<u8>> = [
        ("docs/report.pdf", &b"%PDF quarterly"[..]),
        ("home/ada/notes.txt", b"remember"),
        ("bare.bin", &[0, 1, 2, 255]),
    ]
    .into_iter()
    .map(|(p, c)| (p.to_owned(), c.to_vec()))
    .collect();
    assert_eq!(files, expected);
    assert_eq!(manifest["client_id"], json!(a));
    assert_eq!(manifest["files"].as_array().unwrap().len(), 3);
    assert!(
        manifest["files"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["status"] == "ok"),
        "{manifest}"
    );
    assert_eq!(manifest["files"][0]["original_path"], "C:\\docs\\report.pdf");
    assert_eq!(events_of_type(&app, "ArchiveDownloaded"), 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_archive_as_of_an_earlier_position_holds_the_files_of_then() {
    let app = spawn_app().await;
    let (a, token) = app.register("alpha").await;
    let first = upload_id(&app, &a, &token, "one.txt", b"first").await;
    upload_id(&app, &a, &token, "two.txt", b"second").await;
    let then = app.get("/api/status").await.data()["head_position"].as_i64().unwrap();
    app.admin("DELETE", &format!("/api/files/{first}"), json!(null)).await;
    upload_id(&app, &a, &token, "three.txt", b"third").await;

    let (now, _) = untar(&archive(&app, &a, "", ADMIN).await.body);
    let r = archive(&app, &a, &format!("?at={then}"), ADMIN).await;
    let (before, manifest) = untar(&r.body);

    assert_eq!(now.keys().collect::<Vec<_>>(), ["three.txt", "two.txt"]);
    // one.txt was there then, and its content is kept for restores since its deletion.
    assert_eq!(before.keys().collect::<Vec<_>>(), ["one.txt", "two.txt"]);
    assert_eq!(before["one.txt"], b"first");
    assert!(
        manifest["files"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["status"] == "ok"),
        "{manifest}"
    );
    assert_eq!(manifest["position"], then);
    assert_eq!(r.headers.get("x-cairn-position").unwrap(), then.to_string().as_str());
    assert_eq!(before["two.txt"], b"second");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_files_at_one_path_are_both_in_the_archive_told_apart_by_their_id_the_newest_at_the_path() {
    let app = spawn_app().await;
    let (a, token) = app.register("alpha").await;
    let older = upload_id(&app, &a, &token, "same.txt", b"old").await;
    upload_id(&app, &a, &token, "same.txt", b"new").await;

    let (files, _) = untar(&archive(&app, &a, "", ADMIN).await.body);

    assert_eq!(files["same.txt"], b"new");
    assert_eq!(files[&format!("same.txt~{}", &older[older.len() - 8..])], b"old");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_changed_on_disk_is_marked_corrupt_and_content_gone_missing() {
    let app = spawn_app().await;
    let (a, token) = app.register("alpha").await;
    let rotten = upload_id(&app, &a, &token, "rotten.txt", b"good bytes").await;
    let gone = upload_id(&app, &a, &token, "gone.txt", b"soon gone").await;
    let blob = |id: &str| {
        let conn = cairn_events::schema::open_read_only(&app.dir.path().join("cairn.db")).unwrap();
        let sha: String = conn
            .query_row("SELECT checksum FROM files WHERE id = ?1", [id], |r| r.get(0))
            .unwrap();
        app.dir.path().join("blobs").join(&sha[..2]).join(sha)
    };
    std::fs::write(blob(&rotten), b"bad bytes!").unwrap();
    std::fs::remove_file(blob(&gone)).unwrap();

    let (files, manifest) = untar(&archive(&app, &a, "", ADMIN).await.body);

    let status = |name: &str| {
        manifest["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["filename"] == name)
            .unwrap()["status"]
            .clone()
    };
    assert_eq!(status("rotten.txt"), "corrupt");
    assert_eq!(status("gone.txt"), "missing");
    assert!(!files.contains_key("gone.txt"), "a missing file is not stood in for");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zip_archive_checks_out_with_pythons_zipfile() {
    let app = spawn_app().await;
    let (a, token) = app.register("alpha").await;
    upload_at(
        &app,
        &a,
        &token,
        "résumé.txt",
        "/home/ada/résumé.txt",
        "ça va".as_bytes(),
    )
    .await;
    upload_id(&app, &a, &token, "big.bin", &vec![7u8; 300_000]).await;

    let r = archive(&app, &a, "?format=zip", ADMIN).await;

    assert_eq!(r.status, 200);
    assert_eq!(r.headers.get("content-type").unwrap(), "application/zip");
    let path = app.dir.path().join("out.zip");
    std::fs::write(&path, &r.body).unwrap();
    let check = std::process::Command::new("python3")
        .arg("-c")
        .arg("import sys, zipfile, json; z = zipfile.ZipFile(sys.argv[1]); bad = z.testzip(); assert bad is None, bad; print(json.dumps({n: z.read(n).decode('utf-8') if n.endswith('.txt') else len(z.read(n)) for n in z.namelist()}))")
        .arg(&path)
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
    let listed: Value = serde_json::from_slice(&check.stdout).unwrap();
    assert_eq!(listed["big.bin"], 300_000);
    assert!(listed["MANIFEST.json"].is_number());
    assert_eq!(listed["home/ada/résumé.txt"], "ça va");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_token_archives_its_own_client_only() {
    let app = spawn_app().await;
    let (a, a_token) = app.register("alpha").await;
    let (b, _) = app.register("bravo").await;
    upload_id(&app, &a, &a_token, "mine.txt", b"mine").await;

    assert_eq!(archive(&app, &a, "", &a_token).await.status, 200);
    assert_error(&archive(&app, &b, "", &a_token).await, 403, "FORBIDDEN");
    assert_eq!(archive(&app, &a, "", "wrong-token").await.status, 401);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_archive_requests_are_refused_with_their_codes_and_record_nothing() {
    let app = spawn_app().await;
    let (a, _) = app.register("alpha").await;
    let unknown = uuid::Uuid::now_v7();

    assert_error(&archive(&app, &a, "?format=rar", ADMIN).await, 400, "INVALID_QUERY");
    assert_error(&archive(&app, &a, "?at=yesterday", ADMIN).await, 400, "INVALID_QUERY");
    assert_error(&archive(&app, &a, "?at=-3", ADMIN).await, 400, "INVALID_QUERY");
    assert_error(
        &archive(&app, &unknown.to_string(), "", ADMIN).await,
        404,
        "CLIENT_NOT_FOUND",
    );
    assert_error(&archive(&app, "not-a-uuid", "", ADMIN).await, 404, "CLIENT_NOT_FOUND");
    // Before the client was registered: it had nothing, and was not there.
    assert_error(&archive(&app, &a, "?at=0", ADMIN).await, 404, "CLIENT_NOT_FOUND");
    assert_eq!(events_of_type(&app, "ArchiveDownloaded"), 0);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_purged_since_is_listed_missing_in_an_archive_of_before() {
    let mut config = crate::common_api::test_config();
    config.retain_deleted = std::time::Duration::ZERO;
    let app = crate::common_api::spawn_app_config(config).await;
    let (a, token) = app.register("alpha").await;
    let gone = upload_id(&app, &a, &token, "gone.txt", b"purged at deletion").await;
    upload_id(&app, &a, &token, "kept.txt", b"still here").await;
    let then = app.get("/api/status").await.data()["head_position"].as_i64().unwrap();
    app.admin("DELETE", &format!("/api/files/{gone}"), json!(null)).await;

    let (files, manifest) = untar(&archive(&app, &a, &format!("?at={then}"), ADMIN).await.body);

    assert_eq!(files.keys().collect::<Vec<_>>(), ["kept.txt"]);
    let listed = manifest["files"].as_array().unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(
        listed.iter().find(|f| f["filename"] == "gone.txt").unwrap()["status"],
        "missing"
    );
    app.stop().await;
}

/// A small deterministic generator, so the workload is the same on every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % below
    }
}

/// A file as the workload's own model holds it.
#[derive(Clone)]
struct Held {
    id: String,
    name: String,
    content: Vec<u8>,
}

/// What an archive of `files` (oldest first) must hold: each at its name, an earlier one at the same name suffixed
/// with its id's last eight characters.
fn expected(files: &[Held]) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for f in files.iter().rev() {
        let path = if out.contains_key(&f.name) {
            format!("{}~{}", f.name, &f.id[f.id.len() - 8..])
        } else {
            f.name.clone()
        };
        out.insert(path, f.content.clone());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archives_at_many_positions_of_a_workload_hold_exactly_the_files_the_log_says_existed_byte_for_byte() {
    let app = spawn_app().await;
    let mut rng = Lcg(20_261_201);
    // Each client: id, token, name, and the files it holds now, oldest first.
    let mut clients: Vec<(String, String, Vec<Held>)> = Vec::new();
    let mut snapshots: Vec<(i64, String, BTreeMap<String, Vec<u8>>)> = Vec::new();
    let names = ["a.txt", "b.txt", "c.bin", "report.pdf"];
    let contents: Vec<Vec<u8>> = (0..5).map(|i| format!("shared content {i}").into_bytes()).collect();
    let mut registered = 0;
    for step in 0..120 {
        if clients.is_empty() || (rng.next(10) == 0 && clients.len() < 4) {
            let (id, token) = app.register(&format!("host-{registered}")).await;
            registered += 1;
            clients.push((id, token, Vec::new()));
            continue;
        }
        let c = rng.next(clients.len() as u64) as usize;
        match rng.next(10) {
            // Upload: a name from a few (re-uploads of the same name happen), content shared or its own.
            0..=5 => {
                let name = names[rng.next(names.len() as u64) as usize];
                let content = if rng.next(2) == 0 {
                    contents[rng.next(contents.len() as u64) as usize].clone()
                } else {
                    format!("own content of step {step}").into_bytes()
                };
                let (id, token, files) = &mut clients[c];
                let file = upload_id(&app, id, token, name, &content).await;
                files.push(Held {
                    id: file,
                    name: name.to_owned(),
                    content,
                });
            }
            // Delete one of its files.
            6..=7 if !clients[c].2.is_empty() => {
                let i = rng.next(clients[c].2.len() as u64) as usize;
                let gone = clients[c].2.remove(i);
                let r = app
                    .admin("DELETE", &format!("/api/files/{}", gone.id), json!(null))
                    .await;
                assert_eq!(r.status, 200);
            }
            // Delete the whole client, now and then.
            8 if rng.next(4) == 0 => {
                let (id, _, _) = clients.remove(c);
                assert_eq!(
                    app.admin("DELETE", &format!("/api/clients/{id}"), json!(null))
                        .await
                        .status,
                    200
                );
            }
            _ => {}
        }
        if step % 10 == 9 {
            let head = app.get("/api/status").await.data()["head_position"].as_i64().unwrap();
            for (id, _, files) in &clients {
                snapshots.push((head, id.clone(), expected(files)));
            }
        }
    }
    assert!(snapshots.len() >= 12, "the workload made {} snapshots", snapshots.len());

    for (position, client, want) in &snapshots {
        let r = archive(&app, client, &format!("?at={position}"), ADMIN).await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let (got, manifest) = untar(&r.body);
        assert_eq!(&got, want, "client {client} at position {position}");
        assert_eq!(manifest["position"], *position);
        assert!(manifest["files"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["status"] == "ok"));
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_preview_lists_the_files_of_then_against_now() {
    let app = spawn_app().await;
    let (a, token) = app.register("alpha").await;
    let (b, _) = app.register("bravo").await;
    let kept = upload_id(&app, &a, &token, "kept.txt", b"same").await;
    let changed = upload_id(&app, &a, &token, "changed.txt", b"before").await;
    let gone = upload_id(&app, &a, &token, "gone.txt", b"deleted later").await;
    let then = app.get("/api/status").await.data()["head_position"].as_i64().unwrap();
    app.admin("DELETE", &format!("/api/files/{changed}"), json!(null)).await;
    upload_id(&app, &a, &token, "changed.txt", b"after").await;
    app.admin("DELETE", &format!("/api/files/{gone}"), json!(null)).await;
    upload_id(&app, &a, &token, "new.txt", b"added since").await;
    let _ = kept;

    let p = send_as(&app, "GET", &format!("/api/clients/{a}/restore?at={then}"), &token)
        .await
        .data();

    let since: BTreeMap<String, String> = p["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_owned(),
                f["since"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let want: BTreeMap<String, String> = [
        ("kept.txt", "unchanged"),
        ("changed.txt", "changed"),
        ("gone.txt", "deleted"),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_owned(), b.to_owned()))
    .collect();
    assert_eq!(since, want);
    assert_eq!(p["added_since"][0]["path"], "new.txt");
    assert_eq!(p["added_since"].as_array().unwrap().len(), 1);
    assert!(
        p["files"].as_array().unwrap().iter().all(|f| f["available"] == true),
        "{p}"
    );
    assert_eq!(p["position"], then);
    assert_eq!(p["bytes"], 4 + 6 + 13);
    assert_error(
        &send_as(&app, "GET", &format!("/api/clients/{b}/restore"), &token).await,
        403,
        "FORBIDDEN",
    );
    assert_eq!(
        events_of_type(&app, "ArchiveDownloaded"),
        0,
        "a preview is not a download"
    );
    app.stop().await;
}
