//! Load against the real `promfetcher` binary (the debug build of the test command): 200
//! concurrent callers for 60 s against one app of 100 instances of which 5 fail (2 down, 500,
//! 503, garbage). The callers come as 20 clients of 10 callers sharing credentials, as
//! Prometheus replicas scraping with one secret do: promfetcher may coalesce a client's
//! identical requests, but the 20 credentials never share a fan-out, so 20 fan-outs of 100
//! instances are in flight at any time. It asserts what an operator relies on, not speed: no
//! 5xx, every answer names all 100 instances, file descriptors back to their idle count once
//! the callers are gone, and no memory growth over the steady state; it prints answers/s, p50
//! and p99.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::PROMFETCHER;
use crate::common::{self, config_for, samples_named, WAIT_LIMIT};
use promfetcher::config::GoDuration;
use promfetcher_process::Process;
use simulated_foundation::{AppSpec, Foundation, FoundationSpec, InstanceSpec};

const CALLERS: usize = 200;
/// Callers sharing one set of credentials.
const PER_CREDENTIAL: usize = 10;
const INSTANCES: usize = 100;
/// Instances that always fail (5 %).
const FAILING: usize = 5;
/// What the callers announce, as Prometheus does: promfetcher answers within it, reporting
/// the instances it could not scrape in time.
const SCRAPE_TIMEOUT_SECONDS: &str = "15";
const RUN: Duration = Duration::from_secs(60);
/// The first seconds fill connection pools and allocator arenas; growth is measured after them.
const WARM_UP: Duration = Duration::from_secs(10);
/// Callers start one after another over this.
const RAMP_UP: Duration = Duration::from_secs(8);
/// Idle connections to instances close after this, so the descriptor count returns to idle.
const IDLE_TIMEOUT: Duration = Duration::from_secs(2);
/// Requests that may end without an answer: caller timeouts (the test client gives up after
/// 30 s, twice the scrape timeout it announces) and requests dropped by the server (408 or
/// connection closed). On a quiet machine none is expected; on a machine shared with other
/// builds an HTTP worker can get no CPU for 5 s, and actix then drops connections whose
/// request it has not read yet. More than this share means promfetcher stalls requests.
const MAX_UNANSWERED_SHARE: f64 = 0.01;
/// Descriptors that may still be closing when counted after the run.
const FD_SLACK: usize = 5;
/// RSS may grow by this much (MiB) over the steady state: allocator arenas settling. A leak
/// of one answer (about 0.3 MiB) per fan-out would exceed it within seconds.
const RSS_SLACK_MIB: f64 = 48.0;
/// Open files the run needs in this process and in promfetcher alike: each holds about 1,700 at
/// the peak (the callers' and the instances' connections), beyond the soft limit of 1024 an
/// ordinary user often has.
const OPEN_FILES_NEEDED: u64 = 2048;

/// 100 instances; 5 % failing, spread over the indexes.
fn load_app() -> FoundationSpec {
    let instances = (0..INSTANCES)
        .map(|i| match i {
            7 | 95 => InstanceSpec::down(),
            29 => InstanceSpec::status(500),
            51 => InstanceSpec::status(503),
            73 => InstanceSpec::garbage(),
            _ => InstanceSpec::healthy(),
        })
        .collect();
    FoundationSpec::dev_default()
        .with_app(AppSpec::new("acme", "load", "busy").with_instances(instances))
}

/// Open file descriptors of `pid`.
fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("/proc/PID/fd of promfetcher")
        .count()
}

/// Resident memory of `pid`, in MiB.
fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/PID/status");
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kib / 1024.0
}

/// What one caller saw.
#[derive(Default)]
struct Seen {
    latencies: Vec<Duration>,
    timeouts: usize,
    /// Instances beyond the 5 failing ones that answers reported down (late under saturation).
    late_instances: usize,
    /// Requests the server dropped without an answer: `408` (actix closes a connection whose
    /// request it could not read within 5 s) or the connection closed.
    dropped: Vec<String>,
    /// Every other answer that was not a complete 200, shortened.
    bad: Vec<String>,
}

