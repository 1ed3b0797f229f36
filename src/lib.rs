//! cairn: a backup server whose every state change is an event.
//!
//! This crate holds the rules and the edges; the log lives in `cairn-events`, the read tables in
//! `cairn-projections`.
//!
//! Three rings. At the core, [`commands`] (the rules that turn a request into events) over [`Cairn`] (one open
//! data directory: the log with its projections, and the blobs). Around them, [`services`]: what the server
//! does (uploads, presence, status, the state as of a moment, the SQL console, database maintenance, the live
//! feed's relay), plain Rust with no HTTP or WebSocket types. Outside, two thin adapters, [`http`] and
//! [`live`], which parse, call a service or a command, and format; [`server`] composes them.
//!
//! - [`commands`]: the rules, one file per area; [`error`]: [`CommandError`], with the API's stable codes.
//! - [`blobs`]: the content-addressed blob store, streamed and checksummed.
//! - [`app`]: [`Cairn`], and the way commands reach the writer.
//! - [`datadir`]: the data directory's layout and its lock.
//! - [`checkpoint`]: signed checkpoints of the log (signed notes with Ed25519), the log's key, the latest kept.
//! - [`snapshot`]: complete backups: the database, every blob it refers to, and a manifest, checked whole.
//! - [`replay`]: rebuilding the read tables from the log, verifying them, and the state as of a moment.
//! - [`services`]: the services both adapters call, and [`services::Services`], the state they share.
//! - [`http`]: the HTTP API under `/api` and the dashboard's files; [`live`]: the WebSocket feed.
//! - [`server`]: `cairn serve`'s server, the one place that knows both adapters.
//! - [`client`]: the API client of the demo fleet, the benchmarks, `cairn tail` and the tests.
//! - [`telemetry`]: CPU, memory and disk samples (in memory, not events).
//! - [`tls`]: the TLS provider of outgoing connections (the alerts' webhooks and SMTP).
//! - [`demo`]: `cairn serve --demo`'s fleet of simulated clients, using the real API.
//! - [`cli`]: the `cairn` command line; [`bench`]: the benchmarks of `BENCHMARKS.md`.

pub mod agent;
pub mod app;
pub mod bench;
pub mod blobs;
pub mod checkpoint;
pub mod cli;
pub mod client;
pub mod commands;
pub mod datadir;
pub mod demo;
pub mod error;
pub mod http;
pub mod live;
pub mod replay;
pub mod server;
pub mod services;
pub mod snapshot;
pub mod telemetry;
pub mod tls;

pub use app::{Cairn, Options};
pub use error::CommandError;
