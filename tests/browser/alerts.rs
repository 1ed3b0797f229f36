//! Alerts: a target and a rule added through the view, a test sent from its button reaching a real webhook
//! receiver, and the delivery showing live.

use std::time::Duration;

use crate::page::{js_str, Browser, LIVE, SOON};
use crate::webhook::Receiver;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_and_a_rule_added_in_the_view_and_a_test_reaching_the_webhook_live() {
    let app = crate::helpers::spawn_app().await;
    app.register("alpha").await;
    let hook = Receiver::start().await;
    let b = Browser::open_signed_in(&app).await;
    b.view(
        "#/alerts",
        "return document.getElementById('view').dataset.targets === '0'",
    )
    .await;

    b.choose("Target name", "ops channel").await;
    b.choose("Target address", &hook.url()).await;
    b.click("Add target").await;
    b.wait_for(
        "the target in the table",
        "return document.getElementById('view').dataset.targets === '1' && document.querySelector('table[aria-label=\"Alert targets\"]').textContent.includes('ops channel')",
        LIVE,
    )
    .await;
    b.eval("document.querySelector('.kinds input[value=\"transfer_failed\"]').click(); document.querySelector('.kinds input[value=\"chain_broken\"]').click(); return true")
        .await;
    b.click("Add rule").await;
    b.wait_for(
        "the rule in the table",
        "return document.querySelector('table[aria-label=\"Alert rules\"]').textContent.includes('Transfer failed, Chain broken')",
        LIVE,
    )
    .await;

    b.click("Send a test").await;

    let got = hook.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(got[0].body["kind"], "test");
    b.wait_for(
        "the delivery in the table",
        &format!(
            "return [...document.querySelectorAll('table[aria-label=\"Deliveries\"] td[data-col=\"outcome\"]')].some(td => td.textContent === 'delivered') && document.querySelector('table[aria-label=\"Deliveries\"]').textContent.includes({})",
            js_str("ops channel")
        ),
        SOON,
    )
    .await;
    b.wait_for(
        "the target's count of deliveries",
        "return [...document.querySelectorAll('table[aria-label=\"Alert targets\"] td')].some(td => td.textContent === '1')",
        LIVE,
    )
    .await;
    b.screenshot("alerts").await;
    b.assert_not_reloaded().await;
    app.stop().await;
}
