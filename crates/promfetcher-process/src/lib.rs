//! The real `promfetcher` binary as a child process: started on a config file written from a
//! [`Config`], its listening addresses read from its log (plain or JSON lines), its log kept,
//! its readiness awaited on the health port, its memory and sockets read from /proc, stopped
//! with signals. Shared by the integration tests (BOSH, logging, reliability) and the
//! benchmarks, which pass the binary of their build (`env!("CARGO_BIN_EXE_promfetcher")`) or
//! another one named on their command line ([`BenchArgs`]). Test support only: it panics on
//! what a test should not see.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use promfetcher::config::Config;
use rustix::process::{kill_process, Pid};

pub use rustix::process::Signal;

/// Upper bound for start-up and exit waits.
const PROCESS_WAIT_LIMIT: Duration = Duration::from_secs(15);

/// The real binary, started on a config file, with its listening addresses read from its log.
pub struct Process {
    pub child: Child,
    pub api: String,
    pub health: String,
    log: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl Process {
    /// Starts `binary` on `config`, and waits until it says where it listens.
    pub fn start(binary: impl AsRef<Path>, config: &Config) -> Process {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("promfetcher.yml");
        let mut config = config.clone();
        config.logging.no_color = true;
        std::fs::write(&path, config_file(&config)).unwrap();
        let mut child = Command::new(binary.as_ref())
            .arg("-c")
            .arg(&path)
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        // set PROMFETCHER_TEST_ECHO_LOG=1 to see the child's log
        let echo_log = std::env::var_os("PROMFETCHER_TEST_ECHO_LOG").is_some();
        let (tx, rx) = std::sync::mpsc::channel();
        let log = Arc::new(Mutex::new(Vec::new()));
        let kept = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("promfetcher listening") {
                    let _ = tx.send(line.clone());
                }
                if echo_log {
                    eprintln!("[promfetcher] {line}");
                }
                kept.lock().unwrap().push(line);
            }
        });
        let line = rx
            .recv_timeout(PROCESS_WAIT_LIMIT)
            .expect("promfetcher logs its addresses");
        let json: Option<serde_json::Value> = serde_json::from_str(&line).ok();
        let field = |name: &str| match &json {
            Some(json) => json[name].as_str().unwrap().to_string(),
            None => line
                .split_whitespace()
                .find_map(|w| w.strip_prefix(&format!("{name}=")))
                .unwrap()
                .to_string(),
        };
        Process {
            api: format!("http://{}", field("api")),
            health: format!("http://{}/", field("health")),
            child,
            log,
            _dir: dir,
        }
    }

    /// Waits until the health port answers `200` (at most [`PROCESS_WAIT_LIMIT`]).
    pub async fn wait_ready(&self, client: &reqwest::Client) {
        let deadline = Instant::now() + PROCESS_WAIT_LIMIT;
        loop {
            if let Ok(response) = client.get(&self.health).send().await {
                if response.status() == 200 {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "promfetcher never became ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Every log line written so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// The child's peak resident memory (`VmHWM`) in KiB; 0 when /proc cannot tell.
    pub fn peak_rss_kib(&self) -> u64 {
        self.status_kib("VmHWM:")
    }

    /// A `kB` field of /proc/<pid>/status.
    fn status_kib(&self, field: &str) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }

    /// The child's resident memory now (`VmRSS`) in KiB; 0 when /proc cannot tell.
    pub fn rss_kib(&self) -> u64 {
        self.status_kib("VmRSS:")
    }

    /// How many sockets the child holds open (listeners, callers' and targets' connections).
    pub fn open_sockets(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .map(|fds| {
                fds.filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
                    .filter(|target| target.to_string_lossy().starts_with("socket:"))
                    .count()
            })
            .unwrap_or(0)
    }

    /// The CPU time the child has used so far.
    pub fn cpu_time(&self) -> CpuTime {
        CpuTime::of(self.child.id())
    }

    /// Sends the child `signal` (e.g. `Signal::TERM`).
    pub fn signal(&self, signal: Signal) {
        let pid = Pid::from_raw(self.child.id() as i32).expect("a child's pid is positive");
        kill_process(pid, signal).expect("the child takes signals");
    }

    pub fn wait_exit(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + PROCESS_WAIT_LIMIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "promfetcher did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CPU seconds a process spent in user space and in the kernel, from /proc.
#[derive(Debug, Clone, Copy)]
pub struct CpuTime {
    pub user: f64,
    pub system: f64,
}

impl CpuTime {
    fn of(pid: u32) -> CpuTime {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // fields after the command name, which is in parentheses and may hold spaces
        let after = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest)
            .unwrap_or_default();
        let fields: Vec<&str> = after.split_whitespace().collect();
        let ticks_per_second = clock_ticks_per_second();
        let seconds = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<f64>().ok())
                .unwrap_or(0.0)
                / ticks_per_second
        };
        // utime and stime are fields 14 and 15 of stat, 12 and 13 after the name
        CpuTime {
            user: seconds(11),
            system: seconds(12),
        }
    }

    /// What was spent between `before` and this reading.
    pub fn since(&self, before: &CpuTime) -> CpuTime {
        CpuTime {
            user: self.user - before.user,
            system: self.system - before.system,
        }
    }

    pub fn total(&self) -> f64 {
        self.user + self.system
    }
}

fn clock_ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// The config as a file: the masked dump with the real gorouter, broker and NATS secrets put
/// back.
fn config_file(config: &Config) -> String {
    let mut yaml: serde_norway::Value =
        serde_norway::from_str(&config.to_masked_yaml()).expect("the config dump is YAML");
    let secret = |value: &str| serde_norway::Value::String(value.to_owned());
    if let Some(gorouters) = yaml["gorouters"].as_sequence_mut() {
        for (entry, gorouter) in gorouters.iter_mut().zip(&config.gorouters) {
            entry["pass"] = secret(gorouter.pass.expose());
        }
    }
    yaml["broker"]["pass"] = secret(config.broker.pass.expose());
    yaml["nats"]["pass"] = secret(config.nats.pass.expose());
    yaml["nats"]["private_key"] = secret(config.nats.private_key.expose());
    if let Some(exporters) = yaml["external_exporters"].as_sequence_mut() {
        for (entry, exporter) in exporters.iter_mut().zip(&config.external_exporters) {
            entry["params"] = serde_norway::to_value(&exporter.params).expect("params");
        }
    }
    serde_norway::to_string(&yaml).expect("YAML")
}

/// A benchmark's command line: `--flag value` pairs and bare `--flag`s, in any order.
pub struct BenchArgs(Vec<String>);

impl BenchArgs {
    pub fn from_env() -> BenchArgs {
        BenchArgs(std::env::args().collect())
    }

    /// The word after `flag`, if `flag` was given.
    pub fn value(&self, flag: &str) -> Option<String> {
        let at = self.0.iter().position(|a| a == flag)?;
        self.0.get(at + 1).cloned()
    }

    /// The value of `flag` as a number; `default` when not given. Panics on a non-number.
    pub fn number<T: std::str::FromStr>(&self, flag: &str, default: T) -> T {
        self.value(flag).map_or(default, |v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{flag} takes a number, not {v:?}"))
        })
    }

    pub fn has(&self, flag: &str) -> bool {
        self.0.iter().any(|a| a == flag)
    }

    /// `--promfetcher PATH` (another build, to compare), else `built`, the bench's own build
    /// (`env!("CARGO_BIN_EXE_promfetcher")`).
    pub fn binary(&self, built: &str) -> String {
        self.value("--promfetcher")
            .unwrap_or_else(|| built.to_string())
    }
}
