//! `cairn bench append`: events appended per second by raw rusqlite (the reference), by cairn's log alone, and
//! by cairn with every projection, for a number of producers and a durability; and the log alone without its
//! Merkle tree, for what the tree costs.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Instant;

use cairn_events::chain::{canonical_bytes_into, chain_hash, crc, EventFields, GENESIS};
use cairn_events::writer::now_rfc3339;
use cairn_events::{Durability, EventStore, ExpectedVersion, Metadata, NoProjections, StoreOptions};
use rusqlite::params;

use super::{rate, sample_command, sample_event};
use crate::{Cairn, Options};

#[derive(Debug, Clone)]
pub struct Config {
    pub events: usize,
    pub producers: usize,
    pub durability: Durability,
    /// Where cairn-with-projections appends (kept); a temporary directory when `None`.
    pub data: Option<PathBuf>,
    /// Rounds of the three measurements, interleaved; the medians are reported.
    pub rounds: usize,
}

#[derive(Debug, Clone)]
pub struct Outcome {
    pub producers: usize,
    pub durability: Durability,
    pub events: usize,
    pub raw: f64,
    pub log_only: f64,
    pub with_projections: f64,
    /// Mean commands per transaction in the log-only run; the reference commits in batches of this size.
    pub batch: f64,
    pub batch_projections: f64,
    /// The lowest and highest ratio (log only, with projections) over the rounds.
    pub spread: [(f64, f64); 2],
    /// The log alone with the writer keeping no Merkle tree.
    pub without_tree: f64,
    /// What the tree costs, `1 − log only / without tree`, per round: the median and the range.
    pub tree_cost: f64,
    pub tree_cost_spread: (f64, f64),
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn range(v: &[f64]) -> (f64, f64) {
    v.iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), x| (lo.min(*x), hi.max(*x)))
}

/// Runs the three measurements of one configuration, `rounds` times, each round on fresh files.
pub fn run(config: &Config) -> anyhow::Result<Outcome> {
    let per = config.events.div_ceil(config.producers);
    let events = per * config.producers;
    let (mut raws, mut logs, mut projs, mut batches, mut batches_p) = (vec![], vec![], vec![], vec![], vec![]);
    let (mut ratio_log, mut ratio_proj) = (vec![], vec![]);
    let (mut bare, mut costs) = (vec![], vec![]);
    for _ in 0..config.rounds.max(1) {
        let scratch = tempfile::tempdir()?;
        let (without_tree, _) = log_only(&scratch.path().join("bare"), config, per, false)?;
        let (log_only, batch) = log_only(&scratch.path().join("log"), config, per, true)?;
        bare.push(without_tree);
        costs.push(1.0 - log_only / without_tree);
        let raw = raw(
            &scratch.path().join("raw"),
            config.durability,
            events,
            batch.round().max(1.0) as usize,
        )?;
        let projections_dir = config
            .data
            .clone()
            .unwrap_or_else(|| scratch.path().join("projections"));
        let (with_projections, batch_projections) = with_projections(&projections_dir, config, per)?;
        ratio_log.push(log_only / raw);
        ratio_proj.push(with_projections / raw);
        raws.push(raw);
        logs.push(log_only);
        projs.push(with_projections);
        batches.push(batch);
        batches_p.push(batch_projections);
    }
    Ok(Outcome {
        producers: config.producers,
        durability: config.durability,
        events,
        spread: [range(&ratio_log), range(&ratio_proj)],
        raw: median(raws),
        log_only: median(logs),
        with_projections: median(projs),
        batch: median(batches),
        batch_projections: median(batches_p),
        without_tree: median(bare),
        tree_cost_spread: range(&costs),
        tree_cost: median(costs),
    })
}

