//! The hub (`cairn hub`): every site's published log followed through a durable JetStream consumer, each event
//! checked against the site's chain and applied to the site's replica ([`replica`]); the fleet's views (sites,
//! a site, every site's clients) read from the replicas, so each figure is the site's own.
//!
//! A broken site (a gap, a reordering, an event that does not chain) is recorded in the hub's own log
//! (`FleetSiteBroken`, which raises a `site_broken` alert) and stops there; the other sites go on. Sites say they
//! are up once a second on plain NATS (`cairn.<site>.heartbeat`, with their head), which gives the lag and tells a
//! quiet site from one that is down ([0016](../../../docs/decisions/0016-the-fleet-over-nats-jetstream.md)).

pub mod replica;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer};
use cairn_events::{Metadata, Position};
use futures_util::StreamExt;
use serde::Serialize;

use super::publish::{self, is_site_name};
use super::{ServiceError, Services};
use crate::commands::fleet::{JoinSite, MarkSiteBroken};
use replica::Replica;

/// The durable consumer a hub reads each site's stream through: `cairn-hub-<16 hex digits>`, of the hub's own
/// origin (stable and unique per data directory), so that hubs never share one and each follows every event.
pub fn consumer_name(origin: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(origin.as_bytes());
    format!("cairn-hub-{}", &hex::encode(digest)[..16])
}

/// A site without a heartbeat for this long is down.
pub const DOWN_AFTER: Duration = Duration::from_secs(10);

/// What `cairn hub` follows.
#[derive(Debug, Clone)]
pub struct FleetConfig {
    pub servers: Vec<String>,
}

/// What the hub knows of each site besides its replica.
#[derive(Debug, Default)]
pub struct Fleet {
    sites: Mutex<BTreeMap<String, Seen>>,
    connected: std::sync::atomic::AtomicBool,
}

#[derive(Debug, Default, Clone)]
struct Seen {
    /// The last heartbeat: when, and the site's head then.
    heartbeat: Option<(Instant, Position)>,
    /// The replica's head, and when it last moved.
    applied: Position,
    moved: Option<Instant>,
}

impl Fleet {
    fn seen(&self, site: &str, f: impl FnOnce(&mut Seen)) {
        let mut sites = self.sites.lock().unwrap_or_else(|p| p.into_inner());
        f(sites.entry(site.to_owned()).or_default());
    }

    /// The last position of `site` the hub applied (0 before any).
    pub fn applied(&self, site: &str) -> Position {
        self.get(site).applied
    }

    fn get(&self, site: &str) -> Seen {
        let sites = self.sites.lock().unwrap_or_else(|p| p.into_inner());
        sites.get(site).cloned().unwrap_or_default()
    }
}

fn servers(config: &FleetConfig) -> anyhow::Result<Vec<async_nats::ServerAddr>> {
    Ok(config
        .servers
        .iter()
        .map(|s| s.parse::<async_nats::ServerAddr>())
        .collect::<Result<Vec<_>, _>>()?)
}

