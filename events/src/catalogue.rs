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
    /// Schema 2: the file's modification time on the client (RFC 3339, to the nanosecond), when it said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtime: Option<String>,
    /// Schema 2: the file's mode on the client (`st_mode`: its type, regular or symbolic link, and permission
    /// bits), when it said. A symbolic link's content is its target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
    /// Schema 2: the backup run it was stored in, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<Uuid>,
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
    /// `admin`, `client` (the client itself, with its own token), or `client deleted` when the client's
    /// deletion took its files.
    pub reason: String,
    /// Schema 2: the backup run that found the file gone, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<Uuid>,
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
    /// Schema 2: the backup run this upload belongs to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<Uuid>,
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

/// A backup agent began a run: one pass over its folders. Uploads, known-content records and deletions of the
/// run name it; [`BackupRunFinished`] ends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BackupRunStarted {
    pub run_id: Uuid,
    pub client_id: Uuid,
    /// The folders it backs up, as the agent names them.
    pub folders: Vec<String>,
    pub agent_version: String,
    /// The machine's host name, as the agent reports it.
    pub host: String,
}

/// What a run's files came to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RunCounts {
    pub scanned: u64,
    pub new: u64,
    pub changed: u64,
    pub unchanged: u64,
    pub deleted: u64,
    pub failed: u64,
    /// Content bytes uploaded.
    pub bytes_sent: u64,
    /// Bytes of files recorded without sending them (unchanged, or content this client had stored before).
    pub bytes_skipped: u64,
}

/// A backup run ended: `ok` (every file backed up), `partial` (some failed, or it was interrupted) or `failed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BackupRunFinished {
    pub run_id: Uuid,
    pub client_id: Uuid,
    pub outcome: String,
    #[serde(flatten)]
    pub counts: RunCounts,
    /// From its start to this event, by the server's clock.
    pub duration_ms: u64,
    /// The first errors, one line each (at most 20).
    pub errors: Vec<String>,
}

/// A client's files as of a position were downloaded as one archive (by the actor of its metadata).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ArchiveDownloaded {
    pub client_id: Uuid,
    /// The position the archive shows the client as of.
    pub position: u64,
    /// `tar` or `zip`.
    pub format: String,
    pub files: u64,
    pub bytes: u64,
}

/// Content no file holds any more, removed from the blob store: past its retention, or at once when the server
/// keeps no deleted content. After it, an archive of a moment when a file held this content lists it as missing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BlobsPurged {
    pub blobs: Vec<PurgedBlob>,
    /// `retention`, `not retained`, or `already gone` (content a cairn from before retention had removed).
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PurgedBlob {
    pub sha256: String,
    pub size: u64,
}

/// A snapshot in `<data>/backups/` was checked: its chain, every blob's SHA-256, and a replay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DatabaseBackupVerified {
    pub destination: String,
    pub ok: bool,
    pub detail: String,
}

/// A scheduled snapshot was removed, the schedule keeping only the newest ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DatabaseBackupRemoved {
    pub destination: String,
    pub reason: String,
}

/// The hash chain failed to verify: found by the server's periodic check (or at start).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ChainBroken {
    /// The first position whose CRC or hash does not match.
    pub first_bad: u64,
    pub detail: String,
}

/// A hub began to follow a site's published log (`cairn hub`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FleetSiteJoined {
    pub site: String,
}

/// A hub found a site's published log broken: a gap, a reordering, or an event that does not chain. The hub
/// stops applying that site's events there; the other sites go on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FleetSiteBroken {
    pub site: String,
    /// The first position that does not follow.
    pub first_bad: u64,
    pub detail: String,
}

/// The data directory's disk crossed the alerting threshold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DiskNearlyFull {
    pub total_bytes: u64,
    pub available_bytes: u64,
    /// The share of the disk in use that raises it.
    pub threshold_percent: u8,
}

/// What an alert is about: the rules' vocabulary, each kind one or more events of the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// `TransferFailed`.
    TransferFailed,
    /// `FileVerified` that found a mismatch or a missing blob.
    VerificationFailed,
    /// `ClientBackupOverdue`.
    BackupOverdue,
    /// `ClientDisconnected` for a heartbeat timeout.
    ClientTimeout,
    /// `ChainBroken`.
    ChainBroken,
    /// `DiskNearlyFull`.
    DiskNearlyFull,
    /// `FleetSiteBroken`: a hub found a site's published log broken.
    SiteBroken,
    /// `AlertTestRequested`: only ever sent to the target it names, whatever the rules.
    Test,
}

impl AlertKind {
    /// Every kind a rule can route (a test goes to its target without one).
    pub const ROUTED: &[AlertKind] = &[
        AlertKind::TransferFailed,
        AlertKind::VerificationFailed,
        AlertKind::BackupOverdue,
        AlertKind::ClientTimeout,
        AlertKind::ChainBroken,
        AlertKind::DiskNearlyFull,
        AlertKind::SiteBroken,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::TransferFailed => "transfer_failed",
            AlertKind::VerificationFailed => "verification_failed",
            AlertKind::BackupOverdue => "backup_overdue",
            AlertKind::ClientTimeout => "client_timeout",
            AlertKind::ChainBroken => "chain_broken",
            AlertKind::DiskNearlyFull => "disk_nearly_full",
            AlertKind::SiteBroken => "site_broken",
            AlertKind::Test => "test",
        }
    }

    /// The event type that raises this kind.
    pub fn event_type(self) -> &'static str {
        match self {
            AlertKind::TransferFailed => "TransferFailed",
            AlertKind::VerificationFailed => "FileVerified",
            AlertKind::BackupOverdue => "ClientBackupOverdue",
            AlertKind::ClientTimeout => "ClientDisconnected",
            AlertKind::ChainBroken => "ChainBroken",
            AlertKind::DiskNearlyFull => "DiskNearlyFull",
            AlertKind::SiteBroken => "FleetSiteBroken",
            AlertKind::Test => "AlertTestRequested",
        }
    }
}

