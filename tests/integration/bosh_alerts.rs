//! The `promfetcher_alerts` BOSH job: its rules file rendered from the ERB template (with the
//! job's defaults and with custom properties) and checked by the tool that will load it,
//! Debian's `promtool` (`check rules`, then `test rules` on `bosh/tests/*.test.yml`: for every
//! alert a series history that fires it and one that does not), bad properties refused at
//! render time with their name, and every rule evaluated by a real Prometheus scraping
//! `promfetcher dev`, where each metric a rule reads must exist under the names promfetcher
//! serves.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use serde_norway::Value as Yaml;

use crate::bosh::{render, render_ok, repo, Rendered};
use crate::bosh_dashboards::prometheus_scraping_promfetcher_dev;

const JOB: &str = "promfetcher_alerts";
const RULES: &str = "promfetcher.alerts.yml";

/// The alerts issue 17 asks for, by what they watch.
const REQUIRED: [&str; 7] = [
    "PromfetcherNoRouteSource",
    "PromfetcherRouteTableStale",
    "PromfetcherDown",
    "PromfetcherFoundationWideScrapeFailures",
    "PromfetcherAnswersNearScrapeTimeout",
    "PromfetcherDatabaseUnreachable",
    "PromfetcherMemoryNearLimit",
];

/// Runs Debian's promtool with `args`; (exit status 0, stdout + stderr). Fails without it.
fn promtool(args: &[&Path]) -> (bool, String) {
    let output = Command::new("promtool")
        .args(args)
        .output()
        .expect("promtool is required: scripts/test-all installs Debian's prometheus package");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), said)
}

fn rules_of(rendered: &Rendered) -> Vec<Yaml> {
    let rules: Yaml = serde_norway::from_str(&rendered.read(RULES)).expect("the rules are YAML");
    rules["groups"]
        .as_sequence()
        .expect("groups")
        .iter()
        .flat_map(|group| group["rules"].as_sequence().expect("rules").clone())
        .collect()
}

fn name_of(rule: &Yaml) -> &str {
    rule["alert"].as_str().expect("an alerting rule")
}

/// Renders the job for `properties` and has `promtool check rules` accept the result.
fn checked_rules(properties: Value) -> Rendered {
    let rendered = render_ok(JOB, &json!({ "properties": properties }));
    let (ok, said) = promtool(&[
        Path::new("check"),
        Path::new("rules"),
        &rendered.path(RULES),
    ]);
    assert!(
        ok,
        "promtool check rules refuses the rendered rules: {said}"
    );
    rendered
}

/// Runs `promtool test rules` on `bosh/tests/<test_file>` against `rendered`'s rules without
/// their `description` annotations (promtool compares annotations word for word; the
/// summaries, which the test files spell out, stay).
fn assert_unit_tests_pass(rendered: &Rendered, test_file: &str) {
    let mut rules: Yaml = serde_norway::from_str(&rendered.read(RULES)).unwrap();
    for group in rules["groups"].as_sequence_mut().unwrap() {
        for rule in group["rules"].as_sequence_mut().unwrap() {
            let annotations = rule["annotations"].as_mapping_mut().unwrap();
            assert!(annotations.remove("description").is_some());
        }
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(RULES),
        serde_norway::to_string(&rules).unwrap(),
    )
    .unwrap();
    let tests = dir.path().join(test_file);
    std::fs::copy(repo().join("bosh/tests").join(test_file), &tests).unwrap();
    let (ok, said) = promtool(&[Path::new("test"), Path::new("rules"), &tests]);
    assert!(ok, "promtool test rules {test_file}: {said}");
}

/// For each alert name, (unit tests expecting it to fire, unit tests expecting silence).
fn unit_test_coverage(test_file: &str) -> BTreeMap<String, (usize, usize)> {
    let text = std::fs::read_to_string(repo().join("bosh/tests").join(test_file)).unwrap();
    let tests: Yaml = serde_norway::from_str(&text).unwrap();
    let mut coverage = BTreeMap::<String, (usize, usize)>::new();
    for group in tests["tests"].as_sequence().unwrap() {
        for case in group["alert_rule_test"].as_sequence().unwrap() {
            let name = case["alertname"].as_str().unwrap().to_string();
            let fires = case["exp_alerts"]
                .as_sequence()
                .is_some_and(|alerts| !alerts.is_empty());
            let counts = coverage.entry(name).or_default();
            if fires {
                counts.0 += 1;
            } else {
                counts.1 += 1;
            }
        }
    }
    coverage
}

