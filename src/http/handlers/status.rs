//! `GET /api/status` (the figures an operator watches), `GET /api/system` (telemetry) and `GET /api/activity`
//! (the latest events, described for people).

use warp::http::StatusCode;
use warp::reply::Response;

use crate::http::error::{ok, ApiError};
use crate::http::request::Request;
use crate::services::{self, activity, Services};

pub async fn status(state: &Services) -> Result<Response, ApiError> {
    Ok(ok(StatusCode::OK, services::status::figures(state).await?, None))
}

pub async fn system(state: &Services) -> Result<Response, ApiError> {
    let telemetry = state.telemetry.clone();
    let root = state.cairn.root().to_owned();
    let sample = services::blocking(move || Ok(telemetry.sample(&root))).await?;
    Ok(ok(StatusCode::OK, sample, None))
}

pub async fn activity(state: &Services, req: Request) -> Result<Response, ApiError> {
    let limit = req.query_i64("limit")?.unwrap_or(50);
    Ok(ok(StatusCode::OK, activity::latest(&state.cairn, limit).await?, None))
}

pub async fn attention(state: &Services) -> Result<Response, ApiError> {
    let now = chrono::Utc::now();
    let attention = state
        .read(move |conn| crate::services::health::attention(conn, now))
        .await?;
    Ok(ok(StatusCode::OK, attention, None))
}

/// `GET /metrics`: the OpenMetrics text Prometheus scrapes.
pub async fn metrics(state: &Services) -> Result<Response, ApiError> {
    let text = crate::services::metrics::exposition(state).await?;
    let mut response = Response::new(text.into());
    response.headers_mut().insert(
        warp::http::header::CONTENT_TYPE,
        warp::http::HeaderValue::from_static(crate::services::metrics::CONTENT_TYPE),
    );
    Ok(response)
}
