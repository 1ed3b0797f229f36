//! Overview: the figures and the activity follow the server live.

use crate::helpers::spawn_app;
use crate::page::{card, card_is, log_line, upload, Browser, LIVE, SOON};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_moves_the_files_card_and_shows_in_the_activity_live() {
    let app = spawn_app().await;
    let (beta, beta_token) = app.register("beta").await;
    let b = Browser::open_signed_in(&app).await;
    b.view("#/overview", "return document.querySelectorAll('.card').length >= 6")
        .await;
    assert_eq!(b.eval(&card("Files")).await, "0");

    upload(&app, &beta, &beta_token, "report.pdf", b"%PDF-1.7 quarterly figures").await;
    b.wait_for("the Files card to count the upload", &card_is("Files", "1"), LIVE)
        .await;
    b.wait_for(
        "the activity list",
        "return [...document.querySelectorAll('ul.feed li')].some(li => li.textContent.includes('report.pdf'))",
        LIVE,
    )
    .await;
    b.wait_for(
        "the transfer's line to say whose it was",
        "return [...document.querySelectorAll('ul.feed li')].some(li => li.textContent.includes('beta: transfer completed'))",
        LIVE,
    )
    .await;
    b.screenshot("overview").await;
    b.assert_not_reloaded().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn needs_attention_lists_a_failed_transfer_and_an_offline_client_live_with_links() {
    let app = spawn_app().await;
    let (alpha, alpha_token) = app.register("alpha").await;
    let b = Browser::open_signed_in(&app).await;
    b.view("#/overview", "return document.querySelector('.attention .all-clear')")
        .await;

    app.fail_an_upload(&alpha, &alpha_token, "broken.bin").await;
    app.as_client(&alpha, &alpha_token, "heartbeat").await;
    app.as_client(&alpha, &alpha_token, "disconnect").await;

    b.wait_for(
        "the failure and the offline client in Needs attention",
        &format!(
            "const a = document.querySelector('.attention'); return a.dataset.count === '2' && a.textContent.includes('alpha: broken.bin') && a.textContent.includes('alpha is offline') && !!a.querySelector('a[href=\"#/clients/{alpha}\"]')"
        ),
        LIVE,
    )
    .await;
    b.assert_not_reloaded().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_transfers_card_counts_the_bars_beside_it_and_a_finished_upload_leaves_neither() {
    let app = spawn_app().await;
    let (alpha, alpha_token) = app.register("alpha").await;
    let b = Browser::open_signed_in(&app).await;
    b.view("#/overview", &card_is("Transfers active", "0")).await;
    b.eval("window.mismatch = []; const o = new MutationObserver(() => { const card = [...document.querySelectorAll('.card')].find(c => c.querySelector('.label').textContent === 'Transfers active'); const n = document.querySelectorAll('.transfers .progress').length; if (card && card.querySelector('.value').textContent !== String(n)) window.mismatch.push([card.querySelector('.value').textContent, n]); }); o.observe(document.getElementById('view'), { subtree: true, childList: true, characterData: true }); return true").await;

    for i in 0..5 {
        upload(
            &app,
            &alpha,
            &alpha_token,
            &format!("part-{i}.bin"),
            &vec![7u8; 3 << 20],
        )
        .await;
    }

    b.wait_for(
        "no bar and a card at 0 once the uploads finished",
        "return document.querySelectorAll('.transfers .progress').length === 0 && [...document.querySelectorAll('.card')].some(c => c.querySelector('.label').textContent === 'Transfers active' && c.querySelector('.value').textContent === '0') && document.querySelector('.card .sub') && [...document.querySelectorAll('.card')].some(c => c.querySelector('.sub').textContent === '5 in all')",
        SOON,
    )
    .await;
    assert_eq!(b.eval("return window.mismatch").await, serde_json::json!([]));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overview_shifts_its_layout_less_than_a_tenth_over_ten_seconds_of_live_traffic() {
    let app = spawn_app().await;
    let b = Browser::open_signed_in(&app).await;
    b.view("#/overview", "return document.querySelectorAll('.card').length >= 6")
        .await;
    // The sum, and what moved (for the message when it is too much).
    b.eval("window.shifts = 0; window.moved = {}; new PerformanceObserver((list) => { for (const e of list.getEntries()) { if (e.hadRecentInput) continue; window.shifts += e.value; for (const s of e.sources || []) { const n = s.node; const what = n ? (n.nodeType === 1 ? `${n.tagName.toLowerCase()}.${n.className} in ${n.parentElement?.className || n.parentElement?.tagName}` : `text in ${n.parentElement?.className}`) : '?'; window.moved[what] = (window.moved[what] || 0) + e.value; } } }).observe({ type: 'layout-shift' }); return true").await;

    // Ten seconds of a small fleet: registrations, heartbeats, uploads with progress, failures, log lines.
    let started = std::time::Instant::now();
    let mut clients = Vec::new();
    let mut round = 0;
    while started.elapsed() < std::time::Duration::from_secs(10) {
        if clients.len() < 6 {
            let (id, token) = app.register(&format!("host-{round}")).await;
            app.as_client(&id, &token, "heartbeat").await;
            clients.push((id, token));
        }
        let (id, token) = &clients[round % clients.len()];
        upload(
            &app,
            id,
            token,
            &format!("file-{round}.bin"),
            &vec![round as u8; 512 << 10],
        )
        .await;
        if round % 4 == 0 {
            app.fail_an_upload(id, token, &format!("bad-{round}.bin")).await;
        }
        log_line(&app, "info", &format!("round {round}")).await;
        round += 1;
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    }

    let shifts = b.eval("return window.shifts").await.as_f64().unwrap();
    println!("CLS over 10 s of live Overview: {shifts:.4} ({round} rounds)");
    let moved = b.eval("return JSON.stringify(window.moved)").await;
    assert!(shifts < 0.1, "cumulative layout shift {shifts}; what moved: {moved}");
    b.screenshot("overview-live").await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_upload_shows_its_speed_and_time_left_on_its_bar() {
    let app = spawn_app().await;
    let (alpha, alpha_token) = app.register("alpha").await;
    let b = Browser::open_signed_in(&app).await;
    b.view("#/overview", "return document.querySelectorAll('.card').length >= 6")
        .await;

    // 4 MiB in 64 KiB chunks, one every 40 ms: about 2.6 s, so the bar reports several times.
    let url = format!("http://{}/api/clients/{alpha}/files?name=slow.bin", app.addr);
    cairn::tls::install();
    let upload = tokio::spawn(async move {
        let chunks = futures_util::stream::unfold(0, |i| async move {
            if i == 64 {
                return None;
            }
            tokio::time::sleep(std::time::Duration::from_millis(40)).await;
            Some((Ok::<_, std::io::Error>(bytes::Bytes::from(vec![9u8; 64 << 10])), i + 1))
        });
        reqwest::Client::new()
            .post(url)
            .bearer_auth(alpha_token)
            .header("content-length", (4u64 << 20).to_string())
            .body(reqwest::Body::wrap_stream(chunks))
            .send()
            .await
            .unwrap()
            .status()
    });

    let (figures, _) = b
        .wait_for(
            "the bar's speed and time left",
            "const f = document.querySelector('.transfers .progress .figures'); return f && /MB of 4\\.2 MB · [0-9.]+ [kKM]?B\\/s · [0-9]+s left/.test(f.textContent) && f.textContent",
            SOON,
        )
        .await;
    println!("the bar said: {figures}");
    let filled = b
        .eval("const f = document.querySelector('.transfers .fill'); return f.getBoundingClientRect().width / f.parentElement.getBoundingClientRect().width")
        .await;
    assert!(filled.as_f64().unwrap() > 0.05, "the bar is filled: {filled}");
    assert_eq!(upload.await.unwrap(), 201);
    b.wait_for(
        "the bar to go",
        "return !document.querySelector('.transfers .progress')",
        LIVE,
    )
    .await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_theme_button_switches_the_theme_and_the_choice_outlives_a_reload() {
    let app = spawn_app().await;
    let b = Browser::open_signed_in(&app).await;
    let before = b.eval("return document.documentElement.dataset.theme").await;
    let other = if before == "dark" { "light" } else { "dark" };

    b.eval("document.getElementById('theme').click(); return true").await;
    assert_eq!(b.eval("return document.documentElement.dataset.theme").await, other);
    b.eval("location.reload(); return true").await;
    b.wait_for(
        "the page again",
        "return window.notReloaded === undefined && document.readyState === 'complete' && document.getElementById('live').textContent === 'live'",
        SOON,
    )
    .await;

    assert_eq!(b.eval("return document.documentElement.dataset.theme").await, other);
    app.stop().await;
}
