//! `/metrics`: the figures an operator's Prometheus scrapes, in the OpenMetrics text format. Each scrape reads
//! them afresh (the status figures, the read tables' counts, the writer's counters and batch-time histogram,
//! the live feed's connections) into a registry of its own, so no figure can drift from what `/api/status`
//! answers at the same moment.

use std::sync::atomic::Ordering;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::{Registry, Unit};

use super::{ServiceError, Services};

/// The content type of [`exposition`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

type Labels = Vec<(String, String)>;

/// Everything `/metrics` shows, read now.
pub async fn exposition(services: &Services) -> Result<String, ServiceError> {
    let status = super::status::figures(services).await?;
    let (clients, overdue, transfers, verifications, lowest) = services
        .read(|conn| {
            let by = |sql: &str| -> rusqlite::Result<Vec<(String, i64)>> {
                let mut stmt = conn.prepare_cached(sql)?;
                let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
                rows.collect()
            };
            let clients = by("SELECT status, count(*) FROM clients GROUP BY status")?;
            let overdue: i64 = conn.query_row(
                "SELECT count(*) FROM clients WHERE backup_overdue_since IS NOT NULL",
                [],
                |r| r.get(0),
            )?;
            let transfers = by("SELECT status, count(*) FROM transfers GROUP BY status")?;
            let totals = cairn_projections::stats::totals(conn)?;
            let lowest = cairn_projections::checkpoints::lowest(conn)?;
            Ok((
                clients,
                overdue,
                transfers,
                (totals.verifications_passed, totals.verifications_failed),
                lowest,
            ))
        })
        .await?;
    let writer = services.cairn.store().writer().stats();

    let mut registry = Registry::with_prefix("cairn");
    let gauge = |v: i64| {
        let g: Gauge = Gauge::default();
        g.set(v);
        g
    };
    let counter = |v: u64| {
        let c: Counter = Counter::default();
        c.inc_by(v);
        c
    };
    let u = |v: i64| u64::try_from(v).unwrap_or(0);
    registry.register("events", "Events in the log", counter(u(status.events_total)));
    registry.register(
        "head_position",
        "The position of the last event",
        gauge(status.head_position),
    );
    let by_status = by_label("status", &["Registered", "Connected", "Offline"], clients);
    registry.register("clients", "Clients by status", by_status);
    registry.register(
        "clients_backup_overdue",
        "Clients whose expected backup is overdue",
        gauge(overdue),
    );
    registry.register("files", "Files stored", gauge(status.total_files));
    registry.register_with_unit(
        "file_size",
        "Bytes of all files, counted per file",
        Unit::Bytes,
        gauge(status.storage_used_bytes),
    );
    registry.register_with_unit(
        "stored_size",
        "Bytes on disk after deduplication",
        Unit::Bytes,
        gauge(status.stored_bytes),
    );
    registry.register_with_unit(
        "retained_size",
        "Bytes of content no file holds, kept until its retention ends",
        Unit::Bytes,
        gauge(status.retained_bytes),
    );
    let by_outcome = by_label("status", &["InProgress", "Completed", "Failed"], transfers);
    registry.register("transfers", "Transfers by status", by_outcome);
    let verified = Family::<Labels, Counter>::default();
    verified
        .get_or_create(&vec![("outcome".into(), "passed".into())])
        .inc_by(u(verifications.0));
    verified
        .get_or_create(&vec![("outcome".into(), "failed".into())])
        .inc_by(u(verifications.1));
    registry.register("verifications", "File verifications by outcome", verified);
    let live = i64::try_from(services.feed.connections()).unwrap_or(i64::MAX);
    registry.register("live_connections", "Live feed connections open", gauge(live));
    registry.register(
        "writer_batches",
        "Write batches committed",
        counter(writer.batches.load(Ordering::Relaxed)),
    );
    registry.register(
        "writer_jobs",
        "Commands and appends the writer ran",
        counter(writer.jobs.load(Ordering::Relaxed)),
    );
    registry.register_with_unit(
        "writer_batch",
        "Time of a write batch, from its first statement to its commit",
        Unit::Seconds,
        Snapshot(writer.batch_seconds.snapshot()),
    );
    registry.register(
        "projection_lag",
        "Events the slowest projection has yet to apply",
        gauge(status.head_position - lowest),
    );
    if let Some(p) = &status.publication {
        registry.register(
            "publication_lag",
            "Events committed that JetStream has yet to acknowledge",
            gauge(p.lag),
        );
        registry.register(
            "publication_acknowledged_position",
            "The last position JetStream acknowledged",
            gauge(p.acknowledged),
        );
        registry.register(
            "publication_connected",
            "Whether the publisher is connected to NATS",
            gauge(i64::from(p.connected)),
        );
    }
    let uptime = i64::try_from(status.uptime_seconds).unwrap_or(i64::MAX);
    registry.register_with_unit("uptime", "Time since the server started", Unit::Seconds, gauge(uptime));

    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).map_err(ServiceError::internal)?;
    Ok(text)
}

/// A gauge per value of `label`: every `known` value (0 when no row counts it), then the counted `rows`.
fn by_label(label: &str, known: &[&str], rows: Vec<(String, i64)>) -> Family<Labels, Gauge> {
    let family = Family::<Labels, Gauge>::default();
    for value in known {
        family.get_or_create(&vec![(label.into(), (*value).into())]).set(0);
    }
    for (value, n) in rows {
        family.get_or_create(&vec![(label.into(), value)]).set(n);
    }
    family
}

/// A writer histogram (`cairn_events::writer::Histogram`) as read at one moment: sum, count and cumulative buckets.
#[derive(Debug)]
struct Snapshot((f64, u64, Vec<(f64, u64)>));

impl TypedMetric for Snapshot {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for Snapshot {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let (sum, count, buckets) = &self.0;
        encoder.encode_histogram::<NoLabelSet>(*sum, *count, buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}
