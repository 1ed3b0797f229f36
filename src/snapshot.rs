//! Complete server backups: a snapshot directory that is itself a data directory. The database is copied by
//! SQLite's online backup (one consistent moment, while a server writes); every blob that copy refers to (the
//! files' content and the content retained after deletions) is hard-linked beside it (copied when the snapshot is on
//! another file system); `snapshot.json` says what it holds. The snapshot is written under `<DEST>.partial` and
//! renamed when whole, so a half-written snapshot never carries its final name. `cairn serve --data DEST` runs on
//! it as it is.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use cairn_events::{reader, schema};
use serde::{Deserialize, Serialize};

use crate::datadir;

/// The snapshot's own file.
pub const MANIFEST: &str = "snapshot.json";

/// What a snapshot holds (`snapshot.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Snapshot {
    pub taken_at: String,
    pub source: String,
    pub head: i64,
    /// Hex SHA-256 of the head event: the snapshot's log ends there.
    pub head_hash: String,
    pub files: i64,
    pub blobs: u64,
    pub blob_bytes: u64,
    pub database_bytes: u64,
    /// Blobs hard-linked (no space taken) and copied (another file system).
    pub linked: u64,
    pub copied: u64,
    /// Blobs the database refers to that the source did not have (listed, so that the gap is known).
    pub missing: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("{0} already exists; a snapshot is written into a new (or empty) directory")]
    Exists(PathBuf),
    #[error(transparent)]
    Store(#[from] cairn_events::StoreError),
    #[error(transparent)]
    Sql(#[from] rusqlite::Error),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SnapshotError + '_ {
    move |source| SnapshotError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Every content the database at `conn` refers to: the files' and the retained.
fn referenced(conn: &rusqlite::Connection) -> rusqlite::Result<Vec<(String, u64)>> {
    conn.prepare(
        "SELECT checksum, max(size) FROM files GROUP BY checksum
         UNION SELECT sha256, size FROM retained_blobs ORDER BY 1",
    )?
    .query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))?
    .collect()
}

/// Takes a snapshot of the data directory `root` into the new directory `dest`.
pub fn take(root: &Path, dest: &Path) -> Result<Snapshot, SnapshotError> {
    // A new directory, or an empty one (renaming onto an empty directory replaces it).
    let empty_dir = std::fs::read_dir(dest).map(|mut d| d.next().is_none()).unwrap_or(false);
    if dest.exists() && !empty_dir {
        return Err(SnapshotError::Exists(dest.to_owned()));
    }
    let mut partial = dest.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    if partial.exists() {
        std::fs::remove_dir_all(&partial).map_err(io(&partial))?;
    }
    let result = write(root, &partial).and_then(|s| {
        std::fs::rename(&partial, dest).map_err(io(dest))?;
        Ok(s)
    });
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&partial);
    }
    result
}

fn write(root: &Path, into: &Path) -> Result<Snapshot, SnapshotError> {
    crate::datadir::private_dir(into).map_err(io(into))?;
    let db = into.join("cairn.db");
    let source = schema::open_read_only(&datadir::db_path(root))?;
    let database_bytes = schema::backup_to(&source, &db)?;
    drop(source);
    // What the copy holds is what the snapshot must: read it, not the live database, which moved on.
    let copy = schema::open_read_only(&db)?;
    let head = reader::head(&copy)?;
    let head_hash: String = copy
        .query_row("SELECT hash FROM events WHERE position = ?1", [head], |r| r.get(0))
        .unwrap_or_default();
    let files: i64 = copy.query_row("SELECT count(*) FROM files", [], |r| r.get(0))?;
    let blobs = referenced(&copy)?;
    drop(copy);
    let (from, to) = (datadir::blobs_path(root), datadir::blobs_path(into));
    let mut s = Snapshot {
        taken_at: cairn_events::writer::now_rfc3339(),
        source: root.display().to_string(),
        head,
        head_hash,
        files,
        blobs: 0,
        blob_bytes: 0,
        database_bytes,
        linked: 0,
        copied: 0,
        missing: Vec::new(),
    };
    for (sha, size) in blobs {
        let (src, dst) = (
            from.join(&sha[..2.min(sha.len())]).join(&sha),
            to.join(&sha[..2.min(sha.len())]).join(&sha),
        );
        if let Some(parent) = dst.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        match std::fs::hard_link(&src, &dst) {
            Ok(()) => s.linked += 1,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                s.missing.push(sha);
                continue;
            }
            // Another file system (EXDEV), or one without hard links: a copy.
            Err(_) => {
                std::fs::copy(&src, &dst).map_err(io(&src))?;
                s.copied += 1;
            }
        }
        s.blobs += 1;
        s.blob_bytes += size;
    }
    let text = serde_json::to_vec_pretty(&s).map_err(|e| io(into)(std::io::Error::other(e)))?;
    std::fs::write(into.join(MANIFEST), text).map_err(io(into))?;
    Ok(s)
}

/// What checking a snapshot found.
#[derive(Debug, Clone, Default, Serialize, schemars::JsonSchema)]
pub struct Checked {
    pub events: i64,
    pub chain_ok: bool,
    pub blobs_checked: u64,
    /// Blobs the database refers to that are not there, or whose SHA-256 is not their name.
    pub bad_blobs: Vec<String>,
    /// Read tables that differ from a replay of the snapshot's log.
    pub differences: Vec<String>,
}

impl Checked {
    pub fn ok(&self) -> bool {
        self.chain_ok && self.bad_blobs.is_empty() && self.differences.is_empty()
    }
}

/// Checks a snapshot: the chain, every referenced blob's presence and SHA-256, and that its read tables replay
/// equal.
pub fn verify(dest: &Path) -> Result<Checked, SnapshotError> {
    let conn = schema::open_read_only(&datadir::db_path(dest))?;
    let report = reader::verify_chain(&conn, |_| {})?;
    let mut checked = Checked {
        events: report.checked,
        chain_ok: report.first_bad.is_none(),
        ..Checked::default()
    };
    let blobs = crate::blobs::BlobStore::open(&datadir::blobs_path(dest), false).map_err(io(dest))?;
    for (sha, _) in referenced(&conn)? {
        checked.blobs_checked += 1;
        match blobs.digest(&sha) {
            Ok(d) if d.sha256 == sha => {}
            _ => checked.bad_blobs.push(sha),
        }
    }
    drop(conn);
    let replayed = crate::replay::replay(dest, &crate::replay::Mode::Verify, |_| {})
        .map_err(|e| io(dest)(std::io::Error::other(e.to_string())))?;
    checked.differences = replayed.differences.iter().map(ToString::to_string).collect();
    Ok(checked)
}
