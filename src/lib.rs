//! promfetcher scrapes every instance of a Cloud Foundry app and answers with one merged
//! Prometheus exposition.

pub mod config;
pub mod dev;
pub mod exposition;
pub mod metric_path;
pub mod routes;
pub mod scrape;
