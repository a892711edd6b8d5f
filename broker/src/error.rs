//! The errors a broker answers with: each variant is one situation of the OSB spec, mapped to
//! exactly one HTTP status code and one `error` code in [`BrokerError::status`] and
//! [`BrokerError::code`]. The body is always `{"error": ..., "description": ...}`. Nothing
//! here does I/O.

use actix_web::http::StatusCode;
use serde::Serialize;

/// Why a broker request failed. The text is the user-facing `description`: one line saying
/// what was wrong and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrokerError {
    /// Malformed request, missing or invalid field (400).
    #[error("{0}")]
    BadRequest(String),
    /// Missing or wrong basic-auth credentials (401).
    #[error("{0}")]
    Unauthorized(String),
    /// The service instance or binding does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// The resource exists with other attributes (409).
    #[error("{0}")]
    Conflict(String),
    /// `X-Broker-API-Version` missing or not a 2.x version (412).
    #[error("{0}")]
    PreconditionFailed(String),
    /// The request body is larger than the broker accepts (413).
    #[error("{0}")]
    PayloadTooLarge(String),
    /// 422 `AsyncRequired`: the operation needs `accepts_incomplete=true`.
    #[error("{0}")]
    AsyncRequired(String),
    /// 422 `ConcurrencyError`: another operation on the same resource is in progress.
    #[error("{0}")]
    ConcurrencyError(String),
    /// 422 `RequiresApp`: the binding needs an app.
    #[error("{0}")]
    RequiresApp(String),
    /// 422 `MaintenanceInfoConflict`: the requested `maintenance_info.version` is not the catalog's.
    #[error("{0}")]
    MaintenanceInfoConflict(String),
    /// The broker cannot reach what it depends on; nothing was changed (503).
    #[error("{0}")]
    Unavailable(String),
    /// A bug or an unexpected failure (500).
    #[error("{0}")]
    Internal(String),
}

/// The error body of the spec.
#[derive(Debug, Serialize)]
pub struct ErrorBody<'a> {
    pub error: &'static str,
    pub description: &'a str,
}

impl BrokerError {
    /// The HTTP status code: the only place it is decided.
    pub fn status(&self) -> StatusCode {
        match self {
            BrokerError::BadRequest(_) => StatusCode::BAD_REQUEST,
            BrokerError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            BrokerError::NotFound(_) => StatusCode::NOT_FOUND,
            BrokerError::Conflict(_) => StatusCode::CONFLICT,
            BrokerError::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            BrokerError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            BrokerError::AsyncRequired(_)
            | BrokerError::ConcurrencyError(_)
            | BrokerError::RequiresApp(_)
            | BrokerError::MaintenanceInfoConflict(_) => StatusCode::UNPROCESSABLE_ENTITY,
            BrokerError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            BrokerError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The `error` field: the spec's code for 422 answers, a CamelCase name of the status otherwise.
    pub fn code(&self) -> &'static str {
        match self {
            BrokerError::BadRequest(_) => "BadRequest",
            BrokerError::Unauthorized(_) => "Unauthorized",
            BrokerError::NotFound(_) => "NotFound",
            BrokerError::Conflict(_) => "Conflict",
            BrokerError::PreconditionFailed(_) => "PreconditionFailed",
            BrokerError::PayloadTooLarge(_) => "PayloadTooLarge",
            BrokerError::AsyncRequired(_) => "AsyncRequired",
            BrokerError::ConcurrencyError(_) => "ConcurrencyError",
            BrokerError::RequiresApp(_) => "RequiresApp",
            BrokerError::MaintenanceInfoConflict(_) => "MaintenanceInfoConflict",
            BrokerError::Unavailable(_) => "ServiceUnavailable",
            BrokerError::Internal(_) => "InternalError",
        }
    }

    /// The `description` field (never empty).
    pub fn description(&self) -> &str {
        let text = match self {
            BrokerError::BadRequest(text)
            | BrokerError::Unauthorized(text)
            | BrokerError::NotFound(text)
            | BrokerError::Conflict(text)
            | BrokerError::PreconditionFailed(text)
            | BrokerError::PayloadTooLarge(text)
            | BrokerError::AsyncRequired(text)
            | BrokerError::ConcurrencyError(text)
            | BrokerError::RequiresApp(text)
            | BrokerError::MaintenanceInfoConflict(text)
            | BrokerError::Unavailable(text)
            | BrokerError::Internal(text) => text.as_str(),
        };
        if text.is_empty() {
            self.code()
        } else {
            text
        }
    }

    pub fn body(&self) -> ErrorBody<'_> {
        ErrorBody {
            error: self.code(),
            description: self.description(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_422_carries_an_osb_code_and_descriptions_are_never_empty() {
        let unprocessable = [
            (BrokerError::AsyncRequired(String::new()), "AsyncRequired"),
            (
                BrokerError::ConcurrencyError("x".into()),
                "ConcurrencyError",
            ),
            (BrokerError::RequiresApp("x".into()), "RequiresApp"),
            (
                BrokerError::MaintenanceInfoConflict("x".into()),
                "MaintenanceInfoConflict",
            ),
        ];
        for (error, code) in unprocessable {
            assert_eq!(error.status(), StatusCode::UNPROCESSABLE_ENTITY);
            assert_eq!(error.code(), code);
            assert!(!error.description().is_empty());
        }
        assert_eq!(
            BrokerError::AsyncRequired(String::new()).description(),
            "AsyncRequired"
        );
    }
}
