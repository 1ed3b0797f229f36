//! A writer process killed with SIGKILL in the middle of a load loses no acknowledged event; on restart the
//! chain verifies and the read tables agree with the log. Then the same of `cairn serve` itself, killed twenty
//! times under HTTP load and restarted on the same directory each time.
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
    let started = Instant::now();
    a_server_killed_20_times_under_http_load_loses_no_acknowledged_event();
    println!(
        "test a_server_killed_20_times_under_http_load_loses_no_acknowledged_event ... ok ({:.1} s)",
        started.elapsed().as_secs_f64()
    );
    println!("crash: 2 passed, 0 failed");
}

const ADMIN: &str = "crash-admin-token-0123456789";
const KILLS: usize = 20;

/// What the HTTP load saw acknowledged (201) before a kill.
#[derive(Debug)]
enum Acked {
    Log(String),
    File { id: String, sha256: String },
}

/// Starts `cairn serve` on `dir` with full durability; the child and the address it listens on.
fn serve(dir: &Path) -> (std::process::Child, std::net::SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--durability",
            "full",
            "--disk-alert-percent",
            "100",
            "--token",
            ADMIN,
            "--data",
        ])
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn cairn serve");
    let Some(stdout) = child.stdout.take() else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("no stdout");
    };
    let mut out = BufReader::new(stdout);
    let mut line = String::new();
    let started = Instant::now();
    loop {
        line.clear();
        let read = out.read_line(&mut line).unwrap_or(0);
        if read == 0 || started.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("cairn serve did not start");
        }
        let addr = line
            .strip_prefix("cairn serving http://")
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok());
        if let Some(addr) = addr {
            // Keep reading its stdout so that it never blocks on a full pipe.
            std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
            return (child, addr);
        }
    }
}

/// Four connections of log lines and uploads against `addr` until `stop`; what was acknowledged.
async fn load(
    addr: std::net::SocketAddr,
    client: String,
    token: String,
    round: usize,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Vec<Acked> {
    let tasks = (0..4).map(|t| {
        let (client, token, stop) = (client.clone(), token.clone(), stop.clone());
        tokio::spawn(async move {
            let mut acked = Vec::new();
            let Ok(api) = cairn::client::Client::at(addr, &token) else {
                return acked;
            };
            for i in 0.. {
                if *stop.borrow() {
                    break;
                }
                let marker = format!("r{round}-t{t}-{i}");
                if i % 3 == 2 {
                    let request = api
                        .request(
                            reqwest::Method::POST,
                            &format!("/api/clients/{client}/files?name={marker}.txt"),
                        )
                        .body(marker.clone().into_bytes());
                    match api.send(request).await {
                        Ok(a) if a.status == 201 => {
                            let data = a.data();
                            acked.push(Acked::File {
                                id: data["id"].as_str().unwrap_or_default().to_owned(),
                                sha256: data["checksum"].as_str().unwrap_or_default().to_owned(),
                            });
                        }
                        _ => break, // the server is gone
                    }
                } else {
                    let body = serde_json::json!({ "level": "info", "message": marker });
                    match api.call(reqwest::Method::POST, "/api/logs", body).await {
                        Ok(a) if a.status == 201 => acked.push(Acked::Log(marker)),
                        _ => break,
                    }
                }
            }
            acked
        })
    });
    let mut acked = Vec::new();
    for t in futures_util::future::join_all(tasks).await {
        acked.extend(t.expect("a load task"));
    }
    acked
}

/// `cairn serve` SIGKILLed twenty times under HTTP load, each time restarted on the same directory: every
/// write a client saw acknowledged is in the log, the chain verifies and the read tables agree with the log.
fn a_server_killed_20_times_under_http_load_loses_no_acknowledged_event() {
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let mut acked = Vec::new();
    let mut client = None;
    for round in 0..KILLS {
        let (mut child, addr) = serve(dir.path());
        let (id, token) = client
            .get_or_insert_with(|| {
                runtime.block_on(async {
                    let api = cairn::client::Client::at(addr, ADMIN).expect("a client");
                    let (status, data) = api
                        .json(
                            reqwest::Method::POST,
                            "/api/clients",
                            serde_json::json!({ "name": "crash-http" }),
                        )
                        .await
                        .expect("register");
                    assert_eq!(status, 201);
                    let id = data["client"]["id"].as_str().expect("an id").to_owned();
                    (id, data["token"].as_str().expect("a token").to_owned())
                })
            })
            .clone();
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let load = runtime.spawn(load(addr, id, token, round, stopped));
        // Kill at a different moment each round: 150 to 600 ms into the load.
        std::thread::sleep(Duration::from_millis(150 + (round as u64 * 97) % 450));
        child.kill().expect("SIGKILL cairn serve");
        child.wait().expect("reap");
        stop.send_replace(true);
        acked.extend(runtime.block_on(load).expect("the load"));
    }
    drop(runtime);
    let logs = acked.iter().filter(|a| matches!(a, Acked::Log(_))).count();
    let files = acked.len() - logs;
    assert!(
        logs >= KILLS && files > 0,
        "the load was acknowledged ({logs} logs, {files} files)"
    );

    let cairn = Cairn::open(dir.path(), Options::default()).expect("reopen after the last kill");
    let conn = cairn.store().reader().expect("reader");
    let report = reader::verify_chain(&conn, |_| {}).expect("verify");
    assert_eq!(report.first_bad, None, "the chain verifies after {KILLS} kills");
    let mut logged = std::collections::HashSet::new();
    let mut rows = conn
        .prepare("SELECT json_extract(data, '$.message') FROM events WHERE type = 'LogRecorded'")
        .expect("prepare");
    for message in rows.query_map([], |r| r.get::<_, Option<String>>(0)).expect("query") {
        if let Some(m) = message.expect("a row") {
            logged.insert(m);
        }
    }
    drop(rows);
    for a in &acked {
        match a {
            Acked::Log(marker) => assert!(logged.contains(marker), "acknowledged log line {marker} is missing"),
            Acked::File { id, sha256 } => {
                let row = cairn_projections::files::get(&conn, id).expect("query");
                assert!(row.is_some(), "acknowledged file {id} is missing");
                assert_eq!(sha256.len(), 64, "the answer named its content's SHA-256");
                assert!(cairn.blobs().path_of(sha256).exists(), "the blob of {id} is missing");
            }
        }
    }
    drop(conn);
    cairn.close();
    replay_agrees(dir.path());
    println!("  {KILLS} kills: {logs} log lines and {files} files acknowledged, all in the log");
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
    assert_eq!(replay_agrees(dir.path()), head);
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

/// `replay --verify` on a closed data directory finds no difference; answers the head it replayed to.
fn replay_agrees(dir: &Path) -> i64 {
    let verify = cairn::replay::replay(dir, &cairn::replay::Mode::Verify, |_| {}).expect("replay --verify");
    assert!(
        verify.differences.is_empty(),
        "read tables differ from the log: {:?}",
        verify.differences
    );
    verify.head
}
