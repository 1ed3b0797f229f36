//! Point-in-time archives: a client's files as the log says they were at a position, streamed as a tar or a
//! zip in flat memory, each file's content checked against its recorded SHA-256 and CRC-32 as it goes out, and a
//! manifest last (`MANIFEST.json`: the position, and each file with its path in the archive, its checksum and
//! whether it was `ok`, `missing` (its content is no longer in the blob store) or `corrupt`). A missing file is
//! listed, never silently left out.

use std::collections::{BTreeMap, HashSet};
use std::io::{Read, Write};

use bytes::Bytes;
use cairn_events::{Metadata, Position};
use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::ServiceError;
use crate::blobs::BlobStore;
use crate::commands::file::RecordArchive;
use crate::replay::{self, Until};
use crate::Cairn;

/// The archive's own file, written last.
pub const MANIFEST: &str = "MANIFEST.json";
/// Chunks of the response, and the most of them waiting for a slow reader: memory stays flat.
const CHUNK: usize = 64 * 1024;
const QUEUE: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Tar,
    Zip,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "tar" => Ok(Self::Tar),
            "zip" => Ok(Self::Zip),
            other => Err(format!("format is tar or zip, not {other:?}")),
        }
    }
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Tar => "application/x-tar",
            Format::Zip => "application/zip",
        }
    }
}

/// One file the client had at the position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub file_id: String,
    /// Where it is in the archive: its recorded path made relative and safe, or its name.
    pub path: String,
    pub filename: String,
    pub original_path: String,
    pub size: u64,
    pub sha256: String,
    pub crc32: u32,
    /// When it was stored (the position of its `FileStored`).
    pub stored_at: Position,
    /// `ok`, `missing` or `corrupt`, as found while streaming.
    #[serde(default)]
    pub status: String,
    /// Its modification time on the client (RFC 3339, to the nanosecond), when the client said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtime: Option<String>,
    /// Its `st_mode` on the client, when the client said: a symbolic link's content is its target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
}

/// The file type bits of a mode, and a symbolic link's.
pub const S_IFMT: u32 = 0o170000;
pub const S_IFLNK: u32 = 0o120000;

impl Entry {
    pub fn is_symlink(&self) -> bool {
        self.mode.is_some_and(|m| m & S_IFMT == S_IFLNK)
    }

    /// The permission bits to unpack it with (0644 when the client did not say): never setuid, setgid or sticky,
    /// which a client could otherwise plant in an administrator's restore.
    pub fn permissions(&self) -> u32 {
        self.mode.map_or(0o644, |m| m & 0o777)
    }

    /// Its modification time in whole seconds since 1970 (0 when the client did not say).
    pub fn mtime_seconds(&self) -> u64 {
        self.mtime
            .as_deref()
            .and_then(|m| chrono::DateTime::parse_from_rfc3339(m).ok())
            .map_or(0, |t| t.timestamp().max(0) as u64)
    }
}

/// A symbolic link's target is at most this long (Linux's PATH_MAX).
const MAX_LINK: u64 = 4096;

/// What `MANIFEST.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub client_id: String,
    pub position: Position,
    pub files: Vec<Entry>,
}

/// A recorded path as a relative path inside an archive: `\` and `/` separate, drive letters, empty, `.` and
/// `..` components go, so no entry can land outside the directory it is unpacked into.
pub fn safe_path(original: &str, filename: &str) -> String {
    let parts: Vec<&str> = original
        .split(['/', '\\'])
        .filter(|p| !p.is_empty() && *p != "." && *p != ".." && !(p.len() == 2 && p.ends_with(':')))
        .collect();
    if parts.is_empty() {
        filename.to_owned()
    } else {
        parts.join("/")
    }
}

