//! The fleet, against a real 3-node NATS JetStream cluster on loopback (`nats-server`, which the test command
//! installs): sites publish their logs (`serve --publish`), in order and exactly once, through a NATS node killed
//! and restarted, a site killed and restarted, and the whole cluster down and back.
#![allow(clippy::unwrap_used)] // a test that cannot proceed should panic where it stopped

mod common;
#[path = "common/webhook.rs"]
mod webhook;

use std::time::{Duration, Instant};

use cairn_events::ChainVerifier;
use common::process::{raw_send, serve, Running};

const TOKEN: &str = "fleet-admin-token-0123456789";

use cairn::bench::fleet::Cluster;

/// A free loopback port (bound, then released for the child to take).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The cluster's URLs as `--publish` and `--nats` take them.
fn urls(cluster: &Cluster) -> String {
    cluster.urls.join(",")
}

/// A site: `cairn serve --publish` over its own data directory.
struct Site {
    name: &'static str,
    dir: tempfile::TempDir,
    server: Option<Running>,
    addr: String,
}

impl Site {
    fn start(name: &'static str, cluster: &Cluster) -> Self {
        let mut site = Self {
            name,
            dir: tempfile::tempdir().unwrap(),
            server: None,
            addr: String::new(),
        };
        site.restart(cluster);
        site
    }

    fn restart(&mut self, cluster: &Cluster) {
        let urls = urls(cluster);
        let (child, _out, addr) = serve(
            self.dir.path(),
            &[
                "--token",
                TOKEN,
                "--publish",
                &urls,
                "--site",
                self.name,
                "--publish-replicas",
                "3",
            ],
        );
        self.server = Some(Running(child));
        self.addr = addr;
    }

    fn kill(&mut self) {
        if let Some(mut s) = self.server.take() {
            s.0.kill().unwrap();
            s.0.wait().unwrap();
        }
    }

