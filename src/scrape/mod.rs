//! One target, one HTTP request: build the URL from the instance address and a validated
//! [`MetricPath`] (or take an external exporter's URL as it is), send promfetcher's headers plus
//! the caller's forwardable ones, verify TLS against the instance's own server name, follow
//! same-host redirects only, and read a gzip-aware body under a size cap, all within one timeout.
//! It does not parse the exposition, choose which targets to scrape, decide which path applies
//! nor which headers a target may see: callers do.
//!
//! Plain-HTTP instances are asked through hyper's client directly; TLS instances and external
//! exporters through reqwest. Everything else is one piece of code for both: the headers, the
//! redirect rule, the status handling and the body cap.
//!
//! - `client`: picks the client and the URL for a target; the reqwest clients and the shared TLS
//!   configuration (see there for how a per-instance TLS server name is handled).
//! - `plain_http`, `plain_body`: the hyper client for plain-HTTP instances and its body reader
//!   (gzip inflated as it arrives).
//! - `answer`: an answer from either client, as the scraper reads it.
//! - `pool`: the connection settings every client shares.
//! - `redirect`: which redirects are followed.
//! - `headers`: what is forwarded to instances and what promfetcher sets.
//! - `body`: the capped, streaming body reader.
//! - `error`: [`ScrapeError`] and its bounded [`ScrapeError::reason`].

pub mod metric_path;

mod answer;
mod body;
mod client;
mod error;
mod headers;
mod plain_body;
mod plain_http;
mod pool;
mod redirect;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use reqwest::Url;
use rustls::pki_types::CertificateDer;

use crate::config::pem::KeyPair;
use crate::routes::Instance;
use crate::scrape::metric_path::MetricPath;
use answer::Answer;
use client::Route;

pub use client::MAX_TLS_CLIENTS;
pub use error::{FailureReason, ScrapeError, ScraperSetupError};
pub use headers::{
    forwardable_headers, ACCEPT, SCRAPE_TIMEOUT_HEADER, SCRAPPING_HEADER, USER_AGENT,
};

/// Default for [`ScraperSettings::max_idle_per_host`].
pub const DEFAULT_MAX_IDLE_PER_HOST: usize = 16;
/// Default for [`ScraperSettings::idle_timeout`].
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Default for [`ScraperSettings::connect_timeout`].
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default for [`ScraperSettings::max_body_bytes`]: 64 MiB.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 64 * 1024 * 1024;
/// Default for [`ScraperSettings::max_redirects`].
pub const DEFAULT_MAX_REDIRECTS: usize = 3;

/// How the scraper connects to instances; fixed for the life of a [`Scraper`].
#[derive(Debug, Clone)]
pub struct ScraperSettings {
    /// `false` (config `disable_keep_alives: true`): every scrape opens a new connection and sends
    /// `Connection: close`; no idle connection is kept.
    pub keep_alive: bool,
    /// Idle connections kept per instance (config `max_idle_conns_per_host`).
    pub max_idle_per_host: usize,
    /// How long an idle connection is kept (config `idle_conn_timeout`).
    pub idle_timeout: Duration,
    /// Longest wait for a TCP connection.
    pub connect_timeout: Duration,
    /// Cap on the decompressed body; beyond it the scrape fails with [`ScrapeError::TooLarge`].
    pub max_body_bytes: u64,
    /// Same-host redirects followed at most.
    pub max_redirects: usize,
    /// Extra CA certificates trusted for instance TLS (config `ca_certs`), added to the system
    /// roots.
    pub extra_roots: Vec<CertificateDer<'static>>,
    /// Accept any instance certificate (config `skip_ssl_validation`).
    pub skip_tls_verify: bool,
    /// Certificate chain and private key presented to instances (config `backends.cert_chain`,
    /// `backends.private_key`).
    pub client_identity: Option<KeyPair>,
}