/// The files client `client` had at `position`: its `FileStored` events up to it, less its `FileDeleted`.
pub fn files_at(conn: &Connection, client: &str, position: Position) -> rusqlite::Result<Vec<Entry>> {
    let mut stmt = conn.prepare_cached(
        "SELECT position, type, data FROM events
         WHERE type IN ('FileStored', 'FileDeleted') AND position <= ?2 AND json_extract(data, '$.client_id') = ?1
         ORDER BY position",
    )?;
    let mut rows = stmt.query(rusqlite::params![client, position])?;
    let mut files: BTreeMap<String, Entry> = BTreeMap::new();
    while let Some(r) = rows.next()? {
        let at: Position = r.get(0)?;
        let kind: String = r.get(1)?;
        let data: serde_json::Value = serde_json::from_str(&r.get::<_, String>(2)?).unwrap_or_default();
        let id = data["file_id"].as_str().unwrap_or_default().to_owned();
        if kind == "FileDeleted" {
            files.remove(&id);
            continue;
        }
        let s = |k: &str| data[k].as_str().unwrap_or_default().to_owned();
        files.insert(
            id.clone(),
            Entry {
                file_id: id,
                path: safe_path(&s("original_path"), &s("filename")),
                filename: s("filename"),
                original_path: s("original_path"),
                size: data["size"].as_u64().unwrap_or(0),
                sha256: s("sha256"),
                crc32: data["crc32"].as_u64().unwrap_or(0) as u32,
                stored_at: at,
                status: String::new(),
                mtime: data["mtime"].as_str().map(str::to_owned),
                mode: data["mode"].as_u64().map(|m| m as u32),
            },
        );
    }
    // Oldest first; two files at one path (re-uploads kept side by side) are told apart by their id, the newest
    // keeping the path itself (a restore puts the latest content where the file was).
    let mut entries: Vec<Entry> = files.into_values().collect();
    entries.sort_by_key(|e| e.stored_at);
    let mut seen = HashSet::new();
    for e in entries.iter_mut().rev() {
        if !seen.insert(e.path.clone()) || e.path == MANIFEST {
            // The id's last eight characters are random (a UUID v7's first ones are its time, alike for files
            // stored within a minute); the whole id if even those are taken.
            let tail = &e.file_id[e.file_id.len().saturating_sub(8)..];
            let short = format!("{}~{tail}", e.path);
            e.path = if seen.contains(&short) {
                format!("{}~{}", e.path, e.file_id)
            } else {
                short
            };
            seen.insert(e.path.clone());
        }
    }
    Ok(entries)
}

/// The position `at` names (the head without it), which must be at or after the client's registration: a client
/// that did not exist then had no files, and one that never existed is not found.
fn moment(conn: &Connection, client: Uuid, at: Option<&Until>) -> Result<Position, ServiceError> {
    let position = match at {
        None => cairn_events::reader::head(conn)?,
        Some(until) => replay::resolve(conn, until)?,
    };
    let registered: Option<Position> = conn.query_row(
        "SELECT min(position) FROM events WHERE stream = ?1",
        [cairn_events::catalogue::client_stream(client)],
        |r| r.get(0),
    )?;
    match registered {
        Some(p) if p <= position => Ok(position),
        Some(_) => Err(ServiceError::not_found(
            "CLIENT_NOT_FOUND",
            format!("client {client} was not registered yet at position {position}"),
        )),
        None => Err(ServiceError::not_found(
            "CLIENT_NOT_FOUND",
            format!("client {client} not found"),
        )),
    }
}

/// A restore's preview: the files as they were at the position, and how they differ from now, by path.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Preview {
    pub client_id: String,
    pub position: Position,
    pub head: Position,
    pub files: Vec<PreviewFile>,
    /// Files there now that were not then.
    pub added_since: Vec<PreviewFile>,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct PreviewFile {
    pub path: String,
    pub filename: String,
    pub size: u64,
    pub sha256: String,
    /// Against now: `unchanged`, `changed` (other content at that path now) or `deleted` (no file there now); for
    /// `added_since`, `added`.
    pub since: String,
    /// Whether its content is still in the blob store (kept while retained; gone once purged).
    pub available: bool,
}

