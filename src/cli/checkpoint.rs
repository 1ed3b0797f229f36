//! `cairn checkpoint`: sign the log's tree as it stands and print the signed checkpoint (or the key that
//! verifies it).

use std::process::ExitCode;

use anyhow::Context;
use cairn_events::schema;

use super::DataArg;
use crate::services::proofs;
use crate::{checkpoint, datadir};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    data: DataArg,
    /// The origin to sign under (default: the one the kept checkpoint names, else the key's own name)
    #[arg(long, value_name = "NAME")]
    origin: Option<String>,
    /// Print the verifier key (<name>+<hex key ID>+<base64 key>) instead of a checkpoint
    #[arg(long)]
    key: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let data = &args.data.data;
    let db = datadir::db_path(data);
    let conn = schema::open_read_only(&db).with_context(|| format!("cannot open {}", db.display()))?;
    let (key, last) = proofs::open_key(data, args.origin.as_deref()).context("the log's key")?;
    if args.key {
        println!("{}", key.verifier().encode());
        return Ok(ExitCode::SUCCESS);
    }
    let signed = proofs::sign_tree(&conn, &key, last.as_ref()).map_err(|e| anyhow::anyhow!("not signed: {e}"))?;
    checkpoint::keep(data, &signed, &key.verifier())?;
    print!("{}", signed.note);
    Ok(ExitCode::SUCCESS)
}
