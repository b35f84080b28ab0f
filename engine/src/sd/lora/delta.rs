//! ΔW of one module at a strength, in f32 and shaped as the layer's weight, for each algorithm:
//!
//! - LoRA/LoCon: `s · alpha/r · up · down` (r = `down.shape[0]`);
//! - LoHa: `s · alpha/r · (w1a · w1b) ⊙ (w2a · w2b)` (r = `hada_w1_b.shape[0]`); with Tucker
//!   cores each half is `einsum('i j k l, j r, i p -> p r k l', t, wb, wa)`;
//! - LoKr: `s · scale · kron(w1, w2)` with `w1 = lokr_w1 | lokr_w1_a · lokr_w1_b`,
//!   `w2 = lokr_w2 | lokr_w2_a · lokr_w2_b | Tucker(lokr_t2, lokr_w2_a, lokr_w2_b)`; scale 1 when
//!   both factors are full (alpha ignored, as LyCORIS), else `alpha / dim` with dim the rank of
//!   the factorised factor (`lokr_w2_b.shape[0]`, else `lokr_w1_b.shape[0]`; ComfyUI's rule);
//! - DoRA on any of them: `W' = m / ‖W + ΔW‖ · (W + ΔW)` with the norm per output row (PEFT,
//!   LyCORIS' default) or per input column (LyCORIS `wd_on_out=False`, `dora_scale` [1, in]),
//!   the norm taken on the *base* weight plus this module's ΔW and the rescale applied to the
//!   running weight (earlier adapters of the stack included), as PEFT stacks adapters.
//!
//! The scale (and strength) multiply the smallest factor, never the full-size product.

use std::path::Path;

use candle_core::{DType, Tensor};

use super::{Adapter, Factor, LoraModule};
use crate::error::{EngineError, Result};

/// Context for error messages: the file, the module's key and the layer's weight key.
pub(crate) struct Site<'a> {
    pub file: &'a Path,
    pub module: &'a str,
    pub weight: &'a str,
}

impl Site<'_> {
    fn err(&self, msg: impl std::fmt::Display) -> EngineError {
        EngineError::failed(format!("{}: {}: {msg}", self.file.display(), self.module))
    }
    fn c(&self) -> impl Fn(candle_core::Error) -> EngineError + '_ {
        move |e| self.err(e)
    }
}

fn f32_2d(t: &Tensor, rows: usize) -> candle_core::Result<Tensor> {
    t.to_dtype(DType::F32)?.reshape((rows, ()))
}

/// `einsum('i j k l, j r, i p -> p r k l', t, wb, wa)`: t [R, R, kh, kw], wa [R, out],
/// wb [R, in] → [out, in, kh, kw] (LyCORIS' and PEFT's Tucker rebuild).
fn tucker(t: &Tensor, wa: &Tensor, wb: &Tensor) -> candle_core::Result<Tensor> {
    let t = t.to_dtype(DType::F32)?;
    let (ri, rj, kh, kw) = t.dims4()?;
    let wa = wa.to_dtype(DType::F32)?.reshape((ri, ()))?;
    let wb = wb.to_dtype(DType::F32)?.reshape((rj, ()))?;
    let (out, inn) = (wa.dim(1)?, wb.dim(1)?);
    // Σ_j t[i, j, k, l] wb[j, r] → [i, k, l, r]
    let tmp = t
        .permute((0, 2, 3, 1))?
        .contiguous()?
        .reshape((ri * kh * kw, rj))?
        .matmul(&wb)?;
    // Σ_i wa[i, p] tmp[i, ...] → [p, k, l, r]
    let tmp = wa.t()?.matmul(&tmp.reshape((ri, kh * kw * inn))?)?;
    tmp.reshape((out, kh, kw, inn))?
        .permute((0, 3, 1, 2))?
        .contiguous()
}

/// `kron(w1, w2)`: w1 [a, c] with w2 [b, d] → [a·b, c·d], or w2 [b, d, kh, kw] →
/// [a·b, c·d, kh, kw] (w1 taken as [a, c, 1, 1], as LyCORIS does for convolutions).
fn kron(w1: &Tensor, w2: &Tensor) -> candle_core::Result<Tensor> {
    let (a, c) = w1.dims2()?;
    match w2.dims() {
        [b, d] => {
            let (b, d) = (*b, *d);
            w1.reshape((a, 1, c, 1))?
                .broadcast_mul(&w2.reshape((1, b, 1, d))?)?
                .reshape((a * b, c * d))
        }
        [b, d, kh, kw] => {
            let (b, d, kh, kw) = (*b, *d, *kh, *kw);
            let w1 = w1.reshape((a, 1, c, 1, 1))?;
            let w2 = w2.reshape((1, b, 1, d, kh * kw))?;
            w1.broadcast_mul(&w2)?.reshape((a * b, c * d, kh, kw))
        }
        other => Err(candle_core::Error::Msg(format!(
            "lokr_w2 must be 2-D or 4-D, not {other:?}"
        ))),
    }
}

