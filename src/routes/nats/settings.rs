//! The NATS source's settings as the config keys give them (`nats.*`,
//! `nats_client_ping_interval`, `droplet_stale_threshold`, `start_response_delay_interval`,
//! `route_registration_interval`, `index`), turned into server URLs and an async-nats
//! [`ConnectOptions`]. It reads config and PEM text, once, when the settings are built; it
//! never connects.

use std::sync::Arc;
use std::time::Duration;

use async_nats::ConnectOptions;

use crate::config::pem::certificates;
use crate::config::{Config, ConfigError, NatsHost, Secret};

/// Why the NATS source cannot be set up from the configuration; one line each.
#[derive(Debug, thiserror::Error)]
pub enum NatsSetupError {
    #[error("nats.hosts[{index}]: {reason}")]
    Host { index: usize, reason: &'static str },
    #[error("nats TLS: {0}")]
    Tls(String),
    #[error(
        "{interval:?} is not above 0 and shorter than droplet_stale_threshold ({threshold:?}): \
         registrars told to register less often than routes are pruned lose their routes, in \
         gorouter too"
    )]
    RegistrationInterval {
        interval: Duration,
        threshold: Duration,
    },
}

impl NatsSetupError {
    /// The error as a configuration problem, naming the key.
    pub fn into_config_error(self) -> ConfigError {
        match self {
            NatsSetupError::Host { index, reason } => {
                ConfigError::invalid(format!("nats.hosts[{index}]"), reason)
            }
            NatsSetupError::Tls(reason) => ConfigError::invalid("nats", reason),
            error @ NatsSetupError::RegistrationInterval { .. } => {
                ConfigError::invalid("route_registration_interval", error.to_string())
            }
        }
    }
}

/// Everything the NATS source needs from the configuration.
#[derive(Clone)]
pub struct NatsSettings {
    /// `nats://host:port` (or `tls://` with `tls_enabled`), in configured order.
    pub servers: Vec<String>,
    pub user: String,
    pub pass: Secret,
    /// Present with `nats.tls_enabled`.
    pub tls: Option<rustls::ClientConfig>,
    pub ping_interval: Duration,
    pub droplet_stale_threshold: Duration,
    pub start_response_delay: Duration,
    /// `route_registration_interval`: sent in `router.start` and the answers to `router.greet`.
    pub registration_interval: Duration,
    /// `index`: the first part of the `router.start` id.
    pub index: u32,
}

impl std::fmt::Debug for NatsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsSettings")
            .field("servers", &self.servers)
            .field("user", &self.user)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl NatsSettings {
    /// Reads the NATS keys; `None` when `nats.hosts` is empty (the source is off).
    pub fn from_config(config: &Config) -> Result<Option<NatsSettings>, NatsSetupError> {
        let nats = &config.nats;
        if nats.hosts.is_empty() {
            return Ok(None);
        }
        let interval = config.route_registration_interval.0;
        let threshold = config.droplet_stale_threshold.0;
        if interval.is_zero() || interval >= threshold {
            return Err(NatsSetupError::RegistrationInterval {
                interval,
                threshold,
            });
        }
        let scheme = if nats.tls_enabled { "tls" } else { "nats" };
        let servers = nats
            .hosts
            .iter()
            .enumerate()
            .map(|(index, host)| server_url(scheme, index, host))
            .collect::<Result<_, _>>()?;
        let tls = if nats.tls_enabled {
            Some(tls_config(
                &nats.ca_certs,
                &nats.cert_chain,
                nats.private_key.expose(),
            )?)
        } else {
            None
        };
        Ok(Some(NatsSettings {
            servers,
            user: nats.user.clone(),
            pass: nats.pass.clone(),
            tls,
            ping_interval: config.nats_client_ping_interval.0,
            droplet_stale_threshold: threshold,
            start_response_delay: config.start_response_delay_interval.0,
            registration_interval: interval,
            index: config.index,
        }))
    }

    /// The client options: credentials, TLS, ping interval, reconnecting forever.
    pub fn connect_options(&self) -> ConnectOptions {
        let mut options = ConnectOptions::new()
            .name(concat!("promfetcher/", env!("CARGO_PKG_VERSION")))
            .retry_on_initial_connect()
            .max_reconnects(None)
            .no_echo();
        if !self.ping_interval.is_zero() {
            options = options.ping_interval(self.ping_interval);
        }
        if !self.user.is_empty() || !self.pass.is_empty() {
            options = options.user_and_password(self.user.clone(), self.pass.expose().to_string());
        }
        if let Some(tls) = &self.tls {
            options = options.require_tls(true).tls_client_config(tls.clone());
        }
        options
    }
}

