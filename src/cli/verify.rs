//! `cairn verify`: recompute every CRC and the hash chain.

use std::process::ExitCode;

use anyhow::Context;
use cairn_events::{reader, schema};

use super::DataArg;
use crate::datadir;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    data: DataArg,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let db = datadir::db_path(&args.data.data);
    let conn = schema::open_read_only(&db).with_context(|| format!("cannot open {}", db.display()))?;
    let report = reader::verify_chain(&conn, |n| eprintln!("verified {n} events…"))?;
    match report.first_bad {
        None => {
            println!(
                "ok: {} events verified; head {} hash {}",
                report.checked,
                report.head,
                hex::encode(report.head_hash)
            );
            Ok(ExitCode::SUCCESS)
        }
        Some(bad) => {
            eprintln!(
                "cairn: chain broken at position {}: {bad} ({} events before it verified)",
                bad.position(),
                report.checked
            );
            Ok(ExitCode::FAILURE)
        }
    }
}
