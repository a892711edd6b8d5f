//! Parse → merge → write over arbitrary bytes. For each input format the body parses in, two
//! copies are merged with appended labels (one value needing escapes) into text 0.0.4 and into
//! OpenMetrics, and:
//! - nothing panics;
//! - the text answer parses again with our parser, to as many samples as the merge wrote;
//! - the OpenMetrics answer parses again with our parser.
//!
//! The engine is pure code (std and `thiserror`), so the target compiles its source directly
//! instead of depending on the promfetcher crate: the fuzz build then instruments only the
//! engine, not actix, sqlx and the rest.

#![no_main]

#[allow(dead_code, unused_imports)]
#[path = "../../src/exposition/mod.rs"]
mod exposition;

use exposition::{merge, parse, InputFormat, OutputFormat, Source};
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

        let mut text = Vec::new();
        let stats = merge(&sources, OutputFormat::Text, &mut text);
        match parse(&text, InputFormat::Text) {
            Ok(again) => assert_eq!(
                again.sample_count(),
                stats.samples,
                "text answer re-parses to another number of samples ({format:?} input)\n{}",
                String::from_utf8_lossy(&text)
            ),
            Err(e) => panic!(
                "text answer does not parse again ({format:?} input): {e}\n{}",
                String::from_utf8_lossy(&text)
            ),
        }

        let mut om = Vec::new();
        merge(&sources, OutputFormat::OpenMetrics, &mut om);
        if let Err(e) = parse(&om, InputFormat::OpenMetrics) {
            panic!(
                "OpenMetrics answer does not parse again ({format:?} input): {e}\n{}",
                String::from_utf8_lossy(&om)
            );
        }
    }
});
