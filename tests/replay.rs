//! Replay: after a random workload the rebuilt read tables equal the live ones, and the state rebuilt up to a
//! position equals the live state as it was at that position.
#![allow(clippy::unwrap_used)] // a test that cannot proceed should panic where it stopped

mod common;

use cairn::commands::client::{
    ConnectClient, DeleteClient, DisconnectClient, MarkBackupOverdue, RotateToken, UpdateClient,
};
use cairn::commands::file::{DeleteFile, RecordDownload};
use cairn::commands::log::{ClearLogs, RecordLog};
use cairn::replay::{self, Mode, Until};
use cairn_events::catalogue::DisconnectReason;
use common::{admin, differences, spawn, TestData};
use proptest::prelude::*;
use uuid::Uuid;

/// One step of a workload; indices pick among the clients and files that exist when it runs.
#[derive(Debug, Clone)]
enum Op {
    Register(u8),
    Connect(u8),
    Disconnect(u8, bool),
    Rename(u8, u8),
    Rotate(u8),
    Overdue(u8),
    Purge,
    Upload(u8, u8),
    Verify(u8),
    Download(u8),
    DeleteFile(u8),
    DeleteClient(u8),
    Log(u8, u8),
    ClearLogs,
    Snapshot,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => any::<u8>().prop_map(Op::Register),
        2 => any::<u8>().prop_map(Op::Connect),
        1 => (any::<u8>(), any::<bool>()).prop_map(|(c, t)| Op::Disconnect(c, t)),
        1 => (any::<u8>(), any::<u8>()).prop_map(|(c, n)| Op::Rename(c, n)),
        1 => any::<u8>().prop_map(Op::Rotate),
        1 => any::<u8>().prop_map(Op::Overdue),
        1 => Just(Op::Purge),
        4 => (any::<u8>(), any::<u8>()).prop_map(|(c, k)| Op::Upload(c, k)),
        1 => any::<u8>().prop_map(Op::Verify),
        1 => any::<u8>().prop_map(Op::Download),
        1 => any::<u8>().prop_map(Op::DeleteFile),
        1 => any::<u8>().prop_map(Op::DeleteClient),
        3 => (any::<u8>(), any::<u8>()).prop_map(|(c, l)| Op::Log(c, l)),
        1 => Just(Op::ClearLogs),
        1 => Just(Op::Snapshot),
    ]
}

fn pick<T: Copy>(items: &[T], i: u8) -> Option<T> {
    (!items.is_empty()).then(|| items[usize::from(i) % items.len()])
}

