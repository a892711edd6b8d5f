//! The one error the parser returns: where in the body it stopped, what it expected and what it
//! found. It only describes; it never decides whether a failed instance fails the request.

/// A body that is not a valid exposition.
///
/// Displays as `line 3, column 17: expected '=' after label name, found '}'`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: expected {expected}, found {found}")]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// 1-based byte column within the line.
    pub column: usize,
    /// What the parser was looking for, e.g. `'=' after label name`.
    pub expected: String,
    /// What was there instead, e.g. `'}'` or `end of line`.
    pub found: String,
}

/// Renders the input at a position for [`ParseError::found`]: `end of line` when `rest` is
/// empty, otherwise its first character quoted.
pub(crate) fn found_char(rest: &str) -> String {
    match rest.chars().next() {
        None => "end of line".to_owned(),
        Some(c) => format!("'{}'", printable(&rest[..c.len_utf8()])),
    }
}

/// Renders a token for [`ParseError::found`], quoted and cut to a readable length.
pub(crate) fn found_token(token: &str) -> String {
    const MAX: usize = 40;
    if token.is_empty() {
        return "end of line".to_owned();
    }
    match token.char_indices().nth(MAX) {
        Some((cut, _)) => format!("'{}...'", printable(&token[..cut])),
        None => format!("'{}'", printable(token)),
    }
}

/// `s` with control characters written as Rust escapes and everything else kept.
fn printable(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_debug().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}
