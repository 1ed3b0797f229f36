//! Each projection, tested by feeding it events and reading its table back.
#![allow(clippy::unwrap_used)] // a test that cannot proceed should panic where it stopped

use std::collections::HashMap;

use cairn_events::catalogue::*;
use cairn_events::Projector;
use cairn_events::{DomainEvent, Metadata, RecordedEvent};
use cairn_projections::clients::{self, ClientFilter};
use cairn_projections::files::{self, FileFilter};
use cairn_projections::logs::{self, LogFilter};
use cairn_projections::stats::{self, Bucket};
use cairn_projections::transfers::{self, TransferFilter};
use cairn_projections::{checkpoints, ClientStatus, ListQuery, Projections, QueryError, TransferStatus};
use rusqlite::Connection;
use uuid::Uuid;

/// A migrated database and a position counter: events go straight to the projections.
struct Feed {
    _dir: tempfile::TempDir,
    conn: Connection,
    position: i64,
    versions: HashMap<String, i64>,
}

impl Feed {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let conn = cairn_events::schema::open_writable(&dir.path().join("t.db"), Default::default()).unwrap();
        Self {
            _dir: dir,
            conn,
            position: 0,
            versions: HashMap::new(),
        }
    }

    fn at(&mut self, time: &str, event: impl Into<DomainEvent>) -> RecordedEvent {
        let event = event.into();
        self.position += 1;
        let version = self.versions.entry(event.stream()).or_default();
        *version += 1;
        let recorded = RecordedEvent {
            position: self.position,
            id: Uuid::now_v7(),
            stream: event.stream(),
            version: *version,
            event_type: event.event_type().into(),
            schema: 1,
            data: event.data_json(),
            metadata: Metadata::system().to_json(),
            recorded_at: time.into(),
            crc: 0,
            hash: [0; 32],
        };
        Projections.apply(&self.conn, &recorded, None).unwrap();
        Projections.checkpoint(&self.conn, &recorded).unwrap();
        recorded
    }

    fn give(&mut self, event: impl Into<DomainEvent>) -> RecordedEvent {
        self.at("2026-11-22T10:00:00.000000Z", event)
    }
}

fn registered(id: Uuid, name: &str) -> ClientRegistered {
    ClientRegistered {
        client_id: id,
        external_id: format!("ext-{name}"),
        name: name.into(),
        ip_address: Some("10.0.0.1".into()),
        token_hash: "ab".repeat(32),
    }
}

fn stored(file: Uuid, client: Uuid, name: &str, size: u64, sha: &str) -> FileStored {
    FileStored {
        file_id: file,
        client_id: client,
        client_name: "alpha".into(),
        filename: name.into(),
        original_path: format!("/home/a/{name}"),
        size,
        sha256: sha.into(),
        crc32: 7,
        mime_type: "text/plain".into(),
        transfer_id: None,
        mtime: None,
        mode: None,
        run_id: None,
    }
}

#[test]
fn clients_follow_registration_connection_updates_and_deletion() {
    let mut feed = Feed::new();
    let a = Uuid::now_v7();
    feed.at("2026-11-22T10:00:00.000000Z", registered(a, "alpha"));
    let c = clients::get(&feed.conn, &a.to_string()).unwrap().unwrap();
    assert_eq!(
        (c.status.as_str(), c.version, c.last_seen.clone()),
        ("Registered", 1, None)
    );
    assert_eq!(c.client_id, "ext-alpha");

    feed.at(
        "2026-11-22T10:01:00.000000Z",
        ClientConnected {
            client_id: a,
            ip_address: Some("10.0.0.9".into()),
        },
    );
    let c = clients::get(&feed.conn, &a.to_string()).unwrap().unwrap();
    assert_eq!(c.status, ClientStatus::Connected);
    assert_eq!(c.last_seen.as_deref(), Some("2026-11-22T10:01:00.000000Z"));
    assert_eq!(c.ip_address.as_deref(), Some("10.0.0.9"));

    feed.give(stored(Uuid::now_v7(), a, "x.txt", 100, "s1"));
    feed.give(ClientUpdated {
        client_id: a,
        name: Some("Alpha Prime".into()),
        ip_address: None,
        backup_interval_seconds: None,
    });
    feed.give(ClientDisconnected {
        client_id: a,
        reason: DisconnectReason::Timeout,
        last_seen: None,
    });
    feed.give(ClientTokenRotated {
        client_id: a,
        token_hash: "cd".repeat(32),
    });
    let c = clients::by_name(&feed.conn, "alpha prime").unwrap().unwrap();
    assert_eq!(
        (c.status.as_str(), c.files_count, c.total_size, c.version),
        ("Offline", 1, 100, 5)
    );
    assert_eq!(c.token_hash, "cd".repeat(32));
    assert_eq!(
        files::of_client(&feed.conn, &a.to_string()).unwrap()[0].client_name,
        "Alpha Prime"
    );

    feed.give(ClientDeleted {
        client_id: a,
        name: "Alpha Prime".into(),
    });
    assert_eq!(clients::get(&feed.conn, &a.to_string()).unwrap(), None);
}

