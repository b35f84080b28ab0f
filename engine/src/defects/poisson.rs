//! Poisson image editing (seamless cloning, Pérez, Gangnet & Blake, SIGGRAPH 2003).
//!
//! Inside the region `Ω` (mask `>= 0.5`) the result `f` solves the discrete Poisson equation
//! with the source's gradients as guidance and the target as Dirichlet boundary:
//!
//! `|N_p| f_p - Σ_{q∈N_p∩Ω} f_q = Σ_{q∈N_p∖Ω} t_q + Σ_{q∈N_p} (g_p - g_q)`
//!
//! where `N_p` are the 4-neighbours of `p` inside the image (missing neighbours at the image
//! border give a zero-flux, Neumann condition), `t` is the target and `g` the source placed at
//! `offset`. The symmetric positive definite system is solved per RGB channel by conjugate
//! gradients (the three channels share the loop) until the max-abs residual is below
//! [`POISSON_TOL`]. Alpha is the target's.

use crate::image::{Image, Mask};

/// CG stops when every equation's residual is below this (in `0..1` sample units).
pub const POISSON_TOL: f64 = 1e-5;
/// Iteration cap of the CG solver (reached only by huge regions; the result is then returned
/// with a larger residual, which [`poisson_residual`] reports).
pub const POISSON_MAX_ITER: usize = 5000;

/// The linear system of one blend.
struct System {
    /// Pixel index of each unknown.
    pix: Vec<usize>,
    /// Unknown index of each of the (up to) 4 neighbours inside the region, or -1.
    nbr: Vec<[i32; 4]>,
    /// Number of in-image neighbours (the diagonal).
    diag: Vec<f64>,
    /// Right-hand side per unknown and channel.
    rhs: Vec<[f64; 3]>,
}

fn check(target: &Image, source: &Image, region: &Mask) -> Result<(), String> {
    let n = target.width as usize * target.height as usize;
    if n == 0 || target.data.len() != n * 4 {
        return Err("target image is empty or malformed".to_string());
    }
    if source.width == 0
        || source.height == 0
        || source.data.len() != source.width as usize * source.height as usize * 4
    {
        return Err("source image is empty or malformed".to_string());
    }
    if region.width != target.width || region.height != target.height || region.data.len() != n {
        return Err(format!(
            "region is {}x{} but the target is {}x{}",
            region.width, region.height, target.width, target.height
        ));
    }
    Ok(())
}

/// Source sample for target pixel `(x, y)`: source pixel `(x - ox, y - oy)`, clamped.
fn guide(source: &Image, x: i64, y: i64, offset: (i64, i64)) -> [f32; 4] {
    let sx = (x - offset.0).clamp(0, source.width as i64 - 1) as u32;
    let sy = (y - offset.1).clamp(0, source.height as i64 - 1) as u32;
    source.pixel(sx, sy)
}

fn build(target: &Image, source: &Image, region: &Mask, offset: (i64, i64)) -> System {
    let (w, h) = (target.width as i64, target.height as i64);
    let n = (w * h) as usize;
    let mut id = vec![-1i32; n];
    let mut pix = Vec::new();
    for (i, &v) in region.data.iter().enumerate() {
        if v >= 0.5 {
            id[i] = pix.len() as i32;
            pix.push(i);
        }
    }
    let mut nbr = Vec::with_capacity(pix.len());
    let mut diag = Vec::with_capacity(pix.len());
    let mut rhs = Vec::with_capacity(pix.len());
    for &i in &pix {
        let (x, y) = (i as i64 % w, i as i64 / w);
        let gp = guide(source, x, y, offset);
        let mut nb = [-1i32; 4];
        let mut d = 0.0;
        let mut b = [0.0f64; 3];
        for (k, (dx, dy)) in [(-1i64, 0i64), (1, 0), (0, -1), (0, 1)]
            .into_iter()
            .enumerate()
        {
            let (qx, qy) = (x + dx, y + dy);
            if qx < 0 || qy < 0 || qx >= w || qy >= h {
                continue;
            }
            d += 1.0;
            let q = (qy * w + qx) as usize;
            let gq = guide(source, qx, qy, offset);
            for c in 0..3 {
                b[c] += f64::from(gp[c]) - f64::from(gq[c]);
            }
            if id[q] >= 0 {
                nb[k] = id[q];
            } else {
                for (c, bc) in b.iter_mut().enumerate() {
                    *bc += f64::from(target.data[q * 4 + c]);
                }
            }
        }
        nbr.push(nb);
        diag.push(d);
        rhs.push(b);
    }
    System {
        pix,
        nbr,
        diag,
        rhs,
    }
}

/// `y = A x` for all three channels.
fn apply(s: &System, x: &[[f64; 3]], y: &mut [[f64; 3]]) {
    for (k, yk) in y.iter_mut().enumerate() {
        let mut v = [
            s.diag[k] * x[k][0],
            s.diag[k] * x[k][1],
            s.diag[k] * x[k][2],
        ];
        for &j in &s.nbr[k] {
            if j >= 0 {
                let xj = x[j as usize];
                v[0] -= xj[0];
                v[1] -= xj[1];
                v[2] -= xj[2];
            }
        }
        *yk = v;
    }
}

