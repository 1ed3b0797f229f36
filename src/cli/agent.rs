//! `cairn agent register` and `cairn agent run`: a machine's folders backed up to a cairn server.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::agent::{self, config};
use crate::client::Client;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Register this machine as a client and write its configuration (id, token, URL), readable by you only
    Register(Register),
    /// Back up folders: only what changed since the last run moves; the run is recorded on the server
    Run(Run),
}

#[derive(Debug, clap::Args)]
struct Register {
    /// The server
    #[arg(long, value_name = "URL")]
    url: String,
    /// The server's admin token (used once, to register; not kept)
    #[arg(long, value_name = "T")]
    admin_token: String,
    /// The client's name on the server
    #[arg(long)]
    name: String,
    /// Where to write the configuration
    #[arg(long, value_name = "FILE", default_value = config::DEFAULT_PATH)]
    config: PathBuf,
}

#[derive(Debug, clap::Args)]
struct Run {
    /// The configuration `cairn agent register` wrote
    #[arg(long, value_name = "FILE", default_value = config::DEFAULT_PATH)]
    config: PathBuf,
    /// The server, instead of the configuration's (with --token and --client)
    #[arg(long, value_name = "URL", requires_all = ["token", "client"])]
    url: Option<String>,
    /// The client's token (or the admin's), instead of the configuration's
    #[arg(long, value_name = "T", requires_all = ["url", "client"])]
    token: Option<String>,
    /// The client's id, instead of the configuration's
    #[arg(long, value_name = "ID", requires_all = ["url", "token"])]
    client: Option<String>,
    /// The folders to back up
    #[arg(value_name = "DIR", required = true)]
    folders: Vec<PathBuf>,
    /// Leave out what matches (a glob against the path below its folder, or the name; repeatable)
    #[arg(long, value_name = "GLOB")]
    exclude: Vec<String>,
    /// Keep running, one run per interval (e.g. 1h, 30m); without it, one run
    #[arg(long, value_name = "DURATION", value_parser = super::parse_duration)]
    every: Option<Duration>,
    /// Files sent at once
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=64))]
    concurrency: u64,
    /// Say what a run would send and delete, and send nothing
    #[arg(long)]
    dry_run: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    match args.command {
        Command::Register(a) => runtime.block_on(register(a)),
        Command::Run(a) => runtime.block_on(backup(a)),
    }
}

fn checked_url(url: &str) -> anyhow::Result<&str> {
    anyhow::ensure!(
        url.starts_with("http://") || url.starts_with("https://"),
        "--url must be http://HOST:PORT or https://…, not {url:?}"
    );
    Ok(url.trim_end_matches('/'))
}

async fn register(a: Register) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        !a.config.exists(),
        "{} exists (it holds a registration): remove it or pass --config elsewhere",
        a.config.display()
    );
    let server = Client::new(checked_url(&a.url)?, Some(&a.admin_token))?;
    let made = agent::register(&server, &a.name).await?;
    made.save_new(&a.config)?;
    println!(
        "registered {} as client {} on {}; configuration in {} (keep it secret: it holds the client's token)",
        made.name,
        made.client_id,
        made.url,
        a.config.display()
    );
    Ok(ExitCode::SUCCESS)
}

async fn backup(a: Run) -> anyhow::Result<ExitCode> {
    let (url, token, client) = match (&a.url, &a.token, &a.client) {
        (Some(u), Some(t), Some(c)) => (u.clone(), t.clone(), c.clone()),
        _ => {
            let c = config::Config::load(&a.config)
                .context("no configuration: run `cairn agent register` first, or pass --url, --token and --client")?;
            (c.url, c.token, c.client_id)
        }
    };
    anyhow::ensure!(
        uuid::Uuid::parse_str(&client).is_ok(),
        "--client must be the client's id, not {client:?}"
    );
    let mut folders = Vec::new();
    for f in &a.folders {
        let absolute = std::fs::canonicalize(f).with_context(|| format!("{} cannot be backed up", f.display()))?;
        anyhow::ensure!(absolute.is_dir(), "{} is not a folder", f.display());
        folders.push(absolute);
    }
    let options = agent::Options {
        folders,
        exclude: a.exclude.clone(),
        concurrency: a.concurrency as usize,
        dry_run: a.dry_run,
    };
    agent::scan::excludes(&options.exclude)?;
    // A server that stops answering is given up on after two minutes of silence (then retried), not waited for.
    let server = Client::patient_for(
        checked_url(&url)?,
        Some(&token),
        Duration::from_secs(10),
        Duration::from_secs(120),
    )?;
    let state = config::state_path(&a.config);
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        tokio::spawn(async move {
            while tokio::signal::ctrl_c().await.is_ok() {
                if stop.swap(true, Ordering::Relaxed) {
                    eprintln!("stopping now");
                    std::process::exit(130);
                }
                eprintln!("interrupted: finishing the files under way, then recording the run as partial (Ctrl-C again to stop at once)");
            }
        });
    }
    loop {
        let began = std::time::Instant::now();
        let bar = indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {bytes}/{total_bytes} {bar:30} {bytes_per_sec} {eta} {wide_msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        let summary = agent::run(&server, &client, &state, &options, stop.clone(), &bar).await;
        bar.finish_and_clear();
        let summary = match (summary, a.every) {
            (Ok(s), _) => s,
            (Err(e), None) => return Err(e),
            // A run that could not even begin or end (the server away longer than the retries): said, and the
            // next interval tries again.
            (Err(e), Some(_)) => {
                eprintln!("the run failed: {e:#}");
                agent::Summary::failed()
            }
        };
        for line in &summary.plan {
            println!("{line}");
        }
        for line in &summary.skipped {
            eprintln!("skipped: {line}");
        }
        for line in &summary.failures {
            eprintln!("failed: {line}");
        }
        println!("{}", summary.line());
        let code = if summary.counts.failed > 0 || summary.interrupted {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        };
        let Some(every) = a.every.filter(|_| !a.dry_run) else {
            return Ok(code);
        };
        if stop.load(Ordering::Relaxed) {
            return Ok(code);
        }
        let wait = every.saturating_sub(began.elapsed());
        let mut waited = Duration::ZERO;
        while waited < wait && !stop.load(Ordering::Relaxed) {
            let step = Duration::from_millis(200).min(wait - waited);
            tokio::time::sleep(step).await;
            waited += step;
        }
        if stop.load(Ordering::Relaxed) {
            return Ok(code);
        }
    }
}
