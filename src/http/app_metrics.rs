//! The main port's HTTP handlers: every URL form of the merged-metrics API (`/v1` and `/v2`),
//! and promfetcher's own metrics. Handlers read the request, look the app up in the current
//! route table snapshot, run the fan-out and map its result to a status code. A diagnosis
//! (`.../diagnosis`) is read and looked up here the same way, then answered by
//! [`crate::http::diagnosis`]. They hold no state of their own and never touch SQL.

use std::time::Duration;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse, ResponseError};
use percent_encoding::percent_decode_str;
use prometheus::{Encoder, TextEncoder};

use crate::fanout::diagnosis::NoReport;
use crate::fanout::merge_pool::JobPanicked;
use crate::fanout::{FanOutRequest, FanOutResult};
use crate::http::accept::{accepts_gzip, prefers_html};
use crate::http::access_log::InstanceCounts;
use crate::http::app_name::{self, InvalidAppValue};
use crate::http::diagnosis;
use crate::http::diagnosis_page;
use crate::http::request_metrics::RequestKind;
use crate::http::sliced_body::SlicedBody;
use crate::http::ApiState;
use crate::routes::{AppQuery, Instances};
use crate::scrape::forwardable_headers;
use crate::scrape::metric_path::{InvalidMetricPath, MetricPath};
use exposition::Negotiated;

/// Most bytes of caller headers (names, values and line overhead) forwarded to the instances;
/// a request with more is refused with `431`, so that one request cannot become as many large
/// requests as the app has instances.
pub const MAX_FORWARDED_HEADER_BYTES: usize = 32 * 1024;

/// Mounts the API routes.
pub fn configure(config: &mut web::ServiceConfig) {
    config
        .route("/v{version}/apps/{tail:.*}", web::get().to(app_metrics))
        .route("/metrics", web::get().to(own_metrics));
}

/// What the caller asked for about the app: merged metrics (external exporters are asked only
/// for `All`) or a diagnosis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    All,
    OnlyApp,
    Diagnosis,
}

/// Splits `/v1/apps/<app...>/metrics` into the app value (path segments percent-decoded and
/// joined with `/`; empty for the query forms) and the scope. `None` for paths we do not serve.
fn parse_app_path(raw_path: &str) -> Option<(String, Scope)> {
    let mut parts = raw_path.trim_start_matches('/').splitn(3, '/');
    let version = parts.next()?;
    if !matches!(version, "v1" | "v2") || parts.next()? != "apps" {
        return None;
    }
    let tail = parts.next()?;
    let (app_part, scope) = if let Some(rest) = tail.strip_suffix("only-app-metrics") {
        (rest, Scope::OnlyApp)
    } else if let Some(rest) = tail.strip_suffix("metrics") {
        (rest, Scope::All)
    } else if let Some(rest) = tail.strip_suffix("diagnosis") {
        (rest, Scope::Diagnosis)
    } else {
        return None;
    };
    if !(app_part.is_empty() || app_part.ends_with('/')) {
        return None;
    }
    let segments: Vec<String> = app_part
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect();
    Some((segments.join("/"), scope))
}

