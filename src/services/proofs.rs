//! Proofs an auditor checks alone: signed checkpoints of the Merkle tree the writer keeps over the log,
//! inclusion and consistency proofs, and the tree's tiles (c2sp.org/tlog-tiles) for a static mirror.
//!
//! The signer signs the tree at the head at most once a second, and never a checkpoint that contradicts the last
//! one signed (kept in `<data>/checkpoint` across restarts): before signing it checks, with a consistency proof
//! from the tree, that the new tree extends the old one. A log truncated or rebuilt with another history is
//! refused, loudly, and the last good checkpoint stays the one served.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use cairn_events::merkle::{self, store, store::Stored, Hash, ProofError};
use cairn_events::reader;
use rusqlite::Connection;
use serde::Serialize;

use super::{ServiceError, Services};
use crate::checkpoint::{self, LogKey, NoteError, Signed, Verifier};

/// How often the signer may sign: a checkpoint is at most about this much behind the head.
pub const SIGN_EVERY: Duration = Duration::from_secs(1);

/// The log's key, the latest checkpoint signed, and why signing stopped, if it did.
pub struct Proofs {
    key: LogKey,
    verifier: Verifier,
    data: PathBuf,
    latest: RwLock<Option<Signed>>,
    /// Set when the tree no longer extends the last checkpoint: nothing more is signed.
    refused: Mutex<Option<String>>,
}

impl std::fmt::Debug for Proofs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proofs")
            .field("origin", &self.key.name())
            .finish_non_exhaustive()
    }
}

