//! The live feed's adapter: the WebSocket at `/api/live`. It authenticates the upgrade, takes a place in the
//! feed, and serves one subscriber per connection ([`connection`]); the relay it follows, and the rule that
//! keeps it free of gaps, are the [`feed`](crate::services::feed) service's.
//!
//! The protocol is the design's: the client sends `{"op":"subscribe","from":P,"streams":[…],"types":[…]}`; the
//! server sends `{"kind":"event",…}`, `{"kind":"stats",…}` and `{"kind":"progress",…}`. Two additions: `from`
//! may be left out (from the head now), and the server acknowledges a subscription with
//! `{"kind":"subscribed","from":F,"head":H}`, so that such a client knows where to resume; mistakes get
//! `{"kind":"error","code":…,"message":…}`.

pub mod connection;

use warp::http::HeaderMap;
use warp::reply::Response;
use warp::Reply;

use crate::services::auth::{self, Caller};
use crate::services::{ServiceError, Services};

/// The close code of a subscriber that stayed too far behind; the reason reads `resume from <position>`.
pub const CLOSE_BEHIND: u16 = 4008;
/// The close code when the server shuts down; the reason carries the resume position too.
pub const CLOSE_SHUTDOWN: u16 = 1001;
/// The close code of a client's connection when its token no longer holds (rotated, or the client
/// disconnected or deleted).
pub const CLOSE_REVOKED: u16 = 4003;
/// The close code for a subscriber's message over [`MAX_MESSAGE`] (RFC 6455's "message too big").
pub const CLOSE_TOO_BIG: u16 = 1009;
/// The largest message (and frame) a subscriber may send: a subscription is a few hundred bytes.
pub const MAX_MESSAGE: usize = 64 * 1024;

/// Accepts an upgrade request: the token from `Authorization: Bearer` or, for browsers, `?token=`; a place in
/// the feed; then the connection. A refusal is answered by the caller (the server's composition), which
/// formats errors for HTTP.
pub async fn accept(
    services: &Services,
    ws: warp::ws::Ws,
    headers: &HeaderMap,
    query: &str,
) -> Result<Response, ServiceError> {
    let header = headers.get("authorization").and_then(|v| v.to_str().ok());
    let from_query: Option<String> = serde_urlencoded::from_str::<Vec<(String, String)>>(query)
        .ok()
        .and_then(|pairs| pairs.into_iter().find(|(k, _)| k == "token").map(|(_, v)| v));
    let token = match (header, &from_query) {
        (Some(h), _) => auth::bearer(Some(h))?,
        (None, Some(t)) if !t.is_empty() => t.as_str(),
        (None, _) => auth::bearer(None)?,
    };
    let caller: Caller = auth::authenticate(services, token).await?;
    let slot = services.feed.join(caller.client())?;
    let services = services.clone();
    Ok(ws
        .max_message_size(MAX_MESSAGE)
        .max_frame_size(MAX_MESSAGE)
        .on_upgrade(move |socket| connection::serve(services, caller, slot, socket))
        .into_response())
}
