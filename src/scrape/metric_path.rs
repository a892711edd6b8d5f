//! The path promfetcher scrapes on an instance, validated once when it enters the system (from
//! `?metric_path=`, the service broker or the config), so that nothing downstream can be tricked into
//! talking to another host.
//!
//! The original pasted `metric_path` into the URL after the instance address, so
//! `metric_path=@evil.example/x` sent the request to `evil.example` (server-side request forgery).
//! A [`MetricPath`] holds only an absolute path and an optional query: no scheme, no authority, no
//! userinfo, no fragment, no dot segments, no control characters, no encoded slashes. Characters that
//! are not allowed raw in a URL (space, non-ASCII, `"<>` ...) are percent-encoded, so [`MetricPath::as_str`]
//! is exactly what goes on the wire. This module does no I/O and builds no URL.

use std::fmt;

use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};

/// Longest accepted `metric_path`, in bytes, before and after percent-encoding.
pub const MAX_METRIC_PATH_LEN: usize = 1024;

/// The path scraped when nobody asked for another one.
pub const DEFAULT_METRIC_PATH: &str = "/metrics";

/// Characters percent-encoded when they appear raw. `%` is not in the set: existing escapes are kept
/// (and validated). `?` and `#` never reach the encoder: `?` splits path from query, `#` is rejected.
const ENCODE: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'<')
    .add(b'>')
    .add(b'`')
    .add(b'{')
    .add(b'}');

/// A validated path (plus optional query) to scrape on an instance. Never contains a scheme, an
/// authority, userinfo or a fragment; always starts with `/`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MetricPath {
    /// Path and optional query, as sent on the request line.
    full: String,
    /// Byte length of the path part of `full`; a query (without `?`) follows after one more byte.
    path_len: usize,
}

/// Why a `metric_path` was refused. Displays as `invalid metric_path: <reason>`, on one line.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("invalid metric_path: {reason}")]
pub struct InvalidMetricPath {
    reason: String,
}

impl InvalidMetricPath {
    fn new(reason: impl Into<String>) -> InvalidMetricPath {
        InvalidMetricPath {
            reason: reason.into(),
        }
    }

    /// The reason alone, without the `invalid metric_path: ` prefix.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl MetricPath {
    /// Validates user input such as `/metrics`, `metrics` (a missing leading `/` is added, as the
    /// original did), `/actuator/prometheus` or `/metrics?format=prometheus&x=1`.
    ///
    /// Surrounding spaces are trimmed. Input that is empty after trimming is an error: using
    /// [`MetricPath::default_path`] instead is the caller's decision.
    pub fn parse(input: &str) -> Result<MetricPath, InvalidMetricPath> {
        let input = input.trim_matches(' ');
        if input.is_empty() {
            return Err(InvalidMetricPath::new("metric_path is empty"));
        }
        if input.len() > MAX_METRIC_PATH_LEN {
            return Err(too_long());
        }
        if let Some(c) = input.chars().find(|c| c.is_control()) {
            return Err(InvalidMetricPath::new(format!(
                "control character U+{:04X} is not allowed (CR, LF and TAB included)",
                u32::from(c)
            )));
        }
        if input.contains('\\') {
            return Err(InvalidMetricPath::new(
                "backslash is not allowed (use '/' to separate path segments)",
            ));
        }
        if input.contains('#') {
            return Err(InvalidMetricPath::new(
                "'#' is not allowed (a fragment is never sent to the instance)",
            ));
        }

        let (path, query) = match input.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (input, None),
        };

        if path.starts_with("//") {
            return Err(InvalidMetricPath::new(
                "'//' at the start names a host; give only the path, such as /metrics",
            ));
        }
        let before_first_slash = path.split('/').next().unwrap_or_default();
        if before_first_slash.contains(':') {
            return Err(InvalidMetricPath::new(
                "a scheme or host ('xyz:' before the first '/') is not allowed; give only the path, such as /metrics",
            ));
        }
        if path.contains('@') {
            return Err(InvalidMetricPath::new(
                "'@' is not allowed (a path cannot name another host)",
            ));
        }

        check_escapes(path, Part::Path)?;
        check_segments(path)?;
        if let Some(query) = query {
            check_escapes(query, Part::Query)?;
        }

        let mut full = String::with_capacity(input.len() + 1);
        if !path.starts_with('/') {
            full.push('/');
        }
        full.extend(utf8_percent_encode(path, ENCODE));
        let path_len = full.len();
        if let Some(query) = query.filter(|q| !q.is_empty()) {
            full.push('?');
            full.extend(utf8_percent_encode(query, ENCODE));
        }
        if full.len() > MAX_METRIC_PATH_LEN {
            return Err(too_long());
        }
        Ok(MetricPath { full, path_len })
    }

    /// `/metrics`, the path scraped when nobody asked for another one.
    pub fn default_path() -> MetricPath {
        MetricPath {
            full: DEFAULT_METRIC_PATH.to_owned(),
            path_len: DEFAULT_METRIC_PATH.len(),
        }
    }

    /// The path, always starting with `/`, percent-encoded as sent.
    pub fn path(&self) -> &str {
        &self.full[..self.path_len]
    }

    /// The query without the leading `?`, if there is a non-empty one.
    pub fn query(&self) -> Option<&str> {
        self.full.get(self.path_len + 1..)
    }

    /// Path and query (`/metrics?x=1`), as they appear on the request line.
    pub fn as_str(&self) -> &str {
        &self.full
    }
}

