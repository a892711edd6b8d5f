//! The fan-out for one app: scrape every instance, and each external exporter once per app of the
//! answer, concurrently (bounded by one global limit on requests), turn each failure into a
//! bounded-reason error sample instead of failing the answer, and merge everything into one
//! exposition. Exporters never see the caller's headers. It decides nothing about HTTP status
//! codes beyond reporting that every instance answered 404 and no exporter sent samples.
//! `diagnosis` reports on the same scrape instance by instance instead of merging, shared by
//! identical diagnoses and at most once per app in a while.

pub mod coalesce;
pub mod diagnosis;
pub mod external_exporters;
pub mod gzip;
pub mod merge_pool;

use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus::{Histogram, HistogramOpts, IntCounterVec, Opts, Registry};
use tokio::sync::Semaphore;

use crate::fanout::coalesce::{Coalescer, Role};
use crate::fanout::diagnosis::{Diagnosed, DiagnosisLimiter};
use crate::fanout::external_exporters::{ExternalExporter, EXPORTER_LABEL};
use crate::fanout::gzip::{Answer, GzipWriter};
use crate::fanout::merge_pool::{JobPanicked, MergePool};
use crate::own_metrics::registered;
use crate::routes::{Instance, Instances, APP_LABEL_NAMES, INDEX_LABEL_NAMES};
use crate::scrape::metric_path::MetricPath;
use crate::scrape::{
    FailureReason, ScrapeError, ScrapeRequest, ScrapeResponse, ScrapeTarget, Scraper,
};
use crate::store::AppPaths;
use exposition::{self, InputFormat, MergeStats, Negotiated, Source};

/// The smallest per-instance timeout we use, whatever the caller announces.
const MIN_INSTANCE_TIMEOUT: Duration = Duration::from_millis(100);

/// How the fan-out derives per-instance timeouts.
#[derive(Debug, Clone)]
pub struct FanOutSettings {
    /// Upper bound of one instance request (config `scrape.timeout`).
    pub max_timeout: Duration,
    /// Taken off the caller's announced timeout (config `scrape.timeout_offset`).
    pub timeout_offset: Duration,
    /// Instance requests in flight at once, over all callers.
    pub max_concurrent_requests: usize,
    /// Least time between two diagnosis scrapes of one app (config `scrape.diagnosis_interval`).
    pub diagnosis_interval: Duration,
    /// Largest merged answer before compression (config `scrape.max_answer_size`).
    pub max_answer_bytes: usize,
}

/// One merged-answer request. It owns its parts so that callers asking for the same answer at
/// the same time can share one fan-out.
pub struct FanOutRequest {
    pub instances: Instances,
    /// The path asked for (`metric_path` or `/metrics`), used for apps without a broker path.
    pub path: MetricPath,
    /// Paths set through the service broker; an app's path there wins over `path`.
    pub app_paths: Arc<AppPaths>,
    /// Caller headers already filtered by [`crate::scrape::forwardable_headers`].
    pub forwarded: http::HeaderMap,
    /// The caller's `X-Prometheus-Scrape-Timeout-Seconds`, when sent.
    pub caller_timeout: Option<Duration>,
    pub forwarded_proto: String,
    pub forwarded_for: Option<String>,
    /// The format of the merged answer and how it writes names that are not legacy names
    /// (negotiated from the caller's `Accept`).
    pub output: Negotiated,
    /// Whether the external exporters are asked too (`.../metrics`, not `.../only-app-metrics`).
    pub with_exporters: bool,
    /// The caller accepts gzip: the answer is compressed as it is merged (callers sharing it
    /// that do not accept gzip get it decompressed).
    pub gzip: bool,
}

impl FanOutRequest {
    /// The path scraped on `instance`: its app's broker path, else the path asked for.
    pub fn path_for(&self, instance: &Instance) -> &MetricPath {
        self.app_paths
            .path_for(&instance.identity.app.app_id)
            .unwrap_or(&self.path)
    }
}