/// Why a merged-metrics request is answered without metrics. Each case's status and one-line
/// message are decided here, in one place; the body is the message as plain text.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("404 Not Found")]
    UnknownUrl,
    #[error(
        "400 Bad Request: name the app: /v1/apps/{{org}}/{{space}}/{{app}}/metrics, \
         /v1/apps/{{app_guid}}/metrics, /v1/apps/{{route}}/metrics, ?app=org/space/app or ?route_url=host"
    )]
    NoApp,
    #[error("400 Bad Request: {0}")]
    InvalidApp(#[from] InvalidAppValue),
    #[error("400 Bad Request: {0}")]
    InvalidMetricPath(#[from] InvalidMetricPath),
    #[error(
        "431 Request Header Fields Too Large: the headers to forward to every instance take \
         {bytes} bytes; at most {MAX_FORWARDED_HEADER_BYTES} are accepted"
    )]
    HeadersTooLarge { bytes: usize },
    #[error("503 Service Unavailable: the route table is not loaded yet; retry in a few seconds")]
    TableNotLoaded,
    #[error(
        "404 Not Found: no app or route {0:?} in the route table (apps are named org/space/app, \
         by app GUID, or by route)"
    )]
    AppNotFound(String),
    #[error(
        "406 Not Acceptable: no instance of {app:?} serves metrics at {path}: pass the app's \
         metrics path with ?metric_path=/your/path, or create an endpoint for the app with \
         `cf create-service promfetcher fetch-app <name> -c '{{\"endpoint\":\"/your/path\"}}'` \
         and `cf bind-service <app> <name>`",
        path = path.as_str()
    )]
    NoInstanceServesPath {
        app: String,
        path: MetricPath,
        /// Every one of them answered 404.
        instances: usize,
    },
    #[error(
        "429 Too Many Requests: {app:?} was scraped for a diagnosis moments ago; an app is \
         diagnosed at most once per scrape.diagnosis_interval: retry in {retry_after_seconds} s"
    )]
    DiagnosedTooRecently {
        app: String,
        retry_after_seconds: u64,
    },
    #[error(
        "500 Internal Server Error: promfetcher failed while reading what the instances of \
         {app:?} answered ({reason}); this is a bug in promfetcher, please report it"
    )]
    MergeFailed { app: String, reason: JobPanicked },
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::UnknownUrl | ApiError::AppNotFound(_) => StatusCode::NOT_FOUND,
            ApiError::NoApp | ApiError::InvalidApp(_) | ApiError::InvalidMetricPath(_) => {
                StatusCode::BAD_REQUEST
            }
            ApiError::HeadersTooLarge { .. } => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ApiError::TableNotLoaded => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::NoInstanceServesPath { .. } => StatusCode::NOT_ACCEPTABLE,
            ApiError::DiagnosedTooRecently { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::MergeFailed { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code())
            .content_type("text/plain; charset=utf-8")
            .body(format!("{self}\n"));
        match self {
            ApiError::NoInstanceServesPath { instances, .. } => {
                response.extensions_mut().insert(InstanceCounts {
                    scraped: *instances,
                    failed: *instances,
                });
            }
            ApiError::DiagnosedTooRecently {
                retry_after_seconds,
                ..
            } => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_seconds));
            }
            _ => {}
        }
        response
    }
}

/// What a merged-metrics request (or a diagnosis) asks for, read from its URL and headers and
/// checked.
struct MetricsRequest {
    app: String,
    scope: Scope,
    path: MetricPath,
    /// `path` came from `?metric_path=` (else it is the default).
    path_from_query: bool,
    forwarded: http::HeaderMap,
}

impl MetricsRequest {
    fn read(req: &HttpRequest) -> Result<MetricsRequest, ApiError> {
        let (path_app, scope) = parse_app_path(req.uri().path()).ok_or(ApiError::UnknownUrl)?;
        let query: Vec<(String, String)> =
            url::form_urlencoded::parse(req.query_string().as_bytes())
                .into_owned()
                .collect();
        let query_value = |name: &str| {
            query
                .iter()
                .find(|(key, value)| key == name && !value.trim().is_empty())
                .map(|(_, value)| value.trim().to_string())
        };
        let app = if path_app.is_empty() {
            query_value("app").or_else(|| query_value("route_url"))
        } else {
            Some(path_app)
        };
        let app = app.ok_or(ApiError::NoApp)?;
        app_name::check(&app)?;
        let metric_path = query_value("metric_path");
        let path_from_query = metric_path.is_some();
        let path = match metric_path {
            None => MetricPath::default_path(),
            Some(raw) => MetricPath::parse(&raw)?,
        };
        let forwarded = forwardable_headers(&http1_headers(req.headers()));
        let bytes: usize = forwarded
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len() + 4)
            .sum();
        if bytes > MAX_FORWARDED_HEADER_BYTES {
            return Err(ApiError::HeadersTooLarge { bytes });
        }
        Ok(MetricsRequest {
            app,
            scope,
            path,
            path_from_query,
            forwarded,
        })
    }
}

/// The app a request named, as the route table knows it.
struct FoundApp {
    /// How the table matched the app value: `names`, `guid` or `route`.
    found_by: &'static str,
    instances: Instances,
    /// When the snapshot that matched was built.
    table_built_at: std::time::SystemTime,
}

/// Looks the app up in the current route table snapshot: the most specific reading of the app
/// value the table knows. Records the request's kind on the way.
fn find_app(
    req: &HttpRequest,
    state: &ApiState,
    asked: &MetricsRequest,
) -> Result<FoundApp, ApiError> {
    // The request's kind (own metrics) is a diagnosis, or the reading of the app the table
    // matched; until then, and when none matches, the most specific reading of the value.
    let kind_of = |reading: &AppQuery<'_>| match asked.scope {
        Scope::Diagnosis => RequestKind::Diagnosis,
        Scope::All | Scope::OnlyApp => RequestKind::of_query(reading),
    };
    let readings = AppQuery::candidates(&asked.app);
    req.extensions_mut().insert(kind_of(&readings[0]));
    let table = state.table.snapshot().ok_or(ApiError::TableNotLoaded)?;
    let (reading, instances) = readings
        .iter()
        .find_map(|reading| table.find(reading).map(|instances| (reading, instances)))
        .ok_or_else(|| ApiError::AppNotFound(asked.app.clone()))?;
    req.extensions_mut().insert(kind_of(reading));
    let found_by = match reading {
        AppQuery::Names { .. } => "names",
        AppQuery::Guid(_) => "guid",
        AppQuery::Route(_) => "route",
    };
    Ok(FoundApp {
        found_by,
        instances,
        table_built_at: table.built_at(),
    })
}