/// Runs the workload; domain refusals are part of it. Returns (position, copy of the database then).
fn run(t: &TestData, ops: &[Op], snapshots: &std::path::Path) -> Vec<(i64, std::path::PathBuf)> {
    let mut clients: Vec<Uuid> = Vec::new();
    let mut files: Vec<Uuid> = Vec::new();
    let mut taken = Vec::new();
    let c = &t.cairn;
    for op in ops {
        match *op {
            Op::Register(n) => {
                if let Ok(id) = t.try_register(&format!("client-{}", n % 12)) {
                    clients.push(id);
                }
            }
            Op::Connect(i) => {
                if let Some(id) = pick(&clients, i) {
                    let _ = c.execute_blocking(
                        ConnectClient {
                            id,
                            ip_address: Some(format!("10.0.0.{i}")),
                        },
                        admin(),
                    );
                }
            }
            Op::Disconnect(i, timeout) => {
                if let Some(id) = pick(&clients, i) {
                    let reason = if timeout {
                        DisconnectReason::Timeout
                    } else {
                        DisconnectReason::Admin
                    };
                    let _ = c.execute_blocking(
                        DisconnectClient {
                            id,
                            reason,
                            last_seen: None,
                        },
                        admin(),
                    );
                }
            }
            Op::Rename(i, n) => {
                if let Some(id) = pick(&clients, i) {
                    let _ = c.execute_blocking(
                        UpdateClient {
                            id,
                            name: Some(format!("client-{}", n % 12)),
                            ip_address: None,
                            backup_interval_seconds: (n % 3 == 0).then_some(3600 + u64::from(n)),
                            expected_version: None,
                        },
                        admin(),
                    );
                }
            }
            Op::Rotate(i) => {
                if let Some(id) = pick(&clients, i) {
                    let _ = c.execute_blocking(
                        RotateToken {
                            id,
                            token: format!("t{i}"),
                        },
                        admin(),
                    );
                }
            }
            Op::Overdue(i) => {
                // As the backup monitor would: from the clock the read table shows.
                if let Some(id) = pick(&clients, i) {
                    let row = cairn_projections::clients::get(&c.store().reader().unwrap(), &id.to_string()).unwrap();
                    if let Some(row) = row {
                        let _ = c.execute_blocking(
                            MarkBackupOverdue {
                                id,
                                last_backup_at: row.last_backup_at,
                                interval_seconds: row.backup_interval_seconds as u64,
                                due_at: "2026-12-02T00:00:00.000000Z".into(),
                            },
                            admin(),
                        );
                    }
                }
            }
            Op::Purge => {
                let retained = cairn_projections::retained::all(&c.store().reader().unwrap(), 100).unwrap();
                let _ = c.execute_blocking(
                    cairn::commands::blobs::PurgeBlobs {
                        sha256s: retained.into_iter().map(|(s, _)| s).collect(),
                        reason: "retention".into(),
                    },
                    admin(),
                );
            }
            Op::Upload(i, k) => {
                if let Some(id) = pick(&clients, i) {
                    // Few distinct contents, so deduplication and shared blobs happen.
                    if let Ok(s) = t.upload(id, &format!("f{k}.txt"), format!("content {}", k % 5).as_bytes()) {
                        files.push(s.file_id);
                    }
                }
            }
            Op::Verify(i) => {
                if let Some(f) = pick(&files, i) {
                    let _ = t.verify(f);
                }
            }
            Op::Download(i) => {
                if let Some(f) = pick(&files, i) {
                    let _ = c.execute_blocking(
                        RecordDownload {
                            file_id: f,
                            by: "admin:test".into(),
                            bytes: 9,
                        },
                        admin(),
                    );
                }
            }
            Op::DeleteFile(i) => {
                if let Some(f) = pick(&files, i) {
                    let _ = c.execute_blocking(
                        DeleteFile {
                            file_id: f,
                            expected_version: None,
                            retain: i % 2 == 0,
                            run_id: None,
                            owner: None,
                        },
                        admin(),
                    );
                }
            }
            Op::DeleteClient(i) => {
                if let Some(id) = pick(&clients, i) {
                    let _ = c.execute_blocking(
                        DeleteClient {
                            id,
                            expected_version: None,
                            retain: i % 2 == 1,
                        },
                        admin(),
                    );
                }
            }
            Op::Log(i, l) => {
                let level = ["debug", "info", "warning", "error", "critical"][usize::from(l) % 5];
                let _ = c.execute_blocking(
                    RecordLog {
                        level: level.into(),
                        message: format!("m{l}"),
                        source: "s".into(),
                        client_id: pick(&clients, i),
                        file_id: None,
                    },
                    admin(),
                );
            }
            Op::ClearLogs => {
                let _ = c.execute_blocking(ClearLogs, admin());
            }
            Op::Snapshot => {
                let head = c.store().head();
                let copy = snapshots.join(format!("at-{head}-{}.db", taken.len()));
                cairn_events::schema::backup_to(&t.read(), &copy).unwrap();
                taken.push((head, copy));
            }
        }
    }
    taken
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, max_shrink_iters: 64, ..ProptestConfig::default() })]

    #[test]
    fn replay_rebuilds_the_live_tables_and_until_rebuilds_each_past_state(ops in proptest::collection::vec(op(), 1..60)) {
        let t = spawn();
        let snapshots = tempfile::tempdir().unwrap();
        let taken = run(&t, &ops, snapshots.path());

        let conn = t.read();
        prop_assert_eq!(
            cairn_projections::stats::storage_totals(&conn).unwrap(),
            cairn_projections::files::totals(&conn).unwrap(),
            "the running storage totals equal the aggregate over files"
        );
        drop(conn);
        let report = replay::replay(t.root(), &Mode::Verify, |_| {}).unwrap();
        prop_assert_eq!(report.head, t.cairn.store().head());
        prop_assert!(report.differences.is_empty(), "live and rebuilt differ: {:?}", report.differences);

        for (i, (head, copy)) in taken.iter().enumerate() {
            let into = snapshots.path().join(format!("until-{i}.db"));
            let until = replay::replay(t.root(), &Mode::Until { until: Until::Position(*head), into: into.clone() }, |_| {}).unwrap();
            prop_assert_eq!(until.head, *head);
            let diffs = differences(copy, &into);
            prop_assert!(diffs.is_empty(), "state at {} differs: {:?}", head, diffs);
        }
    }
}

