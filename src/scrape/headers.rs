//! Which headers go to an instance: the caller's end-to-end headers (so `Authorization`, cookies and
//! custom `X-...` headers reach the app, as the original's docs promised), minus hop-by-hop headers,
//! minus those promfetcher sets itself and minus those the gorouter sets or sanitises for apps to
//! trust, plus promfetcher's own. Pure functions, no I/O.

use std::collections::HashSet;
use std::time::Duration;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// `Accept` sent to instances: OpenMetrics first, then text, then anything; both with
/// `escaping=allow-utf-8` as Prometheus 3 asks, so that names that are not legacy names come
/// quoted as they are (the exposition engine reads them and writes them as each caller asks).
pub const ACCEPT: &str = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.9,\
text/plain;version=1.0.0;escaping=allow-utf-8;q=0.6,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// Sent as `User-Agent` on every scrape.
pub const USER_AGENT: &str = concat!("promfetcher/", env!("CARGO_PKG_VERSION"));

/// Marks requests made by promfetcher, so that an app can tell them apart (name kept from the original).
pub const SCRAPPING_HEADER: &str = "x-promfetcher-scrapping";

/// The Prometheus scrape timeout, in seconds, as Prometheus itself sends it.
pub const SCRAPE_TIMEOUT_HEADER: &str = "x-prometheus-scrape-timeout-seconds";

// The names promfetcher sets, checked once at compile time: a name given as a string is
// checked again at every insert.
const SCRAPE_TIMEOUT_NAME: HeaderName = HeaderName::from_static(SCRAPE_TIMEOUT_HEADER);
const SCRAPPING_NAME: HeaderName = HeaderName::from_static(SCRAPPING_HEADER);
const X_FORWARDED_PROTO_NAME: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_FOR_NAME: HeaderName = HeaderName::from_static("x-forwarded-for");

/// Headers that only concern one connection (RFC 9110 §7.6.1, plus the non-standard
/// `Proxy-Connection`); never forwarded.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "proxy-connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Headers promfetcher sets on every scrape (or that describe a body it does not send); the caller's
/// values are dropped so that they can neither override nor duplicate ours.
const SET_BY_PROMFETCHER: [&str; 11] = [
    "host",
    "accept",
    "accept-encoding",
    "content-length",
    "content-type",
    "expect",
    "user-agent",
    SCRAPE_TIMEOUT_HEADER,
    "x-forwarded-for",
    "x-forwarded-proto",
    SCRAPPING_HEADER,
];

/// Headers that reach an app through the gorouter only as the gorouter (or the TLS-terminating load
/// balancer it trusts) set them, and that apps trust for it: `X-Forwarded-Host` and `Forwarded`
/// (rewritten from the request it received), and `X-Forwarded-Client-Cert`, the client
/// certificate of an mTLS connection, which the gorouter strips from clients or forwards only as
/// its `router.forwarded_client_cert` setting says. Promfetcher skips the gorouter, so a caller's
/// values would reach the app as if the router had vouched for them. `X-Forwarded-Port` and
/// `X-Forwarded-Prefix` are not here: the gorouter neither sets nor sanitises them, a caller can
/// send them to the app through it. Tracing headers (`X-Request-Start`, `X-Vcap-Request-Id`,
/// `X-B3-*`, `traceparent`) are forwarded: apps do not trust them for identity.
const MANAGED_BY_ROUTER: [&str; 3] = ["x-forwarded-host", "forwarded", "x-forwarded-client-cert"];

