//! The one writer: an OS thread that owns the only read-write connection and commits in groups.
//!
//! Work arrives as jobs (closures over a [`Unit`]). The writer drains what is queued, up to a bound, into one
//! transaction. There is no savepoint per command (decision 0001), yet one command's error touches no other: a
//! command that fails before writing has nothing to undo, and one that fails after writing is undone by rolling
//! the transaction back and rewriting the events of the batch's earlier commands. After the single `COMMIT` it
//! answers every job and publishes the committed events. Nothing is published or acknowledged that was not
//! committed.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use rusqlite::{params, Connection, OptionalExtension};
use tokio::sync::broadcast;

use crate::catalogue::{DecodeError, DomainEvent};
use crate::chain::{canonical_bytes_into, chain_hash, crc, EventFields, GENESIS};
use crate::envelope::{NewEvent, Position, RecordedEvent};
use crate::error::{AppendError, StoreError};

/// The version a command expects its stream to be at when it appends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectedVersion {
    /// Append whatever the stream's version.
    Any,
    /// The stream must not exist yet (creating an entity).
    NoStream,
    /// The stream must exist (acting on an entity).
    StreamExists,
    /// The stream must be at exactly this version (optimistic concurrency).
    Exact(i64),
}

impl ExpectedVersion {
    fn admits(self, actual: i64) -> bool {
        match self {
            Self::Any => true,
            Self::NoStream => actual == 0,
            Self::StreamExists => actual > 0,
            Self::Exact(v) => actual == v,
        }
    }

    fn describe(self) -> String {
        match self {
            Self::Any => "any".into(),
            Self::NoStream => "no stream".into(),
            Self::StreamExists => "an existing stream".into(),
            Self::Exact(v) => v.to_string(),
        }
    }
}

/// What an append did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    /// The positions of the events, in order.
    pub positions: Vec<Position>,
    /// The stream's version after the append.
    pub version: i64,
    /// True when every event id was already stored: nothing was written, the stored positions are returned.
    pub duplicate: bool,
}

/// Why a projection could not apply an event.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Sql(#[from] rusqlite::Error),
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

/// The read tables, as the writer sees them: applied to every event in the transaction that appends it.
pub trait Projector: Send + 'static {
    /// Applies one event. Reads only the event and the read tables (never the clock, disk or network), so that
    /// replay is deterministic. `typed` is the event already decoded, when the appender had it.
    fn apply(
        &mut self,
        conn: &Connection,
        event: &RecordedEvent,
        typed: Option<&DomainEvent>,
    ) -> Result<(), ApplyError>;

    /// Records that the read tables now reflect the log up to `event` (called once per batch, before COMMIT).
    fn checkpoint(&mut self, conn: &Connection, event: &RecordedEvent) -> Result<(), ApplyError>;
}

/// For a log without read tables (the "log only" benchmark).
pub struct NoProjections;

impl Projector for NoProjections {
    fn apply(&mut self, _: &Connection, _: &RecordedEvent, _: Option<&DomainEvent>) -> Result<(), ApplyError> {
        Ok(())
    }
    fn checkpoint(&mut self, _: &Connection, _: &RecordedEvent) -> Result<(), ApplyError> {
        Ok(())
    }
}

/// Work run once, after the batch that holds its command committed, on the writer thread and before the next
/// batch begins: nothing else can commit in between. Removing an orphaned blob is one.
pub type AfterCommit = Box<dyn FnOnce(&Connection) + Send>;

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
    /// Reused for every event's canonical bytes.
    buf: Vec<u8>,
    /// Stream versions as of the open transaction. Exact, because this thread is the only writer; cleared
    /// whenever a transaction is rolled back, and when it grows past [`VERSION_CACHE`] streams.
    versions: std::collections::HashMap<String, i64>,
}

/// The most stream versions the writer remembers before it starts again from empty.
const VERSION_CACHE: usize = 65_536;

/// What a command sees inside the writer: the connection (to read the read tables and the log) and `append`.
pub struct Unit<'w> {
    state: &'w mut WriterState,
    after_commit: Vec<AfterCommit>,
    /// Set when an append failed halfway: the command's writes are then undone whatever it returns.
    poisoned: bool,
    /// Set once the command began writing: undoing it then needs a rollback, otherwise nothing.
    wrote: bool,
}

