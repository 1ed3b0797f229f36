//! The server's health, watched: the monitor that records `ClientBackupOverdue` when a client's expected backup
//! is late (as the presence monitor records timeouts, so the projections stay clock-free), the periodic chain
//! verification (`ChainBroken`), the disk watch (`DiskNearlyFull`), and what needs an operator's attention:
//! failed transfers and verifications of the last day, overdue and offline clients.

use std::time::Duration;

use cairn_events::Metadata;
use cairn_projections::clients::{self, BackupClock};
use cairn_projections::{ClientStatus, TransferStatus};
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use uuid::Uuid;

use super::ServiceError;
use crate::commands::blobs::PurgeBlobs;
use crate::commands::client::MarkBackupOverdue;
use crate::commands::server::RecordServerEvent;
use crate::error::CommandError;
use crate::Cairn;
use cairn_events::catalogue::{ChainBroken, DiskNearlyFull};

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

/// Verifies the whole chain; records `ChainBroken` when it finds a break not recorded yet (the same break is
/// recorded once, however often it is found). Answers the first bad position, if any.
pub async fn check_chain(cairn: &Cairn) -> Result<Option<u64>, ServiceError> {
    let (report, recorded) = super::read(cairn, |conn| {
        let report = cairn_events::reader::verify_chain(conn, |_| {})?;
        let recorded: Option<i64> = conn
            .query_row(
                "SELECT json_extract(data, '$.first_bad') FROM events WHERE type = 'ChainBroken'
                 ORDER BY position DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()?
            .flatten();
        Ok((report, recorded))
    })
    .await?;
    let Some(bad) = report.first_bad else { return Ok(None) };
    let first_bad = bad.position();
    if recorded != Some(first_bad) {
        tracing::error!(position = first_bad, error = %bad, "the log's hash chain is broken");
        let event = ChainBroken {
            first_bad: u64::try_from(first_bad).unwrap_or(0),
            detail: bad.to_string(),
        };
        cairn
            .execute(RecordServerEvent(event.into()), Metadata::system())
            .await?;
    }
    Ok(u64::try_from(first_bad).ok())
}

/// Runs until aborted: verifies the chain at start, then every `every`.
pub async fn chain_monitor(cairn: Cairn, every: Duration) {
    loop {
        if let Err(e) = check_chain(&cairn).await {
            tracing::warn!(error = %e, "could not verify the hash chain");
        }
        tokio::time::sleep(every).await;
    }
}

/// A file system's space as `df` counts it: the bytes this process can use (used plus available, without the
/// blocks reserved for root) and the bytes available.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskSpace {
    pub usable: u64,
    pub available: u64,
}

/// The space of the file system holding `path` (`statvfs`).
pub fn disk_space(path: &std::path::Path) -> Option<DiskSpace> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: `path` is a NUL-terminated string and `stat` a zeroed struct statvfs writes into.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(path.as_ptr(), &mut stat) } != 0 {
        return None;
    }
    let block = stat.f_frsize as u64;
    let used = (stat.f_blocks as u64).saturating_sub(stat.f_bfree as u64) * block;
    let available = stat.f_bavail as u64 * block;
    Some(DiskSpace {
        usable: used + available,
        available,
    })
}

/// Whether the disk is past the threshold now, and the event that says so when it has just crossed it.
pub fn disk_crossing(space: DiskSpace, threshold_percent: u8, was_full: bool) -> (bool, Option<DiskNearlyFull>) {
    let DiskSpace {
        usable: total,
        available,
    } = space;
    if total == 0 {
        return (was_full, None);
    }
    let used = 100.0 * (total.saturating_sub(available)) as f64 / total as f64;
    // Two points of hysteresis, so a disk hovering at the threshold raises it once.
    let full = if was_full {
        used >= f64::from(threshold_percent) - 2.0
    } else {
        used >= f64::from(threshold_percent)
    };
    let event = (full && !was_full).then_some(DiskNearlyFull {
        total_bytes: total,
        available_bytes: available,
        threshold_percent,
    });
    (full, event)
}

/// Runs until aborted: every `disk_check`, records `DiskNearlyFull` when the data directory's disk crosses
/// `disk_alert_percent` in use (once per crossing; a restart while it is still full records it again).
pub async fn disk_monitor(services: super::Services) {
    let mut full = false;
    loop {
        let root = services.cairn.root().to_owned();
        match tokio::task::spawn_blocking(move || disk_space(&root)).await {
            Ok(Some(space)) => {
                let (now, event) = disk_crossing(space, services.config.disk_alert_percent, full);
                full = now;
                if let Some(event) = event {
                    tracing::warn!(
                        available = event.available_bytes,
                        "the data directory's disk is nearly full"
                    );
                    if let Err(e) = services
                        .cairn
                        .execute(RecordServerEvent(event.into()), Metadata::system())
                        .await
                    {
                        tracing::warn!(error = %e, "could not record that the disk is nearly full");
                    }
                }
            }
            Ok(None) => tracing::warn!("could not read the data directory's disk space"),
            Err(e) => tracing::warn!(error = %e, "could not read the data directory's disk space"),
        }
        tokio::time::sleep(services.config.disk_check).await;
    }
}

/// The most contents one purge takes.
const PURGE_BATCH: usize = 500;

