//! Content negotiation for the merged answer: reads the caller's `Accept` header (media ranges
//! with q-values, as Prometheus 2.x and 3.x send them, including the `escaping=` parameter) and
//! picks the output format and its exact `Content-Type`. Pure string work; it never writes a
//! body and never fails: a header it cannot use falls back to text 0.0.4, as Prometheus' own
//! client libraries do.
//!
//! Offered: `application/openmetrics-text` version 1.0.0 (or no version) and `text/plain`
//! version 0.0.4 (or no version). `*/*` and `text/*` mean text, `application/*` OpenMetrics.
//! The highest q-value wins; on a tie the range listed first wins; `q=0` refuses. No `Accept`
//! header, or none that names something offered, means text 0.0.4.

/// The format of the merged answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutputFormat {
    /// Prometheus text format 0.0.4.
    Text,
    /// OpenMetrics 1.0.0 text.
    OpenMetrics,
}

impl OutputFormat {
    /// The input format with the same syntax (for type words and escapes): how an answer
    /// written in this format is parsed again.
    pub fn syntax(self) -> super::format::InputFormat {
        match self {
            OutputFormat::Text => super::format::InputFormat::Text,
            OutputFormat::OpenMetrics => super::format::InputFormat::OpenMetrics,
        }
    }
}

/// The `escaping=` parameter a caller sent with the chosen media range: how names that are not
/// legacy Prometheus names (`[a-zA-Z_:][a-zA-Z0-9_:]*`) should be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Escaping {
    /// `allow-utf-8`: such names may be written quoted.
    AllowUtf8,
    /// `underscores`: every invalid character becomes `_`.
    Underscores,
    /// `dots`: `.` becomes `_dot_`, `_` becomes `__`, other invalid characters `_` .
    Dots,
    /// `values`: the name becomes `U__` followed by `_<hex>_` for each invalid character.
    Values,
}

impl Escaping {
    fn from_word(word: &str) -> Option<Escaping> {
        match word {
            "allow-utf-8" => Some(Escaping::AllowUtf8),
            "underscores" => Some(Escaping::Underscores),
            "dots" => Some(Escaping::Dots),
            "values" => Some(Escaping::Values),
            _ => None,
        }
    }
}

/// What was negotiated: the format to write and the escaping the caller asked for, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Negotiated {
    pub format: OutputFormat,
    pub escaping: Option<Escaping>,
}

impl From<OutputFormat> for Negotiated {
    /// `format` without an `escaping=` parameter.
    fn from(format: OutputFormat) -> Negotiated {
        Negotiated {
            format,
            escaping: None,
        }
    }
}

/// The content type of text 0.0.4 answers.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// The content type of OpenMetrics 1.0.0 answers (without an `escaping=` parameter).
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

impl Negotiated {
    /// Text 0.0.4, what callers without an `Accept` header get.
    pub const TEXT: Negotiated = Negotiated {
        format: OutputFormat::Text,
        escaping: None,
    };

    /// OpenMetrics 1.0.0 without an escaping parameter.
    pub const OPENMETRICS: Negotiated = Negotiated {
        format: OutputFormat::OpenMetrics,
        escaping: None,
    };

    /// Picks the answer's format from the caller's `Accept` header (see the module doc).
    pub fn from_accept(accept: Option<&str>) -> Negotiated {
        let mut best: Option<(u16, Negotiated)> = None;
        for range in accept.unwrap_or_default().split(',') {
            let Some((q, negotiated)) = offer_for(range) else {
                continue;
            };
            if q > 0 && best.is_none_or(|(best_q, _)| q > best_q) {
                best = Some((q, negotiated));
            }
        }
        best.map_or(Negotiated::TEXT, |(_, n)| n)
    }

    /// The `Content-Type` that names exactly what is written.
    pub fn content_type(&self) -> &'static str {
        match (self.format, self.escaping) {
            (OutputFormat::Text, _) => TEXT_CONTENT_TYPE,
            (OutputFormat::OpenMetrics, None) => OPENMETRICS_CONTENT_TYPE,
            (OutputFormat::OpenMetrics, Some(Escaping::AllowUtf8)) => {
                "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=allow-utf-8"
            }
            (OutputFormat::OpenMetrics, Some(Escaping::Underscores)) => {
                "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=underscores"
            }
            (OutputFormat::OpenMetrics, Some(Escaping::Dots)) => {
                "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=dots"
            }
            (OutputFormat::OpenMetrics, Some(Escaping::Values)) => {
                "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=values"
            }
        }
    }
}