/// Follows every site's stream until the task is aborted: connects (again while NATS is away), finds the sites'
/// streams, and follows each.
pub async fn run(services: Services, fleet: Arc<Fleet>, config: FleetConfig) {
    loop {
        if let Err(e) = session(&services, &fleet, &config).await {
            tracing::warn!(error = %e, "following the fleet's streams failed; trying again");
        }
        fleet.connected.store(false, std::sync::atomic::Ordering::Release);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn session(services: &Services, fleet: &Arc<Fleet>, config: &FleetConfig) -> anyhow::Result<()> {
    let client = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(2))
        .connect(servers(config)?)
        .await?;
    fleet.connected.store(true, std::sync::atomic::Ordering::Release);
    let mut beats = client.subscribe("cairn.*.heartbeat").await?;
    let heard = {
        let fleet = fleet.clone();
        Guard(tokio::spawn(async move {
            while let Some(m) = beats.next().await {
                let beat: serde_json::Value = serde_json::from_slice(&m.payload).unwrap_or_default();
                if let (Some(site), Some(head)) = (beat["site"].as_str(), beat["head"].as_i64()) {
                    if is_site_name(site) {
                        fleet.seen(site, |s| s.heartbeat = Some((Instant::now(), head)));
                    }
                }
            }
        }))
    };
    let js = jetstream::new(client);
    let mut followed: HashMap<String, Guard> = HashMap::new();
    loop {
        let mut names = js.stream_names();
        while let Some(name) = names.next().await {
            let Some(site) = name?.strip_prefix("CAIRN_").map(str::to_owned) else {
                continue;
            };
            if !is_site_name(&site) || followed.get(&site).is_some_and(|t| !t.0.is_finished()) {
                continue;
            }
            let (services, fleet, js, name) = (services.clone(), fleet.clone(), js.clone(), site.clone());
            followed.insert(
                site,
                Guard(tokio::spawn(async move {
                    if let Err(e) = follow(&services, &fleet, &js, &name).await {
                        tracing::warn!(site = %name, error = %e, "following a site failed; following it again");
                    }
                })),
            );
        }
        anyhow::ensure!(!heard.0.is_finished(), "the connection to NATS ended");
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// A task aborted when its handle goes.
struct Guard(tokio::task::JoinHandle<()>);

impl Drop for Guard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Follows one site's stream into its replica, until it fails.
async fn follow(services: &Services, fleet: &Fleet, js: &jetstream::Context, site: &str) -> anyhow::Result<()> {
    let dir = replica::dir(services.cairn.root(), site);
    let new = !dir.exists();
    let open = dir.clone();
    let mut replica = tokio::task::spawn_blocking(move || Replica::open(&open)).await??;
    if new {
        // Once per site; a second hub process over the same directory finds the stream there and goes on.
        let joined = services
            .cairn
            .execute(JoinSite { site: site.to_owned() }, Metadata::system())
            .await;
        if let Err(e) = joined {
            tracing::debug!(site, error = %e, "the site's joining was recorded before");
        }
    }
    fleet.seen(site, |s| s.applied = replica.head());
    let stream = js.get_stream(publish::stream_name(site)).await?;
    let name = consumer_name(services.proofs.verifier().name());
    let config = consumer::pull::Config {
        durable_name: Some(name.clone()),
        ack_policy: consumer::AckPolicy::All,
        deliver_policy: match replica.head() {
            0 => consumer::DeliverPolicy::All,
            head => consumer::DeliverPolicy::ByStartSequence {
                start_sequence: head as u64 + 1,
            },
        },
        ..Default::default()
    };
    let mut consumer: consumer::PullConsumer = stream.get_or_create_consumer(&name, config.clone()).await?;
    // A consumer that acknowledged past this replica (a hub that lost its data directory, or another hub's) would
    // skip events: it starts again where the replica stands.
    if consumer.info().await?.ack_floor.stream_sequence > replica.head().max(0) as u64 {
        tracing::warn!(
            site,
            head = replica.head(),
            "the hub's consumer is ahead of its replica; following from the replica's head"
        );
        stream.delete_consumer(&name).await?;
        consumer = stream.get_or_create_consumer(&name, config).await?;
    }
    // Pulled continuously; a batch is what has arrived (up to 512), applied in one transaction.
    let mut incoming = consumer.messages().await?;
    loop {
        let first = incoming
            .next()
            .await
            .ok_or_else(|| anyhow::anyhow!("the consumer's messages ended"))?
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut messages = vec![first];
        while messages.len() < 512 {
            match tokio::time::timeout(Duration::from_millis(2), incoming.next()).await {
                Ok(Some(m)) => messages.push(m.map_err(|e| anyhow::anyhow!("{e}"))?),
                _ => break,
            }
        }
        let Some(last) = messages.last() else {
            continue;
        };
        let mut events = Vec::with_capacity(messages.len());
        let mut malformed = None;
        for m in &messages {
            match publish::decode(&m.payload) {
                Ok(e) => events.push(e),
                Err(why) => {
                    malformed = Some(why);
                    break;
                }
            }
        }
        let was_broken = replica.broken().is_some();
        let (back, applied) = tokio::task::spawn_blocking(move || {
            let applied = replica.apply(&events);
            (replica, applied)
        })
        .await?;
        replica = back;
        let mut applied = applied?;
        if let (None, Some(why), false) = (&applied.broke, malformed, was_broken) {
            // An undecodable message where the next event was due breaks the site there too.
            applied.broke = Some(replica.break_here(why)?);
        }
        if let Some(broken) = &applied.broke {
            tracing::error!(site, position = broken.position, detail = %broken.detail, "a site's published log is broken");
            services
                .cairn
                .execute(
                    MarkSiteBroken {
                        site: site.to_owned(),
                        first_bad: broken.position.max(0) as u64,
                        detail: broken.detail.clone(),
                    },
                    Metadata::system(),
                )
                .await?;
        }
        last.ack().await.map_err(|e| anyhow::anyhow!("{e}"))?;
        let head = replica.head();
        fleet.seen(site, |s| {
            if head != s.applied {
                s.moved = Some(Instant::now());
            }
            s.applied = head;
        });
    }
}

/// A site's chain as the hub found it.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ChainState {
    pub ok: bool,
    pub first_bad: Option<Position>,
    pub detail: Option<String>,
}

/// One site of the fleet, as its card shows it.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct SiteSummary {
    pub site: String,
    /// `broken`, `down` (no heartbeat for 10 s), `lagging` (the hub behind the site's head) or `up`.
    pub state: String,
    /// The last event the hub applied: its position, hash and time.
    pub head_position: Position,
    pub head_hash: String,
    pub last_event_at: Option<String>,
    /// The site's own head, from its last heartbeat.
    pub site_head: Option<Position>,
    /// The site's head less the hub's.
    pub lag: i64,
    /// Seconds since the site's last heartbeat.
    pub heartbeat_seconds: Option<f64>,
    pub chain: ChainState,
    pub total_clients: i64,
    pub clients_connected: i64,
    pub overdue_clients: i64,
    pub total_files: i64,
    pub storage_used_bytes: i64,
    pub stored_bytes: i64,
    pub total_transfers: i64,
    pub failed_transfers: i64,
}

/// A client of one of the fleet's sites.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct FleetClient {
    pub site: String,
    pub id: String,
    pub name: String,
    pub status: String,
    pub last_seen: Option<String>,
    pub last_backup_at: Option<String>,
    pub backup_overdue_since: Option<String>,
}

