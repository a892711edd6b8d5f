//! `promfetcher dev` (the simulated foundation and promfetcher in one process) as a child
//! process on free loopback ports, for tests that want the binary as a user runs it.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::prometheus::free_port;
use crate::common::{client, status_of, PROMFETCHER};

/// `promfetcher dev` as a child process, killed on drop.
pub struct Dev {
    child: Child,
    /// `127.0.0.1:port` of its main port.
    pub api: String,
}

/// How long `promfetcher dev` may take to be ready on a loaded CI machine (it starts the
/// simulated foundation, its certificates and the store before it polls the first table).
const DEV_READY_LIMIT: Duration = Duration::from_secs(60);
/// Starts with other free ports when a port taken between choosing and binding it made
/// `promfetcher dev` exit.
const DEV_START_ATTEMPTS: usize = 3;

impl Dev {
    /// Starts it on free ports and waits until its health port says ready.
    pub async fn start() -> Dev {
        let client = client();
        let mut exits = Vec::new();
        for _ in 0..DEV_START_ATTEMPTS {
            let (port, health_port) = (free_port(), free_port());
            let log = tempfile::NamedTempFile::new().expect("a log file");
            let mut child = Command::new(PROMFETCHER)
                .args(["dev", "--port", &port.to_string()])
                .args(["--health-port", &health_port.to_string()])
                .stdout(Stdio::null())
                .stderr(log.reopen().expect("the log file"))
                .spawn()
                .expect("promfetcher dev starts");
            let health = format!("http://127.0.0.1:{health_port}/");
            let deadline = Instant::now() + DEV_READY_LIMIT;
            loop {
                if status_of(&client, &health).await == Some(200) {
                    return Dev {
                        child,
                        api: format!("127.0.0.1:{port}"),
                    };
                }
                let log_text = || std::fs::read_to_string(log.path()).unwrap_or_default();
                if let Ok(Some(status)) = child.try_wait() {
                    exits.push(format!("{status}: {}", log_text()));
                    break;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    panic!(
                        "promfetcher dev not ready in {DEV_READY_LIMIT:?}; its log:\n{}",
                        log_text()
                    );
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        panic!("promfetcher dev exited {DEV_START_ATTEMPTS} times: {exits:#?}");
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
