//! Headless Chromium driven over WebDriver (Debian's `chromium` and `chromium-driver`, which `scripts/test.sh`
//! installs when they are missing) with fantoccini: open a page, run JavaScript in it, wait for a condition,
//! take screenshots; and the steps the browser tests share.

use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cairn::Options;
use cairn_events::Durability;
use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};

use crate::helpers::{TestApp, ADMIN};

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

pub const SOON: Duration = Duration::from_secs(10);
/// The promise: a change made through the API shows in the open page within 2 s, without a reload.
pub const LIVE: Duration = Duration::from_secs(2);

pub fn options() -> Options {
    Options {
        durability: Durability::Normal,
        ..Options::default()
    }
}

/// Opens the dashboard signed in (the URL `cairn serve` prints) and waits for the live feed.
pub async fn open_signed_in(app: &TestApp) -> Browser {
    let b = Browser::start().await;
    b.goto(&format!("http://{}/#token={ADMIN}", app.addr)).await;
    b.wait_for(
        "the live indicator",
        "return document.getElementById('live').textContent === 'live'",
        SOON,
    )
    .await;
    b
}

/// Clicks the page's button that reads `text`.
pub async fn click(b: &Browser, text: &str) {
    let found = b
        .eval(&format!(
            "const x = [...document.querySelectorAll('button')].find(x => x.textContent === {}); if (x) x.click(); return !!x",
            js_str(text)
        ))
        .await;
    assert_eq!(found, true, "no button reads {text:?}");
}

/// Runs a statement in the Database view's SQL console.
pub async fn sql(b: &Browser, statement: &str) {
    b.eval(&format!(
        "document.querySelector('textarea.sql').value = {}; return true",
        js_str(statement)
    ))
    .await;
    click(b, "Run").await;
}

/// Waits for a confirmation dialog and confirms.
pub async fn confirm(b: &Browser) {
    b.wait_for(
        "the confirmation",
        "return document.querySelector('dialog.confirm[open]')",
        SOON,
    )
    .await;
    b.eval("document.querySelector('dialog.confirm [data-confirm]').click(); return true")
        .await;
}

/// Goes to a view by its address and waits until `ready` holds.
pub async fn view(b: &Browser, hash: &str, ready: &str) {
    b.eval(&format!("location.hash = '{hash}'; return true")).await;
    b.wait_for(&format!("{hash} to show"), ready, SOON).await;
}

pub fn js_str(s: &str) -> String {
    Value::from(s).to_string()
}

/// A text in a table cell of the table labelled `table`.
pub fn cell_with(table: &str, col: &str, text: &str) -> String {
    format!(
        "return [...document.querySelectorAll('table[aria-label=\"{table}\"] td[data-col=\"{col}\"]')].some(td => td.textContent.includes({}))",
        js_str(text)
    )
}

/// The value of an Overview card.
pub fn card(label: &str) -> String {
    format!(
        "const c = [...document.querySelectorAll('.card')].find(c => c.querySelector('.label').textContent === {}); return c ? c.querySelector('.value').textContent : null",
        js_str(label)
    )
}

/// Whether an Overview card shows `value`.
pub fn card_is(label: &str, value: &str) -> String {
    format!(
        "const c = [...document.querySelectorAll('.card')].find(c => c.querySelector('.label').textContent === {}); return !!c && c.querySelector('.value').textContent === {}",
        js_str(label),
        js_str(value)
    )
}
