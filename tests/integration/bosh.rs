//! The BOSH release under `bosh/`: every job template rendered for several manifests with the
//! plain-Ruby harness `bosh/tests/render.rb` (Debian's ruby; no bosh-template gem), each rendered
//! config accepted by `promfetcher check-config` without a warning and carrying the manifest's
//! values (NATS spelled as this release's `promfetcher.nats.*`, as the newest original release's
//! `nats.*`, or both), invalid manifests refused at render time, the drain script run against a
//! live promfetcher, and the broker-registration errand run against a fake `cf`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::PROMFETCHER;
use crate::common::{self, client, config_for, WAIT_LIMIT};
use promfetcher::config::{Config, GoDuration};
use promfetcher::routes::RouteSourceSettings;
use promfetcher_process::Process;
use serde_json::{json, Value};
use simulated_foundation::{Foundation, FoundationSpec};

const JOB: &str = "promfetcher";
const REGISTRAR: &str = "promfetch-broker-registrar";

pub(crate) fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Debian's ruby; the test fails (never skips) without it.
pub(crate) fn ruby() -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("ruby"))
            .find(|candidate| candidate.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "ruby is not installed: the BOSH template tests need it (apt-get install ruby; \
             scripts/test-all installs it)"
        )
    })
}

/// A job's templates rendered into a temporary directory (under `out/`).
pub(crate) struct Rendered {
    dir: tempfile::TempDir,
}

impl Rendered {
    pub(crate) fn path(&self, destination: &str) -> PathBuf {
        self.dir.path().join("out").join(destination)
    }

    pub(crate) fn read(&self, destination: &str) -> String {
        std::fs::read_to_string(self.path(destination))
            .unwrap_or_else(|e| panic!("{destination} was not rendered: {e}"))
    }
}

