//! Headless Chromium driven over WebDriver (Debian's `chromium` and `chromium-driver`, which `scripts/test.sh`
//! installs when they are missing) with fantoccini: open a page, run JavaScript in it, wait for a condition,
//! take screenshots.
#![allow(dead_code)] // each browser test uses a different part of these helpers

use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};

pub struct Browser {
    /// The WebDriver session; every command of the test goes through it.
    client: Client,
    /// chromedriver, killed with the Chromium it started when the browser is dropped.
    _driver: Driver,
    /// Chromium's profile, fresh for each browser so that no test sees another's session storage.
    _profile: tempfile::TempDir,
}

/// chromedriver as the leader of its own process group: the Chromium it starts is in that group too, so that one
/// kill ends them all, whatever state a failing test left them in.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0.id())])
            .status();
        let _ = self.0.wait();
    }
}

impl Browser {
    /// Starts chromedriver on a free loopback port and a headless Chromium session through it.
    pub async fn start() -> Browser {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let driver = Driver(
            Command::new("chromedriver")
                .args([format!("--port={port}"), "--allowed-ips=127.0.0.1".into()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .expect("chromedriver runs (scripts/test.sh installs chromium-driver when it is missing)"),
        );
        let profile = tempfile::tempdir().unwrap();
        // chromedriver serves as soon as it listens.
        let mut listening = false;
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                listening = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(listening, "chromedriver did not listen on port {port} within 10 s");
        let args = [
            "--headless=new".to_owned(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--window-size=1400,1000".into(),
            "--force-device-scale-factor=1".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-extensions".into(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": chromium(), "args": args },
            "timeouts": { "script": 30000, "pageLoad": 30000 },
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!("a JSON object")
        };
        let connected = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await;
        let client = connected.unwrap_or_else(|e| panic!("no WebDriver session: {e}"));
        Browser {
            client,
            _driver: driver,
            _profile: profile,
        }
    }

    pub async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("WebDriver could not open {url}: {e}"));
    }

    /// Runs `script` (a function body: `return …`) in the page and answers its result.
    pub async fn eval(&self, script: &str) -> Value {
        self.client
            .execute(script, Vec::new())
            .await
            .unwrap_or_else(|e| panic!("the script failed: {e}\n{script}"))
    }

    /// Runs `script` until it answers something truthy, every 50 ms, for at most `limit`; answers that value
    /// and how long it took. Panics with `what` and the page's text when it never does.
    pub async fn wait_for(&self, what: &str, script: &str, limit: Duration) -> (Value, Duration) {
        let started = Instant::now();
        loop {
            let v = self.eval(script).await;
            let truthy = !matches!(&v, Value::Null | Value::Bool(false)) && v != json!(0) && v != json!("");
            if truthy {
                return (v, started.elapsed());
            }
            if started.elapsed() > limit {
                let text = self.eval("return document.body.innerText.slice(0, 3000)").await;
                panic!(
                    "waited {limit:?} for {what}; the page shows:\n{}",
                    text.as_str().unwrap_or("")
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Saves a PNG of the window under `target/tmp/screenshots/` and answers its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self
            .client
            .screenshot()
            .await
            .unwrap_or_else(|e| panic!("no screenshot: {e}"));
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }

    /// Ends the session (Chromium closes), then stops chromedriver.
    pub async fn quit(self) {
        if let Err(e) = self.client.close().await {
            panic!("the WebDriver session did not end: {e}");
        }
    }
}

fn chromium() -> &'static str {
    [
        "/usr/bin/chromium",
        "/usr/bin/chromium-browser",
        "/usr/bin/google-chrome",
    ]
    .into_iter()
    .find(|p| std::path::Path::new(p).exists())
    .unwrap_or("/usr/bin/chromium")
}
