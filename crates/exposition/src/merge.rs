//! Merges parsed expositions into one exposition in the negotiated output format: maps each
//! input family onto the output families it becomes, groups them by name across sources,
//! settles type conflicts and name clashes, drops duplicate series and relabels. It never
//! parses and never does I/O; the spelling of each line is left to `write`, the OpenMetrics
//! rules on values to `om_rules`.
//!
//! # Rules
//!
//! * **Order.** Families are sorted by output name (byte order). Within a family, sources come
//!   in the order given and each source's samples in input order, so histogram buckets and
//!   summary quantiles keep their order.
//! * **Type conflicts.** The type most sources declare (with a `# TYPE` line) fixes the output
//!   type, ties going to the type declared first (in source order), so that one instance
//!   declaring another type cannot drop the samples of the others; when no source declares one
//!   the family is `untyped`. A source that declares a different type has all its samples of
//!   that family dropped, counted once per source and output family in
//!   [`MergeStats::type_conflicts`]. A source without a `# TYPE` line for the
//!   family (implicitly untyped) is kept when the fixed type is gauge or untyped (or, in text
//!   output, counter), whose sample names are the family name, and dropped as a conflict
//!   otherwise.
//! * **Shadowed names (text).** A family named `foo_bucket`, `foo_sum` or `foo_count` is
//!   dropped (each source counted as a type conflict) when the output also has a histogram
//!   `foo`, and `foo_sum`/`foo_count` when it has a summary `foo`: text parsers would read
//!   those samples as part of `foo`.
//! * **Clashing names (OpenMetrics).** A family reserves its name and the sample names its type
//!   allows (counter `foo`: `foo`, `foo_total`, `foo_created`; histogram: `_bucket`, `_sum`,
//!   `_count`, `_created`; ...). Families of the types with suffixes reserve first, in name
//!   order, then the others; a family that needs a name already reserved is dropped (each source
//!   counted as a type conflict).
//! * **OpenMetrics rules.** In OpenMetrics output a source's family that breaks a rule of
//!   OpenMetrics (see `om_rules`: a negative counter, a histogram without `+Inf`, interleaved
//!   series, ...) is left out whole and counted in [`MergeStats::invalid_for_format`].
//! * **Metadata.** HELP (and in OpenMetrics UNIT, when the name ends with `_<unit>`) comes from
//!   the first kept source that has a non-empty one. A family is written only when it has
//!   samples; metadata-only families are left out.
//! * **Relabel.** A sample's own labels whose name equals an appended label name are dropped,
//!   the rest are kept in order and byte for byte (except that a backslash which starts no
//!   valid escape is doubled, as strict parsers demand, and OpenMetrics bounds spelled as
//!   infinity become `+Inf`), then the source's labels are appended, escaped.
//! * **Duplicates.** Within one source, a series whose name and kept labels (in any order) were
//!   already written (so also two series that relabelling made equal) is skipped and counted
//!   in [`MergeStats::duplicate_series`]. Series are found by a 64-bit hash and compared label
//!   by label when hashes are equal, so two distinct series are never taken for one.
//! * **Names.** A name that is not a legacy name (it was read from quotes, as Prometheus 3
//!   writes `{"my.metric","code.class"="2xx"}`) is written quoted in OpenMetrics when the
//!   caller sent `escaping=allow-utf-8`; otherwise, and always in text 0.0.4, it is escaped
//!   into a legacy name by the caller's scheme (`underscores` when it named none; `dots`,
//!   `values`). Legacy names never change. Families and series are told apart by their written
//!   names, so names escaped alike meet; a sample's label whose escaped name an earlier label
//!   of the sample already has is dropped, and an exemplar with such names is left out.
//! * **OpenMetrics to text.** Counter `foo` becomes counter `foo_total` (a bare `foo` sample
//!   stays in counter `foo`); `_created` samples of counters, histograms and summaries become
//!   gauge `<name>_created`; info `foo` becomes gauge `foo_info`; stateset becomes gauge;
//!   unknown becomes untyped; gaugehistogram `foo` becomes untyped `foo_bucket`, `foo_gcount`
//!   and `foo_gsum`. UNIT and exemplars are dropped, timestamps become integer milliseconds.
//! * **Text to OpenMetrics.** Sample names never change. Counter `foo_total` becomes counter
//!   `foo`; a counter whose name does not end in `_total` becomes `unknown` (OpenMetrics would
//!   rename its samples to keep the type); untyped becomes `unknown`; timestamps become
//!   seconds. The answer ends with `# EOF`.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::hash::BuildHasherDefault;

use super::format::{MetricType, Suffix};
use super::identity::{label_hash, name_hash, probe, same_series, Key, PassThrough};
use super::model::{Exposition, Family, Label, Labels};
use super::names::{self, Kind, Style};
use super::negotiate::{Negotiated, OutputFormat};
use super::om_rules::Checker;
use super::translate::{parts, Part};
use super::write::{self, Appended, Kept, Name, SampleName, Spelling};

use MetricType as T;

/// One input to the merge: a parsed exposition and the labels to append to each of its samples
/// (names are valid label names, values are raw UTF-8 and must be escaped by the writer).
#[derive(Debug, Clone, Copy)]
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
    /// Source families dropped because their type differs from the family's fixed type (or
    /// their name clashes with another family's).
    pub type_conflicts: usize,
    /// Samples dropped because the same source already had that series.
    pub duplicate_series: usize,
    /// Source families left out of an OpenMetrics answer because they break its rules.
    pub invalid_for_format: usize,
}

