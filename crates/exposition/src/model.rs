//! The parsed shape of one exposition: families, their samples and the samples' labels, all
//! borrowing slices of the instance's body. Plain data plus accessors; it does not parse,
//! validate or write anything.

use std::borrow::Cow;

use super::escape;
use super::format::{InputFormat, MetricType, Suffix};
use super::number;

/// One parsed exposition: its families in input order.
///
/// Labels of all samples live in one shared vector so that a sample costs no allocation of its
/// own, each kept as four 32-bit offsets into the body (half the size of two string slices:
/// the labels are most of a parsed exposition's memory); use [`Exposition::labels`] to get a
/// sample's labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Exposition<'a> {
    /// The format the body was parsed as; it decides how metadata is escaped.
    pub format: InputFormat,
    /// Families in the order their first line (metadata or sample) appeared.
    pub families: Vec<Family<'a>>,
    /// Labels of every sample, in input order; [`Sample::labels`] indexes into it.
    pub(crate) all_labels: Vec<LabelSpan>,
    /// The body everything borrows from.
    pub(crate) body: &'a str,
    /// Whether some name is not a legacy name (it was quoted); then names are checked one by
    /// one when written.
    pub(crate) utf8_names: bool,
}

impl<'a> Exposition<'a> {
    /// The labels of `sample`, in input order.
    pub fn labels(&self, sample: &Sample<'a>) -> Labels<'_, 'a> {
        let start = sample.labels.start as usize;
        let end = sample.labels.end as usize;
        Labels {
            body: self.body,
            spans: self.all_labels.get(start..end).unwrap_or(&[]),
        }
    }

    /// The sample's name and labels exactly as written, `name{a="x",b="y"` without the closing
    /// brace, when they are written plainly (see [`Sample::head_len`]) and there is a label.
    pub(crate) fn head(&self, sample: &Sample<'a>) -> Option<&'a str> {
        if sample.head_len == 0 {
            return None;
        }
        let start = (sample.name.as_ptr() as usize).checked_sub(self.body.as_ptr() as usize)?;
        self.body.get(start..start + sample.head_len as usize)
    }

    /// Total number of samples over all families.
    pub fn sample_count(&self) -> usize {
        self.families.iter().map(|f| f.samples.len()).sum()
    }
}

/// One metric family: its metadata and its samples in input order.
#[derive(Debug, Clone, PartialEq)]
pub struct Family<'a> {
    /// The family name from `# TYPE`/`# HELP`, or the sample name when there was no metadata.
    /// A quoted name is kept as written between its quotes (escapes not decoded).
    pub name: &'a str,
    /// The declared type, [`MetricType::Untyped`] when there is no `# TYPE` line.
    pub kind: MetricType,
    /// Whether `kind` comes from a `# TYPE` line.
    pub declared: bool,
    /// The `# HELP` text exactly as written (escapes not decoded); see [`Family::help_text`].
    pub help: Option<&'a str>,
    /// The OpenMetrics `# UNIT`, if any.
    pub unit: Option<&'a str>,
    pub samples: Vec<Sample<'a>>,
    /// Which [`Suffix`]es occur among `samples`, as a mask of suffix bits.
    pub(crate) suffixes: u16,
}

impl<'a> Family<'a> {
    pub(crate) fn new(name: &'a str, kind: MetricType, declared: bool) -> Family<'a> {
        Family {
            name,
            kind,
            declared,
            help: None,
            unit: None,
            samples: Vec::new(),
            suffixes: 0,
        }
    }

    /// The HELP text with its escapes decoded (`format` says which escapes exist).
    /// Borrows when there is nothing to decode.
    pub fn help_text(&self, format: InputFormat) -> Option<Cow<'a, str>> {
        self.help.map(|raw| escape::decode_help(raw, format))
    }
}

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample<'a> {
    /// The full sample name, e.g. `http_seconds_bucket`.
    pub name: &'a str,
    /// How `name` extends the family name.
    pub suffix: Suffix,
    /// Range into `Exposition::all_labels`; use [`Exposition::labels`].
    pub labels: std::ops::Range<u32>,
    /// The value exactly as written (`1.5e3`, `NaN`, `+Inf`, ...), already checked to be a float.
    pub value: &'a str,
    /// The timestamp as written: integer milliseconds in text, float seconds in OpenMetrics.
    pub timestamp: Option<&'a str>,
    /// OpenMetrics exemplar as written after ` # `, starting at its `{`.
    pub exemplar: Option<&'a str>,
    /// Length of `name{a="x",b="y"` when the labels follow the name plainly: no whitespace, no
    /// trailing comma, no backslash in a value; 0 otherwise and when there is no label. Such a
    /// head can be copied to the output in one piece.
    pub(crate) head_len: u32,
}

/// Where one label's name and raw value are in the body, as byte offsets (a parsed body is
/// under 4 GiB, see `parse`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LabelSpan {
    name: u32,
    name_len: u32,
    value: u32,
    value_len: u32,
}

