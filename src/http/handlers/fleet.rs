//! The fleet's endpoints, answered by a hub (`cairn hub`): its sites, one site, every site's clients.

use warp::http::StatusCode;
use warp::reply::Response;

use crate::http::error::{ok, ApiError};
use crate::http::request::Request;
use crate::services::{fleet, Services};

pub async fn sites(state: &Services) -> Result<Response, ApiError> {
    Ok(ok(StatusCode::OK, fleet::sites(state).await?, None))
}

pub async fn site(state: &Services, req: Request) -> Result<Response, ApiError> {
    let name = req.params.first().cloned().unwrap_or_default();
    Ok(ok(StatusCode::OK, fleet::site(state, name).await?, None))
}

pub async fn clients(state: &Services, req: Request) -> Result<Response, ApiError> {
    let site = req.query("site").map(str::to_owned);
    let q = req.query("q").map(str::to_owned);
    Ok(ok(StatusCode::OK, fleet::clients(state, site, q).await?, None))
}
