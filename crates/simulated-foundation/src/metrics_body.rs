//! The exposition bodies simulated instances serve: deterministic, realistic, different per
//! instance index, in the Prometheus text format 0.0.4 or OpenMetrics 1.0. Pure string building,
//! done once per instance at start; no I/O.

use std::fmt::Write as _;

use super::spec::BodyFormat;

/// `Content-Type` of a text-format answer.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// `Content-Type` of an OpenMetrics answer.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The `Content-Type` for `format`.
pub fn content_type(format: BodyFormat) -> &'static str {
    match format {
        BodyFormat::Text => TEXT_CONTENT_TYPE,
        BodyFormat::OpenMetrics => OPENMETRICS_CONTENT_TYPE,
    }
}

/// The healthy body of instance `index`, with `extra_series` generated gauge series at the end.
///
/// Families, in order: `http_requests_total` (counter, two series with `method`/`code`),
/// `http_request_duration_seconds` (histogram, buckets 0.1, 0.5, 1, +Inf), `app_info_version`
/// (gauge), `process_memory_bytes` (gauge whose `instance` and `app_name` labels collide with
/// promfetcher's own) and, when asked, `dev_load_series`. Counts grow with the index so tests can
/// tell instances apart: `http_requests_total{method="GET",code="200"}` is `1000 + 17 * index`.
pub fn healthy_body(format: BodyFormat, index: usize, extra_series: usize) -> String {
    match format {
        BodyFormat::Text => text_body(index, extra_series),
        BodyFormat::OpenMetrics => openmetrics_body(index, extra_series),
    }
}

/// A 200 body that no exposition parser accepts: an HTML error page followed by a sample line
/// without a value.
pub fn garbage_body(index: usize) -> String {
    format!(
        "<html><head><title>Whitelabel Error Page</title></head>\n\
         <body>instance {index}: this is not an exposition</body></html>\n\
         metric_without_value{{broken=\"label\n"
    )
}

/// The values one instance reports; all derived from its index.
struct Values {
    get_ok: u64,
    post_err: u64,
    buckets: [u64; 3],
    count: u64,
    sum: f64,
    memory: u64,
}

impl Values {
    fn for_index(index: usize) -> Self {
        let i = index as u64;
        let buckets = [40 + 3 * i, 90 + 5 * i, 118 + 7 * i];
        let count = buckets[2] + 2;
        Values {
            get_ok: 1000 + 17 * i,
            post_err: 3 + i,
            buckets,
            count,
            // A sum that is exact in binary so text and OpenMetrics print the same digits.
            sum: 12.5 + 0.25 * i as f64,
            memory: 52_428_800 + 1_048_576 * i,
        }
    }
}

// `fmt::Write` for `String` never fails, so the results of `writeln!` below are ignored.

fn text_body(index: usize, extra_series: usize) -> String {
    let v = Values::for_index(index);
    let mut out = String::with_capacity(1024 + extra_series * 48);
    out.push_str(
        "# HELP http_requests_total Requests served, by \"code\". Logged to C:\\\\logs\\\\http.\n\
         # TYPE http_requests_total counter\n",
    );
    let _ = writeln!(
        out,
        "http_requests_total{{method=\"GET\",code=\"200\"}} {}",
        v.get_ok
    );
    let _ = writeln!(
        out,
        "http_requests_total{{method=\"POST\",code=\"500\"}} {}",
        v.post_err
    );
    out.push_str(
        "# HELP http_request_duration_seconds Time to answer a request.\n\
         # TYPE http_request_duration_seconds histogram\n",
    );
    for (le, n) in ["0.1", "0.5", "1"].iter().zip(v.buckets) {
        let _ = writeln!(
            out,
            "http_request_duration_seconds_bucket{{le=\"{le}\"}} {n}"
        );
    }
    let _ = writeln!(
        out,
        "http_request_duration_seconds_bucket{{le=\"+Inf\"}} {}",
        v.count
    );
    let _ = writeln!(out, "http_request_duration_seconds_sum {}", v.sum);
    let _ = writeln!(out, "http_request_duration_seconds_count {}", v.count);
    out.push_str(
        "# HELP app_info_version Version of the running build.\n\
         # TYPE app_info_version gauge\n\
         app_info_version{version=\"1.2.3\"} 1\n\
         # HELP process_memory_bytes Resident memory. Its labels collide with promfetcher's.\n\
         # TYPE process_memory_bytes gauge\n",
    );
    write_memory_and_load_series(&mut out, v.memory, index, extra_series);
    out
}

fn openmetrics_body(index: usize, extra_series: usize) -> String {
    let v = Values::for_index(index);
    let mut out = String::with_capacity(1280 + extra_series * 48);
    // OpenMetrics escapes `"` in HELP as well as `\`.
    out.push_str(
        "# HELP http_requests Requests served, by \\\"code\\\". Logged to C:\\\\logs\\\\http.\n\
         # TYPE http_requests counter\n",
    );
    let _ = writeln!(
        out,
        "http_requests_total{{method=\"GET\",code=\"200\"}} {}",
        v.get_ok
    );
    out.push_str("http_requests_created{method=\"GET\",code=\"200\"} 1.7e+09\n");
    let _ = writeln!(
        out,
        "http_requests_total{{method=\"POST\",code=\"500\"}} {}",
        v.post_err
    );
    out.push_str("http_requests_created{method=\"POST\",code=\"500\"} 1.7e+09\n");
    out.push_str(
        "# HELP http_request_duration_seconds Time to answer a request.\n\
         # TYPE http_request_duration_seconds histogram\n\
         # UNIT http_request_duration_seconds seconds\n",
    );
    for (i, (le, n)) in ["0.1", "0.5", "1.0"].iter().zip(v.buckets).enumerate() {
        let _ = write!(
            out,
            "http_request_duration_seconds_bucket{{le=\"{le}\"}} {n}"
        );
        if i == 1 {
            let _ = write!(out, " # {{trace_id=\"{:016x}\"}} 0.25", 0xabcd_0000 + index);
        }
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "http_request_duration_seconds_bucket{{le=\"+Inf\"}} {}",
        v.count
    );
    let _ = writeln!(out, "http_request_duration_seconds_sum {}", v.sum);
    let _ = writeln!(out, "http_request_duration_seconds_count {}", v.count);
    out.push_str(
        "# HELP app_info_version Version of the running build.\n\
         # TYPE app_info_version gauge\n\
         app_info_version{version=\"1.2.3\"} 1\n\
         # HELP process_memory_bytes Resident memory. Its labels collide with promfetcher's.\n\
         # TYPE process_memory_bytes gauge\n\
         # UNIT process_memory_bytes bytes\n",
    );
    write_memory_and_load_series(&mut out, v.memory, index, extra_series);
    out.push_str("# EOF\n");
    out
}

