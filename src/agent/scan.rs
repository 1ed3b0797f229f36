//! Walking the folders: every regular file and symbolic link (recorded, never followed), in path order, less
//! what `--exclude` names; names that are not UTF-8 or hold control characters are reported, never mangled.

use std::path::{Path, PathBuf};

use globset::{Glob, GlobSet, GlobSetBuilder};

/// A file found, with what `lstat` said of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Its absolute path, as text (the key of the local state and the path recorded on the server).
    pub path: String,
    pub full: PathBuf,
    pub name: String,
    pub size: u64,
    pub mtime_ns: i64,
    pub inode: u64,
    /// `st_mode`: the file type (regular or symbolic link) and the permission bits.
    pub mode: u32,
    pub symlink: bool,
}

/// What walking found: the files, and what could not be taken (one line each).
#[derive(Debug, Default)]
pub struct Scan {
    pub files: Vec<Found>,
    pub problems: Vec<String>,
    /// Special files (sockets, pipes, devices), which are not backed up.
    pub skipped: Vec<String>,
    /// Folders that could not be listed: what the state knows below them is not taken for deleted.
    pub unreadable: Vec<PathBuf>,
}

/// The `--exclude` globs, matched against each entry's path below its folder and against its name.
pub fn excludes(globs: &[String]) -> anyhow::Result<GlobSet> {
    let mut set = GlobSetBuilder::new();
    for g in globs {
        set.add(Glob::new(g).map_err(|e| anyhow::anyhow!("--exclude {g:?}: {e}"))?);
    }
    Ok(set.build()?)
}

const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;

/// Walks every folder (each already absolute); the files come sorted by path.
pub fn walk(folders: &[PathBuf], exclude: &GlobSet) -> Scan {
    let mut scan = Scan::default();
    for folder in folders {
        let mut stack = vec![folder.clone()];
        while let Some(dir) = stack.pop() {
            let entries = match std::fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) => {
                    scan.problems
                        .push(format!("{}: cannot read the folder: {e}", dir.display()));
                    scan.unreadable.push(dir.clone());
                    continue;
                }
            };
            for entry in entries {
                let entry = match entry {
                    Ok(e) => e,
                    Err(e) => {
                        scan.problems.push(format!("{}: cannot list: {e}", dir.display()));
                        continue;
                    }
                };
                let full = entry.path();
                let Some(text) = full.to_str() else {
                    scan.problems.push(format!(
                        "{}: the name is not valid UTF-8; skipped",
                        full.to_string_lossy()
                    ));
                    continue;
                };
                let below = full.strip_prefix(folder).unwrap_or(&full);
                let name = entry.file_name().to_string_lossy().into_owned();
                if exclude.is_match(below) || exclude.is_match(&name) {
                    continue;
                }
                if let Some(c) = text.chars().find(|c| c.is_control()) {
                    scan.problems.push(format!(
                        "{}: the name holds a control character (U+{:04X}); skipped",
                        text.escape_debug(),
                        c as u32
                    ));
                    continue;
                }
                let meta = match std::fs::symlink_metadata(&full) {
                    Ok(m) => m,
                    Err(e) => {
                        scan.problems.push(format!("{text}: cannot read: {e}"));
                        continue;
                    }
                };
                let kind = meta.file_type();
                if kind.is_dir() {
                    stack.push(full);
                    continue;
                }
                if !kind.is_file() && !kind.is_symlink() {
                    scan.skipped
                        .push(format!("{text}: not a regular file or a link; not backed up"));
                    continue;
                }
                let (mode, inode, mtime_ns) = stat(&meta);
                scan.files.push(Found {
                    path: text.to_owned(),
                    full: full.clone(),
                    name,
                    size: meta.len(),
                    mtime_ns,
                    inode,
                    mode: (mode & 0o7777) | if kind.is_symlink() { S_IFLNK } else { S_IFREG },
                    symlink: kind.is_symlink(),
                });
            }
        }
    }
    scan.files.sort_by(|a, b| a.path.cmp(&b.path));
    scan.files.dedup_by(|a, b| a.path == b.path); // overlapping folders
    scan
}

/// `st_mode`, the inode and the modification time in nanoseconds.
#[cfg(unix)]
pub(crate) fn stat(meta: &std::fs::Metadata) -> (u32, u64, i64) {
    use std::os::unix::fs::MetadataExt;
    (
        meta.mode(),
        meta.ino(),
        meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
    )
}

#[cfg(not(unix))]
pub(crate) fn stat(meta: &std::fs::Metadata) -> (u32, u64, i64) {
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as i64);
    (if meta.permissions().readonly() { 0o444 } else { 0o644 }, 0, mtime)
}

/// A file's modification time as RFC 3339, to the nanosecond.
pub fn rfc3339(mtime_ns: i64) -> String {
    let t = chrono::DateTime::from_timestamp(
        mtime_ns.div_euclid(1_000_000_000),
        mtime_ns.rem_euclid(1_000_000_000) as u32,
    )
    .unwrap_or_default();
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// Whether `path` lies in `folder` (the folder itself or below it).
pub fn within(path: &str, folder: &Path) -> bool {
    Path::new(path).starts_with(folder)
}