/// What makes two requests ask for the same answer: the same resolved instances and broker
/// paths (compared by snapshot identity, which the key keeps alive), path, format, per-instance
/// timeout, scheme, whether exporters are asked, and every forwarded header, so that callers with
/// different credentials never share. `X-Forwarded-For` and `User-Agent` are left out: a joined caller's instances see the
/// first caller's.
#[derive(Clone)]
struct SharingKey {
    instances: Instances,
    app_paths: Arc<AppPaths>,
    path: MetricPath,
    output: Negotiated,
    timeout: Duration,
    forwarded_proto: String,
    with_exporters: bool,
    forwarded: Vec<(http::HeaderName, http::HeaderValue)>,
}

impl SharingKey {
    fn of(request: &FanOutRequest, timeout: Duration) -> SharingKey {
        let mut forwarded: Vec<_> = request
            .forwarded
            .iter()
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        // A stable order, keeping repeated headers' own order.
        forwarded.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        SharingKey {
            instances: request.instances.clone(),
            app_paths: request.app_paths.clone(),
            path: request.path.clone(),
            output: request.output,
            timeout,
            forwarded_proto: request.forwarded_proto.clone(),
            with_exporters: request.with_exporters,
            forwarded,
        }
    }
}

impl PartialEq for SharingKey {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.instances, &other.instances)
            && Arc::ptr_eq(&self.app_paths, &other.app_paths)
            && self.path == other.path
            && self.output == other.output
            && self.timeout == other.timeout
            && self.forwarded_proto == other.forwarded_proto
            && self.with_exporters == other.with_exporters
            && self.forwarded == other.forwarded
    }
}

impl Eq for SharingKey {}

impl std::hash::Hash for SharingKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        std::ptr::hash(Arc::as_ptr(&self.instances) as *const Instance, state);
        std::ptr::hash(Arc::as_ptr(&self.app_paths), state);
        self.path.hash(state);
        self.output.hash(state);
        self.timeout.hash(state);
        self.forwarded_proto.hash(state);
        self.with_exporters.hash(state);
        self.forwarded.hash(state);
    }
}

/// What the fan-out produced.
#[derive(Debug)]
pub enum FanOutResult {
    /// The merged exposition in the requested format (all instances, failures included as
    /// error samples).
    Merged {
        /// The merged exposition, plain or gzipped; the other form is made once on demand.
        answer: Answer,
        stats: MergeStats,
        /// Instances that failed (their error samples are in the body).
        failed_instances: usize,
    },
    /// Every instance answered 404 and no exporter sent samples: the app serves no metrics at
    /// that path.
    NoInstanceServesPath,
    /// Merging the answers panicked: a bug in promfetcher, told to the caller as one.
    MergeFailed(JobPanicked),
}

/// What [`FanOut::merge`] made of the targets' results.
struct Merged {
    answer: Answer,
    stats: MergeStats,
    /// Instances that failed (unparsable bodies included); exporters are not counted.
    failed_instances: usize,
    /// Samples the exporters sent.
    exporter_samples: usize,
}

/// One thing asked for metrics for an answer.
enum Target<'a> {
    Instance(&'a Instance),
    /// An exporter asked about the app of `app` (one of the app's instances).
    Exporter {
        exporter: &'a ExternalExporter,
        app: &'a Instance,
        url: url::Url,
    },
}

