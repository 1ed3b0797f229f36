//! The audit proofs: signed checkpoints, the key, inclusion and consistency proofs and the tiles, each checked by
//! implementations written apart from the server's (`ct-merkle` in Rust; Python's `cryptography` and hashlib in
//! `tests/scripts/verify_proofs.py`).

use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use bytes::Bytes;
use cairn::checkpoint::{Signed, Verifier};
use ct_merkle::{ConsistencyProof, InclusionProof, RootHash};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::common_api::*;
use crate::helpers::*;

/// The checkpoint the server serves, opened with the key it serves.
async fn checkpoint(app: &TestApp) -> (Verifier, Signed) {
    let key = app.get("/api/audit/key").await;
    assert_eq!(key.status, 200);
    let key = String::from_utf8(key.body.to_vec()).unwrap();
    let verifier = Verifier::parse(&key).unwrap();
    let r = app.get("/api/audit/checkpoint").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["content-type"], "text/plain; charset=utf-8");
    assert_eq!(r.headers["cache-control"], "no-cache");
    let signed = Signed::open(&verifier, std::str::from_utf8(&r.body).unwrap()).unwrap();
    (verifier, signed)
}

fn hashes(v: &Value) -> Vec<[u8; 32]> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|h| BASE64.decode(h.as_str().unwrap()).unwrap().try_into().unwrap())
        .collect()
}

fn digests(hashes: &[[u8; 32]]) -> Vec<sha2::digest::Output<Sha256>> {
    hashes.iter().map(|h| (*h).into()).collect()
}

fn event_hash(app: &TestApp, position: i64) -> [u8; 32] {
    let conn = rusqlite::Connection::open(app.dir.path().join("cairn.db")).unwrap();
    let hex: String = conn
        .query_row("SELECT hash FROM events WHERE position = ?1", [position], |r| r.get(0))
        .unwrap();
    hex::decode(hex).unwrap().try_into().unwrap()
}