impl Unit<'_> {
    /// The writer's connection, inside the batch's transaction: it sees every earlier command of the batch.
    pub fn conn(&self) -> &Connection {
        &self.state.conn
    }

    /// The version of a stream (0 when it does not exist).
    pub fn stream_version(&self, stream: &str) -> Result<i64, StoreError> {
        if let Some(v) = self.state.versions.get(stream) {
            return Ok(*v);
        }
        Ok(self
            .state
            .conn
            .prepare_cached("SELECT coalesce(max(version), 0) FROM events WHERE stream = ?1")?
            .query_row([stream], |r| r.get(0))?)
    }

    /// Runs `f` after this command's batch commits (not at all if it does not).
    pub fn after_commit(&mut self, f: impl FnOnce(&Connection) + Send + 'static) {
        self.after_commit.push(Box::new(f));
    }

    /// Appends events to one stream and applies every projection to them.
    ///
    /// Idempotent by event id: when every id is already stored, nothing is written and the stored positions are
    /// returned. An error other than a conflict found before writing poisons the unit: its writes are undone
    /// (the transaction rolled back and the batch's earlier events rewritten) whatever the command then returns.
    pub fn append(
        &mut self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<Appended, AppendError> {
        let result = self.try_append(stream, expected, events);
        if let Err(AppendError::Store(_)) = result {
            self.poisoned = true;
        }
        result
    }

    fn try_append(
        &mut self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<Appended, AppendError> {
        if events.is_empty() {
            return Err(AppendError::Empty);
        }
        let actual = self.stream_version(stream)?;
        if !expected.admits(actual) {
            // A retry of an append that already succeeded sees its own write as a conflict: answer it as stored.
            if let Some(stored) = self.already_stored(&events)? {
                return Ok(stored);
            }
            return Err(AppendError::Conflict {
                stream: stream.to_owned(),
                expected: expected.describe(),
                actual,
            });
        }
        let count = events.len() as i64;
        let ids: Vec<uuid::Uuid> = events.iter().map(|e| e.id).collect();
        let mut positions = Vec::with_capacity(events.len());
        for (i, event) in events.into_iter().enumerate() {
            let version = actual + 1 + i as i64;
            let id = event.id;
            match self.insert(stream, version, event) {
                Ok(position) => positions.push(position),
                Err(e) if is_unique_violation(&e, "events.id") => {
                    if i == 0 {
                        if let Some(stored) = self.already_stored_ids(&ids)? {
                            return Ok(stored);
                        }
                    }
                    let position = self.position_of(id)?.unwrap_or_default();
                    self.poisoned = true;
                    return Err(AppendError::PartialDuplicate { id, position });
                }
                Err(e) if is_unique_violation(&e, "events.stream") => {
                    self.poisoned = true;
                    return Err(AppendError::Conflict {
                        stream: stream.to_owned(),
                        expected: expected.describe(),
                        actual: version,
                    });
                }
                Err(e) => return Err(AppendError::Store(e)),
            }
        }
        let version = actual + count;
        let versions = &mut self.state.versions;
        if versions.len() >= VERSION_CACHE {
            versions.clear();
        }
        versions.insert(stream.to_owned(), version);
        Ok(Appended {
            positions,
            version,
            duplicate: false,
        })
    }

    fn position_of(&self, id: uuid::Uuid) -> rusqlite::Result<Option<Position>> {
        self.state
            .conn
            .prepare_cached("SELECT position FROM events WHERE id = ?1")?
            .query_row([id.to_string()], |r| r.get(0))
            .optional()
    }

    /// When every id is stored, the stored positions and the stream's version; `None` when none is.
    fn already_stored(&self, events: &[NewEvent]) -> Result<Option<Appended>, AppendError> {
        let ids: Vec<uuid::Uuid> = events.iter().map(|e| e.id).collect();
        self.already_stored_ids(&ids)
    }

    fn already_stored_ids(&self, ids: &[uuid::Uuid]) -> Result<Option<Appended>, AppendError> {
        let mut positions = Vec::with_capacity(ids.len());
        let mut version = 0;
        for id in ids {
            let found: Option<(Position, i64)> = self
                .state
                .conn
                .prepare_cached("SELECT position, version FROM events WHERE id = ?1")?
                .query_row([id.to_string()], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            match found {
                Some((position, v)) => {
                    positions.push(position);
                    version = v;
                }
                None if positions.is_empty() => return Ok(None),
                None => {
                    return Err(AppendError::PartialDuplicate {
                        id: ids[0],
                        position: positions[0],
                    })
                }
            }
        }
        Ok(Some(Appended {
            positions,
            version,
            duplicate: true,
        }))
    }

    /// Writes one row, chains it, and applies the projections to it.
    fn insert(&mut self, stream: &str, version: i64, event: NewEvent) -> Result<Position, StoreError> {
        self.wrote = true;
        let st = &mut *self.state;
        let position = st.head + 1;
        let now = now_rfc3339();
        let recorded_at = if now > st.last_time { now } else { st.last_time.clone() };
        canonical_bytes_into(
            &EventFields {
                position,
                id: event.id,
                stream,
                version,
                event_type: &event.event_type,
                schema: event.schema,
                data: &event.data,
                metadata: &event.metadata,
                recorded_at: &recorded_at,
            },
            &mut st.buf,
        );
        let crc = crc(&st.buf);
        let hash = chain_hash(&st.head_hash, &st.buf);
        let typed = event.typed;
        let recorded = RecordedEvent {
            position,
            id: event.id,
            stream: stream.to_owned(),
            version,
            event_type: event.event_type,
            schema: event.schema,
            data: event.data,
            metadata: event.metadata,
            recorded_at,
            crc,
            hash,
        };
        write_row(&st.conn, &mut *st.projector, &recorded, typed.as_ref())?;
        st.head = position;
        st.head_hash = hash;
        st.last_time.clone_from(&recorded.recorded_at);
        st.pending.push(recorded);
        Ok(position)
    }
}

/// Inserts an event's row and applies every projection to it.
fn write_row(
    conn: &Connection,
    projector: &mut dyn Projector,
    e: &RecordedEvent,
    typed: Option<&DomainEvent>,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO events (position, id, stream, version, type, schema, data, metadata, recorded_at, crc, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        e.position,
        &*e.id.hyphenated().encode_lower(&mut uuid::Uuid::encode_buffer()),
        e.stream,
        e.version,
        e.event_type,
        e.schema,
        e.data,
        e.metadata,
        e.recorded_at,
        e.crc,
        hex_hash(&e.hash, &mut [0u8; 64]),
    ])?;
    projector.apply(conn, e, typed).map_err(|err| StoreError::Projection {
        position: e.position,
        detail: err.to_string(),
    })
}

/// Lowercase hex of a hash, written into `buf` (one event at a time: no allocation on the hot path).
fn hex_hash<'b>(hash: &[u8; 32], buf: &'b mut [u8; 64]) -> &'b str {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (i, byte) in hash.iter().enumerate() {
        buf[2 * i] = DIGITS[usize::from(byte >> 4)];
        buf[2 * i + 1] = DIGITS[usize::from(byte & 15)];
    }
    std::str::from_utf8(buf).expect("hex digits are ASCII")
}