impl Target<'_> {
    /// The labels appended to the target's samples: an instance's nine, or an exporter's app
    /// labels plus its name.
    fn labels(&self) -> Vec<(&str, &str)> {
        match self {
            Target::Instance(instance) => instance.labels().to_vec(),
            Target::Exporter { exporter, app, .. } => {
                let mut labels = app.labels()[..APP_LABEL_NAMES.len()].to_vec();
                labels.push((EXPORTER_LABEL, exporter.name()));
                labels
            }
        }
    }

    /// What the target sent, parsed and without promfetcher's own status families, or why
    /// there is nothing.
    fn parsed<'b>(
        &self,
        result: &'b TargetResult,
    ) -> (Option<exposition::Exposition<'b>>, Option<FailureReason>) {
        let (body, format) = match result {
            TargetResult::Scraped { body, format } => (body, *format),
            TargetResult::Failed { reason, .. } => return (None, Some(*reason)),
        };
        match parse_target_body(body, format) {
            Ok((parsed, status_families_left_out)) => {
                if status_families_left_out > 0 {
                    self.log_failure(
                        &STATUS_FAMILIES.join(", "),
                        None,
                        "sent promfetcher's own per-target series; they were left out",
                    );
                }
                (Some(parsed), None)
            }
            Err(error) => {
                self.log_failure(
                    &error,
                    Some(FailureReason::Parse),
                    "sent an exposition that does not parse",
                );
                (None, Some(FailureReason::Parse))
            }
        }
    }

    /// Logs what went wrong with the target; `reason` is the failure it counts as, if any.
    fn log_failure(
        &self,
        error: &dyn std::fmt::Display,
        reason: Option<FailureReason>,
        what: &str,
    ) {
        let reason = reason.map(FailureReason::label);
        match self {
            Target::Instance(instance) => tracing::warn!(
                instance = %instance.address,
                app = %app_name_of(instance),
                reason,
                %error,
                "instance {what}"
            ),
            Target::Exporter { exporter, app, .. } => tracing::warn!(
                external_exporter = exporter.name(),
                location = %exporter.location(),
                app = %app_name_of(app),
                reason,
                %error,
                "external exporter {what}"
            ),
        }
    }
}

/// How one target went, kept until the merge.
enum TargetResult {
    Scraped {
        body: bytes::Bytes,
        format: InputFormat,
    },
    Failed {
        reason: FailureReason,
        /// The instance answered 404: nothing served at the path.
        not_found: bool,
    },
}

/// Scrapes all instances of an app (and the external exporters about it) and merges their
/// expositions.
pub struct FanOut {
    scraper: Scraper,
    exporters: Vec<ExternalExporter>,
    /// Fan-outs in progress, joined by identical requests.
    running: Coalescer<SharingKey, Arc<FanOutResult>>,
    /// Diagnoses in progress, joined by identical diagnoses.
    diagnoses: Coalescer<SharingKey, Diagnosed>,
    /// When each app was last scraped for a diagnosis.
    diagnosis_limiter: DiagnosisLimiter,
    permits: Arc<Semaphore>,
    /// Where bodies are parsed and merged: one thread per core, the others wait in order. More
    /// at once would only share the cores while each holds its parsed bodies and a growing answer.
    merges: MergePool,
    settings: FanOutSettings,
    metrics: FanOutMetrics,
}

impl FanOut {
    pub fn new(
        scraper: Scraper,
        exporters: Vec<ExternalExporter>,
        settings: FanOutSettings,
        registry: &Registry,
    ) -> prometheus::Result<Self> {
        Ok(FanOut {
            scraper,
            exporters,
            running: Coalescer::default(),
            diagnoses: Coalescer::default(),
            diagnosis_limiter: DiagnosisLimiter::new(settings.diagnosis_interval),
            permits: Arc::new(Semaphore::new(settings.max_concurrent_requests)),
            merges: MergePool::per_core(),
            metrics: FanOutMetrics::register(registry)?,
            settings,
        })
    }

    /// The per-instance timeout for a caller that announced `caller_timeout`.
    pub fn instance_timeout(&self, caller_timeout: Option<Duration>) -> Duration {
        let wanted = match caller_timeout {
            Some(caller) if caller > self.settings.timeout_offset * 2 => {
                caller - self.settings.timeout_offset
            }
            Some(caller) => caller / 2,
            None => self.settings.max_timeout,
        };
        wanted.clamp(
            MIN_INSTANCE_TIMEOUT,
            self.settings.max_timeout.max(MIN_INSTANCE_TIMEOUT),
        )
    }

