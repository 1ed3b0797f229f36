//! The dashboard's files (`web/`), embedded in the binary and served at `/` without a token: the page signs in
//! itself and calls the API with the token.

use warp::http::{header, HeaderValue, StatusCode};
use warp::reply::Response;
use warp::{Filter, Reply};

/// Every file of the dashboard: (path, content type, bytes).
pub const FILES: &[(&str, &str, &str)] = &[
    ("/", "text/html; charset=utf-8", include_str!("../../web/index.html")),
    (
        "/styles.css",
        "text/css; charset=utf-8",
        include_str!("../../web/styles.css"),
    ),
    (
        "/js/app.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/js/app.js"),
    ),
    (
        "/js/api.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/js/api.js"),
    ),
    (
        "/js/live.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/js/live.js"),
    ),
    (
        "/js/format.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/js/format.js"),
    ),
    (
        "/js/views/overview.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/js/views/overview.js"),
    ),
];

/// `GET` of a dashboard file; anything else falls through to the API.
pub fn files() -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    warp::get()
        .and(warp::path::full())
        .and_then(|path: warp::path::FullPath| async move {
            let wanted = if path.as_str() == "/index.html" {
                "/"
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
