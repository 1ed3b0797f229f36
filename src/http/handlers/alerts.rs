//! `/api/alerts`: targets, rules, a test alert, and the deliveries.

use cairn_events::catalogue::{AlertKind, AlertTargetKind};
use serde::Deserialize;
use uuid::Uuid;
use warp::http::StatusCode;
use warp::reply::Response;

use crate::http::answers::{Removed, TestRequested};
use crate::http::error::{ok, ApiError};
use crate::http::request::Request;
use crate::services::{alerts, Services};

const TARGET_NOT_FOUND: &str = "ALERT_TARGET_NOT_FOUND";
const RULE_NOT_FOUND: &str = "ALERT_RULE_NOT_FOUND";

pub async fn setup(state: &Services) -> Result<Response, ApiError> {
    Ok(ok(StatusCode::OK, alerts::setup(state).await?, None))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTarget {
    name: String,
    kind: AlertTargetKind,
    /// The webhook's URL, or the e-mail address.
    address: String,
}

pub async fn add_target(state: &Services, req: Request) -> Result<Response, ApiError> {
    let body: NewTarget = req.json().await?;
    let target = alerts::add_target(state, body.name, body.kind, body.address, req.metadata()).await?;
    Ok(ok(StatusCode::CREATED, target, Some("alert target added")))
}

pub async fn remove_target(state: &Services, req: Request) -> Result<Response, ApiError> {
    let id = req.id(0, TARGET_NOT_FOUND, "alert target")?;
    alerts::remove_target(state, id, req.metadata()).await?;
    Ok(ok(
        StatusCode::OK,
        Removed { id },
        Some("alert target removed, with its rules"),
    ))
}

pub async fn test(state: &Services, req: Request) -> Result<Response, ApiError> {
    let id = req.id(0, TARGET_NOT_FOUND, "alert target")?;
    let position = alerts::test(state, id, req.metadata()).await?;
    Ok(ok(
        StatusCode::ACCEPTED,
        TestRequested { position },
        Some("test alert requested; its delivery shows in the deliveries"),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewRule {
    target_id: Uuid,
    kinds: Vec<AlertKind>,
    client_id: Option<Uuid>,
}

pub async fn add_rule(state: &Services, req: Request) -> Result<Response, ApiError> {
    let body: NewRule = req.json().await?;
    let rule = alerts::add_rule(state, body.target_id, body.kinds, body.client_id, req.metadata()).await?;
    Ok(ok(StatusCode::CREATED, rule, Some("alert rule added")))
}

pub async fn remove_rule(state: &Services, req: Request) -> Result<Response, ApiError> {
    let id = req.id(0, RULE_NOT_FOUND, "alert rule")?;
    alerts::remove_rule(state, id, req.metadata()).await?;
    Ok(ok(StatusCode::OK, Removed { id }, Some("alert rule removed")))
}

pub async fn deliveries(state: &Services, req: Request) -> Result<Response, ApiError> {
    let query = req.list_query()?;
    let target = match req.query("target_id") {
        Some(raw) => Some(
            Uuid::parse_str(raw)
                .map_err(|_| ApiError::bad("INVALID_QUERY", format!("target_id {raw:?} is not a UUID")))?,
        ),
        None => None,
    };
    Ok(ok(
        StatusCode::OK,
        alerts::deliveries(state, query, target).await?,
        None,
    ))
}