/// Why a checkpoint was not signed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The tree does not extend the last checkpoint: the log was cut short or rewritten.
    #[error("{0}")]
    Inconsistent(String),
    #[error(transparent)]
    Tree(#[from] ProofError),
    #[error(transparent)]
    Note(#[from] NoteError),
    #[error("database error: {0}")]
    Sql(#[from] rusqlite::Error),
}

impl Proofs {
    /// The key of the data directory `data` (made at first start), named `origin` when given; the checkpoint
    /// kept there, if it verifies with this key.
    pub fn open(data: &Path, origin: Option<&str>) -> Result<Self, NoteError> {
        let (key, latest) = open_key(data, origin)?;
        let verifier = key.verifier();
        Ok(Self {
            key,
            verifier,
            data: data.to_owned(),
            latest: RwLock::new(latest),
            refused: Mutex::new(None),
        })
    }

    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    /// The latest checkpoint signed.
    pub fn latest(&self) -> Option<Signed> {
        self.latest.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Why signing stopped, if it did.
    pub fn refused(&self) -> Option<String> {
        self.refused.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Signs the tree as `conn` sees it, unless it is the one signed last; keeps it; refuses (and stops signing)
    /// when it does not extend the last one.
    pub fn sign(&self, conn: &Connection) -> Result<Signed, SignError> {
        if let Some(why) = self.refused() {
            return Err(SignError::Inconsistent(why));
        }
        let last = self.latest();
        match sign_tree(conn, &self.key, last.as_ref()) {
            Ok(signed) => {
                if last.as_ref() != Some(&signed) {
                    checkpoint::keep(&self.data, &signed, &self.verifier)?;
                    *self.latest.write().unwrap_or_else(|p| p.into_inner()) = Some(signed.clone());
                }
                Ok(signed)
            }
            Err(SignError::Inconsistent(why)) => {
                tracing::error!(%why, "refusing to sign a checkpoint that contradicts the last one");
                *self.refused.lock().unwrap_or_else(|p| p.into_inner()) = Some(why.clone());
                Err(SignError::Inconsistent(why))
            }
            Err(e) => Err(e),
        }
    }
}

/// The log's key of the data directory `data`, named `origin`, or else as the kept checkpoint names it (an
/// origin once chosen stays), or else by its own name; and the kept checkpoint when it verifies with it.
pub fn open_key(data: &Path, origin: Option<&str>) -> Result<(LogKey, Option<Signed>), NoteError> {
    let key = LogKey::load_or_create(&checkpoint::key_path(data))?;
    let kept = checkpoint::kept(data)?;
    let kept_origin = kept
        .as_deref()
        .and_then(|note| note.split('\n').next())
        .filter(|o| checkpoint::is_key_name(o))
        .map(str::to_owned);
    let key = match origin.map(str::to_owned).or(kept_origin) {
        Some(name) => key.named(&name)?,
        None => key,
    };
    let latest = match kept {
        None => None,
        Some(note) => match Signed::open(&key.verifier(), &note) {
            Ok(signed) => Some(signed),
            Err(e) => {
                // Signed under another origin (or damaged): a new origin starts its own series.
                tracing::warn!(error = %e, "the kept checkpoint is not this key's; starting anew");
                None
            }
        },
    };
    Ok((key, latest))
}

/// The tree `conn` sees (one read transaction), its size and root.
pub fn tree_head(conn: &Connection) -> Result<(u64, Hash), SignError> {
    conn.execute_batch("BEGIN")?;
    let result = (|| {
        let size = store::size(conn)?;
        let root = merkle::root(&mut Stored::new(conn), size)?;
        Ok::<_, SignError>((size, root))
    })();
    conn.execute_batch("COMMIT")?;
    result
}

/// Signs the tree `conn` sees with `key`: the `last` checkpoint again when the tree has not grown, a new one when
/// a consistency proof shows it extends `last`, and [`SignError::Inconsistent`] otherwise.
pub fn sign_tree(conn: &Connection, key: &LogKey, last: Option<&Signed>) -> Result<Signed, SignError> {
    let (size, root) = tree_head(conn)?;
    if let Some(last) = last {
        let old = &last.checkpoint;
        if size < old.size {
            return Err(SignError::Inconsistent(format!(
                "the log holds {size} events, fewer than the {} of the checkpoint signed before: it was cut short",
                old.size
            )));
        }
        if size == old.size {
            return match root == old.root {
                true => Ok(last.clone()),
                false => Err(SignError::Inconsistent(format!(
                    "the tree of {size} events has root {}, the checkpoint signed before says {}: the log was rewritten",
                    BASE64.encode(root),
                    BASE64.encode(old.root)
                ))),
            };
        }
        let proof = merkle::consistency_proof(&mut Stored::new(conn), old.size, size)?;
        if let Err(e) = merkle::verify_consistency(old.size, size, &proof, &old.root, &root) {
            return Err(SignError::Inconsistent(format!(
                "the tree of {size} events does not extend the checkpoint of {} signed before ({e}): the log was rewritten",
                old.size
            )));
        }
    }
    Ok(Signed::new(key, size, root))
}

/// Signs whenever the head moved, at most once per [`SIGN_EVERY`] (until aborted with the server).
pub async fn run_signer(state: Services) {
    let mut signed_at = state.proofs.latest().map(|s| s.checkpoint.size);
    loop {
        let head = state.cairn.store().head().max(0) as u64;
        if signed_at != Some(head) && state.proofs.refused().is_none() {
            let proofs = state.clone();
            match super::read(&state.cairn, move |conn| Ok(proofs.proofs.sign(conn))).await {
                Ok(Ok(signed)) => signed_at = Some(signed.checkpoint.size),
                Ok(Err(SignError::Inconsistent(_))) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "signing a checkpoint failed; trying again"),
                Err(e) => tracing::warn!(error = %e, "signing a checkpoint failed; trying again"),
            }
        }
        tokio::time::sleep(SIGN_EVERY).await;
    }
}

/// An inclusion proof: the event at `position` is leaf `leaf_index` of the tree of `tree_size` leaves.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct InclusionProof {
    pub position: i64,
    pub leaf_index: u64,
    pub tree_size: u64,
    /// The leaf's data: the event's chain hash (hex, as the event shows it).
    pub event_hash: String,
    /// The audit path, from the leaf up (base64).
    pub hashes: Vec<String>,
}

/// A consistency proof: the tree of `from` leaves is a prefix of the tree of `to` leaves.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ConsistencyProof {
    pub from: u64,
    pub to: u64,
    /// RFC 6962's PROOF(from, D[to]) (base64).
    pub hashes: Vec<String>,
}

fn encode(hashes: &[Hash]) -> Vec<String> {
    hashes.iter().map(|h| BASE64.encode(h)).collect()
}

fn tree_error(e: ProofError) -> ServiceError {
    match e {
        ProofError::LeafOutOfRange { .. } | ProofError::SizesOutOfOrder { .. } => {
            ServiceError::invalid("INVALID_TREE_SIZE", e.to_string())
        }
        other => ServiceError::internal(other),
    }
}

/// The size a proof is for: the one asked, else the latest checkpoint's (signed now if the head moved); at
/// most the tree's.
async fn size_for(state: &Services, asked: Option<u64>, at_least: u64) -> Result<u64, ServiceError> {
    if let Some(size) = asked {
        return Ok(size);
    }
    let signed = latest(state).await?;
    if signed.checkpoint.size < at_least {
        if let Some(why) = state.proofs.refused() {
            return Err(ServiceError::conflict("CHECKPOINT_REFUSED", why));
        }
    }
    Ok(signed.checkpoint.size)
}

/// The proof that the event at `position` is in the tree of `size` leaves (default: the latest checkpoint's).
pub async fn inclusion(state: &Services, position: i64, size: Option<u64>) -> Result<InclusionProof, ServiceError> {
    if position < 1 {
        return Err(ServiceError::invalid("INVALID_QUERY", "position is 1 or more"));
    }
    let size = size_for(state, size, position as u64).await?;
    state
        .read(move |conn| {
            let tree = store::size(conn)?;
            if size > tree {
                return Err(ServiceError::invalid(
                    "INVALID_TREE_SIZE",
                    format!("the tree has {tree} leaves, not {size}"),
                ));
            }
            let event = reader::event_at(conn, position)?.ok_or_else(|| {
                ServiceError::not_found("EVENT_NOT_FOUND", format!("no event at position {position}"))
            })?;
            let index = position as u64 - 1;
            let hashes = merkle::inclusion_proof(&mut Stored::new(conn), index, size).map_err(tree_error)?;
            Ok(InclusionProof {
                position,
                leaf_index: index,
                tree_size: size,
                event_hash: hex::encode(event.hash),
                hashes: encode(&hashes),
            })
        })
        .await
}

/// The proof that the tree of `from` leaves is a prefix of the tree of `to` (default: the latest checkpoint's).
pub async fn consistency(state: &Services, from: u64, to: Option<u64>) -> Result<ConsistencyProof, ServiceError> {
    let to = size_for(state, to, from).await?;
    state
        .read(move |conn| {
            let tree = store::size(conn)?;
            if to > tree {
                return Err(ServiceError::invalid(
                    "INVALID_TREE_SIZE",
                    format!("the tree has {tree} leaves, not {to}"),
                ));
            }
            let hashes = merkle::consistency_proof(&mut Stored::new(conn), from, to).map_err(tree_error)?;
            Ok(ConsistencyProof {
                from,
                to,
                hashes: encode(&hashes),
            })
        })
        .await
}

/// The latest signed checkpoint, signed afresh when the head has moved past it (so at most once per batch
/// written; the signer covers a quiet reader within a second). When signing is refused, the last good one.
pub async fn latest(state: &Services) -> Result<Signed, ServiceError> {
    let head = state.cairn.store().head().max(0) as u64;
    let kept = state.proofs.latest();
    if let Some(signed) = &kept {
        if signed.checkpoint.size >= head || state.proofs.refused().is_some() {
            return Ok(signed.clone());
        }
    }
    let proofs = state.clone();
    let fresh = super::read(&state.cairn, move |conn| {
        proofs
            .proofs
            .sign(conn)
            .map_err(|e| ServiceError::conflict("CHECKPOINT_REFUSED", e.to_string()))
    })
    .await;
    match (fresh, kept) {
        (Ok(signed), _) => Ok(signed),
        (Err(_), Some(kept)) => Ok(kept),
        (Err(e), None) => Err(e),
    }
}

/// A tile of c2sp.org/tlog-tiles, by its path under `tile/`: `<L>/<N>[.p/<W>]` or `entries/<N>[.p/<W>]`.
pub async fn tile(state: &Services, path: String) -> Result<Vec<u8>, ServiceError> {
    let tile = TilePath::parse(&path)
        .ok_or_else(|| ServiceError::not_found("TILE_NOT_FOUND", format!("{path:?} is not a tile's path")))?;
    state
        .read(move |conn| {
            let bytes = match tile.level {
                None => store::entries(conn, tile.index, tile.width),
                Some(level) => store::tile(conn, level, tile.index, tile.width),
            }
            .map_err(ServiceError::internal)?;
            bytes.ok_or_else(|| ServiceError::not_found("TILE_NOT_FOUND", format!("the tree holds no tile {path}")))
        })
        .await
}

/// A parsed tile path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TilePath {
    /// `None` for an entry bundle.
    level: Option<u32>,
    index: u64,
    width: u64,
}

