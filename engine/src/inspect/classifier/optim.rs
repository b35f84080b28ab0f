//! What detector trainings share: AdamW with checkpointable moments, the seeded stratified
//! validation split, class-balanced sampling, and RNG streams derived from (seed, epoch, step).

use candle_core::{Tensor, Var};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::Result;
use crate::inspect::net::ce;

/// splitmix64's finaliser.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Purposes of the RNG streams (so no two draw the same numbers).
#[derive(Clone, Copy)]
pub(crate) enum Stream {
    Split = 1,
    Order = 2,
    Augment = 3,
    Dropout = 4,
}

/// An RNG for `(seed, stream, a, b)`: the same arguments give the same numbers, whatever ran
/// before (this is what makes a resumed run equal to an uninterrupted one).
pub(crate) fn rng(seed: u64, stream: Stream, a: u64, b: u64) -> ChaCha8Rng {
    let s = mix(mix(mix(seed) ^ stream as u64) ^ a.wrapping_mul(0x1000_0000_01B3)) ^ b;
    ChaCha8Rng::seed_from_u64(mix(s))
}

/// Splits sample indices (grouped by class: `classes[i]` is sample i's class) into (train,
/// val): per class, a seeded shuffle, then `round(n · fraction)` to validation, at least one
/// when the fraction is positive and the class has two or more samples, and never all of them.
/// Both lists come back sorted.
pub(crate) fn stratified_split(
    classes: &[usize],
    n_classes: usize,
    fraction: f64,
    seed: u64,
) -> (Vec<usize>, Vec<usize>) {
    let mut train = Vec::new();
    let mut val = Vec::new();
    for c in 0..n_classes {
        let mut idx: Vec<usize> = (0..classes.len()).filter(|&i| classes[i] == c).collect();
        idx.shuffle(&mut rng(seed, Stream::Split, c as u64, 0));
        let n = idx.len();
        let mut k = (n as f64 * fraction).round() as usize;
        if fraction > 0.0 && n >= 2 {
            k = k.max(1);
        }
        k = k.min(n.saturating_sub(1));
        val.extend_from_slice(&idx[..k]);
        train.extend_from_slice(&idx[k..]);
    }
    train.sort_unstable();
    val.sort_unstable();
    (train, val)
}

/// One epoch's sample order with classes balanced: `train.len()` draws, each a class chosen
/// uniformly, then one of its training samples uniformly (with replacement).
pub(crate) fn balanced_order(
    train: &[usize],
    classes: &[usize],
    n_classes: usize,
    seed: u64,
    epoch: usize,
) -> Vec<usize> {
    let by_class: Vec<Vec<usize>> = (0..n_classes)
        .map(|c| train.iter().copied().filter(|&i| classes[i] == c).collect())
        .filter(|v: &Vec<usize>| !v.is_empty())
        .collect();
    let mut r = rng(seed, Stream::Order, epoch as u64, 0);
    (0..train.len())
        .map(|_| {
            let pool = &by_class[r.random_range(0..by_class.len())];
            pool[r.random_range(0..pool.len())]
        })
        .collect()
}

/// AdamW (decoupled weight decay, the update of `torch.optim.AdamW` and `candle_nn::AdamW`)
/// whose moments can be saved and restored.
pub(crate) struct AdamW {
    pub(crate) m: Vec<Tensor>,
    pub(crate) v: Vec<Tensor>,
    pub(crate) t: usize,
    pub(crate) lr: f64,
    pub(crate) weight_decay: f64,
    /// Per-variable learning-rate multipliers (empty = all 1).
    pub(crate) scales: Vec<f64>,
}

const BETA1: f64 = 0.9;
const BETA2: f64 = 0.999;
const EPS: f64 = 1e-8;

