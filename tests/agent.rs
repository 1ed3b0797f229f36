//! `cairn agent` against a real `cairn serve`, both as a user runs them: a generated tree backed up, unchanged,
//! changed; restored at two moments byte for byte with modes and mtimes; a second client that holds the same
//! content; a server killed in the middle of a run; `--every`; Ctrl-C; names that cannot be taken.
#![allow(clippy::unwrap_used)] // a test that cannot proceed should panic where it stopped

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::cairn_bin;
use common::process::{raw_send, run, serve, serve_on, Running};
use serde_json::Value;

const ADMIN: &str = "agent-admin-token-0123456789";

/// What a file of a tree is: its content (a link: its target), its mode and its modification time.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Kept {
    link: bool,
    content: Vec<u8>,
    mode: u32,
    mtime_ns: i64,
}

/// Every file and link under `root` (directories only as the way to them), by path below it; `skip` left out.
fn snapshot(root: &Path, skip: &str) -> BTreeMap<String, Kept> {
    use std::os::unix::fs::MetadataExt;
    let mut found = BTreeMap::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            if rel == skip || rel.starts_with(&format!("{skip}/")) {
                continue;
            }
            let meta = std::fs::symlink_metadata(&p).unwrap();
            if meta.is_dir() {
                stack.push(p);
                continue;
            }
            let link = meta.file_type().is_symlink();
            let content = if link {
                std::fs::read_link(&p).unwrap().into_os_string().into_encoded_bytes()
            } else {
                std::fs::read(&p).unwrap()
            };
            found.insert(
                rel,
                Kept {
                    link,
                    content,
                    mode: meta.mode(),
                    mtime_ns: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
                },
            );
        }
    }
    found
}

/// Content no other file of the tests has.
fn content(i: usize, len: usize) -> Vec<u8> {
    let seed = format!("file {i} of the generated tree; ");
    seed.bytes().cycle().take(len.max(1) + i % 7).collect()
}

