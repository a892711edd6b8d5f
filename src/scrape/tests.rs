//! Scrapes against fake instances on `127.0.0.1:0`: raw HTTP/1.1 servers (plain or TLS) that record
//! what they received, count connections and body bytes sent, and answer as each test scripts.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::{HeaderMap, HeaderName, HeaderValue};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::*;
use crate::routes::CfIdentity;

const ROUTE_HOST: &str = "myapp.apps.example.com";
const GUID: &str = "3e1c9b5a-guid";
const EXPOSITION: &str = "# TYPE up gauge\nup 1\n";

// ---------------------------------------------------------------------------------------------
// The fake instance
// ---------------------------------------------------------------------------------------------

/// What one request looked like on the wire.
#[derive(Debug, Clone)]
struct Recorded {
    request_line: String,
    headers: Vec<(String, String)>,
}

impl Recorded {
    /// Every value of a header, by case-insensitive name.
    fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The single value of a header; panics if it is missing or repeated.
    fn one(&self, name: &str) -> &str {
        match self.all(name).as_slice() {
            [value] => value,
            other => panic!("expected one {name} header, got {other:?}"),
        }
    }

    fn path(&self) -> &str {
        self.request_line.split(' ').nth(1).unwrap_or_default()
    }
}

/// How the fake instance answers one request.
#[derive(Clone)]
enum Reply {
    /// A complete answer with `Content-Length`.
    Full {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: Vec<u8>,
    },
    /// A chunked body: `prefix`, then `chunk` `repeat` times, `pause` before each chunk.
    Chunked {
        headers: Vec<(&'static str, String)>,
        prefix: Vec<u8>,
        chunk: Vec<u8>,
        repeat: usize,
        pause: Duration,
    },
    /// Declares `declared` bytes, sends `sent`, then closes the connection.
    Truncated { declared: usize, sent: Vec<u8> },
    /// Waits, then answers.
    Delayed(Duration, Box<Reply>),
    /// Closes the connection without answering.
    Close,
}

fn ok(body: &str) -> Reply {
    Reply::Full {
        status: 200,
        headers: vec![("Content-Type", "text/plain; version=0.0.4".into())],
        body: body.as_bytes().to_vec(),
    }
}

fn status(code: u16) -> Reply {
    Reply::Full {
        status: code,
        headers: vec![],
        body: b"nope".to_vec(),
    }
}

fn redirect(location: &str) -> Reply {
    Reply::Full {
        status: 302,
        headers: vec![("Location", location.into())],
        body: Vec::new(),
    }
}

type Script = Arc<dyn Fn(&Recorded) -> Reply + Send + Sync>;

#[derive(Default)]
struct ServerState {
    connections: AtomicUsize,
    body_bytes_sent: AtomicU64,
    requests: Mutex<Vec<Recorded>>,
    /// Number of client certificates presented, per TLS connection.
    client_certs: Mutex<Vec<usize>>,
}

struct TestServer {
    addr: SocketAddr,
    state: Arc<ServerState>,
    accept_loop: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.accept_loop.abort();
    }
}

impl TestServer {
    async fn plain(script: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) -> TestServer {
        TestServer::start(None, Arc::new(script)).await
    }

    async fn tls(
        config: Arc<ServerConfig>,
        script: impl Fn(&Recorded) -> Reply + Send + Sync + 'static,
    ) -> TestServer {
        TestServer::start(Some(TlsAcceptor::from(config)), Arc::new(script)).await
    }

    async fn start(tls: Option<TlsAcceptor>, script: Script) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(ServerState::default());
        let loop_state = state.clone();
        let accept_loop = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                loop_state.connections.fetch_add(1, Ordering::SeqCst);
                let (state, script, tls) = (loop_state.clone(), script.clone(), tls.clone());
                tokio::spawn(async move {
                    match tls {
                        None => serve_connection(stream, &state, &script).await,
                        Some(acceptor) => {
                            let Ok(stream) = acceptor.accept(stream).await else {
                                return;
                            };
                            let presented = stream
                                .get_ref()
                                .1
                                .peer_certificates()
                                .map_or(0, |c| c.len());
                            state.client_certs.lock().unwrap().push(presented);
                            serve_connection(stream, &state, &script).await;
                        }
                    }
                });
            }
        });
        TestServer {
            addr,
            state,
            accept_loop,
        }
    }

    fn connections(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }

    fn body_bytes_sent(&self) -> u64 {
        self.state.body_bytes_sent.load(Ordering::SeqCst)
    }

    fn requests(&self) -> Vec<Recorded> {
        self.state.requests.lock().unwrap().clone()
    }

    fn only_request(&self) -> Recorded {
        let requests = self.requests();
        assert_eq!(requests.len(), 1, "{requests:?}");
        requests[0].clone()
    }
}

/// Serves requests on one connection until the client closes it or asks to.
async fn serve_connection<S>(stream: S, state: &ServerState, script: &Script)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut stream = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        match stream.read_line(&mut request_line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            match stream.read_line(&mut line).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let line = line.trim_end_matches(['\r', '\n']);
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                headers.push((name.to_owned(), value.trim().to_owned()));
            }
        }
        let recorded = Recorded {
            request_line: request_line.trim_end().to_owned(),
            headers,
        };
        let close = recorded
            .all("connection")
            .iter()
            .any(|v| v.eq_ignore_ascii_case("close"));
        state.requests.lock().unwrap().push(recorded.clone());
        let reply = script(&recorded);
        if !respond(stream.get_mut(), reply, state).await || close {
            let _ = stream.get_mut().shutdown().await;
            return;
        }
    }
}

