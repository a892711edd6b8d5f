//! The bodies of OSB API v2.17 requests and responses, as serde types. Request types ignore
//! unknown fields (the spec says receivers MUST) and default every field, so that a missing
//! required field is reported by the routes with a helpful description rather than a serde
//! message. `context`, `parameters` and `bind_resource` stay open JSON. No validation here.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A JSON object: `parameters`, `context`, `metadata`, `credentials`.
pub type JsonObject = Map<String, Value>;

/// `GET /v2/catalog`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Catalog {
    pub services: Vec<ServiceOffering>,
}

impl Catalog {
    /// The offering with `service_id`, and its plan `plan_id` when given.
    pub fn find(&self, service_id: &str) -> Option<&ServiceOffering> {
        self.services.iter().find(|s| s.id == service_id)
    }
}

/// One service offering of the catalog.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ServiceOffering {
    pub id: String,
    pub name: String,
    pub description: String,
    pub bindable: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requires: Vec<String>,
    #[serde(default)]
    pub instances_retrievable: bool,
    #[serde(default)]
    pub bindings_retrievable: bool,
    #[serde(default)]
    pub plan_updateable: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<JsonObject>,
    pub plans: Vec<Plan>,
}

impl ServiceOffering {
    pub fn plan(&self, plan_id: &str) -> Option<&Plan> {
        self.plans.iter().find(|p| p.id == plan_id)
    }
}

/// One plan of an offering. Only the fields strict conformance suites accept are written.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Plan {
    pub id: String,
    pub name: String,
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<JsonObject>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub free: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bindable: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schemas: Option<Schemas>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintenance_info: Option<MaintenanceInfo>,
}

/// JSON Schemas of the parameters a plan accepts.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Schemas {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_instance: Option<InstanceSchemas>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_binding: Option<BindingSchemas>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct InstanceSchemas {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create: Option<ParametersSchema>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update: Option<ParametersSchema>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BindingSchemas {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create: Option<ParametersSchema>,
}

/// `{"parameters": <JSON Schema>}`; the schema must carry `$schema`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ParametersSchema {
    pub parameters: Value,
}

/// `maintenance_info`: only `version` counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaintenanceInfo {
    #[serde(default)]
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// `PUT /v2/service_instances/:instance_id`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ProvisionRequest {
    pub service_id: String,
    pub plan_id: String,
    pub organization_guid: String,
    pub space_guid: String,
    pub context: Option<JsonObject>,
    pub parameters: Option<JsonObject>,
    pub maintenance_info: Option<MaintenanceInfo>,
}

/// `PATCH /v2/service_instances/:instance_id`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct UpdateRequest {
    pub service_id: String,
    pub plan_id: Option<String>,
    pub context: Option<JsonObject>,
    pub parameters: Option<JsonObject>,
    pub previous_values: Option<JsonObject>,
    pub maintenance_info: Option<MaintenanceInfo>,
}

/// `PUT /v2/service_instances/:instance_id/service_bindings/:binding_id`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct BindRequest {
    pub service_id: String,
    pub plan_id: String,
    /// Deprecated in favour of `bind_resource.app_guid`.
    pub app_guid: Option<String>,
    pub bind_resource: Option<JsonObject>,
    pub context: Option<JsonObject>,
    pub parameters: Option<JsonObject>,
}

impl BindRequest {
    /// The app being bound: `bind_resource.app_guid`, else the deprecated `app_guid`; `None`
    /// for a service key (no app, or an empty one).
    pub fn app_guid(&self) -> Option<&str> {
        let from_resource = self
            .bind_resource
            .as_ref()
            .and_then(|r| r.get("app_guid"))
            .and_then(Value::as_str);
        from_resource
            .or(self.app_guid.as_deref())
            .map(str::trim)
            .filter(|guid| !guid.is_empty())
    }
}

/// The query of `DELETE` on an instance or a binding.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteRequest {
    pub service_id: String,
    pub plan_id: String,
}

/// Body of a provision answer (201 or 200).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ProvisionResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dashboard_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<JsonObject>,
}

/// Body of an update answer (200).
pub type UpdateResponse = ProvisionResponse;

/// Body of `GET /v2/service_instances/:instance_id`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct InstanceDetails {
    pub service_id: String,
    pub plan_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dashboard_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameters: Option<JsonObject>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<JsonObject>,
}

/// Body of a bind answer and of `GET` on a binding (which adds `parameters`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Binding {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credentials: Option<JsonObject>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameters: Option<JsonObject>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<JsonObject>,
}
