//! Parse → merge → write over arbitrary bytes. For each input format the body parses in, two
//! copies are merged with appended labels (one value needing escapes) into text 0.0.4 and into
//! OpenMetrics (without an escaping choice, with `escaping=allow-utf-8` and with
//! `escaping=values`), and:
//! - nothing panics;
//! - every answer parses again with our parser, to as many samples as the merge wrote;
//! - only the `allow-utf-8` answer may hold a name that is not a legacy name.
//!
//! The engine is its own pure crate (std, `thiserror`, `memchr` and `foldhash`), so the fuzz
//! build instruments only the engine, not actix, sqlx and the rest.

#![no_main]

use exposition::{merge, parse, Escaping, Exposition, InputFormat, Negotiated, OutputFormat, Source};
use libfuzzer_sys::fuzz_target;

const FIRST: [(&str, &str); 3] = [
    ("instance", "10.0.0.1:8080"),
    ("index", "0"),
    ("app_name", "a\"b\\c\nd"),
];
const SECOND: [(&str, &str); 3] = [
    ("instance", "10.0.0.2:8080"),
    ("index", "1"),
    ("app_name", "ü"),
];

/// Each answer format, and whether its names may be quoted.
const OUTPUTS: [(Negotiated, bool); 4] = [
    (Negotiated::TEXT, false),
    (Negotiated::OPENMETRICS, false),
    (
        Negotiated {
            format: OutputFormat::OpenMetrics,
            escaping: Some(Escaping::AllowUtf8),
        },
        true,
    ),
    (
        Negotiated {
            format: OutputFormat::OpenMetrics,
            escaping: Some(Escaping::Values),
        },
        false,
    ),
];

/// Whether `name` is a legacy metric name (label names are checked the same way, which also
/// allows `:`; the parser refuses unquoted label names with one).
fn legacy(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_' || b == b':')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
}

fn all_names_legacy(e: &Exposition<'_>) -> bool {
    e.families.iter().all(|f| {
        legacy(f.name)
            && f.samples.iter().all(|s| {
                legacy(s.name) && e.labels(s).iter().all(|l| legacy(l.name))
            })
    })
}

fuzz_target!(|data: &[u8]| {
    for format in [InputFormat::Text, InputFormat::OpenMetrics] {
        let Ok(parsed) = parse(data, format) else {
            continue;
        };
        let sources = [
            Source {
                exposition: &parsed,
                labels: &FIRST,
            },
            Source {
                exposition: &parsed,
                labels: &SECOND,
            },
        ];
        for (output, quoted_names) in OUTPUTS {
            let mut answer = Vec::new();
            let stats = merge(&sources, output, &mut answer);
            let shown = || String::from_utf8_lossy(&answer).into_owned();
            let again = match parse(&answer, output.format.syntax()) {
                Ok(again) => again,
                Err(e) => panic!(
                    "{output:?} answer does not parse again ({format:?} input): {e}\n{}",
                    shown()
                ),
            };
            assert_eq!(
                again.sample_count(),
                stats.samples,
                "{output:?} answer re-parses to another number of samples ({format:?} input)\n{}",
                shown()
            );
            assert!(
                quoted_names || all_names_legacy(&again),
                "{output:?} answer has a name that is not a legacy name ({format:?} input)\n{}",
                shown()
            );
        }
    }
});
