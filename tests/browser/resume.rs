//! The page after the server goes away and comes back: it says so, resubscribes after its last position, and
//! misses nothing and repeats nothing.

use std::time::Duration;

use crate::helpers::{spawn_app, spawn_app_in};
use crate::page::{events_total, log_line, options, Browser, IS_LIVE, SOON};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_resumes_after_the_feed_is_cut_and_restored() {
    let app = spawn_app().await;
    let addr = app.addr;
    app.register("before-the-cut").await;
    let b = Browser::open_signed_in(&app).await;
    b.view("#/audit", "return document.querySelector('table[aria-label=\"Events\"] tbody tr') && document.getElementById('view').dataset.chain").await;
    let before = events_total(&app).await;

    // The server goes away: the page says so.
    let dir = app.stop_keeping_data().await;
    b.wait_for(
        "the indicator to leave live",
        "const t = document.getElementById('live').textContent; return t === 'reconnecting' || t === 'offline'",
        SOON,
    )
    .await;
    b.wait_for(
        "the banner saying the figures may be stale",
        "const s = document.getElementById('stale'); return !s.hidden && s.textContent.includes('out of date')",
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
    b.wait_for("live again", IS_LIVE, Duration::from_secs(20)).await;
    assert_eq!(
        b.eval("return document.getElementById('stale').hidden").await,
        true,
        "the banner goes with the cut"
    );
    log_line(&app, "info", "after the restart").await;
    // Every event since the page's last position arrives once: the restart's ServerStarted and the log line.
    let after = events_total(&app).await;
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
    b.assert_not_reloaded().await;
    app.stop().await;
}
