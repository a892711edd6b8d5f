//! The health port: `503` until the first route table is loaded, then `200 ok`, and `503`
//! for good once the process is draining (after SIGUSR1), so the load balancer stops sending
//! traffic before the listeners close. It decides readiness only; it serves no metrics.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use actix_web::{web, HttpResponse};

use crate::routes::RouteTableHandle;

/// What the health answer depends on.
#[derive(Debug)]
pub struct Health {
    table: Arc<RouteTableHandle>,
    draining: AtomicBool,
}

/// The readiness verdict and its reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    RoutesNotLoaded,
    Draining,
}

impl Health {
    pub fn new(table: Arc<RouteTableHandle>) -> Self {
        Health {
            table,
            draining: AtomicBool::new(false),
        }
    }

    /// From now on, health answers 503 whatever else happens.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    pub fn readiness(&self) -> Readiness {
        if self.draining.load(Ordering::SeqCst) {
            Readiness::Draining
        } else if !self.table.is_loaded() {
            Readiness::RoutesNotLoaded
        } else {
            Readiness::Ready
        }
    }
}

/// Answers every path of the health port.
pub fn configure(config: &mut web::ServiceConfig) {
    config.default_service(web::to(health_check));
}

async fn health_check(health: web::Data<Health>) -> HttpResponse {
    let (mut response, text) = match health.readiness() {
        Readiness::Ready => (HttpResponse::Ok(), "ok"),
        Readiness::RoutesNotLoaded => (
            HttpResponse::ServiceUnavailable(),
            "route table not loaded yet",
        ),
        Readiness::Draining => (HttpResponse::ServiceUnavailable(), "draining"),
    };
    response
        .content_type("text/plain; charset=utf-8")
        .body(text)
}
