//! The two input formats and the vocabulary they share: metric types and the sample-name
//! suffixes each type allows. Pure tables and content-type detection; no parsing of bodies
//! beyond the `# EOF` sniff, and no knowledge of how output is written.

/// Which exposition format an instance answered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputFormat {
    /// Prometheus text format 0.0.4.
    Text,
    /// OpenMetrics 1.0 text.
    OpenMetrics,
}

impl InputFormat {
    /// From the instance's Content-Type (`application/openmetrics-text...` → OpenMetrics,
    /// `text/plain...` → Text). When missing or unrecognised, sniff: a body whose last
    /// non-empty line is `# EOF` is OpenMetrics, else Text.
    pub fn detect(content_type: Option<&str>, body: &[u8]) -> InputFormat {
        if let Some(ct) = content_type {
            let ct = ct.trim_start().as_bytes();
            if starts_with_ignore_case(ct, b"application/openmetrics-text") {
                return InputFormat::OpenMetrics;
            }
            if starts_with_ignore_case(ct, b"text/plain") {
                return InputFormat::Text;
            }
        }
        if last_non_empty_line(body) == b"# EOF" {
            InputFormat::OpenMetrics
        } else {
            InputFormat::Text
        }
    }
}

fn starts_with_ignore_case(haystack: &[u8], prefix: &[u8]) -> bool {
    haystack.len() >= prefix.len() && haystack[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// The last line of `body` that is not blank, without surrounding spaces and tabs.
fn last_non_empty_line(body: &[u8]) -> &[u8] {
    let end = body
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    let body = &body[..end];
    let start = body.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    body[start..].trim_ascii()
}

/// The type of a metric family, as declared by `# TYPE` (or implied when there is none).
///
/// OpenMetrics `unknown` and text `untyped` are the same thing and share [`MetricType::Untyped`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    /// `counter`: text samples `name`, OpenMetrics samples `name_total` and `name_created`.
    Counter,
    /// `gauge`: samples `name`.
    Gauge,
    /// `histogram`: samples `name_bucket`, `name_sum`, `name_count` (and OpenMetrics
    /// `name_created`).
    Histogram,
    /// `summary`: samples `name` (quantiles), `name_sum`, `name_count` (and OpenMetrics
    /// `name_created`).
    Summary,
    /// Text `untyped`, OpenMetrics `unknown`, and any family without a `# TYPE` line.
    Untyped,
    /// OpenMetrics `info`: samples `name_info`.
    Info,
    /// OpenMetrics `stateset`: samples `name`, one per state.
    StateSet,
    /// OpenMetrics `gaugehistogram`: samples `name_bucket`, `name_gcount`, `name_gsum`.
    GaugeHistogram,
}

impl MetricType {
    /// Parses the type word of a `# TYPE` line; `None` when `format` has no such type.
    pub(crate) fn from_word(word: &str, format: InputFormat) -> Option<MetricType> {
        let t = match word {
            "counter" => MetricType::Counter,
            "gauge" => MetricType::Gauge,
            "histogram" => MetricType::Histogram,
            "summary" => MetricType::Summary,
            "untyped" if format == InputFormat::Text => MetricType::Untyped,
            "unknown" if format == InputFormat::OpenMetrics => MetricType::Untyped,
            "info" if format == InputFormat::OpenMetrics => MetricType::Info,
            "stateset" if format == InputFormat::OpenMetrics => MetricType::StateSet,
            "gaugehistogram" if format == InputFormat::OpenMetrics => MetricType::GaugeHistogram,
            _ => return None,
        };
        Some(t)
    }

    /// The word a `# TYPE` line uses in `format`; text has no word for the OpenMetrics-only
    /// types and says `untyped`.
    pub(crate) fn word(self, format: InputFormat) -> &'static str {
        match (self, format) {
            (MetricType::Counter, _) => "counter",
            (MetricType::Gauge, _) => "gauge",
            (MetricType::Histogram, _) => "histogram",
            (MetricType::Summary, _) => "summary",
            (_, InputFormat::Text) => "untyped",
            (MetricType::Untyped, InputFormat::OpenMetrics) => "unknown",
            (MetricType::Info, InputFormat::OpenMetrics) => "info",
            (MetricType::StateSet, InputFormat::OpenMetrics) => "stateset",
            (MetricType::GaugeHistogram, InputFormat::OpenMetrics) => "gaugehistogram",
        }
    }

    /// The type words `format` accepts, for error messages.
    pub(crate) fn words(format: InputFormat) -> &'static str {
        match format {
            InputFormat::Text => "one of counter, gauge, histogram, summary, untyped",
            InputFormat::OpenMetrics => {
                "one of counter, gauge, histogram, gaugehistogram, summary, info, stateset, unknown"
            }
        }
    }
}

/// How a sample's name relates to its family's name: `Bare` when they are equal, otherwise
/// the suffix the sample name adds; each variant spells its suffix (see [`Suffix::as_str`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suffix {
    Bare,
    Total,
    Created,
    Bucket,
    Sum,
    Count,
    Info,
    Gcount,
    Gsum,
}

