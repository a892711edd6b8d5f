//! Reads an answer's body into memory, decompressed, and never more than the configured cap.
//! The body is streamed chunk by chunk out of the client's gzip decoder, so a gzip bomb is inflated
//! only up to the cap and a huge plain body is never buffered. Chunks of at least
//! [`KEPT_CHUNK_MIN`] bytes are kept as they arrive, shorter ones are copied into blocks of
//! [`COPY_BLOCK`] bytes, and all are joined once at the end: a buffer grown by doubling would copy
//! the body again at every step and hold the old and the new copy at once, up to three times the
//! cap, and keeping every chunk would let an instance that sends one-byte chunks cost a 32-byte
//! handle, and the read buffer behind it, per byte. No parsing happens here.

use bytes::{Bytes, BytesMut};

use super::answer::Answer;
use super::error::ScrapeError;

/// Chunks at least this long are kept without copying. Such a chunk may point into the client's
/// read buffer and keep all of it alive; hyper's read buffers stay under about 400 KiB, so that
/// costs at most a few times the chunk.
const KEPT_CHUNK_MIN: usize = 64 * 1024;

/// Size of the blocks shorter chunks are copied into.
const COPY_BLOCK: usize = 64 * 1024;

/// Reads the whole (decompressed) body, failing with [`ScrapeError::TooLarge`] as soon as more than
/// `limit` bytes have arrived, or at once when a plain body's `Content-Length` already says so.
pub(crate) async fn read_capped(answer: &mut Answer, limit: u64) -> Result<Bytes, ScrapeError> {
    if answer.declared_length().is_some_and(|len| len > limit) {
        return Err(ScrapeError::TooLarge { limit });
    }
    let mut gathered = Gathered::default();
    let mut total: u64 = 0;
    while let Some(chunk) = answer.next_chunk().await? {
        total = total.saturating_add(chunk.len() as u64);
        if total > limit {
            return Err(ScrapeError::TooLarge { limit });
        }
        gathered.push(chunk);
    }
    Ok(gathered.into_body())
}

/// A body as it arrives, in order: its first chunk and every chunk of at least [`KEPT_CHUNK_MIN`]
/// bytes as they came, the other chunks copied into blocks.
#[derive(Default)]
struct Gathered {
    pieces: Vec<Bytes>,
    /// The block short chunks are being copied into; its filled part becomes a piece before the
    /// next kept chunk and at the end, and its spare room takes the next short chunks.
    block: BytesMut,
}

impl Gathered {
    fn push(&mut self, mut chunk: Bytes) {
        if chunk.is_empty() {
            return;
        }
        // The first chunk is kept too, so that a body that came in one chunk is never copied.
        let first = self.pieces.is_empty() && self.block.is_empty();
        if first || chunk.len() >= KEPT_CHUNK_MIN {
            self.seal_block();
            self.pieces.push(chunk);
            return;
        }
        while !chunk.is_empty() {
            if self.block.len() == self.block.capacity() {
                self.seal_block();
                self.block = BytesMut::with_capacity(COPY_BLOCK);
            }
            // Never more than the spare room, so the block is never reallocated.
            let room = self.block.capacity() - self.block.len();
            let part = chunk.split_to(room.min(chunk.len()));
            self.block.extend_from_slice(&part);
        }
    }

    /// Moves the block's filled part to the pieces.
    fn seal_block(&mut self) {
        if !self.block.is_empty() {
            self.pieces.push(self.block.split().freeze());
        }
    }

    fn into_body(mut self) -> Bytes {
        self.seal_block();
        joined(self.pieces)
    }
}

/// The pieces as one contiguous body; a body that came in one piece is kept without copying.
fn joined(mut pieces: Vec<Bytes>) -> Bytes {
    if pieces.len() <= 1 {
        return pieces.pop().unwrap_or_default();
    }
    Bytes::from(pieces.concat())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gathered(chunks: impl IntoIterator<Item = Bytes>) -> Gathered {
        let mut gathered = Gathered::default();
        for chunk in chunks {
            gathered.push(chunk);
        }
        gathered
    }

    #[test]
    fn chunks_are_joined_in_order_into_one_exact_buffer() {
        let chunks = [
            Bytes::from_static(b"# TYPE up gauge\n"),
            Bytes::new(),
            Bytes::from_static(b"up 1\n"),
        ];
        assert_eq!(
            gathered(chunks).into_body(),
            Bytes::from_static(b"# TYPE up gauge\nup 1\n")
        );
        assert_eq!(Gathered::default().into_body(), Bytes::new());
    }

    #[test]
    fn a_body_in_one_chunk_and_long_chunks_are_not_copied() {
        let single = Bytes::from(b"up 1\n".to_vec());
        let pointer = single.as_ptr();
        assert_eq!(gathered([single]).into_body().as_ptr(), pointer);

        let long = Bytes::from(vec![b'#'; KEPT_CHUNK_MIN]);
        let pointer = long.as_ptr();
        let gathered = gathered([
            Bytes::from_static(b"a"),
            Bytes::from_static(b"b"),
            long,
            Bytes::from_static(b"c"),
        ]);
        // "a" as it came, "b" copied into a block, the long chunk, "c" copied into the block
        assert_eq!(gathered.pieces.len(), 3);
        assert_eq!(gathered.pieces[2].as_ptr(), pointer);
        assert_eq!(&gathered.block[..], b"c");
        let body = gathered.into_body();
        assert_eq!(&body[..2], b"ab");
        assert_eq!(body.len(), 3 + KEPT_CHUNK_MIN);
        assert_eq!(body.last(), Some(&b'c'));
    }

    #[test]
    fn one_byte_chunks_end_up_in_a_few_blocks_in_order() {
        let body: Vec<u8> = (0..3 * COPY_BLOCK + 10).map(|i| (i % 251) as u8).collect();
        let chunks = body.iter().map(|&byte| Bytes::copy_from_slice(&[byte]));
        let gathered = gathered(chunks);
        // the first byte as it came, then three full blocks and one with the rest
        assert_eq!(
            gathered.pieces.len() + usize::from(!gathered.block.is_empty()),
            5
        );
        assert_eq!(gathered.into_body(), body);
    }

    #[test]
    fn a_chunk_larger_than_the_room_left_fills_the_block_and_starts_the_next() {
        let first = Bytes::from_static(b"#");
        let short = Bytes::from(vec![b'x'; COPY_BLOCK / 2 + 1]);
        let gathered = gathered([first, short.clone(), short.clone(), short]);
        let lengths: Vec<usize> = gathered.pieces.iter().map(Bytes::len).collect();
        assert_eq!(lengths, [1, COPY_BLOCK]);
        assert_eq!(gathered.block.len(), 3 * (COPY_BLOCK / 2 + 1) - COPY_BLOCK);
        assert_eq!(gathered.into_body().len(), 1 + 3 * (COPY_BLOCK / 2 + 1));
    }
}
