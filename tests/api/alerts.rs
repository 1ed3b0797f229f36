//! Alerts: targets and rules as events, a webhook receiving a failed transfer's alert, retries while the
//! receiver is down and across a restart, a refusal for good, rules by client, a test alert, an overdue
//! backup alerted, and e-mail arriving at a real SMTP server.

use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Value};

use crate::common_api::{spawn_app, spawn_app_config, spawn_app_configured, test_config, TestApp};
use crate::helpers::{assert_error, events_of_type};
use crate::smtp::SmtpServer;
use crate::webhook::Receiver;

/// Alerts are delivered within this (the bound).
const SOON: Duration = Duration::from_secs(5);

async fn add_target(app: &TestApp, kind: &str, address: &str) -> String {
    let r = app
        .admin(
            "POST",
            "/api/alerts/targets",
            json!({ "name": "ops", "kind": kind, "address": address }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    r.data()["id"].as_str().unwrap().to_owned()
}

async fn add_rule(app: &TestApp, target: &str, kinds: Value, client: Option<&str>) -> String {
    let r = app
        .admin(
            "POST",
            "/api/alerts/rules",
            json!({ "target_id": target, "kinds": kinds, "client_id": client }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    r.data()["id"].as_str().unwrap().to_owned()
}

/// An upload whose declared checksum is wrong: a failed transfer.
async fn fail_a_transfer(app: &TestApp, client: &str, token: &str) {
    app.fail_an_upload(client, token, "bad.txt").await;
}

/// A webhook receiver, a target for it, and a rule sending it `kinds`; answers the receiver and the target's id.
async fn hooked(app: &TestApp, kinds: Value) -> (Receiver, String) {
    let hook = Receiver::start().await;
    let target = add_target(app, "webhook", &hook.url()).await;
    add_rule(app, &target, kinds, None).await;
    (hook, target)
}

/// As [`hooked`], with the receiver down until the test resumes it.
async fn hooked_down(app: &TestApp, kinds: Value) -> Receiver {
    let (mut hook, _) = hooked(app, kinds).await;
    hook.stop().await;
    hook
}

fn position_of_the(app: &TestApp, event_type: &str) -> i64 {
    app.count(&format!("SELECT max(position) FROM events WHERE type = '{event_type}'"))
}

async fn until_events(app: &TestApp, event_type: &str, count: i64) {
    for _ in 0..250 {
        if events_of_type(app, event_type) >= count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{count} {event_type} expected, got {}", events_of_type(app, event_type));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_transfer_reaches_a_webhook_within_five_seconds_with_whose_it_is() {
    let app = spawn_app().await;
    let (hook, target) = hooked(&app, json!(["transfer_failed"])).await;
    let (a, token) = app.register("alpha").await;

    let sent = std::time::Instant::now();
    fail_a_transfer(&app, &a, &token).await;

    let got = hook.wait_for(1, SOON).await;
    println!(
        "a failed transfer's alert reached the webhook {:?} after the upload was sent",
        sent.elapsed()
    );
    let alert = &got[0].body;
    assert_eq!(got[0].path, "/hook");
    assert_eq!(alert["kind"], "transfer_failed");
    assert_eq!(alert["severity"], "error");
    assert_eq!(alert["client_name"], "alpha");
    assert_eq!(alert["client_id"], json!(a));
    assert_eq!(alert["title"], "cairn: transfer failed (alpha)");
    assert!(
        alert["message"].as_str().unwrap().starts_with("alpha: transfer failed"),
        "{alert}"
    );
    assert_eq!(
        alert["text"],
        format!(
            "{}\n{}",
            alert["title"].as_str().unwrap(),
            alert["message"].as_str().unwrap()
        )
    );
    let failed = position_of_the(&app, "TransferFailed");
    assert_eq!(alert["event"]["type"], "TransferFailed");
    assert_eq!(alert["event"]["position"], failed);
    assert_eq!(
        got[0].header("idempotency-key"),
        Some(format!("{target}-{failed}").as_str())
    );
    assert_eq!(got[0].header("content-type"), Some("application/json"));

    until_events(&app, "AlertDelivered", 1).await;
    let setup = app.get("/api/alerts").await.data();
    assert_eq!(setup["targets"][0]["delivered_through"], failed);
    assert_eq!(setup["targets"][0]["delivered"], 1);
    let deliveries = app.get("/api/alerts/deliveries").await.data();
    assert_eq!(deliveries["total"], 1);
    assert_eq!(deliveries["items"][0]["outcome"], "delivered");
    assert_eq!(deliveries["items"][0]["alerted_position"], failed);
    // Nothing else was routed: one request in all.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(hook.received().len(), 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_is_retried_while_the_receiver_is_down_and_delivered_once_it_is_back() {
    let app = spawn_app().await;
    let mut hook = hooked_down(&app, json!(["transfer_failed"])).await;
    let (a, token) = app.register("alpha").await;

    fail_a_transfer(&app, &a, &token).await;
    until_events(&app, "AlertDeliveryFailed", 2).await;
    let setup = app.get("/api/alerts").await.data();
    assert!(
        setup["targets"][0]["last_error"].as_str().unwrap().contains("connect"),
        "{setup}"
    );
    assert!(setup["targets"][0]["delivered_through"].as_i64().unwrap() < position_of_the(&app, "TransferFailed"));
    hook.resume().await;

    let got = hook.wait_for(1, SOON).await;
    assert_eq!(got[0].body["kind"], "transfer_failed");
    until_events(&app, "AlertDelivered", 1).await;
    let deliveries = app.get("/api/alerts/deliveries").await.data();
    let outcomes: Vec<&str> = deliveries["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes[0], "delivered");
    assert!(
        outcomes[1..].iter().all(|o| *o == "failed") && outcomes.len() >= 3,
        "{outcomes:?}"
    );
    // The attempts count up, and the delivery says how many it took.
    assert_eq!(
        deliveries["items"][0]["attempt"].as_i64().unwrap(),
        outcomes.len() as i64
    );
    assert_eq!(
        app.get("/api/alerts").await.data()["targets"][0]["last_error"],
        Value::Null
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_not_delivered_before_a_restart_is_delivered_after_it_once() {
    let app = spawn_app().await;
    let mut hook = hooked_down(&app, json!(["transfer_failed"])).await;
    let (a, token) = app.register("alpha").await;
    fail_a_transfer(&app, &a, &token).await;
    until_events(&app, "AlertDeliveryFailed", 1).await;
    let dir = app.stop_keeping_data().await;

    hook.resume().await;
    let options = cairn::Options {
        durability: cairn_events::Durability::Normal,
        ..cairn::Options::default()
    };
    let app = spawn_app_configured(dir, "127.0.0.1:0", options, test_config()).await;

    let got = hook.wait_for(1, SOON).await;
    assert_eq!(
        got[0].body["event"]["position"],
        position_of_the(&app, "TransferFailed")
    );
    until_events(&app, "AlertDelivered", 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(hook.received().len(), 1, "delivered once");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_refuses_for_good_is_given_up_on_and_the_next_alert_still_goes() {
    let app = spawn_app().await;
    let hook = Receiver::start().await;
    hook.answer(404);
    let target = add_target(&app, "webhook", &hook.url()).await;
    add_rule(&app, &target, json!(["transfer_failed"]), None).await;
    let (a, token) = app.register("alpha").await;

    fail_a_transfer(&app, &a, &token).await;
    until_events(&app, "AlertDeliveryFailed", 1).await;
    let deliveries = app.get("/api/alerts/deliveries").await.data();
    assert_eq!(deliveries["items"][0]["outcome"], "gave_up");
    assert!(deliveries["items"][0]["error"].as_str().unwrap().contains("404"));
    assert_eq!(
        app.get("/api/alerts").await.data()["targets"][0]["delivered_through"],
        position_of_the(&app, "TransferFailed")
    );

    hook.answer(200);
    fail_a_transfer(&app, &a, &token).await;
    let got = hook.wait_for(1, SOON).await;
    assert_eq!(
        got[0].body["event"]["position"],
        position_of_the(&app, "TransferFailed")
    );
    assert_eq!(
        events_of_type(&app, "AlertDeliveryFailed"),
        1,
        "a refusal is not retried"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_for_one_client_alerts_only_that_clients_events() {
    let app = spawn_app().await;
    let hook = Receiver::start().await;
    let (a, a_token) = app.register("alpha").await;
    let (b, b_token) = app.register("bravo").await;
    let target = add_target(&app, "webhook", &hook.url()).await;
    add_rule(&app, &target, json!(["transfer_failed"]), Some(&b)).await;

    fail_a_transfer(&app, &a, &a_token).await;
    fail_a_transfer(&app, &b, &b_token).await;

    let got = hook.wait_for(1, SOON).await;
    assert_eq!(got[0].body["client_name"], "bravo");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(hook.received().len(), 1);
    let rules = app.get("/api/alerts").await.data()["rules"].clone();
    assert_eq!(rules[0]["client_name"], "bravo");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_alert_goes_to_its_target_alone_without_a_rule() {
    let app = spawn_app().await;
    let (one, other) = (Receiver::start().await, Receiver::start().await);
    let target = add_target(&app, "webhook", &one.url()).await;
    add_target(&app, "webhook", &other.url()).await;

    let r = app
        .admin("POST", &format!("/api/alerts/targets/{target}/test"), json!(null))
        .await;
    assert_eq!(r.status, 202);

    let got = one.wait_for(1, SOON).await;
    assert_eq!(got[0].body["kind"], "test");
    assert_eq!(got[0].body["severity"], "info");
    assert_eq!(got[0].body["event"]["position"], r.data()["position"]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(other.received().is_empty());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overdue_backup_is_raised_and_alerted() {
    let mut config = test_config();
    config.backup_check = Duration::from_millis(100);
    let app = spawn_app_config(config).await;
    let (hook, _) = hooked(&app, json!(["backup_overdue", "client_timeout"])).await;
    let (a, _) = app.register("alpha").await;

    app.admin(
        "PATCH",
        &format!("/api/clients/{a}"),
        json!({ "backup_interval_seconds": 1 }),
    )
    .await;

    let got = hook.wait_for(1, SOON).await;
    assert_eq!(got[0].body["kind"], "backup_overdue");
    assert_eq!(got[0].body["client_name"], "alpha");
    assert_eq!(got[0].body["event"]["type"], "ClientBackupOverdue");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_client_is_alerted_as_a_timeout() {
    let app = crate::common_api::spawn_app_with(
        cairn::Options {
            durability: cairn_events::Durability::Normal,
            ..cairn::Options::default()
        },
        Duration::from_millis(300),
    )
    .await;
    let (hook, _) = hooked(&app, json!(["client_timeout"])).await;
    let (a, token) = app.register("alpha").await;

    crate::helpers::heartbeat(&app, &a, &token).await;

    let got = hook.wait_for(1, SOON).await;
    assert_eq!(got[0].body["kind"], "client_timeout");
    assert_eq!(got[0].body["event"]["data"]["reason"], "timeout");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_alert_arrives_at_the_smtp_server() {
    let smtp = SmtpServer::start();
    let mut config = test_config();
    config.alerts.smtp = Some(smtp.url());
    config.alerts.smtp_from = "cairn <cairn@backup.example>".into();
    let app = spawn_app_config(config).await;
    let target = add_target(&app, "email", "ops@example.com").await;
    add_rule(&app, &target, json!(["transfer_failed"]), None).await;
    let (a, token) = app.register("alpha").await;

    fail_a_transfer(&app, &a, &token).await;

    let mail = smtp.wait_for(1, SOON).await;
    let text = &mail[0];
    assert!(text.contains("Subject: cairn: transfer failed (alpha)"), "{text}");
    assert!(text.contains("X-RcptTo: ops@example.com"), "{text}");
    assert!(text.contains("X-MailFrom: cairn@backup.example"), "{text}");
    assert!(text.contains("alpha: transfer failed"), "{text}");
    until_events(&app, "AlertDelivered", 1).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_target_without_an_smtp_relay_is_refused() {
    let app = spawn_app().await;

    let r = app
        .admin(
            "POST",
            "/api/alerts/targets",
            json!({ "name": "ops", "kind": "email", "address": "ops@example.com" }),
        )
        .await;

    assert_error(&r, 409, "SMTP_NOT_CONFIGURED");
    assert_eq!(events_of_type(&app, "AlertTargetAdded"), 0);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_targets_and_rules_are_refused_with_their_codes_and_record_nothing() {
    let app = spawn_app().await;
    let target = add_target(&app, "webhook", "http://127.0.0.1:9/hook").await;
    let bad_targets = [
        json!({ "name": "x", "kind": "webhook", "address": "ftp://example.com/" }),
        json!({ "name": "x", "kind": "webhook", "address": "" }),
        json!({ "name": "", "kind": "webhook", "address": "http://example.com/" }),
    ];
    for body in bad_targets {
        let r = app.admin("POST", "/api/alerts/targets", body.clone()).await;
        assert_error(&r, 400, "VALIDATION_ERROR");
    }
    for body in [
        json!({ "name": "x", "kind": "pager", "address": "http://example.com/" }),
        json!({ "name": "x", "kind": "webhook" }),
        json!({ "name": "x", "kind": "webhook", "address": "http://example.com/", "secret": 1 }),
    ] {
        assert_error(
            &app.admin("POST", "/api/alerts/targets", body).await,
            400,
            "INVALID_JSON",
        );
    }
    let rule = |kinds: Value, target: &str| json!({ "target_id": target, "kinds": kinds });
    assert_error(
        &app.admin("POST", "/api/alerts/rules", rule(json!([]), &target)).await,
        400,
        "VALIDATION_ERROR",
    );
    assert_error(
        &app.admin("POST", "/api/alerts/rules", rule(json!(["test"]), &target))
            .await,
        400,
        "VALIDATION_ERROR",
    );
    assert_error(
        &app.admin("POST", "/api/alerts/rules", rule(json!(["nonsense"]), &target))
            .await,
        400,
        "INVALID_JSON",
    );
    let unknown = uuid::Uuid::now_v7().to_string();
    assert_error(
        &app.admin("POST", "/api/alerts/rules", rule(json!(["chain_broken"]), &unknown))
            .await,
        404,
        "ALERT_TARGET_NOT_FOUND",
    );
    assert_error(
        &app.admin("DELETE", &format!("/api/alerts/targets/{unknown}"), json!(null))
            .await,
        404,
        "ALERT_TARGET_NOT_FOUND",
    );
    assert_error(
        &app.admin("DELETE", "/api/alerts/rules/not-a-uuid", json!(null)).await,
        404,
        "ALERT_RULE_NOT_FOUND",
    );
    assert_error(
        &app.admin("POST", &format!("/api/alerts/targets/{unknown}/test"), json!(null))
            .await,
        404,
        "ALERT_TARGET_NOT_FOUND",
    );
    assert_error(
        &app.get("/api/alerts/deliveries?target_id=x").await,
        400,
        "INVALID_QUERY",
    );
    assert_eq!(events_of_type(&app, "AlertTargetAdded"), 1);
    assert_eq!(events_of_type(&app, "AlertRuleAdded"), 0);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_a_target_removes_its_rules_and_stops_its_alerts() {
    let app = spawn_app().await;
    let (hook, target) = hooked(&app, json!(["transfer_failed"])).await;

    let r = app
        .admin("DELETE", &format!("/api/alerts/targets/{target}"), json!(null))
        .await;
    assert_eq!(r.status, 200);
    let (a, token) = app.register("alpha").await;
    fail_a_transfer(&app, &a, &token).await;

    let setup = app.get("/api/alerts").await.data();
    assert_eq!(setup["targets"], json!([]));
    assert_eq!(setup["rules"], json!([]));
    assert_eq!(events_of_type(&app, "AlertRuleRemoved"), 1);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(hook.received().is_empty());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_setup_is_admin_only() {
    let app = spawn_app().await;
    let (_, token) = app.register("alpha").await;

    let r = app.send("GET", "/api/alerts", Some(&token), &[], Bytes::new()).await;

    assert_eq!(r.status, 403);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_chain_is_recorded_once_and_alerted() {
    let mut config = test_config();
    config.chain_check = Duration::from_millis(100);
    let app = spawn_app_config(config).await;
    let (hook, _) = hooked(&app, json!(["chain_broken"])).await;
    app.register("alpha").await;
    let conn = rusqlite::Connection::open(app.dir.path().join("cairn.db")).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    conn.execute_batch("UPDATE events SET data = replace(data, 'alpha', 'ALPHA') WHERE type = 'ClientRegistered'")
        .unwrap();
    drop(conn);

    let got = hook.wait_for(1, SOON).await;
    assert_eq!(got[0].body["kind"], "chain_broken");
    assert_eq!(got[0].body["severity"], "critical");
    let broken = position_of_the(&app, "ClientRegistered");
    assert_eq!(got[0].body["event"]["data"]["first_bad"], broken);
    // Found again at every check, recorded once.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(events_of_type(&app, "ChainBroken"), 1);
    assert_eq!(hook.received().len(), 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disk_past_the_threshold_is_recorded_once_and_alerted() {
    let app = spawn_app().await;
    let (hook, _) = hooked(&app, json!(["disk_nearly_full"])).await;
    let dir = app.stop_keeping_data().await;
    let mut config = test_config();
    // Any disk in use at all is past 1%.
    config.disk_alert_percent = 1;
    config.disk_check = Duration::from_millis(100);
    let options = cairn::Options {
        durability: cairn_events::Durability::Normal,
        ..cairn::Options::default()
    };

    let app = spawn_app_configured(dir, "127.0.0.1:0", options, config).await;

    let got = hook.wait_for(1, SOON).await;

    assert_eq!(got[0].body["kind"], "disk_nearly_full");
    assert_eq!(got[0].body["event"]["data"]["threshold_percent"], 1);
    assert!(got[0].body["event"]["data"]["total_bytes"].as_u64().unwrap() > 0);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(events_of_type(&app, "DiskNearlyFull"), 1);
    app.stop().await;
}