/// Renders every template of `job` for `input` ({properties, links, spec}); Err is the harness'
/// one-line error (the template and what it raised).
pub(crate) fn render(job: &str, input: &Value) -> Result<Rendered, String> {
    let dir = tempfile::tempdir().unwrap();
    let input_path = dir.path().join("input.json");
    std::fs::write(&input_path, serde_json::to_vec_pretty(input).unwrap()).unwrap();
    let out = dir.path().join("out");
    let output = Command::new(ruby())
        .arg(repo().join("bosh/tests/render.rb"))
        .arg(repo().join("bosh/jobs").join(job))
        .arg(&input_path)
        .arg(&out)
        .output()
        .expect("ruby runs");
    if output.status.success() {
        Ok(Rendered { dir })
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

pub(crate) fn render_ok(job: &str, input: &Value) -> Rendered {
    render(job, input).unwrap_or_else(|error| panic!("{job} does not render: {error}"))
}

/// Runs `promfetcher check-config -c` on the rendered config: it must exit 0 without any
/// warning; returns the config as promfetcher loads it.
fn checked_config(rendered: &Rendered) -> Config {
    let path = rendered.path("config/config.yml");
    let output = Command::new(env!("CARGO_BIN_EXE_promfetcher"))
        .arg("check-config")
        .arg("-c")
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "check-config refused the rendered config: {stderr}\n{}",
        rendered.read("config/config.yml")
    );
    assert!(
        !stderr.contains("warning"),
        "check-config warned: {stderr}\n{}",
        rendered.read("config/config.yml")
    );
    let loaded = Config::load(Some(&path)).unwrap();
    assert!(loaded.unknown_keys.is_empty(), "{:?}", loaded.unknown_keys);
    loaded.config
}

struct Pem {
    cert: String,
    key: String,
}

fn pem(name: &str) -> Pem {
    let certified = rcgen::generate_simple_self_signed(vec![name.to_string()]).unwrap();
    Pem {
        cert: certified.cert.pem(),
        key: certified.signing_key.serialize_pem(),
    }
}

/// The fewest properties the job needs with its defaults (TLS on, broker on).
fn required_properties(tls: &Pem) -> Value {
    json!({
        "promfetcher": {
            "tls_pem": {"cert_chain": tls.cert, "private_key": tls.key},
            "broker": {"username": "broker", "password": "broker-secret"},
            "database": {"user": "pf", "password": "db-secret", "name": "promfetcher"}
        }
    })
}

/// Recursively merges `patch` into `base` (objects merged, anything else replaced).
fn merged(mut base: Value, patch: Value) -> Value {
    fn merge(base: &mut Value, patch: Value) {
        match (base, patch) {
            (Value::Object(base), Value::Object(patch)) => {
                for (key, value) in patch {
                    merge(base.entry(key).or_insert(Value::Null), value);
                }
            }
            (base, patch) => *base = patch,
        }
    }
    merge(&mut base, patch);
    base
}

#[test]
#[ignore = "needs ruby: run scripts/test-all"]
fn defaults_with_the_required_values_render_the_original_release_defaults() {
    let tls = pem("promfetcher.sys.example.com");
    let rendered = render_ok(JOB, &json!({"properties": required_properties(&tls)}));
    let config = checked_config(&rendered);
    assert_eq!(config.port, 443);
    assert_eq!(config.health_check_port, 8080);
    assert!(config.enable_ssl);
    assert_eq!(config.tls_pem.cert_chain, tls.cert);
    assert_eq!(config.base_url, "https://10.0.1.10:443");
    assert_eq!(config.gorouters.len(), 1);
    assert_eq!(config.gorouters[0].host, "gorouter.service.cf.internal");
    assert_eq!(config.gorouters[0].port, 8080);
    assert_eq!(config.gorouters[0].user, "router-status");
    // the release's broker ids, not the binary's: existing registrations depend on them
    assert_eq!(
        config.broker.broker_service_id,
        "e44a55b7-b532-4247-89f3-4ea92054b793"
    );
    assert_eq!(
        config.broker.broker_plan_id,
        "3294e4fa-42b3-4505-b289-8fb3695b5b3a"
    );
    assert_eq!(config.broker.user, "broker");
    assert_eq!(config.broker.pass.expose(), "broker-secret");
    assert_eq!(
        config.db_conn.expose(),
        "mysql://pf:db-secret@sql-db.service.cf.internal:3306/promfetcher"
    );
    assert_eq!((config.sql_cnx_max_open, config.sql_cnx_max_idle), (10, 5));
    assert_eq!(config.sql_cnx_max_life, GoDuration::from_secs(3600));
    assert!(
        config.logging.in_json,
        "the original release forced JSON logs"
    );
    assert_eq!(config.logging.level, "info");
    assert_eq!(config.backends.max_conns, 500);
    assert_eq!(config.max_idle_conns, 100);
    assert_eq!(config.max_idle_conns_per_host, 100);
    assert!(config.nats.hosts.is_empty());
    assert!(
        config.metrics_auth.user.is_empty() && config.metrics_auth.bearer_token.is_empty(),
        "the metrics endpoints are open by default"
    );
    // keys the original release did not have keep the binary's defaults
    let binary = Config::default();
    assert_eq!(config.scrape.timeout, binary.scrape.timeout);
    assert_eq!(
        config.scrape.max_concurrent_requests,
        binary.scrape.max_concurrent_requests
    );
    assert_eq!(
        config.shutdown.lame_duck_period,
        binary.shutdown.lame_duck_period
    );
    assert_eq!(config.gorouter_poll_interval, binary.gorouter_poll_interval);

    let bpm = rendered.read("config/bpm.yml");
    assert!(
        bpm.contains("NET_BIND_SERVICE"),
        "port 443 needs it:\n{bpm}"
    );
    assert!(
        bpm.contains("/var/vcap/jobs/promfetcher/config/config.yml"),
        "{bpm}"
    );
    let aliases: Value = serde_json::from_str(&rendered.read("dns/aliases.json")).unwrap();
    assert_eq!(
        aliases,
        json!({"gorouter.service.cf.internal": ["q-s4.router.default.cf.bosh"]})
    );
}

#[test]
#[ignore = "needs ruby: run scripts/test-all"]
fn a_manifest_written_for_the_original_release_deploys_unchanged() {
    let tls = pem("promfetcher.sys.example.com");
    let client = pem("promfetcher-client");
    let ca = pem("instance-ca");
    let rendered = render_ok(
        JOB,
        &json!({"properties": {
            "gorouter_dns": [
                {"entry": "gorouter.service.cf.internal", "instance_group": "Router_Z1",
                 "network": "cf-net", "deployment": "cf", "domain": "bosh"}
            ],
            "promfetcher": {
                "port": 443,
                "base_url": "https://promfetcher.sys.example.com",
                "enable_ssl": true,
                "skip_ssl_validation": true,
                "log_level": "debug",
                "max_idle_connections": 50,
                "disable_keep_alives": false,
                "tls_pem": {"cert_chain": tls.cert, "private_key": tls.key},
                "ca_certs": ca.cert,
                "backends": {"cert_chain": client.cert, "private_key": client.key, "max_conns": 200},
                "broker": {"enable": true, "username": "admin", "password": "br0ker",
                           "service_id": "11111111-2222-3333-4444-555555555555",
                           "plan_id": "66666666-7777-8888-9999-000000000000"},
                "database": {"user": "pf user@corp", "password": "p@ss:w/rd%",
                             "host": "mysql.service.cf.internal", "name": "promfetcher", "port": 3307,
                             // the original spec's defaults were strings
                             "cnx": {"max_open": "20", "max_idle": "2", "max_life": "30m"}},
                "gorouters": [
                    {"host": "10.0.16.5", "port": 8080, "user": "router-status", "password": "gorouter-secret"},
                    {"host": "10.0.16.6", "port": 8080, "user": "router-status", "pass": "other-secret"}
                ]
            }
        }}),
    );
    let config = checked_config(&rendered);
    assert_eq!(config.base_url, "https://promfetcher.sys.example.com");
    assert!(config.skip_ssl_validation);
    assert_eq!(config.logging.level, "debug");
    assert_eq!(config.max_idle_conns, 50);
    assert_eq!(config.ca_certs, ca.cert);
    assert_eq!(config.backends.cert_chain, client.cert);
    assert_eq!(config.backends.private_key.expose(), client.key);
    assert_eq!(config.backends.max_conns, 200);
    assert_eq!(
        config.broker.broker_service_id,
        "11111111-2222-3333-4444-555555555555"
    );
    assert_eq!(config.broker.pass.expose(), "br0ker");
    // the original template lost `password`; both spellings reach `pass` now
    assert_eq!(config.gorouters[0].pass.expose(), "gorouter-secret");
    assert_eq!(config.gorouters[1].pass.expose(), "other-secret");
    assert_eq!(config.gorouters[1].host, "10.0.16.6");
    // user and password are URL-encoded into db_conn
    assert_eq!(
        config.db_conn.expose(),
        "mysql://pf%20user%40corp:p%40ss%3Aw%2Frd%25@mysql.service.cf.internal:3307/promfetcher"
    );
    assert_eq!((config.sql_cnx_max_open, config.sql_cnx_max_idle), (20, 2));
    assert_eq!(config.sql_cnx_max_life, GoDuration::from_secs(1800));
    let aliases: Value = serde_json::from_str(&rendered.read("dns/aliases.json")).unwrap();
    assert_eq!(
        aliases,
        json!({"gorouter.service.cf.internal": ["q-s4.router-z1.cf-net.cf.bosh"]})
    );
}

#[test]
#[ignore = "needs ruby: run scripts/test-all"]
fn plain_http_with_the_broker_disabled_needs_no_database_nor_certificate() {
    let rendered = render_ok(
        JOB,
        &json!({"properties": {"promfetcher": {
            "enable_ssl": false,
            "port": 8085,
            "broker": {"enable": false}
        }}}),
    );
    let config = checked_config(&rendered);
    assert!(!config.enable_ssl);
    assert_eq!(config.port, 8085);
    assert!(config.db_conn.is_empty(), "{:?}", config.db_conn);
    // not the binary's defaults (user / password): the broker and /routes refuse everyone
    assert_eq!(config.broker.user, "");
    assert_eq!(config.broker.pass.expose(), "");
    assert_eq!(config.base_url, "http://10.0.1.10:8085");
    let bpm = rendered.read("config/bpm.yml");
    assert!(!bpm.contains("NET_BIND_SERVICE"), "{bpm}");
}

fn nats_tls_link(ca: &Pem) -> Value {
    json!({"nats-tls": {
        "instances": [{"address": "10.0.32.1"}, {"address": "10.0.32.2"}],
        "properties": {"nats": {
            "user": "nats", "password": "nats-secret", "hostname": "nats.service.cf.internal",
            "port": 4224, "external": {"tls": {"ca": ca.cert}}
        }}
    }})
}

#[test]
#[ignore = "needs ruby: run scripts/test-all"]
fn nats_servers_come_from_the_nats_tls_link() {
    let tls = pem("promfetcher");
    let ca = pem("nats-ca");
    let client = pem("nats-client");
    let properties = merged(
        required_properties(&tls),
        json!({"promfetcher": {"nats": {"cert_chain": client.cert, "private_key": client.key}}}),
    );
    let rendered = render_ok(
        JOB,
        &json!({"properties": properties, "links": nats_tls_link(&ca), "spec": {"index": 2}}),
    );
    let config = checked_config(&rendered);
    let hosts: Vec<(String, u16)> = config
        .nats
        .hosts
        .iter()
        .map(|h| (h.hostname.clone(), h.port))
        .collect();
    assert_eq!(
        hosts,
        [
            ("10.0.32.1".to_string(), 4224),
            ("10.0.32.2".to_string(), 4224)
        ]
    );
    assert_eq!(config.nats.user, "nats");
    assert_eq!(config.nats.pass.expose(), "nats-secret");
    assert!(config.nats.tls_enabled);
    assert_eq!(config.nats.ca_certs, ca.cert);
    assert_eq!(config.nats.cert_chain, client.cert);
    assert_eq!(config.nats.private_key.expose(), client.key);
    assert_eq!(config.index, 2);
}

#[test]
#[ignore = "needs ruby: run scripts/test-all"]
fn nats_servers_come_from_the_plain_nats_link_without_tls() {
    let tls = pem("promfetcher");
    let rendered = render_ok(
        JOB,
        &json!({
            "properties": required_properties(&tls),
            "links": {"nats": {
                "instances": [{"address": "q-nats-0.nats.default.cf.bosh"}],
                "properties": {"nats": {"user": "nats", "password": "plain-secret", "port": 4222}}
            }}
        }),
    );
    let config = checked_config(&rendered);
    assert_eq!(config.nats.hosts.len(), 1);
    assert_eq!(
        config.nats.hosts[0].hostname,
        "q-nats-0.nats.default.cf.bosh"
    );
    assert_eq!(config.nats.hosts[0].port, 4222);
    assert!(!config.nats.tls_enabled);
    assert_eq!(config.nats.pass.expose(), "plain-secret");
}

#[test]
#[ignore = "needs ruby: run scripts/test-all"]
fn nats_properties_win_over_a_link() {
    let tls = pem("promfetcher");
    let ca = pem("nats-ca");
    let properties = merged(
        required_properties(&tls),
        json!({"promfetcher": {"nats": {
            "hosts": [{"hostname": "nats-a.example.com", "port": 4242}],
            "user": "pf", "password": "own-secret", "tls_enabled": true, "ca_certs": ca.cert
        }}}),
    );
    let rendered = render_ok(
        JOB,
        &json!({"properties": properties, "links": nats_tls_link(&ca)}),
    );
    let config = checked_config(&rendered);
    assert_eq!(config.nats.hosts.len(), 1);
    assert_eq!(config.nats.hosts[0].hostname, "nats-a.example.com");
    assert_eq!(config.nats.hosts[0].port, 4242);
    assert_eq!(config.nats.user, "pf");
    assert_eq!(config.nats.pass.expose(), "own-secret");
    assert!(config.nats.tls_enabled);
}

#[test]
#[ignore = "needs ruby: run scripts/test-all"]
fn an_empty_gorouter_list_means_nats_only() {
    let tls = pem("promfetcher");
    let ca = pem("nats-ca");
    let client = pem("nats-client");
    let properties = merged(
        required_properties(&tls),
        json!({"promfetcher": {
            "gorouters": [],
            "nats": {"cert_chain": client.cert, "private_key": client.key}
        }}),
    );
    let rendered = render_ok(
        JOB,
        &json!({"properties": properties, "links": nats_tls_link(&ca)}),
    );
    let config = checked_config(&rendered);
    assert!(config.gorouters.is_empty());
    assert!(RouteSourceSettings::from_config(&config)
        .unwrap()
        .gorouters
        .is_empty());
    assert_eq!(config.nats.hosts.len(), 2);
}

#[test]
#[ignore = "needs ruby: run scripts/test-all"]
fn metrics_auth_properties_reach_the_config() {
    let tls = pem("promfetcher");
    for (auth, user, pass, token) in [
        (
            json!({"username": "prometheus", "password": "scrape-secret"}),
            "prometheus",
            "scrape-secret",
            "",
        ),
        (json!({"bearer_token": "t0ken"}), "", "", "t0ken"),
        (
            json!({"username": "p", "password": "s", "bearer_token": "t"}),
            "p",
            "s",
            "t",
        ),
    ] {
        let properties = merged(
            required_properties(&tls),
            json!({"promfetcher": {"metrics_auth": auth}}),
        );
        let config = checked_config(&render_ok(JOB, &json!({"properties": properties})));
        assert_eq!(config.metrics_auth.user, user);
        assert_eq!(config.metrics_auth.pass.expose(), pass);
        assert_eq!(config.metrics_auth.bearer_token.expose(), token);
    }
}

/// Every key of promfetcher's config file, as dotted paths (lists not descended).
fn key_paths(value: &serde_norway::Value, prefix: &str, out: &mut Vec<String>) {
    if let serde_norway::Value::Mapping(map) = value {
        for (key, child) in map {
            let key = key.as_str().unwrap_or_default();
            let path = if prefix.is_empty() {
                key.to_string()
            } else {
                format!("{prefix}.{key}")
            };
            out.push(path.clone());
            key_paths(child, &path, out);
        }
    }
}

#[test]
#[ignore = "needs ruby: run scripts/test-all"]
fn every_config_key_has_a_job_property() {
    let tls = pem("promfetcher");
    let client = pem("client");
    let properties = merged(
        required_properties(&tls),
        json!({"promfetcher": {
            "bind_address": "127.0.0.1",
            "health_check_port": 8181,
            "gorouter_poll_interval": "10s",
            "idle_conn_timeout": "45s",
            "max_idle_conns_per_host": 8,
            "ca_certs": client.cert,
            "backends": {"cert_chain": client.cert, "private_key": client.key},
            "logging": {"in_json": false, "no_color": false},
            "database": {"type": "postgres", "port": 5432, "not_exit_when_conn_failed": true},
            "external_exporters": [{"name": "sql", "host": "sql-exporter.example.com",
                                    "metrics_path": "/metrics", "scheme": "https",
                                    "params": {"target": ["{{ .AppID }}"]}}],
            "nats": {"hosts": [{"hostname": "10.0.0.9", "port": 4222}], "user": "n", "password": "p",
                     "tls_enabled": true, "ca_certs": client.cert,
                     "cert_chain": client.cert, "private_key": client.key,
                     "client_ping_interval": "15s"},
            "droplet_stale_threshold": "3m",
            "start_response_delay_interval": "7s",
            "route_registration_interval": "15s",
            "scrape": {"timeout": "20s", "timeout_offset": "1s", "connect_timeout": "2s",
                       "max_body_size": 1048576, "max_answer_size": 8388608, "max_redirects": 1, "max_concurrent_requests": 64},
            "shutdown": {"drain_timeout": "20s", "lame_duck_period": "5s"}
        }}),
    );
    let rendered = render_ok(JOB, &json!({"properties": properties}));
    let config = checked_config(&rendered);
    assert_eq!(config.bind_address, "127.0.0.1");
    assert_eq!(config.health_check_port, 8181);
    assert_eq!(config.gorouter_poll_interval, GoDuration::from_secs(10));
    assert_eq!(config.idle_conn_timeout, GoDuration::from_secs(45));
    assert_eq!(config.max_idle_conns_per_host, 8);
    assert!(!config.logging.in_json);
    assert_eq!(
        config.db_conn.expose(),
        "postgres://pf:db-secret@sql-db.service.cf.internal:5432/promfetcher"
    );
    assert!(config.not_exit_when_conn_failed);
    assert_eq!(config.external_exporters.len(), 1);
    assert_eq!(
        config.external_exporters[0].params["target"],
        ["{{ .AppID }}"]
    );
    assert_eq!(config.nats_client_ping_interval, GoDuration::from_secs(15));
    assert_eq!(config.droplet_stale_threshold, GoDuration::from_secs(180));
    assert_eq!(
        config.start_response_delay_interval,
        GoDuration::from_secs(7)
    );
    assert_eq!(
        config.route_registration_interval,
        GoDuration::from_secs(15)
    );
    assert_eq!(config.scrape.timeout, GoDuration::from_secs(20));
    assert_eq!(config.scrape.timeout_offset, GoDuration::from_secs(1));
    assert_eq!(config.scrape.connect_timeout, GoDuration::from_secs(2));
    assert_eq!(config.scrape.max_body_size, 1_048_576);
    assert_eq!(config.scrape.max_answer_size, 8_388_608);
    assert_eq!(config.scrape.max_redirects, 1);
    assert_eq!(config.scrape.max_concurrent_requests, 64);
    assert_eq!(config.shutdown.drain_timeout, GoDuration::from_secs(20));
    assert_eq!(config.shutdown.lame_duck_period, GoDuration::from_secs(5));

    // the rendered file names every key promfetcher has
    let mut wanted = Vec::new();
    key_paths(
        &serde_norway::to_value(Config::default()).unwrap(),
        "",
        &mut wanted,
    );
    let rendered_yaml: serde_norway::Value =
        serde_norway::from_str(&rendered.read("config/config.yml")).unwrap();
    let mut present = Vec::new();
    key_paths(&rendered_yaml, "", &mut present);
    let missing: Vec<&String> = wanted.iter().filter(|k| !present.contains(k)).collect();
    assert!(
        missing.is_empty(),
        "config keys without a job property: {missing:?}"
    );
}

#[test]
#[ignore = "needs ruby: run scripts/test-all"]
fn invalid_manifests_are_refused_when_rendering() {
    let tls = pem("promfetcher");
    let base = required_properties(&tls);
    let without = |path: &[&str]| {
        let mut value = base.clone();
        let (last, parents) = path.split_last().unwrap();
        let mut node = &mut value;
        for key in parents {
            node = node.get_mut(*key).unwrap();
        }
        node.as_object_mut().unwrap().remove(*last);
        value
    };
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "TLS on without a certificate",
            without(&["promfetcher", "tls_pem"]),
            "promfetcher.tls_pem.cert_chain and promfetcher.tls_pem.private_key are required",
        ),
        (
            "a backend certificate without its key",
            merged(
                base.clone(),
                json!({"promfetcher": {"backends": {"cert_chain": tls.cert}}}),
            ),
            "promfetcher.backends.cert_chain and promfetcher.backends.private_key must be given together",
        ),
        (
            "the broker on without a database user",
            without(&["promfetcher", "database", "user"]),
            "Can't find property 'promfetcher.database.user'",
        ),
        (
            "the broker on without its password",
            without(&["promfetcher", "broker", "password"]),
            "Can't find property 'promfetcher.broker.password'",
        ),
        (
            "a gorouter without a host",
            merged(
                base.clone(),
                json!({"promfetcher": {"gorouters": [{"port": 8082, "user": "u", "password": "p"}]}}),
            ),
            "promfetcher.gorouters[0].host is missing",
        ),
        (
            "no gorouter and no NATS",
            merged(base.clone(), json!({"promfetcher": {"gorouters": []}})),
            "promfetcher.gorouters is empty and there is no NATS",
        ),
        (
            "a metrics_auth user without password",
            merged(
                base.clone(),
                json!({"promfetcher": {"metrics_auth": {"username": "prometheus"}}}),
            ),
            "promfetcher.metrics_auth.username and promfetcher.metrics_auth.password must be given together",
        ),
        (
            "CA certificates as a list",
            merged(
                base.clone(),
                json!({"promfetcher": {"ca_certs": [tls.cert]}}),
            ),
            "promfetcher.ca_certs must be given as one string block",
        ),
        (
            "an unsupported database",
            merged(
                base.clone(),
                json!({"promfetcher": {"database": {"type": "sqlite"}}}),
            ),
            "is not one of mysql, mariadb, postgres",
        ),
        (
            "a port that is not a number",
            merged(base.clone(), json!({"promfetcher": {"port": "https"}})),
            "promfetcher.port: \"https\" is not an integer",
        ),
        (
            "a lame-duck period that is not a duration",
            merged(
                base.clone(),
                json!({"promfetcher": {"shutdown": {"lame_duck_period": "soon"}}}),
            ),
            "promfetcher.shutdown.lame_duck_period: \"soon\" is not a duration",
        ),
        (
            "a NATS client certificate without its key",
            merged(
                base.clone(),
                json!({"promfetcher": {"nats": {"cert_chain": tls.cert}}}),
            ),
            "promfetcher.nats.cert_chain and promfetcher.nats.private_key must be given together",
        ),
    ];
    for (name, properties, expected) in cases {
        match render(JOB, &json!({ "properties": properties })) {
            Ok(rendered) => panic!(
                "{name}: rendered anyway:\n{}",
                rendered.read("config/config.yml")
            ),
            Err(error) => assert!(error.contains(expected), "{name}: {error}"),
        }
    }
}

