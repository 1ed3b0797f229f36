//! The live feed at `/api/live`: a WebSocket hub that never loses an event.
//!
//! - [`hub`]: one relay task turns the writer's broadcast of committed events into encoded messages (each event
//!   encoded once, for every subscriber), filling any gap from the database; it also publishes `stats` about once
//!   a second and `progress` for uploads under way.
//! - [`connection`]: one subscriber: history from the database, then live, in order, without gap or duplicate;
//!   a bounded send queue; a close with [`CLOSE_BEHIND`] and the resume position when it stays too far behind.
//!
//! The protocol is DESIGN.md's: the client sends `{"op":"subscribe","from":P,"streams":[…],"types":[…]}`; the
//! server sends `{"kind":"event",…}`, `{"kind":"stats",…}` and `{"kind":"progress",…}`. Two additions: `from`
//! may be left out (from the head now), and the server acknowledges a subscription with
//! `{"kind":"subscribed","from":F,"head":H}`, so that such a client knows where to resume; mistakes get
//! `{"kind":"error","code":…,"message":…}`.

pub mod connection;
pub mod hub;

use std::time::Duration;

/// The close code of a subscriber that stayed too far behind; the reason reads `resume from <position>`.
pub const CLOSE_BEHIND: u16 = 4008;
/// The close code when the server shuts down; the reason carries the resume position too.
pub const CLOSE_SHUTDOWN: u16 = 1001;

/// The live feed's settings.
#[derive(Debug, Clone, Copy)]
pub struct LiveConfig {
    /// Connections past this are refused with 503 `TOO_MANY_CONNECTIONS`.
    pub max_connections: usize,
    /// Messages queued for one connection before its feeder waits (and the relay's broadcast may lag it).
    pub queue: usize,
    /// A send that cannot complete for this long closes the connection with [`CLOSE_BEHIND`].
    pub stall_timeout: Duration,
    pub ping_every: Duration,
    pub stats_every: Duration,
    /// Encoded events the relay's broadcast holds; a subscriber further behind is caught up from the log.
    pub broadcast_capacity: usize,
}

impl Default for LiveConfig {
    fn default() -> Self {
        Self {
            max_connections: 2_000,
            queue: 1_024,
            stall_timeout: Duration::from_secs(30),
            ping_every: Duration::from_secs(15),
            stats_every: Duration::from_secs(1),
            broadcast_capacity: 16_384,
        }
    }
}
