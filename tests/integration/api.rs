//! The merged-metrics API end to end: a real promfetcher on 127.0.0.1:0 against the simulated
//! foundation. Every URL form, the labels, what is forwarded to instances, hostile
//! `metric_path` values, each failure reason, and the answer's format.

use std::time::{Duration, Instant};

use crate::common::hostile::{Hostile, HostileInstance};
use crate::common::{
    assert_openmetrics_accepts, assert_promtool_accepts, samples, samples_named, scrape_error_of,
    Harness,
};
use simulated_foundation::{AppSpec, Behaviour, FoundationSpec, InstanceSpec};

const SHOP_GUID_QUERY: &str = "shop"; // looked up through the foundation's spec below

fn app(name: &str, instances: Vec<InstanceSpec>) -> AppSpec {
    let template = &FoundationSpec::dev_default().apps[0];
    let number = name.bytes().map(u32::from).sum::<u32>();
    AppSpec {
        name: name.to_string(),
        app_guid: format!("{number:08x}-0000-4000-8000-000000000001"),
        routes: vec![format!("{name}.apps.dev.local")],
        instances,
        ..template.clone()
    }
}

fn spec_with(apps: Vec<AppSpec>) -> FoundationSpec {
    FoundationSpec {
        apps,
        ..FoundationSpec::dev_default()
    }
}

fn guid_of(harness: &Harness, name: &str) -> String {
    harness
        .foundation
        .spec()
        .apps
        .iter()
        .find(|a| a.name == name)
        .map(|a| a.app_guid.clone())
        .expect("app in spec")
}

#[tokio::test]
async fn every_url_form_answers_with_every_instance() {
    let h = Harness::start(FoundationSpec::dev_default()).await;
    let guid = guid_of(&h, SHOP_GUID_QUERY);
    let forms = [
        "/v1/apps/acme/dev/shop/metrics".to_string(),
        format!("/v1/apps/{guid}/metrics"),
        "/v1/apps/shop.apps.dev.local/metrics".to_string(),
        "/v1/apps/shop.apps.dev.local%2Fapi/metrics".to_string(),
        "/v1/apps/metrics?app=acme/dev/shop".to_string(),
        format!("/v1/apps/metrics?app={guid}"),
        "/v1/apps/metrics?route_url=shop.apps.dev.local".to_string(),
        "/v1/apps/acme/dev/shop/only-app-metrics".to_string(),
        "/v1/apps/only-app-metrics?app=acme/dev/shop".to_string(),
        "/v2/apps/acme/dev/shop/metrics".to_string(),
        format!("/v2/apps/{guid}/metrics"),
        "/v2/apps/metrics?route_url=shop.apps.dev.local".to_string(),
    ];
    let mut answers = Vec::new();
    for form in &forms {
        let body = h.merged(form).await;
        let up = samples_named(&body, "promfetcher_up");
        assert_eq!(
            up.len(),
            3,
            "{form}: one promfetcher_up per instance\n{body}"
        );
        assert!(up.iter().all(|l| l.ends_with(" 1")), "{form}: {up:?}");
        for index in 0..3 {
            let address = h.foundation.instance_addr("shop", index);
            assert!(
                body.contains(&format!("instance=\"{address}\"")),
                "{form}: instance {index} missing"
            );
        }
        // the same app whatever the form: same series (durations aside)
        let series: Vec<String> = samples(&body)
            .into_iter()
            .filter(|l| !l.starts_with("promfetcher_scrape_duration_seconds"))
            .map(str::to_string)
            .collect();
        answers.push(series);
    }
    for (form, answer) in forms.iter().zip(&answers).skip(1) {
        assert_eq!(answer, &answers[0], "{form} differs from {}", forms[0]);
    }
    h.stop().await;
}

