//! The exposition engine on real expositions (`tests/corpus/`: Debian's node exporter, a
//! Prometheus server's own `/metrics`, a Python prometheus_client app in text and OpenMetrics,
//! a Micrometer-style Java app) and on generated ones: our parser must read the same families,
//! samples, labels and values as the `openmetrics-parser` crate, and every merge of them must
//! pass promtool (text) and prometheus_client's strict parser (OpenMetrics).

use std::collections::BTreeMap;

use crate::common::{assert_openmetrics_accepts, assert_promtool_accepts};
use exposition::{self, Escaping, InputFormat, Negotiated, OutputFormat, Source};
use openmetrics_parser::{
    openmetrics::parse_openmetrics, prometheus::parse_prometheus, HistogramValue, LabelSet,
    MetricNumber, OpenMetricsValue, PrometheusValue, SummaryValue,
};

/// Every corpus file and the format it is in.
const CORPUS: [(&str, InputFormat); 5] = [
    ("node-exporter.txt", InputFormat::Text),
    ("prometheus.txt", InputFormat::Text),
    ("python-client.txt", InputFormat::Text),
    ("python-client.om.txt", InputFormat::OpenMetrics),
    ("micrometer.txt", InputFormat::Text),
];

/// Expositions with metric and label names that are not legacy names, as prometheus_client
/// writes them for Prometheus 3 (`escaping=allow-utf-8`); `openmetrics-parser` cannot read
/// them, so they are not compared with it.
const UTF8_CORPUS: [(&str, InputFormat); 2] = [
    ("python-utf8.txt", InputFormat::Text),
    ("python-utf8.om.txt", InputFormat::OpenMetrics),
];