async fn app_metrics(
    req: HttpRequest,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    let mut asked = MetricsRequest::read(&req)?;
    let found = find_app(&req, &state, &asked)?;
    let negotiated = Negotiated::from_accept(header_text(&req, header::ACCEPT));
    let mut forwarded = std::mem::take(&mut asked.forwarded);
    // A browser that signed in to /routes sends the broker's credentials to every path of this
    // origin unasked: they are never passed on to an app's instances.
    if state.broker_credentials.accepts(req.headers()) {
        forwarded.remove(http::header::AUTHORIZATION);
    }
    let instances = found.instances.clone();
    let request = fan_out_request(&req, &state, &asked, forwarded, instances, negotiated);
    if asked.scope == Scope::Diagnosis {
        let subject = diagnosis::Subject {
            app: &asked.app,
            found_by: found.found_by,
            table_built_at: found.table_built_at,
            path_from_query: asked.path_from_query,
        };
        let report = diagnosis::report(&state, subject, request)
            .await
            .map_err(|no_report| match no_report {
                NoReport::TooSoon(too_soon) => ApiError::DiagnosedTooRecently {
                    app: asked.app.clone(),
                    retry_after_seconds: too_soon.retry_after.as_secs_f64().ceil().max(1.0) as u64,
                },
                NoReport::Failed(reason) => ApiError::MergeFailed {
                    app: asked.app.clone(),
                    reason,
                },
            })?;
        let page = prefers_html(header_text(&req, header::ACCEPT))
            .then(|| diagnosis_page::render(&report, &state.public.base_url));
        return Ok(diagnosis::answer(&report, page));
    }

    state.in_flight.inc();
    let _in_flight = scopeguard(|| state.in_flight.dec());
    let scraped = found.instances.len();
    let gzip = request.gzip;
    let result = state.fan_out.run(request).await;
    match &*result {
        FanOutResult::Merged {
            answer,
            failed_instances,
            ..
        } => {
            let mut response = HttpResponse::Ok();
            response
                .insert_header((header::CONTENT_TYPE, negotiated.content_type()))
                .insert_header((header::VARY, "Accept, Accept-Encoding"))
                .extensions_mut()
                .insert(InstanceCounts {
                    scraped,
                    failed: *failed_instances,
                });
            if gzip {
                response.insert_header((header::CONTENT_ENCODING, "gzip"));
            }
            Ok(response.body(SlicedBody::new(answer.as_sent(gzip).await)))
        }
        FanOutResult::NoInstanceServesPath => Err(ApiError::NoInstanceServesPath {
            app: asked.app,
            path: asked.path,
            instances: scraped,
        }),
        FanOutResult::MergeFailed(reason) => Err(ApiError::MergeFailed {
            app: asked.app,
            reason: reason.clone(),
        }),
    }
}

/// The fan-out of `instances` that the request asks for: its path, the broker paths, its
/// forwardable headers (`forwarded`, taken out of it), its timeout, scheme and address, and
/// `output` as the answer's format.
fn fan_out_request(
    req: &HttpRequest,
    state: &ApiState,
    asked: &MetricsRequest,
    forwarded: http::HeaderMap,
    instances: Instances,
    output: Negotiated,
) -> FanOutRequest {
    FanOutRequest {
        instances,
        path: asked.path.clone(),
        app_paths: state.app_paths.snapshot(),
        forwarded,
        caller_timeout: caller_timeout(req.headers().get("x-prometheus-scrape-timeout-seconds")),
        // Read here, before the fan-out: `connection_info` borrows the request, which must not
        // be held across an await.
        forwarded_proto: req.connection_info().scheme().to_string(),
        forwarded_for: forwarded_for(req),
        output,
        with_exporters: asked.scope == Scope::All,
        gzip: accepts_gzip(header_text(req, header::ACCEPT_ENCODING)),
    }
}

/// A request header as text, when present and readable.
fn header_text(req: &HttpRequest, name: header::HeaderName) -> Option<&str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// Runs `f` when dropped, so a gauge is decremented however the handler ends.
fn scopeguard<F: FnOnce()>(f: F) -> impl Drop {
    struct Guard<F: FnOnce()>(Option<F>);
    impl<F: FnOnce()> Drop for Guard<F> {
        fn drop(&mut self) {
            if let Some(f) = self.0.take() {
                f()
            }
        }
    }
    Guard(Some(f))
}

