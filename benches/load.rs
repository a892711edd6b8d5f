//! End-to-end load benchmark: the real promfetcher binary (release build) against the simulated
//! foundation, driven by concurrent callers for a fixed time per scenario. It prints a table of
//! answers/s, latency p50/p99, promfetcher's peak RSS, its CPU per answer and per million merged
//! samples, the cores it kept busy and the kernel's share of that time, and the answer's size on
//! the wire (compressed when the scenario accepts gzip), and how many answers each fan-out served
//! (1 where no two requests may share one). It measures; it never passes or fails on
//! time. The first two scenarios are the load a Prometheus server makes (every request its own
//! fan-out); the others let callers share fan-outs.
//!
//! Run all scenarios:      cargo bench --bench load
//! One scenario, longer:   cargo bench --bench load -- --scenario 10x500-text --seconds 30
//! Other number of callers: cargo bench --bench load -- --scenario 100x2000-text --callers 1
//! Another build, to compare: cargo bench --bench load -- --promfetcher /path/to/promfetcher

use std::time::{Duration, Instant};

use promfetcher::config::ExternalExporterConfig;
use promfetcher::server::dev_mode::{config_for_foundation, dev_exporter_config};
use promfetcher_process::{BenchArgs, CpuTime, Process, Signal};
use simulated_foundation::{AppSpec, Foundation, FoundationSpec, InstanceSpec};

/// One load shape.
#[derive(Clone)]
struct Scenario {
    name: &'static str,
    instances: usize,
    /// Generated series per instance on top of the simulator's base body.
    extra_series: usize,
    openmetrics: bool,
    /// The caller sends `Accept-Encoding: gzip`.
    accept_gzip: bool,
    delay: Duration,
    /// Instances that refuse connections.
    failing: usize,
    callers: usize,
    /// Each caller sends its own `Authorization`, so no two requests may share a fan-out.
    distinct_credentials: bool,
    /// External exporters configured (all the simulated one, under different names).
    exporters: usize,
    /// Apps of `instances` instances each; a caller asks for them in turn.
    apps: usize,
    /// Every request sends its own `Authorization`, as Prometheus scraping many apps on their
    /// own schedules does in effect: no two requests may share a fan-out.
    every_request_unique: bool,
}

fn scenarios() -> Vec<Scenario> {
    let base = Scenario {
        name: "",
        instances: 10,
        extra_series: 485,
        openmetrics: false,
        accept_gzip: false,
        delay: Duration::ZERO,
        failing: 0,
        callers: 8,
        distinct_credentials: false,
        exporters: 0,
        apps: 1,
        every_request_unique: false,
    };
    vec![
        Scenario {
            name: "8-apps-10x500-text-every-request-unique",
            apps: 8,
            every_request_unique: true,
            ..base.clone()
        },
        Scenario {
            name: "8-apps-10x500-gzip-every-request-unique",
            apps: 8,
            accept_gzip: true,
            every_request_unique: true,
            ..base.clone()
        },
        Scenario {
            name: "10x500-text",
            ..base.clone()
        },
        Scenario {
            name: "10x500-text+4-exporters",
            exporters: 4,
            ..base.clone()
        },
        Scenario {
            name: "10x500-text-distinct-credentials",
            distinct_credentials: true,
            ..base.clone()
        },
        Scenario {
            name: "10x500-text-1-caller",
            callers: 1,
            ..base.clone()
        },
        Scenario {
            name: "10x500-openmetrics",
            openmetrics: true,
            ..base.clone()
        },
        Scenario {
            name: "10x500-gzip",
            accept_gzip: true,
            ..base.clone()
        },
        Scenario {
            name: "10x500-gzip-distinct-credentials",
            accept_gzip: true,
            distinct_credentials: true,
            ..base.clone()
        },
        Scenario {
            name: "100x2000-text",
            instances: 100,
            extra_series: 1985,
            callers: 2,
            ..base.clone()
        },
        Scenario {
            name: "40x100ms",
            instances: 40,
            extra_series: 85,
            delay: Duration::from_millis(100),
            callers: 1,
            ..base.clone()
        },
        Scenario {
            name: "10x500-200-callers",
            callers: 200,
            ..base.clone()
        },
        Scenario {
            name: "10x500-200-callers-distinct-credentials",
            callers: 200,
            distinct_credentials: true,
            ..base.clone()
        },
        Scenario {
            name: "100x500-5%-failing",
            instances: 100,
            failing: 5,
            callers: 8,
            ..base
        },
    ]
}

