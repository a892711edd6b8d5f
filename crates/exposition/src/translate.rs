//! Which output families an input family becomes, per input format, type and output format:
//! for each, the output family's name, type and which samples it takes. Static tables only; it
//! neither reads samples nor writes anything.
//!
//! Sample names never change: only the family they are written under does. So a text counter
//! `x_total` becomes the OpenMetrics counter `x` (whose samples are named `x_total`), while a
//! text counter `x` without `_total` becomes the OpenMetrics `unknown` family `x`, keeping its
//! series name (OpenMetrics would have to rename it to `x_total` to keep the type).

use super::format::{InputFormat, MetricType, Suffix};
use super::negotiate::OutputFormat;
use super::write::Name;

/// How an output family's name derives from the input family's name.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Rename {
    /// Append a suffix (empty for the same name).
    Append(&'static str),
    /// Remove a suffix the name is known to end with.
    Strip(&'static str),
}

/// How one input family contributes to one output family.
#[derive(Debug)]
pub(crate) struct Part {
    /// Suffix bits of the samples this part takes.
    pub(crate) takes: u16,
    pub(crate) rename: Rename,
    pub(crate) kind: MetricType,
    /// Whether the input family's HELP (and UNIT) applies.
    pub(crate) help: bool,
}

impl Part {
    /// The output family name for input family `name`.
    pub(crate) fn name<'a>(&self, name: &'a str) -> Name<'a> {
        match self.rename {
            Rename::Append(suffix) => Name { base: name, suffix },
            Rename::Strip(suffix) => Name {
                base: name.strip_suffix(suffix).unwrap_or(name),
                suffix: "",
            },
        }
    }
}

const fn part(takes: u16, suffix: &'static str, kind: MetricType, help: bool) -> Part {
    Part {
        takes,
        rename: Rename::Append(suffix),
        kind,
        help,
    }
}

const fn stripped(takes: u16, suffix: &'static str, kind: MetricType) -> Part {
    Part {
        takes,
        rename: Rename::Strip(suffix),
        kind,
        help: true,
    }
}

const ALL: u16 = u16::MAX;
const NOT_CREATED: u16 = !Suffix::Created.bit();
const BARE: u16 = Suffix::Bare.bit();
const NOT_BARE: u16 = !BARE;

use MetricType as T;
static WHOLE_COUNTER: [Part; 1] = [part(ALL, "", T::Counter, true)];
static WHOLE_GAUGE: [Part; 1] = [part(ALL, "", T::Gauge, true)];
static WHOLE_HISTOGRAM: [Part; 1] = [part(ALL, "", T::Histogram, true)];
static WHOLE_SUMMARY: [Part; 1] = [part(ALL, "", T::Summary, true)];
static WHOLE_UNTYPED: [Part; 1] = [part(ALL, "", T::Untyped, true)];
static WHOLE_STATESET: [Part; 1] = [part(ALL, "", T::StateSet, true)];
static WHOLE_GAUGE_HISTOGRAM: [Part; 1] = [part(ALL, "", T::GaugeHistogram, true)];

// OpenMetrics to text.
static OM_COUNTER: [Part; 3] = [
    part(BARE, "", T::Counter, true),
    part(Suffix::Total.bit(), "_total", T::Counter, true),
    part(Suffix::Created.bit(), "_created", T::Gauge, false),
];
static OM_INFO: [Part; 2] = [
    part(BARE, "", T::Gauge, true),
    part(Suffix::Info.bit(), "_info", T::Gauge, true),
];
static OM_HISTOGRAM: [Part; 2] = [
    part(NOT_CREATED, "", T::Histogram, true),
    part(Suffix::Created.bit(), "_created", T::Gauge, false),
];
static OM_SUMMARY: [Part; 2] = [
    part(NOT_CREATED, "", T::Summary, true),
    part(Suffix::Created.bit(), "_created", T::Gauge, false),
];
static OM_GAUGE_HISTOGRAM: [Part; 3] = [
    part(Suffix::Bucket.bit(), "_bucket", T::Untyped, true),
    part(Suffix::Gcount.bit(), "_gcount", T::Untyped, true),
    part(Suffix::Gsum.bit(), "_gsum", T::Untyped, true),
];

