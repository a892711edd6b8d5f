//! gzip for merged answers. Prometheus asks for gzip on every scrape, and compressing a merged
//! answer costs about as much CPU as merging it. When the caller that starts a fan-out accepts
//! gzip, the answer is compressed while it is merged, part by part, on the merge thread: the
//! merged text is never held whole nor read back from memory in a second pass, and the
//! compressor ([`deflate`]) reads it where the merge wrote it. Callers that share the answer
//! (see [`crate::fanout::coalesce`]) and want the other form get it made once, off the async
//! workers, and every such caller gets the same bytes. Answers sent this way carry their own
//! `Content-Encoding`, which the server's generic compression middleware leaves alone.

mod deflate;

use std::io::Write;
use std::sync::OnceLock;

use bytes::Bytes;
use flate2::write::GzDecoder;
use futures_util::future::{BoxFuture, FutureExt, Shared};

use deflate::{Deflater, WINDOW};

/// How much merged text is gathered before it goes to the compressor: large enough that the
/// compressor works on long runs, small enough to stay in the core's cache.
const PART_BYTES: usize = 64 * 1024;

/// How large the part buffer may grow before the text older than the window is dropped from it.
const KEPT_BYTES: usize = 4 * PART_BYTES;

/// A merged answer, made plain or compressed; the other form is made from it once, by the first
/// caller that needs it.
pub struct Answer {
    made: Form,
    other: OnceLock<Converting>,
}

/// The other form being made on the blocking pool: started once, awaited by any number of
/// callers, each of which can take the result when it is ready.
type Converting = Shared<BoxFuture<'static, Bytes>>;

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Answer")
            .field("made", &self.made)
            .field("other_started", &self.other.get().is_some())
            .finish()
    }
}

#[derive(Debug)]
enum Form {
    Plain(Bytes),
    Gzipped(Bytes),
}

impl Answer {
    pub fn plain(body: Bytes) -> Answer {
        Answer {
            made: Form::Plain(body),
            other: OnceLock::new(),
        }
    }

    pub fn gzipped(compressed: Bytes) -> Answer {
        Answer {
            made: Form::Gzipped(compressed),
            other: OnceLock::new(),
        }
    }

    /// The answer as the caller accepts it: gzip when `gzip`, else plain.
    pub async fn as_sent(&self, gzip: bool) -> Bytes {
        match (&self.made, gzip) {
            (Form::Plain(body), false) | (Form::Gzipped(body), true) => body.clone(),
            (Form::Plain(body), true) => self.other_form(body, gzip_whole).await,
            (Form::Gzipped(compressed), false) => self.other_form(compressed, gunzip).await,
        }
    }

    async fn other_form(&self, made: &Bytes, convert: fn(&[u8]) -> Bytes) -> Bytes {
        let converting = self.other.get_or_init(|| {
            let made = made.clone();
            // Started at once, not when its first caller is polled again: no caller waits on
            // another's task, and one that leaves does not stop it for the others.
            let converted = tokio::task::spawn_blocking(move || convert(&made));
            async move {
                converted
                    .await
                    .expect("converting an in-memory answer does not panic")
            }
            .boxed()
            .shared()
        });
        converting.clone().await
    }
}

/// Compresses merged text as it is written: [`GzipWriter::take`] after each part the merge hands
/// over, then [`GzipWriter::finish`].
pub struct GzipWriter {
    deflater: Deflater,
    /// Where the text not compressed yet starts in the part buffer.
    compressed_to: usize,
}

impl GzipWriter {
    /// A writer for an answer of about `plain_bytes`.
    pub fn new(plain_bytes: usize) -> GzipWriter {
        // Expositions shrink to a few percent; start small to avoid a large untouched allocation.
        GzipWriter {
            deflater: Deflater::new(plain_bytes / 16),
            compressed_to: 0,
        }
    }

    /// A buffer to merge into, to hand to [`GzipWriter::take`]: the writer keeps the text it
    /// needs to look back into at its start, so it must be the same buffer each time.
    pub fn part_buffer() -> Vec<u8> {
        Vec::with_capacity(KEPT_BYTES + PART_BYTES)
    }

    /// Takes what the merge appended to `written` since the last call: compresses once a
    /// part's worth is there, and drops what is older than the window.
    pub fn take(&mut self, written: &mut Vec<u8>) {
        if written.len() - self.compressed_to < PART_BYTES {
            return;
        }
        self.deflater.compress(written, self.compressed_to);
        self.compressed_to = written.len();
        if written.len() >= KEPT_BYTES {
            written.drain(..written.len() - WINDOW);
            self.compressed_to = WINDOW;
        }
    }

    /// Compresses the rest of `written` and gives the whole gzip member.
    pub fn finish(mut self, written: &[u8]) -> Bytes {
        self.deflater.compress(written, self.compressed_to);
        self.deflater.finish().into()
    }
}

fn gzip_whole(body: &[u8]) -> Bytes {
    GzipWriter::new(body.len()).finish(body)
}

