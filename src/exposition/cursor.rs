//! A cursor over one line of an exposition and the tokens both formats share: names, label
//! sets, quoted values and whitespace. It reports positions for errors; it does not know what a
//! line means, which family a sample belongs to, or anything about other lines.
//!
//! Positions only ever advance over ASCII bytes or up to an ASCII delimiter, so every slice it
//! hands out starts and ends on a character boundary.

use super::error::{found_char, found_token, ParseError};
use super::model::Label;

/// Said whenever a quoted (UTF-8) metric or label name is met.
const QUOTED_NAMES: &str = "(quoted UTF-8 names are not supported yet)";

pub(crate) struct Cursor<'a> {
    line: &'a str,
    pos: usize,
    line_no: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(line: &'a str, line_no: usize) -> Cursor<'a> {
        Cursor {
            line,
            pos: 0,
            line_no,
        }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn rest(&self) -> &'a str {
        &self.line[self.pos..]
    }

    /// Bytes `start..end` of the line; both must be positions the cursor has been at.
    pub(crate) fn slice(&self, start: usize, end: usize) -> &'a str {
        &self.line[start..end]
    }

    /// Position in the line of `part`, a slice this cursor handed out.
    pub(crate) fn offset_of(&self, part: &str) -> usize {
        (part.as_ptr() as usize).saturating_sub(self.line.as_ptr() as usize)
    }

    pub(crate) fn peek(&self) -> Option<u8> {
        self.line.as_bytes().get(self.pos).copied()
    }

    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.line.len()
    }

    /// Moves past `n` bytes the caller has checked are ASCII.
    pub(crate) fn advance(&mut self, n: usize) {
        self.pos += n;
    }

    /// Skips spaces and tabs; says whether there were any.
    pub(crate) fn skip_ws(&mut self) -> bool {
        let start = self.pos;
        let bytes = self.line.as_bytes();
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
        let token = self.line[pos..]
            .split([' ', '\t'])
            .next()
            .unwrap_or_default();
        self.error_at(pos, expected, found_token(token))
    }

    /// Consumes a run of bytes up to the next space or tab (or the end of the line).
    pub(crate) fn token(&mut self) -> &'a str {
        let start = self.pos;
        let bytes = self.line.as_bytes();
        while self.pos < bytes.len() && !matches!(bytes[self.pos], b' ' | b'\t') {
            self.pos += 1;
        }
        &self.line[start..self.pos]
    }

    /// The rest of the line, without trailing spaces and tabs; the cursor ends at the end.
    pub(crate) fn take_rest(&mut self) -> &'a str {
        let rest = self.rest().trim_end_matches([' ', '\t']);
        self.pos = self.line.len();
        rest
    }

    /// Consumes the longest run of bytes of `class` (see [`NAME_CLASS`]) whose first byte is
    /// also of `first`; `None` when the first byte is not.
    fn take_class(&mut self, first: u8, class: u8) -> Option<&'a str> {
        let bytes = self.line.as_bytes();
        let start = self.pos;
        let first_ok = bytes
            .get(start)
            .is_some_and(|&b| NAME_CLASS[usize::from(b)] & first != 0);
        if !first_ok {
            return None;
        }
        self.pos = class_end(bytes, start + 1, class);
        Some(&self.line[start..self.pos])
    }

    /// A metric name, `[a-zA-Z_:][a-zA-Z0-9_:]*`; errors name `expected` when there is none.
    pub(crate) fn metric_name(&mut self, expected: &str) -> Result<&'a str, ParseError> {
        if let Some(name) = self.take_class(METRIC_FIRST, METRIC_MORE) {
            return Ok(name);
        }
        if matches!(self.peek(), Some(b'"' | b'{')) {
            return Err(self.error(format!("{expected} {QUOTED_NAMES}")));
        }
        Err(self.error(expected))
    }

    /// A metric name that probably starts with `known`, a valid metric name (the name of the
    /// previous line's family): compared in one go, then only the rest is scanned.
    pub(crate) fn metric_name_after(
        &mut self,
        known: &str,
        expected: &str,
    ) -> Result<&'a str, ParseError> {
        let start = self.pos;
        if known.is_empty() || !self.rest().starts_with(known) {
            return self.metric_name(expected);
        }
        self.pos = class_end(self.line.as_bytes(), start + known.len(), METRIC_MORE);
        Ok(&self.line[start..self.pos])
    }

    /// A label name, `[a-zA-Z_][a-zA-Z0-9_]*`.
    fn label_name(&mut self) -> Result<&'a str, ParseError> {
        if let Some(name) = self.take_class(LABEL_FIRST, LABEL_MORE) {
            return Ok(name);
        }
        if self.peek() == Some(b'"') {
            return Err(self.error(format!("label name or '}}' {QUOTED_NAMES}")));
        }
        Err(self.error("label name or '}'"))
    }

    /// The inside of a quoted label value, the opening quote already consumed; consumes the
    /// closing quote. Escapes are checked for completeness, not decoded. Also says whether the
    /// value holds a backslash.
    fn quoted_value(&mut self) -> Result<(&'a str, bool), ParseError> {
        let bytes = self.line.as_bytes();
        let start = self.pos;
        let mut i = start;
        let mut backslash = false;
        while let Some(found) = find_quote_or_backslash(bytes, i) {
            if bytes[found] == b'"' {
                self.pos = found + 1;
                return Ok((&self.line[start..found], backslash));
            }
            backslash = true;
            i = found + 2;
        }
        self.pos = self.line.len();
        Err(self.error("'\"' to close the label value"))
    }

    /// Consumes `byte`, with spaces and tabs allowed before it; says whether there were none.
    fn expect_spaced(&mut self, byte: u8, expected: &str) -> Result<bool, ParseError> {
        let spaced = self.skip_ws();
        if !self.eat(byte) {
            return Err(self.error(expected));
        }
        Ok(!spaced)
    }

    /// A label set, the `{` already consumed, through its `}`. Labels are appended to `labels`.
    /// A trailing comma is allowed; spaces and tabs may stand between any two tokens.
    /// Label names must be unique within the set. Says whether the set is written plainly:
    /// `name="value"` pairs joined by single commas, no whitespace, no trailing comma and no
    /// backslash in any value.
    pub(crate) fn label_set(&mut self, labels: &mut Vec<Label<'a>>) -> Result<bool, ParseError> {
        let set_start = labels.len();
        let mut plain = true;
        // One bit per (length, first byte) of the names so far: a cheap first test of
        // uniqueness.
        let mut names_seen = 0u64;
        loop {
            plain &= !self.skip_ws();
            if self.peek() == Some(b'}') {
                // A trailing comma, or an empty set.
                plain &= labels.len() == set_start;
                self.advance(1);
                return Ok(plain);
            }
            let name_at = self.pos;
            let name = self.label_name()?;
            let bit = 1u64 << ((name.len() ^ usize::from(name.as_bytes()[0])) & 63);
            if names_seen & bit != 0 && labels[set_start..].iter().any(|l| l.name == name) {
                return Err(self.error_at(
                    name_at,
                    "unique label names",
                    format!("a second '{name}'"),
                ));
            }
            names_seen |= bit;
            plain &= self.expect_spaced(b'=', "'=' after label name")?;
            plain &= self.expect_spaced(b'"', "'\"' to open the label value")?;
            let (raw_value, backslash) = self.quoted_value()?;
            plain &= !backslash;
            labels.push(Label { name, raw_value });
            plain &= !self.skip_ws();
            match self.peek() {
                Some(b',') => self.advance(1),
                Some(b'}') => {
                    self.advance(1);
                    return Ok(plain);
                }
                _ => return Err(self.error("',' or '}' after label value")),
            }
        }
    }
}