fn fleet_of(services: &Services) -> Result<Arc<Fleet>, ServiceError> {
    services
        .fleet
        .clone()
        .ok_or_else(|| ServiceError::not_found("NOT_A_HUB", "this server is not a hub: run `cairn hub --nats URL`"))
}

/// The sites whose replicas the hub holds.
fn site_names(services: &Services) -> Vec<String> {
    let dir = services.cairn.root().join("sites");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| is_site_name(n))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn summarise(services: &Services, fleet: &Fleet, site: &str) -> Result<SiteSummary, ServiceError> {
    let dir = replica::dir(services.cairn.root(), site);
    let conn = cairn_events::schema::open_read_only(&crate::datadir::db_path(&dir)).map_err(ServiceError::internal)?;
    let count = |sql: &str| -> rusqlite::Result<i64> { conn.query_row(sql, [], |r| r.get(0)) };
    let head = cairn_events::reader::head(&conn)?;
    let last = cairn_events::reader::event_at(&conn, head)?;
    let (total_clients, clients_connected) = cairn_projections::clients::counts(&conn)?;
    let (total_files, bytes, stored) = cairn_projections::stats::storage_totals(&conn)?;
    let (total_transfers, _) = cairn_projections::transfers::counts(&conn)?;
    let broken = std::fs::read_to_string(dir.join("broken")).ok();
    let seen = fleet.get(site);
    let site_head = seen.heartbeat.map(|(_, h)| h);
    let lag = site_head.map_or(0, |h| (h - head).max(0));
    let heartbeat_seconds = seen.heartbeat.map(|(at, _)| at.elapsed().as_secs_f64());
    let stalled = seen.moved.is_none_or(|at| at.elapsed() > Duration::from_secs(5));
    let state = if broken.is_some() {
        "broken"
    } else if heartbeat_seconds.is_none_or(|s| s > DOWN_AFTER.as_secs_f64()) {
        "down"
    } else if lag > 1000 || (lag > 0 && stalled) {
        "lagging"
    } else {
        "up"
    };
    let (first_bad, detail) = match broken.as_deref().and_then(|b| b.split_once('\n')) {
        Some((p, d)) => (p.parse().ok(), Some(d.trim_end().to_owned())),
        None => (None, None),
    };
    Ok(SiteSummary {
        site: site.to_owned(),
        state: state.into(),
        head_position: head,
        head_hash: last.as_ref().map(|e| hex::encode(e.hash)).unwrap_or_default(),
        last_event_at: last.map(|e| e.recorded_at),
        site_head,
        lag,
        heartbeat_seconds,
        chain: ChainState {
            ok: first_bad.is_none(),
            first_bad,
            detail,
        },
        total_clients,
        clients_connected,
        overdue_clients: count("SELECT count(*) FROM clients WHERE backup_overdue_since IS NOT NULL")?,
        total_files,
        storage_used_bytes: bytes,
        stored_bytes: stored,
        total_transfers,
        failed_transfers: count("SELECT count(*) FROM transfers WHERE status = 'failed'")?,
    })
}

