//! `cairn tail`: follows the live feed, one line per event; reconnects and resumes without gaps.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    server: super::ServerArg,
    /// Start after this position (0: the whole history; default: from now on)
    #[arg(long, value_name = "POS")]
    from: Option<i64>,
    /// Only events of this type (repeatable)
    #[arg(long = "type", value_name = "TYPE")]
    types: Vec<String>,
    /// Only events of this stream; a trailing * matches a prefix (repeatable)
    #[arg(long = "stream", value_name = "S")]
    streams: Vec<String>,
    /// Print each event as the feed's JSON
    #[arg(long)]
    json: bool,
}

fn live_url(url: &str) -> anyhow::Result<String> {
    let base = url.trim_end_matches('/');
    if let Some(rest) = base.strip_prefix("http://") {
        Ok(format!("ws://{rest}/api/live"))
    } else if base.starts_with("ws://") {
        Ok(format!("{base}/api/live"))
    } else {
        anyhow::bail!("--url must be http://HOST:PORT (TLS is not built in), not {url:?}")
    }
}

/// Why one connection ended.
enum Ended {
    /// Reconnect and resume.
    Dropped(String),
    /// Do not retry (the server refused the token, or the subscription).
    Refused(String),
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let token = args.server.token()?;
    let url = live_url(&args.server.url)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let mut last = args.from;
        let mut backoff = Duration::from_millis(250);
        loop {
            tokio::select! {
                ended = follow(&url, &token, &args, &mut last) => match ended {
                    Ended::Refused(why) => anyhow::bail!("{why}"),
                    Ended::Dropped(why) => {
                        eprintln!("cairn tail: {why}; reconnecting in {:.1} s (resuming after position {})", backoff.as_secs_f64(), last.unwrap_or(0));
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(10));
                    }
                },
                _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
            }
        }
    })
}

/// One connection: subscribe after `last` and print until it ends. `last` moves with every event printed.
async fn follow(url: &str, token: &str, args: &Args, last: &mut Option<i64>) -> Ended {
    let mut request = match url.into_client_request() {
        Ok(r) => r,
        Err(e) => return Ended::Refused(format!("bad URL {url}: {e}")),
    };
    match format!("Bearer {token}").parse() {
        Ok(v) => {
            request.headers_mut().insert("authorization", v);
        }
        Err(_) => return Ended::Refused("the token cannot go in a header".into()),
    }
    let mut ws = match tokio_tungstenite::connect_async(request).await {
        Ok((ws, _)) => ws,
        Err(WsError::Http(res)) if res.status() == 401 || res.status() == 403 => {
            return Ended::Refused(format!("the server refused the token ({})", res.status()))
        }
        Err(e) => return Ended::Dropped(format!("cannot connect to {url}: {e}")),
    };
    // Without a position yet, the server starts at its head and says which that is.
    let subscribe =
        serde_json::json!({ "op": "subscribe", "from": *last, "streams": args.streams, "types": args.types });
    if let Err(e) = ws.send(Message::text(subscribe.to_string())).await {
        return Ended::Dropped(format!("the connection failed: {e}"));
    }
    let mut out = std::io::stdout();
    while let Some(message) = ws.next().await {
        let text = match message {
            Ok(Message::Text(t)) => t,
            Ok(Message::Close(frame)) => {
                let why = frame.map_or_else(
                    || "the server closed the feed".to_owned(),
                    |f| format!("closed ({}): {}", u16::from(f.code), f.reason),
                );
                return Ended::Dropped(why);
            }
            Ok(_) => continue,
            Err(e) => return Ended::Dropped(format!("the connection failed: {e}")),
        };
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
            continue;
        };
        match v["kind"].as_str() {
            Some("event") => {
                let position = v["position"].as_i64().unwrap_or(0);
                let line = if args.json {
                    text.to_string()
                } else {
                    format!(
                        "{:>8}  {}  {:<44}  {:<20}  {:<44}  {}",
                        position,
                        v["recorded_at"].as_str().unwrap_or(""),
                        v["stream"].as_str().unwrap_or(""),
                        v["type"].as_str().unwrap_or(""),
                        v["metadata"]["actor"].as_str().unwrap_or(""),
                        v["data"]
                    )
                };
                if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
                    return Ended::Refused("stdout closed".into());
                }
                *last = Some(position);
            }
            Some("subscribed") if last.is_none() => *last = v["from"].as_i64(),
            Some("error") => return Ended::Refused(format!("the server refused the subscription: {}", v["message"])),
            _ => {}
        }
    }
    Ended::Dropped("the connection ended".into())
}