impl TilePath {
    /// `<L>/<N>[.p/<W>]` or `entries/<N>[.p/<W>]`, with `N` in 3-digit elements, all but the last after an `x`.
    fn parse(path: &str) -> Option<Self> {
        let (head, rest) = path.split_once('/')?;
        let level = match head {
            "entries" => None,
            l => {
                let level: u32 = decimal(l)?;
                // Tree levels 8L below 48, where node keys stop.
                Some((level <= 5).then_some(level)?)
            }
        };
        let (index_part, width) = match rest.split_once(".p/") {
            Some((index, w)) => {
                let w: u64 = decimal(w)?;
                ((1..store::TILE_WIDTH).contains(&w)).then_some((index, w))?
            }
            None => (rest, store::TILE_WIDTH),
        };
        let elements: Vec<&str> = index_part.split('/').collect();
        let (last, leading) = elements.split_last()?;
        let mut index: u64 = 0;
        for (i, element) in leading
            .iter()
            .map(|e| e.strip_prefix('x'))
            .chain([Some(*last)])
            .enumerate()
        {
            let element = element?;
            if element.len() != 3 || !element.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            // No leading zero elements: 1234067 is x001/x234/067, never x000/x001/….
            if i == 0 && element == "000" && !leading.is_empty() {
                return None;
            }
            index = index.checked_mul(1000)?.checked_add(element.parse::<u64>().ok()?)?;
        }
        Some(Self { level, index, width })
    }
}

