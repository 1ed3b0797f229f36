//! The core end to end: commands through the writer, the blob store and the read tables.
#![allow(clippy::unwrap_used)] // a test that cannot proceed should panic where it stopped

mod common;

use cairn::commands::client::{ConnectClient, DeleteClient, DisconnectClient, Heartbeat, RotateToken, UpdateClient};
use cairn::commands::file::{DeleteFile, RecordDownload};
use cairn::commands::log::{ClearLogs, RecordLog};
use cairn::{CommandError, Options};
use cairn_events::catalogue::DisconnectReason;
use cairn_events::{reader, Durability};
use cairn_projections::{clients, files, transfers, TransferStatus};
use common::{admin, spawn, spawn_with};
use uuid::Uuid;

fn log(message: &str, client: Option<Uuid>) -> RecordLog {
    RecordLog {
        level: "info".into(),
        message: message.into(),
        source: "agent".into(),
        client_id: client,
        file_id: None,
    }
}

#[test]
fn a_client_lives_from_registration_to_deletion_and_its_blobs_go_with_it() {
    let t = spawn();
    let a = t.register("alpha");
    let beat = t
        .cairn
        .execute_blocking(
            ConnectClient {
                id: a,
                ip_address: Some("10.1.1.1".into()),
            },
            admin(),
        )
        .unwrap();
    assert_eq!(beat.output, Heartbeat::Connected);
    let again = t
        .cairn
        .execute_blocking(
            ConnectClient {
                id: a,
                ip_address: None,
            },
            admin(),
        )
        .unwrap();
    assert_eq!(
        (again.output, again.positions.len()),
        (Heartbeat::AlreadyConnected, 0),
        "heartbeats do not flood the log"
    );

    let stored = t.upload(a, "notes.txt", b"remember the milk").unwrap();
    assert_eq!(stored.size, 17);
    let conn = t.read();
    let row = files::get(&conn, &stored.file_id.to_string()).unwrap().unwrap();
    assert_eq!(
        (row.filename.as_str(), row.mime_type.as_str(), row.client_name.as_str()),
        ("notes.txt", "text/plain", "alpha")
    );
    assert!(t
        .root()
        .join("blobs")
        .join(&stored.sha256[..2])
        .join(&stored.sha256)
        .exists());
    let c = clients::get(&conn, &a.to_string()).unwrap().unwrap();
    assert_eq!(
        (c.status.as_str(), c.files_count, c.total_size, c.ip_address.as_deref()),
        ("Connected", 1, 17, Some("10.1.1.1"))
    );
    let transfer = transfers::list(&conn, &Default::default(), &Default::default())
        .unwrap()
        .items
        .remove(0);
    assert_eq!(
        (transfer.status.as_str(), transfer.bytes, transfer.file_id),
        ("Completed", 17, Some(stored.file_id.to_string()))
    );

    let verified = t.verify(stored.file_id).unwrap();
    assert!(verified.ok);
    t.cairn
        .execute_blocking(
            RecordDownload {
                file_id: stored.file_id,
                by: "admin:test".into(),
                bytes: 17,
            },
            admin(),
        )
        .unwrap();
    t.cairn
        .execute_blocking(
            UpdateClient {
                id: a,
                name: Some("alpha-2".into()),
                ip_address: None,
                backup_interval_seconds: None,
                expected_version: None,
            },
            admin(),
        )
        .unwrap();
    t.cairn
        .execute_blocking(
            RotateToken {
                id: a,
                token: "new".into(),
            },
            admin(),
        )
        .unwrap();
    t.cairn
        .execute_blocking(
            DisconnectClient {
                id: a,
                reason: DisconnectReason::Admin,
                last_seen: None,
            },
            admin(),
        )
        .unwrap();
    let f = files::get(&t.read(), &stored.file_id.to_string()).unwrap().unwrap();
    assert_eq!((f.verified, f.downloads, f.client_name.as_str()), (true, 1, "alpha-2"));

    let deleted = t
        .cairn
        .execute_blocking(
            DeleteClient {
                id: a,
                expected_version: None,
                retain: true,
            },
            admin(),
        )
        .unwrap();
    assert_eq!(deleted.output, 1);
    assert_eq!(t.count("SELECT count(*) FROM clients"), 0);
    assert_eq!(t.count("SELECT count(*) FROM files"), 0);
    assert_eq!(t.blob_count(), 1, "the content no file holds is kept for its retention");
    assert_eq!(t.count("SELECT count(*) FROM retained_blobs"), 1);
    let purge = cairn::commands::blobs::PurgeBlobs {
        sha256s: vec![stored.sha256.clone()],
        reason: "retention".into(),
    };
    assert_eq!(t.cairn.execute_blocking(purge, admin()).unwrap().output, stored.size);
    assert_eq!(t.blob_count(), 0, "purged, the blob is removed");
    assert_eq!(t.count("SELECT count(*) FROM retained_blobs"), 0);
    assert_eq!(
        t.count("SELECT count(*) FROM events WHERE type = 'FileDeleted'"),
        1,
        "the events stay"
    );
    let refused = t.upload(a, "late.txt", b"x").unwrap_err();
    assert!(matches!(refused, CommandError::ClientDeleted(_)), "{refused:?}");
}