    /// Answers `request`, joining an identical fan-out already running instead of starting one.
    pub async fn run(self: &Arc<Self>, request: FanOutRequest) -> Arc<FanOutResult> {
        let timeout = self.instance_timeout(request.caller_timeout);
        let fan_out = self.clone();
        let (result, role) = self
            .running
            .run(SharingKey::of(&request, timeout), move || async move {
                Arc::new(fan_out.scrape_and_merge(&request, timeout).await)
            })
            .await;
        if role == Role::Joined {
            self.metrics.coalesced.inc();
        }
        result
    }

    async fn scrape_and_merge(
        self: Arc<Self>,
        request: &FanOutRequest,
        timeout: Duration,
    ) -> FanOutResult {
        let started = Instant::now();
        let targets = self.targets(&request.instances, request.with_exporters);
        let scrapes = targets
            .iter()
            .map(|target| self.scrape_one(target, request, timeout));
        let results = futures_util::future::join_all(scrapes).await;

        let (instance_results, exporter_results) = results.split_at(request.instances.len());
        let all_404 = !instance_results.is_empty()
            && instance_results.iter().all(|(result, _)| {
                matches!(
                    result,
                    TargetResult::Failed {
                        not_found: true,
                        ..
                    }
                )
            });
        let exporter_answered = exporter_results
            .iter()
            .any(|(result, _)| matches!(result, TargetResult::Scraped { .. }));
        // Every instance answering 404 means "no metrics at that path", unless an exporter
        // still sent samples about the app.
        if all_404 && !exporter_answered {
            for (target, (result, _)) in targets.iter().zip(&results) {
                self.record_outcome(target, target.parsed(result).1);
            }
            self.metrics
                .fan_out_duration
                .observe(started.elapsed().as_secs_f64());
            return FanOutResult::NoInstanceServesPath;
        }
        // Parsing and merging 100 bodies is CPU work: off the HTTP workers, so that they keep
        // reading requests meanwhile (under load, a worker busy merging let connections time
        // out with 408 before their request was read).
        let (fan_out, instances) = (self.clone(), request.instances.clone());
        let (with_exporters, output, gzip) = (request.with_exporters, request.output, request.gzip);
        let merged = self
            .merges
            .run(move || {
                let targets = fan_out.targets(&instances, with_exporters);
                fan_out.merge(&targets, results, output, gzip)
            })
            .await;
        self.metrics
            .fan_out_duration
            .observe(started.elapsed().as_secs_f64());
        let Merged {
            answer,
            stats,
            failed_instances,
            exporter_samples,
        } = match merged {
            Ok(merged) => merged,
            Err(panicked) => return FanOutResult::MergeFailed(panicked),
        };
        if all_404 && exporter_samples == 0 {
            return FanOutResult::NoInstanceServesPath;
        }
        self.metrics.count_merge(&stats);
        FanOutResult::Merged {
            answer,
            stats,
            failed_instances,
        }
    }

