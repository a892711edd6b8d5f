//! The fan-out's report on one app instead of its merged answer: every instance is scraped just
//! as for `.../metrics` (same path choice, headers, global limit on requests and timeout), its
//! body is parsed as the merge would parse it, and what happened is kept per instance: status,
//! content type, format, size, counts, duration or the failure. It keeps no body and no header
//! value beyond the content type's media type; what to tell a user about a failure is the HTTP
//! layer's business. The valid answers are merged (and the result thrown away) in both output
//! formats to count what the merge would drop: type conflicts, repeated series, families left out
//! of OpenMetrics, families named like promfetcher's own (the instances' answers only). Each
//! external exporter is asked about each app, as for `.../metrics` (without the caller's
//! headers), and reported on beside the instances.
//!
//! Diagnoses that ask the same thing at the same time (same instances, paths, timeout and
//! forwarded headers, as for merged answers) share one scrape; and an app is scraped for a
//! diagnosis at most once per `scrape.diagnosis_interval`, so that the report cannot be used to
//! hammer an app's instances. A diagnosis asked sooner is refused with the time left.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use exposition::{InputFormat, OutputFormat, ParseError, Source};

use super::merge_pool::JobPanicked;
use super::{
    answer_share, over_the_answer_limit, parse_target_body, FanOut, FanOutRequest, OverAnswerLimit,
    SharingKey, Target,
};
use crate::routes::Instance;
use crate::scrape::metric_path::MetricPath;
use crate::scrape::{ScrapeError, ScrapeResponse};

/// Longest content type kept in a report; a longer one is cut.
const MAX_CONTENT_TYPE_LEN: usize = 100;

/// How scraping one instance went.
#[derive(Debug)]
pub struct InstanceReport {
    pub instance: Arc<Instance>,
    /// The path it was asked for.
    pub path: MetricPath,
    pub duration: Duration,
    pub outcome: InstanceOutcome,
}

/// What one instance answered.
#[derive(Debug)]
pub enum InstanceOutcome {
    /// A 2xx answer; `parsed` says whether the body is a valid exposition.
    Answered {
        status: u16,
        /// The media type of the instance's `Content-Type` (parameters left out), when sent.
        content_type: Option<String>,
        format: InputFormat,
        /// The body's size after decompression.
        bytes: usize,
        parsed: Result<Counts, ParseError>,
    },
    /// No usable answer: the scrape itself failed.
    Failed(ScrapeError),
}

/// What a valid exposition held, as the merge would take it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub families: usize,
    pub samples: usize,
    /// Families named like promfetcher's own per-instance series the instance sent; they were
    /// left out (and are not counted).
    pub status_families_left_out: usize,
    /// The merged answer leaves the instance out: with it, it would be over
    /// `scrape.max_answer_size`.
    pub over_answer_limit: Option<OverAnswerLimit>,
}

/// The report on every instance, shared by the diagnoses that asked for it at the same time, or
/// why there is none.
pub type Diagnosed = Result<Arc<Report>, NoReport>;

/// Why a diagnosis has no report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoReport {
    /// The app was scraped for a diagnosis too recently.
    TooSoon(TooSoon),
    /// Reading the answers panicked: a bug in promfetcher.
    Failed(JobPanicked),
}

impl From<TooSoon> for NoReport {
    fn from(too_soon: TooSoon) -> Self {
        NoReport::TooSoon(too_soon)
    }
}

/// What a diagnosis found: each instance, what merging their answers would drop, and each
/// external exporter asked about the app.
#[derive(Debug)]
pub struct Report {
    pub instances: Vec<InstanceReport>,
    pub merge: MergeDrops,
    pub exporters: Vec<ExporterReport>,
}

/// How asking one external exporter about one app went. Its URL is left out: it may carry
/// credentials of the exporter's (query parameters).
#[derive(Debug)]
pub struct ExporterReport {
    /// The exporter's configured name.
    pub exporter: String,
    /// The app it was asked about.
    pub app_guid: String,
    pub duration: Duration,
    pub outcome: InstanceOutcome,
}

