//! `/api/files…` and uploads: list, read, delete, download (with `Range`), verify; transfers.

use tokio::io::{AsyncReadExt, AsyncSeekExt};
use uuid::Uuid;
use warp::http::{header, HeaderValue, StatusCode};
use warp::reply::Response;
use warp::Reply;

use crate::blobs::Declared;
use crate::commands::file::{DeleteFile, FileMeta, RecordDownload, StoreKnown};
use crate::http::answers::{FileDeleted, Verification};
use crate::http::error::{ok, ApiError};
use crate::http::request::Request;
use crate::services::upload::{self, Upload};
use crate::services::{history, verify, ServiceError, Services};
use cairn_projections::files::{self, FileFilter};
use cairn_projections::transfers::{self, TransferFilter};

const NOT_FOUND: &str = "FILE_NOT_FOUND";

async fn list_files(state: &Services, req: &Request, client: Option<String>) -> Result<Response, ApiError> {
    let query = req.list_query()?;
    let filter = FileFilter {
        client_id: client.or_else(|| req.query("client").map(str::to_owned)),
        verified: req.query_bool("verified")?,
        run_id: req.query_parsed::<Uuid>("run")?.map(|r| r.to_string()),
    };
    let page = state.read(move |conn| Ok(files::list(conn, &query, &filter)?)).await?;
    Ok(ok(StatusCode::OK, page, None))
}

pub async fn list(state: &Services, req: Request) -> Result<Response, ApiError> {
    list_files(state, &req, None).await
}

pub async fn of_client(state: &Services, req: Request) -> Result<Response, ApiError> {
    let client = req.id(0, "CLIENT_NOT_FOUND", "client")?;
    req.caller().require_client(client)?;
    super::clients::row(state, client).await?;
    list_files(state, &req, Some(client.to_string())).await
}

async fn row(state: &Services, id: Uuid) -> Result<files::File, ApiError> {
    Ok(state
        .read(move |conn| {
            files::get(conn, &id.to_string())?
                .ok_or_else(|| ServiceError::not_found(NOT_FOUND, format!("file {id} not found")))
        })
        .await?)
}

pub async fn get(state: &Services, req: Request) -> Result<Response, ApiError> {
    let id = req.id(0, NOT_FOUND, "file")?;
    if let Some(at) = req.query_parsed("at")? {
        let file = history::file_at(&state.cairn, id, at).await?;
        return Ok(ok(StatusCode::OK, file, Some("as it was at the given position")));
    }
    Ok(ok(StatusCode::OK, row(state, id).await?, None))
}

/// A client deletes only its own files (another's is not found, as if it did not exist); its content is then
/// kept for the retention whatever the server's setting, so a compromised machine cannot erase its backups.
pub async fn delete(state: &Services, req: Request) -> Result<Response, ApiError> {
    let id = req.id(0, NOT_FOUND, "file")?;
    let command = DeleteFile {
        file_id: id,
        expected_version: req.query_i64("expected_version")?,
        retain: state.config.retains(),
        run_id: req.query_parsed("run")?,
        owner: req.caller().client(),
    };
    state.cairn.execute(command, req.metadata()).await?;
    Ok(ok(StatusCode::OK, FileDeleted { id }, Some("file deleted")))
}

pub async fn verify(state: &Services, req: Request) -> Result<Response, ApiError> {
    let id = req.id(0, NOT_FOUND, "file")?;
    let found = verify::verify_file(&state.cairn, id, req.metadata()).await?;
    let message = if found.ok {
        "verified: both checksums match"
    } else {
        "verification failed"
    };
    let file = row(state, id).await?;
    let answer = Verification {
        verified: found.ok,
        checksum: found
            .actual_sha256
            .clone()
            .unwrap_or_else(|| found.expected_sha256.clone()),
        size: file.size,
        found,
    };
    Ok(ok(StatusCode::OK, answer, Some(message)))
}

pub async fn transfers(state: &Services, req: Request) -> Result<Response, ApiError> {
    let query = req.list_query()?;
    let filter = TransferFilter {
        status: req.query("status").map(str::parse).transpose()?,
        client_id: req.query("client").map(str::to_owned),
    };
    let page = state
        .read(move |conn| Ok(transfers::list(conn, &query, &filter)?))
        .await?;
    Ok(ok(StatusCode::OK, page, None))
}

