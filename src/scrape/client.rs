//! The HTTP clients that talk to instances, and the TLS setup they share. This module picks the client
//! and the URL for a target; it does not send anything itself.
//!
//! Plain-HTTP instances go through hyper's pooled client directly ([`super::plain_http`]); TLS
//! instances and external exporters (`ScrapeTarget::Url`) go through reqwest, whose TLS and DNS
//! handling they need. Both are built from the same [`PoolSettings`].
//!
//! # TLS with a per-instance server name
//!
//! A TLS instance is reached at an IP address (`Instance::address`) but must present a certificate for
//! its own server name (`Instance::tls_server_name`, the instance GUID in Cloud Foundry), which is also
//! the SNI sent. reqwest takes the server name from the URL host and has no per-request resolver, so:
//!
//! - the request goes to `https://{server_name}:{port}{path}`, and
//! - the client that sends it was built with `ClientBuilder::resolve(server_name, address)`.
//!
//! That makes one reqwest client per `(server_name, address)`. They are kept in a small cache and all
//! built from one shared [`rustls::ClientConfig`] (roots, client certificate, verifier and session
//! cache are behind `Arc`s, so a client costs a few allocations) and the same pool settings as the
//! plain-HTTP client. An entry unused for twice the idle-connection timeout (at least a minute) is
//! dropped by a lazy sweep, which also closes its idle connections; the cache never holds more than
//! [`MAX_TLS_CLIENTS`] entries. External exporters share one reqwest client, plain-HTTP instances
//! one hyper client.
//!
//! Other choices: HTTP/1.1 only (the `Host` header must stay the route host, and instances behind the
//! Cloud Foundry sidecar speak HTTP/1.1); no proxy from the environment (instances are reached
//! directly); redirects followed only to the same scheme, host and port ([`super::redirect`]);
//! reqwest's retry layer off (it retries only what an HTTP/2 server refused); the scraper sets
//! `User-Agent` and `Accept-Encoding` itself, on every request.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::Uri;
use reqwest::Url;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::error::{ScrapeError, ScraperSetupError};
use super::plain_http::PlainClient;
use super::pool::{PoolSettings, TCP_KEEPALIVE};
use super::redirect;
use super::{ScrapeTarget, ScraperSettings};
use crate::routes::Instance;
use crate::scrape::metric_path::MetricPath;

/// Most TLS clients kept at once; past it the least recently used one is dropped.
pub const MAX_TLS_CLIENTS: usize = 4096;

/// Shortest time a TLS client is kept after its last use.
const MIN_TLS_CLIENT_TTL: Duration = Duration::from_secs(60);

/// The clients for plain and TLS instances and for exporters, and what is needed to build more
/// TLS clients.
pub(crate) struct Clients {
    plain_instances: PlainClient,
    exporters: reqwest::Client,
    tls_config: Arc<ClientConfig>,
    pool: PoolSettings,
    tls_clients: Mutex<TlsClientCache>,
}

/// Where a scrape goes, and through which client.
pub(crate) enum Route {
    /// A plain-HTTP instance, through [`Clients::plain_instances`].
    PlainInstance(Uri),
    /// A TLS instance or an exporter, through this reqwest client.
    Reqwest(reqwest::Client, Url),
}

struct TlsClientCache {
    entries: HashMap<TlsKey, TlsEntry>,
    ttl: Duration,
    last_sweep: Instant,
}

/// The URL host (the server name, as `Url` normalized it) and the address it resolves to.
type TlsKey = (String, SocketAddr);

struct TlsEntry {
    client: reqwest::Client,
    last_used: Instant,
}

impl Clients {
    pub(crate) fn new(settings: &ScraperSettings) -> Result<Clients, ScraperSetupError> {
        let tls_config = Arc::new(tls_config(settings)?);
        let pool = PoolSettings::new(settings);
        let exporters = client_builder(&pool, &tls_config)
            .build()
            .map_err(|e| ScraperSetupError::Client(e.to_string()))?;
        let ttl = settings
            .idle_timeout
            .saturating_mul(2)
            .max(MIN_TLS_CLIENT_TTL);
        Ok(Clients {
            plain_instances: PlainClient::new(&pool),
            exporters,
            tls_config,
            pool,
            tls_clients: Mutex::new(TlsClientCache {
                entries: HashMap::new(),
                ttl,
                last_sweep: Instant::now(),
            }),
        })
    }

