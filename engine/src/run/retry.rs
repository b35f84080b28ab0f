//! Retrying a work item that an inspection node turned down (docs/ARCHITECTURE.md §15,
//! *Retries*).
//!
//! **Seed rule.** Attempt 0 of item `k` runs with the item's own seed `s` (base seed + its
//! variation). Attempt `a ≥ 1` runs with the first 8 bytes (little-endian) of
//! `sha256("defect-studio/retry" ‖ s ‖ k ‖ a ‖ j)` (each number 8 bytes little-endian), for the
//! smallest `j ≥ 0` whose value is no work item's seed in the batch: so a retry never repeats
//! another variation's seed, and the same run seed, items and recipe give the same attempts and
//! the same kept items, in any shard. Only seeds "from run" change between attempts; the
//! attempt's seed is its output's `seed` and `{seed}` in file names.

use sha2::{Digest, Sha256};

/// The run seed of attempt `attempt` of work item `index` whose own seed is `item_seed`
/// (see the module docs); `taken` says whether a seed belongs to a work item of the batch.
pub fn retry_seed(item_seed: u64, index: u64, attempt: u32, taken: impl Fn(u64) -> bool) -> u64 {
    if attempt == 0 {
        return item_seed;
    }
    for j in 0u64.. {
        let mut h = Sha256::new();
        h.update(b"defect-studio/retry");
        h.update(item_seed.to_le_bytes());
        h.update(index.to_le_bytes());
        h.update(u64::from(attempt).to_le_bytes());
        h.update(j.to_le_bytes());
        let d = h.finalize();
        let mut b = [0u8; 8];
        b.copy_from_slice(&d[..8]);
        let seed = u64::from_le_bytes(b);
        if !taken(seed) {
            return seed;
        }
    }
    item_seed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_are_deterministic_and_avoid_item_seeds() {
        let a = retry_seed(7, 3, 1, |_| false);
        assert_eq!(a, retry_seed(7, 3, 1, |_| false));
        assert_ne!(a, retry_seed(7, 3, 2, |_| false));
        assert_ne!(a, retry_seed(7, 4, 1, |_| false));
        assert_eq!(retry_seed(7, 3, 0, |_| false), 7);
        // A seed that is taken is skipped.
        let b = retry_seed(7, 3, 1, |s| s == a);
        assert_ne!(a, b);
    }
}