/// Writes one reply; `false` when the connection must (or did) end.
async fn respond<S>(stream: &mut S, reply: Reply, state: &ServerState) -> bool
where
    S: AsyncWrite + Unpin,
{
    let mut reply = reply;
    while let Reply::Delayed(delay, then) = reply {
        tokio::time::sleep(delay).await;
        reply = *then;
    }
    match reply {
        Reply::Full {
            status,
            headers,
            body,
        } => {
            let mut head = format!(
                "HTTP/1.1 {status} Scripted\r\nContent-Length: {}\r\n",
                body.len()
            );
            for (name, value) in headers {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
            head.push_str("\r\n");
            let mut out = head.into_bytes();
            out.extend_from_slice(&body);
            state
                .body_bytes_sent
                .fetch_add(body.len() as u64, Ordering::SeqCst);
            stream.write_all(&out).await.is_ok() && stream.flush().await.is_ok()
        }
        Reply::Chunked {
            headers,
            prefix,
            chunk,
            repeat,
            pause,
        } => {
            let mut head = "HTTP/1.1 200 Scripted\r\nTransfer-Encoding: chunked\r\n".to_owned();
            for (name, value) in headers {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
            head.push_str("\r\n");
            if stream.write_all(head.as_bytes()).await.is_err() {
                return false;
            }
            let pieces = std::iter::once(&prefix)
                .filter(|p| !p.is_empty())
                .chain(std::iter::repeat_n(&chunk, repeat));
            for piece in pieces {
                if !pause.is_zero() {
                    tokio::time::sleep(pause).await;
                }
                let mut framed = format!("{:x}\r\n", piece.len()).into_bytes();
                framed.extend_from_slice(piece);
                framed.extend_from_slice(b"\r\n");
                if stream.write_all(&framed).await.is_err() || stream.flush().await.is_err() {
                    return false;
                }
                state
                    .body_bytes_sent
                    .fetch_add(piece.len() as u64, Ordering::SeqCst);
            }
            stream.write_all(b"0\r\n\r\n").await.is_ok() && stream.flush().await.is_ok()
        }
        Reply::Truncated { declared, sent } => {
            let head = format!("HTTP/1.1 200 Scripted\r\nContent-Length: {declared}\r\n\r\n");
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.write_all(&sent).await;
            let _ = stream.flush().await;
            false
        }
        Reply::Close => false,
        Reply::Delayed(..) => unreachable!("unwrapped above"),
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn plain_instance(addr: SocketAddr) -> Instance {
    Instance {
        address: addr.to_string().into(),
        host: ROUTE_HOST.into(),
        tls_server_name: None,
        identity: CfIdentity::default(),
    }
}

fn tls_instance(addr: SocketAddr, server_name: &str) -> Instance {
    Instance {
        tls_server_name: Some(server_name.into()),
        ..plain_instance(addr)
    }
}

fn scraper(settings: ScraperSettings) -> Scraper {
    Scraper::new(settings).unwrap()
}

fn default_scraper() -> Scraper {
    scraper(ScraperSettings::default())
}

async fn scrape_with(
    scraper: &Scraper,
    instance: &Instance,
    path: &str,
    forwarded: &HeaderMap,
    timeout: Duration,
) -> Result<ScrapeResponse, ScrapeError> {
    let path = MetricPath::parse(path).unwrap();
    scraper
        .scrape(&ScrapeRequest {
            target: ScrapeTarget::Instance {
                instance,
                path: &path,
            },
            forwarded,
            timeout,
            forwarded_proto: "https",
            forwarded_for: Some("203.0.113.7, 10.0.0.1"),
        })
        .await
}

async fn scrape(scraper: &Scraper, instance: &Instance) -> Result<ScrapeResponse, ScrapeError> {
    scrape_with(
        scraper,
        instance,
        "/metrics",
        &HeaderMap::new(),
        Duration::from_secs(5),
    )
    .await
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

/// An instance that answers with a chunked gzip body: `first`, then `chunk` `repeat` times.
async fn gzip_server_chunked(first: Vec<u8>, chunk: Vec<u8>, repeat: usize) -> TestServer {
    TestServer::plain(move |_| Reply::Chunked {
        headers: vec![("Content-Encoding", "gzip".into())],
        prefix: first.clone(),
        chunk: chunk.clone(),
        repeat,
        pause: Duration::ZERO,
    })
    .await
}

/// A gzip stream that inflates without end: a gzip header, a first deflate segment of 1 MiB of zeros,
/// and a second one, flushed to a byte boundary, that only refers back to zeros and can therefore be
/// repeated any number of times. Returns (header + first, repeatable segment); each repetition is
/// about 1 KiB that inflates to 1 MiB.
fn gzip_bomb_parts() -> (Vec<u8>, Vec<u8>) {
    use flate2::{Compress, Compression, FlushCompress};
    let zeros = vec![0u8; 1 << 20];
    let mut compress = Compress::new(Compression::best(), false);
    let segment = |compress: &mut Compress| {
        let mut out = Vec::with_capacity(1 << 16);
        let start = compress.total_in();
        loop {
            let consumed = (compress.total_in() - start) as usize;
            compress
                .compress_vec(&zeros[consumed..], &mut out, FlushCompress::Sync)
                .unwrap();
            let done = (compress.total_in() - start) as usize == zeros.len();
            if done && out.len() < out.capacity() {
                return out;
            }
            out.reserve(1 << 16);
        }
    };
    let mut first = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    first.extend(segment(&mut compress));
    let repeated = segment(&mut compress);
    (first, repeated)
}

struct Pki {
    ca_der: CertificateDer<'static>,
    server_chain: Vec<CertificateDer<'static>>,
    server_key: PrivateKeyDer<'static>,
    client_cert_pem: String,
    client_key_pem: String,
}

/// A test CA, a server certificate for `server_san` and a client certificate, all signed by it.
fn pki(server_san: &str) -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "promfetcher test CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();

    let server_key = KeyPair::generate().unwrap();
    let mut server_params = CertificateParams::new(vec![server_san.to_owned()]).unwrap();
    server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_cert = server_params.signed_by(&server_key, &ca).unwrap();

    let client_key = KeyPair::generate().unwrap();
    let mut client_params = CertificateParams::new(vec!["promfetcher".to_owned()]).unwrap();
    client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client_cert = client_params.signed_by(&client_key, &ca).unwrap();

    Pki {
        ca_der: ca.der().clone(),
        server_chain: vec![server_cert.der().clone()],
        server_key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
        client_cert_pem: client_cert.pem(),
        client_key_pem: client_key.serialize_pem(),
    }
}

fn server_config(pki: &Pki, require_client_cert: bool) -> Arc<ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = if require_client_cert {
        let mut roots = RootCertStore::empty();
        roots.add(pki.ca_der.clone()).unwrap();
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .unwrap();
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    Arc::new(
        builder
            .with_single_cert(pki.server_chain.clone(), pki.server_key.clone_key())
            .unwrap(),
    )
}

fn trusting(pki: &Pki) -> ScraperSettings {
    ScraperSettings {
        extra_roots: vec![pki.ca_der.clone()],
        ..ScraperSettings::default()
    }
}

// ---------------------------------------------------------------------------------------------
// The request as the instance sees it
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn request_line_carries_path_and_query() {
    let server = TestServer::plain(|_| ok(EXPOSITION)).await;
    let instance = plain_instance(server.addr);
    let response = scrape_with(
        &default_scraper(),
        &instance,
        "actuator/prometheus?format=prometheus&x=1",
        &HeaderMap::new(),
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.body, EXPOSITION.as_bytes());
    assert_eq!(
        response.content_type.as_deref(),
        Some("text/plain; version=0.0.4")
    );
    assert_eq!(
        server.only_request().request_line,
        "GET /actuator/prometheus?format=prometheus&x=1 HTTP/1.1"
    );
}

#[tokio::test]
async fn encoded_path_reaches_the_instance_unchanged() {
    let server = TestServer::plain(|_| ok(EXPOSITION)).await;
    let instance = plain_instance(server.addr);
    scrape_with(
        &default_scraper(),
        &instance,
        "/my metrics/%41?q={a}",
        &HeaderMap::new(),
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    assert_eq!(server.only_request().path(), "/my%20metrics/%41?q=%7Ba%7D");
}

#[tokio::test]
async fn promfetcher_sets_its_headers_with_exact_values() {
    let server = TestServer::plain(|_| ok(EXPOSITION)).await;
    let instance = plain_instance(server.addr);
    scrape_with(
        &default_scraper(),
        &instance,
        "/metrics",
        &HeaderMap::new(),
        Duration::from_millis(2500),
    )
    .await
    .unwrap();
    let request = server.only_request();
    assert_eq!(request.one("host"), ROUTE_HOST);
    assert_eq!(
        request.one("accept"),
        "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.9,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.6,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
    );
    assert_eq!(request.one("accept-encoding"), "gzip");
    assert_eq!(request.one("x-prometheus-scrape-timeout-seconds"), "2.5");
    assert_eq!(request.one("x-forwarded-proto"), "https");
    assert_eq!(request.one("x-forwarded-for"), "203.0.113.7, 10.0.0.1");
    assert_eq!(request.one("x-promfetcher-scrapping"), "true");
    assert_eq!(
        request.one("user-agent"),
        format!("promfetcher/{}", env!("CARGO_PKG_VERSION"))
    );
    assert!(request.all("referer").is_empty());
}

#[tokio::test]
async fn forwarded_for_is_left_out_when_not_given() {
    let server = TestServer::plain(|_| ok(EXPOSITION)).await;
    let instance = plain_instance(server.addr);
    let path = MetricPath::default_path();
    default_scraper()
        .scrape(&ScrapeRequest {
            target: ScrapeTarget::Instance {
                instance: &instance,
                path: &path,
            },
            forwarded: &HeaderMap::new(),
            timeout: Duration::from_secs(10),
            forwarded_proto: "http",
            forwarded_for: None,
        })
        .await
        .unwrap();
    let request = server.only_request();
    assert!(request.all("x-forwarded-for").is_empty());
    assert_eq!(request.one("x-forwarded-proto"), "http");
    assert_eq!(request.one("x-prometheus-scrape-timeout-seconds"), "10");
}

#[tokio::test]
async fn caller_headers_are_forwarded_except_hop_by_hop_ours_and_the_routers() {
    let server = TestServer::plain(|_| ok(EXPOSITION)).await;
    let instance = plain_instance(server.addr);
    let mut incoming = HeaderMap::new();
    for (name, value) in [
        ("authorization", "Bearer s3cret"),
        ("x-custom-tenant", "team-a"),
        ("connection", "X-Hop-Secret"),
        ("x-hop-secret", "do not forward"),
        ("keep-alive", "timeout=5"),
        ("upgrade", "websocket"),
        ("proxy-authorization", "Basic cHJveHk="),
        ("host", "evil.example"),
        ("x-forwarded-host", "evil.example"),
        (
            "x-forwarded-client-cert",
            "Hash=forged;Subject=\"CN=admin\"",
        ),
        ("x-forwarded-port", "443"),
        (
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ),
        ("accept", "text/html"),
    ] {
        incoming.append(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    let forwarded = forwardable_headers(&incoming);
    scrape_with(
        &default_scraper(),
        &instance,
        "/metrics",
        &forwarded,
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    let request = server.only_request();
    assert_eq!(request.one("authorization"), "Bearer s3cret");
    assert_eq!(request.one("x-custom-tenant"), "team-a");
    assert_eq!(request.one("x-forwarded-port"), "443");
    assert_eq!(
        request.one("traceparent"),
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    );
    assert_eq!(request.one("host"), ROUTE_HOST);
    assert!(request
        .one("accept")
        .starts_with("application/openmetrics-text"));
    for dropped in [
        "x-hop-secret",
        "keep-alive",
        "upgrade",
        "proxy-authorization",
        "x-forwarded-host",
        "x-forwarded-client-cert",
    ] {
        assert!(request.all(dropped).is_empty(), "{dropped} was forwarded");
    }
    assert!(!request.all("connection").contains(&"X-Hop-Secret"));
}

#[tokio::test]
async fn gzip_answers_are_decompressed() {
    let body = EXPOSITION.repeat(100);
    let compressed = gzip(body.as_bytes());
    let server = TestServer::plain(move |_| Reply::Full {
        status: 200,
        headers: vec![
            ("Content-Encoding", "gzip".into()),
            (
                "Content-Type",
                "application/openmetrics-text; version=1.0.0".into(),
            ),
        ],
        body: compressed.clone(),
    })
    .await;
    let response = scrape(&default_scraper(), &plain_instance(server.addr))
        .await
        .unwrap();
    assert_eq!(response.body, body.as_bytes());
    assert_eq!(
        response.content_type.as_deref(),
        Some("application/openmetrics-text; version=1.0.0")
    );
}

#[tokio::test]
async fn a_large_chunked_gzip_body_is_inflated_whole_and_its_connection_kept() {
    // About 600 KiB of samples that compress poorly enough to arrive in many reads and to
    // inflate into many chunks.
    let body: String = (0..20_000)
        .map(|i| format!("m{{i=\"{i}\"}} {}\n", i * 7919 % 10_007))
        .collect();
    let compressed = gzip(body.as_bytes());
    let (first, second) = compressed.split_at(compressed.len() / 2);
    let (first, second) = (first.to_vec(), second.to_vec());
    let server = gzip_server_chunked(first, second, 1).await;
    let scraper = default_scraper();
    let instance = plain_instance(server.addr);
    for _ in 0..2 {
        let response = scrape(&scraper, &instance).await.unwrap();
        assert_eq!(response.body, body.as_bytes());
    }
    // The end of the chunked body was read after the gzip trailer, so the connection was reused.
    assert_eq!(server.connections(), 1);
}

#[tokio::test]
async fn a_corrupt_gzip_body_is_a_read_error() {
    let mut corrupt = gzip(EXPOSITION.repeat(50).as_bytes());
    let middle = corrupt.len() / 2;
    corrupt[middle] ^= 0xff;
    for body in [b"# TYPE up gauge\nup 1\n".to_vec(), corrupt] {
        let server = TestServer::plain(move |_| Reply::Full {
            status: 200,
            headers: vec![("Content-Encoding", "gzip".into())],
            body: body.clone(),
        })
        .await;
        let err = scrape(&default_scraper(), &plain_instance(server.addr))
            .await
            .unwrap_err();
        assert!(matches!(err, ScrapeError::Read(_)), "{err:?}");
        let text = err.to_string();
        assert!(
            text.starts_with("reading the instance's answer failed: ") && text.contains("gzip"),
            "{text}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Errors, and the reason label they map to
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn refused_port_is_a_connect_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let err = scrape(&default_scraper(), &plain_instance(addr))
        .await
        .unwrap_err();
    assert!(matches!(err, ScrapeError::Connect(_)), "{err:?}");
    assert_eq!(err.reason(), "connect");
    let text = err.to_string();
    assert!(
        text.starts_with("could not connect to the instance: "),
        "{text}"
    );
    assert!(!text.contains('\n'));
}

#[tokio::test]
async fn slow_answer_times_out_within_the_scrape_timeout() {
    let server =
        TestServer::plain(|_| Reply::Delayed(Duration::from_secs(10), Box::new(ok(EXPOSITION))))
            .await;
    let started = Instant::now();
    let err = scrape_with(
        &default_scraper(),
        &plain_instance(server.addr),
        "/metrics",
        &HeaderMap::new(),
        Duration::from_millis(300),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ScrapeError::Timeout), "{err:?}");
    assert_eq!(err.reason(), "timeout");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn slow_body_times_out_too() {
    // Headers come at once; the body trickles in for 10 s.
    let server = TestServer::plain(|_| Reply::Chunked {
        headers: vec![],
        prefix: Vec::new(),
        chunk: b"up 1\n".to_vec(),
        repeat: 100,
        pause: Duration::from_millis(100),
    })
    .await;
    let started = Instant::now();
    let err = scrape_with(
        &default_scraper(),
        &plain_instance(server.addr),
        "/metrics",
        &HeaderMap::new(),
        Duration::from_millis(500),
    )
    .await
    .unwrap_err();
    assert_eq!(err.reason(), "timeout", "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn status_4xx_and_5xx() {
    for (code, reason) in [
        (404, "http_4xx"),
        (401, "http_4xx"),
        (503, "http_5xx"),
        (500, "http_5xx"),
    ] {
        let server = TestServer::plain(move |_| status(code)).await;
        let err = scrape(&default_scraper(), &plain_instance(server.addr))
            .await
            .unwrap_err();
        assert!(
            matches!(err, ScrapeError::Status(c) if c == code),
            "{err:?}"
        );
        assert_eq!(err.reason(), reason);
        assert_eq!(
            err.to_string(),
            format!("the instance answered HTTP {code}")
        );
    }
}

#[tokio::test]
async fn same_host_redirect_is_followed() {
    let server = TestServer::plain(|request| match request.path() {
        "/metrics" => redirect("/actuator/prometheus"),
        "/actuator/prometheus" => ok(EXPOSITION),
        _ => status(404),
    })
    .await;
    let response = scrape(&default_scraper(), &plain_instance(server.addr))
        .await
        .unwrap();
    assert_eq!(response.body, EXPOSITION.as_bytes());
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1].path(), "/actuator/prometheus");
    // The followed request is still a promfetcher scrape of the same route.
    assert_eq!(requests[1].one("host"), ROUTE_HOST);
    assert_eq!(requests[1].one("x-promfetcher-scrapping"), "true");
}

#[tokio::test]
async fn a_followed_redirect_carries_the_forwarded_headers_too() {
    // A relative `Location` resolves against the path asked.
    let server = TestServer::plain(|request| match request.path() {
        "/app/metrics" => redirect("prometheus?x=1"),
        "/app/prometheus?x=1" => ok(EXPOSITION),
        _ => status(404),
    })
    .await;
    let mut forwarded = HeaderMap::new();
    forwarded.insert("authorization", HeaderValue::from_static("Bearer t0ken"));
    forwarded.insert("x-scope-orgid", HeaderValue::from_static("team-a"));
    let response = scrape_with(
        &default_scraper(),
        &plain_instance(server.addr),
        "/app/metrics",
        &forwarded,
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    assert_eq!(response.body, EXPOSITION.as_bytes());
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    for request in &requests {
        assert_eq!(request.one("authorization"), "Bearer t0ken");
        assert_eq!(request.one("x-scope-orgid"), "team-a");
        assert_eq!(request.one("accept-encoding"), "gzip");
        assert_eq!(request.one("x-prometheus-scrape-timeout-seconds"), "5");
    }
}

#[tokio::test]
async fn cross_host_redirect_is_not_followed() {
    let other = TestServer::plain(|_| ok("# should never be scraped\n")).await;
    let target = format!(
        "http://user:pw@localhost:{}/login?token=abc",
        other.addr.port()
    );
    let server = TestServer::plain(move |_| redirect(&target)).await;
    let err = scrape(&default_scraper(), &plain_instance(server.addr))
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "redirect", "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "redirected to another host (localhost:{}); set metric_path to the instance's real metrics path",
            other.addr.port()
        )
    );
    let ScrapeError::Redirect { location } = &err else {
        unreachable!()
    };
    assert!(
        !location.contains("pw") && !location.contains("token"),
        "{location}"
    );
    assert!(other.requests().is_empty());
}

#[tokio::test]
async fn a_3xx_that_is_no_redirect_to_follow_is_reported_as_its_status() {
    // 300 and 304 are answers, not redirects, even with a `Location` on the same host; a 302
    // without `Location` leads nowhere. Neither is a redirect loop or a redirect elsewhere.
    let server = TestServer::plain(|request| match request.path() {
        "/choices" => Reply::Full {
            status: 300,
            headers: vec![("Location", "/metrics".into())],
            body: Vec::new(),
        },
        "/not-modified" => Reply::Full {
            status: 304,
            headers: vec![("Location", "/metrics".into())],
            body: Vec::new(),
        },
        _ => Reply::Full {
            status: 302,
            headers: vec![],
            body: Vec::new(),
        },
    })
    .await;
    let scraper = default_scraper();
    let instance = plain_instance(server.addr);
    for (path, code) in [("/choices", 300), ("/not-modified", 304), ("/found", 302)] {
        let url = Url::parse(&format!("http://{}{path}", server.addr)).unwrap();
        let timeout = Duration::from_secs(5);
        let errors = [
            scrape_with(&scraper, &instance, path, &HeaderMap::new(), timeout).await,
            scrape_target(&scraper, ScrapeTarget::Url(&url), timeout).await,
        ];
        for err in errors.into_iter().map(Result::unwrap_err) {
            assert!(
                matches!(err, ScrapeError::Status(c) if c == code),
                "{path}: {err:?}"
            );
            assert_eq!(err.reason(), "redirect");
            assert_eq!(
                err.to_string(),
                format!("the instance answered HTTP {code}")
            );
        }
    }
    // Nothing was followed: each path was asked once by each client.
    assert_eq!(server.requests().len(), 6);
}

#[tokio::test]
async fn redirect_to_another_port_or_scheme_is_not_followed() {
    let server = TestServer::plain(|request| match request.path() {
        "/metrics" => redirect("http://127.0.0.1:1/metrics"),
        _ => redirect("https://127.0.0.1/metrics"),
    })
    .await;
    let instance = plain_instance(server.addr);
    let err = scrape(&default_scraper(), &instance).await.unwrap_err();
    assert_eq!(err.reason(), "redirect");
    let err = scrape_with(
        &default_scraper(),
        &instance,
        "/other",
        &HeaderMap::new(),
        Duration::from_secs(5),
    )
    .await
    .unwrap_err();
    assert_eq!(err.reason(), "redirect");
}

#[tokio::test]
async fn redirect_loop_stops_after_max_redirects() {
    let server = TestServer::plain(|request| {
        let n: u32 = request.path().trim_start_matches("/r").parse().unwrap_or(0);
        redirect(&format!("/r{}", n + 1))
    })
    .await;
    let scraper = scraper(ScraperSettings {
        max_redirects: 2,
        ..ScraperSettings::default()
    });
    let err = scrape(&scraper, &plain_instance(server.addr))
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "redirect");
    assert_eq!(
        err.to_string(),
        "too many redirects (more than 2) within the instance; set metric_path to the instance's real metrics path"
    );
    // The first request and two followed redirects.
    assert_eq!(server.requests().len(), 3);
}

#[tokio::test]
async fn oversized_body_is_too_large_without_buffering_it() {
    // 10 GiB, chunk by chunk; the scraper must stop after a little more than its 1 MiB cap.
    let server = TestServer::plain(|_| Reply::Chunked {
        headers: vec![],
        prefix: Vec::new(),
        chunk: vec![b'#'; 64 * 1024],
        repeat: 160 * 1024,
        pause: Duration::ZERO,
    })
    .await;
    let scraper = scraper(ScraperSettings {
        max_body_bytes: 1024 * 1024,
        ..ScraperSettings::default()
    });
    let err = scrape(&scraper, &plain_instance(server.addr))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ScrapeError::TooLarge { limit: 1048576 }),
        "{err:?}"
    );
    assert_eq!(err.reason(), "too_large");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let sent = server.body_bytes_sent();
    assert!(sent < 64 * 1024 * 1024, "server sent {sent} bytes");
}

#[tokio::test]
async fn declared_oversized_body_fails_before_reading() {
    let server = TestServer::plain(|_| Reply::Truncated {
        declared: 10 * 1024 * 1024 * 1024,
        sent: b"up 1\n".to_vec(),
    })
    .await;
    let scraper = scraper(ScraperSettings {
        max_body_bytes: 1024,
        ..ScraperSettings::default()
    });
    let err = scrape(&scraper, &plain_instance(server.addr))
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "too_large", "{err:?}");
}

#[tokio::test]
async fn body_at_the_cap_is_accepted() {
    let body = "x".repeat(1000);
    let server = TestServer::plain(move |_| ok(&body)).await;
    let scraper = scraper(ScraperSettings {
        max_body_bytes: 1000,
        ..ScraperSettings::default()
    });
    let response = scrape(&scraper, &plain_instance(server.addr))
        .await
        .unwrap();
    assert_eq!(response.body.len(), 1000);
}

#[tokio::test]
async fn gzip_bomb_is_not_inflated_beyond_the_cap() {
    let (first, repeated) = gzip_bomb_parts();
    // About 100 MB on the wire that would inflate to 100 GiB.
    let repeat = 100_000;
    let total = (first.len() + repeated.len() * repeat) as u64;
    let server = gzip_server_chunked(first, repeated, repeat).await;
    let scraper = scraper(ScraperSettings {
        max_body_bytes: 8 * 1024 * 1024,
        ..ScraperSettings::default()
    });
    let started = Instant::now();
    let err = scrape(&scraper, &plain_instance(server.addr))
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "too_large", "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    let sent = server.body_bytes_sent();
    assert!(
        sent < 32 * 1024 * 1024,
        "server sent {sent} of {total} bytes"
    );
}

#[tokio::test]
async fn small_gzip_bomb_within_the_cap_inflates() {
    // The same construction, small enough to fit: proves the bomb really inflates.
    let (first, repeated) = gzip_bomb_parts();
    let server = gzip_server_chunked(first, repeated, 2).await;
    let scraper = scraper(ScraperSettings {
        max_body_bytes: 3 * 1024 * 1024,
        ..ScraperSettings::default()
    });
    // The stream has no gzip trailer, so it ends with a read error once fully inflated; before the
    // cap is reached that is the only possible outcome, and it is not `too_large`.
    let err = scrape(&scraper, &plain_instance(server.addr))
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "read", "{err:?}");
}

#[tokio::test]
async fn connection_closed_mid_body_is_a_read_error() {
    let server = TestServer::plain(|_| Reply::Truncated {
        declared: 1000,
        sent: b"# TYPE up gauge\nup".to_vec(),
    })
    .await;
    let err = scrape(&default_scraper(), &plain_instance(server.addr))
        .await
        .unwrap_err();
    assert!(matches!(err, ScrapeError::Read(_)), "{err:?}");
    assert_eq!(err.reason(), "read");
    assert!(err
        .to_string()
        .starts_with("reading the instance's answer failed: "));
}

#[tokio::test]
async fn connection_closed_before_answering_is_a_read_error() {
    let server = TestServer::plain(|_| Reply::Close).await;
    let err = scrape(&default_scraper(), &plain_instance(server.addr))
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "read", "{err:?}");
}

// ---------------------------------------------------------------------------------------------
// TLS
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn tls_instance_is_verified_against_its_server_name() {
    let pki = pki(GUID);
    let server = TestServer::tls(server_config(&pki, false), |_| ok(EXPOSITION)).await;
    let scraper = scraper(trusting(&pki));
    let response = scrape(&scraper, &tls_instance(server.addr, GUID))
        .await
        .unwrap();
    assert_eq!(response.body, EXPOSITION.as_bytes());
    let request = server.only_request();
    assert_eq!(request.request_line, "GET /metrics HTTP/1.1");
    assert_eq!(request.one("host"), ROUTE_HOST);
    assert_eq!(server.state.client_certs.lock().unwrap().as_slice(), [0]);
}

#[tokio::test]
async fn tls_certificate_for_another_name_is_refused() {
    let pki = pki("some-other-guid");
    let server = TestServer::tls(server_config(&pki, false), |_| ok(EXPOSITION)).await;
    let err = scrape(&scraper(trusting(&pki)), &tls_instance(server.addr, GUID))
        .await
        .unwrap_err();
    assert!(matches!(err, ScrapeError::Tls(_)), "{err:?}");
    assert_eq!(err.reason(), "tls");
    let text = err.to_string();
    assert!(
        text.starts_with("TLS handshake with the instance failed: "),
        "{text}"
    );
    assert!(text.contains("not valid for name"), "{text}");
}

#[tokio::test]
async fn tls_certificate_from_an_unknown_ca_is_refused() {
    let pki = pki(GUID);
    let server = TestServer::tls(server_config(&pki, false), |_| ok(EXPOSITION)).await;
    let err = scrape(&default_scraper(), &tls_instance(server.addr, GUID))
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "tls", "{err:?}");
}

#[tokio::test]
async fn skip_tls_verify_accepts_any_certificate() {
    let pki = pki("some-other-guid");
    let server = TestServer::tls(server_config(&pki, false), |_| ok(EXPOSITION)).await;
    let scraper = scraper(ScraperSettings {
        skip_tls_verify: true,
        ..ScraperSettings::default()
    });
    let response = scrape(&scraper, &tls_instance(server.addr, GUID))
        .await
        .unwrap();
    assert_eq!(response.body, EXPOSITION.as_bytes());
}

#[tokio::test]
async fn client_certificate_is_presented_when_configured() {
    let pki = pki(GUID);
    let server = TestServer::tls(server_config(&pki, true), |_| ok(EXPOSITION)).await;
    let scraper = scraper(ScraperSettings {
        client_identity: Some(
            crate::config::pem::KeyPair::from_pem(
                "backends",
                &pki.client_cert_pem,
                &pki.client_key_pem,
            )
            .unwrap(),
        ),
        ..trusting(&pki)
    });
    let response = scrape(&scraper, &tls_instance(server.addr, GUID))
        .await
        .unwrap();
    assert_eq!(response.body, EXPOSITION.as_bytes());
    assert_eq!(server.state.client_certs.lock().unwrap().as_slice(), [1]);
}

#[tokio::test]
async fn missing_client_certificate_is_a_tls_error() {
    let pki = pki(GUID);
    let server = TestServer::tls(server_config(&pki, true), |_| ok(EXPOSITION)).await;
    let err = scrape(&scraper(trusting(&pki)), &tls_instance(server.addr, GUID))
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "tls", "{err:?}");
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn tls_clients_are_cached_per_server_name_and_address() {
    let pki_a = pki("guid-a");
    let pki_b = pki("guid-b");
    let server_a = TestServer::tls(server_config(&pki_a, false), |_| ok(EXPOSITION)).await;
    let server_b = TestServer::tls(server_config(&pki_b, false), |_| ok(EXPOSITION)).await;
    let scraper = scraper(ScraperSettings {
        extra_roots: vec![pki_a.ca_der.clone(), pki_b.ca_der.clone()],
        ..ScraperSettings::default()
    });
    let a = tls_instance(server_a.addr, "guid-a");
    let b = tls_instance(server_b.addr, "guid-b");
    for instance in [&a, &b, &a, &b] {
        scrape(&scraper, instance).await.unwrap();
    }
    assert_eq!(scraper.tls_client_count(), 2);
    // Each instance was reached over one kept-alive connection.
    assert_eq!(server_a.connections(), 1);
    assert_eq!(server_b.connections(), 1);
}

// ---------------------------------------------------------------------------------------------
// Connection reuse
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn keep_alive_reuses_one_connection() {
    let server = TestServer::plain(|_| ok(EXPOSITION)).await;
    let scraper = default_scraper();
    let instance = plain_instance(server.addr);
    scrape(&scraper, &instance).await.unwrap();
    // A clone shares the pool.
    scrape(&scraper.clone(), &instance).await.unwrap();
    assert_eq!(server.connections(), 1);
    assert!(server.requests()[0].all("connection").is_empty());
}

#[tokio::test]
async fn without_keep_alive_every_scrape_connects_anew() {
    let server = TestServer::plain(|_| ok(EXPOSITION)).await;
    let scraper = scraper(ScraperSettings {
        keep_alive: false,
        ..ScraperSettings::default()
    });
    let instance = plain_instance(server.addr);
    scrape(&scraper, &instance).await.unwrap();
    scrape(&scraper, &instance).await.unwrap();
    assert_eq!(server.connections(), 2);
    for request in server.requests() {
        assert_eq!(request.one("connection"), "close");
    }
}

#[tokio::test]
async fn ca_certs_alone_is_enough_to_build_a_scraper() {
    let pki = pki(GUID);
    assert!(Scraper::new(trusting(&pki)).is_ok());
}

#[test]
fn request_debug_never_shows_forwarded_values() {
    let instance = plain_instance("10.0.0.1:8080".parse().unwrap());
    let path = MetricPath::default_path();
    let mut forwarded = HeaderMap::new();
    forwarded.insert("authorization", HeaderValue::from_static("Bearer s3cret"));
    let request = ScrapeRequest {
        target: ScrapeTarget::Instance {
            instance: &instance,
            path: &path,
        },
        forwarded: &forwarded,
        timeout: Duration::from_secs(1),
        forwarded_proto: "http",
        forwarded_for: None,
    };
    let debug = format!("{request:?}");
    assert!(debug.contains("authorization"), "{debug}");
    assert!(!debug.contains("s3cret"), "{debug}");
}

#[tokio::test]
async fn a_url_target_is_asked_at_its_own_host_path_and_query() {
    let server = TestServer::plain(|_| ok(EXPOSITION)).await;
    let url = Url::parse(&format!("http://{}/probe?target=app%2F1&k=v", server.addr)).unwrap();
    let request = ScrapeRequest {
        target: ScrapeTarget::Url(&url),
        forwarded: &HeaderMap::new(),
        timeout: Duration::from_secs(5),
        forwarded_proto: "http",
        forwarded_for: None,
    };
    let response = default_scraper().scrape(&request).await.unwrap();
    assert_eq!(response.body, EXPOSITION);
    let seen = server.only_request();
    assert_eq!(seen.path(), "/probe?target=app%2F1&k=v");
    assert_eq!(seen.one("host"), server.addr.to_string());
    assert_eq!(seen.one(SCRAPPING_HEADER), "true");

    // the query may carry an exporter's API key: Debug leaves it out
    let debug = format!("{request:?}");
    assert!(debug.contains("/probe"), "{debug}");
    assert!(
        !debug.contains("target=") && !debug.contains("k=v"),
        "{debug}"
    );
}

// ---------------------------------------------------------------------------------------------
// The two clients answer alike
// ---------------------------------------------------------------------------------------------

/// What a scrape came to, comparable across clients: the body and content type, or the reason
/// (the error texts may differ in their details).
fn outcome(result: Result<ScrapeResponse, ScrapeError>) -> Result<(Bytes, Option<String>), String> {
    result
        .map(|response| (response.body, response.content_type))
        .map_err(|err| match err {
            ScrapeError::Redirect { location } => format!("redirect to {location}"),
            ScrapeError::TooManyRedirects { max } => format!("more than {max} redirects"),
            other => other.reason().label().to_owned(),
        })
}

/// Scrapes `target` without forwarded headers, as asked over plain HTTP.
async fn scrape_target(
    scraper: &Scraper,
    target: ScrapeTarget<'_>,
    timeout: Duration,
) -> Result<ScrapeResponse, ScrapeError> {
    scraper
        .scrape(&ScrapeRequest {
            target,
            forwarded: &HeaderMap::new(),
            timeout,
            forwarded_proto: "http",
            forwarded_for: None,
        })
        .await
}

/// A plain-HTTP instance goes through hyper directly, an exporter URL through reqwest: the same
/// answers must come to the same outcome either way.
#[tokio::test]
async fn a_plain_instance_and_an_exporter_url_come_to_the_same_outcome() {
    let exposition = EXPOSITION.repeat(20);
    let compressed = gzip(exposition.as_bytes());
    let mut trailing = compressed.clone();
    trailing.extend_from_slice(b"garbage after the trailer");
    let gzip_reply = |body: Vec<u8>, encoding: &'static str| Reply::Full {
        status: 200,
        headers: vec![
            ("Content-Encoding", encoding.into()),
            ("Content-Type", "text/plain; version=0.0.4".into()),
        ],
        body,
    };
    let replies: Vec<(&str, Reply)> = vec![
        ("plain", ok(&exposition)),
        ("gzip", gzip_reply(compressed.clone(), "gzip")),
        ("empty gzip", gzip_reply(Vec::new(), "gzip")),
        ("gzip with trailing bytes", gzip_reply(trailing, "gzip")),
        (
            "gzip cut short",
            gzip_reply(compressed[..compressed.len() - 9].to_vec(), "gzip"),
        ),
        ("other encoding", gzip_reply(compressed.clone(), "x-custom")),
        ("not found", status(404)),
        ("unavailable", status(503)),
        (
            "multiple choices",
            Reply::Full {
                status: 300,
                headers: vec![("Location", "/elsewhere".into())],
                body: Vec::new(),
            },
        ),
        (
            "redirect without location",
            Reply::Full {
                status: 302,
                headers: vec![],
                body: Vec::new(),
            },
        ),
        (
            "redirect elsewhere",
            redirect("http://127.0.0.1:1/metrics?token=x"),
        ),
        ("redirect to itself", redirect("/metrics")),
        (
            "chunked gzip",
            Reply::Chunked {
                headers: vec![("Content-Encoding", "gzip".into())],
                prefix: compressed[..compressed.len() / 2].to_vec(),
                chunk: compressed[compressed.len() / 2..].to_vec(),
                repeat: 1,
                pause: Duration::ZERO,
            },
        ),
        (
            "truncated",
            Reply::Truncated {
                declared: 100,
                sent: b"up 1\n".to_vec(),
            },
        ),
        ("closed", Reply::Close),
    ];
    let scraper = default_scraper();
    for (name, reply) in replies {
        let server = TestServer::plain(move |_| reply.clone()).await;
        let instance = plain_instance(server.addr);
        let through_hyper = outcome(scrape(&scraper, &instance).await);
        let url = Url::parse(&format!("http://{}/metrics", server.addr)).unwrap();
        let through_reqwest =
            outcome(scrape_target(&scraper, ScrapeTarget::Url(&url), Duration::from_secs(5)).await);
        assert_eq!(through_hyper, through_reqwest, "{name}");
    }
}