    /// The client to use for `target` and the URL to request. A URL target goes through the
    /// exporters' client, which resolves its host by DNS and verifies TLS against that host.
    pub(crate) fn route(&self, target: &ScrapeTarget<'_>) -> Result<Route, ScrapeError> {
        match *target {
            ScrapeTarget::Instance { instance, path } => match &instance.tls_server_name {
                None => Ok(Route::PlainInstance(plain_instance_uri(
                    &instance.address,
                    path,
                )?)),
                Some(server_name) => self.tls_instance_route(instance, server_name, path),
            },
            ScrapeTarget::Url(url) => Ok(Route::Reqwest(self.exporters.clone(), url.clone())),
        }
    }

    pub(crate) fn plain_instances(&self) -> &PlainClient {
        &self.plain_instances
    }

    fn tls_instance_route(
        &self,
        instance: &Instance,
        server_name: &str,
        path: &MetricPath,
    ) -> Result<Route, ScrapeError> {
        let mut url = tls_url(server_name, &instance.address)?;
        url.set_path(path.path());
        url.set_query(path.query());
        let addr = parse_socket_addr(&instance.address)?;
        let host = url.host_str().unwrap_or_default().to_owned();
        Ok(Route::Reqwest(self.tls_client(host, addr)?, url))
    }

    fn tls_client(&self, host: String, addr: SocketAddr) -> Result<reqwest::Client, ScrapeError> {
        let now = Instant::now();
        // A poisoned lock only means another scrape panicked while holding it; the map is still
        // consistent (every update is a single insert or remove).
        let mut cache = self
            .tls_clients
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        cache.sweep(now);
        let key = (host, addr);
        if let Some(entry) = cache.entries.get_mut(&key) {
            entry.last_used = now;
            return Ok(entry.client.clone());
        }

        let mut builder = client_builder(&self.pool, &self.tls_config);
        if key.0.parse::<IpAddr>().is_err() {
            builder = builder.resolve(&key.0, addr);
        }
        let client = builder
            .build()
            .map_err(|e| ScrapeError::Tls(format!("could not build a TLS client: {e}")))?;
        if cache.entries.len() >= MAX_TLS_CLIENTS {
            cache.evict_least_recently_used();
        }
        cache.entries.insert(
            key,
            TlsEntry {
                client: client.clone(),
                last_used: now,
            },
        );
        Ok(client)
    }

    /// Number of cached TLS clients (for tests and telemetry).
    #[cfg(test)]
    pub(crate) fn tls_client_count(&self) -> usize {
        self.tls_clients
            .lock()
            .map(|cache| cache.entries.len())
            .unwrap_or(0)
    }
}

impl TlsClientCache {
    fn sweep(&mut self, now: Instant) {
        if now.duration_since(self.last_sweep) < self.ttl / 2 {
            return;
        }
        self.last_sweep = now;
        let ttl = self.ttl;
        self.entries
            .retain(|_, entry| now.duration_since(entry.last_used) <= ttl);
    }

    fn evict_least_recently_used(&mut self) {
        let oldest = self
            .entries
            .iter()
            .min_by_key(|(_, entry)| entry.last_used)
            .map(|(key, _)| key.clone());
        if let Some(key) = oldest {
            self.entries.remove(&key);
        }
    }
}

/// Settings shared by the exporters' client and every TLS client.
fn client_builder(pool: &PoolSettings, tls: &Arc<ClientConfig>) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        // Every client gets the same roots, client certificate and verifier (and no global
        // crypto provider is needed).
        .use_preconfigured_tls(ClientConfig::clone(tls))
        .connect_timeout(pool.connect_timeout)
        .tcp_keepalive(TCP_KEEPALIVE.idle)
        .tcp_keepalive_interval(TCP_KEEPALIVE.interval)
        .tcp_keepalive_retries(TCP_KEEPALIVE.retries)
        .pool_idle_timeout(pool.idle_timeout)
        .pool_max_idle_per_host(pool.max_idle())
        .redirect(redirect::reqwest_policy(pool.max_redirects))
        // reqwest retries only requests an HTTP/2 server refused, which an HTTP/1.1 client never
        // sends; its retry layer would still copy every request, headers and all, just in case.
        .retry(reqwest::retry::never().max_retries_per_request(0))
        .referer(false)
        .http1_only()
        .no_proxy()
        .gzip(true)
        .tcp_nodelay(true)
}

