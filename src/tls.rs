//! TLS for the process's outgoing connections (the alerts' webhooks and SMTP relay; the API client, which
//! speaks plain HTTP to cairn but is built with the same `reqwest`): rustls on ring, installed once.

use std::sync::OnceLock;

/// Installs rustls's ring provider once per process, before any TLS client is built.
pub fn install() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        // Another part of the process may have installed one already: either will do.
        let _already = rustls::crypto::ring::default_provider().install_default();
    });
}
