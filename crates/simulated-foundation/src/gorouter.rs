//! The simulated gorouter: its route table encoded byte for byte as gorouter's `GET /routes`
//! (Go `encoding/json` output), its basic-auth rules, and the handler of its routes listener.
//! It routes no traffic to the apps; it only publishes where they are.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, AUTHORIZATION, CONNECTION, CONTENT_TYPE, WWW_AUTHENTICATE};
use hyper::{Request, Response, StatusCode};

use super::serve::Answer;

/// How the simulated gorouter answers `GET /routes` (after authentication); switch it at run
/// time with [`super::Foundation::set_gorouter_mode`]. `/health` is not affected.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum GorouterMode {
    /// The route table, as real gorouter serves it.
    #[default]
    Normal,
    /// This status with a short text body.
    Status(u16),
    /// 200 `application/json` with a body that is not JSON.
    Garbage,
    /// Reads the request and never answers.
    Hang,
}

/// One endpoint of a route pool, with the fields of gorouter's `Endpoint.MarshalJSON` that the
/// simulation uses, in the order Go writes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteEndpoint {
    /// `ip:port`; for a TLS endpoint the TLS port.
    pub address: String,
    pub availability_zone: String,
    pub protocol: String,
    pub tls: bool,
    pub ttl: i64,
    /// Omitted when empty.
    pub route_service_url: String,
    /// `None` is written as `null`; keys are written sorted.
    pub tags: Option<BTreeMap<String, String>>,
    /// Omitted when empty.
    pub private_instance_id: String,
    /// Omitted when empty.
    pub server_cert_domain_san: String,
}

/// gorouter's `RouteKey()`: lower-cased, query string cut, trailing `/` trimmed.
pub fn route_key(uri: &str) -> String {
    let without_query = uri.split('?').next().unwrap_or_default();
    without_query.trim_end_matches('/').to_lowercase()
}

/// The exact body of `GET /routes`: one line of JSON as Go's `json.Encoder` writes a
/// `map[route.Uri]*EndpointPool`, followed by `\n`. Route keys sort because the map is ordered.
pub fn encode_routes(table: &BTreeMap<String, Vec<RouteEndpoint>>) -> String {
    let mut out = String::with_capacity(64 + table.len() * 700);
    out.push('{');
    for (i, (key, endpoints)) in table.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_go_string(&mut out, key);
        out.push_str(":[");
        for (j, endpoint) in endpoints.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            write_endpoint(&mut out, endpoint);
        }
        out.push(']');
    }
    out.push_str("}\n");
    out
}

fn write_endpoint(out: &mut String, e: &RouteEndpoint) {
    out.push_str("{\"address\":");
    write_go_string(out, &e.address);
    out.push_str(",\"availability_zone\":");
    write_go_string(out, &e.availability_zone);
    out.push_str(",\"protocol\":");
    write_go_string(out, &e.protocol);
    out.push_str(if e.tls {
        ",\"tls\":true"
    } else {
        ",\"tls\":false"
    });
    out.push_str(",\"ttl\":");
    out.push_str(&e.ttl.to_string());
    write_omitempty(out, "route_service_url", &e.route_service_url);
    out.push_str(",\"tags\":");
    match &e.tags {
        None => out.push_str("null"),
        Some(tags) => {
            out.push('{');
            for (i, (k, v)) in tags.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_go_string(out, k);
                out.push(':');
                write_go_string(out, v);
            }
            out.push('}');
        }
    }
    write_omitempty(out, "private_instance_id", &e.private_instance_id);
    write_omitempty(out, "server_cert_domain_san", &e.server_cert_domain_san);
    out.push('}');
}

fn write_omitempty(out: &mut String, name: &str, value: &str) {
    if !value.is_empty() {
        out.push_str(",\"");
        out.push_str(name);
        out.push_str("\":");
        write_go_string(out, value);
    }
}

