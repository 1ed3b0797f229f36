//! Files: uploads appear live; download, verify and delete from a row; the filter on verification.

use crate::helpers::{spawn_app, TestApp, ADMIN};
use crate::page::{cell_with, column_is, notice_with, upload, Browser, CONFIRMATION, LIVE, SOON};

const REPORT: &[u8] = b"%PDF-1.7 quarterly figures";

/// A server with one client, beta, that uploaded report.pdf; answers the app, beta's id and token, and the
/// file's id.
async fn beta_with_a_report() -> (TestApp, String, String, String) {
    let app = spawn_app().await;
    let (beta, token) = app.register("beta").await;
    let file = upload(&app, &beta, &token, "report.pdf", REPORT).await;
    (app, beta, token, file)
}

/// Opens the Files view and waits for report.pdf in it.
async fn open_files(app: &TestApp) -> Browser {
    let b = Browser::open_signed_in(app).await;
    b.view(
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
    b
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_appears_in_files_live() {
    let (app, beta, token, _) = beta_with_a_report().await;
    let b = open_files(&app).await;

    upload(&app, &beta, &token, "notes.txt", b"second file").await;
    b.wait_for(
        "notes.txt in Files, live",
        &cell_with("Files", "filename", "notes.txt"),
        LIVE,
    )
    .await;
    b.assert_not_reloaded().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloading_a_file_saves_what_was_uploaded() {
    let (app, ..) = beta_with_a_report().await;
    let b = open_files(&app).await;
    b.keep_downloads().await;

    // Through fetch with the token; the page saves what came back.
    b.click_in_row("Files", "report.pdf", "Download").await;
    assert_eq!(b.saved().await.as_bytes(), REPORT);
    b.assert_not_reloaded().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verifying_a_file_shows_the_result_in_its_row_and_as_a_notice() {
    let (app, _, _, file) = beta_with_a_report().await;
    let b = open_files(&app).await;

    b.click_in_row("Files", "report.pdf", "Verify").await;
    b.wait_for(
        "the verification's notice",
        &notice_with("report.pdf: both checksums match"),
        SOON,
    )
    .await;
    b.wait_for(
        "the verified badge",
        "const row = [...document.querySelectorAll('table[aria-label=\"Files\"] tr')].find(r => r.textContent.includes('report.pdf')); return row.querySelector('[data-col=\"verified\"]').textContent === 'verified'",
        SOON,
    )
    .await;
    assert_eq!(app.get(&format!("/api/files/{file}")).await.data()["verified"], true);
    b.assert_not_reloaded().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_verified_filter_leaves_out_the_verified_files() {
    let (app, beta, token, report) = beta_with_a_report().await;
    upload(&app, &beta, &token, "notes.txt", b"second file").await;
    let r = app
        .send("POST", &format!("/api/files/{report}/verify"), Some(ADMIN), &[], "")
        .await;
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    let b = open_files(&app).await;
    b.wait_for(
        "both files",
        &column_is("Files", "filename", &["notes.txt", "report.pdf"]),
        SOON,
    )
    .await;

    b.choose("Verified", "false").await;
    b.wait_for(
        "only the unverified file",
        &column_is("Files", "filename", &["notes.txt"]),
        SOON,
    )
    .await;
    b.screenshot("files").await;
    b.assert_not_reloaded().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_file_asks_first_and_only_a_confirmation_deletes_it() {
    let (app, beta, token, _) = beta_with_a_report().await;
    upload(&app, &beta, &token, "notes.txt", b"second file").await;
    let b = open_files(&app).await;
    b.wait_for("notes.txt in Files", &cell_with("Files", "filename", "notes.txt"), SOON)
        .await;

    b.click_in_row("Files", "notes.txt", "Delete").await;
    b.wait_for("the confirmation", CONFIRMATION, SOON).await;
    b.click("Cancel").await;
    // Nothing to wait for when nothing happens: give a wrongly sent deletion the time to land.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        app.get("/api/files").await.data()["total"],
        2,
        "cancelled: nothing deleted"
    );

    b.click_in_row("Files", "notes.txt", "Delete").await;
    b.confirm().await;
    b.wait_for(
        "notes.txt gone, report.pdf kept",
        &column_is("Files", "filename", &["report.pdf"]),
        SOON,
    )
    .await;
    assert_eq!(app.get("/api/files").await.data()["total"], 1);
    b.assert_not_reloaded().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_hold_still_under_the_pointer_and_n_new_shows_what_arrived() {
    let (app, beta, token, _) = beta_with_a_report().await;
    let b = Browser::open_signed_in(&app).await;
    b.view("#/files", &cell_with("Files", "filename", "report.pdf")).await;
    b.eval("document.querySelector('table[aria-label=\"Files\"] tbody').dispatchEvent(new PointerEvent('pointerenter')); return true")
        .await;

    upload(&app, &beta, &token, "arrived.txt", b"new while pointing").await;

    b.wait_for(
        "the waiting button",
        "const x = document.querySelector('button.held'); return !!x && !x.hidden && x.textContent.startsWith('1 new')",
        LIVE,
    )
    .await;
    assert_eq!(b.eval(&cell_with("Files", "filename", "arrived.txt")).await, false);
    b.click("1 new · show").await;
    b.wait_for("the new row", &cell_with("Files", "filename", "arrived.txt"), LIVE)
        .await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_name_and_content_type_leave_the_row_buttons_inside_the_table() {
    let app = spawn_app().await;
    let (beta, token) = app.register("beta").await;
    upload(
        &app,
        &beta,
        &token,
        "a-very-long-file-name-that-goes-on-and-on-for-quite-a-while.docx",
        b"PK\x03\x04",
    )
    .await;
    let b = Browser::open_signed_in(&app).await;
    b.resize(1440, 900).await;
    b.view("#/files", &cell_with("Files", "filename", "a-very-long")).await;

    let inside = b
        .eval("const wrap = document.querySelector('.table-wrap .scroll').getBoundingClientRect(); const del = [...document.querySelectorAll('table[aria-label=\"Files\"] button')].find(x => x.textContent === 'Delete').getBoundingClientRect(); return del.right <= wrap.right + 0.5 && document.querySelector('.table-wrap .scroll').scrollWidth <= document.querySelector('.table-wrap .scroll').clientWidth")
        .await;

    assert_eq!(
        inside, true,
        "the Delete button is cut off or the table scrolls sideways"
    );
    b.screenshot("files-long-names").await;
    app.stop().await;
}
