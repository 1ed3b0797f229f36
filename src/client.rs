//! A small HTTP/1.1 keep-alive client for the API, on hyper (warp's own): used by `cairn bench http` and the
//! demo fleet.

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};

/// One keep-alive connection with a token.
pub struct Client {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    host: String,
    token: String,
}

impl Client {
    pub async fn connect(addr: SocketAddr, token: &str) -> anyhow::Result<Self> {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "an API client connection ended");
            }
        });
        Ok(Self {
            sender,
            host: addr.to_string(),
            token: token.to_owned(),
        })
    }

    /// Uses another token from now on (a client's own, after registering).
    pub fn with_token(&mut self, token: &str) {
        self.token = token.to_owned();
    }

    /// Sends a request; answers the status and the body.
    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> anyhow::Result<(u16, Bytes)> {
        self.sender.ready().await?;
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", &self.host)
            .header("authorization", format!("Bearer {}", self.token))
            .header("content-type", "application/json");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = self.sender.send_request(req.body(Full::new(body))?).await?;
        let status = res.status().as_u16();
        let body = res.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }

    /// Sends JSON; answers the status and the envelope's `data`.
    pub async fn json(
        &mut self,
        method: &str,
        path: &str,
        body: serde_json::Value,
    ) -> anyhow::Result<(u16, serde_json::Value)> {
        let bytes = if body.is_null() {
            Bytes::new()
        } else {
            Bytes::from(body.to_string())
        };
        let (status, answer) = self.send(method, path, &[], bytes).await?;
        let v: serde_json::Value = serde_json::from_slice(&answer).unwrap_or(serde_json::Value::Null);
        Ok((status, v["data"].clone()))
    }
}
