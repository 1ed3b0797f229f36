//! [`EventStore`]: the writer, the read pool and the broadcast of one database file, opened together.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::catalogue::DomainEvent;
use crate::envelope::{Metadata, NewEvent, Position};
use crate::error::StoreError;
use crate::reader::{PooledConnection, ReadPool};
use crate::schema::{self, Durability};
use crate::writer::{ExpectedVersion, Projector, Writer, WriterOptions, WriterThread};

/// How to open a store.
#[derive(Debug, Clone, Copy, Default)]
pub struct StoreOptions {
    pub durability: Durability,
    pub writer: WriterOptions,
}

/// The event store of one database file. Cheap to clone; the writer thread stops when the last clone is
/// dropped after [`EventStore::close`] (or at drop, without waiting).
#[derive(Clone)]
pub struct EventStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    /// Sends work to the one writer thread.
    writer: Writer,
    /// Read-only connections for queries outside the writer.
    readers: ReadPool,
    /// Joined on close, so that a closed store has flushed everything.
    thread: std::sync::Mutex<Option<WriterThread>>,
}

impl EventStore {
    /// Opens (creating and migrating if needed) the database at `path` and starts its writer.
    pub fn open(path: &Path, options: StoreOptions, projector: Box<dyn Projector>) -> Result<Self, StoreError> {
        let conn = schema::open_writable(path, options.durability)?;
        let (writer, thread) = Writer::spawn(conn, projector, options.writer)?;
        Ok(Self {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                writer,
                readers: ReadPool::new(path, 16),
                thread: std::sync::Mutex::new(Some(thread)),
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    pub fn writer(&self) -> &Writer {
        &self.inner.writer
    }

    /// A read-only connection: it sees everything committed when its transaction (each statement) began.
    pub fn reader(&self) -> Result<PooledConnection<'_>, StoreError> {
        self.inner.readers.get()
    }

    pub fn head(&self) -> Position {
        self.inner.writer.head()
    }

    /// Appends a history made beforehand (a benchmark's log, a test's seed), each event to its own stream in
    /// order, `chunk` events to a transaction, the projections applied. Nothing is decided: not for commands.
    pub fn append_history_blocking(
        &self,
        events: &[DomainEvent],
        metadata: &Metadata,
        chunk: usize,
    ) -> Result<(), StoreError> {
        for part in events.chunks(chunk.max(1)) {
            let batch: Vec<(String, NewEvent)> = part
                .iter()
                .map(|e| (e.stream(), NewEvent::from_domain(e, metadata)))
                .collect();
            self.writer().execute_blocking(move |unit| -> Result<(), StoreError> {
                for (stream, event) in batch {
                    unit.append(&stream, ExpectedVersion::Any, vec![event])
                        .map_err(|e| match e {
                            crate::error::AppendError::Store(s) => s,
                            other => StoreError::Commit(other.to_string()),
                        })?;
                }
                Ok(())
            })?;
        }
        Ok(())
    }

    /// Stops the writer once every queued job has run, and waits for it. Other clones of this store can no
    /// longer write afterwards: their jobs are answered with [`StoreError::WriterStopped`].
    pub fn close(self) {
        let thread = self.inner.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        // The writer thread ends when every sender is gone; this store's sender goes with `self`.
        match Arc::try_unwrap(self.inner) {
            Ok(inner) => {
                drop(inner.writer);
                if let Some(t) = thread {
                    t.join();
                }
            }
            Err(_) => {
                tracing::debug!("store closed while other handles remain; the writer stops with the last one")
            }
        }
    }
}