#[test]
#[ignore = "needs ruby and promtool: run scripts/test-all"]
fn default_rules_pass_promtool_and_every_alert_fires_and_stays_quiet_in_unit_tests() {
    let rendered = checked_rules(json!({}));
    let rules = rules_of(&rendered);
    let names: Vec<&str> = rules.iter().map(name_of).collect();
    for required in REQUIRED {
        assert!(names.contains(&required), "{required} missing: {names:?}");
    }
    for rule in &rules {
        let name = name_of(rule);
        for annotation in ["summary", "description"] {
            let text = rule["annotations"][annotation].as_str().unwrap_or_default();
            assert!(text.len() > 20, "{name}: {annotation} is {text:?}");
        }
        let severity = rule["labels"]["severity"].as_str();
        assert!(
            matches!(severity, Some("warning" | "critical")),
            "{name}: severity {severity:?}"
        );
        assert!(
            rule["expr"]
                .as_str()
                .is_some_and(|e| e.contains(r#"job="promfetcher""#)),
            "{name} does not select promfetcher's own scrape job"
        );
    }
    // the job's documented defaults reach the rules
    let for_of = |name: &str| {
        rules.iter().find(|r| name_of(r) == name).unwrap()["for"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(for_of("PromfetcherNoRouteSource"), "2m");
    assert_eq!(for_of("PromfetcherFoundationWideScrapeFailures"), "10m");

    let coverage = unit_test_coverage("promfetcher_alerts.test.yml");
    for name in &names {
        let (firing, quiet) = coverage.get(*name).copied().unwrap_or_default();
        assert!(
            firing > 0 && quiet > 0,
            "{name}: {firing} firing and {quiet} quiet unit tests; each alert needs both"
        );
    }
    assert_unit_tests_pass(&rendered, "promfetcher_alerts.test.yml");
}

#[test]
#[ignore = "needs ruby and promtool: run scripts/test-all"]
fn custom_properties_change_the_thresholds_durations_and_job() {
    let rendered = checked_rules(json!({"promfetcher_alerts": {
        "promfetcher_job": "cf-promfetcher",
        "route_table_stale": {"threshold": 60, "evaluation_time": "1m"},
        "memory": {"vm_memory_bytes": 2147483648_u64, "threshold": 0.5, "evaluation_time": "1m"},
        "foundation_wide_failures": {"min_apps": 1, "threshold": 0.1, "evaluation_time": "2m"},
        "slow_answers": {"threshold": 2, "evaluation_time": "2m"},
        "instance_down": {"evaluation_time": "1m"},
        "no_route_source": {"evaluation_time": "90s"},
        "database_unreachable": {"evaluation_time": "1h30m"}
    }}));
    let rules = rules_of(&rendered);
    let rule = |name: &str| rules.iter().find(|r| name_of(r) == name).unwrap().clone();
    assert_eq!(
        rule("PromfetcherNoRouteSource")["for"].as_str(),
        Some("90s")
    );
    assert_eq!(
        rule("PromfetcherDatabaseUnreachable")["for"].as_str(),
        Some("1h30m")
    );
    let memory = rule("PromfetcherMemoryNearLimit");
    assert!(
        memory["expr"].as_str().unwrap().contains("> 1073741824"),
        "{memory:?}"
    );
    for rule in &rules {
        let expr = rule["expr"].as_str().unwrap();
        assert!(
            expr.contains(r#"job="cf-promfetcher""#) && !expr.contains(r#"job="promfetcher""#),
            "{}: {expr}",
            name_of(rule)
        );
    }
    assert_unit_tests_pass(&rendered, "promfetcher_alerts_custom.test.yml");
}

#[test]
#[ignore = "needs ruby: run scripts/test-all"]
fn bad_alert_properties_fail_the_render_naming_the_property() {
    let cases = [
        (
            json!({"instance_down": {"evaluation_time": "2 minutes"}}),
            "promfetcher_alerts.instance_down.evaluation_time must be a Prometheus duration",
        ),
        (
            json!({"memory": {"threshold": 80}}),
            "promfetcher_alerts.memory.threshold must be a number between 0 and 1, not 80",
        ),
        (
            json!({"route_table_stale": {"threshold": "five minutes"}}),
            "promfetcher_alerts.route_table_stale.threshold must be a number zero or more",
        ),
        (
            json!({"promfetcher_job": "prom\"fetcher"}),
            "promfetcher_alerts.promfetcher_job must be a non-empty label value",
        ),
    ];
    for (properties, expected) in cases {
        let error = render(
            JOB,
            &json!({"properties": {"promfetcher_alerts": properties}}),
        )
        .err()
        .unwrap_or_else(|| panic!("{properties} rendered anyway"));
        assert!(error.contains(expected), "{properties}: {error}");
    }
}

/// The metric names `expr` selects: every name written right before a `{`.
fn metrics_in(expr: &str) -> BTreeSet<String> {
    expr.split('{')
        .filter_map(|before| {
            let name_start = before
                .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .map_or(0, |at| at + 1);
            let name = &before[name_start..];
            (!name.is_empty()).then(|| name.to_string())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs ruby and Prometheus: run scripts/test-all"]
async fn every_rule_runs_on_prometheus_and_reads_metrics_promfetcher_serves() {
    let rendered = render_ok(JOB, &json!({}));
    let rules = rules_of(&rendered);
    let (_dev, prometheus) = prometheus_scraping_promfetcher_dev().await;
    let metrics: BTreeSet<String> = rules
        .iter()
        .flat_map(|rule| metrics_in(rule["expr"].as_str().unwrap()))
        .collect();
    assert!(metrics.len() >= rules.len(), "{metrics:?}");
    let deadline = Instant::now() + Duration::from_secs(60);
    let missing = loop {
        let mut missing = Vec::new();
        for metric in &metrics {
            let selector = format!(r#"{metric}{{job="promfetcher"}}"#);
            if prometheus
                .query(&selector)
                .await
                .unwrap_or_default()
                .is_empty()
            {
                missing.push(metric.clone());
            }
        }
        if missing.is_empty() || Instant::now() > deadline {
            break missing;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    assert!(
        missing.is_empty(),
        "the alert rules read metrics promfetcher dev does not serve: {missing:?}"
    );
    for rule in &rules {
        let expr = rule["expr"].as_str().unwrap();
        let result = prometheus.query(expr).await;
        assert!(result.is_ok(), "{}: {expr}: {result:?}", name_of(rule));
    }
}