impl AdamW {
    pub(crate) fn new(vars: &[Var], lr: f64, weight_decay: f64) -> Result<AdamW> {
        let zeros = |v: &Var| v.as_tensor().zeros_like().map_err(ce);
        Ok(AdamW {
            m: vars.iter().map(zeros).collect::<Result<_>>()?,
            v: vars.iter().map(zeros).collect::<Result<_>>()?,
            t: 0,
            lr,
            weight_decay,
            scales: Vec::new(),
        })
    }

    pub(crate) fn step(
        &mut self,
        vars: &[Var],
        grads: &candle_core::backprop::GradStore,
    ) -> Result<()> {
        self.t += 1;
        let t = self.t as i32;
        let wd = self.weight_decay;
        let scale_m = 1.0 / (1.0 - BETA1.powi(t));
        let scale_v = 1.0 / (1.0 - BETA2.powi(t));
        for (i, var) in vars.iter().enumerate() {
            let Some(g) = grads.get(var) else { continue };
            let lr = self.lr * self.scales.get(i).copied().unwrap_or(1.0);
            let update = || -> candle_core::Result<(Tensor, Tensor, Tensor)> {
                let m = ((&self.m[i] * BETA1)? + (g * (1.0 - BETA1))?)?;
                let v = ((&self.v[i] * BETA2)? + (g.sqr()? * (1.0 - BETA2))?)?;
                let step = ((&m * scale_m)? / ((&v * scale_v)?.sqrt()? + EPS)?)?;
                let theta = ((var.as_tensor() * (1.0 - lr * wd))? - (step * lr)?)?;
                Ok((m, v, theta))
            };
            let (m, v, theta) = update().map_err(ce)?;
            var.set(&theta).map_err(ce)?;
            self.m[i] = m;
            self.v[i] = v;
        }
        Ok(())
    }
}

/// Mean over the classes present in `truth` of the share of their samples predicted right.
pub(crate) fn balanced_accuracy(truth: &[usize], pred: &[usize], n_classes: usize) -> f32 {
    let mut recalls = Vec::new();
    for c in 0..n_classes {
        let n = truth.iter().filter(|&&t| t == c).count();
        if n > 0 {
            let hit = truth
                .iter()
                .zip(pred)
                .filter(|&(&t, &p)| t == c && p == c)
                .count();
            recalls.push(hit as f32 / n as f32);
        }
    }
    if recalls.is_empty() {
        0.0
    } else {
        recalls.iter().sum::<f32>() / recalls.len() as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_is_stratified_seeded_and_keeps_every_class() {
        let classes = [0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 2, 2];
        let (t, v) = stratified_split(&classes, 3, 0.2, 7);
        assert_eq!(t.len() + v.len(), classes.len());
        for c in 0..3 {
            assert!(t.iter().any(|&i| classes[i] == c), "class {c} trains");
            assert_eq!(v.iter().filter(|&&i| classes[i] == c).count(), 1);
        }
        assert_eq!(
            stratified_split(&classes, 3, 0.2, 7),
            (t.clone(), v.clone())
        );
        assert_ne!(stratified_split(&classes, 3, 0.2, 8).1, v);
    }

    #[test]
    fn balanced_order_draws_both_classes_evenly() {
        let classes: Vec<usize> = (0..100).map(|i| usize::from(i >= 90)).collect();
        let train: Vec<usize> = (0..100).collect();
        let o = balanced_order(&train, &classes, 2, 1, 0);
        let rare = o.iter().filter(|&&i| classes[i] == 1).count();
        assert!((30..70).contains(&rare), "{rare} of 100");
        assert_eq!(o, balanced_order(&train, &classes, 2, 1, 0));
        assert_ne!(o, balanced_order(&train, &classes, 2, 1, 1));
    }

    #[test]
    fn balanced_accuracy_averages_recalls() {
        assert_eq!(balanced_accuracy(&[0, 0, 0, 1], &[0, 0, 0, 0], 2), 0.5);
        assert_eq!(balanced_accuracy(&[0, 1], &[0, 1], 2), 1.0);
    }
}
