//! Every view, in both themes, at a desktop's width and at a phone's: axe-core finds no serious or critical
//! violation (WCAG 2.1 A and AA), the page is never wider than the window, and a screenshot of each is written
//! (`target/tmp/screenshots/<view>-<theme>[-390].png`).

use std::time::Duration;

use serde_json::json;

use crate::helpers::{spawn_app, TestApp, ADMIN};
use crate::page::{js_str, upload, Browser, SOON};

/// A server with something in every view: connected, offline and overdue clients, files (one with a long
/// content type), a failed transfer, log lines, an alert target with a rule and a delivery.
async fn spawn_a_lived_in_server() -> (TestApp, String) {
    let app = spawn_app().await;
    let (alpha, alpha_token) = app.register("workstation-21").await;
    let (bravo, bravo_token) = app.register("build-server").await;
    app.register("laptop-ada").await;
    for (id, token) in [(&alpha, &alpha_token), (&bravo, &bravo_token)] {
        app.as_client(id, token, "heartbeat").await;
    }
    app.as_client(&bravo, &bravo_token, "disconnect").await;
    upload(&app, &alpha, &alpha_token, "quarterly-report.pdf", b"%PDF-1.7 figures").await;
    upload(
        &app,
        &alpha,
        &alpha_token,
        "presentation-with-a-rather-long-name.pptx",
        b"PK\x03\x04 slides",
    )
    .await;
    upload(&app, &bravo, &bravo_token, "build.log", b"ok\n").await;
    app.fail_an_upload(&alpha, &alpha_token, "broken.bin").await;
    for (level, message) in [
        ("info", "backup finished"),
        ("warning", "slow disk"),
        ("error", "a file was locked"),
    ] {
        app.post_json(
            "/api/logs",
            Some(ADMIN),
            json!({ "level": level, "message": message, "source": "agent", "client_id": alpha }),
        )
        .await;
    }
    let target = app
        .admin(
            "POST",
            "/api/alerts/targets",
            json!({ "name": "ops", "kind": "webhook", "address": "http://127.0.0.1:9/hook" }),
        )
        .await
        .data()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.admin(
        "POST",
        "/api/alerts/rules",
        json!({ "target_id": target, "kinds": ["transfer_failed", "backup_overdue"] }),
    )
    .await;
    (app, alpha)
}

/// The views, by address, with the heading each shows once it is there.
fn views(client: &str) -> Vec<(String, &'static str)> {
    vec![
        ("#/overview".into(), "Overview"),
        ("#/clients".into(), "Clients"),
        (format!("#/clients/{client}"), "workstation-21"),
        ("#/files".into(), "Files"),
        ("#/logs".into(), "Logs"),
        ("#/analytics".into(), "Analytics"),
        ("#/alerts".into(), "Alerts"),
        ("#/database".into(), "Database"),
        ("#/audit".into(), "Audit"),
    ]
}

fn name_of(hash: &str) -> String {
    let view = hash.trim_start_matches("#/");
    if view.starts_with("clients/") {
        "client".into()
    } else {
        view.into()
    }
}

async fn show(b: &Browser, hash: &str, heading: &str) {
    b.view(
        hash,
        &format!(
            "const h = document.querySelector('#view h1'); return !!h && h.textContent === {} && !document.querySelector('#view .muted')?.textContent.startsWith('Loading')",
            js_str(heading)
        ),
    )
    .await;
    // Tables and charts fill after the heading: let them settle before looking.
    tokio::time::sleep(Duration::from_millis(700)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_view_in_both_themes_has_no_serious_accessibility_violation() {
    let (app, client) = spawn_a_lived_in_server().await;
    let b = Browser::open_signed_in(&app).await;
    b.resize(1440, 1000).await;
    let mut found = Vec::new();
    for theme in ["light", "dark"] {
        b.theme(theme).await;
        for (hash, heading) in views(&client) {
            show(&b, &hash, heading).await;
            for v in b.accessibility_violations().await {
                found.push(format!("{hash} ({theme}): {v}"));
            }
            b.screenshot(&format!("{}-{theme}", name_of(&hash))).await;
        }
    }
    assert!(
        found.is_empty(),
        "serious or critical violations:\n{}",
        found.join("\n")
    );
    b.assert_not_reloaded().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_view_fits_a_phone_in_both_themes() {
    let (app, client) = spawn_a_lived_in_server().await;
    let b = Browser::open_signed_in(&app).await;
    b.resize(390, 844).await;
    b.wait_for("the window to be a phone's", "return window.innerWidth <= 390", SOON)
        .await;
    let mut wide = Vec::new();
    for theme in ["light", "dark"] {
        b.theme(theme).await;
        for (hash, heading) in views(&client) {
            show(&b, &hash, heading).await;
            let width = b.eval("return document.documentElement.scrollWidth").await;
            if width.as_i64().unwrap() > 390 {
                let past = b
                    .eval("return [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > 392 && !e.closest('.scroll, nav, pre, ol.tail, .transfers')).slice(-4).map(e => `${e.tagName.toLowerCase()}.${e.className} ${Math.round(e.getBoundingClientRect().width)} px`).join(', ')")
                    .await;
                wide.push(format!(
                    "{hash} ({theme}) is {width} px wide: {}",
                    past.as_str().unwrap_or("")
                ));
            }
            b.screenshot(&format!("{}-{theme}-390", name_of(&hash))).await;
        }
    }
    assert!(wide.is_empty(), "wider than the phone:\n{}", wide.join("\n"));
    app.stop().await;
}