/// The client's files at `at` (default now), beside its files now.
pub async fn preview(cairn: &Cairn, client: Uuid, at: Option<Until>) -> Result<Preview, ServiceError> {
    let blobs = cairn.blobs().clone();
    super::read(cairn, move |conn| {
        let head = cairn_events::reader::head(conn)?;
        let position = moment(conn, client, at.as_ref())?;
        let id = client.to_string();
        let then = files_at(conn, &id, position)?;
        let now = files_at(conn, &id, head)?;
        let now_by_path: std::collections::HashMap<&str, &Entry> = now.iter().map(|e| (e.path.as_str(), e)).collect();
        let then_paths: HashSet<&str> = then.iter().map(|e| e.path.as_str()).collect();
        let file = |e: &Entry, since: &str| PreviewFile {
            path: e.path.clone(),
            filename: e.filename.clone(),
            size: e.size,
            sha256: e.sha256.clone(),
            since: since.to_owned(),
            available: blobs.path_of(&e.sha256).exists(),
        };
        let files: Vec<PreviewFile> = then
            .iter()
            .map(|e| {
                let since = match now_by_path.get(e.path.as_str()) {
                    Some(n) if n.sha256 == e.sha256 => "unchanged",
                    Some(_) => "changed",
                    None => "deleted",
                };
                file(e, since)
            })
            .collect();
        let added_since = now
            .iter()
            .filter(|e| !then_paths.contains(e.path.as_str()))
            .map(|e| file(e, "added"))
            .collect();
        Ok(Preview {
            client_id: id,
            position,
            head,
            bytes: files.iter().map(|f| f.size).sum(),
            files,
            added_since,
        })
    })
    .await
}

/// An archive about to stream: what it holds, and its bytes as they are made.
pub struct Archive {
    pub position: Position,
    pub files: usize,
    pub bytes: u64,
    pub body: tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>,
}

/// Resolves `at`, lists the client's files then, records `ArchiveDownloaded`, and starts streaming.
pub async fn archive(
    cairn: &Cairn,
    client: Uuid,
    at: Option<Until>,
    format: Format,
    metadata: Metadata,
) -> Result<Archive, ServiceError> {
    let (position, files) = super::read(cairn, move |conn| {
        let position = moment(conn, client, at.as_ref())?;
        Ok((position, files_at(conn, &client.to_string(), position)?))
    })
    .await?;
    if format == Format::Zip {
        zip_fits(&files)?;
    }
    let bytes = files.iter().map(|f| f.size).sum();
    let record = RecordArchive {
        client_id: client,
        position,
        format: match format {
            Format::Tar => "tar".into(),
            Format::Zip => "zip".into(),
        },
        files: files.len() as u64,
        bytes,
    };
    cairn.execute(record, metadata).await?;
    let (tx, rx) = tokio::sync::mpsc::channel(QUEUE);
    let blobs = cairn.blobs().clone();
    let count = files.len();
    let manifest = Manifest {
        client_id: client.to_string(),
        position,
        files,
    };
    tokio::task::spawn_blocking(move || {
        let mut out = Sender {
            tx: tx.clone(),
            buf: Vec::with_capacity(CHUNK),
        };
        let written = match format {
            Format::Tar => write_tar(&mut out, &blobs, manifest),
            Format::Zip => write_zip(&mut out, &blobs, manifest),
        };
        let done = written.and_then(|()| out.flush());
        if let Err(e) = done {
            // The reader went away (nothing to tell), or the disk failed: the body ends in an error.
            let _gone = tx.blocking_send(Err(e));
        }
    });
    Ok(Archive {
        position,
        files: count,
        bytes,
        body: rx,
    })
}

/// A `Write` into the response: chunks of 64 KiB on a bounded channel, so a slow reader slows the writer.
struct Sender {
    tx: tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
    buf: Vec<u8>,
}

impl Write for Sender {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client stopped reading"))
    }
}

