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
        self.pos = (self.pos + n).min(self.line.len());
    }

    /// Skips spaces and tabs; says whether there were any.
    pub(crate) fn skip_ws(&mut self) -> bool {
        let start = self.pos;
        let bytes = self.line.as_bytes();
        while self.pos < bytes.len() && matches!(bytes[self.pos], b' ' | b'\t') {
            self.pos += 1;
        }
        self.pos > start
    }

    /// Consumes `word` if the line continues with it.
    pub(crate) fn eat(&mut self, word: &str) -> bool {
        if self.rest().starts_with(word) {
            self.pos += word.len();
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

    fn take_while(&mut self, first: fn(u8) -> bool, more: fn(u8) -> bool) -> Option<&'a str> {
        let bytes = self.line.as_bytes();
        let start = self.pos;
        if !bytes.get(start).copied().is_some_and(first) {
            return None;
        }
        let mut end = start + 1;
        while end < bytes.len() && more(bytes[end]) {
            end += 1;
        }
        self.pos = end;
        Some(&self.line[start..end])
    }

    /// A metric name, `[a-zA-Z_:][a-zA-Z0-9_:]*`; errors name `expected` when there is none.
    pub(crate) fn metric_name(&mut self, expected: &str) -> Result<&'a str, ParseError> {
        fn first(b: u8) -> bool {
            b.is_ascii_alphabetic() || b == b'_' || b == b':'
        }
        fn more(b: u8) -> bool {
            b.is_ascii_alphanumeric() || b == b'_' || b == b':'
        }
        if let Some(name) = self.take_while(first, more) {
            return Ok(name);
        }
        if matches!(self.peek(), Some(b'"' | b'{')) {
            return Err(self.error(format!("{expected} {QUOTED_NAMES}")));
        }
        Err(self.error(expected))
    }

    /// A label name, `[a-zA-Z_][a-zA-Z0-9_]*`.
    fn label_name(&mut self) -> Result<&'a str, ParseError> {
        fn first(b: u8) -> bool {
            b.is_ascii_alphabetic() || b == b'_'
        }
        fn more(b: u8) -> bool {
            b.is_ascii_alphanumeric() || b == b'_'
        }
        if let Some(name) = self.take_while(first, more) {
            return Ok(name);
        }
        if self.peek() == Some(b'"') {
            return Err(self.error(format!("label name or '}}' {QUOTED_NAMES}")));
        }
        Err(self.error("label name or '}'"))
    }

    /// The inside of a quoted label value, the opening quote already consumed; consumes the
    /// closing quote. Escapes are checked for completeness, not decoded.
    fn quoted_value(&mut self) -> Result<&'a str, ParseError> {
        let bytes = self.line.as_bytes();
        let start = self.pos;
        let mut i = start;
        while i < bytes.len() {
            match bytes[i] {
                b'"' => {
                    self.pos = i + 1;
                    return Ok(&self.line[start..i]);
                }
                b'\\' => i += 2,
                _ => i += 1,
            }
        }
        self.pos = self.line.len();
        Err(self.error("'\"' to close the label value"))
    }

    /// A label set, the `{` already consumed, through its `}`. Labels are appended to `labels`.
    /// A trailing comma is allowed; spaces and tabs may stand between any two tokens.
    /// Label names must be unique within the set.
    pub(crate) fn label_set(&mut self, labels: &mut Vec<Label<'a>>) -> Result<(), ParseError> {
        let set_start = labels.len();
        loop {
            self.skip_ws();
            if self.peek() == Some(b'}') {
                self.advance(1);
                return Ok(());
            }
            let name_at = self.pos;
            let name = self.label_name()?;
            if labels[set_start..].iter().any(|l| l.name == name) {
                return Err(self.error_at(
                    name_at,
                    "unique label names",
                    format!("a second '{name}'"),
                ));
            }
            self.skip_ws();
            if !self.eat("=") {
                return Err(self.error("'=' after label name"));
            }
            self.skip_ws();
            if !self.eat("\"") {
                return Err(self.error("'\"' to open the label value"));
            }
            let raw_value = self.quoted_value()?;
            labels.push(Label { name, raw_value });
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.advance(1),
                Some(b'}') => {
                    self.advance(1);
                    return Ok(());
                }
                _ => return Err(self.error("',' or '}' after label value")),
            }
        }
    }
}
