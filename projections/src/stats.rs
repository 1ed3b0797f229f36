//! The `stats` read tables: per-minute counters and running totals, for the analytics charts.

use cairn_events::{ApplyError, DomainEvent, RecordedEvent};
use rusqlite::{params, Connection, Row};
use serde::Serialize;

use crate::query::QueryError;

/// The counters each bucket and the totals hold, in column order.
const COUNTERS: [&str; 9] = [
    "uploads",
    "bytes_in",
    "downloads",
    "bytes_out",
    "verifications_passed",
    "verifications_failed",
    "registrations",
    "deletions",
    "errors",
];

/// How much an event moves each counter (in [`COUNTERS`] order); `None` when it moves none.
fn counts(event: &DomainEvent) -> Option<[i64; 9]> {
    let mut c = [0i64; 9];
    match event {
        DomainEvent::FileStored(f) => {
            c[0] = 1;
            c[1] = f.size as i64;
        }
        DomainEvent::FileDownloaded(d) => {
            c[2] = 1;
            c[3] = d.bytes as i64;
        }
        DomainEvent::FileVerified(v) if v.ok => c[4] = 1,
        DomainEvent::FileVerified(_) => c[5] = 1,
        DomainEvent::ClientRegistered(_) => c[6] = 1,
        DomainEvent::FileDeleted(_) | DomainEvent::ClientDeleted(_) => c[7] = 1,
        DomainEvent::TransferFailed(_) => c[8] = 1,
        DomainEvent::LogRecorded(l) if l.level == "error" || l.level == "critical" => c[8] = 1,
        _ => return None,
    }
    Some(c)
}

/// The minute an event falls in: `YYYY-MM-DDTHH:MM` of its `recorded_at`.
fn minute(recorded_at: &str) -> &str {
    recorded_at.get(..16).unwrap_or(recorded_at)
}

/// One upsert of the minute's bucket and one update of the totals, whatever the counters moved.
fn statements() -> &'static (String, String) {
    static SQL: std::sync::OnceLock<(String, String)> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        let cols = COUNTERS.join(", ");
        let params: Vec<String> = (2..=10).map(|i| format!("?{i}")).collect();
        let add: Vec<String> = COUNTERS.iter().map(|c| format!("{c} = {c} + excluded.{c}")).collect();
        let totals: Vec<String> = COUNTERS
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c} = {c} + ?{}", i + 1))
            .collect();
        (
            format!(
                "INSERT INTO stats (bucket, {cols}) VALUES (?1, {}) ON CONFLICT (bucket) DO UPDATE SET {}",
                params.join(", "),
                add.join(", ")
            ),
            format!("UPDATE stats_totals SET {} WHERE id = 1", totals.join(", ")),
        )
    })
}

/// Keeps the current storage figures. Runs after the files projection has applied the same event, so the
/// files table already holds (or no longer holds) the file: one reference left means new content, none means gone.
fn storage(conn: &Connection, event: &DomainEvent) -> Result<(), ApplyError> {
    let (files, bytes, sha) = match event {
        DomainEvent::FileStored(f) => (1i64, f.size as i64, &f.sha256),
        DomainEvent::FileDeleted(f) => (-1, -(f.size as i64), &f.sha256),
        _ => return Ok(()),
    };
    let references = crate::files::references(conn, sha)?;
    let stored = match (files, references) {
        (1, 1) | (-1, 0) => bytes,
        _ => 0,
    };
    conn.prepare_cached(
        "UPDATE stats_totals SET files = files + ?1, file_bytes = file_bytes + ?2, stored_bytes = stored_bytes + ?3
         WHERE id = 1",
    )?
    .execute(params![files, bytes, stored])?;
    Ok(())
}

