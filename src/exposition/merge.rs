//! Merges parsed expositions into one text 0.0.4 exposition: maps each input family onto the
//! output families it becomes, groups them by name across sources, settles type conflicts,
//! drops duplicate series and relabels. It never parses and never does I/O; the spelling of
//! each line is left to `write`.
//!
//! # Rules
//!
//! * **Order.** Families are sorted by output name (byte order). Within a family, sources come
//!   in the order given and each source's samples in input order, so histogram buckets and
//!   summary quantiles keep their order.
//! * **Type conflicts.** The first source (in order) whose family has a `# TYPE` line fixes the
//!   output type; when no source declares one the family is `untyped`. A source that declares a
//!   different type has all its samples of that family dropped, counted once per source and
//!   output family in [`MergeStats::type_conflicts`]. A source without a `# TYPE` line for the
//!   family (implicitly untyped) is kept when the fixed type is counter, gauge or untyped, whose
//!   sample names are the family name, and dropped as a conflict otherwise.
//! * **Metadata.** HELP comes from the first kept source that has a non-empty one. A family is
//!   written only when it has samples; metadata-only families are left out.
//! * **Relabel.** A sample's own labels whose name equals an appended label name are dropped,
//!   the rest are kept in order and byte for byte, then the source's labels are appended.
//! * **Duplicates.** Within one source, a series whose name and kept labels (in any order) were
//!   already written is skipped and counted in [`MergeStats::duplicate_series`]. Identity is a
//!   64-bit hash, so two distinct series could in theory collide; with thousands of series per
//!   source that chance is negligible.
//! * **OpenMetrics to text.** Counter `foo` becomes counter `foo_total` (a bare `foo` sample
//!   stays in counter `foo`); `_created` samples of counters, histograms and summaries become
//!   gauge `<name>_created`; info `foo` becomes gauge `foo_info`; stateset becomes gauge;
//!   unknown becomes untyped; gaugehistogram `foo` becomes untyped `foo_bucket`, `foo_gcount`
//!   and `foo_gsum`. UNIT and exemplars are dropped, timestamps become integer milliseconds.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hash, Hasher};

use super::format::{InputFormat, MetricType, Suffix};
use super::model::{Exposition, Label};
use super::write::{self, Name};

/// One input to the merge: a parsed exposition and the labels to append to each of its samples
/// (names are valid label names, values are raw UTF-8 and must be escaped by the writer).
pub struct Source<'a> {
    pub exposition: &'a Exposition<'a>,
    pub labels: &'a [(&'a str, &'a str)],
}

/// Counts the caller publishes as metrics/logs.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MergeStats {
    /// Families written.
    pub families: usize,
    /// Samples written.
    pub samples: usize,
    /// Source families dropped because their type differs from the family's fixed type.
    pub type_conflicts: usize,
    /// Samples dropped because the same source already had that series.
    pub duplicate_series: usize,
}