impl Default for MetricPath {
    fn default() -> MetricPath {
        MetricPath::default_path()
    }
}

impl fmt::Display for MetricPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full)
    }
}

impl std::str::FromStr for MetricPath {
    type Err = InvalidMetricPath;

    fn from_str(s: &str) -> Result<MetricPath, InvalidMetricPath> {
        MetricPath::parse(s)
    }
}

fn too_long() -> InvalidMetricPath {
    InvalidMetricPath::new(format!("longer than {MAX_METRIC_PATH_LEN} bytes"))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    Path,
    Query,
}

/// Every `%` starts a valid escape; no escape decodes to a control character, and in the path none
/// decodes to `/` or `\` (which would smuggle a segment boundary past [`check_segments`]).
fn check_escapes(text: &str, part: Part) -> Result<(), InvalidMetricPath> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'%' {
            i += 1;
            continue;
        }
        let decoded = match (bytes.get(i + 1), bytes.get(i + 2)) {
            (Some(&hi), Some(&lo)) => hex(hi).zip(hex(lo)).map(|(hi, lo)| hi << 4 | lo),
            _ => None,
        };
        let Some(byte) = decoded else {
            return Err(InvalidMetricPath::new(format!(
                "invalid percent-encoding at byte {} ('%' must be followed by two hex digits)",
                i
            )));
        };
        if byte.is_ascii_control() {
            return Err(InvalidMetricPath::new(format!(
                "percent-encoded control character %{byte:02X} is not allowed"
            )));
        }
        if part == Part::Path && (byte == b'/' || byte == b'\\') {
            return Err(InvalidMetricPath::new(
                "percent-encoded '/' or '\\' (%2F, %5C) is not allowed in the path",
            ));
        }
        i += 3;
    }
    Ok(())
}

/// No `.` or `..` segment, written plainly or percent-encoded (`%2e%2e`, `%2E.`).
fn check_segments(path: &str) -> Result<(), InvalidMetricPath> {
    for segment in path.split('/') {
        let decoded = segment.replace("%2e", ".").replace("%2E", ".");
        if decoded == "." || decoded == ".." {
            return Err(InvalidMetricPath::new(
                "dot segments ('.' or '..', also percent-encoded) are not allowed",
            ));
        }
    }
    Ok(())
}