// ----- NATS as the newest original release spells it (`nats.*`) -------------------------------

/// The NATS section of a rendered config as an operator reads it.
#[derive(Debug, PartialEq)]
struct NatsSeen {
    servers: Vec<(String, u16)>,
    user: String,
    pass: String,
    tls: bool,
    ca: String,
    cert_chain: String,
    private_key: String,
}

fn nats_seen(config: &Config) -> NatsSeen {
    NatsSeen {
        servers: config
            .nats
            .hosts
            .iter()
            .map(|h| (h.hostname.clone(), h.port))
            .collect(),
        user: config.nats.user.clone(),
        pass: config.nats.pass.expose().to_string(),
        tls: config.nats.tls_enabled,
        ca: config.nats.ca_certs.clone(),
        cert_chain: config.nats.cert_chain.clone(),
        private_key: config.nats.private_key.expose().to_string(),
    }
}

fn servers(list: &[(&str, u16)]) -> Vec<(String, u16)> {
    list.iter().map(|(h, p)| (h.to_string(), *p)).collect()
}

/// The `nats` link of nats-release's `nats` job (plain NATS).
fn plain_nats_link() -> Value {
    json!({"nats": {
        "instances": [{"address": "10.0.31.1"}],
        "properties": {"nats": {"user": "nats-plain", "password": "plain-secret", "port": 4222}}
    }})
}