struct Row {
    name: &'static str,
    series_per_instance: usize,
    answers: usize,
    errors: usize,
    seconds: f64,
    p50: Duration,
    p99: Duration,
    peak_rss_kib: u64,
    cpu: CpuTime,
    samples_per_answer: usize,
    answer_bytes: usize,
    /// Fan-outs promfetcher ran in the measured window.
    fan_outs: f64,
}

fn main() {
    let args = BenchArgs::from_env();
    let seconds: f64 = args.number("--seconds", 10.0);
    let only = args.value("--scenario");
    let callers: Option<usize> = args.value("--callers").and_then(|s| s.parse().ok());
    let binary = args.binary(env!("CARGO_BIN_EXE_promfetcher"));
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut rows = Vec::new();
    for mut scenario in scenarios() {
        if let Some(callers) = callers {
            scenario.callers = callers;
        }
        if only.as_deref().is_some_and(|name| name != scenario.name) {
            continue;
        }
        eprintln!("running {} for {seconds} s ...", scenario.name);
        rows.push(runtime.block_on(run(&binary, &scenario, Duration::from_secs_f64(seconds))));
    }
    print_table(&rows);
}

async fn run(binary: &str, scenario: &Scenario, duration: Duration) -> Row {
    let instances = (0..scenario.instances)
        .map(|i| {
            let mut instance = InstanceSpec::healthy()
                .with_extra_series(scenario.extra_series)
                .with_delay(scenario.delay);
            if scenario.openmetrics {
                instance = instance.openmetrics();
            }
            if i < scenario.failing {
                instance = InstanceSpec::down();
            }
            instance
        })
        .collect::<Vec<_>>();
    let app_names: Vec<String> = match scenario.apps {
        1 => vec!["load".to_string()],
        apps => (0..apps).map(|i| format!("load-{i}")).collect(),
    };
    let spec = app_names
        .iter()
        .fold(FoundationSpec::dev_default(), |spec, name| {
            spec.with_app(AppSpec::new("acme", "bench", name).with_instances(instances.clone()))
        });
    let foundation = Foundation::start(spec).await.expect("foundation");
    let mut config = config_for_foundation(&foundation, 0, 0);
    config.logging.level = "info".into();
    config.external_exporters = (0..scenario.exporters)
        .map(|i| ExternalExporterConfig {
            name: format!("exporter-{i}"),
            ..dev_exporter_config(&foundation)
        })
        .collect();
    let mut promfetcher = Process::start(binary, &config);
    let client = reqwest::Client::builder()
        .no_gzip()
        .pool_max_idle_per_host(scenario.callers)
        .build()
        .expect("client");
    promfetcher.wait_ready(&client).await;
    let urls: Vec<String> = app_names
        .iter()
        .map(|name| format!("{}/v1/apps/acme/bench/{name}/metrics", promfetcher.api))
        .collect();
    let url = &urls[0];

    let series_per_instance = count_samples(
        &client
            .get(format!(
                "http://{}/metrics",
                foundation.instance_addr(&app_names[0], scenario.failing)
            ))
            .send()
            .await
            .expect("instance answers")
            .bytes()
            .await
            .expect("body"),
    );
    let sample_answer = answer(&client, url, false, None)
        .await
        .expect("first answer")
        .bytes()
        .await
        .expect("first answer's body");
    let samples_per_answer = count_samples(&sample_answer);
    let answer_bytes = if scenario.accept_gzip {
        match answer(&client, url, true, None).await {
            Some(response) => drained(response).await.unwrap_or(0),
            None => 0,
        }
    } else {
        sample_answer.len()
    };

    // warm-up, then the measured window
    drive(&client, &urls, scenario, Duration::from_secs(1)).await;
    let fan_outs_before = fan_outs(&client, &promfetcher).await;
    let cpu_before = promfetcher.cpu_time();
    let started = Instant::now();
    let (mut latencies, errors) = drive(&client, &urls, scenario, duration).await;
    let seconds = started.elapsed().as_secs_f64();
    let cpu = promfetcher.cpu_time().since(&cpu_before);
    let fan_outs = fan_outs(&client, &promfetcher).await - fan_outs_before;
    let peak_rss_kib = promfetcher.peak_rss_kib();
    promfetcher.signal(Signal::TERM);
    let _ = tokio::task::spawn_blocking(move || promfetcher.wait_exit()).await;
    foundation.shutdown().await;

    latencies.sort();
    let percentile = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    Row {
        name: scenario.name,
        series_per_instance,
        answers: latencies.len(),
        errors,
        seconds,
        p50: percentile(0.50),
        p99: percentile(0.99),
        peak_rss_kib,
        cpu,
        samples_per_answer,
        answer_bytes,
        fan_outs,
    }
}