#[test]
fn identical_content_is_stored_once_and_its_blob_outlives_all_but_the_last_file() {
    let t = spawn();
    let (a, b) = (t.register("alpha"), t.register("bravo"));
    let one = t.upload(a, "a.bin", b"same bytes").unwrap();
    let two = t.upload(b, "b.bin", b"same bytes").unwrap();
    assert_eq!(one.sha256, two.sha256);
    assert_eq!(t.blob_count(), 1);
    let (count, bytes, stored) = files::totals(&t.read()).unwrap();
    assert_eq!((count, bytes, stored), (2, 20, 10));

    t.cairn
        .execute_blocking(
            DeleteFile {
                file_id: one.file_id,
                expected_version: None,
                retain: false,
                run_id: None,
                owner: None,
            },
            admin(),
        )
        .unwrap();
    assert_eq!(t.blob_count(), 1, "the other file still holds the content");
    t.cairn
        .execute_blocking(
            DeleteClient {
                id: b,
                expected_version: None,
                retain: false,
            },
            admin(),
        )
        .unwrap();
    assert_eq!(
        t.blob_count(),
        0,
        "without retention the last file takes its content with it"
    );
}

#[test]
fn an_upload_whose_sha256_does_not_match_stores_nothing_and_fails_its_transfer() {
    let t = spawn();
    let a = t.register("alpha");
    let upload = cairn::services::upload::Upload {
        client_id: a,
        filename: "x.bin".into(),
        declared: cairn::blobs::Declared {
            sha256: Some("0".repeat(64)),
            crc32: None,
        },
        ..cairn::services::upload::Upload::default()
    };
    let err = t.upload_as(upload, b"content", admin()).unwrap_err();
    assert!(
        matches!(err, CommandError::ChecksumMismatch { which: "SHA-256", .. }),
        "{err:?}"
    );
    assert_eq!(t.count("SELECT count(*) FROM files"), 0);
    assert_eq!(t.blob_count(), 0);
    assert_eq!(std::fs::read_dir(t.root().join("blobs/tmp")).unwrap().count(), 0);
    let tr = transfers::list(&t.read(), &Default::default(), &Default::default())
        .unwrap()
        .items
        .remove(0);
    assert_eq!(tr.status, TransferStatus::Failed);
    assert!(tr.error.unwrap().contains("does not match"));
}

#[test]
fn an_upload_over_the_limit_is_refused_and_leaves_no_file() {
    let t = spawn_with(Options {
        durability: Durability::Normal,
        max_upload: 1024,
        ..Options::default()
    });
    let a = t.register("alpha");
    let err = t.upload(a, "big.bin", &[7u8; 4096]).unwrap_err();
    assert!(matches!(err, CommandError::TooLarge { limit: 1024 }), "{err:?}");
    assert_eq!((t.count("SELECT count(*) FROM files"), t.blob_count()), (0, 0));
    assert_eq!(t.count("SELECT count(*) FROM transfers WHERE status = 'Failed'"), 1);
}

#[test]
fn a_filename_with_a_path_in_it_never_reaches_the_disk_layout() {
    let t = spawn();
    let a = t.register("alpha");
    for bad in ["../../escape", "dir/file", "..", "C:\\x"] {
        let err = t.upload(a, bad, b"x").unwrap_err();
        assert!(
            matches!(err, CommandError::Invalid { field: "filename", .. }),
            "{bad}: {err:?}"
        );
    }
    assert_eq!(
        t.count("SELECT count(*) FROM events WHERE type = 'TransferStarted'"),
        0,
        "refused before starting"
    );
    assert!(!t.root().join("escape").exists() && !t.root().parent().unwrap().join("escape").exists());
}

