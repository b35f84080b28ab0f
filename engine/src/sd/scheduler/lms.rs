//! `LMSDiscreteScheduler` (order 4): the Lagrange integration coefficients, and the derivative
//! history the steps keep.

use candle_core::{bail, Result, Tensor};

use super::{div, euler, lin, numerics, Core};

/// LMS integration coefficient: integral over `[sigmas[t], sigmas[t+1]]` of the
/// Lagrange basis polynomial `current_order` through `sigmas[t-k]`, `k < order`.
///
/// diffusers evaluates the integrand with `float32` tensor arithmetic and
/// integrates with `scipy.integrate.quad(epsrel=1e-4)`; this evaluates the
/// integrand the same way and integrates with [`numerics::quad`] (QUADPACK's
/// adaptive 21-point Gauss–Kronrod scheme).
pub fn lms_coefficient(
    sigmas: &[f32],
    order: usize,
    t: usize,
    current_order: usize,
) -> Result<f64> {
    if t + 1 >= sigmas.len() || order > t + 1 || current_order >= order {
        bail!(
            "lms_coefficient: order {order}, step {t}, current_order {current_order} out of range for {} sigmas",
            sigmas.len()
        );
    }
    let sc = sigmas[t - current_order];
    let integrand = |tau: f64| -> f64 {
        let tau = tau as f32;
        let mut prod = 1.0f32;
        for k in 0..order {
            if k == current_order {
                continue;
            }
            let sk = sigmas[t - k];
            prod *= (tau - sk) / (sc - sk);
        }
        prod as f64
    };
    numerics::quad(integrand, sigmas[t] as f64, sigmas[t + 1] as f64, 1e-4)
}

/// LMS's state: the last (up to 4) derivatives, oldest first.
#[derive(Default)]
pub(super) struct LmsState {
    derivatives: Vec<Tensor>,
}

impl LmsState {
    /// One step at step index `idx`.
    pub(super) fn step(
        &mut self,
        core: &Core,
        mo: &Tensor,
        idx: usize,
        x: &Tensor,
    ) -> Result<Tensor> {
        const MAX_ORDER: usize = 4;
        let sigma = core.sigma_at(idx)?;
        let pred = euler::pred_x0(core, mo, x, sigma)?;
        let derivative = div(&(x - pred)?, sigma)?;
        self.derivatives.push(derivative);
        if self.derivatives.len() > MAX_ORDER {
            self.derivatives.remove(0);
        }
        let order = (idx + 1).min(MAX_ORDER);
        let coeffs = (0..order)
            .map(|c| lms_coefficient(&core.sigmas, order, idx, c))
            .collect::<Result<Vec<_>>>()?;
        let terms: Vec<(f32, &Tensor)> = coeffs
            .iter()
            .zip(self.derivatives.iter().rev())
            .map(|(&c, d)| (c as f32, d))
            .collect();
        x + lin(&terms)?
    }
}
