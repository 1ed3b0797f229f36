//! [`Cairn`]: one open data directory: the event store with every projection and the blob store, and the way
//! commands reach the writer.

use std::path::Path;
use std::sync::Arc;

use cairn_events::{Durability, EventStore, Metadata, StoreError, StoreOptions, WriterOptions};
use cairn_projections::Projections;

use crate::blobs::BlobStore;
use crate::commands::{self, Command, Executed};
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
    #[error("cannot make the database private to this user: {0}")]
    Permissions(#[source] std::io::Error),
}

/// The answer to a queued command, once its batch committed.
pub type Pending<T> = tokio::sync::oneshot::Receiver<Result<Executed<T>, CommandError>>;

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
        let db = data.db_path();
        for suffix in ["", "-wal", "-shm"] {
            let mut path = db.as_os_str().to_owned();
            path.push(suffix);
            crate::datadir::private_file(Path::new(&path)).map_err(OpenError::Permissions)?;
        }
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

    /// Runs maintenance work on the writer's own connection (the only read-write one), then the command it
    /// returns to record it, in one transaction; answers the work's value and what the command did.
    pub async fn maintain<V, C, F>(&self, work: F, metadata: Metadata) -> Result<(V, Executed<C::Output>), CommandError>
    where
        V: Send + 'static,
        C: Command,
        F: FnOnce(&rusqlite::Connection) -> Result<(V, C), CommandError> + Send + 'static,
    {
        let blobs = self.inner.blobs.clone();
        self.inner
            .store
            .writer()
            .execute(move |unit| {
                let (value, command) = work(unit.conn())?;
                Ok((value, commands::run(unit, &blobs, command, &metadata)?))
            })
            .await
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

    /// Flushes and stops the writer (when this is the last handle) and releases the directory.
    pub fn close(self) {
        if let Ok(inner) = Arc::try_unwrap(self.inner) {
            inner.store.close();
        }
    }
}
