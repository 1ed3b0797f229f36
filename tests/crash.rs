//! A writer process killed with SIGKILL in the middle of a load loses no acknowledged event; on restart the
//! chain verifies and the read tables agree with the log.
//!
//! This test runs itself twice: the parent starts this same binary as `crash child DIR`, which writes as fast
//! as it can and prints a line for every acknowledged write, then kills it. (A harness-less test, so that the
//! child is not also run as a test.)

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cairn::commands::log::RecordLog;
use cairn::services::upload::Upload;
use cairn::{Cairn, Options};
use cairn_events::{reader, Durability, Metadata};

/// Acknowledged writes to see before the kill, and the most time to wait for them.
const ACKS_BEFORE_KILL: usize = 1500;
const DEADLINE: Duration = Duration::from_secs(60);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("child") {
        child(Path::new(&args[2]));
        return;
    }
    let started = Instant::now();
    a_writer_killed_mid_load_loses_no_acknowledged_event();
    println!(
        "test a_writer_killed_mid_load_loses_no_acknowledged_event ... ok ({:.1} s)",
        started.elapsed().as_secs_f64()
    );
    println!("crash: 1 passed, 0 failed");
}

/// The load: four threads of log lines and uploads, each acknowledged write printed once committed.
fn child(dir: &Path) {
    let cairn = Cairn::open(
        dir,
        Options {
            durability: Durability::Full,
            ..Options::default()
        },
    )
    .expect("open");
    let client = cairn::commands::client::RegisterClient {
        id: uuid::Uuid::now_v7(),
        name: "crash-test".into(),
        client_id: None,
        ip_address: None,
        token: "t".into(),
    };
    let client = cairn
        .execute_blocking(client, Metadata::system())
        .expect("register")
        .output;
    std::thread::scope(|s| {
        for t in 0..4 {
            let cairn = &cairn;
            s.spawn(move || {
                let started = Instant::now();
                for i in 0.. {
                    if started.elapsed() > DEADLINE {
                        break; // bounded: the parent kills long before this
                    }
                    let marker = format!("m-{t}-{i}");
                    if i % 4 == 0 {
                        let upload = Upload {
                            client_id: client,
                            filename: format!("{marker}.txt"),
                            ..Upload::default()
                        };
                        let stored = cairn::services::upload::upload_blocking(
                            cairn,
                            upload,
                            marker.as_bytes(),
                            Metadata::client(client),
                        )
                        .expect("upload");
                        println!("file {} {}", stored.file_id, stored.sha256);
                    } else {
                        let log = RecordLog {
                            level: "info".into(),
                            message: marker.clone(),
                            source: "crash".into(),
                            client_id: Some(client),
                            file_id: None,
                        };
                        let done = cairn.execute_blocking(log, Metadata::system()).expect("log");
                        println!("ack {} {marker}", done.positions[0]);
                    }
                }
            });
        }
    });
}

fn a_writer_killed_mid_load_loses_no_acknowledged_event() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(std::env::current_exe().expect("this binary"))
        .arg("child")
        .arg(dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the writer");
    let mut out = BufReader::new(child.stdout.take().expect("piped stdout"));
    let mut acked = Vec::new();
    let started = Instant::now();
    let mut line = String::new();
    while acked.len() < ACKS_BEFORE_KILL && started.elapsed() < DEADLINE {
        line.clear();
        if out.read_line(&mut line).expect("read") == 0 {
            break;
        }
        acked.push(line.trim_end().to_owned());
    }
    child.kill().expect("SIGKILL the writer"); // std's kill is SIGKILL on Unix
    child.wait().expect("reap");
    // What it printed before dying was acknowledged too; a half-written last line was not.
    loop {
        line.clear();
        if out.read_line(&mut line).expect("read") == 0 || !line.ends_with('\n') {
            break;
        }
        acked.push(line.trim_end().to_owned());
    }
    assert!(
        acked.len() >= ACKS_BEFORE_KILL,
        "the writer acknowledged only {} writes",
        acked.len()
    );

    // Restart: opening recovers the WAL.
    let cairn = Cairn::open(dir.path(), Options::default()).expect("reopen after the kill");
    let conn = cairn.store().reader().expect("reader");
    let report = reader::verify_chain(&conn, |_| {}).expect("verify");
    assert_eq!(report.first_bad, None, "the chain verifies after the crash");
    let mut logs = 0;
    let mut files = 0;
    for ack in &acked {
        let parts: Vec<&str> = ack.split(' ').collect();
        match parts[0] {
            "ack" => {
                let position: i64 = parts[1].parse().expect("position");
                let data: String = conn
                    .query_row("SELECT data FROM events WHERE position = ?1", [position], |r| r.get(0))
                    .unwrap_or_else(|e| panic!("acknowledged position {position} is missing: {e}"));
                assert!(
                    data.contains(&format!("\"{}\"", parts[2])),
                    "position {position} holds another event"
                );
                logs += 1;
            }
            "file" => {
                let row = cairn_projections::files::get(&conn, parts[1]).expect("query");
                assert!(row.is_some(), "acknowledged file {} is missing", parts[1]);
                assert!(
                    cairn.blobs().path_of(parts[2]).exists(),
                    "the blob of {} is missing",
                    parts[1]
                );
                files += 1;
            }
            other => panic!("unexpected line {other:?}"),
        }
    }
    assert!(
        logs > 0 && files > 0,
        "both kinds of write were acknowledged ({logs} logs, {files} files)"
    );
    drop(conn);

    // The read tables agree with the log, and the log goes on.
    let head = cairn.store().head();
    cairn.close();
    let verify = cairn::replay::replay(dir.path(), &cairn::replay::Mode::Verify, |_| {}).expect("replay --verify");
    assert!(
        verify.differences.is_empty(),
        "read tables differ from the log: {:?}",
        verify.differences
    );
    assert_eq!(verify.head, head);
    let cairn = Cairn::open(dir.path(), Options::default()).expect("reopen");
    let log = RecordLog {
        level: "info".into(),
        message: "after".into(),
        source: "crash".into(),
        client_id: None,
        file_id: None,
    };
    let done = cairn
        .execute_blocking(log, Metadata::system())
        .expect("append after the crash");
    assert_eq!(done.positions, vec![head + 1]);
    let report = reader::verify_chain(&cairn.store().reader().expect("reader"), |_| {}).expect("verify");
    assert_eq!(report.first_bad, None);
}
