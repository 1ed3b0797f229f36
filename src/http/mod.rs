//! The HTTP API under `/api`: a route table ([`router`]), one dispatching warp filter, handlers by area
//! ([`handlers`]), the error envelope ([`error`]), tokens ([`auth`]), the OpenAPI document ([`openapi`]) and the
//! heartbeat monitor ([`heartbeat`]).

pub mod auth;
pub mod client;
pub mod error;
pub mod handlers;
pub mod heartbeat;
pub mod openapi;
pub mod request;
pub mod router;
pub mod web;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Buf;
use futures_util::StreamExt;
use warp::http::{HeaderMap, Method, StatusCode};
use warp::reply::Response;
use warp::{Filter, Reply};

use crate::Cairn;
use auth::Caller;
use error::ApiError;
use request::Request;
use router::{Access, Match};

/// What the server was started with.
#[derive(Debug, Clone)]
pub struct Config {
    pub admin_token: String,
    /// A client with no heartbeat for this long is marked offline.
    pub heartbeat_timeout: Duration,
    pub live: crate::live::LiveConfig,
}

/// Everything a handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub cairn: Cairn,
    pub config: Arc<Config>,
    /// When the server started, for `uptime_seconds`.
    pub started: Instant,
    pub heartbeats: Arc<heartbeat::Heartbeats>,
    pub telemetry: Arc<crate::telemetry::Telemetry>,
    /// The live feed's relay, shared by every WebSocket connection.
    pub live: Arc<crate::live::hub::Hub>,
}

impl AppState {
    pub fn new(cairn: Cairn, config: Config) -> Self {
        Self {
            live: Arc::new(crate::live::hub::Hub::new(config.live)),
            cairn,
            config: Arc::new(config),
            started: Instant::now(),
            heartbeats: Arc::new(heartbeat::Heartbeats::default()),
            telemetry: Arc::new(crate::telemetry::Telemetry::default()),
        }
    }
}

/// The whole API as one warp filter.
pub fn api(state: AppState) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    warp::method()
        .and(warp::path::full())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(warp::header::headers_cloned())
        .and(warp::addr::remote())
        .and(warp::body::stream())
        .then(
            move |method: Method, path: warp::path::FullPath, query: String, headers: HeaderMap, remote, body| {
                let state = state.clone();
                let body = boxed(body);
                async move { handle(state, method, path.as_str().to_owned(), query, headers, remote, body).await }
            },
        )
}

/// The body's chunks as `Bytes`, behind one nameable type.
fn boxed<S, B>(body: S) -> request::BodyStream
where
    S: futures_util::Stream<Item = Result<B, warp::Error>> + Send + 'static,
    B: Buf,
{
    Box::pin(body.map(|chunk| chunk.map(|mut b| b.copy_to_bytes(b.remaining()))))
}

async fn handle(
    state: AppState,
    method: Method,
    path: String,
    query: String,
    headers: HeaderMap,
    remote: Option<SocketAddr>,
    body: request::BodyStream,
) -> Response {
    let request_id = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.chars().all(|c| c.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let started = Instant::now();
    let result = route(
        &state,
        method.clone(),
        &path,
        &query,
        headers,
        remote,
        body,
        &request_id,
    )
    .await;
    let mut response = match result {
        Ok(r) => r,
        Err(e) => e.into_response(&request_id),
    };
    if let Ok(v) = warp::http::HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", v);
    }
    tracing::debug!(%method, path, status = response.status().as_u16(), ms = started.elapsed().as_millis() as u64, request_id, "request");
    response
}

#[allow(clippy::too_many_arguments)] // the parts of one request, taken apart once
async fn route(
    state: &AppState,
    method: Method,
    path: &str,
    query: &str,
    headers: HeaderMap,
    remote: Option<SocketAddr>,
    body: request::BodyStream,
    request_id: &str,
) -> Result<Response, ApiError> {
    let (route, params) = match router::find(&method, path) {
        Match::Found(route, params) => (route, params),
        Match::WrongMethod(allowed) => {
            let allowed: Vec<String> = allowed.iter().map(Method::to_string).collect();
            return Err(ApiError::MethodNotAllowed(format!(
                "{method} is not allowed here; allowed: {}",
                allowed.join(", ")
            )));
        }
        Match::None => {
            return Err(ApiError::not_found(
                "ROUTE_NOT_FOUND",
                format!("no route {method} {path}"),
            ))
        }
    };
    let caller = match route.access {
        Access::Public => None,
        Access::Admin => {
            let caller = authenticate(state, &headers).await?;
            caller.require_admin()?;
            Some(caller)
        }
        Access::AdminOrClient => Some(authenticate(state, &headers).await?),
    };
    let request = Request {
        method,
        params,
        query: request::parse_query(query)?,
        headers,
        remote,
        body: std::sync::Mutex::new(Some(body)),
        request_id: request_id.to_owned(),
        caller,
    };
    handlers::dispatch(state, route.endpoint, request).await
}