fn gunzip(compressed: &[u8]) -> Bytes {
    let mut decoder = GzDecoder::new(Vec::with_capacity(compressed.len() * 16));
    decoder
        .write_all(compressed)
        .expect("an answer compressed here decompresses");
    decoder
        .finish()
        .expect("an answer compressed here decompresses")
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[tokio::test]
    async fn a_plain_answer_is_compressed_once_and_every_caller_gets_the_same_bytes() {
        let body = Bytes::from("metric_a 1\n".repeat(10_000));
        let answer = Answer::plain(body.clone());
        let (first, second) = tokio::join!(answer.as_sent(true), answer.as_sent(true));
        assert_eq!(first.as_ptr(), second.as_ptr(), "compressed once, shared");
        assert!(first.len() < body.len() / 20, "{} bytes", first.len());
        assert_eq!(decompressed(&first), body);
        assert_eq!(answer.as_sent(false).await.as_ptr(), body.as_ptr());
    }

    #[tokio::test]
    async fn a_caller_that_leaves_does_not_stop_the_other_form_for_the_others() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static CONVERSIONS: AtomicUsize = AtomicUsize::new(0);
        fn slow_upper(text: &[u8]) -> Bytes {
            CONVERSIONS.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(std::time::Duration::from_millis(50));
            Bytes::from(text.to_ascii_uppercase())
        }
        let body = Bytes::from_static(b"up 1\n");
        let answer = Answer::plain(body.clone());
        {
            // the first caller starts the conversion and goes away (its client timed out)
            let first = std::pin::pin!(answer.other_form(&body, slow_upper));
            assert!(futures_util::poll!(first).is_pending());
        }
        let (a, b) = tokio::join!(
            answer.other_form(&body, slow_upper),
            answer.other_form(&body, slow_upper)
        );
        assert_eq!((&a[..], &b[..]), (&b"UP 1\n"[..], &b"UP 1\n"[..]));
        assert_eq!(CONVERSIONS.load(Ordering::SeqCst), 1, "made once");
    }

    #[tokio::test]
    async fn an_answer_compressed_part_by_part_is_the_merged_text_in_either_form() {
        let families: Vec<String> = (0..5_000)
            .map(|i| format!("# TYPE m{i} gauge\nm{i}{{instance=\"{}\"}} {i}\n", i % 7))
            .collect();
        let mut writer = GzipWriter::new(0);
        let mut part = GzipWriter::part_buffer();
        for family in &families {
            part.extend_from_slice(family.as_bytes());
            writer.take(&mut part);
            assert!(
                part.len() - writer.compressed_to < PART_BYTES,
                "compressed once a part's worth is there"
            );
            assert!(part.len() < KEPT_BYTES, "older text dropped");
        }
        let answer = Answer::gzipped(writer.finish(&part));
        let whole = families.concat();
        let compressed = answer.as_sent(true).await;
        assert_eq!(decompressed(&compressed), whole.as_bytes());
        assert!(
            compressed.len() < whole.len() / 2,
            "{} bytes",
            compressed.len()
        );
        let (first, second) = tokio::join!(answer.as_sent(false), answer.as_sent(false));
        assert_eq!(first, whole.as_bytes());
        assert_eq!(first.as_ptr(), second.as_ptr(), "decompressed once, shared");
    }

    /// Ten instances of 500 series, merged with the nine labels of each instance, as a fan-out
    /// does: compressed while merged, the answer is the merged text, and no larger than the
    /// fastest zlib level makes it.
    #[test]
    fn a_merged_answer_compressed_while_merged_reads_back_and_is_small() {
        let bodies: Vec<String> = (0..10)
            .map(|i| {
                simulated_foundation::healthy_body(simulated_foundation::BodyFormat::Text, i, 485)
            })
            .collect();
        let parsed: Vec<_> = bodies
            .iter()
            .map(|b| exposition::parse(b.as_bytes(), exposition::InputFormat::Text).unwrap())
            .collect();
        let labels: Vec<Vec<(String, String)>> = (0..10)
            .map(|i| {
                [
                    (
                        "organization_id",
                        "6b8d2d3e-8f0a-4c49-9a53-0f3b4c2f5e10".to_owned(),
                    ),
                    (
                        "space_id",
                        "0c1d5b7e-2f4a-4e8b-b9c6-3a2d1e0f9b87".to_owned(),
                    ),
                    ("app_id", "f2a9c0d1-7e3b-4a56-8c9d-1b2e3f4a5c6d".to_owned()),
                    ("organization_name", "retail".to_owned()),
                    ("space_name", "production".to_owned()),
                    ("app_name", "checkout".to_owned()),
                    ("index", i.to_string()),
                    ("instance_id", format!("4d5e6f70-8192-a3b4-c5d6-{i:012}")),
                    ("instance", format!("127.0.0.{}:61{i:03}", i + 1)),
                ]
                .into_iter()
                .map(|(n, v)| (n.to_owned(), v))
                .collect()
            })
            .collect();
        let label_refs: Vec<Vec<(&str, &str)>> = labels
            .iter()
            .map(|l| l.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect())
            .collect();
        let sources: Vec<exposition::Source<'_>> = parsed
            .iter()
            .zip(&label_refs)
            .map(|(exposition, labels)| exposition::Source { exposition, labels })
            .collect();
        let mut text = Vec::new();
        exposition::merge_text(&sources, &mut text);

        let mut writer = GzipWriter::new(text.len());
        let mut part = GzipWriter::part_buffer();
        exposition::merge_in_parts(
            &sources,
            exposition::OutputFormat::Text,
            &mut part,
            |written| writer.take(written),
        );
        let compressed = writer.finish(&part);
        assert_eq!(decompressed(&compressed), text);

        let mut zlib = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        zlib.write_all(&text).unwrap();
        let zlib = zlib.finish().unwrap();
        eprintln!(
            "{} bytes merged, {} compressed while merged, {} by zlib's fastest level",
            text.len(),
            compressed.len(),
            zlib.len()
        );
        assert!(
            compressed.len() <= zlib.len() + zlib.len() / 100,
            "{} bytes",
            compressed.len()
        );
    }

    fn decompressed(compressed: &[u8]) -> Vec<u8> {
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(compressed)
            .read_to_end(&mut plain)
            .unwrap();
        plain
    }
}
