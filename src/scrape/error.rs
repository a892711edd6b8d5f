//! What can go wrong while scraping one instance, and while setting the scraper up. Errors are typed
//! here, at the leaf; their texts are one line, fit for a log, and never carry credentials (no URL
//! userinfo, no header values). The bounded label value for `promfetcher_scrape_error` is
//! [`ScrapeError::reason`], a [`FailureReason`], never the text.

use std::error::Error as StdError;

/// Why one scrape failed.
#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    /// The instance did not send headers and body within the scrape timeout.
    #[error("the instance did not answer within the scrape timeout")]
    Timeout,
    /// No TCP connection could be opened (refused, unreachable, bad address).
    #[error("could not connect to the instance: {0}")]
    Connect(String),
    /// The TLS handshake failed (certificate not trusted, wrong name, client certificate refused).
    #[error("TLS handshake with the instance failed: {0}")]
    Tls(String),
    /// The instance answered with this status: a 4xx or 5xx, or a 3xx that is not a redirect to
    /// follow (300, 304, or a redirect without a usable `Location`).
    #[error("the instance answered HTTP {0}")]
    Status(u16),
    /// The instance redirected to another scheme, host or port; not followed. `location` is the
    /// redirect target without userinfo, query or fragment.
    #[error(
        "redirected to another host ({}); set metric_path to the instance's real metrics path",
        location_host(.location)
    )]
    Redirect { location: String },
    /// The instance kept redirecting to itself: more than `max` same-host redirects; the last
    /// one was not followed.
    #[error(
        "too many redirects (more than {max}) within the instance; set metric_path to the \
         instance's real metrics path"
    )]
    TooManyRedirects { max: usize },
    /// The decompressed body grew beyond `limit` bytes; reading stopped there.
    #[error("the instance's metrics exceed the limit of {limit} bytes (after decompression)")]
    TooLarge { limit: u64 },
    /// The body could not be read to its end (connection reset, broken gzip, ...).
    #[error("reading the instance's answer failed: {0}")]
    Read(String),
}

/// Why a target (an instance or an external exporter) gave no metrics: the bounded `error`
/// label of `promfetcher_scrape_error`, the `outcome` of promfetcher's own scrape counters and
/// the `reason` field of the failure's log line. The user documentation lists every
/// [`FailureReason::label`] (a test holds it to that).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureReason {
    Timeout,
    Connect,
    Tls,
    Http4xx,
    Http5xx,
    Redirect,
    TooLarge,
    Read,
    /// The body arrived but is not a valid exposition.
    Parse,
}

impl FailureReason {
    /// Every reason, for pre-registering metrics and checking the documentation.
    pub const ALL: [FailureReason; 9] = [
        FailureReason::Timeout,
        FailureReason::Connect,
        FailureReason::Tls,
        FailureReason::Http4xx,
        FailureReason::Http5xx,
        FailureReason::Redirect,
        FailureReason::TooLarge,
        FailureReason::Read,
        FailureReason::Parse,
    ];

    /// The label value, as the original and the documentation spell it.
    pub fn label(self) -> &'static str {
        match self {
            FailureReason::Timeout => "timeout",
            FailureReason::Connect => "connect",
            FailureReason::Tls => "tls",
            FailureReason::Http4xx => "http_4xx",
            FailureReason::Http5xx => "http_5xx",
            FailureReason::Redirect => "redirect",
            FailureReason::TooLarge => "too_large",
            FailureReason::Read => "read",
            FailureReason::Parse => "parse",
        }
    }
}

impl std::fmt::Display for FailureReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

impl PartialEq<&str> for FailureReason {
    fn eq(&self, other: &&str) -> bool {
        self.label() == *other
    }
}

impl ScrapeError {
    /// Why the scrape gave no metrics, as a bounded [`FailureReason`]. Never raw text.
    pub fn reason(&self) -> FailureReason {
        match self {
            ScrapeError::Timeout => FailureReason::Timeout,
            ScrapeError::Connect(_) => FailureReason::Connect,
            ScrapeError::Tls(_) => FailureReason::Tls,
            ScrapeError::Status(code) if (300..400).contains(code) => FailureReason::Redirect,
            ScrapeError::Status(code) if (400..500).contains(code) => FailureReason::Http4xx,
            ScrapeError::Status(_) => FailureReason::Http5xx,
            ScrapeError::Redirect { .. } | ScrapeError::TooManyRedirects { .. } => {
                FailureReason::Redirect
            }
            ScrapeError::TooLarge { .. } => FailureReason::TooLarge,
            ScrapeError::Read(_) => FailureReason::Read,
        }
    }

    /// Classifies an error reqwest returned while sending the request or reading the headers.
    pub(crate) fn from_send(err: reqwest::Error) -> ScrapeError {
        // reqwest's own text carries the URL; its sources say what happened.
        ScrapeError::from_send_parts(err.is_timeout(), err.is_connect(), &err, err.source())
    }

    /// Classifies an error hyper's client returned while sending the request or reading the
    /// headers (plain-HTTP instances); the same reasons and texts as [`ScrapeError::from_send`].
    pub(crate) fn from_plain_send(err: hyper_util::client::legacy::Error) -> ScrapeError {
        ScrapeError::from_send_parts(chain_timed_out(&err), err.is_connect(), &err, Some(&err))
    }

