//! The access log: one line per HTTP request, under the tracing target `access` (so operators
//! can filter it, e.g. `RUST_LOG=info,access=off`), written when the response body has been
//! sent. A line names the method, the path with its query (secret-looking query parameters and
//! URL userinfo redacted), the status, the duration in milliseconds, the body bytes sent and,
//! for merged-metrics answers, how many instances were scraped and how many failed. It never
//! reads a request header, so `Authorization` and cookies cannot reach the log; it does not
//! change the response.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::http::Uri;
use actix_web::Error;
use bytes::Bytes;
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use tracing::Level;

use crate::config::MASK;

/// The tracing target of access lines.
pub const TARGET: &str = "access";

/// A query parameter whose name contains one of these (case-insensitively) has its value
/// replaced by [`MASK`].
const SECRET_NAME_PARTS: [&str; 10] = [
    "token",
    "secret",
    "pass",
    "pwd",
    "auth",
    "key",
    "credential",
    "session",
    "signature",
    "cookie",
];

/// What a redacted component re-encodes: everything but RFC 3986's unreserved characters.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Longest path-and-query written; longer ones are cut (with `...`).
const MAX_LOGGED_TARGET: usize = 2048;

/// How a merged-metrics answer went; the API handler puts it in the response's extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstanceCounts {
    /// Instances scraped for the answer.
    pub scraped: usize,
    /// Of those, the ones that failed (reported as `promfetcher_scrape_error`).
    pub failed: usize,
}

/// Logs `req` at `level` once its response has been sent. For `App::wrap_fn`:
/// `.wrap_fn(|req, srv| access_log::logged(Level::INFO, req, srv))`.
pub fn logged<S, B>(
    level: Level,
    req: ServiceRequest,
    service: &S,
) -> impl Future<Output = Result<ServiceResponse<LoggedBody>, Error>>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    B: MessageBody + 'static,
{
    let request = RequestLine {
        level,
        started: Instant::now(),
        method: req.method().to_string(),
        target: redacted_target(req.uri()),
        peer: req.peer_addr().map(|addr| addr.ip().to_string()),
    };
    let call = service.call(req);
    async move {
        match call.await {
            Ok(response) => {
                let status = response.status().as_u16();
                let counts = response
                    .response()
                    .extensions()
                    .get::<InstanceCounts>()
                    .copied();
                Ok(response.map_body(|_, body| LoggedBody {
                    inner: body.boxed(),
                    bytes: 0,
                    pending: Some(Pending {
                        request,
                        status,
                        counts,
                    }),
                }))
            }
            Err(error) => {
                let status = error.as_response_error().status_code().as_u16();
                request.write(status, 0, None);
                Err(error)
            }
        }
    }
}

/// What is known of a request before it is answered.
struct RequestLine {
    level: Level,
    started: Instant,
    method: String,
    target: String,
    peer: Option<String>,
}

/// A line waiting for its body to be sent.
struct Pending {
    request: RequestLine,
    status: u16,
    counts: Option<InstanceCounts>,
}

impl RequestLine {
    fn write(&self, status: u16, bytes: u64, counts: Option<InstanceCounts>) {
        let duration_ms = self.started.elapsed().as_micros() as f64 / 1000.0;
        let instances = counts.map(|c| c.scraped as u64);
        let instances_failed = counts.map(|c| c.failed as u64);
        macro_rules! access_line {
            ($level:expr) => {
                tracing::event!(
                    target: TARGET,
                    $level,
                    method = %self.method,
                    path = %self.target,
                    status,
                    duration_ms,
                    bytes,
                    instances,
                    instances_failed,
                    peer = self.peer.as_deref().map(tracing::field::display),
                    "request"
                )
            };
        }
        match self.level {
            Level::TRACE => access_line!(Level::TRACE),
            Level::DEBUG => access_line!(Level::DEBUG),
            Level::INFO => access_line!(Level::INFO),
            Level::WARN => access_line!(Level::WARN),
            Level::ERROR => access_line!(Level::ERROR),
        }
    }
}

