//! promfetcher's service behind the Open Service Broker API: the catalog (from config, with the
//! original's ids and names) and what each operation means here. An instance carries an optional
//! metrics `endpoint` (`cf create-service ... -c '{"endpoint":"/path"}'`, changed by
//! `cf update-service -c`); binding an app makes that endpoint (or the binding's own) the path
//! promfetcher scrapes on the app's instances; unbinding and deprovisioning forget it. The OSB
//! protocol is the `osb_broker` crate's job, persistence the [`crate::store`]'s.

pub mod parameters;

use std::sync::Arc;

use async_trait::async_trait;
use osb_broker::types::{
    BindRequest, Binding, Catalog, DeleteRequest, InstanceDetails, JsonObject, ParametersSchema,
    Plan, ProvisionRequest, ProvisionResponse, Schemas, ServiceOffering, UpdateRequest,
    UpdateResponse,
};
use osb_broker::{BrokerError, Outcome, Removal, ServiceBroker};
use serde_json::{json, Value};

use crate::config::BrokerConfig;
use crate::http::PublicAddress;
use crate::service_broker::parameters::{canonical, EndpointParameter};
use crate::store::{BindingRecord, EndpointStore, InstanceRecord, StoreError};

/// Name of the service offering, as the original registered it.
pub const SERVICE_NAME: &str = "promfetcher";
/// Name of the only plan, as the original registered it.
pub const PLAN_NAME: &str = "fetch-app";
pub use crate::service_broker::parameters::{
    ENDPOINT_PARAMETER, MAX_ENDPOINT_LEN, MAX_PARAMETERS_LEN,
};

/// What the broker needs from the configuration.
#[derive(Debug, Clone)]
pub struct BrokerSettings {
    /// Catalog ids (config `broker.broker_service_id`, `broker.broker_plan_id`).
    pub service_id: String,
    pub plan_id: String,
    /// The user guide, linked from the catalog.
    pub documentation_url: String,
    /// The basic-auth credentials the platform presents (config `broker.user`, `broker.pass`).
    pub credentials: osb_broker::Credentials,
    /// The credentials are the binary's defaults, which anyone can read in its docs.
    pub well_known_credentials: bool,
}

impl BrokerSettings {
    pub fn new(config: &BrokerConfig, public: &PublicAddress) -> BrokerSettings {
        BrokerSettings {
            service_id: config.broker_service_id.clone(),
            plan_id: config.broker_plan_id.clone(),
            documentation_url: format!("{}/doc", public.base_url),
            credentials: osb_broker::Credentials::new(config.user.clone(), config.pass.expose()),
            well_known_credentials: {
                let defaults = BrokerConfig::default();
                config.user == defaults.user && config.pass.expose() == defaults.pass.expose()
            },
        }
    }
}

/// The catalog: one service `promfetcher` with one free, bindable plan `fetch-app`.
pub fn catalog(settings: &BrokerSettings) -> Catalog {
    let documentation_url = &settings.documentation_url;
    let endpoint_schema = || ParametersSchema {
        parameters: json!({
            "$schema": "http://json-schema.org/draft-04/schema#",
            "type": "object",
            "properties": {
                ENDPOINT_PARAMETER: {
                    "type": "string",
                    "pattern": "^/",
                    "maxLength": MAX_ENDPOINT_LEN,
                    "description": "Path promfetcher scrapes on every instance of the bound app, e.g. /actuator/prometheus"
                }
            }
        }),
    };
    let metadata = |value: Value| value.as_object().cloned();
    Catalog {
        services: vec![ServiceOffering {
            id: settings.service_id.clone(),
            name: SERVICE_NAME.into(),
            description: "Fetch your prometheus metrics on each instance of your app".into(),
            bindable: true,
            instances_retrievable: true,
            bindings_retrievable: true,
            plan_updateable: false,
            metadata: metadata(json!({
                "displayName": SERVICE_NAME,
                "longDescription": "Fetch your prometheus metrics on each instance of your app.",
                "documentationUrl": documentation_url,
                "providerDisplayName": "promfetcher",
            })),
            plans: vec![Plan {
                id: settings.plan_id.clone(),
                name: PLAN_NAME.into(),
                description: "Fetch your prometheus metrics on each instance of your app by setting an endpoint to scrape".into(),
                metadata: metadata(json!({"displayName": PLAN_NAME})),
                free: Some(true),
                bindable: Some(true),
                schemas: Some(Schemas {
                    service_instance: Some(osb_broker::types::InstanceSchemas {
                        create: Some(endpoint_schema()),
                        update: Some(endpoint_schema()),
                    }),
                    service_binding: Some(osb_broker::types::BindingSchemas {
                        create: Some(endpoint_schema()),
                    }),
                }),
                maintenance_info: None,
            }],
            ..ServiceOffering::default()
        }],
    }
}

