//! GEGLU as diffusers computes it in SD's feed-forward blocks:
//! `hidden, gate = proj(x).chunk(2, dim=-1); out = hidden * gelu(gate)` (exact, erf GELU).
//!
//! * [`geglu`]: the entry point, x `[..., 2N]` → `[..., N]`.
//! * [`Geglu`]: the candle `CustomOp1`. CPU: [`cpu_ref`]; CUDA: `cuda/geglu.cu` (elementwise,
//!   f32 math).
//! * [`cpu_ref`]: f32 math on CPU tensors.

use candle_core::backend::BackendStorage;
use candle_core::{bail, CpuStorage, DType, Device, Layout, Result, Shape, Tensor, D};

fn out_shape(x: &Shape) -> Result<Shape> {
    let dims = x.dims();
    match dims.last() {
        Some(&last) if last % 2 == 0 && last > 0 => {
            let mut out = dims.to_vec();
            out[dims.len() - 1] = last / 2;
            Ok(Shape::from(out))
        }
        _ => bail!("geglu: the last dim of x must be even and non-zero, got {x:?}"),
    }
}

/// Reference GEGLU in f32 on CPU tensors: first half * gelu_erf(second half); the result is f32.
pub fn cpu_ref(x: &Tensor) -> Result<Tensor> {
    let n = out_shape(x.shape())?.dims().last().copied().unwrap_or(0);
    let x = x.to_device(&Device::Cpu)?.to_dtype(DType::F32)?;
    let hidden = x.narrow(D::Minus1, 0, n)?;
    let gate = x.narrow(D::Minus1, n, n)?;
    hidden * gate.gelu_erf()?
}

/// GEGLU of x `[..., 2N]`: `x[..., :N] * gelu_erf(x[..., N:])`, shape `[..., N]`, x's dtype.
pub fn geglu(x: &Tensor) -> Result<Tensor> {
    out_shape(x.shape())?;
    x.contiguous()?.apply_op1_no_bwd(&Geglu)
}

/// The GEGLU custom op (`x.apply_op1_no_bwd(&Geglu)`); x must be contiguous.
#[derive(Debug, Clone, Copy)]
pub struct Geglu;

impl candle_core::CustomOp1 for Geglu {
    fn name(&self) -> &'static str {
        "geglu"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = crate::cpu::to_f32_tensor(s, l, self.name())?;
        let y = cpu_ref(&x)?;
        Ok((crate::cpu::to_storage(&y, s.dtype())?, y.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s: &candle_core::CudaStorage,
        l: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        match s.dtype() {
            DType::F32 => cuda::launch::<f32>("f32", s, l),
            DType::F16 => cuda::launch::<half::f16>("f16", s, l),
            DType::BF16 => cuda::launch::<half::bf16>("bf16", s, l),
            other => bail!("geglu: no CUDA kernel for dtype {other:?}"),
        }
    }
}

#[cfg(feature = "cuda")]
mod cuda {
    use candle_core::backend::BackendStorage;
    use candle_core::cuda_backend::cudarc::driver::{DeviceRepr, LaunchConfig, PushKernelArg};
    use candle_core::cuda_backend::{CudaDType, WrapErr};
    use candle_core::{bail, CudaStorage, Layout, Result, Shape};

