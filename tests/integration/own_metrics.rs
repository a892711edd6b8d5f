//! promfetcher's own metrics as an operator's alerts and dashboards read them, from the real
//! binary on the simulated foundation: the process metrics, answers by kind and status class
//! and their durations, the store's health, and route freshness (a table that stays the same
//! while the gorouter keeps answering is fresh, not stale). Broker operations are counted in
//! broker.rs, the database going away in broker.rs's outage test.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::common::{client, config_for, sample_value, PROMFETCHER};
use promfetcher::config::GoDuration;
use promfetcher_process::Process;
use simulated_foundation::{Foundation, FoundationSpec, DEV_DOMAIN};

/// The binary on the dev foundation, polling its gorouter every 200 ms, once it is ready.
async fn start() -> (Foundation, Process, reqwest::Client) {
    let foundation = Foundation::start(FoundationSpec::dev_default())
        .await
        .expect("foundation starts");
    let mut config = config_for(&foundation);
    config.db_refresh_interval = GoDuration::from_millis(200);
    let process = Process::start(PROMFETCHER, &config);
    let client = client();
    crate::common::wait_ready(&client, &process.health).await;
    (foundation, process, client)
}

async fn status(client: &reqwest::Client, url: &str) -> u16 {
    client
        .get(url)
        .send()
        .await
        .expect("promfetcher answers")
        .status()
        .as_u16()
}

async fn own_metrics(client: &reqwest::Client, process: &Process) -> String {
    client
        .get(format!("{}/metrics", process.api))
        .send()
        .await
        .expect("promfetcher answers")
        .text()
        .await
        .expect("body")
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64()
}

/// The value of `series`, which must be there.
fn value(body: &str, series: &str) -> f64 {
    sample_value(body, series).unwrap_or_else(|| panic!("{series} missing:\n{body}"))
}

#[tokio::test]
async fn answers_are_counted_by_kind_and_status_class() {
    let (foundation, process, client) = start().await;
    let shop_guid = foundation
        .spec()
        .app("shop")
        .expect("shop")
        .app_guid
        .clone();
    let api = &process.api;
    for (path, expected) in [
        ("/v1/apps/acme/dev/shop/metrics".to_string(), 200),
        ("/v1/apps/acme/dev/shop/metrics".to_string(), 200),
        (format!("/v1/apps/{shop_guid}/metrics"), 200),
        (format!("/v1/apps/shop.{DEV_DOMAIN}/metrics"), 200),
        ("/v1/apps/acme/dev/no-such-app/metrics".to_string(), 404),
        ("/v1/sd".to_string(), 200),
        ("/v1/nothing-here".to_string(), 404),
    ] {
        assert_eq!(
            status(&client, &format!("{api}{path}")).await,
            expected,
            "{path}"
        );
    }
    let body = own_metrics(&client, &process).await;
    for (series, count) in [
        (r#"{kind="name",status_class="2xx"}"#, 2.0),
        (r#"{kind="name",status_class="4xx"}"#, 1.0),
        (r#"{kind="guid",status_class="2xx"}"#, 1.0),
        (r#"{kind="route",status_class="2xx"}"#, 1.0),
        (r#"{kind="sd",status_class="2xx"}"#, 1.0),
        (r#"{kind="other",status_class="4xx"}"#, 1.0),
    ] {
        let series = format!("promfetcher_http_requests_total{series}");
        assert_eq!(value(&body, &series), count, "{series}");
    }
    assert_eq!(
        value(
            &body,
            r#"promfetcher_http_request_duration_seconds_count{kind="name"}"#
        ),
        3.0
    );
    // Every answer of the dev foundation takes far less than a minute: all in the last bucket,
    // and the sum is a real duration.
    assert_eq!(
        value(
            &body,
            r#"promfetcher_http_request_duration_seconds_bucket{kind="name",le="60"}"#
        ),
        3.0
    );
    let sum = value(
        &body,
        r#"promfetcher_http_request_duration_seconds_sum{kind="name"}"#,
    );
    assert!(sum > 0.0 && sum < 30.0, "{sum}");
    // The read of /metrics itself is counted once its answer is ready.
    let body = own_metrics(&client, &process).await;
    assert_eq!(
        value(
            &body,
            r#"promfetcher_http_requests_total{kind="other",status_class="2xx"}"#
        ),
        1.0
    );
}

#[tokio::test]
async fn process_metrics_describe_the_promfetcher_process() {
    let before_start = unix_now();
    let (_foundation, process, client) = start().await;
    let body = own_metrics(&client, &process).await;
    let started = value(&body, "process_start_time_seconds");
    // The kernel counts start time in clock ticks since boot: allow a second of rounding.
    assert!(
        started >= before_start - 1.0 && started <= unix_now(),
        "start {started}, test began {before_start}"
    );
    let resident = value(&body, "process_resident_memory_bytes");
    let rss = process.rss_kib() as f64 * 1024.0;
    assert!(
        resident > rss / 2.0 && resident < rss * 2.0,
        "resident {resident}, /proc says {rss}"
    );
    assert!(value(&body, "process_virtual_memory_bytes") >= resident);
    let open = value(&body, "process_open_fds");
    assert!(
        open >= 3.0 && open <= value(&body, "process_max_fds"),
        "{open}"
    );
    assert!(value(&body, "process_cpu_seconds_total") >= 0.0);
}

#[tokio::test]
async fn an_unchanged_table_stays_fresh_while_the_gorouter_answers() {
    let (_foundation, process, client) = start().await;
    let gorouter = r#"promfetcher_route_source_last_success_timestamp_seconds{source="gorouter"}"#;
    let change = "promfetcher_route_table_last_change_timestamp_seconds";
    let first = own_metrics(&client, &process).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let second = own_metrics(&client, &process).await;
    let now = unix_now();

    assert_eq!(
        value(&first, change),
        value(&second, change),
        "the routes did not change"
    );
    let age = value(&second, "promfetcher_route_table_age_seconds");
    assert!(age >= 1.5, "the age grows while the table stays: {age}");
    assert!(
        (now - age - value(&second, change)).abs() < 1.0,
        "the age is the time since the last change"
    );
    let polled = value(&second, gorouter);
    assert!(
        polled > value(&first, gorouter) && now - polled < 1.0,
        "every poll is a success: {polled} vs now {now}"
    );
    assert!(second.contains(
        "# HELP promfetcher_route_table_age_seconds Seconds since the route table last changed."
    ));
}

#[tokio::test]
async fn the_store_reports_each_refresh_the_database_answered() {
    let (_foundation, process, client) = start().await;
    let first = own_metrics(&client, &process).await;
    assert_eq!(value(&first, "promfetcher_store_up"), 1.0);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let second = own_metrics(&client, &process).await;
    let last = value(&second, "promfetcher_store_last_success_timestamp_seconds");
    assert!(
        last > value(&first, "promfetcher_store_last_success_timestamp_seconds"),
        "refreshed every 200 ms"
    );
    assert!(unix_now() - last < 1.0, "{last}");
}
