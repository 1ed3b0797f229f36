//! The event store's properties, against real database files.
#![allow(clippy::unwrap_used)] // a test that cannot proceed should panic where it stopped

use std::collections::HashMap;
use std::sync::Arc;

use cairn_events::catalogue::{LogRecorded, EVENT_TYPES};
use cairn_events::reader::{self, EventFilter};
use cairn_events::{
    AppendError, Appended, DomainEvent, EventStore, ExpectedVersion, Metadata, NewEvent, NoProjections, StoreError,
    StoreOptions,
};

fn log_event(message: &str) -> NewEvent {
    let event = DomainEvent::from(LogRecorded {
        level: "info".into(),
        message: message.into(),
        source: "test".into(),
        client_id: None,
        file_id: None,
    });
    NewEvent::from_domain(&event, &Metadata::system())
}

fn open(dir: &tempfile::TempDir) -> EventStore {
    EventStore::open(
        &dir.path().join("cairn.db"),
        StoreOptions::default(),
        Box::new(NoProjections),
    )
    .unwrap()
}

fn append(
    store: &EventStore,
    stream: &str,
    expected: ExpectedVersion,
    events: Vec<NewEvent>,
) -> Result<Appended, AppendError> {
    let stream = stream.to_owned();
    store
        .writer()
        .execute_blocking(move |unit| unit.append(&stream, expected, events))
}

#[test]
fn sixty_four_concurrent_writers_leave_a_gapless_log_whose_chain_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let per_writer = 40;
    let threads: Vec<_> = (0..64)
        .map(|w| {
            let store = store.clone();
            std::thread::spawn(move || {
                let stream = format!("s-{}", w % 8);
                for i in 0..per_writer {
                    append(
                        &store,
                        &stream,
                        ExpectedVersion::Any,
                        vec![log_event(&format!("{w}/{i}"))],
                    )
                    .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }

    let conn = store.reader().unwrap();
    let positions: Vec<i64> = conn
        .prepare("SELECT position FROM events ORDER BY position")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(positions, (1..=64 * per_writer).collect::<Vec<i64>>());
    let mut versions: HashMap<String, Vec<i64>> = HashMap::new();
    for e in reader::read_from(&conn, 0, 100_000).unwrap() {
        versions.entry(e.stream).or_default().push(e.version);
    }
    assert_eq!(versions.len(), 8);
    for (stream, v) in versions {
        assert_eq!(v, (1..=v.len() as i64).collect::<Vec<_>>(), "versions of {stream}");
    }
    let report = reader::verify_chain(&conn, |_| {}).unwrap();
    assert_eq!(report.first_bad, None);
    assert_eq!(report.checked, 64 * per_writer);
    assert!(
        store
            .writer()
            .stats()
            .batches
            .load(std::sync::atomic::Ordering::Relaxed)
            < (64 * per_writer) as u64
    );
}

#[test]
fn resending_an_event_id_returns_the_first_position_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    append(&store, "log", ExpectedVersion::Any, vec![log_event("before")]).unwrap();
    let event = log_event("once");
    let first = append(&store, "log", ExpectedVersion::Any, vec![event.clone()]).unwrap();
    let again = append(&store, "log", ExpectedVersion::Any, vec![event.clone()]).unwrap();
    let stale_retry = append(&store, "log", ExpectedVersion::Exact(1), vec![event]).unwrap();
    assert_eq!(first.positions, vec![2]);
    assert!(!first.duplicate);
    assert_eq!(again.positions, vec![2]);
    assert!(again.duplicate);
    assert_eq!(stale_retry.positions, vec![2]);
    assert_eq!(reader::head(&store.reader().unwrap()).unwrap(), 2);
}

#[test]
fn an_append_mixing_stored_and_new_ids_is_refused_whole() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let stored = log_event("stored");
    append(&store, "log", ExpectedVersion::Any, vec![stored.clone()]).unwrap();
    let err = append(&store, "log", ExpectedVersion::Any, vec![log_event("new"), stored]).unwrap_err();
    assert!(
        matches!(err, AppendError::PartialDuplicate { position: 1, .. }),
        "{err:?}"
    );
    assert_eq!(reader::head(&store.reader().unwrap()).unwrap(), 1);
}

#[test]
fn a_stale_expected_version_is_a_conflict_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    append(&store, "client-a", ExpectedVersion::NoStream, vec![log_event("1")]).unwrap();
    append(&store, "client-a", ExpectedVersion::Exact(1), vec![log_event("2")]).unwrap();
    let err = append(&store, "client-a", ExpectedVersion::Exact(1), vec![log_event("late")]).unwrap_err();
    assert!(matches!(err, AppendError::Conflict { actual: 2, .. }), "{err:?}");
    let err = append(&store, "client-a", ExpectedVersion::NoStream, vec![log_event("again")]).unwrap_err();
    assert!(matches!(err, AppendError::Conflict { .. }));
    let err = append(&store, "client-b", ExpectedVersion::StreamExists, vec![log_event("x")]).unwrap_err();
    assert!(matches!(err, AppendError::Conflict { actual: 0, .. }));
    assert_eq!(reader::head(&store.reader().unwrap()).unwrap(), 2);
}

