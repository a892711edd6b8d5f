//! The gorouter route source: polls `GET /routes` on every configured gorouter with basic auth,
//! merges the answers and delivers them to its [`RouteFeed`]. When every gorouter fails, the last
//! good routes stay in place and the log says why (a 401 is reported as rejected credentials).
//! It never serves requests and never blocks readers of the table.
//!
//! - `json_members`: splits the streamed body into its routes;
//! - `routes_body`: turns the routes into instance lists, reusing those of unchanged routes.

mod json_members;
mod routes_body;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio_util::sync::CancellationToken;

use super::metrics::RouteSourceMetrics;
use super::sources::{lock, OtherSources, RouteFeed, RouteSourceKind, SourceRoutes};
use super::table::merge_by_key;
use super::tags::AppInterner;
use crate::config::{GorouterConfig, Secret};
use routes_body::{Fingerprinter, GorouterRoutes, RoutesBody};

pub use routes_body::BodyError;

#[cfg(test)]
pub use routes_body::parse_whole_body;

/// Upper bound of one `/routes` request; large foundations answer with tens of megabytes.
const POLL_TIMEOUT: Duration = Duration::from_secs(30);

/// Why one gorouter gave no table.
#[derive(Debug, thiserror::Error)]
pub enum GorouterError {
    #[error("gorouter {gorouter} is unreachable: {reason}")]
    Unreachable { gorouter: String, reason: String },
    #[error("gorouter {gorouter} rejected the credentials (401): check user and pass of this gorouter in the config")]
    Rejected { gorouter: String },
    #[error("gorouter {gorouter} answered HTTP {status} to GET /routes{}", status_hint(*status))]
    Status { gorouter: String, status: u16 },
    #[error("gorouter {gorouter} sent a /routes body that is not a route table: {reason}")]
    BadBody { gorouter: String, reason: String },
}

/// What an operator should know of a status: current routing releases serve `/routes` on a
/// port of its own, not on the status port that older ones used.
fn status_hint(status: u16) -> &'static str {
    match status {
        404 => {
            ": current routing releases serve /routes on router.status.routes.port (8082 by \
             default, on localhost of the router VM), not on the status port"
        }
        _ => "",
    }
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
    /// Per target, the routes of its last body and whether that was read whole in the last
    /// round: a round that reads the same bodies from the same gorouters delivers nothing.
    last_round: Mutex<Vec<LastBody>>,
    fingerprints: Fingerprinter,
    /// The app tags of the routes held, one copy per app over all sources.
    apps: Arc<AppInterner>,
}