#[test]
#[ignore = "needs ruby: run scripts/test-all"]
fn a_newest_original_manifest_takes_nats_from_the_nats_tls_link_and_its_hostname() {
    let tls = pem("promfetcher");
    let ca = pem("nats-ca");
    let client = pem("nats-client");
    // the newest original's usage: consume nats-tls, give the client certificate as nats.*
    let properties = merged(
        required_properties(&tls),
        json!({"nats": {"cert_chain": client.cert, "private_key": client.key}}),
    );
    let expected = |servers: Vec<(String, u16)>| NatsSeen {
        servers,
        user: "nats".into(),
        pass: "nats-secret".into(),
        tls: true,
        ca: ca.cert.clone(),
        cert_chain: client.cert.clone(),
        private_key: client.key.clone(),
    };
    let rendered = render_ok(
        JOB,
        &json!({"properties": properties, "links": nats_tls_link(&ca)}),
    );
    assert_eq!(
        nats_seen(&checked_config(&rendered)),
        expected(servers(&[("nats.service.cf.internal", 4224)])),
        "the link's nats.hostname, as the original"
    );

    // a nats-tls link without nats.hostname: its instances' addresses
    let mut link = nats_tls_link(&ca);
    link["nats-tls"]["properties"]["nats"]
        .as_object_mut()
        .unwrap()
        .remove("hostname");
    let rendered = render_ok(JOB, &json!({"properties": properties, "links": link}));
    assert_eq!(
        nats_seen(&checked_config(&rendered)),
        expected(servers(&[("10.0.32.1", 4224), ("10.0.32.2", 4224)]))
    );
}