/// Asks `url` with `user`'s credentials and Prometheus' scrape-timeout header until `deadline`;
/// the request running then is finished (within the scrape timeout) and counted.
async fn caller(client: reqwest::Client, url: Arc<str>, user: String, deadline: Instant) -> Seen {
    let mut seen = Seen::default();
    while Instant::now() < deadline {
        let started = Instant::now();
        let answered = async {
            let response = client
                .get(&*url)
                .basic_auth(&user, Some("pw"))
                .header(
                    "X-Prometheus-Scrape-Timeout-Seconds",
                    SCRAPE_TIMEOUT_SECONDS,
                )
                .send()
                .await?;
            let status = response.status().as_u16();
            Ok::<_, reqwest::Error>((status, response.text().await?))
        }
        .await;
        match answered {
            Ok((200, body)) if samples_named(&body, "promfetcher_up").len() == INSTANCES => {
                seen.latencies.push(started.elapsed());
                let down = samples_named(&body, "promfetcher_up")
                    .iter()
                    .filter(|l| l.ends_with(" 0"))
                    .count();
                seen.late_instances += down.saturating_sub(FAILING);
            }
            Ok((408, _)) => seen.dropped.push("408 Request Timeout".into()),
            Ok((status, body)) => {
                let named = samples_named(&body, "promfetcher_up").len();
                let head: String = body.chars().take(200).collect();
                seen.bad
                    .push(format!("{status} naming {named} instances: {head}"));
            }
            Err(e) if e.is_timeout() => seen.timeouts += 1,
            Err(e) => seen.dropped.push(format!("no answer: {e:?}")),
        }
    }
    seen
}

/// Raises this process's soft limit on open files to its hard limit, for itself and for the
/// promfetcher it starts (a child inherits it); fails when even the hard limit is below
/// [`OPEN_FILES_NEEDED`]. Process-wide, but only ever upwards: no other test can notice.
fn raise_open_files_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    limit.current = limit.maximum;
    setrlimit(Resource::Nofile, limit).expect("raise the soft limit on open files");
    // None is unlimited
    let allowed = getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX);
    assert!(
        allowed >= OPEN_FILES_NEEDED,
        "the load test needs {OPEN_FILES_NEEDED} open files, the hard limit allows {allowed}: \
         raise it (ulimit -Hn as root, or nofile in /etc/security/limits.conf)"
    );
}

