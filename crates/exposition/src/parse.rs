//! The parser: walks a body line by line and builds an [`Exposition`] whose names, values and
//! label values are slices of the body. It decides which family each sample belongs to and
//! rejects what Prometheus would reject; it never decodes escapes, allocates per sample (beyond
//! growing vectors) or knows about merging and output.
//!
//! Family assignment, per sample name `n`:
//! 1. the family of the previous line, if `n` is one of its sample names (the common case: a
//!    family's samples are contiguous, so no lookup is needed);
//! 2. the family named exactly `n` if it has a `# TYPE`; if that type does not allow a bare
//!    sample name (a histogram `n` with a sample `n`) the line is an error;
//! 3. a family `n` minus a suffix (`_bucket`, `_total`, ...) whose type allows that suffix;
//! 4. the family named exactly `n` without a `# TYPE` (one that an earlier sample or HELP
//!    started);
//! 5. otherwise a new family `n` without a `# TYPE` (untyped).

use foldhash::HashMap;

use super::cursor::{has_prefix, Cursor};
use super::error::{found_token, ParseError};
use super::format::{accepted_suffixes, describe_sample_names, InputFormat, MetricType, Suffix};
use super::model::{Exposition, Family, Label, LabelSpan, Sample};
use super::names::{self, Kind};
use super::number;

/// Parse a whole body. Zero-copy: entries borrow slices of `body`; allocate only the Vec
/// containers.
///
/// The whole body must be UTF-8, as Prometheus requires.
pub fn parse(body: &[u8], format: InputFormat) -> Result<Exposition<'_>, ParseError> {
    let text = std::str::from_utf8(body).map_err(|e| utf8_error(body, e.valid_up_to()))?;
    if u32::try_from(text.len()).is_err() {
        return Err(ParseError {
            line: 1,
            column: 1,
            expected: "a body under 4 GiB".to_owned(),
            found: format!("{} bytes", text.len()),
        });
    }
    let mut parser = Parser {
        format,
        body: text,
        families: Vec::new(),
        // Every label has an `=` and takes at least 4 bytes (`a=""`), so either count is room
        // enough for all labels: the vector never grows (and copies) while parsing. The first
        // is close to what real bodies need; the second keeps a value full of `=` signs from
        // reserving 16 bytes for each.
        labels: Vec::with_capacity(memchr::memchr_iter(b'=', body).count().min(body.len() / 4)),
        line_labels: Vec::new(),
        index: HashMap::default(),
        current: None,
        utf8_names: false,
    };
    let mut eof_seen = false;
    let mut start = 0;
    let mut line_no = 1;
    let last = loop {
        let mut cursor = Cursor::new(&text[start..], line_no);
        cursor.skip_ws();
        if eof_seen {
            if !cursor.at_end() {
                return Err(cursor.token_error(cursor.pos(), "end of input after '# EOF'"));
            }
        } else if parser.line(&mut cursor)? == Line::Eof {
            eof_seen = true;
        }
        let end = start + cursor.line_end();
        if end >= text.len() {
            break (line_no, end - start);
        }
        start = end + 1;
        line_no += 1;
    };
    if format == InputFormat::OpenMetrics && !eof_seen {
        return Err(ParseError {
            line: last.0,
            column: last.1 + 1,
            expected: "'# EOF' at end of OpenMetrics exposition".to_owned(),
            found: "end of input".to_owned(),
        });
    }
    Ok(Exposition {
        format,
        families: parser.families,
        all_labels: parser.labels,
        body: text,
        utf8_names: parser.utf8_names,
    })
}

