//! The live feed against a real server: every subscriber gets exactly the matching positions, in order, once;
//! resuming; slow readers; filters; bad tokens and malformed messages; stats and progress.
#![allow(clippy::unwrap_used)] // a test that cannot proceed should panic where it stopped

#[path = "common/api.rs"]
mod helpers;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use helpers::{spawn_app, spawn_app_full, TestApp, ADMIN};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(app: &TestApp, token: &str) -> Socket {
    let mut req = format!("ws://{}/api/live", app.addr).into_client_request().unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    tokio_tungstenite::connect_async(req).await.unwrap().0
}

async fn subscribe(ws: &mut Socket, message: Value) {
    ws.send(Message::text(message.to_string())).await.unwrap();
}

/// The next message of one of `kinds` (others are skipped), or `None` when the socket closed or time ran out.
async fn next_of(ws: &mut Socket, kinds: &[&str], wait: Duration) -> Option<Result<Value, (u16, String)>> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next()).await.ok()??;
        match msg.ok()? {
            Message::Text(t) => {
                let v: Value = serde_json::from_str(&t).unwrap();
                if kinds.contains(&v["kind"].as_str().unwrap_or("")) {
                    return Some(Ok(v));
                }
            }
            Message::Close(Some(frame)) => return Some(Err((frame.code.into(), frame.reason.to_string()))),
            Message::Close(None) => return None,
            _ => {}
        }
    }
}

/// Positions of events received until `until` is reached (or time runs out).
async fn positions_until(ws: &mut Socket, until: i64, wait: Duration) -> Vec<i64> {
    let mut seen = Vec::new();
    while seen.last().is_none_or(|p| *p < until) {
        match next_of(ws, &["event"], wait).await {
            Some(Ok(e)) => seen.push(e["position"].as_i64().unwrap()),
            _ => break,
        }
    }
    seen
}

async fn log(app: &TestApp, message: &str) -> i64 {
    let r = app
        .post_json("/api/logs", Some(ADMIN), json!({ "level": "info", "message": message }))
        .await;
    assert_eq!(r.status, 201);
    r.data()["id"].as_i64().unwrap()
}

/// A server whose live feed has these settings.
async fn app_with(live: cairn::services::feed::LiveConfig) -> TestApp {
    let options = cairn::Options {
        durability: cairn_events::Durability::Normal,
        ..Default::default()
    };
    spawn_app_full(options, Duration::from_secs(60), live).await
}

/// Appends `count` log lines of 4 KB, enough to fill a socket's buffers.
async fn flood(app: &TestApp, count: usize) {
    let big = "x".repeat(4000);
    for i in 0..count {
        log(app, &format!("{i} {big}")).await;
    }
}

