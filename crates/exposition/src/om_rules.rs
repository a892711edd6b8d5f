//! The rules OpenMetrics sets on a family's samples beyond their syntax, checked on the samples
//! of one source as they are written: counter-like values finite and not negative, bucket and
//! count values integers, histogram buckets ordered and complete (`+Inf`, `_count` equal to it,
//! `_sum` with `_count`), quantiles within 0..1, info 1, stateset 0 or 1, the samples of one
//! group (a series, or a histogram or summary without `le`/`quantile`) contiguous with
//! timestamps all present or all absent and never going back. A text exposition can break any
//! of them and still be valid text. It only says yes or no; the merge decides what to drop.

use std::collections::HashSet;
use std::hash::BuildHasherDefault;

use super::format::{MetricType, Suffix};
use super::identity::PassThrough;
use super::model::{Labels, Sample};
use super::number::{self, to_f64};

use MetricType as T;
use Suffix as S;

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
    /// The bucket bounds of the last histogram group, raw and read, by position: the groups of
    /// a family mostly repeat them, and comparing the text is cheaper than reading it again.
    bounds: Vec<(&'n str, f64)>,
    /// [`Checker::suffix`] by the sample's suffix in its input family, for this contribution.
    suffixes: [Option<Option<Suffix>>; Suffix::ALL.len() + 1],
}

/// The state of one histogram group (a series without `le`, at one timestamp).
#[derive(Default)]
struct Histogram {
    key: Option<(u64, Option<i64>)>,
    buckets: usize,
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

/// The suffixes whose values count something: never NaN, never negative (but `_gsum`).
fn counter_like(suffix: Option<Suffix>) -> bool {
    matches!(
        suffix,
        Some(S::Total | S::Sum | S::Count | S::Bucket | S::Gcount | S::Gsum)
    )
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
            bounds: Vec::new(),
            suffixes: [None; Suffix::ALL.len() + 1],
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
        self.bounds.clear();
        self.suffixes = [None; Suffix::ALL.len() + 1];
    }

    /// What `sample`'s name adds to the family name. It depends only on the suffix the
    /// sample has in its input family, so it is worked out once per contribution.
    fn suffix(&mut self, sample: &Sample<'_>) -> Option<Suffix> {
        let family_len = self.family.len();
        *self.suffixes[sample.suffix as usize]
            .get_or_insert_with(|| Suffix::of(sample.name.get(family_len..).unwrap_or_default()))
    }

