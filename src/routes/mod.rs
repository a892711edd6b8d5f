//! The route table: which instances serve which app, as learnt from the foundation's routers.
//! Lookups read an immutable snapshot ([`RouteTableHandle`]); sources build a complete new
//! [`RouteTable`] and swap it in whole, so a request never waits for an update.
//!
//! - `instance`: the instance model and the nine Cloud Foundry labels.
//! - `table`: the snapshot, its indexes and lookups.
//! - `handle`: the atomically swapped pointer to the current snapshot.
//! - `settings`: which sources run, from the config keys.
//! - `sources`: the merge rule that turns every source's routes into one table.
//! - `gorouter`: the source that polls the gorouters' `/routes`.
//! - `nats`: the source that applies route registrations received on NATS.
//! - `tags`: an endpoint's Cloud Foundry tags, the app's shared by its endpoints.
//! - `metrics`: the route sources' own metrics.

mod gorouter;
mod handle;
mod instance;
mod metrics;
pub mod nats;
mod settings;
mod sources;
mod table;
mod tags;

pub use gorouter::{BodyError, BodyReading, GorouterError, GorouterPoller};
pub use handle::RouteTableHandle;
pub use instance::{CfIdentity, Instance, APP_LABEL_NAMES, INDEX_LABEL_NAMES, LABEL_NAMES};
pub use metrics::{FailingSource, RouteSourceMetrics, SourceState};
pub use nats::NatsSource;
pub use settings::RouteSourceSettings;
pub use sources::{Published, RouteFeed, RouteSourceKind, RouteSources, SourceRoutes};
pub use table::{normalize_route_key, AppQuery, Instances, RouteTable, RouteTableBuilder};
pub use tags::AppTags;
