//! An Open Service Broker API v2.17 server for actix-web, synchronous profile: a broker that
//! finishes every operation within the request and never answers `202`. It owns the protocol
//! (routes, headers, authentication, request validation against the catalog, status codes and
//! error bodies) and delegates what the operations mean to a [`ServiceBroker`]. It knows nothing
//! of what the service does or where it keeps its state.
//!
//! - [`types`]: the request and response bodies (unknown fields are ignored, as the spec requires).
//! - [`error`]: [`BrokerError`], its OSB error codes and the one mapping to HTTP status codes.
//! - [`service`]: the [`ServiceBroker`] trait a service implements, and the outcomes it returns.
//! - [`guard`]: basic authentication and the `X-Broker-API-Version` check.
//! - [`endpoints`]: the actix-web routes of every OSB endpoint ([`endpoints::scope`]) and the
//!   JSON answers they give.

pub mod endpoints;
pub mod error;
pub mod guard;
pub mod service;
pub mod types;

pub use endpoints::{scope, Operation};
pub use error::BrokerError;
pub use guard::Credentials;
pub use service::{Outcome, Removal, ServiceBroker};