    /// The label that does not tell the groups of `sample`'s series apart (`le` of a bucket,
    /// `quantile` of a summary, the state of a stateset), if any.
    pub(crate) fn group_label(&mut self, sample: &Sample<'_>) -> Option<&'n str> {
        match (self.kind, self.suffix(sample)) {
            (T::Histogram | T::GaugeHistogram, Some(S::Bucket)) => Some("le"),
            (T::Summary, Some(S::Bare)) => Some("quantile"),
            (T::StateSet, Some(S::Bare)) => Some(self.family),
            _ => None,
        }
    }

    /// Whether `sample` (with its labels) may follow the samples seen so far; `group` is the
    /// identity of its kept labels without its [`Checker::group_label`].
    pub(crate) fn sample(
        &mut self,
        sample: &Sample<'_>,
        labels: Labels<'_, 'n>,
        group: u64,
    ) -> bool {
        let suffix = self.suffix(sample);
        let histogram = matches!(self.kind, T::Histogram | T::GaugeHistogram);
        let group = if self.kind == T::Info { 0 } else { group };
        let timestamp = match sample.timestamp {
            None => None,
            Some(ts) => match number::timestamp_millis(ts, self.openmetrics_timestamps) {
                Some(ms) => Some(ms),
                None => return false,
            },
        };
        let key = (group, timestamp);
        // A bucket's bound, read once for both checks.
        let le = match suffix {
            Some(S::Bucket) if histogram => {
                let position = match self.histogram.key {
                    Some(current) if current == key => self.histogram.buckets,
                    _ => 0,
                };
                labels
                    .value_of("le")
                    .and_then(|raw| self.bound(raw, position))
            }
            _ => None,
        };
        // Only some rules look at the value (the parser has made sure it is a number).
        let value_matters =
            counter_like(suffix) || matches!(self.kind, T::Summary | T::StateSet | T::Info);
        let value = if value_matters {
            match to_f64(sample.value) {
                Some(value) if self.value_ok(suffix, value, labels, le) => Some(value),
                _ => return false,
            }
        } else {
            None
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
        if histogram && suffix != Some(S::Bare) {
            return self.histogram_sample(suffix, value, le, key);
        }
        true
    }

    /// Whether the last group seen is complete; call after the contribution's last sample.
    pub(crate) fn finish(&self) -> bool {
        self.histogram.complete()
    }

    /// The bound `raw` of the bucket at `position` in its group, when it is a number.
    fn bound(&mut self, raw: &'n str, position: usize) -> Option<f64> {
        if let Some(&(known, bound)) = self.bounds.get(position) {
            if known == raw {
                return Some(bound);
            }
        }
        let bound = to_f64(raw).filter(|b| !b.is_nan())?;
        if position <= self.bounds.len() {
            self.bounds.truncate(position);
            self.bounds.push((raw, bound));
        }
        Some(bound)
    }

    /// Whether `value` is allowed for a sample with `suffix` and `labels`; `le` is the bound
    /// of a histogram bucket, `None` when it has none that is a number.
    fn value_ok(
        &self,
        suffix: Option<Suffix>,
        value: f64,
        labels: Labels<'_, '_>,
        le: Option<f64>,
    ) -> bool {
        if counter_like(suffix) && (value.is_nan() || (value < 0.0 && suffix != Some(S::Gsum))) {
            return false;
        }
        if matches!(suffix, Some(S::Bucket | S::Count | S::Gcount)) && value.fract() != 0.0 {
            return false;
        }
        match (self.kind, suffix) {
            (T::Histogram | T::GaugeHistogram, Some(S::Bucket)) => le.is_some(),
            (T::Summary, Some(S::Bare)) => {
                let quantile = labels.value_of("quantile").and_then(to_f64);
                quantile.is_some_and(|q| (0.0..=1.0).contains(&q))
                    && (value.is_nan() || value >= 0.0)
            }
            (T::StateSet, _) => {
                labels.value_of(self.family).is_some() && (value == 0.0 || value == 1.0)
            }
            (T::Info, _) => value == 1.0,
            _ => true,
        }
    }

    /// `value` is the sample's, read when its suffix counts something.
    fn histogram_sample(
        &mut self,
        suffix: Option<Suffix>,
        value: Option<f64>,
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
        match (suffix, value) {
            (Some(S::Bucket), Some(value)) => {
                let Some(le) = le else {
                    return false;
                };
                if h.bound.is_some_and(|b| le <= b) || value < h.last_bucket {
                    return false;
                }
                h.negative_bucket |= le < 0.0;
                h.bound = Some(le);
                h.last_bucket = value;
                h.buckets += 1;
            }
            (Some(S::Count | S::Gcount), value) => h.count = value,
            (Some(S::Sum), _) => h.has_sum = true,
            (Some(S::Gsum), Some(value)) => {
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
    use crate::identity::label_hash;
    use crate::{parse, InputFormat};

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
            // Groups with other bounds than the group before.
            "h_bucket{a=\"x\",le=\"1\"} 1\nh_bucket{a=\"x\",le=\"+Inf\"} 2\n\
             h_bucket{a=\"y\",le=\"2\"} 1\nh_bucket{a=\"y\",le=\"3\"} 1\nh_bucket{a=\"y\",le=\"+Inf\"} 2\n",
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
            // The second group repeats a bound the first group had at another position.
            "h_bucket{a=\"x\",le=\"1\"} 1\nh_bucket{a=\"x\",le=\"2\"} 1\nh_bucket{a=\"x\",le=\"+Inf\"} 2\n\
             h_bucket{a=\"y\",le=\"2\"} 1\nh_bucket{a=\"y\",le=\"2\"} 1\nh_bucket{a=\"y\",le=\"+Inf\"} 2\n",
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