#[test]
#[ignore = "needs ruby: run scripts/test-all"]
fn a_newest_original_manifest_takes_nats_from_nats_machines_with_tls_and_a_client_certificate() {
    let tls = pem("promfetcher");
    let ca = pem("nats-ca");
    let link_ca = pem("link-ca");
    let client = pem("nats-client");
    let properties = merged(
        required_properties(&tls),
        json!({"nats": {
            "machines": ["10.0.16.20", "10.0.16.21"], "port": 4224,
            "user": "nats-user", "password": "machines-secret",
            "tls_enabled": true, "ca_certs": ca.cert,
            "cert_chain": client.cert, "private_key": client.key
        }}),
    );
    let all_given = NatsSeen {
        servers: servers(&[("10.0.16.20", 4224), ("10.0.16.21", 4224)]),
        user: "nats-user".into(),
        pass: "machines-secret".into(),
        tls: true,
        ca: ca.cert.clone(),
        cert_chain: client.cert.clone(),
        private_key: client.key.clone(),
    };
    let rendered = render_ok(JOB, &json!({"properties": properties}));
    assert_eq!(nats_seen(&checked_config(&rendered)), all_given);

    // each property wins over the link
    let rendered = render_ok(
        JOB,
        &json!({"properties": properties, "links": nats_tls_link(&link_ca)}),
    );
    assert_eq!(nats_seen(&checked_config(&rendered)), all_given);

    // only nats.machines given: port, user, password and CA from the nats-tls link
    let properties = merged(
        required_properties(&tls),
        json!({"nats": {"machines": ["10.0.16.20"], "cert_chain": client.cert, "private_key": client.key}}),
    );
    let rendered = render_ok(
        JOB,
        &json!({"properties": properties, "links": nats_tls_link(&link_ca)}),
    );
    assert_eq!(
        nats_seen(&checked_config(&rendered)),
        NatsSeen {
            servers: servers(&[("10.0.16.20", 4224)]),
            user: "nats".into(),
            pass: "nats-secret".into(),
            tls: true,
            ca: link_ca.cert.clone(),
            cert_chain: client.cert.clone(),
            private_key: client.key.clone(),
        }
    );
}

