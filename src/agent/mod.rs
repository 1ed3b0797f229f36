//! `cairn agent`: backs up folders to a cairn server, on the API client ([`crate::client`]) alone.
//!
//! A run walks its folders ([`scan`]), compares each file with what the local state ([`state`]) says it was at
//! the last run, and sends only what changed: an unchanged file (same size, mtime, inode and mode) is not read;
//! a changed or new one is hashed first, then recorded through `files/known` when this client stored that
//! content before, else uploaded with its declared SHA-256 (so a file that changes while it is read is refused
//! by the server, re-read once, and otherwise reported: never stored torn). A file gone since the last run is
//! deleted on the server with the run's id. The run itself is two events (`BackupRunStarted`,
//! `BackupRunFinished`) and every upload, record and deletion names it. Network errors, 5xx, 507, 409 and 429
//! are retried with backoff; other refusals are the file's failure, and the run still finishes saying which.

pub mod config;
pub mod scan;
pub mod state;

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::StreamExt;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::client::{Answer, Client, Method};
use state::{Known, LocalState};

/// A file up to this size is read once into memory, hashed and sent from there; a larger one is read twice
/// (hashed, then streamed), so memory stays flat whatever the size.
const IN_MEMORY: u64 = 8 << 20;

/// Attempts per request, and the first pause between them (doubling to [`MAX_PAUSE`]).
const ATTEMPTS: u32 = 10;
const FIRST_PAUSE: Duration = Duration::from_millis(250);
const MAX_PAUSE: Duration = Duration::from_secs(8);

/// What a run is asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    /// The folders, absolute.
    pub folders: Vec<PathBuf>,
    pub exclude: Vec<String>,
    pub concurrency: usize,
    pub dry_run: bool,
}

/// What a run found and did: the counts its `BackupRunFinished` carries.
pub use cairn_events::catalogue::RunCounts as Counts;

/// How a run ended.
#[derive(Debug, Clone)]
pub struct Summary {
    pub counts: Counts,
    /// One line per file that could not be backed up.
    pub failures: Vec<String>,
    /// Special files left out, one line each.
    pub skipped: Vec<String>,
    pub outcome: &'static str,
    pub run_id: Option<String>,
    pub duration: Duration,
    /// For a dry run: what a run would do, one line per file (`new PATH`, `changed PATH`, `deleted PATH`).
    pub plan: Vec<String>,
    pub interrupted: bool,
}

impl Summary {
    /// A run that could not be made at all (for `--every`, which goes on to the next).
    pub fn failed() -> Self {
        Self {
            counts: Counts {
                failed: 1,
                ..Counts::default()
            },
            failures: Vec::new(),
            skipped: Vec::new(),
            outcome: "failed",
            run_id: None,
            duration: Duration::ZERO,
            plan: Vec::new(),
            interrupted: false,
        }
    }

    /// The one line a run prints, whatever the terminal.
    pub fn line(&self) -> String {
        let c = &self.counts;
        format!(
            "{}: files scanned {}, new {}, changed {}, unchanged {}, deleted {}, failed {}, bytes sent {}, bytes skipped {}, duration {:.1} s",
            match (&self.run_id, self.outcome) {
                (Some(id), outcome) => format!("run {id} {outcome}"),
                (None, "dry run") => "dry run".to_owned(),
                (None, outcome) => format!("run {outcome}"),
            },
            c.scanned,
            c.new,
            c.changed,
            c.unchanged,
            c.deleted,
            c.failed,
            c.bytes_sent,
            c.bytes_skipped,
            self.duration.as_secs_f64()
        )
    }
}

/// Why a request did not succeed after its retries.
#[derive(Debug)]
enum Refused {
    /// The server answered with this status and error code (and message).
    Status(u16, String, String),
    /// The server could not be reached.
    Network(String),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Status(s, code, message) => write!(f, "the server answered {s} {code}: {message}"),
            Self::Network(e) => write!(f, "the server could not be reached: {e}"),
        }
    }
}

/// Worth another attempt: the server's trouble (5xx, 507 a full disk), a conflict that may clear (409, except a
/// run that already finished, which will not), too many requests (429).
fn retried(status: u16, code: &str) -> bool {
    status >= 500 || (status == 409 && code != "RUN_FINISHED") || status == 429
}

