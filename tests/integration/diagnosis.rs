//! The diagnosis API (`.../diagnosis`) end to end: a real promfetcher on 127.0.0.1:0 against
//! the simulated foundation. The report of a healthy app agrees with its merged metrics; each
//! URL form finds the app as `.../metrics` does; failing instances carry their reason, an
//! explanation and what to check next; the path's source is named (default, `?metric_path=`,
//! service instance, binding); an unknown app is the same 404; and neither the caller's
//! credentials nor an instance's body come back in the answer.

use std::time::Duration;

use serde_json::Value;

use crate::broker::{bind_body, osb, provision_and_bind, spec_with_app, CUSTOM_PATH};
use crate::common::chromium::DevTools;
use crate::common::dev::Dev;
use crate::common::hostile::{Hostile, HostileInstance};
use crate::common::{sample_value, samples, Harness};
use promfetcher::server::dev_mode::{dev_exporter_config, DEV_EXPORTER_NAME};
use simulated_foundation::{AppSpec, FoundationSpec, InstanceSpec};

/// GET `path` (with these extra headers), assert a JSON 200, and return the answer.
async fn diagnosis(h: &Harness, path: &str, headers: &[(&str, &str)]) -> Value {
    let text = diagnosis_text(h, path, headers).await;
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {text}"))
}

async fn diagnosis_text(h: &Harness, path: &str, headers: &[(&str, &str)]) -> String {
    let answer = get_with(h, path, headers).await;
    assert_eq!(answer.status, 200, "{path}: {}", answer.body);
    assert_eq!(answer.content_type, "application/json", "{path}");
    answer.body
}

/// What promfetcher answered.
struct Answer {
    status: u16,
    content_type: String,
    vary: String,
    body: String,
}

/// GET `path` with these extra headers.
async fn get_with(h: &Harness, path: &str, headers: &[(&str, &str)]) -> Answer {
    let mut request = h.client.get(format!("{}{}", h.base, path));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("promfetcher answers");
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    Answer {
        status: response.status().as_u16(),
        content_type: header("content-type"),
        vary: header("vary"),
        body: response.text().await.expect("body"),
    }
}

fn instances(answer: &Value) -> &Vec<Value> {
    answer["instances"].as_array().expect("instances")
}

#[tokio::test]
async fn a_healthy_app_is_reported_instance_by_instance_as_its_metrics_show_it() {
    let h = Harness::start(FoundationSpec::dev_default()).await;
    let answer = diagnosis(&h, "/v1/apps/acme/dev/shop/diagnosis", &[]).await;
    let merged = h.merged("/v1/apps/acme/dev/shop/only-app-metrics").await;

    assert_eq!(answer["found_by"], "names");
    let age = answer["route_table"]["age_seconds"].as_f64().expect("age");
    assert!((0.0..15.0).contains(&age), "route table age {age}");
    let sources = answer["route_sources"].as_array().expect("route sources");
    assert_eq!(
        sources.len(),
        1,
        "only the gorouter is configured: {answer}"
    );
    assert_eq!(sources[0]["source"], "gorouter");
    assert_eq!(sources[0]["up"], true);
    assert_eq!(sources[0]["lists_app"], true);
    let since = sources[0]["seconds_since_success"].as_f64().expect("since");
    assert!(
        (0.0..15.0).contains(&since),
        "gorouter delivered {since} s ago"
    );
    let paths = answer["metrics_paths"].as_array().expect("paths");
    assert_eq!(paths.len(), 1, "{answer}");
    assert_eq!(paths[0]["path"], "/metrics");
    assert_eq!(paths[0]["source"], "default");
    assert_eq!(paths[0]["app_name"], "acme/dev/shop");
    assert_eq!(
        (
            answer["instances_scraped"].as_u64(),
            answer["instances_failed"].as_u64()
        ),
        (Some(3), Some(0))
    );

    for (index, instance) in instances(&answer).iter().enumerate() {
        let address = h.foundation.instance_addr("shop", index).to_string();
        assert_eq!(instance["index"], index.to_string(), "{instance}");
        assert_eq!(instance["address"], address.as_str());
        assert_eq!(instance["tls_server_name"], Value::Null);
        assert_eq!(instance["status"], 200);
        assert_eq!(instance["content_type"], "text/plain");
        assert_eq!(instance["format"], "text");
        assert_eq!(instance["failure"], Value::Null);
        assert!(instance["bytes"].as_u64().unwrap_or(0) > 0, "{instance}");
        assert!(instance["families"].as_u64().unwrap_or(0) > 0, "{instance}");
        assert!(instance["duration_seconds"].as_f64().is_some());
        // The merged answer has the instance's samples plus promfetcher_up and its duration.
        let in_merged = samples(&merged)
            .iter()
            .filter(|line| line.contains(&format!("instance=\"{address}\"")))
            .count();
        assert_eq!(
            instance["samples"].as_u64(),
            Some(in_merged as u64 - 2),
            "instance {index}: {instance}\n{merged}"
        );
    }

    // The merge's figures are those of the merged answer, less promfetcher's two status
    // samples per instance; nothing is dropped.
    assert_eq!(
        answer["merge"]["samples"].as_u64(),
        Some(samples(&merged).len() as u64 - 6),
        "{answer}"
    );
    assert_eq!(answer["merge"]["dropped"], serde_json::json!([]));
    let own = h.get("/metrics").await.text().await.expect("own metrics");
    assert_eq!(
        sample_value(
            &own,
            "promfetcher_http_requests_total{kind=\"diagnosis\",status_class=\"2xx\"}"
        ),
        Some(1.0),
        "a diagnosis is counted as one"
    );
    h.stop().await;
}

