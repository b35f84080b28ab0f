//! EfficientNet-Lite0 as a trainable network (candle autograd, CPU or CUDA), started from its
//! ImageNet weights (docs/ARCHITECTURE.md, §15).
//!
//! **Parameters** live in a [`VarMap`] under the reference's names (`_conv_stem.weight`,
//! `_blocks.N._depthwise_conv.weight`, `_conv_head.bias`, …, and a new head `_fc.weight`
//! [n, 1280], `_fc.bias` [n] replacing the ImageNet `_fc`). [`Net::names`] lists them in a
//! fixed order (the order of optimizer state and of the saved file).
//!
//! **BatchNorm** stays in eval mode: its running statistics are frozen and folded, when the
//! ImageNet weights load, into the preceding convolution's weight and a bias
//! (`w·γ/√(σ²+ε)`, `β − μ·γ/√(σ²+ε)`), and those folded weights and biases are what trains.
//! This is the usual fine-tuning choice for small sets (batch statistics of 8 defect images are
//! noise), and PyTorch's `torch.nn.utils.fusion.fuse_conv_bn_eval` gives the same network, so
//! the parity fixture compares gradients one to one. A trained file holds the folded tensors
//! (`X.weight` and `X.bias` per convolution, no BatchNorm tensors).
//!
//! **Regularisation** as the reference's training: dropout 0.2 before `_fc` (a seeded mask the
//! trainer draws: [`Net::dropout_mask`]); the reference's drop-connect (stochastic depth) is
//! left out: with frozen BN and a few hundred steps it only slows convergence.
//!
//! **Ops with a backward**: the depthwise convolution is our CPU kernel with a backward
//! (`models::efficientnet::depthwise_grad`); bias + ReLU6 after each convolution is one CPU op
//! with a backward ([`bias_act`]); on CUDA both fall back to candle's ops (grouped `conv2d`,
//! `broadcast_add`, `clamp`), which candle differentiates.
//!
//! [`Net::classify`] gives logits; [`Net::encode`] the multi-scale features (strides 2, 4, 8,
//! 16, 32) the segmenter's decoder reads.

use std::path::Path;

use candle_core::{CpuStorage, CustomOp2, DType, Device, Layout, Shape, Tensor, Var, D};
use candle_nn::{VarBuilder, VarMap};
use rand::Rng;

use crate::error::{EngineError, Result};
use crate::models::efficientnet::depthwise::{depthwise, same_padding};
use crate::models::efficientnet::depthwise_grad::relu6_mask;
use crate::models::efficientnet::model::{conv_bn, STAGES};
use crate::models::efficientnet::EMBEDDING_DIM;

/// Dropout before the classification head (the reference's `dropout_rate` for Lite0).
pub const DROPOUT: f32 = 0.2;

/// Channels of [`Net::encode`]'s features, strides 2, 4, 8, 16, 32.
pub const FEATURE_CHANNELS: [usize; 5] = [16, 24, 40, 112, EMBEDDING_DIM];

/// The block after which each of [`Net::encode`]'s first four features is taken (the last is
/// the 1×1 head).
const FEATURE_BLOCKS: [usize; 4] = [0, 2, 4, 10];

pub(crate) fn ce(e: candle_core::Error) -> EngineError {
    EngineError::Inspect(format!("EfficientNet-Lite0 training: {e}"))
}

/// One block's shape: kernel, stride, input, expanded and output channels.
#[derive(Clone, Copy, Debug)]
struct BlockSpec {
    k: usize,
    stride: usize,
    cin: usize,
    mid: usize,
    cout: usize,
    expand: bool,
}

fn block_specs() -> Vec<BlockSpec> {
    let mut out = Vec::new();
    for &(k, s, e, cin, cout, repeats) in &STAGES {
        for r in 0..repeats {
            let (cin, stride) = if r == 0 { (cin, s) } else { (cout, 1) };
            out.push(BlockSpec {
                k,
                stride,
                cin,
                mid: cin * e,
                cout,
                expand: e != 1,
            });
        }
    }
    out
}

