//! A server on port 0 over a fresh data directory, and an HTTP client for it.
#![allow(dead_code)] // each test file uses a different part of these helpers

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use cairn::client::{Client, HeaderMap, Method};
use cairn::services::{ServerConfig as Config, Services as AppState};
use cairn::{Cairn, Options};
use cairn_events::Durability;
use serde_json::Value;

pub const ADMIN: &str = "admin-token-for-tests-0123456789";

pub struct TestApp {
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    /// Without a token of its own: each request names its own.
    client: Client,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    /// The error code of an error envelope.
    pub fn code(&self) -> String {
        self.json()["error"]["code"].as_str().unwrap_or("<no code>").to_owned()
    }

    pub fn data(&self) -> Value {
        let j = self.json();
        assert_eq!(j["success"], true, "not a success: {j}");
        j["data"].clone()
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(
        Options {
            durability: Durability::Normal,
            ..Options::default()
        },
        Duration::from_secs(60),
    )
    .await
}

pub async fn spawn_app_with(options: Options, heartbeat_timeout: Duration) -> TestApp {
    spawn_app_full(options, heartbeat_timeout, cairn::services::feed::LiveConfig::default()).await
}

pub async fn spawn_app_full(
    options: Options,
    heartbeat_timeout: Duration,
    live: cairn::services::feed::LiveConfig,
) -> TestApp {
    spawn_app_in(
        tempfile::tempdir().unwrap(),
        "127.0.0.1:0",
        options,
        heartbeat_timeout,
        live,
    )
    .await
}

/// The configuration the tests' servers run with (the admin token [`ADMIN`], a 60 s heartbeat timeout).
#[allow(dead_code)] // not every target that includes this file changes a server's configuration
pub fn test_config() -> Config {
    configured(Config::new(
        ADMIN.into(),
        Duration::from_secs(60),
        cairn::services::feed::LiveConfig::default(),
        Default::default(),
    ))
}

/// What every test server changes: no disk alert unless a test asks (the machine's disk is not the test's),
/// and quick alert retries (the workers keep the server's own poll, so the tests show they are woken by
/// commits).
fn configured(mut config: Config) -> Config {
    config.disk_alert_percent = 100;
    config.alerts.backoff = Duration::from_millis(200);
    config.alerts.max_backoff = Duration::from_secs(1);
    config
}

/// A server with its own configuration, in a fresh data directory.
#[allow(dead_code)]
pub async fn spawn_app_config(config: Config) -> TestApp {
    let options = Options {
        durability: Durability::Normal,
        ..Options::default()
    };
    spawn_app_configured(tempfile::tempdir().unwrap(), "127.0.0.1:0", options, config).await
}

/// A server over an existing data directory (seeded, or a stopped server's) on `listen`.
pub async fn spawn_app_in(
    dir: tempfile::TempDir,
    listen: &str,
    options: Options,
    heartbeat_timeout: Duration,
    live: cairn::services::feed::LiveConfig,
) -> TestApp {
    let config = configured(Config::new(ADMIN.into(), heartbeat_timeout, live, Default::default()));
    spawn_app_configured(dir, listen, options, config).await
}

/// A server with `config` over an existing data directory on `listen`.
pub async fn spawn_app_configured(dir: tempfile::TempDir, listen: &str, options: Options, config: Config) -> TestApp {
    // A stopped server's handles go away asynchronously, its data-directory lock with them.
    let mut opened = None;
    for _ in 0..100 {
        match Cairn::open(dir.path(), options) {
            Ok(c) => {
                opened = Some(c);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    let cairn = opened.unwrap_or_else(|| Cairn::open(dir.path(), options).unwrap());
    let state = AppState::new(cairn, config).unwrap();
    let listener = tokio::net::TcpListener::bind(listen).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(cairn::server::serve(state, listener, async {
        let _ = rx.await;
    }));
    TestApp {
        addr,
        client: Client::new(&format!("http://{addr}"), None).unwrap(),
        dir,
        shutdown: Some(tx),
        server: Some(server),
    }
}

impl TestApp {
    /// Stops the server and waits for it, as the test that started it must.
    pub async fn stop(self) {
        self.stop_keeping_data().await;
    }

    /// Stops the server and answers its data directory, for a restart.
    pub async fn stop_keeping_data(mut self) -> tempfile::TempDir {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(s) = self.server.take() {
            tokio::time::timeout(Duration::from_secs(10), s)
                .await
                .expect("the server stops")
                .unwrap();
        }
        self.dir
    }

    /// Sends one request through the crate's API client: any method, path (with its query), token, headers
    /// and body.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Reply {
        let method = Method::from_bytes(method.as_bytes()).expect("a method");
        let mut req = self.client.request(method, path).body(body.into());
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let answer = tokio::time::timeout(Duration::from_secs(30), self.client.send(req))
            .await
            .expect("an answer in time")
            .expect("the server answers");
        Reply {
            status: answer.status,
            headers: answer.headers,
            body: answer.body,
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send("GET", path, Some(ADMIN), &[], Bytes::new()).await
    }

    pub async fn post_json(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.send(
            "POST",
            path,
            token,
            &[("content-type", "application/json")],
            body.to_string(),
        )
        .await
    }

    pub async fn admin(&self, method: &str, path: &str, body: Value) -> Reply {
        let bytes = if body.is_null() {
            Bytes::new()
        } else {
            Bytes::from(body.to_string())
        };
        self.send(
            method,
            path,
            Some(ADMIN),
            &[("content-type", "application/json")],
            bytes,
        )
        .await
    }

    /// Registers a client; returns its id and token.
    pub async fn register(&self, name: &str) -> (String, String) {
        let r = self
            .post_json("/api/clients", Some(ADMIN), serde_json::json!({ "name": name }))
            .await;
        assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
        let d = r.data();
        (
            d["client"]["id"].as_str().unwrap().to_owned(),
            d["token"].as_str().unwrap().to_owned(),
        )
    }

    pub async fn upload(&self, client: &str, token: &str, name: &str, content: &[u8]) -> Reply {
        let path = format!("/api/clients/{client}/files?name={}", urlencode(name));
        self.send(
            "POST",
            &path,
            Some(token),
            &[("content-type", "application/octet-stream")],
            Bytes::copy_from_slice(content),
        )
        .await
    }

    /// A client's own `POST` with no body: `heartbeat` or `disconnect`.
    #[allow(dead_code)]
    pub async fn as_client(&self, client: &str, token: &str, action: &str) -> Reply {
        let path = format!("/api/clients/{client}/{action}");
        self.send("POST", &path, Some(token), &[], Bytes::new()).await
    }

    /// An upload whose declared SHA-256 is not its content's: refused (400), a failed transfer in the log.
    #[allow(dead_code)]
    pub async fn fail_an_upload(&self, client: &str, token: &str, name: &str) {
        let path = format!("/api/clients/{client}/files?name={}", urlencode(name));
        let zeros = "0".repeat(64);
        let r = self
            .send(
                "POST",
                &path,
                Some(token),
                &[("x-content-sha256", &zeros)],
                Bytes::from_static(b"not what was declared"),
            )
            .await;
        assert_eq!(r.status, 400, "{:?}", String::from_utf8_lossy(&r.body));
    }

    pub fn count(&self, sql: &str) -> i64 {
        let conn = cairn_events::schema::open_read_only(&self.dir.path().join("cairn.db")).unwrap();
        conn.query_row(sql, [], |r| r.get(0)).unwrap()
    }
}

/// A query value, percent-encoded (letters, digits and -._~ stay).
pub fn urlencode(s: &str) -> String {
    const ENCODED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(s, ENCODED).to_string()
}
