//! `cairn backup`: a consistent copy of the database through SQLite's online backup.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use cairn_events::schema;

use super::DataArg;
use crate::datadir;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to write the copy (a new file)
    #[arg(value_name = "DEST")]
    dest: PathBuf,
    #[command(flatten)]
    data: DataArg,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.dest.exists() {
        anyhow::bail!("{} already exists; the backup writes a new file", args.dest.display());
    }
    let db = datadir::db_path(&args.data.data);
    let conn = schema::open_read_only(&db).with_context(|| format!("cannot open {}", db.display()))?;
    // Write beside the destination, then rename: a half-written copy never carries the final name.
    let mut partial = args.dest.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let bytes = schema::backup_to(&conn, &partial)
        .and_then(|b| std::fs::rename(&partial, &args.dest).map(|()| b).map_err(Into::into))
        .inspect_err(|_| {
            if let Err(e) = std::fs::remove_file(&partial) {
                tracing::debug!(error = %e, "no partial backup to remove");
            }
        })
        .with_context(|| format!("backup to {} failed", args.dest.display()))?;
    println!("backed up {} to {} ({bytes} bytes)", db.display(), args.dest.display());
    Ok(ExitCode::SUCCESS)
}
