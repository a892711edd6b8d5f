//! `GET /v1/apps/.../diagnosis` (every way of naming an app that `.../metrics` takes, under
//! `/v1` and `/v2`): why an app's metrics are or are not there. The request is read, checked
//! and looked up by [`crate::http::app_metrics`] exactly as for `.../metrics`; this module runs
//! the fan-out's per-instance report and answers it as JSON: how the app was found and how old
//! the route table is, which metrics path applied and why, and for each instance what it
//! answered or why it failed, with a one-line explanation and the next thing to check.
//!
//! A browser (an `Accept` that prefers `text/html`) gets the same report as a page, written
//! by [`crate::http::diagnosis_page`].
//!
//! It never repeats an instance's body nor any header value (of the caller or the instance;
//! the content type is cut to its media type), so it reveals no more than `.../metrics` does.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use actix_web::http::header;
use actix_web::HttpResponse;
use serde::Serialize;

use crate::fanout::diagnosis::{
    ExporterReport, InstanceOutcome, InstanceReport, MergeDrops, NoReport,
};
use crate::fanout::FanOutRequest;
use crate::http::access_log::{redacted_target, InstanceCounts};
use crate::http::ApiState;
use crate::routes::Instance;
use crate::scrape::metric_path::MetricPath;
use crate::scrape::{FailureReason, ScrapeError};

/// What the request named and how the route table found it, as the metrics handler read it.
pub(crate) struct Subject<'a> {
    /// The app value as the caller gave it.
    pub app: &'a str,
    /// `names`, `guid` or `route`.
    pub found_by: &'static str,
    /// When the route table snapshot that found the app was built.
    pub table_built_at: SystemTime,
    /// The request's path came from `?metric_path=` (else it is the default).
    pub path_from_query: bool,
}

/// The JSON answer.
#[derive(Debug, Serialize)]
pub(crate) struct Diagnosis {
    /// The app value as the caller gave it.
    pub(crate) app: String,
    /// `names`, `guid` or `route`: how the route table matched it.
    pub(crate) found_by: &'static str,
    pub(crate) route_table: TableAge,
    /// Each route source's state: the table merges what they deliver.
    pub(crate) route_sources: Vec<SourceFreshness>,
    /// One entry per app among the instances (a route may lead to several).
    pub(crate) metrics_paths: Vec<PathChoice>,
    /// How long each instance had for its answer.
    pub(crate) instance_timeout_seconds: f64,
    pub(crate) instances_scraped: usize,
    pub(crate) instances_failed: usize,
    pub(crate) instances: Vec<InstanceLine>,
    pub(crate) merge: MergeLine,
    /// Each external exporter, once per app (none without exporters configured).
    pub(crate) external_exporters: Vec<ExporterLine>,
}

/// What merging the instances' valid answers gives, and what it would leave out and why.
#[derive(Debug, Serialize)]
pub(crate) struct MergeLine {
    #[serde(flatten)]
    pub(crate) counts: MergeDrops,
    /// One line for each count above zero: what is dropped, why, and what to change.
    pub(crate) dropped: Vec<String>,
}

impl From<MergeDrops> for MergeLine {
    fn from(drops: MergeDrops) -> MergeLine {
        let mut dropped = Vec::new();
        if drops.type_conflicts > 0 {
            dropped.push(format!(
                "instance families declaring another # TYPE than most instances do for the \
                 same name, or clashing with another family's name: {}; their samples are dropped; \
                 give the metric one type on every instance",
                drops.type_conflicts
            ));
        }
        if drops.duplicate_series > 0 {
            dropped.push(format!(
                "samples repeating a series (same name and labels) the same instance sent \
                 before: {}; only the first is kept; check the app's registry for metrics \
                 registered twice",
                drops.duplicate_series
            ));
        }
        if drops.left_out_of_openmetrics > 0 {
            dropped.push(format!(
                "instance families that break an OpenMetrics rule: {}; they are left out of \
                 OpenMetrics answers, which Prometheus 2.5x and later ask for (text answers \
                 keep them); check the families' names, types and suffixes with \
                 `promtool check metrics`",
                drops.left_out_of_openmetrics
            ));
        }
        if drops.promfetcher_families > 0 {
            dropped.push(format!(
                "families named promfetcher_up, promfetcher_scrape_duration_seconds or \
                 promfetcher_scrape_error: {}; they are left out: promfetcher writes its own; rename \
                 the app's",
                drops.promfetcher_families
            ));
        }
        MergeLine {
            counts: drops,
            dropped,
        }
    }
}

