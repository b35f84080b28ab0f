//! The EfficientNet-Lite0 network on candle, mirroring the weight names of the reference
//! (`efficientnet-lite-pytorch` 0.1.0, `EfficientNet.from_name('efficientnet-lite0')`).
//!
//! Lite0: a 3×3/2 stem (32 channels), 16 MBConv blocks without squeeze-excite, a 1×1 head
//! (1280 channels), global average pooling and a 1000-way linear layer; ReLU6 everywhere;
//! TensorFlow "SAME" padding (asymmetric for stride 2: the reference's
//! `Conv2dStaticSamePadding` computed for 224², which equals SAME at 224²). BatchNorm
//! (eps 1e-3, eval mode) is folded into the preceding convolution when the weights load.

use std::path::Path;

use candle_core::{DType, Device, Tensor, D};
use candle_nn::VarBuilder;

use super::depthwise::{depthwise, same_padding};
use super::ops::bias_act;
use crate::error::{EngineError, Result};

/// BatchNorm epsilon of the reference (`batch_norm_epsilon=1e-3`).
const BN_EPS: f64 = 1e-3;
/// Width of the pooled embedding.
pub const EMBEDDING_DIM: usize = 1280;
/// Number of ImageNet classes.
pub const NUM_CLASSES: usize = 1000;

/// The block stages of Lite0: (kernel, stride, expand ratio, in, out, repeats), from the
/// reference's `efficientnet_lite()` block strings `r1_k3_s11_e1_i32_o16` … (stem and head are
/// not scaled: `fix_head_stem`).
pub(crate) const STAGES: [(usize, usize, usize, usize, usize, usize); 7] = [
    (3, 1, 1, 32, 16, 1),
    (3, 2, 6, 16, 24, 2),
    (5, 2, 6, 24, 40, 2),
    (3, 2, 6, 40, 80, 3),
    (5, 1, 6, 80, 112, 3),
    (5, 2, 6, 112, 192, 4),
    (3, 1, 6, 192, 320, 1),
];

/// A 1×1 convolution with BatchNorm folded in: weight [out, in], bias [out].
struct Pointwise {
    w: Tensor,
    b: Tensor,
}

impl Pointwise {
    /// `x` [N, in, H, W] → [N, out, H, W], with ReLU6 if `relu6`.
    fn forward(&self, x: &Tensor, relu6: bool) -> candle_core::Result<Tensor> {
        let (n, c, h, w) = x.dims4()?;
        let out = self.w.dim(0)?;
        let y = self
            .w
            .broadcast_left(n)?
            .matmul(&x.reshape((n, c, h * w))?)?;
        bias_act(y, &self.b, relu6)?.reshape((n, out, h, w))
    }
}

/// A depthwise k×k convolution with BatchNorm folded in.
struct Depthwise {
    w: Tensor,
    b: Tensor,
    stride: usize,
}

struct Block {
    expand: Option<Pointwise>,
    depthwise: Depthwise,
    project: Pointwise,
    skip: bool,
}

impl Block {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let h = match &self.expand {
            Some(e) => e.forward(x, true)?,
            None => x.clone(),
        };
        let h = depthwise(
            &h,
            &self.depthwise.w,
            &self.depthwise.b,
            self.depthwise.stride,
            true,
        )?;
        let h = self.project.forward(&h, false)?;
        if self.skip {
            h + x
        } else {
            Ok(h)
        }
    }
}

/// EfficientNet-Lite0 with ImageNet weights: logits and the pooled 1280-d embedding.
pub struct Lite0 {
    stem_w: Tensor,
    stem_b: Tensor,
    blocks: Vec<Block>,
    head: Pointwise,
    fc_w: Tensor,
    fc_b: Tensor,
    device: Device,
}

/// Loads `{prefix}.weight` of a conv and folds `{bn}` (weight, bias, running mean and var)
/// into it: returns (weight × scale per output channel, folded bias).
pub(crate) fn conv_bn(
    vb: &VarBuilder,
    conv: &str,
    bn: &str,
    shape: (usize, usize, usize, usize),
) -> candle_core::Result<(Tensor, Tensor)> {
    let w = vb.get(shape, &format!("{conv}.weight"))?;
    let c = shape.0;
    let gamma = vb.get(c, &format!("{bn}.weight"))?.to_dtype(DType::F64)?;
    let beta = vb.get(c, &format!("{bn}.bias"))?.to_dtype(DType::F64)?;
    let mean = vb
        .get(c, &format!("{bn}.running_mean"))?
        .to_dtype(DType::F64)?;
    let var = vb
        .get(c, &format!("{bn}.running_var"))?
        .to_dtype(DType::F64)?;
    let scale = (gamma / (var + BN_EPS)?.sqrt()?)?;
    let bias = (beta - (mean * &scale)?)?;
    let w = w
        .to_dtype(DType::F64)?
        .broadcast_mul(&scale.reshape((c, 1, 1, 1))?)?
        .to_dtype(DType::F32)?;
    Ok((w, bias.to_dtype(DType::F32)?))
}

fn pointwise(
    vb: &VarBuilder,
    conv: &str,
    bn: &str,
    cin: usize,
    cout: usize,
) -> candle_core::Result<Pointwise> {
    let (w, b) = conv_bn(vb, conv, bn, (cout, cin, 1, 1))?;
    Ok(Pointwise {
        w: w.reshape((cout, cin))?,
        b,
    })
}

