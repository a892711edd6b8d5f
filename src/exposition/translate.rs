//! How OpenMetrics families become text 0.0.4 families: for each input format and type, the
//! output families ("parts") an input family splits into, with their names, types and which
//! samples each takes. Static tables only; it neither reads samples nor writes anything.

use super::format::{InputFormat, MetricType, Suffix};

/// How one input family contributes to one output family.
#[derive(Debug)]
pub(crate) struct Part {
    /// Suffix bits of the samples this part takes.
    pub(crate) takes: u16,
    /// Appended to the input family name to give the output family name.
    pub(crate) suffix: &'static str,
    pub(crate) kind: MetricType,
    /// Whether the input family's HELP applies.
    pub(crate) help: bool,
}

const fn part(takes: u16, suffix: &'static str, kind: MetricType, help: bool) -> Part {
    Part {
        takes,
        suffix,
        kind,
        help,
    }
}

const ALL: u16 = u16::MAX;
const NOT_CREATED: u16 = !Suffix::Created.bit();

use MetricType as T;
static WHOLE_COUNTER: [Part; 1] = [part(ALL, "", T::Counter, true)];
static WHOLE_GAUGE: [Part; 1] = [part(ALL, "", T::Gauge, true)];
static WHOLE_HISTOGRAM: [Part; 1] = [part(ALL, "", T::Histogram, true)];
static WHOLE_SUMMARY: [Part; 1] = [part(ALL, "", T::Summary, true)];
static WHOLE_UNTYPED: [Part; 1] = [part(ALL, "", T::Untyped, true)];
static OM_COUNTER: [Part; 3] = [
    part(Suffix::Bare.bit(), "", T::Counter, true),
    part(Suffix::Total.bit(), "_total", T::Counter, true),
    part(Suffix::Created.bit(), "_created", T::Gauge, false),
];
static OM_INFO: [Part; 2] = [
    part(Suffix::Bare.bit(), "", T::Gauge, true),
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

/// The output families an input family of type `kind` becomes.
pub(crate) fn parts(format: InputFormat, kind: MetricType) -> &'static [Part] {
    match (format, kind) {
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
