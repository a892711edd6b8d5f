//! The NATS route source against a real nats-server (Debian's `nats-server`, installed by
//! scripts/test-all; a missing binary fails these tests): registrations shaped exactly as
//! route-emitter and route-registrar publish them reach promfetcher's table and the apps are
//! scraped; unregister and pruning remove instances; invalid messages are dropped and counted;
//! a nats-server restart loses no routes (health and own metrics say the table is stale while
//! it is down), brings a new `router.start` and picks up registrations made after it; TLS with a client
//! certificate; NATS beside gorouter polling. Everything listens on 127.0.0.1.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::{
    self, assert_promtool_accepts, config_for, samples_named, Harness, WAIT_LIMIT,
};
use promfetcher::config::{Config, GoDuration, NatsHost, Secret};
use promfetcher::server::Server;
use promfetcher::settings::Settings;
use simulated_foundation::{
    DevRegistrar, Foundation, FoundationSpec, NatsServer, NatsServerTls, DEV_DOMAIN,
};

const NATS_USER: &str = "promfetcher";
const NATS_PASS: &str = "nats-s3cret";
/// Registrars re-register this often; the stale threshold is a few heartbeats.
const HEARTBEAT: Duration = Duration::from_millis(300);
const STALE_THRESHOLD: GoDuration = GoDuration::from_secs(2);

/// A nats-server, the simulated foundation registering its apps on it, and promfetcher.
struct NatsHarness {
    h: Harness,
    nats: NatsServer,
    registrar: DevRegistrar,
}

async fn start_nats(tls: Option<NatsServerTls>) -> NatsServer {
    NatsServer::start(NATS_USER, NATS_PASS, tls)
        .await
        .unwrap_or_else(|error| panic!("these tests need a real nats-server: {error}"))
}

/// A NATS client for the test's registrar.
async fn nats_client(nats: &NatsServer, tls: Option<rustls::ClientConfig>) -> async_nats::Client {
    let mut options = async_nats::ConnectOptions::new()
        .user_and_password(NATS_USER.into(), NATS_PASS.into())
        .max_reconnects(None);
    if let Some(tls) = tls {
        options = options.require_tls(true).tls_client_config(tls);
    }
    options
        .connect(nats.url())
        .await
        .expect("test client connects to nats-server")
}

/// promfetcher's config for NATS only (plus `adjust`).
fn nats_config(
    foundation: &Foundation,
    nats: &NatsServer,
    adjust: impl FnOnce(&Foundation, &mut Config),
) -> Config {
    let mut config = config_for(foundation);
    config.gorouters.clear();
    config.nats.hosts = vec![NatsHost {
        hostname: "127.0.0.1".into(),
        port: nats.port(),
    }];
    config.nats.user = NATS_USER.into();
    config.nats.pass = Secret::new(NATS_PASS);
    config.droplet_stale_threshold = STALE_THRESHOLD;
    config.route_registration_interval = GoDuration::from_secs(1);
    config.start_response_delay_interval = GoDuration::from_millis(300);
    adjust(foundation, &mut config);
    config
}

impl NatsHarness {
    async fn start(adjust: impl FnOnce(&Foundation, &mut Config)) -> NatsHarness {
        let nats = start_nats(None).await;
        let client = nats_client(&nats, None).await;
        NatsHarness::start_on(nats, client, adjust).await
    }

    async fn start_on(
        nats: NatsServer,
        registrar_client: async_nats::Client,
        adjust: impl FnOnce(&Foundation, &mut Config),
    ) -> NatsHarness {
        let foundation = Foundation::start(FoundationSpec::dev_default())
            .await
            .expect("foundation starts");
        let registrar =
            DevRegistrar::start(registrar_client, foundation.registrations(), HEARTBEAT)
                .await
                .expect("registrar publishes");
        let config = nats_config(&foundation, &nats, adjust);
        let server =
            Server::start(&Settings::from_config(&config).expect("the test config is valid"))
                .await
                .expect("promfetcher starts");
        let h = Harness::around(foundation, server);
        h.wait_ready().await;
        NatsHarness { h, nats, registrar }
    }

