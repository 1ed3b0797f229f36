//! `cairn serve --demo`: a fleet of simulated backup clients that use the server as real ones would, over HTTP
//! with their own tokens, so that a new user sees a living dashboard at once. Each client registers (or, after a
//! restart, takes its name back with a new token), then sends heartbeats, log lines and uploads of varied sizes
//! (streamed slowly enough to show progress), occasionally an upload whose declared checksum is wrong (a failed
//! transfer), and now and then disconnects for a while; an admin verifies and downloads some of its files. Every
//! one of those is a real command, recorded as real events.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

use crate::client::Client;

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

/// xorshift64*: enough randomness for a demo, and no dependency.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
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
                if let Err(e) = client(addr, token, i, config, Rng::new(seed ^ i as u64), stop).await {
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
async fn enroll(admin: &mut Client, name: &str, index: usize) -> anyhow::Result<(String, String)> {
    let body = serde_json::json!({ "name": name, "client_id": format!("host-{index:02}"), "ip_address": format!("10.0.{}.{}", index / 200, 10 + index % 200) });
    let (status, data) = admin.json("POST", "/api/clients", body).await?;
    if status == 201 {
        return Ok((
            data["client"]["id"].as_str().unwrap_or_default().to_owned(),
            data["token"].as_str().unwrap_or_default().to_owned(),
        ));
    }
    anyhow::ensure!(status == 409, "registering {name} answered {status}");
    let (_, found) = admin
        .json(
            "GET",
            &format!("/api/clients?q={name}&per_page=500"),
            serde_json::Value::Null,
        )
        .await?;
    let id = found["items"]
        .as_array()
        .and_then(|items| items.iter().find(|c| c["name"] == name))
        .and_then(|c| c["id"].as_str())
        .ok_or_else(|| anyhow::anyhow!("{name} is taken but cannot be found"))?
        .to_owned();
    let (_, rotated) = admin
        .json("POST", &format!("/api/clients/{id}/token"), serde_json::Value::Null)
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
    let mut admin = Client::connect(addr, &admin_token).await?;
    let (id, token) = enroll(&mut admin, &name, index).await?;
    let mut me = Client::connect(addr, &token).await?;
    let mut files: Vec<String> = Vec::new();
    let mut quiet = 0u32;
    loop {
        let pause = config.tick * (1 + rng.below(8) as u32);
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
        let roll = rng.below(100);
        let result = match roll {
            0..=39 => me
                .send("POST", &format!("/api/clients/{id}/heartbeat"), &[], Bytes::new())
                .await
                .map(|_| ()),
            40..=54 => {
                let (level, message) = MESSAGES[rng.below(MESSAGES.len() as u64) as usize];
                me.json(
                    "POST",
                    "/api/logs",
                    serde_json::json!({ "level": level, "message": message, "source": "agent" }),
                )
                .await
                .map(|_| ())
            }
            55..=77 => {
                let wrong = roll >= 75; // now and then a declared checksum that does not match: a failed transfer
                let size = 2048 + rng.below(config.max_upload as u64) as usize;
                let file = FILES[rng.below(FILES.len() as u64) as usize];
                upload(addr, &token, &id, file, size, rng.next(), wrong)
                    .await
                    .map(|stored| files.extend(stored))
            }
            78..=85 if !files.is_empty() => {
                let f = files[rng.below(files.len() as u64) as usize].clone();
                admin
                    .json("POST", &format!("/api/files/{f}/verify"), serde_json::Value::Null)
                    .await
                    .map(|_| ())
            }
            86..=88 if !files.is_empty() => {
                let f = files[rng.below(files.len() as u64) as usize].clone();
                admin
                    .send(
                        "GET",
                        &format!("/api/files/{f}/content"),
                        &[("range", "bytes=0-1023")],
                        Bytes::new(),
                    )
                    .await
                    .map(|_| ())
            }
            89..=91 => {
                quiet = 3 + rng.below(6) as u32;
                me.send("POST", &format!("/api/clients/{id}/disconnect"), &[], Bytes::new())
                    .await
                    .map(|_| ())
            }
            _ => me
                .send("POST", &format!("/api/clients/{id}/heartbeat"), &[], Bytes::new())
                .await
                .map(|_| ()),
        };
        if let Err(e) = result {
            tracing::debug!(client = %name, error = %e, "a demo action failed; reconnecting");
            me = Client::connect(addr, &token).await?;
            admin = Client::connect(addr, &admin_token).await?;
        }
    }
}

/// Uploads `size` bytes in 64 KiB chunks with short pauses (so progress shows); answers the stored file's id.
async fn upload(
    addr: SocketAddr,
    token: &str,
    client: &str,
    name: &str,
    size: usize,
    seed: u64,
    wrong_checksum: bool,
) -> anyhow::Result<Option<String>> {
    let mut rng = Rng::new(seed);
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let declared = if wrong_checksum {
        format!("x-content-sha256: {}\r\n", "0".repeat(64))
    } else {
        String::new()
    };
    let head = format!(
        "POST /api/clients/{client}/files?name={name}&path=/home/demo/{name} HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {token}\r\ncontent-type: application/octet-stream\r\ncontent-length: {size}\r\n{declared}connection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await?;
    let mut left = size;
    let mut chunk = vec![0u8; 64 * 1024];
    while left > 0 {
        let n = left.min(chunk.len());
        for b in chunk[..n].iter_mut() {
            *b = rng.next() as u8;
        }
        if stream.write_all(&chunk[..n]).await.is_err() {
            break; // refused early (the server answers before reading everything)
        }
        left -= n;
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await?;
    let text = String::from_utf8_lossy(&answer);
    if !text.starts_with("HTTP/1.1 201") {
        return Ok(None);
    }
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    Ok(v["data"]["id"].as_str().map(str::to_owned))
}
