//! Signed checkpoints of the log: a c2sp.org/tlog-checkpoint body (`<origin>\n<size>\n<base64 root>\n`) in a
//! c2sp.org/signed-note, signed with Ed25519 by the log's key.
//!
//! - [`LogKey`]: the signing key, generated at first start into `<data>/log.key` (mode 0600) in the private-key
//!   form of Go's `sumdb/note` (`PRIVATE+KEY+<name>+<hex key ID>+<base64(0x01 ‖ seed)>`); its name is the
//!   default origin, `cairn/<16 hex digits>`, made once per data directory;
//! - [`Verifier`]: a public key in the verifier form (`<name>+<hex key ID>+<base64(0x01 ‖ public key)>`), which
//!   opens a signed note;
//! - [`Checkpoint`]: the body, formatted and parsed;
//! - [`kept`] and [`keep`]: the latest checkpoint signed, kept in `<data>/checkpoint` so that no later one can
//!   contradict it, even across restarts.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use cairn_events::merkle::Hash;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

/// The signature type of Ed25519 in a signed note.
const ED25519: u8 = 0x01;

/// The signature line's mark: an em dash and a space.
const SIGNATURE_MARK: &str = "\u{2014} ";

/// The largest note this opens (a checkpoint is some 100 bytes; a few signatures more).
const MAX_NOTE: usize = 64 * 1024;

/// Why a key, a note or a checkpoint is refused.
#[derive(Debug, thiserror::Error)]
pub enum NoteError {
    #[error("malformed key: {0}")]
    Key(String),
    #[error("malformed note: {0}")]
    Malformed(String),
    #[error("the note carries no signature by {0}")]
    Unsigned(String),
    #[error("the signature by {0} does not verify: the note was altered or signed by another key")]
    BadSignature(String),
    #[error("malformed checkpoint: {0}")]
    Checkpoint(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Whether `name` can name a key: non-empty, no Unicode space, no `+` (c2sp.org/signed-note).
pub fn is_key_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c == '+' || c.is_control())
}

fn check_name(name: &str) -> Result<(), NoteError> {
    if !is_key_name(name) {
        return Err(NoteError::Key(format!(
            "a key name is non-empty, without spaces or '+', not {name:?}"
        )));
    }
    Ok(())
}

