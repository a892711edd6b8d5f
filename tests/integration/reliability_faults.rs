//! Faults around the real `promfetcher` binary, on the simulated foundation: the gorouter
//! stopped, answering 401 or garbage, and flapping while callers ask (the last good table keeps
//! answering completely; health, own metrics and the log say which source fails and why);
//! SIGTERM with 20 requests in flight against slow instances and SIGUSR1 with requests arriving
//! during the lame-duck period (every request completes with 200, exit code 0); running out of
//! file descriptors (only new connections fail, clearly, until idle ones expire). NATS down and
//! back is in nats.rs, the database down and back in broker.rs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::PROMFETCHER;
use crate::common::{self, client, config_for, samples, samples_named, WAIT_LIMIT};
use promfetcher::config::GoDuration;
use promfetcher_process::{Process, Signal};
use simulated_foundation::{AppSpec, Foundation, FoundationSpec, GorouterMode, InstanceSpec};

const SHOP: &str = "/v1/apps/acme/dev/shop/metrics";
const GOROUTER_UP: &str = r#"promfetcher_route_source_up{source="gorouter"}"#;

/// Status and body of GET `url`; panics when nothing answers.
async fn get(client: &reqwest::Client, url: &str) -> (u16, String) {
    let response = client.get(url).send().await.expect("promfetcher answers");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

/// The value of one series of promfetcher's own metrics (`name{labels}` as written).
async fn own_metric(client: &reqwest::Client, process: &Process, series: &str) -> Option<f64> {
    let (_, body) = get(client, &format!("{}/metrics", process.api)).await;
    common::sample_value(&body, series)
}

/// Polls `check` every 50 ms until it holds, failing after [`WAIT_LIMIT`].
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + WAIT_LIMIT;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The binary on `config`, once its health answers 200.
async fn start_ready(config: &promfetcher::config::Config) -> Process {
    let process = Process::start(PROMFETCHER, config);
    let client = client();
    eventually("health 200", || async {
        common::status_of(&client, &process.health).await == Some(200)
    })
    .await;
    process
}

/// Asserts that `body` is a complete answer for `instances` healthy instances with as many
/// samples as `expected_samples`.
fn assert_complete(body: &str, instances: usize, expected_samples: usize) {
    let up = samples_named(body, "promfetcher_up");
    assert_eq!(up.len(), instances, "{body}");
    assert!(up.iter().all(|l| l.ends_with(" 1")), "{body}");
    assert_eq!(samples(body).len(), expected_samples, "{body}");
}

/// How the gorouter misbehaves in [`each_gorouter_fault_keeps_the_last_table_and_says_why`].
#[derive(Debug, Clone, Copy)]
enum Fault {
    Stopped,
    Rejects,
    Garbage,
}

#[tokio::test]
async fn each_gorouter_fault_keeps_the_last_table_and_says_why() {
    let mut foundation = Foundation::start(FoundationSpec::dev_default())
        .await
        .unwrap();
    let process = start_ready(&config_for(&foundation)).await;
    let client = client();
    let shop = format!("{}{SHOP}", process.api);
    let (status, first) = get(&client, &shop).await;
    assert_eq!(status, 200, "{first}");
    let expected_samples = samples(&first).len();
    assert_eq!(own_metric(&client, &process, GOROUTER_UP).await, Some(1.0));

    for (fault, reason, logged) in [
        (Fault::Stopped, "unreachable", "is unreachable"),
        (Fault::Rejects, "rejected", "rejected the credentials (401)"),
        (Fault::Garbage, "bad_body", "is not a route table"),
    ] {
        let errors = format!(r#"promfetcher_gorouter_poll_errors_total{{reason="{reason}"}}"#);
        let before = own_metric(&client, &process, &errors).await.unwrap_or(0.0);
        match fault {
            Fault::Stopped => foundation.stop_gorouter().await,
            Fault::Rejects => foundation.set_gorouter_mode(GorouterMode::Status(401)),
            Fault::Garbage => foundation.set_gorouter_mode(GorouterMode::Garbage),
        }
        eventually(&format!("{fault:?} counted as {reason}"), || async {
            own_metric(&client, &process, GOROUTER_UP).await == Some(0.0)
                && own_metric(&client, &process, &errors).await > Some(before)
        })
        .await;
        // a few more failed polls (every 200 ms), then the last good table still answers
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (status, body) = get(&client, &shop).await;
        assert_eq!(status, 200, "{fault:?}: {body}");
        assert_complete(&body, 3, expected_samples);
        let (status, health) = get(&client, &process.health).await;
        assert_eq!(status, 200, "{fault:?}: serving from the last good table");
        assert!(
            health.starts_with("ok, but the route table is stale: gorouter failing for")
                && health.contains(logged),
            "{fault:?}: {health}"
        );
        let age = own_metric(&client, &process, "promfetch_latest_time_scrape_route").await;
        assert!(age >= Some(0.5), "{fault:?}: last success {age:?} s ago");
        assert!(
            process.log().iter().any(|l| l.contains(logged)),
            "{fault:?}: the log does not say {logged:?}"
        );

        match fault {
            Fault::Stopped => foundation
                .start_gorouter()
                .await
                .expect("gorouter restarts"),
            Fault::Rejects | Fault::Garbage => foundation.set_gorouter_mode(GorouterMode::Normal),
        }
        eventually(&format!("recovery from {fault:?}"), || async {
            get(&client, &process.health).await == (200, "ok".to_string())
                && own_metric(&client, &process, GOROUTER_UP).await == Some(1.0)
        })
        .await;
    }
    let password = foundation.gorouter_credentials().1.to_string();
    assert!(
        process.log().iter().all(|l| !l.contains(&password)),
        "the gorouter password is in the log"
    );
}

#[tokio::test]
async fn a_flapping_gorouter_never_costs_a_caller_an_instance() {
    let mut foundation = Foundation::start(FoundationSpec::dev_default())
        .await
        .unwrap();
    let mut config = config_for(&foundation);
    config.gorouter_poll_interval = GoDuration::from_millis(100);
    let process = start_ready(&config).await;
    let client = client();
    let shop = format!("{}{SHOP}", process.api);
    let (_, first) = get(&client, &shop).await;
    let expected_samples = samples(&first).len();
    let unreachable = r#"promfetcher_gorouter_poll_errors_total{reason="unreachable"}"#;

    let done = Arc::new(AtomicBool::new(false));
    let callers: Vec<_> = (0..8)
        .map(|_| {
            let (client, shop, done) = (client.clone(), shop.clone(), done.clone());
            tokio::spawn(async move {
                let mut answers = 0;
                // bounded by the flapping below (about 6 s) and by WAIT_LIMIT
                let deadline = Instant::now() + WAIT_LIMIT;
                while !done.load(Ordering::SeqCst) && Instant::now() < deadline {
                    let (status, body) = get(&client, &shop).await;
                    assert_eq!(status, 200, "{body}");
                    assert_complete(&body, 3, expected_samples);
                    answers += 1;
                }
                answers
            })
        })
        .collect();
    for round in 0..12 {
        foundation.stop_gorouter().await;
        tokio::time::sleep(Duration::from_millis(250)).await;
        foundation
            .start_gorouter()
            .await
            .expect("gorouter restarts");
        let mode = [GorouterMode::Normal, GorouterMode::Garbage][round % 2].clone();
        foundation.set_gorouter_mode(mode);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    done.store(true, Ordering::SeqCst);
    let mut answers = 0;
    for caller in callers {
        answers += caller.await.expect("every answer was complete");
    }
    assert!(answers >= 8, "{answers} answers");
    let failed = own_metric(&client, &process, unreachable).await;
    assert!(
        failed >= Some(6.0),
        "the gorouter was down {failed:?} times"
    );
    foundation.set_gorouter_mode(GorouterMode::Normal);
    eventually("health ok after the flapping", || async {
        get(&client, &process.health).await == (200, "ok".to_string())
    })
    .await;
    println!("flapping gorouter: {answers} complete answers, {failed:?} unreachable polls");
}

/// The dev foundation with every `shop` instance answering after `delay`.
fn slow_shop(delay: Duration) -> FoundationSpec {
    let mut spec = FoundationSpec::dev_default();
    for instance in &mut spec.apps[0].instances {
        *instance = InstanceSpec::healthy().with_delay(delay);
    }
    spec
}

/// Starts `n` requests for the slow `shop` app, each with its own credentials so that none
/// shares another's fan-out; each returns status and body.
fn slow_requests(process: &Process, n: usize) -> Vec<tokio::task::JoinHandle<(u16, String)>> {
    let shop = format!("{}{SHOP}", process.api);
    (0..n)
        .map(|i| {
            let (client, shop) = (client(), shop.clone());
            tokio::spawn(async move {
                let response = client
                    .get(&shop)
                    .basic_auth(format!("caller-{i}"), Some("pw"))
                    .send()
                    .await
                    .expect("an accepted request is answered");
                let status = response.status().as_u16();
                (status, response.text().await.expect("body"))
            })
        })
        .collect()
}

async fn exit_code(mut process: Process) -> Option<i32> {
    tokio::task::spawn_blocking(move || process.wait_exit().code())
        .await
        .unwrap()
}

#[tokio::test]
async fn sigterm_with_20_requests_in_flight_answers_them_all_and_exits_0() {
    let foundation = Foundation::start(slow_shop(Duration::from_millis(1500)))
        .await
        .unwrap();
    let process = start_ready(&config_for(&foundation)).await;
    let in_flight = slow_requests(&process, 20);
    // every request reaches the instances (3 each) before the signal
    let deadline = Instant::now() + WAIT_LIMIT;
    while (0..3)
        .map(|i| foundation.requests_seen("shop", i).len())
        .sum::<usize>()
        < 60
    {
        assert!(
            Instant::now() < deadline,
            "the 20 requests never reached the instances"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    process.signal(Signal::TERM);
    for request in in_flight {
        let (status, body) = request.await.unwrap();
        assert_eq!(status, 200, "{body}");
        let up = samples_named(&body, "promfetcher_up");
        assert_eq!(up.len(), 3, "{body}");
        assert!(up.iter().all(|l| l.ends_with(" 1")), "{body}");
    }
    assert_eq!(exit_code(process).await, Some(0));
}

#[tokio::test]
async fn sigusr1_turns_health_503_at_once_then_drains_and_exits_0() {
    // Requests sent 0.5 s into a 4 s lame-duck period end 4 s later, after it: the drain must
    // wait for them. The margins are wide because the machine may be busy.
    let foundation = Foundation::start(slow_shop(Duration::from_secs(4)))
        .await
        .unwrap();
    let mut config = config_for(&foundation);
    config.shutdown.lame_duck_period = GoDuration::from_secs(4);
    let process = start_ready(&config).await;
    let client = client();
    process.signal(Signal::USR1);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        get(&client, &process.health).await,
        (503, "draining".to_string())
    );
    // still serving during the lame-duck period: these arrive in it and end after it
    tokio::time::sleep(Duration::from_millis(300)).await;
    let late = slow_requests(&process, 5);
    let billing = format!("{}/v1/apps/acme/dev/billing/metrics", process.api);
    assert_eq!(get(&client, &billing).await.0, 200);
    for request in late {
        let (status, body) = request.await.unwrap();
        assert_eq!(status, 200, "{body}");
        assert_eq!(samples_named(&body, "promfetcher_up").len(), 3, "{body}");
    }
    assert_eq!(exit_code(process).await, Some(0));
}

/// Lowers the running `process`'s soft limit on open files to `open_files` (its descriptors
/// already open stay; new ones fail with "Too many open files" past the limit).
fn limit_open_files(process: &Process, open_files: u64) {
    use rustix::process::{getrlimit, prlimit, Pid, Resource, Rlimit};
    // the child inherited this process's hard limit
    let maximum = getrlimit(Resource::Nofile).maximum;
    let pid = Pid::from_raw(process.child.id() as i32).expect("a child's pid is positive");
    let limit = Rlimit {
        current: Some(open_files),
        maximum,
    };
    prlimit(Some(pid), Resource::Nofile, limit).expect("lower the child's limit on open files");
}

#[tokio::test]
async fn out_of_file_descriptors_only_new_connections_fail_and_it_recovers() {
    // 12 apps of 10 instances asked in turn, with room for about half of their connections:
    // every answer is complete (each instance up or failed with `connect`), the log says why,
    // and once the idle connections expire every instance is scraped again.
    const APPS: usize = 12;
    let spec = (0..APPS).fold(FoundationSpec::dev_default(), |spec, i| {
        spec.with_app(
            AppSpec::new("acme", "dev", &format!("many-{i}"))
                .with_instances(vec![InstanceSpec::healthy(); 10]),
        )
    });
    let foundation = Foundation::start(spec).await.unwrap();
    let mut config = config_for(&foundation);
    config.idle_conn_timeout = GoDuration::from_secs(2);
    let process = start_ready(&config).await;
    limit_open_files(&process, 100);
    let client = client();
    let url = |i: usize| format!("{}/v1/apps/acme/dev/many-{i}/metrics", process.api);

    let mut refused = 0;
    for i in 0..APPS {
        let (status, body) = get(&client, &url(i)).await;
        assert_eq!(status, 200, "{body}");
        let up = samples_named(&body, "promfetcher_up");
        assert_eq!(up.len(), 10, "{body}");
        let down = up.iter().filter(|l| l.ends_with(" 0")).count();
        let connect_errors = samples_named(&body, "promfetcher_scrape_error")
            .iter()
            .filter(|l| l.contains(r#"error="connect""#))
            .count();
        assert_eq!(down, connect_errors, "only connections fail: {body}");
        refused += down;
    }
    assert!(refused > 0, "the limit was never reached");
    assert!(
        process
            .log()
            .iter()
            .any(|line| line.contains("could not connect") && line.contains("Too many open files")),
        "the log says why"
    );

    // The idle connections expire after 2 s and free their descriptors.
    eventually("every instance of the last app up again", || async {
        let (status, body) = get(&client, &url(APPS - 1)).await;
        let up = samples_named(&body, "promfetcher_up");
        status == 200 && up.len() == 10 && up.iter().all(|l| l.ends_with(" 1"))
    })
    .await;
    assert_eq!(common::status_of(&client, &process.health).await, Some(200));
}