/// Copies a blob into `out`, checking it against the entry: answers the status to record.
fn copy_checked(blobs: &BlobStore, entry: &Entry, out: &mut impl Write, pad_to: u64) -> std::io::Result<String> {
    let Ok(mut blob) = blobs.open_blob(&entry.sha256) else {
        return Ok("missing".into());
    };
    let (mut sha, mut crc, mut sent) = (Sha256::new(), crc32fast::Hasher::new(), 0u64);
    let mut buf = vec![0u8; CHUNK];
    while sent < pad_to {
        let want = buf.len().min((pad_to - sent) as usize);
        let n = blob.read(&mut buf[..want])?;
        if n == 0 {
            break;
        }
        sha.update(&buf[..n]);
        crc.update(&buf[..n]);
        out.write_all(&buf[..n])?;
        sent += n as u64;
    }
    // A blob shorter than recorded is padded with zeros so the archive stays well formed; it is corrupt.
    let short = sent < pad_to;
    while sent < pad_to {
        let n = buf.len().min((pad_to - sent) as usize);
        buf[..n].fill(0);
        out.write_all(&buf[..n])?;
        sent += n as u64;
    }
    let ok = !short && hex::encode(sha.finalize()) == entry.sha256 && crc.finalize() == entry.crc32;
    Ok(if ok { "ok" } else { "corrupt" }.into())
}

fn write_tar(out: &mut Sender, blobs: &BlobStore, mut manifest: Manifest) -> std::io::Result<()> {
    let mut tar = tar::Builder::new(out);
    for entry in &mut manifest.files {
        if !blobs.path_of(&entry.sha256).exists() {
            // A missing file is in the manifest only: an empty file in its place would pass for it.
            entry.status = "missing".into();
            continue;
        }
        let mut header = tar::Header::new_gnu();
        header.set_mode(entry.permissions());
        header.set_mtime(entry.mtime_seconds());
        if entry.is_symlink() {
            // A link is recorded as its target; unpacked, it is a link again (never followed here).
            let mut target = Vec::new();
            entry.status = copy_checked(blobs, entry, &mut target, entry.size.min(MAX_LINK))?;
            if target.is_empty() || target.contains(&0) || entry.size > MAX_LINK {
                // No link can point there: listed as corrupt, and the archive goes on.
                entry.status = "corrupt".into();
                continue;
            }
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_size(0);
            let target = String::from_utf8_lossy(&target).into_owned();
            if tar.append_link(&mut header, &entry.path, target).is_err() {
                entry.status = "corrupt".into();
            }
            continue;
        }
        header.set_size(entry.size);
        header.set_entry_type(tar::EntryType::Regular);
        // An empty reader: `append_data` writes the header (and a long name's extra entry) and no data; the
        // data follows, checked as it goes.
        tar.append_data(&mut header, &entry.path, std::io::empty())?;
        let inner = tar.get_mut();
        entry.status = copy_checked(blobs, entry, inner, entry.size)?;
        let pad = (512 - entry.size % 512) % 512;
        inner.write_all(&vec![0u8; pad as usize])?;
    }
    let json = serde_json::to_vec_pretty(&manifest).map_err(std::io::Error::other)?;
    let mut header = tar::Header::new_gnu();
    header.set_size(json.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    tar.append_data(&mut header, MANIFEST, json.as_slice())?;
    tar.into_inner()?.flush()
}

/// A zip of stored entries needs no zip64 while it holds fewer than 65,535 files and under 4 GiB; past that the
/// archive is refused (tar has no such limits).
fn zip_fits(files: &[Entry]) -> Result<(), ServiceError> {
    let total: u64 = files.iter().map(|f| f.size + 30 + 46 + 2 * f.path.len() as u64).sum();
    if files.len() >= 65_535 || total >= u64::from(u32::MAX) - (1 << 20) {
        return Err(ServiceError::invalid(
            "ARCHIVE_TOO_LARGE_FOR_ZIP",
            format!(
                "{} files, {total} bytes: past what a zip without zip64 holds; ask for format=tar",
                files.len()
            ),
        ));
    }
    Ok(())
}

/// Counts what passes through, for the zip's offsets.
struct Counted<'a, W: Write> {
    inner: &'a mut W,
    at: u64,
}

impl<W: Write> Write for Counted<'_, W> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(data)?;
        self.at += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A zip of stored (uncompressed) entries, each header carrying the recorded CRC-32 and size, so that any unzip
