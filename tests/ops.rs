//! The operator endpoints end to end against the simulated foundation: `GET /routes` (the route
//! table behind the broker's credentials).

mod common;

use common::Harness;
use promfetcher::config::Secret;
use promfetcher::dev::FoundationSpec;

const BROKER_USER: &str = "broker-admin";
const BROKER_PASS: &str = "broker-s3cret";

async fn start() -> Harness {
    Harness::start_with(FoundationSpec::dev_default(), |config| {
        config.broker.user = BROKER_USER.into();
        config.broker.pass = Secret::new(BROKER_PASS);
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
