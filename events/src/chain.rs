//! The canonical bytes of an event, its CRC-32 and the SHA-256 hash chain.
//!
//! # Canonical bytes (version 1)
//!
//! Every integer is big-endian; every string is its UTF-8 bytes preceded by their length as a `u32`. The `data`
//! and `metadata` strings are the JSON text exactly as stored in the row, so verification never re-serialises.
//!
//! | field | encoding |
//! |---|---|
//! | magic | the 8 bytes `cairn/v1` |
//! | position | `i64` |
//! | id | the UUID's 16 bytes |
//! | stream | string |
//! | version | `i64` |
//! | type | string |
//! | schema | `u32` |
//! | data | string |
//! | metadata | string |
//! | recorded_at | string |
//!
//! `crc = CRC-32 (IEEE) of the canonical bytes`; `hash = SHA-256(previous hash ‖ canonical bytes)`, where the first
//! event's previous hash is 32 zero bytes. The test `the_canonical_encoding_is_pinned_by_a_fixed_vector` pins it.

use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::envelope::{Position, RecordedEvent};

/// The previous hash of the first event.
pub const GENESIS: [u8; 32] = [0; 32];

const MAGIC: &[u8; 8] = b"cairn/v1";

/// The fields that the canonical bytes cover, borrowed from wherever they live.
#[derive(Debug, Clone, Copy)]
pub struct EventFields<'a> {
    pub position: Position,
    pub id: Uuid,
    pub stream: &'a str,
    pub version: i64,
    pub event_type: &'a str,
    pub schema: u32,
    pub data: &'a str,
    pub metadata: &'a str,
    pub recorded_at: &'a str,
}

impl<'a> From<&'a RecordedEvent> for EventFields<'a> {
    fn from(e: &'a RecordedEvent) -> Self {
        Self {
            position: e.position,
            id: e.id,
            stream: &e.stream,
            version: e.version,
            event_type: &e.event_type,
            schema: e.schema,
            data: &e.data,
            metadata: &e.metadata,
            recorded_at: &e.recorded_at,
        }
    }
}

/// Writes the canonical bytes into `buf`, replacing what it held (the writer reuses one buffer).
pub fn canonical_bytes_into(fields: &EventFields<'_>, buf: &mut Vec<u8>) {
    fn string(buf: &mut Vec<u8>, s: &str) {
        let len = u32::try_from(s.len()).expect("an event field is shorter than 4 GiB");
        buf.extend_from_slice(&len.to_be_bytes());
        buf.extend_from_slice(s.as_bytes());
    }
    buf.clear();
    buf.extend_from_slice(MAGIC);
    buf.extend_from_slice(&fields.position.to_be_bytes());
    buf.extend_from_slice(fields.id.as_bytes());
    string(buf, fields.stream);
    buf.extend_from_slice(&fields.version.to_be_bytes());
    string(buf, fields.event_type);
    buf.extend_from_slice(&fields.schema.to_be_bytes());
    string(buf, fields.data);
    string(buf, fields.metadata);
    string(buf, fields.recorded_at);
}

/// ```
/// use cairn_events::chain::{canonical_bytes, chain_hash, crc, EventFields, GENESIS};
/// let fields = EventFields {
///     position: 1,
///     id: uuid::Uuid::nil(),
///     stream: "log",
///     version: 1,
///     event_type: "LogsCleared",
///     schema: 1,
///     data: r#"{"cleared":0}"#,
///     metadata: r#"{"actor":"system"}"#,
///     recorded_at: "2026-11-22T10:00:00.000000Z",
/// };
/// let bytes = canonical_bytes(&fields);
/// assert!(bytes.starts_with(b"cairn/v1"));
/// // The first event chains from 32 zero bytes; any change to a field changes both checks.
/// let changed = canonical_bytes(&EventFields { version: 2, ..fields });
/// assert_ne!(crc(&bytes), crc(&changed));
/// assert_ne!(chain_hash(&GENESIS, &bytes), chain_hash(&GENESIS, &changed));
/// ```
pub fn canonical_bytes(fields: &EventFields<'_>) -> Vec<u8> {
    let mut buf = Vec::with_capacity(128 + fields.data.len() + fields.metadata.len());
    canonical_bytes_into(fields, &mut buf);
    buf
}

pub fn crc(canonical: &[u8]) -> u32 {
    crc32fast::hash(canonical)
}

pub fn chain_hash(previous: &[u8; 32], canonical: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(previous);
    hasher.update(canonical);
    hasher.finalize().into()
}

/// Why an event does not match the chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error("position {position}: expected position {expected} (a gap or a reordering)")]
    Gap { position: Position, expected: Position },
    #[error("position {position}: CRC-32 is {stored:08x}, the event's bytes give {computed:08x}")]
    Crc {
        position: Position,
        stored: u32,
        computed: u32,
    },
    #[error("position {position}: hash does not chain from the previous event")]
    Hash { position: Position },
    #[error("position {position}: {detail}")]
    Unreadable { position: Position, detail: String },
}

