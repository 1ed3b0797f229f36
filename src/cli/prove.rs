//! `cairn prove`: an inclusion proof of one event that an auditor checks offline, with `cairn verify --proof`
//! or any RFC 6962 verifier.

use std::process::ExitCode;

use anyhow::Context;
use cairn_events::schema;

use super::DataArg;
use crate::checkpoint::Signed;
use crate::services::proofs;
use crate::{checkpoint, datadir};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    data: DataArg,
    /// The event's position in the log
    #[arg(long, value_name = "P")]
    position: i64,
    /// Prove it in the tree of this saved checkpoint (default: a checkpoint of the log as it stands)
    #[arg(long, value_name = "FILE")]
    checkpoint: Option<std::path::PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let data = &args.data.data;
    let db = datadir::db_path(data);
    let conn = schema::open_read_only(&db).with_context(|| format!("cannot open {}", db.display()))?;
    let (key, last) = proofs::open_key(data, None).context("the log's key")?;
    let verifier = key.verifier();
    let signed = match &args.checkpoint {
        Some(path) => {
            let note = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            let signed = Signed::open(&verifier, &note)
                .map_err(|e| anyhow::anyhow!("{} is not a checkpoint of this log: {e}", path.display()))?;
            if let Err(why) = proofs::check_log(&conn, &signed.checkpoint) {
                eprintln!("cairn: the log is not consistent with {}: {why}", path.display());
                return Ok(ExitCode::FAILURE);
            }
            signed
        }
        None => {
            let signed =
                proofs::sign_tree(&conn, &key, last.as_ref()).map_err(|e| anyhow::anyhow!("not signed: {e}"))?;
            checkpoint::keep(data, &signed, &verifier)?;
            signed
        }
    };
    match proofs::prove_event(&conn, &verifier, &signed, args.position) {
        Ok(proof) => {
            println!("{}", serde_json::to_string_pretty(&proof)?);
            Ok(ExitCode::SUCCESS)
        }
        Err(why) => {
            eprintln!("cairn: {why}");
            Ok(ExitCode::FAILURE)
        }
    }
}