#[tokio::test]
async fn every_way_of_naming_an_app_reaches_its_diagnosis() {
    let h = Harness::start(FoundationSpec::dev_default()).await;
    let guid = h
        .foundation
        .spec()
        .app("shop")
        .expect("shop")
        .app_guid
        .clone();
    let forms = [
        ("/v1/apps/acme/dev/shop/diagnosis".to_string(), "names"),
        (format!("/v1/apps/{guid}/diagnosis"), "guid"),
        (
            "/v1/apps/shop.apps.dev.local/diagnosis".to_string(),
            "route",
        ),
        (
            "/v1/apps/shop.apps.dev.local%2Fapi/diagnosis".to_string(),
            "route",
        ),
        ("/v1/apps/diagnosis?app=acme/dev/shop".to_string(), "names"),
        (format!("/v2/apps/diagnosis?app={guid}"), "guid"),
        (
            "/v2/apps/diagnosis?route_url=shop.apps.dev.local".to_string(),
            "route",
        ),
        ("/v2/apps/acme/dev/shop/diagnosis".to_string(), "names"),
    ];
    for (form, found_by) in forms {
        let answer = diagnosis(&h, &form, &[]).await;
        assert_eq!(answer["found_by"], found_by, "{form}: {answer}");
        assert_eq!(instances(&answer).len(), 3, "{form}: {answer}");
        assert_eq!(
            answer["metrics_paths"][0]["app_guid"],
            guid.as_str(),
            "{form}"
        );
    }
    h.stop().await;
}

#[tokio::test]
async fn a_down_instance_is_explained_and_the_others_are_fine() {
    let h = Harness::start(FoundationSpec::dev_default()).await;
    let answer = diagnosis(&h, "/v1/apps/acme/dev/flaky/diagnosis", &[]).await;
    assert_eq!(answer["instances_failed"], 1, "{answer}");
    let all = instances(&answer);
    for healthy in [&all[0], &all[2]] {
        assert_eq!(healthy["failure"], Value::Null, "{healthy}");
        assert_eq!(healthy["status"], 200);
    }
    let down = &all[1];
    assert_eq!(down["index"], "1");
    assert_eq!(
        down["status"],
        Value::Null,
        "no HTTP status without a connection"
    );
    assert_eq!(down["failure"]["reason"], "connect", "{down}");
    let address = h.foundation.instance_addr("flaky", 1).to_string();
    let explanation = down["failure"]["explanation"]
        .as_str()
        .expect("explanation");
    assert!(explanation.contains(&address), "{explanation}");
    assert!(down["failure"]["next_check"]
        .as_str()
        .is_some_and(|s| s.contains("cf app")));
    h.stop().await;
}

