//! A real Prometheus (Debian's `prometheus` binary) on 127.0.0.1 for the tests that need one:
//! started on the scrape configs a test gives, with a 1 s scrape interval so rates exist within
//! seconds, asked through its HTTP API, and killed when dropped.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A running `prometheus`, killed on drop.
pub struct Prometheus {
    child: Child,
    api: String,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus scraping every 1 s (timeout 1 s) with `scrape_configs`, the YAML
    /// list under `scrape_configs:` indented by two spaces, and waits until it is ready.
    pub async fn start(scrape_configs: &str) -> Prometheus {
        let dir = tempfile::tempdir().expect("prometheus dir");
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(
            &config_path,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n{scrape_configs}"
            ),
        )
        .expect("config written");
        let web_port = free_port();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{web_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus is required: scripts/test-all installs Debian's prometheus");
        let prometheus = Prometheus {
            child,
            api: format!("http://127.0.0.1:{web_port}/api/v1"),
            client: super::client(),
            _dir: dir,
        };
        let ready = format!("http://127.0.0.1:{web_port}/-/ready");
        let deadline = Instant::now() + Duration::from_secs(30);
        while super::status_of(&prometheus.client, &ready).await != Some(200) {
            assert!(
                Instant::now() < deadline,
                "prometheus was not ready within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        prometheus
    }

    /// GET `path` of the HTTP API with `params`: the `data` of a success, or the error
    /// Prometheus (or the connection) gave.
    async fn get(&self, path: &str, params: &[(&str, &str)]) -> Result<Value, String> {
        let response = self
            .client
            .get(format!("{}/{path}", self.api))
            .query(params)
            .send()
            .await
            .map_err(|e| format!("prometheus does not answer: {e}"))?;
        let text = response
            .text()
            .await
            .map_err(|e| format!("prometheus' answer breaks off: {e}"))?;
        let body: Value = serde_json::from_str(&text)
            .map_err(|e| format!("prometheus answers no JSON ({e}): {text}"))?;
        if body["status"] == "success" {
            Ok(body["data"].clone())
        } else {
            Err(format!("{}: {}", body["errorType"], body["error"]))
        }
    }

    /// The result vector of instant query `expr`, or why it failed.
    pub async fn query(&self, expr: &str) -> Result<Vec<Value>, String> {
        let data = self.get("query", &[("query", expr)]).await?;
        data["result"]
            .as_array()
            .cloned()
            .ok_or_else(|| format!("not a vector result: {data}"))
    }

    /// Values of label `label` over the series matching `selector`.
    pub async fn label_values(&self, label: &str, selector: &str) -> Result<Vec<String>, String> {
        let data = self
            .get(&format!("label/{label}/values"), &[("match[]", selector)])
            .await?;
        Ok(data
            .as_array()
            .map(|values| {
                values
                    .iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default())
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