/// The tree the issue names: nested folders, 2,000+ files, empty files, a 50 MB file, names with spaces and
/// letters beyond ASCII, a symbolic link, modes and mtimes of every kind, and a `cache` folder to exclude.
fn generate(root: &Path) {
    use std::os::unix::fs::PermissionsExt;
    for d in 0..20 {
        for s in 0..5 {
            let dir = root.join(format!("dept {d}/sub-{s}"));
            std::fs::create_dir_all(&dir).unwrap();
            for f in 0..21 {
                let i = d * 1000 + s * 100 + f;
                let name = match f {
                    0 => "empty".to_owned(),
                    1 => format!("Résumé ü {i}.txt"),
                    2 => format!("名前 {i}.md"),
                    _ => format!("file {i}.dat"),
                };
                let path = dir.join(name);
                std::fs::write(
                    &path,
                    if f == 0 {
                        Vec::new()
                    } else {
                        content(i, 40 + (i * 37) % 3000)
                    },
                )
                .unwrap();
                let mode = [0o644, 0o600, 0o755, 0o640][i % 4];
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
                let when = filetime::FileTime::from_unix_time(
                    1_700_000_000 + i as i64 * 61,
                    (i as u32 * 7919) % 1_000_000_000,
                );
                filetime::set_file_mtime(&path, when).unwrap();
            }
        }
    }
    let big: Vec<u8> = (0..50_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(root.join("big.bin"), big).unwrap();
    std::os::unix::fs::symlink("dept 0/sub-0/file 3.dat", root.join("shortcut")).unwrap();
    std::fs::create_dir_all(root.join("cache/deep")).unwrap();
    for i in 0..30 {
        std::fs::write(root.join(format!("cache/deep/junk {i}")), content(90_000 + i, 100)).unwrap();
    }
}

/// Three fresh directories: the server's data, the agent's home (its configuration and state), the folder to back up.
fn directories() -> (tempfile::TempDir, tempfile::TempDir, tempfile::TempDir) {
    (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    )
}

/// A server on `data` and a registered agent configuration in `home`; the server, its address and the client id.
fn server_and_agent(data: &Path, home: &Path, name: &str) -> (Running, String, String) {
    let (child, _out, addr) = serve(data, &["--token", ADMIN, "--durability", "normal"]);
    let server = Running(child);
    let id = register(&addr, home, name);
    (server, addr, id)
}

fn register(addr: &str, home: &Path, name: &str) -> String {
    let config = home.join("cairn-agent.toml");
    let url = format!("http://{addr}");
    let (code, out, err) = run(&[
        "agent",
        "register",
        "--url",
        &url,
        "--admin-token",
        ADMIN,
        "--name",
        name,
        "--config",
        config.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let text = std::fs::read_to_string(&config).unwrap();
    let id = text
        .lines()
        .find(|l| l.starts_with("client_id"))
        .unwrap()
        .split('"')
        .nth(1)
        .unwrap()
        .to_owned();
    id
}

/// `cairn agent run` with the configuration in `home`; exit code, stdout, stderr.
fn agent(home: &Path, args: &[&str]) -> (i32, String, String) {
    let config = home.join("cairn-agent.toml");
    let mut all = vec!["agent", "run", "--config", config.to_str().unwrap()];
    all.extend_from_slice(args);
    run(&all)
}

/// The summary line's figures by name (`new` → 5).
fn figures(out: &str) -> BTreeMap<String, u64> {
    let line = out
        .lines()
        .rev()
        .find(|l| l.contains("files scanned"))
        .unwrap_or_else(|| panic!("no summary: {out}"));
    line.split(": ")
        .nth(1)
        .unwrap()
        .split(", ")
        .filter_map(|part| {
            let (name, n) = part.rsplit_once(' ')?;
            Some((name.to_owned(), n.parse().ok()?))
        })
        .collect()
}

fn get(addr: &str, path: &str) -> Value {
    raw_send(addr, "GET", path, ADMIN, b"")
}

fn count(addr: &str, event_type: &str) -> u64 {
    get(addr, &format!("/api/events?type={event_type}&limit=1"))["total"]
        .as_u64()
        .unwrap()
}

/// The client's files on the server by path: checksum, size, mtime, mode.
fn server_files(addr: &str, client: &str) -> BTreeMap<String, (String, u64, String, u64)> {
    let mut files = BTreeMap::new();
    for page in 1.. {
        let data = get(addr, &format!("/api/clients/{client}/files?per_page=500&page={page}"));
        let items = data["items"].as_array().unwrap().clone();
        for f in &items {
            files.insert(
                f["original_path"].as_str().unwrap().to_owned(),
                (
                    f["checksum"].as_str().unwrap().to_owned(),
                    f["size"].as_u64().unwrap(),
                    f["mtime"].as_str().unwrap_or_default().to_owned(),
                    f["mode"].as_u64().unwrap_or_default(),
                ),
            );
        }
        if items.len() < 500 {
            break;
        }
    }
    files
}

fn rfc3339(ns: i64) -> String {
    chrono::DateTime::from_timestamp(ns.div_euclid(1_000_000_000), ns.rem_euclid(1_000_000_000) as u32)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

fn sha(bytes: &[u8]) -> String {
    hex::encode(<sha2::Sha256 as sha2::Digest>::digest(bytes))
}

/// `cairn restore` of `client` at `at` (or now) into a fresh `to`; the tree it restored for `root`.
fn restore(addr: &str, client: &str, at: Option<&str>, to: &Path, root: &Path) -> BTreeMap<String, Kept> {
    let url = format!("http://{addr}");
    let mut args = vec![
        "restore",
        "--url",
        &url,
        "--token",
        ADMIN,
        "--client",
        client,
        "--to",
        to.to_str().unwrap(),
    ];
    if let Some(at) = at {
        args.extend_from_slice(&["--at", at]);
    }
    let (code, out, err) = run(&args);
    assert_eq!(code, 0, "{out}{err}");
    snapshot(&to.join(root.strip_prefix("/").unwrap()), "cache")
}

#[test]
fn the_agent_stores_a_tree_sends_nothing_when_nothing_changed_moves_only_changes_and_restores_both_moments() {
    let (data, home, work) = directories();
    let root = std::fs::canonicalize(work.path()).unwrap().join("tree");
    generate(&root);
    let first_tree = snapshot(&root, "cache");
    assert!(first_tree.len() > 2000, "{}", first_tree.len());
    let (server, addr, id) = server_and_agent(data.path(), home.path(), "workstation");
    let dir = root.to_str().unwrap();

    // First run: exactly the tree, names, paths, checksums, mtimes, modes.
    let (code, out, err) = agent(home.path(), &[dir, "--exclude", "cache"]);
    assert_eq!(code, 0, "{out}{err}");
    let first = figures(&out);
    assert_eq!(
        (first["new"], first["failed"], first["files scanned"]),
        (first_tree.len() as u64, 0, first_tree.len() as u64),
        "{out}"
    );
    let stored = server_files(&addr, &id);
    let expected: BTreeMap<String, (String, u64, String, u64)> = first_tree
        .iter()
        .map(|(rel, k)| {
            (
                format!("{dir}/{rel}"),
                (
                    sha(&k.content),
                    k.content.len() as u64,
                    rfc3339(k.mtime_ns),
                    u64::from(k.mode),
                ),
            )
        })
        .collect();
    assert_eq!(stored, expected, "the server holds exactly the tree");
    let runs = get(&addr, &format!("/api/clients/{id}/runs"));
    let first_end = runs["items"][0]["finished_position"].as_i64().unwrap().to_string();
    assert_eq!(runs["items"][0]["status"], "ok");

    // Second run, nothing changed: no content byte, no transfer.
    let transfers = count(&addr, "TransferStarted");
    let (code, out, err) = agent(home.path(), &[dir, "--exclude", "cache"]);
    assert_eq!(code, 0, "{out}{err}");
    let second = figures(&out);
    assert_eq!(
        (
            second["bytes sent"],
            second["unchanged"],
            second["new"],
            second["changed"]
        ),
        (0, first_tree.len() as u64, 0, 0),
        "{out}"
    );
    assert_eq!(
        count(&addr, "TransferStarted"),
        transfers,
        "the unchanged run recorded no transfer"
    );

    // Change 10 files, delete 5, add 5: exactly those move.
    let paths: Vec<&String> = first_tree.keys().filter(|p| p.ends_with(".dat")).collect();
    for (n, p) in paths.iter().take(10).enumerate() {
        std::fs::write(root.join(p), content(50_000 + n, 500)).unwrap();
    }
    for p in paths.iter().skip(10).take(5) {
        std::fs::remove_file(root.join(p)).unwrap();
    }
    for n in 0..5 {
        std::fs::write(root.join(format!("dept 3/new file {n}.txt")), content(60_000 + n, 321)).unwrap();
    }
    let (stored_before, deleted_before, transfers) = (
        count(&addr, "FileStored"),
        count(&addr, "FileDeleted"),
        count(&addr, "TransferStarted"),
    );
    let (code, out, err) = agent(home.path(), &[dir, "--exclude", "cache"]);
    assert_eq!(code, 0, "{out}{err}");
    let third = figures(&out);
    assert_eq!(
        (third["changed"], third["deleted"], third["new"], third["failed"]),
        (10, 5, 5, 0),
        "{out}"
    );
    assert_eq!(count(&addr, "FileStored") - stored_before, 15);
    assert_eq!(
        count(&addr, "FileDeleted") - deleted_before,
        15,
        "5 deleted and the 10 changed files' older versions"
    );
    assert_eq!(count(&addr, "TransferStarted") - transfers, 15);
    let third_tree = snapshot(&root, "cache");

    // Restores at the first run's end and now, byte for byte with modes and mtimes.
    let out_dir = tempfile::tempdir().unwrap();
    assert_eq!(
        restore(&addr, &id, Some(&first_end), &out_dir.path().join("then"), &root),
        first_tree
    );
    assert_eq!(
        restore(&addr, &id, None, &out_dir.path().join("now"), &root),
        third_tree
    );

    assert!(server.stop().success());
    let (code, _, err) = run(&["replay", "--verify", "--data", data.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn a_second_client_with_the_same_content_cannot_claim_it_by_hash_and_uploads_it() {
    let (data, home_a, home_b, work) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let shared = content(7, 200_000);
    for who in ["a", "b"] {
        std::fs::create_dir_all(work.path().join(who)).unwrap();
        std::fs::write(work.path().join(who).join("report.pdf"), &shared).unwrap();
    }
    let (server, addr, a) = server_and_agent(data.path(), home_a.path(), "alpha");
    let b = register(&addr, home_b.path(), "bravo");
    let (code, out, err) = agent(home_a.path(), &[work.path().join("a").to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");

    // Bravo's token and the hash alone do not record alpha's content for bravo.
    let config = std::fs::read_to_string(home_b.path().join("cairn-agent.toml")).unwrap();
    let token = config
        .lines()
        .find(|l| l.starts_with("token"))
        .unwrap()
        .split('"')
        .nth(1)
        .unwrap()
        .to_owned();
    let claim = serde_json::json!({ "name": "report.pdf", "sha256": sha(&shared), "size": shared.len() });
    let refused = raw_send(
        &addr,
        "POST",
        &format!("/api/clients/{b}/files/known"),
        &token,
        claim.to_string().as_bytes(),
    );
    assert_eq!(refused, Value::Null, "no file recorded");
    assert_eq!(server_files(&addr, &b).len(), 0);
    // Its agent uploads the bytes.
    let (code, out, err) = agent(home_b.path(), &[work.path().join("b").to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(figures(&out)["bytes sent"], shared.len() as u64, "{out}");
    assert_eq!(server_files(&addr, &b).len(), 1);
    let _ = a;
    assert!(server.stop().success());
}

/// A free port on loopback, for a server restarted where its agent expects it.
fn free_port() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

/// Polls `until` every 20 ms for at most 30 s.
fn wait_for(what: &str, mut until: impl FnMut() -> bool) {
    let started = Instant::now();
    while !until() {
        assert!(started.elapsed() < Duration::from_secs(30), "waited 30 s for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_server_killed_in_the_middle_of_a_run_and_restarted_leaves_the_run_finished_and_no_torn_file() {
    let (data, home, work) = directories();
    let root = std::fs::canonicalize(work.path()).unwrap();
    for i in 0..400 {
        std::fs::write(root.join(format!("part {i:03}")), content(i, 300_000)).unwrap();
    }
    let listen = free_port();
    let (child, _out, addr) = serve_on(data.path(), &listen, &["--token", ADMIN, "--durability", "full"]);
    let mut server = Running(child);
    let id = register(&addr, home.path(), "laptop");
    let config = home.path().join("cairn-agent.toml");
    let mut agent = agent_in_background(&config, &["--concurrency", "2"], &root);
    wait_for("a few files stored", || count(&addr, "FileStored") >= 10);
    server.0.kill().unwrap();
    server.0.wait().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let (child, _out, addr) = serve_on(data.path(), &listen, &["--token", ADMIN, "--durability", "full"]);
    let server = Running(child);

    let mut out = String::new();
    agent.0.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    let mut err = String::new();
    agent.0.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    let status = agent.0.wait().unwrap();
    assert!(status.code().is_some_and(|c| c == 0 || c == 1), "{status}: {out}{err}");
    let runs = get(&addr, &format!("/api/clients/{id}/runs"));
    let outcome = runs["items"][0]["status"].as_str().unwrap().to_owned();
    assert!(
        outcome == "ok" || outcome == "partial",
        "the run resumed and finished: {outcome} {out}{err}"
    );
    let restarted = get(&addr, "/api/events?type=ServerStarted")["events"][1]["position"]
        .as_i64()
        .unwrap();
    assert!(
        runs["items"][0]["finished_position"].as_i64().unwrap() > restarted,
        "the run went on after the restart: {runs}"
    );
    // Whatever was stored is whole: every file on the server is its file's bytes.
    let files = server_files(&addr, &id);
    assert!(!files.is_empty());
    for (path, (checksum, size, _, _)) in &files {
        let local = std::fs::read(path).unwrap();
        assert_eq!((sha(&local), local.len() as u64), (checksum.clone(), *size), "{path}");
    }
    // A second run completes what the first could not; then the server has the whole folder.
    let (code, out2, err2) = agent_cmd(&config, root.to_str().unwrap());
    assert_eq!(code, 0, "{out2}{err2}");
    assert_eq!(server_files(&addr, &id).len(), 400);
    assert!(server.stop().success());
    let (code, _, err) = run(&["replay", "--verify", "--data", data.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
}

/// `cairn agent run` in the background with the configuration in `config` and `flags` before the folder; its
/// output piped; killed if the test ends first.
fn agent_in_background(config: &Path, flags: &[&str], dir: &Path) -> Running {
    let child = cairn_bin()
        .args(["agent", "run"])
        .args(flags)
        .arg("--config")
        .arg(config)
        .arg(dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    Running(child)
}

fn agent_cmd(config: &Path, dir: &str) -> (i32, String, String) {
    run(&["agent", "run", "--config", config.to_str().unwrap(), dir])
}

fn sigint(child: &std::process::Child) {
    assert!(std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
}

#[test]
fn every_runs_again_after_its_interval_and_ctrl_c_between_runs_ends_it_cleanly() {
    let (data, home, work) = directories();
    std::fs::write(work.path().join("notes.txt"), b"notes").unwrap();
    let (server, addr, id) = server_and_agent(data.path(), home.path(), "desk");
    let config = home.path().join("cairn-agent.toml");
    let mut agent = agent_in_background(&config, &["--every", "1s"], work.path());
    let mut lines = std::io::BufReader::new(agent.0.stdout.take().unwrap()).lines();
    let mut summaries = Vec::new();
    while summaries.len() < 2 {
        let line = lines.next().expect("the agent keeps running").unwrap();
        if line.contains("files scanned") {
            summaries.push(line);
        }
    }
    sigint(&agent.0);
    let status = agent.0.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(0),
        "stopped between runs, after two good ones: {summaries:?}"
    );
    assert!(summaries[1].contains("unchanged 1"), "{summaries:?}");
    let runs = get(&addr, &format!("/api/clients/{id}/runs"));
    assert!(runs["total"].as_u64().unwrap() >= 2);
    assert!(
        runs["items"].as_array().unwrap().iter().all(|r| r["status"] == "ok"),
        "{runs}"
    );
    assert!(server.stop().success());
}

#[test]
fn ctrl_c_in_the_middle_of_a_run_records_it_as_partial() {
    let (data, home, work) = directories();
    for i in 0..400 {
        std::fs::write(work.path().join(format!("f{i:03}")), content(i, 100_000)).unwrap();
    }
    let (server, addr, id) = server_and_agent(data.path(), home.path(), "desk");
    let config = home.path().join("cairn-agent.toml");
    let mut agent = agent_in_background(&config, &["--concurrency", "1"], work.path());
    wait_for("a few files stored", || count(&addr, "FileStored") >= 5);
    // A second run on the same state while this one goes is refused: both would send every change.
    let (code, _, err) = agent_cmd(&config, work.path().to_str().unwrap());
    assert_eq!(code, 1);
    assert!(err.contains("another cairn agent run"), "{err}");
    sigint(&agent.0);
    let mut text = String::new();
    agent.0.stdout.take().unwrap().read_to_string(&mut text).unwrap();
    let mut err = String::new();
    agent.0.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    let status = agent.0.wait().unwrap();
    assert_eq!(status.code(), Some(1), "{text}{err}");
    assert!(text.contains("partial"), "{text}");
    let run = get(&addr, &format!("/api/clients/{id}/runs"))["items"][0].clone();
    assert_eq!(run["status"], "partial");
    assert!(run["errors"][0].as_str().unwrap().starts_with("interrupted"), "{run}");
    assert!(run["new"].as_u64().unwrap() < 400);
    assert!(server.stop().success());
}

#[test]
fn names_that_cannot_be_taken_are_reported_and_bad_usage_is_refused() {
    use std::os::unix::ffi::OsStrExt;
    let (data, home, work) = directories();
    std::fs::write(work.path().join("fine.txt"), b"fine").unwrap();
    let bad: PathBuf = work.path().join(std::ffi::OsStr::from_bytes(b"caf\xe9.txt"));
    std::fs::write(&bad, b"latin-1 name").unwrap();
    std::fs::write(work.path().join("line\nbreak.txt"), b"a newline in its name").unwrap();
    let (server, addr, id) = server_and_agent(data.path(), home.path(), "old-box");
    let dir = work.path().to_str().unwrap();

    let (code, out, err) = agent(home.path(), &[dir]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("not valid UTF-8; skipped"), "{err}");
    assert!(err.contains("control character"), "{err}");
    assert_eq!(figures(&out)["failed"], 2, "{out}");
    assert_eq!(
        server_files(&addr, &id).len(),
        1,
        "the good file is stored, the others are not mangled into it"
    );
    assert_eq!(
        get(&addr, &format!("/api/clients/{id}/runs"))["items"][0]["status"],
        "partial"
    );

    // A folder that comes back empty though it held files (an unmounted disk reads so): nothing deleted.
    std::fs::remove_file(work.path().join("fine.txt")).unwrap();
    std::fs::remove_file(&bad).unwrap();
    std::fs::remove_file(work.path().join("line\nbreak.txt")).unwrap();
    let (code, out, err) = agent(home.path(), &[dir]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("unmounted?"), "{err}");
    assert_eq!(count(&addr, "FileDeleted"), 0, "nothing deleted on the server");
    assert_eq!(server_files(&addr, &id).len(), 1);

    // Usage: no folder (2), a folder that is not there, a wrong token, no configuration.
    assert_eq!(agent(home.path(), &[]).0, 2);
    let (code, _, err) = agent(home.path(), &["/no/such/folder"]);
    assert_eq!(code, 1);
    assert!(err.contains("/no/such/folder"), "{err}");
    let url = format!("http://{addr}");
    let elsewhere = home.path().join("elsewhere.toml");
    let (code, _, err) = run(&[
        "agent",
        "run",
        "--config",
        elsewhere.to_str().unwrap(),
        "--url",
        &url,
        "--token",
        "wrong-token-0123456789",
        "--client",
        &id,
        dir,
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("401"), "{err}");
    let (code, _, err) = run(&["agent", "run", "--config", "/no/such/cairn-agent.toml", dir]);
    assert_eq!(code, 1);
    assert!(err.contains("cairn agent register"), "{err}");
    let (code, _, err) = run(&[
        "agent",
        "register",
        "--url",
        &url,
        "--admin-token",
        ADMIN,
        "--name",
        "again",
        "--config",
        home.path().join("cairn-agent.toml").to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "an existing registration is not replaced");
    assert!(err.contains("exists"), "{err}");
    assert!(server.stop().success());
}

#[test]
fn a_run_whose_agent_was_killed_is_recorded_as_failed_by_the_next_run() {
    let (data, home, work) = directories();
    for i in 0..300 {
        std::fs::write(work.path().join(format!("f{i:03}")), content(i, 100_000)).unwrap();
    }
    let (server, addr, id) = server_and_agent(data.path(), home.path(), "desk");
    let config = home.path().join("cairn-agent.toml");
    let mut agent = agent_in_background(&config, &["--concurrency", "1"], work.path());
    wait_for("a few files stored", || count(&addr, "FileStored") >= 5);
    agent.0.kill().unwrap();
    agent.0.wait().unwrap();

    let (code, out, err) = agent_cmd(&config, work.path().to_str().unwrap());
    assert_eq!(code, 0, "{out}{err}");
    let runs = get(&addr, &format!("/api/clients/{id}/runs"));
    assert_eq!(runs["total"], 2, "{runs}");
    let (newer, older) = (&runs["items"][0], &runs["items"][1]);
    assert_eq!(newer["status"], "ok");
    assert_eq!(older["status"], "failed", "{older}");
    assert!(older["errors"][0].as_str().unwrap().starts_with("abandoned"), "{older}");
    assert_eq!(server_files(&addr, &id).len(), 300);
    assert!(server.stop().success());
}
