//! promfetcher scrapes every instance of a Cloud Foundry app and answers with one merged
//! Prometheus exposition. The module map below is the one map of the code; ARCHITECTURE.md
//! draws the way a request takes through it.
//!
//! Grouped by the stage a request passes through, each folder one job:
//! - [`config`]: the YAML file's shapes (the original's keys and ours), defaults, masking;
//! - [`routes`]: the route table (immutable snapshots) and its two sources, gorouter polling
//!   and NATS registrations;
//! - [`scrape`]: one request to one instance (headers, limits, TLS), and the metrics path;
//! - [`fanout`]: one app: every instance and external exporter at once, coalescing of
//!   identical requests, the merge pool, the gzip of a shared answer, the per-instance report
//!   of a diagnosis;
//! - [`http`]: the main and health ports' handlers, access log, inbound auth, user guide,
//!   diagnosis, service discovery and route dump;
//! - [`service_broker`]: our Open Service Broker (the `osb_broker` crate's `ServiceBroker`) and
//!   its request parameters;
//! - [`store`]: the metrics paths set through the broker, in SQL, and the cache the fan-out reads;
//! - [`own_metrics`]: how each module registers promfetcher's own metrics;
//! - [`server`]: wires the above from the configuration, handles signals, logging and
//!   `promfetcher dev`.
//!
//! The exposition engine (parse, relabel, merge, write) is the `exposition` crate, pure; the
//! simulated foundation is the `simulated_foundation` crate, which only [`server::dev_mode`]
//! and the tests use.

pub mod config;
pub mod fanout;
pub mod http;
pub mod own_metrics;
pub mod routes;
pub mod scrape;
pub mod server;
pub mod service_broker;
pub mod settings;
pub mod store;
