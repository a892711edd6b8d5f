//! `GET /routes`: the current route table as JSON, for operators who want to see what
//! promfetcher knows. It is guarded by the broker's basic-auth credentials (the same check the
//! broker uses) because the table names every org, space and app of the foundation. It only
//! reads the current snapshot; it never changes the table or starts a scrape.
//!
//! The answer is `{"routes": {"<route key>": [<endpoint>, ...], ...}}`, route keys sorted, each
//! endpoint `{"address", "tls", "server_name", "host", "cf": {organization_id, space_id, app_id,
//! organization_name, space_name, app_name, instance_index, process_type}}`; `server_name` is
//! the name the TLS certificate is verified against, `null` for plain-HTTP endpoints.

use std::collections::BTreeMap;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;

use crate::http::ApiState;
use crate::routes::{CfIdentity, Instance};

/// Mounts `GET /routes`.
pub fn configure(config: &mut web::ServiceConfig) {
    config.route("/routes", web::get().to(dump));
}

/// One endpoint of a route, as `/routes` shows it.
#[derive(Debug, Serialize)]
struct Endpoint<'a> {
    address: &'a str,
    tls: bool,
    server_name: Option<&'a str>,
    host: &'a str,
    cf: &'a CfIdentity,
}

impl<'a> From<&'a Instance> for Endpoint<'a> {
    fn from(instance: &'a Instance) -> Self {
        Endpoint {
            address: &instance.address,
            tls: instance.tls_server_name.is_some(),
            server_name: instance.tls_server_name.as_deref(),
            host: &instance.host,
            cf: &instance.identity,
        }
    }
}

#[derive(Debug, Serialize)]
struct Dump<'a> {
    routes: BTreeMap<&'a str, Vec<Endpoint<'a>>>,
}

/// Answers 401 with a basic-auth challenge when the caller does not present the broker's
/// credentials.
fn unauthorized(message: &str) -> HttpResponse {
    HttpResponse::Unauthorized()
        .insert_header((
            header::WWW_AUTHENTICATE,
            "Basic realm=\"promfetcher\", charset=\"UTF-8\"",
        ))
        .content_type("text/plain; charset=utf-8")
        .body(format!("401 Unauthorized: {message}\n"))
}

async fn dump(req: HttpRequest, state: web::Data<ApiState>) -> HttpResponse {
    if let Err(error) = state.broker_credentials.check(req.headers()) {
        return unauthorized(&error.to_string());
    }
    let Some(table) = state.table.snapshot() else {
        return HttpResponse::ServiceUnavailable()
            .content_type("text/plain; charset=utf-8")
            .body("503 Service Unavailable: the route table is not loaded yet; retry in a few seconds\n");
    };
    let dump = Dump {
        routes: table
            .routes()
            .into_iter()
            .map(|(key, instances)| {
                (
                    key,
                    instances.iter().map(|i| Endpoint::from(&**i)).collect(),
                )
            })
            .collect(),
    };
    HttpResponse::Ok().json(dump)
}