#[tokio::test]
async fn every_sample_carries_the_nine_labels_and_app_labels_cannot_spoof_them() {
    let h = Harness::start(FoundationSpec::dev_default()).await;
    let body = h.merged("/v1/apps/acme/dev/shop/metrics").await;
    let app = h
        .foundation
        .spec()
        .apps
        .iter()
        .find(|a| a.name == "shop")
        .unwrap()
        .clone();
    for line in samples(&body) {
        for label in [
            format!("organization_id=\"{}\"", app.org_guid),
            format!("space_id=\"{}\"", app.space_guid),
            format!("app_id=\"{}\"", app.app_guid),
            "organization_name=\"acme\"".to_string(),
            "space_name=\"dev\"".to_string(),
            "app_name=\"shop\"".to_string(),
        ] {
            assert!(line.contains(&label), "{line} lacks {label}");
        }
        assert!(line.contains("index=\""), "{line}");
        assert!(line.contains("instance_id=\""), "{line}");
        assert!(line.contains("instance=\"127.0.0.1:"), "{line}");
    }
    assert!(
        !body.contains("should-be-replaced"),
        "app's instance label kept:\n{body}"
    );
    assert!(
        !body.contains("spoofed"),
        "app's app_name label kept:\n{body}"
    );
    let second = h.foundation.instance_addr("shop", 1);
    let memory = samples_named(&body, "process_memory_bytes");
    assert_eq!(memory.len(), 3, "{memory:?}");
    assert!(memory[1].contains(&format!(
        "index=\"1\",instance_id=\"1\",instance=\"{second}\""
    )));
    h.stop().await;
}

/// The dev foundation's apps whose answers are checked by promtool and the OpenMetrics parser.
const CHECKED_APPS: [&str; 4] = [
    "acme/dev/shop",
    "acme/dev/billing",
    "acme/dev/flaky",
    "acme/dev/vault",
];

#[tokio::test]
#[ignore = "needs promtool: run scripts/test-all"]
async fn the_answer_is_one_valid_exposition_in_a_stable_order() {
    let h = Harness::start(FoundationSpec::dev_default()).await;
    for app in CHECKED_APPS {
        let path = format!("/v1/apps/{app}/metrics");
        let first = h.merged(&path).await;
        assert_promtool_accepts(&first);
        let helps = first.lines().filter(|l| l.starts_with("# HELP ")).count();
        let types: Vec<&str> = first.lines().filter(|l| l.starts_with("# TYPE ")).collect();
        let mut unique = types.clone();
        unique.dedup();
        assert_eq!(unique.len(), types.len(), "{app}: a family written twice");
        assert!(helps <= types.len());
        assert!(!first.contains("\n\n"), "{app}: blank line in the answer");
        let second = h.merged(&path).await;
        let order = |body: &str| -> Vec<String> {
            body.lines()
                .filter(|l| l.starts_with("# TYPE "))
                .map(str::to_string)
                .collect()
        };
        assert_eq!(order(&first), order(&second), "{app}: family order changed");
    }
    h.stop().await;
}

#[tokio::test]
async fn openmetrics_instances_keep_counter_types_and_help() {
    let h = Harness::start(FoundationSpec::dev_default()).await;
    let body = h.merged("/v1/apps/acme/dev/billing/metrics").await;
    assert!(
        body.contains("# TYPE http_requests_total counter"),
        "{body}"
    );
    assert!(
        body.lines()
            .any(|l| l.starts_with("# HELP http_requests_total ")),
        "{body}"
    );
    assert!(!body.contains("# EOF"), "{body}");
    assert_eq!(samples_named(&body, "promfetcher_up").len(), 2);
    h.stop().await;
}

#[tokio::test]
async fn tls_instances_are_verified_against_their_certificate_name() {
    let h = Harness::start(FoundationSpec::dev_default()).await;
    let body = h.merged("/v1/apps/acme/dev/vault/metrics").await;
    let up = samples_named(&body, "promfetcher_up");
    assert_eq!(up.len(), 2, "{body}");
    assert!(up.iter().all(|l| l.ends_with(" 1")), "{body}");
    h.stop().await;
}

