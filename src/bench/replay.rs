//! `cairn bench replay`: rebuilding every read table from a log of a realistic mix of events, beside a raw
//! read-and-insert of the same rows.

use std::path::Path;
use std::time::Instant;

use cairn_events::catalogue::*;
use cairn_events::{reader, schema, DomainEvent, Durability, EventStore, Metadata, NoProjections, StoreOptions};
use uuid::Uuid;

use super::{rate, sample_log};
use crate::replay::{self, Mode};

#[derive(Debug, Clone)]
pub struct Outcome {
    pub events: i64,
    /// Reading the rows and inserting them into a fresh `events` table, nothing else.
    pub raw: f64,
    /// Reading, verifying the chain, and applying every projection into a fresh database.
    pub rebuild: f64,
    /// `cairn replay` as a user runs it: rebuild, then swap the tables into the live database.
    pub replay: f64,
}

/// A valid history: 45 clients, then uploads (transfer, file, completion), verifications, downloads,
/// connections and log lines, in proportions like a busy fleet's.
pub fn generate(dir: &Path, events: usize) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let store = EventStore::open(
        &crate::datadir::db_path(dir),
        StoreOptions {
            durability: Durability::Normal,
            ..StoreOptions::default()
        },
        Box::new(NoProjections),
    )?;
    let clients: Vec<Uuid> = (0..45).map(|_| Uuid::now_v7()).collect();
    let mut history: Vec<DomainEvent> = Vec::with_capacity(events + 3);
    for (i, c) in clients.iter().enumerate() {
        history.push(
            ClientRegistered {
                client_id: *c,
                external_id: format!("host-{i:02}"),
                name: format!("workstation-{i:02}"),
                ip_address: Some(format!("10.0.0.{}", i + 10)),
                token_hash: "00".repeat(32),
            }
            .into(),
        );
    }
    let mut files: Vec<Uuid> = Vec::new();
    let mut i = 0usize;
    while history.len() < events {
        let c = clients[i % clients.len()];
        match i % 10 {
            0 => {
                let (t, f) = (Uuid::now_v7(), Uuid::now_v7());
                let size = 1024 + (i as u64 * 7919) % 50_000_000;
                history.push(
                    TransferStarted {
                        transfer_id: t,
                        client_id: Some(c),
                        file_id: None,
                        filename: format!("file-{i}.tar.gz"),
                        direction: Direction::Upload,
                        expected_bytes: Some(size),
                        run_id: None,
                    }
                    .into(),
                );
                history.push(
                    FileStored {
                        file_id: f,
                        client_id: c,
                        client_name: format!("workstation-{:02}", i % 45),
                        filename: format!("file-{i}.tar.gz"),
                        original_path: format!("/home/user/file-{i}.tar.gz"),
                        size,
                        sha256: format!("{:064x}", i),
                        crc32: i as u32,
                        mime_type: "application/gzip".into(),
                        mtime: None,
                        mode: None,
                        run_id: None,
                        transfer_id: Some(t),
                    }
                    .into(),
                );
                history.push(
                    TransferCompleted {
                        transfer_id: t,
                        file_id: Some(f),
                        bytes: size,
                        duration_ms: 40,
                    }
                    .into(),
                );
                files.push(f);
            }
            1 if !files.is_empty() => {
                let f = files[i % files.len()];
                history.push(
                    FileVerified {
                        file_id: f,
                        ok: !i.is_multiple_of(97),
                        expected_sha256: "x".into(),
                        actual_sha256: Some("x".into()),
                        expected_crc32: 1,
                        actual_crc32: Some(1),
                        detail: None,
                    }
                    .into(),
                );
            }
            2 if !files.is_empty() => {
                history.push(
                    FileDownloaded {
                        file_id: files[i % files.len()],
                        by: "admin:ops".into(),
                        bytes: 4096,
                    }
                    .into(),
                );
            }
            3 => history.push(
                ClientConnected {
                    client_id: c,
                    ip_address: None,
                }
                .into(),
            ),
            4 => history.push(
                ClientDisconnected {
                    client_id: c,
                    reason: DisconnectReason::Timeout,
                    last_seen: None,
                }
                .into(),
            ),
            _ => {
                let mut l = sample_log(i);
                l.client_id = Some(c);
                history.push(l.into());
            }
        }
        i += 1;
    }
    history.truncate(events);
    store.append_history_blocking(&history, &Metadata::system(), 2000)?;
    store.close();
    Ok(())
}

pub fn run(dir: &Path, events: usize) -> anyhow::Result<Outcome> {
    generate(dir, events)?;
    let db = crate::datadir::db_path(dir);
    let scratch = tempfile::tempdir()?;

    let source = schema::open_read_only(&db)?;
    let target = schema::open_writable(&scratch.path().join("raw.db"), Durability::Normal)?;
    target.execute_batch("PRAGMA synchronous = OFF;")?;
    let started = Instant::now();
    let mut copied = 0usize;
    target.execute_batch("BEGIN")?;
    let mut select = source.prepare(&format!("SELECT {} FROM events ORDER BY position", reader::COLUMNS))?;
    let mut rows = select.query([])?;
    let mut insert = target.prepare(
        "INSERT INTO events (position, id, stream, version, type, schema, data, metadata, recorded_at, crc, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?;
    while let Some(r) = rows.next()? {
        let values: Vec<rusqlite::types::Value> = (0..11).map(|i| r.get(i)).collect::<Result<_, _>>()?;
        insert.execute(rusqlite::params_from_iter(values))?;
        copied += 1;
        if copied.is_multiple_of(20_000) {
            target.execute_batch("COMMIT; BEGIN")?;
        }
    }
    target.execute_batch("COMMIT")?;
    let raw = rate(copied, started.elapsed().as_secs_f64());
    drop(insert);
    drop(target);

    let rebuilt = schema::open_writable(&scratch.path().join("rebuilt.db"), Durability::Normal)?;
    cairn_projections::rebuild::prepare_target(&rebuilt)?;
    let started = Instant::now();
    let report = cairn_projections::rebuild::rebuild(&source, &rebuilt, Default::default(), |_| {})?;
    let rebuild = rate(report.events as usize, started.elapsed().as_secs_f64());

    let swapped = replay::replay(dir, &Mode::Swap, |_| {})?;
    Ok(Outcome {
        events: report.events,
        raw,
        rebuild,
        replay: rate(swapped.events as usize, swapped.seconds),
    })
}
