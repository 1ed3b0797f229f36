//! The HTTP API against a real server on port 0: each endpoint's happy and error paths, and a battery of bad
//! input, each answered with the right status and code, nothing stored, the server still up.
#![allow(clippy::unwrap_used)] // a test that cannot proceed should panic where it stopped

mod audit;
mod auth;
mod bad_input;
mod clients;
#[path = "../common/api.rs"]
mod common_api;
mod database;
mod files;
mod helpers;
mod logs;
mod routes;
mod status;

use bytes::Bytes;
use common_api::spawn_app;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_is_served_without_a_token_and_weighs_under_300_kb() {
    let app = spawn_app().await;
    let mut total = 0;
    let files = cairn::http::web::files();
    for path in ["/index.html", "/styles.css", "/js/app.js", "/vendor/uplot/LICENSE"] {
        assert!(files.iter().any(|(p, _)| p == path), "{path} is embedded");
    }
    for (path, mime) in &files {
        let r = app.send("GET", path, None, &[], Bytes::new()).await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.headers["content-type"], mime.as_str(), "{path}");
        if path.ends_with(".js") {
            assert_eq!(mime, "text/javascript; charset=utf-8", "{path}");
        }
        total += r.body.len();
    }
    assert!(total < 300 * 1024, "the whole page weighs {total} bytes");
    let index = app.send("GET", "/", None, &[], Bytes::new()).await;
    assert!(String::from_utf8_lossy(&index.body).contains(r#"<script type="module" src="/js/app.js">"#));
    assert_eq!(
        app.send("GET", "/index.html", None, &[], Bytes::new()).await.status,
        200
    );
    let r = app.send("GET", "/js/nothing.js", None, &[], Bytes::new()).await;
    assert_eq!((r.status, r.code()), (404, "ROUTE_NOT_FOUND".to_owned()));
    let r = app.send("GET", "/api/status", None, &[], Bytes::new()).await;
    assert_eq!(r.status, 401, "the API still wants its token");
    app.stop().await;
}

#[test]
fn every_file_in_web_is_embedded() {
    fn walk(dir: &std::path::Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            if e.path().is_dir() {
                walk(&e.path(), out);
            } else {
                out.push(e.path().to_string_lossy().into_owned());
            }
        }
    }
    let web = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
    let mut found = Vec::new();
    walk(&web, &mut found);
    let mut served: Vec<String> = cairn::http::web::files()
        .iter()
        .map(|(p, _)| web.join(&p[1..]).to_string_lossy().into_owned())
        .collect();
    found.sort();
    served.sort();
    assert_eq!(found, served);
}
