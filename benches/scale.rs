//! How promfetcher holds a large foundation's route table: the real binary (release build)
//! takes 50,000 and 250,000 endpoints (apps of 10 instances) from a gorouter `/routes` served
//! over loopback, from route-emitter registrations on a real nats-server, and from both. Printed,
//! never judged; one line per case:
//!
//! `scale source=<gorouter|nats|both> endpoints=<n> first_ms=<..> publish_ms=<..> rss_mib=<..>
//! peak_mib=<..> bytes_per_endpoint=<..> cpu_us_per_msg=<..> after_body_ms=<..>
//! publish_cpu_ms=<..>`
//!
//! - `first_ms`: from the process start until its table holds every endpoint (for NATS, the
//!   registrations are published once promfetcher is connected, at route-emitter's pace of
//!   12,500 a second, so 20 s for 250,000);
//! - `publish_ms`: a changed table (one app more): from the gorouter starting to send it (or
//!   the new app's registrations being published) until promfetcher built the table that holds
//!   it (`promfetcher_route_table_last_change_timestamp_seconds`, read once its metrics show
//!   the change, so that the bench's own polling adds nothing);
//!   `after_body_ms` (gorouter): `publish_ms` less the time a client takes to receive the
//!   whole body over the same loopback (the best of three), i.e. from the body's arrival;
//!   `publish_cpu_ms`: promfetcher's CPU time from the change until its metrics show it (the
//!   poll or the registrations, the new table, and the bench's reads of the metrics), steadier
//!   than the wall times on a busy machine;
//! - `rss_mib`: resident memory over two poll rounds, from one round after the first table (the
//!   median of samples every 100 ms: steady);
//!   `peak_mib`: the process's peak over the run; `bytes_per_endpoint`: `rss` / endpoints;
//! - `cpu_us_per_msg` (NATS): promfetcher's CPU time for one round of unchanged
//!   re-registrations (a heartbeat), per message.
//!
//! Run: `cargo bench --bench scale` (about 5 minutes; needs nats-server for the NATS cases, which
//! are left out with a note when it is missing); one size or source:
//! `cargo bench --bench scale -- --endpoints 50000 --source gorouter`; `--poll-seconds N` sets
//! the gorouter poll interval (default 5); `--promfetcher PATH` runs another build of the
//! binary (e.g. a copy of an earlier version's `target/release/promfetcher`) to compare.
//!
//! `cargo bench --bench scale -- --read-body [--endpoints N]` times only the reading of the
//! gorouter body in this process (no HTTP, no table built), in pieces of 16, 64 and 256 KiB, one
//! line per piece size: `read endpoints=<n> piece_kib=<..> body_mib=<..>` then, for the first
//! body, the same body again (`unchanged`) and a body of one app more (`changed`), the median
//! milliseconds of this thread's CPU time over the rounds, wall milliseconds and GB/s of CPU.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use promfetcher::config::{Config, GoDuration, GorouterConfig, Secret};
use promfetcher::routes::BodyReading;
use promfetcher::server::dev_mode::listen_to_local_nats;
use promfetcher_process::{BenchArgs, Process};
use simulated_foundation::{LargeFoundation, NatsServer, StandaloneGorouter};

const INSTANCES: usize = 10;
const GOROUTER_USER: &str = "router-status";
const GOROUTER_PASS: &str = "scale-bench";
const NATS_USER: &str = "nats";
const NATS_PASS: &str = "scale-bench";
/// Upper bound of every wait in a case.
const WAIT_LIMIT: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Gorouter,
    Nats,
    Both,
}

impl Source {
    fn name(self) -> &'static str {
        match self {
            Source::Gorouter => "gorouter",
            Source::Nats => "nats",
            Source::Both => "both",
        }
    }

    fn polls(self) -> bool {
        self != Source::Nats
    }

    fn listens(self) -> bool {
        self != Source::Gorouter
    }
}

/// What one case measured.
struct Measured {
    first: Duration,
    publish: Duration,
    /// promfetcher's CPU time while it took the change in.
    publish_cpu: Duration,
    /// How long receiving the gorouter's body takes a client that does nothing with it.
    body_transfer: Option<Duration>,
    rss_kib: u64,
    peak_kib: u64,
    cpu_per_message: Option<Duration>,
}

