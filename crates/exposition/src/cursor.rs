//! A cursor over one line of an exposition and the tokens both formats share: names, label
//! sets, quoted values and whitespace. It reports positions for errors; it does not know what a
//! line means, which family a sample belongs to, or anything about other lines.
//!
//! The cursor holds the body from the start of its line on and treats `\n` as the end of the
//! line, so that the line's end is found by reading it, not by a search ahead.
//!
//! Positions only ever advance over ASCII bytes or up to an ASCII delimiter, so every slice it
//! hands out starts and ends on a character boundary.

use super::error::{found_char, found_token, ParseError};
use super::model::Label;
use super::names::{self, Kind, LABEL_FIRST, LABEL_MORE, METRIC_FIRST, METRIC_MORE, NAME_CLASS};

pub(crate) struct Cursor<'a> {
    /// The body from the start of the line on; the line ends at the first `\n`.
    text: &'a str,
    pos: usize,
    line_no: usize,
    /// Whether a quoted name that is not a legacy name was read.
    utf8_names: bool,
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `text`, which is line `line_no` and whatever follows it.
    pub(crate) fn new(text: &'a str, line_no: usize) -> Cursor<'a> {
        Cursor {
            text,
            pos: 0,
            line_no,
            utf8_names: false,
        }
    }

    /// Whether a quoted name that is not a legacy name was read.
    pub(crate) fn utf8_names(&self) -> bool {
        self.utf8_names
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// Where the line ends (the position of its `\n`, or the end of the body).
    pub(crate) fn line_end(&self) -> usize {
        let bytes = self.text.as_bytes();
        match bytes.get(self.pos) {
            None => bytes.len(),
            Some(b'\n') => self.pos,
            Some(_) => {
                memchr::memchr(b'\n', &bytes[self.pos..]).map_or(bytes.len(), |i| self.pos + i)
            }
        }
    }

    /// The rest of the line.
    pub(crate) fn rest(&self) -> &'a str {
        &self.text[self.pos..self.line_end()]
    }

    /// Bytes `start..end` of the line; both must be positions the cursor has been at.
    pub(crate) fn slice(&self, start: usize, end: usize) -> &'a str {
        &self.text[start..end]
    }

    /// Position in the line of `part`, a slice this cursor handed out.
    pub(crate) fn offset_of(&self, part: &str) -> usize {
        (part.as_ptr() as usize).saturating_sub(self.text.as_ptr() as usize)
    }

    /// The byte at the cursor; `None` at the end of the line.
    pub(crate) fn peek(&self) -> Option<u8> {
        match self.text.as_bytes().get(self.pos) {
            None | Some(b'\n') => None,
            Some(&b) => Some(b),
        }
    }

    pub(crate) fn at_end(&self) -> bool {
        self.peek().is_none()
    }

    /// Moves past `n` bytes the caller has checked are ASCII.
    pub(crate) fn advance(&mut self, n: usize) {
        self.pos += n;
    }

    /// Skips spaces and tabs; says whether there were any.
    pub(crate) fn skip_ws(&mut self) -> bool {
        let start = self.pos;
        let bytes = self.text.as_bytes();
        while let Some(b' ' | b'\t') = bytes.get(self.pos) {
            self.pos += 1;
        }
        self.pos > start
    }

    /// Consumes `byte` (ASCII) if the line continues with it.
    pub(crate) fn eat(&mut self, byte: u8) -> bool {
        if self.peek() == Some(byte) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// An error at the current position, naming what is there.
    pub(crate) fn error(&self, expected: impl Into<String>) -> ParseError {
        self.error_at(self.pos, expected, found_char(self.rest()))
    }

    /// An error at byte `pos` of the line.
    pub(crate) fn error_at(
        &self,
        pos: usize,
        expected: impl Into<String>,
        found: String,
    ) -> ParseError {
        ParseError {
            line: self.line_no,
            column: pos + 1,
            expected: expected.into(),
            found,
        }
    }

    /// An error naming the token that starts at `pos`.
    pub(crate) fn token_error(&self, pos: usize, expected: impl Into<String>) -> ParseError {
        let token = self.text[pos..self.line_end()]
            .split([' ', '\t'])
            .next()
            .unwrap_or_default();
        self.error_at(pos, expected, found_token(token))
    }

    /// Consumes a run of bytes up to the next space or tab (or the end of the line).
    pub(crate) fn token(&mut self) -> &'a str {
        let start = self.pos;
        let bytes = self.text.as_bytes();
        while let Some(&b) = bytes.get(self.pos) {
            if matches!(b, b' ' | b'\t' | b'\n') {
                break;
            }
            self.pos += 1;
        }
        &self.text[start..self.pos]
    }

    /// The rest of the line, without trailing spaces and tabs; the cursor ends at the end.
    pub(crate) fn take_rest(&mut self) -> &'a str {
        let rest = self.rest().trim_end_matches([' ', '\t']);
        self.pos = self.line_end();
        rest
    }

    /// Consumes the longest run of bytes of `class` (see [`NAME_CLASS`]) whose first byte is
    /// also of `first`; `None` when the first byte is not.
    fn take_class(&mut self, first: u8, class: u8) -> Option<&'a str> {
        let bytes = self.text.as_bytes();
        let start = self.pos;
        let first_ok = bytes
            .get(start)
            .is_some_and(|&b| NAME_CLASS[usize::from(b)] & first != 0);
        if !first_ok {
            return None;
        }
        self.pos = class_end(bytes, start + 1, class);
        Some(&self.text[start..self.pos])
    }

    /// A metric name, `[a-zA-Z_:][a-zA-Z0-9_:]*`; errors name `expected` when there is none.
    pub(crate) fn metric_name(&mut self, expected: &str) -> Result<&'a str, ParseError> {
        if let Some(name) = self.take_class(METRIC_FIRST, METRIC_MORE) {
            return Ok(name);
        }
        if self.peek() == Some(b'"') {
            return Err(self.error(format!("{expected} (a quoted name goes inside the braces)")));
        }
        Err(self.error(expected))
    }

    /// The metric name of a `# HELP`, `# TYPE` or `# UNIT` line: a legacy name (probably
    /// `known`, as for [`Cursor::metric_name_after`]) or a quoted one (whose content is
    /// returned, escapes not decoded).
    pub(crate) fn metadata_name(
        &mut self,
        known: &str,
        expected: &str,
    ) -> Result<&'a str, ParseError> {
        if self.peek() == Some(b'"') {
            return self.quoted_name(Kind::Metric);
        }
        self.metric_name_after(known, expected)
    }

    /// A quoted name at the cursor: its content, escapes not decoded, which must not be empty.
    fn quoted_name(&mut self, kind: Kind) -> Result<&'a str, ParseError> {
        let at = self.pos;
        self.advance(1);
        let name = self.quoted_value().map_err(|mut e| {
            e.expected = "'\"' to close the quoted name".to_owned();
            e
        })?;
        if name.is_empty() {
            return Err(self.error_at(at, "a non-empty quoted name", "'\"\"'".to_owned()));
        }
        self.utf8_names |= !names::is_legacy(name, kind);
        Ok(name)
    }

    /// A metric name that probably starts with `known`, a valid metric name (the name of the
    /// previous line's family): compared in one go, then only the rest is scanned.
    #[inline]
    pub(crate) fn metric_name_after(
        &mut self,
        known: &str,
        expected: &str,
    ) -> Result<&'a str, ParseError> {
        let start = self.pos;
        let bytes = self.text.as_bytes();
        if known.is_empty() || !has_prefix(&bytes[start..], known.as_bytes()) {
            return self.metric_name(expected);
        }
        self.pos = class_end(bytes, start + known.len(), METRIC_MORE);
        Ok(&self.text[start..self.pos])
    }

    /// A label name, `[a-zA-Z_][a-zA-Z0-9_]*`.
    fn label_name(&mut self) -> Result<&'a str, ParseError> {
        if let Some(name) = self.take_class(LABEL_FIRST, LABEL_MORE) {
            return Ok(name);
        }
        Err(self.error("label name or '}'"))
    }

    /// The inside of a quoted label value, the opening quote already consumed; consumes the
    /// closing quote. Escapes are checked for completeness, not decoded.
    fn quoted_value(&mut self) -> Result<&'a str, ParseError> {
        let bytes = self.text.as_bytes();
        let start = self.pos;
        let mut i = start;
        while let Some(found) = find_value_end(bytes, i) {
            match bytes[found] {
                b'"' => {
                    self.pos = found + 1;
                    return Ok(&self.text[start..found]);
                }
                b'\\' if bytes.get(found + 1) != Some(&b'\n') => i = found + 2,
                _ => break,
            }
        }
        self.pos = self.line_end();
        Err(self.error("'\"' to close the label value"))
    }

    /// A label set, the `{` already consumed, through its `}`. Labels are appended to `labels`.
    /// A trailing comma is allowed; spaces and tabs may stand between any two tokens.
    /// Label names must be unique within the set. When `name_inside` (no metric name stood
    /// before the braces), one quoted string followed by `,` or `}` is the metric name, as
    /// Prometheus 3 writes names that are not legacy names: `{"my.metric","le"="1"}`.
    pub(crate) fn label_set(
        &mut self,
        labels: &mut Vec<Label<'a>>,
        name_inside: bool,
    ) -> Result<LabelSet<'a>, ParseError> {
        let set_start = labels.len();
        // One bit per (length, first byte) of the names so far: a cheap first test of
        // uniqueness.
        let mut names_seen = 0u64;
        // Most sets are written plainly from start to end, and are read by this short loop.
        while let Some((label, next)) = self.plain_label() {
            self.add_label(labels, set_start, &mut names_seen, label)?;
            if next == b'}' {
                return Ok(LabelSet {
                    plain: true,
                    name: None,
                });
            }
        }
        self.label_set_rest(labels, name_inside, set_start, names_seen)
    }

    /// The rest of a label set from its first item that is not written plainly (or its end,
    /// when it is empty or ends with a comma), in any spelling the formats allow.
    #[inline(never)]
    fn label_set_rest(
        &mut self,
        labels: &mut Vec<Label<'a>>,
        name_inside: bool,
        set_start: usize,
        mut names_seen: u64,
    ) -> Result<LabelSet<'a>, ParseError> {
        let mut set = LabelSet {
            plain: false,
            name: None,
        };
        loop {
            let (label, next) = match self.plain_label() {
                Some(found) => found,
                None => {
                    self.skip_ws();
                    if self.eat(b'}') {
                        // A trailing comma, or an empty set.
                        set.plain = labels.len() == set_start && set.name.is_none();
                        return Ok(set);
                    }
                    match self.spaced_item()? {
                        Item::Label(label, next) => (label, next),
                        Item::Name(name, next) => {
                            if !name_inside {
                                let at = self.pos - 1;
                                return Err(self.error_at(
                                    at,
                                    "'=' after label name",
                                    found_char(&self.text[at..]),
                                ));
                            }
                            if set.name.replace(name).is_some() {
                                return Err(self.error_at(
                                    self.offset_of(name) - 1,
                                    "one metric name",
                                    format!("a second one, '{name}'"),
                                ));
                            }
                            if next == b'}' {
                                return Ok(set);
                            }
                            continue;
                        }
                    }
                }
            };
            self.add_label(labels, set_start, &mut names_seen, label)?;
            if next == b'}' {
                return Ok(set);
            }
        }
    }

    /// Appends `label` to the set that starts at `set_start` in `labels`, unless the set
    /// already has a label of that name.
    #[inline(always)]
    fn add_label(
        &self,
        labels: &mut Vec<Label<'a>>,
        set_start: usize,
        names_seen: &mut u64,
        label: Label<'a>,
    ) -> Result<(), ParseError> {
        let name = label.name;
        let bit = 1u64 << ((name.len() ^ usize::from(name.as_bytes()[0])) & 63);
        if *names_seen & bit != 0 && labels[set_start..].iter().any(|l| l.name == name) {
            return Err(self.duplicate_label(name));
        }
        *names_seen |= bit;
        labels.push(label);
        Ok(())
    }

    #[cold]
    fn duplicate_label(&self, name: &str) -> ParseError {
        self.error_at(
            self.offset_of(name),
            "unique label names",
            format!("a second '{name}'"),
        )
    }

    /// A label written plainly, `name="value"` right before a `,` or `}`, with no backslash
    /// in the value: consumed through that `,` or `}`, which is returned with it. `None`, and
    /// nothing consumed, for anything else.
    #[inline(always)]
    fn plain_label(&mut self) -> Option<(Label<'a>, u8)> {
        let bytes = self.text.as_bytes();
        let start = self.pos;
        if NAME_CLASS[usize::from(*bytes.get(start)?)] & LABEL_FIRST == 0 {
            return None;
        }
        let name_end = class_end(bytes, start + 1, LABEL_MORE);
        if bytes.get(name_end..name_end + 2)? != b"=\"" {
            return None;
        }
        let value_end = find_value_end(bytes, name_end + 2)?;
        let next = *bytes.get(value_end + 1)?;
        if bytes[value_end] != b'"' || !matches!(next, b',' | b'}') {
            return None;
        }
        self.pos = value_end + 2;
        let label = Label {
            name: &self.text[start..name_end],
            raw_value: &self.text[name_end + 2..value_end],
        };
        Some((label, next))
    }

    /// A label, or a quoted metric name, in any spelling the formats allow, spaces and tabs
    /// already skipped: consumed through the `,` or `}` after it, which is returned with it.
    fn spaced_item(&mut self) -> Result<Item<'a>, ParseError> {
        let quoted = self.peek() == Some(b'"');
        let name = if quoted {
            self.quoted_name(Kind::Label)?
        } else {
            self.label_name()?
        };
        self.skip_ws();
        let item = if self.eat(b'=') {
            self.skip_ws();
            if !self.eat(b'"') {
                return Err(self.error("'\"' to open the label value"));
            }
            let raw_value = self.quoted_value()?;
            self.skip_ws();
            Some(Label { name, raw_value })
        } else if quoted && matches!(self.peek(), Some(b',' | b'}')) {
            None
        } else {
            return Err(self.error("'=' after label name"));
        };
        let Some(next @ (b',' | b'}')) = self.peek() else {
            return Err(self.error("',' or '}' after label value"));
        };
        self.advance(1);
        Ok(match item {
            Some(label) => Item::Label(label, next),
            None => Item::Name(name, next),
        })
    }
}