fn corpus(file: &str) -> String {
    let path = format!("{}/tests/corpus/{file}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// One sample as both parsers can say it: name, labels (sorted, `le` and `quantile` as
/// numbers), value.
type Flat = (String, Vec<(String, String)>, String);

/// Family name → its samples, sorted.
type Families = BTreeMap<String, Vec<Flat>>;

fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else {
        format!("{v}")
    }
}

fn flat(name: &str, labels: &[(String, String)], extra: Option<(&str, f64)>, value: f64) -> Flat {
    let mut labels: Vec<(String, String)> = labels
        .iter()
        .map(|(n, v)| match n.as_str() {
            "le" | "quantile" => (n.clone(), v.parse::<f64>().map_or(v.clone(), number)),
            _ => (n.clone(), v.clone()),
        })
        .collect();
    if let Some((n, v)) = extra {
        labels.push((n.to_owned(), number(v)));
    }
    labels.sort();
    (name.to_owned(), labels, number(value))
}

/// What our parser read: families by name with their samples.
fn ours(body: &str, format: InputFormat) -> Families {
    let e = exposition::parse(body.as_bytes(), format)
        .unwrap_or_else(|err| panic!("our parser refuses: {err}"));
    let mut families = Families::new();
    for f in &e.families {
        let samples = families.entry(f.name.to_owned()).or_default();
        for s in &f.samples {
            let labels: Vec<(String, String)> = e
                .labels(s)
                .iter()
                .map(|l| (l.name.to_owned(), l.value().into_owned()))
                .collect();
            let value: f64 = s.value.parse().expect("a float");
            samples.push(flat(s.name, &labels, None, value));
        }
        samples.sort();
    }
    families.retain(|_, samples| !samples.is_empty());
    families
}

fn labels_of(set: Result<LabelSet<'_>, openmetrics_parser::ParseError>) -> Vec<(String, String)> {
    set.expect("a label set")
        .iter()
        .map(|(n, v)| (n.clone(), v.clone()))
        .collect()
}

fn histogram(
    out: &mut Vec<Flat>,
    name: &str,
    l: &[(String, String)],
    h: &HistogramValue,
    sum: &str,
    count: &str,
) {
    for b in &h.buckets {
        let bucket = format!("{name}_bucket");
        out.push(flat(
            &bucket,
            l,
            Some(("le", b.upper_bound)),
            b.count.as_f64(),
        ));
    }
    if let Some(s) = h.sum {
        out.push(flat(&format!("{name}{sum}"), l, None, s.as_f64()));
    }
    if let Some(c) = h.count {
        out.push(flat(&format!("{name}{count}"), l, None, c as f64));
    }
    if let Some(c) = h.created {
        out.push(flat(&format!("{name}_created"), l, None, c));
    }
}

fn summary(out: &mut Vec<Flat>, name: &str, l: &[(String, String)], s: &SummaryValue) {
    for q in &s.quantiles {
        out.push(flat(
            name,
            l,
            Some(("quantile", q.quantile)),
            q.value.as_f64(),
        ));
    }
    if let Some(v) = s.sum {
        out.push(flat(&format!("{name}_sum"), l, None, v.as_f64()));
    }
    if let Some(c) = s.count {
        out.push(flat(&format!("{name}_count"), l, None, c as f64));
    }
    if let Some(c) = s.created {
        out.push(flat(&format!("{name}_created"), l, None, c));
    }
}

/// What `openmetrics-parser` read, flattened to the same shape.
fn oracle(body: &str, format: InputFormat) -> Families {
    let mut families = Families::new();
    match format {
        InputFormat::Text => {
            let e = parse_prometheus(body).unwrap_or_else(|err| panic!("oracle refuses: {err:?}"));
            for (name, f) in &e.families {
                let mut out = Vec::new();
                for s in f.iter_samples() {
                    let l = labels_of(s.get_labelset());
                    let plain = |n: &MetricNumber| flat(name, &l, None, n.as_f64());
                    match &s.value {
                        PrometheusValue::Unknown(n) | PrometheusValue::Gauge(n) => {
                            out.push(plain(n))
                        }
                        PrometheusValue::Counter(c) => out.push(plain(&c.value)),
                        PrometheusValue::Histogram(h) => {
                            histogram(&mut out, name, &l, h, "_sum", "_count")
                        }
                        PrometheusValue::Summary(s) => summary(&mut out, name, &l, s),
                    }
                }
                out.sort();
                families.insert(name.clone(), out);
            }
        }
        InputFormat::OpenMetrics => {
            let e = parse_openmetrics(body).unwrap_or_else(|err| panic!("oracle refuses: {err:?}"));
            for (name, f) in &e.families {
                let mut out = Vec::new();
                for s in f.iter_samples() {
                    let l = labels_of(s.get_labelset());
                    match &s.value {
                        OpenMetricsValue::Unknown(n)
                        | OpenMetricsValue::Gauge(n)
                        | OpenMetricsValue::StateSet(n) => {
                            out.push(flat(name, &l, None, n.as_f64()))
                        }
                        OpenMetricsValue::Counter(c) => {
                            out.push(flat(&format!("{name}_total"), &l, None, c.value.as_f64()));
                            if let Some(created) = c.created {
                                out.push(flat(&format!("{name}_created"), &l, None, created));
                            }
                        }
                        OpenMetricsValue::Histogram(h) => {
                            histogram(&mut out, name, &l, h, "_sum", "_count")
                        }
                        OpenMetricsValue::GaugeHistogram(h) => {
                            histogram(&mut out, name, &l, h, "_gsum", "_gcount")
                        }
                        OpenMetricsValue::Summary(s) => summary(&mut out, name, &l, s),
                        OpenMetricsValue::Info => {
                            out.push(flat(&format!("{name}_info"), &l, None, 1.0))
                        }
                    }
                }
                out.sort();
                families.insert(name.clone(), out);
            }
        }
    }
    families.retain(|_, samples| !samples.is_empty());
    families
}

/// `body` without what the oracle wrongly refuses in OpenMetrics, given to both parsers: UNIT
/// lines (it refuses them on histograms) and summaries (it refuses them without quantiles, as
/// prometheus_client writes them).
fn oracle_readable(body: &str, format: InputFormat) -> String {
    if format == InputFormat::Text {
        return body.to_owned();
    }
    let summaries: Vec<&str> = body
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" summary"))
        .collect();
    let of_summary = |line: &str| {
        let line = line
            .strip_prefix("# HELP ")
            .or_else(|| line.strip_prefix("# TYPE "))
            .unwrap_or(line);
        summaries.iter().any(|s| {
            line.strip_prefix(s)
                .is_some_and(|rest| rest.starts_with([' ', '{', '_']))
        })
    };
    body.lines()
        .filter(|l| !l.starts_with("# UNIT ") && !of_summary(l))
        .flat_map(|l| [l, "\n"])
        .collect()
}

