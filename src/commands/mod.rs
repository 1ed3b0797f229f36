//! Commands: the rules that turn a request into events.
//!
//! A command is a plain value built by its caller (who also generates its ids and tokens, so that deciding is
//! deterministic). [`Command::decide`] reads the current [`State`] and returns a [`Decision`] (the events, the
//! caller's answer, and blob work) or a [`CommandError`]. [`run`] executes a decision on the writer: it appends
//! the events (which applies the projections), places an uploaded blob, and schedules orphaned blobs for removal
//! after the commit.
//!
//! One file per area: [`client`], [`file`], [`log`], [`transfer`], [`run`], [`server`], [`alert`], [`fleet`]; [`state`] reads the
//! read tables.

pub mod alert;
pub mod blobs;
pub mod client;
pub mod file;
pub mod fleet;
pub mod log;
pub mod run;
pub mod server;
pub mod state;
pub mod transfer;

#[cfg(test)]
mod testing;

use std::sync::Arc;

use cairn_events::{DomainEvent, ExpectedVersion, Metadata, NewEvent, Position, Unit};
use uuid::Uuid;

use crate::blobs::{BlobStore, PendingBlob};
use crate::error::CommandError;

pub use state::{AlertTargetState, ClientState, FileState, RunState, State, TransferState};

/// What a command decided: the events to append and everything to do with them.
#[derive(Debug)]
pub struct Decision<T> {
    /// Events in order, each with the version its stream must be at before the first event of its run.
    pub events: Vec<(DomainEvent, ExpectedVersion)>,
    /// What the caller gets back.
    pub output: T,
    /// An upload to move into the blob store, by the same command that records its `FileStored` (a failure
    /// after the move undoes the command whole; see decision 0001).
    pub place_blob: Option<PendingBlob>,
    /// Content whose blob is removed after the commit if no file holds it any more.
    pub release_blobs: Vec<String>,
}

impl<T> Decision<T> {
    pub fn new(output: T) -> Self {
        Self {
            events: Vec::new(),
            output,
            place_blob: None,
            release_blobs: Vec::new(),
        }
    }

    pub fn event(mut self, event: impl Into<DomainEvent>, expected: ExpectedVersion) -> Self {
        self.events.push((event.into(), expected));
        self
    }
}

/// A request to change state, decided against the current state.
pub trait Command: Send + 'static {
    type Output: Send + 'static;

    /// Applies the rules: the events to record, or why not.
    fn decide(self, state: &dyn State) -> Result<Decision<Self::Output>, CommandError>;
}

/// What executing a command gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Executed<T> {
    pub output: T,
    /// The positions of the events it appended (empty when it decided nothing needed recording).
    pub positions: Vec<Position>,
}

/// Decides and records a command inside the writer's unit.
pub fn run<C: Command>(
    unit: &mut Unit<'_>,
    blobs: &Arc<BlobStore>,
    command: C,
    metadata: &Metadata,
) -> Result<Executed<C::Output>, CommandError> {
    let decision = command.decide(&state::SqlState::new(unit))?;
    let metadata = metadata.to_json();
    let mut positions = Vec::with_capacity(decision.events.len());
    let mut events = decision.events.into_iter().peekable();
    // Consecutive events of one stream are appended together, checked against the first one's expectation.
    while let Some((first, expected)) = events.next() {
        let stream = first.stream();
        let mut run = vec![NewEvent::typed(Uuid::now_v7(), first, metadata.clone())];
        while let Some((next, _)) = events.next_if(|(e, _)| e.stream() == stream) {
            run.push(NewEvent::typed(Uuid::now_v7(), next, metadata.clone()));
        }
        positions.extend(unit.append(&stream, expected, run)?.positions);
    }
    if let Some(pending) = decision.place_blob {
        blobs.place(pending).map_err(CommandError::Blob)?;
        let blobs = blobs.clone();
        unit.before_commit(move || blobs.sync_placed());
    }
    for sha in decision.release_blobs {
        let blobs = blobs.clone();
        unit.after_commit(move |conn| blobs.remove_if_unreferenced(conn, &sha));
    }
    Ok(Executed {
        output: decision.output,
        positions,
    })
}