/// The tensors of the reference's state dict that the trainable network reads (every
/// convolution and its BatchNorm; not `_fc`, not `num_batches_tracked`), with their shapes.
pub fn reference_shapes() -> Vec<(String, Vec<usize>)> {
    let mut out = Vec::new();
    let mut conv = |conv: &str, bn: &str, shape: [usize; 4]| {
        out.push((format!("{conv}.weight"), shape.to_vec()));
        for t in ["weight", "bias", "running_mean", "running_var"] {
            out.push((format!("{bn}.{t}"), vec![shape[0]]));
        }
    };
    conv("_conv_stem", "_bn0", [32, 3, 3, 3]);
    for (i, b) in block_specs().iter().enumerate() {
        let p = format!("_blocks.{i}");
        if b.expand {
            conv(
                &format!("{p}._expand_conv"),
                &format!("{p}._bn0"),
                [b.mid, b.cin, 1, 1],
            );
        }
        conv(
            &format!("{p}._depthwise_conv"),
            &format!("{p}._bn1"),
            [b.mid, 1, b.k, b.k],
        );
        conv(
            &format!("{p}._project_conv"),
            &format!("{p}._bn2"),
            [b.cout, b.mid, 1, 1],
        );
    }
    conv("_conv_head", "_bn1", [EMBEDDING_DIM, 320, 1, 1]);
    out
}

/// How the classification head starts.
#[derive(Clone, Copy, Debug)]
pub enum Head {
    /// Read `_fc.weight` and `_fc.bias` from the weights.
    Load,
    /// PyTorch's `nn.Linear` initialisation (uniform ±1/√1280, weight and bias), seeded.
    Init(u64),
    /// Zeros (a segmenter, which never uses the head).
    Zero,
}

/// A convolution with folded BatchNorm: weight (PyTorch's conv shape) and bias.
struct Conv {
    w: Tensor,
    b: Tensor,
}

struct Block {
    spec: BlockSpec,
    expand: Option<Conv>,
    depthwise: Conv,
    project: Conv,
}

/// The trainable Lite0 (see the module docs).
pub struct Net {
    vars: VarMap,
    names: Vec<String>,
    stem: Conv,
    blocks: Vec<Block>,
    head: Conv,
    fc: Conv,
    classes: usize,
    device: Device,
}

/// Where the parameters come from while a [`Net`] is built.
enum Source<'a> {
    /// The reference's state dict: fold each BatchNorm into its convolution.
    Unfused(&'a VarBuilder<'a>),
    /// Folded weights and biases under our names (a trained file, a checkpoint).
    Folded(&'a VarBuilder<'a>),
}

