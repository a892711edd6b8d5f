//! External exporters end to end: a real promfetcher on 127.0.0.1:0 against the simulated
//! foundation and its exporter, which echoes the query parameters it is asked with. What a user
//! sees: the exporter's samples with the app's labels and correctly templated parameters, left
//! out on `only-app-metrics`, a dead exporter as an error sample beside complete instances, no
//! caller credential sent to it, and a 404 app rescued by an exporter's samples.

use std::time::Duration;

use crate::common::{self, assert_promtool_accepts, samples_named, Harness};
use promfetcher::config::ExternalExporterConfig;
use promfetcher::server::dev_mode::{dev_exporter_config, DEV_EXPORTER_NAME};
use simulated_foundation::{AppSpec, FoundationSpec, InstanceSpec, DEV_EXPORTER_PATH};

/// The labels promfetcher appends to the samples of an exporter asked about `app`, as written.
fn exporter_labels(h: &Harness, app: &str, exporter: &str) -> String {
    let app = h.foundation.spec().app(app).expect("app in spec");
    format!(
        "organization_id=\"{}\",space_id=\"{}\",app_id=\"{}\",organization_name=\"{}\",\
         space_name=\"{}\",app_name=\"{}\",external_exporter=\"{exporter}\"",
        app.org_guid, app.space_guid, app.app_guid, app.org, app.space, app.name
    )
}

/// The dev foundation with its exporter configured as `promfetcher dev` does.
async fn with_dev_exporter(spec: FoundationSpec) -> Harness {
    Harness::start_configured(spec, |foundation, config| {
        config.external_exporters = vec![dev_exporter_config(foundation)];
    })
    .await
}

#[tokio::test]
#[ignore = "needs promtool and Python prometheus_client: run scripts/test-all"]
async fn exporter_samples_carry_the_app_labels_and_the_templated_params() {
    let h = with_dev_exporter(FoundationSpec::dev_default()).await;
    let body = h.merged("/v1/apps/acme/dev/shop/metrics").await;
    let guid = &h.foundation.spec().app("shop").unwrap().app_guid;
    let labels = exporter_labels(&h, "shop", DEV_EXPORTER_NAME);

    // params in key order, each rendered for the app and echoed back decoded
    assert_eq!(
        samples_named(&body, "dev_exporter_query_param"),
        [
            format!("dev_exporter_query_param{{position=\"0\",param=\"app\",value=\"acme/dev/shop\",{labels}}} 1"),
            format!("dev_exporter_query_param{{position=\"1\",param=\"target\",value=\"{guid}\",{labels}}} 1"),
        ],
        "{body}"
    );
    // on the wire: percent-encoded, asked once for the answer, at the exporter's own path
    let asked: Vec<String> = h
        .foundation
        .exporter_requests()
        .into_iter()
        .map(|r| r.path_and_query)
        .collect();
    assert_eq!(
        asked,
        [format!(
            "{DEV_EXPORTER_PATH}?app=acme%2Fdev%2Fshop&target={guid}"
        )]
    );
    // the exporter's status beside the three instances'
    let up = samples_named(&body, "promfetcher_up");
    assert_eq!(up.len(), 4, "{body}");
    assert!(up.contains(&format!("promfetcher_up{{{labels}}} 1").as_str()));
    assert!(up.iter().all(|l| l.ends_with(" 1")), "{up:?}");
    assert_eq!(samples_named(&body, "http_requests_total").len(), 6);
    assert_promtool_accepts(&body);

    let (_, openmetrics) = h
        .merged_accepting(
            "/v1/apps/acme/dev/shop/metrics",
            "application/openmetrics-text;version=1.0.0",
        )
        .await;
    common::assert_openmetrics_accepts(&openmetrics);
    assert!(openmetrics.contains(&format!("dev_exporter_requests_total{{{labels}}} 2")));
    h.stop().await;
}

#[tokio::test]
async fn only_app_metrics_leaves_the_exporters_out_even_while_metrics_runs() {
    // slow instances, so that both requests are in flight together and could share a fan-out
    let slow = AppSpec::new("acme", "dev", "slow").with_instances(vec![
        InstanceSpec::healthy()
            .with_delay(
                Duration::from_millis(300)
            );
        2
    ]);
    let h = with_dev_exporter(FoundationSpec::dev_default().with_app(slow)).await;
    let (all, only) = tokio::join!(
        h.merged("/v1/apps/acme/dev/slow/metrics"),
        h.merged("/v1/apps/acme/dev/slow/only-app-metrics"),
    );
    assert_eq!(samples_named(&all, "dev_exporter_requests_total").len(), 1);
    assert!(!only.contains("dev_exporter"), "{only}");
    assert!(!only.contains("external_exporter="), "{only}");
    assert_eq!(samples_named(&only, "promfetcher_up").len(), 2, "{only}");

    for form in [
        "/v2/apps/acme/dev/shop/only-app-metrics",
        "/v1/apps/only-app-metrics?app=acme/dev/shop",
    ] {
        let body = h.merged(form).await;
        assert!(!body.contains("external_exporter="), "{form}: {body}");
    }
    assert_eq!(
        h.foundation.exporter_requests().len(),
        1,
        "only the /metrics answer asked the exporter"
    );
    h.stop().await;
}

