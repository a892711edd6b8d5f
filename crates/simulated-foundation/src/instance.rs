//! One simulated app instance: records every request it receives, waits its delay, then answers
//! as its [`Behaviour`] says (metrics, a status, garbage, a redirect). Bodies are built once at
//! start and shared as `Bytes`; the handler does no formatting on the request path.

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use flate2::write::GzEncoder;
use flate2::Compression;
use http_body_util::Full;
use hyper::header::{
    HeaderValue, ACCEPT_ENCODING, AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, LOCATION, VARY,
    WWW_AUTHENTICATE,
};
use hyper::{Request, Response, StatusCode};

use super::metrics_body::{content_type, garbage_body, healthy_body};
use super::serve::Answer;
use super::spec::{Behaviour, InstanceSpec};

/// One request as an instance received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenRequest {
    pub method: String,
    pub path_and_query: String,
    /// Header names lower-case, in received order; values decoded lossily as UTF-8.
    pub headers: Vec<(String, String)>,
}

impl SeenRequest {
    /// What `req` looked like: method, path and query, headers.
    pub(super) fn of<B>(req: &Request<B>) -> SeenRequest {
        SeenRequest {
            method: req.method().as_str().to_owned(),
            path_and_query: req
                .uri()
                .path_and_query()
                .map_or_else(|| req.uri().path().to_owned(), |pq| pq.as_str().to_owned()),
            headers: req
                .headers()
                .iter()
                .map(|(name, value)| {
                    let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                    (name.as_str().to_owned(), value)
                })
                .collect(),
        }
    }

    /// The first value of header `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The requests an instance has seen, shared between its handler and the foundation.
pub type SeenLog = Arc<Mutex<Vec<SeenRequest>>>;

/// How the instance answers on its metrics path, resolved at start.
enum Reply {
    Body {
        content_type: HeaderValue,
        plain: Bytes,
        /// Present when the instance gzips.
        gzipped: Option<Bytes>,
    },
    Status(StatusCode, Bytes),
    Redirect(HeaderValue),
}

/// Everything the handler of one instance needs.
pub struct InstanceState {
    metrics_path: String,
    /// The credentials a request must carry, when auth is on.
    basic_auth: Option<(String, String)>,
    delay: Duration,
    reply: Reply,
    seen: SeenLog,
}

impl InstanceState {
    /// Resolves `spec` for instance `index`: builds its body once, validates the status code and
    /// redirect location. `Behaviour::Down` and `Behaviour::External` are not served and are
    /// rejected here.
    pub fn new(spec: &InstanceSpec, index: usize, seen: SeenLog) -> io::Result<Self> {
        let ctype = HeaderValue::from_static(content_type(spec.format));
        let body = |text: String| -> io::Result<Reply> {
            let gzipped = if spec.gzip {
                Some(Bytes::from(gzip(text.as_bytes())?))
            } else {
                None
            };
            Ok(Reply::Body {
                content_type: ctype.clone(),
                plain: Bytes::from(text),
                gzipped,
            })
        };
        let reply = match &spec.behaviour {
            Behaviour::Healthy => body(healthy_body(spec.format, index, spec.extra_series))?,
            Behaviour::Garbage => body(garbage_body(index))?,
            Behaviour::Status(code) => {
                let status = StatusCode::from_u16(*code).map_err(|_| {
                    invalid(format!(
                        "Behaviour::Status({code}) is not an HTTP status code; use 100-999"
                    ))
                })?;
                let reason = status.canonical_reason().unwrap_or("simulated status");
                Reply::Status(status, Bytes::from(format!("{code} {reason}\n")))
            }
            Behaviour::RedirectTo(location) => {
                Reply::Redirect(HeaderValue::from_str(location).map_err(|_| {
                    invalid(format!(
                        "Behaviour::RedirectTo({location:?}) is not a valid Location header value"
                    ))
                })?)
            }
            Behaviour::Down | Behaviour::External(_) => {
                return Err(invalid(format!(
                    "{:?} is not served by the foundation",
                    spec.behaviour
                )));
            }
        };
        Ok(InstanceState {
            metrics_path: spec.metrics_path.clone(),
            basic_auth: spec.basic_auth.clone(),
            delay: spec.delay,
            reply,
            seen,
        })
    }
}

/// Answers one request to an instance.
pub async fn handle<B>(state: Arc<InstanceState>, req: Request<B>) -> Answer {
    let seen = SeenRequest::of(&req);
    state
        .seen
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .push(seen);

    if !state.delay.is_zero() {
        tokio::time::sleep(state.delay).await;
    }

    if let Some((user, pass)) = &state.basic_auth {
        if !app_auth_ok(req.headers().get(AUTHORIZATION), user, pass) {
            let mut answer = plain(
                StatusCode::UNAUTHORIZED,
                Bytes::from_static(b"Unauthorized\n"),
            );
            answer.headers_mut().insert(
                WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"metrics\""),
            );
            return answer;
        }
    }

