//! Server commands: the server's own lifecycle and maintenance, recorded on the `server` stream.

use cairn_events::catalogue::SERVER_STREAM;
use cairn_events::{DomainEvent, ExpectedVersion};

use super::{Command, Decision, State};
use crate::error::CommandError;

/// Records a server event: `ServerStarted`, `ServerStopped`, `DatabaseBackedUp` or `DatabaseOptimized`.
#[derive(Debug, Clone)]
pub struct RecordServerEvent(pub DomainEvent);

impl Command for RecordServerEvent {
    type Output = ();

    fn decide(self, _: &dyn State) -> Result<Decision<()>, CommandError> {
        if self.0.stream() != SERVER_STREAM {
            return Err(CommandError::invalid(
                "event",
                format!("{} is not a server event", self.0.event_type()),
            ));
        }
        Ok(Decision::new(()).event(self.0, ExpectedVersion::Any))
    }
}
