//! The log as an operator reads it, from the real binary: with `logging.in_json` every stderr
//! line is one JSON object (start-up, the listening line, access lines, shutdown, and a config
//! or bind error that stops the start); the access line of a merged-metrics answer names
//! method, path, status, duration, bytes and the instances scraped and failed; secrets in the
//! query and the caller's `Authorization` and cookies never reach the log; health probes are
//! logged at debug level only.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::PROMFETCHER;
use crate::common::{client, config_for, status_of, WAIT_LIMIT};
use base64::Engine;
use promfetcher::config::Config;
use promfetcher_process::{Process, Signal};
use serde_json::Value;
use simulated_foundation::{Foundation, FoundationSpec};

const QUERY_SECRET: &str = "query-secret-4711";
const BASIC_PASS: &str = "basic-secret-0815";
const COOKIE_SECRET: &str = "cookie-secret-1234";

/// Every line parsed as JSON; fails naming the first line that is not.
fn json_lines(lines: &[String]) -> Vec<Value> {
    assert!(!lines.is_empty(), "nothing was logged");
    lines
        .iter()
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("a log line is not JSON ({e}): {line}"))
        })
        .collect()
}

fn access_lines(lines: &[Value]) -> Vec<&Value> {
    lines.iter().filter(|l| l["target"] == "access").collect()
}

/// The binary on `config` with JSON logs at `level`, once its health answers 200.
async fn start_json(foundation: &Foundation, level: &str) -> Process {
    let mut config: Config = config_for(foundation);
    config.logging.in_json = true;
    config.logging.level = level.into();
    let process = Process::start(PROMFETCHER, &config);
    let client = client();
    let deadline = Instant::now() + WAIT_LIMIT;
    while status_of(&client, &process.health).await != Some(200) {
        assert!(Instant::now() < deadline, "promfetcher never became ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    process
}

/// Stops `process` with SIGTERM and returns its whole log.
fn stopped_log(mut process: Process) -> Vec<String> {
    process.signal(Signal::TERM);
    assert!(process.wait_exit().success());
    // the reader thread may still hold the last lines for a moment
    std::thread::sleep(Duration::from_millis(100));
    process.log()
}

#[tokio::test]
async fn json_log_has_an_access_line_per_request_and_no_secret() {
    let foundation = Foundation::start(FoundationSpec::dev_default())
        .await
        .unwrap();
    let process = start_json(&foundation, "info").await;
    let client = client();
    let credentials =
        base64::engine::general_purpose::STANDARD.encode(format!("prometheus:{BASIC_PASS}"));
    let response = client
        .get(format!(
            "{}/v1/apps/acme/dev/flaky/metrics?token={QUERY_SECRET}&x=1",
            process.api
        ))
        .header("Authorization", format!("Basic {credentials}"))
        .header("Cookie", format!("session={COOKIE_SECRET}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let sent = response.bytes().await.unwrap().len() as u64;
    assert_eq!(
        status_of(&client, &format!("{}/metrics", process.api)).await,
        Some(200)
    );
    let log = stopped_log(process);

    let lines = json_lines(&log);
    for line in &log {
        for secret in [
            QUERY_SECRET,
            BASIC_PASS,
            credentials.as_str(),
            COOKIE_SECRET,
        ] {
            assert!(!line.contains(secret), "{secret} logged: {line}");
        }
    }
    assert!(
        lines
            .iter()
            .any(|l| l["message"] == "promfetcher listening" && l["level"] == "INFO"),
        "{log:#?}"
    );
    // the test config keeps the broker's default credentials
    assert!(
        lines.iter().any(|l| l["level"] == "WARN"
            && l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("broker.user and broker.pass are the defaults"))),
        "{log:#?}"
    );
    let access = access_lines(&lines);
    let metrics = access
        .iter()
        .find(|l| l["path"].as_str().unwrap_or_default().contains("/flaky/"))
        .unwrap_or_else(|| panic!("no access line for the metrics request: {log:#?}"));
    assert_eq!(
        metrics["path"],
        "/v1/apps/acme/dev/flaky/metrics?token=REDACTED&x=1"
    );
    assert_eq!(metrics["level"], "INFO");
    assert_eq!(metrics["method"], "GET");
    assert_eq!(metrics["status"], 200);
    assert_eq!(metrics["bytes"], sent);
    assert_eq!(metrics["instances"], 3);
    assert_eq!(metrics["instances_failed"], 1);
    assert_eq!(metrics["peer"], "127.0.0.1");
    let duration = metrics["duration_ms"].as_f64().expect("duration_ms");
    assert!(duration > 0.0 && duration < 30_000.0, "{metrics}");

    let own = access
        .iter()
        .find(|l| l["path"] == "/metrics")
        .expect("an access line for /metrics");
    assert_eq!(own["status"], 200);
    assert!(own.get("instances").is_none(), "{own}");
    // health probes (the readiness wait) are debug lines, left out at info
    assert_eq!(access.len(), 2, "{access:#?}");
}

#[tokio::test]
async fn health_probes_are_logged_at_debug_level() {
    let foundation = Foundation::start(FoundationSpec::dev_default())
        .await
        .unwrap();
    let process = start_json(&foundation, "debug").await;
    let log = stopped_log(process);
    let lines = json_lines(&log);
    let probes = access_lines(&lines);
    assert!(!probes.is_empty(), "no health probe logged: {log:#?}");
    for probe in probes {
        assert_eq!(probe["level"], "DEBUG", "{probe}");
        assert_eq!(probe["path"], "/", "{probe}");
    }
}

/// Runs the binary on `yaml` in a fresh directory; it must fail; returns its stderr lines.
fn failed_start(yaml: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("promfetcher.yml");
    std::fs::write(&path, yaml).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_promfetcher"))
        .arg("-c")
        .arg(&path)
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + WAIT_LIMIT;
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "promfetcher did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    String::from_utf8_lossy(&output.stderr)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn start_up_errors_are_json_lines_too() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let cases = [
        (
            "logging:\n  in_json: true\nscrape:\n  timeout: soon\n".to_string(),
            "scrape.timeout",
        ),
        (
            format!(
                "logging:\n  in_json: true\nbind_address: 127.0.0.1\nport: {port}\n\
                 health_check_port: 0\ndata_dir: ''\n"
            ),
            "cannot listen on 127.0.0.1:",
        ),
    ];
    for (yaml, reason) in cases {
        let log = failed_start(&yaml);
        let lines = json_lines(&log);
        let error = lines
            .iter()
            .find(|l| l["level"] == "ERROR")
            .unwrap_or_else(|| panic!("no error line: {log:#?}"));
        let message = error["message"].as_str().unwrap_or_default();
        assert!(message.contains(reason), "{message}");
    }
}