// Into OpenMetrics. A counter (text, or OpenMetrics `# TYPE x_total counter` with bare `x_total`
// samples) whose name ends in `_total` is the counter without it; bare samples of an
// OpenMetrics info `x_info` likewise.
static TOTAL_COUNTER: [Part; 1] = [stripped(ALL, "_total", T::Counter)];
static OM_BARE_TOTAL_COUNTER: [Part; 2] = [
    stripped(BARE, "_total", T::Counter),
    part(NOT_BARE, "", T::Counter, true),
];
static OM_BARE_COUNTER: [Part; 2] = [
    part(BARE, "", T::Untyped, true),
    part(NOT_BARE, "", T::Counter, true),
];
static OM_BARE_INFO_INFO: [Part; 2] = [
    stripped(BARE, "_info", T::Info),
    part(NOT_BARE, "", T::Info, true),
];
static OM_BARE_INFO: [Part; 2] = [
    part(BARE, "", T::Untyped, true),
    part(NOT_BARE, "", T::Info, true),
];

/// The output families an input family `name` of type `kind` becomes in `output`.
pub(crate) fn parts(
    input: InputFormat,
    kind: MetricType,
    name: &str,
    output: OutputFormat,
) -> &'static [Part] {
    match output {
        OutputFormat::Text => to_text(input, kind),
        OutputFormat::OpenMetrics => to_openmetrics(input, kind, name),
    }
}

fn to_text(input: InputFormat, kind: MetricType) -> &'static [Part] {
    match (input, kind) {
        (InputFormat::OpenMetrics, T::Counter) => &OM_COUNTER,
        (InputFormat::OpenMetrics, T::Info) => &OM_INFO,
        (InputFormat::OpenMetrics, T::Histogram) => &OM_HISTOGRAM,
        (InputFormat::OpenMetrics, T::Summary) => &OM_SUMMARY,
        (InputFormat::OpenMetrics, T::GaugeHistogram) => &OM_GAUGE_HISTOGRAM,
        (_, T::Counter) => &WHOLE_COUNTER,
        (_, T::Gauge | T::StateSet) => &WHOLE_GAUGE,
        (_, T::Histogram) => &WHOLE_HISTOGRAM,
        (_, T::Summary) => &WHOLE_SUMMARY,
        (_, T::Untyped | T::Info | T::GaugeHistogram) => &WHOLE_UNTYPED,
    }
}

fn to_openmetrics(input: InputFormat, kind: MetricType, name: &str) -> &'static [Part] {
    let total = name.ends_with("_total");
    match (input, kind) {
        (InputFormat::Text, T::Counter) if total => &TOTAL_COUNTER,
        (InputFormat::Text, T::Counter) => &WHOLE_UNTYPED,
        (InputFormat::OpenMetrics, T::Counter) if total => &OM_BARE_TOTAL_COUNTER,
        (InputFormat::OpenMetrics, T::Counter) => &OM_BARE_COUNTER,
        (InputFormat::OpenMetrics, T::Info) if name.ends_with("_info") => &OM_BARE_INFO_INFO,
        (InputFormat::OpenMetrics, T::Info) => &OM_BARE_INFO,
        (_, T::Gauge) => &WHOLE_GAUGE,
        (_, T::Histogram) => &WHOLE_HISTOGRAM,
        (_, T::Summary) => &WHOLE_SUMMARY,
        (_, T::Untyped) | (InputFormat::Text, T::Info) => &WHOLE_UNTYPED,
        (_, T::StateSet) => &WHOLE_STATESET,
        (_, T::GaugeHistogram) => &WHOLE_GAUGE_HISTOGRAM,
    }
}