/// How many fan-outs promfetcher has run so far, from its own metrics (the count of
/// `promfetcher_fan_out_duration_seconds`); asking for them is no fan-out.
async fn fan_outs(client: &reqwest::Client, promfetcher: &Process) -> f64 {
    let body = client
        .get(format!("{}/metrics", promfetcher.api))
        .send()
        .await
        .expect("promfetcher's own metrics")
        .text()
        .await
        .expect("own metrics body");
    body.lines()
        .filter_map(|line| line.strip_prefix("promfetcher_fan_out_duration_seconds_count"))
        .filter_map(|rest| rest.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// `scenario.callers` loops asking for the apps (`urls`, each caller from its own starting
/// point, in turn) until `duration` has passed.
async fn drive(
    client: &reqwest::Client,
    urls: &[String],
    scenario: &Scenario,
    duration: Duration,
) -> (Vec<Duration>, usize) {
    let deadline = Instant::now() + duration;
    let callers = (0..scenario.callers).map(|caller| {
        let client = client.clone();
        let urls = urls.to_vec();
        let gzip = scenario.accept_gzip;
        let (distinct, unique) = (scenario.distinct_credentials, scenario.every_request_unique);
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0;
            let mut sent = 0usize;
            while Instant::now() < deadline {
                let url = &urls[(caller + sent) % urls.len()];
                let credential = match (unique, distinct) {
                    (true, _) => Some(format!("Bearer caller-{caller}-{sent}")),
                    (false, true) => Some(format!("Bearer caller-{caller}")),
                    (false, false) => None,
                };
                sent += 1;
                let started = Instant::now();
                let response = answer(&client, url, gzip, credential.as_deref()).await;
                let length = match response {
                    Some(response) => drained(response).await,
                    None => None,
                };
                match length {
                    Some(length) if length > 0 => latencies.push(started.elapsed()),
                    _ => errors += 1,
                }
            }
            (latencies, errors)
        })
    });
    let mut all = Vec::new();
    let mut errors = 0;
    for (latencies, caller_errors) in futures_util::future::join_all(callers)
        .await
        .into_iter()
        .flatten()
    {
        all.extend(latencies);
        errors += caller_errors;
    }
    (all, errors)
}

/// The `200` answer to one request (body still compressed when `gzip`), or `None` on any failure.
async fn answer(
    client: &reqwest::Client,
    url: &str,
    gzip: bool,
    authorization: Option<&str>,
) -> Option<reqwest::Response> {
    let mut request = client
        .get(url)
        .header("X-Prometheus-Scrape-Timeout-Seconds", "10");
    if gzip {
        request = request.header("Accept-Encoding", "gzip");
    }
    if let Some(authorization) = authorization {
        request = request.header("Authorization", authorization);
    }
    let response = request.send().await.ok()?;
    (response.status() == 200).then_some(response)
}

/// Reads an answer to its end chunk by chunk without keeping it, as a load generator should, so
/// that the callers' CPU goes to the transfer and not to copying bodies together. The number of
/// bytes, or `None` when the body broke off.
async fn drained(mut response: reqwest::Response) -> Option<usize> {
    let mut length = 0;
    while let Some(chunk) = response.chunk().await.ok()? {
        length += chunk.len();
    }
    Some(length)
}

fn count_samples(body: &[u8]) -> usize {
    body.split(|b| *b == b'\n')
        .filter(|line| !line.is_empty() && line[0] != b'#')
        .count()
}

fn print_table(rows: &[Row]) {
    println!(
        "| scenario | series/instance | answers/s | p50 ms | p99 ms | peak RSS MiB | CPU ms per answer | CPU s per M samples | cores used | of it kernel | answer KiB on the wire | failed answers | answers per fan-out |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for row in rows {
        let merged_samples = (row.answers * row.samples_per_answer) as f64;
        println!(
            "| {} | {} | {:.0} | {:.1} | {:.1} | {:.0} | {:.2} | {:.2} | {:.2} | {:.0} % | {:.0} | {} | {:.2} |",
            row.name,
            row.series_per_instance,
            row.answers as f64 / row.seconds,
            row.p50.as_secs_f64() * 1000.0,
            row.p99.as_secs_f64() * 1000.0,
            row.peak_rss_kib as f64 / 1024.0,
            if row.answers > 0 {
                row.cpu.total() / row.answers as f64 * 1e3
            } else {
                0.0
            },
            if merged_samples > 0.0 {
                row.cpu.total() / merged_samples * 1e6
            } else {
                0.0
            },
            row.cpu.total() / row.seconds,
            if row.cpu.total() > 0.0 {
                row.cpu.system / row.cpu.total() * 100.0
            } else {
                0.0
            },
            row.answer_bytes as f64 / 1024.0,
            row.errors,
            row.answers as f64 / row.fan_outs.max(1.0),
        );
    }
}
