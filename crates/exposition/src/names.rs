//! Metric and label names as the output writes them: which names are legacy Prometheus names,
//! and how the others are spelled for the caller's `escaping=` choice (quoted, or escaped into
//! legacy names by the `underscores`, `dots` or `values` scheme of Prometheus' "UTF-8 escaping
//! schemes"). String work only; it neither parses lines nor decides which names are written.
//!
//! Legacy names are written as they are under every scheme. Names read from quotes are kept
//! as written there (escapes not decoded); quoting writes them back that way, escaping decodes
//! them first.

use std::fmt::Write as _;

use super::escape;
use super::negotiate::{Escaping, Negotiated, OutputFormat};

/// Character classes of name bytes, as bits: see the constants below.
pub(crate) static NAME_CLASS: [u8; 256] = {
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
/// May start a metric name: `[a-zA-Z_:]`.
pub(crate) const METRIC_FIRST: u8 = 1;
/// May continue a metric name: `[a-zA-Z0-9_:]`.
pub(crate) const METRIC_MORE: u8 = 2;
/// May start a label name: `[a-zA-Z_]`.
pub(crate) const LABEL_FIRST: u8 = 4;
/// May continue a label name: `[a-zA-Z0-9_]`.
pub(crate) const LABEL_MORE: u8 = 8;

/// Whether a name is a legacy name: `[a-zA-Z_:][a-zA-Z0-9_:]*` for metrics,
/// `[a-zA-Z_][a-zA-Z0-9_]*` for labels.
pub(crate) fn is_legacy(name: &str, kind: Kind) -> bool {
    let (first, more) = kind.classes();
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| NAME_CLASS[usize::from(b)] & first != 0)
        && bytes.all(|b| NAME_CLASS[usize::from(b)] & more != 0)
}

/// Which rules a name follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Metric,
    Label,
}

impl Kind {
    fn classes(self) -> (u8, u8) {
        match self {
            Kind::Metric => (METRIC_FIRST, METRIC_MORE),
            Kind::Label => (LABEL_FIRST, LABEL_MORE),
        }
    }
}

/// How names that are not legacy names are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    /// Quoted, as Prometheus 3 reads them (`{"my.metric","the.label"="x"}`).
    Quote,
    /// Escaped into a legacy name by this scheme.
    Escape(Escaping),
}

impl Style {
    /// Quoting where the caller allows UTF-8 names (OpenMetrics with `escaping=allow-utf-8`);
    /// otherwise the scheme it asked for, `underscores` when it asked for none (the default
    /// Prometheus documents) and always for text 0.0.4, which has no quoted names.
    pub(crate) fn of(negotiated: Negotiated) -> Style {
        match (negotiated.format, negotiated.escaping) {
            (OutputFormat::OpenMetrics, Some(Escaping::AllowUtf8)) => Style::Quote,
            (OutputFormat::OpenMetrics, Some(scheme)) => Style::Escape(scheme),
            _ => Style::Escape(Escaping::Underscores),
        }
    }

    /// `raw` (a name as written in its input) as a legacy name, when this style escapes and
    /// it is not one; `None` when it is written as it is (legacy, or quoted).
    pub(crate) fn escaped(self, raw: &str, kind: Kind) -> Option<String> {
        let Style::Escape(scheme) = self else {
            return None;
        };
        if is_legacy(raw, kind) {
            return None;
        }
        Some(escape_name(&escape::decode_label_value(raw), scheme, kind))
    }
}

/// `name` as a legacy name by `scheme` (`AllowUtf8` leaves it as it is).
fn escape_name(name: &str, scheme: Escaping, kind: Kind) -> String {
    let (first, more) = kind.classes();
    // A digit cannot start a name, also after `values`' prefix (as Prometheus' own code).
    let valid = |i: usize, c: char| {
        let class = if i == 0 { first } else { more };
        c.is_ascii() && NAME_CLASS[c as usize] & class != 0
    };
    let mut out = String::with_capacity(name.len() + 8);
    match scheme {
        Escaping::AllowUtf8 => out.push_str(name),
        Escaping::Underscores => {
            for (i, (_, c)) in name.char_indices().enumerate() {
                out.push(if valid(i, c) { c } else { '_' });
            }
        }
        Escaping::Dots => {
            for (i, (_, c)) in name.char_indices().enumerate() {
                match c {
                    '_' => out.push_str("__"),
                    '.' => out.push_str("_dot_"),
                    c if valid(i, c) => out.push(c),
                    _ => out.push('_'),
                }
            }
        }
        Escaping::Values => {
            out.push_str("U__");
            for (i, (_, c)) in name.char_indices().enumerate() {
                match c {
                    '_' => out.push_str("__"),
                    c if valid(i, c) => out.push(c),
                    c => {
                        let _ = write!(out, "_{:x}_", u32::from(c));
                    }
                }
            }
        }
    }
    out
}

/// Appends `raw` (as written between quotes in its input) between quotes, its escapes
/// normalised as in label values.
pub(crate) fn write_quoted(raw: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    escape::write_raw_label_value(raw, out);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_names() {
        for (name, metric, label) in [
            ("http_requests_total", true, true),
            ("a:b", true, false),
            (":a", true, false),
            ("_x1", true, true),
            ("1a", false, false),
            ("", false, false),
            ("my.metric", false, false),
            ("ünï", false, false),
        ] {
            assert_eq!(is_legacy(name, Kind::Metric), metric, "{name}");
            assert_eq!(is_legacy(name, Kind::Label), label, "{name}");
        }
    }

    #[test]
    fn escaping_schemes() {
        use Escaping::{Dots, Underscores as Under, Values};
        use Kind::{Label as L, Metric as M};
        let cases = [
            ("my.metric", Under, M, "my_metric"),
            ("a.b/with/slashes", Under, M, "a_b_with_slashes"),
            ("1st.thing", Under, M, "_st_thing"),
            ("a:b.c", Under, L, "a_b_c"),
            ("a:b.c", Under, M, "a:b_c"),
            ("ünï", Under, M, "_n_"),
            ("name.with.dots", Dots, M, "name_dot_with_dot_dots"),
            ("my_metric.x-y", Dots, M, "my__metric_dot_x_y"),
            ("metric.name", Values, M, "U__metric_2e_name"),
            ("my_metric.ü", Values, M, "U__my__metric_2e__fc_"),
            ("1a", Values, L, "U___31_a"),
        ];
        for (name, scheme, kind, want) in cases {
            assert_eq!(escape_name(name, scheme, kind), want, "{name} {scheme:?}");
            assert!(is_legacy(want, kind), "{want}");
        }
    }

    #[test]
    fn styles_follow_the_negotiation() {
        let om = |escaping| Negotiated {
            format: OutputFormat::OpenMetrics,
            escaping,
        };
        assert_eq!(
            Style::of(Negotiated::TEXT),
            Style::Escape(Escaping::Underscores)
        );
        assert_eq!(Style::of(om(None)), Style::Escape(Escaping::Underscores));
        assert_eq!(Style::of(om(Some(Escaping::AllowUtf8))), Style::Quote);
        assert_eq!(
            Style::of(om(Some(Escaping::Dots))),
            Style::Escape(Escaping::Dots)
        );
        assert_eq!(Style::Quote.escaped("my.metric", Kind::Metric), None);
        let underscores = Style::Escape(Escaping::Underscores);
        assert_eq!(underscores.escaped("legacy_name", Kind::Metric), None);
        assert_eq!(
            underscores.escaped("say\\\"hi\\\"", Kind::Label).as_deref(),
            Some("say_hi_")
        );
    }
}