fn assert_same(body: &str, format: InputFormat, what: &str) {
    let body = &oracle_readable(body, format);
    let ours = ours(body, format);
    let oracle = oracle(body, format);
    let names = |f: &Families| f.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(&ours), names(&oracle), "{what}: family names differ");
    for (name, samples) in &ours {
        assert_eq!(samples, &oracle[name], "{what}: family {name} differs");
    }
}

#[test]
fn our_parser_reads_every_corpus_file_as_openmetrics_parser_does() {
    for (file, format) in CORPUS {
        let body = corpus(file);
        assert_same(&body, format, file);
    }
}

/// Merges three instances of `body` into `output`; returns the answer and its type conflicts.
fn merged_three(body: &str, format: InputFormat, output: impl Into<Negotiated>) -> (String, usize) {
    let parsed = exposition::parse(body.as_bytes(), format).expect("parses");
    let labels: Vec<[(&str, &str); 2]> = ["0", "1", "2"]
        .iter()
        .map(|i| [("instance", "10.0.0.1:8080"), ("index", *i)])
        .collect();
    let sources: Vec<Source<'_>> = labels
        .iter()
        .map(|l| Source {
            exposition: &parsed,
            labels: l,
        })
        .collect();
    let mut out = Vec::new();
    let stats = exposition::merge(&sources, output, &mut out);
    (String::from_utf8(out).expect("UTF-8"), stats.type_conflicts)
}

#[test]
#[ignore = "needs promtool and Python prometheus_client: run scripts/test-all"]
fn every_corpus_merge_passes_promtool_and_the_strict_openmetrics_parser() {
    for (file, format) in CORPUS {
        let body = corpus(file);
        let (text, _) = merged_three(&body, format, OutputFormat::Text);
        assert_promtool_accepts(&text);
        let (om, om_conflicts) = merged_three(&body, format, OutputFormat::OpenMetrics);
        let families = assert_openmetrics_accepts(&om);
        assert!(families > 5, "{file}: only {families} families in\n{om}");
        // What we write in text reads back with the same samples in our parser and the oracle
        // (which refuses the OpenMetrics exponent `E`, so the OpenMetrics answer is compared
        // with the text one).
        assert_same(&text, InputFormat::Text, &format!("{file} merged to text"));
        let all = |f: Families| {
            let mut all: Vec<Flat> = f.into_values().flatten().collect();
            all.sort();
            all
        };
        let (om_samples, text_samples) = (
            all(ours(&om, InputFormat::OpenMetrics)),
            all(ours(&text, InputFormat::Text)),
        );
        let extra: Vec<_> = om_samples
            .iter()
            .filter(|s| text_samples.binary_search(s).is_err())
            .take(5)
            .collect();
        assert!(
            extra.is_empty(),
            "{file}: OpenMetrics has samples text has not: {extra:?}"
        );
        // OpenMetrics can lose a family only to a counted conflict: a counter `x_total` and a
        // gauge `x` are both the OpenMetrics family `x` (client_golang's
        // `go_memstats_alloc_bytes`).
        assert!(
            om_samples.len() == text_samples.len() || om_conflicts > 0,
            "{file}: OpenMetrics lost samples without a counted conflict"
        );
    }
}

