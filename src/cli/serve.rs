//! `cairn serve`: the HTTP API over a data directory, until SIGINT or SIGTERM.

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use cairn_events::catalogue::{AlertTargetKind, ServerStarted, ServerStopped};
use cairn_events::{DomainEvent, Durability, Metadata};

use super::DataArg;
use crate::commands::server::RecordServerEvent;
use crate::services::{feed::LiveConfig, ConnectionLimits, ServerConfig, Services};
use crate::{Cairn, Options};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    data: DataArg,
    /// The address to listen on
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// The admin token (default: the one in <data>/admin.token, generated at first start)
    #[arg(long, value_name = "T")]
    token: Option<String>,
    /// full (an acknowledged event survives power loss) or normal (faster)
    #[arg(long, value_name = "full|normal", default_value = "full")]
    durability: Durability,
    /// The largest upload accepted, in bytes
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 30)]
    max_upload: u64,
    /// Also run a simulated fleet of backup clients against the server, through its real API
    #[arg(long)]
    demo: bool,
    /// Seconds without a heartbeat before a client is marked offline
    #[arg(long, value_name = "SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    heartbeat_timeout: u64,
    /// The most connections held at once (default: what the file limit allows, at most 10000)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(8..=1_000_000))]
    max_connections: Option<u64>,
    /// Seconds a request's headers may take to arrive (also how long an idle kept-alive connection stays open)
    #[arg(long, value_name = "SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3_600))]
    header_timeout: u64,
    /// Seconds a request's body may pause, or a response wait on a peer that does not read
    #[arg(long, value_name = "SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3_600))]
    idle_timeout: u64,
    /// Serve /metrics without a token (for a Prometheus on a trusted network)
    #[arg(long)]
    metrics_public: bool,
    /// Serve the audit proofs (/api/audit/checkpoint, key, proof/*, tile/*) without a token, for auditors and
    /// mirrors
    #[arg(long)]
    public_proofs: bool,
    /// Publish the log to NATS JetStream after each commit: nats://HOST:PORT, several separated by commas (a
    /// cluster's servers)
    #[arg(long, value_name = "URLS", value_delimiter = ',')]
    publish: Vec<String>,
    /// The site's name in the fleet: its subject cairn.<site>.events and stream CAIRN_<site> (default: the host's
    /// name)
    #[arg(long, value_name = "NAME", requires = "publish")]
    site: Option<String>,
    /// The published stream's replicas, at most the cluster's servers
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=5), requires = "publish")]
    publish_replicas: u8,
    /// Follow these NATS servers' site streams as a hub (set by `cairn hub --nats`)
    #[arg(skip)]
    pub(super) hub: Vec<String>,
    /// The checkpoints' origin, which names the log's key (default: cairn/<16 hex digits>, made once per data
    /// directory with <data>/log.key)
    #[arg(long, value_name = "NAME")]
    origin: Option<String>,
    /// Send every alert to this webhook (a JSON POST; ntfy, Gotify and Slack-compatible receivers take it)
    #[arg(long, value_name = "URL")]
    alert_webhook: Option<String>,
    /// Send every alert to this e-mail address (needs --smtp)
    #[arg(long, value_name = "ADDRESS", requires = "smtp")]
    alert_email: Option<String>,
    /// The SMTP relay alert e-mail goes through: smtp://host:port (plain), smtp://host:587?tls=required
    /// (STARTTLS), smtps://user:password@host (TLS)
    #[arg(long, value_name = "URL")]
    smtp: Option<String>,
    /// The sender of alert e-mail
    #[arg(long, value_name = "ADDRESS", default_value = "cairn <cairn@localhost>")]
    smtp_from: String,
    /// How long the content of deleted files is kept for restores: 30d, 12h, 90m, 0 (gone with its last file)
    #[arg(long, value_name = "DURATION", default_value = "30d", value_parser = super::parse_duration)]
    retain_deleted: Duration,
    /// Take a complete snapshot into <data>/backups/ this often (6h, 1d, 30m; none by default)
    #[arg(long, value_name = "DURATION", value_parser = parse_every)]
    backup_every: Option<Duration>,
    /// How many scheduled snapshots to keep (the oldest past it are removed)
    #[arg(long, value_name = "N", default_value_t = 7, value_parser = clap::value_parser!(u64).range(1..=1000))]
    backup_keep: u64,
    /// The share of the data directory's disk in use that raises a DiskNearlyFull alert
    #[arg(long, value_name = "PERCENT", default_value_t = 90, value_parser = clap::value_parser!(u8).range(1..=100))]
    disk_alert_percent: u8,
}

