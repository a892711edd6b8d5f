//! The NATS route source's own metrics: connection state, messages by subject and outcome,
//! endpoints and routes held, prunes, `router.start` messages sent and snapshots published.
//! It registers and updates them; it decides nothing.

use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};

/// Counters and gauges of the NATS route source.
#[derive(Debug, Clone)]
pub struct NatsMetrics {
    pub connected: IntGauge,
    pub connects: IntCounter,
    pub disconnects: IntCounter,
    messages: IntCounterVec,
    pub endpoints: IntGauge,
    pub routes: IntGauge,
    pub pruned: IntCounter,
    pub starts_sent: IntCounter,
    pub snapshots: IntCounter,
}

impl NatsMetrics {
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let metrics = NatsMetrics {
            connected: IntGauge::new(
                "promfetcher_nats_connected",
                "1 while connected to a NATS server, else 0.",
            )?,
            connects: IntCounter::new(
                "promfetcher_nats_connects_total",
                "Connections to a NATS server, the first and every reconnection.",
            )?,
            disconnects: IntCounter::new(
                "promfetcher_nats_disconnects_total",
                "Losses of the NATS connection.",
            )?,
            messages: IntCounterVec::new(
                Opts::new(
                    "promfetcher_nats_messages_total",
                    "NATS messages received, by subject and what became of them.",
                ),
                &["subject", "outcome"],
            )?,
            endpoints: IntGauge::new(
                "promfetcher_nats_endpoints",
                "Endpoints registered on NATS, over all routes.",
            )?,
            routes: IntGauge::new(
                "promfetcher_nats_routes",
                "Route keys registered on NATS.",
            )?,
            pruned: IntCounter::new(
                "promfetcher_nats_pruned_endpoints_total",
                "Endpoints removed because they were not registered again within their stale threshold.",
            )?,
            starts_sent: IntCounter::new(
                "promfetcher_nats_router_start_sent_total",
                "router.start messages published (at each connection).",
            )?,
            snapshots: IntCounter::new(
                "promfetcher_nats_snapshots_total",
                "Route table snapshots published from NATS registrations.",
            )?,
        };
        registry.register(Box::new(metrics.connected.clone()))?;
        registry.register(Box::new(metrics.connects.clone()))?;
        registry.register(Box::new(metrics.disconnects.clone()))?;
        registry.register(Box::new(metrics.messages.clone()))?;
        registry.register(Box::new(metrics.endpoints.clone()))?;
        registry.register(Box::new(metrics.routes.clone()))?;
        registry.register(Box::new(metrics.pruned.clone()))?;
        registry.register(Box::new(metrics.starts_sent.clone()))?;
        registry.register(Box::new(metrics.snapshots.clone()))?;
        Ok(metrics)
    }

    /// Counts one message on `subject` with `outcome`.
    pub fn message(&self, subject: &str, outcome: &str) {
        self.messages.with_label_values(&[subject, outcome]).inc();
    }
}
