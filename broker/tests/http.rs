//! Every rule of the OSB v2.17 checklist that the crate owns, checked over HTTP with
//! `actix_web::test` against a small in-memory service: headers, authentication, version,
//! validation, status codes and error bodies.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use actix_web::http::{Method, StatusCode};
use actix_web::{test, App};
use async_trait::async_trait;
use base64::Engine;
use osb_broker::types::*;
use osb_broker::{scope, BrokerError, Credentials, Outcome, Removal, ServiceBroker};
use serde_json::{json, Value};

const SERVICE: &str = "svc-1";
const PLAN: &str = "plan-1";
const OTHER_PLAN: &str = "plan-2";

/// Remembers instances and bindings by id with the attributes that decide 200 versus 409.
struct Memory {
    catalog: Catalog,
    instances: Mutex<HashMap<String, String>>,
    bindings: Mutex<HashMap<String, String>>,
    down: AtomicBool,
}

impl Memory {
    fn new() -> Memory {
        let plan = |id: &str, name: &str| Plan {
            id: id.into(),
            name: name.into(),
            description: "a plan".into(),
            ..Plan::default()
        };
        let mut versioned = plan("plan-3", "versioned");
        versioned.maintenance_info = Some(MaintenanceInfo {
            version: "1.2.3".into(),
            description: None,
        });
        Memory {
            catalog: Catalog {
                services: vec![
                    ServiceOffering {
                        id: SERVICE.into(),
                        name: "svc".into(),
                        description: "a service".into(),
                        bindable: true,
                        plans: vec![plan(PLAN, "small"), versioned],
                        ..ServiceOffering::default()
                    },
                    ServiceOffering {
                        id: "svc-2".into(),
                        name: "other".into(),
                        description: "another service".into(),
                        plans: vec![plan(OTHER_PLAN, "big")],
                        ..ServiceOffering::default()
                    },
                ],
            },
            instances: Mutex::default(),
            bindings: Mutex::default(),
            down: AtomicBool::new(false),
        }
    }

    fn check_up(&self) -> Result<(), BrokerError> {
        if self.down.load(Ordering::SeqCst) {
            Err(BrokerError::Unavailable("the store is down".into()))
        } else {
            Ok(())
        }
    }
}

fn put_once(
    map: &Mutex<HashMap<String, String>>,
    id: &str,
    attributes: String,
) -> Result<Outcome<()>, BrokerError> {
    let mut map = map.lock().unwrap();
    match map.get(id) {
        None => {
            map.insert(id.to_string(), attributes);
            Ok(Outcome::Created(()))
        }
        Some(existing) if *existing == attributes => Ok(Outcome::Existing(())),
        Some(_) => Err(BrokerError::Conflict(format!(
            "{id} exists with other attributes"
        ))),
    }
}

fn remove(map: &Mutex<HashMap<String, String>>, id: &str) -> Removal {
    match map.lock().unwrap().remove(id) {
        Some(_) => Removal::Deleted,
        None => Removal::Gone,
    }
}

#[async_trait]
impl ServiceBroker for Memory {
    fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    async fn provision(
        &self,
        instance_id: &str,
        request: ProvisionRequest,
    ) -> Result<Outcome<ProvisionResponse>, BrokerError> {
        self.check_up()?;
        let attributes = format!("{}|{:?}", request.plan_id, request.parameters);
        Ok(match put_once(&self.instances, instance_id, attributes)? {
            Outcome::Created(()) => Outcome::Created(ProvisionResponse::default()),
            Outcome::Existing(()) => Outcome::Existing(ProvisionResponse::default()),
        })
    }

    async fn fetch_instance(&self, instance_id: &str) -> Result<InstanceDetails, BrokerError> {
        self.check_up()?;
        match self.instances.lock().unwrap().get(instance_id) {
            Some(_) => Ok(InstanceDetails {
                service_id: SERVICE.into(),
                plan_id: PLAN.into(),
                ..InstanceDetails::default()
            }),
            None => Err(BrokerError::NotFound("no such instance".into())),
        }
    }

