//! Splits a JSON object that arrives in pieces into its members (`"key": value`), handing each
//! over whole as soon as its last byte is in, so that a body of hundreds of megabytes is never
//! held whole. It follows only the structure it needs to find where members end (strings and
//! their escapes, nesting, the commas and the colon between members); the caller parses each
//! member's key and value, which catches everything else.
//!
//! Nearly all of a route table's bytes are inside the members' values (arrays of endpoints),
//! where only brackets outside strings matter, and the splitter reads them without a branch per
//! byte or per string (see [`ObjectMembers::skip_nested`]). It takes 32 bytes at a time: most
//! such blocks hold no bracket and no backslash, and all a block like that changes is whether
//! the text after it is inside a string (when it holds an odd number of quotes); the test is
//! written so that the compiler vectorises it. A block with a bracket is read a machine
//! word (eight bytes) at a time: which bytes are quotes and brackets is found for the whole word
//! at once, which bytes are inside strings follows from the parity of the quotes before them,
//! and only brackets outside strings are looked at one by one. A word holding a backslash (an
//! escape), the few bytes between members and the last bytes of a piece are read one byte at a
//! time.

/// Where the splitter is: before the object's `{`, inside it, or after its `}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Position {
    Before,
    Inside,
    After,
}

/// One member of the object: its key and value as JSON text, each with the whitespace around it.
#[derive(Debug)]
pub struct Member<'a> {
    pub key: &'a [u8],
    pub value: &'a [u8],
}

/// Why the text is not a JSON object whose members can be split.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    #[error("byte {offset}: expected an object, found {found:?}")]
    NotAnObject { offset: u64, found: char },
    #[error("byte {offset}: a member without a key and value")]
    EmptyMember { offset: u64 },
    #[error("byte {offset}: a member without ':' between key and value")]
    NoColon { offset: u64 },
    #[error("byte {offset}: unexpected ']'")]
    UnbalancedBracket { offset: u64 },
    #[error("byte {offset}: text after the end of the object")]
    TrailingText { offset: u64 },
    #[error("the text ends inside the object after {offset} bytes (truncated)")]
    Truncated { offset: u64 },
}

/// The members of one JSON object, fed in pieces.
#[derive(Debug)]
pub struct ObjectMembers {
    position: Position,
    /// The text of the member being read.
    member: Vec<u8>,
    /// Where in `member` the colon between key and value is, once read.
    colon: Option<usize>,
    /// Nesting inside the member's value (0: between members).
    depth: u32,
    in_string: bool,
    /// The previous byte was a backslash inside a string.
    escaped: bool,
    members: usize,
    /// Bytes fed so far.
    offset: u64,
}

impl Default for ObjectMembers {
    fn default() -> Self {
        ObjectMembers {
            position: Position::Before,
            member: Vec::new(),
            colon: None,
            depth: 0,
            in_string: false,
            escaped: false,
            members: 0,
            offset: 0,
        }
    }
}

