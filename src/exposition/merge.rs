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
//! * **Shadowed names.** A family named `foo_bucket`, `foo_sum` or `foo_count` is dropped (each
//!   source counted as a type conflict) when the output also has a histogram `foo`, and
//!   `foo_sum`/`foo_count` when it has a summary `foo`: text parsers would read those samples
//!   as part of `foo`.
//! * **Metadata.** HELP comes from the first kept source that has a non-empty one. A family is
//!   written only when it has samples; metadata-only families are left out.
//! * **Relabel.** A sample's own labels whose name equals an appended label name are dropped,
//!   the rest are kept in order and byte for byte (except that a backslash which starts no
//!   valid escape is doubled, as strict text parsers demand), then the source's labels are
//!   appended, escaped.
//! * **Duplicates.** Within one source, a series whose name and kept labels (in any order) were
//!   already written (so also two series that relabelling made equal) is skipped and counted in [`MergeStats::duplicate_series`]. Identity is a
//!   64-bit hash, so two distinct series could in theory collide; with thousands of series per
//!   source that chance is negligible.
//! * **OpenMetrics to text.** Counter `foo` becomes counter `foo_total` (a bare `foo` sample
//!   stays in counter `foo`); `_created` samples of counters, histograms and summaries become
//!   gauge `<name>_created`; info `foo` becomes gauge `foo_info`; stateset becomes gauge;
//!   unknown becomes untyped; gaugehistogram `foo` becomes untyped `foo_bucket`, `foo_gcount`
//!   and `foo_gsum`. UNIT and exemplars are dropped, timestamps become integer milliseconds.

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasherDefault;

use super::format::MetricType;
use super::identity::{series_hash, Key, PassThrough};
use super::model::Exposition;
use super::translate::{parts, Part};
use super::write::{self, Name};

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
    /// Source families dropped because their type differs from the family's fixed type.
    pub type_conflicts: usize,
    /// Samples dropped because the same source already had that series.
    pub duplicate_series: usize,
}

/// Merge all sources into one text-0.0.4 exposition appended to `out`.
///
/// Families come sorted by name, each with at most one `# HELP` and one `# TYPE`, then the
/// samples of every source in the order of `sources`. The first source whose family has a
/// `# TYPE` line fixes the family's type; sources declaring another type lose their samples
/// of that family (counted in [`MergeStats::type_conflicts`]). Each sample's labels named like
/// one of the source's labels are replaced by it. OpenMetrics input is translated to text
/// (`foo` counter → `foo_total`, `_created` → gauge, info → `foo_info` gauge, ...). The
/// complete rules are in this module's source documentation (`src/exposition/merge.rs`).
pub fn merge_text(sources: &[Source<'_>], out: &mut Vec<u8>) -> MergeStats {
    let (names, index, mut contributions) = collect(sources);

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
    let groups: Vec<&[Contribution]> = contributions.chunk_by(|a, b| a.out == b.out).collect();
    let mut fixed = vec![T::Untyped; names.len()];
    for group in &groups {
        fixed[group[0].out] = fixed_type(sources, group);
    }
    for group in groups {
        let name = names[group[0].out];
        if is_shadowed(name, &index, &fixed) {
            merger.stats.type_conflicts += group.len();
            continue;
        }
        merger.family(name, fixed[group[0].out], group, out);
    }
    merger.stats
}

/// The type of an output family: that of its first contribution with a `# TYPE` line, else
/// untyped.
fn fixed_type(sources: &[Source<'_>], group: &[Contribution]) -> MetricType {
    group
        .iter()
        .find(|c| sources[c.source].exposition.families[c.family].declared)
        .map_or(T::Untyped, |c| c.part.kind)
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

/// One input family's part, destined for output family `out`.
struct Contribution {
    out: usize,
    source: usize,
    family: usize,
    part: &'static Part,
}

/// Every output family name (in first-seen order), the map from name to its index, and every
/// contribution (in source order).
fn collect<'a>(
    sources: &[Source<'a>],
) -> (Vec<Name<'a>>, HashMap<Key<'a>, usize>, Vec<Contribution>) {
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
    (names, index, contributions)
}

struct Merger<'s, 'a> {
    sources: &'s [Source<'a>],
    rendered: &'s [u8],
    rendered_ranges: &'s [std::ops::Range<usize>],
    seen: HashSet<u64, BuildHasherDefault<PassThrough>>,
    stats: MergeStats,
}

impl Merger<'_, '_> {
    /// Writes one output family of type `fixed` from its contributions (all with the same
    /// `out`).
    fn family(
        &mut self,
        name: Name<'_>,
        fixed: MetricType,
        group: &[Contribution],
        out: &mut Vec<u8>,
    ) {
        let sources = self.sources;
        let family_of = |c: &Contribution| &sources[c.source].exposition.families[c.family];

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::{parse, InputFormat};

    type Input<'a> = (InputFormat, &'a str, &'a [(&'a str, &'a str)]);

    /// Parses each input, merges them in order and returns the output and the counts.
    fn merged(inputs: &[Input<'_>]) -> (String, MergeStats) {
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
        let stats = merge_text(&sources, &mut out);
        let out = String::from_utf8(out).unwrap();
        let out = out.strip_prefix("kept: ").unwrap().to_owned();
        // Whatever we write must read back as a valid text exposition.
        if let Err(err) = parse(out.as_bytes(), InputFormat::Text) {
            panic!("output does not parse back ({err}):\n{out}");
        }
        (out, stats)
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
        let om = "# TYPE jobs counter\n# HELP jobs Jobs done.\njobs_total 5\n# EOF\n";
        let txt = "# HELP jobs_total Other help.\n# TYPE jobs_total counter\njobs_total 7\n";
        let (out, st) = merged(&[
            (InputFormat::OpenMetrics, om, a),
            (InputFormat::Text, txt, b),
        ]);
        assert_eq!(
            out,
            "\
# HELP jobs_total Jobs done.
# TYPE jobs_total counter
jobs_total{index=\"0\"} 5
jobs_total{index=\"1\"} 7
"
        );
        assert_eq!(st, stats(1, 2, 0, 0));
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
}
