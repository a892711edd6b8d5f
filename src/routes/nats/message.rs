//! The NATS route messages as gorouter reads and writes them: `router.register` and
//! `router.unregister` bodies decoded with Go `encoding/json`'s leniencies (absent or `null`
//! fields are zero values, unknown fields ignored, a wrong type or an out-of-range port rejects
//! the whole message), the route-service check, and the `router.start` / `router.greet` body.
//! Pure data and parsing; no I/O.

use crate::routes::tags::RouteTags;
use serde::{Deserialize, Deserializer, Serialize};

/// Why a message was dropped. Both are what gorouter logs as a validation error.
#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    #[error("not a route registration message: {0}")]
    InvalidJson(#[from] serde_json::Error),
    #[error("route_service_url must start with https; the message is dropped")]
    RouteServiceNotHttps,
}

impl MessageError {
    /// The `outcome` label of the messages counter.
    pub fn outcome(&self) -> &'static str {
        match self {
            MessageError::InvalidJson(_) => "invalid_json",
            MessageError::RouteServiceNotHttps => "invalid_route_service",
        }
    }
}

/// A `router.register` / `router.unregister` body: the fields gorouter reads. Fields that do not
/// reach promfetcher's table are still decoded, so that a value of the wrong type rejects the
/// message exactly as gorouter would.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct RegistryMessage {
    #[serde(deserialize_with = "go_zero_if_null")]
    pub host: String,
    #[serde(deserialize_with = "go_zero_if_null")]
    pub port: u16,
    #[serde(deserialize_with = "go_zero_if_null")]
    pub tls_port: u16,
    #[serde(deserialize_with = "go_zero_if_null")]
    pub uris: Vec<String>,
    #[serde(deserialize_with = "go_zero_if_null")]
    pub protocol: String,
    #[serde(deserialize_with = "go_zero_if_null")]
    pub app: String,
    #[serde(deserialize_with = "go_zero_if_null")]
    pub availability_zone: String,
    #[serde(deserialize_with = "go_zero_if_null")]
    pub endpoint_updated_at_ns: i64,
    #[serde(deserialize_with = "go_zero_if_null")]
    pub isolation_segment: String,
    #[serde(deserialize_with = "go_zero_if_null")]
    pub private_instance_id: String,
    /// A string (`"0"`) on the wire, not a number.
    #[serde(deserialize_with = "go_zero_if_null")]
    pub private_instance_index: String,
    #[serde(deserialize_with = "go_zero_if_null")]
    pub route_service_url: String,
    #[serde(deserialize_with = "go_zero_if_null")]
    pub server_cert_domain_san: String,
    #[serde(deserialize_with = "go_zero_if_null")]
    pub stale_threshold_in_seconds: i64,
    pub tags: Option<RouteTags>,
    #[serde(deserialize_with = "go_zero_if_null")]
    pub options: RegistryMessageOptions,
}

/// `options` of a registration (load balancing); read only to reject wrong types as gorouter does.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct RegistryMessageOptions {
    #[serde(deserialize_with = "go_zero_if_null")]
    pub loadbalancing: String,
    #[serde(deserialize_with = "go_zero_if_null")]
    pub hash_header: String,
    #[serde(deserialize_with = "go_zero_if_null")]
    pub hash_balance: f64,
}

impl RegistryMessage {
    /// Decodes and validates a body as gorouter's subscriber does before applying it.
    pub fn parse(body: &[u8]) -> Result<RegistryMessage, MessageError> {
        let message: RegistryMessage = serde_json::from_slice(body)?;
        if !message.route_service_url.is_empty() && !message.route_service_url.starts_with("https")
        {
            return Err(MessageError::RouteServiceNotHttps);
        }
        Ok(message)
    }

    /// `host:port` of the endpoint, with `tls_port` when it is set, and whether that is TLS.
    pub fn address(&self) -> (String, bool) {
        let (port, tls) = if self.tls_port != 0 {
            (self.tls_port, true)
        } else {
            (self.port, false)
        };
        let address = if self.host.contains(':') {
            format!("[{}]:{port}", self.host)
        } else {
            format!("{}:{port}", self.host)
        };
        (address, tls)
    }
}

/// Go decodes `null` into any field as "leave the zero value".
fn go_zero_if_null<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// The body of `router.start` and of the answer to `router.greet`, fields in gorouter's order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartMessage {
    /// `<index>-<uuid>`, one per process.
    pub id: String,
    /// This process's IP addresses as the NATS servers see them.
    pub hosts: Vec<String>,
    /// `route_registration_interval`, in seconds.
    #[serde(rename = "minimumRegisterIntervalInSeconds")]
    pub minimum_register_interval_in_seconds: u64,
    /// `droplet_stale_threshold`, in seconds.
    #[serde(rename = "pruneThresholdInSeconds")]
    pub prune_threshold_in_seconds: u64,
}

