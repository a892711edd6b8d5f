//! A simulated Cloud Foundry foundation for `promfetcher dev` and the tests: what it contains,
//! the bodies its instances serve, and its gorouter's `/routes`. It must not depend on any other
//! promfetcher module.

mod gorouter;
mod metrics_body;
mod serve;
mod spec;

pub use gorouter::{
    encode_routes, gorouter_auth_ok, handle as gorouter_handle, route_key, write_go_string,
    GorouterMode, GorouterState, RouteEndpoint,
};
pub use metrics_body::{
    content_type, garbage_body, healthy_body, OPENMETRICS_CONTENT_TYPE, TEXT_CONTENT_TYPE,
};
pub use serve::{accept_loop, Answer};
pub use spec::{
    derived_guid, AppSpec, Behaviour, BodyFormat, FoundationSpec, InstanceSpec, Registrar,
    DEFAULT_METRICS_PATH, DEV_DOMAIN, DEV_GOROUTER_PASS, DEV_GOROUTER_USER,
};
