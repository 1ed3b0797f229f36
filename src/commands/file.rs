//! File commands: store (from a blob already streamed and checked), verify, record a download, delete.

use cairn_events::catalogue::{FileDeleted, FileDownloaded, FileStored, FileVerified, TransferCompleted};
use cairn_events::ExpectedVersion;
use uuid::Uuid;

use super::run::open_run;
use super::{live_client, validate, ClientState, Command, Decision, State};
use crate::blobs::{BlobDigest, PendingBlob};
use crate::error::CommandError;

/// Records an uploaded file whose content is in `blob`. With `transfer`, also completes that upload.
#[derive(Debug)]
pub struct StoreFile {
    pub file_id: Uuid,
    pub client_id: Uuid,
    pub filename: String,
    /// The path on the client; defaults to the filename.
    pub original_path: Option<String>,
    /// Guessed from the filename's extension when absent.
    pub mime_type: Option<String>,
    pub blob: PendingBlob,
    /// The upload's transfer and how long it took, to complete it in the same command.
    pub transfer: Option<(Uuid, u64)>,
    /// Its modification time and mode on the client, and the backup run it belongs to.
    pub meta: FileMeta,
}

/// What a backup agent says of a file besides its content: its modification time (RFC 3339) and `st_mode` on
/// the client, and the run that found it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileMeta {
    pub mtime: Option<String>,
    pub mode: Option<u32>,
    pub run_id: Option<Uuid>,
}

/// The file types a mode may carry: none (permission bits only), a regular file, a symbolic link.
const S_IFMT: u32 = 0o170000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;

impl FileMeta {
    /// Checks the fields (and that the run is this client's and still running); the mtime comes back in one
    /// form, UTC to the nanosecond.
    fn checked(self, state: &dyn State, client_id: Uuid) -> Result<Self, CommandError> {
        let mtime = self
            .mtime
            .map(|m| {
                chrono::DateTime::parse_from_rfc3339(m.trim())
                    .map(|t| {
                        t.with_timezone(&chrono::Utc)
                            .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
                    })
                    .map_err(|_| CommandError::invalid("mtime", format!("{m:?} is not an RFC 3339 time")))
            })
            .transpose()?;
        if let Some(mode) = self.mode {
            let kind = mode & S_IFMT;
            if mode & !(S_IFMT | 0o7777) != 0 || !matches!(kind, 0 | S_IFREG | S_IFLNK) {
                return Err(CommandError::invalid(
                    "mode",
                    format!("{mode:o} (octal) is not the mode of a regular file or a symbolic link"),
                ));
            }
        }
        if let Some(run) = self.run_id {
            open_run(state, run, client_id)?;
        }
        Ok(Self { mtime, ..self })
    }

    /// A symbolic link's content is its target: 1 to 4,096 bytes.
    fn check_size(&self, size: u64) -> Result<(), CommandError> {
        if self.mode.is_some_and(|m| m & S_IFMT == S_IFLNK) && !(1..=4096).contains(&size) {
            return Err(CommandError::invalid(
                "mode",
                format!("a symbolic link's target is 1 to 4096 bytes, not {size}"),
            ));
        }
        Ok(())
    }
}

/// The name, path and MIME type of a file about to be stored, checked.
fn names(
    filename: &str,
    original_path: Option<&str>,
    mime_type: Option<&str>,
) -> Result<(String, String, String), CommandError> {
    let filename = validate::filename(filename)?;
    let original_path = match original_path {
        None | Some("") => filename.clone(),
        Some(p) => validate::original_path(p)?,
    };
    let mime_type = match mime_type.map(str::trim) {
        None | Some("") => guess_mime(&filename).to_owned(),
        Some(m) => validate_mime(m)?,
    };
    Ok((filename, original_path, mime_type))
}

/// What storing a file gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub file_id: Uuid,
    pub sha256: String,
    pub crc32: u32,
    pub size: u64,
}

impl Command for StoreFile {
    type Output = Stored;

    fn decide(self, state: &dyn State) -> Result<Decision<Stored>, CommandError> {
        let client = live_client(state, self.client_id)?;
        let (filename, original_path, mime_type) =
            names(&self.filename, self.original_path.as_deref(), self.mime_type.as_deref())?;
        let meta = self.meta.checked(state, self.client_id)?;
        meta.check_size(self.blob.size)?;
        if let Some((transfer_id, _)) = self.transfer {
            super::transfer::in_progress(state, transfer_id)?;
        }
        let stored = Stored {
            file_id: self.file_id,
            sha256: self.blob.sha256.clone(),
            crc32: self.blob.crc32,
            size: self.blob.size,
        };
        let mut decision = Decision::new(stored).event(
            FileStored {
                file_id: self.file_id,
                client_id: self.client_id,
                client_name: client.name,
                filename,
                original_path,
                size: self.blob.size,
                sha256: self.blob.sha256.clone(),
                crc32: self.blob.crc32,
                mime_type,
                transfer_id: self.transfer.map(|(t, _)| t),
                mtime: meta.mtime,
                mode: meta.mode,
                run_id: meta.run_id,
            },
            ExpectedVersion::NoStream,
        );
        if let Some((transfer_id, duration_ms)) = self.transfer {
            decision = decision.event(
                TransferCompleted {
                    transfer_id,
                    file_id: Some(self.file_id),
                    bytes: self.blob.size,
                    duration_ms,
                },
                ExpectedVersion::StreamExists,
            );
        }
        decision.place_blob = Some(self.blob);
        Ok(decision)
    }
}

