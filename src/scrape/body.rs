//! Reads an answer's body into memory, decompressed, and never more than the configured cap.
//! The body is streamed chunk by chunk out of the client's gzip decoder, so a gzip bomb is inflated
//! only up to the cap and a huge plain body is never buffered. The chunks are kept as they arrive
//! and joined once at the end: a buffer grown by doubling would copy the body again at every step
//! and hold the old and the new copy at once, up to three times the cap. No parsing happens here.

use bytes::Bytes;

use super::answer::Answer;
use super::error::ScrapeError;

/// Reads the whole (decompressed) body, failing with [`ScrapeError::TooLarge`] as soon as more than
/// `limit` bytes have arrived, or at once when a plain body's `Content-Length` already says so.
pub(crate) async fn read_capped(answer: &mut Answer, limit: u64) -> Result<Bytes, ScrapeError> {
    if answer.declared_length().is_some_and(|len| len > limit) {
        return Err(ScrapeError::TooLarge { limit });
    }
    let mut chunks = Vec::new();
    let mut total: u64 = 0;
    while let Some(chunk) = answer.next_chunk().await? {
        total = total.saturating_add(chunk.len() as u64);
        if total > limit {
            return Err(ScrapeError::TooLarge { limit });
        }
        chunks.push(chunk);
    }
    Ok(joined(chunks))
}

/// The chunks as one contiguous body; a body that came in one chunk is kept without copying.
fn joined(mut chunks: Vec<Bytes>) -> Bytes {
    if chunks.len() <= 1 {
        return chunks.pop().unwrap_or_default();
    }
    Bytes::from(chunks.concat())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_joined_in_order_into_one_exact_buffer() {
        let chunks = vec![
            Bytes::from_static(b"# TYPE up gauge\n"),
            Bytes::new(),
            Bytes::from_static(b"up 1\n"),
        ];
        assert_eq!(
            joined(chunks),
            Bytes::from_static(b"# TYPE up gauge\nup 1\n")
        );
        assert_eq!(joined(Vec::new()), Bytes::new());
        let single = Bytes::from(b"up 1\n".to_vec());
        let pointer = single.as_ptr();
        assert_eq!(
            joined(vec![single]).as_ptr(),
            pointer,
            "one chunk is not copied"
        );
    }
}
