//! promfetcher scrapes every instance of a Cloud Foundry app and answers with one merged
//! Prometheus exposition.
//!
//! A request flows one way: [`api`] parses it (the app named checked by [`app_value`], the
//! path by [`metric_path`]) and looks the app up in the current
//! [`routes`] snapshot; [`fetch`] fans out to every instance (and to the
//! [`external_exporter`]s, asked about the app) through [`scrape`]; the
//! [`exposition`] engine relabels and merges what they sent. [`server`] wires it all from
//! [`config`], with [`health`], [`shutdown`] and [`telemetry`] around it. [`dev`] is the
//! simulated foundation used by the tests and by `promfetcher dev` ([`dev_command`]).
//! [`broker`] is the service behind the Open Service Broker API (the `osb_broker` crate), its
//! request parameters read by [`broker_parameters`]; the paths it sets live in [`store`] (SQL plus the in-memory cache the fan-out reads).
//! [`route_dump`] shows the route table to operators (`GET /routes`); [`doc`] is the user guide
//! (`GET /doc`); [`discovery`] lists every app for Prometheus' `http_sd_configs` (`GET /v1/sd`).
//! [`access_log`] writes one line per HTTP request; [`metrics_auth`] guards the metrics
//! endpoints when the config asks for it.
//! Merged answers go out once compressed ([`gzip_answer`]) and in slices ([`sliced_body`]),
//! however many callers share them.

pub mod access_log;
pub mod api;
pub mod app_value;
pub mod broker;
pub mod broker_parameters;
pub mod coalesce;
pub mod config;
pub mod dev;
pub mod dev_command;
pub mod discovery;
pub mod doc;
pub mod exposition;
pub mod external_exporter;
pub mod fetch;
pub mod gzip_answer;
pub mod health;
pub mod merge_pool;
pub mod metric_path;
pub mod metrics_auth;
pub mod route_dump;
pub mod routes;
pub mod scrape;
pub mod server;
pub mod shutdown;
pub mod sliced_body;
pub mod store;
pub mod telemetry;
