//! A gzip encoder for merged answers: one gzip member (RFC 1952) holding one deflate block with
//! the fixed Huffman codes (RFC 1951, 3.2.6), the format the fastest zlib level writes. Repeats
//! are found the same way, one candidate per position from a hash of the next four bytes, at
//! about twice zlib's speed on an exposition, because of what it does not do: positions count
//! from the start of the answer, so no table slides as the window moves; the text is read where
//! the merge wrote it (the caller keeps the last [`WINDOW`] bytes before each part in the same
//! buffer) instead of being copied into a window of its own; and repeats are compared sixteen
//! bytes at a time. The answer comes out about the size zlib's makes (within 1 % on expositions).

/// How far back a repeat may point.
pub(super) const WINDOW: usize = 32 * 1024;
/// The shortest repeat searched for (the length the hash covers).
const MIN_SEARCHED: usize = 4;
/// The shortest and longest repeat deflate can encode.
const MIN_MATCH: usize = 3;
const MAX_MATCH: usize = 258;
/// log2 of the number of hash slots: 2^15 of 4 bytes, 128 KiB (fewer made it slower, more no
/// faster).
const HASH_BITS: u32 = 15;

/// Compresses text handed to it in order, then ends the member with [`Deflater::finish`].
pub(super) struct Deflater {
    out: Vec<u8>,
    /// Bits not yet whole bytes in `out`, the first written in the lowest bit.
    bits: u64,
    bit_count: u32,
    crc: crc32fast::Hasher,
    /// Bytes of text compressed so far: the position of the next one.
    size: u64,
    /// Per hash of four bytes, the position (its low 32 bits) where they were last searched.
    heads: Box<[u32]>,
}

impl Deflater {
    /// A member whose compressed bytes start with room for `capacity`.
    pub(super) fn new(capacity: usize) -> Deflater {
        let mut out = Vec::with_capacity(capacity.max(64));
        // Magic, deflate, no flags, no time, compressed for speed, unknown system.
        out.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 4, 0xff]);
        let mut deflater = Deflater {
            out,
            bits: 0,
            bit_count: 0,
            crc: crc32fast::Hasher::new(),
            size: 0,
            heads: vec![0; 1 << HASH_BITS].into_boxed_slice(),
        };
        // The only block, so the final one (1), with fixed codes (01).
        deflater.put(0b011, 3);
        deflater
    }

    /// Compresses `text[from..]`; `text[..from]` is the text compressed just before it (at least
    /// the last [`WINDOW`] bytes, or all of them).
    pub(super) fn compress(&mut self, text: &[u8], from: usize) {
        self.crc.update(&text[from..]);
        let first = self.size;
        let mut i = from;
        while i < text.len() {
            match self.search(text, i, first + (i - from) as u64) {
                Some((length, distance)) => {
                    self.put_repeat(length, distance);
                    i += length;
                }
                None => {
                    self.put_literal(text[i]);
                    i += 1;
                }
            }
        }
        self.size = first + (text.len() - from) as u64;
    }

    /// Ends the member: the end of the block, then the checksum and length of the text.
    pub(super) fn finish(mut self) -> Vec<u8> {
        self.put(0, 7);
        while self.bit_count > 0 {
            self.out.push(self.bits as u8);
            self.bits >>= 8;
            self.bit_count = self.bit_count.saturating_sub(8);
        }
        let crc = self.crc.finalize();
        self.out.extend_from_slice(&crc.to_le_bytes());
        self.out
            .extend_from_slice(&(self.size as u32).to_le_bytes());
        self.out
    }

    /// The repeat starting at `text[i]` (position `here`) found through the hash of its first
    /// bytes, as (length, distance).
    fn search(&mut self, text: &[u8], i: usize, here: u64) -> Option<(usize, usize)> {
        let word = read_u32(text.get(i..i + MIN_SEARCHED)?);
        let slot = &mut self.heads[hash(word)];
        // Positions are kept modulo 2^32; the bytes are compared, so a stale slot only misses.
        let distance = (here as u32).wrapping_sub(*slot) as usize;
        *slot = here as u32;
        if distance == 0 || distance > WINDOW.min(i) {
            return None;
        }
        let earlier = i - distance;
        if read_u32(&text[earlier..earlier + MIN_SEARCHED]) != word {
            return None;
        }
        let end = text.len().min(i + MAX_MATCH);
        let length = MIN_SEARCHED
            + common_prefix(
                &text[earlier + MIN_SEARCHED..],
                &text[i + MIN_SEARCHED..end],
            );
        Some((length, distance))
    }

    fn put_literal(&mut self, byte: u8) {
        let (code, count) = LITERAL_CODES[usize::from(byte)];
        self.put(code, count);
    }

    /// `length` bytes (3-258) repeated from `distance` back.
    fn put_repeat(&mut self, length: usize, distance: usize) {
        let (length_code, length_count) = LENGTH_CODES[length];
        let (distance_code, distance_count) = distance_code(distance);
        self.put(
            length_code | distance_code << length_count,
            length_count + distance_count,
        );
    }

    /// Appends the low `count` bits of `bits` (at most 32, nothing above them).
    fn put(&mut self, bits: u32, count: u32) {
        self.bits |= u64::from(bits) << self.bit_count;
        self.bit_count += count;
        if self.bit_count >= 32 {
            self.out
                .extend_from_slice(&(self.bits as u32).to_le_bytes());
            self.bits >>= 32;
            self.bit_count -= 32;
        }
    }
}

