//! The `promfetcher_dashboards` BOSH job: its Grafana dashboards checked for what Grafana needs
//! to load them (unique panel ids, a data source variable, `schemaVersion`, a valid grid), then
//! every query of every panel run through a real Prometheus (Debian's) that scrapes a running
//! `promfetcher dev` (its own `/metrics`, and every app found through `/v1/sd`, including the
//! instance that is down): with the template variables filled in from the dev foundation as
//! Grafana would, each must parse and return at least one series. No Grafana binary is needed.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::bosh::repo;
use crate::common::client;
use crate::common::dev::Dev;
use crate::common::prometheus::Prometheus;

const JOB: &str = "promfetcher_dashboards";
/// Scrape job names of the test's Prometheus: promfetcher's own metrics, and the apps.
const OWN_JOB: &str = "promfetcher";
const APPS_JOB: &str = "cloudfoundry-apps";
/// What the test puts for Grafana's `$__rate_interval` (Prometheus scrapes every second).
const RATE_INTERVAL: &str = "10s";
/// Template variables set as an operator would on the dev foundation: promfetcher's scrape job,
/// the org and space of its apps, and `flaky`, the app with an instance that is down.
const CHOSEN: [(&str, &str); 4] = [
    ("job", OWN_JOB),
    ("org", "acme"),
    ("space", "dev"),
    ("app", "flaky"),
];
/// The web apps with a GUID of the dev foundation: the app variable must offer each.
const DEV_APPS: [&str; 5] = ["billing", "flaky", "secure-api", "shop", "vault"];

/// Each dashboard of the job, by file name, as the job spec lists them.
fn dashboards() -> Vec<(String, Value)> {
    let dir = repo().join("bosh/jobs").join(JOB);
    let spec: serde_norway::Value =
        serde_norway::from_str(&std::fs::read_to_string(dir.join("spec")).unwrap()).unwrap();
    let templates = spec["templates"].as_mapping().expect("templates");
    let mut listed = BTreeSet::new();
    let mut dashboards = Vec::new();
    for (source, destination) in templates {
        let (source, destination) = (source.as_str().unwrap(), destination.as_str().unwrap());
        assert!(
            destination.ends_with(".json") && !destination.contains('/'),
            "{destination}: the grafana job's glob is /var/vcap/jobs/{JOB}/*.json"
        );
        listed.insert(source.to_string());
        let text = std::fs::read_to_string(dir.join("templates").join(source)).unwrap();
        assert!(!text.contains("<%"), "{source}: no ERB in a dashboard");
        let dashboard =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{source} is not JSON: {e}"));
        dashboards.push((source.to_string(), dashboard));
    }
    let on_disk: BTreeSet<String> = std::fs::read_dir(dir.join("templates"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(listed, on_disk, "every dashboard file is in the job spec");
    dashboards
}

/// Every panel, those nested in collapsed rows too.
fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut all = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        all.push(panel);
        if let Some(nested) = panel["panels"].as_array() {
            all.extend(nested);
        }
    }
    all
}

/// (panel title, query) of every query of `dashboard`.
fn queries(dashboard: &Value) -> Vec<(String, String)> {
    panels(dashboard)
        .into_iter()
        .filter(|panel| panel["type"] != "row")
        .flat_map(|panel| {
            let title = panel["title"].as_str().unwrap_or_default().to_string();
            let targets = panel["targets"].as_array().cloned().unwrap_or_default();
            targets.into_iter().map(move |target| {
                (
                    title.clone(),
                    target["expr"].as_str().unwrap_or_default().to_string(),
                )
            })
        })
        .collect()
}

/// The names `$name` or `${name}` in `text` refers to.
fn variables_in(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        rest = rest[at + 1..].trim_start_matches('{');
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        names.insert(rest[..end].to_string());
        rest = &rest[end..];
    }
    names
}

/// `text` with every `$name` / `${name}` replaced by its value in `values`.
fn substituted(text: &str, values: &BTreeMap<String, String>) -> String {
    let mut names: Vec<&String> = values.keys().collect();
    names.sort_by_key(|name| std::cmp::Reverse(name.len())); // $space before $s...
    let mut text = text.to_string();
    for name in names {
        text = text
            .replace(&format!("${{{name}}}"), &values[name])
            .replace(&format!("${name}"), &values[name]);
    }
    text
}

