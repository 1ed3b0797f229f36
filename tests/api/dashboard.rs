//! The dashboard's web files, embedded in the binary and served at `/` without a token.

use bytes::Bytes;

use crate::common_api::spawn_app;

#[test]
fn the_dashboards_page_styles_script_and_uplot_licence_are_embedded() {
    let files = cairn::http::web::files();

    for path in ["/index.html", "/styles.css", "/js/app.js", "/vendor/uplot/LICENSE"] {
        assert!(files.iter().any(|(p, _)| p == path), "{path} is embedded");
    }
}

#[test]
fn javascript_is_served_as_text_javascript() {
    for (path, mime) in cairn::http::web::files() {
        if path.ends_with(".js") {
            assert_eq!(mime, "text/javascript; charset=utf-8", "{path}");
        }
    }
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_embedded_file_is_served_without_a_token_with_its_type() {
    let app = spawn_app().await;

    for (path, mime) in &cairn::http::web::files() {
        let r = app.send("GET", path, None, &[], Bytes::new()).await;

        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.headers["content-type"], mime.as_str(), "{path}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_dashboard_weighs_under_300_kb() {
    let app = spawn_app().await;
    let mut total = 0;

    for (path, _) in &cairn::http::web::files() {
        total += app.send("GET", path, None, &[], Bytes::new()).await.body.len();
    }

    assert!(total < 300 * 1024, "the whole page weighs {total} bytes");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_root_serves_the_page_that_loads_the_app() {
    let app = spawn_app().await;

    let index = app.send("GET", "/", None, &[], Bytes::new()).await;

    assert!(String::from_utf8_lossy(&index.body).contains(r#"<script type="module" src="/js/app.js">"#));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_is_also_served_by_its_name() {
    let app = spawn_app().await;

    let r = app.send("GET", "/index.html", None, &[], Bytes::new()).await;

    assert_eq!(r.status, 200);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_web_file_that_does_not_exist_is_not_found() {
    let app = spawn_app().await;

    let r = app.send("GET", "/js/nothing.js", None, &[], Bytes::new()).await;

    assert_eq!((r.status, r.code()), (404, "ROUTE_NOT_FOUND".to_owned()));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_still_wants_its_token_beside_the_open_dashboard() {
    let app = spawn_app().await;

    let r = app.send("GET", "/api/status", None, &[], Bytes::new()).await;

    assert_eq!(r.status, 401, "the API still wants its token");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_runs_only_its_own_files_and_refuses_to_be_framed() {
    let app = spawn_app().await;

    let r = app.send("GET", "/", None, &[], Bytes::new()).await;

    let csp = r.headers["content-security-policy"].to_str().unwrap().to_owned();
    for directive in [
        "default-src 'self'",
        "script-src 'self'",
        "frame-ancestors 'none'",
        "object-src 'none'",
    ] {
        assert!(csp.contains(directive), "{directive} in {csp}");
    }
    assert_eq!(r.headers["x-frame-options"], "DENY");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_the_browser_already_has_is_answered_304_by_its_etag() {
    let app = spawn_app().await;
    let first = app.send("GET", "/js/app.js", None, &[], Bytes::new()).await;
    let etag = first.headers["etag"].to_str().unwrap().to_owned();
    assert!(etag.starts_with('"') && etag.len() == 34, "{etag}");

    let again = app
        .send(
            "GET",
            "/js/app.js",
            None,
            &[("if-none-match", etag.as_str())],
            Bytes::new(),
        )
        .await;
    let changed = app
        .send("GET", "/js/app.js", None, &[("if-none-match", "\"old\"")], Bytes::new())
        .await;

    assert_eq!((again.status, again.body.len()), (304, 0));
    assert_eq!(changed.status, 200);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_files_go_gzipped_to_a_browser_that_accepts_it() {
    use std::io::Read;
    let app = spawn_app().await;
    let plain = app.send("GET", "/styles.css", None, &[], Bytes::new()).await;
    let zipped = app
        .send(
            "GET",
            "/styles.css",
            None,
            &[("accept-encoding", "gzip, deflate, br")],
            Bytes::new(),
        )
        .await;
    let refused = app
        .send(
            "GET",
            "/styles.css",
            None,
            &[("accept-encoding", "gzip;q=0")],
            Bytes::new(),
        )
        .await;

    assert!(plain.headers.get("content-encoding").is_none());
    assert_eq!(zipped.headers["content-encoding"], "gzip");
    assert_eq!(zipped.headers["vary"], "accept-encoding");
    assert!(
        zipped.body.len() * 2 < plain.body.len(),
        "{} of {} bytes",
        zipped.body.len(),
        plain.body.len()
    );
    let mut unzipped = Vec::new();
    flate2::read::GzDecoder::new(zipped.body.as_ref())
        .read_to_end(&mut unzipped)
        .unwrap();
    assert_eq!(unzipped, plain.body.to_vec());
    assert!(refused.headers.get("content-encoding").is_none(), "q=0 refuses it");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_has_an_icon_and_favicon_ico_finds_it() {
    let app = spawn_app().await;
    let page = app.send("GET", "/", None, &[], Bytes::new()).await;
    let icon = app.send("GET", "/favicon.ico", None, &[], Bytes::new()).await;

    assert!(String::from_utf8_lossy(&page.body).contains(r#"rel="icon" href="/favicon.svg""#));
    assert_eq!(
        (icon.status, icon.headers["content-type"].to_str().unwrap()),
        (200, "image/svg+xml")
    );
    app.stop().await;
}
