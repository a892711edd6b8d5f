//! gzip for merged answers. Prometheus asks for gzip on every scrape, and compressing a merged
//! answer costs about as much CPU as merging it. When the caller that starts a fan-out accepts
//! gzip, the answer is compressed while it is merged, family by family, on the merge thread: the
//! merged text is never held whole nor read back from memory in a second pass. Callers that share
//! the answer (see [`crate::fanout::coalesce`]) and want the other form get it made once, off the
//! async workers, and every such caller gets the same bytes. Answers sent this way carry their
//! own `Content-Encoding`, which the server's generic compression middleware leaves alone.

use std::io::Write;

use bytes::Bytes;
use flate2::write::{GzDecoder, GzEncoder};
use flate2::Compression;
use tokio::sync::OnceCell;

/// How much merged text is gathered before it goes to the compressor: large enough that the
/// compressor works on long runs, small enough to stay in the core's cache.
const PART_BYTES: usize = 64 * 1024;

/// A merged answer, made plain or compressed; the other form is made from it once, by the first
/// caller that needs it.
#[derive(Debug)]
pub struct Answer {
    made: Form,
    other: OnceCell<Bytes>,
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
            other: OnceCell::new(),
        }
    }

    pub fn gzipped(compressed: Bytes) -> Answer {
        Answer {
            made: Form::Gzipped(compressed),
            other: OnceCell::new(),
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
        self.other
            .get_or_init(|| {
                let made = made.clone();
                async move {
                    tokio::task::spawn_blocking(move || convert(&made))
                        .await
                        .expect("converting an in-memory answer does not panic")
                }
            })
            .await
            .clone()
    }
}

/// Compresses merged text as it is written: [`GzipWriter::take`] after each family, then
/// [`GzipWriter::finish`].
pub struct GzipWriter {
    encoder: GzEncoder<Vec<u8>>,
}

impl GzipWriter {
    /// A writer for an answer of about `plain_bytes`.
    pub fn new(plain_bytes: usize) -> GzipWriter {
        // Expositions shrink to a few percent; start small to avoid a large untouched allocation.
        GzipWriter {
            encoder: GzEncoder::new(Vec::with_capacity(plain_bytes / 16), Compression::fast()),
        }
    }

    /// A buffer to merge into, to hand to [`GzipWriter::take`].
    pub fn part_buffer() -> Vec<u8> {
        Vec::with_capacity(2 * PART_BYTES)
    }

    /// Compresses what `written` holds once it is a part's worth, and empties it.
    pub fn take(&mut self, written: &mut Vec<u8>) {
        if written.len() >= PART_BYTES {
            self.write(written);
            written.clear();
        }
    }

    /// Compresses the rest and gives the whole gzip member.
    pub fn finish(mut self, rest: &[u8]) -> Bytes {
        self.write(rest);
        self.encoder
            .finish()
            .expect("writing to a Vec does not fail")
            .into()
    }

    fn write(&mut self, part: &[u8]) {
        self.encoder
            .write_all(part)
            .expect("writing to a Vec does not fail");
    }
}

fn gzip_whole(body: &[u8]) -> Bytes {
    let mut writer = GzipWriter::new(body.len());
    writer.write(body);
    writer.finish(&[])
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
                part.len() < PART_BYTES,
                "taken once a part's worth is there"
            );
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

    fn decompressed(compressed: &[u8]) -> Vec<u8> {
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(compressed)
            .read_to_end(&mut plain)
            .unwrap();
        plain
    }
}