/// `SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)[:4]`, big-endian.
pub fn key_id(name: &str, public: &[u8; 32]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', ED25519]);
    h.update(public);
    let digest = h.finalize();
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// The log's signing key and its name.
pub struct LogKey {
    name: String,
    signing: SigningKey,
}

impl std::fmt::Debug for LogKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogKey")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl LogKey {
    /// A key from its 32-byte seed.
    pub fn from_seed(name: &str, seed: [u8; 32]) -> Result<Self, NoteError> {
        check_name(name)?;
        Ok(Self {
            name: name.to_owned(),
            signing: SigningKey::from_bytes(&seed),
        })
    }

    /// Parses `PRIVATE+KEY+<name>+<hex key ID>+<base64(0x01 ‖ seed)>`.
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        let text = text.trim_end_matches(['\n', '\r']);
        let rest = text
            .strip_prefix("PRIVATE+KEY+")
            .ok_or_else(|| NoteError::Key("a private key begins with PRIVATE+KEY+".into()))?;
        let (name, id, material) = split_key(rest)?;
        let bytes = BASE64
            .decode(material)
            .map_err(|e| NoteError::Key(format!("its key material is not base64: {e}")))?;
        let seed: [u8; 32] = match bytes.split_first() {
            Some((&ED25519, seed)) => seed
                .try_into()
                .map_err(|_| NoteError::Key("an Ed25519 seed is 32 bytes".into()))?,
            _ => return Err(NoteError::Key("not an Ed25519 key (type 0x01)".into())),
        };
        let key = Self::from_seed(name, seed)?;
        if key.verifier().id != id {
            return Err(NoteError::Key(format!(
                "its key ID {id:08x} is not the one its name and key give ({:08x})",
                key.verifier().id
            )));
        }
        Ok(key)
    }

    /// The private-key text, as `log.key` holds it.
    pub fn encode(&self) -> String {
        let mut material = vec![ED25519];
        material.extend_from_slice(&self.signing.to_bytes());
        format!(
            "PRIVATE+KEY+{}+{:08x}+{}",
            self.name,
            self.verifier().id,
            BASE64.encode(material)
        )
    }

    /// Reads the key at `path`, or generates one there (mode 0600) with a fresh name if there is none.
    pub fn load_or_create(path: &Path) -> Result<Self, NoteError> {
        let io = |source| NoteError::Io {
            path: path.to_owned(),
            source,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => return Self::parse(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
        let mut random = [0u8; 40];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut random))
            .map_err(io)?;
        let seed: [u8; 32] = random[..32].try_into().expect("32 of 40 bytes");
        let key = Self::from_seed(&format!("cairn/{}", hex::encode(&random[32..])), seed)?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        match options.open(path) {
            Ok(mut file) => {
                file.write_all(format!("{}\n", key.encode()).as_bytes())
                    .and_then(|()| file.sync_all())
                    .map_err(io)?;
                Ok(key)
            }
            // Another process made it first: use that one.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Self::parse(&std::fs::read_to_string(path).map_err(io)?)
            }
            Err(e) => Err(io(e)),
        }
    }

    /// The same key under another name (`serve --origin`): the key ID follows the name.
    pub fn named(self, name: &str) -> Result<Self, NoteError> {
        check_name(name)?;
        Ok(Self {
            name: name.to_owned(),
            signing: self.signing,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn verifier(&self) -> Verifier {
        let public = self.signing.verifying_key();
        Verifier {
            id: key_id(&self.name, public.as_bytes()),
            name: self.name.clone(),
            key: public,
        }
    }

    /// Signs `text` (ending in a newline) into a signed note.
    pub fn sign(&self, text: &str) -> String {
        debug_assert!(text.ends_with('\n'));
        let signature = self.signing.sign(text.as_bytes());
        let mut blob = self.verifier().id.to_be_bytes().to_vec();
        blob.extend_from_slice(&signature.to_bytes());
        format!("{text}\n{SIGNATURE_MARK}{} {}\n", self.name, BASE64.encode(blob))
    }
}

/// `<name>+<hex key ID>+<material>`, the name checked and the ID parsed.
fn split_key(text: &str) -> Result<(&str, u32, &str), NoteError> {
    let mut parts = text.splitn(3, '+');
    let (Some(name), Some(id), Some(material)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(NoteError::Key("a key is <name>+<key ID>+<key>".into()));
    };
    check_name(name)?;
    if id.len() != 8 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(NoteError::Key(format!("a key ID is 8 hex digits, not {id:?}")));
    }
    let id = u32::from_str_radix(id, 16).map_err(|e| NoteError::Key(e.to_string()))?;
    Ok((name, id, material))
}

/// A public key that checks signed notes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verifier {
    name: String,
    id: u32,
    key: VerifyingKey,
}

impl Verifier {
    /// Parses `<name>+<hex key ID>+<base64(0x01 ‖ public key)>`.
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        let (name, id, material) = split_key(text.trim())?;
        let bytes = BASE64
            .decode(material)
            .map_err(|e| NoteError::Key(format!("its key material is not base64: {e}")))?;
        let public: [u8; 32] = match bytes.split_first() {
            Some((&ED25519, public)) => public
                .try_into()
                .map_err(|_| NoteError::Key("an Ed25519 public key is 32 bytes".into()))?,
            _ => return Err(NoteError::Key("not an Ed25519 key (type 0x01)".into())),
        };
        if key_id(name, &public) != id {
            return Err(NoteError::Key(format!(
                "its key ID {id:08x} is not the one its name and key give"
            )));
        }
        let key = VerifyingKey::from_bytes(&public).map_err(|e| NoteError::Key(e.to_string()))?;
        Ok(Self {
            name: name.to_owned(),
            id,
            key,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The verifier-key text (`GET /api/audit/key`).
    pub fn encode(&self) -> String {
        let mut material = vec![ED25519];
        material.extend_from_slice(self.key.as_bytes());
        format!("{}+{:08x}+{}", self.name, self.id, BASE64.encode(material))
    }

    /// Checks a signed note and returns its text: refused unless a signature by this key (its name and ID)
    /// verifies; other signatures are ignored.
    pub fn open<'n>(&self, note: &'n str) -> Result<&'n str, NoteError> {
        let malformed = |m: &str| NoteError::Malformed(m.to_owned());
        if note.len() > MAX_NOTE {
            return Err(malformed("it is longer than 64 KiB"));
        }
        if note.chars().any(|c| c.is_control() && c != '\n') {
            return Err(malformed("it holds a control character"));
        }
        if !note.ends_with('\n') {
            return Err(malformed("it does not end in a newline"));
        }
        // The text ends at the last blank line; every line after it is a signature.
        let split = note
            .rfind("\n\n")
            .ok_or_else(|| malformed("no blank line before the signatures"))?;
        let (text, signatures) = (&note[..split + 1], &note[split + 2..]);
        let mut found = false;
        for line in signatures.lines() {
            let rest = line
                .strip_prefix(SIGNATURE_MARK)
                .ok_or_else(|| malformed("a signature line begins with an em dash and a space"))?;
            let (name, blob) = rest
                .split_once(' ')
                .ok_or_else(|| malformed("a signature line is the key name, a space, the signature"))?;
            let blob = BASE64
                .decode(blob)
                .map_err(|_| malformed("a signature is not base64"))?;
            if blob.len() < 4 {
                return Err(malformed("a signature is shorter than its key ID"));
            }
            let id = u32::from_be_bytes([blob[0], blob[1], blob[2], blob[3]]);
            if name != self.name || id != self.id {
                continue;
            }
            let signature = ed25519_dalek::Signature::from_slice(&blob[4..])
                .map_err(|_| NoteError::BadSignature(self.name.clone()))?;
            self.key
                .verify_strict(text.as_bytes(), &signature)
                .map_err(|_| NoteError::BadSignature(self.name.clone()))?;
            found = true;
        }
        match found {
            true => Ok(text),
            false => Err(NoteError::Unsigned(self.name.clone())),
        }
    }
}