fn parsed(parameters: &str) -> Option<JsonObject> {
    serde_json::from_str::<JsonObject>(parameters).ok()
}

fn credentials(endpoint: Option<&str>) -> Option<JsonObject> {
    let mut credentials = JsonObject::new();
    if let Some(endpoint) = endpoint {
        credentials.insert(ENDPOINT_PARAMETER.into(), Value::String(endpoint.into()));
    }
    Some(credentials)
}

/// How a store failure reaches the platform: a conflict to retry, a 503 while the database is
/// away, else a 500.
impl From<StoreError> for BrokerError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Duplicate => BrokerError::ConcurrencyError(
                "another request created the same resource at the same time; retry".into(),
            ),
            StoreError::Unavailable(_) | StoreError::Migrate(_) => {
                tracing::warn!(%error, "broker request failed: endpoint database unavailable");
                BrokerError::Unavailable(
                    "the promfetcher database is unavailable; nothing was changed, retry in a moment"
                        .into(),
                )
            }
            StoreError::Database(_) => {
                tracing::error!(%error, "broker request failed");
                BrokerError::Internal("the promfetcher database refused the request".into())
            }
        }
    }
}

/// The promfetcher service broker.
pub struct PromfetcherBroker {
    catalog: Catalog,
    store: Arc<EndpointStore>,
}

impl PromfetcherBroker {
    pub fn new(settings: &BrokerSettings, store: Arc<EndpointStore>) -> Self {
        PromfetcherBroker {
            catalog: catalog(settings),
            store,
        }
    }

    /// The endpoint the binding gives its app: its own, else its instance's.
    async fn effective_endpoint(
        &self,
        binding: &BindingRecord,
    ) -> Result<Option<String>, BrokerError> {
        if binding.endpoint.is_some() || binding.instance_id.is_empty() {
            return Ok(binding.endpoint.clone());
        }
        let instance = self.store.instance(&binding.instance_id).await?;
        Ok(instance.and_then(|i| i.endpoint))
    }
}

#[async_trait]
impl ServiceBroker for PromfetcherBroker {
    fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    async fn provision(
        &self,
        instance_id: &str,
        request: ProvisionRequest,
    ) -> Result<Outcome<ProvisionResponse>, BrokerError> {
        let endpoint = EndpointParameter::from_parameters(request.parameters.as_ref())?.apply(None);
        let record = InstanceRecord {
            instance_id: instance_id.to_string(),
            service_id: request.service_id,
            plan_id: request.plan_id,
            organization_guid: request.organization_guid,
            space_guid: request.space_guid,
            parameters: canonical(request.parameters.as_ref())?,
            endpoint,
        };
        match self.store.instance(instance_id).await? {
            Some(existing) if existing == record => {
                Ok(Outcome::Existing(ProvisionResponse::default()))
            }
            Some(_) => Err(BrokerError::Conflict(format!(
                "service instance {instance_id} already exists with other attributes"
            ))),
            None => {
                self.store.create_instance(&record).await?;
                Ok(Outcome::Created(ProvisionResponse::default()))
            }
        }
    }

    async fn fetch_instance(&self, instance_id: &str) -> Result<InstanceDetails, BrokerError> {
        let record =
            self.store.instance(instance_id).await?.ok_or_else(|| {
                BrokerError::NotFound(format!("no service instance {instance_id}"))
            })?;
        Ok(InstanceDetails {
            service_id: record.service_id,
            plan_id: record.plan_id,
            parameters: parsed(&record.parameters),
            ..InstanceDetails::default()
        })
    }