fn utf8_error(body: &[u8], valid_up_to: usize) -> ParseError {
    let before = &body[..valid_up_to];
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    ParseError {
        line: before.iter().filter(|&&b| b == b'\n').count() + 1,
        column: valid_up_to - line_start + 1,
        expected: "valid UTF-8".to_owned(),
        found: body
            .get(valid_up_to)
            .map_or_else(|| "end of input".to_owned(), |b| format!("byte 0x{b:02x}")),
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Line {
    Other,
    Eof,
}

struct Parser<'a> {
    format: InputFormat,
    body: &'a str,
    families: Vec<Family<'a>>,
    /// The labels of every sample so far, as spans of `body`.
    labels: Vec<LabelSpan>,
    /// The labels of the line being read.
    line_labels: Vec<Label<'a>>,
    /// Families by name, hashed with foldhash (randomly seeded): SipHash was a fifth of the
    /// parse of bodies with many small families.
    index: HashMap<&'a str, usize>,
    /// The family the previous metadata or sample line belonged to.
    current: Option<usize>,
    /// Whether a quoted name that is not a legacy name was read.
    utf8_names: bool,
}

impl<'a> Parser<'a> {
    /// One line, leading whitespace already skipped.
    fn line(&mut self, c: &mut Cursor<'a>) -> Result<Line, ParseError> {
        match c.peek() {
            None => Ok(Line::Other),
            Some(b'#') => {
                c.advance(1);
                self.comment(c)
            }
            Some(_) => self.sample(c).map(|()| Line::Other),
        }
    }

    /// A line starting with `#`: metadata, `# EOF`, or a comment to ignore.
    fn comment(&mut self, c: &mut Cursor<'a>) -> Result<Line, ParseError> {
        if !c.skip_ws() {
            return Ok(Line::Other);
        }
        let om = self.format == InputFormat::OpenMetrics;
        let rest = c.rest();
        if om && rest.trim_end_matches([' ', '\t']) == "EOF" {
            return Ok(Line::Eof);
        }
        let keyword = ["HELP", "TYPE", "UNIT"]
            .into_iter()
            .filter(|k| om || *k != "UNIT")
            .find(|k| rest.starts_with(k));
        let Some(keyword) = keyword else {
            return Ok(Line::Other);
        };
        c.advance(keyword.len());
        if !c.skip_ws() {
            // `# HELPER ...` is a comment; so is a bare `# HELP`, as in Prometheus.
            return Ok(Line::Other);
        }
        let expected = match keyword {
            "HELP" => "metric name after HELP",
            "TYPE" => "metric name after TYPE",
            _ => "metric name after UNIT",
        };
        let name = c.metadata_name(self.known_name(), expected)?;
        self.utf8_names |= c.utf8_names();
        if !c.at_end() && !c.skip_ws() {
            return Err(c.error("whitespace after metric name"));
        }
        let index = self.family_for_metadata(name);
        self.current = Some(index);
        match keyword {
            "HELP" => {
                let text = c.rest();
                let family = &mut self.families[index];
                if family.help.is_none() {
                    family.help = Some(text);
                }
            }
            "UNIT" => {
                let unit = c.take_rest();
                self.families[index].unit = Some(unit);
            }
            _ => self.declare_type(index, c)?,
        }
        Ok(Line::Other)
    }

    /// The previous line's family name, which the next name probably starts with (see
    /// [`Cursor::metric_name_after`]); empty when there is none or it is not a legacy name
    /// (only those are written unquoted).
    fn known_name(&self) -> &'a str {
        self.current
            .map(|i| self.families[i].name)
            .filter(|n| !self.utf8_names || names::is_legacy(n, Kind::Metric))
            .unwrap_or_default()
    }

    fn family_for_metadata(&mut self, name: &'a str) -> usize {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        self.push_family(Family::new(name, MetricType::Untyped, false))
    }

    fn push_family(&mut self, family: Family<'a>) -> usize {
        let i = self.families.len();
        self.index.insert(family.name, i);
        self.families.push(family);
        i
    }

    fn declare_type(&mut self, index: usize, c: &mut Cursor<'a>) -> Result<(), ParseError> {
        let at = c.pos();
        let word = c.take_rest();
        let Some(kind) = MetricType::from_word(word, self.format) else {
            return Err(c.error_at(at, MetricType::words(self.format), found_token(word)));
        };
        let family = &mut self.families[index];
        if family.declared {
            if family.kind == kind {
                return Ok(());
            }
            return Err(c.error_at(
                at,
                format!("one TYPE for '{}'", family.name),
                format!("'{word}' after an earlier TYPE line"),
            ));
        }
        if !family.samples.is_empty() {
            return Err(c.error_at(
                at,
                format!("TYPE of '{}' before its samples", family.name),
                format!("'{word}' after them"),
            ));
        }
        family.kind = kind;
        family.declared = true;
        Ok(())
    }

    /// A sample line: `name[{labels}] value [timestamp] [# exemplar]`.
    fn sample(&mut self, c: &mut Cursor<'a>) -> Result<(), ParseError> {
        let name_at = c.pos();
        let mut name = None;
        if c.peek() != Some(b'{') {
            name = Some(c.metric_name_after(self.known_name(), "metric name")?);
        }

        let spaced = c.skip_ws();
        self.line_labels.clear();
        let mut head_len = 0;
        if c.eat(b'{') {
            let set = c.label_set(&mut self.line_labels, name.is_none())?;
            let last = self.line_labels.last();
            if let Some(last) = last.filter(|_| set.plain && !spaced) {
                head_len = c.offset_of(last.raw_value) + last.raw_value.len() + 1 - name_at;
            }
            name = name.or(set.name);
            c.skip_ws();
        } else if !spaced && !c.at_end() {
            return Err(c.error("'{' or whitespace after metric name"));
        }
        let Some(name) = name else {
            return Err(c.error_at(name_at, "metric name", "a label set without one".to_owned()));
        };
        self.utf8_names |= c.utf8_names();
        let (index, suffix) = self.family_for_sample(name, c.offset_of(name), c)?;
        self.check_bound(index, suffix, c)?;
        let labels_start = to_u32(self.labels.len());
        let body = self.body;
        // The body is under 4 GiB (checked in `parse`), so every label has a span.
        let spans = self
            .line_labels
            .iter()
            .filter_map(|label| LabelSpan::of(body, *label));
        self.labels.extend(spans);
        let labels = labels_start..to_u32(self.labels.len());

        let value_at = c.pos();
        let value = c.token();
        if value.is_empty() {
            return Err(c.error("sample value"));
        }
        if !number::is_float(value) {
            return Err(c.token_error(value_at, "a float sample value"));
        }
        c.skip_ws();

        let om = self.format == InputFormat::OpenMetrics;
        let mut timestamp = None;
        let exemplar_next = om && c.peek() == Some(b'#');
        if !(c.at_end() || exemplar_next) {
            let at = c.pos();
            let ts = c.token();
            let ok = match self.format {
                InputFormat::Text => number::is_int_timestamp(ts),
                InputFormat::OpenMetrics => number::om_timestamp_millis(ts).is_some(),
            };
            if !ok {
                let expected = match self.format {
                    InputFormat::Text => "integer timestamp in milliseconds or end of line",
                    InputFormat::OpenMetrics => "timestamp in seconds, exemplar or end of line",
                };
                return Err(c.token_error(at, expected));
            }
            timestamp = Some(ts);
            c.skip_ws();
        }

        let mut exemplar = None;
        if om && c.eat(b'#') {
            exemplar = Some(self.exemplar(c)?);
            // Its label names may be quoted too.
            self.utf8_names |= c.utf8_names();
        }
        if !c.at_end() {
            return Err(c.error("end of line"));
        }

        let family = &mut self.families[index];
        family.suffixes |= suffix.bit();
        family.samples.push(Sample {
            name,
            suffix,
            labels,
            value,
            timestamp,
            exemplar,
            head_len: to_u32(head_len),
        });
        self.current = Some(index);
        Ok(())
    }

    /// Histogram buckets' `le` and summary quantiles' `quantile` must be floats: the text
    /// parsers of Prometheus' own tools refuse anything else, so such input is refused here.
    fn check_bound(&self, index: usize, suffix: Suffix, c: &Cursor<'a>) -> Result<(), ParseError> {
        let (bound, expected) = match (self.families[index].kind, suffix) {
            (MetricType::Histogram | MetricType::GaugeHistogram, Suffix::Bucket) => {
                ("le", "a float 'le' value in a histogram bucket")
            }
            (MetricType::Summary, Suffix::Bare) => {
                ("quantile", "a float 'quantile' value in a summary")
            }
            _ => return Ok(()),
        };
        match self.line_labels.iter().find(|l| l.name == bound) {
            Some(l) if !number::is_float(l.raw_value) => {
                let found = if l.raw_value.is_empty() {
                    "an empty value".to_owned()
                } else {
                    found_token(l.raw_value)
                };
                Err(c.error_at(c.offset_of(l.raw_value), expected, found))
            }
            _ => Ok(()),
        }
    }

    /// Finds (or creates) the family of sample `name`; see the module doc for the order.
    fn family_for_sample(
        &mut self,
        name: &'a str,
        name_at: usize,
        c: &Cursor<'a>,
    ) -> Result<(usize, Suffix), ParseError> {
        let format = self.format;
        let allows = |f: &Family<'_>, s: Suffix| accepted_suffixes(format, f.kind) & s.bit() != 0;

        if let Some(i) = self.current {
            let f = &self.families[i];
            if let Some(s) = suffix_of(name, f.name) {
                if allows(f, s) {
                    return Ok((i, s));
                }
            }
        }
        let mut undeclared = None;
        if let Some(&i) = self.index.get(name) {
            let f = &self.families[i];
            if !f.declared {
                undeclared = Some(i);
            } else if allows(f, Suffix::Bare) {
                return Ok((i, Suffix::Bare));
            } else {
                let word = f.kind.word(format);
                return Err(c.error_at(
                    name_at,
                    format!(
                        "a sample name of {word} '{}' ({})",
                        f.name,
                        describe_sample_names(format, f.kind, f.name)
                    ),
                    found_token(name),
                ));
            }
        }
        for s in Suffix::ALL {
            let Some(base) = name.strip_suffix(s.as_str()) else {
                continue;
            };
            if let Some(&i) = self.index.get(base) {
                if allows(&self.families[i], s) {
                    return Ok((i, s));
                }
            }
        }
        if let Some(i) = undeclared {
            return Ok((i, Suffix::Bare));
        }
        Ok((
            self.push_family(Family::new(name, MetricType::Untyped, false)),
            Suffix::Bare,
        ))
    }

    /// An OpenMetrics exemplar after its `#`: `{labels} value [timestamp]`. Checked, then kept
    /// as one slice from its `{` to the end of the line.
    fn exemplar(&mut self, c: &mut Cursor<'a>) -> Result<&'a str, ParseError> {
        c.skip_ws();
        let start = c.pos();
        if !c.eat(b'{') {
            return Err(c.error("'{' to open the exemplar's labels"));
        }
        let mark = self.line_labels.len();
        let labels = c.label_set(&mut self.line_labels, false);
        self.line_labels.truncate(mark);
        labels?;
        c.skip_ws();
        let at = c.pos();
        let value = c.token();
        if !number::is_float(value) {
            return Err(c.token_error(at, "a float exemplar value"));
        }
        let mut end = c.pos();
        c.skip_ws();
        if !c.at_end() {
            let at = c.pos();
            if number::om_timestamp_millis(c.token()).is_none() {
                return Err(c.token_error(at, "exemplar timestamp in seconds or end of line"));
            }
            end = c.pos();
        }
        Ok(c.slice(start, end))
    }
}

/// An exemplar the parser already checked, split again into its labels (appended to
/// `labels`), value and timestamp; `None` if `raw` is not one.
pub(crate) fn exemplar_parts<'a>(
    raw: &'a str,
    labels: &mut Vec<Label<'a>>,
) -> Option<(&'a str, Option<&'a str>)> {
    let mut c = Cursor::new(raw, 0);
    if !c.eat(b'{') {
        return None;
    }
    c.label_set(labels, false).ok()?;
    c.skip_ws();
    let value = c.token();
    c.skip_ws();
    let timestamp = (!c.at_end()).then(|| c.token());
    Some((value, timestamp))
}

