//! The HTTP layer: what each URL of the main port and the health port answers, and the
//! middleware around them. Handlers read the request, look the app up in the current route
//! table snapshot, run the fan-out and map its result to a status; they hold no state of their
//! own and never touch SQL.

pub mod access_log;
pub mod app_metrics;
pub mod app_name;
pub mod discovery;
pub mod health;
pub mod metrics_auth;
pub mod route_dump;
pub mod sliced_body;
pub mod user_guide;