/// Sends the request `make` builds, again after a pause while the answer is one worth retrying.
async fn call(make: impl Fn() -> reqwest::RequestBuilder, server: &Client) -> Result<Answer, Refused> {
    let mut pause = FIRST_PAUSE;
    let mut last = Refused::Network("no attempt".into());
    for attempt in 1..=ATTEMPTS {
        match server.send(make()).await {
            Ok(a) if (200..300).contains(&a.status) => return Ok(a),
            Ok(a) => {
                let body = a.json();
                last = Refused::Status(
                    a.status,
                    body["error"]["code"].as_str().unwrap_or("").to_owned(),
                    body["error"]["message"].as_str().unwrap_or("").to_owned(),
                );
                if let Refused::Status(status, code, _) = &last {
                    if !retried(*status, code) {
                        return Err(last);
                    }
                }
            }
            Err(e) => last = Refused::Network(format!("{e:#}")),
        }
        if attempt < ATTEMPTS {
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(MAX_PAUSE);
        }
    }
    Err(last)
}

/// `POST`s a JSON body (with an idempotency key when given) through [`call`]'s retries.
async fn post_json(server: &Client, path: &str, body: &str, key: Option<&str>) -> Result<Answer, Refused> {
    let made = || {
        let req = server
            .request(Method::POST, path)
            .header("content-type", "application/json")
            .body(body.to_owned());
        match key {
            Some(k) => req.header("idempotency-key", k),
            None => req,
        }
    };
    call(made, server).await
}

fn query(pairs: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(pairs).unwrap_or_default()
}

/// A file's content as read and hashed, its metadata as it stood while it was read.
struct Read_ {
    sha256: String,
    /// The content, when small enough to keep (or a link's target).
    bytes: Option<Vec<u8>>,
    found: scan::Found,
}

/// Reads and hashes a file (a link: its target), checking that it did not change while it was read.
fn read(found: &scan::Found) -> Result<Read_, String> {
    let fresh = |path: &Path| std::fs::symlink_metadata(path).map_err(|e| format!("cannot read: {e}"));
    if found.symlink {
        let target = std::fs::read_link(&found.full).map_err(|e| format!("cannot read the link: {e}"))?;
        let bytes = target.as_os_str().as_encoded_bytes().to_vec();
        return Ok(Read_ {
            sha256: hex::encode(Sha256::digest(&bytes)),
            found: found.clone(),
            bytes: Some(bytes),
        });
    }
    let before = fresh(&found.full)?;
    let mut file = std::fs::File::open(&found.full).map_err(|e| format!("cannot open: {e}"))?;
    let mut sha = Sha256::new();
    let keep = before.len() <= IN_MEMORY;
    let mut kept = Vec::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(|e| format!("cannot read: {e}"))?;
        if n == 0 {
            break;
        }
        sha.update(&buf[..n]);
        if keep {
            kept.extend_from_slice(&buf[..n]);
        }
        size += n as u64;
    }
    let after = fresh(&found.full)?;
    let moved = |m: &std::fs::Metadata| (m.len(), m.modified().ok());
    if moved(&before) != moved(&after) || size != after.len() {
        return Err("it changed while it was read".into());
    }
    let mut now = found.clone();
    let (mode, inode, mtime_ns) = scan::stat(&after);
    now.size = size;
    now.mtime_ns = mtime_ns;
    now.inode = inode;
    now.mode = (mode & 0o7777) | 0o100000;
    Ok(Read_ {
        sha256: hex::encode(sha.finalize()),
        bytes: keep.then_some(kept),
        found: now,
    })
}

/// One run's shared context.
struct Run<'a> {
    server: &'a Client,
    client: &'a str,
    run_id: String,
    state: Mutex<LocalState>,
}

/// What backing up one file came to.
enum Done {
    Sent(u64),
    Recorded(u64),
}