impl ObjectMembers {
    /// Reads the next piece of the text; `on_member` gets every member completed by it.
    pub fn feed<E: From<SplitError>>(
        &mut self,
        piece: &[u8],
        on_member: &mut impl FnMut(Member<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        // `piece[start..at]` belongs to the member being read and is not in `self.member` yet.
        let (mut start, mut at) = (0, 0);
        while at < piece.len() {
            if self.depth > 0 && !self.escaped {
                at = self.skip_nested(piece, at);
                if at == piece.len() {
                    break;
                }
            }
            let byte = piece[at];
            if self.position != Position::Inside {
                self.outside_object(byte, self.offset + at as u64)?;
                at += 1;
                start = at;
                continue;
            }
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                    at += 1;
                    continue;
                }
                // Most of the text is inside strings: skip to the next quote or backslash.
                match memchr::memchr2(b'"', b'\\', &piece[at..]) {
                    None => at = piece.len(),
                    Some(found) => {
                        at += found;
                        match piece[at] {
                            b'"' => self.in_string = false,
                            _ => self.escaped = true,
                        }
                        at += 1;
                    }
                }
                continue;
            }
            match byte {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' if self.depth > 0 => self.depth -= 1,
                b'}' => {
                    self.position = Position::After;
                    let text = &piece[start..at];
                    let empty_object = self.members == 0
                        && self.member.trim_ascii().is_empty()
                        && text.trim_ascii().is_empty();
                    if !empty_object {
                        self.complete_member(text, self.offset + at as u64, on_member)?;
                    }
                    at += 1;
                    start = at;
                    continue;
                }
                b']' => {
                    return Err(SplitError::UnbalancedBracket {
                        offset: self.offset + at as u64,
                    }
                    .into())
                }
                b',' if self.depth == 0 => {
                    let text = &piece[start..at];
                    self.complete_member(text, self.offset + at as u64, on_member)?;
                    at += 1;
                    start = at;
                    continue;
                }
                b':' if self.depth == 0 && self.colon.is_none() => {
                    self.colon = Some(self.member.len() + (at - start));
                }
                _ => {}
            }
            at += 1;
        }
        if self.position == Position::Inside {
            self.member.extend_from_slice(&piece[start..]);
        }
        self.offset += piece.len() as u64;
        Ok(())
    }

    /// Reads whole words of `piece` from `at` inside a member's value (depth above 0) and
    /// returns where it stopped: just after the bracket that closes the value, at a word that
    /// holds a backslash, or where less than a word is left.
    fn skip_nested(&mut self, piece: &[u8], mut at: usize) -> usize {
        // Per byte, its high bit: whether the byte is inside a string (a quote opening a string
        // counts as inside, one closing it as outside).
        let mut in_string = if self.in_string { HIGH_BITS } else { 0 };
        let mut depth = self.depth;
        // Up to here the text is read a word at a time (the rest of a block with a bracket).
        let mut by_words_until = at;
        while let Some(word) = piece.get(at..at + 8) {
            if at >= by_words_until {
                match piece.get(at..at + BLOCK).map(plain_block_quotes) {
                    Some(Some(quotes)) => {
                        if quotes % 2 == 1 {
                            in_string ^= HIGH_BITS;
                        }
                        at += BLOCK;
                        continue;
                    }
                    Some(None) => by_words_until = at + BLOCK,
                    None => by_words_until = piece.len(),
                }
            }
            let word = u64::from_le_bytes(word.try_into().expect("a slice of 8 bytes"));
            if zero_bytes(word ^ BACKSLASHES) != 0 {
                break;
            }
            let quotes = zero_bytes(word ^ QUOTES);
            // The parity of the quotes up to each byte, carried in from the word before.
            let mut inside = quotes ^ (quotes << 8);
            inside ^= inside << 16;
            inside ^= inside << 32;
            inside ^= in_string;
            in_string = if inside >> 63 == 1 { HIGH_BITS } else { 0 };
            let mut brackets = zero_bytes((word & BRACKET_BITS) ^ BRACKETS) & !inside;
            while brackets != 0 {
                let found = at + brackets.trailing_zeros() as usize / 8;
                match piece[found] {
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            self.depth = 0;
                            self.in_string = false;
                            return found + 1;
                        }
                    }
                    // `Y`, `_`, `y` or DEL, which share the bits tested: not JSON outside a
                    // string, and left to the member's parser.
                    _ => {}
                }
                brackets &= brackets - 1;
            }
            at += 8;
        }
        self.depth = depth;
        self.in_string = in_string != 0;
        at
    }

    /// The text ended: an error unless the object was closed.
    pub fn finish(&self) -> Result<(), SplitError> {
        match self.position {
            Position::After => Ok(()),
            _ => Err(SplitError::Truncated {
                offset: self.offset,
            }),
        }
    }

    /// One byte before the object's `{` or after its `}`, at `offset`.
    fn outside_object(&mut self, byte: u8, offset: u64) -> Result<(), SplitError> {
        match self.position {
            _ if byte.is_ascii_whitespace() => Ok(()),
            Position::Before if byte == b'{' => {
                self.position = Position::Inside;
                Ok(())
            }
            Position::Before => Err(SplitError::NotAnObject {
                offset,
                found: char::from(byte),
            }),
            _ => Err(SplitError::TrailingText { offset }),
        }
    }

    /// The member ends at `offset` (its comma or the object's `}`); its text is what
    /// `self.member` holds followed by `rest`.
    fn complete_member<E: From<SplitError>>(
        &mut self,
        rest: &[u8],
        offset: u64,
        on_member: &mut impl FnMut(Member<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        // A member within one piece is handed over from the piece itself, without a copy.
        let text = if self.member.is_empty() {
            rest
        } else {
            self.member.extend_from_slice(rest);
            &self.member
        };
        if text.trim_ascii().is_empty() {
            return Err(SplitError::EmptyMember { offset }.into());
        }
        let Some(colon) = self.colon.take() else {
            return Err(SplitError::NoColon { offset }.into());
        };
        self.members += 1;
        let (key, value) = text.split_at(colon);
        on_member(Member {
            key,
            value: &value[1..],
        })?;
        self.member.clear();
        Ok(())
    }
}

/// The bytes read at once when looking for a block without brackets.
const BLOCK: usize = 32;

/// The number of quotes in `block` when it holds no bracket and no backslash; `None` otherwise.
/// Written as one pass that counts and or-s (no early exit) so that it is vectorised; with `|`
/// instead of `||` between the comparisons it was not, and ran at a quarter of the speed.
fn plain_block_quotes(block: &[u8]) -> Option<u8> {
    let block: &[u8; BLOCK] = block.try_into().expect("a block");
    let (quotes, brackets_or_backslashes) =
        block.iter().fold((0u8, false), |(quotes, found), &byte| {
            // `[` and `{`, `]` and `}` differ only in the bit 0x20
            let special = byte | 0x20 == b'{' || byte | 0x20 == b'}' || byte == b'\\';
            (quotes + u8::from(byte == b'"'), found | special)
        });
    (!brackets_or_backslashes).then_some(quotes)
}