#[tokio::test]
async fn caller_credentials_and_end_to_end_headers_reach_the_instances() {
    let h = Harness::start(FoundationSpec::dev_default()).await;
    let response = h
        .client
        .get(format!(
            "{}/v1/apps/acme/dev/secure-api/metrics?metric_path=/actuator/prometheus",
            h.base
        ))
        .basic_auth("metrics", Some("s3cret"))
        .header("X-Tenant", "blue")
        .header("Connection", "X-Hop-Secret")
        .header("X-Hop-Secret", "must-not-travel")
        .header("Proxy-Authorization", "Basic bm9wZTpub3Bl")
        .header("X-Prometheus-Scrape-Timeout-Seconds", "10")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    let up = samples_named(&body, "promfetcher_up");
    assert!(
        up.iter().all(|l| l.ends_with(" 1")),
        "credentials not forwarded:\n{body}"
    );
    let seen = h.foundation.requests_seen("secure-api", 0);
    let request = seen.last().expect("instance 0 was scraped");
    let header = |name: &str| {
        request
            .headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(request.path_and_query, "/actuator/prometheus");
    assert!(header("authorization").is_some_and(|v| v.starts_with("Basic ")));
    assert_eq!(header("x-tenant"), Some("blue"));
    assert_eq!(header("host"), Some("secure-api.apps.dev.local"));
    assert_eq!(header("x-promfetcher-scrapping"), Some("true"));
    assert_eq!(header("x-forwarded-proto"), Some("http"));
    assert_eq!(header("x-forwarded-for"), Some("127.0.0.1"));
    assert!(header("accept").is_some_and(|v| v.starts_with("application/openmetrics-text")));
    assert!(header("accept-encoding").is_some_and(|v| v.contains("gzip")));
    let timeout: f64 = header("x-prometheus-scrape-timeout-seconds")
        .expect("timeout header")
        .parse()
        .unwrap();
    assert!(timeout > 8.0 && timeout < 10.0, "timeout {timeout}");
    assert_eq!(
        header("x-hop-secret"),
        None,
        "a header named in Connection travelled"
    );
    assert_eq!(header("proxy-authorization"), None);

    // without the caller's credentials the instances refuse, and the answer says so per instance
    let body = h
        .merged("/v1/apps/acme/dev/secure-api/metrics?metric_path=/actuator/prometheus")
        .await;
    let errors = samples_named(&body, "promfetcher_scrape_error");
    assert_eq!(errors.len(), 2, "{body}");
    assert!(
        errors.iter().all(|l| l.contains("error=\"http_4xx\"")),
        "{errors:?}"
    );
    h.stop().await;
}

#[tokio::test]
async fn hostile_metric_paths_are_refused_and_reach_no_instance() {
    let h = Harness::start(FoundationSpec::dev_default()).await;
    let hostile = [
        "@evil.example/x",
        "//evil.example/x",
        "http://evil.example/x",
        "%5Cevil.example",
        "/a/../../admin",
        "/%2e%2e/admin",
        "/x%0d%0aHost:%20evil",
        "/x%00",
    ];
    let before = h.foundation.requests_seen("shop", 0).len();
    for value in hostile {
        let encoded: String = url::form_urlencoded::byte_serialize(value.as_bytes()).collect();
        let response = h
            .get(&format!(
                "/v1/apps/acme/dev/shop/metrics?metric_path={encoded}"
            ))
            .await;
        let status = response.status();
        let body = response.text().await.unwrap();
        assert_eq!(status, 400, "{value:?} was accepted: {body}");
        assert!(
            body.starts_with("400 Bad Request: invalid metric_path: "),
            "{body}"
        );
        assert_eq!(body.trim_end().lines().count(), 1, "{body}");
    }
    assert_eq!(h.foundation.requests_seen("shop", 0).len(), before);
    // a path without its leading slash is fine, as with the original
    let body = h
        .merged("/v1/apps/acme/dev/shop/metrics?metric_path=metrics")
        .await;
    assert!(samples_named(&body, "promfetcher_up")
        .iter()
        .all(|l| l.ends_with(" 1")));
    h.stop().await;
}

#[tokio::test]
#[ignore = "needs promtool: run scripts/test-all"]
async fn each_failing_instance_is_reported_with_its_reason_and_the_others_are_complete() {
    let failing = vec![
        InstanceSpec::healthy(),
        InstanceSpec {
            behaviour: Behaviour::Down,
            ..InstanceSpec::healthy()
        },
        InstanceSpec {
            behaviour: Behaviour::Status(503),
            ..InstanceSpec::healthy()
        },
        InstanceSpec {
            behaviour: Behaviour::Status(403),
            ..InstanceSpec::healthy()
        },
        InstanceSpec {
            behaviour: Behaviour::Garbage,
            ..InstanceSpec::healthy()
        },
        InstanceSpec {
            behaviour: Behaviour::RedirectTo("http://elsewhere.example:1/metrics".into()),
            ..InstanceSpec::healthy()
        },
        InstanceSpec {
            delay: Duration::from_secs(5),
            ..InstanceSpec::healthy()
        },
        InstanceSpec {
            extra_series: 20_000,
            ..InstanceSpec::healthy()
        },
    ];
    let h = Harness::start_with(spec_with(vec![app("mixed", failing)]), |c| {
        c.scrape.max_body_size = 256 * 1024;
    })
    .await;
    let started = Instant::now();
    let response = h
        .client
        .get(format!("{}/v1/apps/acme/dev/mixed/metrics", h.base))
        .header("X-Prometheus-Scrape-Timeout-Seconds", "2")
        .send()
        .await
        .unwrap();
    let elapsed = started.elapsed();
    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    assert!(
        elapsed < Duration::from_secs(2),
        "answer took {elapsed:?}, beyond the caller's timeout"
    );
    let reason_of =
        |index: usize| scrape_error_of(&body, h.foundation.instance_addr("mixed", index));
    let expected = [
        None,
        Some("connect"),
        Some("http_5xx"),
        Some("http_4xx"),
        Some("parse"),
        Some("redirect"),
        Some("timeout"),
        Some("too_large"),
    ];
    for (index, want) in expected.iter().enumerate() {
        assert_eq!(
            reason_of(index).as_deref(),
            *want,
            "instance {index}\n{body}"
        );
    }
    // the healthy instance's samples are all there
    let healthy = h.foundation.instance_addr("mixed", 0);
    assert!(samples_named(&body, "http_requests_total")
        .iter()
        .any(|l| l.contains(&format!("instance=\"{healthy}\""))));
    let up: Vec<&str> = samples_named(&body, "promfetcher_up");
    assert_eq!(up.len(), 8);
    assert_eq!(up.iter().filter(|l| l.ends_with(" 1")).count(), 1, "{up:?}");
    assert_promtool_accepts(&body);
    h.stop().await;
}

#[tokio::test]
async fn status_codes_for_missing_unknown_and_pathless_apps() {
    let h = Harness::start(FoundationSpec::dev_default()).await;
    let response = h.get("/v1/apps/metrics").await;
    assert_eq!(response.status(), 400);
    let response = h.get("/v1/apps/acme/dev/nope/metrics").await;
    assert_eq!(response.status(), 404);
    assert!(response.text().await.unwrap().contains("acme/dev/nope"));
    // a worker process is not found by name
    assert_eq!(
        h.get("/v1/apps/acme/dev/worker/metrics").await.status(),
        404
    );
    // every instance answers 404 at that path: 406 with guidance
    let response = h
        .get("/v1/apps/acme/dev/shop/metrics?metric_path=/not-here")
        .await;
    assert_eq!(response.status(), 406);
    let text = response.text().await.unwrap();
    assert!(
        text.contains("metric_path") && text.contains("cf create-service"),
        "{text}"
    );
    // those scrapes are counted like any other
    let own = h.get("/metrics").await.text().await.unwrap();
    assert!(
        own.contains("promfetcher_instance_scrapes_total{outcome=\"http_4xx\"} 3"),
        "{own}"
    );
    h.stop().await;
}

#[tokio::test]
async fn gzip_answers_keep_their_content_type() {
    let h = Harness::start(FoundationSpec::dev_default()).await;
    let response = h
        .client
        .get(format!("{}/v1/apps/acme/dev/shop/metrics", h.base))
        .header("Accept-Encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-encoding"], "gzip");
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    assert_eq!(
        response.headers()["vary"],
        "Accept, Accept-Encoding",
        "caches must key on both"
    );
    let compressed = response.bytes().await.unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::GzDecoder::new(&compressed[..]),
        &mut text,
    )
    .unwrap();
    assert_eq!(samples_named(&text, "promfetcher_up").len(), 3);

    // a caller that refuses gzip gets the plain answer
    let plain = h
        .client
        .get(format!("{}/v1/apps/acme/dev/shop/metrics", h.base))
        .header("Accept-Encoding", "gzip;q=0, identity")
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), 200);
    assert!(plain.headers().get("content-encoding").is_none());
    let body = plain.text().await.unwrap();
    assert_eq!(samples_named(&body, "promfetcher_up").len(), 3);
    h.stop().await;
}

