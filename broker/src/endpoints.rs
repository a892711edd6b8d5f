//! The actix-web routes of the OSB API under one scope: every request is authenticated and
//! version-checked, validated against the catalog, handed to the [`ServiceBroker`], and answered
//! with JSON (`Content-Type: application/json` on every answer, errors included, and the
//! caller's `X-Broker-API-Request-Identity` echoed). Status codes come from [`Outcome`],
//! [`Removal`] and [`BrokerError::status`] only.

use std::collections::HashMap;
use std::sync::Arc;

use actix_web::http::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::BrokerError;
use crate::guard::{check_version, Credentials};
use crate::service::{Outcome, Removal, ServiceBroker};
use crate::types::{
    BindRequest, Catalog, DeleteRequest, MaintenanceInfo, Plan, ProvisionRequest, UpdateRequest,
};

/// Header a platform may send to identify a request; echoed on the answer.
pub const REQUEST_IDENTITY_HEADER: &str = "x-broker-api-request-identity";
/// Largest request body accepted; a larger one is refused with 413. OSB bodies are a few ids
/// and the service's parameters, far below it.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

const INSTANCE: &str = "/v2/service_instances/{instance_id}";
const BINDING: &str = "/v2/service_instances/{instance_id}/service_bindings/{binding_id}";

/// What every route shares.
struct BrokerState {
    broker: Arc<dyn ServiceBroker>,
    credentials: Credentials,
}

/// The OSB API routes (`/v2/...`) under `prefix` (e.g. `/broker`), served by `broker` to
/// platforms presenting `credentials`.
pub fn scope(
    prefix: &str,
    broker: Arc<dyn ServiceBroker>,
    credentials: Credentials,
) -> actix_web::Scope {
    web::scope(prefix)
        .app_data(web::Data::new(BrokerState {
            broker,
            credentials,
        }))
        .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
        .route("/v2/catalog", web::get().to(catalog))
        .route(INSTANCE, web::put().to(provision))
        .route(INSTANCE, web::get().to(fetch_instance))
        .route(INSTANCE, web::patch().to(update))
        .route(INSTANCE, web::delete().to(deprovision))
        .route(
            "/v2/service_instances/{instance_id}/last_operation",
            web::get().to(instance_last_operation),
        )
        .route(BINDING, web::put().to(bind))
        .route(BINDING, web::get().to(fetch_binding))
        .route(BINDING, web::delete().to(unbind))
        .route(
            "/v2/service_instances/{instance_id}/service_bindings/{binding_id}/last_operation",
            web::get().to(binding_last_operation),
        )
        .default_service(web::to(unknown_route))
}

/// The OSB operation a request asked for. Every answer of a known route carries it in its
/// response extensions, for middleware that counts operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Catalog,
    Provision,
    Update,
    Deprovision,
    Bind,
    Unbind,
    GetInstance,
    GetBinding,
    /// Polling an instance's or a binding's last operation.
    LastOperation,
}

impl Operation {
    /// The name in metrics: `catalog`, `provision`, …, `last_operation`.
    pub fn label(self) -> &'static str {
        match self {
            Operation::Catalog => "catalog",
            Operation::Provision => "provision",
            Operation::Update => "update",
            Operation::Deprovision => "deprovision",
            Operation::Bind => "bind",
            Operation::Unbind => "unbind",
            Operation::GetInstance => "get_instance",
            Operation::GetBinding => "get_binding",
            Operation::LastOperation => "last_operation",
        }
    }
}

/// A successful answer: status and JSON body.
type Reply = (StatusCode, serde_json::Value);
/// A request body, or why it could not be read (too large, broken transfer); the error is
/// answered after the credentials are checked, as an OSB error.
type Body = Result<web::Bytes, actix_web::Error>;
type Handled = Result<Reply, BrokerError>;

fn reply(status: StatusCode, body: impl Serialize) -> Handled {
    serde_json::to_value(body)
        .map(|value| (status, value))
        .map_err(|error| BrokerError::Internal(format!("cannot write the answer: {error}")))
}

fn outcome<T: Serialize>(outcome: Outcome<T>) -> Handled {
    match outcome {
        Outcome::Created(body) => reply(StatusCode::CREATED, body),
        Outcome::Existing(body) => reply(StatusCode::OK, body),
    }
}

fn removal(removal: Removal) -> Handled {
    let status = match removal {
        Removal::Deleted => StatusCode::OK,
        Removal::Gone => StatusCode::GONE,
    };
    reply(status, serde_json::json!({}))
}

/// Writes the answer: JSON body, JSON content type, request identity echoed.
fn answer(req: &HttpRequest, handled: Handled) -> HttpResponse {
    let (status, body) = match handled {
        Ok(reply) => reply,
        Err(error) => {
            if error.status().is_server_error() {
                tracing::warn!(status = %error.status(), error = %error.description(), path = req.path(), "broker request failed");
            }
            match serde_json::to_value(error.body()) {
                Ok(body) => (error.status(), body),
                Err(_) => (error.status(), serde_json::json!({})),
            }
        }
    };
    let mut response = HttpResponse::build(status);
    response.insert_header((CONTENT_TYPE, HeaderValue::from_static("application/json")));
    if let Some(identity) = req.headers().get(REQUEST_IDENTITY_HEADER) {
        response.insert_header((
            HeaderName::from_static(REQUEST_IDENTITY_HEADER),
            identity.clone(),
        ));
    }
    response.body(body.to_string())
}

