//! The configuration file's shapes: every key of the original promfetcher's YAML file (so a
//! deployed file loads unchanged), the keys this implementation adds (each with a default, so no
//! file is needed), the keys a file has that promfetcher does not know, and how secrets are
//! masked when the configuration is shown. It reads files and reports what serde cannot parse;
//! checking values and turning them into each subsystem's settings is [`crate::settings`]'s job.
//! It imports nothing from the rest of the crate.

mod duration;
pub mod param_template;
pub mod pem;
mod secret;

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

pub use duration::GoDuration;
pub use secret::{Secret, UrlWithSecret, MASK};

/// Main HTTP port of the original.
pub const DEFAULT_PORT: u16 = 8085;
/// Health port of the original.
pub const DEFAULT_HEALTH_CHECK_PORT: u16 = 8080;
/// How often the gorouters' `/routes` is polled (the original's fixed 30 s).
pub const DEFAULT_GOROUTER_POLL_INTERVAL: GoDuration = GoDuration::from_secs(30);
/// Upper bound of one instance scrape (the original's fixed timeout).
pub const DEFAULT_SCRAPE_TIMEOUT: GoDuration = GoDuration::from_secs(30);
/// Taken off the caller's `X-Prometheus-Scrape-Timeout-Seconds` so the merged answer arrives in time.
pub const DEFAULT_SCRAPE_TIMEOUT_OFFSET: GoDuration = GoDuration::from_millis(500);
pub const DEFAULT_CONNECT_TIMEOUT: GoDuration = GoDuration::from_secs(5);
/// Largest decompressed body accepted from one instance.
pub const DEFAULT_MAX_BODY_SIZE: u64 = 64 * 1024 * 1024;
/// Largest merged answer, before compression (`scrape.max_answer_size`): 100 instances of
/// 2,000 series make 58 MB.
pub const DEFAULT_MAX_ANSWER_SIZE: u64 = 256 * 1024 * 1024;
pub const DEFAULT_MAX_REDIRECTS: usize = 3;
/// Instance requests in flight at once, over all callers.
pub const DEFAULT_MAX_CONCURRENT_SCRAPES: usize = 1024;
/// Least time between two diagnosis scrapes of one app.
pub const DEFAULT_DIAGNOSIS_INTERVAL: GoDuration = GoDuration::from_secs(5);
pub const DEFAULT_IDLE_CONN_TIMEOUT: GoDuration = GoDuration::from_secs(90);
pub const DEFAULT_MAX_IDLE_CONNS: usize = 100;
pub const DEFAULT_MAX_IDLE_CONNS_PER_HOST: usize = 16;
/// How long in-flight requests may finish after SIGTERM (the original's 15 s).
pub const DEFAULT_DRAIN_TIMEOUT: GoDuration = GoDuration::from_secs(15);
/// After SIGUSR1: health answers 503 for this long, while traffic is still served.
pub const DEFAULT_LAME_DUCK_PERIOD: GoDuration = GoDuration::from_secs(10);
pub const DEFAULT_BROKER_SERVICE_ID: &str = "75bcebab-cc25-4ef6-89dc-a91b953919f1";
pub const DEFAULT_BROKER_PLAN_ID: &str = "e2900be3-709b-419e-b63b-de3aabcd9e15";
/// Where the embedded SQLite database lives when `db_conn` is empty (relative to the working directory).
pub const DEFAULT_DATA_DIR: &str = "promfetcher-data";
/// How often the broker's endpoints are re-read from the database.
pub const DEFAULT_DB_REFRESH_INTERVAL: GoDuration = GoDuration::from_secs(10);

