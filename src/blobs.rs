//! The content-addressed blob store under `<data>/blobs/`: `blobs/<first two hex>/<sha256>`.
//!
//! An upload streams into a temporary file while SHA-256 and CRC-32 are computed, so memory stays flat whatever
//! the size. It becomes a [`PendingBlob`]; the writer moves it into place inside the command that records it, and
//! removes a blob only after the deletion that orphaned it committed (both on the writer thread, so they never
//! race). Identical content is stored once. A filename is metadata, never a path here.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

/// The chunk size of streamed reads and writes.
const CHUNK: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("declared {which} {declared} does not match the content's {actual}")]
    Mismatch {
        which: &'static str,
        declared: String,
        actual: String,
    },
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Checksums a client declared for its upload.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Declared {
    /// Hex SHA-256, any case.
    pub sha256: Option<String>,
    pub crc32: Option<u32>,
}

/// The store's root and how it syncs.
#[derive(Debug)]
pub struct BlobStore {
    root: PathBuf,
    /// fsync files and directories before a blob is recorded (with `--durability full`).
    sync: bool,
    /// Makes temporary names unique within this process.
    counter: AtomicU64,
    /// Directories a blob was renamed into since they were last synced: synced once per write batch, before it
    /// commits ([`BlobStore::sync_placed`]), rather than once per blob.
    placed_in: std::sync::Mutex<std::collections::HashSet<PathBuf>>,
}

/// An upload written and checked, waiting to be moved into place. Dropped unplaced, its file is removed.
#[derive(Debug)]
pub struct PendingBlob {
    temp: PathBuf,
    pub sha256: String,
    pub crc32: u32,
    pub size: u64,
    placed: bool,
}

impl PartialEq for PendingBlob {
    fn eq(&self, other: &Self) -> bool {
        self.sha256 == other.sha256 && self.size == other.size
    }
}

impl Drop for PendingBlob {
    fn drop(&mut self) {
        if !self.placed {
            if let Err(e) = fs::remove_file(&self.temp) {
                if e.kind() != io::ErrorKind::NotFound {
                    tracing::warn!(path = %self.temp.display(), error = %e, "could not remove an unplaced upload");
                }
            }
        }
    }
}

/// Streams one upload into a temporary file, hashing as it goes.
pub struct BlobWriter {
    file: File,
    temp: Option<PathBuf>,
    sha: Sha256,
    crc: crc32fast::Hasher,
    size: u64,
    limit: u64,
    sync: bool,
}

impl BlobWriter {
    /// Adds a chunk; refuses it when the upload would pass the limit.
    pub fn write_chunk(&mut self, chunk: &[u8]) -> Result<(), BlobError> {
        let size = self.size + chunk.len() as u64;
        if size > self.limit {
            return Err(BlobError::TooLarge { limit: self.limit });
        }
        self.file.write_all(chunk)?;
        self.sha.update(chunk);
        self.crc.update(chunk);
        self.size = size;
        Ok(())
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Checks the declared checksums and hands over the pending blob.
    pub fn finish(mut self, declared: &Declared) -> Result<PendingBlob, BlobError> {
        self.file.flush()?;
        if self.sync {
            self.file.sync_all()?;
        }
        let sha256 = hex::encode(std::mem::take(&mut self.sha).finalize());
        let crc32 = std::mem::take(&mut self.crc).finalize();
        let pending = PendingBlob {
            temp: self
                .temp
                .take()
                .expect("a writer's temporary path is taken only by finish"),
            sha256,
            crc32,
            size: self.size,
            placed: false,
        };
        if let Some(d) = &declared.sha256 {
            if !d.eq_ignore_ascii_case(&pending.sha256) {
                return Err(BlobError::Mismatch {
                    which: "SHA-256",
                    declared: d.clone(),
                    actual: pending.sha256.clone(),
                });
            }
        }
        if let Some(d) = declared.crc32 {
            if d != pending.crc32 {
                return Err(BlobError::Mismatch {
                    which: "CRC-32",
                    declared: format!("{d:08x}"),
                    actual: format!("{:08x}", pending.crc32),
                });
            }
        }
        Ok(pending)
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if let Some(temp) = self.temp.take() {
            if let Err(e) = fs::remove_file(&temp) {
                tracing::warn!(path = %temp.display(), error = %e, "could not remove an abandoned upload");
            }
        }
    }
}

/// What re-reading a blob found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobDigest {
    pub sha256: String,
    pub crc32: u32,
    pub size: u64,
}

