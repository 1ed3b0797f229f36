//! Signing in: the dialog, the URL that `cairn serve` prints, a reload, and a link whose token was rotated away.

use crate::helpers::{spawn_app, ADMIN};
use crate::page::{js_str, Browser, IS_LIVE, SOON};

const SIGN_IN_OPEN: &str = "return document.getElementById('signin').open";

/// Types a token into the sign-in dialog and submits it.
async fn sign_in_with(b: &Browser, token: &str) {
    b.eval(&format!(
        "document.getElementById('signin-token').value = {}; document.querySelector('#signin-form button').click(); return true",
        js_str(token)
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_is_refused_and_the_admin_token_opens_the_overview() {
    let app = spawn_app().await;
    let b = Browser::start().await;
    b.goto(&format!("http://{}/", app.addr)).await;
    b.wait_for("the sign-in dialog", SIGN_IN_OPEN, SOON).await;

    sign_in_with(&b, "not-the-token").await;
    let (error, _) = b
        .wait_for(
            "the refusal",
            "const e = document.getElementById('signin-error'); return !e.hidden && e.textContent",
            SOON,
        )
        .await;
    assert_eq!(error, "That token is not valid.");
    b.screenshot("sign-in").await;

    sign_in_with(&b, ADMIN).await;
    b.wait_for(
        "the Overview",
        "return !document.getElementById('signin').open && document.querySelectorAll('.card').length >= 6",
        SOON,
    )
    .await;
    b.wait_for("the live indicator", IS_LIVE, SOON).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_printed_url_signs_in_at_once_and_the_token_leaves_the_address_bar() {
    let app = spawn_app().await;
    let b = Browser::start().await;
    b.goto(&format!("http://{}/#token={ADMIN}", app.addr)).await;
    b.wait_for(
        "the Overview",
        "return document.querySelectorAll('.card').length >= 6",
        SOON,
    )
    .await;
    let href = b.eval("return location.href").await;
    assert!(
        !href.as_str().unwrap().contains(ADMIN),
        "the token stays out of the URL: {href}"
    );
    assert_eq!(b.eval(SIGN_IN_OPEN).await, false);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_stays_signed_in_and_lands_on_the_same_view() {
    let app = spawn_app().await;
    let b = Browser::open_signed_in(&app).await;
    b.view("#/logs", "return !!document.querySelector('ol.tail')").await;
    b.mark_not_reloaded().await;
    b.eval("location.reload(); return true").await;
    // The token is kept for the session: the view mounts without the sign-in dialog.
    b.wait_for(
        "the Logs view after a reload",
        "return window.notReloaded === undefined && !!document.querySelector('ol.tail') && document.querySelector('nav a[aria-current]').textContent === 'Logs' && !document.getElementById('signin').open",
        SOON,
    )
    .await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_with_a_refused_token_asks_for_one_instead_of_showing_empty_views() {
    let app = spawn_app().await;
    let b = Browser::start().await;
    b.goto(&format!("http://{}/#token=a-token-that-was-rotated-away", app.addr))
        .await;
    b.wait_for("the sign-in dialog", SIGN_IN_OPEN, SOON).await;
    sign_in_with(&b, ADMIN).await;
    b.wait_for("live", IS_LIVE, SOON).await;
    app.stop().await;
}
