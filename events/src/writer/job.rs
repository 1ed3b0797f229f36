//! The hand-off of work to the writer: a [`Job`] erases a command's closure and result types, so that one
//! channel carries every kind of command, and answers its caller once the batch's fate is known.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use super::Unit;
use crate::error::StoreError;

/// Answers a job's caller once its batch committed (`Ok`) or failed.
pub(super) type Reply = Box<dyn FnOnce(Result<(), Arc<StoreError>>) + Send>;

/// What a job hands back: whether to keep its writes, and how to answer once the batch's fate is known.
pub(super) struct Completion {
    pub(super) keep: bool,
    pub(super) reply: Reply,
}

/// One queued piece of work. `refuse` answers it without running it, when its batch failed first.
pub(super) trait Job: Send {
    fn run(self: Box<Self>, unit: &mut Unit<'_>) -> Completion;
    fn refuse(self: Box<Self>, error: Arc<StoreError>);
}

pub(super) struct CommandJob<F, T, E> {
    pub(super) f: F,
    pub(super) tx: tokio::sync::oneshot::Sender<Result<T, E>>,
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

/// A batch failure is shared by every job of the batch; each gets its own copy of the message.
fn shared_error(e: &Arc<StoreError>) -> StoreError {
    match &**e {
        StoreError::WriterStopped => StoreError::WriterStopped,
        full if full.is_disk_full() => StoreError::DiskFull(full.to_string()),
        other => StoreError::Commit(other.to_string()),
    }
}
