//! `cairn restore`: a client's files as they were at a moment, downloaded from a server as one archive and
//! unpacked into a directory. Every file is written beside its place under a temporary name while its SHA-256 is
//! computed, and moved into place only once the archive's manifest has confirmed it, so an interrupted or
//! refused restore leaves nothing half-written under a real name. Existing files are never overwritten unless
//! `--overwrite` says so. Each file gets back the mode and modification time the client recorded; symbolic
//! links are made last, so that no file is ever written through one.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use sha2::{Digest, Sha256};

use crate::services::archive::{Entry, Manifest, MANIFEST};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    server: super::ServerArg,
    /// The client, by name (with the admin token) or id
    #[arg(long, value_name = "NAME|ID")]
    client: String,
    /// The moment: a position of the log, or an RFC 3339 time (default: now)
    #[arg(long, value_name = "POS|TIME")]
    at: Option<String>,
    /// The directory to restore into (created if missing)
    #[arg(long, value_name = "DIR")]
    to: PathBuf,
    /// Replace files that already exist there
    #[arg(long)]
    overwrite: bool,
}

/// A file unpacked under its temporary name (or a link to make), waiting for the manifest's word.
struct Pending {
    temporary: PathBuf,
    target: PathBuf,
    sha256: String,
    /// A symbolic link's target: made at the end, never followed.
    link: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    crate::tls::install();
    let token = args.server.token()?;
    let base = args.server.url.trim_end_matches('/').to_owned();
    anyhow::ensure!(
        base.starts_with("http://") || base.starts_with("https://"),
        "--url must be http://HOST:PORT or https://…, not {:?}",
        args.server.url
    );
    std::fs::create_dir_all(&args.to).with_context(|| format!("cannot create {}", args.to.display()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let http = reqwest::Client::builder().build()?;
    let client = runtime.block_on(client_id(&http, &base, &token, &args.client))?;
    let mut url = format!("{base}/api/clients/{client}/archive?format=tar");
    if let Some(at) = &args.at {
        url.push_str(&format!(
            "&at={}",
            percent_encoding::utf8_percent_encode(at, percent_encoding::NON_ALPHANUMERIC)
        ));
    }
    let response = runtime.block_on(http.get(&url).bearer_auth(&token).send())?;
    if !response.status().is_success() {
        let status = response.status();
        let body: serde_json::Value = runtime.block_on(response.json()).unwrap_or_default();
        anyhow::bail!(
            "the server refused the archive ({status}): {}",
            body["error"]["message"].as_str().unwrap_or("no reason given")
        );
    }
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
    };
    let (total, position) = (
        header("x-cairn-bytes").unwrap_or(0),
        header("x-cairn-position").unwrap_or(0),
    );
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {bytes}/{total_bytes} {bar:30} {bytes_per_sec} {eta} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    // The body's chunks cross to this thread over a bounded channel: memory stays flat whatever the size.
    let (tx, rx) = std::sync::mpsc::sync_channel::<std::io::Result<bytes::Bytes>>(16);
    let download = runtime.spawn(async move {
        let mut response = response;
        loop {
            let next = response.chunk().await.map_err(std::io::Error::other);
            let end = matches!(next, Ok(None));
            let item = next.map(|c| c.unwrap_or_default());
            let failed = item.is_err();
            if tx.send(item).is_err() || end || failed {
                return;
            }
        }
    });
    let reader = ChannelReader {
        rx,
        chunk: bytes::Bytes::new(),
        bar: bar.clone(),
    };
    let outcome = unpack(reader, &args.to, args.overwrite, &bar);
    runtime.block_on(download).ok();
    bar.finish_and_clear();
    let (pending, manifest) = outcome?;
    finish(pending, manifest, &args.to, position)
}

/// The client's id: given, or found by its name (which needs the admin token).
async fn client_id(http: &reqwest::Client, base: &str, token: &str, client: &str) -> anyhow::Result<String> {
    if uuid::Uuid::parse_str(client).is_ok() {
        return Ok(client.to_owned());
    }
    let url = format!(
        "{base}/api/clients?per_page=500&q={}",
        percent_encoding::utf8_percent_encode(client, percent_encoding::NON_ALPHANUMERIC)
    );
    let response = http.get(url).bearer_auth(token).send().await?;
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    anyhow::ensure!(
        status.is_success(),
        "cannot look up the client {client:?} ({status}): {}; a client's own token needs the client's id",
        body["error"]["message"].as_str().unwrap_or("no reason given")
    );
    body["data"]["items"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["name"].as_str().is_some_and(|n| n.eq_ignore_ascii_case(client)))
        .and_then(|c| c["id"].as_str().map(str::to_owned))
        .with_context(|| format!("no client is named {client:?}"))
}

struct ChannelReader {
    rx: std::sync::mpsc::Receiver<std::io::Result<bytes::Bytes>>,
    chunk: bytes::Bytes,
    bar: indicatif::ProgressBar,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.chunk.is_empty() {
            match self.rx.recv() {
                Ok(Ok(chunk)) if chunk.is_empty() => return Ok(0),
                Ok(Ok(chunk)) => self.chunk = chunk,
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk[..n]);
        let _ = self.chunk.split_to(n);
        self.bar.inc(n as u64);
        Ok(n)
    }
}

/// A path of the archive as a path under `dir`, refusing any that would land outside it, also through a
/// symbolic link already on the way.
fn target(dir: &Path, path: &Path) -> anyhow::Result<PathBuf> {
    anyhow::ensure!(
        path.components().all(|c| matches!(c, Component::Normal(_))),
        "the archive holds a path that would leave the directory: {}",
        path.display()
    );
    let mut on_the_way = dir.to_owned();
    if let Some(parent) = path.parent() {
        for part in parent.components() {
            on_the_way.push(part);
            let through_a_link = std::fs::symlink_metadata(&on_the_way).is_ok_and(|m| m.file_type().is_symlink());
            anyhow::ensure!(
                !through_a_link,
                "{} is a symbolic link; nothing is restored through one",
                on_the_way.display()
            );
        }
    }
    Ok(dir.join(path))
}

/// Unpacks every file under a temporary name beside its place; answers them and the manifest. On a failure every
/// temporary file goes.
fn unpack(
    reader: impl Read,
    dir: &Path,
    overwrite: bool,
    bar: &indicatif::ProgressBar,
) -> anyhow::Result<(Vec<Pending>, Manifest)> {
    let mut pending: Vec<Pending> = Vec::new();
    let result = (|| {
        let mut manifest = None;
        let mut archive = tar::Archive::new(reader);
        for entry in archive.entries().context("the archive cannot be read")? {
            let mut entry = entry.context("the archive is cut short or damaged")?;
            let path = entry.path()?.into_owned();
            if path == Path::new(MANIFEST) {
                let mut text = Vec::new();
                entry.read_to_end(&mut text)?;
                manifest = Some(serde_json::from_slice::<Manifest>(&text).context("the manifest is not readable")?);
                continue;
            }
            let target = target(dir, &path)?;
            anyhow::ensure!(
                overwrite || std::fs::symlink_metadata(&target).is_err(),
                "{} exists; pass --overwrite to replace it (nothing was restored)",
                target.display()
            );
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent)?;
            }
            let name = target
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let temporary = target.with_file_name(format!(".{name}.cairn-restore"));
            bar.set_message(path.display().to_string());
            if entry.header().entry_type() == tar::EntryType::Symlink {
                let link = entry
                    .link_name()?
                    .context("the archive holds a symbolic link without a target")?
                    .into_owned();
                pending.push(Pending {
                    temporary,
                    target,
                    sha256: hex::encode(Sha256::digest(link.as_os_str().as_encoded_bytes())),
                    link: Some(link),
                });
                continue;
            }
            // A temporary name left by an earlier restore (or a link planted there) goes first: never written through.
            if std::fs::symlink_metadata(&temporary).is_ok() {
                std::fs::remove_file(&temporary).with_context(|| format!("cannot replace {}", temporary.display()))?;
            }
            let mut out = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&temporary)
                .with_context(|| format!("cannot write {}", temporary.display()))?;
            let mut sha = Sha256::new();
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = entry.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                sha.update(&buf[..n]);
                out.write_all(&buf[..n])?;
            }
            out.sync_all()?;
            pending.push(Pending {
                temporary,
                target,
                sha256: hex::encode(sha.finalize()),
                link: None,
            });
        }
        manifest.context("the archive ended without its manifest (cut short?)")
    })();
    match result {
        Ok(manifest) => Ok((pending, manifest)),
        Err(e) => {
            for p in pending.iter().filter(|p| p.link.is_none()) {
                let _ = std::fs::remove_file(&p.temporary);
            }
            Err(e)
        }
    }
}