impl BrokerState {
    /// Authentication first, then the API version (the order brokerapi uses).
    fn admit(&self, req: &HttpRequest) -> Result<(), BrokerError> {
        self.credentials.check(req.headers())?;
        check_version(req.headers())
    }
}

/// A path segment, percent-decoded by the router.
fn segment(req: &HttpRequest, name: &str) -> String {
    req.match_info().query(name).to_string()
}

/// The body as `T`; it must be a JSON object of at most [`MAX_BODY_BYTES`].
fn json_body<T: DeserializeOwned>(body: &Body) -> Result<T, BrokerError> {
    let body = body.as_ref().map_err(|error| {
        if error.as_response_error().status_code() == StatusCode::PAYLOAD_TOO_LARGE {
            BrokerError::PayloadTooLarge(format!(
                "the body is larger than {MAX_BODY_BYTES} bytes; an OSB request needs far less"
            ))
        } else {
            BrokerError::BadRequest(format!("the body could not be read: {error}"))
        }
    })?;
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|error| BrokerError::BadRequest(format!("the body is not valid JSON: {error}")))?;
    if !value.is_object() {
        return Err(BrokerError::BadRequest(
            "the body must be a JSON object".into(),
        ));
    }
    serde_json::from_value(value).map_err(|error| {
        BrokerError::BadRequest(format!("the body has a field of the wrong type: {error}"))
    })
}

/// Refuses the first of `fields` that is empty.
fn require(fields: &[(&str, &str)]) -> Result<(), BrokerError> {
    match fields.iter().find(|(_, value)| value.trim().is_empty()) {
        Some((name, _)) => Err(BrokerError::BadRequest(format!(
            "{name} is missing or empty; it is required"
        ))),
        None => Ok(()),
    }
}

/// The plan `plan_id` of the offering `service_id`, both from the catalog.
fn known_plan<'c>(
    catalog: &'c Catalog,
    service_id: &str,
    plan_id: &str,
) -> Result<&'c Plan, BrokerError> {
    let offering = catalog.find(service_id).ok_or_else(|| {
        BrokerError::BadRequest(format!(
            "service_id {service_id:?} is not in this broker's catalog"
        ))
    })?;
    offering.plan(plan_id).ok_or_else(|| {
        BrokerError::BadRequest(format!(
            "plan_id {plan_id:?} is not a plan of the service {:?} in this broker's catalog",
            offering.name
        ))
    })
}

/// A requested `maintenance_info.version` must be the plan's; a missing or empty one is "not sent".
fn check_maintenance_info(
    plan: &Plan,
    requested: Option<&MaintenanceInfo>,
) -> Result<(), BrokerError> {
    let Some(wanted) = requested
        .map(|m| m.version.trim())
        .filter(|v| !v.is_empty())
    else {
        return Ok(());
    };
    match &plan.maintenance_info {
        Some(current) if current.version == wanted => Ok(()),
        Some(current) => Err(BrokerError::MaintenanceInfoConflict(format!(
            "maintenance_info.version {wanted:?} is not the plan's current version {:?}",
            current.version
        ))),
        None => Err(BrokerError::MaintenanceInfoConflict(format!(
            "maintenance_info.version {wanted:?} was requested but the plan {:?} has no maintenance_info",
            plan.name
        ))),
    }
}

/// `service_id` and `plan_id` from the query of a `DELETE`; both required.
fn delete_request(req: &HttpRequest) -> Result<DeleteRequest, BrokerError> {
    let query = web::Query::<HashMap<String, String>>::from_query(req.query_string())
        .map_err(|error| BrokerError::BadRequest(format!("unreadable query: {error}")))?;
    let get = |name: &str| query.get(name).cloned().unwrap_or_default();
    let request = DeleteRequest {
        service_id: get("service_id"),
        plan_id: get("plan_id"),
    };
    require(&[
        ("service_id (query)", &request.service_id),
        ("plan_id (query)", &request.plan_id),
    ])?;
    Ok(request)
}

/// Admits the request (credentials, version), runs `work` and writes its answer, which
/// carries `operation` (none for an unknown route) in its extensions.
async fn guarded(
    req: &HttpRequest,
    state: &BrokerState,
    operation: Option<Operation>,
    work: impl std::future::Future<Output = Handled>,
) -> HttpResponse {
    let handled = match state.admit(req) {
        Ok(()) => work.await,
        Err(error) => Err(error),
    };
    let mut response = answer(req, handled);
    if let Some(operation) = operation {
        response.extensions_mut().insert(operation);
    }
    response
}

fn instance_id(req: &HttpRequest) -> String {
    segment(req, "instance_id")
}

