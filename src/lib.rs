//! cairn: a backup server whose every state change is an event.
//!
//! This crate holds the rules and the edges; the log lives in `cairn-events`, the read tables in
//! `cairn-projections`.
//!
//! - [`commands`]: the rules that turn a request into events, one file per area.
//! - [`blobs`]: the content-addressed blob store, streamed and checksummed.
//! - [`app`]: [`Cairn`], one open data directory and the operations that span the log and the blobs.
//! - [`demo`]: `cairn serve --demo`'s fleet of simulated clients, using the real API.
//! - [`datadir`]: the data directory's layout and its lock.
//! - [`http`]: the HTTP API under `/api` and `cairn serve`'s server.
//! - [`live`]: the live feed: a WebSocket hub that never loses an event.
//! - [`replay`]: rebuilding the read tables from the log, verifying them, and the state as of a moment.
//! - [`telemetry`]: CPU, memory and disk samples (in memory, not events).
//! - [`cli`]: the `cairn` command line; [`bench`]: the benchmarks of `BENCHMARKS.md`.
//! - [`error`]: [`CommandError`], with the stable codes of the API.

pub mod app;
pub mod bench;
pub mod blobs;
pub mod cli;
pub mod commands;
pub mod datadir;
pub mod demo;
pub mod error;
pub mod http;
pub mod live;
pub mod replay;
pub mod telemetry;

pub use app::{Cairn, Options, Upload};
pub use error::CommandError;