#[cfg(unix)]
fn make_link(link: &Path, at: &Path) -> anyhow::Result<()> {
    std::os::unix::fs::symlink(link, at).with_context(|| format!("cannot make the link {}", at.display()))
}

#[cfg(not(unix))]
fn make_link(_: &Path, at: &Path) -> anyhow::Result<()> {
    anyhow::bail!("{} is a symbolic link, which this system cannot make", at.display())
}

/// Gives a restored file (or link) the mode and modification time its client recorded, when it did.
fn put_back(path: &Path, entry: &Entry, link: bool) -> anyhow::Result<()> {
    #[cfg(unix)]
    if !link && entry.mode.is_some() {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(entry.permissions()))
            .with_context(|| format!("cannot set the mode of {}", path.display()))?;
    }
    if let Some(mtime) = entry
        .mtime
        .as_deref()
        .and_then(|m| chrono::DateTime::parse_from_rfc3339(m).ok())
    {
        let time = filetime::FileTime::from_unix_time(mtime.timestamp(), mtime.timestamp_subsec_nanos());
        let set = if link {
            filetime::set_symlink_file_times(path, time, time)
        } else {
            filetime::set_file_mtime(path, time)
        };
        set.with_context(|| format!("cannot set the modification time of {}", path.display()))?;
    }
    Ok(())
}