#[test]
fn replay_swaps_rebuilt_tables_in_and_repairs_a_damaged_read_table() {
    let t = spawn();
    let a = t.register("alpha");
    t.upload(a, "one.txt", b"1").unwrap();
    let root = t.root().to_owned();
    let common::TestData { dir, cairn } = t;
    cairn.close();
    let db = root.join("cairn.db");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("DELETE FROM files; UPDATE clients SET name = 'vandal'")
        .unwrap();

    let verify = replay::replay(&root, &Mode::Verify, |_| {}).unwrap();
    assert!(
        verify
            .differences
            .iter()
            .any(|d| d.table == "files" && d.detail.contains("only in rebuilt")),
        "{:?}",
        verify.differences
    );
    assert!(
        verify
            .differences
            .iter()
            .any(|d| d.table == "clients" && d.detail.contains("vandal")),
        "{:?}",
        verify.differences
    );

    let swap = replay::replay(&root, &Mode::Swap, |_| {}).unwrap();
    assert_eq!(swap.events, 4);
    assert!(replay::replay(&root, &Mode::Verify, |_| {})
        .unwrap()
        .differences
        .is_empty());
    assert!(!root.join("cairn.db.replay").exists(), "the scratch file is removed");
    drop(dir);
}

#[test]
fn replay_refuses_to_swap_under_a_running_writer_and_until_refuses_an_existing_file() {
    let t = spawn();
    t.register("alpha");
    let err = replay::replay(t.root(), &Mode::Swap, |_| {}).unwrap_err();
    assert!(err.to_string().contains("in use by another cairn process"), "{err}");
    // Verify reads one snapshot, so it runs beside the writer.
    assert!(replay::replay(t.root(), &Mode::Verify, |_| {})
        .unwrap()
        .differences
        .is_empty());
    let existing = t.root().join("exists.db");
    std::fs::write(&existing, b"keep me").unwrap();
    let err = replay::replay(
        t.root(),
        &Mode::Until {
            until: Until::Position(1),
            into: existing.clone(),
        },
        |_| {},
    )
    .unwrap_err();
    assert!(err.to_string().contains("already exists"));
    assert_eq!(std::fs::read(&existing).unwrap(), b"keep me");
}

#[test]
fn until_a_time_takes_the_last_event_recorded_by_then() {
    let t = spawn();
    t.register("alpha");
    let between = cairn_events::writer::now_rfc3339();
    std::thread::sleep(std::time::Duration::from_millis(5));
    t.register("bravo");
    let into = t.root().join("then.db");
    let report = replay::replay(
        t.root(),
        &Mode::Until {
            until: between.parse().unwrap(),
            into: into.clone(),
        },
        |_| {},
    )
    .unwrap();
    assert_eq!(report.head, 1);
    let names: Vec<String> = rusqlite::Connection::open(&into)
        .unwrap()
        .prepare("SELECT name FROM clients")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(names, ["alpha"]);
    assert!("-3".parse::<Until>().is_err());
    assert!("not a time".parse::<Until>().is_err());
}

/// A file the archive workload's model holds: its id, name and content.
type HeldFile = (Uuid, String, Vec<u8>);

/// One step of the archive workload: indices pick among the clients and files that exist when it runs.
#[derive(Debug, Clone)]
enum ArchiveOp {
    Register,
    Upload(u8, u8, u8),
    DeleteFile(u8, u8),
    DeleteClient(u8),
    Look,
}