#[test]
#[ignore = "needs ruby: run scripts/test-all"]
fn a_newest_original_manifest_with_tls_disabled_takes_the_plain_nats_link() {
    let tls = pem("promfetcher");
    let ca = pem("nats-ca");
    let properties = merged(
        required_properties(&tls),
        json!({"nats": {"tls_enabled": false}}),
    );
    let mut links = nats_tls_link(&ca);
    links["nats"] = plain_nats_link()["nats"].clone();
    let rendered = render_ok(JOB, &json!({"properties": properties, "links": links}));
    assert_eq!(
        nats_seen(&checked_config(&rendered)),
        NatsSeen {
            servers: servers(&[("10.0.31.1", 4222)]),
            user: "nats-plain".into(),
            pass: "plain-secret".into(),
            tls: false,
            ca: String::new(),
            cert_chain: String::new(),
            private_key: String::new(),
        },
        "nats.tls_enabled: false takes the nats link even beside nats-tls"
    );
}

#[test]
#[ignore = "needs ruby: run scripts/test-all"]
fn a_v0_20_manifest_with_gorouters_only_renders_without_nats() {
    let tls = pem("promfetcher");
    let properties = merged(
        required_properties(&tls),
        json!({"promfetcher": {"gorouters": [
            {"host": "10.0.16.5", "port": 8080, "user": "router-status", "password": "gorouter-secret"}
        ]}}),
    );
    let config = checked_config(&render_ok(JOB, &json!({ "properties": properties })));
    assert_eq!(config.gorouters.len(), 1);
    assert_eq!(config.gorouters[0].host, "10.0.16.5");
    assert_eq!(config.gorouters[0].pass.expose(), "gorouter-secret");
    // nats.tls_enabled defaults to true as in the original, yet asks for no link nor CA
    assert_eq!(
        nats_seen(&config),
        NatsSeen {
            servers: vec![],
            user: String::new(),
            pass: String::new(),
            tls: false,
            ca: String::new(),
            cert_chain: String::new(),
            private_key: String::new(),
        }
    );
}

#[test]
#[ignore = "needs ruby: run scripts/test-all"]
fn the_same_nats_settings_as_promfetcher_nats_as_nats_or_both_render_the_same() {
    let tls = pem("promfetcher");
    let ca = pem("nats-ca");
    let client = pem("nats-client");
    let ours = json!({"promfetcher": {"nats": {
        "hosts": [{"hostname": "10.0.16.20", "port": 4224}, {"hostname": "10.0.16.21", "port": 4224}],
        "user": "nats-user", "password": "same-secret", "tls_enabled": true, "ca_certs": ca.cert,
        "cert_chain": client.cert, "private_key": client.key
    }}});
    let original = json!({"nats": {
        // the same servers in another order
        "machines": ["10.0.16.21", "10.0.16.20"], "port": 4224,
        "user": "nats-user", "password": "same-secret", "ca_certs": ca.cert,
        "cert_chain": client.cert, "private_key": client.key
    }});
    let expected = NatsSeen {
        servers: servers(&[("10.0.16.20", 4224), ("10.0.16.21", 4224)]),
        user: "nats-user".into(),
        pass: "same-secret".into(),
        tls: true,
        ca: ca.cert.clone(),
        cert_chain: client.cert.clone(),
        private_key: client.key.clone(),
    };
    for (spelling, patch, order) in [
        (
            "promfetcher.nats.*",
            ours.clone(),
            ["10.0.16.20", "10.0.16.21"],
        ),
        ("nats.*", original.clone(), ["10.0.16.21", "10.0.16.20"]),
        // both: they agree, and promfetcher.nats.hosts' order is written
        (
            "both",
            merged(ours.clone(), original.clone()),
            ["10.0.16.20", "10.0.16.21"],
        ),
    ] {
        let properties = merged(required_properties(&tls), patch);
        let rendered = render(JOB, &json!({ "properties": properties }))
            .unwrap_or_else(|error| panic!("{spelling}: {error}"));
        let mut seen = nats_seen(&checked_config(&rendered));
        let written: Vec<&str> = seen.servers.iter().map(|(h, _)| h.as_str()).collect();
        assert_eq!(written, order, "{spelling}");
        seen.servers.sort();
        assert_eq!(seen, expected, "{spelling}");
    }
}

#[test]
#[ignore = "needs ruby: run scripts/test-all"]
fn contradicting_nats_settings_fail_the_render_naming_both_properties() {
    let tls = pem("promfetcher");
    let ca = pem("nats-ca");
    let other_ca = pem("other-ca");
    let client = pem("nats-client");
    let other_client = pem("other-client");
    // agreeing settings, each case changes one side
    let base = merged(
        required_properties(&tls),
        json!({
            "promfetcher": {"nats": {"hosts": [{"hostname": "10.0.16.20", "port": 4224}]}},
            "nats": {"machines": ["10.0.16.20"], "port": 4224, "ca_certs": ca.cert}
        }),
    );
    let agreeing = checked_config(&render_ok(JOB, &json!({ "properties": base })));
    assert_eq!(agreeing.nats.hosts.len(), 1);
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "other hosts",
            json!({"nats": {"machines": ["10.0.16.99"]}}),
            "promfetcher.nats.hosts (10.0.16.20:4224) and nats.machines on nats.port (10.0.16.99:4224) name different NATS servers",
        ),
        (
            "another port",
            json!({"nats": {"port": 4222}}),
            "promfetcher.nats.hosts (10.0.16.20:4224) and nats.machines on nats.port (10.0.16.20:4222) name different NATS servers",
        ),
        (
            "other users",
            json!({"promfetcher": {"nats": {"user": "alice"}}, "nats": {"user": "bob"}}),
            "promfetcher.nats.user and nats.user are both set and differ",
        ),
        (
            "other passwords",
            json!({"promfetcher": {"nats": {"password": "first-secret"}}, "nats": {"password": "second-secret"}}),
            "promfetcher.nats.password and nats.password are both set and differ",
        ),
        (
            "another CA",
            json!({"promfetcher": {"nats": {"ca_certs": other_ca.cert}}}),
            "promfetcher.nats.ca_certs and nats.ca_certs are both set and differ",
        ),
        (
            "another client certificate",
            json!({
                "promfetcher": {"nats": {"cert_chain": client.cert, "private_key": client.key}},
                "nats": {"cert_chain": other_client.cert, "private_key": other_client.key}
            }),
            "promfetcher.nats.cert_chain/private_key and nats.cert_chain/private_key are both set and differ",
        ),
        (
            "TLS on and off",
            json!({"promfetcher": {"nats": {"tls_enabled": true}}, "nats": {"tls_enabled": false}}),
            "promfetcher.nats.tls_enabled is true and nats.tls_enabled is false",
        ),
    ];
    for (name, patch, expected) in cases {
        let error = render(JOB, &json!({"properties": merged(base.clone(), patch)}))
            .err()
            .unwrap_or_else(|| panic!("{name}: rendered anyway"));
        assert!(error.contains(expected), "{name}: {error}");
        for secret in ["first-secret", "second-secret", "BEGIN"] {
            assert!(
                !error.contains(secret),
                "{name}: a value is printed: {error}"
            );
        }
    }
}

