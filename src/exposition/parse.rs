//! The parser: walks a body line by line and builds an [`Exposition`] whose names, values and
//! label values are slices of the body. It decides which family each sample belongs to and
//! rejects what Prometheus would reject; it never decodes escapes, allocates per sample (beyond
//! growing vectors) or knows about merging and output.
//!
//! Family assignment, per sample name `n`:
//! 1. the family of the previous line, if `n` is one of its sample names (the common case: a
//!    family's samples are contiguous, so no lookup is needed);
//! 2. the family named exactly `n`; if its type does not allow a bare sample name (a
//!    histogram `n` with a sample `n`) that is an error;
//! 3. a family `n` minus a suffix (`_bucket`, `_total`, ...) whose type allows that suffix;
//! 4. otherwise a new family `n` without a `# TYPE` (untyped).

use std::collections::HashMap;

use super::cursor::Cursor;
use super::error::{found_token, ParseError};
use super::format::{accepted_suffixes, describe_sample_names, InputFormat, MetricType, Suffix};
use super::model::{Exposition, Family, Label, Sample};
use super::number;

/// Parse a whole body. Zero-copy: entries borrow slices of `body`; allocate only the Vec
/// containers.
///
/// The whole body must be UTF-8, as Prometheus requires.
pub fn parse(body: &[u8], format: InputFormat) -> Result<Exposition<'_>, ParseError> {
    let text = std::str::from_utf8(body).map_err(|e| utf8_error(body, e.valid_up_to()))?;
    let mut parser = Parser {
        format,
        families: Vec::new(),
        labels: Vec::new(),
        index: HashMap::new(),
        current: None,
    };
    let mut eof_line = None;
    let mut last = (1, 0);
    for (i, line) in text.split('\n').enumerate() {
        let line_no = i + 1;
        last = (line_no, line.len());
        let mut cursor = Cursor::new(line, line_no);
        cursor.skip_ws();
        if eof_line.is_some() {
            if !cursor.at_end() {
                return Err(cursor.token_error(cursor.pos(), "end of input after '# EOF'"));
            }
            continue;
        }
        if parser.line(cursor)? == Line::Eof {
            eof_line = Some(line_no);
        }
    }
    if format == InputFormat::OpenMetrics && eof_line.is_none() {
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
    families: Vec<Family<'a>>,
    labels: Vec<Label<'a>>,
    index: HashMap<&'a str, usize>,
    /// The family the previous metadata or sample line belonged to.
    current: Option<usize>,
}

impl<'a> Parser<'a> {
    /// One line, leading whitespace already skipped.
    fn line(&mut self, mut c: Cursor<'a>) -> Result<Line, ParseError> {
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
    fn comment(&mut self, mut c: Cursor<'a>) -> Result<Line, ParseError> {
        if !c.skip_ws() {
            return Ok(Line::Other);
        }
        let om = self.format == InputFormat::OpenMetrics;
        if om && c.rest().trim_end_matches([' ', '\t']) == "EOF" {
            return Ok(Line::Eof);
        }
        let keyword = ["HELP", "TYPE", "UNIT"]
            .into_iter()
            .filter(|k| om || *k != "UNIT")
            .find(|k| c.rest().starts_with(k));
        let Some(keyword) = keyword else {
            return Ok(Line::Other);
        };
        c.advance(keyword.len());
        if !c.skip_ws() {
            // `# HELPER ...` is a comment; so is a bare `# HELP`, as in Prometheus.
            return Ok(Line::Other);
        }
        let name = c.metric_name(&format!("metric name after {keyword}"))?;
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
            _ => self.declare_type(index, &mut c)?,
        }
        Ok(Line::Other)
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
    fn sample(&mut self, mut c: Cursor<'a>) -> Result<(), ParseError> {
        let name_at = c.pos();
        let name = c.metric_name("metric name")?;
        let (index, suffix) = self.family_for_sample(name, name_at, &c)?;

        let spaced = c.skip_ws();
        let labels_start = self.labels.len();
        if c.eat("{") {
            c.label_set(&mut self.labels)?;
            c.skip_ws();
        } else if !spaced && !c.at_end() {
            return Err(c.error("'{' or whitespace after metric name"));
        }
        let labels = to_u32(labels_start)..to_u32(self.labels.len());

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
        if om && c.eat("#") {
            exemplar = Some(self.exemplar(&mut c)?);
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
        });
        self.current = Some(index);
        Ok(())
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
        if let Some(&i) = self.index.get(name) {
            let f = &self.families[i];
            if allows(f, Suffix::Bare) {
                return Ok((i, Suffix::Bare));
            }
            let word = type_word(f.kind, format);
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
        if !c.eat("{") {
            return Err(c.error("'{' to open the exemplar's labels"));
        }
        let mark = self.labels.len();
        let labels = c.label_set(&mut self.labels);
        self.labels.truncate(mark);
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

/// How `name` extends `family`, if it is one of the names a family can give its samples.
fn suffix_of(name: &str, family: &str) -> Option<Suffix> {
    let rest = name.strip_prefix(family)?;
    if rest.is_empty() {
        return Some(Suffix::Bare);
    }
    Suffix::ALL.into_iter().find(|s| s.as_str() == rest)
}

fn type_word(kind: MetricType, format: InputFormat) -> &'static str {
    match (kind, format) {
        (MetricType::Untyped, InputFormat::OpenMetrics) => "unknown",
        (MetricType::Info, _) => "info",
        (MetricType::StateSet, _) => "stateset",
        (MetricType::GaugeHistogram, _) => "gaugehistogram",
        _ => kind.text_word(),
    }
}

/// Label indices are kept as `u32` to keep samples small; a body with four billion labels is
/// far beyond any size limit the scraper allows, so saturating is fine.
fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}