impl Net {
    /// The ImageNet weights (`efficientnet-lite0.safetensors`, see
    /// `models::efficientnet::install`) with a new `classes`-way head.
    pub fn from_imagenet(path: &Path, classes: usize, seed: u64, device: &Device) -> Result<Net> {
        if !path.is_file() {
            return Err(EngineError::Inspect(format!(
                "{}: no such file; run `defect-studio models fetch efficientnet-lite0`",
                path.display()
            )));
        }
        crate::models::safetensors_check::check_file(path)
            .map_err(|e| EngineError::Inspect(format!("{}: {e}", path.display())))?;
        let err = |e: candle_core::Error| EngineError::Inspect(format!("{}: {e}", path.display()));
        // SAFETY: mapped read-only; every tensor is copied into a variable before returning.
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[path], DType::F32, device) }
            .map_err(err)?;
        Self::build(Source::Unfused(&vb), classes, Head::Init(seed), device).map_err(err)
    }

    /// A reference state dict (unfused BatchNorm) in `vb`, e.g. the parity fixture's weights.
    pub fn from_unfused(vb: &VarBuilder, classes: usize, head: Head) -> Result<Net> {
        Self::build(Source::Unfused(vb), classes, head, vb.device()).map_err(ce)
    }

    /// Folded encoder weights without `_fc` (a segmenter file): a zero 2-way head.
    pub fn from_folded_encoder(vb: &VarBuilder) -> Result<Net> {
        Self::build(Source::Folded(vb), 2, Head::Zero, vb.device()).map_err(ce)
    }

    /// Folded weights under [`Net::names`] (a trained model file or a checkpoint).
    pub fn from_folded(vb: &VarBuilder, classes: usize) -> Result<Net> {
        Self::build(Source::Folded(vb), classes, Head::Load, vb.device()).map_err(ce)
    }

    fn build(src: Source, classes: usize, head: Head, device: &Device) -> candle_core::Result<Net> {
        if classes < 2 {
            candle_core::bail!("a classifier needs at least 2 classes, got {classes}");
        }
        let vars = VarMap::new();
        let mut names = Vec::new();
        let mut add = |name: &str, t: Tensor| -> candle_core::Result<Tensor> {
            let v = Var::from_tensor(&t.to_dtype(DType::F32)?.to_device(device)?)?;
            let t = v.as_tensor().clone();
            vars.data()
                .lock()
                .map_err(|_| candle_core::Error::Msg("variable map poisoned".into()))?
                .insert(name.to_string(), v);
            names.push(name.to_string());
            Ok(t)
        };
        let mut conv = |conv: &str, bn: &str, shape: (usize, usize, usize, usize)| {
            let (w, b) = match &src {
                Source::Unfused(vb) => conv_bn(vb, conv, bn, shape)?,
                Source::Folded(vb) => (
                    vb.get(shape, &format!("{conv}.weight"))?,
                    vb.get(shape.0, &format!("{conv}.bias"))?,
                ),
            };
            Ok::<_, candle_core::Error>(Conv {
                w: add(&format!("{conv}.weight"), w)?,
                b: add(&format!("{conv}.bias"), b)?,
            })
        };
        let stem = conv("_conv_stem", "_bn0", (32, 3, 3, 3))?;
        let mut blocks = Vec::new();
        for (i, spec) in block_specs().into_iter().enumerate() {
            let p = format!("_blocks.{i}");
            let expand = if spec.expand {
                Some(conv(
                    &format!("{p}._expand_conv"),
                    &format!("{p}._bn0"),
                    (spec.mid, spec.cin, 1, 1),
                )?)
            } else {
                None
            };
            let depthwise = conv(
                &format!("{p}._depthwise_conv"),
                &format!("{p}._bn1"),
                (spec.mid, 1, spec.k, spec.k),
            )?;
            let project = conv(
                &format!("{p}._project_conv"),
                &format!("{p}._bn2"),
                (spec.cout, spec.mid, 1, 1),
            )?;
            blocks.push(Block {
                spec,
                expand,
                depthwise,
                project,
            });
        }
        let head_conv = conv("_conv_head", "_bn1", (EMBEDDING_DIM, 320, 1, 1))?;
        let (fw, fb) = match (head, &src) {
            (Head::Load, Source::Unfused(vb) | Source::Folded(vb)) => (
                vb.get((classes, EMBEDDING_DIM), "_fc.weight")?,
                vb.get(classes, "_fc.bias")?,
            ),
            (Head::Zero, _) => (
                Tensor::zeros((classes, EMBEDDING_DIM), DType::F32, device)?,
                Tensor::zeros(classes, DType::F32, device)?,
            ),
            (Head::Init(seed), _) => {
                use rand::SeedableRng;
                let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
                let bound = 1.0 / (EMBEDDING_DIM as f32).sqrt();
                let mut draw = |n: usize| -> Vec<f32> {
                    (0..n).map(|_| rng.random_range(-bound..bound)).collect()
                };
                (
                    Tensor::from_vec(
                        draw(classes * EMBEDDING_DIM),
                        (classes, EMBEDDING_DIM),
                        device,
                    )?,
                    Tensor::from_vec(draw(classes), classes, device)?,
                )
            }
        };
        let fc = Conv {
            w: add("_fc.weight", fw)?,
            b: add("_fc.bias", fb)?,
        };
        Ok(Net {
            vars,
            names,
            stem,
            blocks,
            head: head_conv,
            fc,
            classes,
            device: device.clone(),
        })
    }

    /// The number of classes of the head.
    pub fn classes(&self) -> usize {
        self.classes
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The parameters' names, in a fixed order (stem, blocks, head, `_fc`).
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The parameters in [`Net::names`] order.
    pub fn vars(&self) -> Result<Vec<Var>> {
        let map = self
            .vars
            .data()
            .lock()
            .map_err(|_| EngineError::Inspect("variable map poisoned".into()))?;
        self.names
            .iter()
            .map(|n| {
                map.get(n)
                    .cloned()
                    .ok_or_else(|| EngineError::Inspect(format!("no variable {n}")))
            })
            .collect()
    }

    /// The parameter map (names as [`Net::names`]).
    pub fn varmap(&self) -> &VarMap {
        &self.vars
    }

    /// A dropout mask for `n` pooled embeddings: 0 with probability [`DROPOUT`], else
    /// 1 / (1 − [`DROPOUT`]) (inverted dropout, as PyTorch's `nn.Dropout`).
    pub fn dropout_mask(&self, rng: &mut impl Rng, n: usize) -> Result<Tensor> {
        let keep = 1.0 / (1.0 - DROPOUT);
        let v: Vec<f32> = (0..n * EMBEDDING_DIM)
            .map(|_| {
                if rng.random::<f32>() < DROPOUT {
                    0.0
                } else {
                    keep
                }
            })
            .collect();
        Tensor::from_vec(v, (n, EMBEDDING_DIM), &self.device).map_err(ce)
    }

    /// `x` [N, 3, H, W] → logits [N, classes]; `dropout`: a [`Net::dropout_mask`] (training)
    /// or `None` (evaluation).
    pub fn classify(&self, x: &Tensor, dropout: Option<&Tensor>) -> Result<Tensor> {
        self.check_input(x)?;
        let run = || -> candle_core::Result<Tensor> {
            let feats = self.trunk(x, false)?;
            let (n, c, h, w) = feats.last().map_or(Ok((0, 0, 0, 0)), |f| f.dims4())?;
            let mut emb = feats
                .last()
                .ok_or_else(|| candle_core::Error::Msg("no features".into()))?
                .reshape((n, c, h * w))?
                .mean(D::Minus1)?;
            if let Some(m) = dropout {
                emb = (emb * m)?;
            }
            emb.matmul(&self.fc.w.t()?)?.broadcast_add(&self.fc.b)
        };
        run().map_err(ce)
    }

    /// `x` [N, 3, H, W] (H, W multiples of 32) → features at strides 2, 4, 8, 16 and 32, with
    /// [`FEATURE_CHANNELS`] channels.
    pub fn encode(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        self.check_input(x)?;
        self.trunk(x, true).map_err(ce)
    }

    fn check_input(&self, x: &Tensor) -> Result<()> {
        match x.dims() {
            [_, 3, h, w] if *h > 0 && *w > 0 => Ok(()),
            d => Err(EngineError::Inspect(format!(
                "EfficientNet-Lite0: input {d:?} is not [N, 3, H, W]"
            ))),
        }
    }

    /// The stem, blocks and 1×1 head; with `all`, the features after [`FEATURE_BLOCKS`] and
    /// the head, else the head's output only.
    fn trunk(&self, x: &Tensor, all: bool) -> candle_core::Result<Vec<Tensor>> {
        let x = x.to_device(&self.device)?.to_dtype(DType::F32)?;
        let (n, _, h, w) = x.dims4()?;
        let (pt, pb) = same_padding(h, 3, 2);
        let (pl, pr) = same_padding(w, 3, 2);
        let xp = x.pad_with_zeros(2, pt, pb)?.pad_with_zeros(3, pl, pr)?;
        let y = xp.conv2d(&self.stem.w, 0, 2, 1, 1)?;
        let (_, c, ho, wo) = y.dims4()?;
        let mut x =
            bias_act(&y.reshape((n, c, ho * wo))?, &self.stem.b, true)?.reshape((n, c, ho, wo))?;
        let mut out = Vec::new();
        for (i, b) in self.blocks.iter().enumerate() {
            x = b.forward(&x)?;
            if all && FEATURE_BLOCKS.contains(&i) {
                out.push(x.clone());
            }
        }
        out.push(pointwise(&x, &self.head, true)?);
        Ok(out)
    }

    /// Every parameter as (name, tensor) in [`Net::names`] order, for saving.
    pub fn tensors(&self) -> Result<Vec<(String, Tensor)>> {
        Ok(self
            .names
            .iter()
            .cloned()
            .zip(self.vars()?.into_iter().map(|v| v.as_tensor().clone()))
            .collect())
    }
}