#[tokio::test]
async fn a_path_from_metric_path_is_named_and_a_wrong_one_says_how_to_set_it() {
    let h = Harness::start(FoundationSpec::dev_default()).await;
    // secure-api serves /actuator/prometheus with basic auth: the caller's credentials and
    // ?metric_path= both matter.
    let right = diagnosis(
        &h,
        "/v1/apps/acme/dev/secure-api/diagnosis?metric_path=/actuator/prometheus",
        &[("Authorization", "Basic bWV0cmljczpzM2NyZXQ=")], // metrics:s3cret
    )
    .await;
    assert_eq!(
        right["metrics_paths"][0]["source"], "metric_path",
        "{right}"
    );
    assert_eq!(right["metrics_paths"][0]["path"], "/actuator/prometheus");
    assert_eq!(right["instances_failed"], 0, "{right}");
    assert!(instances(&right)
        .iter()
        .all(|i| i["path"] == "/actuator/prometheus"));

    let without_credentials = diagnosis(
        &h,
        "/v1/apps/acme/dev/secure-api/diagnosis?metric_path=/actuator/prometheus",
        &[],
    )
    .await;
    for instance in instances(&without_credentials) {
        assert_eq!(instance["status"], 401, "{instance}");
        assert_eq!(instance["failure"]["reason"], "http_4xx");
        assert!(instance["failure"]["explanation"]
            .as_str()
            .unwrap()
            .contains("credentials"));
        assert!(instance["failure"]["next_check"]
            .as_str()
            .unwrap()
            .contains("basic_auth"));
    }

    // Where `.../metrics` answers 406, the diagnosis says what each instance answered.
    let wrong = diagnosis(
        &h,
        "/v1/apps/acme/dev/shop/diagnosis?metric_path=/nope",
        &[],
    )
    .await;
    assert_eq!(wrong["metrics_paths"][0]["path"], "/nope");
    for instance in instances(&wrong) {
        assert_eq!(instance["status"], 404, "{instance}");
        assert!(instance["failure"]["explanation"]
            .as_str()
            .unwrap()
            .contains("/nope"));
        assert!(instance["failure"]["next_check"]
            .as_str()
            .unwrap()
            .contains("cf create-service"));
    }
    assert_eq!(
        h.get("/v1/apps/acme/dev/shop/metrics?metric_path=/nope")
            .await
            .status(),
        406
    );
    h.stop().await;
}

#[tokio::test]
async fn an_unparsable_body_names_the_line_and_an_instance_5xx_is_reported() {
    let template = AppSpec::new("acme", "dev", "broken");
    let spec = FoundationSpec::dev_default().with_app(
        template.with_instances(vec![InstanceSpec::garbage(), InstanceSpec::status(503)]),
    );
    let h = Harness::start(spec).await;
    let answer = diagnosis(&h, "/v1/apps/acme/dev/broken/diagnosis", &[]).await;
    let all = instances(&answer);
    assert_eq!(all[0]["status"], 200, "{answer}");
    assert_eq!(all[0]["failure"]["reason"], "parse");
    let explanation = all[0]["failure"]["explanation"].as_str().unwrap();
    assert!(
        explanation.contains("parse error at line "),
        "{explanation}"
    );
    assert_eq!(all[1]["status"], 503);
    assert_eq!(all[1]["failure"]["reason"], "http_5xx");
    assert_eq!(answer["instances_failed"], 2);
    h.stop().await;
}

#[tokio::test]
async fn an_unknown_app_is_the_same_404_as_for_metrics() {
    let h = Harness::start(FoundationSpec::dev_default()).await;
    for (diagnosis_form, metrics_form) in [
        (
            "/v1/apps/acme/dev/nosuch/diagnosis",
            "/v1/apps/acme/dev/nosuch/metrics",
        ),
        (
            "/v2/apps/diagnosis?route_url=nosuch.apps.dev.local",
            "/v2/apps/metrics?route_url=nosuch.apps.dev.local",
        ),
    ] {
        let diagnosis = h.get(diagnosis_form).await;
        let metrics = h.get(metrics_form).await;
        assert_eq!(
            (diagnosis.status().as_u16(), metrics.status().as_u16()),
            (404, 404),
            "{diagnosis_form}"
        );
        assert_eq!(
            diagnosis.text().await.unwrap(),
            metrics.text().await.unwrap()
        );
    }
    assert_eq!(
        h.get("/v1/apps/diagnosis").await.status(),
        400,
        "no app named"
    );
    h.stop().await;
}