#[test]
fn concurrent_registrations_of_one_name_let_exactly_one_through() {
    let t = spawn();
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..16).map(|_| s.spawn(|| t.try_register("contested"))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    assert!(results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .all(|e| matches!(e, CommandError::NameTaken(_))));
    assert_eq!(t.count("SELECT count(*) FROM events"), 1);
}

#[test]
fn a_stale_expected_version_on_an_update_is_a_conflict_that_writes_nothing() {
    let t = spawn();
    let a = t.register("alpha");
    let update = |v| UpdateClient {
        id: a,
        name: None,
        ip_address: Some("10.0.0.2".into()),
        backup_interval_seconds: None,
        expected_version: Some(v),
    };
    t.cairn.execute_blocking(update(1), admin()).unwrap();
    let err = t.cairn.execute_blocking(update(1), admin()).unwrap_err();
    assert!(
        matches!(err, CommandError::VersionConflict { actual: 2, .. }),
        "{err:?}"
    );
    assert_eq!(t.count("SELECT count(*) FROM events"), 2);
}

#[test]
fn in_a_full_batch_the_failing_commands_fail_alone() {
    let t = spawn();
    let receivers: Vec<_> = (0..200)
        .map(|i| {
            let command = if i % 50 == 7 {
                log("", None)
            } else {
                log(&format!("line {i}"), None)
            };
            t.cairn.submit(command, admin()).unwrap()
        })
        .collect();
    let results: Vec<_> = receivers.into_iter().map(|r| r.blocking_recv().unwrap()).collect();
    assert_eq!(results.iter().filter(|r| r.is_err()).count(), 4);
    assert_eq!(t.count("SELECT count(*) FROM logs"), 196);
    assert_eq!(t.count("SELECT count(*) FROM events"), 196);
    assert!(
        t.cairn
            .store()
            .writer()
            .stats()
            .batches
            .load(std::sync::atomic::Ordering::Relaxed)
            < 200
    );
}

#[test]
fn logs_are_recorded_and_cleared_and_the_events_stay() {
    let t = spawn();
    let a = t.register("alpha");
    t.cairn.execute_blocking(log("hello", Some(a)), admin()).unwrap();
    t.cairn.execute_blocking(log("world", None), admin()).unwrap();
    let err = t
        .cairn
        .execute_blocking(log("orphan", Some(Uuid::now_v7())), admin())
        .unwrap_err();
    assert!(matches!(err, CommandError::ClientNotFound(_)));
    let cleared = t.cairn.execute_blocking(ClearLogs, admin()).unwrap();
    assert_eq!(cleared.output, 2);
    assert_eq!(t.count("SELECT count(*) FROM logs"), 0);
    assert_eq!(t.count("SELECT count(*) FROM events WHERE type = 'LogRecorded'"), 2);
}

#[test]
fn a_foreign_file_as_the_database_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cairn.db"), vec![0xA5u8; 8192]).unwrap();
    let err = cairn::Cairn::open(dir.path(), Options::default()).err().unwrap();
    assert!(err.to_string().contains("is not a cairn database"), "{err}");
}

#[test]
fn an_unusable_data_directory_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"not a directory").unwrap();
    let err = cairn::Cairn::open(&file.join("data"), Options::default())
        .err()
        .unwrap();
    assert!(err.to_string().starts_with("cannot use data directory"), "{err}");
    // /proc refuses new directories even to root, whom permission bits do not stop.
    let err = cairn::Cairn::open(std::path::Path::new("/proc/cairn-data"), Options::default())
        .err()
        .unwrap();
    assert!(
        err.to_string()
            .starts_with("cannot use data directory /proc/cairn-data"),
        "{err}"
    );
}

#[test]
fn a_data_directory_in_use_is_refused_to_a_second_opener() {
    let t = spawn();
    let err = cairn::Cairn::open(t.root(), Options::default()).err().unwrap();
    assert!(err.to_string().contains("in use by another cairn process"), "{err}");
}

#[test]
fn the_chain_verifies_after_mixed_work_and_a_reopen() {
    let t = spawn();
    let a = t.register("alpha");
    t.upload(a, "f", b"1").unwrap();
    t.cairn.execute_blocking(log("x", Some(a)), admin()).unwrap();
    let root = t.dir.path().to_owned();
    let common::TestData { dir, cairn } = t;
    cairn.close();
    let cairn = cairn::Cairn::open(&root, Options::default()).unwrap();
    let head = cairn.store().head();
    assert_eq!(head, 5);
    let report = reader::verify_chain(&cairn.store().reader().unwrap(), |_| {}).unwrap();
    assert_eq!((report.checked, report.first_bad), (5, None));
    drop(dir);
}

