//! The latest events, each described in a line for people (the Overview's activity list).

use cairn_events::{reader, EventFilter, RecordedEvent};
use serde::Serialize;
use serde_json::Value;

use super::ServiceError;
use crate::Cairn;

/// The most events one activity page holds.
pub const MAX_LIMIT: i64 = 500;

/// One event, described.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Item {
    pub position: i64,
    #[serde(rename = "type")]
    pub event_type: String,
    pub stream: String,
    pub actor: String,
    pub summary: String,
    pub recorded_at: String,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Activity {
    /// Newest first.
    pub items: Vec<Item>,
    pub head: i64,
}

/// One line about an event.
pub fn describe(e: &RecordedEvent) -> String {
    let data: Value = serde_json::from_str(&e.data).unwrap_or(Value::Null);
    let s = |k: &str| data[k].as_str().unwrap_or("?").to_owned();
    match e.event_type.as_str() {
        "ClientRegistered" => format!("client {} registered", s("name")),
        "ClientUpdated" => "client updated".into(),
        "ClientConnected" => "client connected".into(),
        "ClientDisconnected" => format!("client disconnected ({})", s("reason")),
        "ClientTokenRotated" => "client token rotated".into(),
        "ClientDeleted" => format!("client {} deleted", s("name")),
        "FileStored" => format!("{} stored {} ({} bytes)", s("client_name"), s("filename"), data["size"]),
        "FileVerified" if data["ok"] == true => "file verified".into(),
        "FileVerified" => format!("file verification failed: {}", s("detail")),
        "FileDownloaded" => format!("file downloaded by {}", s("by")),
        "FileDeleted" => format!("file deleted ({})", s("reason")),
        "TransferStarted" => format!("{} of {} started", s("direction"), s("filename")),
        "TransferCompleted" => format!("transfer completed ({} bytes)", data["bytes"]),
        "TransferFailed" => format!("transfer failed: {}", s("error")),
        "LogRecorded" => format!("[{}] {}", s("level"), s("message")),
        "LogsCleared" => format!("{} log lines cleared", data["cleared"]),
        other => other.to_owned(),
    }
}

/// The latest `limit` events (1 to [`MAX_LIMIT`]), newest first.
pub async fn latest(cairn: &Cairn, limit: i64) -> Result<Activity, ServiceError> {
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ServiceError::invalid(
            "INVALID_QUERY",
            format!("limit must be from 1 to {MAX_LIMIT}"),
        ));
    }
    let head = cairn.store().head();
    let filter = EventFilter {
        after: Some((head - limit).max(0)),
        limit: Some(limit as usize),
        ..EventFilter::default()
    };
    let page = super::read(cairn, move |conn| Ok(reader::query(conn, &filter)?)).await?;
    let items = page
        .events
        .iter()
        .rev()
        .map(|e| Item {
            position: e.position,
            event_type: e.event_type.clone(),
            stream: e.stream.clone(),
            actor: e.metadata().actor,
            summary: describe(e),
            recorded_at: e.recorded_at.clone(),
        })
        .collect();
    Ok(Activity { items, head })
}