#[tokio::test]
async fn a_service_binding_path_names_its_binding_and_service_instance() {
    let app = "diagnosed";
    let h = Harness::start_with(spec_with_app(app), |config| {
        config.db_refresh_interval = promfetcher::config::GoDuration::from_millis(200);
    })
    .await;
    let guid = h.foundation.spec().app(app).expect("app").app_guid.clone();
    let path = format!("/v1/apps/acme/dev/{app}/diagnosis?metric_path=/ignored");

    // Bound without an endpoint of its own: the service instance's applies.
    let (instance, binding) = provision_and_bind(&h.base, &guid).await;
    let answer = diagnosis(&h, &path, &[]).await;
    let choice = &answer["metrics_paths"][0];
    assert_eq!(choice["source"], "service_instance", "{answer}");
    assert_eq!(choice["path"], CUSTOM_PATH);
    assert_eq!(
        Some(choice["binding_id"].as_str().unwrap()),
        binding.rsplit('/').next()
    );
    assert_eq!(
        Some(choice["service_instance_id"].as_str().unwrap()),
        instance.rsplit('/').next()
    );
    assert_eq!(answer["instances_failed"], 0, "{answer}");

    // A second binding with its own endpoint: the last binding by id wins, so give it a
    // later id than the first.
    let own = format!("{instance}/service_bindings/zzzz-{}", uuid::Uuid::new_v4());
    let (status, body) = osb(
        &h.base,
        reqwest::Method::PUT,
        &own,
        Some(bind_body(
            Some(&guid),
            serde_json::json!({"endpoint": CUSTOM_PATH}),
        )),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let answer = diagnosis(&h, &path, &[]).await;
    let choice = &answer["metrics_paths"][0];
    assert_eq!(choice["source"], "broker_binding", "{answer}");
    assert_eq!(
        Some(choice["binding_id"].as_str().unwrap()),
        own.rsplit('/').next()
    );
    assert_eq!(choice["service_instance_id"], Value::Null);
    h.stop().await;
}

#[tokio::test]
async fn credentials_and_instance_bodies_never_come_back() {
    const TOKEN: &str = "Bearer caller-s3cret-token-4711";
    const COOKIE: &str = "session=cookie-s3cret-0815";
    const BODY_SECRET: &str = "body-s3cret-label-value";
    const PARSE_SECRET: &str = "parse-s3cret-token";
    let valid = format!(
        "# HELP leak_total {BODY_SECRET}\n# TYPE leak_total counter\nleak_total{{token=\"{BODY_SECRET}\"}} 1\n"
    );
    let invalid = format!("ok 1\n{PARSE_SECRET}{{ {PARSE_SECRET}\n");
    let valid_instance = HostileInstance::start(Hostile::Body(valid.into_bytes())).await;
    let invalid_instance = HostileInstance::start(Hostile::Body(invalid.into_bytes())).await;
    let spec = FoundationSpec::dev_default().with_app(
        AppSpec::new("acme", "dev", "leaky").with_instances(vec![
            InstanceSpec::external(valid_instance.addr()),
            InstanceSpec::external(invalid_instance.addr()),
        ]),
    );
    let h = Harness::start(spec).await;
    let text = diagnosis_text(
        &h,
        "/v1/apps/acme/dev/leaky/diagnosis",
        &[
            ("Authorization", TOKEN),
            ("Cookie", COOKIE),
            ("X-Custom", "custom-s3cret"),
        ],
    )
    .await;
    let answer: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(answer["instances"][0]["samples"], 1, "{answer}");
    assert_eq!(
        answer["instances"][1]["failure"]["reason"], "parse",
        "{answer}"
    );
    for secret in [
        "caller-s3cret-token-4711",
        "cookie-s3cret-0815",
        "custom-s3cret",
        BODY_SECRET,
        PARSE_SECRET,
    ] {
        assert!(!text.contains(secret), "{secret} in the answer: {text}");
    }
    // The credentials did reach the instances, as they do for `.../metrics`.
    let heads = valid_instance.request_heads().join("\n");
    assert!(heads.contains("caller-s3cret-token-4711"), "{heads}");
    h.stop().await;
}

/// What Chromium and Firefox send for a page.
const BROWSER_ACCEPT: &str =
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8";

/// GET `path` as a browser would, with these extra headers.
async fn as_browser(h: &Harness, path: &str, headers: &[(&str, &str)]) -> Answer {
    let mut with_accept = vec![("Accept", BROWSER_ACCEPT)];
    with_accept.extend_from_slice(headers);
    let answer = get_with(h, path, &with_accept).await;
    if answer.status == 200 {
        assert_eq!(
            answer.vary, "Accept",
            "{path}: the answer depends on Accept"
        );
    }
    answer
}

#[tokio::test]
async fn a_browser_gets_the_report_as_a_page_and_other_callers_get_json() {
    let h = Harness::start(FoundationSpec::dev_default()).await;
    // The query string carries something the page must not repeat.
    let path =
        "/v1/apps/acme/dev/flaky/diagnosis?metric_path=/metrics&note=%3Cb%3Eq-s3cret%3C/b%3E";
    let answer = as_browser(&h, path, &[]).await;
    let page = answer.body;
    assert_eq!(answer.status, 200, "{page}");
    assert_eq!(answer.content_type, "text/html; charset=utf-8");
    assert!(page.contains("<html lang=\"en\">"), "{page}");
    assert!(page.contains("1 of 3 instances gave no metrics."), "{page}");
    for index in 0..3 {
        let address = h.foundation.instance_addr("flaky", index).to_string();
        let row = page
            .lines()
            .find(|line| line.starts_with(&format!("<tr id=\"instance-{index}\">")))
            .unwrap_or_else(|| panic!("no row for instance {index}: {page}"));
        assert!(row.contains(&address), "{row}");
        let result = if index == 1 { "failed: connect" } else { "OK" };
        assert!(row.contains(result), "instance {index}: {row}");
    }
    assert!(
        page.contains("Check next:</strong> the instance may be stopped"),
        "{page}"
    );
    assert!(
        page.contains("?metric_path=</td>"),
        "the path's source: {page}"
    );
    assert!(
        !page.contains("q-s3cret") && !page.contains("note="),
        "{page}"
    );

    for accept in [
        &[][..],
        &[("Accept", "application/json")],
        &[("Accept", "*/*")],
    ] {
        let answer = get_with(&h, "/v1/apps/acme/dev/flaky/diagnosis", accept).await;
        assert_eq!(answer.content_type, "application/json", "{accept:?}");
        assert_eq!(answer.vary, "Accept");
    }
    h.stop().await;
}

#[tokio::test]
async fn the_page_needs_the_metrics_credentials_as_the_json_does() {
    let h = Harness::start_with(FoundationSpec::dev_default(), |config| {
        config.metrics_auth.user = "viewer".into();
        config.metrics_auth.pass = promfetcher::config::Secret::new("page-pass");
    })
    .await;
    let path = "/v1/apps/acme/dev/shop/diagnosis";
    let refused = as_browser(&h, path, &[]).await;
    assert_eq!(refused.status, 401, "{}", refused.body);
    assert!(!refused.body.contains("instance-0"), "{}", refused.body);
    // viewer:page-pass
    let page = as_browser(
        &h,
        path,
        &[("Authorization", "Basic dmlld2VyOnBhZ2UtcGFzcw==")],
    )
    .await;
    assert_eq!(
        (page.status, page.content_type.as_str()),
        (200, "text/html; charset=utf-8")
    );
    assert!(
        page.body.contains("All 3 instances answered with metrics."),
        "{}",
        page.body
    );
    h.stop().await;
}

#[tokio::test]
async fn the_user_guide_form_leads_to_the_page() {
    let h = Harness::start(FoundationSpec::dev_default()).await;
    let guide_url = format!("{}/doc", h.base);
    let guide = h.get("/doc").await.text().await.expect("guide");
    // What a browser does with the form: its action, relative to the guide, with the fields.
    let form = guide
        .split("<form ")
        .nth(1)
        .and_then(|rest| rest.split("</form>").next())
        .expect("the guide has a form");
    assert!(form.contains("method=\"get\""), "{form}");
    let action = form
        .split("action=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("an action");
    for field in ["name=\"app\"", "name=\"metric_path\""] {
        assert!(form.contains(field), "{field} missing: {form}");
    }
    let mut target = url::Url::parse(&guide_url)
        .and_then(|guide| guide.join(action))
        .expect("the action resolves");
    target
        .query_pairs_mut()
        .append_pair("app", "acme/dev/flaky")
        .append_pair("metric_path", "");
    let page_path = format!("{}?{}", target.path(), target.query().unwrap_or_default());
    let answer = as_browser(&h, &page_path, &[]).await;
    assert_eq!(answer.status, 200, "{page_path}: {}", answer.body);
    assert!(
        answer.body.contains("1 of 3 instances gave no metrics."),
        "{}",
        answer.body
    );
    h.stop().await;
}

/// Where the browser test keeps its screenshots (docs/development.md names it).
const SCREENSHOTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/target/diagnosis-page");

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs chromium: run scripts/test-all"]
async fn the_page_renders_in_chromium_and_the_guide_form_opens_it() {
    let dev = Dev::start().await;
    let base = format!("http://{}", dev.api);
    let screenshots = std::path::PathBuf::from(SCREENSHOTS);
    let _ = std::fs::remove_dir_all(&screenshots);
    std::fs::create_dir_all(&screenshots).expect("the screenshot directory");
    let shots = screenshots.clone();
    tokio::task::spawn_blocking(move || {
        let screenshots = shots;
        let mut browser = DevTools::start();
        browser.set_viewport(1280, false);
        let row = |dom: &str, index: usize| -> String {
            dom.lines()
                .find(|line| line.starts_with(&format!("<tr id=\"instance-{index}\">")))
                .unwrap_or_else(|| panic!("no row for instance {index}: {dom}"))
                .to_string()
        };

        browser.open(&format!("{base}/v1/apps/acme/dev/shop/diagnosis"));
        let dom = browser.dom();
        assert!(
            dom.contains("All 3 instances answered with metrics."),
            "{dom}"
        );
        for index in 0..3 {
            let row = row(&dom, index);
            assert!(
                row.contains("<code>127.0.0.1:") && row.contains("OK</td>"),
                "{row}"
            );
        }
        browser.screenshot(&screenshots.join("healthy.png"));

        browser.open(&format!("{base}/v1/apps/acme/dev/flaky/diagnosis"));
        let dom = browser.dom();
        assert!(dom.contains("1 of 3 instances gave no metrics."), "{dom}");
        assert!(row(&dom, 1).contains("failed: connect"), "{dom}");
        for healthy in [0, 2] {
            assert!(row(&dom, healthy).contains("OK</td>"), "{dom}");
        }
        assert!(dom.contains("<h3 id=\"failure-1\">Instance 1 ("), "{dom}");
        assert!(dom.contains("no connection to 127.0.0.1:"), "{dom}");
        assert!(
            dom.contains("Check next:</strong> the instance may be stopped"),
            "{dom}"
        );
        browser.screenshot(&screenshots.join("failing.png"));
        // On a phone the page fits the screen's width; the tables scroll on their own.
        browser.set_viewport(390, true);
        let fits = browser.eval("document.documentElement.scrollWidth <= window.innerWidth");
        assert_eq!(
            fits,
            serde_json::json!(true),
            "the page is wider than a phone"
        );
        browser.screenshot(&screenshots.join("failing-phone.png"));
        browser.set_viewport(1280, false);

        // An app developer's way in: the user guide's form.
        browser.open(&format!("{base}/doc"));
        browser.submit("form.diagnose", &[("app", "acme/dev/billing")]);
        let location = browser.location();
        assert!(
            location.starts_with(&format!(
                "{base}/v1/apps/diagnosis?app=acme%2Fdev%2Fbilling"
            )),
            "{location}"
        );
        let dom = browser.dom();
        assert!(
            dom.contains("<h1>Diagnosis of <code>acme/dev/billing</code></h1>"),
            "{dom}"
        );
        assert!(dom.contains("<tr id=\"instance-0\">"), "{dom}");
        browser.screenshot(&screenshots.join("from-the-guide.png"));

        assert_eq!(
            browser.errors(),
            &[] as &[String],
            "the pages reported errors"
        );
    })
    .await
    .expect("the browser steps");
    for name in ["healthy", "failing", "failing-phone", "from-the-guide"] {
        let path = screenshots.join(format!("{name}.png"));
        let size = std::fs::metadata(&path)
            .unwrap_or_else(|e| panic!("no screenshot {}: {e}", path.display()))
            .len();
        assert!(size > 10 * 1024, "{} is only {size} bytes", path.display());
    }
    drop(dev);
}

/// An app whose three instances each take `delay` to answer, so that diagnoses overlap.
fn slow_app_spec(delay: Duration) -> FoundationSpec {
    FoundationSpec::dev_default().with_app(
        AppSpec::new("acme", "dev", "slow").with_instances(
            (0..3)
                .map(|_| InstanceSpec::healthy().with_delay(delay))
                .collect(),
        ),
    )
}

/// How often each instance of the app `slow` was asked for its metrics.
fn slow_hits(h: &Harness) -> Vec<usize> {
    (0..3)
        .map(|index| h.foundation.requests_seen("slow", index).len())
        .collect()
}

#[tokio::test]
async fn identical_concurrent_diagnoses_share_one_scrape() {
    let h = Harness::start(slow_app_spec(Duration::from_millis(400))).await;
    let path = "/v1/apps/acme/dev/slow/diagnosis";
    let same = [("Authorization", "Basic YTpi")];
    let answers = futures_util::future::join_all((0..5).map(|_| get_with(&h, path, &same))).await;
    for answer in &answers {
        assert_eq!(answer.status, 200, "{}", answer.body);
    }
    assert_eq!(slow_hits(&h), [1, 1, 1], "five diagnoses, one scrape");

    // Other credentials never share a scrape.
    let other = [("Authorization", "Basic Yzpk")];
    let (a, b) = tokio::join!(get_with(&h, path, &same), get_with(&h, path, &other));
    assert_eq!((a.status, b.status), (200, 200));
    assert_eq!(slow_hits(&h), [3, 3, 3]);
    h.stop().await;
}

#[tokio::test]
async fn an_app_is_scraped_for_a_diagnosis_at_most_once_per_interval() {
    let h = Harness::start_with(slow_app_spec(Duration::from_millis(300)), |config| {
        config.scrape.diagnosis_interval = promfetcher::config::GoDuration::from_secs(2);
    })
    .await;
    let path = "/v1/apps/acme/dev/slow/diagnosis";
    let caller = [("Authorization", "Basic YTpi")];
    let other_caller = [("Authorization", "Basic Yzpk")];
    // Joining a running diagnosis is no new scrape; another caller's would be one.
    let (first, joined, other) = tokio::join!(
        get_with(&h, path, &caller),
        async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            get_with(&h, path, &caller).await
        },
        async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            as_browser(&h, path, &other_caller).await
        },
    );
    assert_eq!((first.status, joined.status), (200, 200), "{}", joined.body);
    let report = |answer: &Answer| -> Value {
        serde_json::from_str::<Value>(&answer.body).expect("JSON")["instances"].clone()
    };
    assert_eq!(
        report(&first),
        report(&joined),
        "the joined caller gets the same instances' report"
    );
    assert_eq!(other.status, 429, "{}", other.body);
    assert!(other.body.contains("retry in 2 s"), "{}", other.body);
    assert_eq!(slow_hits(&h), [1, 1, 1]);

    let again = h.get(path).await;
    assert_eq!(again.status(), 429);
    let retry_after: u64 = again
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds");
    assert!((1..=2).contains(&retry_after), "Retry-After {retry_after}");
    // Other apps and the app's metrics are not limited.
    assert_eq!(
        h.get("/v1/apps/acme/dev/shop/diagnosis").await.status(),
        200
    );
    assert_eq!(h.get("/v1/apps/acme/dev/slow/metrics").await.status(), 200);
    assert_eq!(slow_hits(&h), [2, 2, 2], "only the metrics request scraped");

    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    let after = get_with(&h, path, &[]).await;
    assert_eq!(after.status, 200, "{}", after.body);
    assert_eq!(slow_hits(&h), [3, 3, 3]);
    h.stop().await;
}