    async fn update(
        &self,
        instance_id: &str,
        request: UpdateRequest,
    ) -> Result<UpdateResponse, BrokerError> {
        self.check_up()?;
        let mut instances = self.instances.lock().unwrap();
        let Some(attributes) = instances.get_mut(instance_id) else {
            return Err(BrokerError::NotFound("no such instance".into()));
        };
        *attributes = format!(
            "{}|{:?}",
            request.plan_id.unwrap_or_default(),
            request.parameters
        );
        Ok(UpdateResponse::default())
    }

    async fn deprovision(
        &self,
        instance_id: &str,
        _request: DeleteRequest,
    ) -> Result<Removal, BrokerError> {
        self.check_up()?;
        Ok(remove(&self.instances, instance_id))
    }

    async fn bind(
        &self,
        instance_id: &str,
        binding_id: &str,
        request: BindRequest,
    ) -> Result<Outcome<Binding>, BrokerError> {
        self.check_up()?;
        if !self.instances.lock().unwrap().contains_key(instance_id) {
            return Err(BrokerError::NotFound("no such instance".into()));
        }
        let attributes = format!(
            "{instance_id}|{:?}|{:?}",
            request.app_guid(),
            request.parameters
        );
        let binding = Binding {
            credentials: Some(serde_json::Map::new()),
            ..Binding::default()
        };
        Ok(match put_once(&self.bindings, binding_id, attributes)? {
            Outcome::Created(()) => Outcome::Created(binding),
            Outcome::Existing(()) => Outcome::Existing(binding),
        })
    }

    async fn fetch_binding(
        &self,
        _instance_id: &str,
        binding_id: &str,
    ) -> Result<Binding, BrokerError> {
        self.check_up()?;
        match self.bindings.lock().unwrap().get(binding_id) {
            Some(_) => Ok(Binding {
                credentials: Some(serde_json::Map::new()),
                ..Binding::default()
            }),
            None => Err(BrokerError::NotFound("no such binding".into())),
        }
    }

    async fn unbind(
        &self,
        _instance_id: &str,
        binding_id: &str,
        _request: DeleteRequest,
    ) -> Result<Removal, BrokerError> {
        self.check_up()?;
        Ok(remove(&self.bindings, binding_id))
    }
}

/// One answer, read whole.
struct Answer {
    status: StatusCode,
    content_type: String,
    identity: Option<String>,
    body: Value,
}

/// Sends requests as a platform would, with the right credentials and version unless told otherwise.
struct Platform {
    memory: Arc<Memory>,
    /// What the broker was configured with.
    credentials: Credentials,
}

impl Platform {
    fn new() -> Platform {
        Platform::configured_with(Credentials::new("admin", "s3cret"))
    }

    fn configured_with(credentials: Credentials) -> Platform {
        Platform {
            memory: Arc::new(Memory::new()),
            credentials,
        }
    }

    async fn send_with(
        &self,
        method: Method,
        path: &str,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let app = test::init_service(App::new().service(scope(
            "/broker",
            self.memory.clone(),
            self.credentials.clone(),
        )))
        .await;
        let mut request = test::TestRequest::default()
            .method(method)
            .uri(&format!("/broker{path}"));
        for (name, value) in headers {
            request = request.insert_header((*name, *value));
        }
        if let Some(body) = body {
            request = request
                .insert_header(("content-type", "application/json"))
                .set_payload(body.to_string());
        }
        let response = test::call_service(&app, request.to_request()).await;
        let status = response.status();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_string())
        };
        let content_type = header("content-type").unwrap_or_default();
        let identity = header("x-broker-api-request-identity");
        let bytes = test::read_body(response).await;
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{path}: body is not JSON ({e}): {bytes:?}"));
        Answer {
            status,
            content_type,
            identity,
            body,
        }
    }

    async fn send(&self, method: Method, path: &str, body: Option<&str>) -> Answer {
        self.send_with(method, path, body, &good_headers()).await
    }
}