/// `producers` threads, each running `per` jobs through `f`; returns events per second.
fn producers(count: usize, per: usize, f: impl Fn(usize) -> anyhow::Result<()> + Sync) -> anyhow::Result<f64> {
    let started = Instant::now();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..count)
            .map(|p| {
                let f = &f;
                s.spawn(move || (0..per).try_for_each(|i| f(p * per + i)))
            })
            .collect();
        handles
            .into_iter()
            .try_for_each(|h| h.join().map_err(|_| anyhow::anyhow!("a producer panicked"))?)
    })?;
    Ok(rate(count * per, started.elapsed().as_secs_f64()))
}

fn log_only(dir: &Path, config: &Config, per: usize, tree: bool) -> anyhow::Result<(f64, f64)> {
    std::fs::create_dir_all(dir)?;
    let store = EventStore::open(
        &dir.join("cairn.db"),
        StoreOptions {
            durability: config.durability,
            writer: cairn_events::WriterOptions {
                merkle: tree,
                ..cairn_events::WriterOptions::default()
            },
        },
        Box::new(NoProjections),
    )?;
    let eps = producers(config.producers, per, |i| {
        let event = sample_event(i);
        store
            .writer()
            .execute_blocking(move |unit| unit.append("log", ExpectedVersion::Any, vec![event]))?;
        Ok(())
    })?;
    let stats = store.writer().stats();
    let batch = stats.jobs.load(Ordering::Relaxed) as f64 / stats.batches.load(Ordering::Relaxed).max(1) as f64;
    store.close();
    Ok((eps, batch))
}

fn with_projections(dir: &Path, config: &Config, per: usize) -> anyhow::Result<(f64, f64)> {
    let cairn = Cairn::open(
        dir,
        Options {
            durability: config.durability,
            ..Options::default()
        },
    )?;
    let before = (
        cairn.store().writer().stats().jobs.load(Ordering::Relaxed),
        cairn.store().writer().stats().batches.load(Ordering::Relaxed),
    );
    let eps = producers(config.producers, per, |i| {
        let command = sample_command(i);
        cairn.execute_blocking(command, Metadata::system())?;
        Ok(())
    })?;
    let stats = cairn.store().writer().stats();
    let jobs = stats.jobs.load(Ordering::Relaxed) - before.0;
    let batches = stats.batches.load(Ordering::Relaxed) - before.1;
    cairn.close();
    Ok((eps, jobs as f64 / batches.max(1) as f64))
}

/// The reference: the same rows, chained beforehand, inserted by one connection with the same schema and
/// pragmas, committing every `batch` rows.
fn raw(dir: &Path, durability: Durability, events: usize, batch: usize) -> anyhow::Result<f64> {
    std::fs::create_dir_all(dir)?;
    let conn = cairn_events::schema::open_writable(&dir.join("raw.db"), durability)?;
    let mut previous = GENESIS;
    let mut buf = Vec::new();
    let rows: Vec<_> = (0..events)
        .map(|i| {
            let e = sample_event(i);
            let position = i as i64 + 1;
            let at = now_rfc3339();
            canonical_bytes_into(
                &EventFields {
                    position,
                    id: e.id,
                    stream: "log",
                    version: position,
                    event_type: &e.event_type,
                    schema: e.schema,
                    data: &e.data,
                    metadata: &e.metadata,
                    recorded_at: &at,
                },
                &mut buf,
            );
            let hash = chain_hash(&previous, &buf);
            previous = hash;
            (position, e, at, crc(&buf), hex::encode(hash))
        })
        .collect();
    let started = Instant::now();
    for chunk in rows.chunks(batch) {
        conn.execute_batch("BEGIN IMMEDIATE")?;
        {
            let mut insert = conn.prepare_cached(
                "INSERT INTO events (position, id, stream, version, type, schema, data, metadata, recorded_at, crc, hash)
                 VALUES (?1, ?2, 'log', ?1, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?;
            for (position, e, at, crc, hash) in chunk {
                insert.execute(params![
                    position,
                    e.id.to_string(),
                    e.event_type,
                    e.schema,
                    e.data,
                    e.metadata,
                    at,
                    crc,
                    hash
                ])?;
            }
        }
        conn.execute_batch("COMMIT")?;
    }
    Ok(rate(events, started.elapsed().as_secs_f64()))
}