/// The checksums a client declared in `X-Content-SHA256` and `X-Content-CRC32`.
fn declared(req: &Request) -> Result<Declared, ApiError> {
    let sha256 = req
        .header("x-content-sha256")
        .map(|v| {
            let v = v.trim();
            if v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()) {
                Ok(v.to_ascii_lowercase())
            } else {
                Err(ApiError::validation("X-Content-SHA256 must be 64 hex digits"))
            }
        })
        .transpose()?;
    let crc32 = req
        .header("x-content-crc32")
        .map(|v| {
            let v = v.trim();
            u32::from_str_radix(v, 16)
                .ok()
                .filter(|_| (1..=8).contains(&v.len()))
                .ok_or_else(|| ApiError::validation("X-Content-CRC32 must be 1 to 8 hex digits"))
        })
        .transpose()?;
    Ok(Declared { sha256, crc32 })
}

/// `POST /api/clients/{id}/files?name=…&path=…`: the raw body is the content; the upload service streams it
/// into the blob store, reporting progress on the live feed.
pub async fn upload(state: &Services, req: Request) -> Result<Response, ApiError> {
    let client_id = req.id(0, "CLIENT_NOT_FOUND", "client")?;
    req.caller().require_client(client_id)?;
    let filename = req
        .query("name")
        .ok_or_else(|| ApiError::validation("name is required"))?
        .to_owned();
    let mime_type = req
        .header("content-type")
        .filter(|m| !m.starts_with("application/octet-stream") && !m.starts_with("application/x-www-form-urlencoded"))
        .map(str::to_owned);
    let request = Upload {
        client_id,
        filename,
        original_path: req.query("path").map(str::to_owned),
        mime_type,
        expected_bytes: req.header("content-length").and_then(|v| v.parse::<u64>().ok()),
        declared: declared(&req)?,
        meta: FileMeta {
            mtime: req.query("mtime").map(str::to_owned),
            mode: req.query_parsed("mode")?,
            run_id: req.query_parsed("run")?,
        },
        file_id: req.idempotency_key()?,
    };
    let body = req.take_body();
    let feed = state.feed.clone();
    let stored = upload::upload(&state.cairn, request, body, req.metadata(), |p| feed.progress(p)).await?;
    Ok(ok(
        StatusCode::CREATED,
        row(state, stored.file_id).await?,
        Some("file stored"),
    ))
}

/// What `files/known` takes: a file by its content's checksum and size, with its metadata.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct KnownFile {
    name: String,
    #[serde(default)]
    path: Option<String>,
    sha256: String,
    size: u64,
    #[serde(default)]
    mtime: Option<String>,
    #[serde(default)]
    mode: Option<u32>,
    #[serde(default)]
    mime_type: Option<String>,
}

/// `POST /api/clients/{id}/files/known?run=…`: records a file whose content this client stored before, without
/// its bytes; 404 `CONTENT_UNKNOWN` tells the agent to upload it.
pub async fn known(state: &Services, req: Request) -> Result<Response, ApiError> {
    let client_id = req.id(0, "CLIENT_NOT_FOUND", "client")?;
    req.caller().require_client(client_id)?;
    let run_id = req.query_parsed("run")?;
    let key = req.idempotency_key()?;
    let body: KnownFile = req.json().await?;
    if let Some(id) = key {
        if let Some(stored) = upload::already_stored(&state.cairn, client_id, id).await? {
            return Ok(ok(
                StatusCode::CREATED,
                row(state, stored.file_id).await?,
                Some("already recorded"),
            ));
        }
    }
    let command = StoreKnown {
        file_id: key.unwrap_or_else(Uuid::now_v7),
        client_id,
        filename: body.name,
        original_path: body.path,
        mime_type: body.mime_type,
        sha256: body.sha256,
        size: body.size,
        meta: FileMeta {
            mtime: body.mtime,
            mode: body.mode,
            run_id,
        },
    };
    let stored = state.cairn.execute(command, req.metadata()).await?.output;
    Ok(ok(
        StatusCode::CREATED,
        row(state, stored.file_id).await?,
        Some("file recorded from content this client stored before"),
    ))
}

