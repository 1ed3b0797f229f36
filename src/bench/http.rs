//! `cairn bench http`: events appended per second through `POST /api/logs` over concurrent keep-alive
//! connections, and `GET /api/status` requests per second, beside the same appends made in process (no HTTP)
//! in the same run.

use std::sync::Arc;
use std::time::Instant;

use cairn_events::{Durability, Metadata};

use super::{rate, sample_command, sample_log};
use crate::client::{Client, Method};
use crate::{Cairn, Options};

#[derive(Debug, Clone)]
pub struct Outcome {
    pub connections: usize,
    pub requests: usize,
    /// RecordLog commands per second, in process, with as many concurrent tasks.
    pub in_process: f64,
    /// Events per second through `POST /api/logs`.
    pub http_append: f64,
    /// Requests per second of `GET /api/status`.
    pub http_status: f64,
}

const TOKEN: &str = "bench-admin-token-0123456789abcdef";

/// `connections` tasks share `requests` calls of `f`; returns calls per second.
async fn concurrently<F, Fut>(connections: usize, requests: usize, f: F) -> anyhow::Result<f64>
where
    F: Fn(usize, usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let f = Arc::new(f);
    let per = requests.div_ceil(connections);
    let started = Instant::now();
    let tasks: Vec<_> = (0..connections)
        .map(|c| {
            let f = f.clone();
            tokio::spawn(async move { f(c, per).await })
        })
        .collect();
    for t in tasks {
        t.await??;
    }
    Ok(rate(per * connections, started.elapsed().as_secs_f64()))
}

pub fn run(requests: usize, connections: usize, durability: Durability) -> anyhow::Result<Outcome> {
    let scratch = tempfile::tempdir()?;
    let cairn = Cairn::open(
        scratch.path(),
        Options {
            durability,
            ..Options::default()
        },
    )?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let outcome = runtime.block_on(async {
        let in_process = {
            let cairn = cairn.clone();
            concurrently(connections, requests, move |c, per| {
                let cairn = cairn.clone();
                async move {
                    for i in 0..per {
                        let command = sample_command(c * per + i);
                        cairn.execute(command, Metadata::system()).await?;
                    }
                    Ok(())
                }
            })
            .await?
        };

        let server = super::Served::start(&cairn, TOKEN).await?;
        let addr = server.addr;

        let http_append = concurrently(connections, requests, move |c, per| async move {
            // One client per task: its own keep-alive connection, as a separate backup client would have.
            let client = Client::at(addr, TOKEN)?;
            let url = client.url("/api/logs")?;
            for i in 0..per {
                let l = sample_log(c * per + i);
                let body =
                    serde_json::json!({ "level": l.level, "message": l.message, "source": l.source }).to_string();
                let req = client
                    .request_url(Method::POST, url.clone())
                    .header("content-type", "application/json")
                    .body(body);
                let status = client.status_of(req).await?;
                anyhow::ensure!(status == 201, "POST /api/logs answered {status}");
            }
            Ok(())
        })
        .await?;
        let http_status = concurrently(connections, requests, move |_, per| async move {
            let client = Client::at(addr, TOKEN)?;
            let url = client.url("/api/status")?;
            for _ in 0..per {
                let status = client.status_of(client.request_url(Method::GET, url.clone())).await?;
                anyhow::ensure!(status == 200, "GET /api/status answered {status}");
            }
            Ok(())
        })
        .await?;
        server.stop().await?;
        anyhow::Ok(Outcome {
            connections,
            requests,
            in_process,
            http_append,
            http_status,
        })
    })?;
    drop(runtime);
    cairn.close();
    Ok(outcome)
}
