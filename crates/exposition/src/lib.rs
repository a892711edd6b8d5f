//! The exposition engine: parse what each instance answered, relabel, group and write one
//! merged text 0.0.4 exposition. Pure functions over byte slices: no I/O, no async, no global
//! state; the caller decides what a failed parse means for the request.
//!
//! Map of the module:
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
//! - `write` — text 0.0.4 lines straight into the output buffer.

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
pub use merge::{merge, merge_text, MergeStats, Source};
pub use model::{Exposition, Family, Label, Labels, Sample};
pub use negotiate::{
    Escaping, Negotiated, OutputFormat, OPENMETRICS_CONTENT_TYPE, TEXT_CONTENT_TYPE,
};
pub use parse::parse;