/// Records a file whose content this client stored before, without its bytes (`files/known`): the content must
/// be one this client stored (never only another client's: a hash alone must not claim someone else's file),
/// of the same size, and still kept (held by a file, or retained after a deletion).
#[derive(Debug, Clone)]
pub struct StoreKnown {
    pub file_id: Uuid,
    pub client_id: Uuid,
    pub filename: String,
    pub original_path: Option<String>,
    pub mime_type: Option<String>,
    pub sha256: String,
    pub size: u64,
    pub meta: FileMeta,
}

impl Command for StoreKnown {
    type Output = Stored;

    fn decide(self, state: &dyn State) -> Result<Decision<Stored>, CommandError> {
        let client: ClientState = live_client(state, self.client_id)?;
        let (filename, original_path, mime_type) =
            names(&self.filename, self.original_path.as_deref(), self.mime_type.as_deref())?;
        let sha256 = self.sha256.trim().to_ascii_lowercase();
        if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(CommandError::invalid("sha256", "must be 64 hex digits"));
        }
        let meta = self.meta.checked(state, self.client_id)?;
        meta.check_size(self.size)?;
        let unknown = || CommandError::ContentUnknown(sha256.clone());
        let (size, crc32) = state
            .client_content(self.client_id, &sha256)?
            .filter(|(size, _)| *size == self.size)
            .ok_or_else(unknown)?;
        if state.holders(&sha256)? == 0 && state.retained(&sha256)?.is_none() {
            return Err(unknown());
        }
        let stored = Stored {
            file_id: self.file_id,
            sha256: sha256.clone(),
            crc32,
            size,
        };
        Ok(Decision::new(stored).event(
            FileStored {
                file_id: self.file_id,
                client_id: self.client_id,
                client_name: client.name,
                filename,
                original_path,
                size,
                sha256,
                crc32,
                mime_type,
                transfer_id: None,
                mtime: meta.mtime,
                mode: meta.mode,
                run_id: meta.run_id,
            },
            ExpectedVersion::NoStream,
        ))
    }
}

pub(crate) fn validate_mime(m: &str) -> Result<String, CommandError> {
    let ok = m.len() <= 127
        && m.split_once('/').is_some_and(|(t, s)| {
            !t.is_empty() && !s.is_empty() && m.chars().all(|c| c.is_ascii_alphanumeric() || "/.+-_;= ".contains(c))
        });
    if ok {
        Ok(m.to_owned())
    } else {
        Err(CommandError::invalid("mime_type", format!("{m:?} is not a MIME type")))
    }
}

/// A MIME type from the filename's extension; `application/octet-stream` when unknown.
///
/// ```
/// assert_eq!(cairn::commands::file::guess_mime("Backup.TAR"), "application/x-tar");
/// assert_eq!(cairn::commands::file::guess_mime("README"), "application/octet-stream");
/// ```
pub fn guess_mime(filename: &str) -> &'static str {
    mime_guess::from_path(filename)
        .first_raw()
        .unwrap_or("application/octet-stream")
}

fn live_file(state: &dyn State, id: Uuid) -> Result<super::FileState, CommandError> {
    state.file(id)?.ok_or(CommandError::FileNotFound(id))
}

/// Records the outcome of re-reading a file's blob (done by the caller, off the writer): `ok` when both
/// checksums match what was stored.
#[derive(Debug, Clone)]
pub struct VerifyFile {
    pub file_id: Uuid,
    /// What re-reading the blob gave, or why it could not be read.
    pub found: Result<BlobDigest, String>,
}

impl Command for VerifyFile {
    type Output = FileVerified;