fn server_url(scheme: &str, index: usize, host: &NatsHost) -> Result<String, NatsSetupError> {
    let hostname = host.hostname.trim();
    if hostname.is_empty() {
        return Err(NatsSetupError::Host {
            index,
            reason: "hostname is empty; give the NATS server's address, e.g. 10.0.16.10",
        });
    }
    if host.port == 0 {
        return Err(NatsSetupError::Host {
            index,
            reason: "port is 0; give the NATS port (4222 in cf-deployment)",
        });
    }
    Ok(if hostname.contains(':') && !hostname.starts_with('[') {
        format!("{scheme}://[{hostname}]:{}", host.port)
    } else {
        format!("{scheme}://{hostname}:{}", host.port)
    })
}

/// Trusts `ca_certs` (or the system roots when empty) and presents `cert_chain` when given.
fn tls_config(
    ca_certs: &str,
    cert_chain: &str,
    private_key: &str,
) -> Result<rustls::ClientConfig, NatsSetupError> {
    let mut roots = rustls::RootCertStore::empty();
    if ca_certs.trim().is_empty() {
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    } else {
        let certs = certificates(ca_certs);
        if certs.is_empty() {
            return Err(NatsSetupError::Tls(
                "nats.ca_certs contains no PEM certificate".into(),
            ));
        }
        roots.add_parsable_certificates(certs);
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| NatsSetupError::Tls(e.to_string()))?
    .with_root_certificates(roots);
    if cert_chain.trim().is_empty() {
        return Ok(builder.with_no_client_auth());
    }
    let certs = certificates(cert_chain);
    if certs.is_empty() {
        return Err(NatsSetupError::Tls(
            "nats.cert_chain contains no PEM certificate".into(),
        ));
    }
    let key = rustls_pemfile::private_key(&mut private_key.as_bytes())
        .ok()
        .flatten()
        .ok_or_else(|| {
            NatsSetupError::Tls("nats.private_key contains no PEM private key".into())
        })?;
    builder
        .with_client_auth_cert(certs, key)
        .map_err(|e| NatsSetupError::Tls(format!("nats client certificate: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::GoDuration;

    #[test]
    fn no_hosts_means_no_nats_source() {
        assert!(NatsSettings::from_config(&Config::default())
            .unwrap()
            .is_none());
    }

    #[test]
    fn hosts_become_urls_and_bad_hosts_name_their_key() {
        let mut config = Config::default();
        config.nats.hosts = vec![
            NatsHost {
                hostname: "10.0.16.10".into(),
                port: 4222,
            },
            NatsHost {
                hostname: "fd00::1".into(),
                port: 4222,
            },
        ];
        let settings = NatsSettings::from_config(&config).unwrap().unwrap();
        assert_eq!(
            settings.servers,
            ["nats://10.0.16.10:4222", "nats://[fd00::1]:4222"]
        );
        config.nats.hosts[1].port = 0;
        let error = NatsSettings::from_config(&config).unwrap_err().to_string();
        assert!(error.starts_with("nats.hosts[1]: port is 0"), "{error}");
    }

    #[test]
    fn registrars_are_asked_for_gorouters_interval_and_never_one_past_the_prune_threshold() {
        let mut config = Config::default();
        config.nats.hosts = vec![NatsHost {
            hostname: "10.0.16.10".into(),
            port: 4222,
        }];
        let settings = NatsSettings::from_config(&config).unwrap().unwrap();
        assert_eq!(settings.registration_interval, Duration::from_secs(20));
        assert_eq!(settings.start_response_delay, Duration::from_secs(5));
        for interval in [0, 120, 300] {
            config.route_registration_interval = GoDuration::from_secs(interval);
            let error = NatsSettings::from_config(&config)
                .unwrap_err()
                .into_config_error()
                .to_string();
            assert!(
                error.starts_with("config key `route_registration_interval`: ")
                    && error.contains("shorter than droplet_stale_threshold (120s)"),
                "{error}"
            );
        }
    }

    #[test]
    fn tls_without_a_usable_ca_is_refused() {
        let mut config = Config::default();
        config.nats.hosts = vec![NatsHost {
            hostname: "nats.service.cf.internal".into(),
            port: 4224,
        }];
        config.nats.tls_enabled = true;
        config.nats.ca_certs = "not a certificate".into();
        let error = NatsSettings::from_config(&config).unwrap_err().to_string();
        assert!(error.contains("nats.ca_certs"), "{error}");
    }
}