fn max_abs(r: &[[f64; 3]]) -> f64 {
    r.iter()
        .flat_map(|v| v.iter())
        .fold(0.0f64, |m, &v| m.max(v.abs()))
}

/// Seamlessly clones `source` (its top-left at `offset` in target pixels) into `target` inside
/// `region` (a mask of the target's size, binarised at 0.5). Returns the blended image (RGB
/// clamped to `0..1`, alpha of the target). Errors: malformed inputs, a region of another
/// size, an empty region, or a region covering the whole image (no boundary values).
/// Source pixels outside the source are clamped to its edge.
pub fn poisson_blend(
    target: &Image,
    source: &Image,
    region: &Mask,
    offset: (i64, i64),
) -> Result<Image, String> {
    check(target, source, region)?;
    let s = build(target, source, region, offset);
    let m = s.pix.len();
    if m == 0 {
        return Err("region is empty (no pixel >= 0.5)".to_string());
    }
    if m == region.data.len() {
        return Err("region covers the whole image: no boundary to blend against".to_string());
    }
    let w = target.width as i64;
    // Initial guess: the source shifted to the target's mean over the region.
    let mut shift = [0.0f64; 3];
    for &i in &s.pix {
        let g = guide(source, i as i64 % w, i as i64 / w, offset);
        for (c, sc) in shift.iter_mut().enumerate() {
            *sc += f64::from(target.data[i * 4 + c]) - f64::from(g[c]);
        }
    }
    let shift = shift.map(|v| v / m as f64);
    let mut x: Vec<[f64; 3]> = s
        .pix
        .iter()
        .map(|&i| {
            let g = guide(source, i as i64 % w, i as i64 / w, offset);
            [0, 1, 2].map(|c| f64::from(g[c]) + shift[c])
        })
        .collect();
    let mut ap = vec![[0.0f64; 3]; m];
    apply(&s, &x, &mut ap);
    let mut r: Vec<[f64; 3]> = (0..m)
        .map(|k| [0, 1, 2].map(|c| s.rhs[k][c] - ap[k][c]))
        .collect();
    let mut p = r.clone();
    let dot = |a: &[[f64; 3]], b: &[[f64; 3]]| {
        let mut d = [0.0f64; 3];
        for (u, v) in a.iter().zip(b) {
            for c in 0..3 {
                d[c] += u[c] * v[c];
            }
        }
        d
    };
    let mut rs = dot(&r, &r);
    for _ in 0..POISSON_MAX_ITER {
        if max_abs(&r) < POISSON_TOL {
            break;
        }
        apply(&s, &p, &mut ap);
        let pap = dot(&p, &ap);
        let alpha = [0, 1, 2].map(|c| if pap[c] > 0.0 { rs[c] / pap[c] } else { 0.0 });
        for k in 0..m {
            for c in 0..3 {
                x[k][c] += alpha[c] * p[k][c];
                r[k][c] -= alpha[c] * ap[k][c];
            }
        }
        let rs_new = dot(&r, &r);
        let beta = [0, 1, 2].map(|c| if rs[c] > 0.0 { rs_new[c] / rs[c] } else { 0.0 });
        for k in 0..m {
            for c in 0..3 {
                p[k][c] = r[k][c] + beta[c] * p[k][c];
            }
        }
        rs = rs_new;
    }
    let mut out = target.clone();
    for (k, &i) in s.pix.iter().enumerate() {
        for c in 0..3 {
            out.data[i * 4 + c] = (x[k][c] as f32).clamp(0.0, 1.0);
        }
    }
    Ok(out)
}

/// Max-abs residual of the discrete Poisson equation (see the module docs) over the region's
/// pixels and RGB channels, for a candidate `result`. Pixels the blend clamped to `0..1`
/// contribute their clamping error too. Returns `f32::INFINITY` for malformed inputs.
pub fn poisson_residual(
    result: &Image,
    target: &Image,
    source: &Image,
    region: &Mask,
    offset: (i64, i64),
) -> f32 {
    if check(target, source, region).is_err()
        || result.width != target.width
        || result.height != target.height
        || result.data.len() != target.data.len()
    {
        return f32::INFINITY;
    }
    let s = build(target, source, region, offset);
    let x: Vec<[f64; 3]> = s
        .pix
        .iter()
        .map(|&i| [0, 1, 2].map(|c| f64::from(result.data[i * 4 + c])))
        .collect();
    let mut ax = vec![[0.0f64; 3]; x.len()];
    apply(&s, &x, &mut ax);
    let r: Vec<[f64; 3]> = (0..x.len())
        .map(|k| [0, 1, 2].map(|c| s.rhs[k][c] - ax[k][c]))
        .collect();
    max_abs(&r) as f32
}
