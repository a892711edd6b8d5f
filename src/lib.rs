//! promfetcher scrapes every instance of a Cloud Foundry app and answers with one merged
//! Prometheus exposition.
//!
//! - [`routes`]: the route table and its lookups.
//! - [`dev`]: a simulated Cloud Foundry foundation (gorouter and app instances) for
//!   `promfetcher dev` and the tests.

pub mod dev;
pub mod routes;
