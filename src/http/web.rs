//! The dashboard's files (`web/`), embedded in the binary by `rust-embed` and served at `/` without a token:
//! the page signs in itself and calls the API with the token. Every file under `web/` is embedded, the
//! vendored uPlot 1.6.32 (MIT, unchanged, its LICENSE beside it) included. Each answer carries a strong ETag
//! (its content's SHA-256, so `If-None-Match` gets a 304), and text files go gzipped to a browser that accepts
//! it (compressed once, on first request).

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Write;
use std::sync::{Mutex, OnceLock};

use warp::http::{header, HeaderValue, StatusCode};
use warp::reply::Response;
use warp::{Filter, Reply};

/// Only the dashboard's own files run, style and connect (the live feed's WebSocket is same-origin), nothing
/// frames it, and a download's `blob:` URL is the one foreign source.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

#[derive(rust_embed::RustEmbed)]
#[folder = "web/"]
struct Web;

/// The content type of a dashboard file, from its name; text is UTF-8.
fn content_type(path: &str) -> String {
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    match mime.type_() {
        mime_guess::mime::TEXT | mime_guess::mime::JAVASCRIPT => format!("{mime}; charset=utf-8"),
        _ if path.ends_with("LICENSE") => "text/plain; charset=utf-8".into(),
        _ => mime.to_string(),
    }
}

/// Every embedded file, as `(path, content type)`, the path from `/`.
pub fn files() -> Vec<(String, String)> {
    Web::iter()
        .map(|p: Cow<'static, str>| (format!("/{p}"), content_type(&p)))
        .collect()
}

/// A text file's gzipped form, made once per file.
fn gzipped(path: &str, data: &[u8]) -> Option<Vec<u8>> {
    static CACHE: OnceLock<Mutex<HashMap<String, Vec<u8>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(z) = cache.lock().unwrap_or_else(|p| p.into_inner()).get(path) {
        return Some(z.clone());
    }
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(data).ok()?;
    let z = encoder.finish().ok()?;
    cache
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(path.to_owned(), z.clone());
    Some(z)
}

/// Whether an `Accept-Encoding` value takes gzip (and does not refuse it with `q=0`).
fn accepts_gzip(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| {
        a.split(',').any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or("");
            let refused = parts.any(|p| p.replace(' ', "") == "q=0");
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
    })
}

/// `GET` of a dashboard file; anything else falls through to the API.
pub fn serve() -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    warp::get()
        .and(warp::path::full())
        .and(warp::header::optional::<String>("if-none-match"))
        .and(warp::header::optional::<String>("accept-encoding"))
        .and_then(
            |path: warp::path::FullPath, if_none_match: Option<String>, accept: Option<String>| async move {
                let wanted = match path.as_str() {
                    "/" => "index.html",
                    // Browsers ask for it whether the page names an icon or not.
                    "/favicon.ico" => "favicon.svg",
                    p => p.trim_start_matches('/'),
                };
                let Some(file) = Web::get(wanted) else {
                    return Err(warp::reject::not_found());
                };
                let etag = format!("\"{}\"", hex::encode(&file.metadata.sha256_hash()[..16]));
                let fresh = if_none_match.is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
                let mime = content_type(wanted);
                let text = mime.starts_with("text/") || mime.contains("javascript") || mime.contains("svg");
                let zipped = match (fresh, text && accepts_gzip(accept.as_deref())) {
                    (false, true) => gzipped(wanted, &file.data),
                    _ => None,
                };
                let (status, body) = match (fresh, &zipped) {
                    (true, _) => (StatusCode::NOT_MODIFIED, Vec::new()),
                    (false, Some(z)) => (StatusCode::OK, z.clone()),
                    (false, None) => (StatusCode::OK, file.data.into_owned()),
                };
                let mut response = warp::reply::with_status(body, status).into_response();
                let headers = response.headers_mut();
                let mime = HeaderValue::from_str(&mime).map_err(|_| warp::reject::not_found())?;
                headers.insert(header::CONTENT_TYPE, mime);
                headers.insert(
                    header::ETAG,
                    HeaderValue::from_str(&etag).map_err(|_| warp::reject::not_found())?,
                );
                headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
                if zipped.is_some() {
                    headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
                }
                // The files change with the binary: revalidate rather than trust an old copy.
                headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
                headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
                headers.insert(
                    header::CONTENT_SECURITY_POLICY,
                    HeaderValue::from_static(CONTENT_SECURITY_POLICY),
                );
                headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
                headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
                Ok(response)
            },
        )
}
