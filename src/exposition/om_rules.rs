//! The rules OpenMetrics sets on a family's samples beyond their syntax, checked on the samples
//! of one source as they are written: counter-like values finite and not negative, bucket and
//! count values integers, histogram buckets ordered and complete (`+Inf`, `_count` equal to it,
//! `_sum` with `_count`), quantiles within 0..1, info 1, stateset 0 or 1, the samples of one
//! group (a series, or a histogram or summary without `le`/`quantile`) contiguous with
//! timestamps all present or all absent and never going back. A text exposition can break any
//! of them and still be valid text. It only says yes or no; the merge decides what to drop.

use std::collections::HashSet;
use std::hash::BuildHasherDefault;

use super::format::MetricType;
use super::identity::PassThrough;
use super::model::{Labels, Sample};
use super::number::{self, to_f64};

use MetricType as T;

/// Checks the samples one source contributes to one OpenMetrics family, in output order.
pub(crate) struct Checker<'n> {
    kind: MetricType,
    /// The output family name; sample names extend it.
    family: &'n str,
    openmetrics_timestamps: bool,
    groups: HashSet<u64, BuildHasherDefault<PassThrough>>,
    group: Option<u64>,
    timestamp: Option<Option<i64>>,
    histogram: Histogram,
}

/// The state of one histogram group (a series without `le`, at one timestamp).
#[derive(Default)]
struct Histogram {
    key: Option<(u64, Option<i64>)>,
    bound: Option<f64>,
    last_bucket: f64,
    count: Option<f64>,
    has_sum: bool,
    has_gsum: bool,
    negative_bucket: bool,
    negative_gsum: bool,
}

impl Histogram {
    fn complete(&self) -> bool {
        if self.key.is_none() {
            return true;
        }
        self.bound == Some(f64::INFINITY)
            && self.count.is_none_or(|c| c == self.last_bucket)
            && !((self.has_sum || self.has_gsum) && self.count.is_none())
            && !(self.count.is_some() && !self.has_sum && !self.has_gsum)
            && !(self.negative_bucket && self.has_sum)
            && (!self.negative_gsum || self.negative_bucket)
    }
}

impl<'n> Checker<'n> {
    /// A checker for a family of type `kind`; [`Checker::reset`] names it.
    pub(crate) fn new(kind: MetricType) -> Self {
        Checker {
            kind,
            family: "",
            openmetrics_timestamps: false,
            groups: HashSet::default(),
            group: None,
            timestamp: None,
            histogram: Histogram::default(),
        }
    }

    /// Whether timestamps are OpenMetrics seconds (else text milliseconds).
    pub(crate) fn set_openmetrics_timestamps(&mut self, openmetrics: bool) {
        self.openmetrics_timestamps = openmetrics;
    }

    /// Starts checking another source's contribution, whose family is named `family` in its
    /// input (sample names extend it).
    pub(crate) fn reset(&mut self, family: &'n str) {
        self.family = family;
        self.groups.clear();
        self.group = None;
        self.timestamp = None;
        self.histogram = Histogram::default();
    }