fn read_u32(bytes: &[u8]) -> u32 {
    u32::from_le_bytes(bytes[..4].try_into().expect("four bytes"))
}

fn hash(word: u32) -> usize {
    (word.wrapping_mul(0x9E37_79B1) >> (32 - HASH_BITS)) as usize
}

/// How many bytes `a` and `b` have in common from their starts.
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut k = 0;
    for (x, y) in a.chunks_exact(16).zip(b.chunks_exact(16)) {
        let word = |s: &[u8]| u128::from_le_bytes(s.try_into().expect("sixteen bytes"));
        let differ = word(x) ^ word(y);
        if differ != 0 {
            return k + (differ.trailing_zeros() / 8) as usize;
        }
        k += 16;
    }
    k + a[k..]
        .iter()
        .zip(&b[k..])
        .take_while(|(x, y)| x == y)
        .count()
}

/// A Huffman code as written: its bits reversed (deflate sends codes from their highest bit,
/// into a stream filled from the lowest), then any extra bits; and how many bits in all.
type Code = (u32, u32);

const fn reversed(code: u32, count: u32) -> u32 {
    code.reverse_bits() >> (32 - count)
}

/// The fixed code of each literal byte: 0-143 in 8 bits from 0x30, 144-255 in 9 bits from 0x190.
const LITERAL_CODES: [Code; 256] = {
    let mut codes = [(0, 0); 256];
    let mut byte = 0;
    while byte < 256 {
        codes[byte] = if byte < 144 {
            (reversed(0x30 + byte as u32, 8), 8)
        } else {
            (reversed(0x190 + (byte as u32 - 144), 9), 9)
        };
        byte += 1;
    }
    codes
};

/// The fixed code and extra bits of each repeat length 3-258 (symbols 257-285; 257-279 in 7
/// bits from 0, 280-287 in 8 bits from 0xc0).
const LENGTH_CODES: [Code; MAX_MATCH + 1] = {
    let mut codes = [(0, 0); MAX_MATCH + 1];
    let mut length = MIN_MATCH;
    while length <= MAX_MATCH {
        let past = (length - MIN_MATCH) as u32;
        let (symbol, extra_count, extra) = if length == MAX_MATCH {
            (285, 0, 0)
        } else if past < 8 {
            (257 + past, 0, 0)
        } else {
            let top = 31 - past.leading_zeros();
            let extra_count = top - 2;
            let symbol = 257 + 4 * (top - 1) + ((past >> extra_count) & 3);
            (symbol, extra_count, past & ((1 << extra_count) - 1))
        };
        let (code, count) = if symbol < 280 {
            (reversed(symbol - 256, 7), 7)
        } else {
            (reversed(0xc0 + symbol - 280, 8), 8)
        };
        codes[length] = (code | extra << count, count + extra_count);
        length += 1;
    }
    codes
};