/// The product of a LoKr factor: full, `a · b`, or Tucker; and its rank (None when full).
fn factor(f: &Factor) -> candle_core::Result<(Tensor, Option<usize>)> {
    Ok(match f {
        Factor::Full(w) => (w.to_dtype(DType::F32)?, None),
        Factor::Low { a, b, tucker: None } => {
            let r = b.dim(0)?;
            (f32_2d(a, a.dim(0)?)?.matmul(&f32_2d(b, r)?)?, Some(r))
        }
        Factor::Low {
            a,
            b,
            tucker: Some(t),
        } => (tucker(t, a, b)?, Some(b.dim(0)?)),
    })
}

/// The module's ΔW at `strength` (before DoRA), in f32, shaped as `base`.
fn raw_delta(m: &LoraModule, strength: f64, base: &Tensor, site: &Site) -> Result<Tensor> {
    let c = site.c();
    let out = base.dim(0).map_err(&c)?;
    let scale_of = |rank: usize| m.alpha.map(|a| f64::from(a) / rank as f64).unwrap_or(1.0);
    let d = match &m.adapter {
        Adapter::Lora { down, up } => {
            let rank = down.dim(0).map_err(&c)?;
            let down = f32_2d(down, rank).map_err(&c)?;
            let up = f32_2d(up, up.dim(0).map_err(&c)?).map_err(&c)?;
            if up.dim(1).map_err(&c)? != rank {
                return Err(site.err(format!(
                    "up {:?} and down {:?} do not share a rank",
                    up.dims(),
                    down.dims()
                )));
            }
            (up * (scale_of(rank) * strength))
                .and_then(|u| u.matmul(&down))
                .map_err(&c)?
        }
        Adapter::Loha {
            w1a,
            w1b,
            w2a,
            w2b,
            tucker: cores,
        } => {
            let rank = w1b.dim(0).map_err(&c)?;
            let s = scale_of(rank) * strength;
            let (m1, m2) = match cores {
                Some((t1, t2)) => (
                    tucker(t1, w1a, w1b).and_then(|m| m * s).map_err(&c)?,
                    tucker(t2, w2a, w2b).map_err(&c)?,
                ),
                None => {
                    let half = |a: &Tensor, b: &Tensor, s: f64| -> candle_core::Result<Tensor> {
                        let a = (f32_2d(a, a.dim(0)?)? * s)?;
                        a.matmul(&f32_2d(b, b.dim(0)?)?)
                    };
                    (
                        half(w1a, w1b, s).map_err(&c)?,
                        half(w2a, w2b, 1.0).map_err(&c)?,
                    )
                }
            };
            if m1.dims() != m2.dims() {
                return Err(site.err(format!(
                    "LoHa halves differ: w1 gives {:?}, w2 gives {:?}",
                    m1.dims(),
                    m2.dims()
                )));
            }
            (m1 * m2).map_err(&c)?
        }
        Adapter::Lokr { w1, w2 } => {
            let (p1, r1) = factor(w1).map_err(&c)?;
            let (p2, r2) = factor(w2).map_err(&c)?;
            let scale = match (r1, r2) {
                (None, None) => 1.0,
                (_, Some(r)) | (Some(r), None) => scale_of(r),
            };
            if p1.rank() != 2 {
                return Err(site.err(format!("lokr_w1 must be 2-D, not {:?}", p1.dims())));
            }
            let p1 = (p1 * (scale * strength)).map_err(&c)?;
            let k = kron(&p1, &p2).map_err(&c)?;
            let layer = base.dims();
            let fits = if k.rank() == 4 {
                k.dims() == layer
            } else {
                k.dim(0).map_err(&c)? == out && k.elem_count() == base.elem_count()
            };
            if !fits {
                return Err(site.err(format!(
                    "LoKr Kronecker product is {:?} (w1 {:?} ⊗ w2 {:?}) but the layer {} is {:?}",
                    k.dims(),
                    p1.dims(),
                    p2.dims(),
                    site.weight,
                    layer
                )));
            }
            k
        }
    };
    if d.dim(0).map_err(&c)? != out || d.elem_count() != base.elem_count() {
        return Err(site.err(format!(
            "the {} changes a {:?} weight but the model's {} is {:?} — a LoRA made for another \
             architecture?",
            m.adapter.algo().name(),
            d.dims(),
            site.weight,
            base.dims()
        )));
    }
    d.reshape(base.shape()).map_err(&c)
}

