//! [`Cairn`]: one open data directory: the event store with every projection, the blob store, and the
//! operations that span both (an upload, a verification).

use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use cairn_events::catalogue::{Direction, FileVerified};
use cairn_events::{Durability, EventStore, Metadata, StoreError, StoreOptions, WriterOptions};
use cairn_projections::{files, Projections};
use uuid::Uuid;

use crate::blobs::{BlobStore, Declared};
use crate::commands::file::{StoreFile, Stored, VerifyFile};
use crate::commands::transfer::{FailTransfer, StartTransfer};
use crate::commands::{self, validate, Command, Executed};
use crate::datadir::{DataDir, DataDirError};
use crate::error::CommandError;

/// How to open a data directory.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub durability: Durability,
    /// The largest upload accepted, in bytes.
    pub max_upload: u64,
    /// The most commands one transaction takes.
    pub max_batch: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            durability: Durability::Full,
            max_upload: 1 << 30,
            max_batch: WriterOptions::default().max_batch,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    DataDir(#[from] DataDirError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot open the blob store: {0}")]
    Blobs(#[from] std::io::Error),
}

/// The answer to a queued command, once its batch committed.
pub type Pending<T> = tokio::sync::oneshot::Receiver<Result<Executed<T>, CommandError>>;

/// A file upload's metadata; the content comes as a reader.
#[derive(Debug, Clone, Default)]
pub struct Upload {
    pub client_id: Uuid,
    pub filename: String,
    pub original_path: Option<String>,
    pub mime_type: Option<String>,
    /// The size the client announced, for progress.
    pub expected_bytes: Option<u64>,
    pub declared: Declared,
}

/// An open data directory. Cheap to clone.
#[derive(Clone)]
pub struct Cairn {
    inner: Arc<Inner>,
}

struct Inner {
    /// Holds the directory's lock for as long as this process writes to it.
    data: DataDir,
    store: EventStore,
    blobs: Arc<BlobStore>,
    options: Options,
}

impl Cairn {
    /// Opens (creating if needed) the data directory at `root`.
    pub fn open(root: &Path, options: Options) -> Result<Self, OpenError> {
        let data = DataDir::open(root)?;
        let blobs = Arc::new(BlobStore::open(
            &data.blobs_path(),
            options.durability == Durability::Full,
        )?);
        let store = EventStore::open(
            &data.db_path(),
            StoreOptions {
                durability: options.durability,
                writer: WriterOptions {
                    max_batch: options.max_batch,
                    ..WriterOptions::default()
                },
            },
            Box::new(Projections),
        )?;
        Ok(Self {
            inner: Arc::new(Inner {
                data,
                store,
                blobs,
                options,
            }),
        })
    }

    pub fn store(&self) -> &EventStore {
        &self.inner.store
    }

    pub fn blobs(&self) -> &Arc<BlobStore> {
        &self.inner.blobs
    }

    pub fn root(&self) -> &Path {
        self.inner.data.root()
    }

    pub fn options(&self) -> &Options {
        &self.inner.options
    }

    /// Queues a command; the receiver gets its result after the batch holding it committed.
    pub fn submit<C: Command>(&self, command: C, metadata: Metadata) -> Result<Pending<C::Output>, CommandError> {
        let blobs = self.inner.blobs.clone();
        Ok(self
            .inner
            .store
            .writer()
            .submit(move |unit| commands::run(unit, &blobs, command, &metadata))?)
    }

    pub async fn execute<C: Command>(
        &self,
        command: C,
        metadata: Metadata,
    ) -> Result<Executed<C::Output>, CommandError> {
        self.submit(command, metadata)?
            .await
            .map_err(|_| CommandError::Store(StoreError::CommandPanicked))?
    }

    /// Runs a command and waits (blocking; not from inside an async task).
    pub fn execute_blocking<C: Command>(
        &self,
        command: C,
        metadata: Metadata,
    ) -> Result<Executed<C::Output>, CommandError> {
        self.submit(command, metadata)?
            .blocking_recv()
            .map_err(|_| CommandError::Store(StoreError::CommandPanicked))?
    }

    /// Stores a file from a byte stream: starts a transfer, streams the content into the blob store while
    /// hashing it, then records the file and completes the transfer in one command; on any failure records the
    /// transfer as failed and stores nothing.
    pub fn upload_blocking(&self, upload: Upload, body: impl Read, metadata: Metadata) -> Result<Stored, CommandError> {
        let filename = validate::filename(&upload.filename)?;
        let transfer_id = Uuid::now_v7();
        let mut metadata = metadata;
        metadata.correlation_id.get_or_insert_with(|| transfer_id.to_string());
        self.execute_blocking(
            StartTransfer {
                transfer_id,
                client_id: Some(upload.client_id),
                file_id: None,
                filename: filename.clone(),
                direction: Direction::Upload,
                expected_bytes: upload.expected_bytes,
            },
            metadata.clone(),
        )?;
        let started = Instant::now();
        let fail = |error: &CommandError| {
            let failed = FailTransfer {
                transfer_id,
                bytes: 0,
                duration_ms: started.elapsed().as_millis() as u64,
                error: error.to_string(),
            };
            if let Err(e) = self.execute_blocking(failed, metadata.clone()) {
                tracing::error!(%transfer_id, error = %e, "could not record a failed transfer");
            }
        };
        let blob = match self
            .inner
            .blobs
            .write_from(body, self.inner.options.max_upload, &upload.declared)
        {
            Ok(b) => b,
            Err(e) => {
                let e = CommandError::from(e);
                fail(&e);
                return Err(e);
            }
        };
        let store = StoreFile {
            file_id: Uuid::now_v7(),
            client_id: upload.client_id,
            filename,
            original_path: upload.original_path,
            mime_type: upload.mime_type,
            blob,
            transfer: Some((transfer_id, started.elapsed().as_millis() as u64)),
        };
        match self.execute_blocking(store, metadata.clone()) {
            Ok(done) => Ok(done.output),
            Err(e) => {
                fail(&e);
                Err(e)
            }
        }
    }

    /// Re-reads a file's blob (off the writer) and records the outcome.
    pub fn verify_file_blocking(&self, file_id: Uuid, metadata: Metadata) -> Result<FileVerified, CommandError> {
        let sha = {
            let conn = self.inner.store.reader()?;
            files::get(&conn, &file_id.to_string())?
                .ok_or(CommandError::FileNotFound(file_id))?
                .checksum
        };
        let found = self
            .inner
            .blobs
            .digest(&sha)
            .map_err(|e| format!("cannot read the blob: {e}"));
        Ok(self.execute_blocking(VerifyFile { file_id, found }, metadata)?.output)
    }

    /// Records as failed every transfer the log still shows under way: called by `cairn serve` as it starts,
    /// when no upload of this process can be running, so these are uploads a crash or a kill cut short.
    /// Answers how many it closed.
    pub async fn fail_interrupted_transfers(&self, metadata: Metadata) -> Result<usize, CommandError> {
        let open: Vec<(String, i64, String)> = {
            let conn = self.inner.store.reader()?;
            let mut stmt = conn.prepare(
                "SELECT id, bytes, started_at FROM transfers WHERE status = 'InProgress' ORDER BY started_at",
            )?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        let now = chrono::Utc::now();
        let mut closed = 0;
        for (id, bytes, started_at) in open {
            let Ok(transfer_id) = Uuid::parse_str(&id) else {
                continue;
            };
            let duration_ms = chrono::DateTime::parse_from_rfc3339(&started_at)
                .map(|t| (now - t.with_timezone(&chrono::Utc)).num_milliseconds().max(0) as u64)
                .unwrap_or(0);
            let failed = FailTransfer {
                transfer_id,
                bytes: bytes.max(0) as u64,
                duration_ms,
                error: "interrupted: the server stopped before the transfer ended".into(),
            };
            match self.execute(failed, metadata.clone()).await {
                Ok(_) => closed += 1,
                Err(CommandError::TransferFinished { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(closed)
    }

    /// Flushes and stops the writer (when this is the last handle) and releases the directory.
    pub fn close(self) {
        if let Ok(inner) = Arc::try_unwrap(self.inner) {
            inner.store.close();
        }
    }
}
