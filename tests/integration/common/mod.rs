//! Shared set-up for the integration tests: a simulated foundation and a real promfetcher
//! server on 127.0.0.1 port 0, wired together, and small helpers to read merged answers.

pub mod chromium;
pub mod dev;
pub mod hostile;
pub mod prometheus;

use std::time::{Duration, Instant};

use promfetcher::config::{Config, GoDuration};
use promfetcher::server::dev_mode::config_for_foundation;
use promfetcher::server::Server;
use promfetcher::settings::Settings;
use simulated_foundation::{Foundation, FoundationSpec};

/// The promfetcher binary of this build, for tests that run it as a child process.
pub const PROMFETCHER: &str = env!("CARGO_BIN_EXE_promfetcher");

/// Upper bound for any wait loop in the tests.
pub const WAIT_LIMIT: Duration = Duration::from_secs(15);

pub struct Harness {
    pub foundation: Foundation,
    pub server: Option<Server>,
    pub client: reqwest::Client,
    pub base: String,
    pub health: String,
}

/// A config that points at `foundation`'s gorouter, polls it often and listens on loopback
/// ephemeral ports.
pub fn config_for(foundation: &Foundation) -> Config {
    let mut config = config_for_foundation(foundation, 0, 0);
    config.gorouter_poll_interval = GoDuration::from_millis(200);
    config.shutdown.lame_duck_period = GoDuration::from_millis(300);
    // Tests diagnose one app many times in a row; the limit's own test sets it.
    config.scrape.diagnosis_interval = GoDuration::from_millis(0);
    config
}

/// The status `url` answers with, or `None` when nothing answers.
pub async fn status_of(client: &reqwest::Client, url: &str) -> Option<u16> {
    client
        .get(url)
        .send()
        .await
        .ok()
        .map(|r| r.status().as_u16())
}

/// Waits until the health URL `health` answers 200 (at most [`WAIT_LIMIT`]).
pub async fn wait_ready(client: &reqwest::Client, health: &str) {
    let deadline = Instant::now() + WAIT_LIMIT;
    while status_of(client, health).await != Some(200) {
        assert!(Instant::now() < deadline, "promfetcher never became ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .no_gzip()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("test client")
}

impl Harness {
    /// Starts the foundation and promfetcher, and waits until promfetcher's health says ready.
    pub async fn start(spec: FoundationSpec) -> Harness {
        Harness::start_with(spec, |_| {}).await
    }

    /// Like [`Harness::start`], with a chance to change the config first.
    pub async fn start_with(spec: FoundationSpec, adjust: impl FnOnce(&mut Config)) -> Harness {
        Harness::start_configured(spec, |_, config| adjust(config)).await
    }

    /// Like [`Harness::start_with`], for changes that depend on the running foundation.
    pub async fn start_configured(
        spec: FoundationSpec,
        adjust: impl FnOnce(&Foundation, &mut Config),
    ) -> Harness {
        let foundation = Foundation::start(spec).await.expect("foundation starts");
        let mut config = config_for(&foundation);
        adjust(&foundation, &mut config);
        let server =
            Server::start(&Settings::from_config(&config).expect("the test config is valid"))
                .await
                .expect("promfetcher starts");
        let harness = Harness::around(foundation, server);
        harness.wait_ready().await;
        harness
    }

    /// A harness for a foundation and a server started by the caller (not waited for).
    pub fn around(foundation: Foundation, server: Server) -> Harness {
        Harness {
            base: format!("http://{}", server.main_addr()),
            health: format!("http://{}/", server.health_addr()),
            foundation,
            server: Some(server),
            client: client(),
        }
    }

    pub async fn wait_ready(&self) {
        wait_ready(&self.client, &self.health).await;
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{}", self.base, path))
            .send()
            .await
            .expect("promfetcher answers")
    }

    /// GET `path`, assert 200 with the text 0.0.4 content type, and return the body.
    pub async fn merged(&self, path: &str) -> String {
        let response = self.get(path).await;
        let status = response.status();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap_or_default().to_string());
        let body = response.text().await.expect("body");
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!(
            content_type.as_deref(),
            Some("text/plain; version=0.0.4; charset=utf-8"),
            "{path}"
        );
        body
    }

    /// GET `path` with `Accept: accept`, assert 200, and return the content type and body.
    pub async fn merged_accepting(&self, path: &str, accept: &str) -> (String, String) {
        let response = self
            .client
            .get(format!("{}{}", self.base, path))
            .header("Accept", accept)
            .send()
            .await
            .expect("promfetcher answers");
        let status = response.status();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap_or_default().to_string())
            .unwrap_or_default();
        let body = response.text().await.expect("body");
        assert_eq!(status, 200, "{path}: {body}");
        (content_type, body)
    }

    pub async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server
                .stop(promfetcher::server::signals::StopRequest::Now)
                .await;
        }
    }
}

