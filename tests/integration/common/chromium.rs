//! Debian's headless Chromium for the tests of promfetcher's HTML pages: one run that dumps a
//! page's DOM or screenshot ([`run_headless`]), and a DevTools session ([`DevTools`]) that
//! loads pages, reads their DOM, fills and submits forms, takes screenshots and collects every
//! error the page reports (uncaught exceptions, `console.error`, failed loads). The session
//! speaks the DevTools protocol over `--remote-debugging-pipe` (file descriptors 3 and 4, set
//! up by `sh`), so it needs no WebSocket client. Every wait is bounded.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};

/// How long one DevTools command or page load may take.
const STEP_LIMIT: Duration = Duration::from_secs(30);

/// Flags for a quiet, headless Chromium that talks to nothing but the page it is given.
const HEADLESS_FLAGS: [&str; 9] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
];

/// Debian's Chromium (scripts/test-all installs the `chromium` package).
fn chromium() -> PathBuf {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|path| path.exists())
        .expect("chromium is required for the HTML page tests: scripts/test-all installs Debian's chromium")
}

/// Runs headless Chromium on `url` with `extra` arguments; returns its standard output. Killed
/// after 60 s.
pub fn run_headless(profile: &Path, extra: &[String], url: &str) -> String {
    let mut child = Command::new(chromium())
        .args(HEADLESS_FLAGS)
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("chromium starts");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if child.try_wait().expect("chromium state").is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium did not finish within 60 s on {url}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let output = child.wait_with_output().expect("chromium output");
    assert!(
        output.status.success(),
        "chromium failed on {url}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// One headless Chromium with one page, driven over the DevTools protocol. Blocking: use it
/// from `spawn_blocking` in async tests. Killed on drop.
pub struct DevTools {
    child: Child,
    to_browser: ChildStdin,
    from_browser: mpsc::Receiver<Value>,
    next_id: u64,
    /// The page's session.
    session: String,
    /// Page loads finished so far.
    loads: usize,
    /// What the page reported as errors, in order.
    errors: Vec<String>,
    /// Chromium's own log, shown when something goes wrong.
    log: tempfile::NamedTempFile,
    _profile: tempfile::TempDir,
}

impl DevTools {
    /// Starts Chromium and opens one blank page that reports its loads, console and errors.
    pub fn start() -> DevTools {
        let profile = tempfile::tempdir().expect("a profile directory");
        let log = tempfile::NamedTempFile::new().expect("a log file");
        // The browser reads commands on fd 3 and writes answers on fd 4: our stdin and stdout.
        let mut child = Command::new("sh")
            .arg("-c")
            .arg("exec \"$0\" \"$@\" 3<&0 4>&1 </dev/null >/dev/null")
            .arg(chromium())
            .args(HEADLESS_FLAGS)
            .arg("--remote-debugging-pipe")
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log.reopen().expect("the log file"))
            .spawn()
            .expect("chromium starts");
        let to_browser = child.stdin.take().expect("stdin");
        let from_browser = child.stdout.take().expect("stdout");
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(from_browser);
            let mut message = Vec::new();
            loop {
                message.clear();
                match reader.read_until(0, &mut message) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let text = message.strip_suffix(&[0]).unwrap_or(&message);
                        let Ok(value) = serde_json::from_slice(text) else {
                            continue;
                        };
                        if sender.send(value).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        let mut devtools = DevTools {
            child,
            to_browser,
            from_browser: receiver,
            next_id: 0,
            session: String::new(),
            loads: 0,
            errors: Vec::new(),
            log,
            _profile: profile,
        };
        let target = devtools.browser_call("Target.createTarget", json!({"url": "about:blank"}));
        let target_id = target["targetId"]
            .as_str()
            .expect("a target id")
            .to_string();
        let attached = devtools.browser_call(
            "Target.attachToTarget",
            json!({"targetId": target_id, "flatten": true}),
        );
        devtools.session = attached["sessionId"]
            .as_str()
            .expect("a session id")
            .to_string();
        for domain in ["Page.enable", "Runtime.enable", "Log.enable"] {
            devtools.call(domain, json!({}));
        }
        devtools
    }

    /// Loads `url` and waits for its load event.
    pub fn open(&mut self, url: &str) {
        let loads = self.loads;
        let answer = self.call("Page.navigate", json!({"url": url}));
        assert!(
            answer.get("errorText").is_none(),
            "cannot open {url}: {answer}"
        );
        self.wait_for_load(loads);
    }

    /// Evaluates `expression` in the page and returns its value.
    pub fn eval(&mut self, expression: &str) -> Value {
        let answer = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true}),
        );
        assert!(
            answer.get("exceptionDetails").is_none(),
            "{expression} threw: {answer}"
        );
        answer["result"]["value"].clone()
    }

    /// The page's DOM as HTML, as rendered.
    pub fn dom(&mut self) -> String {
        self.eval("document.documentElement.outerHTML")
            .as_str()
            .expect("the DOM as text")
            .to_string()
    }

    /// The page's address now.
    pub fn location(&mut self) -> String {
        self.eval("location.href")
            .as_str()
            .expect("an address")
            .to_string()
    }

    /// Sets the fields of the form `form` (a CSS selector) by name, submits it as a user's
    /// click on its submit button would, and waits for the page it leads to.
    pub fn submit(&mut self, form: &str, fields: &[(&str, &str)]) {
        let fields = serde_json::to_string(fields).expect("fields as JSON");
        let loads = self.loads;
        self.eval(&format!(
            "(() => {{ const form = document.querySelector({form:?}); \
               for (const [name, value] of {fields}) {{ form.elements[name].value = value; }} \
               form.querySelector('[type=submit]').click(); }})()"
        ));
        self.wait_for_load(loads);
    }

    /// Lays the page out for a screen `width` CSS pixels wide, as a phone (`mobile`) or a
    /// desktop browser would.
    pub fn set_viewport(&mut self, width: u32, mobile: bool) {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": 900, "deviceScaleFactor": if mobile { 2 } else { 1 }, "mobile": mobile}),
        );
    }

    /// Saves a PNG of the whole page at `path`.
    pub fn screenshot(&mut self, path: &Path) {
        let answer = self.call(
            "Page.captureScreenshot",
            json!({"format": "png", "captureBeyondViewport": true}),
        );
        let png = base64::engine::general_purpose::STANDARD
            .decode(answer["data"].as_str().expect("screenshot data"))
            .expect("base64 PNG");
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        std::fs::write(path, png)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    }

    /// What the page reported as errors so far: uncaught exceptions, `console.error` and
    /// `console.assert` messages, and errors of the browser's log (failed loads among them).
    pub fn errors(&self) -> &[String] {
        &self.errors
    }

    /// A command to the page.
    fn call(&mut self, method: &str, params: Value) -> Value {
        let session = self.session.clone();
        self.send(method, params, Some(&session))
    }

    /// A command to the browser itself.
    fn browser_call(&mut self, method: &str, params: Value) -> Value {
        self.send(method, params, None)
    }

    fn send(&mut self, method: &str, params: Value, session: Option<&str>) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut command = json!({"id": id, "method": method, "params": params});
        if let Some(session) = session {
            command["sessionId"] = json!(session);
        }
        let mut bytes = serde_json::to_vec(&command).expect("a command");
        bytes.push(0);
        if let Err(e) = self
            .to_browser
            .write_all(&bytes)
            .and_then(|()| self.to_browser.flush())
        {
            panic!(
                "chromium stopped listening ({e}); its log:\n{}",
                self.log_text()
            );
        }
        let deadline = Instant::now() + STEP_LIMIT;
        loop {
            let message = self.next_message(deadline, method);
            if message["id"].as_u64() == Some(id) {
                if let Some(error) = message.get("error") {
                    panic!("{method} failed: {error}");
                }
                return message["result"].clone();
            }
        }
    }

    /// Waits until more than `loads` page loads have finished.
    fn wait_for_load(&mut self, loads: usize) {
        let deadline = Instant::now() + STEP_LIMIT;
        while self.loads <= loads {
            self.next_message(deadline, "a page load");
        }
    }

    /// The next message from the browser, after noting the events this session watches.
    fn next_message(&mut self, deadline: Instant, waiting_for: &str) -> Value {
        let left = deadline.saturating_duration_since(Instant::now());
        let message = self.from_browser.recv_timeout(left).unwrap_or_else(|_| {
            panic!(
                "no answer from chromium for {waiting_for} within {STEP_LIMIT:?}; its log:\n{}",
                self.log_text()
            )
        });
        if message["sessionId"].as_str() == Some(self.session.as_str()) {
            self.note_event(&message);
        }
        message
    }

    fn note_event(&mut self, message: &Value) {
        let params = &message["params"];
        match message["method"].as_str() {
            Some("Page.loadEventFired") => self.loads += 1,
            Some("Runtime.exceptionThrown") => {
                let details = &params["exceptionDetails"];
                self.errors.push(format!(
                    "uncaught: {} {}",
                    details["text"].as_str().unwrap_or_default(),
                    details["exception"]["description"]
                        .as_str()
                        .unwrap_or_default()
                ));
            }
            Some("Runtime.consoleAPICalled")
                if matches!(params["type"].as_str(), Some("error" | "assert")) =>
            {
                self.errors
                    .push(format!("console.{}: {}", params["type"], params["args"]));
            }
            Some("Log.entryAdded") if params["entry"]["level"] == "error" => {
                let entry = &params["entry"];
                self.errors.push(format!(
                    "{}: {} ({})",
                    entry["source"].as_str().unwrap_or_default(),
                    entry["text"].as_str().unwrap_or_default(),
                    entry["url"].as_str().unwrap_or_default()
                ));
            }
            _ => {}
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }
}

impl Drop for DevTools {
    /// Asks the browser to close (so it takes its helper processes along), killing it when it
    /// has not within 5 s.
    fn drop(&mut self) {
        let close = b"{\"id\":0,\"method\":\"Browser.close\",\"params\":{}}\0";
        let _ = self.to_browser.write_all(close);
        let _ = self.to_browser.flush();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The error capture the page tests rely on does catch what a broken page does.
#[test]
#[ignore = "needs chromium: run scripts/test-all"]
fn devtools_reports_what_a_broken_page_throws() {
    let mut browser = DevTools::start();
    browser.open(
        "data:text/html,<!DOCTYPE html><title>t</title><link rel=icon href=data:,>\
         <script>console.error('logged-error'); notDefined();</script>",
    );
    let errors = browser.errors().join("\n");
    assert!(errors.contains("logged-error"), "{errors}");
    assert!(errors.contains("notDefined"), "{errors}");
    assert_eq!(browser.errors().len(), 2, "{errors}");
}
