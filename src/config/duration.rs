//! Durations written as Go writes them (`"90s"`, `"1h"`, `"1m30s"`, `"500ms"`), because the
//! original's config files use that form. Parsing and printing only; no defaults live here.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A `std::time::Duration` that reads and writes Go's duration syntax.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct GoDuration(pub Duration);

impl GoDuration {
    pub const fn from_secs(secs: u64) -> Self {
        GoDuration(Duration::from_secs(secs))
    }

    pub const fn from_millis(millis: u64) -> Self {
        GoDuration(Duration::from_millis(millis))
    }

    /// Parses `"1h2m3.5s"`, `"250ms"`, `"0"`. Units: ns, us, µs, ms, s, m, h.
    pub fn parse(text: &str) -> Result<GoDuration, String> {
        let text = text.trim();
        if text == "0" {
            return Ok(GoDuration(Duration::ZERO));
        }
        if text.is_empty() {
            return Err("empty duration; write a number with a unit, e.g. \"30s\"".into());
        }
        if text.starts_with('-') {
            return Err(format!("negative duration {text:?} is not allowed"));
        }
        let mut total_nanos: f64 = 0.0;
        let mut rest = text.strip_prefix('+').unwrap_or(text);
        while !rest.is_empty() {
            let number_len = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .unwrap_or(rest.len());
            if number_len == 0 {
                return Err(format!("invalid duration {text:?}: expected a number"));
            }
            let number: f64 = rest[..number_len]
                .parse()
                .map_err(|_| format!("invalid duration {text:?}: bad number"))?;
            rest = &rest[number_len..];
            let unit_len = rest
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(rest.len());
            let nanos_per_unit = match &rest[..unit_len] {
                "ns" => 1.0,
                "us" | "µs" | "μs" => 1e3,
                "ms" => 1e6,
                "s" => 1e9,
                "m" => 60e9,
                "h" => 3600e9,
                "" => {
                    return Err(format!(
                    "invalid duration {text:?}: missing unit (ns, us, ms, s, m, h), e.g. \"30s\""
                ))
                }
                other => return Err(format!("invalid duration {text:?}: unknown unit {other:?}")),
            };
            total_nanos += number * nanos_per_unit;
            rest = &rest[unit_len..];
        }
        if total_nanos > u64::MAX as f64 {
            return Err(format!("duration {text:?} is too large"));
        }
        Ok(GoDuration(Duration::from_nanos(total_nanos.round() as u64)))
    }
}

impl fmt::Display for GoDuration {
    /// Writes the shortest exact form among h/m/s/ms, e.g. `1h30m`, `90s` is written `1m30s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        if d.is_zero() {
            return f.write_str("0s");
        }
        if d.subsec_nanos() != 0 {
            if d.subsec_nanos().is_multiple_of(1_000_000) && d.as_secs() == 0 {
                return write!(f, "{}ms", d.subsec_millis());
            }
            return write!(f, "{}s", d.as_secs_f64());
        }
        let secs = d.as_secs();
        let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
        if h > 0 {
            write!(f, "{h}h")?;
        }
        if m > 0 {
            write!(f, "{m}m")?;
        }
        if s > 0 {
            write!(f, "{s}s")?;
        }
        Ok(())
    }
}

impl Serialize for GoDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for GoDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        GoDuration::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_forms() {
        let cases = [
            ("1h", 3_600_000),
            ("30s", 30_000),
            ("1m30s", 90_000),
            ("500ms", 500),
            ("1.5s", 1500),
            ("0", 0),
            ("2h45m", 9_900_000),
        ];
        for (text, millis) in cases {
            assert_eq!(
                GoDuration::parse(text),
                Ok(GoDuration::from_millis(millis)),
                "{text}"
            );
        }
    }

    #[test]
    fn rejects_with_a_reason() {
        assert!(GoDuration::parse("30")
            .unwrap_err()
            .contains("missing unit"));
        assert!(GoDuration::parse("5x")
            .unwrap_err()
            .contains("unknown unit"));
        assert!(GoDuration::parse("-1s").unwrap_err().contains("negative"));
        assert!(GoDuration::parse("").unwrap_err().contains("empty"));
    }

    #[test]
    fn prints_round_trip() {
        for text in ["1h", "1m30s", "500ms", "15s", "1h0m5s"] {
            let parsed = GoDuration::parse(text).unwrap();
            assert_eq!(GoDuration::parse(&parsed.to_string()), Ok(parsed));
        }
        assert_eq!(GoDuration::from_secs(90).to_string(), "1m30s");
    }
}