    fn decide(self, state: &dyn State) -> Result<Decision<FileVerified>, CommandError> {
        let file = live_file(state, self.file_id)?;
        let verified = match self.found {
            Ok(d) => {
                let ok = d.sha256 == file.sha256 && d.crc32 == file.crc32 && d.size == file.size;
                FileVerified {
                    file_id: self.file_id,
                    ok,
                    expected_sha256: file.sha256,
                    actual_sha256: Some(d.sha256),
                    expected_crc32: file.crc32,
                    actual_crc32: Some(d.crc32),
                    detail: (!ok).then(|| format!("content does not match what was stored ({} bytes read)", d.size)),
                }
            }
            Err(detail) => FileVerified {
                file_id: self.file_id,
                ok: false,
                expected_sha256: file.sha256,
                actual_sha256: None,
                expected_crc32: file.crc32,
                actual_crc32: None,
                detail: Some(detail),
            },
        };
        Ok(Decision::new(verified.clone()).event(verified, ExpectedVersion::Exact(file.version)))
    }
}

/// Records that someone downloaded a file.
#[derive(Debug, Clone)]
pub struct RecordDownload {
    pub file_id: Uuid,
    /// The actor who downloaded it.
    pub by: String,
    pub bytes: u64,
}

impl Command for RecordDownload {
    type Output = ();

    fn decide(self, state: &dyn State) -> Result<Decision<()>, CommandError> {
        live_file(state, self.file_id)?;
        Ok(Decision::new(()).event(
            FileDownloaded {
                file_id: self.file_id,
                by: self.by,
                bytes: self.bytes,
            },
            ExpectedVersion::StreamExists,
        ))
    }
}

/// Deletes a file; its blob goes after the commit when no other file holds the same content.
#[derive(Debug, Clone)]
pub struct DeleteFile {
    pub file_id: Uuid,
    pub expected_version: Option<i64>,
    /// Keep the content for the retention period if no other file holds it (see `release_deleted`).
    pub retain: bool,
    /// The backup run that found the file gone.
    pub run_id: Option<Uuid>,
    /// The client deleting its own file with its token: the file must be its own, and its content is kept for
    /// the retention whatever `retain` says (a compromised machine cannot erase its own backups).
    pub owner: Option<Uuid>,
}

impl Command for DeleteFile {
    type Output = ();

    fn decide(self, state: &dyn State) -> Result<Decision<()>, CommandError> {
        let file = live_file(state, self.file_id)?;
        if self.owner.is_some_and(|o| o != file.client_id) {
            return Err(CommandError::FileNotFound(self.file_id));
        }
        if let Some(run) = self.run_id {
            open_run(state, run, file.client_id)?;
        }
        let expected = ExpectedVersion::Exact(self.expected_version.unwrap_or(file.version));
        let decision = Decision::new(()).event(
            FileDeleted {
                file_id: self.file_id,
                client_id: file.client_id,
                sha256: file.sha256.clone(),
                size: file.size,
                reason: if self.owner.is_some() { "client" } else { "admin" }.into(),
                run_id: self.run_id,
            },
            expected,
        );
        let retain = self.retain || self.owner.is_some();
        super::release_deleted(state, decision, &[(file.sha256, file.size)], retain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blobs::{BlobStore, Declared};
    use crate::commands::testing::{given, registered, stored};
    use cairn_events::catalogue::{ClientDeleted, Direction, TransferStarted};

    fn blob(store: &BlobStore, content: &[u8]) -> PendingBlob {
        store.write_from(content, 1 << 20, &Declared::default()).unwrap()
    }

    fn store_file(file: Uuid, client: Uuid, name: &str, blob: PendingBlob) -> StoreFile {
        StoreFile {
            file_id: file,
            client_id: client,
            filename: name.into(),
            original_path: None,
            mime_type: None,
            blob,
            transfer: None,
            meta: FileMeta::default(),
        }
    }

    #[test]
    fn storing_records_the_checksums_and_places_the_blob_and_completes_the_transfer() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = BlobStore::open(dir.path(), false).unwrap();
        let (a, f, t) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let started = TransferStarted {
            transfer_id: t,
            client_id: Some(a),
            file_id: None,
            filename: "report.pdf".into(),
            direction: Direction::Upload,
            expected_bytes: None,
            run_id: None,
        };
        let mut command = store_file(f, a, "report.pdf", blob(&blobs, b"%PDF"));
        command.transfer = Some((t, 12));
        let decision = given(vec![registered(a, "alpha"), started.into()])
            .when(command)
            .then_expect(vec![
                FileStored {
                    file_id: f,
                    client_id: a,
                    client_name: "alpha".into(),
                    filename: "report.pdf".into(),
                    original_path: "report.pdf".into(),
                    size: 4,
                    sha256: decision_sha(b"%PDF"),
                    crc32: crc32fast::hash(b"%PDF"),
                    mime_type: "application/pdf".into(),
                    transfer_id: Some(t),
                    mtime: None,
                    mode: None,
                    run_id: None,
                }
                .into(),
                TransferCompleted {
                    transfer_id: t,
                    file_id: Some(f),
                    bytes: 4,
                    duration_ms: 12,
                }
                .into(),
            ]);
        assert!(decision.place_blob.is_some());
    }

    fn decision_sha(content: &[u8]) -> String {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(content))
    }