#[derive(Debug, Default)]
struct LastBody {
    routes: GorouterRoutes,
    read_whole: bool,
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
        let targets: Vec<Target> = gorouters
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
        let apps = feed.apps();
        Ok(GorouterPoller {
            apps,
            client,
            last_round: Mutex::new(targets.iter().map(|_| LastBody::default()).collect()),
            targets,
            interval,
            feed,
            metrics,
            fingerprints: Fingerprinter::default(),
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
    /// the errors of those that did not. Bodies are read as they arrive, never held whole; a
    /// round in which the same gorouters as in the last one sent the same routes delivers
    /// nothing, and allocates nothing of the table's size.
    pub async fn poll_once(&self) -> Vec<GorouterError> {
        let last_bodies = std::mem::take(&mut *lock(&self.last_round));
        let answered_before: Vec<bool> = last_bodies.iter().map(|last| last.read_whole).collect();
        let others = self.feed.others();
        let started = Instant::now();
        let answers = futures_util::future::join_all(
            self.targets
                .iter()
                .zip(last_bodies)
                .map(|(target, last)| self.read_routes(target, last.routes, &others)),
        )
        .await;
        let read = started.elapsed();
        // Deliver when a body changed or the gorouters that answered are not the last round's.
        let mut changed = !self.feed.is_loaded();
        let mut errors = Vec::new();
        let mut this_round = Vec::with_capacity(answers.len());
        for (answer, answered_before) in answers.into_iter().zip(answered_before) {
            let (routes, read_whole) = match answer {
                Ok((routes, body_changed)) => {
                    changed |= body_changed || !answered_before;
                    (routes, true)
                }
                Err((error, routes)) => {
                    tracing::warn!(%error, "route table poll failed");
                    self.metrics.count_gorouter_error(error.reason());
                    errors.push(error);
                    changed |= answered_before;
                    (routes, false)
                }
            };
            this_round.push(LastBody { routes, read_whole });
        }
        let answered = this_round.iter().filter(|body| body.read_whole).count();
        if answered > 0 && changed {
            let delivering = Instant::now();
            let answered_routes = this_round
                .iter()
                .filter(|body| body.read_whole)
                .flat_map(|body| body.routes.iter())
                .map(|(key, instances)| (key.clone(), instances.clone()));
            let merged: SourceRoutes = merge_by_key(answered_routes.collect())
                .into_iter()
                .collect();
            if let Some(published) = self.feed.deliver(merged) {
                tracing::debug!(
                    routes = published.routes,
                    endpoints = published.endpoints,
                    gorouters = answered,
                    read_ms = read.as_millis() as u64,
                    publish_ms = delivering.elapsed().as_millis() as u64,
                    "route table updated"
                );
            }
        }
        *lock(&self.last_round) = this_round;
        self.apps.forget_unused();
        if answered > 0 {
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

    /// `target`'s routes, read from its `/routes` body as it arrives against `last` (its last
    /// body's), and whether they changed; on failure, why and what to compare the next body with.
    async fn read_routes(
        &self,
        target: &Target,
        last: GorouterRoutes,
        others: &OtherSources,
    ) -> Result<(GorouterRoutes, bool), (GorouterError, GorouterRoutes)> {
        let bad_body = |e: routes_body::BodyError| GorouterError::BadBody {
            gorouter: target.name.clone(),
            reason: e.to_string(),
        };
        let mut response = match self.request(target).await {
            Ok(response) => response,
            Err(error) => return Err((error, last)),
        };
        let mut body = RoutesBody::new(last, &self.fingerprints, &self.apps, others);
        loop {
            match response.chunk().await {
                Ok(Some(piece)) => {
                    if let Err(e) = body.feed(&piece) {
                        return Err((bad_body(e), body.abandon()));
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    let error = GorouterError::Unreachable {
                        gorouter: target.name.clone(),
                        reason: describe(&e),
                    };
                    return Err((error, body.abandon()));
                }
            }
        }
        body.finish().map_err(|(e, routes)| (bad_body(e), routes))
    }

    /// `target`'s answer to `GET /routes`, once its status says a route table follows.
    async fn request(&self, target: &Target) -> Result<reqwest::Response, GorouterError> {
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
            200 => Ok(response),
            401 => Err(GorouterError::Rejected {
                gorouter: gorouter(),
            }),
            status => Err(GorouterError::Status {
                gorouter: gorouter(),
                status,
            }),
        }
    }
}

/// Reads whole `/routes` bodies one after the other as [`GorouterPoller`] reads each poll's
/// (each against the one before), without HTTP and without publishing: what the scale
/// benchmark times.
#[derive(Debug, Default)]
pub struct BodyReading {
    last: GorouterRoutes,
    fingerprints: Fingerprinter,
    apps: AppInterner,
}

impl BodyReading {
    /// Reads `body` in pieces of `piece_size` bytes; whether its routes differ from the last
    /// body's. Returns the number of routes read.
    pub fn read(&mut self, body: &[u8], piece_size: usize) -> Result<(usize, bool), BodyError> {
        let others = OtherSources::default();
        let last = std::mem::take(&mut self.last);
        let mut reading = RoutesBody::new(last, &self.fingerprints, &self.apps, &others);
        for piece in body.chunks(piece_size) {
            reading.feed(piece)?;
        }
        let (routes, changed) = reading.finish().map_err(|(error, _)| error)?;
        self.last = routes;
        self.apps.forget_unused();
        Ok((self.last.route_count(), changed))
    }
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
