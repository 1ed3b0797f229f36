//! `cairn backup`: a complete snapshot of a data directory (the database by SQLite's online backup, every blob it
//! refers to, a manifest), safe while a server runs; `--verify` checks one.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use super::DataArg;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The snapshot directory to write (new), or with --verify to check
    #[arg(value_name = "DEST")]
    dest: PathBuf,
    /// Check the snapshot at DEST instead: the chain, every blob's SHA-256, and that its read tables replay equal
    #[arg(long)]
    verify: bool,
    #[command(flatten)]
    data: DataArg,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.verify {
        let c = crate::snapshot::verify(&args.dest).with_context(|| format!("cannot check {}", args.dest.display()))?;
        println!(
            "{}: {} events, chain {}, {} blobs checked ({} bad), {} read-table differences",
            args.dest.display(),
            c.events,
            if c.chain_ok { "intact" } else { "BROKEN" },
            c.blobs_checked,
            c.bad_blobs.len(),
            c.differences.len()
        );
        for b in &c.bad_blobs {
            eprintln!("missing or damaged blob: {b}");
        }
        for d in c.differences.iter().take(20) {
            eprintln!("differs from a replay: {d}");
        }
        return Ok(if c.ok() { ExitCode::SUCCESS } else { ExitCode::from(1) });
    }
    let s = crate::snapshot::take(&args.data.data, &args.dest)
        .with_context(|| format!("backup to {} failed", args.dest.display()))?;
    println!(
        "backed up {} to {}: head {} ({} events), {} files, {} blobs ({} bytes; {} linked, {} copied), database {} bytes",
        args.data.data.display(),
        args.dest.display(),
        s.head,
        s.head,
        s.files,
        s.blobs,
        s.blob_bytes,
        s.linked,
        s.copied,
        s.database_bytes
    );
    if !s.missing.is_empty() {
        eprintln!(
            "{} blobs the database refers to were not in the source: {}",
            s.missing.len(),
            s.missing.join(", ")
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