/// What merging the instances' valid answers gives and leaves out, over all instances.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct MergeDrops {
    /// Families and samples of the merged text answer (without promfetcher's status series).
    pub families: usize,
    pub samples: usize,
    /// Instance families dropped because they declare another type than most instances do.
    pub type_conflicts: usize,
    /// Samples dropped because the same instance sent that series before.
    pub duplicate_series: usize,
    /// Instance families left out of an OpenMetrics answer (which Prometheus 2.5x and later
    /// ask for) because they break an OpenMetrics rule.
    pub left_out_of_openmetrics: usize,
    /// Families named like promfetcher's own per-instance series, left out.
    pub promfetcher_families: usize,
}

/// The app was scraped for a diagnosis less than `scrape.diagnosis_interval` ago.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooSoon {
    /// When the next diagnosis scrape of the app is allowed.
    pub retry_after: Duration,
}

impl FanOut {
    /// Scrapes every instance of `request` and asks every external exporter about its app, then
    /// reports on each, instances in their order; joins an identical diagnosis already running
    /// instead, and refuses to start a scrape of an app diagnosed less than the interval ago.
    pub async fn diagnose(self: &Arc<Self>, request: FanOutRequest) -> Diagnosed {
        let timeout = self.instance_timeout(request.caller_timeout);
        let key = SharingKey::of(&request, timeout);
        let fan_out = self.clone();
        let (diagnosed, _role) = self
            .diagnoses
            .run(key, move || {
                let admitted = fan_out.diagnosis_limiter.admit(&request.instances);
                async move {
                    admitted?;
                    let report = fan_out.scrape_for_report(&request, timeout).await;
                    report.map(Arc::new).map_err(NoReport::Failed)
                }
            })
            .await;
        diagnosed
    }

    async fn scrape_for_report(
        self: Arc<Self>,
        request: &FanOutRequest,
        timeout: Duration,
    ) -> Result<Report, JobPanicked> {
        let targets: Vec<Target<'_>> = request
            .instances
            .iter()
            .map(|instance| Target::Instance(instance))
            .collect();
        let fetches = targets
            .iter()
            .map(|target| self.fetch(target, request, timeout));
        let exporter_targets = self.exporter_targets(&request.instances);
        let exporter_fetches = exporter_targets
            .iter()
            .map(|target| self.fetch(target, request, timeout));
        let (fetched, exporters_fetched) = futures_util::future::join(
            futures_util::future::join_all(fetches),
            futures_util::future::join_all(exporter_fetches),
        )
        .await;
        let exporters: Vec<AskedExporter> = exporter_targets
            .iter()
            .zip(exporters_fetched)
            .filter_map(|(target, (outcome, duration))| match target {
                Target::Exporter { exporter, app, .. } => Some(AskedExporter {
                    exporter: exporter.name().to_string(),
                    app_guid: app.identity.app.app_id.to_string(),
                    duration,
                    outcome,
                }),
                Target::Instance(_) => None,
            })
            .collect();
        let instances = request.instances.clone();
        let paths: Vec<MetricPath> = instances
            .iter()
            .map(|instance| request.path_for(instance).clone())
            .collect();
        let answer_limit = self.settings.max_answer_bytes;
        // Parsing and merging is CPU work: on the merge pool, as for merged answers.
        self.merges
            .run(move || report_on(&instances, paths, fetched, exporters, answer_limit))
            .await
    }
}

/// An external exporter asked about one app, its answer not read yet.
struct AskedExporter {
    exporter: String,
    app_guid: String,
    duration: Duration,
    outcome: Result<ScrapeResponse, ScrapeError>,
}

impl AskedExporter {
    /// Reads the answer as the merge would.
    fn into_report(self) -> ExporterReport {
        let outcome = match self.outcome {
            Ok(response) => {
                // The limit is told of instances only: an answer that only exporters push over
                // it is not foreseen here.
                let (format, parsed) = read_as_merged(&response);
                answered(&response, format, parsed, None)
            }
            Err(error) => InstanceOutcome::Failed(error),
        };
        ExporterReport {
            exporter: self.exporter,
            app_guid: self.app_guid,
            duration: self.duration,
            outcome,
        }
    }
}