impl Block {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let h = match &self.expand {
            Some(e) => pointwise(x, e, true)?,
            None => x.clone(),
        };
        let s = &self.spec;
        let h = depthwise(
            &h.contiguous()?,
            &self.depthwise.w,
            &self.depthwise.b,
            s.stride,
            true,
        )?;
        let h = pointwise(&h, &self.project, false)?;
        if s.stride == 1 && s.cin == s.cout {
            h + x
        } else {
            Ok(h)
        }
    }
}

/// A 1×1 convolution (weight [out, in, 1, 1]) + bias (+ ReLU6): [N, in, H, W] → [N, out, H, W].
fn pointwise(x: &Tensor, conv: &Conv, relu6: bool) -> candle_core::Result<Tensor> {
    let (n, c, h, w) = x.dims4()?;
    let out = conv.w.dim(0)?;
    let y = conv
        .w
        .reshape((out, c))?
        .broadcast_left(n)?
        .matmul(&x.reshape((n, c, h * w))?)?;
    bias_act(&y, &conv.b, relu6)?.reshape((n, out, h, w))
}

/// `x` [N, C, L] + `bias` [C], then ReLU6 if `relu6`; differentiable in both. One pass on the
/// CPU ([`BiasAct`]), candle's ops elsewhere.
pub(crate) fn bias_act(x: &Tensor, bias: &Tensor, relu6: bool) -> candle_core::Result<Tensor> {
    if x.device().is_cpu() {
        return x.contiguous()?.apply_op2(bias, BiasAct { relu6 });
    }
    let c = bias.dim(0)?;
    let y = x.broadcast_add(&bias.reshape((1, c, 1))?)?;
    if relu6 {
        y.clamp(0f32, 6f32)
    } else {
        Ok(y)
    }
}

