//! A string that must never be printed: passwords, private keys, connection strings with
//! passwords. Debug and Serialize show a mask, so an effective-config dump or a log line
//! cannot leak it by accident; code reads the value with [`Secret::expose`].

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What a secret looks like when printed.
pub const MASK: &str = "REDACTED";

#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The real value, for the code that needs it (never for output).
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { MASK })
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(if self.0.is_empty() { "" } else { MASK })
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Secret(String::deserialize(deserializer)?))
    }
}

/// A URL whose password is masked when printed (`db_conn`, e.g.
/// `postgres://promfetcher:<redacted>@db:5432/promfetcher`).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct UrlWithSecret(String);

impl UrlWithSecret {
    pub fn new(url: impl Into<String>) -> Self {
        UrlWithSecret(url.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The URL with any password replaced by [`MASK`]; text that is not a URL is masked whole.
    pub fn redacted(&self) -> String {
        if self.0.is_empty() {
            return String::new();
        }
        match url::Url::parse(&self.0) {
            Ok(mut parsed) if parsed.has_host() => {
                if parsed.password().is_some() && parsed.set_password(Some(MASK)).is_err() {
                    return MASK.to_string();
                }
                parsed.to_string()
            }
            _ => MASK.to_string(),
        }
    }
}

impl fmt::Debug for UrlWithSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.redacted())
    }
}

impl Serialize for UrlWithSecret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.redacted())
    }
}

impl<'de> Deserialize<'de> for UrlWithSecret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(UrlWithSecret(String::deserialize(deserializer)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?}"), "REDACTED");
        assert_eq!(serde_json::to_string(&secret).unwrap(), "\"REDACTED\"");
        assert_eq!(secret.expose(), "hunter2");
    }

    #[test]
    fn url_password_is_masked_but_the_rest_stays() {
        let url = UrlWithSecret("postgres://pf:hunter2@db:5432/pf".into());
        assert_eq!(url.redacted(), "postgres://pf:REDACTED@db:5432/pf");
        assert!(!format!("{url:?}").contains("hunter2"));
        let garbage = UrlWithSecret("user:hunter2 at db".into());
        assert_eq!(garbage.redacted(), MASK);
    }
}
