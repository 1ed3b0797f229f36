//! Recording a log line on behalf of a caller: a client logs as itself (its id is filled in, naming another
//! client is refused) and may not speak as the server (the sources `admin`, `system` and `server` are
//! reserved for the admin).

use cairn_events::{Metadata, Position};
use serde::Deserialize;
use uuid::Uuid;

use super::auth::Caller;
use super::ServiceError;
use crate::commands::log::RecordLog;
use crate::Cairn;

/// Sources only the admin may log under: a client's line must not pass for the server's.
pub const RESERVED_SOURCES: &[&str] = &["admin", "system", "server"];

/// A log line as a caller sends it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewLogLine {
    pub level: String,
    pub message: String,
    pub source: Option<String>,
    pub client_id: Option<Uuid>,
    pub file_id: Option<Uuid>,
}

/// Records the line; answers the position of its `LogRecorded` event (the line's id).
pub async fn record(
    cairn: &Cairn,
    caller: Caller,
    line: NewLogLine,
    metadata: Metadata,
) -> Result<Option<Position>, ServiceError> {
    let (client_id, source) = match caller {
        Caller::Admin => (line.client_id, line.source.unwrap_or_else(|| "admin".into())),
        Caller::Client(me) => {
            if line.client_id.is_some_and(|c| c != me) {
                return Err(ServiceError::Forbidden("a client may only log as itself".into()));
            }
            let source = line.source.unwrap_or_else(|| "client".into());
            if RESERVED_SOURCES.iter().any(|r| source.trim().eq_ignore_ascii_case(r)) {
                return Err(ServiceError::Forbidden(format!(
                    "the source {source:?} is the server's; a client may not log under it"
                )));
            }
            (Some(me), source)
        }
    };
    let command = RecordLog {
        level: line.level,
        message: line.message,
        source,
        client_id,
        file_id: line.file_id,
    };
    Ok(cairn.execute(command, metadata).await?.positions.first().copied())
}
