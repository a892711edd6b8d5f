//! The gorouter route source: polls `GET /routes` on every configured gorouter with basic auth,
//! merges the answers and delivers them to its [`RouteFeed`]. When every gorouter fails, the last
//! good routes stay in place and the log says why (a 401 is reported as rejected credentials).
//! It never serves requests and never blocks readers of the table.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use super::metrics::RouteSourceMetrics;
use super::sources::{RouteFeed, RouteSourceKind, SourceRoutes};
use super::table::{normalize_route_key, RouteEndpoint};
use super::tags::interning;
use crate::config::{GorouterConfig, Secret};

/// Upper bound of one `/routes` request; large foundations answer with tens of megabytes.
const POLL_TIMEOUT: Duration = Duration::from_secs(30);

/// Why one gorouter gave no table.
#[derive(Debug, thiserror::Error)]
pub enum GorouterError {
    #[error("gorouter {gorouter} is unreachable: {reason}")]
    Unreachable { gorouter: String, reason: String },
    #[error("gorouter {gorouter} rejected the credentials (401): check user and pass of this gorouter in the config")]
    Rejected { gorouter: String },
    #[error("gorouter {gorouter} answered HTTP {status} to GET /routes")]
    Status { gorouter: String, status: u16 },
    #[error("gorouter {gorouter} sent a /routes body that is not a route table: {reason}")]
    BadBody { gorouter: String, reason: String },
}

impl GorouterError {
    /// The fixed reason counted in `promfetcher_gorouter_poll_errors_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            GorouterError::Unreachable { .. } => "unreachable",
            GorouterError::Rejected { .. } => "rejected",
            GorouterError::Status { .. } => "status",
            GorouterError::BadBody { .. } => "bad_body",
        }
    }
}

struct Target {
    /// `host:port`, used in logs.
    name: String,
    url: String,
    user: String,
    pass: Secret,
}

/// Polls the configured gorouters and publishes their merged table.
pub struct GorouterPoller {
    client: reqwest::Client,
    targets: Vec<Target>,
    interval: Duration,
    feed: RouteFeed,
    metrics: Arc<RouteSourceMetrics>,
    /// The fingerprints of the bodies of the last round in which every gorouter answered with
    /// a route table: a round with the same bodies is not parsed again.
    last_clean_round: Mutex<Option<Vec<Fingerprint>>>,
}

/// A 128-bit hash of a `/routes` body, to tell an unchanged body without keeping it.
type Fingerprint = (u64, u64);

fn fingerprint(body: &[u8]) -> Fingerprint {
    use std::hash::BuildHasher;
    let hash = |seed| foldhash::fast::FixedState::with_seed(seed).hash_one(body);
    (hash(0x70f3_6a1c_2b8e_4d95), hash(0x1d2c_9e07_f5a3_b681))
}

impl GorouterPoller {
    pub fn new(
        gorouters: &[GorouterConfig],
        interval: Duration,
        feed: RouteFeed,
        metrics: Arc<RouteSourceMetrics>,
    ) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(plain_http_tls())
            .timeout(POLL_TIMEOUT)
            .user_agent(concat!("promfetcher/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let targets = gorouters
            .iter()
            .map(|g| {
                let name = if g.host.contains(':') {
                    format!("[{}]:{}", g.host, g.port)
                } else {
                    format!("{}:{}", g.host, g.port)
                };
                Target {
                    url: format!("http://{name}/routes"),
                    name,
                    user: g.user.clone(),
                    pass: g.pass.clone(),
                }
            })
            .collect();
        Ok(GorouterPoller {
            client,
            targets,
            interval,
            feed,
            metrics,
            last_clean_round: Mutex::new(None),
        })
    }

    /// Polls at once, then every interval, until `stop` is cancelled.
    pub async fn run(self, stop: CancellationToken) {
        loop {
            self.poll_once().await;
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(self.interval) => {}
            }
        }
    }