fn main() {
    let args = BenchArgs::from_env();
    let sizes: Vec<usize> = match args.value("--endpoints") {
        Some(n) => vec![n.parse().expect("--endpoints takes a number")],
        None => vec![50_000, 250_000],
    };
    if args.has("--read-body") {
        for endpoints in sizes {
            read_body(endpoints);
        }
        return;
    }
    let only = args.value("--source");
    let poll = Duration::from_secs(args.number("--poll-seconds", 5));
    let binary = args.binary(env!("CARGO_BIN_EXE_promfetcher"));
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let _ = rustls::crypto::ring::default_provider().install_default();
    let have_nats = simulated_foundation::find_nats_server().is_ok();
    for endpoints in sizes {
        for source in [Source::Gorouter, Source::Nats, Source::Both] {
            if only.as_deref().is_some_and(|name| name != source.name()) {
                continue;
            }
            if source.listens() && !have_nats {
                println!(
                    "scale source={} endpoints={endpoints} skipped: nats-server is not installed",
                    source.name()
                );
                continue;
            }
            eprintln!("running source={} endpoints={endpoints} ...", source.name());
            let measured = runtime.block_on(run(&binary, source, endpoints, poll));
            print_line(source, endpoints, &measured);
        }
    }
}

fn print_line(source: Source, endpoints: usize, m: &Measured) {
    let mib = |kib: u64| kib as f64 / 1024.0;
    let cpu = m.cpu_per_message.map_or_else(
        || "-".to_string(),
        |d| format!("{:.1}", d.as_secs_f64() * 1e6),
    );
    let after_body = m.body_transfer.map_or_else(
        || "-".to_string(),
        |transfer| m.publish.saturating_sub(transfer).as_millis().to_string(),
    );
    println!(
        "scale source={} endpoints={endpoints} first_ms={} publish_ms={} rss_mib={:.0} peak_mib={:.0} bytes_per_endpoint={} cpu_us_per_msg={cpu} after_body_ms={after_body} publish_cpu_ms={}",
        source.name(),
        m.first.as_millis(),
        m.publish.as_millis(),
        mib(m.rss_kib),
        mib(m.peak_kib),
        m.rss_kib * 1024 / endpoints as u64,
        m.publish_cpu.as_millis(),
    );
}

