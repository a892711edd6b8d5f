//! Which redirects a scrape follows, one rule for both clients: a 301, 302, 303, 307 or 308 whose
//! `Location` (resolved against the URL asked) has the same scheme, host and port, at most
//! `max_redirects` times in a row. reqwest applies it through its redirect policy (for TLS instances
//! and external exporters); the plain-HTTP instance path applies it in its own request loop. A 3xx
//! that is not followed is handed back and turned into an error by the scraper. No I/O here.

use http::header::{self, HeaderMap};
use http::{StatusCode, Uri};
use reqwest::Url;

/// Whether a redirect from `from` (the first URL, or any URL followed since: they share one origin)
/// to `to` is followed when `followed` redirects already were.
pub(super) fn follows(from: &Url, to: &Url, followed: usize, max: usize) -> bool {
    followed < max && same_origin(from, to)
}

/// reqwest's form of [`follows`]; reqwest itself only asks for the statuses
/// [`is_followed_status`] names.
pub(super) fn reqwest_policy(max: usize) -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(move |attempt| {
        // `previous` holds the first URL and every URL redirected to so far.
        let followed = attempt.previous().len().saturating_sub(1);
        let allowed = attempt
            .previous()
            .first()
            .is_some_and(|first| follows(first, attempt.url(), followed, max));
        if allowed {
            attempt.follow()
        } else {
            attempt.stop()
        }
    })
}

/// The statuses that redirect a GET to the `Location` (the others, such as 300 or 304, are answers).
pub(super) fn is_followed_status(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::MOVED_PERMANENTLY
            | StatusCode::FOUND
            | StatusCode::SEE_OTHER
            | StatusCode::TEMPORARY_REDIRECT
            | StatusCode::PERMANENT_REDIRECT
    )
}

/// The `Location` of an answer, resolved against the URL that was asked.
pub(super) fn location(headers: &HeaderMap, asked: &Url) -> Option<Url> {
    let value = headers.get(header::LOCATION)?.to_str().ok()?;
    asked.join(value).ok()
}

/// The next URL to ask when an answer to `asked` is a redirect to follow; `None` when the answer
/// is to be handed back as it is.
pub(super) fn next_hop(
    status: StatusCode,
    headers: &HeaderMap,
    asked: &Uri,
    followed: usize,
    max: usize,
) -> Option<Uri> {
    if !is_followed_status(status) {
        return None;
    }
    let asked = Url::parse(&asked.to_string()).ok()?;
    let next = location(headers, &asked)?;
    if !follows(&asked, &next, followed, max) {
        return None;
    }
    Uri::try_from(next.as_str()).ok()
}

/// Whether `a` and `b` have the same scheme, host and port.
pub(super) fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn u(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    #[test]
    fn origin_compares_scheme_host_and_port() {
        assert!(same_origin(&u("http://a:80/x"), &u("http://a/y")));
        assert!(!same_origin(&u("http://a/x"), &u("https://a/x")));
        assert!(!same_origin(&u("http://a/x"), &u("http://b/x")));
        assert!(!same_origin(&u("http://a:1/x"), &u("http://a:2/x")));
    }

    #[test]
    fn next_hop_resolves_relative_locations_within_the_limit() {
        let asked: Uri = "http://10.0.0.1:8080/metrics?x=1".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(
            header::LOCATION,
            HeaderValue::from_static("../actuator/prometheus"),
        );
        let next = next_hop(StatusCode::FOUND, &headers, &asked, 0, 3).unwrap();
        assert_eq!(next, "http://10.0.0.1:8080/actuator/prometheus");
        assert_eq!(next_hop(StatusCode::FOUND, &headers, &asked, 3, 3), None);
        // 300 and 304 are answers, not redirects to follow.
        assert_eq!(
            next_hop(StatusCode::MULTIPLE_CHOICES, &headers, &asked, 0, 3),
            None
        );
        assert_eq!(
            next_hop(StatusCode::NOT_MODIFIED, &headers, &asked, 0, 3),
            None
        );
        for other in [
            "http://10.0.0.1:8081/m",
            "https://10.0.0.1:8080/m",
            "//elsewhere/m",
        ] {
            headers.insert(header::LOCATION, HeaderValue::from_static(other));
            assert_eq!(
                next_hop(StatusCode::TEMPORARY_REDIRECT, &headers, &asked, 0, 3),
                None,
                "{other}"
            );
        }
        headers.remove(header::LOCATION);
        assert_eq!(next_hop(StatusCode::FOUND, &headers, &asked, 0, 3), None);
    }
}