impl Suffix {
    /// Every non-bare suffix, in the order the parser tries them.
    pub(crate) const ALL: [Suffix; 8] = [
        Suffix::Total,
        Suffix::Created,
        Suffix::Bucket,
        Suffix::Sum,
        Suffix::Count,
        Suffix::Info,
        Suffix::Gcount,
        Suffix::Gsum,
    ];

    /// The text the suffix appends to the family name.
    pub fn as_str(self) -> &'static str {
        match self {
            Suffix::Bare => "",
            Suffix::Total => "_total",
            Suffix::Created => "_created",
            Suffix::Bucket => "_bucket",
            Suffix::Sum => "_sum",
            Suffix::Count => "_count",
            Suffix::Info => "_info",
            Suffix::Gcount => "_gcount",
            Suffix::Gsum => "_gsum",
        }
    }

    /// The suffix that `rest`, what a sample name adds to its family name, is.
    pub(crate) fn of(rest: &str) -> Option<Suffix> {
        if rest.is_empty() {
            return Some(Suffix::Bare);
        }
        Suffix::ALL.into_iter().find(|s| s.as_str() == rest)
    }

    /// This suffix as a one-bit mask.
    pub(crate) const fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

/// The set of suffixes a family of type `t` accepts in `format`, as a mask of [`Suffix::bit`].
///
/// OpenMetrics counters and infos also accept the bare family name: some exporters declare
/// `# TYPE foo_total counter` and write `foo_total` samples, and refusing them helps nobody.
pub(crate) fn accepted_suffixes(format: InputFormat, t: MetricType) -> u16 {
    use Suffix::*;
    // Masks spelled out per arm (not folded from a list) so that each is a constant.
    match (format, t) {
        (InputFormat::Text, MetricType::Histogram) => Bucket.bit() | Sum.bit() | Count.bit(),
        (InputFormat::Text, MetricType::Summary) => Bare.bit() | Sum.bit() | Count.bit(),
        (InputFormat::Text, _) => Bare.bit(),
        (InputFormat::OpenMetrics, MetricType::Counter) => Total.bit() | Created.bit() | Bare.bit(),
        (InputFormat::OpenMetrics, MetricType::Info) => Info.bit() | Bare.bit(),
        (InputFormat::OpenMetrics, MetricType::Histogram) => {
            Bucket.bit() | Sum.bit() | Count.bit() | Created.bit()
        }
        (InputFormat::OpenMetrics, MetricType::Summary) => {
            Bare.bit() | Sum.bit() | Count.bit() | Created.bit()
        }
        (InputFormat::OpenMetrics, MetricType::GaugeHistogram) => {
            Bucket.bit() | Gcount.bit() | Gsum.bit()
        }
        (InputFormat::OpenMetrics, _) => Bare.bit(),
    }
}

/// The sample names a family accepts, for error messages: `'foo_bucket', 'foo_sum' or 'foo_count'`.
pub(crate) fn describe_sample_names(format: InputFormat, t: MetricType, family: &str) -> String {
    let mask = accepted_suffixes(format, t);
    let names: Vec<String> = std::iter::once(Suffix::Bare)
        .chain(Suffix::ALL)
        .filter(|s| mask & s.bit() != 0)
        .map(|s| format!("'{family}{}'", s.as_str()))
        .collect();
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        Some((last, _)) => last.clone(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_type_decides_when_recognised() {
        let om_body = b"a 1\n# EOF\n";
        let cases: &[(Option<&str>, &[u8], InputFormat)] = &[
            (
                Some("application/openmetrics-text; version=1.0.0; charset=utf-8"),
                b"a 1\n",
                InputFormat::OpenMetrics,
            ),
            (
                Some("Application/OpenMetrics-Text"),
                b"",
                InputFormat::OpenMetrics,
            ),
            (
                Some("text/plain; version=0.0.4"),
                om_body,
                InputFormat::Text,
            ),
            (Some("  TEXT/PLAIN"), om_body, InputFormat::Text),
        ];
        for (ct, body, want) in cases {
            assert_eq!(InputFormat::detect(*ct, body), *want, "{ct:?}");
        }
    }

    #[test]
    fn sniffs_eof_when_content_type_missing_or_unknown() {
        let cases: &[(Option<&str>, &[u8], InputFormat)] = &[
            (None, b"a 1\n# EOF\n", InputFormat::OpenMetrics),
            (None, b"a 1\n# EOF", InputFormat::OpenMetrics),
            (None, b"a 1\n# EOF\n\n  \n", InputFormat::OpenMetrics),
            (
                Some("application/json"),
                b"# EOF\n",
                InputFormat::OpenMetrics,
            ),
            (None, b"a 1\n", InputFormat::Text),
            (None, b"# EOF\na 1\n", InputFormat::Text),
            (None, b"", InputFormat::Text),
            (
                Some("application/octet-stream"),
                b"a 1\n# EOFX\n",
                InputFormat::Text,
            ),
        ];
        for (ct, body, want) in cases {
            assert_eq!(
                InputFormat::detect(*ct, body),
                *want,
                "{ct:?} {:?}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn describes_histogram_sample_names() {
        assert_eq!(
            describe_sample_names(InputFormat::Text, MetricType::Histogram, "h"),
            "'h_bucket', 'h_sum' or 'h_count'"
        );
        assert_eq!(
            describe_sample_names(InputFormat::Text, MetricType::Gauge, "g"),
            "'g'"
        );
    }
}