fn percentile_ms(sorted: &[Duration], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(index).copied().unwrap_or_default().as_secs_f64() * 1000.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_callers_for_a_minute_no_5xx_no_fd_or_memory_growth() {
    raise_open_files_limit();
    let foundation = Foundation::start(load_app()).await.expect("foundation");
    let mut config = config_for(&foundation);
    config.idle_conn_timeout = GoDuration(IDLE_TIMEOUT);
    // the default poll interval: a new table every 200 ms (the tests' default) would also end
    // the sharing of fan-outs, which is keyed by table snapshot
    config.gorouter_poll_interval = GoDuration::from_secs(30);
    let process = Process::start(PROMFETCHER, &config);
    let pid = process.child.id();
    let url: Arc<str> = format!("{}/v1/apps/acme/load/busy/metrics", process.api).into();
    let fds_idle = {
        let client = common::client();
        let ready = Instant::now() + WAIT_LIMIT;
        while common::status_of(&client, &process.health).await != Some(200) {
            assert!(Instant::now() < ready, "promfetcher never became ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let alone = Instant::now();
        assert_eq!(common::status_of(&client, &url).await, Some(200));
        println!("load: one answer alone takes {:?}", alone.elapsed());
        drop(client);
        tokio::time::sleep(IDLE_TIMEOUT * 2).await;
        fd_count(pid)
    };

    let started = Instant::now();
    let deadline = started + RUN;
    // callers join one by one over most of the warm-up, as scrapers do, not as one burst of
    // 200 connections
    let mut callers = Vec::with_capacity(CALLERS);
    for group in 0..CALLERS / PER_CREDENTIAL {
        let client = common::client();
        for _ in 0..PER_CREDENTIAL {
            callers.push(tokio::spawn(caller(
                client.clone(),
                url.clone(),
                format!("scraper-{group}"),
                deadline,
            )));
            tokio::time::sleep(RAMP_UP / CALLERS as u32).await;
        }
    }
    tokio::time::sleep(WARM_UP.saturating_sub(started.elapsed())).await;
    let rss_start = rss_mib(pid);
    let mut rss_series = vec![rss_start];
    while Instant::now() + Duration::from_secs(5) < deadline {
        tokio::time::sleep(Duration::from_secs(5)).await;
        rss_series.push(rss_mib(pid));
    }
    let fds_busy = fd_count(pid);
    tokio::time::sleep(deadline.saturating_duration_since(Instant::now())).await;
    let rss_end = rss_mib(pid);

    let (mut latencies, mut timeouts, mut late) = (Vec::new(), 0, 0);
    let (mut dropped, mut bad) = (Vec::new(), Vec::new());
    for caller in callers {
        let seen = caller.await.expect("caller");
        latencies.extend(seen.latencies);
        timeouts += seen.timeouts;
        late += seen.late_instances;
        dropped.extend(seen.dropped);
        bad.extend(seen.bad);
    }
    // the callers' clients are gone with their tasks; pooled connections to instances idle out
    let settle = Instant::now() + WAIT_LIMIT;
    let mut fds_after = fd_count(pid);
    while fds_after > fds_idle + FD_SLACK && Instant::now() < settle {
        tokio::time::sleep(Duration::from_millis(500)).await;
        fds_after = fd_count(pid);
    }
    let coalesced = {
        let own = common::client()
            .get(format!("{}/metrics", process.api))
            .send()
            .await
            .expect("own metrics");
        let own = own.text().await.expect("own metrics body");
        own.lines()
            .find_map(|l| l.strip_prefix("promfetcher_coalesced_requests_total "))
            .unwrap_or("?")
            .to_string()
    };
    latencies.sort();
    let answers = latencies.len();
    let rss: Vec<String> = rss_series.iter().map(|r| format!("{r:.0}")).collect();
    println!(
        "load: {CALLERS} callers ({} credentials), {INSTANCES} instances (5 failing), {:.0} s: \
         {answers} complete answers ({coalesced} from a shared fan-out), {:.1} answers/s, p50 \
         {:.0} ms, p99 {:.0} ms, {timeouts} caller timeouts, {} dropped, {late} healthy instances \
         reported late (first dropped: {:?}); fds idle {fds_idle}, under load {fds_busy}, after {fds_after}; RSS \
         every 5 s from the steady state {} -> {rss_end:.0} MiB",
        CALLERS / PER_CREDENTIAL,
        RUN.as_secs_f64(),
        answers as f64 / RUN.as_secs_f64(),
        percentile_ms(&latencies, 0.50),
        percentile_ms(&latencies, 0.99),
        dropped.len(),
        dropped.first(),
        rss.join(" "),
    );

    assert!(
        bad.is_empty(),
        "{} answers were not a complete 200, first: {}",
        bad.len(),
        bad[0]
    );
    assert!(answers >= CALLERS, "only {answers} answers in {RUN:?}");
    let unanswered = timeouts + dropped.len();
    assert!(
        unanswered as f64 <= MAX_UNANSWERED_SHARE * (answers + unanswered) as f64,
        "{timeouts} timeouts and {} dropped of {} requests, first dropped: {:?}",
        dropped.len(),
        answers + unanswered,
        dropped.first()
    );
    assert!(
        fds_after <= fds_idle + FD_SLACK,
        "file descriptors: {fds_idle} idle before the run, {fds_after} idle after it"
    );
    assert!(
        rss_end <= rss_start + RSS_SLACK_MIB,
        "RSS grew from {rss_start:.0} to {rss_end:.0} MiB over the steady state"
    );
}