struct BiasAct {
    relu6: bool,
}

impl CustomOp2 for BiasAct {
    fn name(&self) -> &'static str {
        "bias-relu6"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (CpuStorage::F32(x), CpuStorage::F32(b)) = (s1, s2) else {
            candle_core::bail!("bias + ReLU6: f32 tensors only");
        };
        let (Some((x0, x1)), Some((b0, b1))) = (l1.contiguous_offsets(), l2.contiguous_offsets())
        else {
            candle_core::bail!("bias + ReLU6: contiguous tensors only");
        };
        let (n, c, l) = l1.shape().dims3()?;
        let b = &b[b0..b1];
        if b.len() != c {
            candle_core::bail!("bias + ReLU6: {c} channels, {} biases", b.len());
        }
        let mut out = x[x0..x1].to_vec();
        for (i, chunk) in out.chunks_mut(l.max(1)).enumerate() {
            let bias = b[i % c];
            if self.relu6 {
                chunk
                    .iter_mut()
                    .for_each(|v| *v = (*v + bias).clamp(0.0, 6.0));
            } else {
                chunk.iter_mut().for_each(|v| *v += bias);
            }
        }
        Ok((CpuStorage::F32(out), Shape::from((n, c, l))))
    }

    fn bwd(
        &self,
        _x: &Tensor,
        _bias: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let g = if self.relu6 {
            relu6_mask(grad, res)?
        } else {
            grad.clone()
        };
        let db = g.sum(2)?.sum(0)?;
        Ok((Some(g), Some(db)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bias_act_gradients_equal_candles() {
        let dev = Device::Cpu;
        let x = Var::from_tensor(&Tensor::randn(0f32, 4.0, (2, 3, 5), &dev).unwrap()).unwrap();
        let b = Var::from_tensor(&Tensor::randn(0f32, 1.0, 3, &dev).unwrap()).unwrap();
        let proj = Tensor::randn(0f32, 1.0, (2, 3, 5), &dev).unwrap();
        for relu6 in [false, true] {
            let ours = bias_act(&x, &b, relu6).unwrap();
            let y = x.broadcast_add(&b.reshape((1, 3, 1)).unwrap()).unwrap();
            let want = if relu6 {
                y.clamp(0f32, 6f32).unwrap()
            } else {
                y
            };
            let d = (&ours - &want).unwrap().abs().unwrap().max_all().unwrap();
            assert_eq!(d.to_scalar::<f32>().unwrap(), 0.0);
            let g1 = (ours * &proj)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            let g2 = (want * &proj)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            for v in [&x, &b] {
                let d = (g1.get(v).unwrap() - g2.get(v).unwrap())
                    .unwrap()
                    .abs()
                    .unwrap()
                    .max_all()
                    .unwrap()
                    .to_scalar::<f32>()
                    .unwrap();
                assert!(d < 1e-5, "relu6 {relu6}: {d}");
            }
        }
    }

    #[test]
    fn reference_names_cover_the_network() {
        let shapes = reference_shapes();
        // 296 tensors in the reference minus `_fc` (2) and `num_batches_tracked` (49 BNs).
        assert_eq!(shapes.len(), 296 - 2 - 49);
        assert_eq!(
            shapes[0],
            ("_conv_stem.weight".to_string(), vec![32, 3, 3, 3])
        );
        assert!(shapes
            .iter()
            .any(|(n, s)| n == "_blocks.15._depthwise_conv.weight" && s == &[1152, 1, 3, 3]));
    }
}