#[derive(Debug, thiserror::Error)]
enum TestError {
    #[error("refused")]
    Refused,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Append(#[from] AppendError),
}

#[test]
fn one_failing_command_in_a_full_batch_rolls_back_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let mut live = store.writer().subscribe();
    // Queue everything before waiting, so the writer drains it as few batches.
    let receivers: Vec<_> = (0..100)
        .map(|i| {
            store
                .writer()
                .submit(move |unit| -> Result<i64, TestError> {
                    let appended = unit.append("log", ExpectedVersion::Any, vec![log_event(&format!("#{i}"))])?;
                    if i == 50 {
                        return Err(TestError::Refused);
                    }
                    Ok(appended.positions[0])
                })
                .unwrap()
        })
        .collect();
    let results: Vec<_> = receivers.into_iter().map(|rx| rx.blocking_recv().unwrap()).collect();
    assert!(matches!(results[50], Err(TestError::Refused)));
    let positions: Vec<i64> = results.iter().filter_map(|r| r.as_ref().ok().copied()).collect();
    assert_eq!(positions, (1..=99).collect::<Vec<_>>());

    let conn = store.reader().unwrap();
    let messages: Vec<String> = reader::read_from(&conn, 0, 1000)
        .unwrap()
        .iter()
        .map(|e| e.data.clone())
        .collect();
    assert_eq!(messages.len(), 99);
    // The writer's cache of stream versions forgot what the failed command appended.
    let versions: Vec<i64> = reader::read_stream(&conn, "log", 0, 1000)
        .unwrap()
        .iter()
        .map(|e| e.version)
        .collect();
    assert_eq!(versions, (1..=99).collect::<Vec<_>>());
    assert!(!messages.iter().any(|m| m.contains("\"#50\"")));
    assert_eq!(reader::verify_chain(&conn, |_| {}).unwrap().first_bad, None);
    // The broadcast carries exactly the committed events, in order.
    let mut seen = Vec::new();
    while let Ok(e) = live.try_recv() {
        seen.push(e.position);
    }
    assert_eq!(seen, (1..=99).collect::<Vec<_>>());
}

#[test]
fn a_panicking_command_is_rolled_back_and_the_writer_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let panicked = store.writer().execute_blocking(|unit| -> Result<(), TestError> {
        unit.append("log", ExpectedVersion::Any, vec![log_event("doomed")])?;
        panic!("a bug in a command");
    });
    assert!(matches!(panicked, Err(TestError::Store(StoreError::CommandPanicked))));
    append(&store, "log", ExpectedVersion::Any, vec![log_event("after")]).unwrap();
    let events = reader::read_from(&store.reader().unwrap(), 0, 10).unwrap();
    assert_eq!(events.len(), 1);
    assert!(events[0].data.contains("after"));
}