    if let Reply::Status(status, body) = &state.reply {
        return plain(*status, body.clone());
    }
    if req.uri().path() != state.metrics_path {
        return plain(
            StatusCode::NOT_FOUND,
            Bytes::from_static(b"404 page not found\n"),
        );
    }
    match &state.reply {
        Reply::Body {
            content_type,
            plain: body,
            gzipped,
        } => {
            let gzipped = gzipped
                .as_ref()
                .filter(|_| accepts_gzip(req.headers().get_all(ACCEPT_ENCODING)));
            let mut answer = Response::new(Full::new(gzipped.unwrap_or(body).clone()));
            let headers = answer.headers_mut();
            headers.insert(CONTENT_TYPE, content_type.clone());
            if gzipped.is_some() {
                headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
                headers.insert(VARY, HeaderValue::from_static("Accept-Encoding"));
            }
            answer
        }
        Reply::Redirect(location) => {
            let mut answer = plain(StatusCode::FOUND, Bytes::from_static(b"Found\n"));
            answer.headers_mut().insert(LOCATION, location.clone());
            answer
        }
        Reply::Status(status, body) => plain(*status, body.clone()),
    }
}

pub(super) fn plain(status: StatusCode, body: Bytes) -> Answer {
    let mut answer = Response::new(Full::new(body));
    *answer.status_mut() = status;
    answer.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    answer
}

/// Basic auth as an app framework checks it (RFC 7617): scheme case-insensitive, user and
/// password split at the first `:`, so passwords may contain `:`.
fn app_auth_ok(header: Option<&HeaderValue>, user: &str, pass: &str) -> bool {
    let Some((scheme, encoded)) = header
        .and_then(|h| h.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
    else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return false;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|d| String::from_utf8(d).ok());
    decoded
        .as_deref()
        .and_then(|d| d.split_once(':'))
        .is_some_and(|(u, p)| u == user && p == pass)
}

/// Whether any `Accept-Encoding` value lists `gzip` (or `*`) with a non-zero quality.
fn accepts_gzip<'a>(values: impl IntoIterator<Item = &'a HeaderValue>) -> bool {
    values
        .into_iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut params = item.split(';').map(str::trim);
            let coding = params.next().unwrap_or_default();
            let coding_ok = coding.eq_ignore_ascii_case("gzip") || coding == "*";
            let q_zero = params.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            coding_ok && !q_zero
        })
}

fn gzip(data: &[u8]) -> io::Result<Vec<u8>> {
    use std::io::Write as _;
    let mut encoder = GzEncoder::new(Vec::with_capacity(data.len() / 4 + 64), Compression::fast());
    encoder.write_all(data)?;
    encoder.finish()
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_basic_auth_accepts_colons_in_passwords() {
        let header = |user_pass: &str, scheme: &str| {
            let encoded = base64::engine::general_purpose::STANDARD.encode(user_pass);
            HeaderValue::from_str(&format!("{scheme} {encoded}")).ok()
        };
        let ok = |h: Option<HeaderValue>| app_auth_ok(h.as_ref(), "metrics", "a:b");
        assert!(ok(header("metrics:a:b", "Basic")));
        assert!(ok(header("metrics:a:b", "basic")));
        assert!(!ok(header("metrics:a", "Basic")));
        assert!(!ok(header("metrics:a:b", "Bearer")));
        assert!(!ok(None));
    }

    #[test]
    fn accept_encoding_is_read_with_qualities() {
        let yes = |s: &'static str| accepts_gzip([&HeaderValue::from_static(s)]);
        assert!(yes("gzip"));
        assert!(yes("br, GZIP;q=0.5"));
        assert!(yes("*"));
        assert!(!yes("identity"));
        assert!(!yes("gzip;q=0"));
        assert!(!yes("deflate, gzip; q=0.0"));
        assert!(!accepts_gzip(std::iter::empty()));
    }
}
