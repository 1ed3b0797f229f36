//! The dashboard's files (`web/`), embedded in the binary and served at `/` without a token: the page signs in
//! itself and calls the API with the token.

use warp::http::{header, HeaderValue, StatusCode};
use warp::reply::Response;
use warp::{Filter, Reply};

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// `(path, content type)` → `(path, content type, the file's text)`, embedded from `web/`.
macro_rules! embed {
    ($(($path:literal, $mime:expr)),* $(,)?) => {
        &[$(($path, $mime, include_str!(concat!("../../web", $path)))),*]
    };
}

/// Every file of the dashboard: (path, content type, text); `/` answers with `/index.html`. The charting library is
/// uPlot 1.6.32 from npm (MIT), vendored unchanged; its LICENSE is served beside it.
pub const FILES: &[(&str, &str, &str)] = embed![
    ("/index.html", "text/html; charset=utf-8"),
    ("/styles.css", CSS),
    ("/js/app.js", JS),
    ("/js/api.js", JS),
    ("/js/live.js", JS),
    ("/js/format.js", JS),
    ("/js/ui.js", JS),
    ("/js/views/overview.js", JS),
    ("/js/views/clients.js", JS),
    ("/js/views/files.js", JS),
    ("/js/views/logs.js", JS),
    ("/js/views/analytics.js", JS),
    ("/js/views/database.js", JS),
    ("/js/views/audit.js", JS),
    ("/vendor/uplot/uPlot.iife.min.js", JS),
    ("/vendor/uplot/uPlot.min.css", CSS),
    ("/vendor/uplot/LICENSE", "text/plain; charset=utf-8"),
];

/// `GET` of a dashboard file; anything else falls through to the API.
pub fn files() -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    warp::get()
        .and(warp::path::full())
        .and_then(|path: warp::path::FullPath| async move {
            let wanted = if path.as_str() == "/" {
                "/index.html"
            } else {
                path.as_str()
            };
            match FILES.iter().find(|(p, _, _)| *p == wanted) {
                Some((_, mime, body)) => {
                    let mut response = warp::reply::with_status(*body, StatusCode::OK).into_response();
                    let headers = response.headers_mut();
                    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
                    // The files change with the binary: revalidate rather than trust an old copy.
                    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
                    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
                    Ok(response)
                }
                None => Err(warp::reject::not_found()),
            }
        })
}
