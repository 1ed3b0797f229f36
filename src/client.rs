//! The API client, on `reqwest` (HTTP/1.1 with keep-alive, no TLS: cairn serves plain HTTP on loopback or
//! behind a proxy): the demo fleet, `cairn bench`, and the tests all call the server through it.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
pub use reqwest::header::HeaderMap;
pub use reqwest::Method;
use serde_json::Value;

/// A handle on one server with one token (or none); cheap to clone, and clones share their connections.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    /// `http://host:port`, without a trailing slash.
    base: String,
    token: Option<String>,
}

/// A whole answer: status, headers and body.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The envelope's `data` (`Null` for an error or a body that is not an envelope).
    pub fn data(&self) -> Value {
        self.json()["data"].take()
    }

    /// The error envelope's code, if this is one.
    pub fn code(&self) -> Option<String> {
        self.json()["error"]["code"].as_str().map(str::to_owned)
    }
}

impl Client {
    /// A client of the server at `base` (`http://host:port`), sending `token` as `Authorization: Bearer`.
    pub fn new(base: &str, token: Option<&str>) -> anyhow::Result<Self> {
        Self::built(base, token, reqwest::Client::builder())
    }

    /// A client that gives up on a server that accepts no connection within `connect` or sends nothing for
    /// `read` (a stalled server), so that its caller's retries and Ctrl-C are not held up: the backup agent.
    pub fn patient_for(base: &str, token: Option<&str>, connect: Duration, read: Duration) -> anyhow::Result<Self> {
        Self::built(
            base,
            token,
            reqwest::Client::builder().connect_timeout(connect).read_timeout(read),
        )
    }

    fn built(base: &str, token: Option<&str>, builder: reqwest::ClientBuilder) -> anyhow::Result<Self> {
        crate::tls::install();
        let http = builder
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(256)
            .no_proxy()
            .build()?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            token: token.map(str::to_owned),
        })
    }

    /// A client of the server listening on `addr`.
    pub fn at(addr: SocketAddr, token: &str) -> anyhow::Result<Self> {
        Self::new(&format!("http://{addr}"), Some(token))
    }

    /// The same server and connections with another token (a client's own, after registering), or none.
    pub fn with_token(&self, token: Option<&str>) -> Self {
        Self {
            token: token.map(str::to_owned),
            ..self.clone()
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// A request to `path` (with its query), carrying the token; add headers and a body, then [`Client::send`].
    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.authorized(self.http.request(method, format!("{}{path}", self.base)))
    }

    /// A request with this client's token, if it has one.
    fn authorized(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    /// The URL of `path` on this server, parsed once, for a caller that sends the same request many times.
    pub fn url(&self, path: &str) -> anyhow::Result<reqwest::Url> {
        Ok(reqwest::Url::parse(&format!("{}{path}", self.base))?)
    }

    /// A request to a URL made by [`Client::url`], carrying the token.
    pub fn request_url(&self, method: Method, url: reqwest::Url) -> reqwest::RequestBuilder {
        self.authorized(self.http.request(method, url))
    }

    /// Sends a request and answers only its status, reading the body to its end (so that the connection is
    /// reused): the benchmarks' load, which must cost the server's two cores as little as it can.
    pub async fn status_of(&self, request: reqwest::RequestBuilder) -> anyhow::Result<u16> {
        let res = request.send().await?;
        let status = res.status().as_u16();
        res.bytes().await?;
        Ok(status)
    }

    /// Sends a request and reads the whole answer.
    pub async fn send(&self, request: reqwest::RequestBuilder) -> anyhow::Result<Answer> {
        let res = request.send().await?;
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let body = res.bytes().await?;
        Ok(Answer { status, headers, body })
    }

    /// Sends JSON (none when `body` is `Null`) and reads the answer.
    pub async fn call(&self, method: Method, path: &str, body: Value) -> anyhow::Result<Answer> {
        let mut req = self.request(method, path);
        if !body.is_null() {
            req = req.header("content-type", "application/json").body(body.to_string());
        }
        self.send(req).await
    }

    /// Sends JSON; answers the status and the envelope's `data`.
    pub async fn json(&self, method: Method, path: &str, body: Value) -> anyhow::Result<(u16, Value)> {
        let answer = self.call(method, path, body).await?;
        Ok((answer.status, answer.data()))
    }
}