fn binding_ids(req: &HttpRequest) -> (String, String) {
    (segment(req, "instance_id"), segment(req, "binding_id"))
}

fn succeeded() -> Handled {
    reply(StatusCode::OK, serde_json::json!({"state": "succeeded"}))
}

async fn catalog(req: HttpRequest, state: web::Data<BrokerState>) -> HttpResponse {
    guarded(&req, &state, Some(Operation::Catalog), async {
        reply(StatusCode::OK, state.broker.catalog())
    })
    .await
}

async fn provision(req: HttpRequest, state: web::Data<BrokerState>, body: Body) -> HttpResponse {
    guarded(&req, &state, Some(Operation::Provision), async {
        let request: ProvisionRequest = json_body(&body)?;
        require(&[
            ("service_id", &request.service_id),
            ("plan_id", &request.plan_id),
            ("organization_guid", &request.organization_guid),
            ("space_guid", &request.space_guid),
        ])?;
        let plan = known_plan(
            state.broker.catalog(),
            &request.service_id,
            &request.plan_id,
        )?;
        check_maintenance_info(plan, request.maintenance_info.as_ref())?;
        outcome(state.broker.provision(&instance_id(&req), request).await?)
    })
    .await
}

async fn fetch_instance(req: HttpRequest, state: web::Data<BrokerState>) -> HttpResponse {
    guarded(&req, &state, Some(Operation::GetInstance), async {
        reply(
            StatusCode::OK,
            state.broker.fetch_instance(&instance_id(&req)).await?,
        )
    })
    .await
}

async fn update(req: HttpRequest, state: web::Data<BrokerState>, body: Body) -> HttpResponse {
    guarded(&req, &state, Some(Operation::Update), async {
        let request: UpdateRequest = json_body(&body)?;
        require(&[("service_id", &request.service_id)])?;
        let catalog = state.broker.catalog();
        let plan = match request.plan_id.as_deref().filter(|p| !p.trim().is_empty()) {
            Some(plan_id) => known_plan(catalog, &request.service_id, plan_id)?,
            None => catalog
                .find(&request.service_id)
                .and_then(|offering| offering.plans.first())
                .ok_or_else(|| {
                    BrokerError::BadRequest(format!(
                        "service_id {:?} is not in this broker's catalog",
                        request.service_id
                    ))
                })?,
        };
        check_maintenance_info(plan, request.maintenance_info.as_ref())?;
        reply(
            StatusCode::OK,
            state.broker.update(&instance_id(&req), request).await?,
        )
    })
    .await
}

async fn deprovision(req: HttpRequest, state: web::Data<BrokerState>) -> HttpResponse {
    guarded(&req, &state, Some(Operation::Deprovision), async {
        let request = delete_request(&req)?;
        removal(
            state
                .broker
                .deprovision(&instance_id(&req), request)
                .await?,
        )
    })
    .await
}

async fn instance_last_operation(req: HttpRequest, state: web::Data<BrokerState>) -> HttpResponse {
    guarded(&req, &state, Some(Operation::LastOperation), async {
        state.broker.fetch_instance(&instance_id(&req)).await?;
        succeeded()
    })
    .await
}

async fn bind(req: HttpRequest, state: web::Data<BrokerState>, body: Body) -> HttpResponse {
    guarded(&req, &state, Some(Operation::Bind), async {
        let request: BindRequest = json_body(&body)?;
        require(&[
            ("service_id", &request.service_id),
            ("plan_id", &request.plan_id),
        ])?;
        known_plan(
            state.broker.catalog(),
            &request.service_id,
            &request.plan_id,
        )?;
        let (instance, binding) = binding_ids(&req);
        outcome(state.broker.bind(&instance, &binding, request).await?)
    })
    .await
}

async fn fetch_binding(req: HttpRequest, state: web::Data<BrokerState>) -> HttpResponse {
    guarded(&req, &state, Some(Operation::GetBinding), async {
        let (instance, binding) = binding_ids(&req);
        reply(
            StatusCode::OK,
            state.broker.fetch_binding(&instance, &binding).await?,
        )
    })
    .await
}

async fn unbind(req: HttpRequest, state: web::Data<BrokerState>) -> HttpResponse {
    guarded(&req, &state, Some(Operation::Unbind), async {
        let request = delete_request(&req)?;
        let (instance, binding) = binding_ids(&req);
        removal(state.broker.unbind(&instance, &binding, request).await?)
    })
    .await
}

async fn binding_last_operation(req: HttpRequest, state: web::Data<BrokerState>) -> HttpResponse {
    guarded(&req, &state, Some(Operation::LastOperation), async {
        let (instance, binding) = binding_ids(&req);
        state.broker.fetch_binding(&instance, &binding).await?;
        succeeded()
    })
    .await
}

async fn unknown_route(req: HttpRequest, state: web::Data<BrokerState>) -> HttpResponse {
    guarded(&req, &state, None, async {
        Err(BrokerError::NotFound(format!(
            "{} {} is not an Open Service Broker API route",
            req.method(),
            req.path()
        )))
    })
    .await
}
