//! Applying 50,000 NATS route registrations: messages per second and memory, printed, never
//! judged. Run with `cargo bench --bench nats_registry`.
//!
//! 1. In process: parse and apply 50,000 route-emitter `router.register` bodies (5,000 apps of
//!    10 instances), then the same again as heartbeats, then build and publish the table.
//! 2. End to end, when `nats-server` is installed: publish them on a real nats-server and time
//!    until promfetcher's NATS source has published a table holding all of them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use counting_allocator::{live_bytes, CountingAllocator};
use promfetcher::config::{Config, GoDuration, NatsHost, Secret};
use promfetcher::routes::nats::{NatsMetrics, NatsRegistry, NatsSettings, RegistryMessage};
use promfetcher::routes::{
    NatsSource, RouteFeed, RouteSourceKind, RouteSourceMetrics, RouteTableHandle,
};
use simulated_foundation::NatsServer;

/// Counts live heap bytes, so memory is measured exactly rather than from RSS.
#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

const APPS: usize = 5_000;
const INSTANCES: usize = 10;
const ENDPOINTS: usize = APPS * INSTANCES;

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// A route-emitter registration for instance `index` of app `app`, shaped as §2.3 of the
/// route-sources reference.
fn registration(app: usize, index: usize) -> String {
    let app_guid = format!("8c5a9f3e-2b1d-4e6f-9a7b-{app:012x}");
    let instance_guid = format!("3e1c9b5a-7d2f-4a8e-{app:04x}-{index:04x}");
    let host = format!(
        "127.{}.{}.{}",
        app / 65536 % 256 + 1,
        app / 256 % 256,
        app % 256
    );
    let port = 61000 + index;
    format!(
        r#"{{"host":"{host}","port":{port},"tls_port":{tls},"uris":["app-{app}.apps.example.com"],"protocol":"http1","app":"{app_guid}","private_instance_id":"{instance_guid}","private_instance_index":"{index}","server_cert_domain_san":"{instance_guid}","endpoint_updated_at_ns":1767225600123456789,"tags":{{"app_id":"{app_guid}","app_name":"app-{app}","component":"route-emitter","instance_id":"{index}","organization_id":"0a1b2c3d-4e5f-4061-8273-94a5b6c7d8e9","organization_name":"acme","process_id":"{app_guid}","process_instance_id":"{instance_guid}","process_type":"web","source_id":"{app_guid}","space_id":"1f2e3d4c-5b6a-4798-8a7b-6c5d4e3f2a1b","space_name":"dev"}},"availability_zone":"z1","options":{{"loadbalancing":"least-connection"}}}}"#,
        tls = port + 2000,
    )
}

fn in_process(bodies: &[String]) {
    let before = live_bytes();
    let mut registry = NatsRegistry::new(Duration::from_secs(120), Default::default());
    let started = Instant::now();
    for body in bodies {
        let message = RegistryMessage::parse(body.as_bytes()).expect("valid registration");
        registry.register(&message, Instant::now());
    }
    let first = started.elapsed();
    let registry_bytes = live_bytes() - before;
    assert_eq!(registry.endpoint_count(), ENDPOINTS);

    let started = Instant::now();
    for body in bodies {
        let message = RegistryMessage::parse(body.as_bytes()).expect("valid registration");
        registry.register(&message, Instant::now());
    }
    let heartbeat = started.elapsed();

    let table = Arc::new(RouteTableHandle::new());
    let feed = RouteFeed::alone(table.clone(), RouteSourceKind::Nats);
    let before_table = live_bytes();
    let started = Instant::now();
    let routes = registry.routes();
    let copied = started.elapsed();
    feed.deliver(routes);
    let built = started.elapsed();
    let table_bytes = live_bytes() - before_table;
    let endpoints = table.snapshot().map_or(0, |t| t.endpoint_count());
    assert_eq!(endpoints, ENDPOINTS);

    let rate = |d: Duration| ENDPOINTS as f64 / d.as_secs_f64();
    println!("in process, {ENDPOINTS} route-emitter registrations ({APPS} apps x {INSTANCES}):");
    println!(
        "  first registration   {:>8.1} ms  {:>10.0} messages/s",
        first.as_secs_f64() * 1e3,
        rate(first)
    );
    println!(
        "  heartbeat (no change) {:>7.1} ms  {:>10.0} messages/s",
        heartbeat.as_secs_f64() * 1e3,
        rate(heartbeat)
    );
    println!(
        "  snapshot: copy {:.1} ms, copy + build + publish {:.1} ms",
        copied.as_secs_f64() * 1e3,
        built.as_secs_f64() * 1e3
    );
    println!(
        "  memory: registry {:.1} MiB ({} B/endpoint), published table {:.1} MiB ({} B/endpoint)",
        mib(registry_bytes),
        registry_bytes / ENDPOINTS,
        mib(table_bytes),
        table_bytes / ENDPOINTS
    );
}

async fn end_to_end(bodies: Vec<String>) {
    let nats = match NatsServer::start("bench", "bench-pass", None).await {
        Ok(nats) => nats,
        Err(error) => {
            println!("end to end: skipped ({error})");
            return;
        }
    };
    let mut config = Config::default();
    config.nats.hosts = vec![NatsHost {
        hostname: "127.0.0.1".into(),
        port: nats.port(),
    }];
    config.nats.user = "bench".into();
    config.nats.pass = Secret::new("bench-pass");
    config.start_response_delay_interval = GoDuration::from_millis(100);
    let settings = NatsSettings::from_config(&config)
        .expect("settings")
        .expect("NATS configured");
    let registry = prometheus::Registry::new();
    let table = Arc::new(RouteTableHandle::new());
    let source = NatsSource::new(
        settings,
        RouteFeed::alone(table.clone(), RouteSourceKind::Nats),
        NatsMetrics::register(&registry).expect("metrics"),
        RouteSourceMetrics::register(&registry, table.clone()).expect("metrics"),
    );
    let stop = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn(source.run(stop.clone()));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !table.is_loaded() {
        assert!(
            Instant::now() < deadline,
            "the NATS source never became ready"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let publisher = async_nats::ConnectOptions::new()
        .user_and_password("bench".into(), "bench-pass".into())
        .connect(nats.url())
        .await
        .expect("publisher connects");
    let started = Instant::now();
    for body in bodies {
        publisher
            .publish("router.register", body.into())
            .await
            .expect("publish");
    }
    publisher.flush().await.expect("flush");
    let published = started.elapsed();
    while table.snapshot().map_or(0, |t| t.endpoint_count()) < ENDPOINTS {
        assert!(
            Instant::now() < deadline,
            "not every registration reached the table (slow consumer?)"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let visible = started.elapsed();
    println!("end to end through nats-server:");
    println!(
        "  published in {:.0} ms; all {ENDPOINTS} in the served table after {:.0} ms: {:.0} messages/s",
        published.as_secs_f64() * 1e3,
        visible.as_secs_f64() * 1e3,
        ENDPOINTS as f64 / visible.as_secs_f64()
    );
    stop.cancel();
    let _ = running.await;
}

fn main() {
    let bodies: Vec<String> = (0..APPS)
        .flat_map(|app| (0..INSTANCES).map(move |index| registration(app, index)))
        .collect();
    in_process(&bodies);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(end_to_end(bodies));
}