/// A decimal number without leading zeros.
fn decimal<T: std::str::FromStr>(s: &str) -> Option<T> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0')) {
        return None;
    }
    s.parse().ok()
}

/// An inclusion proof that can be checked offline (`cairn prove`): the event, the bytes its chain hash covers,
/// its audit path, and the signed checkpoint with the key that signed it.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct EventProof {
    pub format: String,
    pub position: i64,
    pub leaf_index: u64,
    pub tree_size: u64,
    /// The event's chain hash (hex): the leaf's data.
    pub event_hash: String,
    /// The chain hash before it (hex), which its own covers.
    pub previous_hash: String,
    /// The event's canonical bytes (base64), so that its hash can be recomputed from what it says; absent for an
    /// event that holds a token's hash, which no answer shows.
    pub canonical: Option<String>,
    /// The event as the API shows it.
    pub event: serde_json::Value,
    /// The audit path (base64), from the leaf up.
    pub hashes: Vec<String>,
    /// The signed checkpoint of the tree of `tree_size` leaves.
    pub checkpoint: String,
    /// The key that signed it (check it against the one you trust: `--key`).
    pub key: String,
}

/// The format an [`EventProof`] names.
pub const EVENT_PROOF_FORMAT: &str = "cairn-inclusion-proof/1";

