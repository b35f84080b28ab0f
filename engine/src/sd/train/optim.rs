//! AdamW with decoupled weight decay (the update of `candle_nn::AdamW`), kept in the trainer so
//! that its moments can be checkpointed.

use candle_core::{Tensor, Var};

use super::{ce, LoraTrainer};
use crate::error::Result;

/// AdamW moments, in the order of [`LoraTrainer::vars`].
pub(super) struct AdamState {
    pub(super) m: Vec<Tensor>,
    pub(super) v: Vec<Tensor>,
    pub(super) t: usize,
}

impl LoraTrainer<'_> {
    /// AdamW with decoupled weight decay (the update of `candle_nn::AdamW`), with two parameter
    /// groups: the UNet adapters at `lr`, the text-encoder adapters at `text_lr`. A factor with
    /// no gradient (e.g. SDXL's first text encoder's last layer, whose output SDXL never uses)
    /// is left alone, as torch's AdamW skips a parameter whose `grad` is `None`.
    pub(super) fn adamw(&mut self, grads: &[Option<Tensor>], lr: f64, text_lr: f64) -> Result<()> {
        self.opt.t += 1;
        let (b1, b2, eps, wd) = (
            self.cfg.beta1,
            self.cfg.beta2,
            self.cfg.eps,
            self.cfg.weight_decay,
        );
        let t = self.opt.t as i32;
        let scale_m = 1.0 / (1.0 - b1.powi(t));
        let scale_v = 1.0 / (1.0 - b2.powi(t));
        let vars: Vec<Var> = self.vars().into_iter().cloned().collect();
        for (i, var) in vars.iter().enumerate() {
            let Some(g) = &grads[i] else { continue };
            // vars() holds each adapter's down then up.
            let lr = match self.adapters[i / 2].part {
                super::adapters::Part::Unet => lr,
                _ => text_lr,
            };
            let update = || -> candle_core::Result<(Tensor, Tensor, Tensor)> {
                let m = ((&self.opt.m[i] * b1)? + (g * (1.0 - b1))?)?;
                let v = ((&self.opt.v[i] * b2)? + (g.sqr()? * (1.0 - b2))?)?;
                let step = ((&m * scale_m)? / ((&v * scale_v)?.sqrt()? + eps)?)?;
                let theta = ((var.as_tensor() * (1.0 - lr * wd))? - (step * lr)?)?;
                Ok((m, v, theta))
            };
            let (m, v, theta) = update().map_err(ce)?;
            var.set(&theta).map_err(ce)?;
            self.opt.m[i] = m;
            self.opt.v[i] = v;
        }
        Ok(())
    }
}