    #[test]
    fn a_file_of_a_deleted_client_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = BlobStore::open(dir.path(), false).unwrap();
        let a = Uuid::now_v7();
        given(vec![
            registered(a, "alpha"),
            ClientDeleted {
                client_id: a,
                name: "alpha".into(),
            }
            .into(),
        ])
        .when(store_file(Uuid::now_v7(), a, "x", blob(&blobs, b"x")))
        .then_error(|e| matches!(e, CommandError::ClientDeleted(_)));
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0,
            "the refused upload is gone"
        );
    }

    #[test]
    fn filenames_that_smuggle_paths_or_controls_are_refused_but_paths_are_kept_as_text() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = BlobStore::open(dir.path(), false).unwrap();
        let a = Uuid::now_v7();
        for bad in [
            "../etc/passwd",
            "a/b",
            "a\\b",
            "..",
            ".",
            "",
            "nul\0",
            "bell\u{7}",
            &"n".repeat(256),
        ] {
            given(vec![registered(a, "alpha")])
                .when(store_file(Uuid::now_v7(), a, bad, blob(&blobs, b"x")))
                .then_error(|e| matches!(e, CommandError::Invalid { field: "filename", .. }));
        }
        let mut command = store_file(Uuid::now_v7(), a, "passwd", blob(&blobs, b"x"));
        command.original_path = Some("../../etc/passwd".into());
        let d = given(vec![registered(a, "alpha")]).when(command).then_expect_any();
        assert!(
            matches!(&d.events[0].0, cairn_events::DomainEvent::FileStored(f) if f.original_path == "../../etc/passwd")
        );
    }

    #[test]
    fn verification_compares_both_checksums_and_reports_an_unreadable_blob() {
        let (a, f) = (Uuid::now_v7(), Uuid::now_v7());
        let history = || vec![registered(a, "alpha"), stored(f, a, "abc", 3)];
        let digest = |sha: &str, crc: u32| BlobDigest {
            sha256: sha.into(),
            crc32: crc,
            size: 3,
        };
        let ok = given(history())
            .when(VerifyFile {
                file_id: f,
                found: Ok(digest("abc", 1)),
            })
            .then_expect_any();
        assert!(ok.output.ok);
        let bad = given(history())
            .when(VerifyFile {
                file_id: f,
                found: Ok(digest("abc", 2)),
            })
            .then_expect_any();
        assert!(!bad.output.ok);
        let gone = given(history())
            .when(VerifyFile {
                file_id: f,
                found: Err("blob missing".into()),
            })
            .then_expect_any();
        assert_eq!(
            (gone.output.ok, gone.output.detail.as_deref()),
            (false, Some("blob missing"))
        );
        given(vec![])
            .when(VerifyFile {
                file_id: f,
                found: Err("x".into()),
            })
            .then_error(|e| matches!(e, CommandError::FileNotFound(_)));
    }

    #[test]
    fn deleting_a_file_without_retention_releases_its_blob() {
        let (a, f) = (Uuid::now_v7(), Uuid::now_v7());
        let d = given(vec![registered(a, "alpha"), stored(f, a, "abc", 3)])
            .when(DeleteFile {
                file_id: f,
                expected_version: None,
                retain: false,
                run_id: None,
                owner: None,
            })
            .then_expect_any();
        assert_eq!(d.release_blobs, vec!["abc".to_owned()]);
        given(vec![])
            .when(DeleteFile {
                file_id: f,
                expected_version: None,
                retain: true,
                run_id: None,
                owner: None,
            })
            .then_error(|e| matches!(e, CommandError::FileNotFound(_)));
    }

    #[test]
    fn mime_types_are_guessed_or_checked() {
        assert_eq!(guess_mime("A.JPG"), "image/jpeg");
        assert_eq!(guess_mime("noext"), "application/octet-stream");
        assert!(validate_mime("text/plain; charset=utf-8").is_ok());
        assert!(validate_mime("text").is_err());
        assert!(validate_mime("text/<script>").is_err());
    }
}

/// Records that a client's files as of a position were downloaded as one archive.
#[derive(Debug, Clone)]
pub struct RecordArchive {
    pub client_id: Uuid,
    pub position: i64,
    pub format: String,
    pub files: u64,
    pub bytes: u64,
}

impl Command for RecordArchive {
    type Output = ();

    fn decide(self, _: &dyn State) -> Result<Decision<()>, CommandError> {
        Ok(Decision::new(()).event(
            cairn_events::catalogue::ArchiveDownloaded {
                client_id: self.client_id,
                position: u64::try_from(self.position).unwrap_or(0),
                format: self.format,
                files: self.files,
                bytes: self.bytes,
            },
            ExpectedVersion::Any,
        ))
    }
}