#[derive(Debug, Serialize)]
pub(crate) struct TableAge {
    /// When the snapshot that found the app was built, in seconds since the Unix epoch: a
    /// snapshot is built when the routes change, so this is when they last changed.
    pub(crate) built_at_unix_seconds: f64,
    /// Seconds since then (not staleness: the sources may have confirmed the table since).
    pub(crate) age_seconds: f64,
}

/// How fresh one route source is, as promfetcher's own metrics say
/// (`promfetcher_route_source_up`, `promfetcher_route_source_last_success_timestamp_seconds`).
#[derive(Debug, Serialize)]
pub(crate) struct SourceFreshness {
    /// `gorouter` or `nats`.
    pub(crate) source: String,
    /// Its latest routes hold the app's instances (else only the other source knows it).
    pub(crate) lists_app: bool,
    /// Its last attempt succeeded.
    pub(crate) up: bool,
    /// When it last delivered (a gorouter answered a poll round, NATS connected and current);
    /// `null` before the first time.
    pub(crate) last_success_unix_seconds: Option<f64>,
    pub(crate) seconds_since_success: Option<f64>,
}

/// Which path one app's instances were asked for, and why.
#[derive(Debug, Serialize)]
pub(crate) struct PathChoice {
    pub(crate) app_guid: String,
    /// `org/space/app`, empty for routes without Cloud Foundry tags.
    pub(crate) app_name: String,
    pub(crate) path: String,
    /// `broker_binding`, `service_instance`, `metric_path` or `default`.
    pub(crate) source: &'static str,
    /// Why this path and not another, in one line.
    pub(crate) why: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) binding_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) service_instance_id: Option<String>,
}

/// How one instance went.
#[derive(Debug, Serialize)]
pub(crate) struct InstanceLine {
    pub(crate) index: String,
    pub(crate) address: String,
    pub(crate) app_guid: String,
    /// The name its TLS certificate is checked against; `null` without TLS.
    pub(crate) tls_server_name: Option<String>,
    pub(crate) path: String,
    pub(crate) duration_seconds: f64,
    #[serde(flatten)]
    pub(crate) answer: Answer,
}

/// How one external exporter went, asked about one app. Its URL is not shown.
#[derive(Debug, Serialize)]
pub(crate) struct ExporterLine {
    /// The exporter's configured name (the `external_exporter` label of its samples).
    pub(crate) exporter: String,
    /// The app it was asked about.
    pub(crate) app_guid: String,
    pub(crate) duration_seconds: f64,
    #[serde(flatten)]
    pub(crate) answer: Answer,
}

/// What an instance or exporter answered.
#[derive(Debug, Default, Serialize)]
pub(crate) struct Answer {
    /// The HTTP status; `null` when there was none (connection, TLS, timeout).
    pub(crate) status: Option<u16>,
    pub(crate) content_type: Option<String>,
    /// `text` (0.0.4) or `openmetrics`, as the merge reads the body.
    pub(crate) format: Option<&'static str>,
    pub(crate) bytes: Option<usize>,
    pub(crate) families: Option<usize>,
    pub(crate) samples: Option<usize>,
    /// `null` when the metrics would be in the merged answer.
    pub(crate) failure: Option<Failure>,
    /// Things worth knowing that did not make the scrape fail.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) notes: Vec<String>,
}

/// Why an instance gave no metrics.
#[derive(Debug, Serialize)]
pub(crate) struct Failure {
    /// The `error` label of `promfetcher_scrape_error`.
    pub(crate) reason: &'static str,
    pub(crate) explanation: String,
    pub(crate) next_check: String,
}

