//! Cheap identities: equality and hashing of output family names (however they split into a
//! body slice and a suffix) and the 64-bit identity of a series used to find duplicates. No
//! allocation; it decides nothing about what is kept.

use std::hash::{Hash, Hasher};

use super::model::Labels;
use super::write::Name;

/// A family name as a map key: equal when the written names are equal, however they split
/// into base and suffix (`foo_total` + `` equals `foo` + `_total`).
pub(crate) struct Key<'a>(pub(crate) Name<'a>);

impl PartialEq for Key<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.0.len() == other.0.len() && self.0.bytes().eq(other.0.bytes())
    }
}

impl Eq for Key<'_> {}

impl Hash for Key<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Hash the written bytes in one go so that the split does not matter.
        state.write_u64(fnv1a(FNV_OFFSET, self.0.bytes()));
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

fn fnv1a(mut h: u64, bytes: impl Iterator<Item = u8>) -> u64 {
    for b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Spreads a hash over all 64 bits (the MurmurHash3 finaliser), so that sums of label hashes
/// stay well distributed.
fn mix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// A fast, non-cryptographic hash of `bytes` continuing from `h`, eight bytes at a time. Each
/// step is a bijection of the state, so two inputs of equal length that differ in a single
/// word never collide.
fn hash_bytes(mut h: u64, bytes: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        h = (h ^ u64::from_le_bytes(word))
            .wrapping_mul(K)
            .rotate_left(29);
    }
    let rest = chunks.remainder();
    let len = rest.len() as u64;
    (h ^ tail_word(rest) ^ (len << 56))
        .wrapping_mul(K)
        .rotate_left(29)
}

/// The up to seven bytes of `rest` in one word (overlapping reads, no copy loop); equal
/// lengths and different bytes give different words.
fn tail_word(rest: &[u8]) -> u64 {
    let n = rest.len();
    if n >= 4 {
        let four = |at: usize| {
            let mut w = [0u8; 4];
            w.copy_from_slice(&rest[at..at + 4]);
            u64::from(u32::from_le_bytes(w))
        };
        four(0) | (four(n - 4) << 32)
    } else if n > 0 {
        u64::from(rest[0]) | (u64::from(rest[n / 2]) << 8) | (u64::from(rest[n - 1]) << 16)
    } else {
        0
    }
}

/// The identity of a sample name (which labels are added to).
pub(crate) fn name_hash(name: &str) -> u64 {
    mix(hash_bytes(FNV_OFFSET, name.as_bytes()))
}

/// The identity of one label; a label set's identity is the sum over its labels, so that the
/// order of labels does not matter and one label can be taken out again by subtraction.
pub(crate) fn label_hash(name: &str, raw_value: &str) -> u64 {
    let h = hash_bytes(FNV_OFFSET, name.as_bytes());
    mix(hash_bytes(h, raw_value.as_bytes()))
}

/// The next slot to try when `hash` is taken by another series (a hash collision).
pub(crate) fn probe(hash: u64) -> u64 {
    mix(hash.wrapping_add(0x9e37_79b9_7f4a_7c15))
}

/// Whether two samples of one source are the same series: equal names (or rests of names after
/// the same family name) and equal labels as written, in any order, leaving out those for
/// which `replaced` holds.
pub(crate) fn same_series(
    a: (&str, Labels<'_, '_>),
    b: (&str, Labels<'_, '_>),
    replaced: impl Fn(&str) -> bool,
) -> bool {
    let kept = |labels: Labels<'_, '_>| labels.iter().filter(|l| !replaced(l.name)).count();
    a.0 == b.0
        && kept(a.1) == kept(b.1)
        && a.1.iter().filter(|l| !replaced(l.name)).all(|l| {
            b.1.iter()
                .any(|m| m.name == l.name && m.raw_value == l.raw_value)
        })
}

/// Hasher for keys that are already well-mixed `u64` hashes.
#[derive(Default)]
pub(crate) struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0 = fnv1a(self.0, bytes.iter().copied());
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}