/// What one media range offers, with its q-value in thousandths; `None` when we cannot write
/// anything it names.
fn offer_for(range: &str) -> Option<(u16, Negotiated)> {
    let mut parts = range.split(';');
    let media = parts.next()?.trim();
    let mut q = 1000;
    let mut version = None;
    let mut escaping = None;
    for param in parts {
        let Some((key, value)) = param.split_once('=') else {
            continue;
        };
        let value = value.trim().trim_matches('"');
        match key.trim().to_ascii_lowercase().as_str() {
            "q" => q = parse_q(value)?,
            "version" => version = Some(value),
            "escaping" => escaping = Escaping::from_word(value),
            _ => {}
        }
    }
    let format = if media.eq_ignore_ascii_case("application/openmetrics-text") {
        if !matches!(version, None | Some("1.0.0")) {
            return None;
        }
        OutputFormat::OpenMetrics
    } else if media.eq_ignore_ascii_case("text/plain") {
        if !matches!(version, None | Some("0.0.4")) {
            return None;
        }
        OutputFormat::Text
    } else if media == "*/*" || media.eq_ignore_ascii_case("text/*") {
        OutputFormat::Text
    } else if media.eq_ignore_ascii_case("application/*") {
        OutputFormat::OpenMetrics
    } else {
        return None;
    };
    let escaping = escaping.filter(|_| format == OutputFormat::OpenMetrics);
    Some((q, Negotiated { format, escaping }))
}

/// A q-value (`0`, `0.5`, `1.000`) in thousandths; `None` when malformed.
fn parse_q(value: &str) -> Option<u16> {
    let q: f64 = value.parse().ok()?;
    (0.0..=1.0)
        .contains(&q)
        .then(|| (q * 1000.0).round() as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OM: Negotiated = Negotiated::OPENMETRICS;
    const TEXT: Negotiated = Negotiated::TEXT;

    fn om_escaping(escaping: Escaping) -> Negotiated {
        Negotiated {
            format: OutputFormat::OpenMetrics,
            escaping: Some(escaping),
        }
    }

    #[test]
    fn prometheus_scrape_headers() {
        let cases = [
            // Prometheus 2.0 to 2.4x
            (
                "application/openmetrics-text; version=0.0.1,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
                TEXT,
            ),
            (
                "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
                OM,
            ),
            // Prometheus 2.5x with scrape_protocols
            (
                "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2",
                OM,
            ),
            // Prometheus 3.x, UTF-8 names allowed
            (
                "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1",
                om_escaping(Escaping::AllowUtf8),
            ),
            // Prometheus 3.x with the legacy name validation scheme
            (
                "application/openmetrics-text;version=1.0.0;escaping=underscores;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=underscores;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1",
                om_escaping(Escaping::Underscores),
            ),
            // Prometheus 3.x configured for text first (scrape_protocols)
            (
                "text/plain;version=1.0.0;escaping=allow-utf-8;q=0.5,text/plain;version=0.0.4;q=0.4,application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.3,*/*;q=0.2",
                TEXT,
            ),
        ];
        for (accept, want) in cases {
            assert_eq!(Negotiated::from_accept(Some(accept)), want, "{accept}");
        }
    }

    #[test]
    fn q_values_wildcards_ties_and_fallbacks() {
        let cases = [
            (None, TEXT),
            (Some(""), TEXT),
            (Some("*/*"), TEXT),
            (Some("application/json"), TEXT),
            (Some("text/*;q=0.2, application/*;q=0.3"), OM),
            (Some("application/openmetrics-text"), OM),
            (Some("APPLICATION/OpenMetrics-Text; Version=\"1.0.0\""), OM),
            (Some("application/openmetrics-text;q=0, text/plain"), TEXT),
            (Some("text/plain, application/openmetrics-text"), TEXT),
            (Some("application/openmetrics-text, text/plain"), OM),
            (
                Some("text/plain;q=0.9, application/openmetrics-text;q=0.91"),
                OM,
            ),
            (
                Some("application/openmetrics-text;q=abc, text/plain;q=0.1"),
                TEXT,
            ),
            (Some("application/openmetrics-text;q=2"), TEXT),
            (Some("application/openmetrics-text;version=2.0.0"), TEXT),
            (Some("text/plain;version=1.0.0"), TEXT),
            (
                Some("application/openmetrics-text;escaping=dots"),
                om_escaping(Escaping::Dots),
            ),
            (
                Some("application/openmetrics-text;escaping=values"),
                om_escaping(Escaping::Values),
            ),
            (Some("application/openmetrics-text;escaping=nonsense"), OM),
        ];
        for (accept, want) in cases {
            assert_eq!(Negotiated::from_accept(accept), want, "{accept:?}");
        }
    }

    #[test]
    fn content_type_says_what_is_written() {
        assert_eq!(
            TEXT.content_type(),
            "text/plain; version=0.0.4; charset=utf-8"
        );
        assert_eq!(
            OM.content_type(),
            "application/openmetrics-text; version=1.0.0; charset=utf-8"
        );
        assert_eq!(
            om_escaping(Escaping::Underscores).content_type(),
            "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=underscores"
        );
    }
}
