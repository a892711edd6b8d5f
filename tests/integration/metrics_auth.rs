//! Inbound auth on the metrics endpoints (`metrics_auth`) against the simulated foundation:
//! without, or with wrong, credentials every metrics and discovery URL form answers 401 with
//! a challenge, also behind percent-encoded path tricks; the right basic credentials or bearer
//! token get the answer; the user guide stays open and `/routes` and the broker keep the
//! broker's credentials; the instances never see promfetcher's credentials.

use crate::common::{samples_named, Harness};
use promfetcher::config::{MetricsAuthConfig, Secret};
use simulated_foundation::FoundationSpec;

const USER: &str = "metrics";
/// The same credentials the `secure-api` instances demand: forwarding them would be noticed.
const PASS: &str = "s3cret";
const TOKEN: &str = "bearer-t0ken-for-prometheus";
const BROKER_USER: &str = "broker-admin";
const BROKER_PASS: &str = "broker-pass";

/// The guarded URL forms, each of which answers 200 with the right credentials.
const GUARDED: [&str; 7] = [
    "/v1/apps/acme/dev/shop/metrics",
    "/v1/apps/acme/dev/shop/diagnosis",
    "/v2/apps/acme/dev/shop/only-app-metrics",
    "/v1/apps/metrics?app=acme/dev/shop",
    "/v1/apps/shop.apps.dev.local/metrics",
    "/v1/sd",
    "/metrics",
];

async fn start() -> Harness {
    Harness::start_with(FoundationSpec::dev_default(), |config| {
        config.metrics_auth = MetricsAuthConfig {
            user: USER.into(),
            pass: Secret::new(PASS),
            bearer_token: Secret::new(TOKEN),
        };
        config.broker.user = BROKER_USER.into();
        config.broker.pass = Secret::new(BROKER_PASS);
    })
    .await
}

enum Caller {
    Anonymous,
    Basic(&'static str, &'static str),
    Bearer(&'static str),
}

async fn get_as(harness: &Harness, path: &str, caller: &Caller) -> reqwest::Response {
    let request = harness.client.get(format!("{}{}", harness.base, path));
    let request = match caller {
        Caller::Anonymous => request,
        Caller::Basic(user, pass) => request.basic_auth(user, Some(pass)),
        Caller::Bearer(token) => request.bearer_auth(token),
    };
    request.send().await.expect("promfetcher answers")
}

async fn assert_refused(harness: &Harness, path: &str, caller: &Caller) {
    let response = get_as(harness, path, caller).await;
    assert_eq!(response.status(), 401, "{path}");
    let challenges: Vec<&str> = response
        .headers()
        .get_all("www-authenticate")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    assert!(
        challenges.iter().any(|c| c.starts_with("Basic ")),
        "{path}: {challenges:?}"
    );
    assert!(
        challenges.iter().any(|c| c.starts_with("Bearer ")),
        "{path}: {challenges:?}"
    );
    let body = response.text().await.unwrap();
    assert!(body.contains("metrics_auth"), "{body}");
}

#[tokio::test]
async fn metrics_and_discovery_need_the_metrics_credentials() {
    let harness = start().await;
    for path in GUARDED {
        for caller in [
            Caller::Anonymous,
            Caller::Basic(USER, "wrong"),
            Caller::Basic("someone", PASS),
            Caller::Basic(BROKER_USER, BROKER_PASS),
            Caller::Bearer("wrong-token"),
            Caller::Bearer(PASS),
        ] {
            assert_refused(&harness, path, &caller).await;
        }
        for caller in [Caller::Basic(USER, PASS), Caller::Bearer(TOKEN)] {
            let response = get_as(&harness, path, &caller).await;
            assert_eq!(response.status(), 200, "{path}");
        }
    }
    let merged = get_as(&harness, GUARDED[0], &Caller::Bearer(TOKEN))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(
        samples_named(&merged, "promfetcher_up").len(),
        3,
        "{merged}"
    );
    harness.stop().await;
}

#[tokio::test]
async fn percent_encoded_paths_are_guarded_too() {
    let harness = start().await;
    for path in [
        "/%761/apps/acme/dev/shop/metrics",
        "/v1/%61pps/acme/dev/shop/metrics",
        "/v1%2Fapps/acme/dev/shop/metrics",
        "/%76%31/sd",
        "/v1/%73d",
        "/%6Detrics",
    ] {
        assert_refused(&harness, path, &Caller::Anonymous).await;
    }
    harness.stop().await;
}

#[tokio::test]
async fn the_guide_stays_open_and_routes_and_broker_keep_the_broker_credentials() {
    let harness = start().await;
    assert_eq!(
        get_as(&harness, "/doc", &Caller::Anonymous).await.status(),
        200
    );
    for path in ["/routes", "/broker/v2/catalog"] {
        let metrics_caller = get_as(&harness, path, &Caller::Basic(USER, PASS)).await;
        assert_eq!(metrics_caller.status(), 401, "{path}");
    }
    assert_eq!(
        get_as(
            &harness,
            "/routes",
            &Caller::Basic(BROKER_USER, BROKER_PASS)
        )
        .await
        .status(),
        200
    );
    let catalog = harness
        .client
        .get(format!("{}/broker/v2/catalog", harness.base))
        .basic_auth(BROKER_USER, Some(BROKER_PASS))
        .header("X-Broker-API-Version", "2.17")
        .send()
        .await
        .unwrap();
    assert_eq!(catalog.status(), 200);
    harness.stop().await;
}

#[tokio::test]
async fn instances_never_receive_the_metrics_credentials() {
    let harness = start().await;
    // secure-api's instances demand exactly metrics/s3cret: had promfetcher forwarded the
    // caller's credentials, they would answer 200
    let body = get_as(
        &harness,
        "/v1/apps/acme/dev/secure-api/metrics?metric_path=/actuator/prometheus",
        &Caller::Basic(USER, PASS),
    )
    .await
    .text()
    .await
    .unwrap();
    let errors = samples_named(&body, "promfetcher_scrape_error");
    assert_eq!(errors.len(), 2, "{body}");
    assert!(
        errors.iter().all(|l| l.contains("error=\"http_4xx\"")),
        "{body}"
    );

    let response = harness
        .client
        .get(format!("{}/v1/apps/acme/dev/shop/metrics", harness.base))
        .bearer_auth(TOKEN)
        .header("X-Tenant", "acme")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    for (app, instances) in [("secure-api", 2), ("shop", 3)] {
        for index in 0..instances {
            let seen = harness.foundation.requests_seen(app, index);
            assert!(!seen.is_empty(), "{app}/{index} was not scraped");
            for request in &seen {
                assert_eq!(request.header("authorization"), None, "{app}/{index}");
            }
        }
    }
    // other caller headers still travel
    let shop = harness.foundation.requests_seen("shop", 0);
    assert_eq!(shop.last().unwrap().header("x-tenant"), Some("acme"));
    harness.stop().await;
}