/// The fixed code (five bits) and extra bits of a distance of 1-32768.
fn distance_code(distance: usize) -> Code {
    let past = (distance - 1) as u32;
    if past < 4 {
        return (reversed(past, 5), 5);
    }
    let top = 31 - past.leading_zeros();
    let extra_count = top - 1;
    let symbol = 2 * top + ((past >> extra_count) & 1);
    let extra = past & ((1 << extra_count) - 1);
    (reversed(symbol, 5) | extra << 5, 5 + extra_count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn gunzipped(member: &[u8]) -> Vec<u8> {
        let mut text = Vec::new();
        flate2::read::GzDecoder::new(member)
            .read_to_end(&mut text)
            .expect("a valid gzip member");
        text
    }

    fn compressed_whole(text: &[u8]) -> Vec<u8> {
        let mut deflater = Deflater::new(0);
        deflater.compress(text, 0);
        deflater.finish()
    }

    /// Bytes that repeat nothing longer than chance makes.
    fn noise(len: usize, mut seed: u64) -> Vec<u8> {
        (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect()
    }

    #[test]
    fn any_text_reads_back_from_its_member() {
        for len in [0, 1, 2, 3, 4, 5, 7, 8, 9, 100, 65_536, 300_000] {
            let text = noise(len, len as u64 + 1);
            assert_eq!(gunzipped(&compressed_whole(&text)), text, "{len} bytes");
        }
        let runs = b"a".repeat(100_000);
        let member = compressed_whole(&runs);
        assert_eq!(gunzipped(&member), runs);
        assert!(
            member.len() < 1_000,
            "{} bytes for one long run",
            member.len()
        );
    }

    #[test]
    fn positions_past_four_gibibytes_still_find_only_true_repeats() {
        // As if 4 GiB less a little had been compressed before: positions wrap in the hash
        // table while this text is compressed.
        let text: Vec<u8> = (0..40_000)
            .flat_map(|i| format!("line_{} {}\n", i % 500, i % 7).into_bytes())
            .collect();
        let mut deflater = Deflater::new(0);
        deflater.size = u64::from(u32::MAX) - 100_000;
        deflater.compress(&text, 0);
        let member = deflater.finish();
        // The member's length field counts the skipped bytes too, so read the deflate stream
        // inside it (after the 10-byte header, before the 8-byte trailer).
        let mut inflated = Vec::new();
        flate2::read::DeflateDecoder::new(&member[10..member.len() - 8])
            .read_to_end(&mut inflated)
            .expect("a valid deflate stream");
        assert_eq!(inflated, text);
        // And the wrap loses no repeat: the same size as from position 0.
        let from_zero = compressed_whole(&text).len();
        assert!(
            member.len().abs_diff(from_zero) <= 16,
            "{} bytes, {from_zero} from position 0",
            member.len()
        );
    }

    #[test]
    fn every_repeat_length_and_distance_class_reads_back() {
        // A block of noise repeated at a chosen distance, cut at every length around the
        // limits of the length and distance codes.
        for distance in [
            4, 5, 6, 7, 8, 9, 12, 13, 16, 17, 24, 25, 255, 256, 257, 1_024, 1_025, 24_576, 24_577,
            32_767, 32_768, 32_769, 40_000,
        ] {
            let block = noise(distance, distance as u64);
            for length in [
                3, 4, 10, 11, 12, 18, 19, 130, 131, 257, 258, 259, 260, 261, 516, 1_000,
            ] {
                let mut text = block.clone();
                text.extend_from_within(..length.min(distance));
                text.extend(noise(3, 99));
                assert_eq!(
                    gunzipped(&compressed_whole(&text)),
                    text,
                    "distance {distance}, length {length}"
                );
            }
        }
    }

    fn zlib_fastest(text: &[u8]) -> usize {
        use std::io::Write;
        let mut zlib = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        zlib.write_all(text).unwrap();
        zlib.finish().unwrap().len()
    }

    #[test]
    fn text_handed_over_in_parts_with_its_window_reads_back_whole() {
        let text: Vec<u8> = (0..20_000)
            .flat_map(|i| format!("family_{} {}\n", i % 300, i * 31 % 977).into_bytes())
            .collect();
        let mut deflater = Deflater::new(0);
        let mut buffer = Vec::new();
        let mut from = 0;
        for part in text.chunks(10_007) {
            buffer.extend_from_slice(part);
            deflater.compress(&buffer, from);
            // Keep only the window, as the caller may.
            let drop = buffer.len().saturating_sub(WINDOW);
            buffer.drain(..drop);
            from = buffer.len();
        }
        let member = deflater.finish();
        assert_eq!(gunzipped(&member), text);
        let zlib = zlib_fastest(&text);
        assert!(
            member.len() <= zlib + zlib / 20,
            "{} bytes, zlib {zlib}",
            member.len()
        );
    }
}
