//! The one writer: an OS thread that owns the only read-write connection and commits in groups.
//!
//! Work arrives as jobs (closures over a [`Unit`]). The writer drains what is queued, up to a bound, into one
//! transaction. There is no savepoint per command (decision 0001), yet one command's error touches no other: a
//! command that fails before writing has nothing to undo, and one that fails after writing is undone by rolling
//! the transaction back and rewriting the events of the batch's earlier commands. After the single `COMMIT` it
//! answers every job and publishes the committed events. Nothing is published or acknowledged that was not
//! committed.
//!
//! - [`Writer`] (this file): the cheap handle that sends jobs, and [`Writer::spawn`], which starts the thread.
//! - `unit`: [`Unit`], what a command sees: its reads, and `append` with expected versions and idempotency.
//! - `row`: one row of the log: chaining, the insert, applying the projections; [`now_rfc3339`].
//! - `projector`: the [`Projector`] trait the read tables implement, and [`NoProjections`].
//! - `job`: the hand-off of a command's closure to the writer thread, and its answer.
//! - `batch`: the writer's loop: one transaction per batch, one `COMMIT` (group commit).
//! - `redo`: undoing a command that failed after writing, by rolling back and rewriting (decision 0001).
//! - `notifier`: the thread that answers callers and publishes events after `COMMIT`, in commit order.

mod batch;
mod job;
mod notifier;
mod projector;
mod redo;
mod row;
mod unit;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use rusqlite::{Connection, OptionalExtension};
use tokio::sync::broadcast;

use crate::chain::GENESIS;
use crate::envelope::{Position, RecordedEvent};
use crate::error::StoreError;
use job::{CommandJob, Job};

pub use projector::{ApplyError, NoProjections, Projector};
pub use row::now_rfc3339;
pub use unit::{AfterCommit, Appended, BeforeCommit, ExpectedVersion, Unit};

/// The writer's own state, which lives as long as its thread.
struct WriterState {
    /// The only read-write connection to the database.
    conn: Connection,
    projector: Box<dyn Projector>,
    /// The position and hash of the last appended event (committed or in the open transaction).
    head: Position,
    head_hash: [u8; 32],
    /// The `recorded_at` of the last event: times never go backwards along the log, so time filters can trust
    /// position order.
    last_time: String,
    /// Events appended in the open transaction, published after COMMIT.
    pending: Vec<RecordedEvent>,
    /// The Merkle tree's right edge as of the open transaction; `None` when the writer keeps no tree (a
    /// benchmark's comparison).
    tree: Option<crate::merkle::Frontier>,
    /// Reused for every event's canonical bytes.
    buf: Vec<u8>,
    /// Stream versions as of the open transaction. Exact, because this thread is the only writer; cleared
    /// whenever a transaction is rolled back, and when it grows past [`unit::VERSION_CACHE`] streams.
    versions: std::collections::HashMap<String, i64>,
}

/// Settings of the writer.
#[derive(Debug, Clone, Copy)]
pub struct WriterOptions {
    /// The most jobs one transaction takes.
    pub max_batch: usize,
    /// Capacity of the broadcast of committed events; a subscriber further behind catches up from the database.
    pub broadcast_capacity: usize,
    /// Keep the Merkle tree over the log in the events' transactions (always, but for the benchmark that
    /// measures what it costs). A writer that keeps it catches it up from the log as it starts.
    pub merkle: bool,
}

impl Default for WriterOptions {
    fn default() -> Self {
        Self {
            max_batch: 512,
            broadcast_capacity: 16_384,
            merkle: true,
        }
    }
}

/// Counters the writer keeps about its batches, for benchmarks, `/api/status` and `/metrics`.
#[derive(Debug, Default)]
pub struct WriterStats {
    pub batches: std::sync::atomic::AtomicU64,
    pub jobs: std::sync::atomic::AtomicU64,
    /// How long each batch took, from its first statement to its commit (the fsync included).
    pub batch_seconds: Histogram,
}

/// A histogram of durations with fixed bounds, kept in atomics (one add per observation, no lock).
#[derive(Debug, Default)]
pub struct Histogram {
    /// Observations at or under each bound of [`Histogram::BOUNDS`] and above the one before; the last
    /// counts those above every bound.
    counts: [std::sync::atomic::AtomicU64; Histogram::BOUNDS.len() + 1],
    micros: std::sync::atomic::AtomicU64,
}

impl Histogram {
    /// The upper bounds, in seconds.
    pub const BOUNDS: [f64; 12] = [
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
    ];