impl StartMessage {
    pub fn to_json(&self) -> Vec<u8> {
        // A struct of strings and integers always serialises.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Byte-exact route-emitter registration (shared/reference/cf-route-sources.md §2.3).
    pub const ROUTE_EMITTER: &str = r#"{"host":"10.0.1.12","port":61012,"tls_port":61014,"uris":["myapp.apps.example.com"],"protocol":"http1","app":"8c5a9f3e-2b1d-4e6f-9a7b-1c2d3e4f5a6b","private_instance_id":"3e1c9b5a-7d2f-4a8e-9b0c-1d2e","private_instance_index":"0","server_cert_domain_san":"3e1c9b5a-7d2f-4a8e-9b0c-1d2e","endpoint_updated_at_ns":1767225600123456789,"tags":{"app_id":"8c5a9f3e-2b1d-4e6f-9a7b-1c2d3e4f5a6b","app_name":"myapp","component":"route-emitter","instance_id":"0","organization_id":"0a1b2c3d-4e5f-4061-8273-94a5b6c7d8e9","organization_name":"acme","process_id":"8c5a9f3e-2b1d-4e6f-9a7b-1c2d3e4f5a6b","process_instance_id":"3e1c9b5a-7d2f-4a8e-9b0c-1d2e","process_type":"web","source_id":"8c5a9f3e-2b1d-4e6f-9a7b-1c2d3e4f5a6b","space_id":"1f2e3d4c-5b6a-4798-8a7b-6c5d4e3f2a1b","space_name":"dev"},"availability_zone":"z1","options":{"loadbalancing":"least-connection"}}"#;

    #[test]
    fn route_emitter_message_uses_the_tls_port() {
        let message = RegistryMessage::parse(ROUTE_EMITTER.as_bytes()).unwrap();
        assert_eq!(message.address(), ("10.0.1.12:61014".to_string(), true));
        assert_eq!(message.uris, ["myapp.apps.example.com"]);
        assert_eq!(message.private_instance_index, "0");
        assert_eq!(message.tags.unwrap().app.space_name, "dev");
    }

    #[test]
    fn route_registrar_message_with_null_tags() {
        let body = r#"{"uris":["api.sys.example.com"],"host":"10.0.1.10","port":9022,"tags":null,"private_instance_id":"4b0e1f6a"}"#;
        let message = RegistryMessage::parse(body.as_bytes()).unwrap();
        assert_eq!(message.address(), ("10.0.1.10:9022".to_string(), false));
        assert_eq!(message.tags, None);
    }

    #[test]
    fn hand_written_message_with_every_field_decodes() {
        let body = r#"{"host":"10.0.8.31","port":61008,"tls_port":61010,"protocol":"http2",
            "uris":["payments.apps.iso.example.com","payments.apps.iso.example.com/v2"],
            "isolation_segment":"iso-seg-1","route_service_url":"https://auth-proxy.apps.example.com/check",
            "stale_threshold_in_seconds":60,"endpoint_updated_at_ns":1767225600123456789,
            "availability_zone":"z3","tags":{"component":"route-emitter"},
            "options":{"loadbalancing":"hash","hash_header":"X-Tenant-Id","hash_balance":1.25}}"#;
        let message = RegistryMessage::parse(body.as_bytes()).unwrap();
        assert_eq!(message.stale_threshold_in_seconds, 60);
        assert_eq!(message.uris.len(), 2);
        assert_eq!(message.options.hash_balance, 1.25);
    }

    #[test]
    fn null_fields_are_zero_values_as_in_go() {
        let body = r#"{"host":"10.0.0.1","port":8080,"uris":null,"protocol":null,"options":null}"#;
        let message = RegistryMessage::parse(body.as_bytes()).unwrap();
        assert!(message.uris.is_empty());
        assert_eq!(message.protocol, "");
    }

    #[test]
    fn invalid_messages_are_rejected_with_their_outcome() {
        let cases = [
            ("not json", "invalid_json"),
            (r#"{"host":"h","port":70000,"uris":["a"]}"#, "invalid_json"),
            (
                r#"{"host":"h","port":1,"private_instance_index":0}"#,
                "invalid_json",
            ),
            (
                r#"{"host":"h","port":1,"tags":{"instance_id":1}}"#,
                "invalid_json",
            ),
            (
                r#"{"host":"h","port":1,"uris":["a"],"route_service_url":"http://rs.example.com"}"#,
                "invalid_route_service",
            ),
        ];
        for (body, outcome) in cases {
            let error = RegistryMessage::parse(body.as_bytes()).unwrap_err();
            assert_eq!(error.outcome(), outcome, "{body}");
        }
    }

    #[test]
    fn start_message_has_gorouters_field_names_and_order() {
        let start = StartMessage {
            id: "0-7d4f0c5e-2a1b-4c3d-8e9f-a0b1c2d3e4f5".into(),
            hosts: vec!["10.0.1.5".into()],
            minimum_register_interval_in_seconds: 20,
            prune_threshold_in_seconds: 120,
        };
        assert_eq!(
            String::from_utf8(start.to_json()).unwrap(),
            r#"{"id":"0-7d4f0c5e-2a1b-4c3d-8e9f-a0b1c2d3e4f5","hosts":["10.0.1.5"],"minimumRegisterIntervalInSeconds":20,"pruneThresholdInSeconds":120}"#
        );
    }
}
