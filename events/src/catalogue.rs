//! The version-1 event catalogue: every event type cairn records, with the facts its projections need.
//!
//! Grow it; never change a released type's meaning. A changed shape gets a new schema version and an upcast in
//! [`DomainEvent::decode`].

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Why a client went offline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DisconnectReason {
    Admin,
    Timeout,
    Client,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ClientRegistered {
    pub client_id: Uuid,
    /// The identifier the backup client reports for itself (defaults to `client_id`).
    pub external_id: String,
    pub name: String,
    pub ip_address: Option<String>,
    /// Hex SHA-256 of the client's token; the token itself is shown once and never stored.
    pub token_hash: String,
}

/// Only the fields that changed are present.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ClientUpdated {
    pub client_id: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
    /// How often the client is expected to complete a backup, in seconds (24 h until set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_interval_seconds: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ClientConnected {
    pub client_id: Uuid,
    pub ip_address: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ClientDisconnected {
    pub client_id: Uuid,
    pub reason: DisconnectReason,
    /// The client's last sign of life (its last heartbeat, upload or log line), RFC 3339, when the server knew
    /// it; absent in events recorded before it was kept, where the event's own time stands for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<String>,
}

/// A client went longer than its expected interval without completing a backup. Recorded once per crossing by
/// the server's backup monitor; the client's next stored file ends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ClientBackupOverdue {
    pub client_id: Uuid,
    /// When its last backup completed (RFC 3339); absent when it never completed one, and the interval ran from
    /// its registration.
    pub last_backup_at: Option<String>,
    pub interval_seconds: u64,
    /// When the next backup was due (RFC 3339).
    pub due_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ClientTokenRotated {
    pub client_id: Uuid,
    pub token_hash: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ClientDeleted {
    pub client_id: Uuid,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FileStored {
    pub file_id: Uuid,
    pub client_id: Uuid,
    pub client_name: String,
    pub filename: String,
    pub original_path: String,
    pub size: u64,
    pub sha256: String,
    pub crc32: u32,
    pub mime_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer_id: Option<Uuid>,
}

/// The outcome of re-reading a file's blob: `ok`, or the mismatch found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FileVerified {
    pub file_id: Uuid,
    pub ok: bool,
    pub expected_sha256: String,
    pub actual_sha256: Option<String>,
    pub expected_crc32: u32,
    pub actual_crc32: Option<u32>,
    /// What went wrong when `ok` is false (a mismatch, a missing blob).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FileDownloaded {
    pub file_id: Uuid,
    /// The actor who downloaded it.
    pub by: String,
    pub bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FileDeleted {
    pub file_id: Uuid,
    pub client_id: Uuid,
    pub sha256: String,
    pub size: u64,
    /// `admin`, or `client deleted` when the client's deletion took its files.
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Upload,
    Download,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TransferStarted {
    pub transfer_id: Uuid,
    pub client_id: Option<Uuid>,
    pub file_id: Option<Uuid>,
    pub filename: String,
    pub direction: Direction,
    pub expected_bytes: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TransferCompleted {
    pub transfer_id: Uuid,
    pub file_id: Option<Uuid>,
    pub bytes: u64,
    pub duration_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TransferFailed {
    pub transfer_id: Uuid,
    pub bytes: u64,
    pub duration_ms: u64,
    pub error: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LogRecorded {
    pub level: String,
    pub message: String,
    pub source: String,
    pub client_id: Option<Uuid>,
    pub file_id: Option<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LogsCleared {
    /// How many log rows the clearing removed from the read table.
    pub cleared: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ServerStarted {
    pub version: String,
    pub listen: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ServerStopped {
    pub uptime_seconds: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DatabaseBackedUp {
    pub destination: String,
    pub bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DatabaseOptimized {
    pub bytes_before: u64,
    pub bytes_after: u64,
}

/// Why a stored payload could not be read back as a catalogue event.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("unknown event type {0:?}")]
    UnknownType(String),
    #[error("{event_type} has no schema version {schema}")]
    UnknownSchema { event_type: String, schema: u32 },
    #[error("{event_type} payload does not match its schema: {source}")]
    Payload {
        event_type: String,
        #[source]
        source: serde_json::Error,
    },
}

macro_rules! catalogue {
    ($($name:ident => $stream:expr),* $(,)?) => {
        /// Every event of the catalogue, typed.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum DomainEvent {
            $($name($name)),*
        }

        /// Every event type name, in catalogue order.
        pub const EVENT_TYPES: &[&str] = &[$(stringify!($name)),*];

        impl DomainEvent {
            /// The type name stored in the `type` column.
            pub fn event_type(&self) -> &'static str {
                match self {
                    $(Self::$name(_) => stringify!($name)),*
                }
            }

            /// The stream this event belongs to.
            pub fn stream(&self) -> String {
                match self {
                    $(Self::$name(e) => {
                        let f: fn(&$name) -> String = $stream;
                        f(e)
                    }),*
                }
            }

            /// The payload as stored in the `data` column.
            pub fn data_json(&self) -> String {
                let text = match self {
                    $(Self::$name(e) => serde_json::to_string(e)),*
                };
                text.expect("catalogue events hold only strings, numbers and ids, and always serialise")
            }

            /// Reads a stored payload back, upcasting older schema versions.
            pub fn decode(event_type: &str, schema: u32, data: &str) -> Result<Self, DecodeError> {
                if schema != CURRENT_SCHEMA {
                    return Err(DecodeError::UnknownSchema { event_type: event_type.to_owned(), schema });
                }
                match event_type {
                    $(stringify!($name) => serde_json::from_str(data)
                        .map(Self::$name)
                        .map_err(|source| DecodeError::Payload { event_type: event_type.to_owned(), source })),*,
                    other => Err(DecodeError::UnknownType(other.to_owned())),
                }
            }
        }

        $(impl From<$name> for DomainEvent {
            fn from(e: $name) -> Self {
                Self::$name(e)
            }
        })*
    };
}

/// Every type of the catalogue is at schema version 1 today.
pub const CURRENT_SCHEMA: u32 = 1;

impl DomainEvent {
    pub fn schema(&self) -> u32 {
        CURRENT_SCHEMA
    }
}

pub fn client_stream(id: Uuid) -> String {
    format!("client-{id}")
}

pub fn file_stream(id: Uuid) -> String {
    format!("file-{id}")
}

pub fn transfer_stream(id: Uuid) -> String {
    format!("transfer-{id}")
}

pub const LOG_STREAM: &str = "log";
pub const SERVER_STREAM: &str = "server";

catalogue! {
    ClientRegistered => |e| client_stream(e.client_id),
    ClientUpdated => |e| client_stream(e.client_id),
    ClientConnected => |e| client_stream(e.client_id),
    ClientDisconnected => |e| client_stream(e.client_id),
    ClientTokenRotated => |e| client_stream(e.client_id),
    ClientBackupOverdue => |e| client_stream(e.client_id),
    ClientDeleted => |e| client_stream(e.client_id),
    FileStored => |e| file_stream(e.file_id),
    FileVerified => |e| file_stream(e.file_id),
    FileDownloaded => |e| file_stream(e.file_id),
    FileDeleted => |e| file_stream(e.file_id),
    TransferStarted => |e| transfer_stream(e.transfer_id),
    TransferCompleted => |e| transfer_stream(e.transfer_id),
    TransferFailed => |e| transfer_stream(e.transfer_id),
    LogRecorded => |_| LOG_STREAM.to_owned(),
    LogsCleared => |_| LOG_STREAM.to_owned(),
    ServerStarted => |_| SERVER_STREAM.to_owned(),
    ServerStopped => |_| SERVER_STREAM.to_owned(),
    DatabaseBackedUp => |_| SERVER_STREAM.to_owned(),
    DatabaseOptimized => |_| SERVER_STREAM.to_owned(),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_survives_a_round_trip_through_its_stored_form() {
        let event = DomainEvent::from(ClientDisconnected {
            client_id: Uuid::nil(),
            reason: DisconnectReason::Timeout,
            last_seen: None,
        });
        let back = DomainEvent::decode(event.event_type(), event.schema(), &event.data_json()).unwrap();
        assert_eq!(back, event);
        assert_eq!(event.stream(), format!("client-{}", Uuid::nil()));
    }

    #[test]
    fn an_unknown_type_or_schema_is_a_decode_error() {
        assert!(matches!(
            DomainEvent::decode("Nope", 1, "{}"),
            Err(DecodeError::UnknownType(_))
        ));
        assert!(matches!(
            DomainEvent::decode("LogsCleared", 9, r#"{"cleared":1}"#),
            Err(DecodeError::UnknownSchema { .. })
        ));
        assert!(matches!(
            DomainEvent::decode("LogsCleared", 1, r#"{"cleared":"x"}"#),
            Err(DecodeError::Payload { .. })
        ));
    }
}