    /// What a fan-out over `instances` scrapes, instances first, in the same order every time.
    fn targets<'a>(
        &'a self,
        instances: &'a [Arc<Instance>],
        with_exporters: bool,
    ) -> Vec<Target<'a>> {
        let mut targets: Vec<Target<'_>> = instances
            .iter()
            .map(|instance| Target::Instance(instance))
            .collect();
        if with_exporters {
            targets.extend(self.exporter_targets(instances));
        }
        targets
    }

    /// Each exporter once for each app among `instances` (a route can lead to several apps),
    /// asked about that app. Endpoints without Cloud Foundry tags (routing-API routes) name no
    /// app, so no exporter is asked about them.
    fn exporter_targets<'a>(&'a self, instances: &'a [Arc<Instance>]) -> Vec<Target<'a>> {
        let mut apps: Vec<&Instance> = Vec::new();
        for instance in instances.iter().map(|instance| &**instance) {
            if !instance.identity.app.app_id.is_empty()
                && !apps
                    .iter()
                    .any(|app| app.identity.app.app_id == instance.identity.app.app_id)
            {
                apps.push(instance);
            }
        }
        apps.iter()
            .flat_map(|app| {
                self.exporters.iter().map(|exporter| Target::Exporter {
                    exporter,
                    app,
                    url: exporter.url_for(&app.identity),
                })
            })
            .collect()
    }

    async fn scrape_one(
        &self,
        target: &Target<'_>,
        request: &FanOutRequest,
        timeout: Duration,
    ) -> (TargetResult, Duration) {
        let (outcome, elapsed) = self.fetch(target, request, timeout).await;
        let result = match outcome {
            Ok(response) => {
                let format = InputFormat::detect(response.content_type.as_deref(), &response.body);
                TargetResult::Scraped {
                    body: response.body,
                    format,
                }
            }
            Err(error) => {
                target.log_failure(&error, Some(error.reason()), "scrape failed");
                TargetResult::Failed {
                    reason: error.reason(),
                    not_found: matches!(error, ScrapeError::Status(404)),
                }
            }
        };
        (result, elapsed)
    }

    /// Sends one target's request under the global limit on requests in flight, within
    /// `timeout` (waiting for a permit included), and says how long it took.
    async fn fetch(
        &self,
        target: &Target<'_>,
        request: &FanOutRequest,
        timeout: Duration,
    ) -> (Result<ScrapeResponse, ScrapeError>, Duration) {
        let started = Instant::now();
        let no_headers = http::HeaderMap::new();
        let outcome = match tokio::time::timeout(timeout, self.permits.acquire()).await {
            // waiting for a permit used up the target's time (the semaphore is never closed)
            Err(_) | Ok(Err(_)) => Err(ScrapeError::Timeout),
            Ok(Ok(_permit)) => {
                let remaining = timeout.saturating_sub(started.elapsed());
                let scrape = match target {
                    Target::Instance(instance) => ScrapeRequest {
                        target: ScrapeTarget::Instance {
                            instance,
                            path: request.path_for(instance),
                        },
                        forwarded: &request.forwarded,
                        timeout: remaining,
                        forwarded_proto: &request.forwarded_proto,
                        forwarded_for: request.forwarded_for.as_deref(),
                    },
                    // A third party: none of the caller's headers (credentials) nor address.
                    Target::Exporter { url, .. } => ScrapeRequest {
                        target: ScrapeTarget::Url(url),
                        forwarded: &no_headers,
                        timeout: remaining,
                        forwarded_proto: &request.forwarded_proto,
                        forwarded_for: None,
                    },
                };
                self.scraper.scrape(&scrape).await
            }
        };
        (outcome, started.elapsed())
    }

    /// Leaves out of the merge the targets whose samples would make the answer larger than
    /// `scrape.max_answer_size`, largest first (an app whose series exploded must not exhaust
    /// promfetcher's memory): each counts as failed with `too_large`, and is logged.
    fn leave_out_what_overflows<'b>(
        &self,
        targets: &[Target<'_>],
        results: &[(TargetResult, Duration)],
        labels: &[Vec<(&str, &str)>],
        parsed: &mut [(Option<exposition::Exposition<'b>>, Option<FailureReason>)],
    ) {
        let limit = self.settings.max_answer_bytes;
        let shares: Vec<(usize, usize)> = parsed
            .iter()
            .zip(results)
            .zip(labels)
            .enumerate()
            .filter_map(|(index, (((app, _), (result, _)), labels))| {
                let TargetResult::Scraped { body, .. } = result else {
                    return None;
                };
                let source = Source {
                    exposition: app.as_ref()?,
                    labels,
                };
                Some((index, answer_share(body, &source)))
            })
            .collect();
        for over in over_the_answer_limit(shares, limit) {
            parsed[over.index] = (None, Some(FailureReason::TooLarge));
            targets[over.index].log_failure(
                &over,
                Some(FailureReason::TooLarge),
                "left out of the answer",
            );
        }
    }

    /// Counts one target's scrape in the instance or exporter counters.
    fn record_outcome(&self, target: &Target<'_>, failure: Option<FailureReason>) {
        match target {
            Target::Instance(instance) => self.metrics.record(instance, failure),
            Target::Exporter { exporter, .. } => self.metrics.record_exporter(exporter, failure),
        }
    }

    /// Parses what each target sent and merges it with the per-target status samples.
    fn merge(
        &self,
        targets: &[Target<'_>],
        results: Vec<(TargetResult, Duration)>,
        output: Negotiated,
        gzip: bool,
    ) -> Merged {
        // Status expositions (promfetcher_up, duration, error) are written as text and parsed
        // like any instance's body, so one merge path handles everything.
        let mut status_bodies = Vec::with_capacity(results.len());
        let mut parsed_apps = Vec::with_capacity(results.len());
        let (mut failed_instances, mut exporter_samples, mut merged_body_bytes) = (0, 0, 0);
        let labels: Vec<Vec<(&str, &str)>> = targets.iter().map(Target::labels).collect();
        let mut parsed: Vec<_> = targets
            .iter()
            .zip(&results)
            .map(|(target, (result, _))| target.parsed(result))
            .collect();
        self.leave_out_what_overflows(targets, &results, &labels, &mut parsed);
        for ((target, (app, failure)), (result, elapsed)) in
            targets.iter().zip(parsed).zip(&results)
        {
            self.record_outcome(target, failure);
            if let (Some(_), TargetResult::Scraped { body, .. }) = (&app, result) {
                merged_body_bytes += body.len();
            }
            match target {
                Target::Instance(_) => failed_instances += usize::from(failure.is_some()),
                Target::Exporter { .. } => {
                    exporter_samples += app.as_ref().map_or(0, |a| a.sample_count());
                }
            }
            status_bodies.push(status_exposition(failure, *elapsed));
            parsed_apps.push(app);
        }

        let status_parsed: Vec<_> = status_bodies
            .iter()
            .map(|body| exposition::parse(body.as_bytes(), InputFormat::Text))
            .collect();
        let mut sources = Vec::with_capacity(targets.len() * 2);
        for (i, label_set) in labels.iter().enumerate() {
            if let Some(app) = &parsed_apps[i] {
                sources.push(Source {
                    exposition: app,
                    labels: label_set,
                });
            }
            match &status_parsed[i] {
                Ok(status) => sources.push(Source {
                    exposition: status,
                    labels: label_set,
                }),
                Err(error) => tracing::error!(%error, "internal status exposition does not parse"),
            }
        }
        let estimated = estimated_answer_bytes(merged_body_bytes, &status_bodies, &sources);
        let (answer, stats) = if gzip {
            let mut writer = GzipWriter::new(estimated);
            let mut part = GzipWriter::part_buffer();
            let stats = exposition::merge_in_parts(&sources, output, &mut part, |written| {
                writer.take(written)
            });
            (Answer::gzipped(writer.finish(&part)), stats)
        } else {
            // Reserving the whole answer up front keeps a large answer from being copied at
            // each doubling of the buffer, which at 100 × 2,000 series held two copies of it.
            let mut body = Vec::with_capacity(estimated);
            let stats = exposition::merge(&sources, output, &mut body);
            (Answer::plain(body.into()), stats)
        };
        Merged {
            answer,
            stats,
            failed_instances,
            exporter_samples,
        }
    }
}

/// Parses what a target sent and leaves out the families of [`STATUS_FAMILIES`]; says how
/// many there were to leave out.
fn parse_target_body(
    body: &[u8],
    format: InputFormat,
) -> Result<(exposition::Exposition<'_>, usize), exposition::ParseError> {
    let mut parsed = exposition::parse(body, format)?;
    let sent = parsed.families.len();
    parsed
        .families
        .retain(|f| !STATUS_FAMILIES.contains(&f.name));
    let left_out = sent - parsed.families.len();
    Ok((parsed, left_out))
}

/// The families of [`status_exposition`]: promfetcher's alone, so an instance's or exporter's
/// own families of these names are left out (they would spoof or duplicate the real ones).
const STATUS_FAMILIES: [&str; 3] = [
    "promfetcher_up",
    "promfetcher_scrape_duration_seconds",
    "promfetcher_scrape_error",
];

/// About how large the merged answer of `sources` will be (the bodies merged, `bodies` bytes,
/// and the status bodies), with a margin.
fn estimated_answer_bytes(
    bodies: usize,
    status_bodies: &[String],
    sources: &[Source<'_>],
) -> usize {
    let estimated = bodies + status_bodies.iter().map(String::len).sum::<usize>();
    let estimated = estimated + sources.iter().map(added_label_bytes).sum::<usize>();
    estimated + estimated / 64 + 4096
}

/// A target left out of a merged answer that would otherwise be over `scrape.max_answer_size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverAnswerLimit {
    /// The target's place among those of the answer.
    pub index: usize,
    /// About how large the answer would have been with it (and those left out after it).
    pub answer_bytes: usize,
    pub limit: usize,
}

impl std::fmt::Display for OverAnswerLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "its samples would make the merged answer about {} MiB with the others', over \
             scrape.max_answer_size ({} MiB)",
            self.answer_bytes >> 20,
            self.limit >> 20
        )
    }
}