/// The offline proof of the event at `position` in the tree of `signed`.
pub fn prove_event(
    conn: &Connection,
    verifier: &Verifier,
    signed: &Signed,
    position: i64,
) -> Result<EventProof, String> {
    let size = signed.checkpoint.size;
    if position < 1 || position as u64 > size {
        return Err(format!(
            "position {position} is not in the checkpoint's tree of {size} events"
        ));
    }
    let event = reader::event_at(conn, position)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no event at position {position}"))?;
    let previous = match position {
        1 => cairn_events::chain::GENESIS,
        p => {
            reader::event_at(conn, p - 1)
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("no event at position {}", p - 1))?
                .hash
        }
    };
    let hashes =
        merkle::inclusion_proof(&mut Stored::new(conn), position as u64 - 1, size).map_err(|e| e.to_string())?;
    let secret = serde_json::from_str::<serde_json::Value>(&event.data)
        .ok()
        .and_then(|d| {
            d.as_object()
                .map(|o| cairn_events::SECRET_FIELDS.iter().any(|f| o.contains_key(*f)))
        })
        .unwrap_or(true);
    let canonical = (!secret).then(|| {
        BASE64.encode(cairn_events::chain::canonical_bytes(
            &cairn_events::chain::EventFields::from(&event),
        ))
    });
    Ok(EventProof {
        format: EVENT_PROOF_FORMAT.into(),
        position,
        leaf_index: position as u64 - 1,
        tree_size: size,
        event_hash: hex::encode(event.hash),
        previous_hash: hex::encode(previous),
        canonical,
        event: serde_json::to_value(event.view()).map_err(|e| e.to_string())?,
        hashes: encode(&hashes),
        checkpoint: signed.note.clone(),
        key: verifier.encode(),
    })
}

/// What checking an [`EventProof`] showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProofChecked {
    pub position: i64,
    pub tree_size: u64,
    /// Whether the event's content was checked against its hash (not for one that holds a token's hash).
    pub content_checked: bool,
}

/// Checks an offline proof with `verifier`: the checkpoint's signature, the event's hash from its canonical bytes
/// (when present), and the audit path from its leaf to the checkpoint's root.
pub fn check_event_proof(proof: &EventProof, verifier: &Verifier) -> Result<ProofChecked, String> {
    if proof.format != EVENT_PROOF_FORMAT {
        return Err(format!("not a proof of this format: {:?}", proof.format));
    }
    let signed = Signed::open(verifier, &proof.checkpoint).map_err(|e| format!("the checkpoint: {e}"))?;
    let checkpoint = &signed.checkpoint;
    if checkpoint.size != proof.tree_size {
        return Err(format!(
            "the proof is for a tree of {}, its checkpoint for one of {}",
            proof.tree_size, checkpoint.size
        ));
    }
    let hash32 = |hex_text: &str, what: &str| -> Result<Hash, String> {
        hex::decode(hex_text)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| format!("{what} is not 64 hex digits"))
    };
    let event_hash = hash32(&proof.event_hash, "event_hash")?;
    let content_checked = match &proof.canonical {
        None => false,
        Some(canonical) => {
            let bytes = BASE64
                .decode(canonical)
                .map_err(|_| "canonical is not base64".to_owned())?;
            let at = bytes
                .get(8..16)
                .map(|b| i64::from_be_bytes(b.try_into().expect("8 bytes")));
            if !bytes.starts_with(b"cairn/v1") || at != Some(proof.position) {
                return Err(format!(
                    "the canonical bytes are not those of an event at position {}",
                    proof.position
                ));
            }
            let previous = hash32(&proof.previous_hash, "previous_hash")?;
            if cairn_events::chain::chain_hash(&previous, &bytes) != event_hash {
                return Err(format!(
                    "the event's bytes do not hash to its event_hash: the event at position {} was altered",
                    proof.position
                ));
            }
            true
        }
    };
    let hashes: Vec<Hash> = proof
        .hashes
        .iter()
        .map(|h| BASE64.decode(h).ok().and_then(|b| b.try_into().ok()))
        .collect::<Option<_>>()
        .ok_or_else(|| "a hash of the path is not the base64 of 32 bytes".to_owned())?;
    if proof.position < 1 || proof.leaf_index != proof.position as u64 - 1 {
        return Err("the leaf index is not the position less one".into());
    }
    merkle::verify_inclusion(
        proof.leaf_index,
        checkpoint.size,
        &merkle::leaf_hash(&event_hash),
        &hashes,
        &checkpoint.root,
    )
    .map_err(|e| format!("position {} is not in the checkpoint's tree: {e}", proof.position))?;
    Ok(ProofChecked {
        position: proof.position,
        tree_size: checkpoint.size,
        content_checked,
    })
}