/// A `Range: bytes=…` header against a size: the inclusive range to send, or `None` for the whole file.
pub fn parse_range(header: Option<&str>, size: u64) -> Result<Option<(u64, u64)>, ApiError> {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Ok(None);
    };
    let unsatisfiable = || ApiError::RangeNotSatisfiable(format!("the range {spec:?} is not within 0-{size}"));
    if spec.contains(',') {
        return Ok(None); // several ranges: send the whole file, which RFC 9110 allows
    }
    let (a, b) = spec.split_once('-').ok_or_else(unsatisfiable)?;
    let (start, end) = match (a.trim(), b.trim()) {
        ("", n) => {
            let n: u64 = n.parse().map_err(|_| unsatisfiable())?;
            if n == 0 || size == 0 {
                return Err(unsatisfiable());
            }
            (size.saturating_sub(n), size - 1)
        }
        (s, "") => (s.parse().map_err(|_| unsatisfiable())?, size.saturating_sub(1)),
        (s, e) => {
            let (s, e): (u64, u64) = (
                s.parse().map_err(|_| unsatisfiable())?,
                e.parse().map_err(|_| unsatisfiable())?,
            );
            (s, e.min(size.saturating_sub(1)))
        }
    };
    if start >= size || start > end {
        return Err(unsatisfiable());
    }
    Ok(Some((start, end)))
}

pub async fn content(state: &Services, req: Request) -> Result<Response, ApiError> {
    let id = req.id(0, NOT_FOUND, "file")?;
    let file = row(state, id).await?;
    let size = u64::try_from(file.size).unwrap_or(0);
    let range = parse_range(req.header("range"), size)?;
    let (start, len) = match range {
        Some((s, e)) => (s, e - s + 1),
        None => (0, size),
    };
    let mut blob = tokio::fs::File::open(state.cairn.blobs().path_of(&file.checksum))
        .await
        .map_err(|e| ApiError::internal(format!("the blob of file {id} cannot be opened: {e}")))?;
    blob.seek(std::io::SeekFrom::Start(start))
        .await
        .map_err(ApiError::internal)?;
    let download = RecordDownload {
        file_id: id,
        by: req.metadata().actor,
        bytes: len,
    };
    state.cairn.execute(download, req.metadata()).await?;
    let stream = tokio_util::io::ReaderStream::new(blob.take(len));
    let mut response = warp::reply::stream(stream).into_response();
    let headers = response.headers_mut();
    let value = |s: &str| HeaderValue::from_str(s).map_err(ApiError::internal);
    headers.insert(header::CONTENT_TYPE, value(&file.mime_type)?);
    headers.insert(header::CONTENT_LENGTH, value(&len.to_string())?);
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    headers.insert(
        header::CONTENT_DISPOSITION,
        value(&crate::http::answers::disposition(&file.filename))?,
    );
    headers.insert("x-content-sha256", value(&file.checksum)?);
    // The content type is the client's word: never let a browser sniff it into something it would run.
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if let Some((s, e)) = range {
        headers.insert(header::CONTENT_RANGE, value(&format!("bytes {s}-{e}/{size}"))?);
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_parsed_and_bounded() {
        assert_eq!(parse_range(None, 10).unwrap(), None);
        assert_eq!(parse_range(Some("bytes=0-3"), 10).unwrap(), Some((0, 3)));
        assert_eq!(parse_range(Some("bytes=5-"), 10).unwrap(), Some((5, 9)));
        assert_eq!(parse_range(Some("bytes=-4"), 10).unwrap(), Some((6, 9)));
        assert_eq!(parse_range(Some("bytes=8-100"), 10).unwrap(), Some((8, 9)));
        assert_eq!(parse_range(Some("bytes=0-1,4-5"), 10).unwrap(), None);
        for bad in ["bytes=10-", "bytes=5-2", "bytes=x-1", "bytes=-0", "bytes=1"] {
            assert!(
                matches!(parse_range(Some(bad), 10), Err(ApiError::RangeNotSatisfiable(_))),
                "{bad}"
            );
        }
        assert_eq!(
            crate::http::answers::disposition("ré\"port.pdf"),
            "attachment; filename=\"r__port.pdf\"; filename*=UTF-8''r%C3%A9%22port.pdf"
        );
    }
}
