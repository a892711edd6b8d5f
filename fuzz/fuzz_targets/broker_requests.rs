//! The service broker's request parsing over arbitrary input: every OSB route of the
//! `osb-broker` crate, served in-process by actix-web, receives a request built from the
//! fuzzer's bytes (method and route, instance and binding ids, query, the
//! `Authorization` and `X-Broker-API-Version` headers, and the body), and a service behind it
//! reads the parameters with promfetcher's own `service_broker::parameters` (the `endpoint` path,
//! validated like `metric_path`, and the stored-size bound) as the real broker does. Checks:
//! - nothing panics;
//! - no answer is a 5xx (the service here never fails, so a 5xx is a parsing bug);
//! - every answer is `application/json` with a JSON object body, and every error body has
//!   `error` and `description` strings.
//!
//! The parameters are read by `promfetcher::service_broker::parameters`, the same code the
//! running broker calls.

#![no_main]

use std::sync::Arc;

use actix_service::boxed::{rc_service, RcService};
use actix_web::dev::ServiceResponse;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::Method;
use actix_web::{test, App};
use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use osb_broker::types::{
    BindRequest, Binding, Catalog, DeleteRequest, InstanceDetails, Plan, ProvisionRequest,
    ProvisionResponse, ServiceOffering, UpdateRequest, UpdateResponse,
};
use osb_broker::{BrokerError, Credentials, Outcome, Removal, ServiceBroker};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use promfetcher::service_broker::parameters::{canonical, EndpointParameter};

const SERVICE_ID: &str = "75bcebab-cc25-4ef6-89dc-a91b953919f1";
const PLAN_ID: &str = "e2900be3-709b-419e-b63b-de3aabcd9e15";
const USER: &str = "broker";
const PASS: &str = "secret";

/// Accepts every request whose parameters promfetcher accepts.
struct ParametersOnly {
    catalog: Catalog,
}

fn read_parameters(parameters: Option<&osb_broker::types::JsonObject>) -> Result<(), BrokerError> {
    EndpointParameter::from_parameters(parameters)?;
    canonical(parameters)?;
    Ok(())
}

#[async_trait]
impl ServiceBroker for ParametersOnly {
    fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    async fn provision(
        &self,
        _: &str,
        request: ProvisionRequest,
    ) -> Result<Outcome<ProvisionResponse>, BrokerError> {
        read_parameters(request.parameters.as_ref())?;
        Ok(Outcome::Created(ProvisionResponse::default()))
    }

    async fn fetch_instance(&self, _: &str) -> Result<InstanceDetails, BrokerError> {
        Ok(InstanceDetails::default())
    }

    async fn update(&self, _: &str, request: UpdateRequest) -> Result<UpdateResponse, BrokerError> {
        read_parameters(request.parameters.as_ref())?;
        Ok(UpdateResponse::default())
    }

    async fn deprovision(&self, _: &str, _: DeleteRequest) -> Result<Removal, BrokerError> {
        Ok(Removal::Deleted)
    }

    async fn bind(
        &self,
        _: &str,
        _: &str,
        request: BindRequest,
    ) -> Result<Outcome<Binding>, BrokerError> {
        read_parameters(request.parameters.as_ref())?;
        Ok(Outcome::Created(Binding::default()))
    }

    async fn fetch_binding(&self, _: &str, _: &str) -> Result<Binding, BrokerError> {
        Ok(Binding::default())
    }

    async fn unbind(&self, _: &str, _: &str, _: DeleteRequest) -> Result<Removal, BrokerError> {
        Ok(Removal::Deleted)
    }
}

fn catalog() -> Catalog {
    Catalog {
        services: vec![ServiceOffering {
            id: SERVICE_ID.into(),
            name: "promfetcher".into(),
            description: "fuzz".into(),
            bindable: true,
            plans: vec![Plan {
                id: PLAN_ID.into(),
                name: "fetch-app".into(),
                description: "fuzz".into(),
                ..Plan::default()
            }],
            ..ServiceOffering::default()
        }],
    }
}

/// Bytes kept raw in a query: its structure (`&`, `=`); everything else is percent-encoded.
const QUERY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'&')
    .remove(b'=')
    .remove(b'_')
    .remove(b'-');

const ROUTES: [(&str, &str); 13] = [
    ("GET", "/broker/v2/catalog"),
    ("PUT", "/broker/v2/service_instances/{i}"),
    ("GET", "/broker/v2/service_instances/{i}"),
    ("PATCH", "/broker/v2/service_instances/{i}"),
    ("DELETE", "/broker/v2/service_instances/{i}"),
    ("GET", "/broker/v2/service_instances/{i}/last_operation"),
    (
        "PUT",
        "/broker/v2/service_instances/{i}/service_bindings/{b}",
    ),
    (
        "GET",
        "/broker/v2/service_instances/{i}/service_bindings/{b}",
    ),
    (
        "DELETE",
        "/broker/v2/service_instances/{i}/service_bindings/{b}",
    ),
    (
        "GET",
        "/broker/v2/service_instances/{i}/service_bindings/{b}/last_operation",
    ),
    ("POST", "/broker/v2/{i}"),
    ("POST", "/broker/v2/catalog"),
    ("PUT", "/broker/v2/service_instances/{i}/last_operation"),
];