/// The response body, counted as it is sent; the access line is written when it is dropped
/// (sent completely, or the connection went away).
pub struct LoggedBody {
    inner: BoxBody,
    bytes: u64,
    pending: Option<Pending>,
}

impl MessageBody for LoggedBody {
    type Error = Box<dyn std::error::Error>;

    fn size(&self) -> BodySize {
        self.inner.size()
    }

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_next(cx);
        if let Poll::Ready(Some(Ok(chunk))) = &polled {
            self.bytes += chunk.len() as u64;
        }
        polled
    }
}

impl Drop for LoggedBody {
    fn drop(&mut self) {
        if let Some(pending) = self.pending.take() {
            pending
                .request
                .write(pending.status, self.bytes, pending.counts);
        }
    }
}

/// The path and query of `uri` as they may be logged: each path segment and query value that
/// holds URL userinfo (`user:pass@host`) gets it replaced, and the value of every query
/// parameter whose name looks like a secret is replaced, by [`MASK`]. Everything else is kept
/// as the client sent it (still percent-encoded).
pub fn redacted_target(uri: &Uri) -> String {
    let path = uri
        .path()
        .split('/')
        .map(redacted_component)
        .collect::<Vec<_>>()
        .join("/");
    let mut target = match uri.query() {
        None => path,
        Some(query) => {
            let pairs: Vec<String> = query.split('&').map(redacted_pair).collect();
            format!("{path}?{}", pairs.join("&"))
        }
    };
    if target.len() > MAX_LOGGED_TARGET {
        let mut cut = MAX_LOGGED_TARGET;
        while !target.is_char_boundary(cut) {
            cut -= 1;
        }
        target.truncate(cut);
        target.push_str("...");
    }
    target
}

/// One `name=value` of a query.
fn redacted_pair(pair: &str) -> String {
    let Some((name, value)) = pair.split_once('=') else {
        return redacted_component(pair);
    };
    let decoded_name = decode_query_part(name).to_ascii_lowercase();
    if SECRET_NAME_PARTS
        .iter()
        .any(|part| decoded_name.contains(part))
    {
        format!("{name}={MASK}")
    } else {
        format!("{name}={}", redacted_component(value))
    }
}

/// A path segment or query value, with URL userinfo masked when its decoded form holds one,
/// and the secret-looking values of a query it carries (`metric_path=/probe?token=...`, sent
/// on to the instances) masked too.
fn redacted_component(raw: &str) -> String {
    let decoded = decode_query_part(raw);
    let without_userinfo = without_userinfo(&decoded);
    let checked = without_userinfo.as_deref().unwrap_or(&decoded);
    match without_secret_query(checked).or(without_userinfo) {
        Some(redacted) => utf8_percent_encode(&redacted, COMPONENT).to_string(),
        None => raw.to_string(),
    }
}

/// `value` with the secret-looking values of the query it ends with masked; `None` when it has
/// no query or nothing in it to mask.
fn without_secret_query(value: &str) -> Option<String> {
    let (before, query) = value.split_once('?')?;
    let pairs: Vec<String> = query.split('&').map(redacted_pair).collect();
    let redacted = format!("{before}?{}", pairs.join("&"));
    (redacted != value).then_some(redacted)
}

