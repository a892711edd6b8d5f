//! The checks every broker request passes before it reaches the service: HTTP basic
//! authentication (compared in constant time) and the `X-Broker-API-Version` header. It reads
//! headers only; it never looks at the body.

use actix_web::http::header::{HeaderMap, AUTHORIZATION};
use base64::Engine;
use subtle::ConstantTimeEq;

use crate::error::BrokerError;

/// Header the platform must send with its OSB API version, e.g. `2.17`.
pub const VERSION_HEADER: &str = "x-broker-api-version";
/// The only major version this broker speaks.
pub const SUPPORTED_MAJOR: u32 = 2;

/// The user name and password the platform must present.
#[derive(Clone)]
pub struct Credentials {
    user: String,
    pass: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("pass", &"<redacted>")
            .finish()
    }
}

impl Credentials {
    pub fn new(user: impl Into<String>, pass: impl Into<String>) -> Credentials {
        Credentials {
            user: user.into(),
            pass: pass.into(),
        }
    }

    /// Whether no user and no password are set: then every request is refused (a broker
    /// switched off), rather than one sending `Authorization: Basic Og==` (`:`) accepted.
    pub fn is_closed(&self) -> bool {
        self.user.is_empty() && self.pass.is_empty()
    }

    /// Accepts the request when its `Authorization: Basic` header carries these credentials;
    /// refuses it with the reason the platform is told.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), BrokerError> {
        if self.is_closed() {
            return Err(BrokerError::Unauthorized(
                "this broker is switched off: no credentials are configured (config broker.user \
                 / broker.pass)"
                    .into(),
            ));
        }
        if self.accepts(headers) {
            return Ok(());
        }
        Err(BrokerError::Unauthorized(
            "missing or wrong basic-auth credentials: use the user and password the broker was \
             registered with (config broker.user / broker.pass)"
                .into(),
        ))
    }

    /// Whether the request's `Authorization: Basic` header carries these credentials (never
    /// when the broker is switched off). Both parts are compared in constant time (for equal
    /// lengths) and both are always compared.
    pub fn accepts(&self, headers: &HeaderMap) -> bool {
        if self.is_closed() {
            return false;
        }
        let Some(value) = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
            return false;
        };
        let Some((scheme, encoded)) = value.trim().split_once(' ') else {
            return false;
        };
        if !scheme.eq_ignore_ascii_case("basic") {
            return false;
        }
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
            return false;
        };
        let Some(colon) = decoded.iter().position(|&b| b == b':') else {
            return false;
        };
        let (user, pass) = (&decoded[..colon], &decoded[colon + 1..]);
        let user_ok = user.ct_eq(self.user.as_bytes());
        let pass_ok = pass.ct_eq(self.pass.as_bytes());
        bool::from(user_ok & pass_ok)
    }
}

/// Accepts any `2.x` version (Cloud Foundry sends `2.15`, conformance suites `2.13` and `2.14`);
/// refuses a missing, empty or unparsable header, or another major version, with `412`.
pub fn check_version(headers: &HeaderMap) -> Result<(), BrokerError> {
    let value = headers
        .get(VERSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .unwrap_or_default();
    let major = value
        .split_once('.')
        .filter(|(_, minor)| !minor.is_empty() && minor.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|(major, _)| major.parse::<u32>().ok());
    match major {
        Some(SUPPORTED_MAJOR) => Ok(()),
        _ => Err(BrokerError::PreconditionFailed(format!(
            "X-Broker-API-Version {}: this broker speaks the Open Service Broker API 2.x \
             (2.13 or later, written for 2.17); send e.g. X-Broker-API-Version: 2.17",
            if value.is_empty() {
                "is missing".to_string()
            } else {
                format!("{value:?} is not supported")
            }
        ))),
    }
}
