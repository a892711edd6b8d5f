//! gzip for merged answers. Prometheus asks for gzip on every scrape, and compressing a merged
//! answer costs more CPU than merging it, so an answer shared by several callers (see
//! [`crate::fanout::coalesce`]) is compressed once, at the fast level, off the async workers, and every
//! caller that accepts gzip gets the same compressed bytes. Answers sent this way carry their
//! own `Content-Encoding`, which the server's generic compression middleware leaves alone.

use std::io::Write;

use bytes::Bytes;
use flate2::write::GzEncoder;
use flate2::Compression;
use tokio::sync::OnceCell;

/// A body's gzip form, computed by the first caller that needs it.
#[derive(Debug, Default)]
pub struct GzipOnce {
    compressed: OnceCell<Bytes>,
}

impl GzipOnce {
    /// The gzip form of `body` (which must be the same body on every call).
    pub async fn of(&self, body: &Bytes) -> Bytes {
        self.compressed
            .get_or_init(|| {
                let body = body.clone();
                async move {
                    tokio::task::spawn_blocking(move || gzip(&body))
                        .await
                        .expect("gzip of an in-memory buffer does not panic")
                }
            })
            .await
            .clone()
    }
}

fn gzip(body: &[u8]) -> Bytes {
    // Expositions shrink to a few percent; start small to avoid a large untouched allocation.
    let mut encoder = GzEncoder::new(Vec::with_capacity(body.len() / 16), Compression::fast());
    encoder
        .write_all(body)
        .expect("writing to a Vec does not fail");
    encoder
        .finish()
        .expect("writing to a Vec does not fail")
        .into()
}

/// Whether an `Accept-Encoding` header value accepts gzip: `gzip` (or `x-gzip`) or `*` with a
/// q-value above zero, where an explicit `gzip` entry wins over `*`.
pub fn accepts_gzip(accept_encoding: Option<&str>) -> bool {
    let Some(value) = accept_encoding else {
        return false;
    };
    let mut wildcard = None;
    for entry in value.split(',') {
        let mut parts = entry.split(';');
        let coding = parts.next().unwrap_or_default().trim();
        let quality = parts
            .filter_map(|param| {
                let (name, value) = param.split_once('=')?;
                name.trim()
                    .eq_ignore_ascii_case("q")
                    .then(|| value.trim().parse::<f32>().ok())
                    .flatten()
            })
            .next()
            .unwrap_or(1.0);
        if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
            return quality > 0.0;
        }
        if coding == "*" {
            wildcard = Some(quality > 0.0);
        }
    }
    wildcard.unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn accept_encoding_values_as_clients_send_them() {
        let cases = [
            // what Prometheus sends with every scrape
            (Some("gzip"), true),
            (Some("gzip, deflate, br"), true),
            (Some("br;q=1.0, gzip;q=0.8, *;q=0.1"), true),
            (Some("GZIP"), true),
            (Some("x-gzip"), true),
            (Some("*"), true),
            (Some("gzip;q=0"), false),
            (Some("*, gzip;q=0"), false),
            (Some("identity"), false),
            (Some("br, *;q=0"), false),
            (Some(""), false),
            (None, false),
        ];
        for (header, expected) in cases {
            assert_eq!(accepts_gzip(header), expected, "{header:?}");
        }
    }

    #[tokio::test]
    async fn every_caller_gets_the_same_compressed_bytes_that_decompress_to_the_body() {
        let body = Bytes::from("metric_a 1\n".repeat(10_000));
        let once = GzipOnce::default();
        let (first, second) = tokio::join!(once.of(&body), once.of(&body));
        assert_eq!(first.as_ptr(), second.as_ptr(), "compressed once, shared");
        assert!(first.len() < body.len() / 20, "{} bytes", first.len());
        let mut decompressed = Vec::new();
        flate2::read::GzDecoder::new(&first[..])
            .read_to_end(&mut decompressed)
            .unwrap();
        assert_eq!(decompressed, body);
    }
}
