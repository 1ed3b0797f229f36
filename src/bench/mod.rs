//! The benchmarks of `BENCHMARKS.md`. Each figure is measured beside its reference in the same run: raw SQLite
//! doing the same work with the same schema, pragmas and batch sizes is the limit cairn chases.

pub mod agent;
pub mod append;
pub mod fleet;
pub mod http;
pub mod live;
pub mod proofs;
pub mod replay;
pub mod soak;

use cairn_events::catalogue::LogRecorded;
use cairn_events::{DomainEvent, Metadata, NewEvent};

/// A log line like the ones backup agents send.
pub fn sample_log(i: usize) -> LogRecorded {
    LogRecorded {
        level: ["info", "info", "warning", "info", "error"][i % 5].into(),
        message: format!("backup job {i} finished: {} files, {} MiB", 1000 + i % 777, 10 + i % 90),
        source: format!("agent-{:02}", i % 45),
        client_id: None,
        file_id: None,
    }
}

/// The same line as the command a client's `POST /api/logs` becomes.
pub fn sample_command(i: usize) -> crate::commands::log::RecordLog {
    let l = sample_log(i);
    crate::commands::log::RecordLog {
        level: l.level,
        message: l.message,
        source: l.source,
        client_id: None,
        file_id: None,
    }
}

pub fn sample_event(i: usize) -> NewEvent {
    NewEvent::from_domain(&DomainEvent::from(sample_log(i)), &Metadata::system())
}

/// A server over `cairn` on a loopback port of its own, in this process, with `token` as the admin's.
pub struct Served {
    pub addr: std::net::SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<()>,
}

impl Served {
    pub async fn start(cairn: &crate::Cairn, token: &str) -> anyhow::Result<Self> {
        use crate::services::{feed::LiveConfig, ConnectionLimits, ServerConfig, Services};
        let state = Services::new(
            cairn.clone(),
            ServerConfig::new(
                token.into(),
                std::time::Duration::from_secs(3600),
                LiveConfig::default(),
                ConnectionLimits::default(),
            ),
        )?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(crate::server::serve(state, listener, async {
            let _ = stopped.await;
        }));
        Ok(Self { addr, stop, server })
    }

    /// Stops the server and waits until it has.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.server.await?;
        Ok(())
    }
}

/// Events per second.
pub fn rate(events: usize, seconds: f64) -> f64 {
    events as f64 / seconds.max(1e-9)
}
