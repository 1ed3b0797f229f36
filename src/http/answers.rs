//! The `data` of the answers that are the HTTP API's own (the rest are the services' and the read tables'
//! types): each is what a handler sends, and its JSON Schema is what the OpenAPI document says it sends.

use cairn_events::{EventView, Position};
use cairn_projections::clients::{Client, ClientStatus};
use cairn_projections::stats::Counters;
use schemars::JsonSchema;
use serde::Serialize;
use uuid::Uuid;

/// `GET /api/health`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Alive {
    /// Always `ok`: an answer at all is the news.
    pub status: &'static str,
}

/// A client just registered, with its token: shown once, stored only as a hash.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ClientCreated {
    pub client: Client,
    pub token: String,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ClientDeleted {
    pub id: Uuid,
    pub files_deleted: usize,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct HeartbeatAnswer {
    pub id: Uuid,
    pub status: ClientStatus,
    /// True when this heartbeat connected the client (a `ClientConnected` event); false when it already was.
    pub connected_now: bool,
}

/// A client's new token, shown once; the old one no longer works.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct TokenRotated {
    pub id: Uuid,
    pub token: String,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct FileDeleted {
    pub id: Uuid,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct LogRecorded {
    /// The position of the `LogRecorded` event, which is also the log line's id.
    pub id: Option<Position>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct LogsCleared {
    /// How many log lines the read table held.
    pub cleared: u64,
}

/// A page of the audit trail.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct EventsPage {
    pub events: Vec<EventView>,
    /// Pass as `after` for the next page; absent on the last one.
    pub next_after: Option<Position>,
    /// Events matching the filters, over all pages.
    pub total: i64,
}

/// One entity's history.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct StreamHistory {
    pub stream: String,
    pub events: Vec<EventView>,
}

/// The first event whose CRC or chain link does not match.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct BadLink {
    pub position: Position,
    pub reason: String,
}

/// The chain recomputed from position 1.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ChainStatus {
    pub ok: bool,
    pub checked: i64,
    pub head: Position,
    pub head_hash: String,
    pub first_bad: Option<BadLink>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct StatsAnswer {
    pub buckets: Vec<Counters>,
    pub totals: Counters,
}

/// The positions of the events a row edit recorded.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Positions {
    pub positions: Vec<Position>,
}

/// `POST /api/files/{id}/verify`: what was found, recorded as `FileVerified`, with the names the first
/// server's clients read (`verified`, `checksum`, `size`) beside the event's own fields.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Verification {
    #[serde(flatten)]
    pub found: cairn_events::catalogue::FileVerified,
    /// Both checksums match (the event's `ok`).
    pub verified: bool,
    /// The content's SHA-256 as read now; the recorded one when the blob could not be read.
    pub checksum: String,
    /// The file's size in bytes.
    pub size: i64,
}

/// What a removal took away.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Removed {
    pub id: Uuid,
}

/// `POST /api/alerts/targets/{id}/test`: the position of the request, which the test alert is about.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct TestRequested {
    pub position: Position,
}

/// A filename for `Content-Disposition`: ASCII fallback plus the UTF-8 form.
pub fn disposition(filename: &str) -> String {
    let ascii: String = filename
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    // Letters, digits and -._~ stay (a subset of RFC 8187's attr-char); everything else is percent-encoded.
    const ENCODED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    let encoded = percent_encoding::utf8_percent_encode(filename, ENCODED);
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}