/// Checks that the log as `conn` holds it is consistent with a checkpoint: the chain verifies, the log holds at
/// least its events, and the root of its first `size` events, computed from the log itself (not from the stored
/// tree), is the checkpoint's. The error names the first difference found.
pub fn check_log(conn: &Connection, checkpoint: &checkpoint::Checkpoint) -> Result<u64, String> {
    let report = reader::verify_chain(conn, |_| {}).map_err(|e| e.to_string())?;
    if let Some(bad) = report.first_bad {
        return Err(format!("the chain is broken at position {}: {bad}", bad.position()));
    }
    let head = report.head.max(0) as u64;
    if head < checkpoint.size {
        return Err(format!(
            "the log holds {head} events, the checkpoint {}: the log was cut short after position {head}",
            checkpoint.size
        ));
    }
    let mut frontier = merkle::Frontier::default();
    let mut stmt = conn
        .prepare("SELECT hash FROM events WHERE position <= ?1 ORDER BY position")
        .map_err(|e| e.to_string())?;
    let mut rows = stmt.query([checkpoint.size as i64]).map_err(|e| e.to_string())?;
    while let Some(row) = rows.next().map_err(|e| e.to_string())? {
        let hex_text: String = row.get(0).map_err(|e| e.to_string())?;
        let hash = reader::decode_hash(hex_text.as_bytes()).ok_or("a stored hash is not hex")?;
        frontier
            .push(&hash, |_, _| Ok::<(), ()>(()))
            .map_err(|()| "the tree could not be computed".to_owned())?;
    }
    if frontier.root() != checkpoint.root {
        return Err(format!(
            "the log's first {} events give the root {}, the checkpoint says {}: the log was rewritten at or before position {} \
             (its chain verifies, so the whole history after the change was recomputed)",
            checkpoint.size,
            BASE64.encode(frontier.root()),
            BASE64.encode(checkpoint.root),
            checkpoint.size
        ));
    }
    Ok(head)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tile_paths_parse_as_the_specification_writes_them() {
        let t = |level, index, width| Some(TilePath { level, index, width });
        assert_eq!(TilePath::parse("0/000"), t(Some(0), 0, 256));
        assert_eq!(TilePath::parse("0/x001/x234/067"), t(Some(0), 1_234_067, 256));
        assert_eq!(TilePath::parse("1/017.p/5"), t(Some(1), 17, 5));
        assert_eq!(TilePath::parse("entries/x001/000.p/255"), t(None, 1000, 255));
        for bad in [
            "0/0",
            "0/1234",
            "00/000",
            "0/x000/001",
            "0/001/002",
            "0/000.p/0",
            "0/000.p/256",
            "0/000.p/07",
            "6/000",
            "0/",
            "entries",
            "x/000",
            "0/000/",
            "0/-01",
        ] {
            assert_eq!(TilePath::parse(bad), None, "{bad}");
        }
    }
}
