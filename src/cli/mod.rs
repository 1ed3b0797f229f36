//! The command line, one file per command. Every command's `--help` says what it does.

mod agent;
mod backup;
mod bench;
mod checkpoint;
mod events;
mod hub;
mod prove;
mod replay;
mod restore;
mod serve;
mod tail;
mod verify;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "cairn",
    version,
    about = "A backup server whose every state change is an event"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The data directory: `cairn.db`, `blobs/`.
#[derive(Debug, Clone, clap::Args)]
pub struct DataArg {
    /// The data directory
    #[arg(long, value_name = "DIR", default_value = "./cairn-data")]
    pub data: PathBuf,
}

/// A running server and the token to call it with (`tail`, `restore`).
#[derive(Debug, Clone, clap::Args)]
pub struct ServerArg {
    /// The server
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// The admin token, or a client's own (default: $CAIRN_TOKEN, or ./cairn-data/admin.token)
    #[arg(long, value_name = "T")]
    pub token: Option<String>,
}

impl ServerArg {
    /// The token: given, or $CAIRN_TOKEN, or the admin token of ./cairn-data beside the caller.
    pub fn token(&self) -> anyhow::Result<String> {
        use anyhow::Context;
        if let Some(t) = self.token.clone().or_else(|| std::env::var("CAIRN_TOKEN").ok()) {
            return Ok(t);
        }
        let path = std::path::Path::new("./cairn-data/admin.token");
        let t = std::fs::read_to_string(path)
            .with_context(|| "no token: pass --token, set CAIRN_TOKEN, or run beside ./cairn-data/admin.token")?;
        Ok(t.trim().to_owned())
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server: the HTTP API over the data directory, until SIGINT or SIGTERM
    Serve(serve::Args),
    /// Run a hub: a server that follows every site's published log on NATS JetStream and shows the fleet
    Hub(hub::Args),
    /// Rebuild the read tables from the event log (verifying every CRC and the chain as it reads)
    Replay(replay::Args),
    /// Check every event's CRC, the hash chain and the Merkle tree (or a saved checkpoint, or an offline proof);
    /// exit 1 naming the first difference
    Verify(verify::Args),
    /// Sign the log's Merkle tree as it stands and print the signed checkpoint (--key: the key that checks it)
    Checkpoint(checkpoint::Args),
    /// Print an inclusion proof of one event that can be checked offline (`cairn verify --proof`)
    Prove(prove::Args),
    /// Print the audit trail
    Events(events::Args),
    /// Follow the live feed of a running server, one line per event; reconnects and resumes without gaps
    Tail(tail::Args),
    /// Restore a client's files as they were at a moment from a running server, checking every checksum
    Restore(restore::Args),
    /// Write a consistent copy of the database, while a server runs (SQLite online backup)
    Backup(backup::Args),
    /// Back up this machine's folders to a cairn server: register once, then run (incrementally)
    Agent(agent::Args),
    /// Run the benchmarks of BENCHMARKS.md
    Bench(bench::Args),
}

/// Parses `args` and runs the command. `Ok` carries the exit code of a command that ran (verify's 1).
pub fn run(args: impl IntoIterator<Item = OsString>) -> anyhow::Result<ExitCode> {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version are not failures; a usage error is, with clap's exit code 2.
            e.print()?;
            return Ok(ExitCode::from(e.exit_code() as u8));
        }
    };
    match cli.command {
        Command::Serve(a) => serve::run(a),
        Command::Hub(a) => hub::run(a),
        Command::Replay(a) => replay::run(a),
        Command::Verify(a) => verify::run(a),
        Command::Checkpoint(a) => checkpoint::run(a),
        Command::Prove(a) => prove::run(a),
        Command::Events(a) => events::run(a),
        Command::Backup(a) => backup::run(a),
        Command::Tail(a) => tail::run(a),
        Command::Restore(a) => restore::run(a),
        Command::Agent(a) => agent::run(a),
        Command::Bench(a) => bench::run(a),
    }
}

/// A span (a retention, a schedule): a number of days, or a number with `d`, `h`, `m` or `s`; at most ten years.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let (digits, unit) = match text.trim().char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&text.trim()[..i], c),
        _ => (text.trim(), 'd'),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 30d, 12h, 90m or 0"))?;
    let seconds = match unit {
        'd' => n.checked_mul(86_400),
        'h' => n.checked_mul(3_600),
        'm' => n.checked_mul(60),
        's' => Some(n),
        other => return Err(format!("{other:?} is not a unit: use d, h, m or s")),
    }
    .filter(|s| *s <= 3_650 * 86_400)
    .ok_or_else(|| format!("{text:?} is longer than ten years"))?;
    Ok(Duration::from_secs(seconds))
}