    pub(super) fn launch<T: CudaDType + DeviceRepr>(
        tname: &str,
        s: &CudaStorage,
        l: &Layout,
    ) -> Result<(CudaStorage, Shape)> {
        let shape = super::out_shape(l.shape())?;
        let n = shape.dims().last().copied().unwrap_or(0);
        let total = shape.elem_count();
        if n > i32::MAX as usize {
            bail!(
                "geglu: last dim too large for the CUDA kernel: {:?}",
                l.shape()
            )
        }
        let Some((a, e)) = l.contiguous_offsets() else {
            bail!("geglu: x must be contiguous")
        };
        let x = s.as_cuda_slice::<T>()?.slice(a..e);
        let dev = s.device();
        let info = crate::cuda::device_info(dev)?;
        let key = crate::cuda::KernelKey {
            ordinal: info.ordinal,
            module: "geglu",
            dtype: s.dtype(),
            head_dim: 0,
        };
        let kernel = crate::cuda::kernel(
            dev,
            &info,
            key,
            crate::sources::GEGLU,
            || format!("geglu_{tname}"),
            0,
            "geglu",
        )?;
        // SAFETY: the grid-stride loop writes all `total` elements.
        let out = unsafe { dev.alloc::<T>(total)? };
        let blocks = total.div_ceil(256).clamp(1, 1 << 20) as u32;
        let cfg = LaunchConfig {
            grid_dim: (blocks, 1, 1),
            block_dim: (256, 1, 1),
            shared_mem_bytes: 0,
        };
        let rows = (total / n.max(1)) as u64;
        let n_i = n as i32;
        let stream = dev.cuda_stream();
        let mut b = stream.launch_builder(&kernel.func);
        b.arg(&x).arg(&out).arg(&rows).arg(&n_i);
        // SAFETY: argument types and order match geglu.cu.
        unsafe { b.launch(cfg) }.w()?;
        Ok((CudaStorage::wrap_cuda_slice(out, dev.clone()), shape))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// erf by Abramowitz–Stegun 7.1.26 is too coarse for a reference; use a series/continued
    /// fraction in f64 instead (|error| < 1e-12 on the range used here).
    fn erf(x: f64) -> f64 {
        if x.abs() < 3.0 {
            // Maclaurin series: erf x = 2/√π Σ (-1)^n x^(2n+1) / (n! (2n+1)).
            let mut sum = 0.0;
            let mut term = x; // (-1)^n x^(2n+1) / n!
            for n in 0..80 {
                sum += term / (2 * n + 1) as f64;
                term *= -x * x / (n + 1) as f64;
            }
            sum * 2.0 / std::f64::consts::PI.sqrt()
        } else {
            x.signum() * (1.0 - (-x * x).exp() / (x.abs() * std::f64::consts::PI.sqrt()))
        }
    }

    fn naive(x: &[f32], rows: usize, n: usize) -> Vec<f32> {
        let mut y = Vec::with_capacity(rows * n);
        for r in 0..rows {
            for c in 0..n {
                let h = x[r * 2 * n + c] as f64;
                let g = x[r * 2 * n + n + c] as f64;
                y.push((h * 0.5 * g * (1.0 + erf(g / std::f64::consts::SQRT_2))) as f32);
            }
        }
        y
    }

    #[test]
    fn cpu_ref_matches_the_formula() {
        // SD1.5's FF at 320 channels: proj to 2*1280, scaled down to 2*160; values in [-4, 4).
        let (b, l, n) = (2, 7, 160);
        let x: Vec<f32> = (0..b * l * 2 * n)
            .map(|i| ((i * 7919) % 1000) as f32 / 125.0 - 4.0)
            .collect();
        let want = naive(&x, b * l, n);
        let xt = Tensor::from_vec(x, (b, l, 2 * n), &Device::Cpu).unwrap();
        let got = cpu_ref(&xt).unwrap();
        assert_eq!(got.dims(), &[b, l, n]);
        let got: Vec<f32> = got.flatten_all().unwrap().to_vec1().unwrap();
        let diff = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        // f32 vs f64, outputs up to 16 in magnitude: ≤ 1e-5.
        assert!(diff <= 1e-5, "max abs diff {diff}");
        // The order matters (diffusers: hidden first, gate second): swapping halves is caught.
        let swapped = Tensor::cat(
            &[xt.narrow(2, n, n).unwrap(), xt.narrow(2, 0, n).unwrap()],
            2,
        )
        .unwrap();
        let s: Vec<f32> = cpu_ref(&swapped)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert!(
            s.iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max)
                > 0.1
        );
        // The custom op's CPU path, f32 and bf16 (bf16: input and output rounding, ≤ 0.15 at |y|≤16).
        let op: Vec<f32> = geglu(&xt)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert_eq!(op, got);
        let xb = xt.to_dtype(DType::BF16).unwrap();
        let xr: Vec<f32> = xb
            .to_dtype(DType::F32)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let ob = geglu(&xb).unwrap();
        assert_eq!(ob.dtype(), DType::BF16);
        let ob: Vec<f32> = ob
            .to_dtype(DType::F32)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let wb = naive(&xr, b * l, n);
        let diff = ob
            .iter()
            .zip(&wb)
            .map(|(a, b)| (a - b).abs() / b.abs().max(1.0))
            .fold(0f32, f32::max);
        assert!(diff <= 4e-3, "bf16 max rel diff {diff}");
    }

    #[test]
    fn odd_last_dim_is_an_error() {
        let x = Tensor::zeros((2, 3), DType::F32, &Device::Cpu).unwrap();
        assert!(geglu(&x).is_err());
        assert!(cpu_ref(&x).is_err());
    }
}