#[test]
fn dashboards_have_what_grafana_needs() {
    let dashboards = dashboards();
    assert_eq!(dashboards.len(), 2, "promfetcher itself and one app");
    let mut uids = BTreeSet::new();
    for (file, dashboard) in &dashboards {
        let schema = dashboard["schemaVersion"].as_u64().unwrap_or_default();
        assert!(schema >= 30, "{file}: schemaVersion {schema}");
        let uid = dashboard["uid"].as_str().unwrap_or_default();
        assert!(!uid.is_empty() && uid.len() <= 40, "{file}: uid {uid:?}");
        assert!(uids.insert(uid.to_string()), "{file}: uid {uid} used twice");
        assert!(dashboard["title"].as_str().is_some_and(|t| !t.is_empty()));

        let variables = dashboard["templating"]["list"]
            .as_array()
            .expect("variables");
        let datasource = variables
            .iter()
            .find(|v| v["type"] == "datasource" && v["query"] == "prometheus")
            .unwrap_or_else(|| panic!("{file}: no Prometheus data source variable"));
        let datasource_ref = format!("${{{}}}", datasource["name"].as_str().unwrap());
        let mut defined: BTreeSet<String> = variables
            .iter()
            .map(|v| v["name"].as_str().unwrap().to_string())
            .collect();
        defined.insert("__rate_interval".into());

        let panels = panels(dashboard);
        let mut ids = BTreeSet::new();
        let mut areas = Vec::new();
        for panel in &panels {
            let title = panel["title"].as_str().unwrap_or_default();
            assert!(!title.is_empty(), "{file}: a panel without a title");
            let id = panel["id"]
                .as_u64()
                .unwrap_or_else(|| panic!("{title}: no id"));
            assert!(ids.insert(id), "{file}: panel id {id} used twice ({title})");
            let grid = &panel["gridPos"];
            let [x, y, w, h] = ["x", "y", "w", "h"].map(|k| {
                grid[k]
                    .as_u64()
                    .unwrap_or_else(|| panic!("{title}: gridPos.{k}"))
            });
            assert!(
                (1..=24).contains(&w) && x + w <= 24 && h >= 1,
                "{file}: {title} gridPos {grid}"
            );
            for (other, (ox, oy, ow, oh)) in &areas {
                let overlaps = x < ox + ow && *ox < x + w && y < oy + oh && *oy < y + h;
                assert!(!overlaps, "{file}: {title} overlaps {other}");
            }
            areas.push((title.to_string(), (x, y, w, h)));
            if panel["type"] == "row" {
                continue;
            }
            assert!(
                panel["description"].as_str().is_some_and(|d| d.len() > 20),
                "{file}: {title} says nothing of what it shows"
            );
            assert_eq!(
                panel["datasource"]["uid"],
                datasource_ref.as_str(),
                "{title}"
            );
            let targets = panel["targets"].as_array().expect("targets");
            assert!(!targets.is_empty(), "{file}: {title} has no query");
            for target in targets {
                assert_eq!(
                    target["datasource"]["uid"],
                    datasource_ref.as_str(),
                    "{title}"
                );
                let expr = target["expr"].as_str().unwrap_or_default();
                assert!(!expr.is_empty(), "{file}: {title}: empty query");
                let unknown: Vec<_> = variables_in(expr).difference(&defined).cloned().collect();
                assert!(unknown.is_empty(), "{title}: {expr} uses {unknown:?}");
            }
        }
    }
}

/// What an operator's foundation does besides Prometheus' scrapes, so that the broker and
/// error panels have something to show: the broker's catalog and a provision (the dev
/// broker's credentials are the binary's defaults), and a lookup of an app that does not exist.
async fn broker_and_error_traffic(api: &str) {
    let client = client();
    let broker = |request: reqwest::RequestBuilder| {
        request
            .basic_auth("user", Some("password"))
            .header("X-Broker-API-Version", "2.14")
    };
    let catalog: Value = broker(client.get(format!("http://{api}/broker/v2/catalog")))
        .send()
        .await
        .expect("the broker answers")
        .text()
        .await
        .map(|body| serde_json::from_str(&body).expect("a JSON catalog"))
        .expect("the catalog");
    let service = &catalog["services"][0];
    let provision = broker(client.put(format!(
        "http://{api}/broker/v2/service_instances/dashboard-test"
    )))
    .header("Content-Type", "application/json")
    .body(
        serde_json::json!({
            "service_id": service["id"], "plan_id": service["plans"][0]["id"],
            "organization_guid": "org-guid", "space_guid": "space-guid",
            "parameters": {"endpoint": "/metrics"}
        })
        .to_string(),
    )
    .send()
    .await
    .expect("the broker answers");
    assert!(provision.status().is_success(), "{provision:?}");
    let missing = client
        .get(format!("http://{api}/v1/apps/acme/dev/no-such-app/metrics"))
        .send()
        .await
        .expect("promfetcher answers");
    assert_eq!(missing.status(), 404);
}

