//! The page under test: headless Chromium driven over WebDriver (Debian's `chromium` and `chromium-driver`,
//! which `scripts/test.sh` installs when they are missing) with fantoccini, and the steps the view tests share:
//! signing in, going to a view, running JavaScript in the page, waiting for a condition, clicking, confirming,
//! the SQL console, downloads, screenshots; the selectors of table cells and cards; and the few server-side
//! steps that `tests/common/api.rs` does not have.

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

/// How long a page may take to show what a test waits for.
pub const SOON: Duration = Duration::from_secs(10);
/// The promise: a change made through the API shows in the open page within 2 s, without a reload.
pub const LIVE: Duration = Duration::from_secs(2);
/// How often a wait asks the page again.
const POLL: Duration = Duration::from_millis(50);

/// One headless Chromium, with its own chromedriver and profile, on one page of the dashboard.
pub struct Browser {
    /// The WebDriver session; every step of the test goes through it.
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
        // Nothing to report to: a test that got this far has passed or already failed.
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
        // No --allowed-ips: given one, chromedriver listens on every interface (and filters); without, on the
        // loopback addresses only.
        let driver = Driver(
            Command::new("chromedriver")
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .expect("chromedriver runs (scripts/test.sh installs chromium-driver when it is missing)"),
        );
        let profile = tempfile::tempdir().unwrap();
        // chromedriver serves as soon as it listens.
        let started = Instant::now();
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            assert!(
                started.elapsed() < SOON,
                "chromedriver did not listen on port {port} within {SOON:?}"
            );
            tokio::time::sleep(POLL).await;
        }
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
            // The hidden omnibox popup page keeps a third of a core busy in every headless browser; with one
            // browser per test on two cores, that is a quarter of the suite's time.
            "--disable-features=WebUIOmniboxPopup,WebUIOmniboxAimPopup,WebUIOmniboxFullPopup".into(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        // No page load strategy: chromedriver would otherwise wait, before the first command on the window, for
        // the new-tab page Chromium starts on, which now and then takes 5 s to begin loading. The tests wait for
        // what they need instead (`goto` for its page, `wait_for` for the rest).
        let Value::Object(capabilities) = json!({
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": chromium(), "args": args },
            "timeouts": { "script": 30000, "pageLoad": 30000 },
            "pageLoadStrategy": "none",
        }) else {
            unreachable!("a JSON object")
        };
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .unwrap_or_else(|e| panic!("no WebDriver session: {e}"));
        Browser {
            client,
            _driver: driver,
            _profile: profile,
        }
    }

    /// Starts a browser on the dashboard signed in (the URL `cairn serve` prints), waits for the live feed, and
    /// marks the page for [`Browser::assert_not_reloaded`].
    pub async fn open_signed_in(app: &TestApp) -> Browser {
        let b = Browser::start().await;
        b.goto(&format!("http://{}/#token={ADMIN}", app.addr)).await;
        b.wait_for("the live indicator", IS_LIVE, SOON).await;
        b.mark_not_reloaded().await;
        b
    }

    /// Opens `url`, of another origin than the page's, and waits until it has loaded.
    pub async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("WebDriver could not open {url}: {e}"));
        let origin = url.split('/').take(3).collect::<Vec<_>>().join("/"); // scheme://host:port
        self.wait_for(
            &format!("{url} to load"),
            &format!(
                "return location.origin === {} && document.readyState === 'complete'",
                js_str(&origin)
            ),
            SOON,
        )
        .await;
    }

    /// Runs `script` (a function body: `return …`) in the page and answers its result.
    pub async fn eval(&self, script: &str) -> Value {
        self.client
            .execute(script, Vec::new())
            .await
            .unwrap_or_else(|e| panic!("the script failed: {e}\n{script}"))
    }

    /// Runs `script` until it answers something truthy, every 50 ms, for at most `limit`; answers that value
    /// and how long it took. A script that throws counts as not yet (the page may be between two states).
    /// Panics with `what`, the last error and the page's text when it never does.
    pub async fn wait_for(&self, what: &str, script: &str, limit: Duration) -> (Value, Duration) {
        let started = Instant::now();
        loop {
            let error = match self.client.execute(script, Vec::new()).await {
                Ok(v) if truthy(&v) => return (v, started.elapsed()),
                Ok(_) => None,
                Err(e) => Some(e),
            };
            if started.elapsed() > limit {
                let text = self.eval("return document.body.innerText.slice(0, 3000)").await;
                let error = error
                    .map(|e| format!(" (the script last failed: {e})"))
                    .unwrap_or_default();
                panic!(
                    "waited {limit:?} for {what}{error}; the page shows:\n{}",
                    text.as_str().unwrap_or("")
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Goes to a view by its address and waits until `ready` holds. The view changes after the script that sets
    /// the address returns, so `ready` must be true of the new view only.
    pub async fn view(&self, hash: &str, ready: &str) {
        self.eval(&format!("location.hash = {}; return true", js_str(hash)))
            .await;
        self.wait_for(&format!("{hash} to show"), ready, SOON).await;
    }

    /// Clicks the page's button that reads `text`.
    pub async fn click(&self, text: &str) {
        let found = self
            .eval(&format!(
                "const x = [...document.querySelectorAll('button')].find(x => x.textContent === {}); if (x) x.click(); return !!x",
                js_str(text)
            ))
            .await;
        assert_eq!(found, true, "no button reads {text:?}");
    }

    /// Clicks the button that reads `text` in the row of the table labelled `table` that mentions `row`.
    pub async fn click_in_row(&self, table: &str, row: &str, text: &str) {
        let found = self
            .eval(&format!(
                "const r = [...document.querySelectorAll({})].find(r => r.textContent.includes({})); const x = r && [...r.querySelectorAll('button')].find(x => x.textContent === {}); if (x) x.click(); return !!x",
                js_str(&format!("{} tr", table_labelled(table))),
                js_str(row),
                js_str(text)
            ))
            .await;
        assert_eq!(found, true, "no {text:?} button in the {table} row of {row:?}");
    }

    /// Waits for a confirmation dialog and confirms.
    pub async fn confirm(&self) {
        self.wait_for("the confirmation", CONFIRMATION, SOON).await;
        self.eval("document.querySelector('dialog.confirm [data-confirm]').click(); return true")
            .await;
    }

    /// Runs a statement in the Database view's SQL console.
    pub async fn sql(&self, statement: &str) {
        self.eval(&format!(
            "document.querySelector('textarea.sql').value = {}; return true",
            js_str(statement)
        ))
        .await;
        self.click("Run").await;
    }

    /// Sets a select's value, or an input's, as a person would, so that the view hears of it.
    pub async fn choose(&self, label: &str, value: &str) {
        let found = self
            .eval(&format!(
                "const x = document.querySelector({}); if (!x) return false; x.value = {}; x.dispatchEvent(new Event(x.tagName === 'SELECT' ? 'change' : 'input')); return true",
                js_str(&format!("[aria-label={}]", js_str(label))),
                js_str(value)
            ))
            .await;
        assert_eq!(found, true, "no control is labelled {label:?}");
    }

    /// Marks the page, so that [`Browser::assert_not_reloaded`] can tell whether it was reloaded since.
    pub async fn mark_not_reloaded(&self) {
        self.eval("window.notReloaded = true; return true").await;
    }

    /// Views change, follow the server and act without reloading the page (which would lose its live state).
    pub async fn assert_not_reloaded(&self) {
        assert_eq!(
            self.eval("return window.notReloaded === true").await,
            true,
            "the page was reloaded"
        );
    }

    /// Keeps every file the page saves from now on (downloads and exports go through `fetch`, then a blob URL),
    /// for [`Browser::saved`].
    pub async fn keep_downloads(&self) {
        self.eval("window.saved = []; const make = URL.createObjectURL; URL.createObjectURL = (blob) => { window.saved.push(blob); return make(blob); }; return true").await;
    }

    /// Waits for the page to have saved one file, and answers its text.
    pub async fn saved(&self) -> String {
        self.wait_for("the download", "return window.saved.length === 1", SOON)
            .await;
        let text = self.eval("return window.saved[0].text()").await;
        text.as_str().expect("a text").to_owned()
    }

    /// Resizes the window (a phone is 390 by 844).
    pub async fn resize(&self, width: u32, height: u32) {
        self.client
            .set_window_size(width, height)
            .await
            .unwrap_or_else(|e| panic!("could not resize the window: {e}"));
    }

    /// Switches the page's theme (`light` or `dark`), as its button does.
    pub async fn theme(&self, theme: &str) {
        self.eval(&format!(
            "document.documentElement.dataset.theme = {}; return true",
            js_str(theme)
        ))
        .await;
    }

    /// Runs axe-core (vendored under `tests/browser/vendor/axe-core/`, MPL-2.0) over the page for WCAG 2 A and AA,
    /// and answers its serious and critical violations as lines: rule, impact, and the first nodes' selectors.
    pub async fn accessibility_violations(&self) -> Vec<String> {
        if self.eval("return typeof window.axe === 'object'").await != true {
            let axe = include_str!("vendor/axe-core/axe.min.js");
            self.client
                .execute(&format!("{axe}\nreturn true;"), Vec::new())
                .await
                .unwrap_or_else(|e| panic!("axe-core did not load: {e}"));
        }
        let found = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } })
                   .then(r => done(r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
                     .map(v => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map(n => n.target.join(' ') + ' ' + (n.failureSummary || '').split('\\n').slice(1, 2).join('')).join(' | ')} [${v.nodes.length} nodes]`)))
                   .catch(e => done(['axe failed: ' + e]));",
                Vec::new(),
            )
            .await
            .unwrap_or_else(|e| panic!("axe-core did not run: {e}"));
        found
            .as_array()
            .map(|v| v.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
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
}

fn truthy(v: &Value) -> bool {
    !matches!(v, Value::Null | Value::Bool(false)) && *v != json!(0) && *v != json!("")
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

/// Whether the live indicator says live.
pub const IS_LIVE: &str = "return document.getElementById('live').textContent === 'live'";
/// Whether a confirmation dialog is open.
pub const CONFIRMATION: &str = "return !!document.querySelector('dialog.confirm[open]')";

/// A string as a JavaScript literal.
pub fn js_str(s: &str) -> String {
    Value::from(s).to_string()
}

/// Whether a cell of column `col` in the table labelled `table` contains `text`.
pub fn cell_with(table: &str, col: &str, text: &str) -> String {
    format!(
        "return [...document.querySelectorAll({})].some(td => td.textContent.includes({}))",
        cells(table, col),
        js_str(text)
    )
}

/// The selector of the cells of column `col` in the table labelled `table`, as a JavaScript string.
fn cells(table: &str, col: &str) -> String {
    js_str(&format!("{} td[data-col=\"{col}\"]", table_labelled(table)))
}

/// The CSS selector of the table labelled `label`.
fn table_labelled(label: &str) -> String {
    format!("table[aria-label={}]", js_str(label))
}

/// Whether column `col` of the table labelled `table` reads exactly `texts`, in order.
pub fn column_is(table: &str, col: &str, texts: &[&str]) -> String {
    format!(
        "const t = [...document.querySelectorAll({})].map(td => td.textContent); return JSON.stringify(t) === {}",
        cells(table, col),
        js_str(&json!(texts).to_string())
    )
}

/// The value of a card (the Overview's figures, the Analytics totals) by its label.
pub fn card(label: &str) -> String {
    format!(
        "const c = [...document.querySelectorAll('.card')].find(c => c.querySelector('.label').textContent === {}); return c ? c.querySelector('.value').textContent : null",
        js_str(label)
    )
}

/// Whether the card labelled `label` shows `value`.
pub fn card_is(label: &str, value: &str) -> String {
    format!(
        "const c = [...document.querySelectorAll('.card')].find(c => c.querySelector('.label').textContent === {}); return !!c && c.querySelector('.value').textContent === {}",
        js_str(label),
        js_str(value)
    )
}

/// Whether a notice at the bottom of the page contains `text`.
pub fn notice_with(text: &str) -> String {
    format!(
        "return [...document.querySelectorAll('.notice')].some(n => n.textContent.includes({}))",
        js_str(text)
    )
}

/// Normal durability: the browser tests check the page, not fsync.
pub fn options() -> Options {
    Options {
        durability: Durability::Normal,
        ..Options::default()
    }
}

/// Records a log line through the API.
pub async fn log_line(app: &TestApp, level: &str, message: &str) {
    let r = app
        .post_json(
            "/api/logs",
            Some(ADMIN),
            json!({ "level": level, "message": message, "source": "backup" }),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
}

/// How many events the log holds.
pub async fn events_total(app: &TestApp) -> i64 {
    app.get("/api/events?limit=1").await.data()["total"].as_i64().unwrap()
}

/// Uploads a file as a client; answers its id.
pub async fn upload(app: &TestApp, client: &str, token: &str, name: &str, content: &[u8]) -> String {
    let r = app.upload(client, token, name, content).await;
    assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
    r.data()["id"].as_str().unwrap().to_owned()
}
