//! One API request as handlers see it: path parameters, query, headers, the caller, and the body as a stream.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use serde::de::DeserializeOwned;
use uuid::Uuid;
use warp::http::{HeaderMap, Method};

use super::error::ApiError;
use crate::services::auth::Caller;
use cairn_projections::ListQuery;

/// The request body, chunk by chunk, never buffered whole unless a handler asks for JSON.
pub type BodyStream = Pin<Box<dyn Stream<Item = Result<Bytes, warp::Error>> + Send>>;

/// The largest JSON body accepted.
pub const MAX_JSON: usize = 64 * 1024;

pub struct Request {
    pub method: Method,
    /// The `{…}` segments of the route's path, in order, percent-decoded.
    pub params: Vec<String>,
    pub query: HashMap<String, String>,
    pub headers: HeaderMap,
    pub remote: Option<SocketAddr>,
    /// Taken once by the handler that reads it. Behind a mutex so that a `&Request` may be held across an await
    /// (the stream itself is not `Sync`); it is locked only to take it.
    pub body: std::sync::Mutex<Option<BodyStream>>,
    /// From `X-Request-Id`, or generated; recorded in every event's metadata and every error answer.
    pub request_id: String,
    /// `None` only on public routes.
    pub caller: Option<Caller>,
}

impl Request {
    pub fn caller(&self) -> Caller {
        self.caller.unwrap_or(Caller::Admin)
    }

    /// The metadata of the events this request causes: actor, request id, remote address.
    pub fn metadata(&self) -> cairn_events::Metadata {
        self.caller()
            .metadata()
            .with_request(self.request_id.clone(), self.remote.map(|a| a.to_string()))
    }

    /// A path parameter that must be a UUID; anything else cannot name an entity, so it is a 404 with `code`.
    pub fn id(&self, index: usize, code: &'static str, what: &str) -> Result<Uuid, ApiError> {
        let raw = self.params.get(index).map(String::as_str).unwrap_or_default();
        Uuid::parse_str(raw).map_err(|_| ApiError::not_found(code, format!("no {what} has the id {raw:?}")))
    }

    pub fn query(&self, key: &str) -> Option<&str> {
        self.query.get(key).map(String::as_str).filter(|v| !v.is_empty())
    }

    pub fn query_i64(&self, key: &str) -> Result<Option<i64>, ApiError> {
        self.query(key)
            .map(|v| {
                v.parse::<i64>()
                    .map_err(|_| ApiError::bad("INVALID_QUERY", format!("{key} must be a whole number, not {v:?}")))
            })
            .transpose()
    }

    /// A query parameter parsed by its type's `FromStr` (a status, a moment of the log); the parse error says
    /// what is allowed.
    pub fn query_parsed<T>(&self, key: &str) -> Result<Option<T>, ApiError>
    where
        T: std::str::FromStr,
        T::Err: std::fmt::Display,
    {
        self.query(key)
            .map(|v| {
                v.parse::<T>()
                    .map_err(|e| ApiError::bad("INVALID_QUERY", format!("{key}: {e}")))
            })
            .transpose()
    }

    pub fn query_bool(&self, key: &str) -> Result<Option<bool>, ApiError> {
        self.query(key)
            .map(|v| match v {
                "true" | "1" => Ok(true),
                "false" | "0" => Ok(false),
                other => Err(ApiError::bad(
                    "INVALID_QUERY",
                    format!("{key} must be true or false, not {other:?}"),
                )),
            })
            .transpose()
    }

    pub fn list_query(&self) -> Result<ListQuery, ApiError> {
        Ok(ListQuery::new(
            self.query_i64("page")?,
            self.query_i64("per_page")?,
            self.query("sort").map(str::to_owned),
            self.query("q").map(str::to_owned),
        )?)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `Idempotency-Key` header, a UUID: the id of what the request makes (a file, a run), so that a retry of a
    /// request whose answer was lost finds what the first one made instead of making it twice.
    pub fn idempotency_key(&self) -> Result<Option<Uuid>, ApiError> {
        self.header("idempotency-key")
            .map(|v| {
                Uuid::parse_str(v.trim()).map_err(|_| {
                    ApiError::validation("Idempotency-Key must be a UUID (the id of what the request makes)")
                })
            })
            .transpose()
    }

    /// The body stream (empty if it was already taken).
    pub fn take_body(&self) -> BodyStream {
        self.body
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .unwrap_or_else(|| Box::pin(futures_util::stream::empty()))
    }

    /// The body as JSON of type `T`: at most [`MAX_JSON`] bytes, UTF-8, well formed, no unknown fields (when
    /// `T` denies them).
    pub async fn json<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        let mut buf = Vec::new();
        let mut body = self.take_body();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| ApiError::bad("INVALID_BODY", format!("could not read the body: {e}")))?;
            if buf.len() + chunk.len() > MAX_JSON {
                return Err(ApiError::TooLarge(format!("a JSON body is at most {MAX_JSON} bytes")));
            }
            buf.extend_from_slice(&chunk);
        }
        if buf.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::bad("INVALID_JSON", "the body is empty; send a JSON object"));
        }
        let text = std::str::from_utf8(&buf)
            .map_err(|e| ApiError::bad("INVALID_JSON", format!("the body is not UTF-8: {e}")))?;
        serde_json::from_str(text).map_err(|e| {
            ApiError::bad(
                "INVALID_JSON",
                format!("the body is not valid JSON for this request: {e}"),
            )
        })
    }
}

/// Parses a query string; a query that is not valid form encoding, or whose decoded bytes are not UTF-8, is
/// refused (not patched with U+FFFD: a name the client did not send must not be stored).
pub fn parse_query(raw: &str) -> Result<HashMap<String, String>, ApiError> {
    let decode = |part: &str| {
        let spaced = part.replace('+', " ");
        percent_encoding::percent_decode_str(&spaced)
            .decode_utf8()
            .map(|text| text.into_owned())
            .map_err(|_| {
                ApiError::bad(
                    "INVALID_QUERY",
                    format!("the query parameter {part:?} is not UTF-8 once decoded"),
                )
            })
    };
    raw.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            Ok((decode(key)?, decode(value)?))
        })
        .collect()
}
