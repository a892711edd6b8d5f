//! Plain-HTTP instances (no TLS server name: the common case in Cloud Foundry) are asked through
//! hyper's pooled client directly, without reqwest's layers above it (its URL handling, redirect
//! and decompression wrappers and default-header merge were more than half the instructions of
//! an instance request). This module sends one GET with the headers the scraper built and hands
//! back the answer; the caller follows redirects ([`super::redirect`]) and reads the body under
//! its cap. The connection settings are the reqwest clients' ([`super::pool`]): HTTP/1.1,
//! TCP_NODELAY, the same TCP keep-alive, connect timeout and pool limits.

use bytes::Bytes;
use http::header::{self, HeaderMap};
use http::{StatusCode, Uri};
use http_body_util::Empty;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use super::error::ScrapeError;
use super::plain_body::PlainBody;
use super::pool::{PoolSettings, TCP_KEEPALIVE};

/// hyper's client over plain TCP, one pool of connections per instance address.
pub(crate) struct PlainClient {
    client: hyper_util::client::legacy::Client<HttpConnector, Empty<Bytes>>,
}

/// A plain-HTTP instance's answer, its body not read yet.
pub(crate) struct PlainAnswer {
    /// The URL asked, for resolving a `Location`.
    pub(crate) asked: Uri,
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: PlainBody,
}

impl PlainClient {
    pub(crate) fn new(pool: &PoolSettings) -> PlainClient {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(pool.connect_timeout));
        connector.set_keepalive(Some(TCP_KEEPALIVE.idle));
        connector.set_keepalive_interval(Some(TCP_KEEPALIVE.interval));
        connector.set_keepalive_retries(Some(TCP_KEEPALIVE.retries));
        let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(pool.idle_timeout)
            .pool_max_idle_per_host(pool.max_idle())
            .build(connector);
        PlainClient { client }
    }

    /// Sends `GET uri` with exactly `headers` (hyper adds `Host` from `uri` only when `headers`
    /// has none) and waits for the answer's head.
    pub(crate) async fn get(
        &self,
        uri: Uri,
        headers: HeaderMap,
    ) -> Result<PlainAnswer, ScrapeError> {
        let mut request = http::Request::new(Empty::new());
        *request.uri_mut() = uri.clone();
        *request.headers_mut() = headers;
        let response = self
            .client
            .request(request)
            .await
            .map_err(ScrapeError::from_plain_send)?;
        let (parts, body) = response.into_parts();
        // Exactly `gzip`, as reqwest's decoder takes it; anything else is passed on as it came.
        let gzip = parts
            .headers
            .get(header::CONTENT_ENCODING)
            .is_some_and(|encoding| encoding.as_bytes() == b"gzip");
        Ok(PlainAnswer {
            asked: uri,
            status: parts.status,
            headers: parts.headers,
            body: PlainBody::new(body, gzip),
        })
    }
}
