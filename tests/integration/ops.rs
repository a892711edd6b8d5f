//! The operator endpoints end to end against the simulated foundation: `GET /routes` (the route
//! table behind the broker's credentials), `GET /doc` (the user guide, rendered by a real
//! headless Chromium) and `GET /v1/sd` (Prometheus HTTP service discovery, also checked with a
//! real Prometheus that discovers and scrapes the simulated apps through promfetcher).

use crate::common::chromium::run_headless;
use crate::common::prometheus::{free_port, Prometheus};
use crate::common::{self, Harness};
use promfetcher::config::Secret;
use simulated_foundation::FoundationSpec;

use std::path::Path;
use std::time::{Duration, Instant};

const BROKER_USER: &str = "broker-admin";
const BROKER_PASS: &str = "broker-s3cret";
/// The configured public address; distinct from the loopback address the tests connect to.
const BASE_URL: &str = "https://promfetcher.sys.test.example";

async fn start() -> Harness {
    Harness::start_with(FoundationSpec::dev_default(), |config| {
        config.broker.user = BROKER_USER.into();
        config.broker.pass = Secret::new(BROKER_PASS);
        config.base_url = BASE_URL.into();
    })
    .await
}

#[tokio::test]
async fn routes_needs_the_broker_credentials() {
    let harness = start().await;
    let url = format!("{}/routes", harness.base);
    for (user, pass) in [
        (None, None),
        (Some(BROKER_USER), Some("wrong")),
        (Some("someone"), Some(BROKER_PASS)),
    ] {
        let mut request = harness.client.get(&url);
        if let Some(user) = user {
            request = request.basic_auth(user, pass);
        }
        let response = request.send().await.expect("answers");
        assert_eq!(response.status(), 401, "{user:?}/{pass:?}");
        let challenge = response
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        assert!(challenge.starts_with("Basic "), "{challenge}");
        let body = response.text().await.expect("body");
        assert!(!body.contains(BROKER_PASS), "{body}");
    }
    harness.stop().await;
}

