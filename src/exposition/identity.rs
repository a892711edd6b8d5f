//! Cheap identities: equality and hashing of output family names (however they split into a
//! body slice and a suffix) and the 64-bit identity of a series used to find duplicates. No
//! allocation; it decides nothing about what is kept.

use std::hash::{Hash, Hasher};

use super::model::Label;
use super::write::{self, Name};

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
    let mut word = [0u8; 8];
    word[..rest.len()].copy_from_slice(rest);
    let len = (bytes.len() as u64) << 56;
    (h ^ u64::from_le_bytes(word) ^ len)
        .wrapping_mul(K)
        .rotate_left(29)
}

/// Identity of an output series within one source: its name and kept labels, in any order.
pub(crate) fn series_hash(name: &str, labels: &[Label<'_>], appended: &[(&str, &str)]) -> u64 {
    mix(hash_bytes(FNV_OFFSET, name.as_bytes())).wrapping_add(labels_hash(labels, appended, None))
}

/// Identity of a sample's kept labels, in any order, leaving out the label named `skip` (an
/// OpenMetrics group: a histogram's series without `le`, a summary's without `quantile`).
pub(crate) fn labels_hash(
    labels: &[Label<'_>],
    appended: &[(&str, &str)],
    skip: Option<&str>,
) -> u64 {
    let mut h = 0u64;
    for label in labels {
        if write::is_replaced(label, appended) || skip == Some(label.name) {
            continue;
        }
        let lh = hash_bytes(FNV_OFFSET, label.name.as_bytes());
        // Summing makes the order of labels irrelevant.
        h = h.wrapping_add(mix(hash_bytes(lh, label.raw_value.as_bytes())));
    }
    h
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
