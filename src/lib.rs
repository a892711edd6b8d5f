//! promfetcher scrapes every instance of a Cloud Foundry app and answers with one merged
//! Prometheus exposition.
//!
//! - [`routes`]: the route table, which instances serve which app.
//! - [`metric_path`]: the validated path scraped on an instance.
//! - [`scrape`]: one instance, one HTTP request (URL, headers, TLS, timeouts, size limits, gzip).

pub mod metric_path;
pub mod routes;
pub mod scrape;
