//! The NATS route source's own metrics: connection state, messages by subject and outcome,
//! endpoints and routes held, prunes, `router.start` messages sent and snapshots published.
//! It registers and updates them; it decides nothing.

use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};

use crate::own_metrics::registered;

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
        Ok(NatsMetrics {
            connected: registered(
                registry,
                IntGauge::new(
                "promfetcher_nats_connected",
                "1 while connected to a NATS server, else 0.",
            )?)?,
            connects: registered(
                registry,
                IntCounter::new(
                "promfetcher_nats_connects_total",
                "Connections to a NATS server, the first and every reconnection.",
            )?)?,
            disconnects: registered(
                registry,
                IntCounter::new(
                "promfetcher_nats_disconnects_total",
                "Losses of the NATS connection.",
            )?)?,
            messages: registered(
                registry,
                IntCounterVec::new(
                Opts::new(
                    "promfetcher_nats_messages_total",
                    "NATS messages received, by subject and what became of them.",
                ),
                &["subject", "outcome"],
            )?)?,
            endpoints: registered(
                registry,
                IntGauge::new(
                "promfetcher_nats_endpoints",
                "Endpoints registered on NATS, over all routes.",
            )?)?,
            routes: registered(
                registry,
                IntGauge::new(
                "promfetcher_nats_routes",
                "Route keys registered on NATS.",
            )?)?,
            pruned: registered(
                registry,
                IntCounter::new(
                "promfetcher_nats_pruned_endpoints_total",
                "Endpoints removed because they were not registered again within their stale threshold.",
            )?)?,
            starts_sent: registered(
                registry,
                IntCounter::new(
                "promfetcher_nats_router_start_sent_total",
                "router.start messages published (at each connection).",
            )?)?,
            snapshots: registered(
                registry,
                IntCounter::new(
                "promfetcher_nats_snapshots_total",
                "Route table snapshots published from NATS registrations.",
            )?)?,
        })
    }

    /// Counts one message on `subject` with `outcome`.
    pub fn message(&self, subject: &str, outcome: &str) {
        self.messages.with_label_values(&[subject, outcome]).inc();
    }
}
