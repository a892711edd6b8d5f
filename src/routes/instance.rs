//! One scrapeable app instance as the route table describes it: where to connect, how to verify
//! it, which `Host` to present, and the Cloud Foundry labels that identify it. Plain data, no I/O.

use serde::Serialize;

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

/// The Cloud Foundry identity of an instance, taken from the route endpoint's `tags`.
/// Endpoints without tags (routing-API routes, `tags: null`) have empty values.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CfIdentity {
    pub organization_id: String,
    pub space_id: String,
    pub app_id: String,
    pub organization_name: String,
    pub space_name: String,
    pub app_name: String,
    /// `tags.instance_id`: the instance index, written as both `index` and `instance_id`.
    pub instance_index: String,
    /// `tags.process_type` (`web`, `worker`, ...); only `web` is found by name and GUID lookups.
    pub process_type: String,
}

/// One instance of an app, reachable at `address`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Instance {
    /// `ip:port` exactly as the route table lists it.
    pub address: String,
    /// The route host (without path) this instance was found under; sent as `Host`.
    pub host: String,
    /// `Some(name)` when the endpoint has `tls: true`: connect with TLS and verify the
    /// certificate against `name` (the endpoint's `server_cert_domain_san`, else the route host).
    pub tls_server_name: Option<String>,
    pub identity: CfIdentity,
}

impl Instance {
    /// The nine label values, in the order of [`LABEL_NAMES`].
    pub fn label_values(&self) -> [&str; 9] {
        let id = &self.identity;
        [
            &id.organization_id,
            &id.space_id,
            &id.app_id,
            &id.organization_name,
            &id.space_name,
            &id.app_name,
            &id.instance_index,
            &id.instance_index,
            &self.address,
        ]
    }

    /// Label names paired with their values, in output order.
    pub fn labels(&self) -> [(&'static str, &str); 9] {
        let values = self.label_values();
        std::array::from_fn(|i| (LABEL_NAMES[i], values[i]))
    }
}