#[tokio::test]
async fn what_the_merge_would_drop_is_counted_and_explained() {
    let first = HostileInstance::start(Hostile::Body(
        b"# TYPE jobs_total counter\njobs_total 1\n# TYPE seen gauge\nseen 1\nseen 2\n\
          # TYPE promfetcher_up gauge\npromfetcher_up 1\n"
            .to_vec(),
    ))
    .await;
    let second = HostileInstance::start(Hostile::Body(
        b"# TYPE jobs_total counter\njobs_total 2\n".to_vec(),
    ))
    .await;
    let third = HostileInstance::start(Hostile::Body(
        b"# TYPE jobs_total gauge\njobs_total 3\n".to_vec(),
    ))
    .await;
    let spec = FoundationSpec::dev_default().with_app(
        AppSpec::new("acme", "dev", "mixed").with_instances(vec![
            InstanceSpec::external(first.addr()),
            InstanceSpec::external(second.addr()),
            InstanceSpec::external(third.addr()),
        ]),
    );
    let h = Harness::start(spec).await;
    let answer = diagnosis(&h, "/v1/apps/acme/dev/mixed/diagnosis", &[]).await;
    let merge = &answer["merge"];
    assert_eq!(merge["type_conflicts"], 1, "{answer}");
    assert_eq!(merge["duplicate_series"], 1, "{answer}");
    assert_eq!(merge["promfetcher_families"], 1, "{answer}");
    let dropped: Vec<&str> = merge["dropped"]
        .as_array()
        .expect("dropped")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(dropped.len(), 3, "{answer}");
    assert!(
        dropped[0].starts_with("instance families declaring another # TYPE")
            && dropped[0].contains(": 1;")
    );
    assert!(dropped[1].starts_with("samples repeating a series") && dropped[1].contains(": 1;"));
    assert!(dropped[2].contains("promfetcher writes its own"));

    let page = as_browser(&h, "/v1/apps/acme/dev/mixed/diagnosis", &[]).await;
    assert!(
        page.body.contains(
            "<tr><th scope=\"row\">Families dropped for another type</th><td>1</td></tr>"
        ),
        "{}",
        page.body
    );
    h.stop().await;
}