/// How `name` extends `family`, if it is one of the names a family can give its samples.
fn suffix_of(name: &str, family: &str) -> Option<Suffix> {
    if !has_prefix(name.as_bytes(), family.as_bytes()) {
        return None;
    }
    Suffix::of(name.get(family.len()..)?)
}

/// Label indices are kept as `u32` to keep samples small; a body with four billion labels is
/// far beyond any size limit the scraper allows, so saturating is fine.
fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt::Write as _;

    /// A readable picture of what was parsed, one line per family and per sample.
    fn dump(e: &Exposition<'_>) -> String {
        let mut s = String::new();
        for f in &e.families {
            let declared = if f.declared { " declared" } else { "" };
            let _ = write!(s, "{} {:?}{declared}", f.name, f.kind);
            if let Some(help) = f.help {
                let _ = write!(s, " help={help:?}");
            }
            if let Some(unit) = f.unit {
                let _ = write!(s, " unit={unit:?}");
            }
            s.push('\n');
            for sample in &f.samples {
                let labels: Vec<String> = e
                    .labels(sample)
                    .iter()
                    .map(|l| format!("{}={}", l.name, l.raw_value))
                    .collect();
                let _ = write!(
                    s,
                    "  {} {:?} [{}] {}",
                    sample.name,
                    sample.suffix,
                    labels.join(" "),
                    sample.value
                );
                if let Some(ts) = sample.timestamp {
                    let _ = write!(s, " @{ts}");
                }
                if let Some(ex) = sample.exemplar {
                    let _ = write!(s, " #{ex}");
                }
                s.push('\n');
            }
        }
        s
    }

    fn parsed(body: &str, format: InputFormat) -> String {
        match parse(body.as_bytes(), format) {
            Ok(e) => dump(&e),
            Err(err) => panic!("{body:?} did not parse: {err}"),
        }
    }

    #[test]
    fn text_constructs() {
        let cases = [
            (
                "counter with help and labels",
                "# HELP c_total Requests \\\\ served.\\n\n# TYPE c_total counter\nc_total{code=\"200\",path=\"/\"} 7 1700000000000\n",
                "c_total Counter declared help=\"Requests \\\\\\\\ served.\\\\n\"\n  c_total Bare [code=200 path=/] 7 @1700000000000\n",
            ),
            (
                "untyped without metadata, no labels, exponent value",
                "up 1\nmem_bytes 1.5e+09\n",
                "up Untyped\n  up Bare [] 1\nmem_bytes Untyped\n  mem_bytes Bare [] 1.5e+09\n",
            ),
            (
                "histogram keeps bucket order",
                "# TYPE h histogram\nh_bucket{le=\"0.1\"} 1\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 3\nh_sum 4.5\nh_count 3\n",
                "h Histogram declared\n  h_bucket Bucket [le=0.1] 1\n  h_bucket Bucket [le=1] 2\n  h_bucket Bucket [le=+Inf] 3\n  h_sum Sum [] 4.5\n  h_count Count [] 3\n",
            ),
            (
                "summary with NaN quantile",
                "# TYPE s summary\ns{quantile=\"0.5\"} NaN\ns_sum 0\ns_count 0\n",
                "s Summary declared\n  s Bare [quantile=0.5] NaN\n  s_sum Sum [] 0\n  s_count Count [] 0\n",
            ),
            (
                "special values",
                "a +Inf\nb -Inf\nc Inf\nd nan\n",
                "a Untyped\n  a Bare [] +Inf\nb Untyped\n  b Bare [] -Inf\nc Untyped\n  c Bare [] Inf\nd Untyped\n  d Bare [] nan\n",
            ),
            (
                "escaped label values stay raw",
                "m{path=\"a\\\"b\\\\c\\nd\"} 1\n",
                "m Untyped\n  m Bare [path=a\\\"b\\\\c\\nd] 1\n",
            ),
            (
                "whitespace, tabs, trailing comma, empty label set",
                "  m { a = \"1\" ,\tb=\"2\", }\t1   -5  \nn{} 2\n",
                "m Untyped\n  m Bare [a=1 b=2] 1 @-5\nn Untyped\n  n Bare [] 2\n",
            ),
            (
                "comments and blank lines ignored",
                "# just a comment\n#HELP not metadata\n# HELPER neither\n\n   \nm 1\n# EOF\n",
                "m Untyped\n  m Bare [] 1\n",
            ),
            (
                "non-contiguous samples join their declared family",
                "# TYPE g gauge\ng{a=\"1\"} 1\nother 2\ng{a=\"2\"} 3\n",
                "g Gauge declared\n  g Bare [a=1] 1\n  g Bare [a=2] 3\nother Untyped\n  other Bare [] 2\n",
            ),
            (
                "suffix of an undeclared or other-typed family is its own family",
                "# TYPE g gauge\ng 1\ng_sum 2\nx_bucket 3\n",
                "g Gauge declared\n  g Bare [] 1\ng_sum Untyped\n  g_sum Bare [] 2\nx_bucket Untyped\n  x_bucket Bare [] 3\n",
            ),
            (
                "a declared family claims its samples even after an undeclared namesake",
                "h_sum 1\n# TYPE h histogram\nh_sum 2\nother 3\nh_sum{a=\"b\"} 4\n",
                "h_sum Untyped\n  h_sum Bare [] 1\nh Histogram declared\n  h_sum Sum [] 2\n  h_sum Sum [a=b] 4\nother Untyped\n  other Bare [] 3\n",
            ),
            (
                "quoted UTF-8 names as Prometheus 3 writes them",
                "# HELP \"my.metric\" Seconds.\n# TYPE \"my.metric\" histogram\n{\"my.metric_bucket\", \"le\"=\"1\",\"code.class\"=\"2xx\"} 3\n{\"my.metric_bucket\",le=\"+Inf\"} 4\n{\"my.metric_count\"} 4\n{\"my.metric_sum\"} 1.5\n{a=\"1\",\"other.one\"} 2\nplain{\"x.y\"=\"z\"} 1\n{\"legacy\"} 5\n",
                "my.metric Histogram declared help=\"Seconds.\"\n  my.metric_bucket Bucket [le=1 code.class=2xx] 3\n  my.metric_bucket Bucket [le=+Inf] 4\n  my.metric_count Count [] 4\n  my.metric_sum Sum [] 1.5\nother.one Untyped\n  other.one Bare [a=1] 2\nplain Untyped\n  plain Bare [x.y=z] 1\nlegacy Untyped\n  legacy Bare [] 5\n",
            ),
            (
                "help before type, no trailing newline",
                "# HELP g\n# TYPE g gauge\ng 1",
                "g Gauge declared help=\"\"\n  g Bare [] 1\n",
            ),
        ];
        for (what, body, want) in cases {
            assert_eq!(parsed(body, InputFormat::Text), want, "{what}");
        }
    }

    #[test]
    fn openmetrics_constructs() {
        let cases = [
            (
                "counter with created, unit, exemplar and float timestamp",
                "# TYPE req counter\n# UNIT req requests\n# HELP req Say \\\"hi\\\".\nreq_total{a=\"1\"} 3 1520879607.789 # {trace_id=\"abc\"} 1.0 1520879607.5\nreq_created{a=\"1\"} 1520000000.0\n# EOF\n",
                "req Counter declared help=\"Say \\\\\\\"hi\\\\\\\".\" unit=\"requests\"\n  req_total Total [a=1] 3 @1520879607.789 #{trace_id=\"abc\"} 1.0 1520879607.5\n  req_created Created [a=1] 1520000000.0\n",
            ),
            (
                "info, stateset, unknown, gaugehistogram",
                "# TYPE build info\nbuild_info{version=\"1\"} 1\n# TYPE st stateset\nst{st=\"a\"} 1\n# TYPE u unknown\nu 1\n# TYPE gh gaugehistogram\ngh_bucket{le=\"+Inf\"} 1\ngh_gcount 1\ngh_gsum 2\n# EOF",
                "build Info declared\n  build_info Info [version=1] 1\nst StateSet declared\n  st Bare [st=a] 1\nu Untyped declared\n  u Bare [] 1\ngh GaugeHistogram declared\n  gh_bucket Bucket [le=+Inf] 1\n  gh_gcount Gcount [] 1\n  gh_gsum Gsum [] 2\n",
            ),
            (
                "histogram created; exemplar without timestamp",
                "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1 # {id=\"x\"} 0.5\nh_count 1\nh_sum 0.5\nh_created 1.5e9\n# EOF\n",
                "h Histogram declared\n  h_bucket Bucket [le=+Inf] 1 #{id=\"x\"} 0.5\n  h_count Count [] 1\n  h_sum Sum [] 0.5\n  h_created Created [] 1.5e9\n",
            ),
            (
                "counter declared with its _total name keeps bare samples",
                "# TYPE c_total counter\nc_total 1\n# EOF\n",
                "c_total Counter declared\n  c_total Bare [] 1\n",
            ),
            (
                "trailing blank lines after EOF",
                "m 1\n# EOF\n\n",
                "m Untyped\n  m Bare [] 1\n",
            ),
        ];
        for (what, body, want) in cases {
            assert_eq!(parsed(body, InputFormat::OpenMetrics), want, "{what}");
        }
    }

    #[test]
    fn entries_borrow_the_body() {
        let body = b"m{a=\"x\\\"y\"} 1\n".to_vec();
        let e = parse(&body, InputFormat::Text).unwrap();
        let sample = &e.families[0].samples[0];
        let range = body.as_ptr_range();
        assert!(range.contains(&sample.name.as_ptr()));
        let label = e.labels(sample).iter().next().expect("a label");
        assert!(range.contains(&label.raw_value.as_ptr()));
        assert_eq!(label.raw_value, "x\\\"y");
        assert_eq!(label.value(), "x\"y");
    }

    #[test]
    fn errors_name_line_column_expected_and_found() {
        use InputFormat::{OpenMetrics as Om, Text};
        let cases: &[(InputFormat, &[u8], &str)] = &[
            (Text, b"a{b=\"c\"} 1\nfoo{x} 1\n", "line 2, column 6: expected '=' after label name, found '}'"),
            (Text, b"foo{a=b} 1", "line 1, column 7: expected '\"' to open the label value, found 'b'"),
            (Text, b"foo{a=\"b} 1", "line 1, column 12: expected '\"' to close the label value, found end of line"),
            (Text, b"foo{a=\"b\nbar 1\n", "line 1, column 9: expected '\"' to close the label value, found end of line"),
            (Text, b"foo{a=\"b\\\n\"} 1\n", "line 1, column 10: expected '\"' to close the label value, found end of line"),
            (Text, b"a 1\nfoo{a=\"1\",a=\"2\"} 1\n", "line 2, column 11: expected unique label names, found a second 'a'"),
            (Text, b"foo{a=\"b\" c=\"d\"} 1", "line 1, column 11: expected ',' or '}' after label value, found 'c'"),
            (Text, b"foo{1a=\"b\"} 1", "line 1, column 5: expected label name or '}', found '1'"),
            (Text, b"foo{a=\"1\", b=\"2\", a=\"3\"} 1", "line 1, column 19: expected unique label names, found a second 'a'"),
            (Text, b"foo{a=\"1\",,} 1", "line 1, column 11: expected label name or '}', found ','"),
            (Text, b"foo\n", "line 1, column 4: expected sample value, found end of line"),
            (Text, b"foo{} \n", "line 1, column 7: expected sample value, found end of line"),
            (Text, b"foo abc", "line 1, column 5: expected a float sample value, found 'abc'"),
            (Text, b"foo 1 1.5", "line 1, column 7: expected integer timestamp in milliseconds or end of line, found '1.5'"),
            (Text, b"foo 1 # c", "line 1, column 7: expected integer timestamp in milliseconds or end of line, found '#'"),
            (Text, b"foo 1 2 3", "line 1, column 9: expected end of line, found '3'"),
            (Text, b"foo-bar 1", "line 1, column 4: expected '{' or whitespace after metric name, found '-'"),
            (Text, b"\"my.metric\" 1", "line 1, column 1: expected metric name (a quoted name goes inside the braces), found '\"'"),
            (Text, b"foo{\"bar\"} 1", "line 1, column 10: expected '=' after label name, found '}'"),
            (Text, b"{\"a\", \"b\"} 1", "line 1, column 7: expected one metric name, found a second one, 'b'"),
            (Text, b"{a=\"1\"} 1", "line 1, column 1: expected metric name, found a label set without one"),
            (Text, b"{\"\"} 1", "line 1, column 2: expected a non-empty quoted name, found '\"\"'"),
            (Text, b"# TYPE \"a.b histogram\n", "line 1, column 22: expected '\"' to close the quoted name, found end of line"),
            (Om, b"c_total 1 # {\"trace.id\"} 1\n# EOF\n", "line 1, column 24: expected '=' after label name, found '}'"),
            (Text, b"# TYPE foo counter\n# TYPE foo gauge\n", "line 2, column 12: expected one TYPE for 'foo', found 'gauge' after an earlier TYPE line"),
            (Text, b"foo 1\n# TYPE foo gauge\n", "line 2, column 12: expected TYPE of 'foo' before its samples, found 'gauge' after them"),
            (Text, b"# TYPE foo info\n", "line 1, column 12: expected one of counter, gauge, histogram, summary, untyped, found 'info'"),
            (Text, b"# TYPE foo\n", "line 1, column 11: expected one of counter, gauge, histogram, summary, untyped, found end of line"),
            (Text, b"# TYPE h histogram\nh 1\n", "line 2, column 1: expected a sample name of histogram 'h' ('h_bucket', 'h_sum' or 'h_count'), found 'h'"),
            (Text, b"# HELP foo-bar x\n", "line 1, column 11: expected whitespace after metric name, found '-'"),
            (Text, b"# HELP 1foo x\n", "line 1, column 8: expected metric name after HELP, found '1'"),
            (Text, b"ok 1\nfoo{a=\"\xff\"} 1\n", "line 2, column 8: expected valid UTF-8, found byte 0xff"),
            (Text, b"foo\xc3 1\n", "line 1, column 4: expected valid UTF-8, found byte 0xc3"),
            (Text, b"foo{a=\"\t\"} 1\nbar \x01\n", "line 2, column 5: expected a float sample value, found '\\u{1}'"),
            (Om, b"foo 1\n", "line 2, column 1: expected '# EOF' at end of OpenMetrics exposition, found end of input"),
            (Om, b"foo 1", "line 1, column 6: expected '# EOF' at end of OpenMetrics exposition, found end of input"),
            (Om, b"# EOF\nfoo 1\n", "line 2, column 1: expected end of input after '# EOF', found 'foo'"),
            (Om, b"foo 1 abc\n# EOF\n", "line 1, column 7: expected timestamp in seconds, exemplar or end of line, found 'abc'"),
            (Om, b"foo 1 NaN\n# EOF\n", "line 1, column 7: expected timestamp in seconds, exemplar or end of line, found 'NaN'"),
            (Om, b"foo_total 1 # {a=\"b\"} x\n# EOF\n", "line 1, column 23: expected a float exemplar value, found 'x'"),
            (Om, b"foo_total 1 # a\n# EOF\n", "line 1, column 15: expected '{' to open the exemplar's labels, found 'a'"),
            (Om, b"# TYPE foo untyped\n# EOF\n", "line 1, column 12: expected one of counter, gauge, histogram, gaugehistogram, summary, info, stateset, unknown, found 'untyped'"),
            (Text, b"# TYPE h histogram\nh_bucket{a=\"1\",le=\"+In\"} 1\n", "line 2, column 20: expected a float 'le' value in a histogram bucket, found '+In'"),
            (Text, b"# TYPE s summary\ns{quantile=\"\"} 1\n", "line 2, column 13: expected a float 'quantile' value in a summary, found an empty value"),
            (Om, b"# TYPE g gaugehistogram\ng 1\n# EOF\n", "line 2, column 1: expected a sample name of gaugehistogram 'g' ('g_bucket', 'g_gcount' or 'g_gsum'), found 'g'"),
        ];
        for (format, body, want) in cases {
            match parse(body, *format) {
                Ok(e) => panic!("{:?} parsed: {}", String::from_utf8_lossy(body), dump(&e)),
                Err(err) => assert_eq!(
                    err.to_string(),
                    *want,
                    "{:?}",
                    String::from_utf8_lossy(body)
                ),
            }
        }
    }

    #[test]
    fn error_fields_match_the_message() {
        let err = parse(b"a 1\nb{c} 1\n", InputFormat::Text).unwrap_err();
        assert_eq!((err.line, err.column), (2, 4));
        assert_eq!(err.expected, "'=' after label name");
        assert_eq!(err.found, "'}'");
    }
}