#[test]
#[ignore = "needs ruby: run scripts/test-all"]
fn incomplete_original_nats_settings_fail_the_render() {
    let tls = pem("promfetcher");
    let ca = pem("nats-ca");
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "nats.* without any server",
            json!({"nats": {"user": "nats"}}),
            "nats.* properties are set but name no NATS server: set nats.machines and nats.port, or consume the nats-tls link",
        ),
        (
            "nats.machines without a port",
            json!({"nats": {"machines": ["10.0.16.20"], "ca_certs": ca.cert}}),
            "nats.machines is set but no port: set nats.port",
        ),
        (
            "TLS (the default) without a CA",
            json!({"nats": {"machines": ["10.0.16.20"], "port": 4224}}),
            "NATS over TLS (nats.tls_enabled, default true) needs the servers' CA",
        ),
        (
            "a client certificate without its key",
            json!({"nats": {"machines": ["10.0.16.20"], "port": 4224, "ca_certs": ca.cert, "cert_chain": ca.cert}}),
            "nats.cert_chain and nats.private_key must be given together",
        ),
        (
            "nats.machines as one string",
            json!({"nats": {"machines": "10.0.16.20", "port": 4224}}),
            "nats.machines must be a list of NATS hosts",
        ),
    ];
    for (name, patch, expected) in cases {
        let properties = merged(required_properties(&tls), patch);
        let error = render(JOB, &json!({ "properties": properties }))
            .err()
            .unwrap_or_else(|| panic!("{name}: rendered anyway"));
        assert!(error.contains(expected), "{name}: {error}");
    }
}

// ----- drain ----------------------------------------------------------------------------------

fn drain_script() -> Rendered {
    render_ok(
        JOB,
        &json!({"properties": {"promfetcher": {"enable_ssl": false, "broker": {"enable": false}}}}),
    )
}

/// Runs the rendered drain script like BOSH (`job_shutdown hash_unchanged`, then
/// `job_check_status`), with the pidfile at `pidfile`; returns what it printed on stdout.
fn run_drain(rendered: &Rendered, pidfile: &Path, args: &[&str]) -> String {
    let output = Command::new("bash")
        .arg(rendered.path("bin/drain"))
        .args(args)
        .env("PROMFETCHER_DRAIN_PIDFILE", pidfile)
        .output()
        .unwrap();
    assert!(output.status.success(), "drain failed: {output:?}");
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs ruby: run scripts/test-all"]
async fn drain_script_lame_ducks_a_live_promfetcher_until_it_exits_0() {
    let rendered = drain_script();
    let foundation = Foundation::start(FoundationSpec::dev_default())
        .await
        .unwrap();
    let mut config = config_for(&foundation);
    config.shutdown.lame_duck_period = GoDuration::from_secs(2);
    let mut process = Process::start(PROMFETCHER, &config);
    let client = client();
    let deadline = Instant::now() + WAIT_LIMIT;
    while common::status_of(&client, &process.health).await != Some(200) {
        assert!(Instant::now() < deadline, "promfetcher never became ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let run_dir = tempfile::tempdir().unwrap();
    let pidfile = run_dir.path().join("promfetcher.pid");
    std::fs::write(&pidfile, format!("{}\n", process.child.id())).unwrap();

    assert_eq!(
        run_drain(&rendered, &pidfile, &["job_shutdown", "hash_unchanged"]),
        "-5"
    );
    assert_eq!(
        common::status_of(&client, &process.health).await,
        Some(503),
        "health is 503 as soon as the drain script returns"
    );
    // still serving during the lame-duck period, and BOSH is told to come back
    assert_eq!(run_drain(&rendered, &pidfile, &["job_check_status"]), "-5");

    let deadline = Instant::now() + WAIT_LIMIT;
    loop {
        let answer = run_drain(&rendered, &pidfile, &["job_check_status"]);
        if answer == "0" {
            break;
        }
        assert_eq!(answer, "-5");
        assert!(Instant::now() < deadline, "the drain never ended");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let exit = tokio::task::spawn_blocking(move || process.wait_exit())
        .await
        .unwrap();
    assert_eq!(exit.code(), Some(0));
    assert!(
        !run_dir.path().join("promfetcher.pid.drain").exists(),
        "the drain state is cleaned up"
    );
}

#[test]
#[ignore = "needs ruby: run scripts/test-all"]
fn drain_script_says_0_when_there_is_nothing_to_drain() {
    let rendered = drain_script();
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("promfetcher.pid");
    assert_eq!(run_drain(&rendered, &pidfile, &[]), "0", "no pidfile");
    std::fs::write(&pidfile, "").unwrap();
    assert_eq!(run_drain(&rendered, &pidfile, &[]), "0", "empty pidfile");

    let mut gone = Command::new("true").spawn().unwrap();
    let gone_pid = gone.id();
    gone.wait().unwrap();
    std::fs::write(&pidfile, format!("{gone_pid}\n")).unwrap();
    assert_eq!(
        run_drain(&rendered, &pidfile, &[]),
        "0",
        "pidfile of an exited process"
    );

    // a stale pidfile whose number now belongs to another program: that program is left alone
    let mut other = Command::new("sleep")
        .arg("30")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    std::fs::write(&pidfile, format!("{}\n", other.id())).unwrap();
    assert_eq!(run_drain(&rendered, &pidfile, &[]), "0", "pid reused");
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        other.try_wait().unwrap().is_none(),
        "another program was signalled"
    );
    other.kill().unwrap();
    other.wait().unwrap();
}

// ----- broker-registration errand --------------------------------------------------------------

const FAKE_CF: &str = r#"#!/usr/bin/env bash
# records each call; `cf auth` records the credentials it found in the environment
{
  printf 'cf'
  printf ' %s' "$@"
  if [ "${1:-}" = auth ]; then
    printf ' CF_USERNAME=%s CF_PASSWORD=%s' "${CF_USERNAME:-}" "${CF_PASSWORD:-}"
  fi
  printf '\n'
} >>"${FAKE_CF_LOG}"
case "${1:-}" in
  service-brokers)
    printf 'Getting service brokers as admin...\n\nname   url\n'
    [ -n "${FAKE_CF_BROKER:-}" ] && printf '%s   https://old.example.com/broker\n' "${FAKE_CF_BROKER}"
    ;;
  *) echo "OK" ;;
esac
exit 0
"#;

fn registrar_input() -> Value {
    json!({"properties": {
        "cf": {"api_url": "https://api.sys.example.com", "username": "admin",
               "password": "cf pa$$word 'quoted'", "skip_ssl_validation": true},
        "promfetcher": {"base_url": "https://promfetcher.sys.example.com/",
                        "broker": {"username": "broker", "password": "br\"oker $ecret"}}
    }})
}

/// Runs the rendered errand with a fake `cf` first on PATH; returns (cf calls, errand output).
fn run_registrar(existing_broker: &str) -> (Vec<String>, String) {
    let rendered = render_ok(REGISTRAR, &registrar_input());
    let bin = tempfile::tempdir().unwrap();
    let cf = bin.path().join("cf");
    std::fs::write(&cf, FAKE_CF).unwrap();
    let status = Command::new("chmod").arg("+x").arg(&cf).status().unwrap();
    assert!(status.success());
    let log = bin.path().join("calls.log");
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let output: Output = Command::new("bash")
        .arg(rendered.path("bin/run"))
        .env("PATH", path)
        .env("FAKE_CF_LOG", &log)
        .env("FAKE_CF_BROKER", existing_broker)
        .output()
        .unwrap();
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "errand failed: {printed}");
    let calls = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    (calls, printed)
}