impl Run<'_> {
    fn state<T>(&self, f: impl FnOnce(&LocalState) -> anyhow::Result<T>) -> Result<T, String> {
        let state = self
            .state
            .lock()
            .map_err(|_| "the local state is poisoned".to_owned())?;
        f(&state).map_err(|e| format!("the local state: {e:#}"))
    }

    /// Backs up one new or changed file: read, hash, record or upload, then delete its older version.
    async fn back_up(&self, found: &scan::Found, old: Option<&Known>) -> Result<Done, String> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let f = found.clone();
            let read = tokio::task::spawn_blocking(move || read(&f))
                .await
                .map_err(|e| format!("the reader stopped: {e}"))?;
            let read = match read {
                Ok(r) => r,
                Err(e) if attempt == 1 && e.contains("changed") => continue,
                Err(e) if e.contains("changed") => return Err(format!("{e}, twice; not stored")),
                Err(e) => return Err(e),
            };
            match self.store(&read, old).await {
                Ok((done, file_id)) => {
                    if file_id.is_empty() {
                        return Err("the server answered without the file's id".into());
                    }
                    let known = Known {
                        size: read.found.size,
                        mtime_ns: read.found.mtime_ns,
                        inode: read.found.inode,
                        mode: read.found.mode,
                        sha256: read.sha256.clone(),
                        file_id,
                    };
                    // The new version first, with the older one as a deletion to make: a run stopped in between
                    // makes it at its next start, so no stale version stays beside the new one.
                    let older = old.map(|o| o.file_id.as_str());
                    self.state(|s| s.replace(&found.path, &known, older))?;
                    if let Some(older) = older.filter(|id| *id != known.file_id) {
                        self.delete(older)
                            .await
                            .map_err(|e| format!("stored; {e} (it is retried at the next run)"))?;
                        self.state(|s| s.deleted(older))?;
                    }
                    return Ok(done);
                }
                Err(Refused::Status(400, code, _)) if code == "CHECKSUM_MISMATCH" && attempt == 1 => continue,
                Err(Refused::Status(400, code, _)) if code == "CHECKSUM_MISMATCH" => {
                    return Err("it changed while it was sent, twice; not stored".into())
                }
                Err(e) => return Err(e.to_string()),
            }
        }
    }

    /// Records the file from content this client stored before, or uploads it; answers what it cost and the
    /// new file's id.
    async fn store(&self, read: &Read_, old: Option<&Known>) -> Result<(Done, String), Refused> {
        let f = &read.found;
        let mtime = scan::rfc3339(f.mtime_ns);
        let mode = f.mode.to_string();
        // One key for this file's record, on every attempt: a retry after an answer that was lost finds the file
        // the first attempt stored instead of storing it twice.
        let key = uuid::Uuid::now_v7().to_string();
        let seen_before = old.is_some_and(|o| o.sha256 == read.sha256)
            || self.state(|s| s.has_content(&read.sha256)).unwrap_or(false);
        if seen_before {
            let body = json!({
                "name": f.name, "path": f.path, "sha256": read.sha256, "size": f.size,
                "mtime": mtime, "mode": f.mode,
            })
            .to_string();
            let path = format!(
                "/api/clients/{}/files/known?{}",
                self.client,
                query(&[("run", &self.run_id)])
            );
            match post_json(self.server, &path, &body, Some(&key)).await {
                Ok(a) => return Ok((Done::Recorded(f.size), id_of(&a))),
                Err(Refused::Status(404, code, _)) if code == "CONTENT_UNKNOWN" => {}
                Err(e) => return Err(e),
            }
        }
        let path = format!(
            "/api/clients/{}/files?{}",
            self.client,
            query(&[
                ("name", &f.name),
                ("path", &f.path),
                ("mtime", &mtime),
                ("mode", &mode),
                ("run", &self.run_id)
            ])
        );
        let made = || {
            let req = self
                .server
                .request(Method::POST, &path)
                .header("x-content-sha256", &read.sha256)
                .header("idempotency-key", &key)
                .header("content-type", "application/octet-stream")
                .header(
                    "content-length",
                    read.bytes.as_ref().map_or(f.size, |b| b.len() as u64).to_string(),
                );
            match &read.bytes {
                Some(b) => req.body(b.clone()),
                None => req.body(file_body(&f.full, f.size)),
            }
        };
        let a = call(made, self.server).await?;
        Ok((Done::Sent(f.size), id_of(&a)))
    }

    /// Deletes a file on the server as this run's; one already gone is not an error.
    async fn delete(&self, file_id: &str) -> Result<(), String> {
        let path = format!("/api/files/{file_id}?{}", query(&[("run", &self.run_id)]));
        match call(|| self.server.request(Method::DELETE, &path), self.server).await {
            Ok(_) => Ok(()),
            Err(Refused::Status(404, code, _)) if code == "FILE_NOT_FOUND" => Ok(()),
            Err(e) => Err(format!("its older version could not be deleted: {e}")),
        }
    }
}

