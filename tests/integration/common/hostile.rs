//! A misbehaving app instance for the reliability tests: a raw TCP server on 127.0.0.1:0 that
//! records every request head it reads and answers byte by byte as its [`Hostile`] kind says,
//! so it can break HTTP in ways no server library would. Huge bodies are generated while they
//! are sent, never held in memory; every connection ends within [`HOLD_LIMIT`] or when the
//! client goes away, and dropping the server stops it and all its connections.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// Longest a hostile connection is held open (hanging or trickling).
pub const HOLD_LIMIT: Duration = Duration::from_secs(30);
/// What the endless bodies and the gzip bomb amount to when nobody stops reading: 10 GiB.
pub const HUGE_BODY_BYTES: u64 = 10 << 30;
/// Longest request head read; a longer one is recorded cut.
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// How the instance misbehaves.
#[derive(Debug, Clone)]
pub enum Hostile {
    /// Reads the request and never answers.
    HangBeforeHeaders,
    /// Sends the headers at once, then its (valid) body one byte every 100 ms.
    Slowloris,
    /// 200 with a close-delimited body of valid sample lines that goes on for 10 GiB.
    EndlessBody,
    /// 200 with a chunked body of valid sample lines that goes on for 10 GiB, one byte a chunk
    /// (`1\r\nx\r\n`), sent as fast as the client reads.
    EndlessOneByteChunks,
    /// 200 with `Content-Encoding: gzip`: about 10 MiB on the wire that inflate to 10 GiB of
    /// zeros.
    GzipBomb,
    /// 200, text format, with exactly these bytes as the body.
    Body(Vec<u8>),
    /// Announces a 1 MiB body, sends half of it, then resets the connection.
    ResetMidBody,
    /// 302 to this `Location`, followed by an endless body.
    RedirectTo(String),
    /// 302 back to `/metrics` on itself, every time, followed by an endless body.
    RedirectLoop,
    /// This status with an endless body.
    StatusWithEndlessBody(u16),
    /// 200 with a small valid body: a canary that only records what reaches it.
    Canary,
}

/// A running hostile instance.
pub struct HostileInstance {
    addr: SocketAddr,
    heads: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl HostileInstance {
    /// Listens on 127.0.0.1:0 and serves `kind` on every connection.
    pub async fn start(kind: Hostile) -> HostileInstance {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let addr = listener.local_addr().expect("local address");
        let heads = Arc::new(Mutex::new(Vec::new()));
        let recorded = heads.clone();
        let task = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((stream, _)) = accepted else { continue };
                        let kind = kind.clone();
                        let recorded = recorded.clone();
                        connections.spawn(async move {
                            let limit = tokio::time::timeout(HOLD_LIMIT, serve(stream, &kind, &recorded));
                            let _ = limit.await;
                        });
                    }
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                }
            }
        });
        HostileInstance { addr, heads, task }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request head received so far (request line and headers, lossily decoded), oldest
    /// first.
    pub fn request_heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }
}