impl Default for ScraperSettings {
    fn default() -> ScraperSettings {
        ScraperSettings {
            keep_alive: true,
            max_idle_per_host: DEFAULT_MAX_IDLE_PER_HOST,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_redirects: DEFAULT_MAX_REDIRECTS,
            extra_roots: Vec::new(),
            skip_tls_verify: false,
            client_identity: None,
        }
    }
}

/// Scrapes instances. Cheap to clone: clones share clients, connection pools and TLS settings.
#[derive(Clone)]
pub struct Scraper {
    inner: Arc<Inner>,
}

struct Inner {
    clients: client::Clients,
    keep_alive: bool,
    max_body_bytes: u64,
    max_redirects: usize,
}

/// Where one scrape goes.
#[derive(Clone, Copy)]
pub enum ScrapeTarget<'a> {
    /// An app instance at its route-table address, asked for `path` with its route host as
    /// `Host`; with TLS, verified against the instance's own server name.
    Instance {
        instance: &'a Instance,
        path: &'a MetricPath,
    },
    /// A complete URL, reached through DNS and verified against its host like any web client
    /// does (an external exporter).
    Url(&'a Url),
}

/// One scrape: which target, with which caller context. Its `Debug` shows the names of the
/// forwarded headers, never their values, and never a URL target's query.
#[derive(Clone, Copy)]
pub struct ScrapeRequest<'a> {
    pub target: ScrapeTarget<'a>,
    /// Caller headers, already filtered by [`forwardable_headers`].
    pub forwarded: &'a HeaderMap,
    /// For the whole request, body included; also sent as `X-Prometheus-Scrape-Timeout-Seconds`.
    pub timeout: Duration,
    /// `http` or `https`: the scheme the caller used to reach promfetcher (`X-Forwarded-Proto`);
    /// anything but `https` is sent as `http`.
    pub forwarded_proto: &'a str,
    /// Value for `X-Forwarded-For` (already including the caller's IP); not sent when `None`.
    pub forwarded_for: Option<&'a str>,
}

/// A successful (2xx) answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScrapeResponse {
    /// The body, decompressed.
    pub body: Bytes,
    /// The instance's `Content-Type`, when present and readable.
    pub content_type: Option<String>,
    pub status: u16,
}

impl std::fmt::Debug for ScrapeRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let forwarded: Vec<&str> = self.forwarded.keys().map(|name| name.as_str()).collect();
        let mut debug = f.debug_struct("ScrapeRequest");
        match self.target {
            ScrapeTarget::Instance { instance, path } => debug
                .field("address", &instance.address)
                .field("host", &instance.host)
                .field("tls_server_name", &instance.tls_server_name)
                .field("path", &path.as_str()),
            ScrapeTarget::Url(url) => debug
                .field("url_host", &url.host_str())
                .field("url_path", &url.path()),
        };
        debug
            .field("forwarded", &forwarded)
            .field("timeout", &self.timeout)
            .field("forwarded_proto", &self.forwarded_proto)
            .field("forwarded_for", &self.forwarded_for)
            .finish()
    }
}

impl std::fmt::Debug for Scraper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scraper").finish_non_exhaustive()
    }
}

impl Scraper {
    /// Builds the clients. Fails when a PEM setting does not parse; the error names the setting.
    pub fn new(settings: ScraperSettings) -> Result<Scraper, ScraperSetupError> {
        let clients = client::Clients::new(&settings)?;
        Ok(Scraper {
            inner: Arc::new(Inner {
                clients,
                keep_alive: settings.keep_alive,
                max_body_bytes: settings.max_body_bytes,
                max_redirects: settings.max_redirects,
            }),
        })
    }

    /// Scrapes one instance: headers and body within `request.timeout`.
    pub async fn scrape(&self, request: &ScrapeRequest<'_>) -> Result<ScrapeResponse, ScrapeError> {
        match tokio::time::timeout(request.timeout, self.scrape_unbounded(request)).await {
            Ok(result) => result,
            Err(_elapsed) => Err(ScrapeError::Timeout),
        }
    }

