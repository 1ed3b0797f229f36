//! The demo fleet uses the real API: every kind of event it makes is a real command's, and the log verifies.
#![allow(clippy::unwrap_used)] // a test that cannot proceed should panic where it stopped

#[path = "common/api.rs"]
mod helpers;

use std::time::Duration;

use helpers::{spawn_app, ADMIN};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_fleet_registers_connects_uploads_verifies_fails_logs_and_disconnects() {
    let app = spawn_app().await;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let config = cairn::demo::DemoConfig {
        clients: 8,
        tick: Duration::from_millis(15),
        max_upload: 200_000,
    };
    let fleet = tokio::spawn(cairn::demo::run(app.addr, ADMIN.into(), config, stopped));
    let wanted = [
        "ClientRegistered",
        "ClientConnected",
        "FileStored",
        "TransferFailed",
        "LogRecorded",
        "ClientDisconnected",
        "FileVerified",
        "FileDownloaded",
    ];
    let missing = |app: &helpers::TestApp| -> Vec<&str> {
        wanted
            .iter()
            .copied()
            .filter(|t| app.count(&format!("SELECT count(*) FROM events WHERE type = '{t}'")) == 0)
            .collect()
    };
    for _ in 0..300 {
        if missing(&app).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.send_replace(true);
    tokio::time::timeout(Duration::from_secs(20), fleet)
        .await
        .expect("the fleet stops")
        .unwrap();
    assert_eq!(
        missing(&app),
        Vec::<&str>::new(),
        "every kind of demo activity happened"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM events WHERE type = 'ClientRegistered'"),
        8
    );
    let v = app.get("/api/audit/verify").await.data();
    assert_eq!(v["ok"], true);

    // A second fleet over the same server takes its names back instead of failing.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let again = tokio::spawn(cairn::demo::run(app.addr, ADMIN.into(), config, stopped));
    for _ in 0..200 {
        if app.count("SELECT count(*) FROM events WHERE type = 'ClientTokenRotated'") == 8 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.send_replace(true);
    tokio::time::timeout(Duration::from_secs(20), again)
        .await
        .expect("the fleet stops")
        .unwrap();
    assert_eq!(
        app.count("SELECT count(*) FROM events WHERE type = 'ClientTokenRotated'"),
        8
    );
    assert_eq!(app.count("SELECT count(*) FROM clients"), 8);
    // The read tables agree with a rebuild of everything the fleet did.
    let report = cairn::replay::replay(app.dir.path(), &cairn::replay::Mode::Verify, |_| {}).unwrap();
    assert!(report.differences.is_empty(), "{:?}", report.differences);
    app.stop().await;
}
