//! A simulated Cloud Foundry foundation for `promfetcher dev` and the tests: what it contains,
//! and the bodies its instances serve. It must not depend on any other promfetcher module.

mod metrics_body;
mod spec;

pub use metrics_body::{
    content_type, garbage_body, healthy_body, OPENMETRICS_CONTENT_TYPE, TEXT_CONTENT_TYPE,
};
pub use spec::{
    derived_guid, AppSpec, Behaviour, BodyFormat, FoundationSpec, InstanceSpec, Registrar,
    DEFAULT_METRICS_PATH, DEV_DOMAIN, DEV_GOROUTER_PASS, DEV_GOROUTER_USER,
};
