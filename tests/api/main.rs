//! The HTTP API against a real server on port 0: each endpoint's happy and error paths, and a battery of bad
//! input, each answered with the right status and code, nothing stored, the server still up.
//!
//! One module per area; every test starts its own server with `spawn_app()` and arranges what it needs.
#![allow(clippy::unwrap_used)] // a test that cannot proceed should panic where it stopped

/// The server on port 0 and its client, shared with the other integration tests.
#[path = "../common/api.rs"]
mod common_api;
/// What these tests share beyond `common_api`.
mod helpers;
#[path = "../common/smtp.rs"]
mod smtp;
/// A webhook receiver and an SMTP server, for the alerts.
#[path = "../common/webhook.rs"]
mod webhook;

mod alerts;
mod archive;
mod audit;
mod auth;
mod bad_input;
mod clients;
mod dashboard;
mod database;
mod files;
mod health;
mod logs;
mod proofs;
mod routes;
mod runs;
mod status;