/// The whole configuration file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    pub gorouters: Vec<GorouterConfig>,
    /// New: how often each gorouter's `/routes` is fetched.
    pub gorouter_poll_interval: GoDuration,
    pub logging: LoggingConfig,
    /// New: address both listeners bind to.
    pub bind_address: String,
    pub port: u16,
    pub health_check_port: u16,
    pub enable_ssl: bool,
    pub tls_pem: TlsPem,
    /// Extra CA certificates (PEM) trusted when scraping TLS instances.
    pub ca_certs: String,
    pub skip_ssl_validation: bool,
    pub backends: BackendsConfig,
    pub broker: BrokerConfig,
    /// New: credentials callers must present on the metrics endpoints (open when all empty).
    pub metrics_auth: MetricsAuthConfig,
    pub disable_keep_alives: bool,
    pub max_idle_conns: usize,
    pub max_idle_conns_per_host: usize,
    pub idle_conn_timeout: GoDuration,
    pub db_conn: UrlWithSecret,
    pub sql_cnx_max_idle: u32,
    pub sql_cnx_max_open: u32,
    pub sql_cnx_max_life: GoDuration,
    pub not_exit_when_conn_failed: bool,
    /// New: how often every promfetcher re-reads the endpoints from the database.
    pub db_refresh_interval: GoDuration,
    /// New: directory of the embedded SQLite database (used when `db_conn` is empty); empty means
    /// a temporary directory removed at stop.
    pub data_dir: String,
    pub base_url: String,
    pub external_exporters: Vec<ExternalExporterConfig>,
    pub nats: NatsConfig,
    pub nats_client_ping_interval: GoDuration,
    pub droplet_stale_threshold: GoDuration,
    pub start_response_delay_interval: GoDuration,
    /// New: the interval registrars are asked to register their routes at
    /// (`minimumRegisterIntervalInSeconds` of `router.start` and of the answers to
    /// `router.greet`); route-emitter adopts it foundation-wide, so it is gorouter's
    /// (routing-release's `requested_route_registration_interval_in_seconds`, 20 s). The original
    /// sent `start_response_delay_interval` (5 s), which made every route-emitter register
    /// four times as often.
    pub route_registration_interval: GoDuration,
    pub index: u32,
    /// New: how instances are scraped.
    pub scrape: ScrapeConfig,
    /// New: how the process stops.
    pub shutdown: ShutdownConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            gorouters: vec![GorouterConfig::default()],
            gorouter_poll_interval: DEFAULT_GOROUTER_POLL_INTERVAL,
            logging: LoggingConfig::default(),
            bind_address: "0.0.0.0".into(),
            port: DEFAULT_PORT,
            health_check_port: DEFAULT_HEALTH_CHECK_PORT,
            enable_ssl: false,
            tls_pem: TlsPem::default(),
            ca_certs: String::new(),
            skip_ssl_validation: false,
            backends: BackendsConfig::default(),
            broker: BrokerConfig::default(),
            metrics_auth: MetricsAuthConfig::default(),
            disable_keep_alives: false,
            max_idle_conns: DEFAULT_MAX_IDLE_CONNS,
            max_idle_conns_per_host: DEFAULT_MAX_IDLE_CONNS_PER_HOST,
            idle_conn_timeout: DEFAULT_IDLE_CONN_TIMEOUT,
            db_conn: UrlWithSecret::default(),
            sql_cnx_max_idle: 5,
            sql_cnx_max_open: 10,
            sql_cnx_max_life: GoDuration::from_secs(3600),
            not_exit_when_conn_failed: false,
            db_refresh_interval: DEFAULT_DB_REFRESH_INTERVAL,
            data_dir: DEFAULT_DATA_DIR.into(),
            base_url: format!("http://localhost:{DEFAULT_PORT}"),
            external_exporters: Vec::new(),
            nats: NatsConfig::default(),
            nats_client_ping_interval: GoDuration::from_secs(20),
            droplet_stale_threshold: GoDuration::from_secs(120),
            start_response_delay_interval: GoDuration::from_secs(5),
            route_registration_interval: GoDuration::from_secs(20),
            index: 0,
            scrape: ScrapeConfig::default(),
            shutdown: ShutdownConfig::default(),
        }
    }
}

/// One gorouter whose `/routes` is polled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct GorouterConfig {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub pass: Secret,
}

