//! Shared by the integration tests: a fresh data directory with an open `Cairn`, and request helpers.
#![allow(dead_code, clippy::unwrap_used)] // each test file uses a different part; helpers panic on failure

use std::path::{Path, PathBuf};

use cairn::commands::client::RegisterClient;
use cairn::commands::file::Stored;
use cairn::{Cairn, CommandError, Options, Upload};
use cairn_events::{Durability, Metadata};
use rusqlite::Connection;
use uuid::Uuid;

pub struct TestData {
    pub dir: tempfile::TempDir,
    pub cairn: Cairn,
}

/// Normal durability: the tests check logic, not fsync (the crash test uses full).
pub fn spawn() -> TestData {
    spawn_with(Options {
        durability: Durability::Normal,
        ..Options::default()
    })
}

pub fn spawn_with(options: Options) -> TestData {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let cairn = Cairn::open(dir.path(), options).expect("a fresh data directory opens");
    TestData { dir, cairn }
}

pub fn admin() -> Metadata {
    Metadata::admin("test")
}

impl TestData {
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn db(&self) -> PathBuf {
        self.dir.path().join("cairn.db")
    }

    pub fn register(&self, name: &str) -> Uuid {
        self.try_register(name).expect("registration succeeds")
    }

    pub fn try_register(&self, name: &str) -> Result<Uuid, CommandError> {
        let command = RegisterClient {
            id: Uuid::now_v7(),
            name: name.into(),
            client_id: None,
            ip_address: None,
            token: cairn::commands::new_token(),
        };
        Ok(self.cairn.execute_blocking(command, admin())?.output)
    }

    pub fn upload(&self, client: Uuid, name: &str, content: &[u8]) -> Result<Stored, CommandError> {
        let upload = Upload {
            client_id: client,
            filename: name.into(),
            ..Upload::default()
        };
        self.cairn.upload_blocking(upload, content, Metadata::client(client))
    }

    pub fn read(&self) -> Connection {
        cairn_events::schema::open_read_only(&self.db()).expect("the database opens read-only")
    }

    pub fn count(&self, sql: &str) -> i64 {
        self.read().query_row(sql, [], |r| r.get(0)).expect("a count")
    }

    pub fn blob_count(&self) -> usize {
        walk_files(&self.root().join("blobs"))
            .into_iter()
            .filter(|p| !p.starts_with(self.root().join("blobs/tmp")))
            .count()
    }
}

fn walk_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk_files(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// Every difference between two databases' read tables (attaching `other` to `conn`'s connection).
pub fn differences(a: &Path, b: &Path) -> Vec<String> {
    let conn = Connection::open(a).expect("open");
    conn.execute("ATTACH DATABASE ?1 AS other", [b.to_string_lossy()])
        .expect("attach");
    cairn_projections::diff::compare(&conn, "main", "other", 100)
        .expect("compare")
        .into_iter()
        .map(|d| d.to_string())
        .collect()
}

/// The `cairn` binary built for these tests.
pub fn cairn_bin() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_cairn"))
}