impl ChainError {
    /// The first position that does not match.
    pub fn position(&self) -> Position {
        match self {
            Self::Gap { position, .. }
            | Self::Crc { position, .. }
            | Self::Hash { position }
            | Self::Unreadable { position, .. } => *position,
        }
    }
}

/// Checks events one by one, in order, against their CRC and the chain.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    expected: Position,
    previous: [u8; 32],
    buf: Vec<u8>,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self::new()
    }
}

impl ChainVerifier {
    pub fn new() -> Self {
        Self {
            expected: 1,
            previous: GENESIS,
            buf: Vec::with_capacity(512),
        }
    }

    /// How many events have been checked.
    pub fn checked(&self) -> i64 {
        self.expected - 1
    }

    /// The hash of the last event checked (the genesis hash before any).
    pub fn head_hash(&self) -> [u8; 32] {
        self.previous
    }

    pub fn check(&mut self, event: &RecordedEvent) -> Result<(), ChainError> {
        if event.position != self.expected {
            return Err(ChainError::Gap {
                position: self.expected,
                expected: self.expected,
            });
        }
        canonical_bytes_into(&EventFields::from(event), &mut self.buf);
        let computed = crc(&self.buf);
        if computed != event.crc {
            return Err(ChainError::Crc {
                position: event.position,
                stored: event.crc,
                computed,
            });
        }
        let hash = chain_hash(&self.previous, &self.buf);
        if hash != event.hash {
            return Err(ChainError::Hash {
                position: event.position,
            });
        }
        self.previous = hash;
        self.expected += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed() -> EventFields<'static> {
        EventFields {
            position: 1,
            id: Uuid::from_u128(0x0192_0000_0000_7000_8000_0000_0000_0001),
            stream: "client-00000000-0000-0000-0000-000000000001",
            version: 1,
            event_type: "ClientRegistered",
            schema: 1,
            data: r#"{"client_id":"00000000-0000-0000-0000-000000000001","name":"alpha"}"#,
            metadata: r#"{"actor":"system"}"#,
            recorded_at: "2026-01-02T03:04:05.678901Z",
        }
    }

    #[test]
    fn the_canonical_encoding_is_pinned_by_a_fixed_vector() {
        let bytes = canonical_bytes(&fixed());
        assert_eq!(&bytes[..8], b"cairn/v1");
        assert_eq!(bytes.len(), PINNED_LEN);
        assert_eq!(format!("{:08x}", crc(&bytes)), PINNED_CRC);
        assert_eq!(hex::encode(chain_hash(&GENESIS, &bytes)), PINNED_HASH);
    }

    #[test]
    fn the_verifier_names_the_first_event_that_does_not_match() {
        let mut events = Vec::new();
        let mut previous = GENESIS;
        for position in 1..=3 {
            let fields = EventFields { position, ..fixed() };
            let bytes = canonical_bytes(&fields);
            let hash = chain_hash(&previous, &bytes);
            events.push(RecordedEvent {
                position,
                id: fields.id,
                stream: fields.stream.into(),
                version: fields.version,
                event_type: fields.event_type.into(),
                schema: fields.schema,
                data: fields.data.into(),
                metadata: fields.metadata.into(),
                recorded_at: fields.recorded_at.into(),
                crc: crc(&bytes),
                hash,
            });
            previous = hash;
        }
        let mut ok = ChainVerifier::new();
        for e in &events {
            ok.check(e).unwrap();
        }
        assert_eq!(ok.checked(), 3);

        let mut tampered = events.clone();
        tampered[1].data = tampered[1].data.replace("alpha", "alphb");
        let mut v = ChainVerifier::new();
        v.check(&tampered[0]).unwrap();
        assert!(matches!(
            v.check(&tampered[1]),
            Err(ChainError::Crc { position: 2, .. })
        ));

        let mut rehashed = events.clone();
        rehashed[1].hash[0] ^= 1;
        let mut v = ChainVerifier::new();
        v.check(&rehashed[0]).unwrap();
        assert_eq!(v.check(&rehashed[1]), Err(ChainError::Hash { position: 2 }));

        let mut v = ChainVerifier::new();
        v.check(&events[0]).unwrap();
        assert_eq!(
            v.check(&events[2]),
            Err(ChainError::Gap {
                position: 2,
                expected: 2
            })
        );
    }

    const PINNED_LEN: usize = 235;
    const PINNED_CRC: &str = "4507c966";
    const PINNED_HASH: &str = "071ebd02121f5ad952df72cf4d1e571d9e58a324d880c4a3fd15285c5aa94887";
}