/// actix-web 4 still uses the `http` 0.2 types; the scraper speaks `http` 1.
fn http1_headers(headers: &header::HeaderMap) -> http::HeaderMap {
    let mut converted = http::HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(name.as_str().as_bytes()),
            http::HeaderValue::from_bytes(value.as_bytes()),
        ) {
            converted.append(name, value);
        }
    }
    converted
}

/// Reads Prometheus' `X-Prometheus-Scrape-Timeout-Seconds` (e.g. `10`, `9.5`); ignores nonsense.
fn caller_timeout(value: Option<&HeaderValue>) -> Option<Duration> {
    let seconds: f64 = value?.to_str().ok()?.trim().parse().ok()?;
    (seconds.is_finite() && seconds > 0.0 && seconds < 86_400.0)
        .then(|| Duration::from_secs_f64(seconds))
}

/// The caller's `X-Forwarded-For` with the caller's own address appended.
fn forwarded_for(req: &HttpRequest) -> Option<String> {
    let peer = req.peer_addr().map(|addr| addr.ip().to_string());
    let earlier = req
        .headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty());
    match (earlier, peer) {
        (Some(earlier), Some(peer)) => Some(format!("{earlier}, {peer}")),
        (Some(earlier), None) => Some(earlier.to_string()),
        (None, peer) => peer,
    }
}

async fn own_metrics(state: web::Data<ApiState>) -> HttpResponse {
    let encoder = TextEncoder::new();
    let mut body = Vec::new();
    if let Err(error) = encoder.encode(&state.registry.gather(), &mut body) {
        tracing::error!(%error, "cannot encode own metrics");
        return HttpResponse::InternalServerError().finish();
    }
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, encoder.format_type()))
        .body(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_url_form_is_understood() {
        let table = [
            (
                "/v1/apps/acme/dev/shop/metrics",
                Some(("acme/dev/shop", Scope::All)),
            ),
            (
                "/v2/apps/acme/dev/shop/only-app-metrics",
                Some(("acme/dev/shop", Scope::OnlyApp)),
            ),
            (
                "/v1/apps/8c5a9f3e-2b1d-4e6f-9a7b-1c2d3e4f5a6b/metrics",
                Some(("8c5a9f3e-2b1d-4e6f-9a7b-1c2d3e4f5a6b", Scope::All)),
            ),
            (
                "/v1/apps/myapp.apps.example.com%2Fapi/metrics",
                Some(("myapp.apps.example.com/api", Scope::All)),
            ),
            ("/v1/apps/metrics", Some(("", Scope::All))),
            ("/v2/apps/only-app-metrics", Some(("", Scope::OnlyApp))),
            (
                "/v1/apps/acme/dev/shop/diagnosis",
                Some(("acme/dev/shop", Scope::Diagnosis)),
            ),
            ("/v2/apps/diagnosis", Some(("", Scope::Diagnosis))),
            ("/v1/apps/shopdiagnosis", None),
            ("/v3/apps/metrics", None),
            ("/v1/apps/shop/metricsx", None),
            ("/v1/apps/shopmetrics", None),
            ("/v1/other/metrics", None),
        ];
        for (path, expected) in table {
            let parsed = parse_app_path(path);
            assert_eq!(
                parsed.as_ref().map(|(app, scope)| (app.as_str(), *scope)),
                expected,
                "{path}"
            );
        }
    }

    #[actix_web::test]
    async fn a_merge_that_panicked_is_answered_as_a_500_that_says_so() {
        let pool = crate::fanout::merge_pool::MergePool::new(1);
        let reason = pool
            .run(|| -> () { panic!("index 7 out of range") })
            .await
            .unwrap_err();
        let error = ApiError::MergeFailed {
            app: "acme/dev/shop".into(),
            reason,
        };
        let response = error.error_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = actix_web::body::to_bytes(response.into_body())
            .await
            .unwrap();
        assert_eq!(
            std::str::from_utf8(&body).unwrap(),
            "500 Internal Server Error: promfetcher failed while reading what the instances of \
             \"acme/dev/shop\" answered (index 7 out of range); this is a bug in promfetcher, \
             please report it\n"
        );
    }

    #[test]
    fn caller_timeout_accepts_prometheus_values_only() {
        let parse = |s: &str| caller_timeout(Some(&HeaderValue::from_str(s).unwrap()));
        assert_eq!(parse("10"), Some(Duration::from_secs(10)));
        assert_eq!(parse("9.5"), Some(Duration::from_millis(9500)));
        assert_eq!(parse("-1"), None);
        assert_eq!(parse("NaN"), None);
        assert_eq!(parse("soon"), None);
    }
}