/// Runs the per-instance report for `request` (or joins an identical one running); refused
/// when the app was scraped for a diagnosis too recently.
pub(crate) async fn report(
    state: &ApiState,
    subject: Subject<'_>,
    request: FanOutRequest,
) -> Result<Diagnosis, NoReport> {
    let timeout = state.fan_out.instance_timeout(request.caller_timeout);
    let metrics_paths = path_choices(&request, subject.path_from_query);
    let scraped = request.instances.clone();
    let report = state.fan_out.diagnose(request).await?;
    let route_sources = route_sources(state, &scraped);
    let instances: Vec<InstanceLine> = report
        .instances
        .iter()
        .map(|report| instance_line(report, timeout))
        .collect();
    let failed = instances
        .iter()
        .filter(|i| i.answer.failure.is_some())
        .count();
    let built_at = subject.table_built_at;
    Ok(Diagnosis {
        app: subject.app.to_string(),
        found_by: subject.found_by,
        route_table: TableAge {
            built_at_unix_seconds: built_at
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs_f64(),
            age_seconds: built_at.elapsed().unwrap_or_default().as_secs_f64(),
        },
        route_sources,
        metrics_paths,
        instance_timeout_seconds: timeout.as_secs_f64(),
        instances_scraped: instances.len(),
        instances_failed: failed,
        instances,
        merge: report.merge.into(),
        external_exporters: report
            .exporters
            .iter()
            .map(|exporter| exporter_line(exporter, timeout))
            .collect(),
    })
}

/// The answer with `diagnosis`: `page` (its HTML form) when given, else the JSON. It is never
/// cached and depends on `Accept`.
pub(crate) fn answer(diagnosis: &Diagnosis, page: Option<String>) -> HttpResponse {
    let mut response = HttpResponse::Ok();
    response
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::VARY, "Accept"))
        .extensions_mut()
        .insert(InstanceCounts {
            scraped: diagnosis.instances_scraped,
            failed: diagnosis.instances_failed,
        });
    match page {
        Some(page) => response.content_type("text/html; charset=utf-8").body(page),
        None => response.json(diagnosis),
    }
}

/// Each route source's freshness, as its own metrics give it, and whether its latest routes
/// list any of `instances`.
fn route_sources(state: &ApiState, instances: &[Arc<Instance>]) -> Vec<SourceFreshness> {
    let listing = state.route_sources.sources_listing(instances);
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    state
        .route_source_metrics
        .states()
        .into_iter()
        .map(|state| SourceFreshness {
            lists_app: listing.iter().any(|kind| kind.label() == state.source),
            seconds_since_success: state
                .last_success_unix_seconds
                .map(|at| (now - at).max(0.0)),
            last_success_unix_seconds: state.last_success_unix_seconds,
            up: state.up,
            source: state.source,
        })
        .collect()
}

/// The path choice of each app among `instances`, in the order they first appear.
fn path_choices(request: &FanOutRequest, path_from_query: bool) -> Vec<PathChoice> {
    let mut choices: Vec<PathChoice> = Vec::new();
    for instance in request.instances.iter() {
        let app = &instance.identity.app;
        if choices.iter().any(|c| c.app_guid == app.app_id) {
            continue;
        }
        let app_name = if app.app_name.is_empty() {
            String::new()
        } else {
            format!(
                "{}/{}/{}",
                app.organization_name, app.space_name, app.app_name
            )
        };
        let choice = match request.app_paths.broker_path(&app.app_id) {
            Some(broker) => {
                let (source, set_by) = match &broker.service_instance_id {
                    Some(service_instance) => (
                        "service_instance",
                        format!("the endpoint of service instance {service_instance}, which binding {} follows", broker.binding_id),
                    ),
                    None => ("broker_binding", format!("the endpoint of binding {}", broker.binding_id)),
                };
                PathChoice {
                    path: shown(&broker.path),
                    source,
                    why: format!(
                        "the app is bound to the promfetcher service: {set_by}; it wins over ?metric_path="
                    ),
                    binding_id: Some(broker.binding_id.clone()),
                    service_instance_id: broker.service_instance_id.clone(),
                    app_guid: app.app_id.to_string(),
                    app_name,
                }
            }
            None => {
                let (source, why) = if path_from_query {
                    (
                        "metric_path",
                        "?metric_path= of this request; no service binding sets a path for the app",
                    )
                } else {
                    (
                        "default",
                        "no ?metric_path= and no service binding sets a path for the app",
                    )
                };
                PathChoice {
                    path: shown(&request.path),
                    source,
                    why: why.to_string(),
                    binding_id: None,
                    service_instance_id: None,
                    app_guid: app.app_id.to_string(),
                    app_name,
                }
            }
        };
        choices.push(choice);
    }
    choices
}