#[tokio::test]
#[ignore = "needs promtool: run scripts/test-all"]
async fn own_metrics_carry_the_original_names_and_the_new_ones() {
    let h = Harness::start(FoundationSpec::dev_default()).await;
    h.merged("/v1/apps/acme/dev/flaky/metrics").await;
    let response = h.get("/metrics").await;
    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    for name in [
        "promfetch_metric_fetch_failed_total{",
        "promfetch_metric_fetch_success_total{",
        "promfetch_latest_time_scrape_route ",
        "promfetcher_route_table_routes ",
        "promfetcher_route_table_age_seconds ",
        "promfetcher_fan_out_duration_seconds_count 1",
        "promfetcher_requests_in_flight 0",
        "promfetcher_instance_scrapes_total{outcome=\"connect\"} 1",
        "promfetcher_instance_scrapes_total{outcome=\"success\"} 2",
    ] {
        assert!(body.contains(name), "{name} missing:\n{body}");
    }
    assert!(body.contains("# TYPE promfetch_scrape_route_failed_total counter"));
    assert_promtool_accepts(&body);
    h.stop().await;
}

/// What Prometheus 3.x sends (UTF-8 names allowed), 2.5x and 2.x before scrape_protocols.
const PROMETHEUS_3_ACCEPT: &str = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1";
const PROMETHEUS_2_ACCEPT: &str = "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
/// What Prometheus 2.0 to 2.4x send: the OpenMetrics draft 0.0.1 first.
const PROMETHEUS_2_0_ACCEPT: &str =
    "application/openmetrics-text; version=0.0.1,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