fn decode_query_part(raw: &str) -> String {
    percent_decode_str(&raw.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

/// `value` with the userinfo of the URL (or `user:pass@host` authority) it starts with replaced
/// by [`MASK`]; `None` when it has none.
fn without_userinfo(value: &str) -> Option<String> {
    let start = match value.find("://") {
        Some(i) => i + 3,
        None if value.starts_with("//") => 2,
        None => 0,
    };
    let rest = &value[start..];
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let at = rest[..end].rfind('@')?;
    Some(format!("{}{MASK}@{}", &value[..start], &rest[at + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redacted(target: &str) -> String {
        redacted_target(&target.parse::<Uri>().unwrap())
    }

    #[test]
    fn secret_looking_query_values_are_masked() {
        let cases = [
            (
                "/v1/apps/acme/dev/shop/metrics?token=abc&x=1",
                "/v1/apps/acme/dev/shop/metrics?token=REDACTED&x=1",
            ),
            (
                "/v1/apps/metrics?app=acme/dev/shop&Access_Token=t&api%4Bey=k&password=p&auth=a",
                "/v1/apps/metrics?app=acme/dev/shop&Access_Token=REDACTED&api%4Bey=REDACTED&password=REDACTED&auth=REDACTED",
            ),
            (
                "/v1/apps/metrics?client_secret=s&session_id=1&X-Amz-Signature=f&pwd=2",
                "/v1/apps/metrics?client_secret=REDACTED&session_id=REDACTED&X-Amz-Signature=REDACTED&pwd=REDACTED",
            ),
            (
                "/v1/apps/metrics?app=shop&metric_path=/prometheus",
                "/v1/apps/metrics?app=shop&metric_path=/prometheus",
            ),
            ("/metrics", "/metrics"),
        ];
        for (target, expected) in cases {
            assert_eq!(redacted(target), expected, "{target}");
        }
    }

    #[test]
    fn url_userinfo_is_masked_in_query_values_and_path_segments() {
        let cases = [
            (
                "/v1/apps/metrics?route_url=https://bob:hunter2@shop.example.com/x",
                "/v1/apps/metrics?route_url=https%3A%2F%2FREDACTED%40shop.example.com%2Fx",
            ),
            (
                "/v1/apps/metrics?metric_path=%2F%2Fbob%3Ahunter2%40evil.example%2Fx",
                "/v1/apps/metrics?metric_path=%2F%2FREDACTED%40evil.example%2Fx",
            ),
            (
                "/v1/apps/bob:hunter2@shop.example.com/metrics",
                "/v1/apps/REDACTED%40shop.example.com/metrics",
            ),
            (
                "/v1/apps/shop.example.com%2Fapi/metrics",
                "/v1/apps/shop.example.com%2Fapi/metrics",
            ),
        ];
        for (target, expected) in cases {
            let logged = redacted(target);
            assert_eq!(logged, expected, "{target}");
            assert!(!logged.contains("hunter2"));
        }
    }

    /// A query inside a query value travels to the instances (`metric_path` may have one): its
    /// secrets are masked too, however the value is encoded.
    #[test]
    fn secrets_in_a_query_carried_by_a_query_value_are_masked() {
        let cases = [
            (
                "/v1/apps/metrics?app=o/s/a&metric_path=/probe?token=s3cret",
                "/v1/apps/metrics?app=o/s/a&metric_path=%2Fprobe%3Ftoken%3DREDACTED",
            ),
            (
                "/v1/apps/metrics?app=o/s/a&metric_path=%2Fprobe%3Fmodule%3Dx%26api_key%3Ds3cret",
                "/v1/apps/metrics?app=o/s/a&metric_path=%2Fprobe%3Fmodule%3Dx%26api_key%3DREDACTED",
            ),
            (
                "/v1/apps/metrics?app=o/s/a&metric_path=/probe?module=x",
                "/v1/apps/metrics?app=o/s/a&metric_path=/probe?module=x",
            ),
        ];
        for (target, expected) in cases {
            let logged = redacted(target);
            assert_eq!(logged, expected, "{target}");
            assert!(!logged.contains("s3cret"));
        }
    }

    #[test]
    fn very_long_targets_are_cut() {
        let long = format!("/v1/apps/metrics?app={}", "a".repeat(5000));
        let logged = redacted(&long);
        assert_eq!(logged.len(), MAX_LOGGED_TARGET + 3);
        assert!(logged.ends_with("..."));
    }
}
