//! Which route sources run and the settings of each, as the config keys give them (read once,
//! when the settings are built).
//!
//! Which sources run: NATS when `nats.hosts` is not empty; gorouter polling when `gorouters` is
//! not empty, except that with NATS configured the default `gorouters` entry (localhost:8080,
//! no user, which no current gorouter serves `/routes` on) is taken as "not configured".

use std::time::Duration;

use super::nats::{NatsSettings, NatsSetupError};
use super::sources::RouteSourceKind;
use crate::config::{Config, GorouterConfig};

/// Which route sources run, and the settings of each.
#[derive(Debug, Clone)]
pub struct RouteSourceSettings {
    /// The gorouters whose `/routes` is polled; none means no polling.
    pub gorouters: Vec<GorouterConfig>,
    pub poll_interval: Duration,
    /// `None` when `nats.hosts` is empty.
    pub nats: Option<NatsSettings>,
}

impl RouteSourceSettings {
    /// The sources the config keys ask for (see the module doc for the default `gorouters`
    /// entry beside NATS).
    pub fn from_config(config: &Config) -> Result<RouteSourceSettings, NatsSetupError> {
        let only_the_default =
            config.gorouters.len() == 1 && config.gorouters[0] == GorouterConfig::default();
        let gorouters = if !config.nats.hosts.is_empty() && only_the_default {
            Vec::new()
        } else {
            config.gorouters.clone()
        };
        Ok(RouteSourceSettings {
            gorouters,
            poll_interval: config.gorouter_poll_interval.0,
            nats: NatsSettings::from_config(config)?,
        })
    }

    /// The sources that run, NATS first.
    pub fn kinds(&self) -> Vec<RouteSourceKind> {
        let mut kinds = Vec::new();
        if self.nats.is_some() {
            kinds.push(RouteSourceKind::Nats);
        }
        if !self.gorouters.is_empty() {
            kinds.push(RouteSourceKind::Gorouter);
        }
        kinds
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_gorouter_is_not_polled_beside_nats() {
        let gorouters_to_poll =
            |config: &Config| RouteSourceSettings::from_config(config).unwrap().gorouters;
        let mut config = Config::default();
        assert_eq!(gorouters_to_poll(&config).len(), 1);
        config.nats.hosts = vec![crate::config::NatsHost {
            hostname: "10.0.16.10".into(),
            port: 4222,
        }];
        assert!(gorouters_to_poll(&config).is_empty());
        config.gorouters[0].port = 8082;
        assert_eq!(gorouters_to_poll(&config).len(), 1);
    }
}
