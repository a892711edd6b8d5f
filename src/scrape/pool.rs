//! How every client connects, whichever it is (hyper's for plain-HTTP instances, reqwest's for
//! TLS instances and exporters): pool limits, timeouts and TCP keep-alive, taken once from
//! [`ScraperSettings`]. Plain values, no I/O.

use std::time::Duration;

use super::ScraperSettings;

/// TCP keep-alive probes on every connection to a target: the first after 15 s idle, then every
/// 15 s, 3 unanswered ones close it (reqwest's defaults, kept for the hyper client too).
pub(super) const TCP_KEEPALIVE: TcpKeepalive = TcpKeepalive {
    idle: Duration::from_secs(15),
    interval: Duration::from_secs(15),
    retries: 3,
};

/// What every client shares.
#[derive(Clone)]
pub(super) struct PoolSettings {
    keep_alive: bool,
    max_idle_per_host: usize,
    pub(super) idle_timeout: Duration,
    pub(super) connect_timeout: Duration,
    pub(super) max_redirects: usize,
}

pub(super) struct TcpKeepalive {
    pub(super) idle: Duration,
    pub(super) interval: Duration,
    pub(super) retries: u32,
}

impl PoolSettings {
    pub(super) fn new(settings: &ScraperSettings) -> PoolSettings {
        PoolSettings {
            keep_alive: settings.keep_alive,
            max_idle_per_host: settings.max_idle_per_host,
            idle_timeout: settings.idle_timeout,
            connect_timeout: settings.connect_timeout,
            max_redirects: settings.max_redirects,
        }
    }

    /// Idle connections kept per target: none without keep-alive.
    pub(super) fn max_idle(&self) -> usize {
        if self.keep_alive {
            self.max_idle_per_host
        } else {
            0
        }
    }
}
