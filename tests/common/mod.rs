//! Shared by the integration tests: a fresh data directory with an open `Cairn`, and request helpers.
#![allow(dead_code, clippy::unwrap_used)] // each test file uses a different part; helpers panic on failure

use std::path::{Path, PathBuf};

use cairn::commands::client::RegisterClient;
use cairn::commands::file::Stored;
use cairn::services::upload::Upload;
use cairn::services::ServiceError;
use cairn::{Cairn, CommandError, Options};
use cairn_events::catalogue::FileVerified;
use cairn_events::{Durability, Metadata};
use rusqlite::Connection;
use uuid::Uuid;

pub mod process;

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

    /// Uploads through the upload service; a refusal comes back as the command's error.
    pub fn upload(&self, client: Uuid, name: &str, content: &[u8]) -> Result<Stored, CommandError> {
        let upload = Upload {
            client_id: client,
            filename: name.into(),
            ..Upload::default()
        };
        self.upload_as(upload, content, Metadata::client(client))
    }

    pub fn upload_as(&self, upload: Upload, content: &[u8], metadata: Metadata) -> Result<Stored, CommandError> {
        match cairn::services::upload::upload_blocking(&self.cairn, upload, content, metadata) {
            Ok(stored) => Ok(stored),
            Err(ServiceError::Command(e)) => Err(e),
            Err(other) => panic!("the upload failed outside its command: {other}"),
        }
    }

    /// Verifies a file through the verify service.
    pub fn verify(&self, file: Uuid) -> Result<FileVerified, ServiceError> {
        block_on(cairn::services::verify::verify_file(&self.cairn, file, admin()))
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

/// Runs a future to its end on a runtime of its own, for the tests that have none.
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(future)
}
