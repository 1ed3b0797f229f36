//! Log commands: record a line, clear the log table.

use cairn_events::catalogue::{LogRecorded, LogsCleared};
use cairn_events::ExpectedVersion;
use cairn_projections::logs::LEVELS;
use uuid::Uuid;

use super::{live_client, validate, Command, Decision, State};
use crate::error::CommandError;

/// The longest message, in bytes.
pub const MAX_MESSAGE: usize = 8 * 1024;

#[derive(Debug, Clone)]
pub struct RecordLog {
    pub level: String,
    pub message: String,
    pub source: String,
    pub client_id: Option<Uuid>,
    pub file_id: Option<Uuid>,
}

impl Command for RecordLog {
    type Output = ();

    fn decide(self, state: &dyn State) -> Result<Decision<()>, CommandError> {
        let level = self.level.trim().to_ascii_lowercase();
        if !LEVELS.contains(&level.as_str()) {
            return Err(CommandError::invalid(
                "level",
                format!("must be one of {}", LEVELS.join(", ")),
            ));
        }
        if self.message.trim().is_empty() {
            return Err(CommandError::invalid("message", "must not be empty"));
        }
        if self.message.len() > MAX_MESSAGE {
            return Err(CommandError::invalid(
                "message",
                format!("must be at most {MAX_MESSAGE} bytes"),
            ));
        }
        validate::no_controls("message", &self.message, true)?;
        let source = validate::name("source", &self.source, 64)?;
        if let Some(c) = self.client_id {
            live_client(state, c)?;
        }
        if let Some(f) = self.file_id {
            state.file(f)?.ok_or(CommandError::FileNotFound(f))?;
        }
        Ok(Decision::new(()).event(
            LogRecorded {
                level,
                message: self.message,
                source,
                client_id: self.client_id,
                file_id: self.file_id,
            },
            ExpectedVersion::Any,
        ))
    }
}

/// Empties the log table (the `LogRecorded` events stay in the log).
#[derive(Debug, Clone)]
pub struct ClearLogs;

impl Command for ClearLogs {
    type Output = u64;

    fn decide(self, state: &dyn State) -> Result<Decision<u64>, CommandError> {
        let cleared = state.log_count()?;
        Ok(Decision::new(cleared).event(LogsCleared { cleared }, ExpectedVersion::Any))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::testing::given;

    fn line(level: &str, message: &str) -> RecordLog {
        RecordLog {
            level: level.into(),
            message: message.into(),
            source: "agent".into(),
            client_id: None,
            file_id: None,
        }
    }

    #[test]
    fn a_log_line_is_recorded_with_its_level_normalised() {
        given(vec![])
            .when(line("WARNING", "disk at 91%\nsecond line"))
            .then_expect(vec![LogRecorded {
                level: "warning".into(),
                message: "disk at 91%\nsecond line".into(),
                source: "agent".into(),
                client_id: None,
                file_id: None,
            }
            .into()]);
    }

    #[test]
    fn bad_levels_empty_huge_or_control_messages_and_unknown_clients_are_refused() {
        given(vec![])
            .when(line("loud", "x"))
            .then_error(|e| matches!(e, CommandError::Invalid { field: "level", .. }));
        given(vec![])
            .when(line("info", " "))
            .then_error(|e| matches!(e, CommandError::Invalid { field: "message", .. }));
        given(vec![])
            .when(line("info", &"x".repeat(MAX_MESSAGE + 1)))
            .then_error(|e| matches!(e, CommandError::Invalid { field: "message", .. }));
        given(vec![])
            .when(line("info", "nul\0"))
            .then_error(|e| matches!(e, CommandError::Invalid { .. }));
        let mut orphan = line("info", "x");
        orphan.client_id = Some(Uuid::now_v7());
        given(vec![])
            .when(orphan)
            .then_error(|e| matches!(e, CommandError::ClientNotFound(_)));
    }

    #[test]
    fn clearing_records_how_many_lines_it_removed() {
        let history = vec![LogRecorded {
            level: "info".into(),
            message: "a".into(),
            source: "s".into(),
            client_id: None,
            file_id: None,
        }
        .into()];
        let d = given(history)
            .when(ClearLogs)
            .then_expect(vec![LogsCleared { cleared: 1 }.into()]);
        assert_eq!(d.output, 1);
    }
}