fn archive_op() -> impl Strategy<Value = ArchiveOp> {
    prop_oneof![
        1 => Just(ArchiveOp::Register),
        5 => (any::<u8>(), any::<u8>(), any::<u8>()).prop_map(|(c, n, k)| ArchiveOp::Upload(c, n, k)),
        2 => (any::<u8>(), any::<u8>()).prop_map(|(c, f)| ArchiveOp::DeleteFile(c, f)),
        1 => any::<u8>().prop_map(ArchiveOp::DeleteClient),
        2 => Just(ArchiveOp::Look),
    ]
}

/// A client's archive as of `position`: its files by path (the manifest apart) and every file's status.
fn archive_of(t: &TestData, client: Uuid, position: i64) -> (std::collections::BTreeMap<String, Vec<u8>>, Vec<String>) {
    use std::io::Read;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let bytes = runtime.block_on(async {
        let mut made = cairn::services::archive::archive(
            &t.cairn,
            client,
            Some(Until::Position(position)),
            cairn::services::archive::Format::Tar,
            admin(),
        )
        .await
        .unwrap();
        let mut all = Vec::new();
        while let Some(chunk) = made.body.recv().await {
            all.extend_from_slice(&chunk.unwrap());
        }
        all
    });
    let mut files = std::collections::BTreeMap::new();
    let mut statuses = Vec::new();
    for entry in tar::Archive::new(bytes.as_slice()).entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        if path == "MANIFEST.json" {
            let manifest: serde_json::Value = serde_json::from_slice(&data).unwrap();
            statuses = manifest["files"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["status"].as_str().unwrap().to_owned())
                .collect();
        } else {
            files.insert(path, data);
        }
    }
    (files, statuses)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, max_shrink_iters: 32, ..ProptestConfig::default() })]

    #[test]
    fn archives_as_of_positions_of_a_random_workload_hold_exactly_the_files_of_then(ops in proptest::collection::vec(archive_op(), 1..50)) {
        let t = spawn();
        // Each live client and its files (id, name, content), oldest first; and what archives must show.
        let mut clients: Vec<(Uuid, Vec<HeldFile>)> = Vec::new();
        let mut looks: Vec<(i64, Uuid, std::collections::BTreeMap<String, Vec<u8>>)> = Vec::new();
        let mut n = 0;
        for op in &ops {
            match *op {
                ArchiveOp::Register => {
                    n += 1;
                    clients.push((t.register(&format!("c{n}")), Vec::new()));
                }
                ArchiveOp::Upload(c, name, k) if !clients.is_empty() => {
                    let i = usize::from(c) % clients.len();
                    // Few names (re-uploads of a name) and few contents (shared blobs).
                    let name = format!("f{}.txt", name % 3);
                    let content = format!("content {}", k % 4).into_bytes();
                    if let Ok(s) = t.upload(clients[i].0, &name, &content) {
                        clients[i].1.push((s.file_id, name, content));
                    }
                }
                ArchiveOp::DeleteFile(c, f) if !clients.is_empty() => {
                    let i = usize::from(c) % clients.len();
                    if !clients[i].1.is_empty() {
                        let j = usize::from(f) % clients[i].1.len();
                        let (id, _, _) = clients[i].1.remove(j);
                        t.cairn.execute_blocking(DeleteFile { file_id: id, expected_version: None, retain: true , run_id: None, owner: None}, admin()).unwrap();
                    }
                }
                ArchiveOp::DeleteClient(c) if !clients.is_empty() => {
                    let (id, _) = clients.remove(usize::from(c) % clients.len());
                    t.cairn.execute_blocking(DeleteClient { id, expected_version: None, retain: true }, admin()).unwrap();
                }
                ArchiveOp::Look => {
                    let head = t.cairn.store().head();
                    for (id, files) in &clients {
                        let mut want = std::collections::BTreeMap::new();
                        for (file, name, content) in files.iter().rev() {
                            let path = if want.contains_key(name) {
                                format!("{name}~{}", &file.to_string()[28..])
                            } else {
                                name.clone()
                            };
                            want.insert(path, content.clone());
                        }
                        looks.push((head, *id, want));
                    }
                }
                _ => {}
            }
        }
        for (position, client, want) in &looks {
            let (got, statuses) = archive_of(&t, *client, *position);
            prop_assert_eq!(&got, want, "client {} at position {}", client, position);
            prop_assert!(statuses.iter().all(|s| s == "ok"), "{:?}", statuses);
        }
    }
}