fn instance_line(report: &InstanceReport, timeout: Duration) -> InstanceLine {
    let instance = &report.instance;
    let path = shown(&report.path);
    InstanceLine {
        index: instance.identity.instance_index.to_string(),
        address: instance.address.to_string(),
        app_guid: instance.identity.app.app_id.to_string(),
        tls_server_name: instance.tls_server_name.as_deref().map(str::to_string),
        path: path.clone(),
        duration_seconds: report.duration.as_secs_f64(),
        answer: answer_of(
            &report.outcome,
            "the instance",
            &format!("fetch {path} from the instance yourself and check it with `promtool check metrics`"),
            |error| failure_of(error, instance, &report.path, timeout),
        ),
    }
}

fn exporter_line(report: &ExporterReport, timeout: Duration) -> ExporterLine {
    ExporterLine {
        exporter: report.exporter.clone(),
        app_guid: report.app_guid.clone(),
        duration_seconds: report.duration.as_secs_f64(),
        answer: answer_of(
            &report.outcome,
            "the exporter",
            EXPORTER_NEXT_CHECK,
            |error| exporter_failure(error, timeout),
        ),
    }
}

/// Who to ask about an exporter that fails.
const EXPORTER_NEXT_CHECK: &str = "external exporters are set up by the platform team \
     (promfetcher's external_exporters): tell them this exporter's name; \
     `.../only-app-metrics` leaves the exporters out";

/// The fields of what `who` (the instance, the exporter) answered; `parse_next_check` says
/// what to do about a body that does not parse, `failure` explains a failed scrape.
fn answer_of(
    outcome: &InstanceOutcome,
    who: &str,
    parse_next_check: &str,
    failure: impl FnOnce(&ScrapeError) -> Failure,
) -> Answer {
    let mut answer = Answer::default();
    match outcome {
        InstanceOutcome::Answered {
            status,
            content_type,
            format,
            bytes,
            parsed,
        } => {
            answer.status = Some(*status);
            answer.content_type = content_type.clone();
            answer.format = Some(match format {
                exposition::InputFormat::Text => "text",
                exposition::InputFormat::OpenMetrics => "openmetrics",
            });
            answer.bytes = Some(*bytes);
            match parsed {
                Ok(counts) => {
                    answer.families = Some(counts.families);
                    answer.samples = Some(counts.samples);
                    if let Some(over) = counts.over_answer_limit {
                        answer.failure = Some(Failure {
                            reason: FailureReason::TooLarge.label(),
                            explanation: format!(
                                "{} samples: {over}; the answer leaves {who} out",
                                counts.samples
                            ),
                            next_check: "look for a label with unbounded values in the app's \
                                         series (request or user ids, URLs), or raise \
                                         scrape.max_answer_size"
                                .to_string(),
                        });
                    }
                    if counts.status_families_left_out > 0 {
                        answer.notes.push(format!(
                            "{who} sends series named promfetcher_up, \
                             promfetcher_scrape_duration_seconds or promfetcher_scrape_error; \
                             they are left out, promfetcher writes its own"
                        ));
                    }
                }
                Err(error) => {
                    answer.failure = Some(Failure {
                        reason: FailureReason::Parse.label(),
                        // `found` is left out: it quotes the body.
                        explanation: format!(
                            "the answer is not a valid exposition: parse error at line {}, \
                             column {}: expected {}",
                            error.line, error.column, error.expected
                        ),
                        next_check: parse_next_check.to_string(),
                    });
                }
            }
        }
        InstanceOutcome::Failed(error) => {
            if let ScrapeError::Status(status) = error {
                answer.status = Some(*status);
            }
            answer.failure = Some(failure(error));
        }
    }
    answer
}