/// The admin token, compared in constant time; otherwise a client token, looked up by its hash.
async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let header = headers.get("authorization").and_then(|v| v.to_str().ok());
    let token = auth::bearer(header)?;
    if auth::constant_time_eq(token.as_bytes(), state.config.admin_token.as_bytes()) {
        return Ok(Caller::Admin);
    }
    let hash = crate::commands::token_hash(token);
    let cairn = state.cairn.clone();
    let found = tokio::task::spawn_blocking(move || -> Result<Option<(String, String)>, ApiError> {
        let conn = cairn.store().reader()?;
        Ok(cairn_projections::clients::by_token_hash(&conn, &hash)?)
    })
    .await
    .map_err(ApiError::internal)??;
    match found {
        Some((id, stored))
            if auth::constant_time_eq(stored.as_bytes(), crate::commands::token_hash(token).as_bytes()) =>
        {
            Ok(Caller::Client(uuid::Uuid::parse_str(&id).map_err(ApiError::internal)?))
        }
        _ => Err(ApiError::Unauthorized("the token is not valid".into())),
    }
}

/// Binds the server's listening socket with `TCP_NODELAY`, which accepted connections inherit (on Linux): the
/// live feed writes small frames, and Nagle's algorithm would hold each behind the peer's delayed ACK.
pub fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_nodelay(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// Serves the API on `listener` until `shutdown` resolves, then lets requests in flight finish.
pub async fn serve(
    state: AppState,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let monitor = tokio::spawn(heartbeat::monitor(state.clone()));
    let relay = tokio::spawn(crate::live::hub::relay(state.cairn.clone(), state.live.clone()));
    let stats = tokio::spawn(crate::live::hub::stats(state.clone()));
    let hub = state.live.clone();
    let shutdown = async move {
        shutdown.await;
        hub.close_all();
    };
    let routes = live(state.clone())
        .or(web::files())
        .unify()
        .or(api(state))
        .unify()
        .recover(error::recover)
        .unify();
    warp::serve(routes).incoming(listener).graceful(shutdown).run().await;
    monitor.abort();
    relay.abort();
    stats.abort();
}

/// `/api/live`: authenticated by header or `?token=`, limited in number, then upgraded.
pub fn live(state: AppState) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    warp::path!("api" / "live")
        .and(warp::ws())
        .and(warp::header::headers_cloned())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .then(move |ws: warp::ws::Ws, mut headers: HeaderMap, query: String| {
            let state = state.clone();
            async move {
                let request_id = uuid::Uuid::now_v7().to_string();
                if let Some(token) = request::parse_query(&query).ok().and_then(|q| q.get("token").cloned()) {
                    if !headers.contains_key("authorization") {
                        if let Ok(v) = warp::http::HeaderValue::from_str(&format!("Bearer {token}")) {
                            headers.insert("authorization", v);
                        }
                    }
                }
                let caller = match authenticate(&state, &headers).await {
                    Ok(c) => c,
                    Err(e) => return e.into_response(&request_id),
                };
                let hub = state.live.clone();
                let count = hub.connections.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if count >= hub.config.max_connections {
                    hub.connections.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                    let body = serde_json::json!({
                        "success": false,
                        "error": { "code": "TOO_MANY_CONNECTIONS", "message": format!("the live feed takes {} connections; try again later", hub.config.max_connections) },
                        "timestamp": cairn_events::writer::now_rfc3339(),
                    });
                    return warp::reply::with_status(warp::reply::json(&body), StatusCode::SERVICE_UNAVAILABLE).into_response();
                }
                ws.on_upgrade(move |socket| crate::live::connection::serve(state, caller, socket)).into_response()
            }
        })
}

/// An answer with no body but a status (for 204).
pub fn empty(status: StatusCode) -> Response {
    warp::reply::with_status(warp::reply(), status).into_response()
}
