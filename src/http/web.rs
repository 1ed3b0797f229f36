//! The dashboard's files (`web/`), embedded in the binary by `rust-embed` and served at `/` without a token:
//! the page signs in itself and calls the API with the token. Every file under `web/` is embedded, the
//! vendored uPlot 1.6.32 (MIT, unchanged, its LICENSE beside it) included.

use std::borrow::Cow;

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

/// `GET` of a dashboard file; anything else falls through to the API.
pub fn serve() -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    warp::get()
        .and(warp::path::full())
        .and_then(|path: warp::path::FullPath| async move {
            let wanted = match path.as_str() {
                "/" => "index.html",
                p => p.trim_start_matches('/'),
            };
            let Some(file) = Web::get(wanted) else {
                return Err(warp::reject::not_found());
            };
            let mut response = warp::reply::with_status(file.data.into_owned(), StatusCode::OK).into_response();
            let headers = response.headers_mut();
            let mime = HeaderValue::from_str(&content_type(wanted)).map_err(|_| warp::reject::not_found())?;
            headers.insert(header::CONTENT_TYPE, mime);
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
        })
}
