//! The latest events, each described in a line for people (the Overview's activity list): whose it is by the
//! client's name (its current one, or the one the event itself carries), sizes in human units.

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
    /// The client the event concerns, by id and name, when it names one (directly, or through its transfer or
    /// file).
    pub client_id: Option<String>,
    pub client_name: Option<String>,
    pub summary: String,
    pub recorded_at: String,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Activity {
    /// Newest first.
    pub items: Vec<Item>,
    pub head: i64,
}

/// One line about an event, without its subject: [`latest`] puts the client's name before it. A 64-digit
/// checksum in it reads as its first 12 digits (the event keeps it whole).
pub fn describe(e: &RecordedEvent) -> String {
    shorten_checksums(&describe_in_full(e))
}

/// Every run of exactly 64 hex digits cut to its first 12 and an ellipsis.
fn shorten_checksums(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.len() == 64 {
            out.push_str(&run[..12]);
            out.push('…');
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in line.chars() {
        if c.is_ascii_hexdigit() && !c.is_ascii_uppercase() {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

fn describe_in_full(e: &RecordedEvent) -> String {
    let data: Value = serde_json::from_str(&e.data).unwrap_or(Value::Null);
    let s = |k: &str| data[k].as_str().unwrap_or("?").to_owned();
    match e.event_type.as_str() {
        "ClientRegistered" => "registered".into(),
        "ClientUpdated" => "updated".into(),
        "ClientConnected" => "connected".into(),
        "ClientDisconnected" => format!("disconnected ({})", s("reason")),
        "ClientTokenRotated" => "token rotated".into(),
        "ClientBackupOverdue" => format!("backup overdue (due {})", s("due_at")),
        "ClientDeleted" => "deleted".into(),
        "FileStored" => format!("stored {} ({})", s("filename"), bytes(&data["size"])),
        "FileVerified" if data["ok"] == true => "file verified".into(),
        "FileVerified" => format!("file verification failed: {}", s("detail")),
        "FileDownloaded" => format!("file downloaded by {}", s("by")),
        "FileDeleted" => format!("file deleted ({})", s("reason")),
        "TransferStarted" => format!("{} of {} started", s("direction"), s("filename")),
        "TransferCompleted" => format!("transfer completed ({})", bytes(&data["bytes"])),
        "TransferFailed" => format!("transfer failed: {}", s("error")),
        "LogRecorded" => format!("[{}] {}", s("level"), s("message")),
        "LogsCleared" => format!("{} log lines cleared", data["cleared"]),
        "BlobsPurged" => format!(
            "{} contents purged ({})",
            data["blobs"].as_array().map_or(0, Vec::len),
            s("reason")
        ),
        "DatabaseBackupVerified" if data["ok"] == true => format!("backup {} checks out", s("destination")),
        "DatabaseBackupVerified" => format!("backup {} is damaged: {}", s("destination"), s("detail")),
        "DatabaseBackupRemoved" => format!("backup {} removed ({})", s("destination"), s("reason")),
        "ArchiveDownloaded" => format!(
            "archive of {} files ({}) as of position {} downloaded",
            data["files"],
            bytes(&data["bytes"]),
            data["position"]
        ),
        "ChainBroken" => format!("the hash chain is broken at position {}", data["first_bad"]),
        "FleetSiteJoined" => format!("site {} joined the fleet", s("site")),
        "FleetSiteBroken" => format!(
            "site {}'s published log is broken at position {}: {}",
            s("site"),
            data["first_bad"],
            s("detail")
        ),
        "DiskNearlyFull" => format!(
            "disk nearly full: {} free of {} (alert at {}% used)",
            bytes(&data["available_bytes"]),
            bytes(&data["total_bytes"]),
            data["threshold_percent"]
        ),
        "AlertTargetAdded" => format!("alert target {} added ({})", s("name"), s("kind")),
        "AlertTargetRemoved" => "alert target removed".into(),
        "AlertRuleAdded" => "alert rule added".into(),
        "AlertRuleRemoved" => "alert rule removed".into(),
        "AlertTestRequested" => "test alert requested".into(),
        "AlertDelivered" => format!("alert delivered (event {})", data["position"]),
        "AlertDeliveryFailed" if data["gave_up"] == true => format!("alert refused for good: {}", s("error")),
        "AlertDeliveryFailed" => format!("alert delivery failed (attempt {}): {}", data["attempt"], s("error")),
        other => other.to_owned(),
    }
}

/// A byte count as people read it: `2.1 MB` (powers of 1,000, as the dashboard shows them).
pub fn bytes(n: &Value) -> String {
    let Some(mut v) = n.as_f64() else { return "?".into() };
    let units = ["B", "KB", "MB", "GB", "TB"];
    let mut i = 0;
    while v >= 1000.0 && i < units.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    if i > 0 && v < 10.0 {
        format!("{v:.1} {}", units[i])
    } else {
        format!("{v:.0} {}", units[i])
    }
}

/// The client an event concerns: its stream, the `client_id` in its data, or the client of the transfer or
/// file it names (looked up in the read tables, which a deleted file has left).
pub(crate) fn client_of(
    conn: &rusqlite::Connection,
    e: &RecordedEvent,
    data: &Value,
) -> rusqlite::Result<Option<String>> {
    if let Some(id) = e.stream.strip_prefix("client-") {
        return Ok(Some(id.to_owned()));
    }
    if let Some(id) = data["client_id"].as_str() {
        return Ok(Some(id.to_owned()));
    }
    if let Some(t) = data["transfer_id"].as_str() {
        return Ok(cairn_projections::transfers::get(conn, t)?.and_then(|t| t.client_id));
    }
    if let Some(f) = data["file_id"].as_str() {
        return Ok(cairn_projections::files::get(conn, f)?.map(|f| f.client_id));
    }
    Ok(None)
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
    let items = super::read(cairn, move |conn| {
        let page = reader::query(conn, &filter)?;
        let mut names = std::collections::HashMap::<String, Option<String>>::new();
        let mut items = Vec::with_capacity(page.events.len());
        for e in page.events.iter().rev() {
            let data: Value = serde_json::from_str(&e.data).unwrap_or(Value::Null);
            let client_id = client_of(conn, e, &data)?;
            let client_name = match &client_id {
                Some(id) => match names.get(id) {
                    Some(name) => name.clone(),
                    None => {
                        let name = cairn_projections::clients::get(conn, id)?
                            .map(|c| c.name)
                            .or_else(|| data["name"].as_str().map(str::to_owned))
                            .or_else(|| data["client_name"].as_str().map(str::to_owned));
                        names.insert(id.clone(), name.clone());
                        name
                    }
                },
                None => None,
            };
            let summary = match (&client_name, &client_id) {
                (Some(name), _) => format!("{name}: {}", describe(e)),
                // A client deleted before its name was read: its id's first characters say whose.
                (None, Some(id)) => format!("client {}: {}", id.get(..8).unwrap_or(id), describe(e)),
                (None, None) => describe(e),
            };
            items.push(Item {
                position: e.position,
                event_type: e.event_type.clone(),
                stream: e.stream.clone(),
                actor: e.metadata().actor,
                client_id,
                client_name,
                summary,
                recorded_at: e.recorded_at.clone(),
            });
        }
        Ok(items)
    })
    .await?;
    Ok(Activity { items, head })
}

#[cfg(test)]
mod tests {
    use super::shorten_checksums;

    #[test]
    fn a_checksum_in_a_line_reads_as_its_first_twelve_digits() {
        let sha = "0123456789abcdef".repeat(4);
        assert_eq!(
            shorten_checksums(&format!("declared SHA-256 {sha} does not match")),
            "declared SHA-256 0123456789ab… does not match"
        );
        // Shorter runs, and words, stay as they are.
        assert_eq!(shorten_checksums("file deadbeef added"), "file deadbeef added");
    }
}
