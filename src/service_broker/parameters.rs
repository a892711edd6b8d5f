//! The parameters of broker requests as promfetcher reads them: the metrics `endpoint` (a
//! path validated like `metric_path`, or `null` to clear it) and the bound on the parameters
//! stored. Pure functions of the request's JSON, no I/O, so that they can be fuzzed alone
//! (fuzz/fuzz_targets/broker_requests.rs compiles this file directly).

use osb_broker::types::JsonObject;
use osb_broker::BrokerError;
use serde_json::Value;

use crate::scrape::metric_path::MetricPath;

/// The parameter that carries the metrics path.
pub const ENDPOINT_PARAMETER: &str = "endpoint";
/// Longest endpoint accepted: the original's `app_endpoints.endpoint` column is VARCHAR(255).
pub const MAX_ENDPOINT_LEN: usize = 255;

/// What the `endpoint` parameter asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndpointParameter {
    /// Not given: keep what there is.
    Absent,
    /// `null`: no endpoint (back to the default path).
    Cleared,
    /// A validated path.
    Set(String),
}

impl EndpointParameter {
    /// Reads `endpoint` from a request's parameters; a path is validated like `metric_path`.
    pub fn from_parameters(parameters: Option<&JsonObject>) -> Result<Self, BrokerError> {
        match parameters.and_then(|p| p.get(ENDPOINT_PARAMETER)) {
            None => Ok(EndpointParameter::Absent),
            Some(Value::Null) => Ok(EndpointParameter::Cleared),
            Some(Value::String(raw)) => {
                let invalid = |reason: &str| {
                    BrokerError::BadRequest(format!(
                        "parameter endpoint {raw:?}: {reason}; give the app's metrics path, e.g. \
                         -c '{{\"endpoint\":\"/actuator/prometheus\"}}'"
                    ))
                };
                if !raw.starts_with('/') {
                    return Err(invalid("must be a path starting with /"));
                }
                let path = MetricPath::parse(raw).map_err(|error| invalid(error.reason()))?;
                if path.as_str().len() > MAX_ENDPOINT_LEN {
                    return Err(invalid(&format!("longer than {MAX_ENDPOINT_LEN} bytes")));
                }
                Ok(EndpointParameter::Set(path.as_str().to_string()))
            }
            Some(_) => Err(BrokerError::BadRequest(
                "parameter endpoint must be a string (a path starting with /) or null".into(),
            )),
        }
    }

    /// The endpoint after applying this parameter to `current`.
    pub fn apply(self, current: Option<String>) -> Option<String> {
        match self {
            EndpointParameter::Absent => current,
            EndpointParameter::Cleared => None,
            EndpointParameter::Set(path) => Some(path),
        }
    }
}

/// Longest parameters object kept, as JSON (the `parameters` columns are VARCHAR(4000)).
pub const MAX_PARAMETERS_LEN: usize = 4000;

/// Parameters as stored: canonical JSON (keys sorted), `""` for none.
pub fn canonical(parameters: Option<&JsonObject>) -> Result<String, BrokerError> {
    let text = parameters
        .filter(|p| !p.is_empty())
        .map(|p| Value::Object(p.clone()).to_string())
        .unwrap_or_default();
    if text.len() > MAX_PARAMETERS_LEN {
        return Err(BrokerError::BadRequest(format!(
            "parameters are {} bytes of JSON; at most {MAX_PARAMETERS_LEN} are kept",
            text.len()
        )));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params(value: Value) -> JsonObject {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn the_endpoint_parameter_is_validated_like_metric_path() {
        let read = |value: Value| EndpointParameter::from_parameters(Some(&params(value)));
        assert_eq!(read(json!({})), Ok(EndpointParameter::Absent));
        assert_eq!(
            read(json!({"endpoint": null})),
            Ok(EndpointParameter::Cleared)
        );
        assert_eq!(
            read(json!({"endpoint": "/actuator/prometheus"})),
            Ok(EndpointParameter::Set("/actuator/prometheus".into()))
        );
        for bad in [
            json!("metrics"),
            json!("@evil.example/x"),
            json!("//evil/x"),
            json!("/a/../b"),
            json!(5),
            json!(""),
            json!(format!("/{}", "a".repeat(300))),
        ] {
            let error = read(json!({"endpoint": bad.clone()})).unwrap_err();
            assert!(
                matches!(error, BrokerError::BadRequest(_)),
                "{bad}: {error:?}"
            );
        }
    }
}