#[test]
fn after_commit_work_runs_only_for_kept_commands() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let ran = Arc::new(std::sync::Mutex::new(Vec::new()));
    for (name, fail) in [("kept", false), ("dropped", true)] {
        let ran = ran.clone();
        let _ = store.writer().execute_blocking(move |unit| -> Result<(), TestError> {
            unit.append("log", ExpectedVersion::Any, vec![log_event(name)])?;
            unit.after_commit(move |_| ran.lock().unwrap().push(name));
            if fail {
                Err(TestError::Refused)
            } else {
                Ok(())
            }
        });
    }
    assert_eq!(*ran.lock().unwrap(), vec!["kept"]);
}

#[test]
fn a_foreign_file_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cairn.db");
    std::fs::write(
        &path,
        b"this is a text file, not a database, and it is long enough to look like a header....",
    )
    .unwrap();
    let err = EventStore::open(&path, StoreOptions::default(), Box::new(NoProjections))
        .err()
        .unwrap();
    assert!(matches!(err, StoreError::NotADatabase { .. }), "{err}");
    assert!(err.to_string().contains("not a cairn database"));

    let other = dir.path().join("other.db");
    rusqlite::Connection::open(&other)
        .unwrap()
        .execute_batch("CREATE TABLE mine (x INTEGER)")
        .unwrap();
    let err = EventStore::open(&other, StoreOptions::default(), Box::new(NoProjections))
        .err()
        .unwrap();
    assert!(matches!(err, StoreError::NotADatabase { .. }), "{err}");
}

#[test]
fn a_database_from_a_newer_cairn_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    store.close();
    let path = dir.path().join("cairn.db");
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("PRAGMA user_version = 999")
        .unwrap();
    let err = EventStore::open(&path, StoreOptions::default(), Box::new(NoProjections))
        .err()
        .unwrap();
    assert!(matches!(err, StoreError::TooNew { found: 999, .. }), "{err}");
    assert!(err.to_string().contains("newer cairn"));
}

#[test]
fn migrating_a_database_that_holds_events_first_writes_a_copy_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    append(&store, "log", ExpectedVersion::Any, vec![log_event("kept")]).unwrap();
    store.close();
    let path = dir.path().join("cairn.db");
    // Pretend the database is at schema 1: the read tables are not there yet.
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(
            "DROP TABLE clients; DROP TABLE files; DROP TABLE transfers; DROP TABLE logs; DROP TABLE stats;
             DROP TABLE stats_totals; DROP TABLE projection_checkpoints; DROP TABLE alert_targets;
             DROP TABLE alert_rules; DROP TABLE alert_deliveries; DROP TABLE retained_blobs; DROP TABLE runs;
             DROP TABLE client_contents; DROP TABLE merkle_nodes; PRAGMA user_version = 1;",
        )
        .unwrap();
    let store = open(&dir);
    let copy = cairn_events::schema::backup_path(&path, 1);
    assert!(copy.exists(), "no copy at {}", copy.display());
    let copied: i64 = rusqlite::Connection::open(&copy)
        .unwrap()
        .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .unwrap();
    assert_eq!(copied, 1);
    assert_eq!(reader::head(&store.reader().unwrap()).unwrap(), 1);
    // The tree a database from before it lacks is built from the log as the writer starts.
    let conn = store.reader().unwrap();
    assert_eq!(cairn_events::merkle::store::size(&conn).unwrap(), 1);
    assert_eq!(cairn_events::merkle::store::check(&conn, 1).unwrap().first_bad, None);
}

