//! The `promfetcher_dashboards` BOSH job: its Grafana dashboards checked for what Grafana needs
//! to load them (unique panel ids, a data source variable, `schemaVersion`, a valid grid), then
//! every query of every panel run through a real Prometheus (Debian's) that scrapes a running
//! `promfetcher dev` (its own `/metrics`, and every app found through `/v1/sd`, including the
//! instance that is down): with the template variables filled in from the dev foundation as
//! Grafana would, each must parse and return at least one series. No Grafana binary is needed.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::bosh::repo;

const JOB: &str = "promfetcher_dashboards";
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