impl Lite0 {
    /// Loads the converted weights (`efficientnet-lite0.safetensors`, see
    /// [`super::install`]) onto `device`. A missing file, a file that is not valid
    /// safetensors, or a missing or mis-shaped tensor gives an error naming the file and
    /// the tensor.
    pub fn load(path: &Path, device: &Device) -> Result<Lite0> {
        if !path.is_file() {
            return Err(EngineError::failed(format!(
                "{}: no such file; run `defect-studio models fetch efficientnet-lite0`",
                path.display()
            )));
        }
        crate::models::safetensors_check::check_file(path)
            .map_err(|e| EngineError::failed(format!("{}: {e}", path.display())))?;
        let err = |e: candle_core::Error| EngineError::failed(format!("{}: {e}", path.display()));
        // SAFETY: the file is mapped read-only and every tensor is copied while loading; the
        // map is dropped before returning.
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[path], DType::F32, device) }
            .map_err(err)?;
        Self::from_varbuilder(&vb, device).map_err(err)
    }

    fn from_varbuilder(vb: &VarBuilder, device: &Device) -> candle_core::Result<Lite0> {
        let (stem_w, stem_b) = conv_bn(vb, "_conv_stem", "_bn0", (32, 3, 3, 3))?;
        let mut blocks = Vec::new();
        for &(k, s, e, cin, cout, repeats) in &STAGES {
            for r in 0..repeats {
                let (cin, stride) = if r == 0 { (cin, s) } else { (cout, 1) };
                let p = format!("_blocks.{}", blocks.len());
                let mid = cin * e;
                let expand = if e != 1 {
                    Some(pointwise(
                        vb,
                        &format!("{p}._expand_conv"),
                        &format!("{p}._bn0"),
                        cin,
                        mid,
                    )?)
                } else {
                    None
                };
                let (dw, db) = conv_bn(
                    vb,
                    &format!("{p}._depthwise_conv"),
                    &format!("{p}._bn1"),
                    (mid, 1, k, k),
                )?;
                let project = pointwise(
                    vb,
                    &format!("{p}._project_conv"),
                    &format!("{p}._bn2"),
                    mid,
                    cout,
                )?;
                blocks.push(Block {
                    expand,
                    depthwise: Depthwise {
                        w: dw,
                        b: db,
                        stride,
                    },
                    project,
                    skip: stride == 1 && cin == cout,
                });
            }
        }
        let head = pointwise(vb, "_conv_head", "_bn1", 320, EMBEDDING_DIM)?;
        let fc_w = vb.get((NUM_CLASSES, EMBEDDING_DIM), "_fc.weight")?;
        let fc_b = vb.get(NUM_CLASSES, "_fc.bias")?;
        Ok(Lite0 {
            stem_w,
            stem_b,
            blocks,
            head,
            fc_w,
            fc_b,
            device: device.clone(),
        })
    }

    /// The device the weights live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// `x`: [N, 3, H, W] f32 (224² for parity with the reference; see [`super::preprocess`]).
    /// Returns (logits [N, 1000], pooled embedding [N, 1280]).
    pub fn forward(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let (_, c, _, _) = x.dims4().map_err(|_| {
            EngineError::failed(format!(
                "EfficientNet-Lite0: input {:?} is not [N, 3, H, W]",
                x.dims()
            ))
        })?;
        if c != 3 {
            return Err(EngineError::failed(format!(
                "EfficientNet-Lite0: input has {c} channels, expected 3"
            )));
        }
        self.forward_inner(x)
            .map_err(|e| EngineError::failed(format!("EfficientNet-Lite0: {e}")))
    }

    /// [`Lite0::forward`] on plain vectors: `inputs` holds `n` images of CHW 3×`h`×`w` f32
    /// (e.g. from [`super::preprocess`], concatenated). Returns (logits `n`×1000, embeddings
    /// `n`×1280), row-major.
    pub fn forward_vec(
        &self,
        inputs: &[f32],
        n: usize,
        h: usize,
        w: usize,
    ) -> Result<(Vec<f32>, Vec<f32>)> {
        let want = n
            .checked_mul(3 * h)
            .and_then(|x| x.checked_mul(w))
            .filter(|&x| x == inputs.len())
            .ok_or_else(|| {
                EngineError::failed(format!(
                    "EfficientNet-Lite0: {} input values for {n} images of 3×{h}×{w}",
                    inputs.len()
                ))
            })?;
        let c = |e: candle_core::Error| EngineError::failed(format!("EfficientNet-Lite0: {e}"));
        let x = Tensor::from_slice(&inputs[..want], (n, 3, h, w), &self.device).map_err(c)?;
        let (logits, emb) = self.forward(&x)?;
        let flat = |t: Tensor| t.flatten_all()?.to_vec1::<f32>();
        Ok((flat(logits).map_err(c)?, flat(emb).map_err(c)?))
    }

    fn forward_inner(&self, x: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
        let x = x.to_device(&self.device)?.to_dtype(DType::F32)?;
        let (_, _, h, w) = x.dims4()?;
        let (pt, pb) = same_padding(h, 3, 2);
        let (pl, pr) = same_padding(w, 3, 2);
        let x = x.pad_with_zeros(2, pt, pb)?.pad_with_zeros(3, pl, pr)?;
        let mut x = bias_act(
            x.conv2d(&self.stem_w, 0, 2, 1, 1)?.contiguous()?,
            &self.stem_b,
            true,
        )?;
        for b in &self.blocks {
            x = b.forward(&x)?;
        }
        let x = self.head.forward(&x, true)?;
        let embedding = x.flatten_from(2)?.mean(D::Minus1)?;
        let logits = embedding
            .matmul(&self.fc_w.t()?)?
            .broadcast_add(&self.fc_b)?;
        Ok((logits, embedding))
    }
}
