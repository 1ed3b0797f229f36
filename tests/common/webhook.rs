//! A webhook receiver on loopback for the alert tests: a plain HTTP/1.1 server that keeps every request it is
//! sent and answers with the status it is told, which can be stopped (connections refused) and started again on
//! the same port.
#![allow(dead_code)] // each test target uses part of it

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// One request the receiver was sent.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

pub struct Receiver {
    pub addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    status: Arc<AtomicU16>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Receiver {
    /// A receiver on a free port, answering 200.
    pub async fn start() -> Self {
        Self::on("127.0.0.1:0".parse().unwrap()).await
    }

    /// A receiver on `addr` (a stopped receiver's, to bring it back).
    pub async fn on(addr: SocketAddr) -> Self {
        let mut r = Self {
            addr,
            received: Arc::default(),
            status: Arc::new(AtomicU16::new(200)),
            task: None,
        };
        r.listen().await;
        r
    }

    async fn listen(&mut self) {
        let listener = tokio::net::TcpListener::bind(self.addr).await.unwrap();
        self.addr = listener.local_addr().unwrap();
        let (received, status) = (self.received.clone(), self.status.clone());
        self.task = Some(tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let (received, status) = (received.clone(), status.clone());
                tokio::spawn(async move {
                    let _ = serve(socket, &received, status.load(Ordering::SeqCst)).await;
                });
            }
        }));
    }

    /// Stops listening: connections are refused until [`Receiver::resume`].
    pub async fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }

    /// Listens again on the same port, keeping what was received.
    pub async fn resume(&mut self) {
        self.listen().await;
    }

    /// The status every request is answered with from now on.
    pub fn answer(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Waits (at most `within`) until `count` requests were received; answers them.
    pub async fn wait_for(&self, count: usize, within: Duration) -> Vec<Received> {
        let until = tokio::time::Instant::now() + within;
        loop {
            let got = self.received();
            if got.len() >= count {
                return got;
            }
            assert!(
                tokio::time::Instant::now() < until,
                "{count} request(s) expected within {within:?}, got {}: {got:?}",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// One request: its head, a body of its Content-Length, the answer, and the connection closed.
async fn serve(socket: tokio::net::TcpStream, received: &Mutex<Vec<Received>>, status: u16) -> std::io::Result<()> {
    let mut reader = BufReader::new(socket);
    let mut line = String::new();
    reader.read_line(&mut line).await?;
    let path = line.split_whitespace().nth(1).unwrap_or_default().to_owned();
    let mut headers = Vec::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).await? == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.trim_end().split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).await?;
    if status == 200 {
        received.lock().unwrap().push(Received {
            path,
            headers,
            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        });
    }
    let answer = format!("HTTP/1.1 {status} X\r\ncontent-length: 2\r\nconnection: close\r\n\r\nno");
    reader.get_mut().write_all(answer.as_bytes()).await?;
    reader.get_mut().shutdown().await
}