#[test]
fn filtered_reads_page_with_a_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    for i in 0..25 {
        let stream = if i % 2 == 0 { "log" } else { "server" };
        let mut event = log_event(&format!("{i}"));
        if i % 5 == 0 {
            event.metadata = Metadata::admin("ada").to_json();
        }
        append(&store, stream, ExpectedVersion::Any, vec![event]).unwrap();
    }
    let conn = store.reader().unwrap();
    let mut filter = EventFilter {
        stream: Some("log".into()),
        limit: Some(5),
        ..EventFilter::default()
    };
    let mut seen = Vec::new();
    loop {
        let page = reader::query(&conn, &filter).unwrap();
        seen.extend(page.events.iter().map(|e| e.position));
        match page.next_after {
            Some(after) => filter.after = Some(after),
            None => break,
        }
    }
    assert_eq!(seen, (1..=25).step_by(2).collect::<Vec<_>>());
    let admin = reader::query(
        &conn,
        &EventFilter {
            actor: Some("admin:*".into()),
            ..EventFilter::default()
        },
    )
    .unwrap();
    assert_eq!(
        admin.events.iter().map(|e| e.position).collect::<Vec<_>>(),
        vec![1, 6, 11, 16, 21]
    );
    let window = reader::query(
        &conn,
        &EventFilter {
            after: Some(3),
            until: Some(7),
            event_type: Some("LogRecorded".into()),
            ..EventFilter::default()
        },
    )
    .unwrap();
    assert_eq!(window.events.len(), 4);
    assert_eq!(reader::count(&conn, &EventFilter::default()).unwrap(), 25);
    assert_eq!(reader::read_stream(&conn, "server", 10, 100).unwrap().len(), 2);
    assert!(EVENT_TYPES.contains(&"LogRecorded"));
}

#[test]
fn the_head_survives_a_reopen_and_the_chain_continues() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    append(
        &store,
        "log",
        ExpectedVersion::Any,
        vec![log_event("a"), log_event("b")],
    )
    .unwrap();
    store.close();
    let store = open(&dir);
    assert_eq!(store.head(), 2);
    let appended = append(&store, "log", ExpectedVersion::Exact(2), vec![log_event("c")]).unwrap();
    assert_eq!(appended.positions, vec![3]);
    assert_eq!(appended.version, 3);
    let report = reader::verify_chain(&store.reader().unwrap(), |_| {}).unwrap();
    assert_eq!((report.checked, report.first_bad), (3, None));
}

/// The chain verified while appends go on checks the log as it stood when it began: events appended after
/// that moment are neither a break nor counted (a busy server's periodic check once recorded a false
/// `ChainBroken` when an append landed between reading the head and scanning).
#[test]
fn verifying_while_events_are_appended_finds_no_break() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    append(&store, "log", ExpectedVersion::Any, vec![log_event("first")]).unwrap();
    let writer = {
        let store = store.clone();
        std::thread::spawn(move || {
            for i in 0..3_000 {
                append(
                    &store,
                    "log",
                    ExpectedVersion::Any,
                    vec![log_event(&format!("line {i}"))],
                )
                .unwrap();
            }
        })
    };
    let conn = store.reader().unwrap();
    let mut checks = 0;
    while !writer.is_finished() {
        let report = reader::verify_chain(&conn, |_| {}).unwrap();
        assert_eq!(report.first_bad, None, "check {checks}: {report:?}");
        assert_eq!(report.checked, report.head, "check {checks}");
        checks += 1;
    }
    writer.join().unwrap();
    assert!(checks > 0);
}

/// Work a command asks to be done before its batch commits runs once, before the commit; when it fails, nothing
/// of the batch is committed and the command hears why.
#[test]
fn a_failed_preparation_before_the_commit_commits_nothing_of_its_batch() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let ran = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = ran.clone();
    let ok = store.writer().execute_blocking(move |unit| {
        unit.before_commit(move || {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(())
        });
        unit.append("log", ExpectedVersion::Any, vec![log_event("kept")])
    });
    assert!(ok.is_ok());
    assert_eq!(ran.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(store.head(), 1);

    let failed = store.writer().execute_blocking(move |unit| {
        unit.before_commit(|| Err(std::io::Error::other("the disk said no")));
        unit.append("log", ExpectedVersion::Any, vec![log_event("lost")])
    });
    let error = format!("{:?}", failed.expect_err("the batch failed"));
    assert!(error.contains("the disk said no"), "{error}");
    assert_eq!(store.head(), 1, "nothing of the failed batch was committed");
    let report = reader::verify_chain(&store.reader().unwrap(), |_| {}).unwrap();
    assert_eq!((report.checked, report.first_bad), (1, None));
    // The writer goes on.
    append(&store, "log", ExpectedVersion::Any, vec![log_event("after")]).unwrap();
    assert_eq!(store.head(), 2);
}
