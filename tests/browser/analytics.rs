//! Analytics: the charts and the totals, drawn from /api/stats.

use crate::helpers::{spawn_app, ADMIN};
use crate::page::{card, upload, Browser};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_charts_and_totals_draw_from_the_stats() {
    let app = spawn_app().await;
    let (beta, token) = app.register("beta").await;
    upload(&app, &beta, &token, "report.pdf", b"%PDF-1.7 quarterly figures").await;
    let notes = upload(&app, &beta, &token, "notes.txt", b"second file").await;
    // A deletion takes nothing from the uploads counted.
    let r = app
        .send("DELETE", &format!("/api/files/{notes}"), Some(ADMIN), &[], "")
        .await;
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    let b = Browser::open_signed_in(&app).await;

    b.view(
        "#/analytics",
        "return document.getElementById('view').dataset.drawn && document.querySelectorAll('.chart canvas').length === 4",
    )
    .await;
    assert_eq!(b.eval(&card("Uploads")).await, "2");
    b.screenshot("analytics").await;
    b.assert_not_reloaded().await;
    app.stop().await;
}
