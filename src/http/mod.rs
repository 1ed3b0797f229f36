//! The HTTP API's adapter under `/api`: it parses a request, calls a service or sends a command, and writes
//! the envelope. A route table ([`router`]), one dispatching warp filter, handlers by area ([`handlers`]), the
//! error enum and the envelope ([`error`]), request parsing ([`request`]), the OpenAPI document ([`openapi`])
//! and the dashboard's files ([`web`]). It holds no rule: those are the services' and the commands'.

pub mod answers;
pub mod error;
pub mod handlers;
pub mod openapi;
pub mod request;
pub mod router;
pub mod web;

use std::net::SocketAddr;
use std::time::Instant;

use bytes::Buf;
use futures_util::StreamExt;
use warp::http::{HeaderMap, Method};
use warp::reply::Response;
use warp::Filter;

use crate::services::auth::{self, Caller};
use crate::services::Services;
use error::ApiError;
use request::Request;
use router::{Access, Match};

/// The address a request came from, put in its extensions by the server's accept loop.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub std::net::SocketAddr);

/// The whole API as one warp filter.
pub fn api(state: Services) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    warp::method()
        .and(warp::path::full())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(warp::header::headers_cloned())
        .and(warp::ext::optional::<Peer>().map(|peer: Option<Peer>| peer.map(|Peer(addr)| addr)))
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
    state: Services,
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
    state: &Services,
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
        Access::Metrics if state.config.metrics_public => None,
        Access::Proofs if state.config.public_proofs => None,
        Access::Metrics | Access::Proofs => {
            let caller = authenticate(state, &headers).await?;
            caller.require_admin()?;
            Some(caller)
        }
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

/// The caller of a request, by its `Authorization: Bearer` token.
async fn authenticate(state: &Services, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let header = headers.get("authorization").and_then(|v| v.to_str().ok());
    Ok(auth::authenticate(state, auth::bearer(header)?).await?)
}