/// The request the input describes: byte 0 picks the route (the last three are not OSB
/// routes), byte 1 which headers are the
/// right ones (else taken from the input); the rest splits at `\n` into instance id, binding
/// id, query, `Authorization`, `X-Broker-API-Version`, then the body.
fn request(data: &[u8]) -> Option<test::TestRequest> {
    let (&route, rest) = data.split_first()?;
    let (&flags, rest) = rest.split_first()?;
    let mut parts = rest.splitn(6, |&b| b == b'\n');
    let mut next = || parts.next().unwrap_or_default();
    let (instance, binding, query) = (next(), next(), next());
    let (auth, version, body) = (next(), next(), next());
    let segment = |raw: &[u8]| {
        utf8_percent_encode(&String::from_utf8_lossy(raw), NON_ALPHANUMERIC).to_string()
    };
    let (method, template) = ROUTES[usize::from(route) % ROUTES.len()];
    let mut uri = template
        .replace("{i}", &segment(instance))
        .replace("{b}", &segment(binding));
    if !query.is_empty() {
        uri.push('?');
        uri.push_str(&utf8_percent_encode(&String::from_utf8_lossy(query), QUERY).to_string());
    }
    let mut request = test::TestRequest::default()
        .method(Method::from_bytes(method.as_bytes()).ok()?)
        .uri(&uri)
        .set_payload(body.to_vec());
    let header = |name: &'static str, value: &[u8]| {
        HeaderValue::from_bytes(value)
            .ok()
            .map(|value| (HeaderName::from_static(name), value))
    };
    let basic = format!("Basic {}", STANDARD.encode(format!("{USER}:{PASS}")));
    let auth = if flags & 1 == 0 {
        basic.as_bytes()
    } else {
        auth
    };
    let version = if flags & 2 == 0 {
        b"2.17".as_slice()
    } else {
        version
    };
    for (name, value) in [("authorization", auth), ("x-broker-api-version", version)] {
        if let Some(pair) = header(name, value) {
            request = request.insert_header(pair);
        }
    }
    if flags & 4 == 0 {
        request = request.insert_header(("content-type", "application/json"));
    }
    Some(request)
}

/// The broker routes as one service, built once: actix-router leaks each route pattern's
/// names on purpose, so building them per input would grow memory without end (run with
/// `ASAN_OPTIONS=detect_leaks=0`).
type BrokerApp = RcService<actix_http::Request, ServiceResponse, actix_web::Error>;

thread_local! {
    /// The actix system every input runs on (actix's runtime is single-threaded), and the
    /// routes. Both are leaked: dropping them at exit, in whatever order thread-locals are
    /// destroyed, would touch one after the other is gone.
    static SYSTEM: &'static actix_rt::SystemRunner = Box::leak(Box::new(actix_rt::System::new()));
    static APP: &'static BrokerApp = Box::leak(Box::new(SYSTEM.with(|system| {
        system.block_on(async {
            let broker: Arc<dyn ServiceBroker> = Arc::new(ParametersOnly { catalog: catalog() });
            rc_service(
                test::init_service(App::new().service(osb_broker::scope(
                    "/broker",
                    broker,
                    Credentials::new(USER, PASS),
                )))
                .await,
            )
        })
    })));
}

fuzz_target!(|data: &[u8]| {
    let Some(request) = request(data) else {
        return;
    };
    let app = APP.with(|app| *app);
    SYSTEM.with(|system| {
        system.block_on(async {
            let response = test::call_service(app, request.to_request()).await;
            let status = response.status();
            assert!(!status.is_server_error(), "{status} for {data:?}");
            let content_type = response.headers().get("content-type").cloned();
            assert_eq!(
                content_type.as_ref().and_then(|v| v.to_str().ok()),
                Some("application/json"),
                "{status}"
            );
            let body = test::read_body(response).await;
            let json: serde_json::Value = serde_json::from_slice(&body)
                .unwrap_or_else(|e| panic!("{status}: the body is not JSON ({e}): {body:?}"));
            assert!(json.is_object(), "{status}: {json}");
            if status.is_client_error() {
                assert!(
                    json["error"].is_string() && json["description"].is_string(),
                    "{status}: {json}"
                );
            }
        })
    });
});
