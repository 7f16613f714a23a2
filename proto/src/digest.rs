//! The completeness digest: a record count and an order-independent hash of the (kind, key,
//! version) of a set of records, computed per handling unit and Vietnam day of receipt. The agent
//! computes it over its ledger, the hub over its stored records, and equal digests mean both hold
//! the same keys at the same versions.
//!
//! Each record hashes to the first 8 bytes, read big-endian, of SHA-256 over its kind and key,
//! each preceded by its byte length as a big-endian u64, and then its version as a big-endian u64. A set's hash is the sum of its records' hashes modulo 2^64. Addition is
//! commutative, so the digest can be accumulated from rows in any order, in one pass and constant
//! memory, with no sorting. Unlike XOR, a record counted twice does not cancel itself out. Two
//! different sets with equal counts collide with probability about 2^-64. That is enough to find
//! accidental gaps, but the hash does not resist keys chosen to collide. Such keys would come only
//! from the agent itself, which is the sole writer of its own records.

use chrono::{Datelike, NaiveDate};
use sha2::{Digest, Sha256};

/// Kind of dossier records in digests.
pub const KIND_DOSSIER: &str = "dossier";

/// Maximum number of days one digest's window may cover. The hub rejects a longer window.
pub const MAX_WINDOW_DAYS: u32 = 400;

/// Returns the hash of one record, laid out as the module documentation describes.
pub fn record_hash(kind: &str, key: &str, version: u64) -> u64 {
    let mut hasher = Sha256::new();
    // The lengths keep ("ab", "c") and ("a", "bc") apart.
    hasher.update(length_prefix(kind));
    hasher.update(kind.as_bytes());
    hasher.update(length_prefix(key));
    hasher.update(key.as_bytes());
    hasher.update(version.to_be_bytes());
    let output = hasher.finalize();

    let mut first = [0u8; 8];
    first.copy_from_slice(&output[..8]);
    u64::from_be_bytes(first)
}

fn length_prefix(text: &str) -> [u8; 8] {
    u64::try_from(text.len()).unwrap_or(u64::MAX).to_be_bytes()
}

/// The digest of a set of records: how many there are and the sum of their hashes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DayDigest {
    /// Number of records added.
    pub count: u64,
    /// Sum of the records' hashes modulo 2^64.
    pub hash: u64,
}

impl DayDigest {
    /// Adds one record to the digest.
    pub fn add(&mut self, kind: &str, key: &str, version: u64) {
        self.count += 1;
        self.hash = self.hash.wrapping_add(record_hash(kind, key, version));
    }
}

/// Returns the calendar day of a `yyyymmdd` number, or `None` when it names no real day.
pub fn day_from_number(day: u32) -> Option<NaiveDate> {
    let year = i32::try_from(day / 10_000).ok()?;
    NaiveDate::from_ymd_opt(year, day / 100 % 100, day % 100)
}

/// Returns a day as the number `yyyymmdd`, or 0 for a year outside 0 to 9999.
pub fn day_to_number(day: NaiveDate) -> u32 {
    match u32::try_from(day.year()) {
        Ok(year) if year <= 9_999 => year * 10_000 + day.month() * 100 + day.day(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest_of(records: &[(&str, u64)]) -> DayDigest {
        let mut digest = DayDigest::default();
        for (key, version) in records {
            digest.add(KIND_DOSSIER, key, *version);
        }
        digest
    }

    #[test]
    fn digest_ignores_order() {
        let forward = digest_of(&[("HS-1", 1), ("HS-2", 3), ("HS-3", 2)]);
        let backward = digest_of(&[("HS-3", 2), ("HS-2", 3), ("HS-1", 1)]);
        let shuffled = digest_of(&[("HS-2", 3), ("HS-1", 1), ("HS-3", 2)]);
        assert_eq!(forward, backward);
        assert_eq!(forward, shuffled);
        assert_eq!(forward.count, 3);
    }

    #[test]
    fn digest_changes_with_version() {
        let first = digest_of(&[("HS-1", 1), ("HS-2", 1)]);
        let newer = digest_of(&[("HS-1", 1), ("HS-2", 2)]);
        assert_eq!(first.count, newer.count);
        assert_ne!(first.hash, newer.hash);
        assert_ne!(
            record_hash(KIND_DOSSIER, "HS-1", 1),
            record_hash(KIND_DOSSIER, "HS-1", 2)
        );
    }

    #[test]
    fn digest_changes_with_key_and_kind() {
        let base = record_hash(KIND_DOSSIER, "HS-1", 1);
        assert_ne!(base, record_hash(KIND_DOSSIER, "HS-2", 1));
        assert_ne!(base, record_hash("rating", "HS-1", 1));
        // Length prefixes separate a split moved between kind and key.
        assert_ne!(record_hash("ab", "c", 1), record_hash("a", "bc", 1));
    }

    #[test]
    fn missing_record_changes_digest() {
        let full = digest_of(&[("HS-1", 1), ("HS-2", 1), ("HS-3", 1)]);
        let short = digest_of(&[("HS-1", 1), ("HS-3", 1)]);
        assert_eq!(short.count, 2);
        assert_ne!(full.hash, short.hash);
        let restored = full.hash.wrapping_sub(record_hash(KIND_DOSSIER, "HS-2", 1));
        assert_eq!(
            restored, short.hash,
            "the hash is a plain sum of record hashes"
        );
    }

    #[test]
    fn duplicate_record_does_not_cancel() {
        let once = digest_of(&[("HS-1", 1)]);
        let twice = digest_of(&[("HS-1", 1), ("HS-1", 1)]);
        assert_ne!(twice.hash, 0);
        assert_ne!(twice.hash, once.hash);
    }

    #[test]
    fn empty_digest_is_zero() {
        assert_eq!(digest_of(&[]), DayDigest { count: 0, hash: 0 });
    }

    #[test]
    fn record_hash_is_stable() {
        // Agents and hubs of different builds must agree, so the value is pinned. It was computed
        // independently with Python's hashlib over the same byte layout.
        assert_eq!(record_hash(KIND_DOSSIER, "HS-1", 2), 0x75fb_2505_8e9d_6e23);
    }

    #[test]
    fn day_numbers_round_trip() {
        let day = NaiveDate::from_ymd_opt(2026, 10, 1).unwrap();
        assert_eq!(day_to_number(day), 20261001);
        assert_eq!(day_from_number(20261001), Some(day));
        assert_eq!(day_from_number(20260230), None);
        assert_eq!(day_from_number(20261301), None);
        assert_eq!(day_from_number(0), None);
    }
}
