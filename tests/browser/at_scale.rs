//! The dashboard at scale: the Files view over 100,000 files, its first page timed in the browser beside the API
//! alone and raw SQLite (the figure goes to BENCHMARKS.md), and the next page and a sort over all of them.

use std::time::Duration;

use crate::helpers::spawn_app_in;
use crate::page::{options, Browser, SOON};

/// 45 clients and 100,000 files, appended through the writer with the projections on, as a fleet's history.
fn seed_files(dir: &std::path::Path, files: usize) {
    use cairn_events::catalogue::{ClientRegistered, FileStored};
    use cairn_events::{DomainEvent, Metadata};
    let cairn = cairn::Cairn::open(dir, options()).unwrap();
    let clients: Vec<(uuid::Uuid, String)> = (0..45)
        .map(|i| (uuid::Uuid::now_v7(), format!("host-{i:02}")))
        .collect();
    let mut events: Vec<DomainEvent> = clients
        .iter()
        .map(|(id, name)| {
            ClientRegistered {
                client_id: *id,
                external_id: name.clone(),
                name: name.clone(),
                ip_address: None,
                token_hash: "00".repeat(32),
            }
            .into()
        })
        .collect();
    const NAMES: &[&str] = &[
        "report", "photo", "backup", "notes", "db-dump", "invoice", "mail", "archive",
    ];
    for i in 0..files {
        let (client, name) = &clients[i % clients.len()];
        events.push(
            FileStored {
                file_id: uuid::Uuid::now_v7(),
                client_id: *client,
                client_name: name.clone(),
                filename: format!("{}-{i:06}.bin", NAMES[i % NAMES.len()]),
                original_path: format!("/srv/{name}/{i:06}.bin"),
                size: 1000 + (i as u64 * 7919) % 10_000_000,
                sha256: format!("{i:064x}"),
                crc32: i as u32,
                mime_type: "application/octet-stream".into(),
                transfer_id: None,
                mtime: None,
                mode: None,
                run_id: None,
            }
            .into(),
        );
    }
    cairn
        .store()
        .append_history_blocking(&events, &Metadata::system(), 5000)
        .unwrap();
    cairn.close();
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Not a timed assertion: the figure goes to BENCHMARKS.md. The test checks the page is right at that size.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_files_view_shows_its_first_page_over_100000_files() {
    const FILES: usize = 100_000;
    let dir = tempfile::tempdir().unwrap();
    let seeding = std::time::Instant::now();
    let path = dir.path().to_owned();
    tokio::task::spawn_blocking(move || seed_files(&path, FILES))
        .await
        .unwrap();
    eprintln!("seeded {FILES} files in {:?}", seeding.elapsed());
    // The reference: raw SQLite answering the same first page (its count and its 50 rows), nothing else.
    let db = dir.path().join("cairn.db");
    let raw_ms = median(
        (0..5)
            .map(|_| {
                let conn =
                    rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
                let started = std::time::Instant::now();
                let total: i64 = conn.query_row("SELECT count(*) FROM files", [], |r| r.get(0)).unwrap();
                let mut stmt = conn
                    .prepare("SELECT * FROM files ORDER BY uploaded_at DESC, rowid DESC LIMIT 50")
                    .unwrap();
                let rows = stmt.query_map([], |r| r.get::<_, String>(0)).unwrap().count();
                assert_eq!((total, rows), (FILES as i64, 50));
                started.elapsed().as_secs_f64() * 1000.0
            })
            .collect(),
    );
    let app = spawn_app_in(
        dir,
        "127.0.0.1:0",
        options(),
        Duration::from_secs(60),
        Default::default(),
    )
    .await;
    // The server alone: the API's answer for that page, as the browser asks for it.
    let mut api = Vec::new();
    for _ in 0..5 {
        let started = std::time::Instant::now();
        let r = app.get("/api/files?page=1&per_page=50&sort=-uploaded_at").await;
        api.push(started.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(r.data()["items"].as_array().unwrap().len(), 50);
    }
    let api_ms = median(api);
    let b = Browser::open_signed_in(&app).await;
    let mut timings = Vec::new();
    for round in 0..5 {
        // From another view, so that each round mounts the Files view afresh.
        b.view("#/logs", "return document.querySelector('ol.tail')").await;
        b.view("#/files", "return document.getElementById('view').dataset.firstPageMs")
            .await;
        let ms: f64 = b
            .eval("return Number(document.getElementById('view').dataset.firstPageMs)")
            .await
            .as_f64()
            .unwrap();
        timings.push(ms);
        if round == 0 {
            assert_eq!(
                b.eval("return document.querySelectorAll('table[aria-label=\"Files\"] tbody tr').length")
                    .await,
                50
            );
            let info = b
                .eval("return document.querySelector('.pager .muted').textContent")
                .await;
            assert_eq!(info, format!("page 1 of 2000 · {FILES} in all"));
            b.screenshot("files-100k").await;
        }
    }
    // The next page and a sort over all of them, through the same table.
    b.eval("[...document.querySelectorAll('.pager button')].find(x => x.textContent.startsWith('Next')).click(); return true").await;
    b.wait_for(
        "page 2",
        "return document.querySelector('.pager .muted').textContent.startsWith('page 2 of 2000')",
        SOON,
    )
    .await;
    b.eval(
        "[...document.querySelectorAll('th button')].find(x => x.textContent.startsWith('Size')).click(); return true",
    )
    .await;
    b.wait_for("sorted by size, page 1", "const s = [...document.querySelectorAll('td[data-col=\"size\"]')].map(t => t.textContent); return document.querySelector('.pager .muted').textContent.startsWith('page 1 of') && s[0] === '1.0 KB'", SOON).await;
    let rounds = timings.len();
    let (min, max) = (
        timings.iter().copied().fold(f64::MAX, f64::min),
        timings.iter().copied().fold(0.0, f64::max),
    );
    let build = if cfg!(debug_assertions) { "debug" } else { "release" };
    let line = format!(
        "files view, first page over {FILES} files ({build} build): in the browser median {:.1} ms (min {min:.1}, max {max:.1}, {rounds} rounds); GET /api/files alone {api_ms:.1} ms; raw SQLite count + page {raw_ms:.1} ms",
        median(timings),
    );
    eprintln!("{line}");
    let out = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("files-first-page.txt");
    std::fs::write(out, line + "\n").unwrap();
    app.stop().await;
}