    /// Some work: a client and a few log lines (each an event, each acknowledged).
    fn work(&self, round: usize) {
        let client = raw_send(
            &self.addr,
            "POST",
            "/api/clients",
            TOKEN,
            format!(r#"{{"name":"{}-{round}"}}"#, self.name).as_bytes(),
        );
        assert!(client["client"]["id"].is_string(), "{client}");
        for i in 0..5 {
            let line = raw_send(
                &self.addr,
                "POST",
                "/api/logs",
                TOKEN,
                format!(
                    r#"{{"level":"info","message":"{} round {round} line {i}","source":"fleet"}}"#,
                    self.name
                )
                .as_bytes(),
            );
            assert!(line.is_object(), "{line}");
        }
    }

    fn publication(&self) -> serde_json::Value {
        let status = common::process::raw_get(&self.addr, "/api/status", &format!("authorization: Bearer {TOKEN}\r\n"));
        let body = status.split("\r\n\r\n").nth(1).unwrap_or_default();
        let json: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
        let mut p = json["data"]["publication"].clone();
        p["head"] = json["data"]["head_position"].clone();
        p
    }

    /// Waits until JetStream acknowledged the whole log.
    fn wait_published(&self, limit: Duration) -> i64 {
        let started = Instant::now();
        loop {
            let p = self.publication();
            if p["lag"] == 0 && p["connected"] == true {
                return p["acknowledged"].as_i64().unwrap();
            }
            assert!(
                started.elapsed() < limit,
                "{} not published within {limit:?}: {p}",
                self.name
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// A hub (`cairn hub --nats`) over its own data directory; answers it and its address.
fn start_hub(dir: &std::path::Path, cluster: &Cluster, hook: &str) -> (Running, String) {
    let mut hub = common::cairn_bin();
    hub.args([
        "hub",
        "--nats",
        &urls(cluster),
        "--listen",
        "127.0.0.1:0",
        "--token",
        TOKEN,
    ])
    .args(["--alert-webhook", hook])
    .arg("--data")
    .arg(dir);
    let (child, _out, addr) = common::process::started(hub);
    (Running(child), addr)
}

fn get(addr: &str, path: &str) -> serde_json::Value {
    let answer = common::process::raw_get(addr, path, &format!("authorization: Bearer {TOKEN}\r\n"));
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    serde_json::from_str(body).unwrap_or_default()
}

/// Waits until the hub has applied `head` events of `site`; answers the site's card.
fn hub_reaches(hub: &str, site: &str, head: i64, limit: Duration) -> serde_json::Value {
    let started = Instant::now();
    loop {
        let card = get(hub, &format!("/api/fleet/sites/{site}"))["data"].clone();
        if card["head_position"] == head {
            return card;
        }
        assert!(
            started.elapsed() < limit,
            "the hub did not reach {head} of {site}: {card}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Every message of a site's stream, in the stream's order: each the event at its position, once, chaining.
async fn check_stream(cluster: &Cluster, site: &str, head: i64) {
    let servers: Vec<async_nats::ServerAddr> = cluster.urls.iter().map(|u| u.parse().unwrap()).collect();
    let client = async_nats::connect(servers).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let mut stream = js.get_stream(format!("CAIRN_{site}")).await.unwrap();
    let info = stream.info().await.unwrap();
    assert_eq!(info.state.messages as i64, head, "{site}: one message per event");
    assert_eq!(info.state.last_sequence as i64, head);
    let mut verifier = ChainVerifier::new();
    for seq in 1..=head as u64 {
        let m = stream.get_raw_message(seq).await.unwrap();
        assert_eq!(m.subject.as_str(), format!("cairn.{site}.events"));
        assert_eq!(m.headers.get("Cairn-Position").unwrap().as_str(), seq.to_string());
        let e: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
        let event = cairn_events::RecordedEvent {
            position: e["position"].as_i64().unwrap(),
            id: e["id"].as_str().unwrap().parse().unwrap(),
            stream: e["stream"].as_str().unwrap().into(),
            version: e["version"].as_i64().unwrap(),
            event_type: e["type"].as_str().unwrap().into(),
            schema: e["schema"].as_u64().unwrap() as u32,
            data: e["data"].as_str().unwrap().into(),
            metadata: e["metadata"].as_str().unwrap().into(),
            recorded_at: e["recorded_at"].as_str().unwrap().into(),
            crc: e["crc"].as_u64().unwrap() as u32,
            hash: hex::decode(e["hash"].as_str().unwrap()).unwrap().try_into().unwrap(),
        };
        assert_eq!(m.headers.get("Nats-Msg-Id").unwrap().as_str(), event.id.to_string());
        verifier
            .check(&event)
            .unwrap_or_else(|err| panic!("{site} at {seq}: {err}"));
    }
}

#[test]
fn two_sites_publish_every_event_once_in_order_through_node_and_site_crashes_and_an_outage() {
    let mut cluster = Cluster::start().unwrap();
    let mut paris = Site::start("paris", &cluster);
    let lyon = Site::start("lyon", &cluster);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let hook = runtime.block_on(webhook::Receiver::start());
    let hub_dir = tempfile::tempdir().unwrap();
    let (hub_server, hub) = start_hub(hub_dir.path(), &cluster, &hook.url());
    let soon = Duration::from_secs(30);
    for round in 0..3 {
        paris.work(round);
        lyon.work(round);
    }
    paris.wait_published(soon);
    lyon.wait_published(soon);

    // One NATS node crashes and comes back: the R3 streams carry on.
    cluster.kill_node(0);
    for round in 3..6 {
        paris.work(round);
        lyon.work(round);
    }
    cluster.start_node(0).unwrap();
    paris.wait_published(soon);
    lyon.wait_published(soon);

    // A site crashes mid-stream and restarts: it resumes where JetStream stopped, nothing sent twice.
    paris.work(6);
    paris.kill();
    paris.restart(&cluster);
    paris.work(7);
    paris.wait_published(soon);

    // The whole cluster is down: the sites keep working, their lag grows, and the backlog goes when it is back.
    for i in 0..3 {
        cluster.kill_node(i);
    }
    paris.work(8);
    lyon.work(8);
    // An upload too: the site takes it while it cannot publish.
    let clients = get(&paris.addr, "/api/clients")["data"]["items"].clone();
    let id = clients[0]["id"].as_str().unwrap().to_owned();
    let stored = raw_send(
        &paris.addr,
        "POST",
        &format!("/api/clients/{id}/files?name=offline.txt"),
        TOKEN,
        b"written while NATS was down",
    );
    assert!(stored["id"].is_string(), "{stored}");
    let p = paris.publication();
    assert!(p["lag"].as_i64().unwrap() >= 6, "{p}");
    for i in 0..3 {
        cluster.start_node(i).unwrap();
    }
    let paris_head = paris.wait_published(Duration::from_secs(60));
    let lyon_head = lyon.wait_published(Duration::from_secs(60));
    // Six events a round (nine rounds at paris, seven at lyon), a ServerStarted for each start, and the upload's
    // three (its transfer started, the file stored, the transfer completed).
    assert_eq!((paris_head, lyon_head), (9 * 6 + 2 + 3, 7 * 6 + 1));

    runtime.block_on(async {
        check_stream(&cluster, "paris", paris_head).await;
        check_stream(&cluster, "lyon", lyon_head).await;
    });

    // The hub followed both through it all: every event once, in order (its replicas verify the chain as they
    // apply), and each site's figures are the site's own.
    for (site, head) in [(&paris, paris_head), (&lyon, lyon_head)] {
        let card = hub_reaches(&hub, site.name, head, Duration::from_secs(60));
        assert_eq!(card["chain"]["ok"], true, "{card}");
        let status = get(&site.addr, "/api/status")["data"].clone();
        for figure in [
            "total_clients",
            "clients_connected",
            "total_files",
            "storage_used_bytes",
            "stored_bytes",
            "total_transfers",
        ] {
            assert_eq!(
                card[figure], status[figure],
                "{}: {figure}: {card} against {status}",
                site.name
            );
        }
        let event = get(&site.addr, &format!("/api/events/{head}"))["data"].clone();
        assert_eq!(card["head_hash"], event["hash"], "{}", site.name);
    }
    let sites = get(&hub, "/api/fleet/sites")["data"].clone();
    assert_eq!(sites.as_array().unwrap().len(), 2, "{sites}");
    let clients = get(&hub, "/api/fleet/clients?q=paris-3")["data"].clone();
    assert_eq!(clients.as_array().unwrap().len(), 1, "{clients}");
    assert_eq!(clients[0]["site"], "paris");
    let joined = get(&hub, "/api/events?type=FleetSiteJoined")["data"]["total"].clone();
    assert_eq!(joined, 2);

    // A forged stream: three of paris's events copied as they are, then one whose hash does not chain.
    runtime.block_on(forge(&cluster, "paris", "evil", 3));
    let started = Instant::now();
    let card = loop {
        let card = get(&hub, "/api/fleet/sites/evil")["data"].clone();
        if card["state"] == "broken" {
            break card;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "evil never broke: {card}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(card["head_position"], 3, "{card}");
    assert_eq!(card["chain"]["first_bad"], 4, "{card}");
    assert!(
        card["chain"]["detail"].as_str().unwrap().contains("does not chain"),
        "{card}"
    );
    let broken = get(&hub, "/api/events?type=FleetSiteBroken")["data"].clone();
    assert_eq!(broken["total"], 1, "{broken}");
    assert_eq!(broken["events"][0]["data"]["site"], "evil");
    // And the alert went out.
    let started = Instant::now();
    let alert = loop {
        let got: Vec<_> = hook
            .received()
            .into_iter()
            .filter(|r| r.body["kind"] == "site_broken")
            .collect();
        if let Some(first) = got.first() {
            break first.body.clone();
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no site_broken alert: {:?}",
            hook.received()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(alert["event"]["data"]["first_bad"], 4, "{alert}");
    // The others carry on, and the broken one comes first.
    let sites = get(&hub, "/api/fleet/sites")["data"].clone();
    assert_eq!(sites[0]["site"], "evil");
    paris.work(9);
    let paris_head = paris.wait_published(soon);
    hub_reaches(&hub, "paris", paris_head, soon);

    // A second hub, from nothing, follows the same streams through its own consumer: the same fleet.
    let second_dir = tempfile::tempdir().unwrap();
    let (second_server, second) = start_hub(second_dir.path(), &cluster, &hook.url());
    hub_reaches(&second, "paris", paris_head, Duration::from_secs(60));
    hub_reaches(&second, "lyon", lyon_head, Duration::from_secs(60));
    let card = hub_reaches(&second, "evil", 3, Duration::from_secs(60));
    assert_eq!(card["chain"]["first_bad"], 4, "{card}");
    // The first hub lost nothing to the second.
    paris.work(10);
    let paris_head = paris.wait_published(soon);
    hub_reaches(&hub, "paris", paris_head, soon);
    hub_reaches(&second, "paris", paris_head, soon);
    drop(second_server);
    drop(hub_server);
    drop(paris);
    drop(lyon);
    drop(cluster);
}

#[test]
fn a_site_whose_nats_never_answers_works_and_says_how_far_behind_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let nowhere = format!("nats://127.0.0.1:{}", free_port());
    let (child, _out, addr) = serve(dir.path(), &["--token", TOKEN, "--publish", &nowhere, "--site", "dc-2"]);
    let _server = Running(child);
    for i in 0..3 {
        let line = raw_send(
            &addr,
            "POST",
            "/api/logs",
            TOKEN,
            format!(r#"{{"level":"info","message":"offline {i}"}}"#).as_bytes(),
        );
        assert!(line.is_object(), "{line}");
    }
    let auth = format!("authorization: Bearer {TOKEN}\r\n");
    let started = Instant::now();
    let publication = loop {
        let status = common::process::raw_get(&addr, "/api/status", &auth);
        let json: serde_json::Value = serde_json::from_str(status.split("\r\n\r\n").nth(1).unwrap()).unwrap();
        let p = json["data"]["publication"].clone();
        if p["error"].is_string() {
            break p;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "no error reported: {p}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(publication["connected"], false);
    assert_eq!(publication["subject"], "cairn.dc-2.events");
    assert!(publication["lag"].as_i64().unwrap() >= 4, "{publication}");
    let health = common::process::raw_get(&addr, "/api/db/health", &auth);
    assert!(health.contains(r#""name":"publication","ok":false"#), "{health}");
    let metrics = common::process::raw_get(&addr, "/metrics", &auth);
    assert!(metrics.contains("cairn_publication_lag "), "{metrics}");
    assert!(metrics.contains("cairn_publication_connected 0"), "{metrics}");
}

#[test]
fn a_bad_site_name_or_nats_url_is_refused_before_the_server_listens() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    for (args, says) in [
        (
            vec!["--publish", "nats://127.0.0.1:4222", "--site", "a.b"],
            "--site is 1 to 64",
        ),
        (vec!["--publish", "http://127.0.0.1:4222"], "--publish takes nats://"),
    ] {
        let (code, _, err) =
            common::process::run(&[&["serve", "--data", data, "--listen", "127.0.0.1:0"][..], &args[..]].concat());
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(err.contains(says) && err.lines().count() == 1, "{args:?}: {err}");
    }
    let (code, _, _) = common::process::run(&["serve", "--data", data, "--site", "paris"]);
    assert_eq!(code, 2, "--site needs --publish");
}

/// Publishes to a new stream of site `forged` the first `good` events of `from`'s stream as they are, then the
/// next one with its hash changed.
async fn forge(cluster: &Cluster, from: &str, forged: &str, good: u64) {
    let servers: Vec<async_nats::ServerAddr> = cluster.urls.iter().map(|u| u.parse().unwrap()).collect();
    let client = async_nats::connect(servers).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let source = js.get_stream(format!("CAIRN_{from}")).await.unwrap();
    js.get_or_create_stream(async_nats::jetstream::stream::Config {
        name: format!("CAIRN_{forged}"),
        subjects: vec![format!("cairn.{forged}.events")],
        ..Default::default()
    })
    .await
    .unwrap();
    for seq in 1..=good + 1 {
        let m = source.get_raw_message(seq).await.unwrap();
        let mut payload = m.payload.to_vec();
        if seq == good + 1 {
            let mut e: serde_json::Value = serde_json::from_slice(&payload).unwrap();
            e["hash"] = serde_json::Value::String("00".repeat(32));
            payload = serde_json::to_vec(&e).unwrap();
        }
        js.publish(format!("cairn.{forged}.events"), payload.into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
}

#[test]
fn bench_fleet_reports_the_sites_rates_the_hubs_ingest_and_the_lag() {
    let (code, out, err) = common::process::run(&[
        "bench",
        "fleet",
        "--events",
        "100",
        "--producers",
        "2",
        "--durability",
        "normal",
        "--rate",
        "20",
    ]);
    assert_eq!(code, 0, "{err}");
    let row = out
        .lines()
        .find(|l| l.starts_with("| 2 | 200 |"))
        .unwrap_or_else(|| panic!("{out}"));
    let cells: Vec<&str> = row.split('|').map(str::trim).collect();
    for cell in &cells[3..9] {
        assert!(cell.parse::<f64>().is_ok_and(|v| v > 0.0), "{row}");
    }
}