/// The memory sample (with labels that collide with promfetcher's) and the generated load
/// series, spelled the same in both formats.
fn write_memory_and_load_series(out: &mut String, memory: u64, index: usize, extra_series: usize) {
    let _ = writeln!(
        out,
        "process_memory_bytes{{instance=\"should-be-replaced\",app_name=\"spoofed\"}} {memory}"
    );
    if extra_series > 0 {
        out.push_str(
            "# HELP dev_load_series Generated series for load tests.\n\
             # TYPE dev_load_series gauge\n",
        );
        for n in 0..extra_series {
            let _ = writeln!(out, "dev_load_series{{n=\"{n}\"}} {}", load_value(index, n));
        }
    }
}

/// The value of generated series `n` on instance `index`.
fn load_value(index: usize, n: usize) -> usize {
    index * 1_000_000 + n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_body_of_index_zero_is_pinned() {
        let expected = "\
# HELP http_requests_total Requests served, by \"code\". Logged to C:\\\\logs\\\\http.
# TYPE http_requests_total counter
http_requests_total{method=\"GET\",code=\"200\"} 1000
http_requests_total{method=\"POST\",code=\"500\"} 3
# HELP http_request_duration_seconds Time to answer a request.
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{le=\"0.1\"} 40
http_request_duration_seconds_bucket{le=\"0.5\"} 90
http_request_duration_seconds_bucket{le=\"1\"} 118
http_request_duration_seconds_bucket{le=\"+Inf\"} 120
http_request_duration_seconds_sum 12.5
http_request_duration_seconds_count 120
# HELP app_info_version Version of the running build.
# TYPE app_info_version gauge
app_info_version{version=\"1.2.3\"} 1
# HELP process_memory_bytes Resident memory. Its labels collide with promfetcher's.
# TYPE process_memory_bytes gauge
process_memory_bytes{instance=\"should-be-replaced\",app_name=\"spoofed\"} 52428800
# HELP dev_load_series Generated series for load tests.
# TYPE dev_load_series gauge
dev_load_series{n=\"0\"} 0
dev_load_series{n=\"1\"} 1
";
        assert_eq!(healthy_body(BodyFormat::Text, 0, 2), expected);
    }

    #[test]
    fn openmetrics_body_of_index_one_is_pinned() {
        let expected = "\
# HELP http_requests Requests served, by \\\"code\\\". Logged to C:\\\\logs\\\\http.
# TYPE http_requests counter
http_requests_total{method=\"GET\",code=\"200\"} 1017
http_requests_created{method=\"GET\",code=\"200\"} 1.7e+09
http_requests_total{method=\"POST\",code=\"500\"} 4
http_requests_created{method=\"POST\",code=\"500\"} 1.7e+09
# HELP http_request_duration_seconds Time to answer a request.
# TYPE http_request_duration_seconds histogram
# UNIT http_request_duration_seconds seconds
http_request_duration_seconds_bucket{le=\"0.1\"} 43
http_request_duration_seconds_bucket{le=\"0.5\"} 95 # {trace_id=\"00000000abcd0001\"} 0.25
http_request_duration_seconds_bucket{le=\"1.0\"} 125
http_request_duration_seconds_bucket{le=\"+Inf\"} 127
http_request_duration_seconds_sum 12.75
http_request_duration_seconds_count 127
# HELP app_info_version Version of the running build.
# TYPE app_info_version gauge
app_info_version{version=\"1.2.3\"} 1
# HELP process_memory_bytes Resident memory. Its labels collide with promfetcher's.
# TYPE process_memory_bytes gauge
# UNIT process_memory_bytes bytes
process_memory_bytes{instance=\"should-be-replaced\",app_name=\"spoofed\"} 53477376
# EOF
";
        assert_eq!(healthy_body(BodyFormat::OpenMetrics, 1, 0), expected);
    }

    #[test]
    fn bodies_differ_per_index_and_grow_with_extra_series() {
        for format in [BodyFormat::Text, BodyFormat::OpenMetrics] {
            assert_ne!(healthy_body(format, 0, 0), healthy_body(format, 1, 0));
            let big = healthy_body(format, 2, 5000);
            assert_eq!(big.matches("dev_load_series{n=").count(), 5000);
            assert!(big.contains("dev_load_series{n=\"4999\"} 2004999\n"));
        }
    }

    #[test]
    fn garbage_is_not_an_exposition() {
        let body = garbage_body(0);
        assert!(body.starts_with("<html>"));
        assert!(body.contains("metric_without_value{broken=\"label\n"));
    }
}