fn basic(user: &str, pass: &str) -> String {
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    format!("Basic {token}")
}

fn good_headers() -> Vec<(&'static str, &'static str)> {
    // leaked once per call: tests only
    let auth: &'static str = Box::leak(basic("admin", "s3cret").into_boxed_str());
    vec![("authorization", auth), ("x-broker-api-version", "2.17")]
}

fn provision_body(plan: &str, parameters: Value) -> String {
    json!({
        "service_id": SERVICE,
        "plan_id": plan,
        "organization_guid": "org-1",
        "space_guid": "space-1",
        "context": {"platform": "cloudfoundry", "organization_guid": "org-1"},
        "parameters": parameters,
        "maintenance_info": {},
        "some_vendor_extension": {"ignored": true},
    })
    .to_string()
}

fn bind_body(parameters: Value, bind_resource: Option<Value>) -> String {
    let mut body = json!({
        "service_id": SERVICE,
        "plan_id": PLAN,
        "parameters": parameters,
        "unknown": 1,
    });
    if let Some(resource) = bind_resource {
        body["bind_resource"] = resource;
    }
    body.to_string()
}

const DELETE_QUERY: &str = "?service_id=svc-1&plan_id=plan-1&accepts_incomplete=true";

fn assert_error(answer: &Answer, status: u16, code: &str) {
    assert_eq!(answer.status.as_u16(), status, "{}", answer.body);
    assert_eq!(answer.body["error"], code, "{}", answer.body);
    let description = answer.body["description"].as_str().unwrap_or_default();
    assert!(!description.is_empty(), "{}", answer.body);
    assert_eq!(answer.content_type, "application/json");
}

/// (method, path, body) of every route, for the rules that hold on all of them.
fn every_route() -> Vec<(Method, String, Option<String>)> {
    let binding = "/v2/service_instances/i-1/service_bindings/b-1";
    vec![
        (Method::GET, "/v2/catalog".into(), None),
        (
            Method::PUT,
            "/v2/service_instances/i-1".into(),
            Some(provision_body(PLAN, json!({}))),
        ),
        (Method::GET, "/v2/service_instances/i-1".into(), None),
        (
            Method::PATCH,
            "/v2/service_instances/i-1".into(),
            Some(json!({"service_id": SERVICE}).to_string()),
        ),
        (
            Method::DELETE,
            format!("/v2/service_instances/i-1{DELETE_QUERY}"),
            None,
        ),
        (
            Method::GET,
            "/v2/service_instances/i-1/last_operation".into(),
            None,
        ),
        (
            Method::PUT,
            binding.into(),
            Some(bind_body(json!({}), None)),
        ),
        (Method::GET, binding.into(), None),
        (Method::DELETE, format!("{binding}{DELETE_QUERY}"), None),
        (Method::GET, format!("{binding}/last_operation"), None),
    ]
}

#[actix_web::test]
async fn catalog_is_json_with_the_request_identity_echoed() {
    let platform = Platform::new();
    let mut headers = good_headers();
    headers.push((
        "x-broker-api-request-identity",
        "e26cea65-3c43-4b4c-9a4f-3ab1d1ef4ae3",
    ));
    let answer = platform
        .send_with(Method::GET, "/v2/catalog", None, &headers)
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.content_type, "application/json");
    assert_eq!(
        answer.identity.as_deref(),
        Some("e26cea65-3c43-4b4c-9a4f-3ab1d1ef4ae3")
    );
    assert_eq!(answer.body["services"][0]["id"], SERVICE);
    assert_eq!(answer.body["services"][0]["plans"][0]["id"], PLAN);
    // a minimal plan object: no keys a strict conformance schema would refuse
    let plan_keys: Vec<&String> = answer.body["services"][0]["plans"][0]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(plan_keys, ["description", "id", "name"]);
}

