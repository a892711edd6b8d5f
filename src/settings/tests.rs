use super::*;
use crate::config::*;

/// A file as deployed with the original (v0.20 keys plus the NATS generation's).
const ORIGINAL_FILE: &str = r#"
gorouters:
- host: 10.0.16.5
  port: 8080
  user: router-status
  pass: s3cret-router
- host: 10.0.16.6
  port: 8080
  user: router-status
  pass: s3cret-router
logging:
  level: debug
  no_color: true
  in_json: false
port: 8085
health_check_port: 8080
enable_ssl: false
skip_ssl_validation: true
backends:
  max_conns: 10
broker:
  broker_service_id: 11111111-2222-3333-4444-555555555555
  broker_plan_id: 66666666-7777-8888-9999-000000000000
  user: broker
  pass: s3cret-broker
disable_keep_alives: true
max_idle_conns: 100
max_idle_conns_per_host: 2
db_conn: postgres://promfetcher:s3cret-db@db.example.com:5432/promfetcher
sql_cnx_max_idle: 5
sql_cnx_max_open: 10
sql_cnx_max_life: 1h
not_exit_when_conn_failed: true
base_url: https://promfetcher.sys.example.com
external_exporters:
- name: sql
  host: sql-exporter.example.com
  metrics_path: /metrics
  scheme: https
  params:
    target: ["{{ .AppID }}"]
    api_key: [s3cret-exporter]
nats:
  hosts:
  - hostname: 10.0.16.10
    port: 4222
  user: nats
  pass: s3cret-nats
  tls_enabled: false
nats_client_ping_interval: 20s
droplet_stale_threshold: 120s
start_response_delay_interval: 5s
idle_conn_timeout: 90s
index: 1
"#;

#[test]
fn loads_the_originals_file_unchanged() {
    let loaded = Settings::from_yaml(ORIGINAL_FILE).unwrap();
    assert!(loaded.unknown_keys.is_empty(), "{:?}", loaded.unknown_keys);
    let c = loaded.config;
    assert_eq!(c.gorouters.len(), 2);
    assert_eq!(c.gorouters[1].host, "10.0.16.6");
    assert_eq!(c.gorouters[0].pass.expose(), "s3cret-router");
    assert_eq!(c.broker.user, "broker");
    assert!(c.disable_keep_alives);
    assert_eq!(c.max_idle_conns_per_host, 2);
    assert_eq!(c.sql_cnx_max_life, GoDuration::from_secs(3600));
    assert_eq!(c.external_exporters[0].params["target"], ["{{ .AppID }}"]);
    assert_eq!(c.nats.hosts[0].port, 4222);
    assert_eq!(c.idle_conn_timeout, GoDuration::from_secs(90));
    // keys the file does not name keep their defaults
    assert_eq!(c.scrape.timeout, DEFAULT_SCRAPE_TIMEOUT);
    assert_eq!(c.shutdown.drain_timeout, DEFAULT_DRAIN_TIMEOUT);
}

#[test]
fn no_file_means_defaults() {
    let c = Settings::load(None).unwrap().config;
    assert_eq!(c.port, 8085);
    assert_eq!(c.health_check_port, 8080);
    assert_eq!(c.broker.broker_service_id, DEFAULT_BROKER_SERVICE_ID);
    assert_eq!(c.broker.broker_plan_id, DEFAULT_BROKER_PLAN_ID);
    assert!(!c.disable_keep_alives);
    assert_eq!(c.gorouter_poll_interval, GoDuration::from_secs(30));
}

#[test]
fn unknown_keys_are_named_not_fatal() {
    let loaded = Settings::from_yaml("port: 9000\nfoo: 1\nlogging:\n  colour: true\n").unwrap();
    assert_eq!(loaded.config.port, 9000);
    assert_eq!(loaded.unknown_keys, ["foo", "logging.colour"]);
}

fn error_of(yaml: &str) -> String {
    Settings::from_yaml(yaml).unwrap_err().to_string()
}