fn hex(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_inputs_and_their_normal_form() {
        let table: &[(&str, &str, &str, Option<&str>)] = &[
            // input, as_str, path, query
            ("/metrics", "/metrics", "/metrics", None),
            ("metrics", "/metrics", "/metrics", None),
            ("  /metrics  ", "/metrics", "/metrics", None),
            ("/", "/", "/", None),
            (
                "/actuator/prometheus",
                "/actuator/prometheus",
                "/actuator/prometheus",
                None,
            ),
            ("/metrics?x=1", "/metrics?x=1", "/metrics", Some("x=1")),
            (
                "/metrics?format=prometheus&x=1",
                "/metrics?format=prometheus&x=1",
                "/metrics",
                Some("format=prometheus&x=1"),
            ),
            ("metrics?x=1", "/metrics?x=1", "/metrics", Some("x=1")),
            ("/metrics?", "/metrics", "/metrics", None),
            // '@', ':' and '/' are harmless in a query, which never reaches the authority.
            (
                "/federate?match[]={job=\"a\"}&u=a@b:c/d%2F",
                "/federate?match[]=%7Bjob=%22a%22%7D&u=a@b:c/d%2F",
                "/federate",
                Some("match[]=%7Bjob=%22a%22%7D&u=a@b:c/d%2F"),
            ),
            ("/a:b/c", "/a:b/c", "/a:b/c", None),
            (
                "/.well-known/metrics",
                "/.well-known/metrics",
                "/.well-known/metrics",
                None,
            ),
            ("/a/.../b", "/a/.../b", "/a/.../b", None),
            (
                "/my metrics/é",
                "/my%20metrics/%C3%A9",
                "/my%20metrics/%C3%A9",
                None,
            ),
            ("/a%20b", "/a%20b", "/a%20b", None),
        ];
        for &(input, full, path, query) in table {
            let parsed = MetricPath::parse(input)
                .unwrap_or_else(|e| panic!("{input:?} should be accepted, got {e}"));
            assert_eq!(parsed.as_str(), full, "as_str of {input:?}");
            assert_eq!(parsed.path(), path, "path of {input:?}");
            assert_eq!(parsed.query(), query, "query of {input:?}");
        }
    }

    #[test]
    fn rejected_inputs_name_the_reason() {
        let table: &[(&str, &str)] = &[
            ("", "metric_path is empty"),
            ("   ", "metric_path is empty"),
            (
                "@evil.example/x",
                "'@' is not allowed (a path cannot name another host)",
            ),
            (
                "/x@evil.example",
                "'@' is not allowed (a path cannot name another host)",
            ),
            (
                "//evil.example/x",
                "'//' at the start names a host; give only the path, such as /metrics",
            ),
            (
                "http://evil/x",
                "a scheme or host ('xyz:' before the first '/') is not allowed; give only the path, such as /metrics",
            ),
            (
                "evil.example:8080/x",
                "a scheme or host ('xyz:' before the first '/') is not allowed; give only the path, such as /metrics",
            ),
            (
                "javascript:alert(1)",
                "a scheme or host ('xyz:' before the first '/') is not allowed; give only the path, such as /metrics",
            ),
            (
                "\\\\evil",
                "backslash is not allowed (use '/' to separate path segments)",
            ),
            (
                "/a\\b",
                "backslash is not allowed (use '/' to separate path segments)",
            ),
            (
                "/metrics#frag",
                "'#' is not allowed (a fragment is never sent to the instance)",
            ),
            (
                "/a/../b",
                "dot segments ('.' or '..', also percent-encoded) are not allowed",
            ),
            (
                "/a/./b",
                "dot segments ('.' or '..', also percent-encoded) are not allowed",
            ),
            (
                "..",
                "dot segments ('.' or '..', also percent-encoded) are not allowed",
            ),
            (
                "/a/..",
                "dot segments ('.' or '..', also percent-encoded) are not allowed",
            ),
            (
                "/%2e%2e/x",
                "dot segments ('.' or '..', also percent-encoded) are not allowed",
            ),
            (
                "/x/%2E./y",
                "dot segments ('.' or '..', also percent-encoded) are not allowed",
            ),
            (
                "/x/.%2e",
                "dot segments ('.' or '..', also percent-encoded) are not allowed",
            ),
            (
                "/x/%2e",
                "dot segments ('.' or '..', also percent-encoded) are not allowed",
            ),
            (
                "/a%2fb",
                "percent-encoded '/' or '\\' (%2F, %5C) is not allowed in the path",
            ),
            (
                "/a%2F..%2Fb",
                "percent-encoded '/' or '\\' (%2F, %5C) is not allowed in the path",
            ),
            (
                "/a%5cb",
                "percent-encoded '/' or '\\' (%2F, %5C) is not allowed in the path",
            ),
            (
                "/x%0d%0aHost:%20evil",
                "percent-encoded control character %0D is not allowed",
            ),
            (
                "/metrics?x=%0a",
                "percent-encoded control character %0A is not allowed",
            ),
            (
                "/x\r\nHost: evil",
                "control character U+000D is not allowed (CR, LF and TAB included)",
            ),
            (
                "/x\nHost: evil",
                "control character U+000A is not allowed (CR, LF and TAB included)",
            ),
            (
                "/x\tb",
                "control character U+0009 is not allowed (CR, LF and TAB included)",
            ),
            (
                "/x\u{0}",
                "control character U+0000 is not allowed (CR, LF and TAB included)",
            ),
            (
                "/x\u{85}",
                "control character U+0085 is not allowed (CR, LF and TAB included)",
            ),
            (
                "/a%zz",
                "invalid percent-encoding at byte 2 ('%' must be followed by two hex digits)",
            ),
            (
                "/a%2",
                "invalid percent-encoding at byte 2 ('%' must be followed by two hex digits)",
            ),
            (
                "/a?b=%",
                "invalid percent-encoding at byte 2 ('%' must be followed by two hex digits)",
            ),
        ];
        for &(input, reason) in table {
            let err = MetricPath::parse(input).expect_err(&format!("{input:?} should be rejected"));
            assert_eq!(err.reason(), reason, "reason for {input:?}");
            assert_eq!(
                err.to_string(),
                format!("invalid metric_path: {reason}"),
                "message for {input:?}"
            );
            assert!(!err.to_string().contains('\n'));
        }
    }

    #[test]
    fn length_is_capped_before_and_after_encoding() {
        let longest = format!("/{}", "a".repeat(MAX_METRIC_PATH_LEN - 1));
        assert!(MetricPath::parse(&longest).is_ok());
        let too_long = format!("/{}", "a".repeat(MAX_METRIC_PATH_LEN));
        assert_eq!(
            MetricPath::parse(&too_long).unwrap_err().to_string(),
            "invalid metric_path: longer than 1024 bytes"
        );
        // 400 spaces are 400 bytes of input but 1200 once encoded.
        let grows = format!("/{}x", " ".repeat(400));
        assert_eq!(
            MetricPath::parse(&grows).unwrap_err().reason(),
            "longer than 1024 bytes"
        );
    }

    #[test]
    fn default_path_is_metrics() {
        let default = MetricPath::default_path();
        assert_eq!(default.as_str(), "/metrics");
        assert_eq!(default.path(), "/metrics");
        assert_eq!(default.query(), None);
        assert_eq!(default, MetricPath::parse("metrics").unwrap());
    }
}