/// Merge all sources into one text-0.0.4 exposition appended to `out`.
pub fn merge_text(sources: &[Source<'_>], out: &mut Vec<u8>) -> MergeStats {
    let (names, mut contributions) = collect(sources);

    // Sort output families by name, then group contributions by family; the sort is stable,
    // so within a family contributions stay in source order.
    let mut order: Vec<usize> = (0..names.len()).collect();
    order.sort_unstable_by(|&a, &b| names[a].cmp_bytes(&names[b]));
    let mut rank = vec![0; names.len()];
    for (r, &o) in order.iter().enumerate() {
        rank[o] = r;
    }
    contributions.sort_by_key(|c| rank[c.out]);

    let mut rendered = Vec::new();
    let mut rendered_ranges = Vec::with_capacity(sources.len());
    for source in sources {
        let start = rendered.len();
        write::render_labels(source.labels, &mut rendered);
        rendered_ranges.push(start..rendered.len());
    }

    let mut merger = Merger {
        sources,
        rendered: &rendered,
        rendered_ranges: &rendered_ranges,
        seen: HashSet::default(),
        stats: MergeStats::default(),
    };
    for group in contributions.chunk_by(|a, b| a.out == b.out) {
        merger.family(names[group[0].out], group, out);
    }
    merger.stats
}

/// How one input family contributes to one output family.
#[derive(Debug)]
struct Part {
    /// Suffix bits of the samples this part takes.
    takes: u16,
    /// Appended to the input family name to give the output family name.
    suffix: &'static str,
    kind: MetricType,
    /// Whether the input family's HELP applies.
    help: bool,
}

const fn part(takes: u16, suffix: &'static str, kind: MetricType, help: bool) -> Part {
    Part {
        takes,
        suffix,
        kind,
        help,
    }
}

const fn bit(s: Suffix) -> u16 {
    1 << (s as u16)
}

const ALL: u16 = u16::MAX;
const NOT_CREATED: u16 = !bit(Suffix::Created);

use MetricType as T;
static WHOLE_COUNTER: [Part; 1] = [part(ALL, "", T::Counter, true)];
static WHOLE_GAUGE: [Part; 1] = [part(ALL, "", T::Gauge, true)];
static WHOLE_HISTOGRAM: [Part; 1] = [part(ALL, "", T::Histogram, true)];
static WHOLE_SUMMARY: [Part; 1] = [part(ALL, "", T::Summary, true)];
static WHOLE_UNTYPED: [Part; 1] = [part(ALL, "", T::Untyped, true)];
static OM_COUNTER: [Part; 3] = [
    part(bit(Suffix::Bare), "", T::Counter, true),
    part(bit(Suffix::Total), "_total", T::Counter, true),
    part(bit(Suffix::Created), "_created", T::Gauge, false),
];
static OM_INFO: [Part; 2] = [
    part(bit(Suffix::Bare), "", T::Gauge, true),
    part(bit(Suffix::Info), "_info", T::Gauge, true),
];
static OM_HISTOGRAM: [Part; 2] = [
    part(NOT_CREATED, "", T::Histogram, true),
    part(bit(Suffix::Created), "_created", T::Gauge, false),
];
static OM_SUMMARY: [Part; 2] = [
    part(NOT_CREATED, "", T::Summary, true),
    part(bit(Suffix::Created), "_created", T::Gauge, false),
];
static OM_GAUGE_HISTOGRAM: [Part; 3] = [
    part(bit(Suffix::Bucket), "_bucket", T::Untyped, true),
    part(bit(Suffix::Gcount), "_gcount", T::Untyped, true),
    part(bit(Suffix::Gsum), "_gsum", T::Untyped, true),
];

/// The output families an input family of type `kind` becomes.
fn parts(format: InputFormat, kind: MetricType) -> &'static [Part] {
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

/// One input family's part, destined for output family `out`.
struct Contribution {
    out: usize,
    source: usize,
    family: usize,
    part: &'static Part,
}

/// Every output family name (in first-seen order) and every contribution (in source order).
fn collect<'a>(sources: &[Source<'a>]) -> (Vec<Name<'a>>, Vec<Contribution>) {
    let mut names = Vec::new();
    let mut index: HashMap<Key<'a>, usize> = HashMap::new();
    let mut contributions = Vec::new();
    for (source, s) in sources.iter().enumerate() {
        let exposition = s.exposition;
        for (family, f) in exposition.families.iter().enumerate() {
            for part in parts(exposition.format, f.kind) {
                if f.suffixes & part.takes == 0 {
                    continue;
                }
                let name = Name {
                    base: f.name,
                    suffix: part.suffix,
                };
                let out = *index.entry(Key(name)).or_insert_with(|| {
                    names.push(name);
                    names.len() - 1
                });
                contributions.push(Contribution {
                    out,
                    source,
                    family,
                    part,
                });
            }
        }
    }
    (names, contributions)
}

impl Name<'_> {
    fn bytes(&self) -> impl Iterator<Item = u8> + '_ {
        self.base.bytes().chain(self.suffix.bytes())
    }

    fn len(&self) -> usize {
        self.base.len() + self.suffix.len()
    }

    fn cmp_bytes(&self, other: &Name<'_>) -> std::cmp::Ordering {
        if self.suffix.is_empty() && other.suffix.is_empty() {
            return self.base.cmp(other.base);
        }
        self.bytes().cmp(other.bytes())
    }
}

