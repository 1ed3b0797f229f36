//! The writer's loop: it drains the queue into batches, runs each batch's commands in one transaction, undoes
//! a command that failed after writing, and commits once (group commit).

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{mpsc, Arc};

use tokio::sync::broadcast;

use super::job::Job;
use super::notifier::{notify, Committed, INLINE_REPLIES};
use super::redo::redo;
use super::{AfterCommit, BeforeCommit, Unit, WriterState, WriterStats};
use crate::envelope::RecordedEvent;
use crate::error::StoreError;

/// The writer thread: takes the first queued job and every job behind it (up to `max_batch`) as one batch, until
/// every [`Writer`](super::Writer) is gone; then lets the notifier finish and folds the WAL into the database.
pub(super) fn run(
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
        let started = std::time::Instant::now();
        run_batch(&mut state, &mut jobs, committed, events, &notifier);
        stats.batch_seconds.observe(started.elapsed());
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

/// Runs one batch in one transaction and commits it once; answers every job of it (directly or through the
/// notifier) with the batch's fate.
fn run_batch(
    state: &mut WriterState,
    jobs: &mut Vec<Box<dyn Job>>,
    committed: &AtomicI64,
    events: &broadcast::Sender<Arc<RecordedEvent>>,
    notifier: &mpsc::Sender<Committed>,
) {
    let start = (state.head, state.head_hash, state.last_time.clone());
    let tree_at_start = state.tree.clone();
    let mut replies = Vec::with_capacity(jobs.len());
    let mut effects: Vec<AfterCommit> = Vec::new();
    let mut preparations: Vec<BeforeCommit> = Vec::new();

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
            before_commit: Vec::new(),
            poisoned: false,
            wrote: false,
        };
        let completion = job.run(&mut unit);
        let Unit {
            after_commit,
            before_commit,
            poisoned,
            wrote,
            ..
        } = unit;
        replies.push(completion.reply);
        if completion.keep && !poisoned {
            effects.extend(after_commit);
            preparations.extend(before_commit);
            continue;
        }
        state.head = mark.0;
        state.head_hash = mark.1;
        state.last_time = mark.2;
        state.pending.truncate(mark.3);
        if wrote {
            state.versions.clear();
            if let Err(e) = redo(state, &tree_at_start) {
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
    for prepare in preparations {
        if failure.is_some() {
            break;
        }
        if let Err(e) = prepare() {
            failure = Some(StoreError::Commit(format!("preparing the commit: {e}")));
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
        state.tree = tree_at_start;
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
