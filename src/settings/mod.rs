//! The configuration turned, once, into what each subsystem runs with: addresses, durations,
//! URLs, the database, the external exporters and the TLS material, each parsed and checked
//! here and handed to its subsystem as a typed value. A problem is a [`ConfigError`] that names
//! the key, before any port is bound. It sits above the subsystems (it builds their settings
//! types) and below the server (which starts them); it starts nothing itself.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::config::pem::{self, KeyPair};
use crate::config::{log_level_filter, Config, ConfigError};
use crate::fanout::external_exporters::{self, ExternalExporter};
use crate::fanout::FanOutSettings;
use crate::http::metrics_auth::MetricsAuth;
use crate::http::PublicAddress;
use crate::routes::RouteSourceSettings;
use crate::scrape::ScraperSettings;
use crate::service_broker::BrokerSettings;
use crate::store::{Database, StoreSettings};

/// Shortest `gorouter_poll_interval` and `db_refresh_interval` accepted.
const MIN_REFRESH_INTERVAL: Duration = Duration::from_millis(100);

/// Everything promfetcher runs with, checked.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listeners: ListenerSettings,
    /// Where callers reach promfetcher (config `base_url`).
    pub public_address: PublicAddress,
    pub route_sources: RouteSourceSettings,
    pub scraper: ScraperSettings,
    pub fan_out: FanOutSettings,
    pub external_exporters: Vec<ExternalExporter>,
    pub store: StoreSettings,
    pub broker: BrokerSettings,
    /// `None` when the metrics endpoints are open.
    pub metrics_auth: Option<Arc<MetricsAuth>>,
    pub shutdown: ShutdownSettings,
}

/// The main and health listeners.
#[derive(Debug, Clone)]
pub struct ListenerSettings {
    pub bind_address: IpAddr,
    pub port: u16,
    pub health_port: u16,
    /// The main port's certificate and key, with `enable_ssl`.
    pub tls: Option<KeyPair>,
}

/// How the process stops.
#[derive(Debug, Clone, Copy)]
pub struct ShutdownSettings {
    /// How long in-flight requests may finish after the listeners close.
    pub drain_timeout: Duration,
    /// After SIGUSR1: health answers 503 for this long while traffic is still served.
    pub lame_duck_period: Duration,
}

/// Settings read from a file, with the configuration they came from (which `check-config`
/// prints) and the keys the file had that promfetcher does not know.
#[derive(Debug)]
pub struct LoadedSettings {
    pub settings: Settings,
    pub config: Config,
    pub unknown_keys: Vec<String>,
}

impl Settings {
    /// Reads `path` (defaults when `None`) and checks it.
    pub fn load(path: Option<&Path>) -> Result<LoadedSettings, ConfigError> {
        LoadedSettings::checked(Config::load(path)?)
    }

    /// Parses YAML text (empty text means defaults) and checks it.
    pub fn from_yaml(text: &str) -> Result<LoadedSettings, ConfigError> {
        LoadedSettings::checked(Config::from_yaml(text)?)
    }

    /// Checks `config` and builds each subsystem's settings from it.
    pub fn from_config(config: &Config) -> Result<Settings, ConfigError> {
        let listeners = listener_settings(config)?;
        let route_sources = route_source_settings(config)?;
        check_logging(config)?;
        let scraper = scraper_settings(config)?;
        let public_address = public_address(config)?;
        let store = store_settings(config)?;
        let external_exporters = external_exporters::parse_all(&config.external_exporters)
            .map_err(|error| ConfigError::invalid(error.key, error.reason))?;
        let fan_out = fan_out_settings(config)?;
        let metrics_auth = metrics_auth(config)?;
        let broker = BrokerSettings::new(&config.broker, &public_address);
        Ok(Settings {
            listeners,
            public_address,
            route_sources,
            scraper,
            fan_out,
            external_exporters,
            store,
            broker,
            metrics_auth,
            shutdown: ShutdownSettings {
                drain_timeout: config.shutdown.drain_timeout.0,
                lame_duck_period: config.shutdown.lame_duck_period.0,
            },
        })
    }
}