fn head(app: &TestApp) -> i64 {
    app.count("SELECT coalesce(max(position), 0) FROM events")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_subscribers_each_receive_exactly_the_matching_positions_in_order_while_writers_append() {
    let app = std::sync::Arc::new(spawn_app().await);
    log(&app, "before anyone subscribed").await;
    let mut all = Vec::new();
    let mut logs_only = Vec::new();
    for i in 0..50 {
        let mut ws = connect(&app, ADMIN).await;
        if i % 2 == 0 {
            subscribe(&mut ws, json!({ "op": "subscribe", "from": 0 })).await;
            all.push(ws);
        } else {
            subscribe(
                &mut ws,
                json!({ "op": "subscribe", "from": 0, "types": ["LogRecorded"] }),
            )
            .await;
            logs_only.push(ws);
        }
    }
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let app = app.clone();
            tokio::spawn(async move {
                for i in 0..40 {
                    if i % 10 == 0 {
                        app.register(&format!("client-{w}-{i}")).await;
                    } else {
                        log(&app, &format!("writer {w} line {i}")).await;
                    }
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    let head = head(&app);
    let log_positions: Vec<i64> = {
        let conn = cairn_events::schema::open_read_only(&app.dir.path().join("cairn.db")).unwrap();
        let mut stmt = conn
            .prepare("SELECT position FROM events WHERE type = 'LogRecorded' ORDER BY position")
            .unwrap();
        let positions: Vec<i64> = stmt
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        positions
    };
    for ws in all.iter_mut() {
        assert_eq!(
            positions_until(ws, head, Duration::from_secs(10)).await,
            (1..=head).collect::<Vec<_>>()
        );
    }
    for ws in logs_only.iter_mut() {
        let last = *log_positions.last().unwrap();
        assert_eq!(positions_until(ws, last, Duration::from_secs(10)).await, log_positions);
    }
    drop(all);
    drop(logs_only);
    std::sync::Arc::try_unwrap(app).ok().unwrap().stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_resumes_from_a_given_position_into_the_live_events() {
    let app = spawn_app().await;
    for i in 0..10 {
        log(&app, &format!("m{i}")).await;
    }
    let mut ws = connect(&app, ADMIN).await;
    subscribe(&mut ws, json!({ "op": "subscribe", "from": 5 })).await;
    assert_eq!(
        positions_until(&mut ws, 10, Duration::from_secs(5)).await,
        (6..=10).collect::<Vec<_>>()
    );
    log(&app, "live").await;
    let e = next_of(&mut ws, &["event"], Duration::from_secs(5))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (e["position"].clone(), e["type"].clone(), e["data"]["message"].clone()),
        (json!(11), json!("LogRecorded"), json!("live"))
    );
    assert_eq!(e["metadata"]["actor"], "admin:admin");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_reads_nothing_for_a_while_gets_every_event_or_its_resume_position() {
    let live = cairn::services::feed::LiveConfig {
        queue: 4,
        stall_timeout: Duration::from_millis(300),
        ..Default::default()
    };
    let app = app_with(live).await;
    let mut slow = connect(&app, ADMIN).await;
    subscribe(&mut slow, json!({ "op": "subscribe", "from": 0 })).await;
    // Big lines, so the socket's buffers fill while the subscriber is not reading.
    flood(&app, 1500).await;
    assert_eq!(
        app.get("/api/health").await.status,
        200,
        "the server keeps serving others"
    );
    let head = head(&app);
    let mut seen = Vec::new();
    loop {
        match next_of(&mut slow, &["event"], Duration::from_secs(10)).await {
            Some(Ok(e)) => {
                seen.push(e["position"].as_i64().unwrap());
                if *seen.last().unwrap() == head {
                    break;
                }
            }
            Some(Err((code, reason))) => {
                assert_eq!(code, cairn::live::CLOSE_BEHIND, "{reason}");
                let resume: i64 = reason.rsplit(' ').next().unwrap().parse().unwrap();
                eprintln!("closed as too far behind after {} events: {reason}", seen.len());
                assert_eq!(
                    resume,
                    seen.last().copied().unwrap_or(0),
                    "the reason names the last delivered position"
                );
                let mut again = connect(&app, ADMIN).await;
                subscribe(&mut again, json!({ "op": "subscribe", "from": resume })).await;
                seen.extend(positions_until(&mut again, head, Duration::from_secs(10)).await);
                break;
            }
            None => panic!("the feed ended without a close code after {} events", seen.len()),
        }
    }
    assert_eq!(seen, (1..=head).collect::<Vec<_>>(), "every event, once, in order");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_and_client_tokens_narrow_the_feed() {
    let app = spawn_app().await;
    let (a, a_token) = app.register("alpha").await; // 1
    let (b, b_token) = app.register("bravo").await; // 2
    app.upload(&a, &a_token, "a.txt", b"a").await; // 3-5
    app.upload(&b, &b_token, "b.txt", b"b").await; // 6-8
    log(&app, "admin line").await; // 9

    let mut by_stream = connect(&app, ADMIN).await;
    subscribe(
        &mut by_stream,
        json!({ "op": "subscribe", "from": 0, "streams": [format!("client-{b}"), "transfer-*"] }),
    )
    .await;
    assert_eq!(
        positions_until(&mut by_stream, 8, Duration::from_secs(5)).await,
        [2, 3, 5, 6, 8]
    );

    let mut mine = connect(&app, &a_token).await;
    subscribe(&mut mine, json!({ "op": "subscribe", "from": 0 })).await;
    // The events that name alpha: registration, transfer started, file stored (a completion names only the
    // transfer).
    assert_eq!(
        positions_until(&mut mine, 4, Duration::from_secs(5)).await,
        [1, 3, 4],
        "only alpha's own events"
    );
    log(&app, "another admin line").await; // 10, not alpha's
    app.send(
        "POST",
        &format!("/api/clients/{a}/heartbeat"),
        Some(&a_token),
        &[],
        bytes::Bytes::new(),
    )
    .await; // 11
    let e = next_of(&mut mine, &["event"], Duration::from_secs(5))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (e["position"].clone(), e["type"].clone()),
        (json!(11), json!("ClientConnected"))
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_token_is_refused_and_a_malformed_message_gets_an_error_frame() {
    let app = spawn_app().await;
    let mut req = format!("ws://{}/api/live", app.addr).into_client_request().unwrap();
    req.headers_mut()
        .insert("authorization", "Bearer nope".parse().unwrap());
    match tokio_tungstenite::connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => assert_eq!(res.status(), 401),
        other => panic!("expected 401, got {:?}", other.map(|_| ())),
    }
    match tokio_tungstenite::connect_async(format!("ws://{}/api/live", app.addr)).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => assert_eq!(res.status(), 401),
        other => panic!("expected 401, got {:?}", other.map(|_| ())),
    }
    // A browser sends the token in the query.
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/api/live?token={ADMIN}", app.addr))
        .await
        .unwrap();
    for bad in [
        "not json",
        r#"{"op":"unsubscribe"}"#,
        r#"{"op":"subscribe","from":-1}"#,
        r#"{"op":"subscribe","extra":1}"#,
    ] {
        ws.send(Message::text(bad)).await.unwrap();
        let e = next_of(&mut ws, &["error"], Duration::from_secs(5))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(e["code"], "INVALID_MESSAGE", "{bad}");
    }
    log(&app, "still fine").await;
    subscribe(&mut ws, json!({ "op": "subscribe", "from": 0 })).await;
    assert_eq!(positions_until(&mut ws, 1, Duration::from_secs(5)).await, [1]);
    subscribe(&mut ws, json!({ "op": "subscribe", "from": 0 })).await;
    assert_eq!(
        next_of(&mut ws, &["error"], Duration::from_secs(5))
            .await
            .unwrap()
            .unwrap()["code"],
        "ALREADY_SUBSCRIBED"
    );
    let r = app.get("/api/live").await;
    assert_eq!((r.status, r.code()), (400, "WEBSOCKET_REQUIRED".to_owned()));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_limit_are_refused_clearly() {
    let live = cairn::services::feed::LiveConfig {
        max_connections: 2,
        ..Default::default()
    };
    let app = app_with(live).await;
    let _one = connect(&app, ADMIN).await;
    let _two = connect(&app, ADMIN).await;
    let mut req = format!("ws://{}/api/live", app.addr).into_client_request().unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {ADMIN}").parse().unwrap());
    match tokio_tungstenite::connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
            assert_eq!(res.status(), 503);
            let body: Value = serde_json::from_slice(res.body().as_deref().unwrap_or_default()).unwrap();
            assert_eq!(body["error"]["code"], "TOO_MANY_CONNECTIONS");
        }
        other => panic!("expected 503, got {:?}", other.map(|_| ())),
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_arrive_about_every_second_and_uploads_report_progress() {
    let app = spawn_app().await;
    let mut ws = connect(&app, ADMIN).await;
    subscribe(&mut ws, json!({ "op": "subscribe", "from": 0 })).await;
    let stats = next_of(&mut ws, &["stats"], Duration::from_secs(5))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stats["running"], true);
    assert!(stats["telemetry"]["memory_total_bytes"].as_u64().unwrap() > 0);
    let (a, token) = app.register("alpha").await;
    let content = vec![9u8; 3 << 20];
    app.upload(&a, &token, "big.bin", &content).await;
    let mut last = 0;
    while let Some(Ok(p)) = next_of(&mut ws, &["progress"], Duration::from_secs(5)).await {
        assert_eq!(p["filename"], "big.bin");
        last = p["bytes"].as_u64().unwrap();
        if last == content.len() as u64 {
            break;
        }
    }
    assert_eq!(
        last,
        content.len() as u64,
        "the last progress message counts every byte"
    );
    app.stop().await;
}

/// A server over `dir` on `addr`, and how to stop it.
async fn start(
    dir: &std::path::Path,
    addr: &str,
) -> (
    std::net::SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    // The previous server's handles go away asynchronously; its data-directory lock with them.
    let mut cairn = None;
    for _ in 0..100 {
        match cairn::Cairn::open(
            dir,
            cairn::Options {
                durability: cairn_events::Durability::Normal,
                ..Default::default()
            },
        ) {
            Ok(c) => {
                cairn = Some(c);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    let config = cairn::services::ServerConfig::new(
        ADMIN.into(),
        Duration::from_secs(60),
        Default::default(),
        Default::default(),
    );
    let state = cairn::services::Services::new(cairn.expect("the data directory opens again"), config).unwrap();
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let bound = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(cairn::server::serve(state, listener, async {
        let _ = rx.await;
    }));
    (bound, tx, server)
}

async fn post_log(addr: std::net::SocketAddr, message: &str) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body = json!({ "level": "info", "message": message }).to_string();
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "POST /api/logs HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {ADMIN}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cairn_tail_reconnects_after_the_feed_is_cut_and_resumes_without_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let (addr, stop, server) = start(dir.path(), "127.0.0.1:0").await;
    for i in 0..3 {
        post_log(addr, &format!("before {i}")).await;
    }
    let mut tail = std::process::Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args([
            "tail",
            "--url",
            &format!("http://{addr}"),
            "--token",
            ADMIN,
            "--from",
            "0",
            "--json",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = tail.stdout.take().unwrap();
    let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut positions = Vec::new();
    async fn read_until(
        lines: &mut tokio::sync::mpsc::UnboundedReceiver<String>,
        positions: &mut Vec<i64>,
        count: usize,
    ) {
        while positions.len() < count {
            let line = tokio::time::timeout(Duration::from_secs(20), lines.recv())
                .await
                .expect("tail printed in time")
                .expect("tail is running");
            let v: Value = serde_json::from_str(&line).unwrap();
            positions.push(v["position"].as_i64().unwrap());
        }
    }
    read_until(&mut lines, &mut positions, 3).await;

    // Cut the feed: the server goes away and comes back on the same port, over the same log.
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the server stops with a tail connected")
        .unwrap();
    let (_, stop, server) = start(dir.path(), &addr.to_string()).await;
    for i in 0..3 {
        post_log(addr, &format!("after {i}")).await;
    }
    read_until(&mut lines, &mut positions, 6).await;
    assert_eq!(
        positions,
        (1..=6).collect::<Vec<_>>(),
        "no gap and no duplicate across the reconnection"
    );

    tail.kill().unwrap();
    tail.wait().unwrap();
    let _ = stop.send(());
    server.await.unwrap();
}

#[test]
fn cairn_tail_refuses_a_bad_url_or_token_at_once() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(["tail", "--url", "https://example.invalid", "--token", "t"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("TLS is not built in"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_falls_behind_the_broadcast_is_caught_up_from_the_log_and_pinged() {
    // A broadcast of 4 and a queue of 2: a subscriber that pauses falls behind the relay at once; it must be
    // caught up from the log, not dropped, since its sends never stall for long.
    let live = cairn::services::feed::LiveConfig {
        broadcast_capacity: 4,
        queue: 2,
        ping_every: Duration::from_millis(200),
        ..Default::default()
    };
    let app = app_with(live).await;
    let mut ws = connect(&app, ADMIN).await;
    subscribe(&mut ws, json!({ "op": "subscribe", "from": 0 })).await;
    // Big lines, so the socket fills and the feeder waits while the relay goes on.
    flood(&app, 1500).await;
    let mut pinged = false;
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while seen.len() < 1500 {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("every event in time")
            .unwrap()
            .unwrap();
        match msg {
            Message::Ping(_) => pinged = true,
            Message::Text(t) => {
                let v: Value = serde_json::from_str(&t).unwrap();
                if v["kind"] == "event" {
                    seen.push(v["position"].as_i64().unwrap());
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(seen, (1..=1500).collect::<Vec<_>>());
    // Pings come every 200 ms; wait for one if the burst was quicker than that.
    while !pinged {
        if let Message::Ping(_) = tokio::time::timeout(Duration::from_secs(2), ws.next())
            .await
            .expect("a ping")
            .unwrap()
            .unwrap()
        {
            pinged = true;
        }
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_token_sees_its_own_uploads_progress_and_neither_the_stats_nor_another_clients() {
    let app = spawn_app().await;
    let (a, a_token) = app.register("alpha").await;
    let (b, b_token) = app.register("bravo").await;
    let mut admin = connect(&app, ADMIN).await;
    let mut alpha = connect(&app, &a_token).await;
    let mut bravo = connect(&app, &b_token).await;
    for ws in [&mut admin, &mut alpha, &mut bravo] {
        subscribe(ws, json!({ "op": "subscribe" })).await;
    }
    // The admin's stats arrive about every second: a window of 2.5 s holds some for anyone who sees them.
    assert!(next_of(&mut admin, &["stats"], Duration::from_secs(5)).await.is_some());

    app.upload(&b, &b_token, "bravo.bin", &vec![1u8; 1 << 20]).await;

    let own = next_of(&mut bravo, &["progress"], Duration::from_secs(5))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(own["client_id"], b.as_str());
    let seen = next_of(&mut alpha, &["progress", "stats"], Duration::from_millis(2500)).await;
    assert!(seen.is_none(), "alpha saw {seen:?}");
    assert!(next_of(&mut bravo, &["stats"], Duration::from_millis(1500))
        .await
        .is_none());

    app.upload(&a, &a_token, "alpha.bin", b"mine").await;
    let mine = next_of(&mut alpha, &["progress"], Duration::from_secs(5))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (mine["client_id"].as_str(), mine["filename"].as_str()),
        (Some(a.as_str()), Some("alpha.bin"))
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_over_64_kib_is_closed_with_1009_and_the_feed_goes_on_for_everyone_else() {
    let app = spawn_app().await;
    let mut admin = connect(&app, ADMIN).await;
    subscribe(&mut admin, json!({ "op": "subscribe" })).await;
    let mut hostile = connect(&app, ADMIN).await;

    let huge = json!({ "op": "subscribe", "streams": vec!["x".repeat(1024); 100] }).to_string();
    hostile.send(Message::text(huge)).await.unwrap();

    let closed = next_of(&mut hostile, &[], Duration::from_secs(5)).await;
    assert!(
        matches!(&closed, Some(Err((1009, reason))) if reason.contains("64 KiB")),
        "{closed:?}"
    );
    let p = log(&app, "still here").await;
    let seen = positions_until(&mut admin, p, Duration::from_secs(5)).await;
    assert_eq!(seen.last(), Some(&p), "the other subscriber still gets events");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_closes_gets_a_close_frame_back() {
    use tokio_tungstenite::tungstenite::protocol::frame::{coding::CloseCode, CloseFrame};
    let app = spawn_app().await;
    let mut ws = connect(&app, ADMIN).await;
    subscribe(&mut ws, json!({ "op": "subscribe" })).await;

    let bye = CloseFrame {
        code: CloseCode::Normal,
        reason: "bye".into(),
    };
    ws.send(Message::Close(Some(bye))).await.unwrap();

    // Skip what was already on its way; the next thing must be a close frame, not the connection dropping.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let answer = loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(Message::Text(_) | Message::Ping(_) | Message::Pong(_)))) => continue,
            other => break other,
        }
    };
    assert!(
        matches!(&answer, Ok(Some(Ok(Message::Close(Some(f))))) if f.code == CloseCode::Normal),
        "{answer:?}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_a_token_or_deleting_a_client_closes_its_live_connections_at_once() {
    let app = spawn_app().await;
    let (a, token) = app.register("alpha").await;
    let mut admin = connect(&app, ADMIN).await;
    subscribe(&mut admin, json!({ "op": "subscribe" })).await;
    let mut sockets = Vec::new();
    for _ in 0..3 {
        let mut ws = connect(&app, &token).await;
        subscribe(&mut ws, json!({ "op": "subscribe" })).await;
        assert!(next_of(&mut ws, &["subscribed"], Duration::from_secs(5))
            .await
            .is_some());
        sockets.push(ws);
    }

    let rotated = app.admin("POST", &format!("/api/clients/{a}/token"), Value::Null).await;
    assert_eq!(rotated.status, 200);
    for ws in &mut sockets {
        let closed = next_of(ws, &[], Duration::from_secs(2)).await;
        assert!(matches!(&closed, Some(Err((4003, _)))), "{closed:?}");
    }
    let mut old = format!("ws://{}/api/live", app.addr).into_client_request().unwrap();
    old.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    assert!(
        tokio_tungstenite::connect_async(old).await.is_err(),
        "the old token opens nothing"
    );

    let new_token = rotated.data()["token"].as_str().unwrap().to_owned();
    let mut again = connect(&app, &new_token).await;
    subscribe(&mut again, json!({ "op": "subscribe" })).await;
    assert!(next_of(&mut again, &["subscribed"], Duration::from_secs(5))
        .await
        .is_some());
    app.admin("DELETE", &format!("/api/clients/{a}"), Value::Null).await;
    let closed = next_of(&mut again, &[], Duration::from_secs(2)).await;
    assert!(matches!(&closed, Some(Err((4003, _)))), "{closed:?}");

    let p = log(&app, "the admin is unaffected").await;
    assert_eq!(
        positions_until(&mut admin, p, Duration::from_secs(5)).await.last(),
        Some(&p)
    );
    app.stop().await;
}

/// Opens a live connection, or answers the status the upgrade was refused with.
async fn try_connect(app: &TestApp, token: &str) -> Result<Socket, u16> {
    let mut req = format!("ws://{}/api/live", app.addr).into_client_request().unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    match tokio_tungstenite::connect_async(req).await {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => Err(res.status().as_u16()),
        Err(e) => panic!("{e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_token_holds_a_handful_of_connections_and_never_the_admins_room() {
    let live = cairn::services::feed::LiveConfig {
        max_connections: 6,
        admin_reserve: 2,
        per_client: 3,
        ..Default::default()
    };
    let app = app_with(live).await;
    let (_, a) = app.register("alpha").await;
    let (_, b) = app.register("bravo").await;

    let mut alpha = Vec::new();
    for _ in 0..3 {
        alpha.push(try_connect(&app, &a).await.unwrap());
    }
    assert_eq!(try_connect(&app, &a).await.err(), Some(503), "past its own handful");
    let _bravo = try_connect(&app, &b).await.unwrap();
    assert_eq!(
        try_connect(&app, &b).await.err(),
        Some(503),
        "the clients' share (6 - 2) is taken"
    );
    let _admin_one = try_connect(&app, ADMIN).await.unwrap();
    let _admin_two = try_connect(&app, ADMIN).await.unwrap();
    assert_eq!(try_connect(&app, ADMIN).await.err(), Some(503), "past the whole limit");

    drop(alpha.pop());
    let mut freed = Err(0);
    for _ in 0..250 {
        freed = try_connect(&app, &a).await.map(|_| ());
        if freed.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await; // the server sees the close a moment later
    }
    assert_eq!(freed, Ok(()), "a closed connection gives its place back");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_never_carries_a_token_hash() {
    let app = spawn_app().await;
    let (a, _) = app.register("alpha").await;
    app.admin("POST", &format!("/api/clients/{a}/token"), Value::Null).await;
    let mut admin = connect(&app, ADMIN).await;
    subscribe(&mut admin, json!({ "op": "subscribe", "from": 0 })).await;

    let registered = next_of(&mut admin, &["event"], Duration::from_secs(5))
        .await
        .unwrap()
        .unwrap();
    let rotated = next_of(&mut admin, &["event"], Duration::from_secs(5))
        .await
        .unwrap()
        .unwrap();

    assert_eq!(registered["type"], "ClientRegistered");
    assert_eq!(registered["data"]["name"], "alpha");
    assert_eq!(rotated["type"], "ClientTokenRotated");
    for e in [&registered, &rotated] {
        assert!(e["data"].get("token_hash").is_none(), "{e}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heartbeat_moves_last_seen_on_the_feed_for_the_admin_and_the_client_only() {
    let app = spawn_app().await;
    let (a, a_token) = app.register("alpha").await;
    let (_, b_token) = app.register("bravo").await;
    let mut admin = connect(&app, ADMIN).await;
    let mut bravo = connect(&app, &b_token).await;
    for ws in [&mut admin, &mut bravo] {
        subscribe(ws, json!({ "op": "subscribe" })).await;
    }
    // What bravo's own connecting told the feed goes by first.
    tokio::time::sleep(Duration::from_millis(200)).await;
    while next_of(&mut admin, &["presence"], Duration::from_millis(100))
        .await
        .is_some()
    {}
    while next_of(&mut bravo, &["presence"], Duration::from_millis(100))
        .await
        .is_some()
    {}

    let beat = app
        .send(
            "POST",
            &format!("/api/clients/{a}/heartbeat"),
            Some(&a_token),
            &[],
            bytes::Bytes::new(),
        )
        .await;
    assert_eq!(beat.status, 200);

    let told = next_of(&mut admin, &["presence"], Duration::from_secs(5))
        .await
        .unwrap()
        .unwrap();
    let answer = app.get(&format!("/api/clients/{a}")).await.data();
    assert_eq!(told["client_id"], a.as_str());
    // The feed is told at most once a second per client; the API answers the very latest sign.
    let at = |v: &Value| chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap();
    let lag = at(&answer["last_seen"]) - at(&told["last_seen"]);
    assert!(
        lag >= chrono::TimeDelta::zero() && lag < chrono::TimeDelta::seconds(1),
        "the feed says what the API says, within its second: {lag:?}"
    );
    let seen = next_of(&mut bravo, &["presence"], Duration::from_millis(1500)).await;
    assert!(seen.is_none(), "bravo saw alpha's presence: {seen:?}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_subscriber_gets_the_servers_telemetry_history_and_a_client_does_not() {
    let app = spawn_app().await;
    let (_, token) = app.register("alpha").await;
    // The server samples every second whether anyone listens: wait for two samples.
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let mut admin = connect(&app, ADMIN).await;
    let mut alpha = connect(&app, &token).await;
    subscribe(&mut admin, json!({ "op": "subscribe" })).await;
    subscribe(&mut alpha, json!({ "op": "subscribe" })).await;

    let history = next_of(&mut admin, &["history"], Duration::from_secs(5))
        .await
        .unwrap()
        .unwrap();

    let samples = history["telemetry"].as_array().unwrap();
    assert!(samples.len() >= 2, "{history}");
    assert!(samples.len() <= cairn::services::feed::TELEMETRY_HISTORY);
    for s in samples {
        assert!(
            s["at"].is_string() && s["cpu_percent"].is_number() && s["memory_percent"].is_number(),
            "{s}"
        );
    }
    let times: Vec<&str> = samples.iter().map(|s| s["at"].as_str().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] < w[1]), "oldest first: {times:?}");
    assert!(next_of(&mut alpha, &["history"], Duration::from_millis(800))
        .await
        .is_none());
    app.stop().await;
}