/// Of `shares` (each target's index and share of the answer, see [`answer_share`]), those to
/// leave out so that the rest fit in `limit`: the largest first.
fn over_the_answer_limit(mut shares: Vec<(usize, usize)>, limit: usize) -> Vec<OverAnswerLimit> {
    let mut total: usize = shares.iter().map(|(_, share)| share).sum();
    shares.sort_by_key(|&(_, share)| std::cmp::Reverse(share));
    let mut left_out = Vec::new();
    for (index, share) in shares {
        if total <= limit {
            break;
        }
        left_out.push(OverAnswerLimit {
            index,
            answer_bytes: total,
            limit,
        });
        total -= share;
    }
    left_out
}

/// About how many bytes a target whose body is `body` adds to the merged answer as `source`.
fn answer_share(body: &[u8], source: &Source<'_>) -> usize {
    body.len() + added_label_bytes(source)
}

/// About how many bytes the merge adds to `source`'s body: its labels on every sample.
fn added_label_bytes(source: &Source<'_>) -> usize {
    let per_sample: usize = source
        .labels
        .iter()
        .map(|(name, value)| name.len() + value.len() + 4) // ,name="value"
        .sum();
    source.exposition.sample_count() * (per_sample + 2) // {} when the sample had no labels
}

/// The per-target samples promfetcher adds: up, scrape duration and, on failure, the reason.
fn status_exposition(failure: Option<FailureReason>, elapsed: Duration) -> String {
    let mut text = String::with_capacity(512);
    text.push_str(
        "# HELP promfetcher_up Whether promfetcher could scrape this instance or external exporter (1) or not (0).\n\
         # TYPE promfetcher_up gauge\n",
    );
    text.push_str(if failure.is_some() {
        "promfetcher_up 0\n"
    } else {
        "promfetcher_up 1\n"
    });
    text.push_str(
        "# HELP promfetcher_scrape_duration_seconds How long scraping this instance or external exporter took.\n\
         # TYPE promfetcher_scrape_duration_seconds gauge\n",
    );
    text.push_str(&format!(
        "promfetcher_scrape_duration_seconds {}\n",
        elapsed.as_secs_f64()
    ));
    if let Some(reason) = failure {
        text.push_str(
            "# HELP promfetcher_scrape_error Promfetcher could not scrape this instance or external exporter; the error label says why.\n\
             # TYPE promfetcher_scrape_error gauge\n",
        );
        text.push_str(&format!(
            "promfetcher_scrape_error{{error=\"{reason}\"}} 1\n"
        ));
    }
    text
}

