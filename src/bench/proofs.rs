//! `cairn bench proofs`: on a log of a million events (by default), the latency of inclusion and consistency
//! proofs through the HTTP API beside `GET /api/events/{position}` (one row read through the same stack), the
//! same proofs computed in process, and checkpoints signed per second beside Ed25519 signing alone.

use std::time::{Duration, Instant};

use cairn_events::merkle::{self, store, store::Stored};
use rand::{RngExt, SeedableRng};

use crate::checkpoint::{Checkpoint, LogKey};
use crate::client::{Client, Method};
use crate::services::proofs;
use crate::{Cairn, Options};

/// Latencies in milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct Latency {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

impl Latency {
    fn of(mut samples: Vec<Duration>) -> Self {
        samples.sort();
        let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)].as_secs_f64() * 1e3;
        Self {
            p50: at(0.50),
            p99: at(0.99),
            max: at(1.0),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Outcome {
    pub events: u64,
    pub requests: usize,
    /// Seconds to write the log (with its tree).
    pub generated: f64,
    pub http_event: Latency,
    pub http_inclusion: Latency,
    pub http_consistency: Latency,
    pub inclusion: Latency,
    pub consistency: Latency,
    /// Checkpoints signed per second (the root read from the tree, then signed), and Ed25519 signatures of the
    /// same body per second.
    pub signing: f64,
    pub ed25519: f64,
}

const TOKEN: &str = "bench-admin-token-0123456789abcdef";

pub fn run(events: usize, requests: usize, data: Option<&std::path::Path>) -> anyhow::Result<Outcome> {
    let scratch = tempfile::tempdir()?;
    let dir = data.map_or_else(|| scratch.path().join("proofs"), std::path::Path::to_owned);
    let started = Instant::now();
    if !crate::datadir::db_path(&dir).exists() {
        super::replay::generate(&dir, events)?;
    }
    let generated = started.elapsed().as_secs_f64();
    let cairn = Cairn::open(&dir, Options::default())?;
    let size = cairn.store().head() as u64;
    let mut rng = rand::rngs::SmallRng::seed_from_u64(13);
    let positions: Vec<u64> = (0..requests).map(|_| rng.random_range(1..=size)).collect();
    let froms: Vec<u64> = (0..requests).map(|_| rng.random_range(1..size)).collect();

    // In process: the proof from the stored nodes, on one read connection.
    let conn = cairn.store().reader()?;
    let timed = |f: &mut dyn FnMut(u64) -> anyhow::Result<()>, inputs: &[u64]| -> anyhow::Result<Latency> {
        let mut samples = Vec::with_capacity(inputs.len());
        for &x in inputs {
            let t = Instant::now();
            f(x)?;
            samples.push(t.elapsed());
        }
        Ok(Latency::of(samples))
    };
    let inclusion = timed(
        &mut |p| {
            merkle::inclusion_proof(&mut Stored::new(&conn), p - 1, size)?;
            Ok(())
        },
        &positions,
    )?;
    let consistency = timed(
        &mut |m| {
            merkle::consistency_proof(&mut Stored::new(&conn), m, size)?;
            Ok(())
        },
        &froms,
    )?;

    // Signing: the root of the tree read afresh and signed, for a second; then Ed25519 alone on the body.
    let key = LogKey::from_seed("bench.example/cairn", [7; 32])?;
    let (mut signed, t) = (0u64, Instant::now());
    while t.elapsed() < Duration::from_secs(1) {
        proofs::sign_tree(&conn, &key, None)?;
        signed += 1;
    }
    let signing = signed as f64 / t.elapsed().as_secs_f64();
    let body = Checkpoint {
        origin: key.name().to_owned(),
        size,
        root: merkle::root(&mut Stored::new(&conn), store::size(&conn)?)?,
    }
    .body();
    let (mut bare, t) = (0u64, Instant::now());
    while t.elapsed() < Duration::from_secs(1) {
        std::hint::black_box(key.sign(&body));
        bare += 1;
    }
    let ed25519 = bare as f64 / t.elapsed().as_secs_f64();
    drop(conn);

    // Over HTTP: one keep-alive connection, one request at a time, so each figure is a request's latency.
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let (http_event, http_inclusion, http_consistency) = runtime.block_on(async {
        let server = super::Served::start(&cairn, TOKEN).await?;
        let addr = server.addr;
        let client = Client::at(addr, TOKEN)?;
        let get = |path: String| {
            let client = client.clone();
            async move {
                let t = Instant::now();
                let status = client.status_of(client.request(Method::GET, &path)).await?;
                anyhow::ensure!(status == 200, "GET {path} answered {status}");
                Ok::<_, anyhow::Error>(t.elapsed())
            }
        };
        // Warm the connection and the caches alike for all three.
        for p in positions.iter().take(50) {
            get(format!("/api/events/{p}")).await?;
            get(format!("/api/audit/proof/inclusion?position={p}&size={size}")).await?;
        }
        let (mut event, mut incl, mut cons) = (Vec::new(), Vec::new(), Vec::new());
        for (p, m) in positions.iter().zip(&froms) {
            event.push(get(format!("/api/events/{p}")).await?);
            incl.push(get(format!("/api/audit/proof/inclusion?position={p}&size={size}")).await?);
            cons.push(get(format!("/api/audit/proof/consistency?from={m}&to={size}")).await?);
        }
        server.stop().await?;
        anyhow::Ok((Latency::of(event), Latency::of(incl), Latency::of(cons)))
    })?;
    drop(runtime);
    cairn.close();
    Ok(Outcome {
        events: size,
        requests,
        generated,
        http_event,
        http_inclusion,
        http_consistency,
        inclusion,
        consistency,
        signing,
        ed25519,
    })
}
