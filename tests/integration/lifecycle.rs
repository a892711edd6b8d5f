//! Start-up and route-source failures in process: health before and after the first route
//! table, a gorouter that fails or rejects our credentials. The real binary under faults and
//! signals is in reliability_faults.rs.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::{client, config_for, samples_named, status_of, Harness, WAIT_LIMIT};
use promfetcher::config::{GorouterConfig, Secret};
use promfetcher::routes::{
    GorouterError, GorouterPoller, RouteFeed, RouteSourceKind, RouteSourceMetrics, RouteTableHandle,
};
use promfetcher::server::Server;
use promfetcher::settings::Settings;
use simulated_foundation::{
    Foundation, FoundationSpec, GorouterMode, LargeFoundation, StandaloneGorouter,
};

#[tokio::test]
async fn health_is_503_until_the_first_route_table_then_200() {
    let foundation = Foundation::start(FoundationSpec::dev_default())
        .await
        .unwrap();
    foundation.set_gorouter_mode(GorouterMode::Status(500));
    let server = Server::start(
        &Settings::from_config(&config_for(&foundation)).expect("the test config is valid"),
    )
    .await
    .unwrap();
    let client = client();
    let health = format!("http://{}/", server.health_addr());
    let api = format!(
        "http://{}/v1/apps/acme/dev/shop/metrics",
        server.main_addr()
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(status_of(&client, &health).await, Some(503));
    assert_eq!(status_of(&client, &api).await, Some(503));

    foundation.set_gorouter_mode(GorouterMode::Normal);
    let deadline = Instant::now() + WAIT_LIMIT;
    while status_of(&client, &health).await != Some(200) {
        assert!(Instant::now() < deadline, "health never turned 200");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let body = client
        .get(&health)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body, "ok");
    assert_eq!(status_of(&client, &api).await, Some(200));
    server
        .stop(promfetcher::server::signals::StopRequest::Now)
        .await;
}

#[tokio::test]
async fn the_last_good_table_is_kept_while_the_gorouter_fails() {
    let h = Harness::start(FoundationSpec::dev_default()).await;
    for mode in [GorouterMode::Status(502), GorouterMode::Garbage] {
        h.foundation.set_gorouter_mode(mode);
        // several polls (every 200 ms) fail meanwhile
        tokio::time::sleep(Duration::from_millis(700)).await;
        let body = h.merged("/v1/apps/acme/dev/shop/metrics").await;
        assert_eq!(samples_named(&body, "promfetcher_up").len(), 3);
        assert_eq!(h.client.get(&h.health).send().await.unwrap().status(), 200);
    }
    let own = h.get("/metrics").await.text().await.unwrap();
    let failures: f64 = own
        .lines()
        .find_map(|l| l.strip_prefix("promfetch_scrape_route_failed_total "))
        .expect("failure counter")
        .parse()
        .unwrap();
    assert!(failures >= 2.0, "{own}");
    h.stop().await;
}

fn poller_for(foundation: &Foundation, pass: &str) -> GorouterPoller {
    let user = foundation.gorouter_credentials().0;
    poller_of(foundation.gorouter_addr(), user, pass).0
}

/// A poller of the gorouter at `gorouter`, alone publishing to the table returned with it.
fn poller_of(
    gorouter: SocketAddr,
    user: &str,
    pass: &str,
) -> (GorouterPoller, Arc<RouteTableHandle>) {
    let table = Arc::new(RouteTableHandle::new());
    let metrics =
        RouteSourceMetrics::register(&prometheus::Registry::new(), table.clone()).unwrap();
    let poller = GorouterPoller::new(
        &[GorouterConfig {
            host: gorouter.ip().to_string(),
            port: gorouter.port(),
            user: user.to_string(),
            pass: Secret::new(pass),
        }],
        Duration::from_secs(30),
        RouteFeed::alone(table.clone(), RouteSourceKind::Gorouter),
        metrics,
    )
    .unwrap();
    (poller, table)
}

/// A poll that finds the routes as they were publishes nothing: requests keep the snapshot
/// they hold (identical requests before and after it still share one fan-out). A poll that
/// finds one app more publishes a table in which every other app's instances are the very
/// ones held before, not copies.
#[tokio::test]
async fn a_poll_with_the_same_routes_keeps_the_snapshot_and_a_change_copies_nothing_else() {
    let foundation = LargeFoundation::new(300, 4);
    let gorouter = StandaloneGorouter::start("router", "pw", foundation.routes_body(0))
        .await
        .unwrap();
    let (poller, table) = poller_of(gorouter.addr(), "router", "pw");
    assert!(poller.poll_once().await.is_empty());
    let first = table.snapshot().expect("published after the first poll");
    assert_eq!(first.endpoint_count(), 1200);

    assert!(poller.poll_once().await.is_empty());
    let again = table.snapshot().unwrap();
    assert!(Arc::ptr_eq(&first, &again), "an unchanged poll published");

    gorouter.set_routes(foundation.routes_body(1));
    assert!(poller.poll_once().await.is_empty());
    let changed = table.snapshot().unwrap();
    assert!(!Arc::ptr_eq(&first, &changed));
    assert_eq!((changed.app_count(), changed.endpoint_count()), (301, 1204));
    for app in [
        "org-0/space-0/app-0",
        "org-7/space-7/app-7",
        "app-299.apps.scale.internal",
    ] {
        let before = first.find_app(app).expect(app);
        assert!(
            Arc::ptr_eq(&before, &changed.find_app(app).unwrap()),
            "{app} copied"
        );
    }
    assert!(first.find_app("app-300.apps.scale.internal").is_none());
    assert_eq!(
        changed
            .find_app("app-300.apps.scale.internal")
            .unwrap()
            .len(),
        4
    );
}

#[tokio::test]
async fn gorouter_failures_are_named_for_what_they_are() {
    let foundation = Foundation::start(FoundationSpec::dev_default())
        .await
        .unwrap();
    let errors = poller_for(&foundation, "wrong-password").poll_once().await;
    assert!(
        matches!(errors[..], [GorouterError::Rejected { .. }]),
        "{errors:?}"
    );
    let message = errors[0].to_string();
    assert!(
        message.contains("rejected the credentials (401)"),
        "{message}"
    );
    assert!(
        !message.contains("wrong-password"),
        "secret in the message: {message}"
    );

    let good_pass = foundation.gorouter_credentials().1.to_string();
    foundation.set_gorouter_mode(GorouterMode::Garbage);
    let errors = poller_for(&foundation, &good_pass).poll_once().await;
    assert!(
        matches!(errors[..], [GorouterError::BadBody { .. }]),
        "{errors:?}"
    );

    foundation.set_gorouter_mode(GorouterMode::Status(503));
    let errors = poller_for(&foundation, &good_pass).poll_once().await;
    assert!(
        errors[0].to_string().contains("answered HTTP 503"),
        "{errors:?}"
    );

    // `gorouters` pointing at the status port of a current routing release
    foundation.set_gorouter_mode(GorouterMode::Status(404));
    let errors = poller_for(&foundation, &good_pass).poll_once().await;
    assert!(
        errors[0].to_string().contains("answered HTTP 404 to GET /routes: current routing releases serve /routes on router.status.routes.port (8082"),
        "{errors:?}"
    );

    foundation.set_gorouter_mode(GorouterMode::Normal);
    assert!(poller_for(&foundation, &good_pass)
        .poll_once()
        .await
        .is_empty());
}
