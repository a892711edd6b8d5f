//! Start-up, route-source failures and stopping: health before and after the first route table,
//! a gorouter that fails or rejects our credentials, and the real binary receiving SIGTERM
//! during a slow scrape and SIGUSR1.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::process::Process;
use common::{client, config_for, samples_named, status_of, Harness, WAIT_LIMIT};
use promfetcher::config::{GorouterConfig, Secret};
use promfetcher::dev::{Foundation, FoundationSpec, GorouterMode, InstanceSpec};
use promfetcher::routes::{
    GorouterError, GorouterPoller, RouteFeed, RouteSourceKind, RouteSourceMetrics, RouteTableHandle,
};
use promfetcher::server::Server;

#[tokio::test]
async fn health_is_503_until_the_first_route_table_then_200() {
    let foundation = Foundation::start(FoundationSpec::dev_default())
        .await
        .unwrap();
    foundation.set_gorouter_mode(GorouterMode::Status(500));
    let server = Server::start(&config_for(&foundation)).await.unwrap();
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
    server.stop(promfetcher::shutdown::StopRequest::Now).await;
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
    let gorouter = foundation.gorouter_addr();
    let table = Arc::new(RouteTableHandle::new());
    let metrics =
        RouteSourceMetrics::register(&prometheus::Registry::new(), table.clone()).unwrap();
    GorouterPoller::new(
        &[GorouterConfig {
            host: gorouter.ip().to_string(),
            port: gorouter.port(),
            user: foundation.gorouter_credentials().0.to_string(),
            pass: Secret::new(pass),
        }],
        Duration::from_secs(30),
        RouteFeed::alone(table, RouteSourceKind::Gorouter),
        metrics,
    )
    .unwrap()
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

    foundation.set_gorouter_mode(GorouterMode::Normal);
    assert!(poller_for(&foundation, &good_pass)
        .poll_once()
        .await
        .is_empty());
}

fn slow_foundation_spec() -> FoundationSpec {
    let mut spec = FoundationSpec::dev_default();
    for instance in &mut spec.apps[0].instances {
        *instance = InstanceSpec {
            delay: Duration::from_millis(1500),
            ..InstanceSpec::healthy()
        };
    }
    spec
}

#[tokio::test]
async fn sigterm_during_a_slow_scrape_lets_it_finish_and_exits_0() {
    let foundation = Foundation::start(slow_foundation_spec()).await.unwrap();
    let mut process = Process::start(&config_for(&foundation));
    let client = client();
    let deadline = Instant::now() + WAIT_LIMIT;
    while status_of(&client, &process.health).await != Some(200) {
        assert!(Instant::now() < deadline, "never ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let slow_app = &foundation.spec().apps[0];
    let url = format!(
        "{}/v1/apps/{}/{}/{}/metrics",
        process.api, slow_app.org, slow_app.space, slow_app.name
    );
    let in_flight = tokio::spawn({
        let client = client.clone();
        async move {
            let response = client.get(url).send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    });
    tokio::time::sleep(Duration::from_millis(400)).await;
    process.signal("TERM");
    let (status, body) = in_flight.await.unwrap();
    assert_eq!(status, 200);
    let up = samples_named(&body, "promfetcher_up");
    assert_eq!(up.len(), slow_app.instances.len());
    assert!(up.iter().all(|l| l.ends_with(" 1")), "{body}");
    let exit = tokio::task::spawn_blocking(move || process.wait_exit())
        .await
        .unwrap();
    assert_eq!(exit.code(), Some(0));
}

#[tokio::test]
async fn sigusr1_turns_health_503_at_once_then_drains_and_exits_0() {
    let foundation = Foundation::start(FoundationSpec::dev_default())
        .await
        .unwrap();
    let mut config = config_for(&foundation);
    config.shutdown.lame_duck_period = promfetcher::config::GoDuration::from_secs(2);
    let mut process = Process::start(&config);
    let client = client();
    let deadline = Instant::now() + WAIT_LIMIT;
    while status_of(&client, &process.health).await != Some(200) {
        assert!(Instant::now() < deadline, "never ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    process.signal("USR1");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let response = client.get(&process.health).send().await.unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(response.text().await.unwrap(), "draining");
    // still serving during the lame-duck period
    let api = format!("{}/v1/apps/acme/dev/shop/metrics", process.api);
    assert_eq!(status_of(&client, &api).await, Some(200));
    let exit = tokio::task::spawn_blocking(move || process.wait_exit())
        .await
        .unwrap();
    assert_eq!(exit.code(), Some(0));
}
