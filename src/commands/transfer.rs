//! Transfer commands: start, complete, fail. A transfer ends once.

use cairn_events::catalogue::{Direction, TransferCompleted, TransferFailed, TransferStarted};
use cairn_events::ExpectedVersion;
use cairn_projections::TransferStatus;
use uuid::Uuid;

use super::{live_client, validate, Command, Decision, State, TransferState};
use crate::error::CommandError;

/// The transfer, if it is still under way.
pub(crate) fn in_progress(state: &dyn State, id: Uuid) -> Result<TransferState, CommandError> {
    let t = state.transfer(id)?.ok_or(CommandError::TransferNotFound(id))?;
    if t.status != TransferStatus::InProgress {
        return Err(CommandError::TransferFinished { id, status: t.status });
    }
    Ok(t)
}

#[derive(Debug, Clone)]
pub struct StartTransfer {
    pub transfer_id: Uuid,
    pub client_id: Option<Uuid>,
    pub file_id: Option<Uuid>,
    pub filename: String,
    pub direction: Direction,
    pub expected_bytes: Option<u64>,
    /// The backup run an upload belongs to.
    pub run_id: Option<Uuid>,
}

impl Command for StartTransfer {
    type Output = Uuid;

    fn decide(self, state: &dyn State) -> Result<Decision<Uuid>, CommandError> {
        if let Some(c) = self.client_id {
            live_client(state, c)?;
            if let Some(run) = self.run_id {
                super::run::open_run(state, run, c)?;
            }
        }
        let filename = validate::name("filename", &self.filename, 255)?;
        Ok(Decision::new(self.transfer_id).event(
            TransferStarted {
                transfer_id: self.transfer_id,
                client_id: self.client_id,
                file_id: self.file_id,
                filename,
                direction: self.direction,
                expected_bytes: self.expected_bytes,
                run_id: self.client_id.and(self.run_id),
            },
            ExpectedVersion::NoStream,
        ))
    }
}

#[derive(Debug, Clone)]
pub struct CompleteTransfer {
    pub transfer_id: Uuid,
    pub file_id: Option<Uuid>,
    pub bytes: u64,
    pub duration_ms: u64,
}

impl Command for CompleteTransfer {
    type Output = ();

    fn decide(self, state: &dyn State) -> Result<Decision<()>, CommandError> {
        in_progress(state, self.transfer_id)?;
        Ok(Decision::new(()).event(
            TransferCompleted {
                transfer_id: self.transfer_id,
                file_id: self.file_id,
                bytes: self.bytes,
                duration_ms: self.duration_ms,
            },
            ExpectedVersion::StreamExists,
        ))
    }
}

#[derive(Debug, Clone)]
pub struct FailTransfer {
    pub transfer_id: Uuid,
    pub bytes: u64,
    pub duration_ms: u64,
    pub error: String,
}

impl Command for FailTransfer {
    type Output = ();

    fn decide(self, state: &dyn State) -> Result<Decision<()>, CommandError> {
        in_progress(state, self.transfer_id)?;
        let mut error: String = self.error.chars().filter(|c| !c.is_control()).take(1024).collect();
        if error.trim().is_empty() {
            error = "unknown error".into();
        }
        Ok(Decision::new(()).event(
            TransferFailed {
                transfer_id: self.transfer_id,
                bytes: self.bytes,
                duration_ms: self.duration_ms,
                error,
            },
            ExpectedVersion::StreamExists,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::testing::given;

    fn started(t: Uuid) -> cairn_events::DomainEvent {
        TransferStarted {
            transfer_id: t,
            client_id: None,
            file_id: None,
            filename: "f".into(),
            direction: Direction::Upload,
            expected_bytes: Some(10),
            run_id: None,
        }
        .into()
    }

    #[test]
    fn a_transfer_ends_once() {
        let t = Uuid::now_v7();
        let fail = FailTransfer {
            transfer_id: t,
            bytes: 3,
            duration_ms: 5,
            error: "reset\n".into(),
        };
        given(vec![started(t)])
            .when(fail.clone())
            .then_expect(vec![TransferFailed {
                transfer_id: t,
                bytes: 3,
                duration_ms: 5,
                error: "reset".into(),
            }
            .into()]);
        let failed: cairn_events::DomainEvent = TransferFailed {
            transfer_id: t,
            bytes: 3,
            duration_ms: 5,
            error: "reset".into(),
        }
        .into();
        given(vec![started(t), failed])
            .when(CompleteTransfer {
                transfer_id: t,
                file_id: None,
                bytes: 3,
                duration_ms: 1,
            })
            .then_error(|e| matches!(e, CommandError::TransferFinished { .. }));
        given(vec![])
            .when(fail)
            .then_error(|e| matches!(e, CommandError::TransferNotFound(_)));
    }

    #[test]
    fn a_transfer_for_an_unknown_client_does_not_start() {
        given(vec![])
            .when(StartTransfer {
                transfer_id: Uuid::now_v7(),
                client_id: Some(Uuid::now_v7()),
                file_id: None,
                filename: "f".into(),
                direction: Direction::Download,
                expected_bytes: None,
                run_id: None,
            })
            .then_error(|e| matches!(e, CommandError::ClientNotFound(_)));
    }
}
