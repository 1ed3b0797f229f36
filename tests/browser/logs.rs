//! Logs: the live tail, coloured by level; pausing, by the button or by scrolling up; the level filter; the export;
//! clearing.

use serde_json::Value;

use crate::helpers::{spawn_app, TestApp};
use crate::page::{js_str, log_line, Browser, CONFIRMATION, LIVE, SOON};

/// The tail, once its first load is on screen (lines recorded after it are the live feed's).
const TAIL_LOADED: &str = "return Number(document.querySelector('ol.tail')?.dataset.loads) > 0";

const HELD_ONE: &str = "return document.querySelector('.toolbar [aria-live]').textContent.includes('1 new')";

/// Clicks the Pause button (which reads Resume while paused).
const TOGGLE_PAUSE: &str = "document.querySelector('button[aria-pressed]').click(); return true";

async fn open_logs(app: &TestApp) -> Browser {
    let b = Browser::open_signed_in(app).await;
    b.view("#/logs", TAIL_LOADED).await;
    b
}

/// Whether the tail's text contains `text`.
fn tail_has(text: &str) -> String {
    format!(
        "return document.querySelector('ol.tail').textContent.includes({})",
        js_str(text)
    )
}

/// Whether the tail's last line contains `text`.
fn last_line_has(text: &str) -> String {
    format!(
        "const li = [...document.querySelectorAll('ol.tail li')].pop(); return !!li && li.textContent.includes({})",
        js_str(text)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_line_shows_at_the_bottom_of_the_tail_coloured_by_its_level() {
    let app = spawn_app().await;
    let b = open_logs(&app).await;

    log_line(&app, "error", "nightly run failed: disk full").await;
    b.wait_for(
        "the error line",
        "const li = [...document.querySelectorAll('ol.tail li')].pop(); return li && li.classList.contains('lvl-error') && li.textContent.includes('disk full')",
        LIVE,
    )
    .await;
    b.assert_not_reloaded().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pausing_the_tail_holds_new_lines_back_until_it_resumes() {
    let app = spawn_app().await;
    let b = open_logs(&app).await;

    b.eval(TOGGLE_PAUSE).await;
    log_line(&app, "info", "held while paused").await;
    b.wait_for("the held count", HELD_ONE, SOON).await;
    assert_eq!(b.eval(&tail_has("held while paused")).await, false);

    b.eval(TOGGLE_PAUSE).await;
    b.wait_for("the held line after resuming", &tail_has("held while paused"), SOON)
        .await;
    b.assert_not_reloaded().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_level_filter_applies_to_the_lines_shown_and_to_those_that_come() {
    let app = spawn_app().await;
    log_line(&app, "error", "nightly run failed: disk full").await;
    log_line(&app, "info", "an info line").await;
    let b = open_logs(&app).await;
    b.wait_for(
        "both lines",
        "return document.querySelectorAll('ol.tail li').length === 2",
        SOON,
    )
    .await;

    b.choose("Level", "error").await;
    b.wait_for(
        "errors only",
        "const lis = [...document.querySelectorAll('ol.tail li')]; return lis.length === 1 && lis[0].classList.contains('lvl-error')",
        SOON,
    )
    .await;
    log_line(&app, "info", "an info line the filter hides").await;
    log_line(&app, "error", "a second error").await;
    b.wait_for("the second error", &tail_has("a second error"), LIVE).await;
    assert_eq!(b.eval(&tail_has("filter hides")).await, false);
    b.screenshot("logs").await;
    b.assert_not_reloaded().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exporting_saves_the_filtered_lines_from_the_server() {
    let app = spawn_app().await;
    log_line(&app, "error", "nightly run failed: disk full").await;
    log_line(&app, "info", "an info line").await;
    log_line(&app, "error", "a second error").await;
    let b = open_logs(&app).await;
    b.keep_downloads().await;
    b.choose("Level", "error").await;
    b.wait_for(
        "errors only",
        "const lis = [...document.querySelectorAll('ol.tail li')]; return lis.length === 2 && lis.every(li => li.classList.contains('lvl-error'))",
        SOON,
    )
    .await;

    b.click("Export JSON").await;
    let exported: Value = serde_json::from_str(&b.saved().await).unwrap();
    let messages: Vec<&str> = exported
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["message"].as_str().unwrap())
        .collect();
    assert_eq!(messages, ["nightly run failed: disk full", "a second error"]);
    b.assert_not_reloaded().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrolling_up_pauses_the_tail() {
    let app = spawn_app().await;
    for i in 0..60 {
        log_line(&app, "debug", &format!("filler {i}")).await;
    }
    let b = open_logs(&app).await;
    b.wait_for(
        "the tail to overflow",
        "const t = document.querySelector('ol.tail'); return t.textContent.includes('filler 59') && t.scrollHeight > t.clientHeight",
        SOON,
    )
    .await;

    b.eval("const t = document.querySelector('ol.tail'); t.scrollTop = 0; t.dispatchEvent(new Event('scroll')); return true").await;
    b.wait_for(
        "the pause",
        "return document.querySelector('button[aria-pressed]').getAttribute('aria-pressed') === 'true'",
        SOON,
    )
    .await;
    log_line(&app, "info", "arrives while scrolled up").await;
    b.wait_for("the held count", HELD_ONE, SOON).await;
    assert_eq!(b.eval(&last_line_has("arrives while scrolled up")).await, false);

    b.eval(TOGGLE_PAUSE).await;
    b.wait_for(
        "the line after resuming",
        &last_line_has("arrives while scrolled up"),
        SOON,
    )
    .await;
    b.assert_not_reloaded().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clearing_asks_first_then_empties_the_tail() {
    let app = spawn_app().await;
    log_line(&app, "info", "a line to clear").await;
    let b = open_logs(&app).await;
    b.wait_for("the line", &tail_has("a line to clear"), SOON).await;

    b.click("Clear…").await;
    b.wait_for("the confirmation", CONFIRMATION, SOON).await;
    assert_eq!(
        app.get("/api/logs").await.data()["total"],
        1,
        "not before it is confirmed"
    );
    b.confirm().await;
    b.wait_for("the cleared tail", &tail_has("The log was cleared"), SOON)
        .await;
    assert_eq!(app.get("/api/logs").await.data()["total"], 0);
    b.assert_not_reloaded().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clients_line_shows_its_name_and_the_client_filter_keeps_only_its_lines() {
    let app = spawn_app().await;
    let (a, a_token) = app.register("workstation-21").await;
    let (_, b_token) = app.register("nas-02").await;
    let b = open_logs(&app).await;
    for (token, message) in [(&a_token, "backup of /home done"), (&b_token, "scrub finished")] {
        let r = app
            .post_json(
                "/api/logs",
                Some(token),
                serde_json::json!({ "level": "info", "message": message }),
            )
            .await;
        assert_eq!(r.status, 201);
    }
    b.wait_for(
        "the live line to name its client",
        "return [...document.querySelectorAll('ol.tail li')].some(li => li.querySelector('.client')?.textContent === 'nas-02' && li.textContent.includes('scrub finished'))",
        LIVE,
    )
    .await;

    let choose = format!(
        "const s = document.querySelector('select[aria-label=Client]'); s.value = {}; s.dispatchEvent(new Event('change')); return true",
        js_str(&a)
    );
    b.eval(&choose).await;
    b.wait_for(
        "only workstation-21's lines",
        "const t = document.querySelector('ol.tail').textContent; return t.includes('backup of /home done') && !t.includes('scrub finished')",
        SOON,
    )
    .await;
    app.stop().await;
}