/// DoRA on the running weight: `f ⊙ (W + D + ΔW) − W` with `f = m / ‖W + ΔW‖`, where W is the
/// base weight and D the delta of the adapters before this one in the stack (PEFT: the norm
/// ignores the other adapters, the rescale does not). The norm is per output row or per input
/// column (chosen by the magnitude's shape); f32 throughout; PEFT's formula (no epsilon; a
/// zero row is left unscaled instead of giving NaN).
fn dora(
    m: &Tensor,
    peft: bool,
    base: &Tensor,
    d: &Tensor,
    prev: Option<&Tensor>,
    site: &Site,
) -> Result<Tensor> {
    let c = site.c();
    let w = base.to_dtype(DType::F32).map_err(&c)?;
    let v = (&w + d).map_err(&c)?;
    let acc = match prev {
        Some(p) => (&v + p).map_err(&c)?,
        None => v.clone(),
    };
    let dims = w.dims().to_vec();
    let (out, inn) = (dims[0], dims.get(1).copied().unwrap_or(1));
    let rest: usize = dims[2..].iter().product();
    let md = m.dims();
    let n = m.elem_count();
    let on_out = peft || (n == out && md.first() == Some(&out));
    let on_in = !on_out && n == inn && md.len() >= 2 && md[0] == 1 && md[1] == inn;
    if !on_out && !on_in {
        return Err(site.err(format!(
            "the DoRA scale {md:?} fits neither the output axis ({out}) nor the input axis ({inn}) \
             of the layer {} {dims:?}",
            site.weight
        )));
    }
    if n != if on_out { out } else { inn } {
        return Err(site.err(format!(
            "the DoRA magnitude {md:?} does not fit the layer {} {dims:?}",
            site.weight
        )));
    }
    let m = m
        .to_dtype(DType::F32)
        .and_then(|m| m.flatten_all())
        .map_err(&c)?;
    let safe = |norm: Tensor| -> candle_core::Result<Tensor> {
        // ‖V‖ = 0 only where V is zero: dividing by 1 there keeps it zero, not NaN.
        let zero = norm.eq(0f32)?;
        zero.where_cond(&norm.ones_like()?, &norm)
    };
    let scaled = if on_out {
        let v2 = v.reshape((out, inn * rest)).map_err(&c)?;
        let norm = v2
            .sqr()
            .and_then(|s| s.sum_keepdim(1))
            .and_then(|s| s.sqrt())
            .and_then(safe)
            .map_err(&c)?;
        let factor = m.reshape((out, 1)).and_then(|m| m / norm).map_err(&c)?;
        acc.reshape((out, inn * rest))
            .and_then(|a| a.broadcast_mul(&factor))
            .map_err(&c)?
    } else {
        let v3 = v.reshape((out, inn, rest)).map_err(&c)?;
        let norm = v3
            .sqr()
            .and_then(|s| s.sum_keepdim(2))
            .and_then(|s| s.sum_keepdim(0))
            .and_then(|s| s.sqrt())
            .and_then(safe)
            .map_err(&c)?;
        let factor = m.reshape((1, inn, 1)).and_then(|m| m / norm).map_err(&c)?;
        acc.reshape((out, inn, rest))
            .and_then(|a| a.broadcast_mul(&factor))
            .map_err(&c)?
    };
    scaled.reshape(dims).and_then(|s| s - w).map_err(&c)
}

/// The stack's delta on one layer after module `m` at `strength`, given the delta `prev` of the
/// modules before it (in stack order): `prev + ΔW` for LoRA/LoHa/LoKr, the DoRA rescale of the
/// running weight for a module with a magnitude. f32, shaped as `base`. Strength 0 switches
/// the module off (no DoRA rescale either; PEFT would still rescale by `m / ‖W‖`).
pub(crate) fn accumulate(
    m: &LoraModule,
    strength: f64,
    base: &Tensor,
    prev: Option<Tensor>,
    site: &Site,
) -> Result<Tensor> {
    let c = site.c();
    let zeros = || Tensor::zeros(base.shape(), DType::F32, base.device()).map_err(&c);
    if strength == 0.0 {
        return prev.map_or_else(zeros, Ok);
    }
    let d = raw_delta(m, strength, base, site)?
        .to_device(base.device())
        .map_err(&c)?;
    let prev = prev
        .map(|p| p.to_device(base.device()))
        .transpose()
        .map_err(&c)?;
    let acc = match (&m.dora, prev) {
        (Some(mag), prev) => dora(mag, m.peft_magnitude, base, &d, prev.as_ref(), site)?,
        (None, Some(p)) => (p + d).map_err(&c)?,
        (None, None) => d,
    };
    // The delta must not poison the model.
    let bad = acc
        .sum_all()
        .and_then(|s| s.to_scalar::<f32>())
        .map(|s| !s.is_finite())
        .map_err(&c)?;
    if bad {
        return Err(site.err("the delta has NaN or infinite values (a broken file?)"));
    }
    Ok(acc)
}