/// A checkpoint's body: the log's origin, its size, and the root of its tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

impl Checkpoint {
    /// `<origin>\n<size>\n<base64 root>\n`.
    pub fn body(&self) -> String {
        format!("{}\n{}\n{}\n", self.origin, self.size, BASE64.encode(self.root))
    }

    /// Parses a body (extension lines after the root are allowed and ignored).
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        let bad = |m: String| NoteError::Checkpoint(m);
        let mut lines = text.split('\n');
        let origin = lines
            .next()
            .filter(|o| !o.is_empty())
            .ok_or_else(|| bad("no origin line".into()))?;
        let size = lines.next().ok_or_else(|| bad("no size line".into()))?;
        if size.is_empty() || !size.bytes().all(|b| b.is_ascii_digit()) || (size.len() > 1 && size.starts_with('0')) {
            return Err(bad(format!(
                "the size is a decimal number without leading zeros, not {size:?}"
            )));
        }
        let size: u64 = size.parse().map_err(|_| bad(format!("the size {size} is too large")))?;
        let root = lines.next().ok_or_else(|| bad("no root line".into()))?;
        let root: Hash = BASE64
            .decode(root)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| bad("the root is not the base64 of 32 bytes".into()))?;
        if !text.ends_with('\n') {
            return Err(bad("it does not end in a newline".into()));
        }
        Ok(Self {
            origin: origin.to_owned(),
            size,
            root,
        })
    }
}

/// A checkpoint and the signed note that carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    pub checkpoint: Checkpoint,
    pub note: String,
}

impl Signed {
    pub fn new(key: &LogKey, size: u64, root: Hash) -> Self {
        let checkpoint = Checkpoint {
            origin: key.name().to_owned(),
            size,
            root,
        };
        let note = key.sign(&checkpoint.body());
        Self { checkpoint, note }
    }

    /// Opens a signed checkpoint with `verifier`: its signature, then its body, whose origin must be the key's
    /// name.
    pub fn open(verifier: &Verifier, note: &str) -> Result<Self, NoteError> {
        let checkpoint = Checkpoint::parse(verifier.open(note)?)?;
        if checkpoint.origin != verifier.name() {
            return Err(NoteError::Checkpoint(format!(
                "its origin {:?} is not the key's name {:?}",
                checkpoint.origin,
                verifier.name()
            )));
        }
        Ok(Self {
            checkpoint,
            note: note.to_owned(),
        })
    }
}

/// Where the log's key is.
pub fn key_path(data: &Path) -> PathBuf {
    data.join("log.key")
}

fn kept_path(data: &Path) -> PathBuf {
    data.join("checkpoint")
}

