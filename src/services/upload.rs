//! One upload: a transfer is recorded as started, the content streams into the blob store while SHA-256 and
//! CRC-32 are computed (memory stays flat whatever the size), then the file and the transfer's completion are
//! recorded in one command; on any failure the transfer is recorded as failed and nothing is stored. There is
//! one flow: [`upload`] takes the content as a stream of chunks; [`upload_blocking`] drives the same flow for
//! a caller with a reader and no async runtime.

use std::io::Read;
use std::time::Instant;

use bytes::Bytes;
use cairn_events::catalogue::Direction;
use cairn_events::Metadata;
use cairn_projections::{transfers, TransferStatus};
use futures_util::{Stream, StreamExt};
use uuid::Uuid;

use super::ServiceError;
use crate::blobs::{BlobError, Declared, PendingBlob};
use crate::commands::file::{FileMeta, StoreFile, Stored};
use crate::commands::transfer::{FailTransfer, StartTransfer};
use crate::commands::validate;
use crate::error::CommandError;
use crate::Cairn;

/// A file upload's metadata; the content comes separately.
#[derive(Debug, Clone, Default)]
pub struct Upload {
    pub client_id: Uuid,
    pub filename: String,
    pub original_path: Option<String>,
    pub mime_type: Option<String>,
    /// The size the client announced: refused at once when over the limit, and the goal of progress reports.
    pub expected_bytes: Option<u64>,
    pub declared: Declared,
    /// Its modification time and mode on the client, and its backup run.
    pub meta: FileMeta,
    /// The file's id when the client chose it (an idempotency key): an upload of an id this client already
    /// stored answers that file and records nothing.
    pub file_id: Option<Uuid>,
}

/// The file `id`, when it is stored and belongs to `client`: what a retried upload or record answers.
pub async fn already_stored(cairn: &Cairn, client: Uuid, id: Uuid) -> Result<Option<Stored>, ServiceError> {
    let row = super::read(cairn, move |conn| {
        Ok(cairn_projections::files::get(conn, &id.to_string())?)
    })
    .await?;
    Ok(row.filter(|f| f.client_id == client.to_string()).map(|f| Stored {
        file_id: id,
        sha256: f.checksum,
        crc32: f.crc32,
        size: u64::try_from(f.size).unwrap_or(0),
    }))
}

/// How far one upload has come, reported while its content arrives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadProgress {
    pub transfer_id: Uuid,
    pub client_id: Uuid,
    pub filename: String,
    pub bytes: u64,
    pub expected_bytes: Option<u64>,
}

/// Progress is reported at most every this many bytes or this long, whichever comes first, and once at the end.
const PROGRESS_BYTES: u64 = 256 * 1024;
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// A refused upload's body is read and dropped while it keeps coming (a pause of `DRAIN_PAUSE` ends it), up to
/// `DRAIN_BYTES` and `DRAIN_TIME`, before the answer: a client still sending when the server closes gets its write
/// refused and, with hyper, loses the answer with it. A client that sends no body is answered at once, and a large
/// body is not waited for (the connection closes instead).
const DRAIN_BYTES: usize = 1 << 20;
const DRAIN_PAUSE: std::time::Duration = std::time::Duration::from_millis(20);
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_millis(250);

async fn drain<S, E>(body: &mut S)
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    use futures_util::StreamExt;
    let started = Instant::now();
    let mut read = 0;
    while read <= DRAIN_BYTES && started.elapsed() < DRAIN_TIME {
        match tokio::time::timeout(DRAIN_PAUSE, body.next()).await {
            Ok(Some(Ok(chunk))) => read += chunk.len(),
            _ => return,
        }
    }
}

/// Stores a file from a stream of chunks; see the module's documentation. `progress` hears how far it came.
pub async fn upload<S, E>(
    cairn: &Cairn,
    upload: Upload,
    body: S,
    metadata: Metadata,
    mut progress: impl FnMut(&UploadProgress),
) -> Result<Stored, ServiceError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    // Everything the request says about the file is checked before its content is read.
    let checked = (|| {
        let filename = validate::filename(&upload.filename)?;
        if let Some(path) = &upload.original_path {
            validate::original_path(path)?;
        }
        if let Some(mime) = upload.mime_type.as_deref().filter(|m| !m.trim().is_empty()) {
            crate::commands::file::validate_mime(mime)?;
        }
        Ok::<_, CommandError>(filename)
    })();
    let mut body = body;
    let filename = match checked {
        Ok(filename) => filename,
        Err(e) => {
            drain(&mut body).await;
            return Err(e.into());
        }
    };
    if let Some(id) = upload.file_id {
        if let Some(stored) = already_stored(cairn, upload.client_id, id).await? {
            drain(&mut body).await;
            return Ok(stored);
        }
    }
    let limit = cairn.options().max_upload;
    if upload.expected_bytes.is_some_and(|n| n > limit) {
        return Err(CommandError::TooLarge { limit }.into());
    }
    let transfer_id = Uuid::now_v7();
    let mut metadata = metadata;
    metadata.correlation_id.get_or_insert_with(|| transfer_id.to_string());
    let start = StartTransfer {
        transfer_id,
        client_id: Some(upload.client_id),
        file_id: None,
        filename: filename.clone(),
        direction: Direction::Upload,
        expected_bytes: upload.expected_bytes,
        run_id: upload.meta.run_id,
    };
    cairn.execute(start, metadata.clone()).await?;
    let started = Instant::now();
    let mut report = UploadProgress {
        transfer_id,
        client_id: upload.client_id,
        filename: filename.clone(),
        bytes: 0,
        expected_bytes: upload.expected_bytes,
    };
    let blob = receive(cairn, limit, upload.declared, body, &mut report, &mut progress).await;
    let stored = match blob {
        Ok(blob) => {
            let command = StoreFile {
                file_id: upload.file_id.unwrap_or_else(Uuid::now_v7),
                client_id: upload.client_id,
                filename,
                original_path: upload.original_path,
                mime_type: upload.mime_type,
                blob,
                transfer: Some((transfer_id, started.elapsed().as_millis() as u64)),
                meta: upload.meta,
            };
            cairn
                .execute(command, metadata.clone())
                .await
                .map_err(ServiceError::from)
        }
        Err(e) => Err(e),
    };
    match stored {
        Ok(done) => Ok(done.output),
        Err(e) => {
            let failed = FailTransfer {
                transfer_id,
                bytes: report.bytes,
                duration_ms: started.elapsed().as_millis() as u64,
                error: e.to_string(),
            };
            if let Err(record) = cairn.execute(failed, metadata).await {
                tracing::error!(%transfer_id, error = %record, "could not record a failed transfer");
            }
            Err(e)
        }
    }
}