#[actix_web::test]
async fn every_route_refuses_missing_or_wrong_credentials_with_401() {
    let platform = Platform::new();
    let wrong = basic("spock", "spockpass");
    let right_user_wrong_pass = basic("admin", "s3cre");
    let auths = [
        None,
        Some(wrong.as_str()),
        Some(right_user_wrong_pass.as_str()),
        Some("Bearer abc"),
    ];
    for answer in answers_on_every_route(&platform, &auths).await {
        assert_eq!(answer.identity.as_deref(), Some("req-7"));
    }
}

/// A broker configured without a user and a password (switched off) refuses every request,
/// the empty credentials (`Authorization: Basic Og==`) included.
#[actix_web::test]
async fn a_broker_without_credentials_refuses_everyone_with_401() {
    let platform = Platform::configured_with(Credentials::new("", ""));
    let empty = basic("", "");
    let auths = [None, Some(empty.as_str()), Some("Basic Og==")];
    for answer in answers_on_every_route(&platform, &auths).await {
        let description = answer.body["description"].as_str().unwrap_or_default();
        assert!(description.contains("switched off"), "{description}");
    }
}

/// Every route asked with each of `auths` (`None`: no `Authorization`): each answer is a `401
/// Unauthorized` error; they are returned for more checks.
async fn answers_on_every_route(platform: &Platform, auths: &[Option<&str>]) -> Vec<Answer> {
    let mut answers = Vec::new();
    for (method, path, body) in every_route() {
        for auth in auths {
            let mut headers = vec![
                ("x-broker-api-version", "2.17"),
                ("x-broker-api-request-identity", "req-7"),
            ];
            if let Some(auth) = auth {
                headers.push(("authorization", auth));
            }
            let answer = platform
                .send_with(method.clone(), &path, body.as_deref(), &headers)
                .await;
            assert_error(&answer, 401, "Unauthorized");
            answers.push(answer);
        }
    }
    answers
}

#[actix_web::test]
async fn a_body_over_the_limit_is_refused_with_413_after_the_credentials() {
    let platform = Platform::new();
    // valid JSON, padded past the limit inside a parameter
    let padding = "x".repeat(osb_broker::endpoints::MAX_BODY_BYTES);
    let big = provision_body(PLAN, json!({ "padding": padding }));
    let path = "/v2/service_instances/i-big";
    let answer = platform.send(Method::PUT, path, Some(&big)).await;
    assert_error(&answer, 413, "PayloadTooLarge");
    assert!(
        answer.body["description"]
            .as_str()
            .unwrap()
            .contains(&osb_broker::endpoints::MAX_BODY_BYTES.to_string()),
        "{}",
        answer.body
    );
    let bind_path = "/v2/service_instances/i-big/service_bindings/b-big";
    let answer = platform.send(Method::PUT, bind_path, Some(&big)).await;
    assert_error(&answer, 413, "PayloadTooLarge");
    let answer = platform
        .send_with(
            Method::PUT,
            path,
            Some(&big),
            &[("x-broker-api-version", "2.17")],
        )
        .await;
    assert_error(&answer, 401, "Unauthorized");
    // nothing was created
    let fetched = platform.send(Method::GET, path, None).await;
    assert_error(&fetched, 404, "NotFound");
}

#[actix_web::test]
async fn authentication_is_checked_before_the_version() {
    let platform = Platform::new();
    let answer = platform
        .send_with(Method::GET, "/v2/catalog", None, &[])
        .await;
    assert_error(&answer, 401, "Unauthorized");
}

