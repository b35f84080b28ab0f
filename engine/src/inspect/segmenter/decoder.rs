//! The segmenter's U-Net-style decoder on [`crate::inspect::net::Net::encode`]'s features:
//! from the stride-32 head, four stages of (2× upsample, concatenate the encoder's skip
//! feature, 3×3 convolution + ReLU), then a 1×1 convolution to one logit at stride 2 and a 2×
//! upsample to the input size. Upsampling is nearest (a broadcast, so its backward is a sum).
//! Parameters `_decoder.N.weight` / `.bias` (He-uniform, seeded).

use candle_core::{Device, Tensor, Var};
use rand::{Rng, SeedableRng};

use crate::error::Result;
use crate::inspect::net::{ce, FEATURE_CHANNELS};

/// Output channels of the four 3×3 stages.
const WIDTHS: [usize; 4] = [64, 48, 32, 32];

/// The decoder's parameters.
pub struct Decoder {
    convs: Vec<(Tensor, Tensor)>,
    vars: Vec<(String, Var)>,
}

/// The shapes of the decoder's convolutions: (out, in, k).
fn shapes() -> Vec<(usize, usize, usize)> {
    // Skips, deepest first: stride 16, 8, 4, 2.
    let skips = [
        FEATURE_CHANNELS[3],
        FEATURE_CHANNELS[2],
        FEATURE_CHANNELS[1],
        FEATURE_CHANNELS[0],
    ];
    let mut out = vec![(WIDTHS[0], FEATURE_CHANNELS[4], 1)];
    let mut cin = WIDTHS[0];
    for (i, s) in skips.iter().enumerate() {
        out.push((WIDTHS[i], cin + s, 3));
        cin = WIDTHS[i];
    }
    out.push((1, cin, 1));
    out
}

impl Decoder {
    /// A new decoder, He-uniform weights and zero biases from `seed`.
    pub fn new(seed: u64, device: &Device) -> Result<Decoder> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x5E6_0000);
        let mut tensors = Vec::new();
        for (o, i, k) in shapes() {
            let bound = (6.0 / (i * k * k) as f32).sqrt();
            let w: Vec<f32> = (0..o * i * k * k)
                .map(|_| rng.random_range(-bound..bound))
                .collect();
            tensors.push((
                Tensor::from_vec(w, (o, i, k, k), device).map_err(ce)?,
                Tensor::zeros(o, candle_core::DType::F32, device).map_err(ce)?,
            ));
        }
        Self::from_tensors(tensors)
    }

    /// The decoder from `get(name, shape)` (a trained file).
    pub fn load(mut get: impl FnMut(&str, &[usize]) -> Result<Tensor>) -> Result<Decoder> {
        let mut tensors = Vec::new();
        for (n, (o, i, k)) in shapes().into_iter().enumerate() {
            tensors.push((
                get(&format!("_decoder.{n}.weight"), &[o, i, k, k])?,
                get(&format!("_decoder.{n}.bias"), &[o])?,
            ));
        }
        Self::from_tensors(tensors)
    }

    fn from_tensors(tensors: Vec<(Tensor, Tensor)>) -> Result<Decoder> {
        let mut convs = Vec::new();
        let mut vars = Vec::new();
        for (n, (w, b)) in tensors.into_iter().enumerate() {
            let wv = Var::from_tensor(&w).map_err(ce)?;
            let bv = Var::from_tensor(&b).map_err(ce)?;
            convs.push((wv.as_tensor().clone(), bv.as_tensor().clone()));
            vars.push((format!("_decoder.{n}.weight"), wv));
            vars.push((format!("_decoder.{n}.bias"), bv));
        }
        Ok(Decoder { convs, vars })
    }

    /// The parameters with their names, in a fixed order.
    pub fn vars(&self) -> &[(String, Var)] {
        &self.vars
    }

    /// Encoder features (strides 2, 4, 8, 16, 32) → logits [N, 1, 2·H₂, 2·W₂] (the input size).
    pub fn forward(&self, feats: &[Tensor]) -> Result<Tensor> {
        let run = || -> candle_core::Result<Tensor> {
            let conv = |x: &Tensor, i: usize, relu: bool| -> candle_core::Result<Tensor> {
                let (w, b) = &self.convs[i];
                let pad = w.dim(2)? / 2;
                let y = x.conv2d(w, pad, 1, 1, 1)?.broadcast_add(&b.reshape((
                    1,
                    b.dim(0)?,
                    1,
                    1,
                ))?)?;
                if relu {
                    y.relu()
                } else {
                    Ok(y)
                }
            };
            let mut x = conv(&feats[4], 0, true)?;
            for (stage, skip) in [3usize, 2, 1, 0].iter().enumerate() {
                let up = up2(&x)?;
                x = conv(&Tensor::cat(&[&up, &feats[*skip]], 1)?, stage + 1, true)?;
            }
            up2(&conv(&x, 5, false)?)
        };
        run().map_err(ce)
    }
}

/// Nearest 2× upsampling as a broadcast (its backward sums the four copies).
fn up2(x: &Tensor) -> candle_core::Result<Tensor> {
    let (n, c, h, w) = x.dims4()?;
    x.reshape((n, c, h, 1, w, 1))?
        .broadcast_as((n, c, h, 2, w, 2))?
        .reshape((n, c, 2 * h, 2 * w))
}
