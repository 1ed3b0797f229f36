//! The services: what the server does, in plain Rust, between the two adapters (`http/` and `live/`) that
//! parse requests and format answers. A service takes [`Services`] (or just the [`Cairn`] it needs), sends
//! commands or reads the read tables, and returns its own values or a [`ServiceError`]; it knows nothing of
//! HTTP or WebSocket types, and builds no envelope.
//!
//! - [`auth`]: who is calling: the admin token, or a client's own token.
//! - [`presence`]: heartbeats kept in memory, connecting and disconnecting clients, the timeout monitor.
//! - [`health`]: backup health: the overdue monitor, and what needs an operator's attention.
//! - [`upload`]: one upload, streamed into the blob store and recorded as a transfer and a file.
//! - [`verify`]: re-reading a file's blob and recording what was found.
//! - [`status`]: the figures an operator watches (`/api/status`, and the live feed every second).
//! - [`activity`]: the latest events, described for people.
//! - [`alerts`]: targets, rules, and the dispatcher that delivers alerts from the log at least once.
//! - [`archive`]: a client's files as of a position, streamed as a tar or a zip with a manifest.
//! - [`history`]: a client or a file as it was at a position of the log.
//! - [`logs`]: recording a log line as its caller (a client logs as itself, never as the server).
//! - [`console`]: the read-only SQL console.
//! - [`database`]: the database itself: size, health, the table browser, row edits as events, backup,
//!   optimize.
//! - [`metrics`]: `/metrics`, the figures in the OpenMetrics text format Prometheus scrapes.
//! - [`fleet`]: the hub: every site's published log followed, checked and replicated; the fleet's views.
//! - [`publish`]: the site's log published to NATS JetStream, in order and exactly once (`serve --publish`).
//! - [`proofs`]: signed checkpoints of the log's Merkle tree, inclusion and consistency proofs, tiles.
//! - [`feed`]: the live feed's relay: committed events encoded once, without gaps, plus stats and progress.

pub mod activity;
pub mod alerts;
pub mod archive;
pub mod auth;
pub mod console;
pub mod database;
pub mod error;
pub mod feed;
pub mod fleet;
pub mod health;
pub mod history;
pub mod logs;
pub mod metrics;
pub mod presence;
pub mod proofs;
pub mod publish;
pub mod status;
pub mod upload;
pub mod verify;

use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use crate::telemetry::Telemetry;
use crate::Cairn;
pub use error::ServiceError;

/// What the server was started with.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub admin_token: String,
    /// A client with no heartbeat for this long is marked offline.
    pub heartbeat_timeout: Duration,
    pub live: feed::LiveConfig,
    pub connections: ConnectionLimits,
    /// `/metrics` answers without a token.
    pub metrics_public: bool,
    /// The audit proofs (checkpoint, key, proofs, tiles) answer without a token.
    pub public_proofs: bool,
    /// The checkpoints' origin and the key's name (default: the name made with `<data>/log.key`).
    pub origin: Option<String>,
    /// Publish the log to NATS JetStream (`serve --publish`).
    pub publish: Option<publish::PublishConfig>,
    /// Follow the fleet's published logs (`cairn hub`).
    pub hub: Option<fleet::FleetConfig>,
    /// How often the backup monitor looks for overdue clients.
    pub backup_check: Duration,
    /// How often the whole hash chain is verified (a break is recorded as `ChainBroken`).
    pub chain_check: Duration,
    /// How often the data directory's disk is looked at, and the share in use that raises `DiskNearlyFull`.
    pub disk_check: Duration,
    pub disk_alert_percent: u8,
    pub alerts: alerts::AlertConfig,
    /// How long content no file holds is kept (zero: it goes with its last file), and how often the purge looks.
    pub retain_deleted: Duration,
    pub retain_check: Duration,
    /// Scheduled snapshots into `<data>/backups/`: how often (none by default), and how many are kept.
    pub backup_every: Option<Duration>,
    pub backup_keep: usize,
}

impl ServerConfig {
    /// Whether deletions keep their content for a while.
    pub fn retains(&self) -> bool {
        !self.retain_deleted.is_zero()
    }
}

/// How many sockets the server holds and how long a silent one keeps its place (see `server::connections`).
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Sockets past this wait to be accepted, while the oldest idle connection is closed to make room.
    pub max_connections: usize,
    /// A request's headers, or the next request on a kept-alive connection, must arrive within this.
    pub header_timeout: Duration,
    /// A request's body may not pause, nor a response wait on a peer that does not read, for longer than this.
    pub idle_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