/// The admin token: given, or read from `<data>/admin.token`, or generated there (mode 0600).
pub fn admin_token(data: &Path, given: Option<String>) -> anyhow::Result<String> {
    if let Some(t) = given {
        anyhow::ensure!(t.len() >= 16, "--token must be at least 16 characters");
        return Ok(t);
    }
    let path = data.join("admin.token");
    if path.exists() {
        let token = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let token = token.trim().to_owned();
        anyhow::ensure!(
            !token.is_empty(),
            "{} is empty; delete it to generate a new token",
            path.display()
        );
        return Ok(token);
    }
    let token = crate::commands::new_token();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(&path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    writeln!(file, "{token}")?;
    Ok(token)
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    // A file-size limit (ulimit -f) then fails the write that passes it (EFBIG, answered 507 like a full disk)
    // instead of killing the server with SIGXFSZ.
    #[cfg(unix)]
    // SAFETY: setting a signal's disposition to "ignore" installs no handler code; nothing else races it at
    // start-up.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
    bound_allocator();
    check_alert_flags(&args)?;
    let options = Options {
        durability: args.durability,
        max_upload: args.max_upload,
        ..Options::default()
    };
    let cairn = Cairn::open(&args.data.data, options)?;
    let publish = publish_config(&args)?;
    let token = admin_token(&args.data.data, args.token)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let listener = crate::server::bind(args.listen).with_context(|| format!("cannot listen on {}", args.listen))?;
        let addr = listener.local_addr()?;
        let started = ServerStarted {
            version: env!("CARGO_PKG_VERSION").into(),
            listen: Some(addr.to_string()),
        };
        cairn
            .execute(RecordServerEvent(DomainEvent::from(started)), Metadata::system())
            .await?;
        let interrupted = crate::services::upload::fail_interrupted(&cairn, Metadata::system()).await?;
        if interrupted > 0 {
            tracing::warn!(
                interrupted,
                "transfers left under way by the last run are recorded as failed"
            );
        }
        let files = crate::server::connections::raise_file_limit();
        let fits = ConnectionLimits::fit_files(files);
        let wanted = args
            .max_connections
            .map_or(ConnectionLimits::default().max_connections, |n| n as usize);
        if wanted > fits {
            tracing::warn!(
                wanted,
                held = fits,
                files,
                "the file limit allows fewer connections than asked; raise it (ulimit -n) for more"
            );
        }
        let connections = ConnectionLimits {
            max_connections: wanted.min(fits),
            header_timeout: Duration::from_secs(args.header_timeout),
            idle_timeout: Duration::from_secs(args.idle_timeout),
        };
        let mut config = ServerConfig {
            metrics_public: args.metrics_public,
            public_proofs: args.public_proofs,
            origin: args.origin.clone(),
            publish: publish.clone(),
            hub: (!args.hub.is_empty()).then(|| crate::services::fleet::FleetConfig {
                servers: args.hub.clone(),
            }),
            disk_alert_percent: args.disk_alert_percent,
            retain_deleted: args.retain_deleted,
            backup_every: args.backup_every,
            backup_keep: args.backup_keep as usize,
            ..ServerConfig::new(
                token.clone(),
                Duration::from_secs(args.heartbeat_timeout),
                LiveConfig::default(),
                connections,
            )
        };
        config.alerts.smtp = args.smtp.clone();
        config.alerts.smtp_from = args.smtp_from.clone();
        let state = Services::new(cairn.clone(), config)?;
        for (kind, address) in [
            (AlertTargetKind::Webhook, &args.alert_webhook),
            (AlertTargetKind::Email, &args.alert_email),
        ] {
            if let Some(address) = address {
                let added = crate::services::alerts::ensure_target(&state, kind, address)
                    .await
                    .map_err(|e| anyhow::anyhow!("cannot alert {address}: {e}"))?;
                if let Some(t) = added {
                    tracing::info!(target = %t.name, address = %t.address, "every alert goes to a new target");
                }
            }
        }
        // Printing must not stop the server: a closed stdout is only logged.
        let mut out = std::io::stdout();
        let printed = writeln!(out, "cairn serving http://{addr} (data {})", args.data.data.display())
            .and_then(|()| writeln!(out, "dashboard: http://{addr}/#token={token}"))
            .and_then(|()| match args.demo {
                true => writeln!(
                    out,
                    "demo: {} simulated clients are starting",
                    crate::demo::DemoConfig::default().clients
                ),
                false => Ok(()),
            })
            .and_then(|()| out.flush());
        if let Err(e) = printed {
            tracing::warn!(error = %e, "could not print the dashboard URL");
        }
        let uptime = state.started;
        let (stop_demo, demo_stopped) = tokio::sync::watch::channel(false);
        let demo = args.demo.then(|| {
            tokio::spawn(crate::demo::run(
                addr,
                token.clone(),
                crate::demo::DemoConfig::default(),
                demo_stopped,
            ))
        });
        let shutdown = async move {
            shutdown_signal().await;
            stop_demo.send_replace(true);
        };
        crate::server::serve(state, listener, shutdown).await;
        if let Some(demo) = demo {
            demo.abort();
        }
        let stopped = ServerStopped {
            uptime_seconds: uptime.elapsed().as_secs(),
        };
        cairn
            .execute(RecordServerEvent(DomainEvent::from(stopped)), Metadata::system())
            .await?;
        anyhow::Ok(())
    })?;
    drop(runtime);
    // The last handle: the writer drains, checkpoints the WAL and stops.
    cairn.close();
    eprintln!("cairn stopped");
    Ok(ExitCode::SUCCESS)
}

