//! Reads an answer's body into memory, decompressed, and never more than the configured cap.
//! The body is streamed chunk by chunk out of the client's gzip decoder, so a gzip bomb is inflated
//! only up to the cap and a huge plain body is never buffered. A body whose length was announced is
//! copied into one buffer of that length as it arrives. Otherwise chunks of at least
//! [`KEPT_CHUNK_MIN`] bytes are kept as they arrive, shorter ones are copied into blocks of
//! [`COPY_BLOCK`] bytes, and all are joined once at the end: a buffer grown by doubling would copy
//! the body again at every step and hold the old and the new copy at once, up to three times the
//! cap, and keeping every chunk would let an instance that sends one-byte chunks cost a 32-byte
//! handle, and the read buffer behind it, per byte. A body that comes in one chunk is never
//! copied. No parsing happens here.

use bytes::{Bytes, BytesMut};

use super::answer::Answer;
use super::error::ScrapeError;

/// Chunks at least this long are kept without copying (in a body of unknown length). Such a chunk
/// may point into the client's read buffer and keep all of it alive; hyper's read buffers stay
/// under about 400 KiB, so that costs at most a few times the chunk.
const KEPT_CHUNK_MIN: usize = 64 * 1024;

/// Size of the blocks shorter chunks are copied into.
const COPY_BLOCK: usize = 64 * 1024;