fn rank(state: &str) -> u8 {
    match state {
        "broken" => 0,
        "down" => 1,
        "lagging" => 2,
        _ => 3,
    }
}

/// Every site, worst state first.
pub async fn sites(services: &Services) -> Result<Vec<SiteSummary>, ServiceError> {
    let fleet = fleet_of(services)?;
    let services = services.clone();
    super::blocking(move || {
        let mut out = site_names(&services)
            .iter()
            .map(|site| summarise(&services, &fleet, site))
            .collect::<Result<Vec<_>, _>>()?;
        out.sort_by(|a, b| rank(&a.state).cmp(&rank(&b.state)).then_with(|| a.site.cmp(&b.site)));
        Ok(out)
    })
    .await
}

/// One site.
pub async fn site(services: &Services, name: String) -> Result<SiteSummary, ServiceError> {
    let fleet = fleet_of(services)?;
    if !site_names(services).contains(&name) {
        return Err(ServiceError::not_found(
            "SITE_NOT_FOUND",
            format!("no site {name:?} in the fleet"),
        ));
    }
    let services = services.clone();
    super::blocking(move || summarise(&services, &fleet, &name)).await
}

/// The most clients one answer lists.
pub const MAX_CLIENTS: i64 = 1000;

/// Every site's clients (or one site's), their names matching `q` (a substring, any case), by site and name.
pub async fn clients(
    services: &Services,
    site: Option<String>,
    q: Option<String>,
) -> Result<Vec<FleetClient>, ServiceError> {
    fleet_of(services)?;
    let names = site_names(services);
    if let Some(s) = &site {
        if !names.contains(s) {
            return Err(ServiceError::not_found(
                "SITE_NOT_FOUND",
                format!("no site {s:?} in the fleet"),
            ));
        }
    }
    let services = services.clone();
    super::blocking(move || {
        let mut out = Vec::new();
        for name in names.iter().filter(|n| site.as_ref().is_none_or(|s| s == *n)) {
            let dir = replica::dir(services.cairn.root(), name);
            let conn =
                cairn_events::schema::open_read_only(&crate::datadir::db_path(&dir)).map_err(ServiceError::internal)?;
            let pattern = format!(
                "%{}%",
                q.clone().unwrap_or_default().replace('%', "\\%").replace('_', "\\_")
            );
            let mut stmt = conn.prepare(
                "SELECT id, name, status, last_seen, last_backup_at, backup_overdue_since FROM clients
                 WHERE name LIKE ?1 ESCAPE '\\' ORDER BY name LIMIT ?2",
            )?;
            let rows = stmt.query_map(rusqlite::params![pattern, MAX_CLIENTS], |r| {
                Ok(FleetClient {
                    site: name.clone(),
                    id: r.get(0)?,
                    name: r.get(1)?,
                    status: r.get(2)?,
                    last_seen: r.get(3)?,
                    last_backup_at: r.get(4)?,
                    backup_overdue_since: r.get(5)?,
                })
            })?;
            for row in rows {
                out.push(row?);
            }
        }
        out.truncate(MAX_CLIENTS as usize);
        Ok(out)
    })
    .await
}
