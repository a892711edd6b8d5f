//! One scrapeable app instance as the route table describes it: where to connect, how to verify
//! it, which `Host` to present, and the Cloud Foundry labels that identify it. Plain data, no I/O.
//! A large foundation holds a quarter of a million of them, so an instance is built once by its
//! source and then only shared (`Arc<Instance>`): by the source's own state, the route lists and
//! the app indexes of every snapshot. What its route's other instances have in common (the
//! route host, the app's tags) is shared too.

use std::sync::Arc;

use serde::ser::{SerializeStruct, Serializer};
use serde::Serialize;

use super::tags::{AppTags, RouteTags};

/// Names of the labels promfetcher adds to every sample, in the order they are written.
pub const LABEL_NAMES: [&str; 9] = [
    "organization_id",
    "space_id",
    "app_id",
    "organization_name",
    "space_name",
    "app_name",
    "index",
    "instance_id",
    "instance",
];

/// The labels naming an instance's app (org, space and app IDs and names), the first six of
/// [`LABEL_NAMES`]: an external exporter's samples and `promfetch_metric_fetch_success_total`
/// carry these.
pub const APP_LABEL_NAMES: &[&str] = LABEL_NAMES.split_at(6).0;

/// The app labels with `index` and `instance_id`, all of [`LABEL_NAMES`] but the address: the
/// labels of the original's `promfetch_metric_fetch_failed_total`.
pub const INDEX_LABEL_NAMES: &[&str] = LABEL_NAMES.split_at(8).0;

/// The Cloud Foundry identity of an instance, taken from the route endpoint's `tags`: its app's
/// tags, shared with the app's other instances, and its index. Endpoints without tags
/// (routing-API routes, `tags: null`) have empty values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CfIdentity {
    /// Org, space and app GUIDs and names, and `process_type` (`web`, `worker`, ...; only `web`
    /// is found by name and GUID lookups).
    pub app: Arc<AppTags>,
    /// `tags.instance_id`: the instance index, written as both `index` and `instance_id`.
    pub instance_index: Box<str>,
}

impl Serialize for CfIdentity {
    /// Flat, as the route dump has always shown it.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let app = &self.app;
        let mut out = serializer.serialize_struct("CfIdentity", 8)?;
        out.serialize_field("organization_id", &app.organization_id)?;
        out.serialize_field("space_id", &app.space_id)?;
        out.serialize_field("app_id", &app.app_id)?;
        out.serialize_field("organization_name", &app.organization_name)?;
        out.serialize_field("space_name", &app.space_name)?;
        out.serialize_field("app_name", &app.app_name)?;
        out.serialize_field("instance_index", &self.instance_index)?;
        out.serialize_field("process_type", &app.process_type)?;
        out.end()
    }
}

/// One instance of an app, reachable at `address`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// `ip:port` exactly as the route table lists it.
    pub address: Box<str>,
    /// The route host (without path) this instance was found under; sent as `Host`. Shared
    /// with the route's other instances.
    pub host: Arc<str>,
    /// `Some(name)` when the endpoint has `tls: true`: connect with TLS and verify the
    /// certificate against `name` (the endpoint's `server_cert_domain_san`, else the route host).
    pub tls_server_name: Option<Arc<str>>,
    pub identity: CfIdentity,
}

impl Instance {
    /// The instance at `address` under a route whose host is `host`, as a route source lists
    /// it: with `tls`, verified against `server_cert_domain_san` or, when that is empty, the
    /// host; identified by `tags` (none for routing-API routes).
    pub fn new(
        address: &str,
        host: &Arc<str>,
        tls: bool,
        server_cert_domain_san: Option<&str>,
        tags: Option<RouteTags>,
    ) -> Instance {
        let tls_server_name = tls.then(|| match server_cert_domain_san {
            Some(san) if !san.is_empty() => Arc::from(san),
            _ => host.clone(),
        });
        let tags = tags.unwrap_or_default();
        Instance {
            address: address.into(),
            host: host.clone(),
            tls_server_name,
            identity: CfIdentity {
                app: tags.app,
                instance_index: tags.instance_id.into_boxed_str(),
            },
        }
    }

    /// The nine label values, in the order of [`LABEL_NAMES`].
    pub fn label_values(&self) -> [&str; 9] {
        let (app, index) = (&self.identity.app, &self.identity.instance_index);
        [
            &app.organization_id,
            &app.space_id,
            &app.app_id,
            &app.organization_name,
            &app.space_name,
            &app.app_name,
            index,
            index,
            &self.address,
        ]
    }

    /// Label names paired with their values, in output order.
    pub fn labels(&self) -> [(&'static str, &str); 9] {
        let values = self.label_values();
        std::array::from_fn(|i| (LABEL_NAMES[i], values[i]))
    }
}