/// A family name as a map key: equal when the written names are equal, however they split
/// into base and suffix (`foo_total` + `` equals `foo` + `_total`).
struct Key<'a>(Name<'a>);

impl PartialEq for Key<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.0.len() == other.0.len() && self.0.bytes().eq(other.0.bytes())
    }
}

impl Eq for Key<'_> {}

impl Hash for Key<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Hash the written bytes in one go so that the split does not matter.
        state.write_u64(fnv1a(FNV_OFFSET, self.0.bytes()));
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

fn fnv1a(mut h: u64, bytes: impl Iterator<Item = u8>) -> u64 {
    for b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Spreads an FNV hash over all 64 bits (the MurmurHash3 finaliser), so that sums of label
/// hashes stay well distributed.
fn mix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// Identity of an output series within one source: its name and kept labels, in any order.
fn series_hash(name: &str, labels: &[Label<'_>], appended: &[(&str, &str)]) -> u64 {
    let mut h = mix(fnv1a(FNV_OFFSET, name.bytes()));
    for label in labels {
        if write::is_replaced(label, appended) {
            continue;
        }
        // 0xff never occurs in UTF-8, so it separates name from value unambiguously.
        let lh = fnv1a(FNV_OFFSET, label.name.bytes());
        let lh = fnv1a(lh, std::iter::once(0xff).chain(label.raw_value.bytes()));
        h = h.wrapping_add(mix(lh));
    }
    h
}

/// Hasher for keys that are already well-mixed `u64` hashes.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0 = fnv1a(self.0, bytes.iter().copied());
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

struct Merger<'s, 'a> {
    sources: &'s [Source<'a>],
    rendered: &'s [u8],
    rendered_ranges: &'s [std::ops::Range<usize>],
    seen: HashSet<u64, BuildHasherDefault<PassThrough>>,
    stats: MergeStats,
}

impl Merger<'_, '_> {
    /// Writes one output family from its contributions (all with the same `out`).
    fn family(&mut self, name: Name<'_>, group: &[Contribution], out: &mut Vec<u8>) {
        let sources = self.sources;
        let family_of = |c: &Contribution| &sources[c.source].exposition.families[c.family];

        let fixed = group
            .iter()
            .find(|c| family_of(c).declared)
            .map_or(MetricType::Untyped, |c| c.part.kind);
        let kept = |c: &&Contribution| {
            if family_of(c).declared {
                c.part.kind == fixed
            } else {
                matches!(fixed, T::Counter | T::Gauge | T::Untyped)
            }
        };
        self.stats.type_conflicts += group.iter().filter(|c| !kept(c)).count();

        let help = group.iter().filter(kept).find_map(|c| {
            let exposition = sources[c.source].exposition;
            let help = family_of(c).help.filter(|h| c.part.help && !h.is_empty())?;
            Some((help, exposition.format))
        });
        if let Some((help, format)) = help {
            write::help(name, help, format, out);
        }
        write::type_line(name, fixed, out);
        self.stats.families += 1;

        let mut last_source = None;
        for c in group.iter().filter(kept) {
            if last_source != Some(c.source) {
                if !self.seen.is_empty() {
                    self.seen.clear();
                }
                last_source = Some(c.source);
            }
            let source = &sources[c.source];
            let exposition = source.exposition;
            let rendered = self
                .rendered
                .get(self.rendered_ranges[c.source].clone())
                .unwrap_or_default();
            for sample in &family_of(c).samples {
                if c.part.takes & sample.suffix.bit() == 0 {
                    continue;
                }
                let labels = exposition.labels(sample);
                if !self
                    .seen
                    .insert(series_hash(sample.name, labels, source.labels))
                {
                    self.stats.duplicate_series += 1;
                    continue;
                }
                write::sample(
                    sample,
                    labels,
                    source.labels,
                    rendered,
                    exposition.format,
                    out,
                );
                self.stats.samples += 1;
            }
        }
    }
}