fn is_unique_violation(e: &StoreError, column_prefix: &str) -> bool {
    match e {
        StoreError::Sql(rusqlite::Error::SqliteFailure(f, Some(msg))) => {
            f.code == rusqlite::ErrorCode::ConstraintViolation && msg.contains(column_prefix)
        }
        _ => false,
    }
}

/// RFC 3339 UTC with microseconds, the format of `recorded_at`.
///
/// Formatted field by field: chrono's `format` parses its pattern on every call, which showed in the writer's
/// profile.
pub fn now_rfc3339() -> String {
    use chrono::{Datelike, Timelike};
    let now = chrono::Utc::now();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        now.year(),
        now.month(),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        // A leap second shows as nanoseconds past 1e9; keep the field at six digits.
        (now.nanosecond() / 1000).min(999_999)
    )
}

/// Answers a job's caller once its batch committed (`Ok`) or failed.
type Reply = Box<dyn FnOnce(Result<(), Arc<StoreError>>) + Send>;

/// What a job hands back: whether to keep its writes, and how to answer once the batch's fate is known.
struct Completion {
    keep: bool,
    reply: Reply,
}

/// One queued piece of work. `refuse` answers it without running it, when its batch failed first.
trait Job: Send {
    fn run(self: Box<Self>, unit: &mut Unit<'_>) -> Completion;
    fn refuse(self: Box<Self>, error: Arc<StoreError>);
}

struct CommandJob<F, T, E> {
    f: F,
    tx: tokio::sync::oneshot::Sender<Result<T, E>>,
}

impl<F, T, E> CommandJob<F, T, E>
where
    T: Send + 'static,
    E: From<StoreError> + Send + 'static,
{
    fn answer(tx: tokio::sync::oneshot::Sender<Result<T, E>>, answer: Result<T, E>) {
        if tx.send(answer).is_err() {
            tracing::debug!("a command's caller stopped waiting before its answer");
        }
    }
}

impl<F, T, E> Job for CommandJob<F, T, E>
where
    T: Send + 'static,
    E: From<StoreError> + Send + 'static,
    F: FnOnce(&mut Unit<'_>) -> Result<T, E> + Send + 'static,
{
    fn run(self: Box<Self>, unit: &mut Unit<'_>) -> Completion {
        let CommandJob { f, tx } = *self;
        let Ok(result) = catch_unwind(AssertUnwindSafe(|| f(unit))) else {
            tracing::error!("a command panicked in the writer; its writes are undone");
            return Completion {
                keep: false,
                reply: Box::new(move |_| Self::answer(tx, Err(E::from(StoreError::CommandPanicked)))),
            };
        };
        Completion {
            keep: result.is_ok(),
            reply: Box::new(move |committed| {
                let answer = match committed {
                    Ok(()) => result,
                    Err(e) => Err(E::from(shared_error(&e))),
                };
                Self::answer(tx, answer);
            }),
        }
    }

    fn refuse(self: Box<Self>, error: Arc<StoreError>) {
        Self::answer(self.tx, Err(E::from(shared_error(&error))));
    }
}

/// Settings of the writer.
#[derive(Debug, Clone, Copy)]
pub struct WriterOptions {
    /// The most jobs one transaction takes.
    pub max_batch: usize,
    /// Capacity of the broadcast of committed events; a subscriber further behind catches up from the database.
    pub broadcast_capacity: usize,
}

impl Default for WriterOptions {
    fn default() -> Self {
        Self {
            max_batch: 512,
            broadcast_capacity: 16_384,
        }
    }
}

/// Counters the writer keeps about its batches, for benchmarks and `/api/status`.
#[derive(Debug, Default)]
pub struct WriterStats {
    pub batches: std::sync::atomic::AtomicU64,
    pub jobs: std::sync::atomic::AtomicU64,
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
            buf: Vec::with_capacity(1024),
            versions: std::collections::HashMap::new(),
        };
        let thread_committed = committed.clone();
        let thread_events = events.clone();
        let thread_stats = stats.clone();
        let handle = std::thread::Builder::new().name("cairn-writer".into()).spawn(move || {
            run(
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

/// A batch failure is shared by every job of the batch; each gets its own copy of the message.
fn shared_error(e: &Arc<StoreError>) -> StoreError {
    match &**e {
        StoreError::WriterStopped => StoreError::WriterStopped,
        other => StoreError::Commit(other.to_string()),
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

fn run(
    mut state: WriterState,
    rx: mpsc::Receiver<Box<dyn Job>>,
    max_batch: usize,
    committed: &AtomicI64,
    events: &broadcast::Sender<Arc<RecordedEvent>>,
    stats: &WriterStats,
) {
    let (notifier, notifications) = mpsc::channel::<Committed>();
    let publisher = events.clone();
    let notifier_thread = match std::thread::Builder::new()
        .name("cairn-notifier".into())
        .spawn(move || notify(notifications, publisher))
    {
        Ok(t) => Some(t),
        Err(e) => {
            tracing::error!(error = %e, "could not start the notifier thread; the writer answers callers itself");
            None
        }
    };
    let mut jobs: Vec<Box<dyn Job>> = Vec::with_capacity(max_batch);
    while let Ok(first) = rx.recv() {
        jobs.push(first);
        while jobs.len() < max_batch {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        stats.batches.fetch_add(1, Ordering::Relaxed);
        stats.jobs.fetch_add(jobs.len() as u64, Ordering::Relaxed);
        run_batch(&mut state, &mut jobs, committed, events, &notifier);
    }
    // Every handle is gone: answer what is pending, then leave the WAL folded into the database.
    drop(notifier);
    if let Some(t) = notifier_thread {
        if t.join().is_err() {
            tracing::error!("the notifier thread panicked");
        }
    }
    if let Err(e) = state.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);") {
        tracing::warn!(error = %e, "WAL checkpoint at writer shutdown failed");
    }
}

fn run_batch(
    state: &mut WriterState,
    jobs: &mut Vec<Box<dyn Job>>,
    committed: &AtomicI64,
    events: &broadcast::Sender<Arc<RecordedEvent>>,
    notifier: &mpsc::Sender<Committed>,
) {
    let start = (state.head, state.head_hash, state.last_time.clone());
    let mut replies = Vec::with_capacity(jobs.len());
    let mut effects: Vec<AfterCommit> = Vec::new();

    if let Err(e) = state.conn.execute_batch("BEGIN IMMEDIATE") {
        tracing::error!(error = %e, "could not begin a write transaction");
        let e = Arc::new(StoreError::Sql(e));
        for job in jobs.drain(..) {
            job.refuse(e.clone());
        }
        return;
    }

    // No savepoint per command: a command that fails does so, nearly always, before it writes, and then there
    // is nothing to undo. One that fails after writing is undone by rolling the transaction back and writing
    // again the events of the commands before it (the projections are deterministic, so this restores exactly
    // the state it started from). Savepoints would instead copy every page each command touches.
    let mut failure: Option<StoreError> = None;
    let mut queue = std::mem::take(jobs).into_iter();
    for job in queue.by_ref() {
        let mark = (
            state.head,
            state.head_hash,
            state.last_time.clone(),
            state.pending.len(),
        );
        let mut unit = Unit {
            state,
            after_commit: Vec::new(),
            poisoned: false,
            wrote: false,
        };
        let completion = job.run(&mut unit);
        let Unit {
            after_commit,
            poisoned,
            wrote,
            ..
        } = unit;
        replies.push(completion.reply);
        if completion.keep && !poisoned {
            effects.extend(after_commit);
            continue;
        }
        state.head = mark.0;
        state.head_hash = mark.1;
        state.last_time = mark.2;
        state.pending.truncate(mark.3);
        if wrote {
            state.versions.clear();
            if let Err(e) = redo(state) {
                failure = Some(e);
                break;
            }
        }
    }

    if failure.is_none() {
        if let Some(last) = state.pending.last() {
            if let Err(e) = state.projector.checkpoint(&state.conn, last) {
                failure = Some(StoreError::Projection {
                    position: last.position,
                    detail: e.to_string(),
                });
            }
        }
    }
    if failure.is_none() {
        if let Err(e) = state.conn.execute_batch("COMMIT") {
            failure = Some(StoreError::Sql(e));
        }
    }

    if let Some(e) = failure {
        tracing::error!(error = %e, "a write batch failed and was rolled back");
        if !state.conn.is_autocommit() {
            if let Err(rollback) = state.conn.execute_batch("ROLLBACK") {
                tracing::error!(error = %rollback, "rollback after a failed batch failed too");
            }
        }
        state.head = start.0;
        state.head_hash = start.1;
        state.last_time = start.2;
        state.pending.clear();
        state.versions.clear();
        let e = Arc::new(e);
        for job in queue {
            job.refuse(e.clone());
        }
        for reply in replies {
            reply(Err(e.clone()));
        }
        return;
    }

    committed.store(state.head, Ordering::Release);
    for effect in effects {
        effect(&state.conn);
    }
    // A batch of one or two (a quiet server) is answered here, saving its callers a thread hop; larger ones go to
    // the notifier. Events always go through the notifier, so they are published in commit order.
    if replies.len() <= INLINE_REPLIES {
        for reply in replies.drain(..) {
            reply(Ok(()));
        }
    }
    let committed_events = std::mem::take(&mut state.pending);
    if let Err(mpsc::SendError(done)) = notifier.send(Committed {
        replies,
        events: committed_events,
    }) {
        // The notifier is gone only if it panicked; answer here rather than leave callers waiting.
        done.deliver(events);
    }
}

/// Batches with at most this many commands are answered by the writer itself.
const INLINE_REPLIES: usize = 2;

/// A committed batch: the answers to send and the events to publish, in commit order.
struct Committed {
    replies: Vec<Reply>,
    events: Vec<RecordedEvent>,
}

impl Committed {
    fn deliver(self, broadcast: &broadcast::Sender<Arc<RecordedEvent>>) {
        for reply in self.replies {
            reply(Ok(()));
        }
        for event in self.events {
            // No receiver is not a failure: nobody is watching the live feed.
            let _no_subscribers = broadcast.send(Arc::new(event));
        }
    }
}

/// Answers callers and publishes events of committed batches, in order, so that the writer can begin the next
/// batch instead of waking each caller's thread itself.
fn notify(rx: mpsc::Receiver<Committed>, broadcast: broadcast::Sender<Arc<RecordedEvent>>) {
    while let Ok(done) = rx.recv() {
        done.deliver(&broadcast);
    }
}

/// Undoes a failed command's writes: rolls the transaction back, begins again, and rewrites the events the
/// batch's earlier commands appended (still in `pending`), applying the projections to them again.
fn redo(state: &mut WriterState) -> Result<(), StoreError> {
    tracing::debug!(
        kept = state.pending.len(),
        "a command failed after writing; rewriting the batch without it"
    );
    state.conn.execute_batch("ROLLBACK; BEGIN IMMEDIATE")?;
    for event in &state.pending {
        write_row(&state.conn, &mut *state.projector, event, None)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::now_rfc3339;

    #[test]
    fn recorded_at_is_rfc3339_utc_with_microseconds() {
        let t = now_rfc3339();
        assert_eq!(t.len(), 27, "{t}");
        assert!(t.ends_with('Z'));
        let parsed = chrono::DateTime::parse_from_rfc3339(&t).unwrap();
        assert_eq!(parsed.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(), t);
    }
}