    /// How many instances promfetcher scrapes for `path` (0 when it answers 404).
    async fn instances(&self, path: &str) -> usize {
        let response = self.h.get(path).await;
        if response.status() == 404 {
            return 0;
        }
        let body = response.text().await.expect("body");
        samples_named(&body, "promfetcher_up").len()
    }

    /// Waits until `path` has `expected` instances.
    async fn wait_instances(&self, path: &str, expected: usize) {
        let deadline = Instant::now() + WAIT_LIMIT;
        loop {
            let found = self.instances(path).await;
            if found == expected {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{path}: {found} instances, expected {expected}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The value of one sample of promfetcher's own metrics (`name{labels}` exactly as written).
    async fn own_metric(&self, series: &str) -> f64 {
        let body = self.h.get("/metrics").await.text().await.expect("metrics");
        common::sample_value(&body, series).unwrap_or(0.0)
    }
}

/// Polls `check` every 50 ms until it holds, failing after [`WAIT_LIMIT`].
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + WAIT_LIMIT;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
#[ignore = "needs nats-server and promtool: run scripts/test-all"]
async fn registered_apps_are_found_by_name_guid_and_route_and_scraped() {
    let n = NatsHarness::start(|_, _| {}).await;
    n.wait_instances("/v1/apps/acme/dev/shop/metrics", 3).await;
    let body = n.h.merged("/v1/apps/acme/dev/shop/metrics").await;
    assert_promtool_accepts(&body);
    let shop_guid =
        n.h.foundation
            .spec()
            .app("shop")
            .expect("shop")
            .app_guid
            .clone();
    assert_eq!(
        n.instances(&format!("/v1/apps/{shop_guid}/metrics")).await,
        3
    );
    assert_eq!(
        n.instances(&format!("/v1/apps/metrics?route_url=shop.{DEV_DOMAIN}/api"))
            .await,
        3
    );
    // TLS instances (tls_port wins; the SAN is the instance GUID)
    let vault = n.h.merged("/v1/apps/acme/dev/vault/metrics").await;
    let up = samples_named(&vault, "promfetcher_up");
    assert_eq!(up.len(), 2, "{vault}");
    assert!(up.iter().all(|line| line.ends_with(" 1")), "{vault}");
    // route-registrar shape, tags null: by route only
    assert_eq!(
        n.instances(&format!("/v1/apps/metrics?route_url=legacy.{DEV_DOMAIN}"))
            .await,
        1
    );
    // process type worker: routed, but not found by name
    assert_eq!(n.instances("/v1/apps/acme/dev/worker/metrics").await, 0);

    assert_eq!(n.own_metric("promfetcher_nats_connected").await, 1.0);
    assert_eq!(
        n.own_metric("promfetcher_nats_router_start_sent_total")
            .await,
        1.0
    );
    assert!(
        n.registrar.starts_seen() >= 1,
        "the registrar saw router.start"
    );
    n.h.stop().await;
}

#[tokio::test]
#[ignore = "needs nats-server: run scripts/test-all"]
async fn router_greet_is_answered_with_the_start_message() {
    let n = NatsHarness::start(|_, config| {
        config.index = 3;
        config.start_response_delay_interval = GoDuration::from_secs(1);
        // gorouter's interval (the default), not the delay before health turns ready
        config.droplet_stale_threshold = Config::default().droplet_stale_threshold;
        config.route_registration_interval = Config::default().route_registration_interval;
    })
    .await;
    let observer = nats_client(&n.nats, None).await;
    let reply = observer
        .request("router.greet", "".into())
        .await
        .expect("promfetcher answers router.greet");
    let start: serde_json::Value = serde_json::from_slice(&reply.payload).expect("JSON answer");
    assert!(
        start["id"].as_str().is_some_and(|id| id.starts_with("3-")),
        "{start}"
    );
    assert_eq!(start["hosts"], serde_json::json!(["127.0.0.1"]));
    assert_eq!(start["pruneThresholdInSeconds"], 120);
    assert_eq!(start["minimumRegisterIntervalInSeconds"], 20);
    n.h.stop().await;
}

#[tokio::test]
#[ignore = "needs nats-server: run scripts/test-all"]
async fn unregister_and_pruning_remove_instances_but_tls_endpoints_are_not_pruned() {
    let n = NatsHarness::start(|_, _| {}).await;
    let shop = "/v1/apps/acme/dev/shop/metrics";
    n.wait_instances(shop, 3).await;

    n.registrar.unregister("shop", 0).await.expect("unregister");
    n.wait_instances(shop, 2).await;

    // instance 1 stops heartbeating: pruned after the stale threshold
    assert_eq!(n.registrar.silence("shop", 1), 2, "two routes");
    // a TLS instance going silent is not pruned, as gorouter does not prune TLS endpoints
    assert_eq!(n.registrar.silence("vault", 0), 1);
    let silenced = Instant::now();
    n.wait_instances(shop, 1).await;
    assert!(silenced.elapsed() >= STALE_THRESHOLD.0, "pruned too early");
    assert_eq!(n.instances("/v1/apps/acme/dev/vault/metrics").await, 2);
    assert_eq!(
        n.own_metric("promfetcher_nats_pruned_endpoints_total")
            .await,
        2.0
    );
    assert_eq!(
        n.own_metric(
            r#"promfetcher_nats_messages_total{outcome="removed",subject="router.unregister"}"#
        )
        .await,
        2.0
    );
    n.h.stop().await;
}

#[tokio::test]
#[ignore = "needs nats-server: run scripts/test-all"]
async fn invalid_messages_are_dropped_and_counted() {
    let n = NatsHarness::start(|_, _| {}).await;
    let publisher = nats_client(&n.nats, None).await;
    let shop_0 = n.h.foundation.instance_addr("shop", 0);
    let plain_route_service = format!(
        r#"{{"host":"127.0.0.1","port":{},"uris":["rs.{DEV_DOMAIN}"],"route_service_url":"http://rs.example.com","tags":{{"process_type":"web"}}}}"#,
        shop_0.port()
    );
    for body in ["{not json".to_string(), plain_route_service] {
        publisher
            .publish("router.register", body.into())
            .await
            .unwrap();
    }
    publisher.flush().await.unwrap();
    eventually("both drops counted", || async {
        n.own_metric(r#"promfetcher_nats_messages_total{outcome="invalid_json",subject="router.register"}"#)
            .await
            == 1.0
            && n
                .own_metric(
                    r#"promfetcher_nats_messages_total{outcome="invalid_route_service",subject="router.register"}"#,
                )
                .await
                == 1.0
    })
    .await;
    // a valid message published after them is applied, so they were read and dropped
    let https_route_service = format!(
        r#"{{"host":"127.0.0.1","port":{},"uris":["rs-ok.{DEV_DOMAIN}"],"route_service_url":"https://rs.example.com"}}"#,
        shop_0.port()
    );
    publisher
        .publish("router.register", https_route_service.into())
        .await
        .unwrap();
    publisher.flush().await.unwrap();
    n.wait_instances(&format!("/v1/apps/metrics?route_url=rs-ok.{DEV_DOMAIN}"), 1)
        .await;
    assert_eq!(
        n.instances(&format!("/v1/apps/metrics?route_url=rs.{DEV_DOMAIN}"))
            .await,
        0
    );
    n.h.stop().await;
}

#[tokio::test]
#[ignore = "needs nats-server: run scripts/test-all"]
async fn a_nats_restart_loses_no_routes_and_brings_a_new_router_start() {
    let mut n = NatsHarness::start(|_, _| {}).await;
    let shop = "/v1/apps/acme/dev/shop/metrics";
    n.wait_instances(shop, 3).await;

    n.nats.kill();
    eventually("promfetcher to notice the lost connection", || async {
        n.own_metric("promfetcher_nats_connected").await == 0.0
    })
    .await;
    // while NATS is down the last table is served, and health and own metrics say it is stale
    assert_eq!(n.instances(shop).await, 3);
    let health = n.h.client.get(&n.h.health).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let health = health.text().await.unwrap();
    assert!(
        health.starts_with("ok, but the route table is stale: nats failing for"),
        "{health}"
    );
    assert_eq!(
        n.own_metric(r#"promfetcher_route_source_up{source="nats"}"#)
            .await,
        0.0
    );
    // freshness stops while NATS is away, and resumes with it
    let fresh = r#"promfetcher_route_source_last_success_timestamp_seconds{source="nats"}"#;
    let last_fresh = n.own_metric(fresh).await;
    assert!(last_fresh > 0.0, "fresh before the kill");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(n.own_metric(fresh).await, last_fresh);

    n.nats
        .restart()
        .await
        .expect("nats-server restarts on its port");
    eventually("a second router.start", || async {
        n.own_metric("promfetcher_nats_router_start_sent_total")
            .await
            == 2.0
    })
    .await;
    assert_eq!(n.own_metric("promfetcher_nats_connects_total").await, 2.0);
    eventually("NATS fresh again", || async {
        n.own_metric(fresh).await > last_fresh
    })
    .await;
    // registrations resume; after more than a stale threshold every instance is still there
    tokio::time::sleep(STALE_THRESHOLD.0 + Duration::from_secs(1)).await;
    assert_eq!(n.instances(shop).await, 3);
    assert_eq!(
        n.own_metric("promfetcher_nats_pruned_endpoints_total")
            .await,
        0.0
    );
    // a registration made after the restart is picked up (it is never renewed, so this runs
    // within its stale threshold)
    let publisher = nats_client(&n.nats, None).await;
    let late = format!(
        r#"{{"host":"127.0.0.1","port":{},"uris":["late.{DEV_DOMAIN}"]}}"#,
        n.h.foundation.instance_addr("shop", 0).port()
    );
    publisher
        .publish("router.register", late.into())
        .await
        .unwrap();
    publisher.flush().await.unwrap();
    n.wait_instances(&format!("/v1/apps/metrics?route_url=late.{DEV_DOMAIN}"), 1)
        .await;
    eventually("health ok again", || async {
        n.h.client
            .get(&n.h.health)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
            == "ok"
    })
    .await;
    n.h.stop().await;
}

#[tokio::test]
#[ignore = "needs nats-server: run scripts/test-all"]
async fn tls_with_a_client_certificate() {
    let pki = TestPki::generate();
    let nats = start_nats(Some(NatsServerTls {
        cert_pem: pki.server_cert.clone(),
        key_pem: pki.server_key.clone(),
        client_ca_pem: Some(pki.ca.clone()),
    }))
    .await;
    let registrar_client = nats_client(&nats, Some(pki.client_tls())).await;
    let (ca, cert, key) = (
        pki.ca.clone(),
        pki.client_cert.clone(),
        pki.client_key.clone(),
    );
    let n = NatsHarness::start_on(nats, registrar_client, move |_, config| {
        config.nats.tls_enabled = true;
        config.nats.ca_certs = ca;
        config.nats.cert_chain = cert;
        config.nats.private_key = Secret::new(key);
    })
    .await;
    n.wait_instances("/v1/apps/acme/dev/shop/metrics", 3).await;
    assert_eq!(n.own_metric("promfetcher_nats_connected").await, 1.0);
    n.h.stop().await;
}

#[tokio::test]
#[ignore = "needs nats-server: run scripts/test-all"]
async fn nats_beside_gorouter_polling_lists_each_address_once() {
    let nats = start_nats(None).await;
    let registrar_client = nats_client(&nats, None).await;
    // the same foundation through both sources: its gorouter is polled too
    let both = NatsHarness::start_on(nats, registrar_client, |foundation, config| {
        config.gorouters = config_for(foundation).gorouters;
    })
    .await;
    let shop = "/v1/apps/acme/dev/shop/metrics";
    both.wait_instances(shop, 3).await;
    // unregistered on NATS but still listed by the gorouter: the union keeps it
    both.registrar
        .unregister("shop", 0)
        .await
        .expect("unregister");
    eventually("the unregister to be applied", || async {
        both.own_metric(
            r#"promfetcher_nats_messages_total{outcome="removed",subject="router.unregister"}"#,
        )
        .await
            == 2.0
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(both.instances(shop).await, 3);

    // A diagnosis says which source lists the app: both, then only the gorouter once every
    // instance is unregistered on NATS.
    let lists_app = || async {
        let text = both
            .h
            .get("/v1/apps/acme/dev/shop/diagnosis")
            .await
            .text()
            .await
            .expect("the diagnosis");
        let answer: serde_json::Value = serde_json::from_str(&text).expect("a JSON diagnosis");
        let listing = |source: &str| {
            answer["route_sources"]
                .as_array()
                .expect("route sources")
                .iter()
                .find(|s| s["source"] == source)
                .unwrap_or_else(|| panic!("{source} is reported: {answer}"))["lists_app"]
                .as_bool()
                .expect("lists_app")
        };
        (listing("gorouter"), listing("nats"))
    };
    assert_eq!(lists_app().await, (true, true));
    for index in 1..3 {
        both.registrar
            .unregister("shop", index)
            .await
            .expect("unregister");
    }
    eventually("NATS to list no instance of shop", || async {
        lists_app().await == (true, false)
    })
    .await;
    assert_eq!(
        both.instances(shop).await,
        3,
        "the gorouter still lists them"
    );
    both.h.stop().await;
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, generated for one test.
struct TestPki {
    ca: String,
    server_cert: String,
    server_key: String,
    client_cert: String,
    client_key: String,
}

impl TestPki {
    fn generate() -> TestPki {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, SanType};
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_key = KeyPair::generate().unwrap();
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);

        let mut server_params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        server_params
            .subject_alt_names
            .push(SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()));
        let server_key = KeyPair::generate().unwrap();
        let server_cert = server_params.signed_by(&server_key, &issuer).unwrap();

        let client_params = CertificateParams::new(vec!["promfetcher".to_string()]).unwrap();
        let client_key = KeyPair::generate().unwrap();
        let client_cert = client_params.signed_by(&client_key, &issuer).unwrap();
        TestPki {
            ca: ca_cert.pem(),
            server_cert: server_cert.pem(),
            server_key: server_key.serialize_pem(),
            client_cert: client_cert.pem(),
            client_key: client_key.serialize_pem(),
        }
    }

    /// The registrar's TLS: trusts the CA, presents the client certificate.
    fn client_tls(&self) -> rustls::ClientConfig {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(self.ca.as_bytes()).unwrap())
            .unwrap();
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(
            vec![CertificateDer::from_pem_slice(self.client_cert.as_bytes()).unwrap()],
            PrivateKeyDer::from_pem_slice(self.client_key.as_bytes()).unwrap(),
        )
        .unwrap()
    }
}

#[tokio::test]
#[ignore = "needs nats-server: run scripts/test-all"]
async fn health_stays_503_while_nats_refuses_the_credentials() {
    let nats = start_nats(None).await;
    let foundation = Foundation::start(FoundationSpec::dev_default())
        .await
        .expect("foundation starts");
    let config = nats_config(&foundation, &nats, |_, config| {
        config.nats.pass = Secret::new("wrong-password");
    });
    let server = Server::start(&Settings::from_config(&config).expect("the test config is valid"))
        .await
        .expect("promfetcher starts");
    let h = Harness::around(foundation, server);
    // well past the start delay: never connected, so never ready
    tokio::time::sleep(Duration::from_secs(1)).await;
    let health = h
        .client
        .get(&h.health)
        .send()
        .await
        .expect("health answers");
    assert_eq!(health.status(), 503);
    let own = h.get("/metrics").await.text().await.expect("metrics");
    assert!(own.contains("promfetcher_nats_connected 0"), "{own}");
    h.stop().await;
}