/// Every byte of a word with only its high bit set.
const HIGH_BITS: u64 = 0x8080_8080_8080_8080;
/// A quote and a backslash in every byte of a word.
const QUOTES: u64 = 0x2222_2222_2222_2222;
const BACKSLASHES: u64 = 0x5c5c_5c5c_5c5c_5c5c;
/// The bits that `[` (0x5b), `]` (0x5d), `{` (0x7b) and `}` (0x7d) share, in every byte of a
/// word, and their value there: a byte with those bits is one of them or `Y`, `_`, `y`, DEL.
const BRACKET_BITS: u64 = 0xd9d9_d9d9_d9d9_d9d9;
const BRACKETS: u64 = 0x5959_5959_5959_5959;

/// The high bit of each byte of `word` that is zero, and nothing else: a byte's low seven bits
/// plus 0x7f carry into its high bit unless they are all zero (never into the next byte), and
/// its own high bit is or-ed in.
fn zero_bytes(word: u64) -> u64 {
    let low_bits = !HIGH_BITS;
    !(((word & low_bits) + low_bits) | word | low_bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The members of `text` fed in pieces of `size` bytes, as (key, value) strings.
    fn members(text: &str, size: usize) -> Result<Vec<(String, String)>, SplitError> {
        let mut splitter = ObjectMembers::default();
        let mut found = Vec::new();
        for piece in text.as_bytes().chunks(size) {
            splitter.feed(piece, &mut |member: Member<'_>| {
                let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).trim().to_string();
                found.push((text(member.key), text(member.value)));
                Ok::<_, SplitError>(())
            })?;
        }
        splitter.finish()?;
        Ok(found)
    }

    #[test]
    fn members_are_the_same_wherever_the_pieces_are_cut() {
        let text = r#" { "a.example.com" : [{"address":"10.0.0.1:1","tags":{"x":"}],\"{"}}],
            "b\"q:,{" : [], "c":{"k":[1,{"z":"\\"}]} }
        "#;
        let expected = vec![
            (
                r#""a.example.com""#.to_string(),
                r#"[{"address":"10.0.0.1:1","tags":{"x":"}],\"{"}}]"#.to_string(),
            ),
            (r#""b\"q:,{""#.to_string(), "[]".to_string()),
            (r#""c""#.to_string(), r#"{"k":[1,{"z":"\\"}]}"#.to_string()),
        ];
        for size in 1..=text.len() {
            assert_eq!(members(text, size).unwrap(), expected, "pieces of {size}");
        }
    }

    /// A route-table-like object whose values put brackets, quotes, escapes and the bytes
    /// that look like brackets at every position of a word, inside and outside strings, with
    /// runs of short and long strings between them (blocks with an odd and an even number of
    /// quotes).
    fn tricky_object() -> String {
        let mut text = String::from("{");
        for route in 0..80 {
            let padding = "p".repeat(route % 9);
            let run = "q".repeat(route * 7 % 90);
            let escapes = ["", "\\\\", "\\\"", "\\u005d", "]}[{", "Y_y\u{7f}"][route % 6];
            text.push_str(&format!(
                r#"{}"r{route}{padding}":[{{"a":"{padding}{escapes}","s":"{run}","u":"v","w":"{run}x","n":[[{route}],{{}}],"t":{{"k{escapes}":"{{"}}}},"x"]"#,
                if route == 0 { "" } else { ",\n " },
            ));
        }
        text.push('}');
        text
    }

    #[test]
    fn members_of_a_longer_object_are_what_a_json_parser_reads_wherever_the_pieces_are_cut() {
        let text = tricky_object();
        let parsed: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&text).expect("the test's object is JSON");
        for size in (1..=70).chain([4096]) {
            let found = members(&text, size).unwrap();
            assert_eq!(found.len(), parsed.len(), "pieces of {size}");
            for (key, value) in found {
                let key: String = serde_json::from_str(&key).unwrap();
                let value: serde_json::Value = serde_json::from_str(&value).unwrap();
                assert_eq!(parsed[&key], value, "{key}, pieces of {size}");
            }
        }
    }

    #[test]
    fn an_empty_object_has_no_members() {
        assert_eq!(members("{}", 1).unwrap(), vec![]);
        assert_eq!(members(" { \n } ", 3).unwrap(), vec![]);
    }

    #[test]
    fn what_is_not_a_whole_object_is_refused_with_where() {
        assert_eq!(
            members(r#"{"a":[1,2"#, 4),
            Err(SplitError::Truncated { offset: 9 })
        );
        assert_eq!(members("", 4), Err(SplitError::Truncated { offset: 0 }));
        assert_eq!(
            members(r#"["a"]"#, 4),
            Err(SplitError::NotAnObject {
                offset: 0,
                found: '['
            })
        );
        assert_eq!(
            members(r#"{"a":1} x"#, 2),
            Err(SplitError::TrailingText { offset: 8 })
        );
        assert_eq!(
            members(r#"{"a":1,,"b":2}"#, 5),
            Err(SplitError::EmptyMember { offset: 7 })
        );
        assert_eq!(
            members(r#"{"a" 1}"#, 5),
            Err(SplitError::NoColon { offset: 6 })
        );
        assert_eq!(
            members(r#"{"a":1]}"#, 5),
            Err(SplitError::UnbalancedBracket { offset: 6 })
        );
    }
}
