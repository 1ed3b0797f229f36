//! Fleet, on a hub: one card per site, worst state first, with each site's figures; clients across the fleet;
//! and no Fleet view on a server that is not a hub.

use cairn::services::fleet::{replica::Replica, FleetConfig};
use cairn::services::ServerConfig;

use crate::helpers::{spawn_app, spawn_app_config, test_config, TestApp};
use crate::page::{Browser, SOON};

/// A site's log, made by a server of its own: `clients` registered.
async fn a_site_log(clients: &[&str]) -> Vec<cairn_events::RecordedEvent> {
    let site = spawn_app().await;
    for name in clients {
        site.register(name).await;
    }
    let dir = site.stop_keeping_data().await;
    let conn = rusqlite::Connection::open(dir.path().join("cairn.db")).unwrap();
    cairn_events::reader::read_from(&conn, 0, 1000).unwrap()
}

/// A hub (its NATS nowhere: the sites' replicas are made here, as its ingest would make them).
async fn a_hub() -> TestApp {
    let hub = spawn_app_config(ServerConfig {
        hub: Some(FleetConfig {
            servers: vec!["nats://127.0.0.1:1".into()],
        }),
        ..test_config()
    })
    .await;
    for (site, clients, broken) in [
        ("paris", &["alpha", "bravo", "charlie"][..], false),
        ("lyon", &["delta"][..], true),
    ] {
        let events = a_site_log(clients).await;
        let mut replica = Replica::open(&hub.dir.path().join("sites").join(site)).unwrap();
        assert_eq!(replica.apply(&events).unwrap().applied, events.len());
        if broken {
            replica
                .break_here("its hash does not chain from the event before it".into())
                .unwrap();
        }
    }
    hub
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_shows_a_card_per_site_worst_first_and_finds_clients_across_sites() {
    let hub = a_hub().await;
    let b = Browser::open_signed_in(&hub).await;
    b.wait_for(
        "the Fleet view in the navigation",
        "return [...document.querySelectorAll('#nav a')].some(a => a.textContent === 'Fleet')",
        SOON,
    )
    .await;
    b.view(
        "#/fleet",
        "return document.getElementById('view').dataset.sites === '2'",
    )
    .await;
    let states = b
        .eval("return [...document.querySelectorAll('article.site')].map(a => a.dataset.site + ':' + a.dataset.state).join(',')")
        .await;
    assert_eq!(
        states, "lyon:broken,paris:down",
        "the broken site first, then the silent one"
    );
    let paris = b
        .eval("return document.querySelector('article[data-site=\"paris\"]').textContent")
        .await;
    assert!(paris.as_str().unwrap().contains("Clients0 / 3"), "{paris}");
    let lyon = b
        .eval("return document.querySelector('article[data-site=\"lyon\"] [role=\"alert\"]').textContent")
        .await;
    assert!(lyon.as_str().unwrap().contains("does not chain"), "{lyon}");
    b.eval("const q = document.querySelector('input[aria-label=\"Client name\"]'); q.value = 'l'; q.form.requestSubmit(); return true").await;
    b.wait_for(
        "clients across the fleet",
        "return document.getElementById('view').dataset.clients === '3'",
        SOON,
    )
    .await;
    let names = b.eval("return [...document.querySelectorAll('table[aria-label=\"Fleet clients\"] tbody tr')].map(r => r.cells[1].textContent).join(',')").await;
    assert_eq!(names, "delta,alpha,charlie", "names holding 'l', by site then name");
    b.screenshot("fleet").await;
    b.assert_not_reloaded().await;
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_is_not_a_hub_shows_no_fleet() {
    let app = spawn_app().await;
    let b = Browser::open_signed_in(&app).await;
    b.wait_for(
        "the navigation",
        "return document.querySelectorAll('#nav a').length >= 8",
        SOON,
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let names = b
        .eval("return [...document.querySelectorAll('#nav a')].map(a => a.textContent).join(',')")
        .await;
    assert!(!names.as_str().unwrap().contains("Fleet"), "{names}");
    let r = app.get("/api/fleet/sites").await;
    assert_eq!((r.status, r.code()), (404, "NOT_A_HUB".to_owned()));
    app.stop().await;
}
