//! The agent's local state, a small SQLite file beside its configuration: what each path was when it was last
//! backed up (size, modification time, inode, mode, SHA-256, the server's file id), so that a file whose size and
//! mtime did not change is not read again, and the contents this client stored, so that a moved or copied file
//! is recorded without sending its bytes.

use std::path::Path;

use anyhow::Context;
use rusqlite::{params, Connection, OptionalExtension};

/// What a path was when last backed up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Known {
    pub size: u64,
    pub mtime_ns: i64,
    pub inode: u64,
    pub mode: u32,
    pub sha256: String,
    pub file_id: String,
}

pub struct LocalState {
    conn: Connection,
    /// Held for as long as the state is open: two runs on one state would both send each change.
    _lock: std::fs::File,
}

impl LocalState {
    /// Opens (or creates) the state of `client` at `path`; a state kept for another client is started afresh.
    pub fn open(path: &Path, client: &str) -> anyhow::Result<Self> {
        let lock = lock(path)?;
        let conn =
            Connection::open(path).with_context(|| format!("cannot open the agent's state {}", path.display()))?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
             CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS files (
                 path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, inode INTEGER NOT NULL,
                 mode INTEGER NOT NULL, sha256 TEXT NOT NULL, file_id TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS contents (sha256 TEXT PRIMARY KEY) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS pending_deletions (file_id TEXT PRIMARY KEY, path TEXT NOT NULL);",
        )?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        }
        let owner: Option<String> = conn
            .query_row("SELECT value FROM meta WHERE key = 'client'", [], |r| r.get(0))
            .optional()?;
        if owner.as_deref() != Some(client) {
            conn.execute_batch("DELETE FROM files; DELETE FROM contents; DELETE FROM pending_deletions;")?;
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('client', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [client],
            )?;
        }
        Ok(Self { conn, _lock: lock })
    }

    /// Every path known, with what it was.
    pub fn all(&self) -> anyhow::Result<Vec<(String, Known)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT path, size, mtime_ns, inode, mode, sha256, file_id FROM files")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                Known {
                    size: r.get::<_, i64>(1)? as u64,
                    mtime_ns: r.get(2)?,
                    inode: r.get::<_, i64>(3)? as u64,
                    mode: r.get(4)?,
                    sha256: r.get(5)?,
                    file_id: r.get(6)?,
                },
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Whether this client stored this content before (through this state).
    pub fn has_content(&self, sha256: &str) -> anyhow::Result<bool> {
        Ok(self
            .conn
            .prepare_cached("SELECT 1 FROM contents WHERE sha256 = ?1")?
            .exists([sha256])?)
    }

    /// Records a path as backed up and, in the same transaction, the older version it replaces as a deletion
    /// still to make on the server: a run stopped between the two finds it at the next start.
    pub fn replace(&self, path: &str, k: &Known, older: Option<&str>) -> anyhow::Result<()> {
        let tx = self.conn.unchecked_transaction()?;
        self.put(path, k)?;
        if let Some(id) = older.filter(|id| *id != k.file_id) {
            self.conn
                .prepare_cached("INSERT OR IGNORE INTO pending_deletions (file_id, path) VALUES (?1, ?2)")?
                .execute([id, path])?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The run this state is in the middle of, if one began and did not record its end (the agent was killed).
    pub fn current_run(&self) -> anyhow::Result<Option<String>> {
        Ok(self
            .conn
            .query_row("SELECT value FROM meta WHERE key = 'run'", [], |r| r.get(0))
            .optional()?)
    }

    /// Notes the run under way (or, with `None`, that none is).
    pub fn set_current_run(&self, run: Option<&str>) -> anyhow::Result<()> {
        match run {
            Some(id) => self.conn.execute(
                "INSERT INTO meta (key, value) VALUES ('run', ?1) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [id],
            )?,
            None => self.conn.execute("DELETE FROM meta WHERE key = 'run'", [])?,
        };
        Ok(())
    }

    /// The server's files still to delete, with their paths.
    pub fn pending_deletions(&self) -> anyhow::Result<Vec<(String, String)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT file_id, path FROM pending_deletions ORDER BY path")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// A pending deletion the server made.
    pub fn deleted(&self, file_id: &str) -> anyhow::Result<()> {
        self.conn
            .prepare_cached("DELETE FROM pending_deletions WHERE file_id = ?1")?
            .execute([file_id])?;
        Ok(())
    }

    /// Records a path as backed up.
    pub fn put(&self, path: &str, k: &Known) -> anyhow::Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO files (path, size, mtime_ns, inode, mode, sha256, file_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (path) DO UPDATE SET size = excluded.size, mtime_ns = excluded.mtime_ns,
                     inode = excluded.inode, mode = excluded.mode, sha256 = excluded.sha256, file_id = excluded.file_id",
            )?
            .execute(params![path, k.size as i64, k.mtime_ns, k.inode as i64, k.mode, k.sha256, k.file_id])?;
        self.conn
            .prepare_cached("INSERT OR IGNORE INTO contents (sha256) VALUES (?1)")?
            .execute([&k.sha256])?;
        Ok(())
    }

    /// Forgets a path (deleted on the server, or gone from the folder).
    pub fn forget(&self, path: &str) -> anyhow::Result<()> {
        self.conn
            .prepare_cached("DELETE FROM files WHERE path = ?1")?
            .execute([path])?;
        Ok(())
    }
}

/// Takes `<state>.lock` for this process alone (released when the file closes, also by a crash).
fn lock(state: &Path) -> anyhow::Result<std::fs::File> {
    let mut name = state.as_os_str().to_owned();
    name.push(".lock");
    let path = std::path::PathBuf::from(name);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::io::AsRawFd;
        // SAFETY: flock on a descriptor this function owns; no memory is shared with the call.
        let taken = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
        anyhow::ensure!(
            taken,
            "another cairn agent run is using {} (one run at a time per state)",
            state.display()
        );
    }
    Ok(file)
}