/// Reads the whole (decompressed) body, failing with [`ScrapeError::TooLarge`] as soon as more than
/// `limit` bytes have arrived, or at once when a plain body's `Content-Length` already says so.
pub(crate) async fn read_capped(answer: &mut Answer, limit: u64) -> Result<Bytes, ScrapeError> {
    let declared = answer.declared_length();
    if declared.is_some_and(|len| len > limit) {
        return Err(ScrapeError::TooLarge { limit });
    }
    // at most `limit`, which was checked against the configuration's
    let mut gathered = Gathered::new(declared.and_then(|len| usize::try_from(len).ok()));
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

/// A body as it arrives, in order.
struct Gathered {
    /// The first chunk, as long as no other has come: a body in one chunk is not copied.
    lone: Option<Bytes>,
    pieces: Vec<Bytes>,
    /// The block chunks are being copied into; its filled part becomes a piece before the next
    /// kept chunk and at the end, and its spare room takes the next chunks.
    block: BytesMut,
    /// The capacity of the next block: the announced length for the first, then [`COPY_BLOCK`].
    next_block: usize,
    /// Whether long chunks are kept as they came: not when the length was announced, since then
    /// one block holds the whole body and no join is needed.
    keep_long: bool,
}

impl Gathered {
    fn new(declared_length: Option<usize>) -> Gathered {
        Gathered {
            lone: None,
            pieces: Vec::new(),
            block: BytesMut::new(),
            next_block: declared_length.unwrap_or(COPY_BLOCK).max(1),
            keep_long: declared_length.is_none(),
        }
    }

    fn push(&mut self, chunk: Bytes) {
        if chunk.is_empty() {
            return;
        }
        if self.lone.is_none() && self.pieces.is_empty() && self.block.is_empty() {
            self.lone = Some(chunk);
            return;
        }
        if let Some(first) = self.lone.take() {
            self.add(first);
        }
        self.add(chunk);
    }

    fn add(&mut self, mut chunk: Bytes) {
        if self.keep_long && chunk.len() >= KEPT_CHUNK_MIN {
            self.seal_block();
            self.pieces.push(chunk);
            return;
        }
        while !chunk.is_empty() {
            if self.block.len() == self.block.capacity() {
                self.seal_block();
                self.block = BytesMut::with_capacity(self.next_block);
                self.next_block = COPY_BLOCK;
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
        if let Some(lone) = self.lone {
            return lone;
        }
        self.seal_block();
        joined(self.pieces)
    }
}

/// The pieces as one contiguous body; a body that is one piece is kept without copying.
fn joined(mut pieces: Vec<Bytes>) -> Bytes {
    if pieces.len() <= 1 {
        return pieces.pop().unwrap_or_default();
    }
    Bytes::from(pieces.concat())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gathered(declared: Option<usize>, chunks: impl IntoIterator<Item = Bytes>) -> Gathered {
        let mut gathered = Gathered::new(declared);
        for chunk in chunks {
            gathered.push(chunk);
        }
        gathered
    }

    /// The pieces and the block's filled part, as the body will be joined from them.
    fn lengths(gathered: &Gathered) -> Vec<usize> {
        let mut lengths: Vec<usize> = gathered.pieces.iter().map(Bytes::len).collect();
        if !gathered.block.is_empty() {
            lengths.push(gathered.block.len());
        }
        lengths
    }

    #[test]
    fn chunks_are_joined_in_order_into_one_exact_buffer() {
        let chunks = [
            Bytes::from_static(b"# TYPE up gauge\n"),
            Bytes::new(),
            Bytes::from_static(b"up 1\n"),
        ];
        for declared in [None, Some(21)] {
            assert_eq!(
                gathered(declared, chunks.clone()).into_body(),
                Bytes::from_static(b"# TYPE up gauge\nup 1\n")
            );
            assert_eq!(gathered(declared, []).into_body(), Bytes::new());
        }
    }

    #[test]
    fn a_body_in_one_chunk_is_not_copied() {
        for declared in [None, Some(5)] {
            let single = Bytes::from(b"up 1\n".to_vec());
            let pointer = single.as_ptr();
            assert_eq!(gathered(declared, [single]).into_body().as_ptr(), pointer);
        }
    }

    #[test]
    fn long_chunks_of_a_body_of_unknown_length_are_not_copied() {
        let long = Bytes::from(vec![b'#'; KEPT_CHUNK_MIN]);
        let pointer = long.as_ptr();
        let gathered = gathered(
            None,
            [
                Bytes::from_static(b"a"),
                Bytes::from_static(b"b"),
                long,
                Bytes::from_static(b"c"),
            ],
        );
        // "a" and "b" copied into a block, the long chunk as it came, "c" in the next block
        assert_eq!(lengths(&gathered), [2, KEPT_CHUNK_MIN, 1]);
        assert_eq!(gathered.pieces[1].as_ptr(), pointer);
        let body = gathered.into_body();
        assert_eq!(&body[..2], b"ab");
        assert_eq!(body.len(), 3 + KEPT_CHUNK_MIN);
        assert_eq!(body.last(), Some(&b'c'));
    }

    #[test]
    fn one_byte_chunks_end_up_in_a_few_full_blocks_in_order() {
        let body: Vec<u8> = (0..3 * COPY_BLOCK + 10).map(|i| (i % 251) as u8).collect();
        let chunks = body.iter().map(|&byte| Bytes::copy_from_slice(&[byte]));
        let gathered = gathered(None, chunks);
        assert_eq!(lengths(&gathered), [COPY_BLOCK, COPY_BLOCK, COPY_BLOCK, 10]);
        assert_eq!(gathered.into_body(), body);
    }

    #[test]
    fn a_chunk_larger_than_the_room_left_fills_the_block_and_starts_the_next() {
        let short = Bytes::from(vec![b'x'; COPY_BLOCK / 2 + 1]);
        let gathered = gathered(
            None,
            [
                Bytes::from_static(b"#"),
                short.clone(),
                short.clone(),
                short,
            ],
        );
        let total = 1 + 3 * (COPY_BLOCK / 2 + 1);
        assert_eq!(lengths(&gathered), [COPY_BLOCK, total - COPY_BLOCK]);
        assert_eq!(gathered.into_body().len(), total);
    }

    #[test]
    fn a_body_of_announced_length_is_copied_once_into_one_block_of_that_length() {
        let sizes = [8 * 1024, KEPT_CHUNK_MIN, 1, 100 * 1024];
        let body: Vec<u8> = (0..sizes.iter().sum::<usize>())
            .map(|i| (i % 251) as u8)
            .collect();
        let mut rest = &body[..];
        let chunks = sizes.map(|size| {
            let (chunk, after) = rest.split_at(size);
            rest = after;
            Bytes::copy_from_slice(chunk)
        });
        let gathered = gathered(Some(body.len()), chunks);
        assert!(gathered.pieces.is_empty());
        assert_eq!(gathered.block.len(), body.len());
        assert_eq!(gathered.block.capacity(), body.len());
        let pointer = gathered.block.as_ptr();
        let joined = gathered.into_body();
        assert_eq!(
            joined.as_ptr(),
            pointer,
            "the block is the body, not copied again"
        );
        assert_eq!(joined, body);
    }
}