/// The sample lines (not comments) of an exposition.
pub fn samples(body: &str) -> Vec<&str> {
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .collect()
}

/// Sample lines of the family `name` (exact metric name, with or without labels).
pub fn samples_named<'a>(body: &'a str, name: &str) -> Vec<&'a str> {
    samples(body)
        .into_iter()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .collect()
}

/// The value of one sample of an exposition, named `name{labels}` exactly as written.
pub fn sample_value(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.parse().ok())
}

/// The `error` label of the `promfetcher_scrape_error` sample of the instance at `address`, or
/// `None` when that instance was scraped.
pub fn scrape_error_of(body: &str, address: impl std::fmt::Display) -> Option<String> {
    let instance = format!("instance=\"{address}\"");
    samples_named(body, "promfetcher_scrape_error")
        .into_iter()
        .find(|l| l.contains(&instance))
        .and_then(|l| l.split("error=\"").nth(1))
        .map(|rest| rest.split('"').next().unwrap_or_default().to_string())
}

/// Runs `program args` with `body` on its standard input; `needed` says where it comes from.
fn run_with_stdin(program: &str, args: &[&str], body: &str, needed: &str) -> std::process::Output {
    run_piped(std::process::Command::new(program).args(args), body)
        .unwrap_or_else(|e| panic!("{program} is required ({needed}): {e}"))
}

/// Runs `command` with `input` on its standard input and collects its output; `Err` when it
/// cannot start.
pub fn run_piped(
    command: &mut std::process::Command,
    input: &str,
) -> std::io::Result<std::process::Output> {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    // A checker may stop reading early when it rejects the input.
    let _ = child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes());
    child.wait_with_output()
}

/// Runs `promtool check metrics` on `body`; panics with its output when it rejects it.
pub fn assert_promtool_accepts(body: &str) {
    let output = run_with_stdin(
        "promtool",
        &["check", "metrics"],
        body,
        "scripts/test-all installs Debian's prometheus package",
    );
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    // promtool exits 3 for lint findings (style advice about the apps' own metrics) and 1
    // when the exposition does not parse: only the latter fails the answer.
    assert!(
        output.status.code() != Some(1) && !said.contains("parsing error"),
        "promtool rejects the answer: {said}\n---\n{body}"
    );
}

/// The Python that has `prometheus_client` (scripts/test-all makes a venv under target/ and
/// names it in `PROMFETCHER_TEST_PYTHON`).
fn python() -> String {
    std::env::var("PROMFETCHER_TEST_PYTHON").unwrap_or_else(|_| {
        let venv = concat!(env!("CARGO_MANIFEST_DIR"), "/target/pyenv/bin/python");
        if std::path::Path::new(venv).exists() {
            venv.to_string()
        } else {
            "python3".to_string()
        }
    })
}

/// Reads `body` with the strict OpenMetrics parser of Python's `prometheus_client`
/// (`text_string_to_metric_families`); panics with its complaint when it rejects it. Returns
/// the number of families it read.
pub fn assert_openmetrics_accepts(body: &str) -> usize {
    const CHECK: &str = "import sys\n\
from prometheus_client.openmetrics.parser import text_string_to_metric_families\n\
families = list(text_string_to_metric_families(sys.stdin.read()))\n\
print(len(families))\n";
    let python = python();
    let output = run_with_stdin(
        &python,
        &["-c", CHECK],
        body,
        "python with prometheus_client; scripts/test-all installs it",
    );
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(
        !said.contains("No module named 'prometheus_client'"),
        "Python's prometheus_client is missing from {python}: scripts/test-all installs it in \
         target/pyenv (or pip install prometheus_client and name that python in \
         PROMFETCHER_TEST_PYTHON)"
    );
    assert!(
        output.status.success(),
        "the OpenMetrics parser rejects the answer: {said}\n---\n{body}"
    );
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .expect("a family count")
}