/// Filters the caller's request headers down to those forwarded to instances: every end-to-end
/// header (`Authorization`, `Cookie`, custom `X-...` headers, tracing headers) except hop-by-hop
/// headers (`Connection`, `Keep-Alive`, `Proxy-Authenticate`, `Proxy-Authorization`, `TE`, `Trailer`,
/// `Transfer-Encoding`, `Upgrade`, `Proxy-Connection`, and every header named in the caller's
/// `Connection` header), the headers promfetcher sets itself (`Host`, `Accept`, `Accept-Encoding`,
/// `Content-Length`, `Content-Type`, `Expect`, `User-Agent`, `X-Prometheus-Scrape-Timeout-Seconds`,
/// `X-Forwarded-For`, `X-Forwarded-Proto`, `X-Promfetcher-Scrapping`) and those the gorouter sets or
/// sanitises for apps to trust (`X-Forwarded-Host`, `Forwarded`, `X-Forwarded-Client-Cert`).
pub fn forwardable_headers(incoming: &HeaderMap) -> HeaderMap {
    let named_by_connection: HashSet<String> = incoming
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|token| token.trim().to_ascii_lowercase())
        .filter(|token| !token.is_empty())
        .collect();

    let mut forwarded = HeaderMap::with_capacity(incoming.len());
    for (name, value) in incoming {
        if is_forwardable_name(name) && !named_by_connection.contains(name.as_str()) {
            forwarded.append(name.clone(), value.clone());
        }
    }
    forwarded
}

/// Whether a header name may be forwarded at all (the static part of [`forwardable_headers`]).
/// `HeaderName`s are always lowercase.
pub(crate) fn is_forwardable_name(name: &HeaderName) -> bool {
    let name = name.as_str();
    !HOP_BY_HOP.contains(&name)
        && !SET_BY_PROMFETCHER.contains(&name)
        && !MANAGED_BY_ROUTER.contains(&name)
}

/// A duration as seconds with at most three decimals and no trailing zeros: `10`, `2.5`, `0.125`.
pub(crate) fn format_timeout_seconds(timeout: Duration) -> String {
    let millis = timeout.as_millis();
    let mut text = (millis / 1000).to_string();
    let frac = millis % 1000;
    if frac != 0 {
        let digits = [frac / 100, frac / 10 % 10, frac % 10];
        let kept = digits
            .iter()
            .rposition(|&d| d != 0)
            .map_or(0, |last| last + 1);
        text.push('.');
        text.extend(
            digits[..kept]
                .iter()
                .filter_map(|&d| char::from_digit(d as u32, 10)),
        );
    }
    text
}

