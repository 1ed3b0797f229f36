//! `cairn serve --demo`: a fleet of simulated backup clients that use the server as real ones would, over HTTP
//! with their own tokens, so that a new user sees a living dashboard at once. Each client registers (or, after a
//! restart, takes its name back with a new token), then sends heartbeats, log lines and uploads of varied sizes
//! (streamed slowly enough to show progress), occasionally an upload whose declared checksum is wrong (a failed
//! transfer), and now and then disconnects for a while; an admin verifies and downloads some of its files, and
//! deletes a client's oldest past [`KEEP`]. Uploads draw their contents from a pool of [`POOL`], so the blob
//! store stays bounded however long the demo runs. Every one of those is a real command, recorded as real
//! events.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use rand::{RngExt, SeedableRng};
use serde_json::Value;
use tokio::sync::watch;

use crate::client::{Client, Method};

/// How the fleet behaves.
#[derive(Debug, Clone, Copy)]
pub struct DemoConfig {
    /// About 45, as the old server's mock generator had.
    pub clients: usize,
    /// The base pause between a client's actions (each waits 1 to 8 of these).
    pub tick: Duration,
    /// The largest upload, in bytes.
    pub max_upload: usize,
}

impl Default for DemoConfig {
    fn default() -> Self {
        Self {
            clients: 45,
            tick: Duration::from_millis(700),
            max_upload: 6 << 20,
        }
    }
}

/// The demo's randomness: seeded per client, so that each behaves differently.
type Rng = rand::rngs::SmallRng;

/// A number below `n`.
fn below(rng: &mut Rng, n: u64) -> u64 {
    rng.random_range(0..n.max(1))
}

const KINDS: &[&str] = &["workstation", "laptop", "server", "nas", "desktop"];
const FILES: &[&str] = &[
    "report.pdf",
    "photos.zip",
    "db-dump.sql",
    "notes.txt",
    "backup.tar.gz",
    "budget.xlsx",
    "mail.pst",
    "project.7z",
];
const MESSAGES: &[(&str, &str)] = &[
    ("info", "scheduled backup started"),
    ("info", "scheduled backup finished"),
    ("info", "snapshot taken"),
    ("warning", "disk usage above 85%"),
    ("warning", "backup took longer than usual"),
    ("error", "could not read a locked file"),
    ("debug", "scanning changed files"),
];

/// Runs the fleet against the server at `addr` until `stop` turns true.
pub async fn run(addr: SocketAddr, admin_token: String, config: DemoConfig, stop: watch::Receiver<bool>) {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    let tasks: Vec<_> = (0..config.clients)
        .map(|i| {
            let (token, stop) = (admin_token.clone(), stop.clone());
            tokio::spawn(async move {
                if let Err(e) = client(addr, token, i, config, Rng::seed_from_u64(seed ^ i as u64), stop).await {
                    tracing::warn!(client = i, error = %e, "a demo client stopped");
                }
            })
        })
        .collect();
    for t in tasks {
        if let Err(e) = t.await {
            tracing::warn!(error = %e, "a demo client task failed");
        }
    }
}

/// Registers the client, or takes its name back after a restart (with a new token).
async fn enroll(admin: &Client, name: &str, index: usize) -> anyhow::Result<(String, String)> {
    let body = serde_json::json!({ "name": name, "client_id": format!("host-{index:02}"), "ip_address": format!("10.0.{}.{}", index / 200, 10 + index % 200) });
    let (status, data) = admin.json(Method::POST, "/api/clients", body).await?;
    if status == 201 {
        return Ok((
            data["client"]["id"].as_str().unwrap_or_default().to_owned(),
            data["token"].as_str().unwrap_or_default().to_owned(),
        ));
    }
    anyhow::ensure!(status == 409, "registering {name} answered {status}");
    let (_, found) = admin
        .json(Method::GET, &format!("/api/clients?q={name}&per_page=500"), Value::Null)
        .await?;
    let id = found["items"]
        .as_array()
        .and_then(|items| items.iter().find(|c| c["name"] == name))
        .and_then(|c| c["id"].as_str())
        .ok_or_else(|| anyhow::anyhow!("{name} is taken but cannot be found"))?
        .to_owned();
    let (_, rotated) = admin
        .json(Method::POST, &format!("/api/clients/{id}/token"), Value::Null)
        .await?;
    Ok((id, rotated["token"].as_str().unwrap_or_default().to_owned()))
}