/// The current storage figures: files stored, their bytes, and bytes on disk after deduplication.
pub fn storage_totals(conn: &Connection) -> rusqlite::Result<(i64, i64, i64)> {
    conn.prepare_cached("SELECT files, file_bytes, stored_bytes FROM stats_totals WHERE id = 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
}

pub fn apply(conn: &Connection, e: &RecordedEvent, event: &DomainEvent) -> Result<(), ApplyError> {
    storage(conn, event)?;
    let Some(c) = counts(event) else {
        return Ok(());
    };
    let (bucket, totals) = statements();
    conn.prepare_cached(bucket)?.execute(params![
        minute(&e.recorded_at),
        c[0],
        c[1],
        c[2],
        c[3],
        c[4],
        c[5],
        c[6],
        c[7],
        c[8]
    ])?;
    conn.prepare_cached(totals)?
        .execute(params![c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8]])?;
    Ok(())
}

/// One bucket's counters (or the totals, with `bucket` "total").
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Counters {
    pub bucket: String,
    pub uploads: i64,
    pub bytes_in: i64,
    pub downloads: i64,
    pub bytes_out: i64,
    pub verifications_passed: i64,
    pub verifications_failed: i64,
    pub registrations: i64,
    pub deletions: i64,
    pub errors: i64,
}

const SUMS: &str = "sum(uploads), sum(bytes_in), sum(downloads), sum(bytes_out), sum(verifications_passed), \
                    sum(verifications_failed), sum(registrations), sum(deletions), sum(errors)";

fn from_row(r: &Row<'_>) -> rusqlite::Result<Counters> {
    Ok(Counters {
        bucket: r.get(0)?,
        uploads: r.get(1)?,
        bytes_in: r.get(2)?,
        downloads: r.get(3)?,
        bytes_out: r.get(4)?,
        verifications_passed: r.get(5)?,
        verifications_failed: r.get(6)?,
        registrations: r.get(7)?,
        deletions: r.get(8)?,
        errors: r.get(9)?,
    })
}

/// How wide a chart's buckets are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    Minute,
    Hour,
    Day,
}

impl std::str::FromStr for Bucket {
    type Err = QueryError;
    fn from_str(s: &str) -> Result<Self, QueryError> {
        match s {
            "minute" => Ok(Self::Minute),
            "hour" => Ok(Self::Hour),
            "day" => Ok(Self::Day),
            _ => Err(QueryError::Filter {
                field: "bucket",
                reason: "one of minute, hour, day".into(),
            }),
        }
    }
}

impl Bucket {
    /// How many leading characters of a minute bucket name the wider bucket.
    fn prefix_len(self) -> usize {
        match self {
            Self::Minute => 16,
            Self::Hour => 13,
            Self::Day => 10,
        }
    }
}

/// Buckets from `from` (inclusive) to `to` (exclusive), RFC 3339 times; empty buckets are absent.
pub fn range(
    conn: &Connection,
    from: Option<&str>,
    to: Option<&str>,
    bucket: Bucket,
) -> Result<Vec<Counters>, crate::Error> {
    let len = bucket.prefix_len();
    let from = from.map(|f| crate::query::time("from", f)).transpose()?;
    let to = to.map(|t| crate::query::time("to", t)).transpose()?;
    Ok(conn
        .prepare(&format!(
            "SELECT substr(bucket, 1, {len}) AS b, {SUMS} FROM stats
         WHERE bucket >= substr(?1, 1, 16) AND bucket < substr(?2, 1, 16) GROUP BY b ORDER BY b"
        ))?
        .query_map(
            params![from.unwrap_or_default(), to.unwrap_or_else(|| "9999".into())],
            from_row,
        )?
        .collect::<rusqlite::Result<_>>()?)
}

pub fn totals(conn: &Connection) -> rusqlite::Result<Counters> {
    conn.query_row(
        "SELECT 'total', uploads, bytes_in, downloads, bytes_out, verifications_passed, verifications_failed,
                registrations, deletions, errors FROM stats_totals WHERE id = 1",
        [],
        from_row,
    )
}