#[tokio::test]
async fn external_exporters_are_reported_without_their_urls() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let closed_addr = closed.local_addr().expect("address");
    drop(closed);
    let h = Harness::start_configured(FoundationSpec::dev_default(), |foundation, config| {
        let mut down = dev_exporter_config(foundation);
        down.name = "down-exporter".into();
        down.host = closed_addr.to_string();
        down.params
            .insert("api_key".into(), vec!["exporter-s3cret-key".into()]);
        config.external_exporters = vec![dev_exporter_config(foundation), down];
    })
    .await;
    let text = diagnosis_text(
        &h,
        "/v1/apps/acme/dev/shop/diagnosis",
        &[("Authorization", "Bearer caller-token")],
    )
    .await;
    let answer: Value = serde_json::from_str(&text).expect("JSON");
    let exporters = answer["external_exporters"].as_array().expect("exporters");
    assert_eq!(exporters.len(), 2, "{answer}");
    let guid = &h.foundation.spec().app("shop").expect("shop").app_guid;
    let dev = &exporters[0];
    assert_eq!(dev["exporter"], DEV_EXPORTER_NAME);
    assert_eq!(dev["app_guid"], guid.as_str());
    assert_eq!(dev["status"], 200);
    assert_eq!(dev["failure"], Value::Null, "{dev}");
    assert!(dev["samples"].as_u64().unwrap_or(0) > 0, "{dev}");
    let down = &exporters[1];
    assert_eq!(down["exporter"], "down-exporter");
    assert_eq!(down["failure"]["reason"], "connect", "{down}");
    assert!(down["failure"]["next_check"]
        .as_str()
        .is_some_and(|s| s.contains("platform team")));
    for secret in ["exporter-s3cret-key", &closed_addr.to_string()] {
        assert!(!text.contains(secret), "{secret} in the answer: {text}");
    }
    // As for `.../metrics`, exporters never see the caller's headers.
    let heads = h.foundation.exporter_requests();
    assert_eq!(heads.len(), 1, "asked once");
    assert_eq!(heads[0].header("authorization"), None);

    let page = as_browser(&h, "/v1/apps/acme/dev/shop/diagnosis", &[]).await;
    assert!(
        page.body.contains("<h2>External exporters</h2>"),
        "{}",
        page.body
    );
    assert!(page.body.contains("failed: connect</td>"), "{}", page.body);
    h.stop().await;
}