/// checks the content too; names in UTF-8 (flag bit 11); the manifest last; then the central directory.
fn write_zip(out: &mut Sender, blobs: &BlobStore, mut manifest: Manifest) -> std::io::Result<()> {
    let mut w = Counted { inner: out, at: 0 };
    let mut central = Vec::new();
    let mut entries = 0u16;
    let local = |w: &mut Counted<'_, Sender>, name: &[u8], crc: u32, size: u32| -> std::io::Result<()> {
        w.write_all(&0x0403_4b50u32.to_le_bytes())?;
        w.write_all(&20u16.to_le_bytes())?; // version needed
        w.write_all(&(1u16 << 11).to_le_bytes())?; // UTF-8 names
        w.write_all(&0u16.to_le_bytes())?; // stored
        w.write_all(&0u16.to_le_bytes())?; // time
        w.write_all(&0x0021u16.to_le_bytes())?; // date: 1980-01-01
        w.write_all(&crc.to_le_bytes())?;
        w.write_all(&size.to_le_bytes())?;
        w.write_all(&size.to_le_bytes())?;
        w.write_all(&(name.len() as u16).to_le_bytes())?;
        w.write_all(&0u16.to_le_bytes())?;
        w.write_all(name)
    };
    let mut record = |central: &mut Vec<u8>, name: &[u8], crc: u32, size: u32, offset: u32, mode: u32| {
        central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        central.extend_from_slice(&((3u16 << 8) | 20).to_le_bytes()); // made by: Unix, so the mode below counts
        central.extend_from_slice(&20u16.to_le_bytes()); // needed
        central.extend_from_slice(&(1u16 << 11).to_le_bytes());
        central.extend_from_slice(&0u16.to_le_bytes());
        central.extend_from_slice(&0u16.to_le_bytes());
        central.extend_from_slice(&0x0021u16.to_le_bytes());
        central.extend_from_slice(&crc.to_le_bytes());
        central.extend_from_slice(&size.to_le_bytes());
        central.extend_from_slice(&size.to_le_bytes());
        central.extend_from_slice(&(name.len() as u16).to_le_bytes());
        central.extend_from_slice(&[0u8; 8]); // extra, comment, disk, internal attributes
        central.extend_from_slice(&(mode << 16).to_le_bytes()); // external: the Unix mode (unzip makes links of links)
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name);
        entries += 1;
    };
    for entry in &mut manifest.files {
        if !blobs.path_of(&entry.sha256).exists() {
            entry.status = "missing".into();
            continue;
        }
        let offset = w.at as u32;
        let name = entry.path.as_bytes();
        local(&mut w, name, entry.crc32, entry.size as u32)?;
        entry.status = copy_checked(blobs, entry, &mut w, entry.size)?;
        let mode = match entry.mode {
            Some(m) if m & S_IFMT != 0 => m,
            _ => 0o100_000 | entry.permissions(),
        };
        record(&mut central, name, entry.crc32, entry.size as u32, offset, mode);
    }
    let json = serde_json::to_vec_pretty(&manifest).map_err(std::io::Error::other)?;
    let crc = crc32fast::hash(&json);
    let offset = w.at as u32;
    local(&mut w, MANIFEST.as_bytes(), crc, json.len() as u32)?;
    w.write_all(&json)?;
    record(
        &mut central,
        MANIFEST.as_bytes(),
        crc,
        json.len() as u32,
        offset,
        0o100_644,
    );
    let start = w.at as u32;
    w.write_all(&central)?;
    w.write_all(&0x0605_4b50u32.to_le_bytes())?;
    w.write_all(&[0u8; 4])?; // this disk, the directory's disk
    w.write_all(&entries.to_le_bytes())?;
    w.write_all(&entries.to_le_bytes())?;
    w.write_all(&(central.len() as u32).to_le_bytes())?;
    w.write_all(&start.to_le_bytes())?;
    w.write_all(&0u16.to_le_bytes())?;
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::safe_path;

    #[test]
    fn a_recorded_path_becomes_a_relative_path_that_stays_inside() {
        assert_eq!(safe_path("C:\\docs\\report.pdf", "report.pdf"), "docs/report.pdf");
        assert_eq!(safe_path("/home/ada/../../etc/passwd", "passwd"), "home/ada/etc/passwd");
        assert_eq!(safe_path("", "notes.txt"), "notes.txt");
        assert_eq!(safe_path("..\\..", "x.bin"), "x.bin");
        assert_eq!(safe_path("./a//b/./c.txt", "c.txt"), "a/b/c.txt");
    }
}