impl LoadedSettings {
    fn checked(loaded: crate::config::LoadedConfig) -> Result<LoadedSettings, ConfigError> {
        Ok(LoadedSettings {
            settings: Settings::from_config(&loaded.config)?,
            config: loaded.config,
            unknown_keys: loaded.unknown_keys,
        })
    }
}

fn listener_settings(config: &Config) -> Result<ListenerSettings, ConfigError> {
    if config.port != 0 && config.port == config.health_check_port {
        return Err(ConfigError::invalid(
            "health_check_port",
            format!("must differ from `port` (both are {})", config.port),
        ));
    }
    let bind_address = config.bind_address.parse::<IpAddr>().map_err(|_| {
        ConfigError::invalid(
            "bind_address",
            format!("{:?} is not an IP address", config.bind_address),
        )
    })?;
    let tls = if config.enable_ssl {
        let pem = &config.tls_pem;
        if pem.cert_chain.trim().is_empty() || pem.private_key.is_empty() {
            return Err(ConfigError::invalid(
                "tls_pem",
                "enable_ssl is true but cert_chain or private_key is missing",
            ));
        }
        Some(KeyPair::from_pem(
            "tls_pem",
            &pem.cert_chain,
            pem.private_key.expose(),
        )?)
    } else {
        None
    };
    Ok(ListenerSettings {
        bind_address,
        port: config.port,
        health_port: config.health_check_port,
        tls,
    })
}

fn route_source_settings(config: &Config) -> Result<RouteSourceSettings, ConfigError> {
    for (i, gorouter) in config.gorouters.iter().enumerate() {
        if gorouter.host.trim().is_empty() {
            return Err(ConfigError::invalid(
                format!("gorouters[{i}].host"),
                "is empty; give the gorouter's address, e.g. 127.0.0.1",
            ));
        }
        if gorouter.port == 0 {
            return Err(ConfigError::invalid(
                format!("gorouters[{i}].port"),
                "is 0; give the gorouter's routes port (8082 on current routing releases)",
            ));
        }
    }
    at_least(
        "gorouter_poll_interval",
        config.gorouter_poll_interval.0,
        MIN_REFRESH_INTERVAL,
    )?;
    RouteSourceSettings::from_config(config).map_err(|error| error.into_config_error())
}

fn check_logging(config: &Config) -> Result<(), ConfigError> {
    let level = &config.logging.level;
    if !level.is_empty() && log_level_filter(level).is_none() {
        return Err(ConfigError::invalid(
            "logging.level",
            format!("unknown level {level:?}; use trace, debug, info, warn, error, fatal or panic"),
        ));
    }
    Ok(())
}

fn scraper_settings(config: &Config) -> Result<ScraperSettings, ConfigError> {
    let backends = &config.backends;
    let client_identity = match (
        backends.cert_chain.trim().is_empty(),
        backends.private_key.is_empty(),
    ) {
        (true, true) => None,
        (false, false) => {
            pem::readable_certificates(&backends.cert_chain)
                .map_err(|reason| ConfigError::invalid("backends.cert_chain", reason))?;
            Some(KeyPair::from_pem(
                "backends",
                &backends.cert_chain,
                backends.private_key.expose(),
            )?)
        }
        _ => {
            return Err(ConfigError::invalid(
                "backends",
                "cert_chain and private_key must be given together",
            ))
        }
    };
    let extra_roots = if config.ca_certs.trim().is_empty() {
        Vec::new()
    } else {
        if pem::certificates(&config.ca_certs).is_empty() {
            return Err(ConfigError::invalid(
                "ca_certs",
                "contains no PEM certificate (expected -----BEGIN CERTIFICATE-----)",
            ));
        }
        pem::readable_certificates(&config.ca_certs)
            .map_err(|reason| ConfigError::invalid("ca_certs", reason))?
    };
    if config.scrape.max_body_size == 0 {
        return Err(ConfigError::invalid(
            "scrape.max_body_size",
            "must be above 0",
        ));
    }
    Ok(ScraperSettings {
        keep_alive: !config.disable_keep_alives,
        max_idle_per_host: config.max_idle_conns_per_host,
        idle_timeout: config.idle_conn_timeout.0,
        connect_timeout: config.scrape.connect_timeout.0,
        max_body_bytes: config.scrape.max_body_size,
        max_redirects: config.scrape.max_redirects,
        extra_roots,
        skip_tls_verify: config.skip_ssl_validation,
        client_identity,
    })
}