impl LabelSpan {
    /// The span of `label`, whose slices lie within `body`; `None` past 4 GiB.
    pub(crate) fn of(body: &str, label: Label<'_>) -> Option<LabelSpan> {
        let offset = |s: &str| u32::try_from(s.as_ptr() as usize - body.as_ptr() as usize).ok();
        let len = |s: &str| u32::try_from(s.len()).ok();
        Some(LabelSpan {
            name: offset(label.name)?,
            name_len: len(label.name)?,
            value: offset(label.raw_value)?,
            value_len: len(label.raw_value)?,
        })
    }

    fn resolve(self, body: &str) -> Label<'_> {
        Label {
            name: slice(body, self.name, self.name_len),
            raw_value: slice(body, self.value, self.value_len),
        }
    }
}

/// The `len` bytes of `body` at `at`, as a [`LabelSpan`] records them.
fn slice(body: &str, at: u32, len: u32) -> &str {
    let at = at as usize;
    body.get(at..at + len as usize).unwrap_or_default()
}

/// The labels of one sample, in input order: a cheap copyable view that yields [`Label`]s.
#[derive(Debug, Clone, Copy)]
pub struct Labels<'e, 'a> {
    body: &'a str,
    spans: &'e [LabelSpan],
}

impl<'e, 'a> Labels<'e, 'a> {
    /// The labels in input order.
    pub fn iter(self) -> impl DoubleEndedIterator<Item = Label<'a>> + ExactSizeIterator + Clone + 'e
    where
        'a: 'e,
    {
        let body = self.body;
        self.spans.iter().map(move |span| span.resolve(body))
    }

    /// The raw value of the last label named `name` (labels a sample's type defines, such as
    /// `le`, usually come last). Only names of the right length are looked at.
    pub fn value_of(self, name: &str) -> Option<&'a str> {
        let body = self.body;
        let span = self
            .spans
            .iter()
            .rev()
            .filter(|span| span.name_len as usize == name.len())
            .find(|span| slice(body, span.name, span.name_len) == name)?;
        Some(slice(body, span.value, span.value_len))
    }

    /// Whether some label is an odd infinite bound ([`Label::is_odd_infinite_bound`]). Only
    /// labels whose names are as long as `le` or `quantile` are looked at.
    pub(crate) fn has_odd_infinite_bound(self) -> bool {
        self.spans
            .iter()
            .filter(|span| matches!(span.name_len, 2 | 8))
            .any(|span| span.resolve(self.body).is_odd_infinite_bound())
    }
}

/// One label of a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Label<'a> {
    pub name: &'a str,
    /// The value between the quotes exactly as written, escapes not decoded.
    pub raw_value: &'a str,
}

impl<'a> Label<'a> {
    /// The value with `\\`, `\"` and `\n` decoded; borrows when there is nothing to decode.
    pub fn value(&self) -> Cow<'a, str> {
        escape::decode_label_value(self.raw_value)
    }

    /// Whether this is an `le` or `quantile` bound spelled as infinity other than `+Inf` (as
    /// `Inf` or `+inf`), which OpenMetrics output writes `+Inf`.
    pub(crate) fn is_odd_infinite_bound(self) -> bool {
        matches!(self.name, "le" | "quantile")
            && self
                .raw_value
                .bytes()
                .last()
                .is_some_and(|b| b.is_ascii_alphabetic())
            && self.raw_value != "+Inf"
            && number::to_f64(self.raw_value) == Some(f64::INFINITY)
    }
}

#[cfg(test)]
mod tests {
    use crate::{parse, InputFormat};

    /// Runs `check` on the labels of the only sample of `line`.
    fn with_labels<T>(line: &str, check: impl Fn(super::Labels<'_, '_>) -> T) -> T {
        let e = parse(line.as_bytes(), InputFormat::Text).unwrap();
        check(e.labels(&e.families[0].samples[0]))
    }

    #[test]
    fn value_of_finds_a_label_by_its_whole_name() {
        let line = "m{ab=\"1\",le=\"2\",lex=\"3\"} 1\n";
        let value_of = |name: &str| with_labels(line, |l| l.value_of(name).map(str::to_owned));
        assert_eq!(value_of("le").as_deref(), Some("2"));
        assert_eq!(value_of("ab").as_deref(), Some("1"));
        assert_eq!(value_of("lex").as_deref(), Some("3"));
        assert_eq!(value_of("l"), None);
    }

    #[test]
    fn odd_infinite_bounds_are_le_or_quantile_infinities_not_spelled_plus_inf() {
        let cases = [
            ("m{le=\"Inf\"} 1\n", true),
            ("m{a=\"b\",quantile=\"+inf\"} 1\n", true),
            ("m{le=\"infinity\"} 1\n", true),
            ("m{le=\"+Inf\"} 1\n", false),
            ("m{le=\"-Inf\"} 1\n", false),
            ("m{le=\"1\"} 1\n", false),
            ("m{xy=\"Inf\"} 1\n", false),
            ("m 1\n", false),
        ];
        for (line, odd) in cases {
            assert_eq!(
                with_labels(line, |l| l.has_odd_infinite_bound()),
                odd,
                "{line}"
            );
        }
    }
}
