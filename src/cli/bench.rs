//! `cairn bench`: the benchmarks of BENCHMARKS.md, printed as Markdown rows.

use std::path::PathBuf;
use std::process::ExitCode;

use cairn_events::Durability;

use crate::bench;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Which {
    /// Appends per second: raw SQLite, cairn's log alone, cairn with every projection
    Append,
    /// Rebuilding the read tables from a log, beside a raw read-and-insert of the same rows
    Replay,
    /// POST /api/logs and GET /api/status over concurrent connections, beside in-process appends
    Http,
    /// Live-feed delivery: 1,000 subscribers at 100 events/s and 100 at 1,000 events/s
    Live,
    /// A fixed time of uploads, log lines, subscribers coming and going, slow readers and oversized messages:
    /// RSS at start, middle and end, requests refused, events lost
    Soak,
    /// `cairn agent run` beside `restic backup` on one generated tree: first run, unchanged, 1% changed
    Agent,
    /// Inclusion and consistency proofs' latency over HTTP (beside reading one event) and in process, on a
    /// log of a million events; checkpoints signed per second beside Ed25519 alone
    Proofs,
    /// N sites (1, 4, 16; --producers N for one) appending into a 3-node NATS JetStream cluster started here and
    /// a hub: their append rate with publishing beside without, the hub's ingest rate, commit-to-hub lag
    Fleet,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(value_enum)]
    which: Which,
    /// Events per configuration (default: 20,000 for append, 1,000,000 for replay and proofs)
    #[arg(long, value_name = "N")]
    events: Option<usize>,
    /// Concurrent producers, or connections for http (default: both 1 and 64; 64 for http)
    #[arg(long, value_name = "P", value_parser = clap::value_parser!(u16).range(1..=1024))]
    producers: Option<u16>,
    /// full or normal (default: both)
    #[arg(long, value_name = "full|normal")]
    durability: Option<Durability>,
    /// Keep the log written here (a data directory that verify, replay and events can open)
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// live: seconds of appends per shape; soak: seconds of the whole run
    #[arg(long, value_name = "S", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=600))]
    seconds: u32,
    /// live: events per second, with --producers as the number of subscribers
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    rate: Option<u32>,
    /// Rounds of each append measurement; the medians are printed, with the spread of the ratios
    #[arg(long, value_name = "R", default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=100))]
    rounds: u16,
    /// agent: files in the generated tree
    #[arg(long, value_name = "N", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    files: u64,
    /// agent: the tree's size in MiB (about)
    #[arg(long, value_name = "MIB", default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    mib: u64,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if let Some(dir) = &args.data {
        if crate::datadir::db_path(dir).exists() && args.which == Which::Replay {
            anyhow::bail!(
                "{} already holds a database; bench replay writes a new log",
                dir.display()
            );
        }
    }
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    println!(
        "machine: {} cores, {cpu}",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    match args.which {
        Which::Append => {
            let events = args.events.unwrap_or(20_000);
            let producers: Vec<usize> = args.producers.map_or(vec![1, 64], |p| vec![usize::from(p)]);
            let durabilities = args
                .durability
                .map_or(vec![Durability::Full, Durability::Normal], |d| vec![d]);
            println!(
                "medians of {} rounds; ratios are to raw SQLite in the same round, with their range",
                args.rounds
            );
            println!("| durability | producers | events | raw SQLite ev/s | log only ev/s | ratio (range) | log + projections ev/s | ratio (range) | mean batch (log / +proj) | log without the tree ev/s | the tree's cost (range) |");
            println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
            for d in &durabilities {
                for p in &producers {
                    let o = bench::append::run(&bench::append::Config {
                        events,
                        producers: *p,
                        durability: *d,
                        data: args.data.clone(),
                        rounds: usize::from(args.rounds),
                    })?;
                    println!(
                        "| {} | {} | {} | {:.0} | {:.0} | {:.2} ({:.2}–{:.2}) | {:.0} | {:.2} ({:.2}–{:.2}) | {:.1} / {:.1} | {:.0} | {:+.1}% ({:+.1}–{:+.1}%) |",
                        d.as_str(),
                        o.producers,
                        o.events,
                        o.raw,
                        o.log_only,
                        o.log_only / o.raw,
                        o.spread[0].0,
                        o.spread[0].1,
                        o.with_projections,
                        o.with_projections / o.raw,
                        o.spread[1].0,
                        o.spread[1].1,
                        o.batch,
                        o.batch_projections,
                        o.without_tree,
                        o.tree_cost * 100.0,
                        o.tree_cost_spread.0 * 100.0,
                        o.tree_cost_spread.1 * 100.0
                    );
                }
            }
        }
        Which::Http => {
            let requests = args.events.unwrap_or(20_000);
            let connections = args.producers.map_or(64, usize::from);
            let durability = args.durability.unwrap_or(Durability::Full);
            let o = bench::http::run(requests, connections, durability)?;
            println!(
                "durability {}; {} connections; {} requests each",
                durability.as_str(),
                o.connections,
                o.requests
            );
            println!("| in-process appends ev/s | POST /api/logs ev/s | ratio | GET /api/status req/s |");
            println!("|---:|---:|---:|---:|");
            println!(
                "| {:.0} | {:.0} | {:.2} | {:.0} |",
                o.in_process,
                o.http_append,
                o.http_append / o.in_process,
                o.http_status
            );
        }
        Which::Live => {
            let durability = args.durability.unwrap_or(Durability::Full);
            let seconds = args.seconds;
            let shapes: Vec<(usize, u32)> = match args.producers {
                Some(p) => vec![(usize::from(p), args.rate.unwrap_or(100))],
                None => vec![(1000, 100), (100, 1000)],
            };
            println!(
                "durability {}; {seconds} s of appends per shape; server in its own process",
                durability.as_str()
            );
            println!("| subscribers | events/s | events | p50 ms | p99 ms | max ms | lost | duplicates | delivered msg/s | server RSS MiB (peak) |");
            println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
            for (subscribers, rate) in shapes {
                let o = bench::live::run(subscribers, rate, seconds, durability.as_str())?;
                println!(
                    "| {} | {} | {} | {:.1} | {:.1} | {:.1} | {} | {} | {:.0} | {:.1} ({:.1}) |",
                    o.subscribers,
                    o.rate,
                    o.events,
                    o.p50_ms,
                    o.p99_ms,
                    o.max_ms,
                    o.lost,
                    o.duplicates,
                    o.delivered_per_sec,
                    o.server_rss as f64 / 1048576.0,
                    o.server_peak_rss as f64 / 1048576.0
                );
            }
        }
        Which::Soak => {
            let durability = args.durability.unwrap_or(Durability::Full);
            let o = bench::soak::run(args.seconds, durability.as_str())?;
            let mib = |b: u64| b as f64 / 1048576.0;
            println!(
                "durability {}; {} s; server in its own process",
                durability.as_str(),
                o.seconds
            );
            println!("| uploads | log lines | subscriber cycles | slow readers closed | oversized closed (1009) | refused | events lost | RSS MiB start / middle / end | end / middle |");
            println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
            println!(
                "| {} | {} | {} | {} | {} | {} | {} | {:.1} / {:.1} / {:.1} | {:.2} |",
                o.uploads,
                o.logs,
                o.cycles,
                o.slow_closed,
                o.oversized_closed,
                o.refused,
                o.lost,
                mib(o.rss[0]),
                mib(o.rss[1]),
                mib(o.rss[2]),
                o.rss[2] as f64 / o.rss[1].max(1) as f64
            );
            if o.lost > 0 {
                return Ok(ExitCode::FAILURE);
            }
        }
        Which::Proofs => {
            let events = args.events.unwrap_or(1_000_000);
            let o = bench::proofs::run(events, 2000, args.data.as_deref())?;
            println!(
                "{} events (written with their tree in {:.1} s); {} requests of each kind, one at a time on one connection",
                o.events, o.generated, o.requests
            );
            println!("| request | p50 ms | p99 ms | max ms |");
            println!("|---|---:|---:|---:|");
            for (what, l) in [
                ("GET /api/events/{position} (the reference)", o.http_event),
                ("GET /api/audit/proof/inclusion", o.http_inclusion),
                ("GET /api/audit/proof/consistency", o.http_consistency),
                ("inclusion proof in process", o.inclusion),
                ("consistency proof in process", o.consistency),
            ] {
                println!("| {what} | {:.3} | {:.3} | {:.3} |", l.p50, l.p99, l.max);
            }
            println!(
                "checkpoints signed per second: {:.0} (root read from the tree, then signed); Ed25519 alone: {:.0}/s; ratio {:.2}",
                o.signing,
                o.ed25519,
                o.signing / o.ed25519
            );
        }
        Which::Fleet => {
            let per = args.events.unwrap_or(2000);
            let durability = args.durability.unwrap_or(Durability::Full);
            let rate = args.rate.unwrap_or(50);
            let shapes: Vec<usize> = args.producers.map_or(vec![1, 4, 16], |p| vec![usize::from(p)]);
            println!(
                "durability {}; {per} events per site as fast as each can, then {rate} events/s per site for 3 s for the lag; a 3-node JetStream cluster (replicas 3) and the hub in this process",
                durability.as_str()
            );
            println!("| sites | events | appends ev/s, not publishing | publishing | ratio | hub ingest ev/s | commit → hub p50 ms | p99 ms |");
            println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
            for sites in shapes {
                let o = bench::fleet::run(sites, per, rate, durability)?;
                println!(
                    "| {} | {} | {:.0} | {:.0} | {:.2} | {:.0} | {:.1} | {:.1} |",
                    o.sites,
                    o.events,
                    o.without,
                    o.with,
                    o.with / o.without,
                    o.ingest,
                    o.lag_p50,
                    o.lag_p99
                );
            }
        }
        Which::Agent => {
            let o = bench::agent::run(bench::agent::Config {
                files: args.files as usize,
                bytes: args.mib << 20,
                durability: args.durability.unwrap_or(Durability::Full).as_str(),
            })?;
            println!(
                "{} files, {:.1} MiB; {}; cairn serve with {} durability on loopback, restic to a local repository",
                o.files,
                o.bytes as f64 / 1048576.0,
                o.restic,
                o.durability
            );
            println!("| run | cairn agent s | cairn bytes sent | restic s | restic data added | cairn / restic time |");
            println!("|---|---:|---:|---:|---:|---:|");
            for p in &o.phases {
                println!(
                    "| {} | {:.2} | {} | {:.2} | {} | {:.2} |",
                    p.name,
                    p.cairn_seconds,
                    p.cairn_sent,
                    p.restic_seconds,
                    p.restic_added,
                    p.cairn_seconds / p.restic_seconds
                );
            }
        }
        Which::Replay => {
            let events = args.events.unwrap_or(1_000_000);
            let scratch = tempfile::tempdir()?;
            let dir = args.data.clone().unwrap_or_else(|| scratch.path().join("data"));
            let o = bench::replay::run(&dir, events)?;
            println!(
                "| events | raw read + insert ev/s | cairn rebuild ev/s | ratio | cairn replay (rebuild + swap) ev/s |"
            );
            println!("|---:|---:|---:|---:|---:|");
            println!(
                "| {} | {:.0} | {:.0} | {:.2} | {:.0} |",
                o.events,
                o.raw,
                o.rebuild,
                o.rebuild / o.raw,
                o.replay
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
