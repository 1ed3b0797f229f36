//! The command line as a user runs it: exit codes, one-line errors, and what each command prints.
#![allow(clippy::unwrap_used)] // a test that cannot proceed should panic where it stopped

mod common;

use common::process::{address_in, raw_get, raw_send, run, serve, sigterm};
use common::{cairn_bin, spawn};

/// A data directory with a few events, closed so the CLI can open it.
fn closed_data(events: usize) -> tempfile::TempDir {
    let t = spawn();
    let a = t.register("alpha");
    for i in 0..events.saturating_sub(1) {
        t.cairn
            .execute_blocking(
                cairn::commands::log::RecordLog {
                    level: "info".into(),
                    message: format!("line {i}"),
                    source: "agent".into(),
                    client_id: Some(a),
                    file_id: None,
                },
                common::admin(),
            )
            .unwrap();
    }
    let common::TestData { dir, cairn } = t;
    cairn.close();
    dir
}

#[test]
fn verify_passes_on_an_intact_log() {
    let dir = closed_data(10);
    let (code, out, _) = run(&["verify", "--data", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(out.starts_with("ok: 10 events verified; head 10"), "{out}");
}

#[test]
fn changing_any_byte_of_a_stored_event_makes_verify_exit_1_naming_that_position() {
    // Each column, changed by one character (or one unit) at position 5 of 10.
    let tamperings = [
        ("data", "UPDATE events SET data = replace(data, 'line', 'lime') WHERE position = 5"),
        ("metadata", "UPDATE events SET metadata = replace(metadata, 'admin', 'admiN') WHERE position = 5"),
        ("stream", "UPDATE events SET stream = 'loh' WHERE position = 5"),
        ("type", "UPDATE events SET type = 'LogRecordeD' WHERE position = 5"),
        ("version", "UPDATE events SET version = version + 1000 WHERE position = 5"),
        ("schema", "UPDATE events SET schema = 2 WHERE position = 5"),
        ("recorded_at", "UPDATE events SET recorded_at = replace(recorded_at, 'Z', 'z') WHERE position = 5"),
        ("id", "UPDATE events SET id = '00000000-0000-0000-0000-000000000005' WHERE position = 5"),
        ("crc", "UPDATE events SET crc = CASE WHEN crc & 1 THEN crc - 1 ELSE crc + 1 END WHERE position = 5"),
        ("hash", "UPDATE events SET hash = substr(hash, 1, 63) || CASE substr(hash, 64) WHEN '0' THEN '1' ELSE '0' END WHERE position = 5"),
        ("position", "UPDATE events SET position = 5000 WHERE position = 5"),
        ("deleted", "DELETE FROM events WHERE position = 5"),
    ];
    for (what, sql) in tamperings {
        let dir = closed_data(10);
        let db = dir.path().join("cairn.db");
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch(sql).unwrap_or_else(|e| panic!("{what}: {e}"));
        drop(conn);
        let (code, _, err) = run(&["verify", "--data", dir.path().to_str().unwrap()]);
        assert_eq!(code, 1, "{what}: {err}");
        assert!(err.contains("chain broken at position 5:"), "{what}: {err}");
        assert_eq!(err.lines().count(), 1, "{what}: one line: {err}");
    }
}

#[test]
fn a_change_to_the_last_event_is_found_too() {
    let dir = closed_data(3);
    let conn = rusqlite::Connection::open(dir.path().join("cairn.db")).unwrap();
    conn.execute_batch("UPDATE events SET data = replace(data, 'line 1', 'line 9') WHERE position = 3")
        .unwrap();
    drop(conn);
    let (code, _, err) = run(&["verify", "--data", dir.path().to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("position 3"), "{err}");
}

#[test]
fn every_failure_is_one_line_on_stderr_and_a_non_zero_exit() {
    let empty = tempfile::tempdir().unwrap();
    let path = empty.path().to_str().unwrap();
    for args in [
        vec!["verify", "--data", path],
        vec!["events", "--data", path],
        vec!["replay", "--data", path],
        vec!["backup", "/tmp/never-written.db", "--data", path],
        vec!["checkpoint", "--data", path],
        vec!["prove", "--position", "1", "--data", path],
        vec!["verify", "--proof", "/tmp/no-such-proof.json"],
    ] {
        let (code, _, err) = run(&args);
        assert_ne!(code, 0, "{args:?}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("cairn: "), "{args:?}: {err}");
    }
    let (code, _, err) = run(&["replay", "--until", "12"]);
    assert_eq!(code, 2, "--until needs --into: {err}");
    let (code, _, err) = run(&["events", "--type", "NoSuchEvent", "--data", path]);
    assert_eq!((code, err.contains("unknown event type")), (1, true), "{err}");
    let (code, out, _) = run(&["--help"]);
    assert_eq!(code, 0);
    for command in ["replay", "verify", "events", "backup", "bench", "checkpoint", "prove"] {
        assert!(out.contains(command), "--help lists {command}");
    }
}

#[test]
fn events_prints_the_trail_filtered_and_as_json() {
    let dir = closed_data(5);
    let data = dir.path().to_str().unwrap();
    let (code, out, _) = run(&["events", "--data", data]);
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 5);
    assert!(out.lines().next().unwrap().contains("ClientRegistered"));
    let (_, out, _) = run(&[
        "events",
        "--data",
        data,
        "--type",
        "LogRecorded",
        "--from",
        "3",
        "--limit",
        "2",
        "--json",
    ]);
    let lines: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["position"], 3);
    assert_eq!(lines[0]["data"]["message"], "line 1");
    assert_eq!(lines[0]["metadata"]["actor"], "admin:test");
    let (_, out, _) = run(&["events", "--data", data, "--stream", "log"]);
    assert_eq!(out.lines().count(), 4);
}

#[test]
fn backup_writes_a_snapshot_that_checks_out_and_refuses_to_overwrite() {
    let dir = closed_data(4);
    let data = dir.path().to_str().unwrap();
    let dest = dir.path().join("copy");
    let (code, out, err) = run(&["backup", dest.to_str().unwrap(), "--data", data]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("backed up") && out.contains("head 4"), "{out}");
    assert!(dest.join("snapshot.json").exists() && dest.join("cairn.db").exists());
    let (code, out, _) = run(&["verify", "--data", dest.to_str().unwrap()]);
    assert_eq!((code, out.contains("4 events verified")), (0, true), "{out}");
    let (code, out, err) = run(&["backup", "--verify", dest.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("chain intact") && out.contains("0 read-table differences"),
        "{out}"
    );
    let (code, _, err) = run(&["backup", dest.to_str().unwrap(), "--data", data]);
    assert_eq!((code, err.contains("already exists")), (1, true), "{err}");
}

#[test]
fn replay_and_its_verify_and_until_run_from_the_command_line() {
    let dir = closed_data(6);
    let data = dir.path().to_str().unwrap();
    let (code, out, err) = run(&["replay", "--data", data]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("rebuilt the read tables from 6 events"), "{out}");
    let (code, out, _) = run(&["replay", "--verify", "--data", data]);
    assert_eq!((code, out.starts_with("ok:")), (0, true), "{out}");
    let into = dir.path().join("then.db");
    let (code, out, err) = run(&[
        "replay",
        "--data",
        data,
        "--until",
        "2",
        "--into",
        into.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("as of position 2"), "{out}");
    let logs: i64 = rusqlite::Connection::open(&into)
        .unwrap()
        .query_row("SELECT count(*) FROM logs", [], |r| r.get(0))
        .unwrap();
    assert_eq!(logs, 1);

    rusqlite::Connection::open(dir.path().join("cairn.db"))
        .unwrap()
        .execute_batch("DELETE FROM logs WHERE id = 3")
        .unwrap();
    let (code, out, err) = run(&["replay", "--verify", "--data", data]);
    assert_eq!(code, 1);
    assert!(out.contains("logs 3: only in rebuilt"), "{out}");
    assert!(err.contains("1 difference(s)"), "{err}");
}

#[test]
fn bench_append_with_data_leaves_a_log_that_verifies_and_replays() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("bench");
    let (code, out, err) = run(&[
        "bench",
        "append",
        "--events",
        "200",
        "--producers",
        "4",
        "--durability",
        "normal",
        "--data",
        data.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("| normal | 4 | 200 |"), "{out}");
    assert!(out.contains("the tree's cost"), "{out}");
    let (code, out, _) = run(&["verify", "--data", data.to_str().unwrap()]);
    assert_eq!(
        (code, out.contains("600 events verified")),
        (0, true),
        "the three rounds (the default) append to one log: {out}"
    );
    let (code, _, err) = run(&["replay", "--verify", "--data", data.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn bench_proofs_reports_proof_latencies_beside_an_event_read_and_the_signing_rate() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("proofs");
    let (code, out, err) = run(&["bench", "proofs", "--events", "500", "--data", data.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    for row in [
        "| GET /api/events/{position} (the reference) |",
        "| GET /api/audit/proof/inclusion |",
        "| GET /api/audit/proof/consistency |",
        "| inclusion proof in process |",
    ] {
        assert!(out.contains(row), "{row}: {out}");
    }
    assert!(out.contains("checkpoints signed per second:"), "{out}");
    // The log it wrote is a cairn log, its tree whole.
    let (code, out, err) = run(&["verify", "--data", data.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Merkle tree root"), "{out}");
}

#[test]
fn bench_replay_reports_both_rates_and_leaves_a_replayable_log() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("bench");
    let (code, out, err) = run(&["bench", "replay", "--events", "3000", "--data", data.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.lines().last().unwrap().starts_with("| 3000 |"), "{out}");
    let (code, _, err) = run(&["replay", "--verify", "--data", data.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn bench_http_reports_http_beside_in_process_appends() {
    let (code, out, err) = run(&[
        "bench",
        "http",
        "--events",
        "400",
        "--producers",
        "4",
        "--durability",
        "normal",
    ]);
    assert_eq!(code, 0, "{err}");
    let figures: Vec<f64> = last_row(&out).iter().map(|f| f.parse().unwrap()).collect();
    assert_eq!(figures.len(), 4, "{out}");
    assert!(figures.iter().all(|f| *f > 0.0), "{out}");
}

#[test]
fn serve_starts_answers_and_stops_cleanly_on_sigterm() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let (mut child, mut out, addr) = serve(dir.path(), &["--durability", "normal"]);
    let mut second = String::new();
    out.read_line(&mut second).unwrap();
    let token = second.trim().rsplit("#token=").next().unwrap().to_owned();
    let stored = std::fs::read_to_string(dir.path().join("admin.token")).unwrap();
    assert_eq!(stored.trim(), token, "the printed URL carries the generated token");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("admin.token"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
    }
    let answer = raw_status(&addr, &token);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    sigterm(&child);
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    let (_, events, _) = run(&["events", "--data", dir.path().to_str().unwrap()]);
    let types: Vec<&str> = events.lines().map(|l| l.split_whitespace().nth(3).unwrap()).collect();
    assert_eq!(types, ["ServerStarted", "ServerStopped"]);
    let (code, _, _) = run(&["verify", "--data", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0);
}

#[test]
fn serve_with_metrics_public_answers_metrics_without_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, _out, addr) = serve(dir.path(), &["--metrics-public"]);

    let metrics = raw_get(&addr, "/metrics", "");
    let status = raw_get(&addr, "/api/status", "");

    sigterm(&child);
    assert!(child.wait().unwrap().success());
    assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
    assert!(metrics.contains("cairn_events_total"), "{metrics}");
    assert!(status.starts_with("HTTP/1.1 401"), "only /metrics is public: {status}");
}

#[test]
fn bench_live_delivers_every_event_to_every_subscriber() {
    let (code, out, err) = run(&[
        "bench",
        "live",
        "--producers",
        "5",
        "--rate",
        "40",
        "--seconds",
        "1",
        "--durability",
        "normal",
    ]);
    assert_eq!(code, 0, "{err}");
    let row = last_row(&out);
    assert_eq!(&row[..3], ["5", "40", "40"], "{out}");
    assert_eq!((row[6], row[7]), ("0", "0"), "nothing lost, nothing twice: {out}");
    assert!(row[3].parse::<f64>().unwrap() > 0.0, "a latency was measured: {out}");
}

#[test]
fn bench_agent_times_the_agent_beside_restic_on_one_tree() {
    let (code, out, err) = run(&["bench", "agent", "--files", "200", "--mib", "8"]);
    assert_eq!(code, 0, "{out}{err}");
    let rows: Vec<Vec<&str>> = out
        .lines()
        .filter(|l| l.starts_with("| first") || l.starts_with("| unchanged") || l.starts_with("| 1%"))
        .map(|l| l.trim_matches('|').split('|').map(str::trim).collect())
        .collect();
    assert_eq!(rows.len(), 3, "{out}");
    let sent = |row: &[&str]| row[2].parse::<u64>().unwrap();
    assert!(sent(&rows[0]) >= 8 << 20, "the first run sends the tree: {out}");
    assert_eq!(sent(&rows[1]), 0, "the unchanged run sends nothing: {out}");
    assert!(
        sent(&rows[2]) > 0 && sent(&rows[2]) < sent(&rows[0]) / 10,
        "1% changed sends little: {out}"
    );
    assert!(
        rows.iter().all(|r| r[3].parse::<f64>().unwrap() > 0.0),
        "restic ran each time: {out}"
    );
}

#[test]
fn bench_soak_runs_the_mix_and_loses_no_event() {
    let (code, out, err) = run(&["bench", "soak", "--seconds", "4", "--durability", "normal"]);
    assert_eq!(code, 0, "{err}");
    let row = last_row(&out);
    let count = |i: usize| row[i].parse::<u64>().unwrap();
    assert!(
        count(0) > 0 && count(1) > 0,
        "uploads and log lines went through: {out}"
    );
    assert!(count(2) > 0, "subscribers came and went: {out}");
    assert!(count(4) > 0, "an oversized message was closed with 1009: {out}");
    assert_eq!((count(5), count(6)), (0, 0), "nothing refused, nothing lost: {out}");
    assert_eq!(row[7].split('/').count(), 3, "RSS at start, middle and end: {out}");
}

#[test]
fn serve_with_demo_brings_up_a_fleet_of_45_and_still_stops_cleanly() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let mut child = cairn_bin()
        .args([
            "serve",
            "--demo",
            "--listen",
            "127.0.0.1:0",
            "--disk-alert-percent",
            "100",
            "--durability",
            "normal",
            "--token",
            "demo-admin-token-0123456789",
            "--data",
        ])
        .arg(dir.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    for _ in 0..3 {
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        lines.push(line);
    }
    assert!(lines[2].starts_with("demo: 45 simulated clients"), "{lines:?}");
    let addr = address_in(&lines[0]);
    let mut clients = 0;
    for _ in 0..150 {
        let answer = raw_status(&addr, "demo-admin-token-0123456789");
        let body: serde_json::Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).unwrap();
        clients = body["data"]["total_clients"].as_i64().unwrap();
        if clients == 45 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(clients, 45);
    sigterm(&child);
    assert!(
        child.wait().unwrap().success(),
        "SIGTERM stops the server and its fleet"
    );
    let (code, _, err) = run(&["verify", "--data", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
}

/// The cells of the last Markdown table row a bench printed.
fn last_row(out: &str) -> Vec<&str> {
    out.lines()
        .last()
        .unwrap_or_default()
        .trim_matches('|')
        .split('|')
        .map(str::trim)
        .collect()
}

/// `GET /api/status` over a plain socket; the whole HTTP answer.
fn raw_status(addr: &str, token: &str) -> String {
    raw_get(addr, "/api/status", &format!("authorization: Bearer {token}\r\n"))
}

#[test]
fn serve_with_alert_webhook_routes_every_kind_to_it_once_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let token = "alert-admin-token-0123456789";
    let args = ["--token", token, "--alert-webhook", "http://127.0.0.1:9/hook"];
    for _ in 0..2 {
        let (mut child, _out, addr) = serve(dir.path(), &args);
        let answer = raw_get(&addr, "/api/alerts", &format!("authorization: Bearer {token}\r\n"));
        sigterm(&child);
        assert!(child.wait().unwrap().success());
        let body: serde_json::Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).unwrap();
        let setup = &body["data"];
        assert_eq!(setup["targets"].as_array().unwrap().len(), 1, "{setup}");
        assert_eq!(setup["targets"][0]["address"], "http://127.0.0.1:9/hook");
        assert_eq!(setup["targets"][0]["kind"], "webhook");
        assert_eq!(setup["rules"].as_array().unwrap().len(), 1, "{setup}");
        assert_eq!(setup["rules"][0]["kinds"], setup["kinds"], "every kind");
    }
}

#[test]
fn serve_refuses_a_bad_alert_webhook_or_smtp_relay_before_it_listens() {
    for args in [
        &["--alert-webhook", "ftp://example.com/"][..],
        &["--smtp", "pigeon://loft"][..],
        &["--alert-email", "ops@example.com"][..],
        &["--smtp", "smtp://127.0.0.1:25", "--smtp-from", "not an address"][..],
        &["--disk-alert-percent", "0"][..],
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut all = vec![
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data",
            dir.path().to_str().unwrap(),
        ];
        all.extend_from_slice(args);
        let (code, out, err) = run(&all);
        assert_ne!(code, 0, "{args:?}: {out}");
        assert!(
            !out.contains("cairn serving"),
            "{args:?} must fail before serving: {out}"
        );
        assert!(!err.is_empty(), "{args:?} says why");
    }
}

/// Every file under `dir` (hidden ones too), by its path relative to it.
fn tree(dir: &std::path::Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut found = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                found.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    found
}

#[test]
fn restore_brings_back_a_clients_files_now_and_as_of_an_earlier_moment_and_never_overwrites_unasked() {
    let dir = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let token = "restore-admin-token-0123456789";
    let (mut child, _stdout, addr) = serve(dir.path(), &["--token", token]);
    let made = raw_send(&addr, "POST", "/api/clients", token, br#"{"name":"alpha"}"#);
    let (id, client_token) = (
        made["client"]["id"].as_str().unwrap().to_owned(),
        made["token"].as_str().unwrap().to_owned(),
    );
    let up = |name: &str, path: &str, content: &[u8]| {
        raw_send(
            &addr,
            "POST",
            &format!("/api/clients/{id}/files?name={name}&path={path}"),
            &client_token,
            content,
        )["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let old = up("plan.txt", "%2Fhome%2Fada%2Fplan.txt", b"the first plan");
    up(
        "photo.jpg",
        "C%3A%5CPictures%5Cphoto.jpg",
        &[0xff, 0xd8, 0xff, 0x00, 0x42],
    );
    let then = raw_send(&addr, "GET", "/api/status", token, b"")["head_position"]
        .as_i64()
        .unwrap();
    up("later.txt", "", b"after the moment");
    raw_send(&addr, "DELETE", &format!("/api/files/{old}"), token, b"");
    let url = format!("http://{addr}");
    let restore = |extra: &[&str], to: &std::path::Path, t: &str| {
        let mut a = vec!["restore", "--url", &url, "--token", t, "--to", to.to_str().unwrap()];
        a.extend_from_slice(extra);
        run(&a)
    };

    let now = out.path().join("now");
    let (code, stdout, stderr) = restore(&["--client", "alpha"], &now, token);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("restored 2 of 2 files"), "{stdout}");
    let expected: std::collections::BTreeMap<String, Vec<u8>> = [
        ("Pictures/photo.jpg".to_owned(), vec![0xff, 0xd8, 0xff, 0x00, 0x42]),
        ("later.txt".to_owned(), b"after the moment".to_vec()),
    ]
    .into_iter()
    .collect();
    assert_eq!(tree(&now), expected);

    // Again into the same place: refused, and nothing changed or left behind.
    std::fs::write(now.join("later.txt"), b"edited since").unwrap();
    let (code, _, stderr) = restore(&["--client", "alpha"], &now, token);
    assert_eq!(code, 1);
    assert!(stderr.contains("--overwrite"), "{stderr}");
    assert_eq!(tree(&now)["later.txt"], b"edited since");
    assert_eq!(tree(&now).len(), 2, "no temporary file left: {:?}", tree(&now).keys());
    let (code, _, stderr) = restore(&["--client", "alpha", "--overwrite"], &now, token);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(tree(&now)["later.txt"], b"after the moment");

    // As of the moment before the third upload, with the client's own token and its id: plan.txt was there, and
    // its content is kept for restores since its deletion.
    let before = out.path().join("before");
    let at = then.to_string();
    let (code, stdout, stderr) = restore(&["--client", &id, "--at", &at], &before, &client_token);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(tree(&before)["home/ada/plan.txt"], b"the first plan");
    assert_eq!(tree(&before).len(), 2);

    // A client token cannot look a client up by name, nor a wrong token archive anything.
    let (code, _, stderr) = restore(&["--client", "alpha"], &out.path().join("x"), &client_token);
    assert_eq!(code, 1);
    assert!(stderr.contains("needs the client's id"), "{stderr}");
    let (code, _, stderr) = restore(&["--client", &id], &out.path().join("y"), "wrong-token-0123456789");
    assert_eq!(code, 1);
    assert!(stderr.contains("refused"), "{stderr}");

    sigterm(&child);
    assert!(child.wait().unwrap().success());
}

/// The resident memory of process `pid` in KiB (`VmRSS`), or `None` once it has gone.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Chunk `n` (1 MiB) of generated file `file`: one pseudo-random block, stamped with the file and chunk so no
/// two chunks of the test's files are alike (blobs are content-addressed; equal files would share one).
fn chunk(block: &[u8], file: u64, n: u64) -> Vec<u8> {
    let mut c = block.to_vec();
    c[..8].copy_from_slice(&file.to_le_bytes());
    c[8..16].copy_from_slice(&n.to_le_bytes());
    c
}

#[test]
#[cfg(target_os = "linux")]
fn a_two_gib_archive_streams_through_the_server_and_restore_in_flat_memory() {
    use std::io::{Read, Write};
    const MIB: u64 = 1 << 20;
    const FILES: u64 = 4;
    const CHUNKS: u64 = 512; // 4 files of 512 MiB: 2 GiB
    let dir = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let token = "big-archive-admin-token-0123456789";
    let (mut child, _stdout, addr) = serve(dir.path(), &["--token", token]);
    let made = raw_send(&addr, "POST", "/api/clients", token, br#"{"name":"big"}"#);
    let id = made["client"]["id"].as_str().unwrap().to_owned();
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let block: Vec<u8> = (0..MIB)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect();
    for file in 0..FILES {
        let mut socket = std::net::TcpStream::connect(&addr).unwrap();
        write!(
            socket,
            "POST /api/clients/{id}/files?name=part-{file}.bin HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {token}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            CHUNKS * MIB
        )
        .unwrap();
        for n in 0..CHUNKS {
            socket.write_all(&chunk(&block, file, n)).unwrap();
        }
        let mut answer = String::new();
        socket.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    }
    let before = rss_kib(child.id()).unwrap();

    // The archive through `cairn restore`, both processes' memory sampled every 20 ms while it runs.
    let to = out.path().join("restored");
    let mut restore = cairn_bin()
        .args([
            "restore",
            "--url",
            &format!("http://{addr}"),
            "--token",
            token,
            "--client",
            "big",
            "--to",
        ])
        .arg(&to)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (mut server_peak, mut restore_peak, mut samples) = (before, 0, 0);
    let status = loop {
        if let Some(status) = restore.try_wait().unwrap() {
            break status;
        }
        server_peak = server_peak.max(rss_kib(child.id()).unwrap_or(0));
        restore_peak = restore_peak.max(rss_kib(restore.id()).unwrap_or(0));
        samples += 1;
        assert!(samples < 30_000, "the restore did not end within ten minutes");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let mut said = String::new();
    restore.stdout.take().unwrap().read_to_string(&mut said).unwrap();
    restore.stderr.take().unwrap().read_to_string(&mut said).unwrap();
    assert!(status.success(), "{said}");
    assert!(said.contains(&format!("restored {FILES} of {FILES} files")), "{said}");
    println!(
        "2 GiB archive: server RSS {} MiB before, {} MiB at most while streaming; restore at most {} MiB ({samples} samples)",
        before / 1024,
        server_peak / 1024,
        restore_peak / 1024
    );
    assert!(samples >= 10, "sampled while it ran: {samples}");
    assert!(
        server_peak < before + 64 * 1024,
        "the server grew from {before} to {server_peak} KiB"
    );
    assert!(restore_peak < 128 * 1024, "cairn restore reached {restore_peak} KiB");

    // What came back is what went in, chunk by chunk.
    for file in 0..FILES {
        let mut f = std::fs::File::open(to.join(format!("part-{file}.bin"))).unwrap();
        assert_eq!(f.metadata().unwrap().len(), CHUNKS * MIB);
        let mut got = vec![0; MIB as usize];
        for n in 0..CHUNKS {
            f.read_exact(&mut got).unwrap();
            assert!(got == chunk(&block, file, n), "part-{file}.bin differs in its MiB {n}");
        }
    }
    sigterm(&child);
    assert!(child.wait().unwrap().success());
    let (_, events, _) = run(&["events", "--data", dir.path().to_str().unwrap()]);
    assert!(
        !events.contains("ChainBroken"),
        "the chain checked during the uploads holds: {events}"
    );
    assert!(events.contains("ArchiveDownloaded"), "{events}");
}

/// Appends `lines` log lines to a closed data directory, and closes it again.
fn append_lines(dir: &tempfile::TempDir, lines: usize, text: &str) {
    let cairn = cairn::Cairn::open(dir.path(), cairn::Options::default()).unwrap();
    for i in 0..lines {
        cairn
            .execute_blocking(
                cairn::commands::log::RecordLog {
                    level: "info".into(),
                    message: format!("{text} {i}"),
                    source: "agent".into(),
                    client_id: None,
                    file_id: None,
                },
                common::admin(),
            )
            .unwrap();
    }
    cairn.close();
}

/// Signs a checkpoint of the data directory and saves it beside it; answers its path and the verifier key.
fn saved_checkpoint(dir: &tempfile::TempDir) -> (std::path::PathBuf, String) {
    let data = dir.path().to_str().unwrap();
    let (code, note, err) = run(&["checkpoint", "--data", data]);
    assert_eq!(code, 0, "{err}");
    let path = dir.path().join("saved-checkpoint.txt");
    std::fs::write(&path, &note).unwrap();
    let (code, key, err) = run(&["checkpoint", "--data", data, "--key"]);
    assert_eq!(code, 0, "{err}");
    (path, key.trim().to_owned())
}

#[test]
fn checkpoint_prove_and_verify_let_an_auditor_check_an_event_alone() {
    let dir = closed_data(12);
    let data = dir.path().to_str().unwrap();
    let (saved, key) = saved_checkpoint(&dir);
    let note = std::fs::read_to_string(&saved).unwrap();
    assert!(note.contains("\n12\n"), "{note}");
    assert!(key.starts_with("cairn/"), "{key}");
    cairn::checkpoint::Verifier::parse(&key).unwrap();
    let (code, out, err) = run(&["verify", "--data", data, "--checkpoint", saved.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("ok: the log (12 events) extends the checkpoint of 12 events"),
        "{out}"
    );

    // A proof of a log line checks offline with the key alone, its content included.
    let (code, proof, err) = run(&[
        "prove",
        "--data",
        data,
        "--position",
        "5",
        "--checkpoint",
        saved.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let file = dir.path().join("proof.json");
    std::fs::write(&file, &proof).unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let (code, out, err) = run(&[
        "verify",
        "--data",
        elsewhere.path().to_str().unwrap(),
        "--proof",
        file.to_str().unwrap(),
        "--key",
        &key,
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("position 5 is in the tree of 12 events") && out.contains("its content hashes"),
        "{out}"
    );
    assert_eq!(
        std::fs::read_dir(elsewhere.path()).unwrap().count(),
        0,
        "nothing written where it checked"
    );
    // A registration holds a token's hash: its proof shows the hash's place, not the content.
    let (code, first, _) = run(&["prove", "--data", data, "--position", "1"]);
    assert_eq!(code, 0);
    let first_file = dir.path().join("first.json");
    std::fs::write(&first_file, &first).unwrap();
    let (code, out, _) = run(&["verify", "--proof", first_file.to_str().unwrap(), "--key", &key]);
    assert_eq!(code, 0);
    assert!(out.contains("only its hash was checked"), "{out}");
    assert!(!first.contains("token_hash"), "no token's hash in a proof");

    // An altered proof, or another log's key, fails naming why.
    let mut altered: serde_json::Value = serde_json::from_str(&proof).unwrap();
    let canonical = altered["canonical"].as_str().unwrap().to_owned();
    let mut bytes = base64_decode(&canonical);
    let at = bytes.len() - 40;
    bytes[at] ^= 1;
    altered["canonical"] = base64_encode(&bytes).into();
    std::fs::write(&file, altered.to_string()).unwrap();
    let (code, _, err) = run(&["verify", "--proof", file.to_str().unwrap(), "--key", &key]);
    assert_eq!(code, 1);
    assert!(err.contains("the event at position 5 was altered"), "{err}");
    let mut moved: serde_json::Value = serde_json::from_str(&proof).unwrap();
    moved["hashes"][0] = moved["hashes"][1].clone();
    std::fs::write(&file, moved.to_string()).unwrap();
    let (code, _, err) = run(&["verify", "--proof", file.to_str().unwrap(), "--key", &key]);
    assert_eq!(code, 1);
    assert!(err.contains("position 5 is not in the checkpoint's tree"), "{err}");
    let other = closed_data(2);
    let (_, other_key) = saved_checkpoint(&other);
    std::fs::write(&file, &proof).unwrap();
    let (code, _, err) = run(&["verify", "--proof", file.to_str().unwrap(), "--key", &other_key]);
    assert_eq!(code, 1);
    assert!(err.contains("no signature by"), "{err}");

    // The log grows: it still extends the saved checkpoint, and proves old events in it.
    append_lines(&dir, 5, "later");
    let (code, out, err) = run(&["verify", "--data", data, "--checkpoint", saved.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("the log (17 events) extends the checkpoint of 12"),
        "{out}"
    );
    let (code, out, _) = run(&["verify", "--data", data]);
    assert_eq!(code, 0);
    assert!(out.contains("consistent with the last checkpoint signed"), "{out}");
    let (code, _, err) = run(&[
        "prove",
        "--data",
        data,
        "--position",
        "13",
        "--checkpoint",
        saved.to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    assert!(
        err.contains("position 13 is not in the checkpoint's tree of 12 events"),
        "{err}"
    );
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

fn base64_encode(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

#[test]
fn a_tampered_truncated_or_rewritten_log_fails_verify_checkpoint_naming_where() {
    let tampered = closed_data(12);
    let (saved, _) = saved_checkpoint(&tampered);
    let sql = |dir: &tempfile::TempDir, sql: &str| {
        rusqlite::Connection::open(dir.path().join("cairn.db"))
            .unwrap()
            .execute_batch(sql)
            .unwrap()
    };
    let verify = |dir: &tempfile::TempDir| {
        run(&[
            "verify",
            "--data",
            dir.path().to_str().unwrap(),
            "--checkpoint",
            saved.to_str().unwrap(),
        ])
    };
    sql(
        &tampered,
        "UPDATE events SET data = replace(data, 'line 5', 'line X') WHERE position = 7",
    );
    let (code, _, err) = verify(&tampered);
    assert_eq!(code, 1);
    assert!(err.contains("chain is broken at position 7"), "{err}");
    // A proof made from the tampered log fails too: the event no longer hashes to its leaf.
    let data = tampered.path().to_str().unwrap();
    let (code, proof, err) = run(&[
        "prove",
        "--data",
        data,
        "--position",
        "7",
        "--checkpoint",
        saved.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "the log is not consistent with the checkpoint: {proof}");
    assert!(err.contains("chain is broken at position 7"), "{err}");
    let (code, proof, err) = run(&["prove", "--data", data, "--position", "7"]);
    assert_eq!(code, 0, "{err}");
    let file = tampered.path().join("tampered-proof.json");
    std::fs::write(&file, proof).unwrap();
    let (code, _, err) = run(&["verify", "--proof", file.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("the event at position 7 was altered"), "{err}");

    let truncated = closed_data(12);
    std::fs::copy(tampered.path().join("log.key"), truncated.path().join("log.key")).unwrap();
    sql(&truncated, "DELETE FROM events WHERE position > 8");
    let (code, _, err) = verify(&truncated);
    assert_eq!(code, 1);
    assert!(
        err.contains("the log holds 8 events, the checkpoint 12: the log was cut short after position 8"),
        "{err}"
    );

    // Cut short, then grown again with another history: the chain verifies, the tree does not.
    let rewritten = closed_data(12);
    let (saved_here, _) = saved_checkpoint(&rewritten);
    sql(&rewritten, "DELETE FROM events WHERE position > 8");
    let (code, _, err) = run(&["replay", "--data", rewritten.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    append_lines(&rewritten, 6, "another history");
    let data = rewritten.path().to_str().unwrap();
    let (code, _, err) = run(&["verify", "--data", data, "--checkpoint", saved_here.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        err.contains("the log's first 12 events give the root") && err.contains("was rewritten"),
        "{err}"
    );
    // Plain verify holds the log against the checkpoint signed last, and `cairn checkpoint` refuses to sign.
    let (code, _, err) = run(&["verify", "--data", data]);
    assert_eq!(code, 1);
    assert!(
        err.contains("not consistent with the last checkpoint signed (12 events)"),
        "{err}"
    );
    let (code, _, err) = run(&["checkpoint", "--data", data]);
    assert_eq!(code, 1);
    assert!(err.contains("does not extend the checkpoint of 12"), "{err}");
}

#[test]
fn a_damaged_tree_is_found_by_verify_and_replay_and_rebuilt_by_replay() {
    let dir = closed_data(600);
    let data = dir.path().to_str().unwrap();
    // The node over leaves 256..512 (level 8, index 1), changed behind cairn's back.
    rusqlite::Connection::open(dir.path().join("cairn.db"))
        .unwrap()
        .execute(
            "UPDATE merkle_nodes SET hash = zeroblob(32) WHERE id = (8 << 48) + 1",
            [],
        )
        .unwrap();
    let (code, _, err) = run(&["verify", "--data", data]);
    assert_eq!(code, 1);
    assert!(
        err.contains("the Merkle tree differs from the log at position 512"),
        "{err}"
    );
    let (code, out, _) = run(&["replay", "--verify", "--data", data]);
    assert_eq!(code, 1);
    assert!(
        out.contains(&format!("merkle_nodes {}: hash", (8u64 << 48) + 1)),
        "{out}"
    );
    let (code, _, err) = run(&["replay", "--data", data]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = run(&["verify", "--data", data]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Merkle tree root"), "{out}");
}