/// Why an exporter failed, without the error's detail: it may name the exporter's URL, whose
/// query can carry the exporter's credentials.
fn exporter_failure(error: &ScrapeError, timeout: Duration) -> Failure {
    let explanation = match error {
        ScrapeError::Timeout => format!("no complete answer within {:.1} s", timeout.as_secs_f64()),
        ScrapeError::Status(code) => format!("the exporter answered HTTP {code}"),
        ScrapeError::Connect(_) => "no connection to the exporter".to_string(),
        ScrapeError::Tls(_) => "the TLS handshake with the exporter failed".to_string(),
        ScrapeError::Redirect { .. } | ScrapeError::TooManyRedirects { .. } => {
            "the exporter redirects to another host, or in a loop; not followed".to_string()
        }
        ScrapeError::TooLarge { limit } => {
            format!("the exporter's answer exceeds {limit} bytes after decompression")
        }
        ScrapeError::Read(_) => "the exporter's answer broke off".to_string(),
    };
    Failure {
        reason: error.reason().label(),
        explanation,
        next_check: EXPORTER_NEXT_CHECK.to_string(),
    }
}

/// What to do about an instance path that redirects where promfetcher does not follow.
const REDIRECT_HINT: &str =
    "set ?metric_path= (or the service's endpoint) to the path that serves the metrics itself";

/// `path` as a report shows it: the values of secret-looking query parameters masked, as in
/// the access log (a broker endpoint may carry a token, and anyone may ask for a diagnosis).
fn shown(path: &MetricPath) -> String {
    match path.as_str().parse::<actix_web::http::Uri>() {
        Ok(uri) => redacted_target(&uri),
        Err(_) => path
            .as_str()
            .split('?')
            .next()
            .unwrap_or_default()
            .to_string(),
    }
}

