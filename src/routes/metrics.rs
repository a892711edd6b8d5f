//! The route table's own metrics: the original's `promfetch_scrape_route_failed_total` and
//! `promfetch_latest_time_scrape_route`, plus the table's size and age. Sizes and ages are
//! computed when `/metrics` is read, from the current snapshot, so they are never stale.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus::core::{Collector, Desc, Describer};
use prometheus::proto::MetricFamily;
use prometheus::{Gauge, IntCounter, Opts, Registry};

use super::handle::RouteTableHandle;

/// Counters and gauges of the route sources.
pub struct RouteSourceMetrics {
    failed_polls: IntCounter,
    /// Milliseconds since the epoch of the last successful update; 0 = never.
    last_success_ms: AtomicU64,
}

impl RouteSourceMetrics {
    /// Creates the metrics and registers them, with a collector that reads `table` at scrape time.
    pub fn register(
        registry: &Registry,
        table: Arc<RouteTableHandle>,
    ) -> prometheus::Result<Arc<Self>> {
        let failed_polls = IntCounter::new(
            "promfetch_scrape_route_failed_total",
            "Route table updates that failed (no route source answered).",
        )?;
        registry.register(Box::new(failed_polls.clone()))?;
        let metrics = Arc::new(RouteSourceMetrics {
            failed_polls,
            last_success_ms: AtomicU64::new(0),
        });
        registry.register(Box::new(TableCollector::new(table, metrics.clone())?))?;
        Ok(metrics)
    }

    pub fn record_success(&self, at: SystemTime) {
        let millis = at
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(1);
        self.last_success_ms.store(millis.max(1), Ordering::Relaxed);
    }

    pub fn record_failure(&self) {
        self.failed_polls.inc();
    }

    /// Seconds since the last successful update, `None` before the first one.
    fn seconds_since_success(&self, now: SystemTime) -> Option<f64> {
        let millis = self.last_success_ms.load(Ordering::Relaxed);
        if millis == 0 {
            return None;
        }
        let now_ms = now.duration_since(UNIX_EPOCH).ok()?.as_millis() as u64;
        Some(now_ms.saturating_sub(millis) as f64 / 1000.0)
    }
}

/// Reads the current table when collected.
struct TableCollector {
    table: Arc<RouteTableHandle>,
    source: Arc<RouteSourceMetrics>,
    descs: Vec<Desc>,
}

const GAUGES: [(&str, &str); 5] = [
    (
        "promfetch_latest_time_scrape_route",
        "Seconds since the route table was last updated successfully.",
    ),
    (
        "promfetcher_route_table_routes",
        "Route keys in the current route table.",
    ),
    (
        "promfetcher_route_table_endpoints",
        "Endpoints in the current route table, over all routes.",
    ),
    (
        "promfetcher_route_table_apps",
        "Apps (web processes with an app GUID) in the current route table.",
    ),
    (
        "promfetcher_route_table_age_seconds",
        "Age of the current route table.",
    ),
];

impl TableCollector {
    fn new(
        table: Arc<RouteTableHandle>,
        source: Arc<RouteSourceMetrics>,
    ) -> prometheus::Result<Self> {
        let descs = GAUGES
            .iter()
            .map(|(name, help)| Opts::new(*name, *help).describe())
            .collect::<prometheus::Result<_>>()?;
        Ok(TableCollector {
            table,
            source,
            descs,
        })
    }
}

impl Collector for TableCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let now = SystemTime::now();
        let snapshot = self.table.snapshot();
        let values: [Option<f64>; 5] = [
            self.source.seconds_since_success(now),
            snapshot.as_ref().map(|t| t.route_count() as f64),
            snapshot.as_ref().map(|t| t.endpoint_count() as f64),
            snapshot.as_ref().map(|t| t.app_count() as f64),
            snapshot.as_ref().map(|t| {
                now.duration_since(t.built_at())
                    .map(|d| d.as_secs_f64())
                    .unwrap_or(0.0)
            }),
        ];
        GAUGES
            .iter()
            .zip(values)
            .filter_map(|((name, help), value)| {
                let gauge = Gauge::new(*name, *help).ok()?;
                gauge.set(value?);
                gauge.collect().pop()
            })
            .collect()
    }
}