#[test]
#[ignore = "needs ruby: run scripts/test-all"]
fn registrar_errand_creates_the_broker_without_printing_a_password() {
    let (calls, printed) = run_registrar("");
    assert_eq!(
        calls,
        [
            "cf api https://api.sys.example.com --skip-ssl-validation",
            "cf auth CF_USERNAME=admin CF_PASSWORD=cf pa$$word 'quoted'",
            "cf service-brokers",
            "cf create-service-broker promfetcher broker br\"oker $ecret https://promfetcher.sys.example.com/broker",
            "cf enable-service-access promfetcher",
        ]
    );
    for secret in ["pa$$word", "$ecret"] {
        assert!(!printed.contains(secret), "{secret} printed:\n{printed}");
    }
}

#[test]
#[ignore = "needs ruby: run scripts/test-all"]
fn registrar_errand_updates_a_broker_that_exists() {
    let (calls, _) = run_registrar("promfetcher");
    assert_eq!(
        calls[3],
        "cf update-service-broker promfetcher broker br\"oker $ecret https://promfetcher.sys.example.com/broker"
    );
    assert_eq!(calls[4], "cf enable-service-access promfetcher");
    let (calls, _) = run_registrar("promfetcher-other");
    assert!(
        calls[3].starts_with("cf create-service-broker "),
        "{calls:?}"
    );
}

#[test]
#[ignore = "needs ruby: run scripts/test-all"]
fn registrar_errand_refuses_a_missing_or_bad_base_url() {
    let mut input = registrar_input();
    input["properties"]["promfetcher"]
        .as_object_mut()
        .unwrap()
        .remove("base_url");
    let error = render(REGISTRAR, &input).err().expect("refused");
    assert!(
        error.contains("Can't find property 'promfetcher.base_url'"),
        "{error}"
    );
    input["properties"]["promfetcher"]["base_url"] = json!("promfetcher.sys.example.com");
    let error = render(REGISTRAR, &input).err().expect("refused");
    assert!(error.contains("is not an http(s) URL"), "{error}");
}

#[test]
fn every_job_property_is_used_by_a_template() {
    for job in [JOB, REGISTRAR, "promfetcher_alerts"] {
        let dir = repo().join("bosh/jobs").join(job);
        let spec: serde_norway::Value =
            serde_norway::from_str(&std::fs::read_to_string(dir.join("spec")).unwrap()).unwrap();
        let mut templates = String::new();
        for source in spec["templates"].as_mapping().unwrap().keys() {
            let source = source.as_str().unwrap();
            templates += &std::fs::read_to_string(dir.join("templates").join(source)).unwrap();
        }
        for name in spec["properties"].as_mapping().unwrap().keys() {
            let name = name.as_str().unwrap();
            assert!(
                templates.contains(&format!("'{name}'"))
                    || templates.contains(&format!("\"{name}\"")),
                "{job}: property {name} is declared but no template reads it"
            );
        }
    }
}

/// What `bosh create-release` reads of each job is there: a `spec`, a `monit` (empty for an
/// errand or a job with nothing to run), each template the spec names, and the packages it
/// names under `bosh/packages`.
#[test]
fn every_job_has_what_bosh_create_release_reads() {
    let jobs = std::fs::read_dir(repo().join("bosh/jobs")).unwrap();
    let mut seen = 0;
    for job in jobs {
        let dir = job.unwrap().path();
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        assert!(dir.join("monit").is_file(), "{name}: no monit file");
        let spec: serde_norway::Value =
            serde_norway::from_str(&std::fs::read_to_string(dir.join("spec")).unwrap()).unwrap();
        assert_eq!(
            spec["name"].as_str(),
            Some(name.as_str()),
            "{name}: spec name"
        );
        for source in spec["templates"].as_mapping().unwrap().keys() {
            let source = source.as_str().unwrap();
            assert!(
                dir.join("templates").join(source).is_file(),
                "{name}: template {source} is missing"
            );
        }
        for package in spec["packages"].as_sequence().into_iter().flatten() {
            let package = package.as_str().unwrap();
            assert!(
                repo()
                    .join("bosh/packages")
                    .join(package)
                    .join("spec")
                    .is_file(),
                "{name}: package {package} is missing"
            );
        }
        seen += 1;
    }
    assert!(seen >= 5, "only {seen} jobs found");
}
