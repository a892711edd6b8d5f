//! Counts and times every answer of the main port, by the kind of request and the class of
//! its status: `promfetcher_http_requests_total{kind, status_class}`,
//! `promfetcher_http_request_duration_seconds{kind}` and, for the service broker,
//! `promfetcher_broker_operations_total{operation, status_class}`. The kind comes from the
//! handler when it knows better than the path (a merged-metrics request is `name`, `guid` or
//! `route` by the reading of the app that the route table matched, a diagnosis `diagnosis`);
//! otherwise from the path.
//! The duration runs until the answer's head is ready (merged bodies are complete by then).
//! It does not change the request or the response.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::{Error, HttpMessage};
use futures_util::TryFutureExt;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

use crate::own_metrics::registered;
use crate::routes::AppQuery;

/// Upper bounds of the answer-duration buckets, in seconds: from a cached answer to the
/// longest scrape timeout Prometheus allows by default.
const DURATION_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0, 60.0,
];

/// What a request asked for, as the `kind` label says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    /// Merged metrics of an app named `org/space/app`.
    Name,
    /// Merged metrics of an app named by its GUID.
    Guid,
    /// Merged metrics of the app behind a route.
    Route,
    /// A diagnosis of an app (`.../diagnosis`), whichever way it was named.
    Diagnosis,
    /// Service discovery (`/v1/sd`).
    Sd,
    /// The Open Service Broker API (`/broker/...`).
    Broker,
    /// Anything else: own metrics, the route dump, the user guide, unknown URLs.
    Other,
}

impl RequestKind {
    pub fn label(self) -> &'static str {
        match self {
            RequestKind::Name => "name",
            RequestKind::Guid => "guid",
            RequestKind::Route => "route",
            RequestKind::Diagnosis => "diagnosis",
            RequestKind::Sd => "sd",
            RequestKind::Broker => "broker",
            RequestKind::Other => "other",
        }
    }

    /// The kind of a merged-metrics request that `query` answered (or would have).
    pub fn of_query(query: &AppQuery<'_>) -> RequestKind {
        match query {
            AppQuery::Names { .. } => RequestKind::Name,
            AppQuery::Guid(_) => RequestKind::Guid,
            AppQuery::Route(_) => RequestKind::Route,
        }
    }

    /// The kind a path says, when the handler did not name one.
    fn of_path(path: &str) -> RequestKind {
        if path == "/v1/sd" {
            RequestKind::Sd
        } else if path == "/broker" || path.starts_with("/broker/") {
            RequestKind::Broker
        } else {
            RequestKind::Other
        }
    }
}

/// `2xx` … `5xx` (`other` for the informational 1xx, which no answer here has).
fn status_class(status: StatusCode) -> &'static str {
    match status.as_u16() / 100 {
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        5 => "5xx",
        _ => "other",
    }
}

/// The answer metrics of the main port.
pub struct RequestMetrics {
    requests: IntCounterVec,
    duration: HistogramVec,
    broker_operations: IntCounterVec,
}

impl RequestMetrics {
    pub fn register(registry: &Registry) -> prometheus::Result<Arc<Self>> {
        let requests = registered(
            registry,
            IntCounterVec::new(
                Opts::new(
                    "promfetcher_http_requests_total",
                    "Answers of the main port by kind of request (name, guid, route: merged \
                     metrics of an app found that way; diagnosis; sd: service discovery; broker; \
                     other) and status class.",
                ),
                &["kind", "status_class"],
            )?,
        )?;
        let duration = registered(
            registry,
            HistogramVec::new(
                HistogramOpts::new(
                    "promfetcher_http_request_duration_seconds",
                    "Time from a request's arrival until its answer was ready, by kind of request.",
                )
                .buckets(DURATION_BUCKETS.to_vec()),
                &["kind"],
            )?,
        )?;
        let broker_operations = registered(
            registry,
            IntCounterVec::new(
                Opts::new(
                    "promfetcher_broker_operations_total",
                    "Service broker requests by operation (catalog, provision, update, \
                     deprovision, bind, unbind, get_instance, get_binding, last_operation) and \
                     status class.",
                ),
                &["operation", "status_class"],
            )?,
        )?;
        Ok(Arc::new(RequestMetrics {
            requests,
            duration,
            broker_operations,
        }))
    }

    fn record<B>(
        &self,
        response: &actix_web::HttpResponse<B>,
        kind: RequestKind,
        started: Instant,
    ) {
        let class = status_class(response.status());
        self.requests
            .with_label_values(&[kind.label(), class])
            .inc();
        self.duration
            .with_label_values(&[kind.label()])
            .observe(started.elapsed().as_secs_f64());
        if let Some(operation) = response.extensions().get::<osb_broker::Operation>() {
            self.broker_operations
                .with_label_values(&[operation.label(), class])
                .inc();
        }
    }
}

/// Counts `req`'s answer in `metrics`. For `App::wrap_fn`.
pub fn counted<S, B>(
    metrics: Arc<RequestMetrics>,
    req: ServiceRequest,
    service: &S,
) -> impl Future<Output = Result<ServiceResponse<B>, Error>>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
{
    let started = Instant::now();
    let path_kind = RequestKind::of_path(req.path());
    service.call(req).map_ok(move |response| {
        let kind = response
            .request()
            .extensions()
            .get::<RequestKind>()
            .copied()
            .unwrap_or(path_kind);
        metrics.record(response.response(), kind, started);
        response
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_statuses_are_classified() {
        assert_eq!(RequestKind::of_path("/v1/sd"), RequestKind::Sd);
        assert_eq!(
            RequestKind::of_path("/broker/v2/catalog"),
            RequestKind::Broker
        );
        assert_eq!(RequestKind::of_path("/brokers"), RequestKind::Other);
        assert_eq!(RequestKind::of_path("/metrics"), RequestKind::Other);
        assert_eq!(status_class(StatusCode::CREATED), "2xx");
        assert_eq!(status_class(StatusCode::NOT_MODIFIED), "3xx");
        assert_eq!(status_class(StatusCode::GONE), "4xx");
        assert_eq!(status_class(StatusCode::SERVICE_UNAVAILABLE), "5xx");
    }
}
