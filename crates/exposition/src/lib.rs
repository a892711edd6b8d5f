//! The exposition engine: parse what each instance answered (text 0.0.4 or OpenMetrics),
//! relabel, group and write one merged exposition in the format the caller negotiated (text
//! 0.0.4 or OpenMetrics). Pure functions over byte slices: no I/O, no async, no global state;
//! a crate of its own, whose only dependencies are `memchr`, `foldhash` and `thiserror`. The
//! caller decides what a failed parse means for the request.
//!
//! Map of the crate:
//! - `format` — input formats, content-type detection, metric types and sample-name suffixes;
//! - `cursor` — tokens within one line (names, label sets, quoted values);
//! - `parse` — lines into an [`Exposition`] of families and samples borrowing the body;
//! - `model` — the parsed data types;
//! - `error` — [`ParseError`], with line, column, expected and found;
//! - `escape` and `number` — spelling of strings and numbers in each format;
//! - `names` — legacy names, quoting and the `escaping=` schemes for the others;
//! - `merge` — [`merge_text`]: grouping, type conflicts, duplicates, relabelling (its doc
//!   states the rules);
//! - `translate` — which text families an OpenMetrics family becomes;
//! - `identity` — hashing of family names and series (for grouping and duplicates);
//! - `om_rules` — the OpenMetrics rules beyond syntax, checked on each source's samples;
//! - `negotiate` — the caller's `Accept` to an output format, its escaping and content type;
//! - `write` — text 0.0.4 and OpenMetrics lines straight into the output buffer.

mod cursor;
mod error;
mod escape;
mod format;
mod identity;
mod merge;
mod model;
mod names;
mod negotiate;
mod number;
mod om_rules;
mod parse;
mod translate;
mod write;

pub use error::ParseError;
pub use format::{InputFormat, MetricType, Suffix};
pub use merge::{merge, merge_in_parts, merge_text, MergeStats, Source};
pub use model::{Exposition, Family, Label, Labels, Sample};
pub use negotiate::{
    Escaping, Negotiated, OutputFormat, OPENMETRICS_CONTENT_TYPE, TEXT_CONTENT_TYPE,
};
pub use parse::parse;