    /// The label that does not tell the groups of `sample`'s series apart (`le` of a bucket,
    /// `quantile` of a summary, the state of a stateset), if any.
    pub(crate) fn group_label(&self, sample: &Sample<'_>) -> Option<&'n str> {
        let suffix = sample.name.get(self.family.len()..).unwrap_or_default();
        match (self.kind, suffix) {
            (T::Histogram | T::GaugeHistogram, "_bucket") => Some("le"),
            (T::Summary, "") => Some("quantile"),
            (T::StateSet, "") => Some(self.family),
            _ => None,
        }
    }

    /// Whether `sample` (with its labels) may follow the samples seen so far; `group` is the
    /// identity of its kept labels without its [`Checker::group_label`].
    pub(crate) fn sample(
        &mut self,
        sample: &Sample<'_>,
        labels: Labels<'_, '_>,
        group: u64,
    ) -> bool {
        let suffix = sample.name.get(self.family.len()..).unwrap_or_default();
        let Some(value) = to_f64(sample.value) else {
            return false;
        };
        // A bucket's bound, read once for both checks.
        let le = match (self.kind, suffix) {
            (T::Histogram | T::GaugeHistogram, "_bucket") => labels
                .iter()
                .find(|l| l.name == "le")
                .and_then(|l| to_f64(l.raw_value))
                .filter(|le| !le.is_nan()),
            _ => None,
        };
        if !self.value_ok(suffix, value, labels, le) {
            return false;
        }
        let group = if self.kind == T::Info { 0 } else { group };
        let timestamp = match sample.timestamp {
            None => None,
            Some(ts) => match number::timestamp_millis(ts, self.openmetrics_timestamps) {
                Some(ms) => Some(ms),
                None => return false,
            },
        };
        if self.group == Some(group) {
            match (self.timestamp.flatten(), timestamp) {
                (None, None) => {}
                (Some(before), Some(now)) if now >= before || self.kind == T::Info => {}
                _ => return false,
            }
        } else if !self.groups.insert(group) {
            return false;
        }
        self.group = Some(group);
        self.timestamp = Some(timestamp);
        if matches!(self.kind, T::Histogram | T::GaugeHistogram) && !suffix.is_empty() {
            return self.histogram_sample(suffix, value, le, (group, timestamp));
        }
        true
    }

    /// Whether the last group seen is complete; call after the contribution's last sample.
    pub(crate) fn finish(&self) -> bool {
        self.histogram.complete()
    }

    /// `le` is the bound of a histogram bucket, `None` when it has none that is a number.
    fn value_ok(&self, suffix: &str, value: f64, labels: Labels<'_, '_>, le: Option<f64>) -> bool {
        let counter_like = matches!(
            suffix,
            "_total" | "_sum" | "_count" | "_bucket" | "_gcount" | "_gsum"
        );
        if counter_like && (value.is_nan() || (value < 0.0 && suffix != "_gsum")) {
            return false;
        }
        if matches!(suffix, "_bucket" | "_count" | "_gcount") && value.fract() != 0.0 {
            return false;
        }
        let label = |name: &str| labels.iter().find(|l| l.name == name);
        match (self.kind, suffix) {
            (T::Histogram | T::GaugeHistogram, "_bucket") => le.is_some(),
            (T::Summary, "") => {
                let quantile = label("quantile").and_then(|l| to_f64(l.raw_value));
                quantile.is_some_and(|q| (0.0..=1.0).contains(&q))
                    && (value.is_nan() || value >= 0.0)
            }
            (T::StateSet, _) => label(self.family).is_some() && (value == 0.0 || value == 1.0),
            (T::Info, _) => value == 1.0,
            _ => true,
        }
    }

    fn histogram_sample(
        &mut self,
        suffix: &str,
        value: f64,
        le: Option<f64>,
        key: (u64, Option<i64>),
    ) -> bool {
        if self.histogram.key != Some(key) {
            if !self.histogram.complete() {
                return false;
            }
            self.histogram = Histogram {
                key: Some(key),
                ..Histogram::default()
            };
        }
        let h = &mut self.histogram;
        match suffix {
            "_bucket" => {
                let Some(le) = le else {
                    return false;
                };
                if h.bound.is_some_and(|b| le <= b) || value < h.last_bucket {
                    return false;
                }
                h.negative_bucket |= le < 0.0;
                h.bound = Some(le);
                h.last_bucket = value;
            }
            "_count" | "_gcount" => h.count = Some(value),
            "_sum" => h.has_sum = true,
            "_gsum" => {
                h.has_gsum = true;
                h.negative_gsum |= value < 0.0;
            }
            _ => {}
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::identity::label_hash;
    use crate::exposition::{parse, InputFormat};

    /// Runs the checker over every sample of the first family of a text body.
    fn fits(kind: MetricType, body: &str) -> bool {
        let e = parse(body.as_bytes(), InputFormat::Text).unwrap();
        let family = &e.families[0];
        // A text counter `c_total` is the OpenMetrics counter `c`.
        let name = family.name.strip_suffix("_total").unwrap_or(family.name);
        let mut checker = Checker::new(kind);
        checker.reset(name);
        family.samples.iter().all(|s| {
            let labels = e.labels(s);
            let skip = checker.group_label(s);
            let group = labels
                .iter()
                .filter(|l| Some(l.name) != skip)
                .fold(0u64, |h, l| h.wrapping_add(label_hash(l.name, l.raw_value)));
            checker.sample(s, labels, group)
        }) && checker.finish()
    }

    const H: &str = "# TYPE h histogram\n";

    #[test]
    fn histograms() {
        let ok = [
            "h_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\n",
            "h_bucket{le=\"+Inf\"} 2\n",
            "h_bucket{a=\"x\",le=\"+Inf\"} 2\nh_bucket{a=\"y\",le=\"+Inf\"} 2\n",
            "h_bucket{le=\"-1\"} 1\nh_bucket{le=\"+Inf\"} 2\n",
        ];
        for body in ok {
            assert!(fits(T::Histogram, &format!("{H}{body}")), "{body}");
        }
        let bad = [
            "h_bucket{le=\"1\"} 1\nh_sum 3\nh_count 1\n",
            "h_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 3\n",
            "h_bucket{le=\"+Inf\"} 2\nh_sum 3\n",
            "h_bucket{le=\"+Inf\"} 2\nh_count 2\n",
            "h_bucket{le=\"2\"} 1\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 1\n",
            "h_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\n",
            "h_bucket{le=\"1\"} 1.5\nh_bucket{le=\"+Inf\"} 2\n",
            "h_bucket{le=\"NaN\"} 1\nh_bucket{le=\"+Inf\"} 2\n",
            "h_bucket{le=\"-1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 2\n",
            "h_bucket{a=\"x\",le=\"+Inf\"} 2\nh_bucket{a=\"y\",le=\"+Inf\"} 2\nh_sum{a=\"x\"} 1\n",
        ];
        for body in bad {
            assert!(!fits(T::Histogram, &format!("{H}{body}")), "{body}");
        }
    }

    #[test]
    fn values_groups_and_timestamps() {
        let cases = [
            (T::Counter, "# TYPE c_total counter\nc_total 1\n", true),
            (T::Counter, "# TYPE c_total counter\nc_total -1\n", false),
            (T::Counter, "# TYPE c_total counter\nc_total NaN\n", false),
            (T::Gauge, "g -1\ng{a=\"1\"} NaN\n", true),
            (
                T::Gauge,
                "g{a=\"1\"} 1\ng{a=\"2\"} 1\ng{a=\"1\"} 1\n",
                false,
            ),
            (T::Gauge, "g{a=\"1\"} 1 100\ng{a=\"2\"} 1\n", true),
            (
                T::Summary,
                "# TYPE s summary\ns{quantile=\"0.5\"} 1 10\ns{quantile=\"1\"} 1\n",
                false,
            ),
            (
                T::Summary,
                "# TYPE s summary\ns{quantile=\"0.5\"} 1 10\ns{quantile=\"1\"} 1 9\n",
                false,
            ),
            (
                T::Summary,
                "# TYPE s summary\ns{quantile=\"1.5\"} 1\n",
                false,
            ),
            (
                T::Summary,
                "# TYPE s summary\ns{quantile=\"0.5\"} -1\n",
                false,
            ),
            (
                T::Summary,
                "# TYPE s summary\ns{quantile=\"0.5\"} NaN\ns_sum -2\ns_count 0\n",
                false,
            ),
            (
                T::Summary,
                "# TYPE s summary\ns{quantile=\"0.5\"} NaN\ns_sum 2\ns_count 0\n",
                true,
            ),
        ];
        for (kind, body, want) in cases {
            assert_eq!(fits(kind, body), want, "{body}");
        }
    }
}