/// Takes migrations 9 and 8 out again: the Merkle tree; the runs, the files' and transfers' new columns, the clients' contents.
const UNDO_RUNS: &str =
    "DROP TABLE merkle_nodes; DROP TABLE runs; DROP TABLE client_contents; DELETE FROM projection_checkpoints WHERE name = 'runs';
    ALTER TABLE files DROP COLUMN mtime; ALTER TABLE files DROP COLUMN mode; ALTER TABLE files DROP COLUMN run_id;
    ALTER TABLE transfers DROP COLUMN run_id; ALTER TABLE clients DROP COLUMN last_run_at;
    ALTER TABLE retained_blobs DROP COLUMN by_client;";

/// Takes migrations 5 to 7 out again (after [`UNDO_RUNS`]): the retained contents, the alerts' tables, the
/// backup health columns.
const UNDO_BACKUP_HEALTH: &str =
    "DROP TABLE retained_blobs; DELETE FROM projection_checkpoints WHERE name = 'retained';
    DROP TABLE alert_deliveries; DROP TABLE alert_rules; DROP TABLE alert_targets;
    DELETE FROM projection_checkpoints WHERE name = 'alerts';
    ALTER TABLE clients DROP COLUMN last_backup_at;
    ALTER TABLE clients DROP COLUMN backup_interval_seconds; ALTER TABLE clients DROP COLUMN backup_overdue_since;";