/// [`upload`] for a caller with a reader and no async runtime (tests, tools): the same flow on a runtime of its
/// own. Not from inside an async task.
pub fn upload_blocking(
    cairn: &Cairn,
    upload: Upload,
    mut body: impl Read,
    metadata: Metadata,
) -> Result<Stored, ServiceError> {
    let mut failed = false;
    let chunks = std::iter::from_fn(move || {
        if failed {
            return None;
        }
        let mut buf = vec![0u8; 64 * 1024];
        match body.read(&mut buf) {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some(Ok(Bytes::from(buf)))
            }
            Err(e) => {
                failed = true;
                Some(Err(e))
            }
        }
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ServiceError::internal)?;
    runtime.block_on(self::upload(
        cairn,
        upload,
        futures_util::stream::iter(chunks),
        metadata,
        |_| {},
    ))
}

/// Streams the body into a pending blob on a blocking thread, reporting progress; answers the blob or why not.
async fn receive<S, E>(
    cairn: &Cairn,
    limit: u64,
    declared: Declared,
    mut body: S,
    report: &mut UploadProgress,
    progress: &mut impl FnMut(&UploadProgress),
) -> Result<PendingBlob, ServiceError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Option<Bytes>>(8);
    let blobs = cairn.blobs().clone();
    let writer = tokio::task::spawn_blocking(move || -> Result<PendingBlob, BlobError> {
        let mut w = blobs.writer(limit)?;
        while let Some(chunk) = rx.blocking_recv() {
            match chunk {
                Some(c) => w.write_chunk(&c)?,
                None => return Err(BlobError::Io(std::io::ErrorKind::ConnectionAborted.into())),
            }
        }
        w.finish(&declared)
    });
    let mut reported = (0u64, Instant::now());
    while let Some(chunk) = body.next().await {
        let message = match chunk {
            Ok(c) => {
                report.bytes += c.len() as u64;
                if report.bytes - reported.0 >= PROGRESS_BYTES || reported.1.elapsed() >= PROGRESS_EVERY {
                    progress(report);
                    reported = (report.bytes, Instant::now());
                }
                Some(c)
            }
            Err(e) => {
                tracing::info!(error = %e, "an upload's content stopped mid-way");
                None
            }
        };
        let stop = message.is_none();
        if tx.send(message).await.is_err() || stop {
            break; // the writer stopped (too large, disk error) or the sender went away
        }
    }
    drop(tx);
    progress(report);
    match writer.await? {
        Ok(blob) => Ok(blob),
        Err(BlobError::Io(e)) if e.kind() == std::io::ErrorKind::ConnectionAborted => Err(ServiceError::invalid(
            "UPLOAD_INTERRUPTED",
            "the upload was interrupted",
        )),
        Err(e) => Err(CommandError::from(e).into()),
    }
}

/// Records as failed every transfer the log still shows under way: `cairn serve` calls it as it starts, when no
/// upload of this process can be running, so these are uploads a crash or a kill cut short (without it their
/// progress bars would show forever). Answers how many it closed.
pub async fn fail_interrupted(cairn: &Cairn, metadata: Metadata) -> Result<usize, ServiceError> {
    let open = super::read(cairn, |conn| {
        Ok(transfers::with_status(conn, TransferStatus::InProgress)?)
    })
    .await?;
    let now = chrono::Utc::now();
    let mut closed = 0;
    for t in open {
        let Ok(transfer_id) = Uuid::parse_str(&t.id) else {
            continue;
        };
        let duration_ms = chrono::DateTime::parse_from_rfc3339(&t.started_at)
            .map(|s| (now - s.with_timezone(&chrono::Utc)).num_milliseconds().max(0) as u64)
            .unwrap_or(0);
        let failed = FailTransfer {
            transfer_id,
            bytes: t.bytes.max(0) as u64,
            duration_ms,
            error: "interrupted: the server stopped before the transfer ended".into(),
        };
        match cairn.execute(failed, metadata.clone()).await {
            Ok(_) => closed += 1,
            Err(CommandError::TransferFinished { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(closed)
}