/// The headers of one scrape request: the forwarded ones (filtered again, in case the caller did not
/// use [`forwardable_headers`]) and promfetcher's own. `Host` is set by the caller of this function,
/// since it can fail on a malformed route host.
pub(crate) fn request_headers(
    forwarded: &HeaderMap,
    timeout: Duration,
    forwarded_proto: &str,
    forwarded_for: Option<&str>,
) -> HeaderMap {
    let mut headers = HeaderMap::with_capacity(forwarded.len() + 9);
    for (name, value) in forwarded {
        if is_forwardable_name(name) {
            headers.append(name.clone(), value.clone());
        }
    }
    headers.insert(header::USER_AGENT, HeaderValue::from_static(USER_AGENT));
    headers.insert(header::ACCEPT, HeaderValue::from_static(ACCEPT));
    headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("gzip"));
    if let Ok(value) = HeaderValue::from_str(&format_timeout_seconds(timeout)) {
        headers.insert(SCRAPE_TIMEOUT_NAME, value);
    }
    let proto = match forwarded_proto {
        "https" => HeaderValue::from_static("https"),
        _ => HeaderValue::from_static("http"),
    };
    headers.insert(X_FORWARDED_PROTO_NAME, proto);
    if let Some(value) = forwarded_for.and_then(|v| HeaderValue::from_str(v).ok()) {
        headers.insert(X_FORWARDED_FOR_NAME, value);
    }
    headers.insert(SCRAPPING_NAME, HeaderValue::from_static("true"));
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        headers
    }

    #[test]
    fn end_to_end_headers_are_forwarded_and_the_rest_dropped() {
        let incoming = map(&[
            ("Authorization", "Bearer t0ken"),
            ("Cookie", "a=1"),
            ("Cookie", "b=2"),
            ("X-Custom", "yes"),
            ("X-Scope-OrgID", "tenant"),
            ("Connection", "keep-alive, X-Drop-Me"),
            ("Connection", "x-also-dropped"),
            ("X-Drop-Me", "1"),
            ("X-Also-Dropped", "1"),
            ("Keep-Alive", "timeout=5"),
            ("Proxy-Authorization", "Basic cHJveHk="),
            ("Proxy-Authenticate", "Basic"),
            ("Proxy-Connection", "keep-alive"),
            ("TE", "trailers"),
            ("Trailer", "X-T"),
            ("Transfer-Encoding", "chunked"),
            ("Upgrade", "websocket"),
            ("Host", "evil.example"),
            ("Accept", "text/html"),
            ("Accept-Encoding", "br"),
            ("Content-Length", "3"),
            ("Content-Type", "text/plain"),
            ("Expect", "100-continue"),
            ("User-Agent", "Prometheus/3.0"),
            ("X-Prometheus-Scrape-Timeout-Seconds", "999"),
            ("X-Forwarded-For", "6.6.6.6"),
            ("X-Forwarded-Proto", "gopher"),
            ("X-Forwarded-Host", "evil.example"),
            ("Forwarded", "for=6.6.6.6"),
            (
                "X-Forwarded-Client-Cert",
                "Hash=forged;Subject=\"CN=admin\"",
            ),
            ("X-Promfetcher-Scrapping", "false"),
            ("X-Forwarded-Port", "443"),
            ("X-Forwarded-Prefix", "/app"),
            ("X-Request-Start", "1700000000000"),
            ("X-Vcap-Request-Id", "0b4c7f3e-5c7a-4c56-8d1e-2f0d5c1e9a11"),
            ("X-B3-TraceId", "463ac35c9f6413ad"),
            (
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
        ]);
        let forwarded = forwardable_headers(&incoming);
        let mut names: Vec<&str> = forwarded.keys().map(|n| n.as_str()).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "authorization",
                "cookie",
                "traceparent",
                "x-b3-traceid",
                "x-custom",
                "x-forwarded-port",
                "x-forwarded-prefix",
                "x-request-start",
                "x-scope-orgid",
                "x-vcap-request-id",
            ]
        );
        assert_eq!(forwarded["authorization"], "Bearer t0ken");
        let cookies: Vec<_> = forwarded.get_all("cookie").iter().collect();
        assert_eq!(cookies, ["a=1", "b=2"]);
    }

    #[test]
    fn timeout_header_has_at_most_three_decimals() {
        let cases = [
            (Duration::from_secs(10), "10"),
            (Duration::from_millis(2500), "2.5"),
            (Duration::from_millis(125), "0.125"),
            (Duration::from_micros(1_234_567), "1.234"),
            (Duration::from_millis(9_950), "9.95"),
            (Duration::ZERO, "0"),
        ];
        for (timeout, text) in cases {
            assert_eq!(format_timeout_seconds(timeout), text, "{timeout:?}");
        }
    }

    #[test]
    fn own_headers_override_forwarded_ones() {
        // A map that was not filtered must still not override promfetcher's headers.
        let forwarded = map(&[
            ("Accept", "text/html"),
            ("X-Forwarded-For", "6.6.6.6"),
            ("Transfer-Encoding", "chunked"),
            ("X-Forwarded-Client-Cert", "Hash=forged"),
            ("X-Custom", "kept"),
        ]);
        let headers = request_headers(
            &forwarded,
            Duration::from_millis(1500),
            "https",
            Some("10.0.0.1"),
        );
        assert_eq!(headers["accept"], ACCEPT);
        assert_eq!(headers["user-agent"], USER_AGENT);
        assert_eq!(headers["accept-encoding"], "gzip");
        assert_eq!(headers[SCRAPE_TIMEOUT_HEADER], "1.5");
        assert_eq!(headers["x-forwarded-proto"], "https");
        assert_eq!(headers["x-forwarded-for"], "10.0.0.1");
        assert_eq!(headers[SCRAPPING_HEADER], "true");
        assert_eq!(headers["x-custom"], "kept");
        assert!(!headers.contains_key("transfer-encoding"));
        assert!(!headers.contains_key("x-forwarded-client-cert"));
        assert_eq!(headers.get_all("accept").iter().count(), 1);
        assert_eq!(headers.get_all("x-forwarded-for").iter().count(), 1);
    }
}