#[test]
fn migrating_to_backup_health_finds_each_clients_last_backup_in_the_log() {
    let t = spawn();
    let (a, b) = (t.register("alpha"), t.register("bravo"));
    t.upload(a, "one", b"1").unwrap();
    t.upload(a, "two", b"2").unwrap();
    let root = t.dir.path().to_owned();
    let common::TestData { dir, cairn } = t;
    cairn.close();
    let db = rusqlite::Connection::open(root.join("cairn.db")).unwrap();
    let last: String = db
        .query_row(
            "SELECT max(recorded_at) FROM events WHERE type = 'FileStored'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    db.execute_batch(&format!("{UNDO_RUNS} {UNDO_BACKUP_HEALTH} PRAGMA user_version = 4;"))
        .unwrap();
    drop(db);

    let cairn = cairn::Cairn::open(&root, Options::default()).unwrap();

    let conn = cairn.store().reader().unwrap();
    let alpha = cairn_projections::clients::get(&conn, &a.to_string()).unwrap().unwrap();
    let bravo = cairn_projections::clients::get(&conn, &b.to_string()).unwrap().unwrap();
    assert_eq!(alpha.last_backup_at, Some(last));
    assert_eq!(bravo.last_backup_at, None);
    assert_eq!(alpha.backup_interval_seconds, 86_400);
    assert_eq!(alpha.backup_overdue_since, None);
    drop(conn);
    cairn.close();
    drop(dir);
}

#[test]
fn replay_verify_over_a_database_an_older_cairn_left_migrates_it_first_and_finds_it_equal() {
    let t = spawn();
    let a = t.register("alpha");
    t.upload(a, "one", b"1").unwrap();
    let root = t.dir.path().to_owned();
    let common::TestData { dir, cairn } = t;
    cairn.close();
    rusqlite::Connection::open(root.join("cairn.db"))
        .unwrap()
        .execute_batch(&format!("{UNDO_RUNS} {UNDO_BACKUP_HEALTH} PRAGMA user_version = 4;"))
        .unwrap();

    let report = cairn::replay::replay(&root, &cairn::replay::Mode::Verify, |_| {}).unwrap();

    assert!(report.differences.is_empty(), "{:?}", report.differences);
    assert!(
        cairn_events::schema::backup_path(&root.join("cairn.db"), 4).exists(),
        "a copy was taken first"
    );
    drop(dir);
}

#[test]
fn migrating_to_retained_content_fills_it_as_a_replay_would_and_the_first_purge_records_what_was_gone() {
    let t = spawn();
    let a = t.register("alpha");
    let gone = t.upload(a, "gone.txt", b"removed by an older cairn").unwrap();
    t.upload(a, "kept.txt", b"still held").unwrap();
    let delete = DeleteFile {
        file_id: gone.file_id,
        expected_version: None,
        retain: true,
        run_id: None,
        owner: None,
    };
    t.cairn.execute_blocking(delete, admin()).unwrap();
    // As a cairn from before retention left it: the blob removed at the deletion, no retained table.
    std::fs::remove_file(t.cairn.blobs().path_of(&gone.sha256)).unwrap();
    let root = t.dir.path().to_owned();
    let common::TestData { dir, cairn } = t;
    cairn.close();
    rusqlite::Connection::open(root.join("cairn.db"))
        .unwrap()
        .execute_batch(&format!(
            "{UNDO_RUNS} DROP TABLE retained_blobs; DELETE FROM projection_checkpoints WHERE name = 'retained';
             PRAGMA user_version = 6;"
        ))
        .unwrap();

    let report = cairn::replay::replay(&root, &cairn::replay::Mode::Verify, |_| {}).unwrap();
    assert!(report.differences.is_empty(), "{:?}", report.differences);
    let cairn = cairn::Cairn::open(&root, Options::default()).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let purged = runtime
        .block_on(cairn::services::health::purge_retained(
            &cairn,
            chrono::Utc::now(),
            std::time::Duration::from_secs(30 * 86_400),
            true,
        ))
        .unwrap();

    assert_eq!(purged, gone.size);
    let conn = cairn.store().reader().unwrap();
    let reason: String = conn
        .query_row(
            "SELECT json_extract(data, '$.reason') FROM events WHERE type = 'BlobsPurged'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(reason, "already gone");
    assert_eq!(cairn_projections::retained::totals(&conn).unwrap(), (0, 0));
    drop(conn);
    cairn.close();
    drop(dir);
}

#[test]
fn migrating_to_storage_totals_computes_them_for_files_already_stored() {
    let t = spawn();
    let (a, b) = (t.register("alpha"), t.register("bravo"));
    t.upload(a, "one", b"shared").unwrap();
    t.upload(b, "two", b"shared").unwrap();
    t.upload(b, "three", b"own content").unwrap();
    let root = t.dir.path().to_owned();
    let common::TestData { dir, cairn } = t;
    cairn.close();
    // Make it a version-3 database, as a cairn from before migration 4 left it.
    rusqlite::Connection::open(root.join("cairn.db"))
        .unwrap()
        .execute_batch(&format!(
            "{UNDO_RUNS} {UNDO_BACKUP_HEALTH} ALTER TABLE stats_totals DROP COLUMN files;
             ALTER TABLE stats_totals DROP COLUMN file_bytes; ALTER TABLE stats_totals DROP COLUMN stored_bytes;
             PRAGMA user_version = 3;"
        ))
        .unwrap();
    let cairn = cairn::Cairn::open(&root, Options::default()).unwrap();
    let conn = cairn.store().reader().unwrap();
    assert_eq!(cairn_projections::stats::storage_totals(&conn).unwrap(), (3, 23, 17));
    assert!(
        cairn_events::schema::backup_path(&root.join("cairn.db"), 3).exists(),
        "a copy was taken first"
    );
    drop(conn);
    cairn.close();
    drop(dir);
}

#[test]
fn transfers_a_crash_left_under_way_are_failed_at_the_next_start_once() {
    use cairn::commands::transfer::StartTransfer;
    use cairn_events::catalogue::Direction;
    let t = spawn();
    let a = t.register("alpha");
    let cut = Uuid::now_v7();
    let start = StartTransfer {
        transfer_id: cut,
        client_id: Some(a),
        file_id: None,
        filename: "big.iso".into(),
        direction: Direction::Upload,
        expected_bytes: Some(1 << 30),
        run_id: None,
    };
    t.cairn.execute_blocking(start, admin()).unwrap();
    // The process goes away with the upload under way; the next start finds it.
    let dir = t.dir;
    t.cairn.close();
    let cairn = cairn::Cairn::open(
        dir.path(),
        Options {
            durability: Durability::Normal,
            ..Options::default()
        },
    )
    .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let closed = runtime
        .block_on(cairn::services::upload::fail_interrupted(
            &cairn,
            cairn_events::Metadata::system(),
        ))
        .unwrap();
    assert_eq!(closed, 1);
    let conn = cairn.store().reader().unwrap();
    let row = transfers::get(&conn, &cut.to_string()).unwrap().unwrap();
    assert_eq!(row.status, TransferStatus::Failed);
    assert!(
        row.error.as_deref().unwrap().starts_with("interrupted"),
        "{:?}",
        row.error
    );
    drop(conn);
    let again = runtime
        .block_on(cairn::services::upload::fail_interrupted(
            &cairn,
            cairn_events::Metadata::system(),
        ))
        .unwrap();
    assert_eq!(again, 0, "a transfer ends once");
    cairn.close();
}

#[test]
fn the_data_directory_is_private_to_its_user_whatever_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    std::fs::create_dir(&root).unwrap();
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
    let t = common::TestData {
        cairn: cairn::Cairn::open(
            &root,
            Options {
                durability: Durability::Normal,
                ..Options::default()
            },
        )
        .unwrap(),
        dir,
    };
    let a = t.register("alpha");
    let stored = t.upload(a, "notes.txt", b"private").unwrap();

    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let blob = root.join("blobs").join(&stored.sha256[..2]).join(&stored.sha256);
    for path in [
        root.clone(),
        root.join("cairn.db"),
        root.join("cairn.lock"),
        root.join("blobs"),
        root.join("blobs/tmp"),
        blob.parent().unwrap().to_owned(),
        blob.clone(),
    ] {
        assert_eq!(mode(&path) & 0o077, 0, "{} is {:o}", path.display(), mode(&path));
    }
    assert_eq!(mode(&root), 0o700, "an existing data directory is made private too");
    t.cairn.close();
}

#[test]
#[cfg(unix)]
fn a_copy_of_the_database_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let t = spawn();
    t.register("alpha");
    let dest = t.dir.path().join("copy.db");

    cairn_events::schema::backup_to(&t.read(), &dest).unwrap();

    assert_eq!(std::fs::metadata(&dest).unwrap().permissions().mode() & 0o777, 0o600);
}