/// Fills in `dashboard`'s template variables as Grafana would, through Prometheus: a query
/// variable offers the label values its query finds, of which the test takes the one in
/// [`CHOSEN`], or all of them for a variable that includes All. Err: what is not offered (yet).
async fn variable_values(
    prometheus: &Prometheus,
    file: &str,
    dashboard: &Value,
) -> Result<BTreeMap<String, String>, String> {
    let mut values = BTreeMap::from([("__rate_interval".to_string(), RATE_INTERVAL.to_string())]);
    for variable in dashboard["templating"]["list"].as_array().unwrap() {
        let name = variable["name"].as_str().unwrap().to_string();
        let value = match variable["type"].as_str().unwrap() {
            "datasource" => continue,
            "custom" | "constant" => {
                let options = variable["query"].as_str().unwrap();
                options.split(',').next().unwrap().trim().to_string()
            }
            "query" => {
                let definition = substituted(variable["definition"].as_str().unwrap(), &values);
                let inner = definition
                    .strip_prefix("label_values(")
                    .and_then(|d| d.strip_suffix(')'))
                    .unwrap_or_else(|| panic!("{file}: ${name}: {definition}"));
                let (selector, label) = inner
                    .rsplit_once(',')
                    .expect("label_values(selector, label)");
                let offered = prometheus
                    .label_values(label.trim(), selector.trim())
                    .await
                    .unwrap_or_else(|e| panic!("{file}: ${name}: {definition}: {e}"));
                let lacks = |app: &&str| !offered.iter().any(|o| o == app);
                if name == "app" && DEV_APPS.iter().any(lacks) {
                    return Err(format!(
                        "{file}: ${name} offers {offered:?}, not all of {DEV_APPS:?}"
                    ));
                }
                match CHOSEN.iter().find(|(n, _)| *n == name) {
                    Some((_, chosen)) if offered.iter().any(|o| o == chosen) => chosen.to_string(),
                    Some((_, chosen)) => {
                        return Err(format!(
                            "{file}: ${name} does not offer {chosen}: {offered:?}"
                        ))
                    }
                    None if offered.is_empty() => {
                        return Err(format!("{file}: ${name} offers nothing"))
                    }
                    None if variable["includeAll"] == true => format!("({})", offered.join("|")),
                    None => offered[0].clone(),
                }
            }
            other => panic!("{file}: ${name} is of type {other}"),
        };
        values.insert(name, value);
    }
    Ok(values)
}

/// `promfetcher dev` scraped by a real Prometheus: its own metrics as job [`OWN_JOB`], every
/// app it discovers as job [`APPS_JOB`], after some broker and error traffic. Keep the `Dev`
/// as long as the `Prometheus`.
pub(crate) async fn prometheus_scraping_promfetcher_dev() -> (Dev, Prometheus) {
    let dev = Dev::start().await;
    let api = &dev.api;
    let prometheus = Prometheus::start(&format!(
        "  - job_name: {OWN_JOB}\n    static_configs:\n      - targets: ['{api}']\n  \
         - job_name: {APPS_JOB}\n    honor_labels: true\n    http_sd_configs:\n      \
         - url: http://{api}/v1/sd\n        refresh_interval: 1s\n"
    ))
    .await;
    broker_and_error_traffic(api).await;
    (dev, prometheus)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Prometheus: run scripts/test-all"]
async fn every_dashboard_query_returns_series_from_prometheus_scraping_promfetcher_dev() {
    let (dev, prometheus) = prometheus_scraping_promfetcher_dev().await;

    // Prometheus needs the targets up, then a few scrapes for rates: try every query until all
    // return series, for a bounded time.
    let dashboards = dashboards();
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut empty, mut returned): (Vec<String>, usize);
    loop {
        (empty, returned) = (Vec::new(), 0);
        let mut ran = 0;
        for (file, dashboard) in &dashboards {
            let values = match variable_values(&prometheus, file, dashboard).await {
                Ok(values) => values,
                Err(not_offered) => {
                    empty.push(not_offered);
                    continue;
                }
            };
            for (title, expr) in queries(dashboard) {
                let expr = substituted(&expr, &values);
                ran += 1;
                match prometheus.query(&expr).await {
                    Ok(series) if !series.is_empty() => returned += 1,
                    Ok(_) => empty.push(format!("{file}: {title}: {expr} returned nothing")),
                    Err(error) => panic!("{file}: {title}: {expr} is refused: {error}"),
                }
            }
        }
        if empty.is_empty() {
            eprintln!("{ran} dashboard queries ran against Prometheus, {returned} returned series");
            break;
        }
        if Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert!(
        empty.is_empty(),
        "{} queries returned series, {} returned nothing within 60 s:\n{}",
        returned,
        empty.len(),
        empty.join("\n")
    );
    drop(dev);
}