const TEXT_FIRST_ACCEPT: &str =
    "text/plain;version=0.0.4;q=0.9,application/openmetrics-text;version=1.0.0;q=0.5";

#[tokio::test]
#[ignore = "needs promtool and Python prometheus_client: run scripts/test-all"]
async fn the_answer_follows_accept_and_every_openmetrics_answer_is_strictly_valid() {
    let h = Harness::start(FoundationSpec::dev_default()).await;
    for app in CHECKED_APPS {
        let path = format!("/v1/apps/{app}/metrics");
        let (content_type, body) = h.merged_accepting(&path, PROMETHEUS_3_ACCEPT).await;
        assert_eq!(
            content_type,
            "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=allow-utf-8",
            "{app}"
        );
        assert!(body.ends_with("\n# EOF\n"), "{app}: {body}");
        let families = assert_openmetrics_accepts(&body);
        assert!(families > 2, "{app}: {families} families");
        assert_eq!(samples_named(&body, "promfetcher_up").len(), {
            let text = h.merged(&path).await;
            samples_named(&text, "promfetcher_up").len()
        });

        let (content_type, body) = h.merged_accepting(&path, PROMETHEUS_2_ACCEPT).await;
        assert_eq!(
            content_type,
            "application/openmetrics-text; version=1.0.0; charset=utf-8"
        );
        assert_openmetrics_accepts(&body);

        for accept in [TEXT_FIRST_ACCEPT, PROMETHEUS_2_0_ACCEPT] {
            let (content_type, body) = h.merged_accepting(&path, accept).await;
            assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
            assert!(!body.contains("# EOF"), "{app}");
            assert_promtool_accepts(&body);
        }
    }
    h.stop().await;
}

#[tokio::test]
#[ignore = "needs promtool and Python prometheus_client: run scripts/test-all"]
async fn utf8_names_reach_prometheus_3_quoted_and_older_callers_escaped() {
    // An instance that writes names with dots as prometheus_client does for Prometheus 3.
    let body = include_bytes!("../corpus/python-utf8.txt").to_vec();
    let instance = HostileInstance::start(Hostile::Body(body)).await;
    let spec = spec_with(vec![app(
        "dotted",
        vec![InstanceSpec::external(instance.addr())],
    )]);
    let h = Harness::start(spec).await;
    let path = "/v1/apps/acme/dev/dotted/metrics";

    let (content_type, om) = h.merged_accepting(path, PROMETHEUS_3_ACCEPT).await;
    assert!(
        content_type.ends_with("; escaping=allow-utf-8"),
        "{content_type}"
    );
    assert_openmetrics_accepts(&om);
    assert!(
        om.contains(
            "\n{\"http.server.requests_total\",\"http.route\"=\"/api/orders\",status_code=\"200\","
        ),
        "names not kept for Prometheus 3:\n{om}"
    );
    for accept in [PROMETHEUS_2_ACCEPT, TEXT_FIRST_ACCEPT] {
        let (_, answer) = h.merged_accepting(path, accept).await;
        assert!(
            answer.contains(
                "\nhttp_server_requests_total{http_route=\"/api/orders\",status_code=\"200\","
            ),
            "names not escaped for {accept}:\n{answer}"
        );
        assert!(
            !answer.contains("{\""),
            "a quoted name for {accept}:\n{answer}"
        );
    }
    assert_promtool_accepts(&h.merged(path).await);

    // promfetcher asked the instance for UTF-8 names, as Prometheus 3 does.
    let heads = instance.request_heads();
    let accept = heads[0]
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("accept:"))
        .expect("an Accept header");
    assert!(
        accept.contains("application/openmetrics-text;version=1.0.0;escaping=allow-utf-8"),
        "{accept}"
    );
    h.stop().await;
}