#[test]
fn errors_name_the_key_and_the_reason() {
    let table = [
        ("port: lots\n", "config key `port`: invalid type"),
        (
            "gorouters:\n- host: a\n  port: 70000\n",
            "config key `gorouters[0].port`",
        ),
        (
            "scrape:\n  timeout: 30\n",
            "config key `scrape.timeout`: invalid duration \"30\": missing unit",
        ),
        (
            "port: 9000\nhealth_check_port: 9000\n",
            "config key `health_check_port`: must differ from `port`",
        ),
        (
            "logging:\n  level: loud\n",
            "config key `logging.level`: unknown level \"loud\"",
        ),
        (
            "enable_ssl: true\n",
            "config key `tls_pem`: enable_ssl is true but cert_chain or private_key is missing",
        ),
        (
            "db_conn: oracle://x\n",
            "config key `db_conn`: unsupported database \"oracle\"",
        ),
        (
            "base_url: promfetcher\n",
            "config key `base_url`: \"promfetcher\" is not an absolute URL",
        ),
        (
            "gorouters:\n- host: ''\n  port: 8082\n",
            "config key `gorouters[0].host`: is empty",
        ),
        (
            "backends:\n  cert_chain: x\n",
            "config key `backends`: cert_chain and private_key must be given together",
        ),
        (
            "metrics_auth:\n  user: prometheus\n",
            "config key `metrics_auth.pass`: is empty but metrics_auth.user is set",
        ),
        (
            "metrics_auth:\n  pass: s3cret\n",
            "config key `metrics_auth.user`: is empty but metrics_auth.pass is set",
        ),
        (
            "metrics_auth:\n  user: 'a:b'\n  pass: s3cret\n",
            "config key `metrics_auth.user`: must not contain `:`",
        ),
        (
            "metrics_auth:\n  bearer_token: 'two words'\n",
            "config key `metrics_auth.bearer_token`: must not contain spaces",
        ),
        (
            "ca_certs: not a pem\n",
            "config key `ca_certs`: contains no PEM certificate",
        ),
        (
            "external_exporters:\n- {name: sql, host: db, params: {target: ['{{ .AppGUID }}']}}\n",
            "config key `external_exporters[0].params.target[0]`: exporter \"sql\": \"{{ .AppGUID }}\": unknown field .AppGUID",
        ),
        (
            "port: 8085\nfoo: [1, 2\n",
            "config key `foo`: did not find expected",
        ),
    ];
    for (yaml, expected) in table {
        let message = error_of(yaml);
        assert!(message.starts_with(expected), "{yaml:?} gave {message:?}");
        assert!(!message.contains('\n'), "one line: {message:?}");
    }
}

#[test]
fn masked_dump_hides_every_secret() {
    let c = Settings::from_yaml(ORIGINAL_FILE).unwrap().config;
    let dump = c.to_masked_yaml();
    for secret in [
        "s3cret-router",
        "s3cret-broker",
        "s3cret-db",
        "s3cret-nats",
        "s3cret-exporter",
    ] {
        assert!(!dump.contains(secret), "{secret} leaked:\n{dump}");
        assert!(
            !format!("{c:?}").contains(secret),
            "{secret} leaked by Debug"
        );
    }
    // an exporter param made of template fields only is shown
    assert!(dump.contains("{{ .AppID }}"), "{dump}");
    assert!(dump.contains("postgres://promfetcher:REDACTED@db.example.com:5432/promfetcher"));
    assert!(dump.contains("sql_cnx_max_life: 1h"));
    // the dump is itself a loadable config
    assert_eq!(Settings::from_yaml(&dump).unwrap().config.port, 8085);
}

#[test]
fn the_example_file_documents_exactly_the_defaults() {
    let loaded = Settings::from_yaml(include_str!("../../config.example.yml")).unwrap();
    assert!(loaded.unknown_keys.is_empty(), "{:?}", loaded.unknown_keys);
    assert_eq!(
        loaded.config.to_masked_yaml(),
        Config::default().to_masked_yaml()
    );
}

#[test]
fn a_ca_certs_block_that_is_not_pem_is_refused() {
    let message = error_of(
        "ca_certs: \"-----BEGIN CERTIFICATE-----\\nnot base64!\\n-----END CERTIFICATE-----\\n\"\n",
    );
    assert!(message.starts_with("config key `ca_certs`: "), "{message}");
}

#[test]
fn bad_backends_pem_names_the_key() {
    let refusal = |cert_chain: &str, private_key: &str| {
        let mut config = Config::default();
        config.backends.cert_chain = cert_chain.into();
        config.backends.private_key = crate::config::Secret::new(private_key);
        Settings::from_config(&config).unwrap_err().to_string()
    };
    let message = refusal("garbage", "garbage");
    assert!(
        message.starts_with("config key `backends.cert_chain`: "),
        "{message}"
    );
    let cert = rcgen::generate_simple_self_signed(vec!["client".into()]).unwrap();
    let message = refusal(&cert.cert.pem(), "no key here");
    assert!(
        message.starts_with("config key `backends.private_key`: contains no PEM private key"),
        "{message}"
    );
    let key = cert.signing_key.serialize_pem();
    assert!(Settings::from_config(&{
        let mut config = Config::default();
        config.backends.cert_chain = cert.cert.pem();
        config.backends.private_key = crate::config::Secret::new(key);
        config
    })
    .is_ok());
}
