//! The event envelope: what a command hands the store ([`NewEvent`]) and what the log holds ([`RecordedEvent`]).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::catalogue::DomainEvent;

/// A position in the global log: 1, 2, 3 … with no gaps. 0 means "before the first event".
pub type Position = i64;

/// Who caused an event and in answer to what. Stored as the event's `metadata` JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// `admin:<name>`, `client:<id>` or `system`.
    pub actor: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_addr: Option<String>,
    /// Groups the events of one piece of work (an upload: transfer, file, logs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// The event or request that directly caused this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<String>,
}

impl Metadata {
    pub fn system() -> Self {
        Self::with_actor("system".to_owned())
    }

    pub fn admin(name: &str) -> Self {
        Self::with_actor(format!("admin:{name}"))
    }

    pub fn client(id: Uuid) -> Self {
        Self::with_actor(format!("client:{id}"))
    }

    fn with_actor(actor: String) -> Self {
        Self {
            actor,
            ..Self::default()
        }
    }

    pub fn with_request(mut self, request_id: impl Into<String>, remote_addr: Option<String>) -> Self {
        self.request_id = Some(request_id.into());
        self.remote_addr = remote_addr;
        self
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("metadata is plain strings and always serialises")
    }
}

/// An event not yet in the log. Its id makes appends idempotent: appending an id that is already stored
/// returns the stored position and writes nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub id: Uuid,
    pub event_type: String,
    pub schema: u32,
    /// JSON text, stored and hashed exactly as given.
    pub data: String,
    /// JSON text, stored and hashed exactly as given.
    pub metadata: String,
    /// The typed event `data` was serialised from, when the appender has it: projections then use it instead
    /// of parsing `data` back. (Replay always parses, and the replay test compares the two.)
    pub typed: Option<DomainEvent>,
}

impl NewEvent {
    /// Wraps a catalogue event with a fresh time-ordered id.
    pub fn from_domain(event: &DomainEvent, metadata: &Metadata) -> Self {
        Self::with_id(Uuid::now_v7(), event, metadata)
    }

    pub fn with_id(id: Uuid, event: &DomainEvent, metadata: &Metadata) -> Self {
        Self::typed(id, event.clone(), metadata.to_json())
    }

    /// Wraps a catalogue event, keeping it typed for the projections.
    pub fn typed(id: Uuid, event: DomainEvent, metadata: String) -> Self {
        Self {
            id,
            event_type: event.event_type().to_owned(),
            schema: event.schema(),
            data: event.data_json(),
            metadata,
            typed: Some(event),
        }
    }
}

/// An event as the log holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordedEvent {
    pub position: Position,
    pub id: Uuid,
    pub stream: String,
    pub version: i64,
    #[serde(rename = "type")]
    pub event_type: String,
    pub schema: u32,
    pub data: String,
    pub metadata: String,
    pub recorded_at: String,
    pub crc: u32,
    #[serde(serialize_with = "hex_hash")]
    pub hash: [u8; 32],
}

fn hex_hash<S: serde::Serializer>(hash: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(hash))
}

impl RecordedEvent {
    /// Decodes the payload into the typed catalogue event.
    pub fn decode(&self) -> Result<DomainEvent, crate::catalogue::DecodeError> {
        DomainEvent::decode(&self.event_type, self.schema, &self.data)
    }

    /// The event as people and scripts see it: `data` (without its [`SECRET_FIELDS`]) and `metadata` as JSON
    /// values, the hash in hex.
    pub fn view(&self) -> EventView {
        let parse = |text: &str| serde_json::from_str::<serde_json::Value>(text).unwrap_or(serde_json::Value::Null);
        let data = readable_data(&self.data);
        EventView {
            position: self.position,
            id: self.id,
            stream: self.stream.clone(),
            version: self.version,
            event_type: self.event_type.clone(),
            schema: self.schema,
            data,
            metadata: parse(&self.metadata),
            recorded_at: self.recorded_at.clone(),
            crc: self.crc,
            hash: hex::encode(self.hash),
        }
    }

    /// [`RecordedEvent::view`] as a JSON value.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self.view()).unwrap_or(serde_json::Value::Null)
    }

    /// The metadata, parsed; an unparseable metadata column reads as an unknown actor.
    pub fn metadata(&self) -> Metadata {
        serde_json::from_str(&self.metadata).unwrap_or_else(|_| Metadata::with_actor("unknown".into()))
    }
}

/// Parses an RFC 3339 time (or a plain `YYYY-MM-DD`, meaning its midnight UTC) into the log's own form,
/// UTC with microseconds, so that it compares correctly with `recorded_at` as text.
///
/// ```
/// use cairn_events::normalize_time;
/// assert_eq!(normalize_time("2026-11-22T12:00:00+02:00").unwrap(), "2026-11-22T10:00:00.000000Z");
/// assert!(normalize_time("last tuesday").is_err());
/// ```
pub fn normalize_time(input: &str) -> Result<String, String> {
    let parsed = chrono::DateTime::parse_from_rfc3339(input.trim())
        .map(|t| t.with_timezone(&chrono::Utc))
        .or_else(|_| {
            chrono::NaiveDate::parse_from_str(input.trim(), "%Y-%m-%d")
                .map(|d| d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc())
        })
        .map_err(|_| format!("{input:?} is not an RFC 3339 time (2026-11-22T10:00:00Z) or a date (2026-11-22)"))?;
    Ok(parsed.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string())
}

#[cfg(test)]
mod tests {
    use super::normalize_time;

    #[test]
    fn times_are_normalised_to_utc_microseconds() {
        assert_eq!(
            normalize_time("2026-11-22T10:10:00Z").unwrap(),
            "2026-11-22T10:10:00.000000Z"
        );
        assert_eq!(
            normalize_time("2026-11-22T12:10:00.5+02:00").unwrap(),
            "2026-11-22T10:10:00.500000Z"
        );
        assert_eq!(normalize_time("2026-11-22").unwrap(), "2026-11-22T00:00:00.000000Z");
        assert!(normalize_time("yesterday").is_err());
        assert!(normalize_time("").is_err());
    }
}

/// Fields of an event's data that hold a secret's hash (a client token's): kept in the log, which replay
/// rebuilds the read tables from, and left out of everything that shows an event (the API, the live feed, the
/// SQL console, `cairn events`). A hash of a guessable token is a hint; it is nobody's business but the
/// server's.
pub const SECRET_FIELDS: &[&str] = &["token_hash"];

/// An event's data as JSON, without its [`SECRET_FIELDS`] (`Null` when it is not JSON).
pub fn readable_data(data: &str) -> serde_json::Value {
    let mut value = serde_json::from_str::<serde_json::Value>(data).unwrap_or(serde_json::Value::Null);
    if let Some(fields) = value.as_object_mut() {
        for secret in SECRET_FIELDS {
            fields.remove(*secret);
        }
    }
    value
}

/// An event as the API and `cairn events --json` show it.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct EventView {
    pub position: Position,
    pub id: Uuid,
    pub stream: String,
    pub version: i64,
    #[serde(rename = "type")]
    pub event_type: String,
    pub schema: u32,
    /// The event's payload, as the catalogue defines it for its type and schema.
    pub data: serde_json::Value,
    /// `actor`, and when known `request_id`, `remote_addr`, `correlation_id`, `causation_id`.
    pub metadata: serde_json::Value,
    /// RFC 3339 UTC with microseconds.
    pub recorded_at: String,
    /// CRC-32 of the event's canonical bytes.
    pub crc: u32,
    /// SHA-256 of the previous hash and the canonical bytes, in hex.
    pub hash: String,
}
