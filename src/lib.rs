//! promfetcher scrapes every instance of a Cloud Foundry app and answers with one merged
//! Prometheus exposition.

pub mod exposition;
pub mod routes;
