//! cairn's read models: tables projected from the event log, their queries, and their rebuild.
//!
//! Every table here can be dropped and rebuilt from `events`. A projection's `apply` reads only the event and
//! the read tables (never the clock, the disk, the network or randomness), so replay is deterministic.
//!
//! - [`clients`], [`files`], [`transfers`], [`logs`], [`stats`], [`alerts`], [`retained`], [`runs`]: one module per read model, with
//!   its `apply` and its queries.
//! - [`status`]: the statuses of clients and transfers, as enums.
//! - [`checkpoints`]: how far each projection has applied the log.
//! - [`query`]: pagination, sorting and searching shared by every list.
//! - [`rebuild`]: replaying the log into a fresh database, verifying the chain as it reads.
//! - [`diff`]: comparing the read tables of two databases, row by row.

pub mod alerts;
pub mod checkpoints;
pub mod clients;
pub mod diff;
pub mod files;
pub mod logs;
pub mod query;
pub mod rebuild;
pub mod retained;
pub mod runs;
pub mod stats;
pub mod status;
pub mod transfers;

use cairn_events::{ApplyError, DomainEvent, Projector, RecordedEvent};
use rusqlite::Connection;

pub use query::{ListQuery, Page, QueryError};
pub use status::{ClientStatus, TransferStatus};

/// Every read table, in the order a rebuild swaps them in.
pub const READ_TABLES: &[&str] = &[
    "clients",
    "files",
    "transfers",
    "logs",
    "stats",
    "stats_totals",
    "alert_targets",
    "alert_rules",
    "alert_deliveries",
    "retained_blobs",
    "runs",
    "client_contents",
    "projection_checkpoints",
];

/// Every table a rebuild writes and a replay swaps in and compares: the read tables, and the Merkle tree's
/// nodes (derived from the log like them, though the writer keeps it rather than a projection).
pub fn rebuilt_tables() -> impl Iterator<Item = &'static str> {
    READ_TABLES.iter().copied().chain([cairn_events::merkle::store::TABLE])
}

/// The projections, by the name their checkpoint carries.
pub const PROJECTIONS: &[&str] = &[
    "clients",
    "files",
    "transfers",
    "logs",
    "stats",
    "alerts",
    "retained",
    "runs",
];

/// A query's failure: bad input from the caller, or the database.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error(transparent)]
    Sql(#[from] rusqlite::Error),
}

/// All read tables, applied together to each event.
#[derive(Debug, Default)]
pub struct Projections;

impl Projections {
    /// Applies one event to every read table, decoding its payload unless `typed` already holds it.
    pub fn apply_event(
        conn: &Connection,
        event: &RecordedEvent,
        typed: Option<&DomainEvent>,
    ) -> Result<(), ApplyError> {
        let decoded;
        let domain = match typed {
            Some(d) => d,
            None => {
                decoded = event.decode()?;
                &decoded
            }
        };
        clients::apply(conn, event, domain)?;
        files::apply(conn, event, domain)?;
        transfers::apply(conn, event, domain)?;
        logs::apply(conn, event, domain)?;
        stats::apply(conn, event, domain)?;
        alerts::apply(conn, event, domain)?;
        retained::apply(conn, event, domain)?;
        runs::apply(conn, event, domain)?;
        Ok(())
    }
}

impl Projector for Projections {
    fn apply(
        &mut self,
        conn: &Connection,
        event: &RecordedEvent,
        typed: Option<&DomainEvent>,
    ) -> Result<(), ApplyError> {
        Self::apply_event(conn, event, typed)
    }

    fn checkpoint(&mut self, conn: &Connection, event: &RecordedEvent) -> Result<(), ApplyError> {
        checkpoints::record_all(conn, event.position, &event.recorded_at)?;
        Ok(())
    }
}