impl Drop for HostileInstance {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One connection: read one request head, record it, misbehave.
async fn serve(mut stream: TcpStream, kind: &Hostile, heads: &Mutex<Vec<String>>) {
    let Some(head) = read_head(&mut stream).await else {
        return;
    };
    heads.lock().unwrap().push(head);
    let _ = misbehave(&mut stream, kind).await;
}

async fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_HEAD_BYTES {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    (!head.is_empty()).then(|| String::from_utf8_lossy(&head).into_owned())
}

const TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A small valid body.
const SMALL_BODY: &str = "# TYPE hostile_gauge gauge\nhostile_gauge 1\n";

async fn misbehave(stream: &mut TcpStream, kind: &Hostile) -> io::Result<()> {
    match kind {
        Hostile::HangBeforeHeaders => {
            // nothing until the client gives up (read returns 0) or the hold limit
            let mut buf = [0u8; 1024];
            while stream.read(&mut buf).await? > 0 {}
            Ok(())
        }
        Hostile::Slowloris => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {TEXT}\r\nContent-Length: {}\r\n\r\n",
                SMALL_BODY.len()
            );
            stream.write_all(head.as_bytes()).await?;
            for byte in SMALL_BODY.bytes() {
                stream.write_all(&[byte]).await?;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Ok(())
        }
        Hostile::EndlessBody => {
            let head =
                format!("HTTP/1.1 200 OK\r\nContent-Type: {TEXT}\r\nConnection: close\r\n\r\n");
            stream.write_all(head.as_bytes()).await?;
            endless(stream, sample_lines().as_bytes()).await
        }
        Hostile::EndlessOneByteChunks => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {TEXT}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            );
            stream.write_all(head.as_bytes()).await?;
            endless(stream, sample_lines_in_one_byte_chunks()).await
        }
        Hostile::GzipBomb => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {TEXT}\r\nContent-Encoding: gzip\r\nConnection: close\r\n\r\n"
            );
            stream.write_all(head.as_bytes()).await?;
            GzipBomb::inflating_to(HUGE_BODY_BYTES)
                .write_to(stream)
                .await
        }
        Hostile::Body(body) => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {TEXT}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            stream.write_all(head.as_bytes()).await?;
            stream.write_all(body).await
        }
        Hostile::ResetMidBody => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {TEXT}\r\nContent-Length: {}\r\n\r\n",
                1 << 20
            );
            stream.write_all(head.as_bytes()).await?;
            let half = sample_lines().repeat((1 << 19) / sample_lines().len() + 1);
            stream.write_all(&half.as_bytes()[..1 << 19]).await?;
            stream.flush().await?;
            // a zero linger turns the close into a reset (and never blocks the drop)
            #[allow(deprecated)]
            stream.set_linger(Some(Duration::ZERO))?;
            Ok(())
        }
        Hostile::RedirectTo(location) => redirect(stream, location).await,
        Hostile::RedirectLoop => redirect(stream, "/metrics").await,
        Hostile::StatusWithEndlessBody(status) => {
            let head = format!(
                "HTTP/1.1 {status} Hostile\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n"
            );
            stream.write_all(head.as_bytes()).await?;
            endless(stream, sample_lines().as_bytes()).await
        }
        Hostile::Canary => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {TEXT}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                SMALL_BODY.len()
            );
            stream.write_all(head.as_bytes()).await?;
            stream.write_all(SMALL_BODY.as_bytes()).await
        }
    }
}

async fn redirect(stream: &mut TcpStream, location: &str) -> io::Result<()> {
    let head = format!(
        "HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await?;
    endless(stream, sample_lines().as_bytes()).await
}

/// A block of valid sample lines, repeated to make endless bodies.
fn sample_lines() -> &'static str {
    static LINES: OnceLock<String> = OnceLock::new();
    LINES.get_or_init(|| {
        (0..1024)
            .map(|i| format!("hostile_endless_series{{n=\"{i:06}\"}} {i}\n"))
            .collect()
    })
}

/// [`sample_lines`] in HTTP/1.1 chunked coding, one byte a chunk.
fn sample_lines_in_one_byte_chunks() -> &'static [u8] {
    static CHUNKS: OnceLock<Vec<u8>> = OnceLock::new();
    CHUNKS.get_or_init(|| {
        sample_lines()
            .bytes()
            .flat_map(|byte| [b'1', b'\r', b'\n', byte, b'\r', b'\n'])
            .collect()
    })
}

/// Writes `block` again and again until [`HUGE_BODY_BYTES`] are sent or the client stops
/// reading.
async fn endless(stream: &mut TcpStream, block: &[u8]) -> io::Result<()> {
    let started = Instant::now();
    let mut sent = 0u64;
    while sent < HUGE_BODY_BYTES && started.elapsed() < HOLD_LIMIT {
        stream.write_all(block).await?;
        sent += block.len() as u64;
    }
    Ok(())
}

/// A gzip stream of one deflate block that inflates to `1 + 258 * repeats` zeros: a literal
/// zero, then `repeats` matches of length 258 at distance 1, each coded in two bits by the
/// block's own Huffman codes (the best ratio deflate allows, about 1:1030). Those bits are all
/// zero, so the stream is a short head, zero bytes, and a short tail; only head and tail are
/// kept, the zeros are produced while sending.
pub struct GzipBomb {
    head: Vec<u8>,
    zero_bytes: u64,
    tail: Vec<u8>,
}

