//! The `stats` read tables: per-minute counters and running totals, for the analytics charts.

use cairn_events::{ApplyError, DomainEvent, RecordedEvent};
use rusqlite::{params, Connection, Row};
use serde::Serialize;

use crate::query::QueryError;

/// The counters each bucket and the totals hold, as column names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Counter {
    Uploads,
    BytesIn,
    Downloads,
    BytesOut,
    VerificationsPassed,
    VerificationsFailed,
    Registrations,
    Deletions,
    Errors,
}

impl Counter {
    fn column(self) -> &'static str {
        match self {
            Self::Uploads => "uploads",
            Self::BytesIn => "bytes_in",
            Self::Downloads => "downloads",
            Self::BytesOut => "bytes_out",
            Self::VerificationsPassed => "verifications_passed",
            Self::VerificationsFailed => "verifications_failed",
            Self::Registrations => "registrations",
            Self::Deletions => "deletions",
            Self::Errors => "errors",
        }
    }
}

/// Which counters an event moves, and by how much.
fn counts(event: &DomainEvent) -> Vec<(Counter, i64)> {
    use Counter::*;
    match event {
        DomainEvent::FileStored(f) => vec![(Uploads, 1), (BytesIn, f.size as i64)],
        DomainEvent::FileDownloaded(d) => vec![(Downloads, 1), (BytesOut, d.bytes as i64)],
        DomainEvent::FileVerified(v) if v.ok => vec![(VerificationsPassed, 1)],
        DomainEvent::FileVerified(_) => vec![(VerificationsFailed, 1)],
        DomainEvent::ClientRegistered(_) => vec![(Registrations, 1)],
        DomainEvent::FileDeleted(_) | DomainEvent::ClientDeleted(_) => vec![(Deletions, 1)],
        DomainEvent::TransferFailed(_) => vec![(Errors, 1)],
        DomainEvent::LogRecorded(l) if l.level == "error" || l.level == "critical" => vec![(Errors, 1)],
        _ => Vec::new(),
    }
}

/// The minute an event falls in: `YYYY-MM-DDTHH:MM` of its `recorded_at`.
fn minute(recorded_at: &str) -> &str {
    recorded_at.get(..16).unwrap_or(recorded_at)
}

pub fn apply(conn: &Connection, e: &RecordedEvent, event: &DomainEvent) -> Result<(), ApplyError> {
    for (counter, by) in counts(event) {
        let col = counter.column();
        conn.prepare_cached(&format!(
            "INSERT INTO stats (bucket, {col}) VALUES (?1, ?2)
             ON CONFLICT (bucket) DO UPDATE SET {col} = {col} + excluded.{col}"
        ))?
        .execute(params![minute(&e.recorded_at), by])?;
        conn.prepare_cached(&format!("UPDATE stats_totals SET {col} = {col} + ?1 WHERE id = 1"))?
            .execute([by])?;
    }
    Ok(())
}

/// One bucket's counters (or the totals, with `bucket` "total").
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
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