#[tokio::test]
async fn routes_lists_every_route_with_its_endpoints() {
    let harness = start().await;
    let response = harness
        .client
        .get(format!("{}/routes", harness.base))
        .basic_auth(BROKER_USER, Some(BROKER_PASS))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), 200);
    assert!(response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json")));
    let body = response.text().await.expect("body");
    let dump: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let routes = dump["routes"].as_object().expect("routes object");
    let keys: Vec<&str> = routes.keys().map(String::as_str).collect();
    for key in [
        "shop.apps.dev.local",
        "shop.apps.dev.local/api",
        "billing.apps.dev.local",
        "vault.apps.dev.local",
        "worker.apps.dev.local",
        "legacy.apps.dev.local",
    ] {
        assert!(keys.contains(&key), "{key} missing from {keys:?}");
    }

    let shop = routes["shop.apps.dev.local"].as_array().expect("endpoints");
    assert_eq!(shop.len(), 3);
    let first = &shop[0];
    assert_eq!(
        first["address"],
        harness.foundation.instance_addr("shop", 0).to_string()
    );
    assert_eq!(first["tls"], false);
    assert!(first["server_name"].is_null());
    assert_eq!(first["host"], "shop.apps.dev.local");
    assert_eq!(first["cf"]["organization_name"], "acme");
    assert_eq!(first["cf"]["space_name"], "dev");
    assert_eq!(first["cf"]["app_name"], "shop");
    assert_eq!(first["cf"]["instance_index"], "0");
    assert_eq!(first["cf"]["process_type"], "web");
    let shop_guid = &harness.foundation.spec().apps[0].app_guid;
    assert_eq!(first["cf"]["app_id"], shop_guid.as_str());

    let vault = &routes["vault.apps.dev.local"][0];
    assert_eq!(vault["tls"], true);
    assert!(vault["server_name"].is_string(), "{vault}");

    let legacy = &routes["legacy.apps.dev.local"][0];
    assert_eq!(
        legacy["cf"]["app_id"], "",
        "routing-API routes carry no tags"
    );
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Chromium: run scripts/test-all"]
async fn doc_renders_in_chromium_with_the_base_url() {
    let harness = start().await;
    let url = format!("{}/doc", harness.base);
    let response = harness.get("/doc").await;
    assert_eq!(response.status(), 200);
    assert!(response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html")));

    let profile = tempfile::tempdir().expect("profile dir");
    let screenshot = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/doc-screenshot.png");
    let _ = std::fs::remove_file(&screenshot);
    let (profile_path, shot) = (profile.path().to_path_buf(), screenshot.clone());
    let dom = tokio::task::spawn_blocking(move || {
        let dom = run_headless(&profile_path, &["--dump-dom".to_string()], &url);
        run_headless(
            &profile_path,
            &[
                format!("--screenshot={}", shot.display()),
                "--window-size=1200,2000".to_string(),
            ],
            &url,
        );
        dom
    })
    .await
    .expect("chromium task");

    for heading in [
        "promfetcher user guide",
        "Fetching an app's metrics",
        "Choosing the metrics path",
        "Forwarding credentials",
        "Setting the path with the service broker",
        "Scraping with Prometheus",
        "Why are my metrics missing?",
    ] {
        assert!(
            dom.contains(heading),
            "heading {heading:?} missing from the DOM"
        );
    }
    for example in [
        format!("{BASE_URL}/v1/apps/my-org/my-space/my-app/metrics"),
        format!("{BASE_URL}/v1/apps/metrics?route_url="),
        format!("{BASE_URL}/broker"),
        format!("url: {BASE_URL}/v1/sd"),
        "cf create-service promfetcher fetch-app my-metrics".to_string(),
        "cf bind-service my-app my-metrics".to_string(),
        "honor_labels: true".to_string(),
        "promfetcher.sys.test.example:443".to_string(),
    ] {
        assert!(dom.contains(&example), "{example:?} missing from the DOM");
    }
    let size = std::fs::metadata(&screenshot)
        .unwrap_or_else(|e| panic!("no screenshot at {}: {e}", screenshot.display()))
        .len();
    assert!(size > 10 * 1024, "screenshot is only {size} bytes");
    harness.stop().await;
}

#[tokio::test]
async fn sd_lists_one_target_group_per_app() {
    let harness = start().await;
    let response = harness.get("/v1/sd").await;
    assert_eq!(response.status(), 200);
    let body = response.text().await.expect("body");
    let groups: Vec<serde_json::Value> = serde_json::from_str(&body).expect("JSON array");
    let spec = harness.foundation.spec();
    // web apps with a GUID: shop, billing, secure-api, flaky, vault (not the worker, not legacy)
    let mut names: Vec<&str> = groups
        .iter()
        .map(|g| g["labels"]["cf_app_name"].as_str().expect("cf_app_name"))
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["billing", "flaky", "secure-api", "shop", "vault"]);
    let shop = spec.apps.iter().find(|a| a.name == "shop").expect("shop");
    let group = groups
        .iter()
        .find(|g| g["labels"]["cf_app_name"] == "shop")
        .expect("shop group");
    assert_eq!(
        group["targets"],
        serde_json::json!(["promfetcher.sys.test.example:443"])
    );
    let labels = &group["labels"];
    assert_eq!(
        labels["__metrics_path__"],
        format!("/v1/apps/{}/metrics", shop.app_guid)
    );
    assert_eq!(labels["__scheme__"], "https");
    assert_eq!(labels["cf_organization_name"], "acme");
    assert_eq!(labels["cf_space_name"], "dev");
    assert_eq!(labels["cf_organization_id"], shop.org_guid.as_str());
    assert_eq!(labels["cf_space_id"], shop.space_guid.as_str());
    assert_eq!(labels["cf_app_id"], shop.app_guid.as_str());
    harness.stop().await;
}

/// With `metrics_auth` on, as the README's scrape config shows it: Prometheus presents the
/// credentials both to discovery and to the scrapes.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Prometheus: run scripts/test-all"]
async fn prometheus_discovers_and_scrapes_every_app_through_promfetcher() {
    let port = free_port();
    let base_url = format!("http://127.0.0.1:{port}");
    let harness = Harness::start_with(FoundationSpec::dev_default(), |config| {
        config.port = port;
        config.base_url = base_url.clone();
        config.metrics_auth.user = "prometheus".into();
        config.metrics_auth.pass = Secret::new("scrape-s3cret");
    })
    .await;
    let basic_auth = "basic_auth: {username: prometheus, password: scrape-s3cret}";

    let prometheus = Prometheus::start(&format!(
        "  - job_name: cf\n    honor_labels: true\n    {basic_auth}\n    http_sd_configs:\n      \
         - url: {base_url}/v1/sd\n        refresh_interval: 1s\n        {basic_auth}\n"
    ))
    .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let healthy = ["billing", "shop", "vault"];
    loop {
        let up = prometheus.query("up == 1").await.unwrap_or_default();
        let apps: Vec<String> = up
            .iter()
            .filter_map(|s| s["metric"]["cf_app_name"].as_str().map(String::from))
            .collect();
        if healthy.iter().all(|app| apps.iter().any(|a| a == app)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "prometheus did not report up == 1 for {healthy:?} within 30 s; up: {up:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    let series = prometheus
        .query("http_requests_total{app_name=\"shop\"}")
        .await
        .unwrap_or_default();
    assert!(!series.is_empty(), "no merged shop series in prometheus");
    let shop = harness
        .foundation
        .spec()
        .apps
        .iter()
        .find(|a| a.name == "shop")
        .expect("shop");
    let indexes: std::collections::BTreeSet<&str> = series
        .iter()
        .filter_map(|s| s["metric"]["index"].as_str())
        .collect();
    assert_eq!(indexes.len(), 3, "one series per instance: {series:?}");
    for sample in &series {
        let labels = &sample["metric"];
        assert_eq!(labels["organization_name"], "acme", "{labels}");
        assert_eq!(labels["space_name"], "dev", "{labels}");
        assert_eq!(labels["app_id"], shop.app_guid.as_str(), "{labels}");
        assert_eq!(labels["cf_app_name"], "shop", "{labels}");
    }
    harness.stop().await;
}

#[tokio::test]
async fn routes_and_sd_answer_503_before_the_first_route_table() {
    use promfetcher::server::Server;
    use promfetcher::settings::Settings;
    use simulated_foundation::{Foundation, GorouterMode};

    let foundation = Foundation::start(FoundationSpec::dev_default())
        .await
        .expect("foundation starts");
    foundation.set_gorouter_mode(GorouterMode::Status(500));
    let mut config = common::config_for(&foundation);
    config.broker.user = BROKER_USER.into();
    config.broker.pass = Secret::new(BROKER_PASS);
    let server = Server::start(&Settings::from_config(&config).expect("the test config is valid"))
        .await
        .expect("promfetcher starts");
    let harness = Harness::around(foundation, server);

    let sd = harness.get("/v1/sd").await;
    assert_eq!(sd.status(), 503);
    let unauthenticated = harness.get("/routes").await;
    assert_eq!(unauthenticated.status(), 401);
    let routes = harness
        .client
        .get(format!("{}/routes", harness.base))
        .basic_auth(BROKER_USER, Some(BROKER_PASS))
        .send()
        .await
        .expect("answers");
    assert_eq!(routes.status(), 503);

    harness.foundation.set_gorouter_mode(GorouterMode::Normal);
    harness.wait_ready().await;
    assert_eq!(harness.get("/v1/sd").await.status(), 200);
    harness.stop().await;
}