fn id_of(a: &Answer) -> String {
    a.data()["id"].as_str().unwrap_or_default().to_owned()
}

/// A large file's content, streamed from the disk (at most `size` bytes: a file that grew is cut there, and the
/// declared checksum tells the server it is not what was hashed).
fn file_body(path: &Path, size: u64) -> reqwest::Body {
    let path = path.to_owned();
    let stream = futures_util::stream::once(async move { tokio::fs::File::open(path).await })
        .map(move |opened| match opened {
            Ok(file) => {
                use tokio::io::AsyncReadExt;
                tokio_util::io::ReaderStream::with_capacity(file.take(size), 256 * 1024).left_stream()
            }
            Err(e) => futures_util::stream::once(async move { Err(e) }).right_stream(),
        })
        .flatten();
    reqwest::Body::wrap_stream(stream)
}

/// Runs one backup of `options.folders` for client `client` of `server`, with the local state at `state_path`.
/// `stop` ends it early (Ctrl-C): the files under way finish, the rest are left, and the run ends `partial`.
pub async fn run(
    server: &Client,
    client: &str,
    state_path: &Path,
    options: &Options,
    stop: Arc<AtomicBool>,
    bar: &indicatif::ProgressBar,
) -> anyhow::Result<Summary> {
    let started = Instant::now();
    let exclude = scan::excludes(&options.exclude)?;
    let folders = options.folders.clone();
    let found = tokio::task::spawn_blocking(move || scan::walk(&folders, &exclude)).await?;
    let local = LocalState::open(state_path, client)?;
    let before: HashMap<String, Known> = local.all()?.into_iter().collect();
    let mut counts = Counts {
        scanned: found.files.len() as u64,
        ..Counts::default()
    };
    let mut failures = found.problems.clone();
    counts.failed = failures.len() as u64;
    let mut work = Vec::new();
    let present: HashSet<&str> = found.files.iter().map(|f| f.path.as_str()).collect();
    for f in &found.files {
        match before.get(&f.path) {
            Some(k) if k.size == f.size && k.mtime_ns == f.mtime_ns && k.inode == f.inode && k.mode == f.mode => {
                counts.unchanged += 1;
                counts.bytes_skipped += f.size;
            }
            old => work.push((f.clone(), old.cloned())),
        }
    }
    // What the state knows that the walk did not find, in the folders of this run: deleted since, unless it lies
    // below a folder that could not be read, or in a folder that came back empty though it held files (an
    // unmounted disk reads so): then nothing there is deleted on the server, and the run says why.
    let mut emptied = Vec::new();
    for folder in &options.folders {
        let held = before.keys().any(|p| scan::within(p, folder));
        let found_any = found.files.iter().any(|f| scan::within(&f.path, folder));
        if held && !found_any {
            emptied.push(folder.clone());
            failures.push(format!(
                "{}: no file found where the last run found some (unmounted?); nothing deleted on the server",
                folder.display()
            ));
            counts.failed += 1;
        }
    }
    let gone: Vec<(String, Known)> = before
        .iter()
        .filter(|(p, _)| {
            !present.contains(p.as_str())
                && options.folders.iter().any(|d| scan::within(p, d))
                && !found.unreadable.iter().chain(&emptied).any(|d| scan::within(p, d))
        })
        .map(|(p, k)| (p.clone(), k.clone()))
        .collect();
    if options.dry_run {
        let mut plan: Vec<String> = work
            .iter()
            .map(|(f, old)| format!("{} {}", if old.is_some() { "changed" } else { "new" }, f.path))
            .chain(gone.iter().map(|(p, _)| format!("deleted {p}")))
            .collect();
        plan.sort();
        counts.new = work.iter().filter(|(_, o)| o.is_none()).count() as u64;
        counts.changed = work.len() as u64 - counts.new;
        counts.deleted = gone.len() as u64;
        return Ok(Summary {
            counts,
            failures,
            skipped: found.skipped,
            outcome: "dry run",
            run_id: None,
            duration: started.elapsed(),
            plan,
            interrupted: false,
        });
    }

    // Interrupted while walking: no run begins (there is nothing of it to record).
    anyhow::ensure!(
        !stop.load(Ordering::Relaxed),
        "interrupted before the run began; nothing was sent"
    );
    // A run this state began and never ended (the agent was killed) is recorded as failed before a new one begins.
    if let Some(abandoned) = local.current_run()? {
        let end = json!({
            "outcome": "failed",
            "errors": ["abandoned: the agent stopped before this run ended (found by its next run)"],
        })
        .to_string();
        let path = format!("/api/clients/{client}/runs/{abandoned}/finish");
        match post_json(server, &path, &end, None).await {
            Ok(_) | Err(Refused::Status(404 | 409, _, _)) => local.set_current_run(None)?,
            Err(e) => tracing::warn!(run = %abandoned, error = %e, "could not close an abandoned run"),
        }
    }
    let host = sysinfo::System::host_name().unwrap_or_else(|_| "unknown".into());
    let folders: Vec<String> = options
        .folders
        .iter()
        .map(|f| f.to_string_lossy().into_owned())
        .collect();
    let body = json!({ "folders": folders, "agent_version": env!("CARGO_PKG_VERSION"), "host": host }).to_string();
    let path = format!("/api/clients/{client}/runs");
    let key = uuid::Uuid::now_v7().to_string();
    let begun = post_json(server, &path, &body, Some(&key))
        .await
        .map_err(|e| anyhow::anyhow!("the run could not begin: {e}"))?;
    let run_id = id_of(&begun);
    anyhow::ensure!(!run_id.is_empty(), "the server answered the run's start without an id");
    local.set_current_run(Some(&run_id))?;
    let pending = local.pending_deletions()?;
    bar.set_length(work.iter().map(|(f, _)| f.size).sum());
    let run = Run {
        server,
        client,
        run_id: run_id.clone(),
        state: Mutex::new(local),
    };

    // Older versions an earlier run stored a replacement for but could not delete.
    for (file_id, path) in &pending {
        match run.delete(file_id).await {
            Ok(()) => run.state(|s| s.deleted(file_id)).map_err(|e| anyhow::anyhow!(e))?,
            Err(e) => {
                counts.failed += 1;
                failures.push(format!("{path} (an older version): {e}"));
            }
        }
    }
    let results: Vec<(String, bool, Result<Done, String>)> = futures_util::stream::iter(work.iter())
        .map(|(f, old)| {
            let run = &run;
            let stop = &stop;
            async move {
                if stop.load(Ordering::Relaxed) {
                    return None;
                }
                bar.set_message(f.path.clone());
                let done = run.back_up(f, old.as_ref()).await;
                bar.inc(f.size);
                Some((f.path.clone(), old.is_some(), done))
            }
        })
        .buffer_unordered(options.concurrency.max(1))
        .filter_map(|r| async move { r })
        .collect()
        .await;
    let attempted = results.len();
    for (path, changed, done) in results {
        match done {
            Ok(d) => {
                if changed {
                    counts.changed += 1;
                } else {
                    counts.new += 1;
                }
                match d {
                    Done::Sent(n) => counts.bytes_sent += n,
                    Done::Recorded(n) => counts.bytes_skipped += n,
                }
            }
            Err(e) => {
                counts.failed += 1;
                failures.push(format!("{path}: {e}"));
            }
        }
    }
    let interrupted = stop.load(Ordering::Relaxed);
    if !interrupted {
        for (path, known) in &gone {
            match run.delete(&known.file_id).await {
                Ok(()) => {
                    counts.deleted += 1;
                    run.state(|s| s.forget(path)).map_err(|e| anyhow::anyhow!(e))?;
                }
                Err(e) => {
                    counts.failed += 1;
                    failures.push(format!("{path} (deleted here): {e}"));
                }
            }
        }
    }
    let mut errors = failures.clone();
    if interrupted {
        errors.insert(
            0,
            format!("interrupted after {attempted} of {} changed or new files", work.len()),
        );
    }
    let succeeded = counts.new + counts.changed + counts.deleted + counts.unchanged;
    let outcome = if counts.failed == 0 && !interrupted {
        "ok"
    } else if succeeded == 0 {
        "failed"
    } else {
        "partial"
    };
    let mut end = serde_json::to_value(&counts)?;
    end["outcome"] = json!(outcome);
    end["errors"] = json!(errors.iter().take(20).collect::<Vec<_>>());
    let end = end.to_string();
    let path = format!("/api/clients/{client}/runs/{run_id}/finish");
    match post_json(server, &path, &end, None).await {
        Ok(_) => run.state(|s| s.set_current_run(None)).map_err(|e| anyhow::anyhow!(e))?,
        // An earlier attempt ended it; its answer was lost on the way.
        Err(Refused::Status(409, code, _)) if code == "RUN_FINISHED" => {
            run.state(|s| s.set_current_run(None)).map_err(|e| anyhow::anyhow!(e))?
        }
        Err(e) => {
            return Err(anyhow::anyhow!("the run's end could not be recorded: {e}"))
                .context("the files above were backed up; the next run records its own end")
        }
    }
    Ok(Summary {
        counts,
        failures,
        skipped: found.skipped,
        outcome,
        run_id: Some(run_id),
        duration: started.elapsed(),
        plan: Vec::new(),
        interrupted,
    })
}