async fn run(binary: &str, source: Source, endpoints: usize, poll: Duration) -> Measured {
    let large = LargeFoundation::new(endpoints / INSTANCES, INSTANCES);
    let gorouter = match source.polls() {
        true => Some(
            StandaloneGorouter::start(GOROUTER_USER, GOROUTER_PASS, large.routes_body(0))
                .await
                .expect("gorouter"),
        ),
        false => None,
    };
    let body_transfer = match &gorouter {
        Some(gorouter) => Some(body_transfer(gorouter).await),
        None => None,
    };
    let nats = match source.listens() {
        true => Some(
            NatsServer::start(NATS_USER, NATS_PASS, None)
                .await
                .expect("nats-server"),
        ),
        false => None,
    };
    let mut config = Config {
        gorouters: Vec::new(),
        gorouter_poll_interval: GoDuration(poll),
        bind_address: "127.0.0.1".into(),
        port: 0,
        health_check_port: 0,
        data_dir: String::new(),
        ..Config::default()
    };
    if let Some(gorouter) = &gorouter {
        config.gorouters = vec![GorouterConfig {
            host: gorouter.addr().ip().to_string(),
            port: gorouter.addr().port(),
            user: GOROUTER_USER.into(),
            pass: Secret::new(GOROUTER_PASS),
        }];
    }
    let publisher = match &nats {
        Some(server) => {
            listen_to_local_nats(&mut config, server, NATS_USER, NATS_PASS);
            Some(
                async_nats::ConnectOptions::new()
                    .user_and_password(NATS_USER.into(), NATS_PASS.into())
                    .connect(server.url())
                    .await
                    .expect("the bench connects to nats-server"),
            )
        }
        None => None,
    };

    let started = Instant::now();
    let promfetcher = Process::start(binary, &config);
    let client = reqwest::Client::new();
    let metrics = format!("{}/metrics", promfetcher.api);
    let registrations = large.registrations();
    if let Some(publisher) = &publisher {
        wait_for(&client, &metrics, "promfetcher_nats_connected", 1).await;
        publish(publisher, &registrations).await;
    }
    wait_for(
        &client,
        &metrics,
        "promfetcher_route_table_endpoints",
        endpoints,
    )
    .await;
    let first = started.elapsed();

    // steady: after one more poll round (with both sources, the one in which the gorouter's
    // lists give way to the equal ones NATS holds by then), the median of samples over two
    // poll rounds with the same table (a single sample lands before, during or after a poll's
    // body at random)
    tokio::time::sleep(poll).await;
    let mut samples = Vec::new();
    let until = Instant::now() + poll * 2;
    while Instant::now() < until {
        samples.push(promfetcher.rss_kib());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    samples.sort_unstable();
    let rss_kib = samples[samples.len() / 2];

    let cpu_per_message = match &publisher {
        Some(publisher) => {
            let before = promfetcher.cpu_time();
            let counted = metric(&client, &metrics, "promfetcher_nats_messages_total").await;
            publish(publisher, &registrations).await;
            wait_for(
                &client,
                &metrics,
                "promfetcher_nats_messages_total",
                counted + registrations.len(),
            )
            .await;
            let spent = promfetcher.cpu_time().since(&before).total();
            Some(Duration::from_secs_f64(spent / registrations.len() as f64))
        }
        None => None,
    };

    let changed = LargeFoundation::new(large.apps + 1, INSTANCES);
    let cpu_before_change = promfetcher.cpu_time();
    let publish_started = match (&gorouter, &publisher) {
        (Some(gorouter), _) => {
            gorouter.set_routes(changed.routes_body(0));
            // the change counts from the moment the gorouter starts sending it
            loop {
                if let Some(served) = gorouter.last_served() {
                    break served;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        (None, Some(publisher)) => {
            let new_app = &changed.registrations()[registrations.len()..];
            let sent = Instant::now();
            publish(publisher, new_app).await;
            sent
        }
        (None, None) => unreachable!("every case has a source"),
    };
    wait_for(
        &client,
        &metrics,
        "promfetcher_route_table_endpoints",
        endpoints + INSTANCES,
    )
    .await;
    // From when the change started to when promfetcher built the table that holds it (its own
    // timestamp, read once the change shows): the bench's polling of `/metrics` adds nothing.
    let started_at = SystemTime::now() - publish_started.elapsed();
    let built_at = UNIX_EPOCH
        + Duration::from_secs_f64(
            metric_value(
                &client,
                &metrics,
                "promfetcher_route_table_last_change_timestamp_seconds",
            )
            .await,
        );
    let publish = built_at.duration_since(started_at).unwrap_or_default();
    let publish_cpu = promfetcher.cpu_time().since(&cpu_before_change).total();
    Measured {
        first,
        publish,
        publish_cpu: Duration::from_secs_f64(publish_cpu),
        body_transfer,
        rss_kib,
        peak_kib: promfetcher.peak_rss_kib(),
        cpu_per_message,
    }
}

/// The least time, of three, a client takes to receive `gorouter`'s whole `/routes` body.
async fn body_transfer(gorouter: &StandaloneGorouter) -> Duration {
    let client = reqwest::Client::new();
    let url = format!("http://{}/routes", gorouter.addr());
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let started = Instant::now();
        let mut response = client
            .get(&url)
            .basic_auth(GOROUTER_USER, Some(GOROUTER_PASS))
            .send()
            .await
            .expect("the gorouter answers");
        while response.chunk().await.expect("the body arrives").is_some() {}
        best = best.min(started.elapsed());
    }
    best
}

/// Timed rounds of each `--read-body` case.
const READ_ROUNDS: usize = 7;

/// Prints how fast the body of `endpoints` endpoints is read, in pieces of several sizes.
fn read_body(endpoints: usize) {
    let large = LargeFoundation::new(endpoints / INSTANCES, INSTANCES);
    let (body, one_more) = (large.routes_body(0), large.routes_body(1));
    for piece_kib in [16, 64, 256] {
        let piece = piece_kib * 1024;
        let mut first = Vec::new();
        let mut unchanged = Vec::new();
        let mut changed = Vec::new();
        for round in 0..READ_ROUNDS {
            // the first body is slow (every route parsed): three rounds are enough
            let mut reading = BodyReading::default();
            if round < 3 {
                first.push(timed(|| reading.read(&body, piece), true));
            } else {
                reading.read(&body, piece).expect("the body is read");
            }
            unchanged.push(timed(|| reading.read(&body, piece), false));
            changed.push(timed(|| reading.read(&one_more, piece), true));
        }
        let line = |name: &str, spent: &mut Vec<(Duration, Duration)>| {
            spent.sort_unstable();
            let (cpu, wall) = spent[spent.len() / 2];
            format!(
                "{name}_cpu_ms={:.1} {name}_wall_ms={:.1} {name}_gb_s={:.2}",
                cpu.as_secs_f64() * 1e3,
                wall.as_secs_f64() * 1e3,
                body.len() as f64 / cpu.as_secs_f64() / 1e9
            )
        };
        println!(
            "read endpoints={endpoints} piece_kib={piece_kib} body_mib={:.0} {} {} {}",
            body.len() as f64 / (1024.0 * 1024.0),
            line("first", &mut first),
            line("unchanged", &mut unchanged),
            line("changed", &mut changed),
        );
    }
}

/// This thread's CPU time and the wall time `read` takes, checking it tells a change as `changed`.
fn timed(
    read: impl FnOnce() -> Result<(usize, bool), promfetcher::routes::BodyError>,
    changed: bool,
) -> (Duration, Duration) {
    let (cpu, wall) = (thread_cpu_time(), Instant::now());
    let (_, found) = read().expect("the body is read");
    let spent = (thread_cpu_time() - cpu, wall.elapsed());
    assert_eq!(found, changed, "the body was read as changed: {found}");
    spent
}

/// The CPU time this thread has run (Linux's scheduler statistics, in nanoseconds).
fn thread_cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").expect("schedstat");
    let ns = stat.split(' ').next().and_then(|n| n.parse().ok());
    Duration::from_nanos(ns.expect("schedstat starts with the CPU time in ns"))
}

/// Registrations per second, as route-emitter spreads 250,000 of them over its 20 s interval.
const REGISTRATIONS_PER_SECOND: usize = 12_500;

/// Publishes `bodies` on `router.register` at [`REGISTRATIONS_PER_SECOND`] (all at once, a
/// subscriber falls behind and nats-server drops messages to it, as it would in production).
async fn publish(client: &async_nats::Client, bodies: &[String]) {
    let per_tick = REGISTRATIONS_PER_SECOND / 100;
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    for batch in bodies.chunks(per_tick) {
        tick.tick().await;
        for body in batch {
            client
                .publish("router.register", body.clone().into())
                .await
                .expect("publish");
        }
        client.flush().await.expect("flush");
    }
}

/// The sum of a metric's samples in promfetcher's own metrics.
async fn metric(client: &reqwest::Client, url: &str, name: &str) -> usize {
    metric_value(client, url, name).await as usize
}

/// The sum of the samples of `name` in promfetcher's own metrics (0 when it does not answer).
async fn metric_value(client: &reqwest::Client, url: &str, name: &str) -> f64 {
    let body = match client.get(url).send().await {
        Ok(response) => response.text().await.unwrap_or_default(),
        Err(_) => return 0.0,
    };
    body.lines()
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>()
}

/// Waits until `name` reaches `at_least` (checked every 10 ms, at most [`WAIT_LIMIT`]).
async fn wait_for(client: &reqwest::Client, url: &str, name: &str, at_least: usize) {
    let deadline = Instant::now() + WAIT_LIMIT;
    while metric(client, url, name).await < at_least {
        assert!(Instant::now() < deadline, "{name} never reached {at_least}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