fn leaf_hash(data: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

/// A log of `lines` log lines after three clients.
async fn a_log(app: &TestApp, lines: usize) {
    for name in ["alpha", "bravo", "charlie"] {
        app.register(name).await;
    }
    for i in 0..lines {
        log_line(
            app,
            json!({ "level": "info", "message": format!("line {i}"), "source": "test" }),
        )
        .await;
    }
}

/// The checkpoint once it covers `size` events (the signer runs once a second).
async fn checkpoint_of(app: &TestApp, size: u64) -> (Verifier, Signed) {
    for _ in 0..100 {
        let (verifier, signed) = checkpoint(app).await;
        if signed.checkpoint.size >= size {
            return (verifier, signed);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no checkpoint of {size} events within 10 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_is_proven_in_the_signed_checkpoint_to_two_other_implementations() {
    let app = spawn_app().await;
    a_log(&app, 30).await;
    let head = app.count("SELECT count(*) FROM events") as u64;
    let (verifier, signed) = checkpoint_of(&app, head).await;
    let size = signed.checkpoint.size;
    assert!(verifier.name().starts_with("cairn/"), "{}", verifier.name());
    let root = RootHash::<Sha256>::new(signed.checkpoint.root.into(), size);
    let mut inclusion = Vec::new();
    for position in 1..=size as i64 {
        let r = app
            .get(&format!("/api/audit/proof/inclusion?position={position}&size={size}"))
            .await;
        let proof = r.data();
        assert_eq!(proof["leaf_index"], position - 1);
        assert_eq!(proof["tree_size"], size);
        let leaf = event_hash(&app, position);
        assert_eq!(proof["event_hash"], hex::encode(leaf));
        let path = hashes(&proof["hashes"]);
        root.verify_inclusion(
            &leaf,
            position as u64 - 1,
            &InclusionProof::from_digests(digests(&path).iter()),
        )
        .unwrap_or_else(|e| panic!("position {position}: {e:?}"));
        inclusion.push(json!({ "leaf_hash_of": hex::encode(leaf), "leaf_index": position - 1, "tree_size": size, "hashes": proof["hashes"] }));
    }
    // Every smaller tree is a prefix of the signed one.
    let mut consistency = Vec::new();
    for from in 1..size {
        let proof = app
            .get(&format!("/api/audit/proof/consistency?from={from}&to={size}"))
            .await
            .data();
        let path = hashes(&proof["hashes"]);
        let old_root = ct_root(&app, from);
        root.verify_consistency(
            &RootHash::<Sha256>::new(old_root.into(), from),
            &ConsistencyProof::from_digests(digests(&path).iter()),
        )
        .unwrap_or_else(|e| panic!("{from} → {size}: {e:?}"));
        consistency.push(json!({ "from": from, "old_root": BASE64.encode(old_root), "hashes": proof["hashes"] }));
    }
    let proofs = json!({ "inclusion": inclusion, "consistency": consistency });
    let (ok, out) = python_verifies(&app, &verifier.encode(), &signed.note, &proofs);
    assert!(ok, "{out}");
    assert!(out.starts_with("ok: note signed by cairn/"), "{out}");

    // The same verifier refuses an altered note and a wrong path.
    let altered = signed
        .note
        .replacen(&format!("\n{size}\n"), &format!("\n{}\n", size + 1), 1);
    let (ok, out) = python_verifies(&app, &verifier.encode(), &altered, &json!({}));
    assert!(!ok && out.contains("does not verify"), "{out}");
    let mut wrong = proofs.clone();
    wrong["inclusion"][3]["leaf_index"] = json!(4);
    let (ok, out) = python_verifies(&app, &verifier.encode(), &signed.note, &wrong);
    assert!(!ok && out.contains("leaf 4"), "{out}");
    app.stop().await;
}

/// The root of the first `size` events, computed here from the log's hashes by ct-merkle's own tree.
fn ct_root(app: &TestApp, size: u64) -> [u8; 32] {
    let mut tree = ct_merkle::mem_backed_tree::MemoryBackedTree::<Sha256, [u8; 32]>::new();
    for position in 1..=size as i64 {
        tree.push(event_hash(app, position));
    }
    (*tree.root().as_bytes()).into()
}

/// Runs the Python verifier; whether it said ok, and what it printed.
fn python_verifies(app: &TestApp, key: &str, note: &str, proofs: &Value) -> (bool, String) {
    let note_file = app.dir.path().join("test-checkpoint.txt");
    let proofs_file = app.dir.path().join("test-proofs.json");
    std::fs::write(&note_file, note).unwrap();
    std::fs::write(&proofs_file, proofs.to_string()).unwrap();
    let out = std::process::Command::new("python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/scripts/verify_proofs.py"))
        .arg(key)
        .arg(&note_file)
        .arg(&proofs_file)
        .output()
        .expect("python3 runs (scripts/test.sh installs it with the cryptography package)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checkpoint_follows_the_head_and_each_extends_the_one_before() {
    let app = spawn_app().await;
    a_log(&app, 2).await;
    let (_, first) = checkpoint_of(&app, 5).await;
    log_line(
        &app,
        json!({ "level": "warning", "message": "later", "source": "test" }),
    )
    .await;
    let (_, second) = checkpoint_of(&app, 6).await;
    assert_eq!(second.checkpoint.size, 6);
    assert_eq!(first.checkpoint.origin, second.checkpoint.origin);
    let proof = app
        .get(&format!("/api/audit/proof/consistency?from={}", first.checkpoint.size))
        .await
        .data();
    assert_eq!(proof["to"], 6, "without `to`, the latest checkpoint's size");
    RootHash::<Sha256>::new(second.checkpoint.root.into(), 6)
        .verify_consistency(
            &RootHash::<Sha256>::new(first.checkpoint.root.into(), 5),
            &ConsistencyProof::from_digests(digests(&hashes(&proof["hashes"])).iter()),
        )
        .unwrap();
    // Without `size`, an inclusion proof is for the latest checkpoint, signed at once if the event is newer.
    log_line(
        &app,
        json!({ "level": "warning", "message": "newest", "source": "test" }),
    )
    .await;
    let proof = app.get("/api/audit/proof/inclusion?position=7").await.data();
    assert_eq!(proof["tree_size"], 7);
    let (_, latest) = checkpoint(&app).await;
    assert_eq!(latest.checkpoint.size, 7);
    // The kept checkpoint and the key outlive a restart.
    let key = app.get("/api/audit/key").await.body;
    let dir = app.stop_keeping_data().await;
    let kept = std::fs::read_to_string(dir.path().join("checkpoint")).unwrap();
    assert_eq!(kept, latest.note);
    let app = spawn_app_configured(dir, "127.0.0.1:0", normal(), test_config()).await;
    assert_eq!(app.get("/api/audit/key").await.body, key);
    assert_eq!(checkpoint(&app).await.1, latest);
    app.stop().await;
}

fn normal() -> cairn::Options {
    cairn::Options {
        durability: cairn_events::Durability::Normal,
        ..cairn::Options::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiles_hold_the_trees_hashes_and_entries_for_a_mirror() {
    let app = spawn_app().await;
    a_log(&app, 297).await;
    assert_eq!(app.count("SELECT count(*) FROM events"), 300);
    let full = app.get("/api/audit/tile/0/000").await;
    assert_eq!(full.status, 200);
    assert_eq!(full.headers["content-type"], "application/octet-stream");
    assert_eq!(full.headers["cache-control"], "public, max-age=31536000, immutable");
    assert_eq!(full.body.len(), 256 * 32);
    for i in [0usize, 1, 100, 255] {
        assert_eq!(
            &full.body[i * 32..(i + 1) * 32],
            &leaf_hash(&event_hash(&app, i as i64 + 1))
        );
    }
    // 300 leaves: the second level-0 tile is partial (44 wide), as is the level-1 tile (1 wide).
    assert_error(&app.get("/api/audit/tile/0/001").await, 404, "TILE_NOT_FOUND");
    let partial = app.get("/api/audit/tile/0/001.p/44").await;
    assert_eq!(partial.body.len(), 44 * 32);
    assert_eq!(&partial.body[43 * 32..], &leaf_hash(&event_hash(&app, 300)));
    assert_error(&app.get("/api/audit/tile/0/001.p/45").await, 404, "TILE_NOT_FOUND");
    let level1 = app.get("/api/audit/tile/1/000.p/1").await;
    assert_eq!(level1.body.as_ref(), &ct_root(&app, 256));
    let entries = app.get("/api/audit/tile/entries/000").await;
    assert_eq!(entries.body.len(), 256 * 34);
    assert_eq!(&entries.body[..2], &[0, 32]);
    assert_eq!(&entries.body[2..34], &event_hash(&app, 1));
    assert_eq!(app.get("/api/audit/tile/entries/001.p/44").await.body.len(), 44 * 34);
    for bad in [
        "0/0",
        "0/x000/001",
        "9/000",
        "0/000.p/0",
        "0/000.p/256",
        "entries/abc",
        "0/000.p/007",
    ] {
        assert_error(&app.get(&format!("/api/audit/tile/{bad}")).await, 404, "TILE_NOT_FOUND");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proof_asked_wrongly_gets_a_clear_error() {
    let app = spawn_app().await;
    a_log(&app, 2).await;
    checkpoint_of(&app, 5).await;
    for (path, status, code) in [
        ("/api/audit/proof/inclusion", 400, "INVALID_QUERY"),
        ("/api/audit/proof/inclusion?position=abc", 400, "INVALID_QUERY"),
        ("/api/audit/proof/inclusion?position=0", 400, "INVALID_QUERY"),
        ("/api/audit/proof/inclusion?position=-3", 400, "INVALID_QUERY"),
        ("/api/audit/proof/inclusion?position=99&size=5", 404, "EVENT_NOT_FOUND"),
        ("/api/audit/proof/inclusion?position=4&size=3", 400, "INVALID_TREE_SIZE"),
        ("/api/audit/proof/inclusion?position=1&size=6", 400, "INVALID_TREE_SIZE"),
        ("/api/audit/proof/inclusion?position=1&size=-1", 400, "INVALID_QUERY"),
        ("/api/audit/proof/consistency", 400, "INVALID_QUERY"),
        ("/api/audit/proof/consistency?from=4&to=3", 400, "INVALID_TREE_SIZE"),
        ("/api/audit/proof/consistency?from=1&to=6", 400, "INVALID_TREE_SIZE"),
        ("/api/audit/proof/consistency?from=x", 400, "INVALID_QUERY"),
    ] {
        assert_error(&app.get(path).await, status, code);
    }
    // The trivial proofs are empty, and hold.
    assert_eq!(
        app.get("/api/audit/proof/consistency?from=0&to=5").await.data()["hashes"],
        json!([])
    );
    assert_eq!(
        app.get("/api/audit/proof/consistency?from=5&to=5").await.data()["hashes"],
        json!([])
    );
    assert_eq!(
        app.get("/api/audit/proof/inclusion?position=1&size=1").await.data()["hashes"],
        json!([])
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proofs_need_the_admin_token_unless_the_server_makes_them_public() {
    let app = spawn_app().await;
    let (client, token) = app.register("alpha").await;
    let _ = client;
    for path in [
        "/api/audit/checkpoint",
        "/api/audit/key",
        "/api/audit/proof/inclusion?position=1",
        "/api/audit/proof/consistency?from=1",
        "/api/audit/tile/0/000.p/1",
    ] {
        assert_error(
            &app.send("GET", path, None, &[], Bytes::new()).await,
            401,
            "UNAUTHORIZED",
        );
        assert_eq!(send_as(&app, "GET", path, &token).await.status, 403, "{path}");
    }
    app.stop().await;

    let app = spawn_app_config(cairn::services::ServerConfig {
        public_proofs: true,
        origin: Some("backups.example/cairn".into()),
        ..test_config()
    })
    .await;
    app.register("alpha").await;
    for path in [
        "/api/audit/checkpoint",
        "/api/audit/key",
        "/api/audit/proof/inclusion?position=1",
        "/api/audit/proof/consistency?from=1",
        "/api/audit/tile/0/000.p/1",
    ] {
        assert_eq!(
            app.send("GET", path, None, &[], Bytes::new()).await.status,
            200,
            "{path}"
        );
    }
    let key = app.send("GET", "/api/audit/key", None, &[], Bytes::new()).await;
    assert!(key.body.starts_with(b"backups.example/cairn+"));
    let note = app.send("GET", "/api/audit/checkpoint", None, &[], Bytes::new()).await;
    assert!(note.body.starts_with(b"backups.example/cairn\n1\n"));
    // Only the proofs: the rest of the audit trail still needs the token.
    assert_error(
        &app.send("GET", "/api/events", None, &[], Bytes::new()).await,
        401,
        "UNAUTHORIZED",
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_on_a_log_cut_short_keeps_its_last_checkpoint_and_signs_no_other() {
    let app = spawn_app().await;
    a_log(&app, 5).await;
    let (_, signed) = checkpoint_of(&app, 8).await;
    let dir = app.stop_keeping_data().await;
    // Someone cuts the log short behind cairn's back, and a new history grows from there.
    let conn = rusqlite::Connection::open(dir.path().join("cairn.db")).unwrap();
    conn.execute("DELETE FROM events WHERE position > 5", []).unwrap();
    drop(conn);
    // And rebuilds the read tables and the tree to match, as `cairn replay` does.
    cairn::replay::replay(dir.path(), &cairn::replay::Mode::Swap, |_| {}).unwrap();
    let conn = rusqlite::Connection::open(dir.path().join("cairn.db")).unwrap();
    assert_eq!(cairn_events::merkle::store::size(&conn).unwrap(), 5);
    drop(conn);
    let app = spawn_app_configured(dir, "127.0.0.1:0", normal(), test_config()).await;
    for i in 0..4 {
        log_line(
            &app,
            json!({ "level": "info", "message": format!("rewritten {i}"), "source": "x" }),
        )
        .await;
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(app.count("SELECT count(*) FROM events"), 9);
    // Nine events now, but not those the checkpoint of eight signed: no checkpoint contradicts it.
    assert_eq!(checkpoint(&app).await.1, signed);
    assert_error(
        &app.get("/api/audit/proof/inclusion?position=9").await,
        409,
        "CHECKPOINT_REFUSED",
    );
    app.stop().await;
}
