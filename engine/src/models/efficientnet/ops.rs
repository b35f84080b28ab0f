//! Per-channel bias plus optional ReLU6 after a convolution, in place on the CPU (one pass, no
//! new tensor: candle's `broadcast_add` and `clamp` are two passes and two allocations each
//! time, which cost Lite0 a fifth of its CPU time); candle's ops on other devices.

use candle_core::{CpuStorage, InplaceOp2, Layout, Tensor};

/// `x` [N, C, …] (fresh, contiguous: it is modified in place on the CPU) + `bias` [C], then
/// clamped to [0, 6] if `relu6`.
pub fn bias_act(x: Tensor, bias: &Tensor, relu6: bool) -> candle_core::Result<Tensor> {
    if x.device().is_cpu() && x.is_contiguous() {
        x.inplace_op2(bias, &BiasAct { relu6 })?;
        return Ok(x);
    }
    let c = bias.dim(0)?;
    let mut shape = vec![1usize; x.rank()];
    shape[1] = c;
    let y = x.broadcast_add(&bias.reshape(shape)?)?;
    if relu6 {
        y.clamp(0f32, 6f32)
    } else {
        Ok(y)
    }
}

struct BiasAct {
    relu6: bool,
}

impl InplaceOp2 for BiasAct {
    fn name(&self) -> &'static str {
        "efficientnet-bias-act"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<()> {
        let (CpuStorage::F32(x), CpuStorage::F32(b)) = (s1, s2) else {
            candle_core::bail!("bias + ReLU6: f32 tensors only");
        };
        let (Some((x0, x1)), Some((b0, b1))) = (l1.contiguous_offsets(), l2.contiguous_offsets())
        else {
            candle_core::bail!("bias + ReLU6: contiguous tensors only");
        };
        let dims = l1.shape().dims();
        let b = &b[b0..b1];
        if dims.len() < 2 || dims[1] != b.len() {
            candle_core::bail!("bias + ReLU6: {dims:?} with {} biases", b.len());
        }
        let inner: usize = dims[2..].iter().product();
        for (i, chunk) in x[x0..x1].chunks_mut(inner.max(1)).enumerate() {
            let bias = b[i % b.len()];
            if self.relu6 {
                for v in chunk {
                    *v = (*v + bias).clamp(0.0, 6.0);
                }
            } else {
                for v in chunk {
                    *v += bias;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn in_place_equals_candle_ops() {
        let dev = Device::Cpu;
        let x = Tensor::randn(0f32, 5.0, (2, 3, 4, 5), &dev).unwrap();
        let b = Tensor::randn(0f32, 2.0, 3, &dev).unwrap();
        for relu6 in [false, true] {
            let want = x.broadcast_add(&b.reshape((1, 3, 1, 1)).unwrap()).unwrap();
            let want = if relu6 {
                want.clamp(0f32, 6f32).unwrap()
            } else {
                want
            };
            let got = bias_act(x.copy().unwrap(), &b, relu6).unwrap();
            let d = (got - want).unwrap().abs().unwrap().max_all().unwrap();
            assert_eq!(d.to_scalar::<f32>().unwrap(), 0.0);
        }
        // A non-contiguous input takes candle's path and is left unchanged.
        let t = x.transpose(2, 3).unwrap();
        let before = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let bb = Tensor::randn(0f32, 2.0, 3, &dev).unwrap();
        bias_act(t.clone(), &bb, true).unwrap();
        assert_eq!(t.flatten_all().unwrap().to_vec1::<f32>().unwrap(), before);
    }
}