impl Default for GorouterConfig {
    fn default() -> Self {
        GorouterConfig {
            host: "localhost".into(),
            port: 8080,
            user: String::new(),
            pass: Secret::default(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct LoggingConfig {
    /// trace, debug, info, warn (warning), error, fatal, panic — the original's logrus levels.
    pub level: String,
    pub no_color: bool,
    pub in_json: bool,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        LoggingConfig {
            level: "info".into(),
            no_color: false,
            in_json: false,
        }
    }
}

impl LoggingConfig {
    /// The `logging` section of the YAML file at `path`, read on its own so that a problem
    /// elsewhere in the file can still be logged the way the operator asked (e.g. as JSON).
    /// `None` when the file or that section cannot be read.
    pub fn of_file(path: &Path) -> Option<LoggingConfig> {
        #[derive(Deserialize)]
        struct LoggingOnly {
            #[serde(default)]
            logging: LoggingConfig,
        }
        let text = std::fs::read_to_string(path).ok()?;
        serde_norway::from_str::<LoggingOnly>(&text)
            .ok()
            .map(|file| file.logging)
    }
}

/// A certificate chain and its private key, both PEM.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct TlsPem {
    pub cert_chain: String,
    pub private_key: Secret,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct BackendsConfig {
    /// Accepted for compatibility; each fan-out opens at most one connection per instance.
    pub max_conns: i64,
    /// Client certificate presented to TLS instances.
    pub cert_chain: String,
    pub private_key: Secret,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct BrokerConfig {
    pub broker_service_id: String,
    pub broker_plan_id: String,
    pub user: String,
    pub pass: Secret,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            broker_service_id: DEFAULT_BROKER_SERVICE_ID.into(),
            broker_plan_id: DEFAULT_BROKER_PLAN_ID.into(),
            user: "user".into(),
            pass: Secret::new("password"),
        }
    }
}

/// New keys: optional inbound auth on the metrics endpoints. With `user`/`pass` callers may
/// use HTTP basic auth, with `bearer_token` `Authorization: Bearer`; either is accepted when
/// both are set. The caller's `Authorization` is then promfetcher's and is not forwarded.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct MetricsAuthConfig {
    pub user: String,
    pub pass: Secret,
    pub bearer_token: Secret,
}

/// An exporter asked about every app beside the app's instances (see
/// [`crate::fanout::external_exporters`], which validates it). `params` values are Go-template strings
/// such as `"{{ .AppID }}"`; printed (Debug, `check-config`) with literal values masked, since
/// exporters often take API keys as query parameters.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ExternalExporterConfig {
    pub name: String,
    pub host: String,
    pub metrics_path: String,
    pub scheme: String,
    #[serde(serialize_with = "serialize_masked_params")]
    pub params: BTreeMap<String, Vec<String>>,
}

impl std::fmt::Debug for ExternalExporterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExternalExporterConfig")
            .field("name", &self.name)
            .field("host", &self.host)
            .field("metrics_path", &self.metrics_path)
            .field("scheme", &self.scheme)
            .field("params", &param_template::masked_params(&self.params))
            .finish()
    }
}

