//! The notifier thread: it answers the callers of committed batches and publishes their events, in commit
//! order, so that the writer can begin the next batch instead of waking each caller itself.

use std::sync::{mpsc, Arc};

use tokio::sync::broadcast;

use super::job::Reply;
use crate::envelope::RecordedEvent;

/// Batches with at most this many commands are answered by the writer itself.
pub(super) const INLINE_REPLIES: usize = 2;

/// A committed batch: the answers to send and the events to publish, in commit order.
pub(super) struct Committed {
    pub(super) replies: Vec<Reply>,
    pub(super) events: Vec<RecordedEvent>,
}

impl Committed {
    pub(super) fn deliver(self, broadcast: &broadcast::Sender<Arc<RecordedEvent>>) {
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
pub(super) fn notify(rx: mpsc::Receiver<Committed>, broadcast: broadcast::Sender<Arc<RecordedEvent>>) {
    while let Ok(done) = rx.recv() {
        done.deliver(&broadcast);
    }
}