impl BlobStore {
    /// Opens the store at `root`, creating it, and removes temporary files a crash left behind.
    pub fn open(root: &Path, sync: bool) -> io::Result<Self> {
        crate::datadir::private_dir(root)?;
        crate::datadir::private_dir(&root.join("tmp"))?;
        for entry in fs::read_dir(root.join("tmp"))? {
            let entry = entry?;
            if let Err(e) = fs::remove_file(entry.path()) {
                tracing::warn!(path = %entry.path().display(), error = %e, "could not remove a stale upload");
            }
        }
        Ok(Self {
            root: root.to_owned(),
            sync,
            counter: AtomicU64::new(0),
            placed_in: std::sync::Mutex::new(std::collections::HashSet::new()),
        })
    }

    /// Where the blob of this content lives. `sha256` is 64 hex digits as the files table holds them; anything
    /// else (a tampered row) names a file that does not exist, rather than a path elsewhere or a panic.
    pub fn path_of(&self, sha256: &str) -> PathBuf {
        let valid = sha256.len() == 64 && sha256.bytes().all(|b| b.is_ascii_hexdigit());
        let name = if valid { sha256 } else { "invalid-checksum" };
        self.root.join(&name[..2]).join(name)
    }

    /// Starts an upload of at most `limit` bytes.
    pub fn writer(&self, limit: u64) -> io::Result<BlobWriter> {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let temp = self
            .root
            .join("tmp")
            .join(format!("{}-{n}", uuid::Uuid::new_v4().simple()));
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(&temp)?;
        Ok(BlobWriter {
            file,
            temp: Some(temp),
            sha: Sha256::new(),
            crc: crc32fast::Hasher::new(),
            size: 0,
            limit,
            sync: self.sync,
        })
    }

