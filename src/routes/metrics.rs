//! The route table's own metrics: the original's `promfetch_scrape_route_failed_total` and
//! `promfetch_latest_time_scrape_route`, plus the table's size, when it last changed (its age,
//! and the time as a timestamp), whether each route source is up
//! (`promfetcher_route_source_up{source}`), when each last delivered a good table (freshness:
//! `promfetcher_route_source_last_success_timestamp_seconds{source}`) and why gorouter polls
//! failed (`promfetcher_gorouter_poll_errors_total{reason}`). A table that stops changing is
//! not stale while its sources keep succeeding: alerts on staleness use the freshness. Sizes
//! and ages are computed when `/metrics` is read, from the current snapshot, so they are never
//! stale. It also remembers since when and why a source is failing, for the health answer.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use prometheus::core::{Collector, Desc, Describer};
use prometheus::proto::MetricFamily;
use prometheus::{Gauge, GaugeVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry};

use super::handle::RouteTableHandle;
use super::sources::RouteSourceKind;
use crate::own_metrics::registered;

/// Counters and gauges of the route sources.
pub struct RouteSourceMetrics {
    failed_polls: IntCounter,
    poll_errors: IntCounterVec,
    source_up: IntGaugeVec,
    /// Unix time of each source's last success.
    source_last_success: GaugeVec,
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

/// A route source's state, as its own metrics give it.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceState {
    /// `gorouter` or `nats`.
    pub source: String,
    /// Its last attempt succeeded.
    pub up: bool,
    pub last_success_unix_seconds: Option<f64>,
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
        let source_last_success = registered(
            registry,
            GaugeVec::new(
                Opts::new(
                    "promfetcher_route_source_last_success_timestamp_seconds",
                    "Unix time the route source last succeeded: a gorouter poll round that \
                     some gorouter answered with a route table (changed or not), or NATS \
                     connected with its table current. Freshness, unlike the table's age.",
                ),
                &["source"],
            )?,
        )?;
        let metrics = Arc::new(RouteSourceMetrics {
            failed_polls,
            poll_errors,
            source_up,
            source_last_success,
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
        self.source_last_success
            .with_label_values(&[source.label()])
            .set(millis as f64 / 1000.0);
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

    /// Each route source that has reported: whether it is up and when it last succeeded
    /// (Unix seconds; `None` before the first time), as its two metrics say.
    pub fn states(&self) -> Vec<SourceState> {
        let by_source = |collector: &dyn Collector,
                         value: fn(&prometheus::proto::Metric) -> f64| {
            collector
                .collect()
                .iter()
                .flat_map(|family| family.get_metric())
                .filter_map(|metric| {
                    let source = metric.get_label().iter().find(|l| l.name() == "source")?;
                    Some((source.value().to_string(), value(metric)))
                })
                .collect::<Vec<_>>()
        };
        let last_success = by_source(&self.source_last_success, |m| m.get_gauge().get_value());
        by_source(&self.source_up, |m| m.get_gauge().get_value())
            .into_iter()
            .map(|(source, up)| SourceState {
                last_success_unix_seconds: last_success
                    .iter()
                    .find(|(s, _)| *s == source)
                    .map(|(_, at)| *at)
                    .filter(|at| *at > 0.0),
                up: up == 1.0,
                source,
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

const GAUGES: [(&str, &str); 6] = [
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
        "Seconds since the route table last changed. It grows while the routes stay the same \
         and the sources keep succeeding; for freshness see \
         promfetcher_route_source_last_success_timestamp_seconds.",
    ),
    (
        "promfetcher_route_table_last_change_timestamp_seconds",
        "Unix time the published route table last changed.",
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
        let values: [Option<f64>; 6] = [
            self.source.seconds_since_success(now),
            snapshot.as_ref().map(|t| t.route_count() as f64),
            snapshot.as_ref().map(|t| t.endpoint_count() as f64),
            snapshot.as_ref().map(|t| t.app_count() as f64),
            snapshot.as_ref().map(|t| {
                now.duration_since(t.built_at())
                    .map(|d| d.as_secs_f64())
                    .unwrap_or(0.0)
            }),
            snapshot.as_ref().and_then(|t| {
                t.built_at()
                    .duration_since(UNIX_EPOCH)
                    .ok()
                    .map(|d| d.as_secs_f64())
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
