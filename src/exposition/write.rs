//! Writes text 0.0.4 lines straight into the output buffer: `# HELP`, `# TYPE` and samples with
//! their labels rewritten. It decides spelling (escapes, values, timestamps), never which
//! samples are written or in what order.

use super::escape;
use super::format::{InputFormat, MetricType};
use super::model::{Label, Sample};
use super::number;

/// The content type of what [`super::merge_text`] writes.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A family name as written: a slice of some body plus a fixed suffix (`foo` + `_total`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Name<'a> {
    pub(crate) base: &'a str,
    pub(crate) suffix: &'static str,
}

impl Name<'_> {
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.base.as_bytes());
        out.extend_from_slice(self.suffix.as_bytes());
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

/// `# HELP name text`, with `raw` (as written in `format`) re-escaped for text.
pub(crate) fn help(name: Name<'_>, raw: &str, format: InputFormat, out: &mut Vec<u8>) {
    out.extend_from_slice(b"# HELP ");
    name.write(out);
    out.push(b' ');
    escape::write_help(raw, format, out);
    out.push(b'\n');
}

/// `# TYPE name type`.
pub(crate) fn type_line(name: Name<'_>, kind: MetricType, out: &mut Vec<u8>) {
    out.extend_from_slice(b"# TYPE ");
    name.write(out);
    out.push(b' ');
    out.extend_from_slice(kind.text_word().as_bytes());
    out.push(b'\n');
}

/// Renders appended labels once per source as `a="x",b="y"` (values escaped), so that each
/// sample only copies bytes.
pub(crate) fn render_labels(labels: &[(&str, &str)], out: &mut Vec<u8>) {
    for (i, (name, value)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"=\"");
        escape::write_label_value(value, out);
        out.push(b'"');
    }
}

/// Whether an own label is replaced by an appended one of the same name.
pub(crate) fn is_replaced(label: &Label<'_>, appended: &[(&str, &str)]) -> bool {
    appended.iter().any(|(name, _)| *name == label.name)
}

/// One sample line: its own labels minus those in `appended`, as written (see
/// [`escape::write_raw_label_value`]), then
/// `rendered_appended` (from [`render_labels`]); braces only when there is a label.
pub(crate) fn sample(
    sample: &Sample<'_>,
    labels: &[Label<'_>],
    appended: &[(&str, &str)],
    rendered_appended: &[u8],
    format: InputFormat,
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(sample.name.as_bytes());
    let mut open = false;
    for label in labels {
        if is_replaced(label, appended) {
            continue;
        }
        out.push(if open { b',' } else { b'{' });
        open = true;
        out.extend_from_slice(label.name.as_bytes());
        out.extend_from_slice(b"=\"");
        escape::write_raw_label_value(label.raw_value, out);
        out.push(b'"');
    }
    if !rendered_appended.is_empty() {
        out.push(if open { b',' } else { b'{' });
        open = true;
        out.extend_from_slice(rendered_appended);
    }
    if open {
        out.push(b'}');
    }
    out.push(b' ');
    number::write_value(sample.value, out);
    if let Some(ts) = sample.timestamp {
        match format {
            InputFormat::Text => {
                out.push(b' ');
                out.extend_from_slice(ts.as_bytes());
            }
            InputFormat::OpenMetrics => {
                // Checked by the parser; a timestamp that cannot be converted is left out.
                if let Some(ms) = number::om_timestamp_millis(ts) {
                    out.push(b' ');
                    number::write_i64(ms, out);
                }
            }
        }
    }
    out.push(b'\n');
}
