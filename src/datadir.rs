//! The data directory: `<data>/cairn.db`, `<data>/blobs/`, and `<data>/cairn.lock`, which one process holds
//! while it writes (so that `cairn replay` cannot swap tables under a running server).

use std::fs::File;
use std::path::{Path, PathBuf};

/// Why the data directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    #[error("cannot use data directory {path}: {detail}")]
    Unusable { path: PathBuf, detail: String },
    #[error("data directory {path} is in use by another cairn process (it holds {path}/cairn.lock); stop it first")]
    Locked { path: PathBuf },
}

/// An open data directory, locked for this process until dropped.
#[derive(Debug)]
pub struct DataDir {
    root: PathBuf,
    /// Held open: the OS lock lives as long as the file handle.
    _lock: File,
}

pub fn db_path(root: &Path) -> PathBuf {
    root.join("cairn.db")
}

pub fn blobs_path(root: &Path) -> PathBuf {
    root.join("blobs")
}

/// Creates a directory (and its parents) readable by this user only, and makes an existing one so: the data
/// directory holds every file's content and the log, whatever the umask.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
    }
    #[cfg(not(unix))]
    std::fs::create_dir_all(dir)
}

/// Makes a file readable and writable by this user only (the database and its WAL, which SQLite creates
/// under the umask); a file that does not exist is left alone.
pub fn private_file(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        match std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(())
    }
}

impl DataDir {
    /// Creates the directory if needed and takes its lock.
    pub fn open(root: &Path) -> Result<Self, DataDirError> {
        let unusable = |e: std::io::Error| DataDirError::Unusable {
            path: root.to_owned(),
            detail: e.to_string(),
        };
        private_dir(root).map_err(unusable)?;
        let mut options = std::fs::OpenOptions::new();
        options.create(true).truncate(false).write(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let lock = options.open(root.join("cairn.lock")).map_err(unusable)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Err(DataDirError::Locked { path: root.to_owned() }),
            Err(std::fs::TryLockError::Error(e)) => return Err(unusable(e)),
        }
        Ok(Self {
            root: root.to_owned(),
            _lock: lock,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn db_path(&self) -> PathBuf {
        db_path(&self.root)
    }

    pub fn blobs_path(&self) -> PathBuf {
        blobs_path(&self.root)
    }
}
