//! Splits a JSON object that arrives in pieces into its members (`"key": value`), handing each
//! over whole as soon as its last byte is in, so that a body of hundreds of megabytes is never
//! held whole. It follows only the structure it needs to find where members end (strings and
//! their escapes, nesting, the commas and the colon between members); the caller parses each
//! member's key and value, which catches everything else.

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
