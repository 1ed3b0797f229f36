//! `/api/logs…`: list, record, clear, and export streamed as JSON, CSV or JSON Lines.

use std::ops::ControlFlow;

use bytes::Bytes;
use warp::http::{header, HeaderValue, StatusCode};
use warp::reply::Response;
use warp::Reply;

use crate::commands::log::ClearLogs;
use crate::http::answers::{LogRecorded, LogsCleared};
use crate::http::error::{ok, ApiError};
use crate::http::request::Request;
use crate::services::logs::{self as logs_service, NewLogLine};
use crate::services::Services;
use cairn_projections::logs::{self, LogEntry, LogFilter};

fn filter(req: &Request) -> LogFilter {
    LogFilter {
        level: req.query("level").map(str::to_owned),
        source: req.query("source").map(str::to_owned),
        client_id: req.query("client").map(str::to_owned),
        from: req.query("from").map(str::to_owned),
        to: req.query("to").map(str::to_owned),
    }
}

pub async fn list(state: &Services, req: Request) -> Result<Response, ApiError> {
    let query = req.list_query()?;
    let filter = filter(&req);
    let page = state.read(move |conn| Ok(logs::list(conn, &query, &filter)?)).await?;
    Ok(ok(StatusCode::OK, page, None))
}

pub async fn create(state: &Services, req: Request) -> Result<Response, ApiError> {
    let line: NewLogLine = req.json().await?;
    let id = logs_service::record(&state.cairn, req.caller(), line, req.metadata()).await?;
    Ok(ok(StatusCode::CREATED, LogRecorded { id }, Some("log recorded")))
}

pub async fn clear(state: &Services, req: Request) -> Result<Response, ApiError> {
    let cleared = state.cairn.execute(ClearLogs, req.metadata()).await?.output;
    Ok(ok(StatusCode::OK, LogsCleared { cleared }, Some("logs cleared")))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Csv,
    Jsonl,
}

/// A leading `=`, `+`, `-`, `@`, tab or carriage return is prefixed with `'`, so that a spreadsheet opening
/// the export does not run the field as a formula (a spreadsheet skips a leading tab or CR and reads what follows).
pub fn defused(value: &str) -> std::borrow::Cow<'_, str> {
    if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}").into()
    } else {
        value.into()
    }
}

/// One CSV record (RFC 4180: quoted when it holds a separator, a quote or a line break; CRLF at the end).
fn csv_record(fields: &[&str]) -> String {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::with_capacity(256));
    let written = writer
        .write_record(fields.iter().map(|f| defused(f).into_owned()))
        .and_then(|()| writer.flush().map_err(csv::Error::from));
    match (written, writer.into_inner()) {
        (Ok(()), Ok(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
        _ => String::new(), // writing to memory fails only on allocation, which aborts first
    }
}

fn csv_line(e: &LogEntry) -> String {
    let id = e.id.to_string();
    csv_record(&[
        &id,
        &e.recorded_at,
        &e.level,
        &e.source,
        e.client_id.as_deref().unwrap_or_default(),
        e.file_id.as_deref().unwrap_or_default(),
        &e.message,
    ])
}

/// `GET /api/logs/export?format=json|csv|jsonl`: streamed from a blocking reader, chunk by chunk, so memory
/// stays flat whatever the number of lines.
pub async fn export(state: &Services, req: Request) -> Result<Response, ApiError> {
    let format = match req.query("format").unwrap_or("json") {
        "json" => Format::Json,
        "csv" => Format::Csv,
        "jsonl" => Format::Jsonl,
        other => {
            return Err(ApiError::bad(
                "INVALID_QUERY",
                format!("format is json, csv or jsonl, not {other:?}"),
            ))
        }
    };
    let query = cairn_projections::ListQuery::new(None, None, None, req.query("q").map(str::to_owned))?;
    let filter = filter(&req);
    // Check the filters before the status line goes out: an error after that could not be reported.
    {
        let (q, f) = (query.clone(), filter.clone());
        state
            .read(move |conn| {
                let one = cairn_projections::ListQuery { per_page: 1, ..q };
                Ok(logs::list(conn, &one, &f).map(|_| ())?)
            })
            .await?;
    }
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(16);
    let cairn = state.cairn.clone();
    tokio::task::spawn_blocking(move || {
        let send = |text: String| tx.blocking_send(Ok(Bytes::from(text))).is_ok();
        let result = (|| -> Result<(), String> {
            let conn = cairn.store().reader().map_err(|e| e.to_string())?;
            let mut first = true;
            let opened = match format {
                Format::Json => send("[".into()),
                Format::Csv => send(csv_record(&[
                    "id",
                    "recorded_at",
                    "level",
                    "source",
                    "client_id",
                    "file_id",
                    "message",
                ])),
                Format::Jsonl => true,
            };
            if !opened {
                return Ok(());
            }
            logs::for_each(&conn, &query, &filter, |entry| {
                let text = match format {
                    Format::Json => {
                        let sep = if first { "" } else { "," };
                        format!("{sep}{}", serde_json::to_string(&entry).unwrap_or_default())
                    }
                    Format::Jsonl => format!("{}\n", serde_json::to_string(&entry).unwrap_or_default()),
                    Format::Csv => csv_line(&entry),
                };
                first = false;
                if send(text) {
                    ControlFlow::Continue(())
                } else {
                    ControlFlow::Break(())
                }
            })
            .map_err(|e| e.to_string())?;
            if format == Format::Json {
                send("]".into());
            }
            Ok(())
        })();
        if let Err(e) = result {
            tracing::error!(error = %e, "a log export failed midway");
            // The status line is out; ending the body with an error tells the client it is incomplete.
            if tx.blocking_send(Err(std::io::Error::other(e))).is_err() {
                tracing::debug!("the export's client had already gone");
            }
        }
    });
    let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    let mut response = warp::reply::stream(stream).into_response();
    let (mime, ext) = match format {
        Format::Json => ("application/json", "json"),
        Format::Csv => ("text/csv; charset=utf-8", "csv"),
        Format::Jsonl => ("application/jsonl", "jsonl"),
    };
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    response
        .headers_mut()
        .insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"cairn-logs.{ext}\"")) {
        response.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::csv_record;

    #[test]
    fn csv_fields_are_quoted_and_defused() {
        assert_eq!(csv_record(&["plain", "a,b"]), "plain,\"a,b\"\r\n");
        assert_eq!(csv_record(&["say \"hi\""]), "\"say \"\"hi\"\"\"\r\n");
        assert_eq!(csv_record(&["two\nlines"]), "\"two\nlines\"\r\n");
        assert_eq!(csv_record(&["=SUM(A1)", "-1", "@x"]), "'=SUM(A1),'-1,'@x\r\n");
        assert_eq!(csv_record(&["\t=1+2"]), "'\t=1+2\r\n");
        assert_eq!(csv_record(&["\r=1+2"]), "\"'\r=1+2\"\r\n");
    }
}