/// Registers a client on `server` (with the admin token); answers its configuration.
pub async fn register(server: &Client, name: &str) -> anyhow::Result<config::Config> {
    let answer = server
        .call(Method::POST, "/api/clients", json!({ "name": name }))
        .await
        .context("the server could not be reached")?;
    if answer.status != 201 {
        let body: Value = answer.json();
        anyhow::bail!(
            "the server refused the registration ({} {}): {}",
            answer.status,
            body["error"]["code"].as_str().unwrap_or(""),
            body["error"]["message"].as_str().unwrap_or("no reason given")
        );
    }
    let data = answer.data();
    Ok(config::Config {
        url: server.base().to_owned(),
        client_id: data["client"]["id"].as_str().unwrap_or_default().to_owned(),
        token: data["token"].as_str().unwrap_or_default().to_owned(),
        name: name.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(path: &Path) -> scan::Found {
        let folder = path.parent().unwrap().to_owned();
        let scan = scan::walk(&[folder], &scan::excludes(&[]).unwrap());
        scan.files.into_iter().find(|f| f.full == path).unwrap()
    }

    #[test]
    fn a_steady_file_is_read_once_with_its_checksum_and_a_link_as_its_target() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("steady.txt");
        std::fs::write(&path, b"steady").unwrap();
        let read = read(&found(&path)).unwrap();
        assert_eq!(read.sha256, hex::encode(Sha256::digest(b"steady")));
        assert_eq!(read.bytes.as_deref(), Some(&b"steady"[..]));
        #[cfg(unix)]
        {
            let link = dir.path().join("link");
            std::os::unix::fs::symlink("steady.txt", &link).unwrap();
            let read = super::read(&found(&link)).unwrap();
            assert_eq!(
                read.bytes.as_deref(),
                Some(&b"steady.txt"[..]),
                "a link's content is its target"
            );
        }
    }

    #[test]
    fn a_file_that_grows_while_it_is_read_is_refused_rather_than_hashed_torn() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("grows.log");
        std::fs::write(&path, vec![7u8; 48 << 20]).unwrap();
        let f = found(&path);
        let stop = Arc::new(AtomicBool::new(false));
        let writer = {
            let (stop, path) = (stop.clone(), path.clone());
            std::thread::spawn(move || {
                let mut file = std::fs::OpenOptions::new().append(true).open(path).unwrap();
                for _ in 0..20_000 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    file.write_all(b"another line\n").unwrap();
                    std::thread::sleep(Duration::from_micros(200));
                }
            })
        };
        std::thread::sleep(Duration::from_millis(5));
        let outcome = read(&f);
        stop.store(true, Ordering::Relaxed);
        writer.join().unwrap();
        let err = outcome.err().expect("a growing file is not taken as read");
        assert!(err.contains("changed while it was read"), "{err}");
    }
}
