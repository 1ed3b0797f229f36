//! Database: the tables, health checks and rows; the read-only SQL console; backup and optimize.

use crate::helpers::{spawn_app, TestApp};
use crate::page::{notice_with, Browser, SOON};

/// The file's tables, the health checks and the first table's rows, all loaded.
const DATABASE_LOADED: &str = "return document.querySelector('table[aria-label=\"Tables\"]') && document.querySelector('ul.checks') && document.querySelector('table[aria-label=\"Rows of clients\"] tbody td')";

/// The SQL console's error, once there is one.
const SQL_ERROR: &str = "const e = document.querySelector('.sql-result .error'); return e && e.textContent";

async fn open_database(app: &TestApp) -> Browser {
    let b = Browser::open_signed_in(app).await;
    b.view("#/database", DATABASE_LOADED).await;
    b
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_view_shows_its_tables_rows_and_passing_health_checks() {
    let app = spawn_app().await;
    app.register("alpha").await;
    let b = open_database(&app).await;

    assert_eq!(
        b.eval("return document.querySelectorAll('ul.checks .badge.ok').length === document.querySelectorAll('ul.checks li').length").await,
        true
    );
    assert_eq!(
        b.eval("return document.querySelector('table[aria-label=\"Rows of clients\"] tbody').textContent.includes('alpha')").await,
        true
    );
    b.assert_not_reloaded().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sql_console_answers_reads_and_refuses_writes() {
    let app = spawn_app().await;
    app.register("alpha").await;
    app.register("beta").await;
    let b = open_database(&app).await;

    b.sql("SELECT name FROM clients ORDER BY name").await;
    b.wait_for(
        "the query's rows",
        "const t = document.querySelector('table[aria-label=\"Query result\"]'); return t && [...t.querySelectorAll('td')].map(td => td.textContent).join(',') === 'alpha,beta'",
        SOON,
    )
    .await;
    b.sql("DELETE FROM clients").await;
    b.wait_for("the refusal", SQL_ERROR, SOON).await;
    assert_eq!(
        app.get("/api/clients").await.data()["total"],
        2,
        "the console wrote nothing"
    );
    b.assert_not_reloaded().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sql_error_says_what_is_wrong() {
    let app = spawn_app().await;
    let b = open_database(&app).await;

    b.sql("SELEKT 1").await;
    let (error, _) = b.wait_for("the SQL error", SQL_ERROR, SOON).await;
    assert!(error.as_str().unwrap().contains("syntax"), "{error}");
    b.assert_not_reloaded().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backing_up_says_where_the_backup_was_written_and_lists_it_to_be_verified() {
    let app = spawn_app().await;
    let b = open_database(&app).await;

    b.click("Back up now").await;
    b.wait_for("the backup's notice", &notice_with("Backup written"), SOON)
        .await;
    b.wait_for(
        "the backup in the list, not checked yet",
        "return !!document.querySelector('table[aria-label=\"Backups\"] tr[data-backup]') && document.querySelector('table[aria-label=\"Backups\"]').textContent.includes('not checked')",
        SOON,
    )
    .await;
    b.click_in_row("Backups", "not checked", "Verify").await;
    b.wait_for(
        "the check's outcome",
        "return document.querySelector('table[aria-label=\"Backups\"] td[data-col=\"verified\"]').textContent === 'checks out'",
        SOON,
    )
    .await;
    b.screenshot("database").await;
    b.assert_not_reloaded().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn optimizing_says_it_is_done_and_records_it() {
    let app = spawn_app().await;
    let b = open_database(&app).await;

    b.click("Optimize").await;
    b.wait_for(
        "the optimize notice",
        &notice_with("ANALYZE and PRAGMA optimize done"),
        SOON,
    )
    .await;
    assert_eq!(app.get("/api/events?type=DatabaseOptimized").await.data()["total"], 1);
    b.assert_not_reloaded().await;
    app.stop().await;
}
