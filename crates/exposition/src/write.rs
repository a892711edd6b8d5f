//! Writes the lines of both output formats straight into the output buffer: `# HELP`,
//! `# TYPE`, `# UNIT`, samples with their labels rewritten, and `# EOF`. It decides spelling
//! (escapes, values, timestamps in milliseconds or seconds, exemplars), never which samples are
//! written or in what order.

use super::escape;
use super::format::{InputFormat, MetricType};
use super::model::{Label, Labels, Sample};
use super::names::{self, Kind, Style};
use super::negotiate::OutputFormat;
use super::number;
use super::parse::exemplar_parts;

/// The longest exemplar label set OpenMetrics allows, in characters of names and values.
const MAX_EXEMPLAR_LABEL_CHARS: usize = 128;

/// A family name as written: a slice of some body (or an escaped name) plus a fixed suffix
/// (`foo` + `_total`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Name<'a> {
    pub(crate) base: &'a str,
    pub(crate) suffix: &'static str,
}

impl Name<'_> {
    /// Writes the name, quoted when it is not a legacy name (names are escaped before they
    /// get here unless the caller allows UTF-8 names).
    fn write(&self, out: &mut Vec<u8>) {
        if names::is_legacy(self.base, Kind::Metric) {
            out.extend_from_slice(self.base.as_bytes());
            out.extend_from_slice(self.suffix.as_bytes());
        } else {
            out.push(b'"');
            escape::write_raw_label_value(self.base, out);
            out.extend_from_slice(self.suffix.as_bytes());
            out.push(b'"');
        }
    }

    /// The written name's bytes.
    pub(crate) fn bytes(&self) -> impl Iterator<Item = u8> + '_ {
        self.base.bytes().chain(self.suffix.bytes())
    }

    /// The written name's length.
    pub(crate) fn len(&self) -> usize {
        self.base.len() + self.suffix.len()
    }

    /// Byte order of the written names.
    pub(crate) fn cmp_bytes(&self, other: &Name<'_>) -> std::cmp::Ordering {
        if self.suffix.is_empty() && other.suffix.is_empty() {
            return self.base.cmp(other.base);
        }
        self.bytes().cmp(other.bytes())
    }
}

/// `# HELP name text`, with `raw` (as written in `from`) re-escaped for `to`.
pub(crate) fn help(
    name: Name<'_>,
    raw: &str,
    from: InputFormat,
    to: OutputFormat,
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(b"# HELP ");
    name.write(out);
    out.push(b' ');
    escape::write_help(raw, from, to, out);
    out.push(b'\n');
}

/// `# TYPE name type`, with the type word of `to`.
pub(crate) fn type_line(name: Name<'_>, kind: MetricType, to: OutputFormat, out: &mut Vec<u8>) {
    out.extend_from_slice(b"# TYPE ");
    name.write(out);
    out.push(b' ');
    out.extend_from_slice(kind.word(to.syntax()).as_bytes());
    out.push(b'\n');
}

/// `# UNIT name unit` (OpenMetrics only).
pub(crate) fn unit_line(name: Name<'_>, unit: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(b"# UNIT ");
    name.write(out);
    out.push(b' ');
    out.extend_from_slice(unit.as_bytes());
    out.push(b'\n');
}

/// The end of an OpenMetrics exposition.
pub(crate) fn eof(out: &mut Vec<u8>) {
    out.extend_from_slice(b"# EOF\n");
}

/// The labels appended to every sample of one source, rendered once as `a="x",b="y"` (values
/// escaped) so that each sample only copies bytes, with a quick filter of their names.
pub(crate) struct Appended<'s> {
    pub(crate) labels: &'s [(&'s str, &'s str)],
    rendered: Vec<u8>,
    /// The [`name_bit`]s of the names in `labels`.
    filter: u128,
}