#[test]
#[ignore = "needs promtool and Python prometheus_client: run scripts/test-all"]
fn utf8_names_are_quoted_or_escaped_and_every_answer_passes_the_checkers() {
    for (file, format) in UTF8_CORPUS {
        let body = corpus(file);
        let (text, _) = merged_three(&body, format, OutputFormat::Text);
        assert_promtool_accepts(&text);
        for want in [
            "\nhttp_server_requests_total{http_route=\"/api/orders\",status_code=\"200\",instance=",
            "\ntemp_rature{salle__tage=\"B/2\",instance=",
            "\nqueue_depth{queue_name=\"emails\",instance=",
        ] {
            assert!(text.contains(want), "{file}: no {want:?} in\n{text}");
        }
        let escapings = [
            None,
            Some(Escaping::AllowUtf8),
            Some(Escaping::Underscores),
            Some(Escaping::Dots),
            Some(Escaping::Values),
        ];
        for escaping in escapings {
            let negotiated = Negotiated {
                format: OutputFormat::OpenMetrics,
                escaping,
            };
            let (om, _) = merged_three(&body, format, negotiated);
            let families = assert_openmetrics_accepts(&om);
            // Text has `_created` as gauges of their own, which escaping can keep apart from
            // their counter's name: four or more families.
            assert!(families >= 4, "{file} {escaping:?}:\n{om}");
            let quoted = om.contains("{\"http.server.requests_total\",\"http.route\"=\"/api/orders\",status_code=\"200\",instance=")
                && om.contains("{\"température\",\"salle/étage\"=\"B/2\",instance=");
            assert_eq!(
                quoted,
                escaping == Some(Escaping::AllowUtf8),
                "{file} {escaping:?}:\n{om}"
            );
        }
    }
}

/// A small deterministic generator (xorshift) of valid text expositions.
struct Gen(u64);

impl Gen {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.next(items.len() as u64) as usize]
    }

    /// Values for the labels `l0`, `l1`, ... of one series (the oracle wants one label set per
    /// family).
    fn label_values(&mut self, own: u64) -> Vec<String> {
        let values = [
            "a",
            "with \\\"quotes\\\"",
            "back\\\\slash",
            "new\\nline",
            "ünï",
            "",
        ];
        (0..own)
            .map(|i| format!("l{i}=\"{}\"", self.pick(&values)))
            .collect()
    }

    fn value(&mut self) -> String {
        let v = [
            "0", "1", "-2.5", "1e3", "3.25E-2", "NaN", "+Inf", "-Inf", "17",
        ];
        self.pick(&v).to_owned()
    }

    fn exposition(&mut self) -> String {
        let mut s = String::new();
        for f in 0..1 + self.next(6) {
            let kind = self.pick(&["counter", "gauge", "untyped", "histogram", "summary"]);
            if self.next(2) == 0 {
                s += &format!("# HELP m{f} Help \\\\ text {f}\\n.\n");
            }
            s += &format!("# TYPE m{f} {kind}\n");
            let own_labels = self.next(3);
            for series in 0..1 + self.next(3) {
                let mut base = self.label_values(own_labels);
                base.push(format!("s=\"{series}\""));
                let set = |extra: &str| {
                    let mut all = base.clone();
                    if !extra.is_empty() {
                        all.push(extra.to_owned());
                    }
                    format!("{{{}}}", all.join(","))
                };
                match kind {
                    "histogram" => {
                        let mut count = 0;
                        for le in ["0.1", "1", "+Inf"] {
                            count += self.next(5);
                            let l = set(&format!("le=\"{le}\""));
                            s += &format!("m{f}_bucket{l} {count}\n");
                        }
                        let l = set("");
                        s += &format!("m{f}_sum{l} {}\nm{f}_count{l} {count}\n", self.next(50));
                    }
                    "summary" => {
                        for q in ["0.5", "0.99"] {
                            let l = set(&format!("quantile=\"{q}\""));
                            s += &format!("m{f}{l} {}\n", self.next(100));
                        }
                        let l = set("");
                        s += &format!("m{f}_sum{l} 1\nm{f}_count{l} 2\n");
                    }
                    "counter" => {
                        let l = set("");
                        s += &format!("m{f}{l} {}\n", self.next(1000));
                    }
                    _ => {
                        let l = set("");
                        s += &format!("m{f}{l} {}\n", self.value());
                    }
                }
            }
        }
        s
    }
}

#[test]
fn our_parser_reads_generated_expositions_as_openmetrics_parser_does() {
    let mut gen = Gen(0x9e37_79b9_7f4a_7c15);
    for _ in 0..300 {
        let body = gen.exposition();
        assert_same(&body, InputFormat::Text, &body);
    }
}