fn serialize_masked_params<S: serde::Serializer>(
    params: &BTreeMap<String, Vec<String>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    param_template::masked_params(params).serialize(serializer)
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct NatsConfig {
    pub hosts: Vec<NatsHost>,
    pub user: String,
    pub pass: Secret,
    pub tls_enabled: bool,
    pub ca_certs: String,
    pub cert_chain: String,
    pub private_key: Secret,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct NatsHost {
    pub hostname: String,
    pub port: u16,
}

/// New keys: how one instance is scraped.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ScrapeConfig {
    /// Upper bound for one instance request; the caller's Prometheus timeout, minus
    /// `timeout_offset`, is used when it is shorter.
    pub timeout: GoDuration,
    pub timeout_offset: GoDuration,
    pub connect_timeout: GoDuration,
    /// Largest decompressed body, in bytes, accepted from one instance.
    pub max_body_size: u64,
    /// Largest merged answer, in bytes before compression: the instances that would make it
    /// larger are left out, largest first, each reported as `too_large`.
    pub max_answer_size: u64,
    /// Redirects followed when they stay on the same host.
    pub max_redirects: usize,
    /// Instance requests in flight at once over all callers.
    pub max_concurrent_requests: usize,
    /// Least time between two diagnosis scrapes of one app (`0s`: no limit).
    pub diagnosis_interval: GoDuration,
}

impl Default for ScrapeConfig {
    fn default() -> Self {
        ScrapeConfig {
            timeout: DEFAULT_SCRAPE_TIMEOUT,
            timeout_offset: DEFAULT_SCRAPE_TIMEOUT_OFFSET,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            max_body_size: DEFAULT_MAX_BODY_SIZE,
            max_answer_size: DEFAULT_MAX_ANSWER_SIZE,
            max_redirects: DEFAULT_MAX_REDIRECTS,
            max_concurrent_requests: DEFAULT_MAX_CONCURRENT_SCRAPES,
            diagnosis_interval: DEFAULT_DIAGNOSIS_INTERVAL,
        }
    }
}

/// New keys: how the process stops.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ShutdownConfig {
    pub drain_timeout: GoDuration,
    pub lame_duck_period: GoDuration,
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        ShutdownConfig {
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
            lame_duck_period: DEFAULT_LAME_DUCK_PERIOD,
        }
    }
}

/// A configuration problem, in one line that names the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config key `{key}`: {reason}")]
    Invalid { key: String, reason: String },
}

impl ConfigError {
    pub fn invalid(key: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

/// A parsed configuration and the keys the file had that promfetcher does not know.
#[derive(Debug)]
pub struct LoadedConfig {
    pub config: Config,
    pub unknown_keys: Vec<String>,
}

impl Config {
    /// Reads and parses `path` (defaults when `None`).
    pub fn load(path: Option<&Path>) -> Result<LoadedConfig, ConfigError> {
        match path {
            None => Config::from_yaml(""),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.display().to_string(),
                    source,
                })?;
                Config::from_yaml(&text)
            }
        }
    }

    /// Parses YAML text (empty text means defaults).
    pub fn from_yaml(text: &str) -> Result<LoadedConfig, ConfigError> {
        let mut unknown_keys = Vec::new();
        let config = if text.trim().is_empty() {
            Config::default()
        } else {
            let deserializer = serde_norway::Deserializer::from_str(text);
            let mut note_unknown =
                |path: serde_ignored::Path<'_>| unknown_keys.push(path.to_string());
            let tracked = serde_ignored::Deserializer::new(deserializer, &mut note_unknown);
            serde_path_to_error::deserialize(tracked).map_err(|error| {
                let key = error.path().to_string();
                let key = if key == "." {
                    "(file)".to_string()
                } else {
                    key
                };
                let message = error.into_inner().to_string();
                // serde_norway already starts its message with the path; say it once.
                let reason = match message.split_once(": ") {
                    Some((head, rest)) if key.starts_with(head) => rest.to_string(),
                    _ => message,
                };
                ConfigError::invalid(key, reason)
            })?
        };
        Ok(LoadedConfig {
            config,
            unknown_keys,
        })
    }

    /// The effective configuration as YAML, secrets masked.
    pub fn to_masked_yaml(&self) -> String {
        serde_norway::to_string(self)
            .unwrap_or_else(|error| format!("# cannot print the configuration: {error}\n"))
    }
}

/// Maps the original's logrus level names to a tracing filter directive.
pub fn log_level_filter(level: &str) -> Option<&'static str> {
    match level.to_ascii_lowercase().as_str() {
        "" | "info" => Some("info"),
        "trace" => Some("trace"),
        "debug" => Some("debug"),
        "warn" | "warning" => Some("warn"),
        "error" | "fatal" | "panic" => Some("error"),
        _ => None,
    }
}