/// A JSON string as Go's `encoding/json` (Go 1.22 and later) writes it with HTML escaping on:
/// `<`, `>`, `&`, U+2028 and U+2029 as `\uXXXX`, the short escapes `\" \\ \n \r \t \b \f`, other
/// control characters as `\u00xx` (lower-case hex), everything else verbatim.
pub fn write_go_string(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' | '\u{0}'..='\u{1f}' => {
                let code = c as u32;
                out.push_str("\\u");
                for shift in [12, 8, 4, 0] {
                    out.push(char::from(HEX[((code >> shift) & 0xf) as usize]));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The answer gorouter's `common/http.BasicAuth` checks: the header is `Basic <base64>` and the
/// decoded text splits on `:` into exactly two parts equal to `user` and `pass`. A password
/// that contains `:` therefore never authenticates.
pub fn gorouter_auth_ok(header: Option<&HeaderValue>, user: &str, pass: &str) -> bool {
    let Some(value) = header.and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let Some(encoded) = value.strip_prefix("Basic ") else {
        return false;
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded) else {
        return false;
    };
    let Ok(decoded) = String::from_utf8(decoded) else {
        return false;
    };
    let parts: Vec<&str> = decoded.split(':').collect();
    parts.len() == 2 && parts[0] == user && parts[1] == pass
}

/// What the routes listener needs to answer.
/// The `/routes` body and when it was last served.
pub struct ServedRoutes {
    pub body: Bytes,
    /// When `/routes` last answered with this body; `None` before.
    pub last_served: Option<Instant>,
}

impl ServedRoutes {
    pub fn new(body: Bytes) -> ServedRoutes {
        ServedRoutes {
            body,
            last_served: None,
        }
    }
}

pub struct GorouterState {
    pub user: String,
    pub pass: String,
    pub routes: Mutex<ServedRoutes>,
    pub mode: Arc<Mutex<GorouterMode>>,
}

/// Answers one request to the routes listener. `/health` and `/healthz` answer 200 without
/// auth, as on gorouter's status port; every other path needs auth, and only `/routes` exists.
pub async fn handle<B>(state: Arc<GorouterState>, req: Request<B>) -> Answer {
    let path = req.uri().path();
    if path == "/health" || path == "/healthz" {
        return text(StatusCode::OK, "ok\n");
    }
    if !gorouter_auth_ok(req.headers().get(AUTHORIZATION), &state.user, &state.pass) {
        // gorouter writes this one by hand: Go sniffs the content type, no `nosniff`.
        let mut answer = text(StatusCode::UNAUTHORIZED, "401 Unauthorized\n");
        answer
            .headers_mut()
            .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Basic"));
        return answer;
    }
    if path != "/routes" {
        return go_error(StatusCode::NOT_FOUND, "404 page not found\n");
    }
    let mode = lock(&state.mode).clone();
    match mode {
        GorouterMode::Normal => {
            let mut routes = lock(&state.routes);
            routes.last_served = Some(Instant::now());
            json(routes.body.clone())
        }
        GorouterMode::Garbage => json(Bytes::from_static(
            b"<html><body>502 Bad Gateway: upstream sent garbage</body></html>\n",
        )),
        GorouterMode::Status(code) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let reason = status.canonical_reason().unwrap_or("simulated status");
            go_error(status, &format!("{} {reason}\n", status.as_u16()))
        }
        GorouterMode::Hang => std::future::pending().await,
    }
}

/// The guarded value, also after a panic elsewhere (the simulation keeps serving).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn json(body: Bytes) -> Answer {
    let mut answer = Response::new(Full::new(body));
    let headers = answer.headers_mut();
    headers.insert(CONNECTION, HeaderValue::from_static("close"));
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    answer
}

fn text(status: StatusCode, body: &str) -> Answer {
    let mut answer = Response::new(Full::new(Bytes::copy_from_slice(body.as_bytes())));
    *answer.status_mut() = status;
    answer.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    answer
}

/// An answer as Go's `http.Error` writes it.
fn go_error(status: StatusCode, body: &str) -> Answer {
    let mut answer = text(status, body);
    answer.headers_mut().insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(address: &str) -> RouteEndpoint {
        RouteEndpoint {
            address: address.to_owned(),
            availability_zone: String::new(),
            protocol: "http2".to_owned(),
            tls: false,
            ttl: -1,
            route_service_url: String::new(),
            tags: None,
            private_instance_id: String::new(),
            server_cert_domain_san: String::new(),
        }
    }

    #[test]
    fn matches_gorouter_registry_test_fixture() {
        let mut e = endpoint("192.168.1.1:1234");
        e.route_service_url = "https://my-routeService.com".to_owned();
        let table = BTreeMap::from([("foo".to_owned(), vec![e])]);
        assert_eq!(
            encode_routes(&table),
            "{\"foo\":[{\"address\":\"192.168.1.1:1234\",\"availability_zone\":\"\",\
             \"protocol\":\"http2\",\"tls\":false,\"ttl\":-1,\
             \"route_service_url\":\"https://my-routeService.com\",\"tags\":null}]}\n"
        );
    }

    #[test]
    fn empty_table_is_empty_object() {
        assert_eq!(encode_routes(&BTreeMap::new()), "{}\n");
    }

    #[test]
    fn strings_escape_like_go() {
        let mut out = String::new();
        write_go_string(&mut out, "a&b<c>d\"e\\f\ng\u{1}\u{8}\u{c}\u{2028}é");
        assert_eq!(
            out,
            "\"a\\u0026b\\u003cc\\u003ed\\\"e\\\\f\\ng\\u0001\\b\\f\\u2028é\""
        );
    }

    #[test]
    fn route_keys_are_normalised_like_gorouter() {
        assert_eq!(
            route_key("Shop.Apps.Dev.Local/API/?x=1"),
            "shop.apps.dev.local/api"
        );
        assert_eq!(route_key("a.b/c&d"), "a.b/c&d");
    }

    #[test]
    fn basic_auth_follows_gorouter_rules() {
        let header = |s: &str| HeaderValue::from_str(s).ok();
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let ok = |h: Option<HeaderValue>, pass: &str| gorouter_auth_ok(h.as_ref(), "u", pass);
        assert!(ok(header(&format!("Basic {}", b64("u:p"))), "p"));
        assert!(!ok(None, "p"));
        assert!(!ok(header(&format!("Basic {}", b64("u:x"))), "p"));
        assert!(!ok(header(&format!("basic {}", b64("u:p"))), "p"));
        assert!(!ok(header("Basic not base64!"), "p"));
        // The right password, but it contains ':' so the split gives three parts.
        assert!(!ok(header(&format!("Basic {}", b64("u:p:q"))), "p:q"));
    }
}