#[tokio::test]
async fn openmetrics_answers_keep_counters_as_counters_with_their_samples_named_as_in_text() {
    let h = Harness::start(FoundationSpec::dev_default()).await;
    let path = "/v1/apps/acme/dev/billing/metrics";
    let (_, om) = h.merged_accepting(path, PROMETHEUS_2_ACCEPT).await;
    let text = h.merged(path).await;
    assert!(om.contains("# TYPE http_requests counter\n"), "{om}");
    let series = |body: &str| -> Vec<String> {
        samples(body)
            .into_iter()
            .filter(|l| !l.starts_with("promfetcher_scrape_duration_seconds"))
            .filter(|l| !l.contains("_created"))
            .map(|l| l.split(' ').next().unwrap_or_default().to_string())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect()
    };
    assert_eq!(
        series(&om),
        series(&text),
        "the same series in both formats"
    );
    h.stop().await;
}

#[tokio::test]
async fn a_shared_answer_reaches_each_caller_in_the_encoding_it_accepts() {
    let slow = InstanceSpec {
        delay: Duration::from_millis(800),
        ..InstanceSpec::healthy()
    };
    let h = Harness::start(spec_with(vec![app("slow", vec![slow.clone(), slow])])).await;
    let url = format!("{}/v1/apps/acme/dev/slow/metrics", h.base);
    let ask = |accept_encoding: &'static str| {
        h.client
            .get(&url)
            .header("Accept-Encoding", accept_encoding)
            .header("X-Prometheus-Scrape-Timeout-Seconds", "10")
            .send()
    };
    // The first caller (gzip, as Prometheus) starts the fan-out; the others join it while the
    // instances take their 800 ms.
    let first = ask("gzip");
    let joined = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        futures_util::future::join(ask("identity"), ask("gzip")).await
    };
    let (first, (plain, second_gzip)) = futures_util::future::join(first, joined).await;
    let mut bodies = Vec::new();
    for (answer, gzipped) in [(first, true), (plain, false), (second_gzip, true)] {
        let answer = answer.expect("promfetcher answers");
        assert_eq!(answer.status(), 200);
        assert_eq!(
            answer.headers().get("content-encoding").is_some(),
            gzipped,
            "Content-Encoding as the caller accepts"
        );
        let bytes = answer.bytes().await.unwrap();
        let mut text = String::new();
        if gzipped {
            std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut text)
                .expect("a whole gzip member");
        } else {
            text = String::from_utf8(bytes.to_vec()).expect("plain text");
        }
        assert_eq!(samples_named(&text, "promfetcher_up").len(), 2, "{text}");
        bodies.push(text);
    }
    assert!(
        bodies.iter().all(|body| body == &bodies[0]),
        "one answer in both encodings"
    );
    assert_eq!(
        h.foundation.requests_seen("slow", 0).len(),
        1,
        "the three callers shared one scrape"
    );
    h.stop().await;
}

#[tokio::test]
async fn identical_concurrent_requests_share_one_scrape_but_never_across_credentials() {
    let slow = InstanceSpec {
        delay: Duration::from_millis(800),
        ..InstanceSpec::healthy()
    };
    let h = Harness::start(spec_with(vec![app("slow", vec![slow.clone(), slow])])).await;
    let url = format!("{}/v1/apps/acme/dev/slow/metrics", h.base);
    let ask = |token: &'static str| {
        h.client
            .get(&url)
            .bearer_auth(token)
            .header("X-Prometheus-Scrape-Timeout-Seconds", "10")
            .send()
    };
    let answers = futures_util::future::join_all([
        ask("team-a"),
        ask("team-a"),
        ask("team-a"),
        ask("team-b"),
    ])
    .await;
    for answer in answers {
        let answer = answer.expect("promfetcher answers");
        assert_eq!(answer.status(), 200);
        let body = answer.text().await.unwrap();
        assert_eq!(samples_named(&body, "promfetcher_up").len(), 2, "{body}");
    }

    let seen = h.foundation.requests_seen("slow", 0);
    let mut tokens: Vec<&str> = seen
        .iter()
        .filter_map(|request| {
            request
                .headers
                .iter()
                .find(|(name, _)| name == "authorization")
                .map(|(_, value)| value.as_str())
        })
        .collect();
    tokens.sort();
    assert_eq!(
        tokens,
        ["Bearer team-a", "Bearer team-b"],
        "one scrape per distinct credential"
    );

    // nothing is cached: a later request scrapes again
    let later = ask("team-a").await.unwrap();
    assert_eq!(later.status(), 200);
    assert_eq!(h.foundation.requests_seen("slow", 0).len(), 3);

    let own = h.get("/metrics").await.text().await.unwrap();
    assert!(
        own.contains("promfetcher_coalesced_requests_total 2"),
        "{own}"
    );
    h.stop().await;
}