/// Where alerts go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AlertTargetKind {
    /// A JSON `POST` to a URL (ntfy, Gotify, Slack-compatible receivers).
    Webhook,
    /// An e-mail through the server's SMTP relay.
    Email,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AlertTargetAdded {
    pub target_id: Uuid,
    pub name: String,
    pub kind: AlertTargetKind,
    /// The webhook's URL, or the e-mail address.
    pub address: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AlertTargetRemoved {
    pub target_id: Uuid,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AlertRuleAdded {
    pub rule_id: Uuid,
    pub target_id: Uuid,
    pub kinds: Vec<AlertKind>,
    /// Only this client's alerts; every client's when absent (alerts about no client, such as a broken chain,
    /// match only rules without one).
    pub client_id: Option<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AlertRuleRemoved {
    pub rule_id: Uuid,
}

/// An admin asked for a test alert to one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AlertTestRequested {
    pub target_id: Uuid,
}

/// An alert reached its target: the target's checkpoint moves to `position`, the event alerted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AlertDelivered {
    pub target_id: Uuid,
    pub position: u64,
    pub kind: AlertKind,
    pub attempts: u32,
}

/// An attempt to deliver an alert failed; unless `gave_up` (a permanent refusal), it will be tried again and
/// the target's checkpoint stays where it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AlertDeliveryFailed {
    pub target_id: Uuid,
    pub position: u64,
    pub kind: AlertKind,
    pub attempt: u32,
    pub error: String,
    pub gave_up: bool,
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

            /// Reads a stored payload back, upcasting older schema versions: every field a later version added
            /// is optional, so an older payload reads as the current type with those fields absent.
            pub fn decode(event_type: &str, schema: u32, data: &str) -> Result<Self, DecodeError> {
                if schema == 0 || schema > schema_of(event_type) {
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

/// The schema version new events of a type are recorded at: 1, except where a type grew.
///
/// - `FileStored` 2: `mtime`, `mode`, `run_id`.
/// - `FileDeleted` 2: `run_id`.
/// - `TransferStarted` 2: `run_id`.
pub fn schema_of(event_type: &str) -> u32 {
    match event_type {
        "FileStored" | "FileDeleted" | "TransferStarted" => 2,
        _ => 1,
    }
}

impl DomainEvent {
    pub fn schema(&self) -> u32 {
        schema_of(self.event_type())
    }
}

pub fn run_stream(id: Uuid) -> String {
    format!("run-{id}")
}

/// The stream of a site a hub follows.
pub fn site_stream(site: &str) -> String {
    format!("site-{site}")
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

pub fn alert_target_stream(id: Uuid) -> String {
    format!("alert-target-{id}")
}

pub fn alert_rule_stream(id: Uuid) -> String {
    format!("alert-rule-{id}")
}

pub const LOG_STREAM: &str = "log";
pub const ARCHIVE_STREAM: &str = "archives";
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
    ArchiveDownloaded => |_| ARCHIVE_STREAM.to_owned(),
    BackupRunStarted => |e| run_stream(e.run_id),
    BackupRunFinished => |e| run_stream(e.run_id),
    BlobsPurged => |_| SERVER_STREAM.to_owned(),
    DatabaseBackupVerified => |_| SERVER_STREAM.to_owned(),
    DatabaseBackupRemoved => |_| SERVER_STREAM.to_owned(),
    ChainBroken => |_| SERVER_STREAM.to_owned(),
    DiskNearlyFull => |_| SERVER_STREAM.to_owned(),
    FleetSiteJoined => |e| site_stream(&e.site),
    FleetSiteBroken => |e| site_stream(&e.site),
    AlertTargetAdded => |e| alert_target_stream(e.target_id),
    AlertTargetRemoved => |e| alert_target_stream(e.target_id),
    AlertRuleAdded => |e| alert_rule_stream(e.rule_id),
    AlertRuleRemoved => |e| alert_rule_stream(e.rule_id),
    AlertTestRequested => |e| alert_target_stream(e.target_id),
    AlertDelivered => |e| alert_target_stream(e.target_id),
    AlertDeliveryFailed => |e| alert_target_stream(e.target_id),
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
        assert!(matches!(
            DomainEvent::decode("FileStored", 3, "{}"),
            Err(DecodeError::UnknownSchema { .. })
        ));
    }

    #[test]
    fn a_file_stored_at_schema_1_reads_as_schema_2_without_mtime_mode_or_run() {
        let v1 = r#"{"file_id":"00000000-0000-0000-0000-000000000000","client_id":"00000000-0000-0000-0000-000000000000","client_name":"a","filename":"f","original_path":"f","size":1,"sha256":"ab","crc32":7,"mime_type":"text/plain"}"#;
        let DomainEvent::FileStored(f) = DomainEvent::decode("FileStored", 1, v1).unwrap() else {
            panic!("not a FileStored");
        };
        assert_eq!((f.mtime.clone(), f.mode, f.run_id, f.size), (None, None, None, 1));
        assert_eq!(DomainEvent::FileStored(f).schema(), 2);
    }
}