/// Purges the content retained since before `now - retain` (`BlobsPurged`, reason `retention`), and, with
/// `check_present`, the content retained whose blob is not there at all (reason `already gone`: a cairn from
/// before retention removed it at its deletion). Answers the bytes purged.
pub async fn purge_retained(
    cairn: &Cairn,
    now: DateTime<Utc>,
    retain: Duration,
    check_present: bool,
) -> Result<u64, ServiceError> {
    let mut purged = 0;
    if check_present {
        let blobs = cairn.blobs().clone();
        let gone = super::read(cairn, move |conn| {
            Ok(cairn_projections::retained::all(conn, usize::MAX)?
                .into_iter()
                .filter(|(sha, _)| !blobs.path_of(sha).exists())
                .map(|(sha, _)| sha)
                .collect::<Vec<_>>())
        })
        .await?;
        for chunk in gone.chunks(PURGE_BATCH) {
            let command = PurgeBlobs {
                sha256s: chunk.to_vec(),
                reason: "already gone".into(),
            };
            purged += cairn.execute(command, Metadata::system()).await?.output;
        }
    }
    let before = rfc3339(now - retain);
    let client_before = rfc3339(now - retain.max(cairn_projections::retained::CLIENT_FLOOR));
    loop {
        let (before, client_before) = (before.clone(), client_before.clone());
        let due = super::read(cairn, move |conn| {
            Ok(cairn_projections::retained::expired(
                conn,
                &before,
                &client_before,
                PURGE_BATCH,
            )?)
        })
        .await?;
        if due.is_empty() {
            return Ok(purged);
        }
        let full = due.len() == PURGE_BATCH;
        let command = PurgeBlobs {
            sha256s: due.into_iter().map(|(sha, _)| sha).collect(),
            reason: "retention".into(),
        };
        purged += cairn.execute(command, Metadata::system()).await?.output;
        if !full {
            return Ok(purged);
        }
    }
}

/// Runs until aborted: every `every`, purges the content whose retention `retain` has ended (the first round also
/// records content that was already gone).
pub async fn retention_monitor(cairn: Cairn, retain: Duration, every: Duration) {
    let mut first = true;
    loop {
        match purge_retained(&cairn, Utc::now(), retain, first).await {
            Ok(0) => {}
            Ok(bytes) => tracing::info!(bytes, "purged content past its retention"),
            Err(e) => tracing::warn!(error = %e, "could not purge the retained content"),
        }
        first = false;
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

/// A backup run that ended `failed` or `partial`.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct TroubledRun {
    pub id: String,
    pub client_id: String,
    pub client_name: Option<String>,
    /// `failed` or `partial`.
    pub status: String,
    pub failed: i64,
    /// Its first error, if it said one.
    pub error: Option<String>,
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
    /// Backup runs that ended failed or partial.
    pub troubled_runs: Section<TroubledRun>,
}

impl Attention {
    /// Everything listed, added up.
    pub fn total(&self) -> i64 {
        self.failed_transfers.count
            + self.failed_verifications.count
            + self.overdue_clients.count
            + self.offline_clients.count
            + self.troubled_runs.count
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
    let troubled_runs = section(
        conn,
        "FROM runs r LEFT JOIN clients c ON c.id = r.client_id
         WHERE r.status IN ('failed', 'partial') AND r.finished_at >= ?1",
        "r.id, r.client_id, c.name, r.status, r.failed, json_extract(r.errors, '$[0]'), r.finished_at",
        "r.finished_at DESC",
        params![since],
        |r| {
            Ok(TroubledRun {
                id: r.get(0)?,
                client_id: r.get(1)?,
                client_name: r.get(2)?,
                status: r.get(3)?,
                failed: r.get(4)?,
                error: r.get(5)?,
                at: r.get(6)?,
            })
        },
    )?;
    Ok(Attention {
        since,
        failed_transfers,
        failed_verifications,
        overdue_clients,
        offline_clients,
        troubled_runs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space(used_percent: u64) -> DiskSpace {
        DiskSpace {
            usable: 1000,
            available: 1000 - used_percent * 10,
        }
    }

    #[test]
    fn the_disk_alert_is_raised_once_per_crossing_with_two_points_of_hysteresis() {
        let (full, event) = disk_crossing(space(89), 90, false);
        assert!(!full && event.is_none());
        let (full, event) = disk_crossing(space(90), 90, false);
        assert!(full);
        assert_eq!(
            event,
            Some(DiskNearlyFull {
                total_bytes: 1000,
                available_bytes: 100,
                threshold_percent: 90
            })
        );
        // Hovering just under the threshold: still full, nothing new.
        assert_eq!(disk_crossing(space(89), 90, true), (true, None));
        assert_eq!(disk_crossing(space(88), 90, true), (true, None));
        // Clearly below: the next crossing raises it again.
        assert_eq!(disk_crossing(space(87), 90, true), (false, None));
        assert!(disk_crossing(space(95), 90, false).1.is_some());
    }

    #[test]
    fn the_disk_space_of_a_real_directory_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let s = disk_space(dir.path()).unwrap();
        assert!(s.usable > 0 && s.available <= s.usable, "{s:?}");
        assert_eq!(disk_space(&dir.path().join("missing")), None);
    }

    #[test]
    fn a_backup_is_due_its_interval_after_the_last_one_or_after_registration() {
        let clock = |last: Option<&str>| BackupClock {
            id: "x".into(),
            created_at: "2026-12-01T00:00:00.000000Z".into(),
            last_backup_at: last.map(str::to_owned),
            interval_seconds: 3600,
        };
        assert_eq!(
            due_at(&clock(None)).map(rfc3339).as_deref(),
            Some("2026-12-01T01:00:00.000000Z")
        );
        assert_eq!(
            due_at(&clock(Some("2026-12-01T10:30:00.000000Z")))
                .map(rfc3339)
                .as_deref(),
            Some("2026-12-01T11:30:00.000000Z")
        );
        assert_eq!(due_at(&clock(Some("yesterday"))), None);
    }
}