#[test]
fn client_lists_page_sort_search_and_filter() {
    let mut feed = Feed::new();
    for (i, name) in ["delta", "alpha", "charlie", "bravo", "echo"].iter().enumerate() {
        let id = Uuid::now_v7();
        feed.at(&format!("2026-11-22T10:0{i}:00.000000Z"), registered(id, name));
        if i % 2 == 0 {
            feed.give(ClientConnected {
                client_id: id,
                ip_address: None,
            });
        }
    }
    let q = ListQuery::new(Some(1), Some(2), Some("name".into()), None).unwrap();
    let page = clients::list(&feed.conn, &q, &ClientFilter::default()).unwrap();
    assert_eq!(
        page.items.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
        ["alpha", "bravo"]
    );
    assert_eq!((page.total, page.pages), (5, 3));
    let q = ListQuery::new(Some(3), Some(2), Some("-name".into()), None).unwrap();
    let page = clients::list(&feed.conn, &q, &ClientFilter::default()).unwrap();
    assert_eq!(
        page.items.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
        ["alpha"]
    );
    let connected = ClientFilter {
        status: Some(ClientStatus::Connected),
        overdue: None,
    };
    assert_eq!(
        clients::list(&feed.conn, &ListQuery::default(), &connected)
            .unwrap()
            .total,
        3
    );
    let q = ListQuery::new(None, None, None, Some("HARL".into())).unwrap();
    assert_eq!(
        clients::list(&feed.conn, &q, &ClientFilter::default()).unwrap().items[0].name,
        "charlie"
    );
    assert!(matches!(
        "Gone".parse::<ClientStatus>(),
        Err(QueryError::Filter { field: "status", .. })
    ));
    assert_eq!(clients::counts(&feed.conn).unwrap(), (5, 3));
}