    /// One round over all gorouters. Delivers their routes when at least one answered; returns
    /// the errors of those that did not. A round whose bodies are byte for byte those of the
    /// last round in which all answered is not parsed: the table stays as it is, and nothing
    /// of the table's size is allocated besides the bodies themselves.
    pub async fn poll_once(&self) -> Vec<GorouterError> {
        let bodies =
            futures_util::future::join_all(self.targets.iter().map(|t| self.fetch(t))).await;
        let fingerprints: Option<Vec<Fingerprint>> = bodies
            .iter()
            .map(|body| body.as_ref().ok().map(|body| fingerprint(body)))
            .collect();
        let unchanged = fingerprints.is_some()
            && *lock(&self.last_clean_round) == fingerprints
            && self.feed.is_loaded();
        if unchanged {
            self.metrics
                .record_success(RouteSourceKind::Gorouter, SystemTime::now());
            return Vec::new();
        }
        let answers: Vec<_> = bodies
            .into_iter()
            .zip(&self.targets)
            .map(|(body, target)| body.and_then(|body| parse_routes(target, &body)))
            .collect();
        let mut merged = SourceRoutes::new();
        let mut errors = Vec::new();
        let mut answered = 0;
        for answer in answers {
            match answer {
                Ok(routes) => {
                    answered += 1;
                    for (route_key, endpoints) in routes {
                        merged
                            .entry(normalize_route_key(&route_key))
                            .or_default()
                            .extend(endpoints);
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "route table poll failed");
                    self.metrics.count_gorouter_error(error.reason());
                    errors.push(error);
                }
            }
        }
        *lock(&self.last_clean_round) = fingerprints.filter(|_| errors.is_empty());
        if answered > 0 {
            if let Some(published) = self.feed.deliver(merged) {
                tracing::debug!(
                    routes = published.routes,
                    endpoints = published.endpoints,
                    gorouters = answered,
                    "route table updated"
                );
            }
            self.metrics
                .record_success(RouteSourceKind::Gorouter, SystemTime::now());
        } else {
            let reason = errors
                .first()
                .map_or_else(|| "no gorouter configured".to_string(), ToString::to_string);
            self.metrics
                .record_failure(RouteSourceKind::Gorouter, reason);
            if self.feed.is_loaded() {
                tracing::warn!("no gorouter answered; keeping the last good route table");
            }
        }
        errors
    }

    /// `target`'s `/routes` body.
    async fn fetch(&self, target: &Target) -> Result<bytes::Bytes, GorouterError> {
        let gorouter = || target.name.clone();
        let response = self
            .client
            .get(&target.url)
            .basic_auth(&target.user, Some(target.pass.expose()))
            .send()
            .await
            .map_err(|e| GorouterError::Unreachable {
                gorouter: gorouter(),
                reason: describe(&e),
            })?;
        match response.status().as_u16() {
            200 => {}
            401 => {
                return Err(GorouterError::Rejected {
                    gorouter: gorouter(),
                })
            }
            status => {
                return Err(GorouterError::Status {
                    gorouter: gorouter(),
                    status,
                })
            }
        }
        response
            .bytes()
            .await
            .map_err(|e| GorouterError::Unreachable {
                gorouter: gorouter(),
                reason: describe(&e),
            })
    }
}

/// The route table in `target`'s `/routes` body, the app tags of its endpoints shared.
fn parse_routes(
    target: &Target,
    body: &[u8],
) -> Result<BTreeMap<String, Vec<RouteEndpoint>>, GorouterError> {
    interning(|| serde_json::from_slice(body)).map_err(|e| GorouterError::BadBody {
        gorouter: target.name.clone(),
        reason: e.to_string(),
    })
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `/routes` is plain HTTP, but reqwest still wants a TLS configuration with a crypto provider;
/// this one trusts nothing, so no https URL could be fetched with it by mistake.
fn plain_http_tls() -> rustls::ClientConfig {
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("the ring provider supports the default TLS versions")
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth()
}

/// A one-line reason for a transport error, without the URL (which holds no secret, but is
/// already named by the caller).
fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        return format!("no answer within {}s", POLL_TIMEOUT.as_secs());
    }
    let mut reason = String::new();
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(error);
    while let Some(cause) = source {
        reason = cause.to_string();
        source = cause.source();
    }
    if reason.is_empty() {
        reason = error.to_string();
    }
    reason
}