fn public_address(config: &Config) -> Result<PublicAddress, ConfigError> {
    PublicAddress::parse(&config.base_url).ok_or_else(|| {
        ConfigError::invalid(
            "base_url",
            format!(
                "{:?} is not an absolute URL, e.g. https://promfetcher.sys.example.com",
                config.base_url
            ),
        )
    })
}

fn store_settings(config: &Config) -> Result<StoreSettings, ConfigError> {
    let database = Database::from_db_conn(config.db_conn.expose())
        .map_err(|error| ConfigError::invalid("db_conn", error.to_string()))?;
    at_least(
        "db_refresh_interval",
        config.db_refresh_interval.0,
        MIN_REFRESH_INTERVAL,
    )?;
    Ok(StoreSettings {
        database,
        data_dir: config.data_dir.clone(),
        max_connections: config.sql_cnx_max_open,
        max_lifetime: config.sql_cnx_max_life.0,
        refresh_interval: config.db_refresh_interval.0,
        start_without_database: config.not_exit_when_conn_failed,
    })
}

fn fan_out_settings(config: &Config) -> Result<FanOutSettings, ConfigError> {
    if config.scrape.timeout.0.is_zero() {
        return Err(ConfigError::invalid("scrape.timeout", "must be above 0"));
    }
    if config.scrape.max_concurrent_requests == 0 {
        return Err(ConfigError::invalid(
            "scrape.max_concurrent_requests",
            "must be above 0",
        ));
    }
    if config.scrape.max_answer_size == 0 {
        return Err(ConfigError::invalid(
            "scrape.max_answer_size",
            "must be above 0",
        ));
    }
    Ok(FanOutSettings {
        max_timeout: config.scrape.timeout.0,
        timeout_offset: config.scrape.timeout_offset.0,
        max_concurrent_requests: config.scrape.max_concurrent_requests,
        diagnosis_interval: config.scrape.diagnosis_interval.0,
        max_answer_bytes: usize::try_from(config.scrape.max_answer_size).unwrap_or(usize::MAX),
    })
}

fn metrics_auth(config: &Config) -> Result<Option<Arc<MetricsAuth>>, ConfigError> {
    let auth = &config.metrics_auth;
    match (auth.user.is_empty(), auth.pass.is_empty()) {
        (false, true) => Err(ConfigError::invalid(
            "metrics_auth.pass",
            "is empty but metrics_auth.user is set; give both or neither",
        )),
        (true, false) => Err(ConfigError::invalid(
            "metrics_auth.user",
            "is empty but metrics_auth.pass is set; give both or neither",
        )),
        _ if auth.user.contains(':') => Err(ConfigError::invalid(
            "metrics_auth.user",
            "must not contain `:` (HTTP basic auth cannot carry it)",
        )),
        _ if auth.bearer_token.expose().chars().any(char::is_whitespace) => {
            Err(ConfigError::invalid(
                "metrics_auth.bearer_token",
                "must not contain spaces or line breaks",
            ))
        }
        _ => Ok(MetricsAuth::from_config(auth)),
    }
}

fn at_least(key: &str, value: Duration, minimum: Duration) -> Result<(), ConfigError> {
    if value < minimum {
        return Err(ConfigError::invalid(
            key,
            format!("must be at least {}ms", minimum.as_millis()),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