impl ConnectionLimits {
    /// Files the server keeps for itself whatever the number of connections: the database and its WAL, the
    /// pooled readers, the log, the listening socket.
    const RESERVED_FILES: u64 = 64;

    /// The most connections a process allowed `files` open files can hold: every connection may hold one file
    /// besides its socket (an upload's blob, a download), and a few are the server's own.
    pub fn fit_files(files: u64) -> usize {
        (files.saturating_sub(Self::RESERVED_FILES) / 2).max(8) as usize
    }
}

impl ServerConfig {
    /// The configuration with its bounds made to agree: the live feed takes at most seven eighths of the
    /// connections, so HTTP (and `/api/health`) always has room beside a full feed.
    pub fn new(
        admin_token: String,
        heartbeat_timeout: Duration,
        live: feed::LiveConfig,
        connections: ConnectionLimits,
    ) -> Self {
        let share = connections.max_connections - connections.max_connections / 8;
        let live = feed::LiveConfig {
            max_connections: live.max_connections.min(share),
            admin_reserve: live.admin_reserve.min(share / 2),
            ..live
        };
        Self {
            admin_token,
            heartbeat_timeout,
            live,
            connections,
            metrics_public: false,
            public_proofs: false,
            origin: None,
            publish: None,
            hub: None,
            backup_check: Duration::from_secs(30),
            chain_check: Duration::from_secs(6 * 60 * 60),
            disk_check: Duration::from_secs(30),
            disk_alert_percent: 90,
            alerts: alerts::AlertConfig::default(),
            retain_deleted: Duration::from_secs(30 * 24 * 60 * 60),
            retain_check: Duration::from_secs(60),
            backup_every: None,
            backup_keep: 7,
        }
    }
}

/// Everything the services share, handed to both adapters; cheap to clone.
#[derive(Clone)]
pub struct Services {
    pub cairn: Cairn,
    pub config: Arc<ServerConfig>,
    /// When the server started, for `uptime_seconds`.
    pub started: Instant,
    /// Who is connected, and since when they are silent.
    pub presence: Arc<presence::Presence>,
    /// Keeps the CPU counters between samples.
    pub telemetry: Arc<Telemetry>,
    /// The live feed's relay, shared by every WebSocket connection and by uploads reporting progress.
    pub feed: Arc<feed::Feed>,
    /// The log's key and its latest signed checkpoint.
    pub proofs: Arc<proofs::Proofs>,
    /// What the publisher to NATS has done (nothing when the site does not publish).
    pub publication: Arc<publish::Publication>,
    /// The fleet a hub follows (`None` on a site).
    pub fleet: Option<Arc<fleet::Fleet>>,
}

impl Services {
    /// The services of `cairn`; fails when the log's key cannot be read or made, or `origin` is not a key name.
    pub fn new(cairn: Cairn, config: ServerConfig) -> Result<Self, ServiceError> {
        let feed = Arc::new(feed::Feed::new(config.live));
        let proofs = proofs::Proofs::open(cairn.root(), config.origin.as_deref())
            .map_err(|e| ServiceError::internal(format!("the log's key: {e}")))?;
        Ok(Self {
            proofs: Arc::new(proofs),
            publication: Arc::new(publish::Publication::default()),
            fleet: config.hub.as_ref().map(|_| Arc::new(fleet::Fleet::default())),
            presence: Arc::new(presence::Presence::new(feed.clone())),
            feed,
            cairn,
            config: Arc::new(config),
            started: Instant::now(),
            telemetry: Arc::new(Telemetry::default()),
        })
    }

    /// The publication to NATS as it stands, when the site publishes.
    pub fn publication_status(&self) -> Option<publish::PublicationStatus> {
        let config = self.config.publish.as_ref()?;
        Some(self.publication.status(config, self.cairn.store().head()))
    }

    /// Runs a read on a pooled read-only connection, off the async workers.
    pub async fn read<T, F>(&self, f: F) -> Result<T, ServiceError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, ServiceError> + Send + 'static,
    {
        read(&self.cairn, f).await
    }
}

/// Runs a read on one of `cairn`'s pooled read-only connections, off the async workers.
pub async fn read<T, F>(cairn: &Cairn, f: F) -> Result<T, ServiceError>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> Result<T, ServiceError> + Send + 'static,
{
    let cairn = cairn.clone();
    tokio::task::spawn_blocking(move || {
        let conn = cairn.store().reader()?;
        f(&conn)
    })
    .await?
}

/// Runs blocking work (the disk, a whole-database pass) off the async workers.
pub async fn blocking<T, F>(f: F) -> Result<T, ServiceError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, ServiceError> + Send + 'static,
{
    tokio::task::spawn_blocking(f).await?
}