    async fn scrape_unbounded(
        &self,
        request: &ScrapeRequest<'_>,
    ) -> Result<ScrapeResponse, ScrapeError> {
        let answer = match self.inner.clients.route(&request.target)? {
            Route::PlainInstance(uri) => self.ask_plain_instance(uri, request).await?,
            Route::Reqwest(client, url) => {
                // The request is built whole: a request builder would copy the headers into a
                // map of its own one by one.
                let mut outgoing = reqwest::Request::new(reqwest::Method::GET, url);
                *outgoing.headers_mut() = self.request_headers(request)?;
                let response = client
                    .execute(outgoing)
                    .await
                    .map_err(ScrapeError::from_send)?;
                Answer::Reqwest(response)
            }
        };
        self.read_answer(answer).await
    }

    /// Asks a plain-HTTP instance, following its same-origin redirects by the rule reqwest's
    /// policy applies for the other targets; every request carries the same headers.
    async fn ask_plain_instance(
        &self,
        mut uri: http::Uri,
        request: &ScrapeRequest<'_>,
    ) -> Result<Answer, ScrapeError> {
        let client = self.inner.clients.plain_instances();
        let mut followed = 0;
        loop {
            let answer = client.get(uri, self.request_headers(request)?).await?;
            let next = redirect::next_hop(
                answer.status,
                &answer.headers,
                &answer.asked,
                followed,
                self.inner.max_redirects,
            );
            match next {
                Some(next) => {
                    uri = next;
                    followed += 1;
                }
                None => return Ok(Answer::Plain(answer)),
            }
        }
    }

    /// The headers of every request of a scrape: promfetcher's, the forwarded ones, the route
    /// host as `Host` (for an instance) and `Connection: close` without keep-alive.
    fn request_headers(&self, request: &ScrapeRequest<'_>) -> Result<HeaderMap, ScrapeError> {
        let mut headers = headers::request_headers(
            request.forwarded,
            request.timeout,
            request.forwarded_proto,
            request.forwarded_for,
        );
        let route_host = match request.target {
            ScrapeTarget::Instance { instance, .. } => Some(&instance.host),
            // the Host header comes from the URL
            ScrapeTarget::Url(_) => None,
        };
        if let Some(route_host) = route_host.filter(|host| !host.is_empty()) {
            let host = HeaderValue::from_str(route_host).map_err(|_| {
                ScrapeError::Connect(format!(
                    "route host {route_host:?} cannot be sent as a Host header; check the route table"
                ))
            })?;
            headers.insert(header::HOST, host);
        }
        if !self.inner.keep_alive {
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        Ok(headers)
    }

    /// A 2xx answer's body (under the cap) and content type; any other answer as its error.
    async fn read_answer(&self, mut answer: Answer) -> Result<ScrapeResponse, ScrapeError> {
        let status = answer.status();
        if status.is_success() {
            let content_type = answer
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned);
            let body = body::read_capped(&mut answer, self.inner.max_body_bytes).await?;
            return Ok(ScrapeResponse {
                body,
                content_type,
                status: status.as_u16(),
            });
        }
        let target = if redirect::is_followed_status(status) {
            answer
                .asked_url()
                .and_then(|asked| Some((redirect::location(answer.headers(), &asked)?, asked)))
        } else {
            None
        };
        match target {
            // Same-host redirects are followed, so one handed back here is one too many.
            Some((target, asked)) if redirect::same_origin(&target, &asked) => {
                Err(ScrapeError::TooManyRedirects {
                    max: self.inner.max_redirects,
                })
            }
            Some((target, _)) => Err(ScrapeError::Redirect {
                location: error::sanitize_location(&target),
            }),
            // Any other status, a 3xx that is no redirect to follow (300, 304) or one without
            // a usable `Location` included: the status says it all.
            None => Err(ScrapeError::Status(status.as_u16())),
        }
    }

    #[cfg(test)]
    fn tls_client_count(&self) -> usize {
        self.inner.clients.tls_client_count()
    }
}
