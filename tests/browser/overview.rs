//! Overview: the figures and the activity follow the server live.

use crate::helpers::spawn_app;
use crate::page::{card, card_is, upload, Browser, LIVE};

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
