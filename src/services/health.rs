//! Backup health: the monitor that records `ClientBackupOverdue` when a client's expected backup is late (as the
//! presence monitor records timeouts, so the projections stay clock-free), and what needs an operator's
//! attention: failed transfers and verifications of the last day, overdue and offline clients.

use std::time::Duration;

use cairn_events::Metadata;
use cairn_projections::clients::{self, BackupClock};
use cairn_projections::{ClientStatus, TransferStatus};
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection};
use serde::Serialize;
use uuid::Uuid;

use super::ServiceError;
use crate::commands::client::MarkBackupOverdue;
use crate::error::CommandError;
use crate::Cairn;

/// How far back "needs attention" looks for failures.
pub const ATTENTION_WINDOW: Duration = Duration::from_secs(24 * 60 * 60);
/// The most items one section of "needs attention" lists (its count is exact).
pub const ATTENTION_ITEMS: i64 = 50;

/// The times the log writes: RFC 3339, UTC, microseconds.
fn rfc3339(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// When a client's next backup is due: its interval after its last backup, or after its registration when it
/// never completed one. `None` when a stored time does not parse (nothing the writer wrote).
pub fn due_at(clock: &BackupClock) -> Option<DateTime<Utc>> {
    let from = clock.last_backup_at.as_deref().unwrap_or(&clock.created_at);
    let from = DateTime::parse_from_rfc3339(from).ok()?.with_timezone(&Utc);
    from.checked_add_signed(chrono::TimeDelta::seconds(clock.interval_seconds))
}

/// Records `ClientBackupOverdue` for every client whose backup was due before `now` and that is not marked
/// yet; answers how many were marked.
pub async fn mark_overdue(cairn: &Cairn, now: DateTime<Utc>) -> Result<usize, ServiceError> {
    let clocks = super::read(cairn, |conn| Ok(clients::backup_clocks(conn)?)).await?;
    let mut marked = 0;
    for clock in clocks {
        let Some(due) = due_at(&clock) else { continue };
        let Ok(id) = Uuid::parse_str(&clock.id) else { continue };
        if due > now {
            continue;
        }
        let command = MarkBackupOverdue {
            id,
            last_backup_at: clock.last_backup_at,
            interval_seconds: u64::try_from(clock.interval_seconds).unwrap_or(0),
            due_at: rfc3339(due),
        };
        match cairn.execute(command, Metadata::system()).await {
            Ok(done) => marked += usize::from(done.output),
            // Deleted since it was read: nothing is overdue any more.
            Err(CommandError::ClientNotFound(_) | CommandError::ClientDeleted(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(marked)
}

/// Runs until aborted: every `every`, marks the clients whose backup is overdue.
pub async fn monitor(cairn: Cairn, every: Duration) {
    loop {
        if let Err(e) = mark_overdue(&cairn, Utc::now()).await {
            tracing::warn!(error = %e, "could not check the clients' backups");
        }
        tokio::time::sleep(every).await;
    }
}

/// One section of "needs attention": how many there are, and the latest of them.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Section<T> {
    pub count: i64,
    pub items: Vec<T>,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct FailedTransfer {
    pub id: String,
    pub client_id: Option<String>,
    pub client_name: Option<String>,
    pub filename: String,
    pub error: Option<String>,
    pub bytes: i64,
    pub at: String,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct FailedVerification {
    pub file_id: String,
    pub filename: String,
    pub client_id: String,
    pub client_name: String,
    pub at: String,
}

/// A client that needs looking at: overdue (since its backup was due) or offline (since it was last seen).
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ClientConcern {
    pub id: String,
    pub name: String,
    pub status: ClientStatus,
    pub last_seen: Option<String>,
    pub last_backup_at: Option<String>,
    pub backup_overdue_since: Option<String>,
}

/// What needs an operator's attention now.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Attention {
    /// Failures are counted from this time (a day ago).
    pub since: String,
    pub failed_transfers: Section<FailedTransfer>,
    pub failed_verifications: Section<FailedVerification>,
    pub overdue_clients: Section<ClientConcern>,
    pub offline_clients: Section<ClientConcern>,
}

impl Attention {
    /// Everything listed, added up.
    pub fn total(&self) -> i64 {
        self.failed_transfers.count
            + self.failed_verifications.count
            + self.overdue_clients.count
            + self.offline_clients.count
    }
}

fn section<T>(
    conn: &Connection,
    from_where: &str,
    columns: &str,
    order: &str,
    bound: &[&dyn rusqlite::ToSql],
    row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Section<T>> {
    let count = conn.query_row(&format!("SELECT count(*) {from_where}"), bound, |r| r.get(0))?;
    let items = conn
        .prepare(&format!(
            "SELECT {columns} {from_where} ORDER BY {order} LIMIT {ATTENTION_ITEMS}"
        ))?
        .query_map(bound, row)?
        .collect::<rusqlite::Result<_>>()?;
    Ok(Section { count, items })
}

fn concern(r: &rusqlite::Row<'_>) -> rusqlite::Result<ClientConcern> {
    Ok(ClientConcern {
        id: r.get(0)?,
        name: r.get(1)?,
        status: r.get(2)?,
        last_seen: r.get(3)?,
        last_backup_at: r.get(4)?,
        backup_overdue_since: r.get(5)?,
    })
}

const CONCERN: &str = "id, name, status, last_seen, last_backup_at, backup_overdue_since";

/// Failed transfers and verifications since `now` less a day, overdue and offline clients.
pub fn attention(conn: &Connection, now: DateTime<Utc>) -> Result<Attention, ServiceError> {
    let since = rfc3339(now - ATTENTION_WINDOW);
    let failed_transfers = section(
        conn,
        "FROM transfers t LEFT JOIN clients c ON c.id = t.client_id
         WHERE t.status = ?1 AND t.finished_at >= ?2",
        "t.id, t.client_id, c.name, t.filename, t.error, t.bytes, t.finished_at",
        "t.finished_at DESC",
        params![TransferStatus::Failed, since],
        |r| {
            Ok(FailedTransfer {
                id: r.get(0)?,
                client_id: r.get(1)?,
                client_name: r.get(2)?,
                filename: r.get(3)?,
                error: r.get(4)?,
                bytes: r.get(5)?,
                at: r.get(6)?,
            })
        },
    )?;
    let failed_verifications = section(
        conn,
        "FROM files WHERE verified = 0 AND verified_at >= ?1",
        "id, filename, client_id, client_name, verified_at",
        "verified_at DESC",
        params![since],
        |r| {
            Ok(FailedVerification {
                file_id: r.get(0)?,
                filename: r.get(1)?,
                client_id: r.get(2)?,
                client_name: r.get(3)?,
                at: r.get(4)?,
            })
        },
    )?;
    let overdue_clients = section(
        conn,
        "FROM clients WHERE backup_overdue_since IS NOT NULL",
        CONCERN,
        "backup_overdue_since ASC",
        params![],
        concern,
    )?;
    let offline_clients = section(
        conn,
        "FROM clients WHERE status = ?1",
        CONCERN,
        "last_seen DESC",
        params![ClientStatus::Offline],
        concern,
    )?;
    Ok(Attention {
        since,
        failed_transfers,
        failed_verifications,
        overdue_clients,
        offline_clients,
    })
}
