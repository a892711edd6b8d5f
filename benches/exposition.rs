//! Criterion benchmarks of the exposition engine, next to the `openmetrics-parser` crate on the
//! same input:
//! - `parse/<input>`: bytes/s of one exposition parsed (each corpus file, and one instance of
//!   a generated 2,000-series app);
//! - `merge/100x2000/<format>`: samples/s written when 100 parsed instances of that app are
//!   relabelled with the 9 promfetcher labels and merged into text 0.0.4 or OpenMetrics;
//! - `pipeline/100x2000/<format>`: bytes/s of input through parse + relabel + merge + write,
//!   the figure the 300 MB/s target is about;
//! - `gzip/10x2000/<compressor>`: bytes/s of a merged answer (10 of those instances, text)
//!   compressed by promfetcher's gzip encoder and by zlib's fastest level (the sizes are
//!   printed once).
//!
//! Run: `cargo bench --bench exposition` (a few minutes on 2 cores); one group:
//! `cargo bench --bench exposition -- parse/`.

use std::fmt::Write as _;
use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use exposition::{self, InputFormat, OutputFormat, Source};
use openmetrics_parser::{openmetrics::parse_openmetrics, prometheus::parse_prometheus};
use promfetcher::fanout::gzip::GzipWriter;
use promfetcher::routes::LABEL_NAMES;

/// The allocator of the promfetcher binary, so that the figures include what its allocations
/// cost there (with glibc's malloc the pipeline spends a good part of its time in page faults).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const CORPUS: [(&str, InputFormat); 5] = [
    ("node-exporter.txt", InputFormat::Text),
    ("prometheus.txt", InputFormat::Text),
    ("python-client.txt", InputFormat::Text),
    ("python-client.om.txt", InputFormat::OpenMetrics),
    ("micrometer.txt", InputFormat::Text),
];

const INSTANCES: usize = 100;