/// Moves every file the manifest confirms into place, and says what could not be restored.
fn finish(pending: Vec<Pending>, manifest: Manifest, dir: &Path, position: u64) -> anyhow::Result<ExitCode> {
    let expected: HashMap<String, &Entry> = manifest.files.iter().map(|f| (f.path.clone(), f)).collect();
    let mut wrong = Vec::new();
    let mut restored = 0;
    // Files first, links last: a link made early could lead a later file out of the directory.
    let (files, links): (Vec<&Pending>, Vec<&Pending>) = pending.iter().partition(|p| p.link.is_none());
    for p in files.into_iter().chain(links) {
        let rel = p
            .target
            .strip_prefix(dir)
            .unwrap_or(&p.target)
            .to_string_lossy()
            .replace('\\', "/");
        let Some(entry) = expected.get(&rel).filter(|e| e.sha256 == p.sha256) else {
            if p.link.is_none() {
                let _ = std::fs::remove_file(&p.temporary);
            }
            wrong.push(format!("{rel}: its content does not match the manifest"));
            continue;
        };
        match &p.link {
            None => {
                std::fs::rename(&p.temporary, &p.target)?;
                put_back(&p.target, entry, false)?;
            }
            Some(link) => {
                if std::fs::symlink_metadata(&p.target).is_ok() {
                    std::fs::remove_file(&p.target)
                        .with_context(|| format!("cannot replace {}", p.target.display()))?;
                }
                make_link(link, &p.target)?;
                put_back(&p.target, entry, true)?;
            }
        }
        restored += 1;
    }
    for f in &manifest.files {
        if f.status != "ok" && !wrong.iter().any(|w| w.starts_with(&format!("{}:", f.path))) {
            wrong.push(format!("{}: {} on the server", f.path, f.status));
        }
    }
    println!(
        "restored {restored} of {} files of client {} as of position {position} into {}",
        manifest.files.len(),
        manifest.client_id,
        dir.display()
    );
    if wrong.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    for w in &wrong {
        eprintln!("not restored: {w}");
    }
    Ok(ExitCode::from(1))
}
