//! The train/val split: seeded and stratified by label.
//!
//! Items are grouped by label (defect class, or `good` for defect-free items). Within each
//! group they are ordered by `sha256("<seed>:<file stem>")` and the first
//! `round(n × val_fraction)` go to `val`, but at least one item of each group stays in
//! `train`. So the split depends only on the seed and the names, not on the input order,
//! and each label appears in `val` in proportion. `val_fraction` 0 puts everything in
//! `train`.

use super::Prepared;
use crate::hashing::sha256_hex;
use std::collections::BTreeMap;

/// Which part of the dataset an image belongs to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Split {
    #[default]
    Train,
    Val,
}

impl Split {
    /// `train` or `val` (the folder name).
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "val",
        }
    }
}

/// Checks a validation fraction: `0 ≤ f < 1`.
pub(crate) fn check_fraction(f: f64) -> Result<(), String> {
    if f.is_finite() && (0.0..1.0).contains(&f) {
        Ok(())
    } else {
        Err(format!(
            "val fraction {f} is out of range: expected 0 ≤ fraction < 1 (0 = no validation split)"
        ))
    }
}

/// Assigns every prepared item to train or val (see the module documentation).
pub(crate) fn assign(prepared: &mut [Prepared], val_fraction: f64, seed: u64) {
    let mut groups: BTreeMap<String, Vec<(String, usize)>> = BTreeMap::new();
    for (i, p) in prepared.iter().enumerate() {
        let key = p.class.clone().unwrap_or_else(|| "good".to_string());
        let order = sha256_hex(format!("{seed}:{}", p.stem).as_bytes());
        groups.entry(key).or_default().push((order, i));
    }
    for (_, mut members) in groups {
        members.sort();
        let n = members.len();
        let mut n_val = (n as f64 * val_fraction).round() as usize;
        if n_val >= n {
            n_val = n.saturating_sub(1);
        }
        for (rank, (_, i)) in members.iter().enumerate() {
            prepared[*i].split = if rank < n_val {
                Split::Val
            } else {
                Split::Train
            };
        }
    }
}
