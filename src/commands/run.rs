//! Backup runs: an agent's pass over its folders begins ([`StartRun`]) and ends ([`FinishRun`]); in between,
//! its uploads, known-content records and deletions name it ([`open_run`] checks they may).

use cairn_events::catalogue::{BackupRunFinished, BackupRunStarted, RunCounts};
use cairn_events::ExpectedVersion;
use uuid::Uuid;

use super::{live_client, validate, Command, Decision, RunState, State};
use crate::error::CommandError;

/// The outcomes a run can finish with.
pub const OUTCOMES: &[&str] = &["ok", "partial", "failed"];

/// How many folders one run may name, and how many errors its end keeps.
pub const MAX_FOLDERS: usize = 64;
pub const MAX_ERRORS: usize = 20;

/// Begins a run of `client_id`.
#[derive(Debug, Clone)]
pub struct StartRun {
    pub run_id: Uuid,
    pub client_id: Uuid,
    pub folders: Vec<String>,
    pub agent_version: String,
    pub host: String,
}

impl Command for StartRun {
    type Output = BackupRunStarted;

    fn decide(self, state: &dyn State) -> Result<Decision<BackupRunStarted>, CommandError> {
        live_client(state, self.client_id)?;
        if self.folders.is_empty() || self.folders.len() > MAX_FOLDERS {
            return Err(CommandError::invalid(
                "folders",
                format!("must name 1 to {MAX_FOLDERS} folders"),
            ));
        }
        let folders = self
            .folders
            .iter()
            .map(|f| {
                if f.is_empty() {
                    return Err(CommandError::invalid("folders", "a folder must not be empty"));
                }
                validate::original_path(f)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let started = BackupRunStarted {
            run_id: self.run_id,
            client_id: self.client_id,
            folders,
            agent_version: validate::name("agent_version", &self.agent_version, 64)?,
            host: validate::name("host", &self.host, 255)?,
        };
        Ok(Decision::new(started.clone()).event(started, ExpectedVersion::NoStream))
    }
}

/// Ends a run with what the agent counted; `duration_ms` is measured by the server from the run's start.
#[derive(Debug, Clone)]
pub struct FinishRun {
    pub run_id: Uuid,
    pub client_id: Uuid,
    pub outcome: String,
    pub counts: RunCounts,
    pub duration_ms: u64,
    pub errors: Vec<String>,
}

impl Command for FinishRun {
    type Output = BackupRunFinished;

    fn decide(self, state: &dyn State) -> Result<Decision<BackupRunFinished>, CommandError> {
        let run = open_run(state, self.run_id, self.client_id)?;
        if !OUTCOMES.contains(&self.outcome.as_str()) {
            return Err(CommandError::invalid(
                "outcome",
                format!("must be one of {}", OUTCOMES.join(", ")),
            ));
        }
        if self.outcome == "ok" && self.counts.failed > 0 {
            return Err(CommandError::invalid(
                "outcome",
                format!("a run with {} failed files is not ok", self.counts.failed),
            ));
        }
        let errors = self
            .errors
            .iter()
            .take(MAX_ERRORS)
            .map(|e| {
                let line: String = e.chars().filter(|c| !c.is_control()).take(1000).collect();
                line
            })
            .collect();
        let finished = BackupRunFinished {
            run_id: self.run_id,
            client_id: self.client_id,
            outcome: self.outcome,
            counts: self.counts,
            duration_ms: self.duration_ms,
            errors,
        };
        Ok(Decision::new(finished.clone()).event(finished, ExpectedVersion::Exact(run.version)))
    }
}

/// The run `run_id` of `client_id`, still running: what an upload, a known-content record or a deletion that
/// names it needs. Another client's run is not found, as if it did not exist.
pub(crate) fn open_run(state: &dyn State, run_id: Uuid, client_id: Uuid) -> Result<RunState, CommandError> {
    let run = state
        .run(run_id)?
        .filter(|r| r.client_id == client_id)
        .ok_or(CommandError::RunNotFound(run_id))?;
    if run.status != "running" {
        return Err(CommandError::RunFinished {
            id: run_id,
            outcome: run.status,
        });
    }
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::testing::{given, registered};
    use cairn_events::DomainEvent;

    fn start(run: Uuid, client: Uuid) -> StartRun {
        StartRun {
            run_id: run,
            client_id: client,
            folders: vec!["/home/ada".into()],
            agent_version: "0.1.0".into(),
            host: "ada-laptop".into(),
        }
    }

    fn finish(run: Uuid, client: Uuid, outcome: &str, failed: u64) -> FinishRun {
        FinishRun {
            run_id: run,
            client_id: client,
            outcome: outcome.into(),
            counts: RunCounts {
                failed,
                ..RunCounts::default()
            },
            duration_ms: 5,
            errors: vec!["a\nb".into()],
        }
    }

    fn started(run: Uuid, client: Uuid) -> DomainEvent {
        given(vec![registered(client, "alpha")])
            .when(start(run, client))
            .then_expect_count(1)
            .output
            .into()
    }

    #[test]
    fn a_run_starts_for_a_live_client_and_finishes_once() {
        let (a, r) = (Uuid::now_v7(), Uuid::now_v7());
        given(vec![registered(a, "alpha"), started(r, a)])
            .when(finish(r, a, "partial", 1))
            .then_expect_count(1);
        let finished = given(vec![registered(a, "alpha"), started(r, a)])
            .when(finish(r, a, "ok", 0))
            .then_expect_count(1)
            .output;
        assert_eq!(
            finished.errors,
            ["ab"],
            "control characters are taken out of an error line"
        );
        given(vec![registered(a, "alpha"), started(r, a), finished.into()])
            .when(finish(r, a, "ok", 0))
            .then_error(|e| matches!(e, CommandError::RunFinished { .. }));
    }

    #[test]
    fn a_run_is_refused_for_an_unknown_client_bad_fields_or_another_clients_run() {
        let (a, b, r) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        given(vec![])
            .when(start(r, a))
            .then_error(|e| matches!(e, CommandError::ClientNotFound(_)));
        let mut none = start(r, a);
        none.folders.clear();
        given(vec![registered(a, "alpha")])
            .when(none)
            .then_error(|e| matches!(e, CommandError::Invalid { .. }));
        let history = vec![registered(a, "alpha"), registered(b, "beta"), started(r, a)];
        given(history.clone())
            .when(finish(r, b, "ok", 0))
            .then_error(|e| matches!(e, CommandError::RunNotFound(_)));
        given(history.clone())
            .when(finish(r, a, "ok", 2))
            .then_error(|e| matches!(e, CommandError::Invalid { field: "outcome", .. }));
        given(history)
            .when(finish(r, a, "fine", 0))
            .then_error(|e| matches!(e, CommandError::Invalid { field: "outcome", .. }));
    }
}