#[tokio::test]
#[ignore = "needs promtool: run scripts/test-all"]
async fn a_dead_exporter_is_an_error_sample_and_the_instances_are_complete() {
    // bound but never listening: connections are refused
    let dead = tokio::net::TcpSocket::new_v4().unwrap();
    dead.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let dead_addr = dead.local_addr().unwrap();
    let h = Harness::start_configured(FoundationSpec::dev_default(), |foundation, config| {
        config.external_exporters = vec![
            ExternalExporterConfig {
                name: "dead".into(),
                host: dead_addr.to_string(),
                ..ExternalExporterConfig::default()
            },
            dev_exporter_config(foundation),
        ];
    })
    .await;
    let body = h.merged("/v1/apps/acme/dev/shop/metrics").await;
    let labels = exporter_labels(&h, "shop", "dead");
    assert_eq!(
        samples_named(&body, "promfetcher_scrape_error"),
        [format!(
            "promfetcher_scrape_error{{error=\"connect\",{labels}}} 1"
        )],
        "{body}"
    );
    let up = samples_named(&body, "promfetcher_up");
    assert!(up.contains(&format!("promfetcher_up{{{labels}}} 0").as_str()));
    assert_eq!(up.iter().filter(|l| l.ends_with(" 1")).count(), 4, "{up:?}");
    // every instance's samples and the live exporter's are all there
    assert_eq!(samples_named(&body, "http_requests_total").len(), 6);
    assert_eq!(samples_named(&body, "process_memory_bytes").len(), 3);
    assert_eq!(samples_named(&body, "dev_exporter_requests_total").len(), 1);
    assert_promtool_accepts(&body);

    let own = h.get("/metrics").await.text().await.unwrap();
    assert!(
        own.contains(
            "promfetcher_external_exporter_scrapes_total{external_exporter=\"dead\",outcome=\"connect\"} 1"
        ),
        "{own}"
    );
    drop(dead);
    h.stop().await;
}

#[tokio::test]
async fn callers_credentials_reach_the_instances_but_never_the_exporter() {
    let h = with_dev_exporter(FoundationSpec::dev_default()).await;
    let response = h
        .client
        .get(format!(
            "{}/v1/apps/acme/dev/secure-api/metrics?metric_path=/actuator/prometheus",
            h.base
        ))
        .basic_auth("metrics", Some("s3cret"))
        .header("Cookie", "session=abc")
        .header("X-Scope-OrgID", "tenant-1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    assert_eq!(
        samples_named(&body, "http_requests_total").len(),
        4,
        "{body}"
    );
    assert_eq!(samples_named(&body, "dev_exporter_requests_total").len(), 1);

    let instance = &h.foundation.requests_seen("secure-api", 0)[0];
    assert!(instance.header("authorization").is_some());
    let exporter = &h.foundation.exporter_requests()[0];
    for header in [
        "authorization",
        "cookie",
        "x-scope-orgid",
        "x-forwarded-for",
    ] {
        assert_eq!(
            exporter.header(header),
            None,
            "{header} sent to the exporter"
        );
    }
    assert_eq!(exporter.header("x-promfetcher-scrapping"), Some("true"));
    h.stop().await;
}

#[tokio::test]
async fn an_exporter_with_samples_answers_where_every_instance_answers_404() {
    let h = with_dev_exporter(FoundationSpec::dev_default()).await;
    // the exporter keeps its own path: metric_path only moves the instances to a missing one
    let body = h
        .merged("/v1/apps/acme/dev/shop/metrics?metric_path=/not-here")
        .await;
    assert_eq!(samples_named(&body, "dev_exporter_query_param").len(), 2);
    let errors = samples_named(&body, "promfetcher_scrape_error");
    assert_eq!(errors.len(), 3, "{body}");
    assert!(errors.iter().all(|l| l.contains("error=\"http_4xx\"")));

    let response = h
        .get("/v1/apps/acme/dev/shop/only-app-metrics?metric_path=/not-here")
        .await;
    assert_eq!(response.status(), 406);
    h.stop().await;
}

#[tokio::test]
#[ignore = "needs promtool: run scripts/test-all"]
async fn an_exporter_is_asked_once_per_app_behind_a_shared_route() {
    let route = "shared.apps.dev.local";
    let app = |name: &str| {
        AppSpec::new("acme", "dev", name)
            .with_routes([route])
            .with_instances(vec![InstanceSpec::healthy(); 2])
    };
    let spec = FoundationSpec::dev_default()
        .with_app(app("blue"))
        .with_app(app("green"));
    let h = with_dev_exporter(spec).await;
    let body = h.merged(&format!("/v1/apps/{route}/metrics")).await;
    for name in ["blue", "green"] {
        let labels = exporter_labels(&h, name, DEV_EXPORTER_NAME);
        assert!(
            body.contains(&format!("value=\"acme/dev/{name}\",{labels}}} 1")),
            "{name}: {body}"
        );
    }
    assert_eq!(h.foundation.exporter_requests().len(), 2);
    assert_eq!(samples_named(&body, "promfetcher_up").len(), 6);
    assert_promtool_accepts(&body);

    // a routing-API route has no Cloud Foundry tags: it names no app to ask about
    let legacy = h.merged("/v1/apps/legacy.apps.dev.local/metrics").await;
    assert!(!legacy.contains("external_exporter="), "{legacy}");
    assert_eq!(h.foundation.exporter_requests().len(), 2);
    h.stop().await;
}