#[tokio::test]
async fn every_other_failure_reason_is_explained() {
    let hangs = HostileInstance::start(Hostile::HangBeforeHeaders).await;
    let breaks_off = HostileInstance::start(Hostile::ResetMidBody).await;
    let redirects =
        HostileInstance::start(Hostile::RedirectTo("https://sso.example/login".into())).await;
    let bomb = HostileInstance::start(Hostile::GzipBomb).await;
    // Answers plain HTTP the moment a connection opens, whatever it is sent.
    let plain = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let plain_addr = plain.local_addr().expect("address");
    let plain_task = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        while let Ok((mut stream, _)) = plain.accept().await {
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await;
        }
    });
    let spec = FoundationSpec::dev_default().with_app(
        AppSpec::new("acme", "dev", "troubled").with_instances(vec![
            InstanceSpec::external(hangs.addr()),
            InstanceSpec::external(breaks_off.addr()),
            InstanceSpec::external(redirects.addr()),
            InstanceSpec::external(bomb.addr()),
            // Registered as TLS, but it speaks plain HTTP.
            InstanceSpec::external(plain_addr).with_tls(),
        ]),
    );
    let h = Harness::start(spec).await;
    let text = diagnosis_text(
        &h,
        "/v1/apps/acme/dev/troubled/diagnosis",
        &[("X-Prometheus-Scrape-Timeout-Seconds", "2")],
    )
    .await;
    let answer: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(answer["instance_timeout_seconds"], 1.5, "{answer}");
    let expected = [
        ("timeout", "no complete answer within 1.5 s"),
        ("read", "the answer broke off"),
        ("redirect", "redirects /metrics to another host"),
        ("too_large", "exceed 67108864 bytes after decompression"),
        ("tls", "the TLS handshake failed"),
    ];
    let all = instances(&answer);
    assert_eq!(all.len(), expected.len(), "{answer}");
    for (instance, (reason, says)) in all.iter().zip(expected) {
        let failure = &instance["failure"];
        assert_eq!(failure["reason"], reason, "{instance}");
        let explanation = failure["explanation"].as_str().expect("explanation");
        assert!(explanation.contains(says), "{reason}: {explanation}");
        assert!(
            failure["next_check"]
                .as_str()
                .is_some_and(|s| !s.is_empty()),
            "{instance}"
        );
    }
    assert_eq!(answer["instances_failed"], 5);
    assert!(
        !text.contains("sso.example"),
        "the redirect's target: {text}"
    );
    plain_task.abort();
    h.stop().await;
}