/// The reason, a one-line explanation and the next thing to check for a failed scrape.
fn failure_of(
    error: &ScrapeError,
    instance: &Instance,
    path: &MetricPath,
    timeout: Duration,
) -> Failure {
    let path = shown(path);
    let (explanation, next_check) = match error {
        ScrapeError::Timeout => (
            format!("no complete answer within {:.1} s", timeout.as_secs_f64()),
            "the instance is slow to write its metrics, or overloaded; Prometheus' \
             scrape_timeout (less scrape.timeout_offset, at most scrape.timeout) is the \
             time each instance gets"
                .to_string(),
        ),
        ScrapeError::Connect(detail) => (
            format!("no connection to {}: {detail}", instance.address),
            "the instance may be stopped, crashing or restarting: check `cf app <app>` for \
             this index; if it was replaced, the route table's age says how fresh the \
             address is"
                .to_string(),
        ),
        ScrapeError::Tls(detail) => (
            format!("the TLS handshake failed: {detail}"),
            format!(
                "the instance's certificate must be valid for {} and signed by a CA \
                 promfetcher trusts (ca_certs)",
                instance
                    .tls_server_name
                    .as_deref()
                    .unwrap_or("its route host")
            ),
        ),
        ScrapeError::Status(code @ (401 | 403)) => (
            format!("HTTP {code}: the instance wants credentials for {path}"),
            "add basic_auth or authorization to your Prometheus job (promfetcher forwards \
             them to every instance); with metrics_auth on, promfetcher keeps Authorization \
             for itself, so the instance needs another way in"
                .to_string(),
        ),
        ScrapeError::Status(404) => (
            format!("HTTP 404: the instance serves nothing at {path}"),
            "set your path with ?metric_path=/your/path, or with `cf create-service \
             promfetcher fetch-app <name> -c '{\"endpoint\":\"/your/path\"}'` and `cf \
             bind-service <app> <name>`"
                .to_string(),
        ),
        ScrapeError::Status(code) if *code < 400 => (
            format!(
                "HTTP {code}: the instance answered {path} with a redirection that is not followed"
            ),
            REDIRECT_HINT.to_string(),
        ),
        ScrapeError::Status(code) if *code < 500 => (
            format!("HTTP {code}: the instance refused the request for {path}"),
            "check what the app requires at that path (headers, method, path)".to_string(),
        ),
        ScrapeError::Status(code) => (
            format!("HTTP {code}: the instance failed while answering {path}"),
            "read the app's log: `cf logs <app> --recent`".to_string(),
        ),
        ScrapeError::Redirect { .. } | ScrapeError::TooManyRedirects { .. } => (
            format!("the instance redirects {path} to another host, or in a loop; not followed"),
            REDIRECT_HINT.to_string(),
        ),
        ScrapeError::TooLarge { limit } => (
            format!("the metrics exceed {limit} bytes after decompression"),
            "the app exposes too many series: drop some, or raise scrape.max_body_size".to_string(),
        ),
        ScrapeError::Read(detail) => (
            format!("the answer broke off: {detail}"),
            "the instance closed the connection while answering: read the app's log, \
             `cf logs <app> --recent`"
                .to_string(),
        ),
    };
    Failure {
        reason: error.reason().label(),
        explanation,
        next_check,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance() -> Instance {
        Instance::new(
            "10.0.0.1:8080",
            &Arc::from("shop.example.com"),
            false,
            None,
            None,
        )
    }

    /// A path with a token in its query (a broker endpoint may have one) is shown masked, on
    /// the page and in every explanation: anyone who reaches promfetcher may ask for a report.
    #[test]
    fn secret_looking_query_values_of_a_path_are_masked() {
        let path = MetricPath::parse("/probe?module=jvm&access_token=s3cret").unwrap();
        assert_eq!(shown(&path), "/probe?module=jvm&access_token=REDACTED");
        let failure = failure_of(
            &ScrapeError::Status(403),
            &instance(),
            &path,
            Duration::from_secs(10),
        );
        let text = format!("{failure:?}");
        assert!(
            text.contains("access_token=REDACTED") && !text.contains("s3cret"),
            "{text}"
        );
        let plain = MetricPath::parse("/metrics").unwrap();
        assert_eq!(shown(&plain), "/metrics");
    }

    #[test]
    fn every_failure_has_its_reason_an_explanation_and_a_next_check() {
        let path = MetricPath::default_path();
        let cases = [
            (ScrapeError::Timeout, "timeout", "9.5 s"),
            (
                ScrapeError::Connect("refused".into()),
                "connect",
                "10.0.0.1:8080",
            ),
            (
                ScrapeError::Tls("bad certificate".into()),
                "tls",
                "bad certificate",
            ),
            (ScrapeError::Status(304), "redirect", "not followed"),
            (ScrapeError::Status(401), "http_4xx", "credentials"),
            (ScrapeError::Status(404), "http_4xx", "nothing at /metrics"),
            (ScrapeError::Status(418), "http_4xx", "refused"),
            (ScrapeError::Status(503), "http_5xx", "HTTP 503"),
            (
                ScrapeError::Redirect {
                    location: "https://login.example/".into(),
                },
                "redirect",
                "redirects",
            ),
            (ScrapeError::TooLarge { limit: 10 }, "too_large", "10 bytes"),
            (ScrapeError::Read("reset".into()), "read", "broke off"),
        ];
        for (error, reason, says) in cases {
            let failure = failure_of(&error, &instance(), &path, Duration::from_millis(9500));
            assert_eq!(failure.reason, reason, "{error:?}");
            assert!(
                failure.explanation.contains(says),
                "{error:?}: {}",
                failure.explanation
            );
            assert!(!failure.next_check.is_empty());
            assert!(!failure.explanation.contains('\n') && !failure.next_check.contains('\n'));
        }
    }

    #[test]
    fn a_redirect_is_explained_without_its_location() {
        let error = ScrapeError::Redirect {
            location: "https://sso.example/login".into(),
        };
        let failure = failure_of(
            &error,
            &instance(),
            &MetricPath::default_path(),
            Duration::ZERO,
        );
        assert!(!failure.explanation.contains("sso.example"));
    }
}
