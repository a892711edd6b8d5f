//! Optional inbound auth on the metrics endpoints (config `metrics_auth`): when credentials are
//! configured, every request on the main port needs HTTP basic auth with `user`/`pass` or
//! `Authorization: Bearer <bearer_token>` (compared in constant time), except the paths that
//! keep their own rules: `/doc` (public), `/routes` and `/broker/...` (the broker's
//! credentials). Deny by default, so the merged metrics (`/v1/...`, `/v2/...`), `/v1/sd`,
//! `/metrics` and any later endpoint are guarded, whatever the router makes of the path. The
//! decision is taken on the percent-decoded path, so `/%761/apps/...` cannot pass for an open
//! path. An accepted `Authorization` header belongs to promfetcher: it is removed from the
//! request, so it never reaches the handlers nor the instances. It only checks credentials; it
//! does not log them.

use std::future::Future;
use std::sync::Arc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap};
use actix_web::{Error, HttpResponse};
use futures_util::future::{ready, Either, TryFutureExt};
use percent_encoding::percent_decode_str;
use subtle::ConstantTimeEq;

use crate::config::MetricsAuthConfig;

/// The credentials callers must present.
pub struct MetricsAuth {
    basic: Option<osb_broker::Credentials>,
    bearer_token: Option<String>,
}

impl std::fmt::Debug for MetricsAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsAuth")
            .field("basic", &self.basic)
            .field("bearer_token", &self.bearer_token.is_some())
            .finish()
    }
}

impl MetricsAuth {
    /// `None` when no credential is configured: the endpoints are open.
    pub fn from_config(config: &MetricsAuthConfig) -> Option<Arc<MetricsAuth>> {
        let basic = (!config.user.is_empty())
            .then(|| osb_broker::Credentials::new(config.user.clone(), config.pass.expose()));
        let bearer_token =
            (!config.bearer_token.is_empty()).then(|| config.bearer_token.expose().to_string());
        (basic.is_some() || bearer_token.is_some()).then(|| {
            Arc::new(MetricsAuth {
                basic,
                bearer_token,
            })
        })
    }

    /// Whether `headers` carry the configured basic credentials or bearer token.
    pub fn accepts(&self, headers: &HeaderMap) -> bool {
        let basic = self
            .basic
            .as_ref()
            .is_some_and(|credentials| credentials.check(headers).is_ok());
        let bearer = self
            .bearer_token
            .as_ref()
            .is_some_and(|token| presents_bearer(headers, token));
        basic || bearer
    }

    /// The `401` answer, with a challenge for each accepted scheme.
    fn refusal(&self) -> HttpResponse {
        let mut response = HttpResponse::Unauthorized();
        if self.basic.is_some() {
            response.append_header((
                header::WWW_AUTHENTICATE,
                "Basic realm=\"promfetcher metrics\", charset=\"UTF-8\"",
            ));
        }
        if self.bearer_token.is_some() {
            response.append_header((
                header::WWW_AUTHENTICATE,
                "Bearer realm=\"promfetcher metrics\"",
            ));
        }
        response.content_type("text/plain; charset=utf-8").body(
            "401 Unauthorized: the metrics endpoints need promfetcher's metrics credentials \
             (config metrics_auth): HTTP basic auth or Authorization: Bearer\n",
        )
    }
}

/// `Authorization: Bearer <token>` with exactly `token`.
fn presents_bearer(headers: &HeaderMap, token: &str) -> bool {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    match value.trim().split_once(' ') {
        Some((scheme, presented)) if scheme.eq_ignore_ascii_case("bearer") => {
            bool::from(presented.trim().as_bytes().ct_eq(token.as_bytes()))
        }
        _ => false,
    }
}

