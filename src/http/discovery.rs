//! `GET /v1/sd`: Prometheus HTTP service discovery (`http_sd_configs`). It turns the current
//! route table into one target group per app, all pointing at promfetcher itself, so that a
//! single scrape job covers every app of the foundation. It only reads the snapshot and the
//! public address; it does not scrape anything.
//!
//! Each group is `{"targets": ["<host:port of base_url>"], "labels": {...}}` with
//! `__metrics_path__` = `/v1/apps/<app GUID>/metrics` (GUIDs survive renames), `__scheme__` from
//! `base_url`, and the app's identity as `cf_organization_name`, `cf_space_name`,
//! `cf_app_name`, `cf_organization_id`, `cf_space_id`, `cf_app_id`. Only apps found by GUID
//! (web processes with an app GUID) are listed.

use std::collections::BTreeMap;

use actix_web::{web, HttpResponse};
use serde::Serialize;

use crate::http::ApiState;
use crate::http::PublicAddress;
use crate::routes::RouteTable;

/// Prefix of the target labels discovery sets; Prometheus keeps them on every scraped series.
pub const LABEL_PREFIX: &str = "cf_";

/// Mounts `GET /v1/sd`.
pub fn configure(config: &mut web::ServiceConfig) {
    config.route("/v1/sd", web::get().to(targets));
}

/// One `http_sd_configs` target group.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct TargetGroup {
    pub targets: Vec<String>,
    pub labels: BTreeMap<String, String>,
}

/// The target groups for every app of `table`, ordered by app GUID.
pub fn target_groups(table: &RouteTable, public: &PublicAddress) -> Vec<TargetGroup> {
    table
        .apps()
        .into_iter()
        .filter_map(|(guid, instances)| {
            let id = &instances.first()?.identity.app;
            let mut labels = BTreeMap::new();
            labels.insert(
                "__metrics_path__".to_string(),
                format!("/v1/apps/{guid}/metrics"),
            );
            labels.insert("__scheme__".to_string(), public.scheme.clone());
            for (name, value) in [
                ("organization_name", &id.organization_name),
                ("space_name", &id.space_name),
                ("app_name", &id.app_name),
                ("organization_id", &id.organization_id),
                ("space_id", &id.space_id),
                ("app_id", &id.app_id),
            ] {
                labels.insert(format!("{LABEL_PREFIX}{name}"), value.clone());
            }
            Some(TargetGroup {
                targets: vec![public.host_port.clone()],
                labels,
            })
        })
        .collect()
}

async fn targets(state: web::Data<ApiState>) -> HttpResponse {
    let Some(table) = state.table.snapshot() else {
        return HttpResponse::ServiceUnavailable()
            .content_type("text/plain; charset=utf-8")
            .body("503 Service Unavailable: the route table is not loaded yet; retry in a few seconds\n");
    };
    HttpResponse::Ok().json(target_groups(&table, &state.public))
}