    pub fn observe(&self, d: std::time::Duration) {
        use std::sync::atomic::Ordering;
        let seconds = d.as_secs_f64();
        let at = Self::BOUNDS
            .iter()
            .position(|b| seconds <= *b)
            .unwrap_or(Self::BOUNDS.len());
        self.counts[at].fetch_add(1, Ordering::Relaxed);
        self.micros
            .fetch_add(u64::try_from(d.as_micros()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// (sum in seconds, count, the count in each bucket by its upper bound, the last `+Inf`).
    pub fn snapshot(&self) -> (f64, u64, Vec<(f64, u64)>) {
        use std::sync::atomic::Ordering;
        let mut running = 0;
        let mut buckets = Vec::with_capacity(Self::BOUNDS.len() + 1);
        for (i, bound) in Self::BOUNDS.iter().chain([f64::INFINITY].iter()).enumerate() {
            let n = self.counts[i].load(Ordering::Relaxed);
            running += n;
            buckets.push((*bound, n));
        }
        let sum = self.micros.load(Ordering::Relaxed) as f64 / 1e6;
        (sum, running, buckets)
    }
}

/// A cheap-to-clone handle that sends work to the writer thread.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Box<dyn Job>>,
    /// The last committed position, readable without a database round trip.
    committed: Arc<AtomicI64>,
    events: broadcast::Sender<Arc<RecordedEvent>>,
    stats: Arc<WriterStats>,
}

/// Owns the writer thread; dropping every [`Writer`] and then joining this flushes and stops it.
pub struct WriterThread {
    handle: Option<JoinHandle<()>>,
}

impl WriterThread {
    /// Waits until every queued job ran and the thread ended. Call after dropping every [`Writer`].
    pub fn join(mut self) {
        if let Some(h) = self.handle.take() {
            if h.join().is_err() {
                tracing::error!("the writer thread panicked");
            }
        }
    }
}

impl Writer {
    /// Starts the writer thread on an open, migrated connection.
    pub fn spawn(
        conn: Connection,
        projector: Box<dyn Projector>,
        options: WriterOptions,
    ) -> Result<(Writer, WriterThread), StoreError> {
        let (head, head_hash, last_time) = load_head(&conn)?;
        let tree = match options.merkle {
            true => Some(crate::merkle::store::catch_up(&conn, head).map_err(StoreError::from)?),
            false => None,
        };
        let committed = Arc::new(AtomicI64::new(head));
        let (events, _) = broadcast::channel(options.broadcast_capacity.max(1));
        let stats = Arc::new(WriterStats::default());
        let (tx, rx) = mpsc::channel::<Box<dyn Job>>();
        let state = WriterState {
            conn,
            projector,
            head,
            head_hash,
            last_time,
            pending: Vec::new(),
            tree,
            buf: Vec::with_capacity(1024),
            versions: std::collections::HashMap::new(),
        };
        let thread_committed = committed.clone();
        let thread_events = events.clone();
        let thread_stats = stats.clone();
        let handle = std::thread::Builder::new().name("cairn-writer".into()).spawn(move || {
            batch::run(
                state,
                rx,
                options.max_batch.max(1),
                &thread_committed,
                &thread_events,
                &thread_stats,
            )
        })?;
        Ok((
            Writer {
                tx,
                committed,
                events,
                stats,
            },
            WriterThread { handle: Some(handle) },
        ))
    }

    /// The last committed position.
    pub fn head(&self) -> Position {
        self.committed.load(Ordering::Acquire)
    }

    /// Committed events, in order, as they commit. Subscribe before reading history so nothing falls between.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<RecordedEvent>> {
        self.events.subscribe()
    }

    pub fn stats(&self) -> &WriterStats {
        &self.stats
    }

    /// Sends a job; the receiver gets its result once the batch holding it committed (or failed to).
    ///
    /// The job's writes are kept when it returns `Ok`, and undone when it returns `Err`, panics, or an append of
    /// it failed halfway. There is no savepoint per command (decision 0001): a job that wrote nothing has nothing
    /// to undo, and one that wrote is undone by rolling the transaction back and rewriting the batch's earlier
    /// events.
    pub fn submit<T, E, F>(&self, f: F) -> Result<tokio::sync::oneshot::Receiver<Result<T, E>>, StoreError>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&mut Unit<'_>) -> Result<T, E> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Box<dyn Job> = Box::new(CommandJob { f, tx });
        self.tx.send(job).map_err(|_| StoreError::WriterStopped)?;
        Ok(rx)
    }

    /// Runs a job and waits for its committed result (async).
    pub async fn execute<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&mut Unit<'_>) -> Result<T, E> + Send + 'static,
    {
        let rx = self.submit(f)?;
        rx.await.map_err(|_| E::from(StoreError::CommandPanicked))?
    }

    /// Runs a job and waits for its committed result (blocking; not from inside an async task).
    pub fn execute_blocking<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&mut Unit<'_>) -> Result<T, E> + Send + 'static,
    {
        let rx = self.submit(f)?;
        rx.blocking_recv().map_err(|_| E::from(StoreError::CommandPanicked))?
    }
}

fn load_head(conn: &Connection) -> Result<(Position, [u8; 32], String), StoreError> {
    let last: Option<(Position, String, String)> = conn
        .query_row(
            "SELECT position, hash, recorded_at FROM events ORDER BY position DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    match last {
        None => Ok((0, GENESIS, String::new())),
        Some((position, hash, time)) => {
            let bytes = crate::reader::decode_hash(hash.as_bytes()).ok_or_else(|| StoreError::Projection {
                position,
                detail: "the stored hash of the last event is not 64 hex digits; run `cairn verify`".into(),
            })?;
            Ok((position, bytes, time))
        }
    }
}
