//! The dashboard in headless Chromium against a real server, one file per view or area and one test per
//! behaviour, each with its own server and its own browser: signing in, each view following the server live and
//! its actions, resuming after the feed is cut, and the Files view's first page over 100,000 files. Screenshots
//! go to `target/tmp/screenshots/`.
#![allow(clippy::unwrap_used)]

#[path = "../common/api.rs"]
mod helpers;
mod page;
#[path = "../common/webhook.rs"]
mod webhook;

mod accessibility;
mod alerts;
mod analytics;
// The longest test, by far: libtest starts tests in the order of their names, and this one's sorts near the front,
// so that the others run beside it rather than after it.
mod at_scale;
mod audit;
mod clients;
mod database;
mod files;
mod fleet;
mod logs;
mod overview;
mod resume;
mod sign_in;
