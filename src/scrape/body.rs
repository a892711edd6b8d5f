//! Reads an instance's answer into memory, decompressed, and never more than the configured cap.
//! The body is streamed chunk by chunk out of reqwest's gzip decoder, so a gzip bomb is inflated only
//! up to the cap and a huge plain body is never buffered. No parsing happens here.

use bytes::{Bytes, BytesMut};

use super::error::ScrapeError;

/// Largest buffer reserved up front from a `Content-Length`; beyond it the buffer grows as data arrives,
/// so that a lying header cannot make us allocate the cap for nothing.
const MAX_INITIAL_CAPACITY: u64 = 1024 * 1024;

/// Reads the whole (decompressed) body, failing with [`ScrapeError::TooLarge`] as soon as more than
/// `limit` bytes have arrived, or at once when a plain body's `Content-Length` already says so.
pub(crate) async fn read_capped(
    mut response: reqwest::Response,
    limit: u64,
) -> Result<Bytes, ScrapeError> {
    // With gzip, reqwest removes `Content-Length` (it is the compressed size), so this only ever
    // sees the length of an uncompressed body.
    let declared = response.content_length();
    if declared.is_some_and(|len| len > limit) {
        return Err(ScrapeError::TooLarge { limit });
    }
    let initial = declared.unwrap_or(0).min(limit).min(MAX_INITIAL_CAPACITY);
    let mut body = BytesMut::with_capacity(usize::try_from(initial).unwrap_or(0));

    while let Some(chunk) = response.chunk().await.map_err(ScrapeError::from_body)? {
        let total = (body.len() as u64).saturating_add(chunk.len() as u64);
        if total > limit {
            return Err(ScrapeError::TooLarge { limit });
        }
        if body.is_empty() && declared == Some(chunk.len() as u64) {
            // The whole body came in one chunk: keep it without copying.
            return Ok(chunk);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}
