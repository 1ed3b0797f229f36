//! Audit: every event and the chain's status, new events live, an event in full and the state as of it, an
//! entity's history, the filters, an unknown event.

use crate::helpers::{spawn_app, TestApp};
use crate::page::{events_total, log_line, upload, Browser, LIVE, SOON};

/// The list and the chain's status, both loaded.
const AUDIT_LOADED: &str = "return document.getElementById('view').dataset.chain && document.querySelector('table[aria-label=\"Events\"] tbody tr')";

/// Clicks the first listed event of type `type`.
fn click_first(r#type: &str) -> String {
    format!("const r = [...document.querySelectorAll('table[aria-label=\"Events\"] tbody tr')].find(r => r.textContent.includes('{type}')); if (r) r.click(); return !!r")
}

fn rows_are(n: i64) -> String {
    format!("return document.querySelectorAll('table[aria-label=\"Events\"] tbody tr').length === {n}")
}

async fn open_audit(app: &TestApp) -> Browser {
    let b = Browser::open_signed_in(app).await;
    b.view("#/audit", AUDIT_LOADED).await;
    b
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_lists_every_event_and_says_the_chain_is_intact() {
    let app = spawn_app().await;
    let (beta, token) = app.register("beta").await;
    upload(&app, &beta, &token, "report.pdf", b"%PDF-1.7 quarterly figures").await;
    log_line(&app, "info", "a line").await;
    let b = open_audit(&app).await;

    assert_eq!(
        b.eval("return document.getElementById('view').dataset.chain").await,
        "ok"
    );
    let total = events_total(&app).await;
    b.wait_for("every event listed", &rows_are(total), SOON).await;
    b.assert_not_reloaded().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_event_is_appended_to_the_audit_list_live() {
    let app = spawn_app().await;
    app.register("alpha").await;
    let b = open_audit(&app).await;
    let total = events_total(&app).await;
    b.wait_for("every event listed", &rows_are(total), SOON).await;

    log_line(&app, "info", "an event after the list loaded").await;
    b.wait_for("the new event, live", &rows_are(total + 1), LIVE).await;
    b.assert_not_reloaded().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_shows_in_full_with_its_entity_as_of_it_and_now() {
    let app = spawn_app().await;
    app.register("alpha").await;
    let b = open_audit(&app).await;

    assert_eq!(b.eval(&click_first("ClientRegistered")).await, true);
    b.wait_for(
        "the event's JSON",
        "const p = document.querySelector('pre.json'); return p && JSON.parse(p.textContent).type === 'ClientRegistered'",
        SOON,
    )
    .await;
    b.click("State as of this event").await;
    b.wait_for(
        "the state then and now",
        "const p = document.querySelectorAll('pre.json'); return p.length === 2 && JSON.parse(p[0].textContent).version === 1",
        SOON,
    )
    .await;
    b.screenshot("audit").await;
    b.assert_not_reloaded().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_state_of_a_client_is_asked_for_by_its_name() {
    let app = spawn_app().await;
    app.register("workstation-21").await;
    let b = open_audit(&app).await;

    let ask = "document.querySelector('input[aria-label=\"Name or id\"]').value = 'workstation-21'; \
               document.querySelector('input[aria-label=Position]').value = '1'; \
               document.querySelector('input[aria-label=Position]').form.requestSubmit(); return true";
    b.eval(ask).await;
    b.wait_for(
        "the client as of position 1, found by its name",
        "const p = document.querySelectorAll('pre.json'); return p.length === 2 && JSON.parse(p[0].textContent).name === 'workstation-21' && [...document.querySelectorAll('#view h2')].some(h => h.textContent === 'client workstation-21')",
        SOON,
    )
    .await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_events_entity_history_lists_the_events_of_its_stream() {
    let app = spawn_app().await;
    app.register("alpha").await;
    let b = open_audit(&app).await;

    assert_eq!(b.eval(&click_first("ClientRegistered")).await, true);
    b.wait_for("the event", "return document.querySelector('.detail button')", SOON)
        .await;
    b.click("Entity history").await;
    b.wait_for(
        "alpha's history",
        "const h = document.querySelector('ol.history'); return h && h.children.length === 1 && h.textContent.includes('ClientRegistered')",
        SOON,
    )
    .await;
    b.assert_not_reloaded().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_filters_narrow_the_list_by_type_and_by_actor() {
    let app = spawn_app().await;
    let (beta, token) = app.register("beta").await;
    upload(&app, &beta, &token, "report.pdf", b"%PDF-1.7 quarterly figures").await;
    upload(&app, &beta, &token, "notes.txt", b"second file").await;
    let b = open_audit(&app).await;

    b.eval("document.querySelector('select[aria-label=\"Type\"]').value = 'FileStored'; document.querySelector('form.toolbar button[type=submit]').click(); return true").await;
    b.wait_for(
        "only FileStored",
        "const types = [...document.querySelectorAll('table[aria-label=\"Events\"] tbody tr td:nth-child(3)')].map(t => t.textContent); return types.length === 2 && types.every(t => t === 'FileStored')",
        SOON,
    )
    .await;

    let by = |actor: &str| {
        format!("document.querySelector('select[aria-label=\"Type\"]').value = ''; document.querySelector('input[aria-label=\"Actor\"]').value = '{actor}'; document.querySelector('form.toolbar button[type=submit]').click(); return true")
    };
    let client = format!("client:{beta}");
    let by_client = app.get(&format!("/api/events?actor={client}&limit=1")).await.data()["total"]
        .as_i64()
        .unwrap();
    assert!(by_client >= 2, "the uploads are the client's: {by_client}");
    b.eval(&by(&client)).await;
    b.wait_for(
        "only the client's events",
        // The actor by its name, its id in the cell's title.
        &format!("const actors = [...document.querySelectorAll('table[aria-label=\"Events\"] tbody tr td:nth-child(5)')]; return actors.length === {by_client} && actors.every(a => a.textContent === 'client beta' && a.title === '{client}')"),
        SOON,
    )
    .await;
    b.eval(&by("system")).await;
    b.wait_for(
        "no event by the system",
        "return document.querySelectorAll('table[aria-label=\"Events\"] tbody tr').length === 0 && document.querySelector('.pager .muted').textContent === '0 of 0 events'",
        SOON,
    )
    .await;
    b.assert_not_reloaded().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_event_says_so() {
    let app = spawn_app().await;
    let b = Browser::open_signed_in(&app).await;
    b.view(
        "#/audit/999999",
        "return [...document.querySelectorAll('.notice.error')].some(n => n.textContent.includes('999999'))",
    )
    .await;
    b.assert_not_reloaded().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_of_a_client_opens_the_restore_of_that_moment() {
    let app = spawn_app().await;
    let (alpha, token) = app.register("alpha").await;
    let draft = upload(&app, &alpha, &token, "draft.txt", b"the draft").await;
    let stored = app.get("/api/events?type=FileStored").await.data();
    let then = stored["events"][0]["position"].as_i64().unwrap();
    app.admin("DELETE", &format!("/api/files/{draft}"), serde_json::json!(null))
        .await;
    let b = Browser::open_signed_in(&app).await;
    b.view(
        &format!("#/audit/{then}"),
        "return document.querySelector('.detail h2, #view h2') && [...document.querySelectorAll('button')].some(b => b.textContent === 'Restore as of this event')",
    )
    .await;
    b.click("Restore as of this event").await;
    b.wait_for(
        "the client's page, its files as of that event",
        &format!("return location.hash === '#/clients/{alpha}?restore={then}' && document.querySelector('input[aria-label=\"Restore as of position\"]').value === '{then}' && (() => {{ const t = document.querySelector('table[aria-label=\"Files then\"]'); return !!t && t.textContent.includes('draft.txt') && t.textContent.includes('deleted since'); }})()"),
        SOON,
    )
    .await;
    b.assert_not_reloaded().await;
    app.stop().await;
}

/// Waits until the server's signed checkpoint covers `size` events (its signer runs once a second).
async fn signed(app: &TestApp, size: u64) {
    for _ in 0..100 {
        let note = app.get("/api/audit/checkpoint").await;
        let note = String::from_utf8_lossy(&note.body).into_owned();
        if note.lines().nth(1).and_then(|n| n.parse::<u64>().ok()) >= Some(size) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("no checkpoint of {size} events within 10 s");
}

/// The checkpoint panel has checked the server's checkpoint against the one this browser kept.
fn checkpoint_is(state: &str) -> String {
    format!("return document.getElementById('view').dataset.checkpoint === '{state}'")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_is_proven_in_the_browser_against_the_signed_checkpoint() {
    let app = spawn_app().await;
    app.register("alpha").await;
    for i in 0..6 {
        log_line(&app, "info", &format!("line {i}")).await;
    }
    let b = open_audit(&app).await;
    b.wait_for("the checkpoint, kept at the first look", &checkpoint_is("first"), SOON)
        .await;
    assert_eq!(b.eval(&click_first("line 3")).await, true);
    b.wait_for("the event in full", "return !!document.querySelector('pre.json')", SOON)
        .await;
    b.click("Prove").await;
    let (steps, _) = b
        .wait_for(
            "the proof, checked in the browser",
            "const p = document.querySelector('.proof'); return p && p.dataset.proof === 'ok' && p.querySelectorAll('ol.path li').length",
            SOON,
        )
        .await;
    // The leaf, one step per level of a tree of 7 or more events, and the root.
    assert!(steps.as_i64().unwrap() >= 5, "{steps}");
    let text = b.eval("return document.querySelector('.proof').textContent").await;
    assert!(
        text.as_str().unwrap().contains("checked here, in this browser"),
        "{text}"
    );
    b.screenshot("audit-proof").await;

    // An event newer than the last checkpoint is proven too: the server signs one that covers it.
    log_line(&app, "info", "the newest").await;
    let total = events_total(&app).await;
    b.wait_for("the new event, live", &rows_are(total), LIVE).await;
    assert_eq!(b.eval(&click_first("the newest")).await, true);
    b.wait_for(
        "the newest in full",
        "const p = document.querySelector('pre.json'); return p && p.textContent.includes('the newest')",
        SOON,
    )
    .await;
    b.click("Prove").await;
    b.wait_for(
        "the newest proven",
        "const p = document.querySelector('.proof'); return p && p.dataset.proof === 'ok'",
        SOON,
    )
    .await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_visit_checks_that_the_log_still_extends_the_checkpoint_seen_last() {
    let app = spawn_app().await;
    app.register("alpha").await;
    signed(&app, 1).await;
    let b = open_audit(&app).await;
    b.wait_for("the first look", &checkpoint_is("first"), SOON).await;
    let seen = b
        .eval("return JSON.parse(localStorage.getItem('cairn.checkpoint'))")
        .await;
    assert_eq!(seen["size"], 1, "{seen}");

    for i in 0..3 {
        log_line(&app, "info", &format!("later {i}")).await;
    }
    // The next visit finds the log grown, and consistent with what this browser saw.
    signed(&app, 4).await;
    b.view(
        "#/overview",
        "return !document.querySelector('table[aria-label=\"Events\"]')",
    )
    .await;
    b.view("#/audit", &checkpoint_is("extended")).await;
    let text = b
        .eval("return document.querySelector('[aria-label=\"Checkpoint\"]').textContent")
        .await;
    let text = text.as_str().unwrap();
    assert!(
        text.contains("has not been rewritten since you last looked on"),
        "{text}"
    );
    assert!(text.contains("its 1 events then are the first of the 4 now"), "{text}");

    // A browser that saw another history (the same key and size, another root) is warned loudly.
    b.eval("const s = JSON.parse(localStorage.getItem('cairn.checkpoint')); s.root = btoa(String.fromCharCode(...new Uint8Array(32))); localStorage.setItem('cairn.checkpoint', JSON.stringify(s)); return true").await;
    b.view(
        "#/overview",
        "return !document.querySelector('table[aria-label=\"Events\"]')",
    )
    .await;
    b.view("#/audit", &checkpoint_is("rewritten")).await;
    let alarm = b
        .eval("return document.querySelector('[role=\"alert\"].alarm').textContent")
        .await;
    let alarm = alarm.as_str().unwrap();
    assert!(
        alarm.contains("Warning: The log was rewritten: the checkpoint of 4 events you saw on"),
        "{alarm}"
    );
    assert!(alarm.contains("is not a prefix of today's 4 events"), "{alarm}");
    b.screenshot("audit-rewritten").await;
    app.stop().await;
}