impl GzipBomb {
    pub fn new(repeats: u64) -> GzipBomb {
        // gzip header: magic, deflate, no flags, no time, no extra flags, unknown OS
        let mut bits = BitWriter::default();
        for byte in [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff] {
            bits.push(byte, 8);
        }
        bits.push(1, 1); // BFINAL
        bits.push(2, 2); // BTYPE: dynamic Huffman codes
        bits.push(286 - 257, 5); // HLIT: literal/length codes 0..=285
        bits.push(2 - 1, 5); // HDIST: distance codes 0 and 1
        bits.push(18 - 4, 4); // HCLEN: code length codes up to the one for length 1
                              // code length code lengths, in the order of RFC 1951 3.2.7: 18 -> 1 bit, 2 and 1 -> 2 bits
        let order = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1];
        for symbol in order {
            let length = match symbol {
                18 => 1,
                1 | 2 => 2,
                _ => 0,
            };
            bits.push(length, 3);
        }
        // canonical codes of the code length alphabet: 18 = 0, 1 = 10, 2 = 11
        let length_one = |bits: &mut BitWriter| bits.push_code(0b10, 2);
        let length_two = |bits: &mut BitWriter| bits.push_code(0b11, 2);
        let zeros = |bits: &mut BitWriter, n: u32| {
            bits.push_code(0, 1); // 18: repeat a zero length 11 to 138 times
            bits.push(n - 11, 7);
        };
        // literal/length lengths: 0 -> 2, 1..=255 none, 256 (end of block) -> 2,
        // 257..=284 none, 285 (length 258) -> 1; distance lengths: 0 (distance 1) and 1 -> 1
        length_two(&mut bits);
        zeros(&mut bits, 138);
        zeros(&mut bits, 117);
        length_two(&mut bits);
        zeros(&mut bits, 28);
        length_one(&mut bits);
        length_one(&mut bits);
        length_one(&mut bits);
        // canonical literal/length codes: 285 = 0, literal 0 = 10, end of block = 11
        bits.push_code(0b10, 2);
        let matches_start = bits.len;
        let end_of_block = matches_start + 2 * repeats;
        let (head, head_bytes) = (bits.bytes, matches_start.div_ceil(8));
        let tail_start = end_of_block / 8;
        assert!(tail_start >= head_bytes, "too few repeats for a bomb");
        let mut tail = BitWriter {
            bytes: Vec::new(),
            len: end_of_block % 8,
        };
        tail.bytes.push(0);
        tail.push_code(0b11, 2);
        let inflated = 1 + 258 * repeats;
        let mut crc = flate2::Crc::new();
        let mut piece = flate2::Crc::new();
        piece.update(&[0]);
        let mut remaining = inflated;
        while remaining > 0 {
            if remaining & 1 == 1 {
                crc.combine(&piece);
            }
            let mut doubled = flate2::Crc::new();
            doubled.combine(&piece);
            doubled.combine(&piece);
            piece = doubled;
            remaining >>= 1;
        }
        let mut tail = tail.bytes;
        tail.extend_from_slice(&crc.sum().to_le_bytes());
        tail.extend_from_slice(&(inflated as u32).to_le_bytes());
        GzipBomb {
            head,
            zero_bytes: tail_start - head_bytes,
            tail,
        }
    }

    /// A bomb that inflates to about `bytes` zeros.
    pub fn inflating_to(bytes: u64) -> GzipBomb {
        GzipBomb::new(bytes / 258)
    }

    /// Bytes on the wire.
    pub fn len(&self) -> u64 {
        (self.head.len() + self.tail.len()) as u64 + self.zero_bytes
    }

    /// Writes the whole stream to `out`.
    pub async fn write_to<W: tokio::io::AsyncWrite + Unpin>(&self, out: &mut W) -> io::Result<()> {
        out.write_all(&self.head).await?;
        let zeros = [0u8; 64 * 1024];
        let mut left = self.zero_bytes;
        while left > 0 {
            let n = left.min(zeros.len() as u64) as usize;
            out.write_all(&zeros[..n]).await?;
            left -= n as u64;
        }
        out.write_all(&self.tail).await
    }
}

/// Packs bits least significant first, as deflate does.
#[derive(Default)]
struct BitWriter {
    bytes: Vec<u8>,
    /// Bits written.
    len: u64,
}

impl BitWriter {
    /// The `count` low bits of `value`, least significant first (header fields, extra bits).
    fn push(&mut self, value: u32, count: u32) {
        for i in 0..count {
            self.bit((value >> i) & 1 == 1);
        }
    }

    /// A Huffman code of `count` bits, most significant first.
    fn push_code(&mut self, code: u32, count: u32) {
        for i in (0..count).rev() {
            self.bit((code >> i) & 1 == 1);
        }
    }

    fn bit(&mut self, set: bool) {
        if self.bytes.len() as u64 * 8 == self.len {
            self.bytes.push(0);
        }
        if set {
            *self.bytes.last_mut().expect("a byte") |= 1 << (self.len % 8);
        }
        self.len += 1;
    }
}
