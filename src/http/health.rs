//! The health port: `503` until the first route table is loaded, then `200`, and `503` for
//! good once the process is draining (after SIGUSR1), so the load balancer stops sending
//! traffic before the listeners close. It decides readiness only; it serves no metrics.
//!
//! A route source that fails after the first table (gorouter down, answering 401 or garbage,
//! NATS connection lost) keeps health at `200`: requests are still answered from the last good
//! table, which is what serving means here, and every promfetcher behind the load balancer
//! shares the same gorouters and NATS, so turning `503` would take all of them out at once for
//! a fault none of them can fix. The body then says `ok, but the route table is stale: ...`
//! with each failing source, since when and why; `promfetcher_route_source_up` says the same.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use actix_web::{web, HttpResponse};

use crate::routes::{FailingSource, RouteSourceMetrics, RouteTableHandle};

/// What the health answer depends on.
pub struct Health {
    table: Arc<RouteTableHandle>,
    sources: Arc<RouteSourceMetrics>,
    draining: AtomicBool,
}

/// The readiness verdict and its reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    /// Serving from the last good table while these sources fail.
    Stale(Vec<FailingSource>),
    RoutesNotLoaded,
    Draining,
}

impl Health {
    pub fn new(table: Arc<RouteTableHandle>, sources: Arc<RouteSourceMetrics>) -> Self {
        Health {
            table,
            sources,
            draining: AtomicBool::new(false),
        }
    }

    /// From now on, health answers 503 whatever else happens.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    pub fn readiness(&self) -> Readiness {
        if self.draining.load(Ordering::SeqCst) {
            return Readiness::Draining;
        }
        if !self.table.is_loaded() {
            return Readiness::RoutesNotLoaded;
        }
        let failing = self.sources.failing();
        if failing.is_empty() {
            Readiness::Ready
        } else {
            Readiness::Stale(failing)
        }
    }
}

/// Answers every path of the health port.
pub fn configure(config: &mut web::ServiceConfig) {
    config.default_service(web::to(health_check));
}

async fn health_check(health: web::Data<Health>) -> HttpResponse {
    let (mut response, text) = match health.readiness() {
        Readiness::Ready => (HttpResponse::Ok(), "ok".to_string()),
        Readiness::Stale(failing) => (HttpResponse::Ok(), stale_text(&failing)),
        Readiness::RoutesNotLoaded => (
            HttpResponse::ServiceUnavailable(),
            "route table not loaded yet".to_string(),
        ),
        Readiness::Draining => (HttpResponse::ServiceUnavailable(), "draining".to_string()),
    };
    response
        .content_type("text/plain; charset=utf-8")
        .body(text)
}

/// `ok, but the route table is stale: gorouter failing for 12 s (reason); serving the last
/// good table`.
fn stale_text(failing: &[FailingSource]) -> String {
    let mut text = "ok, but the route table is stale:".to_string();
    for (i, source) in failing.iter().enumerate() {
        let _ = write!(
            text,
            "{} {} failing for {} s ({})",
            if i == 0 { "" } else { ";" },
            source.source.label(),
            source.for_.as_secs(),
            source.reason
        );
    }
    text.push_str("; serving the last good table");
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::RouteSourceKind;
    use std::time::Duration;

    #[test]
    fn the_stale_answer_names_each_failing_source_and_why() {
        let failing = [
            FailingSource {
                source: RouteSourceKind::Nats,
                for_: Duration::from_millis(2500),
                reason: "the NATS connection is lost; reconnecting".into(),
            },
            FailingSource {
                source: RouteSourceKind::Gorouter,
                for_: Duration::from_secs(40),
                reason: "gorouter 10.0.0.1:8080 is unreachable: connection refused".into(),
            },
        ];
        assert_eq!(
            stale_text(&failing),
            "ok, but the route table is stale: nats failing for 2 s (the NATS connection is \
             lost; reconnecting); gorouter failing for 40 s (gorouter 10.0.0.1:8080 is \
             unreachable: connection refused); serving the last good table"
        );
    }
}