/// What [`Cursor::label_set`] read besides the labels.
pub(crate) struct LabelSet<'a> {
    /// Whether the set is written plainly: `name="value"` pairs of legacy names joined by
    /// single commas, no whitespace, no trailing comma, no backslash in any value and no
    /// metric name inside.
    pub(crate) plain: bool,
    /// The quoted metric name found inside, if any.
    pub(crate) name: Option<&'a str>,
}

/// One item of a label set, a label or a quoted metric name, with the `,` or `}` after it.
enum Item<'a> {
    Label(Label<'a>, u8),
    Name(&'a str, u8),
}

/// The position of the first `"`, `\\` or `\n` in `bytes` at or after `from`. Label values
/// are short, so eight bytes at a time in a machine word beats a vector search's setup.
fn find_value_end(bytes: &[u8], from: usize) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let mut i = from;
    while let Some(chunk) = bytes.get(i..i + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let word = u64::from_le_bytes(word);
        // The lowest flagged byte is exact; flags above it may be false, and are not used.
        let hits = has_zero(word ^ (ONES * u64::from(b'"')))
            | has_zero(word ^ (ONES * u64::from(b'\\')))
            | has_zero(word ^ (ONES * u64::from(b'\n')));
        if hits != 0 {
            return Some(i + (hits.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    let tail = bytes.get(i..)?;
    tail.iter()
        .position(|&b| matches!(b, b'"' | b'\\' | b'\n'))
        .map(|p| i + p)
}

/// Whether `bytes` starts with `prefix`, compared eight bytes at a time (the last eight
/// overlapping the others): names are short, and calling the library's `memcmp` for each
/// costs more than comparing them.
pub(crate) fn has_prefix(bytes: &[u8], prefix: &[u8]) -> bool {
    let n = prefix.len();
    let Some(head) = bytes.get(..n) else {
        return false;
    };
    if n < 8 {
        return head.iter().zip(prefix).all(|(a, b)| a == b);
    }
    let word = |s: &[u8], at: usize| {
        let mut word = [0u8; 8];
        word.copy_from_slice(&s[at..at + 8]);
        u64::from_ne_bytes(word)
    };
    let mut at = 0;
    while at + 8 < n {
        if word(head, at) != word(prefix, at) {
            return false;
        }
        at += 8;
    }
    word(head, n - 8) == word(prefix, n - 8)
}

/// Where the run of bytes of `class` that starts at `from` ends.
fn class_end(bytes: &[u8], from: usize, class: u8) -> usize {
    let mut end = from;
    while bytes
        .get(end)
        .is_some_and(|&b| NAME_CLASS[usize::from(b)] & class != 0)
    {
        end += 1;
    }
    end
}

#[cfg(test)]
mod tests {
    use super::has_prefix;

    #[test]
    fn has_prefix_agrees_with_starts_with_at_every_length() {
        let name = b"http_server_requests_seconds_bucket";
        for len in 0..=name.len() {
            let prefix = &name[..len];
            assert!(has_prefix(name, prefix), "whole prefix of {len}");
            assert!(!has_prefix(&name[..len.saturating_sub(1)], prefix) || len == 0);
            for at in 0..len {
                let mut other = prefix.to_vec();
                other[at] ^= 0x20;
                assert!(!has_prefix(name, &other), "byte {at} of {len} differs");
            }
        }
    }
}
