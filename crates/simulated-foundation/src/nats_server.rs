//! A real `nats-server` process for `promfetcher dev --nats` and the tests: found on `PATH` (or
//! in `/usr/sbin`, where Debian's package puts it), started on a free `127.0.0.1` port with a
//! user and password and optionally TLS with client certificates, restartable on the same port,
//! killed when dropped. It manages the process only; it publishes nothing.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Longest wait for a started server to accept connections.
const START_LIMIT: Duration = Duration::from_secs(10);

/// Directories searched after `PATH` (Debian installs the server as a system daemon).
const EXTRA_DIRS: [&str; 3] = ["/usr/sbin", "/usr/local/sbin", "/usr/local/bin"];

/// TLS for the server, all PEM. With `client_ca_pem` the server requires client certificates
/// signed by it (`verify: true`).
#[derive(Debug, Clone)]
pub struct NatsServerTls {
    pub cert_pem: String,
    pub key_pem: String,
    pub client_ca_pem: Option<String>,
}

/// A running `nats-server` on `127.0.0.1`.
#[derive(Debug)]
pub struct NatsServer {
    binary: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

/// The `nats-server` executable, or an error that says how to install it.
pub fn find_nats_server() -> io::Result<PathBuf> {
    let path_dirs = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default();
    path_dirs
        .into_iter()
        .chain(EXTRA_DIRS.iter().map(PathBuf::from))
        .map(|dir| dir.join("nats-server"))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                "nats-server is not on PATH nor in /usr/sbin: install it (Debian: apt-get install nats-server)",
            )
        })
}

impl NatsServer {
    /// Starts a server on a free loopback port that accepts `user` / `pass` (plain words:
    /// letters, digits, `-` and `_`), and waits until it accepts connections.
    pub async fn start(
        user: &str,
        pass: &str,
        tls: Option<NatsServerTls>,
    ) -> io::Result<NatsServer> {
        for word in [user, pass] {
            if word.is_empty()
                || !word
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "the dev NATS user and password must be plain words",
                ));
            }
        }
        let binary = find_nats_server()?;
        let dir = tempfile::tempdir()?;
        let port = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
            .local_addr()?
            .port();
        let mut config = format!(
            "listen: \"127.0.0.1:{port}\"\nauthorization {{\n  user: \"{user}\"\n  password: \"{pass}\"\n}}\n"
        );
        if let Some(tls) = tls {
            let write = |name: &str, pem: &str| -> io::Result<String> {
                let path = dir.path().join(name);
                std::fs::write(&path, pem)?;
                Ok(path.display().to_string())
            };
            config.push_str(&format!(
                "tls {{\n  cert_file: \"{}\"\n  key_file: \"{}\"\n  timeout: 5\n",
                write("server.pem", &tls.cert_pem)?,
                write("server.key", &tls.key_pem)?
            ));
            if let Some(ca) = &tls.client_ca_pem {
                config.push_str(&format!(
                    "  ca_file: \"{}\"\n  verify: true\n",
                    write("client-ca.pem", ca)?
                ));
            }
            config.push_str("}\n");
        }
        std::fs::write(dir.path().join("nats.conf"), config)?;
        let mut server = NatsServer {
            binary,
            dir,
            port,
            child: None,
        };
        server.spawn().await?;
        Ok(server)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// `nats://127.0.0.1:PORT` (without credentials).
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server (as a crash would) and waits for the process to end.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the server and starts it again on the same port.
    pub async fn restart(&mut self) -> io::Result<()> {
        self.kill();
        self.spawn().await
    }

    async fn spawn(&mut self) -> io::Result<()> {
        let log = std::fs::File::create(self.log_path())?;
        let child = Command::new(&self.binary)
            .arg("-c")
            .arg(self.dir.path().join("nats.conf"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        self.child = Some(child);
        let deadline = Instant::now() + START_LIMIT;
        loop {
            if tokio::net::TcpStream::connect(self.addr()).await.is_ok() {
                return Ok(());
            }
            let exited = match &mut self.child {
                Some(child) => child.try_wait()?.is_some(),
                None => true,
            };
            if exited || Instant::now() >= deadline {
                self.kill();
                let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
                return Err(io::Error::other(format!(
                    "nats-server did not start on port {}: {}",
                    self.port,
                    log.trim()
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn log_path(&self) -> PathBuf {
        Path::new(self.dir.path()).join("nats.log")
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}