/// The latest checkpoint kept in the data directory (its note), if any.
pub fn kept(data: &Path) -> Result<Option<String>, NoteError> {
    match std::fs::read_to_string(kept_path(data)) {
        Ok(note) => Ok(Some(note)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(NoteError::Io {
            path: kept_path(data),
            source,
        }),
    }
}

/// Keeps `signed` as the latest checkpoint unless a larger one is kept already (another process may sign too:
/// `cairn checkpoint` beside a server); under a lock, written whole and renamed into place.
pub fn keep(data: &Path, signed: &Signed, verifier: &Verifier) -> Result<(), NoteError> {
    let io = |path: PathBuf| move |source| NoteError::Io { path, source };
    let lock_path = data.join("checkpoint.lock");
    let mut options = std::fs::OpenOptions::new();
    options.create(true).truncate(false).write(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let lock = options.open(&lock_path).map_err(io(lock_path.clone()))?;
    lock.lock().map_err(io(lock_path))?;
    if let Some(note) = kept(data)? {
        if let Ok(current) = Signed::open(verifier, &note) {
            if current.checkpoint.size >= signed.checkpoint.size {
                return Ok(());
            }
        }
    }
    let path = kept_path(data);
    let temporary = data.join("checkpoint.partial");
    options.truncate(true);
    options
        .open(&temporary)
        .and_then(|mut f| f.write_all(signed.note.as_bytes()).and_then(|()| f.sync_all()))
        .map_err(io(temporary.clone()))?;
    std::fs::rename(&temporary, &path).map_err(io(path))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of Go's golang.org/x/mod/sumdb/note, a second implementation of signed notes.
    const GO_KEY: &str = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const GO_VERIFIER: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const GO_TEXT: &str =
        "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
    const GO_SIGNATURE: &str =
        "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

    #[test]
    fn the_go_reference_note_is_signed_and_opened_byte_for_byte() {
        let key = LogKey::parse(GO_KEY).unwrap();
        assert_eq!(key.encode(), GO_KEY);
        assert_eq!(key.verifier().encode(), GO_VERIFIER);
        let note = key.sign(GO_TEXT);
        assert_eq!(note, format!("{GO_TEXT}\n{GO_SIGNATURE}"));
        let verifier = Verifier::parse(GO_VERIFIER).unwrap();
        assert_eq!(verifier.open(&note).unwrap(), GO_TEXT);
    }

    #[test]
    fn an_altered_or_foreign_note_is_refused() {
        let key = LogKey::parse(GO_KEY).unwrap();
        let verifier = key.verifier();
        let note = key.sign(GO_TEXT);
        let altered = note.replacen("answer", "answar", 1);
        assert!(matches!(verifier.open(&altered), Err(NoteError::BadSignature(_))));
        let other = LogKey::from_seed("PeterNeumann", [7; 32]).unwrap();
        assert!(matches!(other.verifier().open(&note), Err(NoteError::Unsigned(_))));
        assert!(matches!(verifier.open(GO_TEXT), Err(NoteError::Malformed(_))));
        assert!(matches!(
            verifier.open(&note.replace('\n', "\r\n")),
            Err(NoteError::Malformed(_))
        ));
        assert!(Verifier::parse("PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW").is_err());
        assert!(Verifier::parse("Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW").is_err());
        assert!(LogKey::parse("PRIVATE+KEY+x+00000000+AAAA").is_err());
    }

    #[test]
    fn a_checkpoint_round_trips_and_refuses_what_is_not_one() {
        let key = LogKey::from_seed("cairn/test", [1; 32]).unwrap();
        let signed = Signed::new(&key, 42, [9; 32]);
        assert!(signed.note.starts_with("cairn/test\n42\nCQkJ"));
        let opened = Signed::open(&key.verifier(), &signed.note).unwrap();
        assert_eq!(opened, signed);
        for bad in [
            "cairn/test\n042\nCQ==\n",
            "cairn/test\n\n",
            "\n1\nAAAA\n",
            "cairn/test\n1\nAAAA\n",
        ] {
            assert!(Checkpoint::parse(bad).is_err(), "{bad:?}");
        }
        let renamed = LogKey::from_seed("cairn/other", [1; 32]).unwrap();
        let foreign = renamed.sign(
            &Checkpoint {
                origin: "cairn/test".into(),
                size: 1,
                root: [0; 32],
            }
            .body(),
        );
        assert!(Signed::open(&renamed.verifier(), &foreign).is_err());
    }

    #[test]
    fn the_key_is_made_once_private_and_the_kept_checkpoint_only_grows() {
        let dir = tempfile::tempdir().unwrap();
        let path = key_path(dir.path());
        let key = LogKey::load_or_create(&path).unwrap();
        assert!(key.name().starts_with("cairn/"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let again = LogKey::load_or_create(&path).unwrap();
        assert_eq!(again.verifier(), key.verifier());
        let verifier = key.verifier();
        keep(dir.path(), &Signed::new(&key, 5, [5; 32]), &verifier).unwrap();
        keep(dir.path(), &Signed::new(&key, 3, [3; 32]), &verifier).unwrap();
        let note = kept(dir.path()).unwrap().unwrap();
        assert_eq!(Signed::open(&verifier, &note).unwrap().checkpoint.size, 5);
    }
}