#[test]
fn files_track_verification_downloads_deletion_and_dedupe() {
    let mut feed = Feed::new();
    let a = Uuid::now_v7();
    feed.give(registered(a, "alpha"));
    let (f1, f2, f3) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    feed.give(stored(f1, a, "one.txt", 10, "same"));
    feed.give(stored(f2, a, "two.txt", 10, "same"));
    feed.give(stored(f3, a, "three.bin", 99, "other"));
    assert_eq!(files::totals(&feed.conn).unwrap(), (3, 119, 109));
    assert_eq!(
        stats::storage_totals(&feed.conn).unwrap(),
        (3, 119, 109),
        "the running totals match the aggregate"
    );
    assert_eq!(files::references(&feed.conn, "same").unwrap(), 2);

    feed.give(FileVerified {
        file_id: f1,
        ok: true,
        expected_sha256: "same".into(),
        actual_sha256: Some("same".into()),
        expected_crc32: 7,
        actual_crc32: Some(7),
        detail: None,
    });
    feed.give(FileDownloaded {
        file_id: f1,
        by: "admin:ada".into(),
        bytes: 10,
    });
    let f = files::get(&feed.conn, &f1.to_string()).unwrap().unwrap();
    assert!(f.verified);
    assert_eq!((f.downloads, f.version), (1, 3));

    let verified = FileFilter {
        verified: Some(true),
        ..FileFilter::default()
    };
    assert_eq!(
        files::list(&feed.conn, &ListQuery::default(), &verified).unwrap().total,
        1
    );
    let q = ListQuery::new(None, None, Some("-size".into()), Some("t".into())).unwrap();
    let page = files::list(&feed.conn, &q, &FileFilter::default()).unwrap();
    assert_eq!(page.items[0].filename, "three.bin");
    assert_eq!(page.total, 3);
    let q = ListQuery::new(None, None, None, Some(".TXT".into())).unwrap();
    assert_eq!(files::list(&feed.conn, &q, &FileFilter::default()).unwrap().total, 2);

    feed.give(FileDeleted {
        file_id: f2,
        client_id: a,
        sha256: "same".into(),
        size: 10,
        reason: "admin".into(),
        run_id: None,
    });
    assert_eq!(files::references(&feed.conn, "same").unwrap(), 1);
    assert_eq!(
        stats::storage_totals(&feed.conn).unwrap(),
        (2, 109, 109),
        "the shared content is still stored once"
    );
    feed.give(FileDeleted {
        file_id: f1,
        client_id: a,
        sha256: "same".into(),
        size: 10,
        reason: "admin".into(),
        run_id: None,
    });
    assert_eq!(
        stats::storage_totals(&feed.conn).unwrap(),
        (1, 99, 99),
        "the last holder of the content is gone"
    );
    assert_eq!(
        stats::storage_totals(&feed.conn).unwrap(),
        files::totals(&feed.conn).unwrap()
    );
    let c = clients::get(&feed.conn, &a.to_string()).unwrap().unwrap();
    assert_eq!((c.files_count, c.total_size), (1, 99));
}

#[test]
fn transfers_move_from_in_progress_to_completed_or_failed() {
    let mut feed = Feed::new();
    let (t1, t2) = (Uuid::now_v7(), Uuid::now_v7());
    for t in [t1, t2] {
        feed.give(TransferStarted {
            transfer_id: t,
            client_id: None,
            file_id: None,
            filename: "f".into(),
            direction: Direction::Upload,
            expected_bytes: Some(5),
            run_id: None,
        });
    }
    assert_eq!(transfers::counts(&feed.conn).unwrap(), (2, 2));
    feed.give(TransferCompleted {
        transfer_id: t1,
        file_id: Some(Uuid::nil()),
        bytes: 5,
        duration_ms: 12,
    });
    feed.give(TransferFailed {
        transfer_id: t2,
        bytes: 2,
        duration_ms: 3,
        error: "client went away".into(),
    });
    assert_eq!(transfers::counts(&feed.conn).unwrap(), (2, 0));
    let failed = transfers::get(&feed.conn, &t2.to_string()).unwrap().unwrap();
    assert_eq!(
        (failed.status.as_str(), failed.error.as_deref()),
        ("Failed", Some("client went away"))
    );
    let only_failed = TransferFilter {
        status: Some(TransferStatus::Failed),
        ..TransferFilter::default()
    };
    assert_eq!(
        transfers::list(&feed.conn, &ListQuery::default(), &only_failed)
            .unwrap()
            .total,
        1
    );
}

fn log(level: &str, message: &str, source: &str) -> LogRecorded {
    LogRecorded {
        level: level.into(),
        message: message.into(),
        source: source.into(),
        client_id: None,
        file_id: None,
    }
}