fn bad_address(address: &str) -> ScrapeError {
    ScrapeError::Connect(format!(
        "instance address {address:?} is not ip:port; check the route table"
    ))
}

fn parse_socket_addr(address: &str) -> Result<SocketAddr, ScrapeError> {
    address.parse().map_err(|_| bad_address(address))
}

/// `http://{address}/`: `address` is `ip:port` (or `host:port`) from the route table.
fn plain_url(address: &str) -> Result<Url, ScrapeError> {
    let mut url = Url::parse("http://instance.invalid/").map_err(|_| bad_address(address))?;
    match address.parse::<SocketAddr>() {
        Ok(addr) => {
            url.set_ip_host(addr.ip())
                .map_err(|_| bad_address(address))?;
            url.set_port(Some(addr.port()))
                .map_err(|_| bad_address(address))?;
        }
        Err(_) => {
            let (host, port) = address
                .rsplit_once(':')
                .ok_or_else(|| bad_address(address))?;
            let port: u16 = port.parse().map_err(|_| bad_address(address))?;
            url.set_host(Some(host)).map_err(|_| bad_address(address))?;
            url.set_port(Some(port)).map_err(|_| bad_address(address))?;
        }
    }
    Ok(url)
}

/// `http://{address}{path}`: `address` is `ip:port` (or `host:port`) from the route table, `path`
/// goes on the request line exactly as [`MetricPath::as_str`] spells it.
fn plain_instance_uri(address: &str, path: &MetricPath) -> Result<Uri, ScrapeError> {
    let authority = match address.parse::<SocketAddr>() {
        Ok(_) => address.to_owned(),
        // A host name is held to the rules a URL host follows.
        Err(_) => {
            let url = plain_url(address)?;
            let host = url.host_str().ok_or_else(|| bad_address(address))?;
            let port = url
                .port_or_known_default()
                .ok_or_else(|| bad_address(address))?;
            format!("{host}:{port}")
        }
    };
    let mut text = String::with_capacity("http://".len() + authority.len() + path.as_str().len());
    text.push_str("http://");
    text.push_str(&authority);
    text.push_str(path.as_str());
    Uri::try_from(text).map_err(|_| bad_address(address))
}

/// `https://{server_name}:{port}/`, `port` taken from `address` (which must be `ip:port`, since the
/// client resolves the server name to it).
fn tls_url(server_name: &str, address: &str) -> Result<Url, ScrapeError> {
    let addr = parse_socket_addr(address)?;
    let bad_name = || {
        ScrapeError::Tls(format!(
            "TLS server name {server_name:?} is not a valid host name; check the route's server_cert_domain_san"
        ))
    };
    let mut url = Url::parse("https://instance.invalid/").map_err(|_| bad_name())?;
    match server_name.parse::<IpAddr>() {
        Ok(ip) if ip == addr.ip() => url.set_ip_host(ip).map_err(|_| bad_name())?,
        Ok(_) => {
            return Err(ScrapeError::Tls(format!(
            "TLS server name {server_name:?} is an IP address other than the instance's {address}"
        )))
        }
        Err(_) => url.set_host(Some(server_name)).map_err(|_| bad_name())?,
    }
    url.set_port(Some(addr.port())).map_err(|_| bad_name())?;
    Ok(url)
}

/// The one TLS configuration every client uses: system roots plus `ca_certs` (or no verification at
/// all with `skip_ssl_validation`), and the client certificate when configured.
fn tls_config(settings: &ScraperSettings) -> Result<ClientConfig, ScraperSetupError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| ScraperSetupError::Client(e.to_string()))?;
    let builder = if settings.skip_tls_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(DangerousAcceptAnyServerCertificate {
                algorithms: provider.signature_verification_algorithms,
            }))
    } else {
        builder.with_root_certificates(root_store(&settings.extra_roots)?)
    };
    match &settings.client_identity {
        None => Ok(builder.with_no_client_auth()),
        Some(identity) => {
            let identity = identity.clone();
            builder
                .with_client_auth_cert(identity.chain, identity.key)
                .map_err(|e| {
                    ScraperSetupError::ClientPrivateKey(format!(
                        "not usable with backends.cert_chain: {e}"
                    ))
                })
        }
    }
}

