//! `cairn verify`: recompute every CRC, the hash chain and the Merkle tree; check a saved checkpoint against the
//! log, or an offline proof against its checkpoint.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use base64::Engine;
use cairn_events::merkle::store as tree;
use cairn_events::{reader, schema};

use super::DataArg;
use crate::checkpoint::{self, Signed, Verifier};
use crate::datadir;
use crate::services::proofs::{self, EventProof};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    data: DataArg,
    /// Check this saved checkpoint's signature, and that the log is consistent with it
    #[arg(long, value_name = "FILE", conflicts_with = "proof")]
    checkpoint: Option<PathBuf>,
    /// Check this proof (from `cairn prove`) offline: its checkpoint's signature, the event's hash, the path
    #[arg(long, value_name = "FILE")]
    proof: Option<PathBuf>,
    /// The verifier key to trust, or a file holding it (default: the data directory's own key; for --proof,
    /// the key the proof carries)
    #[arg(long, value_name = "KEY")]
    key: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if let Some(path) = &args.proof {
        return verify_proof(path, args.key.as_deref());
    }
    let data = &args.data.data;
    let db = datadir::db_path(data);
    let conn = schema::open_read_only(&db).with_context(|| format!("cannot open {}", db.display()))?;
    if let Some(path) = &args.checkpoint {
        return verify_checkpoint(&conn, data, path, args.key.as_deref());
    }
    let report = reader::verify_chain(&conn, |n| eprintln!("verified {n} events…"))?;
    if let Some(bad) = report.first_bad {
        eprintln!(
            "cairn: chain broken at position {}: {bad} ({} events before it verified)",
            bad.position(),
            report.checked
        );
        return Ok(ExitCode::FAILURE);
    }
    let checked = tree::check(&conn, report.head).map_err(|e| anyhow::anyhow!("the Merkle tree: {e}"))?;
    if let Some((position, detail)) = checked.first_bad {
        eprintln!(
            "cairn: the Merkle tree differs from the log at position {position}: {detail}; `cairn replay` rebuilds it"
        );
        return Ok(ExitCode::FAILURE);
    }
    println!(
        "ok: {} events verified; head {} hash {}; Merkle tree root {}",
        report.checked,
        report.head,
        hex::encode(report.head_hash),
        base64::engine::general_purpose::STANDARD.encode(checked.root)
    );
    // The checkpoint the server signed last must still hold for the log as it is (a read: no key is made).
    if checkpoint::kept(data)?.is_none() {
        return Ok(ExitCode::SUCCESS);
    }
    let (key, kept) = proofs::open_key(data, None).context("the log's key")?;
    if let Some(kept) = kept {
        if let Err(why) = proofs::check_log(&conn, &kept.checkpoint) {
            eprintln!(
                "cairn: the log is not consistent with the last checkpoint signed ({} events): {why}",
                kept.checkpoint.size
            );
            return Ok(ExitCode::FAILURE);
        }
        println!(
            "ok: consistent with the last checkpoint signed by {} ({} events)",
            key.name(),
            kept.checkpoint.size
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The key to trust: `--key` (the key, or a file holding it), else `fallback`.
fn trusted(key: Option<&str>, fallback: impl FnOnce() -> anyhow::Result<Verifier>) -> anyhow::Result<Verifier> {
    match key {
        None => fallback(),
        Some(text) => {
            let text = match Path::new(text).is_file() {
                true => std::fs::read_to_string(text).with_context(|| format!("cannot read {text}"))?,
                false => text.to_owned(),
            };
            Verifier::parse(&text).map_err(|e| anyhow::anyhow!("--key: {e}"))
        }
    }
}

fn verify_checkpoint(
    conn: &rusqlite::Connection,
    data: &Path,
    path: &Path,
    key: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let note = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let verifier = trusted(key, || {
        let (key, _) = proofs::open_key(data, checkpoint_origin(&note))?;
        Ok(key.verifier())
    })?;
    let signed = match Signed::open(&verifier, &note) {
        Ok(signed) => signed,
        Err(e) => {
            eprintln!(
                "cairn: {} is not a checkpoint signed by {}: {e}",
                path.display(),
                verifier.encode()
            );
            return Ok(ExitCode::FAILURE);
        }
    };
    match proofs::check_log(conn, &signed.checkpoint) {
        Ok(head) => {
            println!(
                "ok: the log ({head} events) extends the checkpoint of {} events signed by {}",
                signed.checkpoint.size,
                verifier.name()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(why) => {
            eprintln!("cairn: the log is not consistent with {}: {why}", path.display());
            Ok(ExitCode::FAILURE)
        }
    }
}

/// The origin a checkpoint names (its first line), when it can name a key.
fn checkpoint_origin(note: &str) -> Option<&str> {
    note.split('\n').next().filter(|o| checkpoint::is_key_name(o))
}

fn verify_proof(path: &Path, key: Option<&str>) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let proof: EventProof =
        serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{} is not a proof: {e}", path.display()))?;
    let verifier = trusted(key, || {
        eprintln!("cairn: checking against the key the proof carries; pass --key with the key you trust");
        Verifier::parse(&proof.key).map_err(|e| anyhow::anyhow!("the proof's key: {e}"))
    })?;
    match proofs::check_event_proof(&proof, &verifier) {
        Ok(checked) => {
            let content = match checked.content_checked {
                true => "its content hashes to its leaf",
                false => "its content holds a token's hash and is not shown, so only its hash was checked",
            };
            println!(
                "ok: the event at position {} is in the tree of {} events signed by {}; {content}",
                checked.position,
                checked.tree_size,
                verifier.name()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(why) => {
            eprintln!("cairn: the proof does not hold: {why}");
            Ok(ExitCode::FAILURE)
        }
    }
}
