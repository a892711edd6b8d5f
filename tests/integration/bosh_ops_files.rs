//! The ops files under `bosh/manifests/operations/`: each is YAML made of `replace` / `remove`
//! operations only, every property it sets or removes on one of this release's jobs is
//! declared in that job's spec (a misspelt property fails here, not at deploy time, where BOSH
//! would ignore it silently), every job it adds from this release exists, and every
//! `/var/vcap/jobs/<job>/...` glob it gives Prometheus or Grafana matches a file that job
//! renders.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_norway::Value as Yaml;

use crate::bosh::repo;

const RELEASE: &str = "promfetcher";

/// The ops files, recursively, relative to the repository.
fn ops_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, found);
            } else if path.extension().is_some_and(|e| e == "yml") {
                found.push(path);
            }
        }
    }
    let mut found = Vec::new();
    walk(&repo().join("bosh/manifests/operations"), &mut found);
    found.sort();
    found
}

/// A job of this release: its spec's property names and the files it renders.
struct JobSpec {
    properties: BTreeSet<String>,
    destinations: Vec<String>,
}

fn job_spec(job: &str) -> Option<JobSpec> {
    let text = std::fs::read_to_string(repo().join("bosh/jobs").join(job).join("spec")).ok()?;
    let spec: Yaml = serde_norway::from_str(&text).unwrap();
    let keys = |field: &str| -> Vec<String> {
        spec[field]
            .as_mapping()
            .map(|m| {
                m.iter()
                    .map(|(k, _)| k.as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    let destinations = spec["templates"]
        .as_mapping()
        .map(|m| {
            m.iter()
                .map(|(_, d)| d.as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default();
    Some(JobSpec {
        properties: keys("properties").into_iter().collect(),
        destinations,
    })
}

/// What the checker found wrong in one ops file, and the jobs of this release it touches.
#[derive(Default)]
struct Findings {
    problems: Vec<String>,
    jobs: BTreeSet<String>,
}

impl Findings {
    /// `value` set at property `prefix` (dotted; empty for the whole properties block) of
    /// `job`: each leaf must be declared, or lie under a declared property.
    fn properties(&mut self, job: &str, spec: &JobSpec, prefix: &str, value: Option<&Yaml>) {
        if spec.properties.contains(prefix) {
            return;
        }
        match value {
            Some(Yaml::Mapping(map)) if !map.is_empty() => {
                for (key, value) in map {
                    let key = key.as_str().unwrap_or_default();
                    let name = if prefix.is_empty() {
                        key.to_string()
                    } else {
                        format!("{prefix}.{key}")
                    };
                    self.properties(job, spec, &name, Some(value));
                }
            }
            // removing a whole block of declared properties
            None if spec
                .properties
                .iter()
                .any(|p| p.starts_with(&format!("{prefix}."))) => {}
            _ => self.problems.push(format!(
                "{job}: property {prefix} is not declared in its spec"
            )),
        }
    }

    /// A job entry `{name, release, properties}` added to an instance group.
    fn job(&mut self, job: &Yaml) {
        if job["release"].as_str() != Some(RELEASE) {
            return;
        }
        let name = job["name"].as_str().unwrap_or_default().to_string();
        match job_spec(&name) {
            Some(spec) => {
                if let Some(properties) = job.get("properties") {
                    self.properties(&name, &spec, "", Some(properties));
                }
            }
            None => self
                .problems
                .push(format!("job {name} is not in the {RELEASE} release")),
        }
        self.jobs.insert(name);
    }

    /// Every string under `value` that names a file of one of this release's jobs
    /// (`/var/vcap/jobs/<job>/<glob>`) must match a file that job renders.
    fn globs(&mut self, value: &Yaml) {
        match value {
            Yaml::String(text) => {
                let Some(rest) = text.strip_prefix("/var/vcap/jobs/") else {
                    return;
                };
                let (job, pattern) = rest.split_once('/').unwrap_or((rest, ""));
                let Some(spec) = job_spec(job) else {
                    return;
                };
                let (head, tail) = pattern.split_once('*').unwrap_or((pattern, ""));
                let matches = |d: &String| {
                    d.starts_with(head) && d.ends_with(tail) && d.len() >= head.len() + tail.len()
                };
                if !spec.destinations.iter().any(matches) {
                    self.problems
                        .push(format!("{text} matches no file of the {job} job"));
                }
            }
            Yaml::Sequence(items) => items.iter().for_each(|v| self.globs(v)),
            Yaml::Mapping(map) => map.iter().for_each(|(_, v)| self.globs(v)),
            _ => {}
        }
    }

    /// One operation: its form, then what it does to this release's jobs.
    fn operation(&mut self, op: &Yaml) {
        let kind = op["type"].as_str().unwrap_or_default();
        let path = op["path"].as_str().unwrap_or_default();
        let keys: BTreeSet<&str> = op
            .as_mapping()
            .map(|m| m.iter().filter_map(|(k, _)| k.as_str()).collect())
            .unwrap_or_default();
        let expected: BTreeSet<&str> = match kind {
            "replace" => ["type", "path", "value"].into(),
            "remove" => ["type", "path"].into(),
            other => {
                self.problems.push(format!(
                    "{path}: operation type {other:?}, not replace or remove"
                ));
                return;
            }
        };
        if keys != expected || !path.starts_with('/') {
            self.problems
                .push(format!("{kind} {path}: has {keys:?}, wants {expected:?}"));
            return;
        }
        let value = op.get("value");
        if let Some(value) = value {
            self.globs(value);
        }
        let segments: Vec<&str> = path[1..]
            .split('/')
            .map(|s| s.trim_end_matches('?'))
            .collect();
        match segments.as_slice() {
            ["instance_groups", _] => {
                for job in value
                    .and_then(|v| v["jobs"].as_sequence())
                    .into_iter()
                    .flatten()
                {
                    self.job(job);
                }
            }
            ["instance_groups", _, "jobs", _] => {
                if let Some(job) = value {
                    self.job(job);
                }
            }
            ["instance_groups", _, "jobs", job, "properties", property @ ..] => {
                let Some(job) = job.strip_prefix("name=") else {
                    return;
                };
                let Some(spec) = job_spec(job) else {
                    return; // another release's job
                };
                // up to an array element (`-`, `name=...`, an index): the property itself
                let end = property
                    .iter()
                    .position(|s| *s == "-" || s.contains('=') || s.parse::<usize>().is_ok())
                    .unwrap_or(property.len());
                let name = property[..end].join(".");
                let value = if end < property.len() { None } else { value };
                if end < property.len() && !spec.properties.contains(&name) {
                    self.problems.push(format!(
                        "{job}: property {name} is not declared in its spec"
                    ));
                } else {
                    self.properties(job, &spec, &name, value);
                }
                self.jobs.insert(job.to_string());
            }
            _ => {}
        }
    }
}

fn check(text: &str) -> Findings {
    let mut findings = Findings::default();
    let ops: Yaml = match serde_norway::from_str(text) {
        Ok(ops) => ops,
        Err(error) => {
            findings.problems.push(format!("not YAML: {error}"));
            return findings;
        }
    };
    match ops.as_sequence() {
        Some(ops) if !ops.is_empty() => ops.iter().for_each(|op| findings.operation(op)),
        _ => findings.problems.push("not a list of operations".into()),
    }
    findings
}

#[test]
fn every_ops_file_is_replace_and_remove_operations_on_declared_properties() {
    let files = ops_files();
    let names: Vec<String> = files
        .iter()
        .map(|f| {
            f.strip_prefix(repo().join("bosh/manifests/operations"))
                .unwrap()
                .display()
                .to_string()
        })
        .collect();
    for expected in [
        "cf/add-promfetcher.yml",
        "cf/disable-broker.yml",
        "cf/enable-backup.yml",
        "cf/nats-only.yml",
        "prometheus/monitor-promfetcher.yml",
    ] {
        assert!(names.iter().any(|n| n == expected), "{expected}: {names:?}");
    }
    let mut touched = BTreeSet::new();
    let mut problems = Vec::new();
    for (file, name) in files.iter().zip(&names) {
        let findings = check(&std::fs::read_to_string(file).unwrap());
        problems.extend(findings.problems.iter().map(|p| format!("{name}: {p}")));
        touched.extend(findings.jobs);
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    for job in [
        "promfetcher",
        "promfetch-broker-registrar",
        "bbr-promfetcherdb",
        "promfetcher_alerts",
        "promfetcher_dashboards",
    ] {
        assert!(
            touched.contains(job),
            "no ops file deploys {job}: {touched:?}"
        );
    }
}

#[test]
fn the_checker_finds_misspelt_properties_unknown_jobs_and_other_operations() {
    // the original release's cf.yml spelt `gorouters` as `gorouter`, and gave the errand a
    // `broker.name` it never declared: BOSH ignores both
    let findings = check(
        "- type: replace\n  path: /instance_groups/-\n  value:\n    name: promfetcher\n    jobs:\n\
         \x20     - name: promfetcher\n        release: promfetcher\n        properties:\n\
         \x20         promfetcher:\n            gorouter: [{host: gorouter.service.cf.internal}]\n\
         \x20     - name: promfetch-broker-registrar\n        release: promfetcher\n\
         \x20       properties: {promfetcher: {broker: {name: promfetcher}}}\n\
         - type: replace\n  path: /instance_groups/name=x/jobs/name=promfetcher/properties/promfetcher/tls_pem/cert\n  value: PEM\n\
         - type: remove\n  path: /instance_groups/name=x/jobs/name=promfetcher/properties/promfetcher/databse\n\
         - type: replace\n  path: /instance_groups/name=x/jobs/-\n  value: {name: promfetcher_alert, release: promfetcher}\n\
         - type: replace\n  path: /instance_groups/name=x/jobs/name=prometheus2/properties/prometheus/rule_files/-\n\
         \x20 value: /var/vcap/jobs/promfetcher_alerts/*.rules.yml\n\
         - type: merge\n  path: /x\n\
         - type: remove\n  path: /y\n  value: 1\n",
    );
    let expected = [
        "promfetcher: property promfetcher.gorouter is not declared in its spec",
        "promfetch-broker-registrar: property promfetcher.broker.name is not declared in its spec",
        "promfetcher: property promfetcher.tls_pem.cert is not declared in its spec",
        "promfetcher: property promfetcher.databse is not declared in its spec",
        "job promfetcher_alert is not in the promfetcher release",
        "/var/vcap/jobs/promfetcher_alerts/*.rules.yml matches no file of the promfetcher_alerts job",
        "/x: operation type \"merge\", not replace or remove",
        "remove /y: has {\"path\", \"type\", \"value\"}, wants {\"path\", \"type\"}",
    ];
    assert_eq!(findings.problems, expected);
    assert!(!check("a: map").problems.is_empty());
    assert!(!check("- [unclosed").problems.is_empty());
}