    /// Streams a reader into a pending blob.
    pub fn write_from(&self, mut body: impl Read, limit: u64, declared: &Declared) -> Result<PendingBlob, BlobError> {
        let mut writer = self.writer(limit)?;
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = match body.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            };
            writer.write_chunk(&buf[..n])?;
        }
        writer.finish(declared)
    }

    /// Moves a pending blob into place; when the content is already stored, keeps the stored copy. With
    /// durability, the rename is durable only once [`BlobStore::sync_placed`] ran: the writer runs it before the
    /// batch that records the blob commits.
    pub fn place(&self, mut pending: PendingBlob) -> io::Result<()> {
        let target = self.path_of(&pending.sha256);
        if target.exists() {
            return Ok(()); // dropping `pending` removes the duplicate
        }
        let dir = target.parent().expect("a blob path has a parent");
        crate::datadir::private_dir(dir)?;
        fs::rename(&pending.temp, &target)?;
        pending.placed = true;
        if self.sync {
            self.placed_in
                .lock()
                .map_err(|_| io::Error::other("the blob store's list of directories is poisoned"))?
                .insert(dir.to_owned());
        }
        Ok(())
    }

    /// Makes every rename since the last call durable: one fsync per directory blobs went into, however many
    /// blobs (a batch of uploads shares the 256 directories). A directory whose sync fails stays listed.
    pub fn sync_placed(&self) -> io::Result<()> {
        let dirs: Vec<PathBuf> = {
            let mut placed = self
                .placed_in
                .lock()
                .map_err(|_| io::Error::other("the blob store's list of directories is poisoned"))?;
            placed.drain().collect()
        };
        for (i, dir) in dirs.iter().enumerate() {
            if let Err(e) = File::open(dir).and_then(|d| d.sync_all()) {
                if let Ok(mut placed) = self.placed_in.lock() {
                    placed.extend(dirs[i..].iter().cloned());
                }
                return Err(e);
            }
        }
        Ok(())
    }

    /// Removes the blob when no file of `conn`'s read tables holds its content any more. Runs on the writer
    /// thread after the deleting command committed, so no upload of the same content can slip in between.
    pub fn remove_if_unreferenced(&self, conn: &rusqlite::Connection, sha256: &str) {
        match cairn_projections::files::references(conn, sha256) {
            Ok(0) => match fs::remove_file(self.path_of(sha256)) {
                Ok(()) => tracing::debug!(sha256, "removed an orphaned blob"),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!(sha256, error = %e, "could not remove an orphaned blob"),
            },
            Ok(_) => {}
            Err(e) => tracing::warn!(sha256, error = %e, "could not count a blob's references; kept it"),
        }
    }

    pub fn open_blob(&self, sha256: &str) -> io::Result<File> {
        File::open(self.path_of(sha256))
    }

    /// Re-reads a blob and recomputes both checksums, in chunks.
    pub fn digest(&self, sha256: &str) -> io::Result<BlobDigest> {
        let mut file = self.open_blob(sha256)?;
        let mut sha = Sha256::new();
        let mut crc = crc32fast::Hasher::new();
        let mut size = 0u64;
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            sha.update(&buf[..n]);
            crc.update(&buf[..n]);
            size += n as u64;
        }
        Ok(BlobDigest {
            sha256: hex::encode(sha.finalize()),
            crc32: crc.finalize(),
            size,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_content_is_stored_once_and_a_mismatch_stores_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path(), false).unwrap();
        let a = store.write_from(&b"hello"[..], 100, &Declared::default()).unwrap();
        let sha = a.sha256.clone();
        assert_eq!(sha, "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
        assert_eq!(a.crc32, 0x3610a686);
        store.place(a).unwrap();
        let b = store.write_from(&b"hello"[..], 100, &Declared::default()).unwrap();
        store.place(b).unwrap();
        assert_eq!(fs::read(store.path_of(&sha)).unwrap(), b"hello");
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);

        let declared = Declared {
            sha256: Some("00".repeat(32)),
            crc32: None,
        };
        assert!(matches!(
            store.write_from(&b"other"[..], 100, &declared),
            Err(BlobError::Mismatch { which: "SHA-256", .. })
        ));
        let declared = Declared {
            sha256: Some(sha.to_uppercase()),
            crc32: Some(1),
        };
        assert!(matches!(
            store.write_from(&b"hello"[..], 100, &declared),
            Err(BlobError::Mismatch { which: "CRC-32", .. })
        ));
        assert!(matches!(
            store.write_from(&[0u8; 101][..], 100, &Declared::default()),
            Err(BlobError::TooLarge { limit: 100 })
        ));
        assert_eq!(
            fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0,
            "failed uploads leave nothing"
        );
        let d = store.digest(&sha).unwrap();
        assert_eq!((d.sha256, d.crc32, d.size), (sha, 0x3610a686, 5));
    }
}

#[cfg(test)]
mod path_tests {
    use super::*;

    #[test]
    fn a_malformed_checksum_never_names_a_path_outside_the_store() {
        let store = BlobStore::open(&std::env::temp_dir().join("cairn-path-test"), false).unwrap();
        for bad in ["", "a", "../../etc/passwd", &"g".repeat(64)] {
            let p = store.path_of(bad);
            assert!(
                p.starts_with(std::env::temp_dir().join("cairn-path-test")),
                "{bad}: {}",
                p.display()
            );
            assert!(p.ends_with("in/invalid-checksum"), "{bad}: {}", p.display());
        }
    }
}
