//! The store's own metrics: whether the database answered the last refresh of the app paths
//! (`promfetcher_store_up`) and when it last did (`promfetcher_store_last_success_timestamp_seconds`).
//! A refresh runs at every `refresh_interval` and after each broker write, so `0` means the
//! broker cannot write and other instances' writes do not arrive; scrapes keep the last paths.

use std::time::{SystemTime, UNIX_EPOCH};

use prometheus::{Gauge, IntGauge, Registry};

use crate::own_metrics::registered;

/// The two gauges of the store's refreshes.
pub struct StoreMetrics {
    up: IntGauge,
    last_success: Gauge,
}

impl StoreMetrics {
    pub fn register(registry: &Registry) -> prometheus::Result<StoreMetrics> {
        Ok(StoreMetrics {
            up: registered(
                registry,
                IntGauge::new(
                    "promfetcher_store_up",
                    "1 when the endpoint database answered the last refresh of the app paths, \
                     0 when it did not (scrapes then use the last paths read).",
                )?,
            )?,
            last_success: registered(
                registry,
                Gauge::new(
                    "promfetcher_store_last_success_timestamp_seconds",
                    "Unix time of the last refresh of the app paths that the endpoint database \
                     answered.",
                )?,
            )?,
        })
    }

    /// A refresh (or the schema check before it) ended; `answered` when the database answered.
    pub fn record(&self, answered: bool) {
        self.up.set(i64::from(answered));
        if answered {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or_default();
            self.last_success.set(now);
        }
    }
}