async fn client(
    addr: SocketAddr,
    admin_token: String,
    index: usize,
    config: DemoConfig,
    mut rng: Rng,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let name = format!("{}-{:02}", KINDS[index % KINDS.len()], index + 1);
    let admin = Client::at(addr, &admin_token)?;
    let (id, token) = enroll(&admin, &name, index).await?;
    let me = admin.with_token(Some(&token));
    let mut files: Vec<String> = Vec::new();
    let mut quiet = 0u32;
    loop {
        let pause = config.tick * (1 + below(&mut rng, 8) as u32);
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = stop.changed() => {}
        }
        if *stop.borrow() {
            return Ok(());
        }
        if quiet > 0 {
            quiet -= 1; // disconnected for a while
            continue;
        }
        let roll = below(&mut rng, 100);
        let result = match roll {
            0..=39 => me
                .call(Method::POST, &format!("/api/clients/{id}/heartbeat"), Value::Null)
                .await
                .map(|_| ()),
            40..=54 => {
                let (level, message) = MESSAGES[below(&mut rng, MESSAGES.len() as u64) as usize];
                me.call(
                    Method::POST,
                    "/api/logs",
                    serde_json::json!({ "level": level, "message": message, "source": "agent" }),
                )
                .await
                .map(|_| ())
            }
            55..=77 => {
                let wrong = roll >= 75; // now and then a declared checksum that does not match: a failed transfer
                let (size, seed) = pooled(below(&mut rng, POOL), config.max_upload);
                let file = FILES[below(&mut rng, FILES.len() as u64) as usize];
                let stored = upload(&me, &id, file, size, seed, wrong).await;
                match stored {
                    Ok(stored) => {
                        files.extend(stored);
                        prune(&admin, &mut files).await
                    }
                    Err(e) => Err(e),
                }
            }
            78..=85 if !files.is_empty() => {
                let f = files[below(&mut rng, files.len() as u64) as usize].clone();
                admin
                    .call(Method::POST, &format!("/api/files/{f}/verify"), Value::Null)
                    .await
                    .map(|_| ())
            }
            86..=88 if !files.is_empty() => {
                let f = files[below(&mut rng, files.len() as u64) as usize].clone();
                let download = admin
                    .request(Method::GET, &format!("/api/files/{f}/content"))
                    .header("range", "bytes=0-1023");
                admin.send(download).await.map(|_| ())
            }
            89..=91 => {
                quiet = 3 + below(&mut rng, 6) as u32;
                me.call(Method::POST, &format!("/api/clients/{id}/disconnect"), Value::Null)
                    .await
                    .map(|_| ())
            }
            _ => me
                .call(Method::POST, &format!("/api/clients/{id}/heartbeat"), Value::Null)
                .await
                .map(|_| ()),
        };
        if let Err(e) = result {
            // The client's pool reconnects by itself on the next request.
            tracing::debug!(client = %name, error = %e, "a demo action failed");
        }
    }
}

/// Distinct contents the demo uploads: a fixed pool, so that the blob store stays bounded (at most `POOL`
/// times the largest upload, 288 MiB by default, however long the demo runs) and deduplication shows.
pub const POOL: u64 = 48;
/// Files a demo client keeps; past this it deletes its oldest (and with the last file holding it, a blob goes).
pub const KEEP: usize = 12;

/// The size and the seed of content `k` of the pool.
pub fn pooled(k: u64, max_upload: usize) -> (usize, u64) {
    let mut rng = Rng::seed_from_u64(k);
    (2048 + below(&mut rng, max_upload as u64) as usize, k)
}

/// Deletes the client's oldest files past [`KEEP`].
async fn prune(admin: &Client, files: &mut Vec<String>) -> anyhow::Result<()> {
    while files.len() > KEEP {
        let oldest = files.remove(0);
        admin
            .call(Method::DELETE, &format!("/api/files/{oldest}"), Value::Null)
            .await?;
    }
    Ok(())
}

/// Uploads `size` bytes in 64 KiB chunks with short pauses (so progress shows); answers the stored file's id.
async fn upload(
    me: &Client,
    client: &str,
    name: &str,
    size: usize,
    seed: u64,
    wrong_checksum: bool,
) -> anyhow::Result<Option<String>> {
    let mut rng = Rng::seed_from_u64(seed);
    let chunks = futures_util::stream::unfold(size, move |left| {
        let n = left.min(64 * 1024);
        let chunk: Vec<u8> = (0..n).map(|_| rng.random()).collect();
        async move {
            if n == 0 {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(15)).await;
            Some((Ok::<_, std::io::Error>(Bytes::from(chunk)), left - n))
        }
    });
    let mut request = me
        .request(
            Method::POST,
            &format!("/api/clients/{client}/files?name={name}&path=/home/demo/{name}"),
        )
        .header("content-type", "application/octet-stream")
        .header("content-length", size.to_string())
        .body(reqwest::Body::wrap_stream(chunks));
    if wrong_checksum {
        request = request.header("x-content-sha256", "0".repeat(64));
    }
    let answer = me.send(request).await?;
    if answer.status != 201 {
        return Ok(None);
    }
    Ok(answer.data()["id"].as_str().map(str::to_owned))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pool_bounds_the_blob_store_under_500_mb_and_its_contents_repeat() {
        let max = DemoConfig::default().max_upload;
        let total: usize = (0..POOL).map(|k| pooled(k, max).0).sum();
        assert!(total < 500 << 20, "the pool holds {} MiB", total >> 20);
        assert_eq!(pooled(7, max), pooled(7, max), "the same content each time it is drawn");
    }
}
