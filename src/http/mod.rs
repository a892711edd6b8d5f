//! The HTTP layer: what each URL of the main port and the health port answers, and the
//! middleware around them. Handlers read the request, look the app up in the current route
//! table snapshot, run the fan-out and map its result to a status; they hold no state of their
//! own and never touch SQL; what they share is [`ApiState`].
//!
//! - `app_metrics`: the merged-metrics URLs (`/v1`, `/v2`) and promfetcher's own `/metrics`.
//! - `app_name`: the check of the app a caller names.
//! - `diagnosis`: `.../diagnosis`, the per-instance report on an app as JSON;
//!   `diagnosis_page` writes it as HTML for browsers.
//! - `html`: escaping for the HTML pages.
//! - `route_dump`, `discovery`, `user_guide`: `GET /routes`, `GET /v1/sd`, `GET /doc`.
//! - `health`: the health port.
//! - `access_log`, `metrics_auth`, `request_metrics`: the middleware (one line per request;
//!   inbound auth; answers counted by kind and status class).
//! - `sliced_body`: a shared answer sent in slices.

pub mod accept;
pub mod access_log;
pub mod app_metrics;
pub mod app_name;
pub mod diagnosis;
pub mod diagnosis_page;
pub mod discovery;
pub mod health;
pub mod html;
pub mod metrics_auth;
pub mod request_metrics;
pub mod route_dump;
pub mod sliced_body;
pub mod user_guide;

use std::sync::Arc;

use prometheus::{IntGauge, Registry};

use crate::fanout::FanOut;
use crate::own_metrics::registered;
use crate::routes::{RouteSourceMetrics, RouteSources, RouteTableHandle};
use crate::store::AppPathCache;

/// What the handlers share.
pub struct ApiState {
    pub table: Arc<RouteTableHandle>,
    pub fan_out: Arc<FanOut>,
    /// Metrics paths set through the service broker, by app GUID.
    pub app_paths: Arc<AppPathCache>,
    pub registry: Registry,
    /// The broker's basic-auth credentials, which also guard `GET /routes`.
    pub broker_credentials: osb_broker::Credentials,
    /// Where callers reach promfetcher (config `base_url`), for the user guide and discovery.
    pub public: PublicAddress,
    /// The route sources' latest routes and states, for the diagnosis.
    pub route_sources: Arc<RouteSources>,
    pub route_source_metrics: Arc<RouteSourceMetrics>,
    in_flight: IntGauge,
}

impl ApiState {
    pub fn new(
        table: Arc<RouteTableHandle>,
        fan_out: Arc<FanOut>,
        app_paths: Arc<AppPathCache>,
        registry: Registry,
        broker_credentials: osb_broker::Credentials,
        public: PublicAddress,
        (route_sources, route_source_metrics): (Arc<RouteSources>, Arc<RouteSourceMetrics>),
    ) -> prometheus::Result<Self> {
        let in_flight = registered(
            &registry,
            IntGauge::new(
                "promfetcher_requests_in_flight",
                "Merged-metrics requests being answered.",
            )?,
        )?;
        Ok(ApiState {
            table,
            fan_out,
            app_paths,
            registry,
            broker_credentials,
            public,
            route_sources,
            route_source_metrics,
            in_flight,
        })
    }
}

/// Where callers reach promfetcher, taken apart once from the config's `base_url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicAddress {
    /// `base_url` without a trailing slash, e.g. `https://promfetcher.sys.example.com`.
    pub base_url: String,
    /// `http` or `https`.
    pub scheme: String,
    /// `host:port` as Prometheus targets name it (the scheme's default port when none is given).
    pub host_port: String,
}

impl PublicAddress {
    /// Takes `base_url` apart; `None` when it is not an absolute URL with a host and a port
    /// (given, or known for its scheme).
    pub fn parse(base_url: &str) -> Option<PublicAddress> {
        let url = url::Url::parse(base_url).ok()?;
        let host_port = format!("{}:{}", url.host_str()?, url.port_or_known_default()?);
        Some(PublicAddress {
            base_url: base_url.trim_end_matches('/').to_string(),
            scheme: url.scheme().to_string(),
            host_port,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_address_names_scheme_and_port() {
        let cases = [
            (
                "https://pf.sys.example.com/",
                "https",
                "pf.sys.example.com:443",
            ),
            ("http://127.0.0.1:8085", "http", "127.0.0.1:8085"),
            ("http://[::1]:9000", "http", "[::1]:9000"),
        ];
        for (base_url, scheme, host_port) in cases {
            let public = PublicAddress::parse(base_url).unwrap();
            assert_eq!(public.scheme, scheme, "{base_url}");
            assert_eq!(public.host_port, host_port, "{base_url}");
            assert!(!public.base_url.ends_with('/'));
        }
    }
}