    async fn update(
        &self,
        instance_id: &str,
        request: UpdateRequest,
    ) -> Result<UpdateResponse, BrokerError> {
        let wanted = EndpointParameter::from_parameters(request.parameters.as_ref())?;
        let found = self
            .store
            .update_instance(instance_id, |record| {
                if let Some(plan_id) = request.plan_id.filter(|p| !p.trim().is_empty()) {
                    record.plan_id = plan_id;
                }
                if let Some(changes) = request.parameters {
                    let mut parameters = parsed(&record.parameters).unwrap_or_default();
                    parameters.extend(changes);
                    parameters.retain(|_, value| !value.is_null());
                    record.parameters = canonical(Some(&parameters))?;
                }
                record.endpoint = wanted.apply(record.endpoint.take());
                Ok::<(), BrokerError>(())
            })
            .await?;
        if !found {
            return Err(BrokerError::NotFound(format!(
                "no service instance {instance_id}"
            )));
        }
        Ok(UpdateResponse::default())
    }

    async fn deprovision(
        &self,
        instance_id: &str,
        _request: DeleteRequest,
    ) -> Result<Removal, BrokerError> {
        match self.store.delete_instance(instance_id).await? {
            true => Ok(Removal::Deleted),
            false => Ok(Removal::Gone),
        }
    }

    async fn bind(
        &self,
        instance_id: &str,
        binding_id: &str,
        request: BindRequest,
    ) -> Result<Outcome<Binding>, BrokerError> {
        let own = EndpointParameter::from_parameters(request.parameters.as_ref())?;
        let record = BindingRecord {
            binding_id: binding_id.to_string(),
            instance_id: instance_id.to_string(),
            service_id: request.service_id.clone(),
            plan_id: request.plan_id.clone(),
            app_guid: request.app_guid().map(str::to_string),
            parameters: canonical(request.parameters.as_ref())?,
            endpoint: own.apply(None),
        };
        if let Some(existing) = self.store.binding(binding_id).await? {
            let same = existing.instance_id == record.instance_id
                && existing.app_guid == record.app_guid
                && existing.parameters == record.parameters;
            if !same {
                return Err(BrokerError::Conflict(format!(
                    "service binding {binding_id} already exists with other attributes"
                )));
            }
            let endpoint = self.effective_endpoint(&existing).await?;
            return Ok(Outcome::Existing(Binding {
                credentials: credentials(endpoint.as_deref()),
                ..Binding::default()
            }));
        }
        // An instance this broker never saw was created by the original promfetcher, which kept
        // no instances: its bindings are accepted, with their own endpoint only.
        let endpoint = self.store.create_binding(&record).await?;
        Ok(Outcome::Created(Binding {
            credentials: credentials(endpoint.as_deref()),
            ..Binding::default()
        }))
    }

    async fn fetch_binding(
        &self,
        _instance_id: &str,
        binding_id: &str,
    ) -> Result<Binding, BrokerError> {
        let record = self
            .store
            .binding(binding_id)
            .await?
            .ok_or_else(|| BrokerError::NotFound(format!("no service binding {binding_id}")))?;
        let endpoint = self.effective_endpoint(&record).await?;
        Ok(Binding {
            credentials: credentials(endpoint.as_deref()),
            parameters: parsed(&record.parameters),
            ..Binding::default()
        })
    }

    async fn unbind(
        &self,
        _instance_id: &str,
        binding_id: &str,
        _request: DeleteRequest,
    ) -> Result<Removal, BrokerError> {
        match self.store.delete_binding(binding_id).await? {
            true => Ok(Removal::Deleted),
            false => Ok(Removal::Gone),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalog_keeps_the_original_ids_and_names() {
        let settings =
            crate::settings::Settings::from_config(&crate::config::Config::default()).unwrap();
        let catalog = catalog(&settings.broker);
        let service = &catalog.services[0];
        assert_eq!(service.id, crate::config::DEFAULT_BROKER_SERVICE_ID);
        assert_eq!(service.name, "promfetcher");
        assert!(service.instances_retrievable && service.bindings_retrievable && service.bindable);
        let plan = &service.plans[0];
        assert_eq!(plan.id, crate::config::DEFAULT_BROKER_PLAN_ID);
        assert_eq!(plan.name, "fetch-app");
        assert_eq!(plan.free, Some(true));
        let written = serde_json::to_value(&catalog).unwrap();
        assert_eq!(
            written["services"][0]["metadata"]["documentationUrl"],
            "http://localhost:8085/doc"
        );
        let schema = &written["services"][0]["plans"][0]["schemas"]["service_binding"]["create"]
            ["parameters"];
        assert_eq!(schema["$schema"], "http://json-schema.org/draft-04/schema#");
    }
}