#[actix_web::test]
async fn a_missing_empty_or_foreign_version_is_refused_with_412_on_every_route() {
    let platform = Platform::new();
    let auth = basic("admin", "s3cret");
    for (method, path, body) in every_route() {
        for version in [
            None,
            Some(""),
            Some("1.0"),
            Some("3.0"),
            Some("two"),
            Some("2"),
            Some("2.x"),
        ] {
            let mut headers = vec![("authorization", auth.as_str())];
            if let Some(version) = version {
                headers.push(("x-broker-api-version", version));
            }
            let answer = platform
                .send_with(method.clone(), &path, body.as_deref(), &headers)
                .await;
            assert_error(&answer, 412, "PreconditionFailed");
            assert!(
                answer.body["description"]
                    .as_str()
                    .unwrap()
                    .contains("2.17"),
                "the description names the version to use"
            );
        }
    }
    for version in ["2.13", "2.14", "2.15", "2.17", " 2.16 "] {
        let answer = platform
            .send_with(
                Method::GET,
                "/v2/catalog",
                None,
                &[
                    ("authorization", auth.as_str()),
                    ("x-broker-api-version", version),
                ],
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{version}");
    }
}

#[actix_web::test]
async fn provision_is_201_then_200_when_identical_then_409_when_different() {
    let platform = Platform::new();
    let path = "/v2/service_instances/i-1?accepts_incomplete=true";
    let first = platform
        .send(
            Method::PUT,
            path,
            Some(&provision_body(PLAN, json!({"a": 1}))),
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    assert_eq!(first.body, json!({}));
    assert_eq!(first.content_type, "application/json");
    let again = platform
        .send(
            Method::PUT,
            path,
            Some(&provision_body(PLAN, json!({"a": 1}))),
        )
        .await;
    assert_eq!(again.status, StatusCode::OK);
    let different = platform
        .send(
            Method::PUT,
            path,
            Some(&provision_body(PLAN, json!({"a": 2}))),
        )
        .await;
    assert_error(&different, 409, "Conflict");
}

#[actix_web::test]
async fn provision_with_missing_or_invalid_fields_is_400_with_a_helpful_description() {
    let platform = Platform::new();
    let path = "/v2/service_instances/i-1";
    let full: Value = serde_json::from_str(&provision_body(PLAN, json!({}))).unwrap();
    for field in ["service_id", "plan_id", "organization_guid", "space_guid"] {
        for broken in [None, Some(json!("")), Some(json!("   "))] {
            let mut body = full.clone();
            match broken {
                None => {
                    body.as_object_mut().unwrap().remove(field);
                }
                Some(value) => body[field] = value,
            }
            let answer = platform
                .send(Method::PUT, path, Some(&body.to_string()))
                .await;
            assert_error(&answer, 400, "BadRequest");
            assert!(
                answer.body["description"].as_str().unwrap().contains(field),
                "{field}: {}",
                answer.body
            );
        }
    }
    let cases = [
        ("not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ("", "not valid JSON"),
        (r#"{"service_id": 5}"#, "wrong type"),
        (
            r#"{"service_id":"svc-1","plan_id":"plan-1","organization_guid":"o","space_guid":"s","parameters":"x"}"#,
            "wrong type",
        ),
    ];
    for (body, says) in cases {
        let answer = platform.send(Method::PUT, path, Some(body)).await;
        assert_error(&answer, 400, "BadRequest");
        assert!(
            answer.body["description"].as_str().unwrap().contains(says),
            "{body}: {}",
            answer.body
        );
    }
    let mut unknown_service = full.clone();
    unknown_service["service_id"] = json!("nope");
    let answer = platform
        .send(Method::PUT, path, Some(&unknown_service.to_string()))
        .await;
    assert_error(&answer, 400, "BadRequest");
    assert!(answer.body["description"]
        .as_str()
        .unwrap()
        .contains("catalog"));
    // a plan of another offering
    let answer = platform
        .send(
            Method::PUT,
            path,
            Some(&provision_body(OTHER_PLAN, json!({}))),
        )
        .await;
    assert_error(&answer, 400, "BadRequest");
    // 4xx changes nothing: the instance still does not exist
    let fetched = platform.send(Method::GET, path, None).await;
    assert_error(&fetched, 404, "NotFound");
}

#[actix_web::test]
async fn maintenance_info_must_match_the_plan_and_an_empty_one_counts_as_not_sent() {
    let platform = Platform::new();
    let with_version = |plan: &str, version: &str| {
        let mut body: Value = serde_json::from_str(&provision_body(plan, json!({}))).unwrap();
        body["maintenance_info"] = json!({"version": version});
        body.to_string()
    };
    let answer = platform
        .send(
            Method::PUT,
            "/v2/service_instances/i-1",
            Some(&with_version(PLAN, "1.0.0")),
        )
        .await;
    assert_error(&answer, 422, "MaintenanceInfoConflict");
    let answer = platform
        .send(
            Method::PUT,
            "/v2/service_instances/i-2",
            Some(&with_version("plan-3", "9.9.9")),
        )
        .await;
    assert_error(&answer, 422, "MaintenanceInfoConflict");
    let answer = platform
        .send(
            Method::PUT,
            "/v2/service_instances/i-3",
            Some(&with_version("plan-3", "1.2.3")),
        )
        .await;
    assert_eq!(answer.status, StatusCode::CREATED);
    let answer = platform
        .send(
            Method::PUT,
            "/v2/service_instances/i-4",
            Some(&with_version(PLAN, "")),
        )
        .await;
    assert_eq!(answer.status, StatusCode::CREATED);
    let update =
        json!({"service_id": SERVICE, "plan_id": PLAN, "maintenance_info": {"version": "2.0.0"}});
    let answer = platform
        .send(
            Method::PATCH,
            "/v2/service_instances/i-4",
            Some(&update.to_string()),
        )
        .await;
    assert_error(&answer, 422, "MaintenanceInfoConflict");
}

#[actix_web::test]
async fn fetch_update_and_deprovision_follow_the_spec() {
    let platform = Platform::new();
    let path = "/v2/service_instances/i%2D1";
    platform
        .send(Method::PUT, path, Some(&provision_body(PLAN, json!({}))))
        .await;
    let fetched = platform
        .send(Method::GET, "/v2/service_instances/i-1", None)
        .await;
    assert_eq!(
        fetched.status,
        StatusCode::OK,
        "percent-encoded ids are decoded"
    );
    assert_eq!(fetched.body["service_id"], SERVICE);
    let last = platform
        .send(
            Method::GET,
            "/v2/service_instances/i-1/last_operation",
            None,
        )
        .await;
    assert_eq!(last.body, json!({"state": "succeeded"}));

    let update = json!({"service_id": SERVICE, "parameters": {"a": 3}, "previous_values": {"maintenance_info": {}}, "maintenance_info": {}});
    let updated = platform
        .send(
            Method::PATCH,
            "/v2/service_instances/i-1?accepts_incomplete=true",
            Some(&update.to_string()),
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
    assert_eq!(updated.body, json!({}));
    let unknown = platform
        .send(
            Method::PATCH,
            "/v2/service_instances/nope",
            Some(&update.to_string()),
        )
        .await;
    assert_error(&unknown, 404, "NotFound");
    let no_service = platform
        .send(
            Method::PATCH,
            "/v2/service_instances/i-1",
            Some(r#"{"plan_id":"plan-1"}"#),
        )
        .await;
    assert_error(&no_service, 400, "BadRequest");

    for query in [
        "",
        "?plan_id=plan-1",
        "?service_id=&plan_id=plan-1",
        "?service_id=svc-1",
        "?service_id=svc-1&plan_id=",
    ] {
        let answer = platform
            .send(
                Method::DELETE,
                &format!("/v2/service_instances/i-1{query}"),
                None,
            )
            .await;
        assert_error(&answer, 400, "BadRequest");
    }
    let deleted = platform
        .send(
            Method::DELETE,
            &format!("/v2/service_instances/i-1{DELETE_QUERY}"),
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::OK);
    assert_eq!(deleted.body, json!({}));
    let gone = platform
        .send(
            Method::DELETE,
            &format!("/v2/service_instances/i-1{DELETE_QUERY}"),
            None,
        )
        .await;
    assert_eq!(gone.status, StatusCode::GONE);
    assert_eq!(gone.content_type, "application/json");
    let fetched = platform
        .send(Method::GET, "/v2/service_instances/i-1", None)
        .await;
    assert_error(&fetched, 404, "NotFound");
}

#[actix_web::test]
async fn bindings_without_an_app_are_accepted_and_follow_the_spec() {
    let platform = Platform::new();
    platform
        .send(
            Method::PUT,
            "/v2/service_instances/i-1",
            Some(&provision_body(PLAN, json!({}))),
        )
        .await;
    let binding = "/v2/service_instances/i-1/service_bindings/b-1";
    for (resource, status) in [(None, 201), (None, 200)] {
        let answer = platform
            .send(
                Method::PUT,
                &format!("{binding}?accepts_incomplete=true"),
                Some(&bind_body(json!({}), resource)),
            )
            .await;
        assert_eq!(answer.status.as_u16(), status, "{}", answer.body);
        assert!(answer.body["credentials"].is_object());
    }
    let empty_resource = platform
        .send(
            Method::PUT,
            "/v2/service_instances/i-1/service_bindings/b-2",
            Some(&bind_body(json!({}), Some(json!({})))),
        )
        .await;
    assert_eq!(empty_resource.status, StatusCode::CREATED);
    let conflict = platform
        .send(
            Method::PUT,
            binding,
            Some(&bind_body(json!({"x": 1}), None)),
        )
        .await;
    assert_error(&conflict, 409, "Conflict");
    let other_app = platform
        .send(
            Method::PUT,
            binding,
            Some(&bind_body(json!({}), Some(json!({"app_guid": "app-9"})))),
        )
        .await;
    assert_error(&other_app, 409, "Conflict");
    let missing_plan = platform
        .send(
            Method::PUT,
            binding,
            Some(&json!({"service_id": SERVICE}).to_string()),
        )
        .await;
    assert_error(&missing_plan, 400, "BadRequest");
    assert!(missing_plan.body["description"]
        .as_str()
        .unwrap()
        .contains("plan_id"));
    let unknown_instance = platform
        .send(
            Method::PUT,
            "/v2/service_instances/nope/service_bindings/b-9",
            Some(&bind_body(json!({}), None)),
        )
        .await;
    assert_error(&unknown_instance, 404, "NotFound");

    let fetched = platform.send(Method::GET, binding, None).await;
    assert_eq!(fetched.status, StatusCode::OK);
    let last = platform
        .send(Method::GET, &format!("{binding}/last_operation"), None)
        .await;
    assert_eq!(last.body, json!({"state": "succeeded"}));
    let no_plan = platform
        .send(Method::DELETE, &format!("{binding}?service_id=svc-1"), None)
        .await;
    assert_error(&no_plan, 400, "BadRequest");
    let unbound = platform
        .send(Method::DELETE, &format!("{binding}{DELETE_QUERY}"), None)
        .await;
    assert_eq!(unbound.status, StatusCode::OK);
    assert_eq!(unbound.body, json!({}));
    let gone = platform
        .send(Method::DELETE, &format!("{binding}{DELETE_QUERY}"), None)
        .await;
    assert_eq!(gone.status, StatusCode::GONE);
    let fetched = platform.send(Method::GET, binding, None).await;
    assert_error(&fetched, 404, "NotFound");
}

#[actix_web::test]
async fn a_service_that_cannot_reach_its_store_answers_503_with_an_osb_body() {
    let platform = Platform::new();
    platform.memory.down.store(true, Ordering::SeqCst);
    let answer = platform
        .send(
            Method::PUT,
            "/v2/service_instances/i-1",
            Some(&provision_body(PLAN, json!({}))),
        )
        .await;
    assert_error(&answer, 503, "ServiceUnavailable");
    // the catalog needs no store
    let catalog = platform.send(Method::GET, "/v2/catalog", None).await;
    assert_eq!(catalog.status, StatusCode::OK);
}

#[actix_web::test]
async fn unknown_routes_and_methods_answer_json_404() {
    let platform = Platform::new();
    for (method, path) in [
        (Method::GET, "/v2/nothing"),
        (Method::POST, "/v2/catalog"),
        (Method::POST, "/v2/service_instances/i-1"),
    ] {
        let answer = platform.send(method, path, None).await;
        assert_error(&answer, 404, "NotFound");
    }
}
