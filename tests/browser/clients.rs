//! Clients: the list follows the server live and searches; one client's page shows its files and history, rotates
//! its token and deletes it; unknown ids and odd names.

use serde_json::json;

use crate::helpers::spawn_app;
use crate::page::{cell_with, column_is, upload, Browser, CONFIRMATION, LIVE, SOON};

const CLIENTS_LOADED: &str = "return document.querySelector('table[aria-label=\"Clients\"] td[data-col=\"name\"]')";

/// A client's page, once its history and its files are on it.
const CLIENT_LOADED: &str = "return document.querySelector('ul.feed li') && document.querySelector('table[aria-label=\"The client\\'s files\"] td')";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registered_client_appears_in_clients_without_a_reload() {
    let app = spawn_app().await;
    app.register("alpha").await;
    let b = Browser::open_signed_in(&app).await;
    b.view("#/clients", CLIENTS_LOADED).await;
    b.wait_for("alpha", &cell_with("Clients", "name", "alpha"), SOON).await;

    app.register("beta").await;
    let (_, took) = b
        .wait_for("beta in Clients", &cell_with("Clients", "name", "beta"), LIVE)
        .await;
    eprintln!("a registered client appeared in Clients after {took:?}");
    b.assert_not_reloaded().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heartbeat_turns_the_clients_badge_to_connected_live() {
    let app = spawn_app().await;
    let (beta, beta_token) = app.register("beta").await;
    let b = Browser::open_signed_in(&app).await;
    b.view("#/clients", CLIENTS_LOADED).await;
    b.wait_for("beta, registered", &cell_with("Clients", "status", "Registered"), SOON)
        .await;

    let r = app
        .post_json(&format!("/api/clients/{beta}/heartbeat"), Some(&beta_token), json!({}))
        .await;
    assert_eq!(r.status, 200);
    b.wait_for("beta connected", &cell_with("Clients", "status", "Connected"), LIVE)
        .await;
    b.assert_not_reloaded().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heartbeat_that_is_not_an_event_still_moves_last_seen_live() {
    let app = spawn_app().await;
    let (beta, beta_token) = app.register("beta").await;
    let path = format!("/api/clients/{beta}/heartbeat");
    let beat = || app.post_json(&path, Some(&beta_token), json!({}));
    assert_eq!(beat().await.status, 200);
    let b = Browser::open_signed_in(&app).await;
    b.view("#/clients", CLIENTS_LOADED).await;
    b.wait_for("beta connected", &cell_with("Clients", "status", "Connected"), SOON)
        .await;
    let last_seen =
        "return document.querySelector('table[aria-label=\"Clients\"] td[data-col=\"last_seen\"]').textContent";
    let before = b.eval(last_seen).await;

    // Past the feed's once-a-second: the next sign of life is told.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(beat().await.status, 200);

    b.wait_for("last seen to move", &format!("{last_seen} !== {before}"), LIVE)
        .await;
    b.assert_not_reloaded().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn searching_clients_narrows_the_table() {
    let app = spawn_app().await;
    app.register("alpha").await;
    app.register("beta").await;
    let b = Browser::open_signed_in(&app).await;
    b.view("#/clients", CLIENTS_LOADED).await;
    b.wait_for("both clients", &column_is("Clients", "name", &["alpha", "beta"]), SOON)
        .await;

    b.choose("Search clients", "alp").await;
    b.wait_for("the search", &column_is("Clients", "name", &["alpha"]), SOON)
        .await;
    b.screenshot("clients").await;
    b.assert_not_reloaded().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clients_page_shows_its_files_and_its_history() {
    let app = spawn_app().await;
    let (beta, beta_token) = app.register("beta").await;
    upload(&app, &beta, &beta_token, "report.pdf", b"%PDF-1.7 quarterly figures").await;
    let b = Browser::open_signed_in(&app).await;
    b.view(&format!("#/clients/{beta}"), CLIENT_LOADED).await;
    assert_eq!(b.eval("return document.querySelector('h1').textContent").await, "beta");
    b.wait_for(
        "its file",
        &cell_with("The client's files", "filename", "report.pdf"),
        SOON,
    )
    .await;
    b.wait_for(
        "its registration in the history",
        "return document.querySelector('ul.feed').textContent.includes('ClientRegistered')",
        SOON,
    )
    .await;
    b.screenshot("client").await;
    b.assert_not_reloaded().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_a_token_asks_first_then_only_the_new_token_works() {
    let app = spawn_app().await;
    let (beta, beta_token) = app.register("beta").await;
    let b = Browser::open_signed_in(&app).await;
    b.view(&format!("#/clients/{beta}"), CLIENT_LOADED).await;

    b.click("Rotate token").await;
    b.confirm().await;
    let (new_token, _) = b
        .wait_for(
            "the new token",
            "const i = document.querySelector('dialog[open] input.secret'); return i && i.value",
            SOON,
        )
        .await;
    let heartbeat = |token: String| {
        let app = &app;
        let path = format!("/api/clients/{beta}/heartbeat");
        async move { app.post_json(&path, Some(&token), json!({})).await.status }
    };
    assert_eq!(heartbeat(beta_token).await, 401, "the old token stopped working");
    assert_eq!(
        heartbeat(new_token.as_str().unwrap().to_owned()).await,
        200,
        "the new token works"
    );
    b.click("Done").await;
    b.wait_for(
        "the rotation in the history",
        "return document.querySelector('ul.feed').textContent.includes('ClientTokenRotated')",
        LIVE,
    )
    .await;
    b.assert_not_reloaded().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_client_asks_first_then_returns_to_the_list() {
    let app = spawn_app().await;
    let (alpha, _) = app.register("alpha").await;
    let (beta, _) = app.register("beta").await;
    let b = Browser::open_signed_in(&app).await;
    b.view(&format!("#/clients/{beta}"), CLIENT_LOADED).await;

    b.click("Delete").await;
    b.wait_for("the confirmation", CONFIRMATION, SOON).await;
    assert_eq!(
        app.get(&format!("/api/clients/{beta}")).await.status,
        200,
        "not before it is confirmed"
    );
    b.confirm().await;
    b.wait_for(
        "back to the list",
        "return location.hash === '#/clients' && document.querySelector('td[data-col=\"name\"]')",
        SOON,
    )
    .await;
    assert_eq!(app.get(&format!("/api/clients/{beta}")).await.status, 404);
    assert_eq!(app.get(&format!("/api/clients/{alpha}")).await.status, 200);
    b.assert_not_reloaded().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_client_says_it_was_not_found() {
    let app = spawn_app().await;
    let b = Browser::open_signed_in(&app).await;
    b.view(
        "#/clients/00000000-0000-0000-0000-000000000000",
        "return document.querySelector('#view p.error')",
    )
    .await;
    let text = b
        .eval("return document.querySelector('#view p.error').textContent")
        .await;
    assert!(text.as_str().unwrap().contains("not found"), "{text}");
    b.assert_not_reloaded().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clients_name_is_shown_as_text_never_as_markup() {
    let app = spawn_app().await;
    app.register("<img src=x onerror=\"window.injected=1\">").await;
    let b = Browser::open_signed_in(&app).await;
    b.view("#/clients", CLIENTS_LOADED).await;
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
    b.assert_not_reloaded().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overdue_client_is_marked_in_the_list_and_its_interval_is_set_on_its_page() {
    let mut config = crate::helpers::test_config();
    config.backup_check = std::time::Duration::from_millis(100);
    let app = crate::helpers::spawn_app_config(config).await;
    let (alpha, alpha_token) = app.register("alpha").await;
    upload(&app, &alpha, &alpha_token, "a.txt", b"hello").await;
    let b = Browser::open_signed_in(&app).await;
    b.view("#/clients", CLIENTS_LOADED).await;

    app.admin(
        "PATCH",
        &format!("/api/clients/{alpha}"),
        json!({ "backup_interval_seconds": 1 }),
    )
    .await;

    b.wait_for(
        "the overdue badge in Last backup",
        &cell_with("Clients", "last_backup_at", "overdue"),
        LIVE + std::time::Duration::from_secs(2),
    )
    .await;
    b.view(&format!("#/clients/{alpha}"), CLIENT_LOADED).await;
    b.wait_for(
        "the storage chart",
        "return !!document.querySelector('svg.storage-chart')",
        SOON,
    )
    .await;
    b.choose("Expected backup interval in hours", "48").await;
    b.click("Set").await;
    b.wait_for(
        "the new interval on the page",
        "return document.querySelector('.interval').textContent.startsWith('2 days')",
        LIVE,
    )
    .await;
    let c = app.get(&format!("/api/clients/{alpha}")).await.data();
    assert_eq!(c["backup_interval_seconds"], 48 * 3600);
    b.assert_not_reloaded().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clients_page_shows_its_files_as_of_a_position_against_now_and_downloads_their_archive() {
    let app = spawn_app().await;
    let (alpha, token) = app.register("alpha").await;
    let first = upload(&app, &alpha, &token, "draft.txt", b"the draft").await;
    upload(&app, &alpha, &token, "notes.txt", b"notes").await;
    let then = app.get("/api/status").await.data()["head_position"].as_i64().unwrap();
    app.admin("DELETE", &format!("/api/files/{first}"), json!(null)).await;
    upload(&app, &alpha, &token, "final.txt", b"the final text").await;
    let b = Browser::open_signed_in(&app).await;
    b.view(&format!("#/clients/{alpha}"), CLIENT_LOADED).await;
    b.keep_downloads().await;

    b.choose("Restore as of position", &then.to_string()).await;
    b.click("Show the files then").await;
    b.wait_for(
        "the files then, against now",
        "const t = document.querySelector('table[aria-label=\"Files then\"]'); return !!t && t.textContent.includes('draft.txt') && t.textContent.includes('deleted since') && t.textContent.includes('final.txt') && t.textContent.includes('added since')",
        SOON,
    )
    .await;
    b.click("Download tar").await;
    let saved = b.saved().await;

    assert!(
        saved.contains("the draft") && saved.contains("notes") && !saved.contains("the final text"),
        "the archive of then"
    );
    assert!(saved.contains("MANIFEST.json"));
    b.screenshot("client-restore").await;
    b.assert_not_reloaded().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clients_backup_runs_appear_live_show_their_files_and_restore_their_end_and_a_partial_one_needs_attention() {
    let app = spawn_app().await;
    let (alpha, token) = app.register("alpha").await;
    upload(&app, &alpha, &token, "before.txt", b"from before the agent").await;
    let b = Browser::open_signed_in(&app).await;
    b.view(&format!("#/clients/{alpha}"), CLIENT_LOADED).await;
    b.wait_for(
        "no run yet",
        "return document.querySelector('table[aria-label=\"Backup runs\"]').textContent.includes('No backup run yet')",
        SOON,
    )
    .await;

    // A run begins and stores a file: it appears live, running; its end shows its outcome.
    let run = app
        .post_json(
            &format!("/api/clients/{alpha}/runs"),
            Some(&token),
            json!({ "folders": ["/home/ada"], "agent_version": "0.1.0", "host": "ada-laptop" }),
        )
        .await
        .data()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/api/clients/{alpha}/files?name=report.pdf&path=%2Fhome%2Fada%2Freport.pdf&run={run}");
    assert_eq!(
        app.send("POST", &path, Some(&token), &[], "the report").await.status,
        201
    );
    b.wait_for(
        "the run, running",
        "return document.querySelector('table[aria-label=\"Backup runs\"]').textContent.includes('running')",
        LIVE + std::time::Duration::from_secs(1),
    )
    .await;
    let end = json!({ "outcome": "partial", "scanned": 2, "new": 1, "failed": 1, "bytes_sent": 10, "errors": ["/home/ada/locked.db: cannot open: permission denied"] });
    let finished = app
        .post_json(&format!("/api/clients/{alpha}/runs/{run}/finish"), Some(&token), end)
        .await;
    assert_eq!(finished.status, 200);
    b.wait_for(
        "the run, partial",
        "const t = document.querySelector('table[aria-label=\"Backup runs\"]'); return t.textContent.includes('partial') && t.textContent.includes('1 · 0 · 0 · 1')",
        LIVE + std::time::Duration::from_secs(1),
    )
    .await;

    // Its files: only what the run stored. Its end: the restore panel at that position.
    b.click_in_row("Backup runs", "partial", "Files").await;
    b.wait_for(
        "the run's files only",
        "const t = document.querySelector('table[aria-label=\"The client\\'s files\"]'); return t.textContent.includes('report.pdf') && !t.textContent.includes('before.txt')",
        SOON,
    )
    .await;
    b.click_in_row("Backup runs", "partial", "Restore").await;
    let end_position = finished.data()["finished_position"].as_i64().unwrap();
    b.wait_for(
        "the files as of the run's end",
        &format!("return document.querySelector('input[aria-label=\"Restore as of position\"]').value === '{end_position}' && (() => {{ const t = document.querySelector('table[aria-label=\"Files then\"]'); return !!t && t.textContent.includes('report.pdf') && t.textContent.includes('before.txt'); }})()"),
        SOON,
    )
    .await;

    // Overview: the partial run needs attention, linking to the client.
    b.view("#/overview", "return document.querySelector('.attention')")
        .await;
    b.wait_for(
        "the partial run in Needs attention",
        &format!("const a = document.querySelector('.attention'); return a.textContent.includes('alpha: backup run partial, 1 file not backed up') && !!a.querySelector('a[href=\"#/clients/{alpha}\"]')"),
        SOON,
    )
    .await;
    b.assert_not_reloaded().await;
    app.stop().await;
}