impl<'s> Appended<'s> {
    pub(crate) fn new(labels: &'s [(&'s str, &'s str)]) -> Appended<'s> {
        let mut rendered = Vec::new();
        for (i, (name, value)) in labels.iter().enumerate() {
            if i > 0 {
                rendered.push(b',');
            }
            rendered.extend_from_slice(name.as_bytes());
            rendered.extend_from_slice(b"=\"");
            escape::write_label_value(value, &mut rendered);
            rendered.push(b'"');
        }
        let filter = labels.iter().fold(0, |f, (name, _)| f | name_bit(name));
        Appended {
            labels,
            rendered,
            filter,
        }
    }

    /// Whether an own label named `name` is replaced by an appended one.
    pub(crate) fn replaces(&self, name: &str) -> bool {
        self.filter & name_bit(name) != 0 && self.labels.iter().any(|(n, _)| *n == name)
    }
}

/// One of 128 bits chosen by a name's length and first byte: most names that are not appended
/// miss the filter and need no string comparison.
fn name_bit(name: &str) -> u128 {
    let first = name.as_bytes().first().copied().unwrap_or(0);
    1 << ((name.len() * 7 + usize::from(first)) & 127)
}

/// How the samples of one source are spelled in the output.
pub(crate) struct Spelling<'s> {
    /// The source's own labels, which replace sample labels of the same name.
    pub(crate) appended: &'s Appended<'s>,
    pub(crate) from: InputFormat,
    pub(crate) to: OutputFormat,
    /// How names that are not legacy names are written; `None` when the source has none.
    pub(crate) utf8_names: Option<Style>,
}

/// How the samples of one contribution write their names.
#[derive(Debug, Clone, Copy)]
pub(crate) enum SampleName<'n> {
    /// As they are.
    AsIs,
    /// Quoted, first inside the braces (the family name is not a legacy name).
    Quoted,
    /// The family's escaped name in place of the first `raw_len` bytes.
    Escaped { family: &'n str, raw_len: usize },
}

/// The own labels a sample keeps.
pub(crate) enum Kept<'k, 'a> {
    /// Its labels minus those the appended ones replace; `replaced` says whether there were
    /// any.
    Own {
        labels: Labels<'k, 'a>,
        replaced: bool,
    },
    /// Labels renamed for the output (escaped names), already without replaced and repeated
    /// names.
    Renamed(&'k [(String, &'a str)]),
}