/// A listener whose accept queue is full drops new connection attempts, so connecting to it
/// hangs until the connect timeout: on both clients that counts as a timeout.
#[tokio::test]
async fn a_connect_timeout_is_a_timeout_on_both_clients() {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(1).unwrap();
    let addr = listener.local_addr().unwrap();
    // Never accepted: these fill the queue.
    let mut queued = Vec::new();
    for _ in 0..4 {
        if let Ok(Ok(stream)) = tokio::time::timeout(
            Duration::from_millis(200),
            tokio::net::TcpStream::connect(addr),
        )
        .await
        {
            queued.push(stream);
        }
    }
    let scraper = scraper(ScraperSettings {
        connect_timeout: Duration::from_millis(300),
        ..ScraperSettings::default()
    });
    let url = Url::parse(&format!("http://{addr}/metrics")).unwrap();
    let instance = plain_instance(addr);
    let path = MetricPath::default_path();
    for (client, target) in [
        (
            "hyper",
            ScrapeTarget::Instance {
                instance: &instance,
                path: &path,
            },
        ),
        ("reqwest", ScrapeTarget::Url(&url)),
    ] {
        let started = Instant::now();
        let err = scrape_target(&scraper, target, Duration::from_secs(10))
            .await
            .unwrap_err();
        assert_eq!(err.reason(), "timeout", "{client}: {err:?}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
    }
    drop(queued);
}

/// Both clients put the same request on the wire (but for `Host`: the route host for an
/// instance, the URL's host for an exporter).
#[tokio::test]
async fn a_plain_instance_and_an_exporter_url_are_sent_the_same_headers() {
    let server = TestServer::plain(|_| ok(EXPOSITION)).await;
    let scraper = default_scraper();
    let instance = plain_instance(server.addr);
    let path = MetricPath::default_path();
    let url = Url::parse(&format!("http://{}/metrics", server.addr)).unwrap();
    for target in [
        ScrapeTarget::Instance {
            instance: &instance,
            path: &path,
        },
        ScrapeTarget::Url(&url),
    ] {
        scrape_target(&scraper, target, Duration::from_secs(5))
            .await
            .unwrap();
    }
    let sent: Vec<(String, Vec<(String, String)>)> = server
        .requests()
        .into_iter()
        .map(|request| {
            let mut headers: Vec<(String, String)> = request
                .headers
                .into_iter()
                .filter(|(name, _)| !name.eq_ignore_ascii_case("host"))
                .map(|(name, value)| (name.to_ascii_lowercase(), value))
                .collect();
            headers.sort();
            (request.request_line, headers)
        })
        .collect();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0].0, "GET /metrics HTTP/1.1");
    let names: Vec<&str> = sent[0].1.iter().map(|(name, _)| name.as_str()).collect();
    assert!(names.contains(&"user-agent"), "{names:?}");
    assert_eq!(sent[0], sent[1]);
}