#[test]
fn migrating_to_backup_runs_knows_each_clients_contents_as_a_replay_would() {
    let t = spawn();
    let (a, b) = (t.register("alpha"), t.register("bravo"));
    t.upload(a, "one", b"same").unwrap();
    t.upload(b, "two", b"other").unwrap();
    let root = t.dir.path().to_owned();
    let common::TestData { dir, cairn } = t;
    cairn.close();
    rusqlite::Connection::open(root.join("cairn.db"))
        .unwrap()
        .execute_batch(&format!("{UNDO_RUNS} PRAGMA user_version = 7;"))
        .unwrap();

    let report = cairn::replay::replay(&root, &cairn::replay::Mode::Verify, |_| {}).unwrap();
    assert!(report.differences.is_empty(), "{:?}", report.differences);
    let cairn = cairn::Cairn::open(&root, Options::default()).unwrap();
    let conn = cairn.store().reader().unwrap();
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b"same"));
    assert!(cairn_projections::runs::client_content(&conn, &a.to_string(), &sha)
        .unwrap()
        .is_some());
    assert_eq!(
        cairn_projections::runs::client_content(&conn, &b.to_string(), &sha).unwrap(),
        None
    );
    drop(conn);
    cairn.close();
    drop(dir);
}

#[test]
fn content_a_client_deleted_is_kept_at_least_thirty_days_whatever_the_servers_retention() {
    let t = spawn();
    let a = t.register("alpha");
    let mine = t.upload(a, "diary.txt", b"dear diary").unwrap();
    let theirs = t.upload(a, "other.txt", b"the admin's to delete").unwrap();
    for (file, owner) in [(mine.file_id, Some(a)), (theirs.file_id, None)] {
        let delete = DeleteFile {
            file_id: file,
            expected_version: None,
            retain: true,
            run_id: None,
            owner,
        };
        t.cairn.execute_blocking(delete, admin()).unwrap();
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let purge = |days: i64| {
        let now = chrono::Utc::now() + chrono::Duration::days(days);
        runtime
            .block_on(cairn::services::health::purge_retained(
                &t.cairn,
                now,
                std::time::Duration::ZERO,
                false,
            ))
            .unwrap()
    };
    assert_eq!(
        purge(0),
        theirs.size,
        "with no retention the admin's deletion goes, the client's stays"
    );
    assert!(t.cairn.blobs().path_of(&mine.sha256).exists());
    assert_eq!(purge(29), 0);
    assert_eq!(purge(31), mine.size, "past thirty days it goes too");
    assert!(!t.cairn.blobs().path_of(&mine.sha256).exists());
}
