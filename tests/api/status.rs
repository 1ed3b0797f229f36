//! `GET /api/health`, `/api/status`, `/api/system`, `/api/activity` and `/api/stats`.

use bytes::Bytes;
use serde_json::json;

use crate::common_api::{spawn_app, TestApp};
use crate::helpers::{assert_invalid_query, upload_id};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_health_check_answers_ok_without_a_token() {
    let app = spawn_app().await;

    let r = app.send("GET", "/api/health", None, &[], Bytes::new()).await;

    assert_eq!((r.status, r.data()["status"].clone()), (200, json!("ok")));
    app.stop().await;
}

/// One client that uploaded the same four bytes twice, as `a.txt` and `b.txt`: seven events.
async fn spawn_app_with_two_identical_files() -> TestApp {
    let app = spawn_app().await;
    let (id, token) = app.register("alpha").await;
    upload_id(&app, &id, &token, "a.txt", b"same").await;
    upload_id(&app, &id, &token, "b.txt", b"same").await;
    app
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_counts_the_clients_and_the_files() {
    let app = spawn_app_with_two_identical_files().await;

    let s = app.get("/api/status").await.data();

    assert_eq!(
        (s["total_clients"].clone(), s["total_files"].clone()),
        (json!(1), json!(2))
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_counts_the_bytes_uploaded_apart_from_the_bytes_stored_after_dedupe() {
    let app = spawn_app_with_two_identical_files().await;

    let s = app.get("/api/status").await.data();

    assert_eq!(
        (s["storage_used_bytes"].clone(), s["stored_bytes"].clone()),
        (json!(8), json!(4))
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_counts_every_transfer() {
    let app = spawn_app_with_two_identical_files().await;

    let s = app.get("/api/status").await.data();

    assert_eq!(s["total_transfers"], 2);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_counts_the_events_up_to_the_head_position() {
    let app = spawn_app_with_two_identical_files().await;

    let s = app.get("/api/status").await.data();

    assert_eq!(s["events_total"], s["head_position"]);
    assert_eq!(s["events_total"], 7);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_says_the_server_is_running() {
    let app = spawn_app_with_two_identical_files().await;

    let s = app.get("/api/status").await.data();

    assert_eq!(s["running"], true);
    app.stop().await;
}

/// One client that uploaded `f.txt`, three bytes: four events.
async fn spawn_app_with_a_three_byte_file() -> TestApp {
    let app = spawn_app().await;
    let (a, token) = app.register("alpha").await;
    upload_id(&app, &a, &token, "f.txt", b"abc").await;
    app
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_system_reports_the_machines_memory_and_the_processs_resident_size() {
    let app = spawn_app_with_a_three_byte_file().await;

    let s = app.get("/api/system").await.data();

    assert!(
        s["memory_total_bytes"].as_u64().unwrap() > 0 && s["process_rss_bytes"].as_u64().unwrap() > 0,
        "{s}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_system_reports_the_disks_size() {
    let app = spawn_app_with_a_three_byte_file().await;

    let s = app.get("/api/system").await.data();

    assert!(s["disk_total_bytes"].as_u64().is_some(), "{s}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_system_reports_the_bytes_in_the_blob_store() {
    let app = spawn_app_with_a_three_byte_file().await;

    let s = app.get("/api/system").await.data();

    assert_eq!(s["blobs_bytes"], 3);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_activity_answers_at_most_its_limit() {
    let app = spawn_app_with_a_three_byte_file().await;

    let act = app.get("/api/activity?limit=2").await.data();

    assert_eq!(act["items"].as_array().unwrap().len(), 2);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_activity_lists_the_newest_event_first() {
    let app = spawn_app_with_a_three_byte_file().await;

    let act = app.get("/api/activity?limit=2").await.data();

    assert_eq!(act["items"][0]["type"], "TransferCompleted", "newest first");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_activity_says_what_each_event_did_in_words() {
    let app = spawn_app_with_a_three_byte_file().await;

    let act = app.get("/api/activity?limit=2").await.data();

    assert_eq!(act["items"][1]["summary"], "alpha: stored f.txt (3 B)");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_activity_names_whose_each_event_is_even_when_the_event_names_only_a_transfer() {
    let app = spawn_app().await;
    let (id, token) = app.register("workstation-21").await;
    let big = vec![7u8; 2_100_000];
    upload_id(&app, &id, &token, "disk.img", &big).await;

    let act = app.get("/api/activity?limit=10").await.data();
    let items = act["items"].as_array().unwrap();

    let completed = items.iter().find(|i| i["type"] == "TransferCompleted").unwrap();
    assert_eq!(completed["summary"], "workstation-21: transfer completed (2.1 MB)");
    assert_eq!(completed["client_id"], json!(id));
    assert_eq!(completed["client_name"], "workstation-21");
    let registered = items.iter().find(|i| i["type"] == "ClientRegistered").unwrap();
    assert_eq!(registered["summary"], "workstation-21: registered");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_activity_limit_of_zero_or_a_thousand_is_refused() {
    let app = spawn_app().await;

    for bad in ["0", "1000"] {
        let r = app.get(&format!("/api/activity?limit={bad}")).await;

        assert_eq!(r.status, 400, "{bad}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_activity_limit_that_is_not_a_number_is_refused() {
    let app = spawn_app().await;

    let r = app.get("/api/activity?limit=x").await;

    assert_eq!(r.status, 400);
    app.stop().await;
}

/// One client that uploaded five bytes.
async fn spawn_app_with_a_five_byte_upload() -> TestApp {
    let app = spawn_app().await;
    let (a, token) = app.register("alpha").await;
    upload_id(&app, &a, &token, "f.txt", b"12345").await;
    app
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stats_count_uploads_by_the_hour() {
    let app = spawn_app_with_a_five_byte_upload().await;

    let s = app.get("/api/stats?bucket=hour").await.data();

    assert_eq!(s["buckets"][0]["uploads"], 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_hourly_bucket_is_named_by_its_hour() {
    let app = spawn_app_with_a_five_byte_upload().await;

    let s = app.get("/api/stats?bucket=hour").await.data();

    assert_eq!(s["buckets"][0]["bucket"].as_str().unwrap().len(), 13);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stats_total_the_bytes_in_and_the_registrations() {
    let app = spawn_app_with_a_five_byte_upload().await;

    let s = app.get("/api/stats?bucket=hour").await.data();

    assert_eq!(
        (s["totals"]["bytes_in"].clone(), s["totals"]["registrations"].clone()),
        (json!(5), json!(1))
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stats_of_a_period_without_events_have_no_buckets() {
    let app = spawn_app_with_a_five_byte_upload().await;

    let far = app.get("/api/stats?from=2001-01-01&to=2001-01-02").await.data();

    assert_eq!(far["buckets"], json!([]));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stats_bucket_of_a_week_is_an_invalid_query() {
    let app = spawn_app().await;

    assert_invalid_query(&app, "/api/stats?bucket=week").await;
    app.stop().await;
}

/// A sample: its metric's name, its labels (sorted) and its value.
type Sample = (String, Vec<(String, String)>, f64);

/// `/metrics` read by a Prometheus text parser: each sample's value by name and labels.
fn scrape(text: &str) -> Vec<Sample> {
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    let parsed = prometheus_parse::Scrape::parse(lines).expect("a Prometheus text exposition");
    parsed
        .samples
        .into_iter()
        .filter_map(|s| {
            let value = match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => return None,
            };
            let mut labels: Vec<(String, String)> = s.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            labels.sort();
            Some((s.metric, labels, value))
        })
        .collect()
}

fn sample(samples: &[Sample], name: &str, label: Option<(&str, &str)>) -> f64 {
    samples
        .iter()
        .find(|(n, l, _)| n == name && label.is_none_or(|(k, v)| l.iter().any(|(a, b)| a == k && b == v)))
        .map(|(_, _, v)| *v)
        .unwrap_or_else(|| panic!("no sample {name} {label:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_as_prometheus_text_and_agree_with_the_status() {
    let app = spawn_app_with_two_identical_files().await;
    let (b, b_token) = app.register("beta").await;
    crate::helpers::heartbeat(&app, &b, &b_token).await;

    let metrics = app
        .send("GET", "/metrics", Some(crate::common_api::ADMIN), &[], Bytes::new())
        .await;
    let status = app.get("/api/status").await.data();

    assert_eq!(metrics.status, 200);
    let text = String::from_utf8(metrics.body.to_vec()).unwrap();
    let samples = scrape(&text);
    let figure = |key: &str| status[key].as_f64().unwrap();
    assert_eq!(sample(&samples, "cairn_events_total", None), figure("events_total"));
    assert_eq!(sample(&samples, "cairn_head_position", None), figure("head_position"));
    assert_eq!(sample(&samples, "cairn_files", None), figure("total_files"));
    assert_eq!(
        sample(&samples, "cairn_file_size_bytes", None),
        figure("storage_used_bytes")
    );
    assert_eq!(
        sample(&samples, "cairn_stored_size_bytes", None),
        figure("stored_bytes")
    );
    let connected = sample(&samples, "cairn_clients", Some(("status", "Connected")));
    assert_eq!(connected, figure("clients_connected"));
    let clients: f64 = ["Registered", "Connected", "Offline"]
        .iter()
        .map(|s| sample(&samples, "cairn_clients", Some(("status", s))))
        .sum();
    assert_eq!(clients, figure("total_clients"));
    let active = sample(&samples, "cairn_transfers", Some(("status", "InProgress")));
    assert_eq!(active, figure("active_transfers"));
    let completed = sample(&samples, "cairn_transfers", Some(("status", "Completed")));
    assert_eq!(completed, figure("total_transfers"));
    assert!(sample(&samples, "cairn_writer_batches_total", None) >= 1.0);
    assert!(
        text.contains("cairn_writer_batch_seconds_bucket{le=\"+Inf\"}"),
        "{text}"
    );
    assert!(text.trim_end().ends_with("# EOF"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_need_the_admin_token_by_default() {
    let app = spawn_app().await;
    let (_, token) = app.register("alpha").await;

    let anonymous = app.send("GET", "/metrics", None, &[], Bytes::new()).await;
    let client = app.send("GET", "/metrics", Some(&token), &[], Bytes::new()).await;

    assert_eq!(anonymous.status, 401);
    assert_eq!(client.status, 403);
    app.stop().await;
}
