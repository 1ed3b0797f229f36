//! `cairn serve`'s server: the composition of the two adapters over the services. It binds the socket, starts
//! the services' background work (the presence, backup-health, chain, disk and retention monitors, scheduled
//! snapshots, the alerts' dispatcher, the feed's relay and its stats), routes
//! `/api/live` to the live adapter and everything else to the HTTP adapter (and the dashboard's files), and
//! stops it all on shutdown. The only module that knows both adapters. [`connections`] holds the sockets within
//! their bounds.

pub mod connections;

use std::net::SocketAddr;

use warp::http::HeaderMap;
use warp::reply::Response;
use warp::Filter;

use crate::http::error::ApiError;
use crate::services::{alerts, feed, health, Services};

/// Binds the server's listening socket with `TCP_NODELAY`, which accepted connections inherit (on Linux): the
/// live feed writes small frames, and Nagle's algorithm would hold each behind the peer's delayed ACK.
pub fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_nodelay(true)?;
    socket.bind(addr)?;
    // A deep accept queue (the kernel caps it at `net.core.somaxconn`, 4096 by default): a burst of thousands of
    // connections waits there instead of having SYNs dropped, which costs a bystander a one-second retransmit.
    socket.listen(4096)
}

/// Serves the API, the live feed and the dashboard on `listener` until `shutdown` resolves, then closes the
/// live connections and lets requests in flight finish.
pub async fn serve(
    services: Services,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let presence = services.presence.clone();
    let monitor = tokio::spawn({
        let (cairn, timeout) = (services.cairn.clone(), services.config.heartbeat_timeout);
        async move { presence.monitor(cairn, timeout).await }
    });
    let backups = tokio::spawn(health::monitor(services.cairn.clone(), services.config.backup_check));
    let chain = tokio::spawn(health::chain_monitor(
        services.cairn.clone(),
        services.config.chain_check,
    ));
    let disk = tokio::spawn(health::disk_monitor(services.clone()));
    let retention = tokio::spawn(health::retention_monitor(
        services.cairn.clone(),
        services.config.retain_deleted,
        services.config.retain_check,
    ));
    let alerts = tokio::spawn(alerts::dispatch(services.clone()));
    let snapshots = services.config.backup_every.map(|every| {
        tokio::spawn(crate::services::database::scheduled_backups(
            services.cairn.clone(),
            every,
            services.config.backup_keep,
        ))
    });
    let relay = tokio::spawn(feed::relay(services.cairn.clone(), services.feed.clone()));
    let stats = tokio::spawn(feed::publish_stats(services.clone()));
    let signer = tokio::spawn(crate::services::proofs::run_signer(services.clone()));
    let follower = match (&services.fleet, services.config.hub.clone()) {
        (Some(fleet), Some(config)) => Some(tokio::spawn(crate::services::fleet::run(
            services.clone(),
            fleet.clone(),
            config,
        ))),
        _ => None,
    };
    let publisher = services.config.publish.clone().map(|config| {
        tokio::spawn(crate::services::publish::run(
            services.cairn.clone(),
            config,
            services.publication.clone(),
        ))
    });
    let hub = services.feed.clone();
    let shutdown = async move {
        shutdown.await;
        hub.close_all();
    };
    let limits = services.config.connections;
    let routes = live(services.clone())
        .or(crate::http::web::serve())
        .unify()
        .or(crate::http::api(services))
        .unify()
        .recover(crate::http::error::recover)
        .unify();
    connections::run(listener, warp::service(routes), limits, shutdown).await;
    monitor.abort();
    backups.abort();
    chain.abort();
    disk.abort();
    retention.abort();
    alerts.abort();
    if let Some(s) = snapshots {
        s.abort();
    }
    relay.abort();
    stats.abort();
    signer.abort();
    if let Some(p) = publisher {
        p.abort();
    }
    if let Some(f) = follower {
        f.abort();
    }
}

/// `/api/live` upgrades go to the live adapter; a refusal is answered with the HTTP API's envelope.
fn live(services: Services) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    warp::path!("api" / "live")
        .and(warp::ws())
        .and(warp::header::headers_cloned())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .then(move |ws: warp::ws::Ws, headers: HeaderMap, query: String| {
            let services = services.clone();
            async move {
                match crate::live::accept(&services, ws, &headers, &query).await {
                    Ok(response) => response,
                    Err(e) => ApiError::from(e).into_response(&uuid::Uuid::now_v7().to_string()),
                }
            }
        })
}