fn corpus(file: &str) -> String {
    let path = format!("{}/tests/corpus/{file}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// One instance of a Spring-Boot-like web app in text 0.0.4 with exactly 2,000 sample lines:
/// request histograms (100 method/uri/status series × 12 lines), request counters, JVM
/// memory, pool and GC gauges. `seed` varies the values between instances.
fn generated_app(seed: u64) -> String {
    const METHODS: [&str; 4] = ["GET", "POST", "PUT", "DELETE"];
    const URIS: [&str; 5] = [
        "/api/v1/orders",
        "/api/v1/orders/{id}",
        "/api/v1/customers/{id}/invoices",
        "/actuator/health",
        "/login",
    ];
    const STATUS: [&str; 5] = ["200", "201", "400", "404", "500"];
    const LE: [&str; 9] = [
        "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "+Inf",
    ];

    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % 1_000_000
    };
    let mut s = String::with_capacity(256 * 1024);
    let mut lines = 0;

    s.push_str("# HELP http_server_requests_seconds Duration of HTTP server request handling\n");
    s.push_str("# TYPE http_server_requests_seconds histogram\n");
    let mut combos = Vec::new();
    for m in METHODS {
        for u in URIS {
            for st in STATUS {
                combos.push((m, u, st));
            }
        }
    }
    for &(m, u, st) in &combos {
        let outcome = if st.starts_with('2') {
            "SUCCESS"
        } else {
            "CLIENT_ERROR"
        };
        let labels = format!(
            "exception=\"None\",method=\"{m}\",outcome=\"{outcome}\",status=\"{st}\",uri=\"{u}\""
        );
        let mut cum = 0;
        for le in LE {
            cum += next() % 500;
            writeln!(
                s,
                "http_server_requests_seconds_bucket{{{labels},le=\"{le}\"}} {cum}"
            )
            .unwrap();
        }
        writeln!(
            s,
            "http_server_requests_seconds_sum{{{labels}}} {}.{:06}",
            cum / 20,
            next()
        )
        .unwrap();
        writeln!(s, "http_server_requests_seconds_count{{{labels}}} {cum}").unwrap();
        lines += LE.len() + 2;
    }

    s.push_str("# HELP http_requests_total Total HTTP requests by handler\n");
    s.push_str("# TYPE http_requests_total counter\n");
    for (i, &(m, u, st)) in combos.iter().enumerate() {
        for shard in 0..4 {
            writeln!(
                s,
                "http_requests_total{{handler=\"{u}\",method=\"{m}\",code=\"{st}\",worker=\"w{shard}\",route_id=\"r{i}\"}} {}",
                next()
            )
            .unwrap();
            lines += 1;
        }
    }

    s.push_str("# HELP jvm_memory_used_bytes The amount of used memory\n");
    s.push_str("# TYPE jvm_memory_used_bytes gauge\n");
    let mut i = 0;
    while lines < 2_000 {
        let area = if i % 3 == 0 { "heap" } else { "nonheap" };
        writeln!(
            s,
            "jvm_memory_used_bytes{{area=\"{area}\",id=\"pool-{i}\",application=\"orders-service\"}} {}.{}e+06",
            next(),
            next() % 1000
        )
        .unwrap();
        lines += 1;
        i += 1;
    }
    s
}

/// Label values for instance `i` of the generated app.
fn instance_labels(i: usize) -> Vec<String> {
    vec![
        "0a1b2c3d-4e5f-4061-8273-94a5b6c7d8e9".to_owned(),
        "1f2e3d4c-5b6a-4798-8a7b-6c5d4e3f2a1b".to_owned(),
        "8c5a9f3e-2b1d-4e6f-9a7b-1c2d3e4f5a6b".to_owned(),
        "acme".to_owned(),
        "production".to_owned(),
        "orders-service".to_owned(),
        i.to_string(),
        format!("3e1c9b5a-7d2f-4a8e-9b0c-{i:012}"),
        format!("10.0.{}.{}:61001", i / 250, i % 250 + 1),
    ]
}

fn parse_group(c: &mut Criterion) {
    let mut inputs: Vec<(String, String, InputFormat)> = CORPUS
        .iter()
        .map(|&(f, fmt)| (f.to_owned(), corpus(f), fmt))
        .collect();
    inputs.push((
        "app-2000-series".to_owned(),
        generated_app(1),
        InputFormat::Text,
    ));

    let mut group = c.benchmark_group("parse");
    for (name, body, format) in &inputs {
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_with_input(BenchmarkId::new("ours", name), body, |b, body| {
            b.iter(|| {
                let e = exposition::parse(black_box(body.as_bytes()), *format).expect("parses");
                black_box(e.sample_count())
            })
        });
        // openmetrics-parser refuses some valid input (a histogram with a `# UNIT`, as
        // prometheus_client writes it): no comparison there.
        let oracle_accepts = match format {
            InputFormat::Text => parse_prometheus(body).is_ok(),
            InputFormat::OpenMetrics => parse_openmetrics(body).is_ok(),
        };
        if !oracle_accepts {
            eprintln!("openmetrics-parser refuses {name}: not compared");
            continue;
        }
        group.bench_with_input(
            BenchmarkId::new("openmetrics-parser", name),
            body,
            |b, body| {
                b.iter(|| match format {
                    InputFormat::Text => black_box(
                        parse_prometheus(black_box(body))
                            .expect("parses")
                            .families
                            .len(),
                    ),
                    InputFormat::OpenMetrics => black_box(
                        parse_openmetrics(black_box(body))
                            .expect("parses")
                            .families
                            .len(),
                    ),
                })
            },
        );
    }
    group.finish();
}

fn merge_groups(c: &mut Criterion) {
    let bodies: Vec<String> = (0..INSTANCES as u64).map(generated_app).collect();
    let values: Vec<Vec<String>> = (0..INSTANCES).map(instance_labels).collect();
    let labels: Vec<Vec<(&str, &str)>> = values
        .iter()
        .map(|v| {
            LABEL_NAMES
                .iter()
                .copied()
                .zip(v.iter().map(String::as_str))
                .collect()
        })
        .collect();
    let input_bytes: usize = bodies.iter().map(String::len).sum();
    let parsed: Vec<_> = bodies
        .iter()
        .map(|b| exposition::parse(b.as_bytes(), InputFormat::Text).expect("parses"))
        .collect();
    let sources: Vec<Source<'_>> = parsed
        .iter()
        .zip(&labels)
        .map(|(exposition, labels)| Source { exposition, labels })
        .collect();
    let outputs = [
        ("text", OutputFormat::Text),
        ("openmetrics", OutputFormat::OpenMetrics),
    ];

    let mut group = c.benchmark_group("merge");
    for (name, output) in outputs {
        let mut out = Vec::new();
        let stats = exposition::merge(&sources, output, &mut out);
        assert_eq!(stats.samples, INSTANCES * 2_000, "{name}: {stats:?}");
        group.throughput(Throughput::Elements(stats.samples as u64));
        group.bench_function(BenchmarkId::new(format!("{INSTANCES}x2000"), name), |b| {
            b.iter(|| {
                out.clear();
                black_box(exposition::merge(black_box(&sources), output, &mut out).samples)
            })
        });
    }
    group.finish();

    let mut answer = Vec::new();
    exposition::merge(&sources[..10], OutputFormat::Text, &mut answer);
    let zlib_fastest = |text: &[u8]| {
        let mut zlib = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut zlib, text).expect("writes to memory");
        zlib.finish().expect("writes to memory")
    };
    let ours = |text: &[u8]| GzipWriter::new(text.len()).finish(text);
    eprintln!(
        "gzip of a {} byte answer: {} bytes (promfetcher), {} bytes (zlib fastest)",
        answer.len(),
        ours(&answer).len(),
        zlib_fastest(&answer).len()
    );
    let mut group = c.benchmark_group("gzip");
    group.throughput(Throughput::Bytes(answer.len() as u64));
    group.bench_function(BenchmarkId::new("10x2000", "promfetcher"), |b| {
        b.iter(|| black_box(ours(black_box(&answer)).len()))
    });
    group.bench_function(BenchmarkId::new("10x2000", "zlib-fastest"), |b| {
        b.iter(|| black_box(zlib_fastest(black_box(&answer)).len()))
    });
    group.finish();

    let mut group = c.benchmark_group("pipeline");
    group.throughput(Throughput::Bytes(input_bytes as u64));
    for (name, output) in outputs {
        let mut out = Vec::new();
        group.bench_function(BenchmarkId::new(format!("{INSTANCES}x2000"), name), |b| {
            b.iter(|| {
                let parsed: Vec<_> = bodies
                    .iter()
                    .map(|b| {
                        exposition::parse(black_box(b.as_bytes()), InputFormat::Text)
                            .expect("parses")
                    })
                    .collect();
                let sources: Vec<Source<'_>> = parsed
                    .iter()
                    .zip(&labels)
                    .map(|(exposition, labels)| Source { exposition, labels })
                    .collect();
                out.clear();
                black_box(exposition::merge(&sources, output, &mut out).samples)
            })
        });
    }
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = parse_group, merge_groups
}
criterion_main!(benches);