/// Parses what each instance answered, as the merge would, finds those the merge would leave
/// out to stay within `answer_limit`, and merges the other valid answers in both output formats
/// (into a scratch buffer emptied as it goes) to count what the merge would drop; reads the
/// exporters' answers too.
fn report_on(
    instances: &[Arc<Instance>],
    paths: Vec<MetricPath>,
    fetched: Vec<(Result<ScrapeResponse, ScrapeError>, Duration)>,
    exporters: Vec<AskedExporter>,
    answer_limit: usize,
) -> Report {
    let mut durations = Vec::with_capacity(fetched.len());
    let mut responses = Vec::with_capacity(fetched.len());
    let mut errors = Vec::with_capacity(fetched.len());
    for (outcome, duration) in fetched {
        durations.push(duration);
        let (response, error) = match outcome {
            Ok(response) => (Some(response), None),
            Err(error) => (None, Some(error)),
        };
        responses.push(response);
        errors.push(error);
    }
    let parsed: Vec<_> = responses
        .iter()
        .map(|response| response.as_ref().map(read_as_merged))
        .collect();
    let labels: Vec<Vec<(&str, &str)>> = instances.iter().map(|i| i.labels().to_vec()).collect();
    let valid: Vec<(usize, Source<'_>)> = parsed
        .iter()
        .zip(&labels)
        .enumerate()
        .filter_map(|(index, (parsed, labels))| match parsed {
            Some((_, Ok((exposition, _)))) => Some((index, Source { exposition, labels })),
            _ => None,
        })
        .collect();
    let shares = valid
        .iter()
        .filter_map(|(index, source)| {
            let body = &responses[*index].as_ref()?.body;
            Some((*index, answer_share(body, source)))
        })
        .collect();
    let mut over_limit: Vec<Option<OverAnswerLimit>> = vec![None; instances.len()];
    for over in over_the_answer_limit(shares, answer_limit) {
        over_limit[over.index] = Some(over);
    }
    let sources: Vec<Source<'_>> = valid
        .into_iter()
        .filter(|(index, _)| over_limit[*index].is_none())
        .map(|(_, source)| source)
        .collect();
    // Only the counts matter: what is written is thrown away as it goes.
    let mut scratch = Vec::new();
    let text = exposition::merge_in_parts(&sources, OutputFormat::Text, &mut scratch, Vec::clear);
    scratch.clear();
    let openmetrics = exposition::merge_in_parts(
        &sources,
        OutputFormat::OpenMetrics,
        &mut scratch,
        Vec::clear,
    );
    let merge = MergeDrops {
        families: text.families,
        samples: text.samples,
        type_conflicts: text.type_conflicts,
        duplicate_series: text.duplicate_series,
        left_out_of_openmetrics: openmetrics.invalid_for_format,
        promfetcher_families: parsed
            .iter()
            .filter_map(|p| match p {
                Some((_, Ok((_, left_out)))) => Some(*left_out),
                _ => None,
            })
            .sum(),
    };
    drop(sources);
    let instances = instances
        .iter()
        .zip(paths)
        .zip(durations)
        .zip(responses.iter().zip(parsed).zip(errors))
        .zip(over_limit)
        .map(
            |((((instance, path), duration), ((response, parsed), error)), over_limit)| {
                InstanceReport {
                    path,
                    instance: instance.clone(),
                    duration,
                    outcome: match (response, parsed, error) {
                        (Some(response), Some((format, parsed)), _) => {
                            answered(response, format, parsed, over_limit)
                        }
                        (_, _, Some(error)) => InstanceOutcome::Failed(error),
                        _ => unreachable!("an instance either answered (and was parsed) or failed"),
                    },
                }
            },
        )
        .collect();
    Report {
        instances,
        merge,
        exporters: exporters
            .into_iter()
            .map(AskedExporter::into_report)
            .collect(),
    }
}

/// A body's format and its families as the merge reads them (without promfetcher's own, which
/// are counted).
fn read_as_merged(
    response: &ScrapeResponse,
) -> (
    InputFormat,
    Result<(exposition::Exposition<'_>, usize), ParseError>,
) {
    let format = InputFormat::detect(response.content_type.as_deref(), &response.body);
    (format, parse_target_body(&response.body, format))
}

/// What the report keeps of a 2xx answer and how it parsed.
fn answered(
    response: &ScrapeResponse,
    format: InputFormat,
    parsed: Result<(exposition::Exposition<'_>, usize), ParseError>,
    over_answer_limit: Option<OverAnswerLimit>,
) -> InstanceOutcome {
    InstanceOutcome::Answered {
        status: response.status,
        content_type: response.content_type.as_deref().map(media_type),
        format,
        bytes: response.body.len(),
        parsed: parsed.map(|(exposition, left_out)| Counts {
            families: exposition.families.len(),
            samples: exposition.sample_count(),
            status_families_left_out: left_out,
            over_answer_limit,
        }),
    }
}

/// When each app was last scraped for a diagnosis, to allow one scrape per app per interval.
pub struct DiagnosisLimiter {
    interval: Duration,
    /// By app (see [`app_keys`]): when its last diagnosis scrape started. Entries older than
    /// the interval are dropped, so it holds only the apps diagnosed lately.
    last_started: Mutex<HashMap<String, Instant>>,
}

impl DiagnosisLimiter {
    /// A limiter of one scrape per app per `interval` (none with zero).
    pub fn new(interval: Duration) -> Self {
        DiagnosisLimiter {
            interval,
            last_started: Mutex::new(HashMap::new()),
        }
    }

    /// Records a diagnosis scrape of the app(s) of `instances` starting now, or says how long
    /// until one may.
    fn admit(&self, instances: &[Arc<Instance>]) -> Result<(), TooSoon> {
        if self.interval.is_zero() {
            return Ok(());
        }
        let now = Instant::now();
        let mut last_started = self
            .last_started
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        last_started.retain(|_, started| now.duration_since(*started) < self.interval);
        let keys = app_keys(instances);
        // Every app the request reaches must be due, so that naming an app through a route it
        // shares with another is no way around the limit.
        let latest = keys.iter().filter_map(|key| last_started.get(*key)).max();
        if let Some(started) = latest {
            return Err(TooSoon {
                retry_after: self.interval - now.duration_since(*started),
            });
        }
        for key in keys {
            last_started.insert(key.to_string(), now);
        }
        Ok(())
    }
}

/// What a diagnosis is limited by: the GUIDs of the apps among `instances` (a route may lead
/// to several), or for routes without Cloud Foundry tags their hosts.
fn app_keys(instances: &[Arc<Instance>]) -> Vec<&str> {
    let mut apps: Vec<&str> = instances
        .iter()
        .map(|i| i.identity.app.app_id.as_ref())
        .filter(|id: &&str| !id.is_empty())
        .collect();
    if apps.is_empty() {
        apps = instances.iter().map(|i| i.host.as_ref()).collect();
    }
    apps.sort_unstable();
    apps.dedup();
    apps
}

/// `text/plain; version=0.0.4` → `text/plain`: the media type alone, trimmed and cut to
/// [`MAX_CONTENT_TYPE_LEN`] characters, so no parameter an instance put there is repeated.
fn media_type(content_type: &str) -> String {
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    essence
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_CONTENT_TYPE_LEN)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn untagged(host: &str) -> Arc<Instance> {
        Arc::new(Instance::new(
            "10.0.0.1:8080",
            &Arc::from(host),
            false,
            None,
            None,
        ))
    }

    #[test]
    fn an_app_is_admitted_once_per_interval_and_other_apps_are_not_held_up() {
        let limiter = DiagnosisLimiter::new(Duration::from_secs(60));
        let shop = [untagged("shop.example.com"), untagged("shop.example.com")];
        assert_eq!(limiter.admit(&shop), Ok(()));
        let refused = limiter.admit(&shop[..1]).expect_err("too soon");
        assert!(refused.retry_after <= Duration::from_secs(60));
        assert!(refused.retry_after > Duration::from_secs(59));
        assert_eq!(limiter.admit(&[untagged("other.example.com")]), Ok(()));
        // A request that reaches a limited app with another is refused too; the other app is
        // not charged for it.
        let both = [untagged("shop.example.com"), untagged("third.example.com")];
        assert!(limiter.admit(&both).is_err());
        assert_eq!(limiter.admit(&[untagged("third.example.com")]), Ok(()));

        let unlimited = DiagnosisLimiter::new(Duration::ZERO);
        for _ in 0..3 {
            assert_eq!(unlimited.admit(&shop), Ok(()));
        }
    }

    #[test]
    fn only_the_media_type_of_a_content_type_is_kept() {
        assert_eq!(media_type("text/plain; version=0.0.4"), "text/plain");
        assert_eq!(
            media_type(" application/openmetrics-text;version=1.0.0;charset=utf-8"),
            "application/openmetrics-text"
        );
        assert_eq!(media_type("x; token=s3cret"), "x");
        assert_eq!(media_type(&"a".repeat(500)).len(), MAX_CONTENT_TYPE_LEN);
    }

    /// The report on one instance per body (text 0.0.4 answers with status 200).
    fn report_of(bodies: &[&'static str]) -> Report {
        let instances: Vec<_> = (0..bodies.len())
            .map(|i| untagged(&format!("app{i}.example.com")))
            .collect();
        let fetched = bodies
            .iter()
            .map(|body| {
                let response = ScrapeResponse {
                    body: bytes::Bytes::from_static(body.as_bytes()),
                    content_type: Some("text/plain; version=0.0.4".into()),
                    status: 200,
                };
                (Ok(response), Duration::from_millis(5))
            })
            .collect();
        let paths = vec![MetricPath::default_path(); bodies.len()];
        report_on(&instances, paths, fetched, Vec::new(), usize::MAX)
    }

    #[test]
    fn a_body_is_counted_as_the_merge_takes_it() {
        let body = "# TYPE a_total counter\na_total 1\na_total{x=\"y\"} 2\n\
                    # TYPE promfetcher_up gauge\npromfetcher_up 1\n";
        let report = report_of(&[body]);
        let InstanceOutcome::Answered {
            status,
            content_type,
            format,
            bytes,
            parsed,
        } = &report.instances[0].outcome
        else {
            panic!("a 200 is an answer");
        };
        assert_eq!(*status, 200);
        assert_eq!(content_type.as_deref(), Some("text/plain"));
        assert_eq!(*format, InputFormat::Text);
        assert_eq!(*bytes, body.len());
        assert_eq!(
            parsed.as_ref().unwrap(),
            &Counts {
                families: 1,
                samples: 2,
                status_families_left_out: 1,
                over_answer_limit: None,
            }
        );
        assert_eq!(report.merge.promfetcher_families, 1);
        assert_eq!((report.merge.families, report.merge.samples), (1, 2));
    }

    #[test]
    fn an_unparsable_body_keeps_the_position_of_the_error_and_is_not_merged() {
        let report = report_of(&["ok 1\nnot a { sample\n", "fine 1\n"]);
        let InstanceOutcome::Answered { parsed, .. } = &report.instances[0].outcome else {
            panic!("a 200 is an answer");
        };
        assert_eq!(parsed.as_ref().unwrap_err().line, 2);
        assert_eq!((report.merge.families, report.merge.samples), (1, 1));
    }

    #[test]
    fn what_the_merge_drops_is_counted() {
        let report = report_of(&[
            "# TYPE jobs_total counter\njobs_total 1\n# TYPE seen gauge\nseen 1\nseen 2\n",
            "# TYPE jobs_total counter\njobs_total 2\n",
            "# TYPE jobs_total gauge\njobs_total 3\n",
        ]);
        let merge = report.merge;
        assert_eq!(merge.type_conflicts, 1, "{merge:?}");
        assert_eq!(merge.duplicate_series, 1, "{merge:?}");
        assert_eq!(merge.promfetcher_families, 0);
    }
}
