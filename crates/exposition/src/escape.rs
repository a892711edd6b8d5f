//! Escaping rules of the two formats: decoding label values and HELP text on demand, and
//! encoding our own label values and HELP text for text 0.0.4 output. Only string transforms;
//! it knows nothing of lines, families or merging.
//!
//! Label values escape `\\`, `\"` and `\n` in both formats. HELP escapes `\\` and `\n` in text
//! 0.0.4 and additionally `\"` in OpenMetrics. A backslash before any other character stands for
//! itself, as Prometheus' own parser reads it.

use std::borrow::Cow;

use super::format::InputFormat;
use super::negotiate::OutputFormat;

/// Decodes a label value written between quotes; borrows when it holds no backslash.
pub(crate) fn decode_label_value(raw: &str) -> Cow<'_, str> {
    decode(raw, true)
}

/// Decodes HELP text as written in `format`; borrows when it holds no backslash.
pub(crate) fn decode_help(raw: &str, format: InputFormat) -> Cow<'_, str> {
    decode(raw, format == InputFormat::OpenMetrics)
}

fn decode(raw: &str, quote_is_escape: bool) -> Cow<'_, str> {
    if !raw.contains('\\') {
        return Cow::Borrowed(raw);
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('"') if quote_is_escape => out.push('"'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    Cow::Owned(out)
}

/// Appends `value` (raw, unescaped UTF-8) as the inside of a text label value: `\`, `"` and
/// newline escaped.
pub(crate) fn write_label_value(value: &str, out: &mut Vec<u8>) {
    let bytes = value.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escaped: &[u8] = match b {
            b'\\' => b"\\\\",
            b'"' => b"\\\"",
            b'\n' => b"\\n",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(escaped);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

/// Appends a label value as written in the input (escapes not decoded) for text output: byte
/// for byte, except that a backslash before anything but `\\`, `"` or `n` (which Prometheus
/// reads as a literal backslash but its strict parsers reject) is written as `\\`.
pub(crate) fn write_raw_label_value(raw: &str, out: &mut Vec<u8>) {
    if !raw.contains('\\') {
        out.extend_from_slice(raw.as_bytes());
        return;
    }
    let mut bytes = raw.bytes();
    while let Some(b) = bytes.next() {
        if b != b'\\' {
            out.push(b);
            continue;
        }
        match bytes.next() {
            Some(e @ (b'\\' | b'"' | b'n')) => out.extend_from_slice(&[b'\\', e]),
            Some(other) => out.extend_from_slice(&[b'\\', b'\\', other]),
            None => out.extend_from_slice(b"\\\\"),
        }
    }
}

/// Appends HELP text written in `from` re-escaped for `to`, without allocating: the decoded
/// text is the same, only the spelling of its escapes changes (a lone backslash becomes `\\`;
/// OpenMetrics output escapes `"`, text output does not).
pub(crate) fn write_help(raw: &str, from: InputFormat, to: OutputFormat, out: &mut Vec<u8>) {
    let quote_out = to == OutputFormat::OpenMetrics;
    let needs_escape = raw.contains('\\') || (quote_out && raw.contains('"'));
    if !needs_escape {
        out.extend_from_slice(raw.as_bytes());
        return;
    }
    let quote_in = from == InputFormat::OpenMetrics;
    let plain = |b: u8, out: &mut Vec<u8>| {
        if b == b'"' && quote_out {
            out.extend_from_slice(b"\\\"");
        } else {
            out.push(b);
        }
    };
    let mut bytes = raw.bytes();
    while let Some(b) = bytes.next() {
        if b != b'\\' {
            plain(b, out);
            continue;
        }
        match bytes.next() {
            Some(b'\\') => out.extend_from_slice(b"\\\\"),
            Some(b'n') => out.extend_from_slice(b"\\n"),
            Some(b'"') if quote_in => plain(b'"', out),
            // A backslash standing for itself.
            Some(other) => {
                out.extend_from_slice(b"\\\\");
                plain(other, out);
            }
            None => out.extend_from_slice(b"\\\\"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_decode_only_when_escaped() {
        assert!(matches!(
            decode_label_value("plain"),
            Cow::Borrowed("plain")
        ));
        assert_eq!(decode_label_value(r#"a\\b\"c\nd"#), "a\\b\"c\nd");
        assert_eq!(decode_label_value(r"a\tb"), "a\\tb");
    }

    #[test]
    fn help_quote_escape_depends_on_format() {
        assert_eq!(
            decode_help(r#"say \"hi\""#, InputFormat::OpenMetrics),
            r#"say "hi""#
        );
        assert_eq!(
            decode_help(r#"say \"hi\""#, InputFormat::Text),
            r#"say \"hi\""#
        );
        assert_eq!(decode_help(r"a\\b\nc", InputFormat::Text), "a\\b\nc");
    }

    #[test]
    fn writes_label_values_escaped() {
        let mut out = Vec::new();
        write_label_value("a\\b\"c\nd", &mut out);
        assert_eq!(String::from_utf8_lossy(&out), r#"a\\b\"c\nd"#);
    }

    #[test]
    fn raw_label_values_stay_as_written_unless_an_escape_is_invalid() {
        let cases = [
            ("plain", "plain"),
            (r#"a\\b\"c\nd"#, r#"a\\b\"c\nd"#),
            (r"tab\there", r"tab\\there"),
            ("ünï \\é", "ünï \\\\é"),
        ];
        for (raw, want) in cases {
            let mut out = Vec::new();
            write_raw_label_value(raw, &mut out);
            assert_eq!(String::from_utf8_lossy(&out), want, "{raw:?}");
        }
    }

    #[test]
    fn rewrites_help_for_each_output() {
        use InputFormat as In;
        use OutputFormat as Out;
        let cases = [
            (
                r#"say \"hi\" \\ \n"#,
                In::OpenMetrics,
                Out::Text,
                r#"say "hi" \\ \n"#,
            ),
            (r#"say \"hi\""#, In::Text, Out::Text, r#"say \\"hi\\""#),
            (r"tab\t end\", In::Text, Out::Text, r"tab\\t end\\"),
            ("plain", In::Text, Out::Text, "plain"),
            (r#"say "hi""#, In::Text, Out::Text, r#"say "hi""#),
            (r#"say "hi""#, In::Text, Out::OpenMetrics, r#"say \"hi\""#),
            (
                r#"say \"hi\""#,
                In::Text,
                Out::OpenMetrics,
                r#"say \\\"hi\\\""#,
            ),
            (
                r#"say \"hi\" \\ \n \t"#,
                In::OpenMetrics,
                Out::OpenMetrics,
                r#"say \"hi\" \\ \n \\t"#,
            ),
            ("plain", In::OpenMetrics, Out::OpenMetrics, "plain"),
        ];
        for (raw, from, to, want) in cases {
            let mut out = Vec::new();
            write_help(raw, from, to, &mut out);
            assert_eq!(
                String::from_utf8_lossy(&out),
                want,
                "{raw:?} {from:?} {to:?}"
            );
        }
    }
}
