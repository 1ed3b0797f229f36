//! The dashboard in headless Chromium against a real server: signing in, each view following the server live,
//! the actions, resuming after the feed is cut, and the Files view's first page over 100,000 files.
#![allow(clippy::unwrap_used)]

#[path = "../common/api.rs"]
mod helpers;
mod page;

use std::time::Duration;

use helpers::{spawn_app, spawn_app_in, ADMIN};
use page::{card, card_is, cell_with, click, confirm, open_signed_in, options, sql, view, Browser, LIVE, SOON};
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_takes_the_token_and_keeps_it_out_of_the_url() {
    let app = spawn_app().await;
    let b = Browser::start().await;
    b.goto(&format!("http://{}/", app.addr)).await;
    b.wait_for(
        "the sign-in dialog",
        "return document.getElementById('signin').open",
        SOON,
    )
    .await;
    b.eval("document.getElementById('signin-token').value = 'not-the-token'; document.querySelector('#signin-form button').click(); return true").await;
    let (error, _) = b
        .wait_for(
            "the refusal",
            "const e = document.getElementById('signin-error'); return !e.hidden && e.textContent",
            SOON,
        )
        .await;
    assert_eq!(error, "That token is not valid.");
    b.screenshot("sign-in").await;
    b.eval(&format!("document.getElementById('signin-token').value = '{ADMIN}'; document.querySelector('#signin-form button').click(); return true")).await;
    b.wait_for(
        "the Overview",
        "return !document.getElementById('signin').open && document.querySelectorAll('.card').length >= 6",
        SOON,
    )
    .await;
    b.wait_for(
        "the live indicator",
        "return document.getElementById('live').textContent === 'live'",
        SOON,
    )
    .await;

    // The printed URL signs in at once and the token leaves the address bar.
    let b2 = Browser::start().await;
    b2.goto(&format!("http://{}/#token={ADMIN}", app.addr)).await;
    b2.wait_for(
        "the Overview",
        "return document.querySelectorAll('.card').length >= 6",
        SOON,
    )
    .await;
    let href = b2.eval("return location.href").await;
    assert!(
        !href.as_str().unwrap().contains(ADMIN),
        "the token stays out of the URL: {href}"
    );
    assert_eq!(b2.eval("return document.getElementById('signin').open").await, false);
    // A reload stays signed in (the token is kept for the session) and lands on the same view.
    b2.eval("location.hash = '#/logs'; return true").await;
    b2.wait_for("the Logs view", "return !!document.querySelector('ol.tail')", SOON)
        .await;
    b2.eval("location.reload(); return true").await;
    b2.wait_for("the Logs view after a reload", "return !!document.querySelector('ol.tail') && document.querySelector('nav a[aria-current]').textContent === 'Logs'", SOON).await;
    b.quit().await;
    b2.quit().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_views_follow_the_server_live_and_their_actions_work() {
    let app = spawn_app().await;
    let (first, _) = app.register("alpha").await;
    let b = open_signed_in(&app).await;
    // Set once: a reload would lose it.
    b.eval("window.notReloaded = true; return true").await;

    // Clients: a client registered through the API appears without a reload.
    view(
        &b,
        "#/clients",
        "return document.querySelector('table[aria-label=\"Clients\"] td[data-col=\"name\"]')",
    )
    .await;
    b.wait_for("alpha", &cell_with("Clients", "name", "alpha"), SOON).await;
    let (beta, beta_token) = app.register("beta").await;
    let (_, took) = b
        .wait_for("beta in Clients", &cell_with("Clients", "name", "beta"), LIVE)
        .await;
    eprintln!("a registered client appeared in Clients after {took:?}");
    // A heartbeat turns its badge to Connected, live too.
    let r = app
        .post_json(&format!("/api/clients/{beta}/heartbeat"), Some(&beta_token), json!({}))
        .await;
    assert_eq!(r.status, 200);
    b.wait_for("beta connected", &cell_with("Clients", "status", "Connected"), LIVE)
        .await;
    // Search narrows the table.
    b.eval("const s = document.querySelector('input[aria-label=\"Search clients\"]'); s.value = 'alp'; s.dispatchEvent(new Event('input')); return true").await;
    b.wait_for("the search", "const names = [...document.querySelectorAll('td[data-col=\"name\"]')].map(t => t.textContent); return names.length === 1 && names[0] === 'alpha'", SOON).await;
    b.screenshot("clients").await;

    // Files: an upload appears, and the Overview's figures change.
    view(
        &b,
        "#/overview",
        "return document.querySelectorAll('.card').length >= 6",
    )
    .await;
    let files_before = b.eval(&card("Files")).await;
    assert_eq!(files_before, "0");
    let r = app
        .upload(&beta, &beta_token, "report.pdf", b"%PDF-1.7 quarterly figures")
        .await;
    assert_eq!(r.status, 201);
    let file = r.data()["id"].as_str().unwrap().to_owned();
    b.wait_for("the Files card to count the upload", &card_is("Files", "1"), LIVE)
        .await;
    b.wait_for(
        "the activity list",
        "return [...document.querySelectorAll('ul.feed li')].some(li => li.textContent.includes('report.pdf'))",
        LIVE,
    )
    .await;
    b.screenshot("overview").await;
    view(
        &b,
        "#/files",
        "return document.querySelector('table[aria-label=\"Files\"]')",
    )
    .await;
    b.wait_for(
        "report.pdf in Files",
        &cell_with("Files", "filename", "report.pdf"),
        SOON,
    )
    .await;
    let r = app.upload(&beta, &beta_token, "notes.txt", b"second file").await;
    assert_eq!(r.status, 201);
    b.wait_for(
        "notes.txt in Files, live",
        &cell_with("Files", "filename", "notes.txt"),
        LIVE,
    )
    .await;

    // Download goes through fetch with the token; the page saves what came back.
    b.eval("window.saved = []; const make = URL.createObjectURL; URL.createObjectURL = (blob) => { window.saved.push(blob); return make(blob); }; return true").await;
    b.eval("[...document.querySelectorAll('table[aria-label=\"Files\"] tr')].find(r => r.textContent.includes('report.pdf')).querySelector('button').click(); return true").await;
    b.wait_for("the download", "return window.saved.length === 1", SOON)
        .await;
    assert_eq!(
        b.eval("return window.saved[0].text()").await,
        "%PDF-1.7 quarterly figures"
    );

    // Verify shows its result, in the row and as a notice.
    b.eval("const row = [...document.querySelectorAll('table[aria-label=\"Files\"] tr')].find(r => r.textContent.includes('report.pdf')); [...row.querySelectorAll('button')].find(x => x.textContent === 'Verify').click(); return true").await;
    b.wait_for("the verification's notice", "return [...document.querySelectorAll('.notice')].some(n => n.textContent.includes('report.pdf: both checksums match'))", SOON).await;
    b.wait_for("the verified badge", "const row = [...document.querySelectorAll('table[aria-label=\"Files\"] tr')].find(r => r.textContent.includes('report.pdf')); return row.querySelector('[data-col=\"verified\"]').textContent === 'verified'", SOON).await;
    assert_eq!(app.get(&format!("/api/files/{file}")).await.data()["verified"], true);
    // The filter on verification.
    b.eval("const s = document.querySelector('select[aria-label=\"Verified\"]'); s.value = 'false'; s.dispatchEvent(new Event('change')); return true").await;
    b.wait_for("only the unverified file", "const names = [...document.querySelectorAll('td[data-col=\"filename\"]')].map(t => t.textContent); return names.length === 1 && names[0] === 'notes.txt'", SOON).await;
    b.screenshot("files").await;
    // Delete asks first; cancelling keeps the file, confirming deletes it.
    b.eval("[...document.querySelectorAll('table[aria-label=\"Files\"] tr')].find(r => r.textContent.includes('notes.txt')).querySelector('button.danger-text').click(); return true").await;
    b.wait_for(
        "the confirmation",
        "return document.querySelector('dialog.confirm[open]')",
        SOON,
    )
    .await;
    click(&b, "Cancel").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        app.get("/api/files").await.data()["total"],
        2,
        "cancelled: nothing deleted"
    );
    b.eval("[...document.querySelectorAll('table[aria-label=\"Files\"] tr')].find(r => r.textContent.includes('notes.txt')).querySelector('button.danger-text').click(); return true").await;
    confirm(&b).await;
    b.wait_for(
        "notes.txt gone",
        "return document.querySelector('table[aria-label=\"Files\"] td.empty')",
        SOON,
    )
    .await;
    assert_eq!(app.get("/api/files").await.data()["total"], 1);

    // Logs: a new line shows in the tail, coloured by level; a pause holds the lines back.
    view(&b, "#/logs", "return document.querySelector('ol.tail')").await;
    let log = |message: &'static str, level: &'static str| {
        let app = &app;
        async move {
            let r = app
                .post_json(
                    "/api/logs",
                    Some(ADMIN),
                    json!({ "level": level, "message": message, "source": "backup" }),
                )
                .await;
            assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
        }
    };
    log("nightly run failed: disk full", "error").await;
    b.wait_for("the error line", "const li = [...document.querySelectorAll('ol.tail li')].pop(); return li && li.classList.contains('lvl-error') && li.textContent.includes('disk full')", LIVE).await;
    b.eval("document.querySelector('button[aria-pressed]').click(); return true")
        .await;
    log("held while paused", "info").await;
    b.wait_for(
        "the held count",
        "return document.querySelector('.toolbar [aria-live]').textContent.includes('1 new')",
        SOON,
    )
    .await;
    assert_eq!(
        b.eval("return document.querySelector('ol.tail').textContent.includes('held while paused')")
            .await,
        false
    );
    b.eval("document.querySelector('button[aria-pressed]').click(); return true")
        .await;
    b.wait_for(
        "the held line after resuming",
        "return document.querySelector('ol.tail').textContent.includes('held while paused')",
        SOON,
    )
    .await;
    // The level filter applies to the lines already there and to those that come.
    b.eval("const s = document.querySelector('select[aria-label=\"Level\"]'); s.value = 'error'; s.dispatchEvent(new Event('change')); return true").await;
    b.wait_for("errors only", "const lis = [...document.querySelectorAll('ol.tail li')]; return lis.length === 1 && lis[0].classList.contains('lvl-error')", SOON).await;
    log("an info line the filter hides", "info").await;
    log("a second error", "error").await;
    b.wait_for(
        "the second error",
        "return document.querySelector('ol.tail').textContent.includes('a second error')",
        LIVE,
    )
    .await;
    assert_eq!(
        b.eval("return document.querySelector('ol.tail').textContent.includes('filter hides')")
            .await,
        false
    );
    b.screenshot("logs").await;
    // Export asks the server for the filtered lines.
    b.eval("window.saved = []; return true").await;
    click(&b, "Export JSON").await;
    b.wait_for("the export", "return window.saved.length === 1", SOON).await;
    let exported: Value =
        serde_json::from_str(b.eval("return window.saved[0].text()").await.as_str().unwrap()).unwrap();
    let messages: Vec<&str> = exported
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["message"].as_str().unwrap())
        .collect();
    assert_eq!(messages, ["nightly run failed: disk full", "a second error"]);
    // Scrolling up pauses the tail.
    let loads = b
        .eval("return Number(document.querySelector('ol.tail').dataset.loads)")
        .await;
    b.eval("const s = document.querySelector('select[aria-label=\"Level\"]'); s.value = ''; s.dispatchEvent(new Event('change')); return true").await;
    // The filter reloads the tail; the lines that follow must come after that.
    b.wait_for(
        "the reload",
        &format!("return Number(document.querySelector('ol.tail').dataset.loads) > {loads}"),
        SOON,
    )
    .await;
    for i in 0..60 {
        let r = app
            .post_json(
                "/api/logs",
                Some(ADMIN),
                json!({ "level": "debug", "message": format!("filler {i}"), "source": "agent" }),
            )
            .await;
        assert_eq!(r.status, 201);
    }
    b.wait_for("the tail to overflow", "const t = document.querySelector('ol.tail'); return t.textContent.includes('filler 59') && t.scrollHeight > t.clientHeight", SOON).await;
    b.eval("const t = document.querySelector('ol.tail'); t.scrollTop = 0; t.dispatchEvent(new Event('scroll')); return true").await;
    b.wait_for(
        "the pause",
        "return document.querySelector('button[aria-pressed]').getAttribute('aria-pressed') === 'true'",
        SOON,
    )
    .await;
    log("arrives while scrolled up", "info").await;
    b.wait_for(
        "the held count",
        "return document.querySelector('.toolbar [aria-live]').textContent.includes('1 new')",
        SOON,
    )
    .await;
    b.eval("document.querySelector('button[aria-pressed]').click(); return true")
        .await;
    b.wait_for("the line after resuming", "const li = [...document.querySelectorAll('ol.tail li')].pop(); return li.textContent.includes('arrives while scrolled up')", SOON).await;
    // Clear asks first, then empties the tail of every open page.
    click(&b, "Clear…").await;
    confirm(&b).await;
    b.wait_for(
        "the cleared tail",
        "return document.querySelector('ol.tail').textContent.includes('The log was cleared')",
        SOON,
    )
    .await;
    assert_eq!(app.get("/api/logs").await.data()["total"], 0);

    // Audit: the events and the chain's status; an event in full; a client's state as of a position.
    view(&b, "#/audit", "return document.getElementById('view').dataset.chain && document.querySelector('table[aria-label=\"Events\"] tbody tr')").await;
    assert_eq!(
        b.eval("return document.getElementById('view').dataset.chain").await,
        "ok"
    );
    let total = app.get("/api/events?limit=1").await.data()["total"].as_i64().unwrap();
    b.wait_for(
        "every event listed",
        &format!("return document.querySelectorAll('table[aria-label=\"Events\"] tbody tr').length === {total}"),
        SOON,
    )
    .await;
    log("an event after the list loaded", "info").await;
    b.wait_for(
        "the new event, live",
        &format!(
            "return document.querySelectorAll('table[aria-label=\"Events\"] tbody tr').length === {}",
            total + 1
        ),
        LIVE,
    )
    .await;
    b.eval("[...document.querySelectorAll('table[aria-label=\"Events\"] tbody tr')].find(r => r.textContent.includes('ClientRegistered')).click(); return true").await;
    b.wait_for("the event's JSON", "const p = document.querySelector('pre.json'); return p && JSON.parse(p.textContent).type === 'ClientRegistered'", SOON).await;
    click(&b, "State as of this event").await;
    b.wait_for("the state then and now", "const p = document.querySelectorAll('pre.json'); return p.length === 2 && JSON.parse(p[0].textContent).version === 1", SOON).await;
    b.screenshot("audit").await;
    // The entity's history from the same event.
    b.eval("[...document.querySelectorAll('table[aria-label=\"Events\"] tbody tr')].find(r => r.textContent.includes('ClientRegistered')).click(); return true").await;
    b.wait_for(
        "the event again",
        "return document.querySelector('.detail button')",
        SOON,
    )
    .await;
    click(&b, "Entity history").await;
    b.wait_for("alpha's history", "const h = document.querySelector('ol.history'); return h && h.children.length === 1 && h.textContent.includes('ClientRegistered')", SOON).await;
    // Filters: by type, then by actor.
    b.eval("const t = document.querySelector('select[aria-label=\"Type\"]'); t.value = 'FileStored'; document.querySelector('form.toolbar button[type=submit]').click(); return true").await;
    b.wait_for("only FileStored", "const types = [...document.querySelectorAll('table[aria-label=\"Events\"] tbody tr td:nth-child(3)')].map(t => t.textContent); return types.length === 2 && types.every(t => t === 'FileStored')", SOON).await;
    b.eval("document.querySelector('select[aria-label=\"Type\"]').value = ''; document.querySelector('input[aria-label=\"Actor\"]').value = 'system'; document.querySelector('form.toolbar button[type=submit]').click(); return true").await;
    b.wait_for("no event by the system", "return document.querySelectorAll('table[aria-label=\"Events\"] tbody tr').length === 0 && document.querySelector('.pager .muted').textContent === '0 of 0 events'", SOON).await;

    // Analytics: the charts draw from /api/stats.
    view(&b, "#/analytics", "return document.getElementById('view').dataset.drawn && document.querySelectorAll('.chart canvas').length === 4").await;
    let uploads = b.eval("return [...document.querySelectorAll('.card')].find(c => c.textContent.startsWith('Uploads')).querySelector('.value').textContent").await;
    assert_eq!(uploads, "2");
    b.screenshot("analytics").await;

    // Database: the tables, health, the SQL console (reads answer, writes are refused), backup.
    view(&b, "#/database", "return document.querySelector('table[aria-label=\"Tables\"]') && document.querySelector('ul.checks') && document.querySelector('table[aria-label=\"Rows of clients\"] tbody td')").await;
    assert_eq!(b.eval("return document.querySelectorAll('ul.checks .badge.ok').length === document.querySelectorAll('ul.checks li').length").await, true);
    sql(&b, "SELECT name FROM clients ORDER BY name").await;
    b.wait_for("the query's rows", "const t = document.querySelector('table[aria-label=\"Query result\"]'); return t && [...t.querySelectorAll('td')].map(td => td.textContent).join(',') === 'alpha,beta'", SOON).await;
    sql(&b, "DELETE FROM clients").await;
    b.wait_for(
        "the refusal",
        "const e = document.querySelector('.sql-result .error'); return e && e.textContent",
        SOON,
    )
    .await;
    assert_eq!(
        app.get("/api/clients").await.data()["total"],
        2,
        "the console wrote nothing"
    );
    click(&b, "Back up now").await;
    b.wait_for(
        "the backup's notice",
        "return [...document.querySelectorAll('.notice')].some(n => n.textContent.startsWith('Backup written'))",
        SOON,
    )
    .await;
    b.screenshot("database").await;
    click(&b, "Optimize").await;
    b.wait_for("the optimize notice", "return [...document.querySelectorAll('.notice')].some(n => n.textContent.startsWith('ANALYZE and PRAGMA optimize done'))", SOON).await;
    assert_eq!(app.get("/api/events?type=DatabaseOptimized").await.data()["total"], 1);

    // A client's details: its files and history; rotate the token, then delete it, each after a confirmation.
    view(&b, &format!("#/clients/{beta}"), "return document.querySelector('ul.feed li') && document.querySelector('table[aria-label=\"The client\\'s files\"] td[data-col=\"filename\"]')").await;
    assert_eq!(b.eval("return document.querySelector('h1').textContent").await, "beta");
    b.screenshot("client").await;
    click(&b, "Rotate token").await;
    confirm(&b).await;
    let (new_token, _) = b
        .wait_for(
            "the new token",
            "const i = document.querySelector('dialog[open] input.secret'); return i && i.value",
            SOON,
        )
        .await;
    let r = app
        .post_json(&format!("/api/clients/{beta}/heartbeat"), Some(&beta_token), json!({}))
        .await;
    assert_eq!(r.status, 401, "the old token stopped working");
    let r = app
        .post_json(
            &format!("/api/clients/{beta}/heartbeat"),
            Some(new_token.as_str().unwrap()),
            json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "the new token works");
    click(&b, "Done").await;
    b.wait_for(
        "the rotation in the history",
        "return document.querySelector('ul.feed').textContent.includes('ClientTokenRotated')",
        LIVE,
    )
    .await;
    click(&b, "Delete").await;
    confirm(&b).await;
    b.wait_for(
        "back to the list",
        "return location.hash === '#/clients' && document.querySelector('td[data-col=\"name\"]')",
        SOON,
    )
    .await;
    assert_eq!(app.get(&format!("/api/clients/{beta}")).await.status, 404);
    assert_eq!(app.get(&format!("/api/clients/{first}")).await.status, 200);

    assert_eq!(
        b.eval("return window.notReloaded === true").await,
        true,
        "no view reloaded the page"
    );
    b.quit().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_resumes_after_the_feed_is_cut_and_restored() {
    let app = spawn_app().await;
    let addr = app.addr;
    app.register("before-the-cut").await;
    let b = open_signed_in(&app).await;
    view(&b, "#/audit", "return document.querySelector('table[aria-label=\"Events\"] tbody tr') && document.getElementById('view').dataset.chain").await;
    b.eval("window.notReloaded = true; return true").await;
    let before = app.get("/api/events?limit=1").await.data()["total"].as_i64().unwrap();

    // The server goes away: the page says so.
    let dir = app.stop_keeping_data().await;
    b.wait_for(
        "the indicator to leave live",
        "const t = document.getElementById('live').textContent; return t === 'reconnecting' || t === 'offline'",
        SOON,
    )
    .await;
    b.screenshot("reconnecting").await;

    // It comes back on the same address: the page resubscribes after its last position.
    let app = spawn_app_in(
        dir,
        &addr.to_string(),
        options(),
        Duration::from_secs(60),
        Default::default(),
    )
    .await;
    b.wait_for(
        "live again",
        "return document.getElementById('live').textContent === 'live'",
        Duration::from_secs(20),
    )
    .await;
    let r = app
        .post_json(
            "/api/logs",
            Some(ADMIN),
            json!({ "level": "info", "message": "after the restart" }),
        )
        .await;
    assert_eq!(r.status, 201);
    // Every event since the page's last position arrives once: the restart's ServerStarted and the log line.
    let after = app.get("/api/events?limit=1").await.data()["total"].as_i64().unwrap();
    b.wait_for(
        "the events since the cut",
        &format!("return document.querySelectorAll('table[aria-label=\"Events\"] tbody tr').length === {after}"),
        SOON,
    )
    .await;
    let positions = b.eval("return [...document.querySelectorAll('table[aria-label=\"Events\"] tbody tr')].map(r => Number(r.dataset.position))").await;
    let positions: Vec<i64> = serde_json::from_value(positions).unwrap();
    assert_eq!(
        positions,
        (1..=after).collect::<Vec<_>>(),
        "no gap and no duplicate across the cut (was {before})"
    );
    assert_eq!(b.eval("return window.notReloaded === true").await, true);
    b.quit().await;
    app.stop().await;
}

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
    let b = open_signed_in(&app).await;
    let mut timings = Vec::new();
    for round in 0..5 {
        // From another view, so that each round mounts the Files view afresh.
        view(&b, "#/logs", "return document.querySelector('ol.tail')").await;
        view(
            &b,
            "#/files",
            "return document.getElementById('view').dataset.firstPageMs",
        )
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
    b.quit().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_returns_to_sign_in_and_unknown_things_say_so() {
    let app = spawn_app().await;
    let b = Browser::start().await;
    // A stale link: the token is refused, so the page asks for one instead of showing empty views.
    b.goto(&format!("http://{}/#token=a-token-that-was-rotated-away", app.addr))
        .await;
    b.wait_for(
        "the sign-in dialog",
        "return document.getElementById('signin').open",
        SOON,
    )
    .await;
    b.eval(&format!(
        "document.getElementById('signin-token').value = '{ADMIN}'; document.querySelector('#signin-form button').click(); return true"
    ))
    .await;
    b.wait_for(
        "live",
        "return document.getElementById('live').textContent === 'live'",
        SOON,
    )
    .await;

    // An unknown client, an unknown event, a SQL error: each says what went wrong.
    view(
        &b,
        "#/clients/00000000-0000-0000-0000-000000000000",
        "return document.querySelector('#view p.error')",
    )
    .await;
    let text = b
        .eval("return document.querySelector('#view p.error').textContent")
        .await;
    assert!(text.as_str().unwrap().contains("not found"), "{text}");
    view(
        &b,
        "#/audit/999999",
        "return [...document.querySelectorAll('.notice.error')].some(n => n.textContent.includes('999999'))",
    )
    .await;
    view(&b, "#/database", "return document.querySelector('textarea.sql')").await;
    sql(&b, "SELEKT 1").await;
    b.wait_for(
        "the SQL error",
        "const e = document.querySelector('.sql-result .error'); return e && e.textContent.includes('syntax')",
        SOON,
    )
    .await;
    // Names are text, never markup.
    app.register("<img src=x onerror=\"window.injected=1\">").await;
    view(
        &b,
        "#/clients",
        "return document.querySelector('td[data-col=\"name\"]')",
    )
    .await;
    b.wait_for(
        "the odd name, shown as text",
        &cell_with("Clients", "name", "<img src=x"),
        SOON,
    )
    .await;
    assert_eq!(
        b.eval("return window.injected === undefined && !document.querySelector('#view img')")
            .await,
        true
    );
    b.quit().await;
    app.stop().await;
}