    fn from_send_parts(
        timed_out: bool,
        connect: bool,
        err: &(dyn StdError + 'static),
        described_from: Option<&(dyn StdError + 'static)>,
    ) -> ScrapeError {
        if timed_out {
            return ScrapeError::Timeout;
        }
        if let Some(tls) = find_rustls_error(err) {
            return ScrapeError::Tls(tls.to_string().replace('\n', " "));
        }
        if connect {
            return ScrapeError::Connect(describe(described_from, "connection failed"));
        }
        // The request went out but no (valid) answer came back: reset before or during headers,
        // malformed response.
        ScrapeError::Read(describe(described_from, "the request failed"))
    }

    /// Classifies an error reqwest returned while streaming the body.
    pub(crate) fn from_body(err: reqwest::Error) -> ScrapeError {
        if err.is_timeout() {
            return ScrapeError::Timeout;
        }
        ScrapeError::Read(describe(err.source(), "the body could not be read"))
    }

    /// Classifies an error hyper returned while streaming a plain-HTTP instance's body.
    pub(crate) fn from_plain_body(err: hyper::Error) -> ScrapeError {
        if chain_timed_out(&err) {
            return ScrapeError::Timeout;
        }
        ScrapeError::Read(describe(Some(&err), "the body could not be read"))
    }
}

/// Whether an error or one of its sources is a timeout (hyper's, or an I/O timeout such as the
/// connect timeout's), as reqwest's `is_timeout` judges it.
fn chain_timed_out(err: &(dyn StdError + 'static)) -> bool {
    chain(Some(err)).any(|e| {
        let hyper_timeout = e
            .downcast_ref::<hyper::Error>()
            .is_some_and(hyper::Error::is_timeout);
        let io_timeout = e
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut);
        hyper_timeout || io_timeout
    })
}

/// `first` and each error it was caused by, in order.
fn chain<'a>(
    first: Option<&'a (dyn StdError + 'static)>,
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(first, |&e| e.source())
}

/// The host (and port, when given) of a redirect target, for the error text.
fn location_host(location: &str) -> String {
    match reqwest::Url::parse(location) {
        Ok(url) => match (url.host_str(), url.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_owned(),
            (None, _) => "no host".to_owned(),
        },
        Err(_) => "unparsable location".to_owned(),
    }
}

/// Strips what must not reach a log from a redirect target: userinfo, query and fragment.
pub(crate) fn sanitize_location(url: &reqwest::Url) -> String {
    let mut url = url.clone();
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.set_query(None);
    url.set_fragment(None);
    url.to_string()
}

/// Finds a rustls error in the source chain. tokio-rustls wraps it in an `io::Error`, whose
/// `source()` skips the wrapped error, so `io::Error::get_ref` is looked at too.
fn find_rustls_error<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a rustls::Error> {
    chain(Some(err)).find_map(|e| {
        e.downcast_ref::<rustls::Error>().or_else(|| {
            let inner = e.downcast_ref::<std::io::Error>()?.get_ref()?;
            find_rustls_error(inner)
        })
    })
}

/// One line describing an error chain from `first` on (without the URL reqwest would print);
/// `fallback` when the chain says nothing.
fn describe(first: Option<&(dyn StdError + 'static)>, fallback: &str) -> String {
    let mut parts: Vec<String> = Vec::new();
    for e in chain(first) {
        let text = e.to_string().replace(['\n', '\r'], " ");
        // hyper-util's "client error (Connect)" says nothing the next error does not, and
        // io::Error often repeats its inner error; keep each text once.
        let noise = text.starts_with("client error (") && e.source().is_some();
        if !noise && !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
    }
    if parts.is_empty() {
        return fallback.to_owned();
    }
    parts.join(": ")
}

/// The scraper could not be built from the settings: a PEM that does not parse, a key that does not
/// match its certificate. The text names the setting (as the config file spells it).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScraperSetupError {
    #[error("ca_certs: {0}")]
    CaCerts(String),
    #[error("backends.private_key: {0}")]
    ClientPrivateKey(String),
    #[error("could not build the HTTP client for instances: {0}")]
    Client(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_bounded_and_match_the_variant() {
        let cases = [
            (ScrapeError::Timeout, "timeout"),
            (ScrapeError::Connect("refused".into()), "connect"),
            (ScrapeError::Tls("bad cert".into()), "tls"),
            (ScrapeError::Status(400), "http_4xx"),
            (ScrapeError::Status(404), "http_4xx"),
            (ScrapeError::Status(499), "http_4xx"),
            (ScrapeError::Status(500), "http_5xx"),
            (ScrapeError::Status(503), "http_5xx"),
            (
                ScrapeError::Redirect {
                    location: "http://other/".into(),
                },
                "redirect",
            ),
            (ScrapeError::TooManyRedirects { max: 3 }, "redirect"),
            (ScrapeError::TooLarge { limit: 10 }, "too_large"),
            (ScrapeError::Read("reset".into()), "read"),
        ];
        for (err, reason) in cases {
            assert_eq!(err.reason(), reason, "{err:?}");
            assert!(FailureReason::ALL.contains(&err.reason()));
            assert!(!err.to_string().contains('\n'));
        }
    }

    #[test]
    fn redirect_text_names_only_the_host() {
        let url =
            reqwest::Url::parse("https://user:secret@login.example:8443/sso?token=abc#x").unwrap();
        let location = sanitize_location(&url);
        assert_eq!(location, "https://login.example:8443/sso");
        let err = ScrapeError::Redirect { location };
        assert_eq!(
            err.to_string(),
            "redirected to another host (login.example:8443); set metric_path to the instance's real metrics path"
        );
    }

    /// An operator reads the reasons in docs/api.md; a reason missing there is a label nobody
    /// can look up.
    #[test]
    fn every_failure_reason_is_in_the_user_documentation() {
        let api = include_str!("../../docs/api.md");
        for reason in FailureReason::ALL {
            assert!(
                api.contains(&format!("`{}`", reason.label())),
                "docs/api.md does not list the failure reason `{reason}`"
            );
        }
    }
}
