//! cairn's event store: the log that is the source of truth.
//!
//! Every state change of cairn is an event appended here by one writer thread, hash-chained and never altered.
//!
//! - [`envelope`]: [`NewEvent`] (what a command appends) and [`RecordedEvent`] (what the log holds), [`Metadata`].
//! - [`catalogue`]: the typed version-1 events ([`DomainEvent`]) and their streams.
//! - [`chain`]: the canonical bytes of an event, its CRC-32 and the SHA-256 chain; [`ChainVerifier`].
//! - [`merkle`]: the RFC 6962 Merkle tree over the log: its nodes (kept by the writer), roots, inclusion and
//!   consistency proofs and their checks, tiles.
//! - [`schema`]: opening the database file: pragmas, migrations, refusing foreign or newer files, backups.
//! - [`writer`]: the single writer thread with group commit (no savepoint per command: a command that fails
//!   after writing is undone by rewriting its batch), idempotent and version-checked appends, and the broadcast
//!   of committed events.
//! - [`reader`]: reads of the whole log, of a stream, filtered with a cursor; the chain check; a read pool.
//! - [`store`]: [`EventStore`], which opens all of the above for one file.
//! - [`error`]: [`StoreError`] and [`AppendError`].

pub mod catalogue;
pub mod chain;
pub mod envelope;
pub mod error;
pub mod merkle;
pub mod reader;
pub mod schema;
pub mod store;
pub mod writer;

pub use catalogue::DomainEvent;
pub use chain::{ChainError, ChainVerifier};
pub use envelope::{
    normalize_time, readable_data, EventView, Metadata, NewEvent, Position, RecordedEvent, SECRET_FIELDS,
};
pub use error::{AppendError, StoreError};
pub use reader::{EventFilter, EventPage, VerifyReport};
pub use schema::Durability;
pub use store::{EventStore, StoreOptions};
pub use writer::{Appended, ApplyError, ExpectedVersion, NoProjections, Projector, Unit, Writer, WriterOptions};