fn app_name_of(instance: &Instance) -> String {
    let id = &instance.identity.app;
    if id.app_name.is_empty() {
        instance.host.to_string()
    } else {
        format!("{}/{}/{}", id.organization_name, id.space_name, id.app_name)
    }
}

/// The fan-out's own metrics, with the original's names and label sets first.
struct FanOutMetrics {
    /// `promfetch_metric_fetch_failed_total`, per instance (the original's labels).
    fetch_failed: IntCounterVec,
    /// `promfetch_metric_fetch_success_total`, per app (the original's labels).
    fetch_success: IntCounterVec,
    instance_scrapes: IntCounterVec,
    exporter_scrapes: IntCounterVec,
    fan_out_duration: Histogram,
    type_conflicts: prometheus::IntCounter,
    duplicate_series: prometheus::IntCounter,
    invalid_for_format: prometheus::IntCounter,
    coalesced: prometheus::IntCounter,
}

impl FanOutMetrics {
    fn register(registry: &Registry) -> prometheus::Result<Self> {
        let counter =
            |name: &str, help: &str| registered(registry, prometheus::IntCounter::new(name, help)?);
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            registered(registry, IntCounterVec::new(Opts::new(name, help), labels)?)
        };
        Ok(FanOutMetrics {
            fetch_failed: counter_vec(
                "promfetch_metric_fetch_failed_total",
                "Instance scrapes that failed.",
                INDEX_LABEL_NAMES,
            )?,
            fetch_success: counter_vec(
                "promfetch_metric_fetch_success_total",
                "Instance scrapes that succeeded, summed per app.",
                APP_LABEL_NAMES,
            )?,
            instance_scrapes: counter_vec(
                "promfetcher_instance_scrapes_total",
                "Instance scrapes by outcome: success or the error reason.",
                &["outcome"],
            )?,
            exporter_scrapes: counter_vec(
                "promfetcher_external_exporter_scrapes_total",
                "External exporter scrapes by exporter and outcome: success or the error reason.",
                &[EXPORTER_LABEL, "outcome"],
            )?,
            fan_out_duration: registered(
                registry,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "promfetcher_fan_out_duration_seconds",
                        "Time to scrape all instances of an app and merge their answers.",
                    )
                    .buckets(vec![
                        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                    ]),
                )?,
            )?,
            type_conflicts: counter(
                "promfetcher_merge_type_conflicts_total",
                "Instance families whose declared type differed from the one most instances declared; their samples were dropped.",
            )?,
            duplicate_series: counter(
                "promfetcher_merge_duplicate_series_total",
                "Series an instance sent twice; the repeats were dropped.",
            )?,
            invalid_for_format: counter(
                "promfetcher_merge_openmetrics_dropped_total",
                "Instance families left out of OpenMetrics answers because they break an OpenMetrics rule.",
            )?,
            coalesced: counter(
                "promfetcher_coalesced_requests_total",
                "Merged-metrics requests answered by joining an identical fan-out already running.",
            )?,
        })
    }

    /// Counts what a merge left out.
    fn count_merge(&self, stats: &MergeStats) {
        self.type_conflicts.inc_by(stats.type_conflicts as u64);
        self.duplicate_series.inc_by(stats.duplicate_series as u64);
        self.invalid_for_format
            .inc_by(stats.invalid_for_format as u64);
    }

    fn record(&self, instance: &Instance, failure: Option<FailureReason>) {
        let labels = instance.label_values();
        match failure {
            None => {
                self.fetch_success
                    .with_label_values(&labels[..APP_LABEL_NAMES.len()])
                    .inc();
                self.instance_scrapes.with_label_values(&["success"]).inc();
            }
            Some(reason) => {
                self.fetch_failed
                    .with_label_values(&labels[..INDEX_LABEL_NAMES.len()])
                    .inc();
                self.instance_scrapes
                    .with_label_values(&[reason.label()])
                    .inc();
            }
        }
    }

    fn record_exporter(&self, exporter: &ExternalExporter, failure: Option<FailureReason>) {
        let outcome = failure.map_or("success", FailureReason::label);
        self.exporter_scrapes
            .with_label_values(&[exporter.name(), outcome])
            .inc();
    }
}
