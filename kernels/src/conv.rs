//! CPU convolution for the UNet, the VAE and ISNet (docs/ARCHITECTURE.md §8): contract only,
//! the implementation lands with issue 16.

use candle_core::{bail, Result, Tensor};

/// Stride, zero padding and dilation (the same on both axes), as in `nn.Conv2d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvParams {
    pub stride: usize,
    pub padding: usize,
    pub dilation: usize,
}

/// Activation applied in the output pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Activation {
    #[default]
    None,
    Relu,
    Silu,
}

/// What the output pass adds: `out = act(conv(x) + bias) + residual`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Epilogue<'a> {
    /// `[C_out]`.
    pub bias: Option<&'a Tensor>,
    pub activation: Activation,
    /// Same shape as the output.
    pub residual: Option<&'a Tensor>,
}

/// `conv2d` of the channel-wise concatenation of `inputs` (each `[B, C_i, H, W]`, f32, CPU;
/// never copied into one tensor) with `weight` `[C_out, ΣC_i, kh, kw]`, then the epilogue.
pub fn conv2d(
    inputs: &[&Tensor],
    weight: &Tensor,
    params: ConvParams,
    epilogue: Epilogue,
) -> Result<Tensor> {
    let _ = (inputs, weight, params, epilogue);
    bail!("kernels::conv::conv2d: not implemented yet")
}