/// A backup schedule: as a retention, and at least a minute.
fn parse_every(text: &str) -> Result<Duration, String> {
    let every = super::parse_duration(text)?;
    if every < Duration::from_secs(60) {
        return Err(format!("{text:?} is too often: at least 1m"));
    }
    Ok(every)
}

/// Refuses alert flags that could never work, before anything is recorded or listened on.
fn check_alert_flags(args: &Args) -> anyhow::Result<()> {
    if let Some(smtp) = &args.smtp {
        lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::from_url(smtp)
            .with_context(|| format!("--smtp {smtp:?} is not an SMTP URL (smtp://host:port, smtps://host)"))?;
    }
    args.smtp_from
        .parse::<lettre::message::Mailbox>()
        .with_context(|| format!("--smtp-from {:?} is not an e-mail address", args.smtp_from))?;
    if let Some(url) = &args.alert_webhook {
        crate::commands::alert::webhook_url(url).map_err(|e| anyhow::anyhow!("--alert-webhook: {e}"))?;
    }
    if let Some(address) = &args.alert_email {
        crate::commands::alert::email_address(address).map_err(|e| anyhow::anyhow!("--alert-email: {e}"))?;
    }
    Ok(())
}

/// Caps glibc's malloc arenas at one per core. By default glibc gives every thread that allocates under
/// contention an arena of its own, up to eight per core, and the blocking pool's threads (the live feed's history
/// reads, uploads) each fragment one: over repeated subscribe-from-0 cycles the RSS grew a few MiB a round
/// without a plateau, and with the cap it levels off (BENCHMARKS.md, "Memory over subscribe cycles").
fn bound_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get()).max(2);
        let arenas = libc::c_int::try_from(cores).unwrap_or(libc::c_int::MAX);
        // SAFETY: mallopt only changes a tunable of the allocator; it is called before the runtime's threads
        // exist, as glibc advises.
        if unsafe { libc::mallopt(libc::M_ARENA_MAX, arenas) } != 1 {
            tracing::debug!("glibc refused M_ARENA_MAX");
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; only SIGINT stops the server");
                if let Err(e) = interrupt.await {
                    tracing::error!(error = %e, "cannot listen for SIGINT either");
                }
                return;
            }
        };
        tokio::select! {
            _ = interrupt => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    if let Err(e) = interrupt.await {
        tracing::error!(error = %e, "cannot listen for SIGINT");
    }
    tracing::info!("shutting down: finishing requests in flight");
}

/// `--publish`, `--site` and `--publish-replicas` as the publisher takes them.
fn publish_config(args: &Args) -> anyhow::Result<Option<crate::services::publish::PublishConfig>> {
    if args.publish.is_empty() {
        return Ok(None);
    }
    let site = match &args.site {
        Some(site) => site.clone(),
        None => std::fs::read_to_string("/etc/hostname")
            .ok()
            .map(|h| {
                h.trim()
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' })
                    .collect()
            })
            .filter(|h: &String| crate::services::publish::is_site_name(h))
            .unwrap_or_else(|| "site".to_owned()),
    };
    anyhow::ensure!(
        crate::services::publish::is_site_name(&site),
        "--site is 1 to 64 letters, digits, '-' or '_', not {site:?}"
    );
    for server in &args.publish {
        anyhow::ensure!(
            server.starts_with("nats://") || server.starts_with("tls://") || !server.contains("://"),
            "--publish takes nats://HOST:PORT, not {server:?}"
        );
    }
    Ok(Some(crate::services::publish::PublishConfig {
        servers: args.publish.clone(),
        site,
        replicas: usize::from(args.publish_replicas),
    }))
}