/// The deletions' content: with `retain`, content no file holds any more stays in the blob store (the projection
/// keeps it as retained until a [`blobs::PurgeBlobs`]); without, it is purged in the same command, recorded by a
/// `BlobsPurged`, and its blob removed after the commit.
pub(crate) fn release_deleted<T>(
    state: &dyn State,
    mut decision: Decision<T>,
    deleted: &[(String, u64)],
    retain: bool,
) -> Result<Decision<T>, CommandError> {
    if retain {
        return Ok(decision);
    }
    let mut blobs: Vec<cairn_events::catalogue::PurgedBlob> = Vec::new();
    for (sha256, size) in deleted {
        if blobs.iter().any(|b| &b.sha256 == sha256) {
            continue;
        }
        let going = deleted.iter().filter(|(s, _)| s == sha256).count() as u64;
        if state.holders(sha256)? <= going {
            blobs.push(cairn_events::catalogue::PurgedBlob {
                sha256: sha256.clone(),
                size: *size,
            });
        }
    }
    if blobs.is_empty() {
        return Ok(decision);
    }
    decision.release_blobs.extend(blobs.iter().map(|b| b.sha256.clone()));
    Ok(decision.event(
        cairn_events::catalogue::BlobsPurged {
            blobs,
            reason: "not retained".into(),
        },
        ExpectedVersion::Any,
    ))
}

/// The state a client must be in for anything to happen to it: present, or the reason it is not.
pub(crate) fn live_client(state: &dyn State, id: Uuid) -> Result<ClientState, CommandError> {
    match state.client(id)? {
        Some(c) => Ok(c),
        None if state.stream_version(&cairn_events::catalogue::client_stream(id))? > 0 => {
            Err(CommandError::ClientDeleted(id))
        }
        None => Err(CommandError::ClientNotFound(id)),
    }
}

/// The checks every text field shares.
pub(crate) mod validate {
    use crate::error::CommandError;

    /// Trimmed, 1 to `max` characters, no control characters.
    pub fn name(field: &'static str, value: &str, max: usize) -> Result<String, CommandError> {
        let v = value.trim();
        if v.is_empty() {
            return Err(CommandError::invalid(field, "must not be empty"));
        }
        if v.chars().count() > max {
            return Err(CommandError::invalid(
                field,
                format!("must be at most {max} characters"),
            ));
        }
        no_controls(field, v, false)?;
        Ok(v.to_owned())
    }

    /// The Unicode controls of text direction (embeddings, overrides, isolates, marks): in a name they make
    /// `invoice\u{202E}txt.exe` read as `invoiceexe.txt`.
    fn is_bidi_control(c: char) -> bool {
        matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
    }

    /// Refuses NUL, control characters and direction controls; `multiline` allows newlines and tabs (log
    /// messages).
    pub fn no_controls(field: &'static str, value: &str, multiline: bool) -> Result<(), CommandError> {
        match value
            .chars()
            .find(|c| (c.is_control() && !(multiline && matches!(c, '\n' | '\r' | '\t'))) || is_bidi_control(*c))
        {
            Some(c) => Err(CommandError::invalid(
                field,
                format!("must not contain control characters (found U+{:04X})", c as u32),
            )),
            None => Ok(()),
        }
    }

    /// A file's name as the client knows it: metadata only, so it may not smuggle a path.
    pub fn filename(value: &str) -> Result<String, CommandError> {
        let v = name("filename", value, 255)?;
        if v.contains('/') || v.contains('\\') {
            return Err(CommandError::invalid(
                "filename",
                "must not contain / or \\ (send the path in `path`)",
            ));
        }
        if v == "." || v == ".." {
            return Err(CommandError::invalid("filename", "must not be . or .."));
        }
        Ok(v)
    }

    /// The path the file had on the client: kept as text, never used on the server's disk.
    pub fn original_path(value: &str) -> Result<String, CommandError> {
        if value.len() > 4096 {
            return Err(CommandError::invalid("path", "must be at most 4096 bytes"));
        }
        no_controls("path", value, false)?;
        Ok(value.to_owned())
    }

    pub fn ip_address(value: Option<&str>) -> Result<Option<String>, CommandError> {
        value
            .map(|v| {
                v.trim()
                    .parse::<std::net::IpAddr>()
                    .map(|ip| ip.to_string())
                    .map_err(|_| CommandError::invalid("ip_address", format!("{v:?} is not an IP address")))
            })
            .transpose()
    }
}

/// A token and the hash that is stored in its place.
pub fn token_hash(token: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}

/// A fresh random token (244 bits from two v4 UUIDs), shown once to its owner.
pub fn new_token() -> String {
    format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple())
}