#[test]
fn logs_are_filtered_and_cleared_up_to_the_clearing_event() {
    let mut feed = Feed::new();
    feed.at("2026-11-22T10:00:00.000000Z", log("info", "started", "server"));
    feed.at("2026-11-22T10:05:00.000000Z", log("error", "disk 100% full", "agent"));
    feed.at("2026-11-22T10:10:00.000000Z", log("info", "done_ok", "agent"));
    let agent = LogFilter {
        source: Some("agent".into()),
        ..LogFilter::default()
    };
    assert_eq!(logs::list(&feed.conn, &ListQuery::default(), &agent).unwrap().total, 2);
    let window = LogFilter {
        from: Some("2026-11-22T10:01:00Z".into()),
        to: Some("2026-11-22T10:10:00Z".into()),
        ..LogFilter::default()
    };
    assert_eq!(
        logs::list(&feed.conn, &ListQuery::default(), &window).unwrap().items[0].message,
        "disk 100% full"
    );
    // LIKE's wildcards in the search text are taken literally.
    let q = ListQuery::new(None, None, None, Some("100%".into())).unwrap();
    assert_eq!(logs::list(&feed.conn, &q, &LogFilter::default()).unwrap().total, 1);
    let q = ListQuery::new(None, None, None, Some("_".into())).unwrap();
    assert_eq!(logs::list(&feed.conn, &q, &LogFilter::default()).unwrap().total, 1);
    let bad = LogFilter {
        level: Some("loud".into()),
        ..LogFilter::default()
    };
    assert!(logs::list(&feed.conn, &ListQuery::default(), &bad).is_err());

    feed.give(LogsCleared { cleared: 3 });
    feed.give(log("info", "after", "server"));
    let all = logs::list(&feed.conn, &ListQuery::default(), &LogFilter::default()).unwrap();
    assert_eq!(
        all.items.iter().map(|l| l.message.as_str()).collect::<Vec<_>>(),
        ["after"]
    );
}

#[test]
fn stats_count_per_minute_and_in_total() {
    let mut feed = Feed::new();
    let a = Uuid::now_v7();
    feed.at("2026-11-22T10:00:10.000000Z", registered(a, "alpha"));
    let f = Uuid::now_v7();
    feed.at("2026-11-22T10:00:20.000000Z", stored(f, a, "x", 1000, "s"));
    feed.at("2026-11-22T10:01:05.000000Z", stored(Uuid::now_v7(), a, "y", 24, "t"));
    feed.at(
        "2026-11-22T11:30:00.000000Z",
        FileDownloaded {
            file_id: f,
            by: "admin:a".into(),
            bytes: 1000,
        },
    );
    feed.at("2026-11-22T11:30:01.000000Z", log("critical", "boom", "server"));
    feed.at("2026-11-22T11:30:02.000000Z", log("info", "fine", "server"));

    let minutes = stats::range(&feed.conn, None, None, Bucket::Minute).unwrap();
    assert_eq!(
        minutes.iter().map(|m| m.bucket.as_str()).collect::<Vec<_>>(),
        ["2026-11-22T10:00", "2026-11-22T10:01", "2026-11-22T11:30"]
    );
    assert_eq!(
        (minutes[0].uploads, minutes[0].bytes_in, minutes[0].registrations),
        (1, 1000, 1)
    );
    let hours = stats::range(
        &feed.conn,
        Some("2026-11-22T10:00:00Z"),
        Some("2026-11-22T11:00:00Z"),
        Bucket::Hour,
    )
    .unwrap();
    assert_eq!(hours.len(), 1);
    assert_eq!(
        (hours[0].bucket.as_str(), hours[0].uploads, hours[0].bytes_in),
        ("2026-11-22T10", 2, 1024)
    );
    let totals = stats::totals(&feed.conn).unwrap();
    assert_eq!(
        (totals.uploads, totals.downloads, totals.bytes_out, totals.errors),
        (2, 1, 1000, 1)
    );
    assert!("week".parse::<Bucket>().is_err());
}

#[test]
fn checkpoints_follow_the_last_applied_position() {
    let mut feed = Feed::new();
    assert_eq!(checkpoints::lowest(&feed.conn).unwrap(), 0);
    feed.give(log("info", "a", "s"));
    feed.give(log("info", "b", "s"));
    let all = checkpoints::all(&feed.conn).unwrap();
    assert_eq!(all.len(), cairn_projections::PROJECTIONS.len());
    assert!(all.iter().all(|c| c.position == 2));
}