/// The position of the first `"` or `\\` in `bytes` at or after `from`. Label values are
/// short, so eight bytes at a time in a machine word beats a vector search's setup.
fn find_quote_or_backslash(bytes: &[u8], from: usize) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let mut i = from;
    while let Some(chunk) = bytes.get(i..i + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let word = u64::from_le_bytes(word);
        // The lowest flagged byte is exact; flags above it may be false, and are not used.
        let hits =
            has_zero(word ^ (ONES * u64::from(b'"'))) | has_zero(word ^ (ONES * u64::from(b'\\')));
        if hits != 0 {
            return Some(i + (hits.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    let tail = bytes.get(i..)?;
    tail.iter()
        .position(|&b| b == b'"' || b == b'\\')
        .map(|p| i + p)
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

/// Character classes of name bytes, as bits: see the constants below.
static NAME_CLASS: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        let letter = c.is_ascii_alphabetic() || c == b'_';
        let digit = c.is_ascii_digit();
        let mut class = 0;
        if letter || c == b':' {
            class |= METRIC_FIRST | METRIC_MORE;
        }
        if digit {
            class |= METRIC_MORE | LABEL_MORE;
        }
        if letter {
            class |= LABEL_FIRST | LABEL_MORE;
        }
        table[b] = class;
        b += 1;
    }
    table
};
const METRIC_FIRST: u8 = 1;
const METRIC_MORE: u8 = 2;
const LABEL_FIRST: u8 = 4;
const LABEL_MORE: u8 = 8;