/// A browser that signed in to `/routes` sends the broker's credentials with every request to
/// promfetcher's origin: they never reach an app's instances (a tenant could read them there).
#[tokio::test]
async fn the_brokers_credentials_never_reach_an_app() {
    let h = Harness::start(FoundationSpec::dev_default()).await;
    let dump = h
        .client
        .get(format!("{}/routes", h.base))
        .basic_auth("user", Some("password"))
        .send()
        .await
        .unwrap();
    assert_eq!(dump.status(), 200, "the test config's broker credentials");
    let response = h
        .client
        .get(format!(
            "{}/v1/apps/acme/dev/secure-api/metrics?metric_path=/actuator/prometheus",
            h.base
        ))
        .basic_auth("user", Some("password"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let seen = h.foundation.requests_seen("secure-api", 0);
    let request = seen.last().expect("instance 0 was scraped");
    assert!(
        request
            .headers
            .iter()
            .all(|(name, _)| name != "authorization"),
        "{:?}",
        request.headers
    );
    h.stop().await;
}

/// An instance whose series exploded would make the merged answer larger than
/// `scrape.max_answer_size`: it is left out, reported as `too_large`, and the other instances'
/// samples are all there.
#[tokio::test]
async fn an_instance_that_would_overflow_the_answer_is_left_out_as_too_large() {
    let spec = FoundationSpec::dev_default().with_app(
        AppSpec::new("acme", "dev", "exploded").with_instances(vec![
            InstanceSpec::healthy(),
            InstanceSpec::healthy().with_extra_series(40_000),
            InstanceSpec::healthy(),
        ]),
    );
    let h = Harness::start_with(spec, |config| {
        config.scrape.max_answer_size = 2 * 1024 * 1024;
    })
    .await;
    let body = h.merged("/v1/apps/acme/dev/exploded/metrics").await;
    assert!(body.len() < 2 * 1024 * 1024, "{} bytes", body.len());
    let error =
        |index: usize| scrape_error_of(&body, h.foundation.instance_addr("exploded", index));
    assert_eq!(error(1).as_deref(), Some("too_large"));
    assert_eq!((error(0), error(2)), (None, None));
    let up = samples_named(&body, "promfetcher_up");
    assert_eq!(up.iter().filter(|l| l.ends_with(" 1")).count(), 2, "{up:?}");
    // what the two others sent is there, nothing of the third
    for index in [0, 2] {
        let address = h.foundation.instance_addr("exploded", index);
        assert!(body.contains(&format!("instance=\"{address}\"")));
    }
    let third = format!("instance=\"{}\"", h.foundation.instance_addr("exploded", 1));
    let of_third = body.lines().filter(|l| l.contains(&third)).count();
    assert_eq!(of_third, 3, "only its up, duration and error samples");

    // the diagnosis says the same of it, and why
    let report = h
        .get("/v1/apps/acme/dev/exploded/diagnosis")
        .await
        .text()
        .await
        .unwrap();
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    let instances = report["instances"].as_array().expect("instances");
    assert_eq!(instances[1]["failure"]["reason"], "too_large", "{report}");
    let explanation = instances[1]["failure"]["explanation"].as_str().unwrap();
    assert!(
        explanation.contains("scrape.max_answer_size (2 MiB)"),
        "{explanation}"
    );
    for index in [0, 2] {
        assert_eq!(
            instances[index]["failure"],
            serde_json::Value::Null,
            "{report}"
        );
    }
    h.stop().await;
}