/// Merge all sources into one text-0.0.4 exposition appended to `out`; see [`merge`].
pub fn merge_text(sources: &[Source<'_>], out: &mut Vec<u8>) -> MergeStats {
    merge(sources, OutputFormat::Text, out)
}

/// Merge all sources into one exposition in `output` appended to `out`.
///
/// Families come sorted by name, each with at most one `# HELP` and one `# TYPE`, then the
/// samples of every source in the order of `sources`. The type most sources declare with a
/// `# TYPE` line (ties: the first declared) fixes the family's type; sources declaring another
/// type lose their samples of that family (counted in [`MergeStats::type_conflicts`]). Each sample's labels named like
/// one of the source's labels are replaced by it. Families are translated between the formats
/// (`foo` counter ↔ `foo_total`, `_created`, info, timestamps, ...). The complete rules are in
/// this module's source documentation (`crates/exposition/src/merge.rs`).
///
/// Names that are not legacy Prometheus names (read from quotes) are written quoted when the
/// caller negotiated OpenMetrics with `escaping=allow-utf-8`, else escaped by the scheme it
/// asked for (`underscores` by default and in text 0.0.4); see the module doc.
pub fn merge(
    sources: &[Source<'_>],
    output: impl Into<Negotiated>,
    out: &mut Vec<u8>,
) -> MergeStats {
    merge_in_parts(sources, output, out, |_| ())
}

/// [`merge`], handing `out` to `written` whenever what it holds is final (after each family, and
/// after each source's part of a family once the family has samples): `written` may drain it
/// (into a compressor, say), so that the whole answer never needs to be held. Nothing written
/// before a call is changed after it.
pub fn merge_in_parts(
    sources: &[Source<'_>],
    output: impl Into<Negotiated>,
    out: &mut Vec<u8>,
    mut written: impl FnMut(&mut Vec<u8>),
) -> MergeStats {
    let negotiated = output.into();
    let output = negotiated.format;
    let style = Style::of(negotiated);
    let escaped = escaped_family_names(sources, output, style);
    let (names, index, mut contributions) = collect(sources, output, &escaped);

    // Sort output families by name, then group contributions by family; the sort is stable,
    // so within a family contributions stay in source order.
    let mut order: Vec<usize> = (0..names.len()).collect();
    order.sort_unstable_by(|&a, &b| names[a].cmp_bytes(&names[b]));
    let mut rank = vec![0; names.len()];
    for (r, &o) in order.iter().enumerate() {
        rank[o] = r;
    }
    contributions.sort_by_key(|c| rank[c.out]);

    let appended: Vec<Appended<'_>> = sources.iter().map(|s| Appended::new(s.labels)).collect();
    let mut merger = Merger {
        sources,
        output,
        style,
        appended: &appended,
        seen: HashMap::default(),
        scratch: Vec::new(),
        renamed: Vec::new(),
        stats: MergeStats::default(),
        written: &mut written,
    };
    let groups: Vec<&[Contribution]> = contributions.chunk_by(|a, b| a.out == b.out).collect();
    let mut fixed = vec![T::Untyped; names.len()];
    for group in &groups {
        fixed[group[0].out] = fixed_type(sources, group);
    }
    let dropped = match output {
        OutputFormat::Text => groups
            .iter()
            .map(|g| is_shadowed(names[g[0].out], &index, &fixed))
            .collect(),
        OutputFormat::OpenMetrics => clashing(&groups, &names, &fixed),
    };
    for (group, dropped) in groups.into_iter().zip(dropped) {
        if dropped {
            merger.stats.type_conflicts += group.len();
            continue;
        }
        merger.family(names[group[0].out], fixed[group[0].out], group, out);
        (merger.written)(out);
    }
    if output == OutputFormat::OpenMetrics {
        write::eof(out);
    }
    merger.stats
}

/// The type of an output family: the one most of its contributions with a `# TYPE` line have,
/// the first declared on a tie; untyped when none declares one.
fn fixed_type(sources: &[Source<'_>], group: &[Contribution]) -> MetricType {
    // (type, votes) in the order the types are first declared; a family has few distinct types
    let mut votes: Vec<(MetricType, usize)> = Vec::new();
    let declared = group
        .iter()
        .filter(|c| sources[c.source].exposition.families[c.family].declared);
    for c in declared {
        match votes.iter_mut().find(|(kind, _)| *kind == c.part.kind) {
            Some((_, n)) => *n += 1,
            None => votes.push((c.part.kind, 1)),
        }
    }
    let mut winner: Option<(MetricType, usize)> = None;
    for (kind, n) in votes {
        if winner.is_none_or(|(_, most)| n > most) {
            winner = Some((kind, n));
        }
    }
    winner.map_or(T::Untyped, |(kind, _)| kind)
}

/// Whether `name` is `foo_bucket`, `foo_sum` or `foo_count` while the output also holds a
/// histogram (or, for `_sum` and `_count`, a summary) `foo`: text parsers would read its
/// samples as part of `foo`, so it cannot be written as a family of its own.
fn is_shadowed(name: Name<'_>, index: &HashMap<Key<'_>, usize>, fixed: &[MetricType]) -> bool {
    const PARTS: [(&str, bool); 3] = [("_bucket", false), ("_sum", true), ("_count", true)];
    PARTS.iter().any(|&(part, summary_too)| {
        let base = if name.suffix.is_empty() {
            name.base.strip_suffix(part)
        } else {
            (name.suffix == part).then_some(name.base)
        };
        let Some(base) = base else {
            return false;
        };
        let parent = Key(Name { base, suffix: "" });
        index
            .get(&parent)
            .is_some_and(|&i| fixed[i] == T::Histogram || (summary_too && fixed[i] == T::Summary))
    })
}

/// The sample-name suffixes an OpenMetrics family of type `kind` reserves besides its name.
fn reserved_suffixes(kind: MetricType) -> &'static [&'static str] {
    match kind {
        T::Counter => &["_total", "_created"],
        T::Histogram => &["_bucket", "_sum", "_count", "_created"],
        T::Summary => &["_sum", "_count", "_created"],
        T::GaugeHistogram => &["_bucket", "_gcount", "_gsum"],
        T::Info => &["_info"],
        T::Gauge | T::Untyped | T::StateSet => &[],
    }
}

/// For each group (in output order), whether its OpenMetrics family must be dropped because a
/// name it reserves is already reserved (see the module doc).
fn clashing(groups: &[&[Contribution]], names: &[Name<'_>], fixed: &[MetricType]) -> Vec<bool> {
    let mut reserved: HashSet<Key<'_>> = HashSet::new();
    let mut dropped = vec![false; groups.len()];
    for suffixed in [true, false] {
        for (i, group) in groups.iter().enumerate() {
            let out = group[0].out;
            let suffixes = reserved_suffixes(fixed[out]);
            if suffixes.is_empty() == suffixed {
                continue;
            }
            let name = names[out];
            let all = std::iter::once("").chain(suffixes.iter().copied());
            let keys = all.map(|suffix| {
                Key(Name {
                    base: name.base,
                    suffix,
                })
            });
            if keys.clone().any(|k| reserved.contains(&k)) {
                dropped[i] = true;
            } else {
                reserved.extend(keys);
            }
        }
    }
    dropped
}

/// One input family's part, destined for output family `out`.
struct Contribution {
    out: usize,
    source: usize,
    family: usize,
    part: &'static Part,
}

/// Output family names escaped for `style`, by (source, family, part) index: only those that
/// are not legacy names, when the style escapes.
type EscapedNames = HashMap<(usize, usize, usize), String>;

fn escaped_family_names(
    sources: &[Source<'_>],
    output: OutputFormat,
    style: Style,
) -> EscapedNames {
    let mut escaped = HashMap::new();
    for (source, s) in sources.iter().enumerate() {
        let exposition = s.exposition;
        if !exposition.utf8_names {
            continue;
        }
        for (family, f) in exposition.families.iter().enumerate() {
            for (i, part) in parts(exposition.format, f.kind, f.name, output)
                .iter()
                .enumerate()
            {
                let name = part.name(f.name);
                if let Some(written) = style.escaped(name.base, Kind::Metric) {
                    escaped.insert((source, family, i), format!("{written}{}", name.suffix));
                }
            }
        }
    }
    escaped
}

/// Every output family name (in first-seen order), the map from name to its index, and every
/// contribution (in source order).
fn collect<'a>(
    sources: &[Source<'a>],
    output: OutputFormat,
    escaped: &'a EscapedNames,
) -> (Vec<Name<'a>>, HashMap<Key<'a>, usize>, Vec<Contribution>) {
    let mut names = Vec::new();
    let mut index: HashMap<Key<'a>, usize> = HashMap::new();
    let mut contributions = Vec::new();
    for (source, s) in sources.iter().enumerate() {
        let exposition = s.exposition;
        for (family, f) in exposition.families.iter().enumerate() {
            for (i, part) in parts(exposition.format, f.kind, f.name, output)
                .iter()
                .enumerate()
            {
                if f.suffixes & part.takes == 0 {
                    continue;
                }
                let name = match escaped.get(&(source, family, i)) {
                    Some(written) => Name {
                        base: written,
                        suffix: "",
                    },
                    None => part.name(f.name),
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
    (names, index, contributions)
}

struct Merger<'s, 'a> {
    sources: &'s [Source<'a>],
    output: OutputFormat,
    /// How names that are not legacy names are written.
    style: Style,
    /// Per source, its appended labels.
    appended: &'s [Appended<'a>],
    /// The series of the current source in the current output family: from their identity to
    /// where they are, to compare on equal identities.
    seen: HashMap<u64, Series, BuildHasherDefault<PassThrough>>,
    /// Reused to re-read exemplars.
    scratch: Vec<Label<'a>>,
    /// Reused for the labels of a sample whose names are escaped.
    renamed: Vec<(String, &'a str)>,
    stats: MergeStats,
    /// Handed the output whenever what it holds is final (see [`merge_in_parts`]).
    written: &'s mut dyn FnMut(&mut Vec<u8>),
}

impl<'a> Merger<'_, 'a> {
    fn family_of(&self, c: &Contribution) -> &'a Family<'a> {
        &self.sources[c.source].exposition.families[c.family]
    }

    /// Writes one output family of type `fixed` from its contributions (all with the same
    /// `out`); writes nothing when no sample is left.
    fn family(
        &mut self,
        name: Name<'_>,
        fixed: MetricType,
        group: &[Contribution],
        out: &mut Vec<u8>,
    ) {
        let output = self.output;
        let sources = self.sources;
        let family_of = |c: &Contribution| -> &'a Family<'a> {
            &sources[c.source].exposition.families[c.family]
        };
        let kept = |c: &&Contribution| {
            if family_of(c).declared {
                c.part.kind == fixed
            } else {
                matches!(fixed, T::Gauge | T::Untyped)
                    || (fixed == T::Counter && output == OutputFormat::Text)
            }
        };
        self.stats.type_conflicts += group.iter().filter(|c| !kept(c)).count();

        let family_start = out.len();
        let metadata = |c: &Contribution, field: fn(&Family<'a>) -> Option<&'a str>| {
            let text = field(family_of(c)).filter(|t| c.part.help && !t.is_empty())?;
            Some((text, sources[c.source].exposition.format))
        };
        if let Some((help, format)) = group
            .iter()
            .filter(kept)
            .find_map(|c| metadata(c, |f| f.help))
        {
            write::help(name, help, format, output, out);
        }
        write::type_line(name, fixed, output, out);
        if output == OutputFormat::OpenMetrics && !matches!(fixed, T::Info | T::StateSet) {
            let unit = group
                .iter()
                .filter(kept)
                .find_map(|c| metadata(c, |f| f.unit));
            if let Some((unit, _)) = unit.filter(|(u, _)| name_has_unit(name, u)) {
                write::unit_line(name, unit, out);
            }
        }

        let samples_before = self.stats.samples;
        let mut checker = (output == OutputFormat::OpenMetrics).then(|| Checker::new(fixed));
        let mut last_source = None;
        for c in group.iter().filter(kept) {
            if last_source != Some(c.source) {
                if !self.seen.is_empty() {
                    self.seen.clear();
                }
                last_source = Some(c.source);
            }
            let mark = (out.len(), self.stats.samples, self.stats.duplicate_series);
            if !self.contribution(c, name, fixed, checker.as_mut(), out) {
                out.truncate(mark.0);
                self.stats.samples = mark.1;
                self.stats.duplicate_series = mark.2;
                self.stats.invalid_for_format += 1;
            }
            // Once the family has samples it is not taken back, nor is an accepted part: what
            // `out` holds is final (a family of many sources need not be held whole).
            if self.stats.samples > samples_before {
                (self.written)(out);
            }
        }
        if self.stats.samples == samples_before {
            out.truncate(family_start);
        } else {
            self.stats.families += 1;
        }
    }

    /// Writes the samples of one contribution to output family `family`; `false` when
    /// `checker` refuses them (the caller takes back what was written).
    fn contribution(
        &mut self,
        c: &Contribution,
        family: Name<'_>,
        fixed: MetricType,
        mut checker: Option<&mut Checker<'a>>,
        out: &mut Vec<u8>,
    ) -> bool {
        let exposition = self.sources[c.source].exposition;
        let appended = &self.appended[c.source];
        let style = self.style;
        // How this source's names are written: as they are unless some is not a legacy name.
        let utf8_names = exposition.utf8_names.then_some(style);
        let raw = c.part.name(self.family_of(c).name);
        let sample_name = sample_name(utf8_names, raw, family);
        let rename = matches!(utf8_names, Some(Style::Escape(_)));
        let spelling = Spelling {
            appended,
            from: exposition.format,
            to: self.output,
            utf8_names,
        };
        let exemplars = exposition.format == super::InputFormat::OpenMetrics
            && self.output == OutputFormat::OpenMetrics;
        if let Some(checker) = checker.as_deref_mut() {
            // OpenMetrics names have no suffix part (see `translate`).
            checker.reset(raw.base);
            checker.set_openmetrics_timestamps(exemplars);
        }
        // Sample names within one input family are its name plus the suffix.
        let mut name_hashes = [None; Suffix::ALL.len() + 1];
        let mut renamed = std::mem::take(&mut self.renamed);
        for (index, sample) in self.family_of(c).samples.iter().enumerate() {
            if c.part.takes & sample.suffix.bit() == 0 {
                continue;
            }
            let labels = exposition.labels(sample);
            let group_label = checker.as_deref_mut().and_then(|ch| ch.group_label(sample));
            if rename {
                renamed_labels(labels, appended, style, &mut renamed);
            }
            let renamed_labels = rename.then_some(renamed.as_slice());
            let (kept, grouped, replaced) =
                kept_label_hashes(labels, renamed_labels, appended, group_label);
            // All names in the output family start with its name, so the rest of the sample
            // name tells them apart.
            let name = *name_hashes[sample.suffix as usize]
                .get_or_insert_with(|| name_hash(sample.name.get(raw.len()..).unwrap_or_default()));
            let renaming = rename.then_some(style);
            let same = |a, b| same_series_in(exposition, appended, renaming, a, b);
            let at = Series {
                family: c.family,
                sample: index,
                family_name_len: raw.len(),
            };
            if !self.first_time(name.wrapping_add(kept), at, same) {
                self.stats.duplicate_series += 1;
                continue;
            }
            if let Some(checker) = checker.as_deref_mut() {
                if !checker.sample(sample, labels, grouped) {
                    self.renamed = renamed;
                    return false;
                }
            }
            let exemplar = exemplars && exemplar_allowed(fixed, sample.name);
            let kept = if rename {
                Kept::Renamed(&renamed)
            } else {
                Kept::Own { labels, replaced }
            };
            spelling.sample(
                sample,
                sample_name,
                kept,
                exposition.head(sample),
                exemplar,
                &mut self.scratch,
                out,
            );
            self.stats.samples += 1;
        }
        self.renamed = renamed;
        checker.is_none_or(|checker| checker.finish())
    }

    /// Records series `at` under its identity `hash`; false when `same` finds that the series
    /// recorded there is the same. Two
    /// different series with the same identity are both kept: the second moves on to another
    /// slot.
    fn first_time(
        &mut self,
        mut hash: u64,
        at: Series,
        same: impl Fn(Series, Series) -> bool,
    ) -> bool {
        loop {
            match self.seen.entry(hash) {
                Entry::Vacant(slot) => {
                    slot.insert(at);
                    return true;
                }
                Entry::Occupied(slot) => {
                    if same(*slot.get(), at) {
                        return false;
                    }
                    hash = probe(hash);
                }
            }
        }
    }
}

/// Where a series of the current source is: its family and sample index in the exposition, and
/// how long its name's part is that names the output family (the rest of the name tells the
/// series of the output family apart).
#[derive(Debug, Clone, Copy)]
struct Series {
    family: usize,
    sample: usize,
    family_name_len: usize,
}

/// How the samples of a source family whose raw name is `raw` are named in output family
/// `family`, given how the source's names that are not legacy names are written.
fn sample_name<'n>(utf8_names: Option<Style>, raw: Name<'_>, family: Name<'n>) -> SampleName<'n> {
    match utf8_names {
        Some(_) if names::is_legacy(raw.base, Kind::Metric) => SampleName::AsIs,
        Some(Style::Quote) => SampleName::Quoted,
        // Escaped names have no suffix part (see `escaped_family_names`).
        Some(Style::Escape(_)) => SampleName::Escaped {
            family: family.base,
            raw_len: raw.len(),
        },
        None => SampleName::AsIs,
    }
}

/// The identity of a sample's kept labels (`renamed` when its names are escaped, else its own
/// `labels` less those an appended label replaces): the sum of their hashes, the same sum
/// without the group label (`le`, `quantile`), and whether an appended label replaced one of
/// its own.
#[inline]
fn kept_label_hashes(
    labels: Labels<'_, '_>,
    renamed: Option<&[(String, &str)]>,
    appended: &Appended<'_>,
    group_label: Option<&str>,
) -> (u64, u64, bool) {
    let (mut kept, mut grouped, mut replaced) = (0u64, 0u64, false);
    let mut add = |name: &str, raw_value: &str| {
        let h = label_hash(name, raw_value);
        kept = kept.wrapping_add(h);
        if group_label != Some(name) {
            grouped = grouped.wrapping_add(h);
        }
    };
    match renamed {
        // The group label is a legacy name, never renamed.
        Some(renamed) => renamed.iter().for_each(|(name, value)| add(name, value)),
        None => {
            for label in labels.iter() {
                if appended.replaces(label.name) {
                    replaced = true;
                } else {
                    add(label.name, label.raw_value);
                }
            }
        }
    }
    (kept, grouped, replaced)
}

/// Whether series `a` and `b` of `exposition` are the same once the appended labels replace
/// theirs and, with `renaming`, their label names are escaped as the output writes them.
fn same_series_in(
    exposition: &Exposition<'_>,
    appended: &Appended<'_>,
    renaming: Option<Style>,
    a: Series,
    b: Series,
) -> bool {
    let series = |at: Series| {
        let sample = &exposition.families[at.family].samples[at.sample];
        let rest = sample.name.get(at.family_name_len..).unwrap_or_default();
        (rest, exposition.labels(sample))
    };
    let (a, b) = (series(a), series(b));
    let Some(style) = renaming else {
        return same_series(a, b, |n| appended.replaces(n));
    };
    let (mut ra, mut rb) = (Vec::new(), Vec::new());
    renamed_labels(a.1, appended, style, &mut ra);
    renamed_labels(b.1, appended, style, &mut rb);
    a.0 == b.0 && ra.len() == rb.len() && ra.iter().all(|l| rb.contains(l))
}

/// The own labels of a sample with their names escaped by `style`, in order, leaving out those
/// an appended label replaces and those whose escaped name an earlier one already has.
fn renamed_labels<'a>(
    labels: Labels<'_, 'a>,
    appended: &Appended<'_>,
    style: Style,
    into: &mut Vec<(String, &'a str)>,
) {
    into.clear();
    for label in labels.iter() {
        let name = style
            .escaped(label.name, Kind::Label)
            .unwrap_or_else(|| label.name.to_owned());
        if !appended.replaces(&name) && into.iter().all(|(n, _)| *n != name) {
            into.push((name, label.raw_value));
        }
    }
}

/// Whether an OpenMetrics family `name` may carry `# UNIT unit`: its name must end in `_unit`.
fn name_has_unit(name: Name<'_>, unit: &str) -> bool {
    name.suffix.is_empty()
        && name
            .base
            .strip_suffix(unit)
            .is_some_and(|rest| rest.ends_with('_'))
}

/// OpenMetrics allows exemplars on counter totals and histogram buckets only.
fn exemplar_allowed(kind: MetricType, sample_name: &str) -> bool {
    match kind {
        T::Counter => sample_name.ends_with("_total"),
        T::Histogram | T::GaugeHistogram => sample_name.ends_with("_bucket"),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{parse, InputFormat};

    type Input<'a> = (InputFormat, &'a str, &'a [(&'a str, &'a str)]);

    /// Parses each input, merges them in order into `output` and returns the output and the
    /// counts. Whatever is written must read back in its format.
    fn merged_as(inputs: &[Input<'_>], output: impl Into<Negotiated>) -> (String, MergeStats) {
        let output = output.into();
        let parsed: Vec<Exposition<'_>> = inputs
            .iter()
            .map(|(format, body, _)| match parse(body.as_bytes(), *format) {
                Ok(e) => e,
                Err(err) => panic!("{body:?}: {err}"),
            })
            .collect();
        let sources: Vec<Source<'_>> = parsed
            .iter()
            .zip(inputs)
            .map(|(exposition, (_, _, labels))| Source { exposition, labels })
            .collect();
        let mut out = b"kept: ".to_vec();
        let stats = merge(&sources, output, &mut out);
        let out = String::from_utf8(out).unwrap();
        let out = out.strip_prefix("kept: ").unwrap().to_owned();
        // Taken away after every family, the parts add up to the same answer.
        let (mut parts, mut rest) = (Vec::new(), Vec::new());
        let part_stats = merge_in_parts(&sources, output, &mut rest, |written| {
            parts.append(written);
        });
        parts.append(&mut rest);
        assert_eq!(String::from_utf8(parts).unwrap(), out, "merged in parts");
        assert_eq!(part_stats, stats, "merged in parts");
        if let Err(err) = parse(out.as_bytes(), output.format.syntax()) {
            panic!("output does not parse back ({err}):\n{out}");
        }
        (out, stats)
    }

    fn merged(inputs: &[Input<'_>]) -> (String, MergeStats) {
        merged_as(inputs, OutputFormat::Text)
    }

    fn merged_om(inputs: &[Input<'_>]) -> (String, MergeStats) {
        merged_as(inputs, OutputFormat::OpenMetrics)
    }

    fn text(body: &str) -> Input<'_> {
        (InputFormat::Text, body, &[])
    }

    fn stats(families: usize, samples: usize, conflicts: usize, duplicates: usize) -> MergeStats {
        MergeStats {
            families,
            samples,
            type_conflicts: conflicts,
            duplicate_series: duplicates,
            invalid_for_format: 0,
        }
    }

    #[test]
    fn appends_to_out_and_writes_text_constructs() {
        let body = "\
# HELP http_requests_total Requests \\\\ served.\\nPer code.
# TYPE http_requests_total counter
http_requests_total{code=\"200\"} 1027 1395066363000
http_requests_total{code=\"400\"} 3 1395066363000
# TYPE temp gauge
temp -3.5e2
# TYPE rpc summary
rpc{quantile=\"0.5\"} nan
rpc{quantile=\"0.9\"} 2
rpc_sum 17
rpc_count 9
up 1
odd Inf
";
        let want = "\
# HELP http_requests_total Requests \\\\ served.\\nPer code.
# TYPE http_requests_total counter
http_requests_total{code=\"200\"} 1027 1395066363000
http_requests_total{code=\"400\"} 3 1395066363000
# TYPE odd untyped
odd +Inf
# TYPE rpc summary
rpc{quantile=\"0.5\"} NaN
rpc{quantile=\"0.9\"} 2
rpc_sum 17
rpc_count 9
# TYPE temp gauge
temp -3.5e2
# TYPE up untyped
up 1
";
        let (out, st) = merged(&[text(body)]);
        assert_eq!(out, want);
        assert_eq!(st, stats(5, 9, 0, 0));
    }

    #[test]
    fn nothing_in_nothing_out() {
        assert_eq!(merged(&[]), (String::new(), MergeStats::default()));
        let (out, st) = merged(&[text("# HELP a x\n# TYPE a gauge\n"), text("")]);
        assert_eq!(out, "", "a family without samples is left out");
        assert_eq!(st, MergeStats::default());
    }

    #[test]
    fn relabel_drops_colliding_labels_and_escapes_ours() {
        let labels: &[(&str, &str)] = &[
            ("app_name", "my \"app\""),
            ("space_name", "back\\slash"),
            ("instance", "line\nbreak"),
        ];
        let body = "\
m{instance=\"x\",path=\"/a\\\"b\",app_name=\"theirs\"} 1
n 2
";
        let (out, _) = merged(&[(InputFormat::Text, body, labels)]);
        assert_eq!(
            out,
            "\
# TYPE m untyped
m{path=\"/a\\\"b\",app_name=\"my \\\"app\\\"\",space_name=\"back\\\\slash\",instance=\"line\\nbreak\"} 1
# TYPE n untyped
n{app_name=\"my \\\"app\\\"\",space_name=\"back\\\\slash\",instance=\"line\\nbreak\"} 2
"
        );
    }

    #[test]
    fn backslashes_that_are_not_escapes_are_written_as_literal_backslashes() {
        // Prometheus reads `\t` as a backslash and a `t`; promtool rejects it, so it is
        // written `\\t`, in label values and HELP alike.
        let body =
            "# HELP m C:\\dir and \\t\n# TYPE m gauge\nm{path=\"C:\\temp\",ok=\"a\\\\b\"} 1\n";
        let (out, _) = merged(&[text(body)]);
        assert_eq!(
            out,
            "# HELP m C:\\\\dir and \\\\t\n# TYPE m gauge\nm{path=\"C:\\\\temp\",ok=\"a\\\\b\"} 1\n"
        );
    }

    #[test]
    fn no_labels_means_no_braces_even_when_all_own_labels_are_replaced() {
        let (out, _) = merged(&[text("a 1\nb{} 2\n")]);
        assert_eq!(out, "# TYPE a untyped\na 1\n# TYPE b untyped\nb 2\n");
        let ours: &[(&str, &str)] = &[("instance", "0")];
        let (out, _) = merged(&[(InputFormat::Text, "a{instance=\"x\"} 1\n", ours)]);
        assert_eq!(out, "# TYPE a untyped\na{instance=\"0\"} 1\n");
    }

    #[test]
    fn two_sources_sorted_families_sources_in_given_order() {
        let zero: &[(&str, &str)] = &[("index", "0")];
        let one: &[(&str, &str)] = &[("index", "1")];
        let a = "# TYPE zeta gauge\nzeta 1\n# TYPE alpha counter\nalpha 2\n";
        let b =
            "# TYPE alpha counter\nalpha 3\n# TYPE beta gauge\nbeta 4\n# TYPE zeta gauge\nzeta 5\n";
        // Source `b` comes first: its samples lead in every family they share.
        let want = "\
# TYPE alpha counter
alpha{index=\"0\"} 3
alpha{index=\"1\"} 2
# TYPE beta gauge
beta{index=\"0\"} 4
# TYPE zeta gauge
zeta{index=\"0\"} 5
zeta{index=\"1\"} 1
";
        let (out, st) = merged(&[(InputFormat::Text, b, zero), (InputFormat::Text, a, one)]);
        assert_eq!(out, want);
        assert_eq!(st, stats(3, 5, 0, 0));
    }

    #[test]
    fn histogram_buckets_keep_their_order_per_source() {
        let a: &[(&str, &str)] = &[("index", "0")];
        let b: &[(&str, &str)] = &[("index", "1")];
        let body = "\
# TYPE h histogram
h_bucket{le=\"0.5\"} 1
h_bucket{le=\"10\"} 2
h_bucket{le=\"+Inf\"} 3
h_sum 9
h_count 3
";
        let (out, _) = merged(&[(InputFormat::Text, body, a), (InputFormat::Text, body, b)]);
        assert_eq!(
            out,
            "\
# TYPE h histogram
h_bucket{le=\"0.5\",index=\"0\"} 1
h_bucket{le=\"10\",index=\"0\"} 2
h_bucket{le=\"+Inf\",index=\"0\"} 3
h_sum{index=\"0\"} 9
h_count{index=\"0\"} 3
h_bucket{le=\"0.5\",index=\"1\"} 1
h_bucket{le=\"10\",index=\"1\"} 2
h_bucket{le=\"+Inf\",index=\"1\"} 3
h_sum{index=\"1\"} 9
h_count{index=\"1\"} 3
"
        );
    }

    #[test]
    fn first_declaring_source_fixes_the_type() {
        let s = |i: &'static str| -> &'static [(&'static str, &'static str)] {
            match i {
                "0" => &[("i", "0")],
                "1" => &[("i", "1")],
                "2" => &[("i", "2")],
                _ => &[("i", "3")],
            }
        };
        // Source 0 has no TYPE (implicitly untyped), source 1 declares gauge first, source 2
        // declares counter and is dropped, source 3 has no TYPE and fits a gauge.
        let (out, st) = merged(&[
            (InputFormat::Text, "x 0\n", s("0")),
            (InputFormat::Text, "# TYPE x gauge\nx 1\n", s("1")),
            (
                InputFormat::Text,
                "# HELP x from two\n# TYPE x counter\nx 2\n",
                s("2"),
            ),
            (InputFormat::Text, "x 3\n", s("3")),
        ]);
        assert_eq!(
            out, "# TYPE x gauge\nx{i=\"0\"} 0\nx{i=\"1\"} 1\nx{i=\"3\"} 3\n",
            "the conflicting source's HELP is not used either"
        );
        assert_eq!(st, stats(1, 3, 1, 0));
    }

    #[test]
    fn the_type_most_sources_declare_wins_and_ties_go_to_the_first() {
        let gauge = "# TYPE x gauge\nx 0\n";
        let labels: [&[(&str, &str)]; 3] = [&[("i", "0")], &[("i", "1")], &[("i", "2")]];
        let [zero, one, two] = labels;
        // One source declaring gauge first cannot drop the two that declare counter.
        let (out, st) = merged(&[
            (InputFormat::Text, gauge, zero),
            (InputFormat::Text, "# TYPE x counter\nx 1\n", one),
            (InputFormat::Text, "# TYPE x counter\nx 2\n", two),
        ]);
        assert_eq!(out, "# TYPE x counter\nx{i=\"1\"} 1\nx{i=\"2\"} 2\n");
        assert_eq!(st, stats(1, 2, 1, 0));
        // One against one: the first declared wins.
        let (out, st) = merged(&[
            (InputFormat::Text, gauge, zero),
            (InputFormat::Text, "# TYPE x counter\nx 1\n", one),
        ]);
        assert_eq!(out, "# TYPE x gauge\nx{i=\"0\"} 0\n");
        assert_eq!(st, stats(1, 1, 1, 0));
    }

    #[test]
    fn untyped_samples_do_not_join_a_histogram() {
        let (out, st) = merged(&[
            text("# TYPE h summary\nh{quantile=\"1\"} 1\nh_sum 1\nh_count 1\n"),
            text("# TYPE h untyped\nh 5\n"),
            text("h 6\n"),
        ]);
        assert_eq!(
            out,
            "# TYPE h summary\nh{quantile=\"1\"} 1\nh_sum 1\nh_count 1\n"
        );
        assert_eq!(st, stats(1, 3, 2, 0));
    }

    #[test]
    fn families_named_like_histogram_parts_give_way_to_the_histogram() {
        let hist = "# TYPE foo histogram\nfoo_bucket{le=\"+Inf\"} 1\nfoo_sum 2\nfoo_count 1\n";
        let (out, st) = merged(&[
            text("# TYPE foo_sum gauge\nfoo_sum 5\nfoo_count 6\nfoo_bucket 7\n"),
            text(hist),
        ]);
        assert_eq!(
            out,
            "# TYPE foo histogram\nfoo_bucket{le=\"+Inf\"} 1\nfoo_sum 2\nfoo_count 1\n"
        );
        assert_eq!(st, stats(1, 3, 3, 0));

        // A summary has no buckets, so `foo_bucket` stays a family of its own.
        let summary = "# TYPE foo summary\nfoo_sum 2\nfoo_count 1\n";
        let (out, st) = merged(&[text("foo_bucket 7\nfoo_count 6\n"), text(summary)]);
        assert_eq!(
            out,
            "# TYPE foo summary\nfoo_sum 2\nfoo_count 1\n# TYPE foo_bucket untyped\nfoo_bucket 7\n"
        );
        assert_eq!(st.type_conflicts, 1);

        // An OpenMetrics gaugehistogram's buckets clash with a histogram of the same name.
        let om = "# TYPE foo gaugehistogram\nfoo_bucket{le=\"+Inf\"} 1\nfoo_gcount 1\nfoo_gsum 3\n# EOF\n";
        let (out, st) = merged(&[text(hist), (InputFormat::OpenMetrics, om, &[])]);
        assert!(!out.contains("# TYPE foo_bucket"), "{out}");
        assert!(
            out.contains("# TYPE foo_gcount untyped\nfoo_gcount 1\n"),
            "{out}"
        );
        assert_eq!(st.type_conflicts, 1);
    }

    #[test]
    fn help_comes_from_the_first_source_that_has_it() {
        let (out, _) = merged(&[
            text("# TYPE g gauge\ng 1\n"),
            text("# HELP g\n# TYPE g gauge\ng 2\n"),
            text("# HELP g Second.\n# TYPE g gauge\ng 3\n"),
            text("# HELP g Third.\n# TYPE g gauge\ng 4\n"),
        ]);
        assert!(
            out.starts_with("# HELP g Second.\n# TYPE g gauge\n"),
            "{out}"
        );
        assert_eq!(out.matches("# HELP").count(), 1);
    }

    #[test]
    fn duplicate_series_within_a_source_are_written_once() {
        let body = "\
m{a=\"1\",b=\"2\"} 1
m{a=\"1\",b=\"2\"} 2
m{b=\"2\",a=\"1\"} 3
m{a=\"1\"} 4
m{a=\"1\",b=\"3\"} 5
";
        let (out, st) = merged(&[text(body), text(body)]);
        let one = "m{a=\"1\",b=\"2\"} 1\nm{a=\"1\"} 4\nm{a=\"1\",b=\"3\"} 5\n";
        assert_eq!(out, format!("# TYPE m untyped\n{one}{one}"));
        assert_eq!(st, stats(1, 6, 0, 4));
    }

    #[test]
    fn different_series_with_equal_identities_are_both_kept() {
        let body = "m{a=\"1\"} 1\nm{a=\"2\"} 2\nm{a=\"2\"} 3\n";
        let exposition = parse(body.as_bytes(), InputFormat::Text).unwrap();
        let sources = [Source {
            exposition: &exposition,
            labels: &[],
        }];
        let appended = [Appended::new(&[])];
        let mut keep = |_: &mut Vec<u8>| ();
        let mut merger = Merger {
            sources: &sources,
            output: OutputFormat::Text,
            style: Style::Quote,
            appended: &appended,
            seen: HashMap::default(),
            scratch: Vec::new(),
            renamed: Vec::new(),
            stats: MergeStats::default(),
            written: &mut keep,
        };
        let same = |a: Series, b: Series| {
            let series = |at: Series| {
                let sample = &exposition.families[at.family].samples[at.sample];
                (sample.name, exposition.labels(sample))
            };
            same_series(series(a), series(b), |_| false)
        };
        let at = |sample| Series {
            family: 0,
            sample,
            family_name_len: 1,
        };
        // The second series arrives with the identity the first one already holds.
        let collision = 42;
        assert!(merger.first_time(collision, at(0), same));
        assert!(merger.first_time(collision, at(1), same));
        assert!(!merger.first_time(collision, at(2), same));
        assert!(!merger.first_time(collision, at(0), same));
    }

    #[test]
    fn labels_written_with_spaces_or_a_trailing_comma_come_out_plain() {
        let ours: &[(&str, &str)] = &[("app_name", "x")];
        let body = "m { a = \"1\" , }  1\nm{a=\"2\",} 2\nm {a=\"3\"} 3\nm{a=\"4\"} 4\n";
        let (out, _) = merged(&[(InputFormat::Text, body, ours)]);
        assert_eq!(
            out,
            "# TYPE m untyped\n\
             m{a=\"1\",app_name=\"x\"} 1\n\
             m{a=\"2\",app_name=\"x\"} 2\n\
             m{a=\"3\",app_name=\"x\"} 3\n\
             m{a=\"4\",app_name=\"x\"} 4\n"
        );
    }

    #[test]
    fn utf8_names_are_quoted_or_escaped_as_the_caller_negotiated() {
        use super::super::Escaping;
        let ours: &[(&str, &str)] = &[("instance", "10.0.0.1:8080")];
        let body = "\
# HELP \"my.metric\" Seconds.
# TYPE \"my.metric\" histogram
{\"my.metric_bucket\",\"code.class\"=\"2xx\",le=\"1\"} 3
{\"my.metric_bucket\",\"code.class\"=\"2xx\",le=\"+Inf\"} 4
{\"my.metric_sum\",\"code.class\"=\"2xx\"} 1.5
{\"my.metric_count\",\"code.class\"=\"2xx\"} 4
# TYPE \"req.done_total\" counter
{\"req.done_total\"} 7
plain{\"a.b\"=\"x\",a_b=\"y\",\"instance\"=\"theirs\"} 1
";
        let input = [(InputFormat::Text, body, ours)];
        let om = |escaping| Negotiated {
            format: OutputFormat::OpenMetrics,
            escaping: Some(escaping),
        };
        // Text 0.0.4 has no quoted names: `underscores`, as for OpenMetrics without a choice.
        let cases: [(Negotiated, &str); 4] = [
            (
                om(Escaping::AllowUtf8),
                "\
# HELP \"my.metric\" Seconds.
# TYPE \"my.metric\" histogram
{\"my.metric_bucket\",\"code.class\"=\"2xx\",le=\"1\",instance=\"10.0.0.1:8080\"} 3
{\"my.metric_bucket\",\"code.class\"=\"2xx\",le=\"+Inf\",instance=\"10.0.0.1:8080\"} 4
{\"my.metric_sum\",\"code.class\"=\"2xx\",instance=\"10.0.0.1:8080\"} 1.5
{\"my.metric_count\",\"code.class\"=\"2xx\",instance=\"10.0.0.1:8080\"} 4
# TYPE plain unknown
plain{\"a.b\"=\"x\",a_b=\"y\",instance=\"10.0.0.1:8080\"} 1
# TYPE \"req.done\" counter
{\"req.done_total\",instance=\"10.0.0.1:8080\"} 7
# EOF
",
            ),
            (
                Negotiated::TEXT,
                "\
# HELP my_metric Seconds.
# TYPE my_metric histogram
my_metric_bucket{code_class=\"2xx\",le=\"1\",instance=\"10.0.0.1:8080\"} 3
my_metric_bucket{code_class=\"2xx\",le=\"+Inf\",instance=\"10.0.0.1:8080\"} 4
my_metric_sum{code_class=\"2xx\",instance=\"10.0.0.1:8080\"} 1.5
my_metric_count{code_class=\"2xx\",instance=\"10.0.0.1:8080\"} 4
# TYPE plain untyped
plain{a_b=\"x\",instance=\"10.0.0.1:8080\"} 1
# TYPE req_done_total counter
req_done_total{instance=\"10.0.0.1:8080\"} 7
",
            ),
            (
                om(Escaping::Dots),
                "\
# HELP my_dot_metric Seconds.
# TYPE my_dot_metric histogram
my_dot_metric_bucket{code_dot_class=\"2xx\",le=\"1\",instance=\"10.0.0.1:8080\"} 3
my_dot_metric_bucket{code_dot_class=\"2xx\",le=\"+Inf\",instance=\"10.0.0.1:8080\"} 4
my_dot_metric_sum{code_dot_class=\"2xx\",instance=\"10.0.0.1:8080\"} 1.5
my_dot_metric_count{code_dot_class=\"2xx\",instance=\"10.0.0.1:8080\"} 4
# TYPE plain unknown
plain{a_dot_b=\"x\",a_b=\"y\",instance=\"10.0.0.1:8080\"} 1
# TYPE req_dot_done counter
req_dot_done_total{instance=\"10.0.0.1:8080\"} 7
# EOF
",
            ),
            (
                om(Escaping::Values),
                "\
# HELP U__my_2e_metric Seconds.
# TYPE U__my_2e_metric histogram
U__my_2e_metric_bucket{U__code_2e_class=\"2xx\",le=\"1\",instance=\"10.0.0.1:8080\"} 3
U__my_2e_metric_bucket{U__code_2e_class=\"2xx\",le=\"+Inf\",instance=\"10.0.0.1:8080\"} 4
U__my_2e_metric_sum{U__code_2e_class=\"2xx\",instance=\"10.0.0.1:8080\"} 1.5
U__my_2e_metric_count{U__code_2e_class=\"2xx\",instance=\"10.0.0.1:8080\"} 4
# TYPE U__req_2e_done counter
U__req_2e_done_total{instance=\"10.0.0.1:8080\"} 7
# TYPE plain unknown
plain{U__a_2e_b=\"x\",a_b=\"y\",instance=\"10.0.0.1:8080\"} 1
# EOF
",
            ),
        ];
        for (negotiated, want) in cases {
            assert_eq!(merged_as(&input, negotiated).0, want, "{negotiated:?}");
        }
        let (default, _) = merged_as(&input, OutputFormat::OpenMetrics);
        assert!(
            default.contains("\nmy_metric_bucket{code_class=\"2xx\",le=\"1\","),
            "{default}"
        );
        assert!(
            !default.contains("{\"") && !default.contains("E \""),
            "{default}"
        );
    }

    #[test]
    fn exemplars_with_utf8_label_names_are_quoted_or_left_out() {
        use super::super::Escaping;
        let body = "# TYPE c counter\nc_total 1 # {\"trace.id\"=\"abc\"} 1\n# EOF\n";
        let input = [(InputFormat::OpenMetrics, body, &[][..])];
        let quoted = Negotiated {
            format: OutputFormat::OpenMetrics,
            escaping: Some(Escaping::AllowUtf8),
        };
        let (out, _) = merged_as(&input, quoted);
        assert!(
            out.contains("c_total 1 # {\"trace.id\"=\"abc\"} 1\n"),
            "{out}"
        );
        let (out, _) = merged_as(&input, OutputFormat::OpenMetrics);
        assert!(out.contains("\nc_total 1\n"), "{out}");
    }

    #[test]
    fn names_escaped_alike_make_one_family_and_one_series() {
        let a = "{\"a.b\",\"x.y\"=\"1\"} 1\n";
        let b = "a_b{x_y=\"1\"} 2\na_b{x_y=\"2\"} 3\n";
        let (out, st) = merged(&[text(a), text(b)]);
        assert_eq!(
            out,
            "# TYPE a_b untyped\na_b{x_y=\"1\"} 1\na_b{x_y=\"1\"} 2\na_b{x_y=\"2\"} 3\n"
        );
        assert_eq!(st.duplicate_series, 0);
        let both = "{\"a.b\",\"x.y\"=\"1\"} 1\na_b{x_y=\"1\"} 2\n";
        let (out, st) = merged(&[text(both)]);
        assert_eq!(out, "# TYPE a_b untyped\na_b{x_y=\"1\"} 1\n");
        assert_eq!(st.duplicate_series, 1);
    }

    #[test]
    fn series_made_equal_by_relabelling_are_duplicates() {
        let ours: &[(&str, &str)] = &[("instance", "10.0.0.1:8080")];
        let body = "m{instance=\"a\"} 1\nm{instance=\"b\"} 2\n";
        let (out, st) = merged(&[(InputFormat::Text, body, ours)]);
        assert_eq!(out, "# TYPE m untyped\nm{instance=\"10.0.0.1:8080\"} 1\n");
        assert_eq!(st.duplicate_series, 1);
    }

    #[test]
    fn openmetrics_counter_created_and_timestamps() {
        let body = "\
# TYPE req counter
# UNIT req requests
# HELP req Say \\\"hi\\\" \\\\ \\n.
req_total{code=\"200\"} 3 1520879607.789 # {trace_id=\"abc\"} 1.0 1520879607.5
req_created{code=\"200\"} 1520000000.5
# EOF
";
        let (out, st) = merged(&[(InputFormat::OpenMetrics, body, &[])]);
        assert_eq!(
            out,
            "\
# TYPE req_created gauge
req_created{code=\"200\"} 1520000000.5
# HELP req_total Say \"hi\" \\\\ \\n.
# TYPE req_total counter
req_total{code=\"200\"} 3 1520879607789
"
        );
        assert_eq!(st, stats(2, 2, 0, 0));
    }

    #[test]
    fn openmetrics_other_types_become_text_types() {
        let body = "\
# TYPE build info
# HELP build Build facts.
build_info{version=\"1.2\"} 1
# TYPE mode stateset
mode{mode=\"a\"} 1
mode{mode=\"b\"} 0
# TYPE misc unknown
misc 4
# TYPE q gaugehistogram
q_bucket{le=\"1\"} 1
q_bucket{le=\"+Inf\"} 2
q_gcount 2
q_gsum 1.5
# TYPE lat histogram
lat_bucket{le=\"+Inf\"} 2
lat_count 2
lat_sum 0.25
lat_created 1700000000
# TYPE s summary
s{quantile=\"0.5\"} 0.1
s_sum 1
s_count 3
s_created 1700000001
# EOF
";
        let want = "\
# HELP build_info Build facts.
# TYPE build_info gauge
build_info{version=\"1.2\"} 1
# TYPE lat histogram
lat_bucket{le=\"+Inf\"} 2
lat_count 2
lat_sum 0.25
# TYPE lat_created gauge
lat_created 1700000000
# TYPE misc untyped
misc 4
# TYPE mode gauge
mode{mode=\"a\"} 1
mode{mode=\"b\"} 0
# TYPE q_bucket untyped
q_bucket{le=\"1\"} 1
q_bucket{le=\"+Inf\"} 2
# TYPE q_gcount untyped
q_gcount 2
# TYPE q_gsum untyped
q_gsum 1.5
# TYPE s summary
s{quantile=\"0.5\"} 0.1
s_sum 1
s_count 3
# TYPE s_created gauge
s_created 1700000001
";
        let (out, st) = merged(&[(InputFormat::OpenMetrics, body, &[])]);
        assert_eq!(out, want);
        assert_eq!(st, stats(10, 16, 0, 0));
    }

    #[test]
    fn text_and_openmetrics_counters_merge_into_one_family() {
        let a: &[(&str, &str)] = &[("index", "0")];
        let b: &[(&str, &str)] = &[("index", "1")];
        let om = "# TYPE jobs counter\n# HELP jobs Jobs done.\njobs_total 5 # {a=\"b\"} 1\n# EOF\n";
        let txt = "# HELP jobs_total Other help.\n# TYPE jobs_total counter\njobs_total 7\n";
        let inputs = [
            (InputFormat::OpenMetrics, om, a),
            (InputFormat::Text, txt, b),
        ];
        let samples = "jobs_total{index=\"0\"} 5 # {a=\"b\"} 1\njobs_total{index=\"1\"} 7\n";
        let cases = [
            (
                OutputFormat::Text,
                "# HELP jobs_total Jobs done.\n# TYPE jobs_total counter\n",
                "",
            ),
            (
                OutputFormat::OpenMetrics,
                "# HELP jobs Jobs done.\n# TYPE jobs counter\n",
                "# EOF\n",
            ),
        ];
        for (output, head, tail) in cases {
            let samples = match output {
                OutputFormat::Text => samples.replace(" # {a=\"b\"} 1", ""),
                OutputFormat::OpenMetrics => samples.to_owned(),
            };
            let (out, st) = merged_as(&inputs, output);
            assert_eq!(out, format!("{head}{samples}{tail}"), "{output:?}");
            assert_eq!(st, stats(1, 2, 0, 0));
        }
    }

    #[test]
    fn openmetrics_and_text_types_conflict_on_the_output_name() {
        let om = "# TYPE c_total gauge\nc_total 1\n# EOF\n";
        let txt = "# TYPE c_total counter\nc_total 2\n";
        let (out, st) = merged(&[text(txt), (InputFormat::OpenMetrics, om, &[])]);
        assert_eq!(out, "# TYPE c_total counter\nc_total 2\n");
        assert_eq!(st.type_conflicts, 1);

        // An OpenMetrics gauge `c` cannot own `c_total`: that sample is an undeclared family of
        // its own, which fits the text counter.
        let om = "# TYPE c gauge\nc_total 1\n# EOF\n";
        let (out, st) = merged(&[text(txt), (InputFormat::OpenMetrics, om, &[])]);
        assert_eq!(out, "# TYPE c_total counter\nc_total 2\nc_total 1\n");
        assert_eq!(st.type_conflicts, 0);
    }

    #[test]
    fn text_becomes_openmetrics() {
        let body = "\
# HELP http_requests_total Requests \\\\ \"served\".\\nPer code.
# TYPE http_requests_total counter
http_requests_total{code=\"200\"} 1027 1395066363000
# TYPE legacy counter
legacy 3
# TYPE temp gauge
temp -3.5e2 -5
# TYPE h histogram
h_bucket{le=\"0.5\"} 1
h_bucket{le=\"inf\"} 3
h_sum 9
h_count 3
up 1
";
        let want = "\
# TYPE h histogram
h_bucket{le=\"0.5\"} 1
h_bucket{le=\"+Inf\"} 3
h_sum 9
h_count 3
# HELP http_requests Requests \\\\ \\\"served\\\".\\nPer code.
# TYPE http_requests counter
http_requests_total{code=\"200\"} 1027 1395066363
# TYPE legacy unknown
legacy 3
# TYPE temp gauge
temp -3.5e2 -0.005
# TYPE up unknown
up 1
# EOF
";
        let (out, st) = merged_om(&[text(body)]);
        assert_eq!(out, want);
        assert_eq!(st, stats(5, 8, 0, 0));
    }

    #[test]
    fn openmetrics_stays_openmetrics() {
        let body = "\
# TYPE req counter
# UNIT req requests
# HELP req Say \\\"hi\\\".
req_total{code=\"200\"} 3 1520879607.789 # {trace_id=\"abc\"}  1.0   1520879607.5
req_created{code=\"200\"} 1520000000.5 1520879607.789
# TYPE lat_seconds histogram
# UNIT lat_seconds seconds
lat_seconds_bucket{le=\"+Inf\"} 2 # {trace_id=\"x\"} 0.5
lat_seconds_count 2
lat_seconds_sum 0.25
# TYPE build info
build_info{version=\"1.2\"} 1
# TYPE mode stateset
mode{mode=\"a\"} 1
mode{mode=\"b\"} 0
# TYPE q gaugehistogram
q_bucket{le=\"+Inf\"} 2
q_gcount 2
q_gsum 1.5
# TYPE bare_total counter
bare_total 4
# EOF
";
        let want = "\
# TYPE bare counter
bare_total 4
# TYPE build info
build_info{version=\"1.2\"} 1
# TYPE lat_seconds histogram
# UNIT lat_seconds seconds
lat_seconds_bucket{le=\"+Inf\"} 2 # {trace_id=\"x\"} 0.5
lat_seconds_count 2
lat_seconds_sum 0.25
# TYPE mode stateset
mode{mode=\"a\"} 1
mode{mode=\"b\"} 0
# TYPE q gaugehistogram
q_bucket{le=\"+Inf\"} 2
q_gcount 2
q_gsum 1.5
# HELP req Say \\\"hi\\\".
# TYPE req counter
req_total{code=\"200\"} 3 1520879607.789 # {trace_id=\"abc\"} 1.0 1520879607.5
req_created{code=\"200\"} 1520000000.5 1520879607.789
# EOF
";
        let (out, st) = merged_om(&[(InputFormat::OpenMetrics, body, &[])]);
        assert_eq!(
            out, want,
            "the unit `requests` does not end `req`, so it is left out"
        );
        assert_eq!(st, stats(6, 12, 0, 0));
    }

    #[test]
    fn openmetrics_output_drops_what_openmetrics_forbids() {
        let a: &[(&str, &str)] = &[("index", "0")];
        let b: &[(&str, &str)] = &[("index", "1")];
        let good = "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n";
        let bad = "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n";
        let (out, st) = merged_om(&[(InputFormat::Text, bad, a), (InputFormat::Text, good, b)]);
        assert_eq!(
            out,
            "# TYPE h histogram\nh_bucket{le=\"+Inf\",index=\"1\"} 1\nh_sum{index=\"1\"} 1\nh_count{index=\"1\"} 1\n# EOF\n"
        );
        assert_eq!(st.invalid_for_format, 1);
        assert_eq!(st.samples, 3);

        // A family with nothing left is not written at all.
        let (out, st) = merged_om(&[text("# TYPE c_total counter\nc_total -1\n")]);
        assert_eq!(out, "# EOF\n");
        assert_eq!(
            st,
            MergeStats {
                invalid_for_format: 1,
                ..MergeStats::default()
            }
        );
    }

    #[test]
    fn openmetrics_output_drops_clashing_names() {
        // counter `x` (from `x_total`) reserves `x` and `x_created`; the histogram `h` reserves
        // `h_count`.
        let body = "\
# TYPE x_total counter
x_total 1
x 2
# TYPE x_created gauge
x_created 3
# TYPE h histogram
h_bucket{le=\"+Inf\"} 1
h_count 1
h_sum 1
h_count_extra 4
# TYPE h_count gauge
h_count 5
";
        let (out, st) = merged_om(&[text(body)]);
        assert_eq!(
            out,
            "\
# TYPE h histogram
h_bucket{le=\"+Inf\"} 1
h_count 1
h_sum 1
# TYPE h_count_extra unknown
h_count_extra 4
# TYPE x counter
x_total 1
# EOF
"
        );
        assert_eq!(st.type_conflicts, 3, "`x`, `x_created` and `h_count`");
    }

    #[test]
    fn empty_openmetrics_answer_is_just_eof() {
        assert_eq!(
            merged_om(&[]),
            ("# EOF\n".to_owned(), MergeStats::default())
        );
    }
}