impl Spelling<'_> {
    /// One sample line: its name as `name` says, its `kept` labels as written (see
    /// [`escape::write_raw_label_value`]), then the rendered appended labels; braces only when
    /// there is a label. `head` is the name and labels as written when they can be copied as
    /// they are (see [`Exposition::head`]). `exemplar` says whether the sample may carry its
    /// exemplar (OpenMetrics to OpenMetrics only); `scratch` is reused to re-read it.
    ///
    /// [`Exposition::head`]: super::model::Exposition::head
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn sample<'a>(
        &self,
        sample: &Sample<'a>,
        name: SampleName<'_>,
        kept: Kept<'_, 'a>,
        head: Option<&str>,
        exemplar: bool,
        scratch: &mut Vec<Label<'a>>,
        out: &mut Vec<u8>,
    ) {
        let rendered = &self.appended.rendered;
        let copy_head = match (name, &kept) {
            (SampleName::AsIs, Kept::Own { labels, replaced }) => {
                !(*replaced
                    || self.to == OutputFormat::OpenMetrics && labels.has_odd_infinite_bound())
            }
            _ => false,
        };
        let open = match head.filter(|_| copy_head) {
            Some(head) => {
                out.reserve(head.len() + rendered.len() + sample.value.len() + 4);
                out.extend_from_slice(head.as_bytes());
                true
            }
            None => {
                let quoted = match name {
                    SampleName::AsIs => {
                        out.extend_from_slice(sample.name.as_bytes());
                        false
                    }
                    SampleName::Escaped { family, raw_len } => {
                        let rest = sample.name.get(raw_len..).unwrap_or_default();
                        out.extend_from_slice(family.as_bytes());
                        out.extend_from_slice(rest.as_bytes());
                        false
                    }
                    SampleName::Quoted => {
                        out.push(b'{');
                        names::write_quoted(sample.name, out);
                        true
                    }
                };
                self.labels(&kept, quoted, out)
            }
        };
        if !rendered.is_empty() {
            out.push(if open { b',' } else { b'{' });
            out.extend_from_slice(rendered);
        }
        if open || !rendered.is_empty() {
            out.push(b'}');
        }
        out.push(b' ');
        number::write_value(sample.value, out);
        if let Some(ts) = sample.timestamp {
            self.timestamp(ts, out);
        }
        if exemplar {
            if let Some(raw) = sample.exemplar {
                self.exemplar(raw, scratch, out);
            }
        }
        out.push(b'\n');
    }

    /// The kept own labels, after a `{` (written here unless `open`); says whether a `{` was
    /// written.
    fn labels(&self, kept: &Kept<'_, '_>, mut open: bool, out: &mut Vec<u8>) -> bool {
        let mut write = |name: &str, raw_value: &str| {
            out.push(if open { b',' } else { b'{' });
            open = true;
            self.label(name, raw_value, out);
        };
        match kept {
            Kept::Own { labels, .. } => labels
                .iter()
                .filter(|l| !self.appended.replaces(l.name))
                .for_each(|l| write(l.name, l.raw_value)),
            Kept::Renamed(labels) => labels.iter().for_each(|(n, v)| write(n, v)),
        }
        open
    }

    /// `name="value"`, the name quoted when it is not a legacy name.
    fn label(&self, name: &str, raw_value: &str, out: &mut Vec<u8>) {
        if self.utf8_names.is_some() && !names::is_legacy(name, Kind::Label) {
            names::write_quoted(name, out);
        } else {
            out.extend_from_slice(name.as_bytes());
        }
        out.extend_from_slice(b"=\"");
        if self.to == OutputFormat::OpenMetrics
            && (Label { name, raw_value }).is_odd_infinite_bound()
        {
            // OpenMetrics wants the canonical `+Inf` for infinite bounds.
            out.extend_from_slice(b"+Inf");
        } else {
            escape::write_raw_label_value(raw_value, out);
        }
        out.push(b'"');
    }

    /// ` # {labels} value [timestamp]`, re-spaced as OpenMetrics demands; left out when its
    /// label set is longer than OpenMetrics allows, or when it has a name that is not a legacy
    /// name and such names are escaped (exemplars are optional, and escaping could make two
    /// of their names one).
    fn exemplar<'a>(&self, raw: &'a str, scratch: &mut Vec<Label<'a>>, out: &mut Vec<u8>) {
        scratch.clear();
        let Some((value, timestamp)) = exemplar_parts(raw, scratch) else {
            return;
        };
        let chars: usize = scratch
            .iter()
            .map(|l| l.name.len() + l.value().chars().count())
            .sum();
        if chars > MAX_EXEMPLAR_LABEL_CHARS {
            return;
        }
        if matches!(self.utf8_names, Some(Style::Escape(_)))
            && !scratch
                .iter()
                .all(|l| names::is_legacy(l.name, Kind::Label))
        {
            return;
        }
        out.extend_from_slice(b" # {");
        for (i, label) in scratch.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            self.label(label.name, label.raw_value, out);
        }
        out.extend_from_slice(b"} ");
        number::write_value(value, out);
        if let Some(ts) = timestamp {
            out.push(b' ');
            out.extend_from_slice(ts.as_bytes());
        }
    }

    /// ` timestamp` in the output's unit; a timestamp that cannot be converted is left out (the
    /// parser checked it, so that does not happen).
    fn timestamp(&self, ts: &str, out: &mut Vec<u8>) {
        match (self.from, self.to) {
            (InputFormat::Text, OutputFormat::Text)
            | (InputFormat::OpenMetrics, OutputFormat::OpenMetrics) => {
                out.push(b' ');
                out.extend_from_slice(ts.as_bytes());
            }
            (InputFormat::OpenMetrics, OutputFormat::Text) => {
                if let Some(ms) = number::om_timestamp_millis(ts) {
                    out.push(b' ');
                    number::write_i64(ms, out);
                }
            }
            (InputFormat::Text, OutputFormat::OpenMetrics) => {
                let mark = out.len();
                out.push(b' ');
                if number::write_millis_as_seconds(ts, out).is_none() {
                    out.truncate(mark);
                }
            }
        }
    }
}