/// The system's trusted roots (as rustls-native-certs finds them) plus `ca_certs`. A system without
/// any root store is fine: then only `ca_certs` is trusted.
fn root_store(extra: &[CertificateDer<'static>]) -> Result<RootCertStore, ScraperSetupError> {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    let (added, ignored) = roots.add_parsable_certificates(native.certs);
    tracing::debug!(
        added,
        ignored,
        errors = native.errors.len(),
        "loaded system root certificates for instance TLS"
    );
    for (index, cert) in extra.iter().enumerate() {
        roots.add(cert.clone()).map_err(|e| {
            ScraperSetupError::CaCerts(format!(
                "certificate #{} is not a usable CA certificate: {e}",
                index + 1
            ))
        })?;
    }
    if roots.is_empty() {
        tracing::warn!(
            "no trusted root certificate for instance TLS: set ca_certs, or TLS instances will fail"
        );
    }
    Ok(roots)
}

/// Accepts any server certificate, for `skip_ssl_validation: true` only. The handshake signatures are
/// still checked (so the peer holds the key of the certificate it sent), but neither the chain nor
/// the name is: anyone on the path can impersonate an instance.
#[derive(Debug)]
struct DangerousAcceptAnyServerCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for DangerousAcceptAnyServerCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_urls_are_built_from_parts() {
        let path = MetricPath::parse("/m?x=1").unwrap();
        let mut url = plain_url("10.0.0.1:8080").unwrap();
        url.set_path(path.path());
        url.set_query(path.query());
        assert_eq!(url.as_str(), "http://10.0.0.1:8080/m?x=1");
        assert_eq!(plain_url("[::1]:80").unwrap().as_str(), "http://[::1]/");
        assert_eq!(
            plain_url("app.internal:61001").unwrap().as_str(),
            "http://app.internal:61001/"
        );
        for bad in ["10.0.0.1", "user@host:80", "host:port", ":80", "a/b:80"] {
            let err = plain_url(bad).unwrap_err();
            assert_eq!(err.reason(), "connect", "{bad}");
        }
    }

    #[test]
    fn tls_urls_use_the_server_name_and_the_address_port() {
        assert_eq!(
            tls_url("3e1c9b5a-guid", "10.0.0.1:61443").unwrap().as_str(),
            "https://3e1c9b5a-guid:61443/"
        );
        assert_eq!(
            tls_url("10.0.0.1", "10.0.0.1:61443").unwrap().as_str(),
            "https://10.0.0.1:61443/"
        );
        assert_eq!(
            tls_url("10.0.0.2", "10.0.0.1:1").unwrap_err().reason(),
            "tls"
        );
        assert_eq!(tls_url("a b", "10.0.0.1:1").unwrap_err().reason(), "tls");
        assert_eq!(tls_url("guid", "host:1").unwrap_err().reason(), "connect");
    }

    #[test]
    fn instance_uris_keep_the_address_and_the_path_as_given() {
        let path = MetricPath::parse("/my%20metrics/%41?q=%7Ba%7D&x='|^[]").unwrap();
        let uri = plain_instance_uri("10.0.0.1:8080", &path).unwrap();
        assert_eq!(uri.authority().unwrap().as_str(), "10.0.0.1:8080");
        assert_eq!(
            uri.path_and_query().unwrap().as_str(),
            "/my%20metrics/%41?q=%7Ba%7D&x='|^[]"
        );
        let default = MetricPath::default_path();
        assert_eq!(
            plain_instance_uri("[::1]:80", &default).unwrap(),
            "http://[::1]:80/metrics"
        );
        assert_eq!(
            plain_instance_uri("app.internal:61001", &default).unwrap(),
            "http://app.internal:61001/metrics"
        );
        for bad in ["10.0.0.1", "user@host:80", "host:port", ":80", "a/b:80"] {
            let err = plain_instance_uri(bad, &default).unwrap_err();
            assert_eq!(err.reason(), "connect", "{bad}");
        }
    }

    /// Every character a metric path may hold raw must make a valid request target, or a scrape
    /// would fail on a path the configuration accepted.
    #[test]
    fn every_printable_character_a_metric_path_keeps_is_a_valid_request_target() {
        for byte in 0x21u8..0x7f {
            let c = byte as char;
            if c == '#' || c == '?' {
                continue;
            }
            let Ok(path) = MetricPath::parse(&format!("/a{c}b?q={c}")) else {
                continue;
            };
            let uri =
                plain_instance_uri("10.0.0.1:8080", &path).unwrap_or_else(|e| panic!("{c:?}: {e}"));
            assert_eq!(uri.path_and_query().unwrap().as_str(), path.as_str());
        }
    }
}