/// Whether a request for `raw_path` (as sent, percent-encoded) needs the metrics credentials:
/// every path but `/doc`, `/routes` and `/broker/...`, decided on the decoded path; a path with
/// a `.` or `..` segment is never open.
pub fn is_guarded(raw_path: &str) -> bool {
    let path = percent_decode_str(raw_path).decode_utf8_lossy();
    if path
        .split('/')
        .any(|segment| segment == "." || segment == "..")
    {
        return true;
    }
    let open =
        path == "/doc" || path == "/routes" || path == "/broker" || path.starts_with("/broker/");
    !open
}

/// Lets `req` through when `auth` is `None`, its path is open, or it carries the credentials
/// (then without its `Authorization` header); answers `401` otherwise. For `App::wrap_fn`.
pub fn guard<S, B>(
    auth: Option<Arc<MetricsAuth>>,
    mut req: ServiceRequest,
    service: &S,
) -> impl Future<Output = Result<ServiceResponse<EitherBody<B>>, Error>>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    B: MessageBody,
{
    if let Some(auth) = auth.filter(|_| is_guarded(req.path())) {
        if !auth.accepts(req.headers()) {
            let response = req.into_response(auth.refusal()).map_into_right_body();
            return Either::Right(ready(Ok(response)));
        }
        req.headers_mut().remove(header::AUTHORIZATION);
    }
    Either::Left(
        service
            .call(req)
            .map_ok(ServiceResponse::map_into_left_body),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderValue;
    use base64::Engine;

    use crate::config::Secret;

    fn auth(user: &str, pass: &str, token: &str) -> Option<Arc<MetricsAuth>> {
        MetricsAuth::from_config(&MetricsAuthConfig {
            user: user.into(),
            pass: Secret::new(pass),
            bearer_token: Secret::new(token),
        })
    }

    fn with_authorization(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        headers
    }

    fn basic(user: &str, pass: &str) -> HeaderMap {
        let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        with_authorization(&format!("Basic {encoded}"))
    }

    #[test]
    fn nothing_configured_means_open() {
        assert!(auth("", "", "").is_none());
    }

    #[test]
    fn basic_and_bearer_are_checked_exactly() {
        let both = auth("prometheus", "s3cret", "t0ken").unwrap();
        assert!(both.accepts(&basic("prometheus", "s3cret")));
        assert!(both.accepts(&with_authorization("Bearer t0ken")));
        assert!(both.accepts(&with_authorization("bearer  t0ken ")));
        for refused in [
            basic("prometheus", "wrong"),
            basic("other", "s3cret"),
            basic("prometheus", "s3cret2"),
            with_authorization("Bearer t0ke"),
            with_authorization("Bearer t0ken2"),
            with_authorization("Basic t0ken"),
            with_authorization("t0ken"),
            HeaderMap::new(),
        ] {
            assert!(!both.accepts(&refused), "{refused:?}");
        }
        let bearer_only = auth("", "", "t0ken").unwrap();
        assert!(!bearer_only.accepts(&basic("", "")));
        let basic_only = auth("prometheus", "s3cret", "").unwrap();
        assert!(!basic_only.accepts(&with_authorization("Bearer ")));
    }

    #[test]
    fn only_doc_routes_and_broker_are_open_after_decoding() {
        for open in [
            "/doc",
            "/routes",
            "/broker/v2/catalog",
            "/%62roker/v2/catalog",
            "/d%6Fc",
        ] {
            assert!(!is_guarded(open), "{open}");
        }
        for guarded in [
            "/v1/apps/acme/dev/shop/metrics",
            "/v2/apps/metrics",
            "/v1/sd",
            "/metrics",
            "/%761/apps/acme/dev/shop/metrics",
            "/v1%2Fapps/acme/dev/shop/metrics",
            "/doc/",
            "/docs",
            "/routesx",
            "/brokerx",
            "/broker/../v1/sd",
            "/broker/%2E%2E/v1/sd",
            "/",
            "",
        ] {
            assert!(is_guarded(guarded), "{guarded}");
        }
    }
}
