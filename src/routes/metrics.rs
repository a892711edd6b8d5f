//! The route table's own metrics: the original's `promfetch_scrape_route_failed_total` and
//! `promfetch_latest_time_scrape_route`, plus the table's size and age, whether each route
//! source is up (`promfetcher_route_source_up{source}`) and why gorouter polls failed
//! (`promfetcher_gorouter_poll_errors_total{reason}`). Sizes and ages are computed when
//! `/metrics` is read, from the current snapshot, so they are never stale. It also remembers
//! since when and why a source is failing, for the health answer.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use prometheus::core::{Collector, Desc, Describer};
use prometheus::proto::MetricFamily;
use prometheus::{Gauge, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry};

use super::handle::RouteTableHandle;
use super::sources::RouteSourceKind;
use crate::own_metrics::registered;

/// Counters and gauges of the route sources.
pub struct RouteSourceMetrics {
    failed_polls: IntCounter,
    poll_errors: IntCounterVec,
    source_up: IntGaugeVec,
    /// Milliseconds since the epoch of the last successful update; 0 = never.
    last_success_ms: AtomicU64,
    /// The sources whose last attempt failed: since when, and the first error's text.
    failing: Mutex<BTreeMap<RouteSourceKind, (Instant, String)>>,
}

/// A route source whose last attempt failed; the table keeps its last good routes meanwhile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailingSource {
    pub source: RouteSourceKind,
    /// How long it has been failing.
    pub for_: Duration,
    /// Why, as the log says it (no secrets).
    pub reason: String,
}

impl RouteSourceMetrics {
    /// Creates the metrics and registers them, with a collector that reads `table` at scrape time.
    pub fn register(
        registry: &Registry,
        table: Arc<RouteTableHandle>,
    ) -> prometheus::Result<Arc<Self>> {
        let failed_polls = registered(
            registry,
            IntCounter::new(
            "promfetch_scrape_route_failed_total",
            "Route source failures: gorouter poll rounds that no gorouter answered, lost NATS connections.",
        )?,
        )?;
        let poll_errors = registered(
            registry,
            IntCounterVec::new(
                Opts::new(
                    "promfetcher_gorouter_poll_errors_total",
                    "GET /routes requests to a gorouter that failed, by reason (unreachable, \
                 rejected: 401, status: another non-200 status, bad_body: not a route table).",
                ),
                &["reason"],
            )?,
        )?;
        let source_up = registered(
            registry,
            IntGaugeVec::new(
            Opts::new(
                "promfetcher_route_source_up",
                "1 when the route source's last attempt succeeded, 0 while it fails (the table \
                 then keeps that source's last good routes).",
            ),
            &["source"],
        )?,
        )?;
        let metrics = Arc::new(RouteSourceMetrics {
            failed_polls,
            poll_errors,
            source_up,
            last_success_ms: AtomicU64::new(0),
            failing: Mutex::default(),
        });
        registry.register(Box::new(TableCollector::new(table, metrics.clone())?))?;
        Ok(metrics)
    }

    /// `source` delivered (or, for NATS, is connected and current) at `at`.
    pub fn record_success(&self, source: RouteSourceKind, at: SystemTime) {
        let millis = at
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(1);
        self.last_success_ms.store(millis.max(1), Ordering::Relaxed);
        self.source_up.with_label_values(&[source.label()]).set(1);
        self.failing_sources().remove(&source);
    }

    /// `source` failed to deliver, for `reason` (one line, no secrets). The failure keeps the
    /// time it started until the next success.
    pub fn record_failure(&self, source: RouteSourceKind, reason: String) {
        self.failed_polls.inc();
        self.source_up.with_label_values(&[source.label()]).set(0);
        self.failing_sources()
            .entry(source)
            .or_insert_with(|| (Instant::now(), reason));
    }

    /// Counts one failed `GET /routes`; `reason` is one of the fixed reasons of the help text.
    pub fn count_gorouter_error(&self, reason: &'static str) {
        self.poll_errors.with_label_values(&[reason]).inc();
    }

    /// The sources failing now, by precedence.
    pub fn failing(&self) -> Vec<FailingSource> {
        let now = Instant::now();
        self.failing_sources()
            .iter()
            .map(|(source, (since, reason))| FailingSource {
                source: *source,
                for_: now.saturating_duration_since(*since),
                reason: reason.clone(),
            })
            .collect()
    }

    fn failing_sources(
        &self,
    ) -> std::sync::MutexGuard<'_, BTreeMap<RouteSourceKind, (Instant, String)>> {
        self.failing
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
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
