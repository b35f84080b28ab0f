//! Scalar numerics that reproduce the exact arithmetic of torch / numpy / scipy
//! where diffusers relies on them for schedules.

use candle_core::{bail, Result};

/// `torch.linspace(start, end, steps, dtype=torch.float32)` on a CPU build
/// with AVX-512/AVX2 kernels: each element is a fused multiply-add in `f32`,
/// counted from `start` for the first half and back from `end` for the rest.
pub fn torch_linspace_f32(start: f64, end: f64, steps: usize) -> Vec<f32> {
    if steps == 0 {
        return Vec::new();
    }
    let (s, e) = (start as f32, end as f32);
    if steps == 1 {
        return vec![s];
    }
    let step = (e - s) / (steps - 1) as f32;
    let half = steps / 2;
    (0..steps)
        .map(|i| {
            if i < half {
                step.mul_add(i as f32, s)
            } else {
                (-step).mul_add((steps - i - 1) as f32, e)
            }
        })
        .collect()
}

/// `numpy.linspace(start, stop, num)` in `f64` (endpoint included).
pub fn np_linspace(start: f64, stop: f64, num: usize) -> Vec<f64> {
    if num == 0 {
        return Vec::new();
    }
    if num == 1 {
        return vec![start];
    }
    let div = (num - 1) as f64;
    let delta = stop - start;
    let step = delta / div;
    let mut out: Vec<f64> = if step == 0.0 {
        (0..num).map(|i| (i as f64) / div * delta + start).collect()
    } else {
        (0..num).map(|i| (i as f64) * step + start).collect()
    };
    out[num - 1] = stop;
    out
}

/// `numpy.arange(start, stop, step)` for floating point arguments: numpy
/// fills `start + i * ((start + step) - start)`.
pub fn np_arange_f64(start: f64, stop: f64, step: f64) -> Result<Vec<f64>> {
    if step == 0.0 || !step.is_finite() {
        bail!("np_arange_f64: invalid step {step}");
    }
    let len = ((stop - start) / step).ceil();
    if len <= 0.0 {
        return Ok(Vec::new());
    }
    let len = len as usize;
    let delta = (start + step) - start;
    Ok((0..len)
        .map(|i| {
            if i == 0 {
                start
            } else {
                start + (i as f64) * delta
            }
        })
        .collect())
}

/// `numpy.round` (round half to even).
pub fn np_round(x: f64) -> f64 {
    x.round_ties_even()
}

/// `numpy.interp(x, arange(len(fp)), fp)` with `fp` given in `f32` (result `f64`).
pub fn np_interp_arange(x: f64, fp: &[f32]) -> f64 {
    let n = fp.len();
    if n == 0 {
        return f64::NAN;
    }
    let last = (n - 1) as f64;
    if x.is_nan() {
        return x;
    }
    if x < 0.0 {
        return fp[0] as f64;
    }
    if x >= last {
        return fp[n - 1] as f64;
    }
    let j = x.floor() as usize;
    let xj = j as f64;
    if xj == x {
        return fp[j] as f64;
    }
    let slope = (fp[j + 1] as f64 - fp[j] as f64) / ((j + 1) as f64 - xj);
    slope * (x - xj) + fp[j] as f64
}

/// diffusers' `_sigma_to_t`: piecewise-linear inversion of `log_sigmas`
/// (`f32`, as numpy holds them) at a `f64` sigma, result in `f64`.
pub fn sigma_to_t(sigma: f64, log_sigmas: &[f32]) -> Result<f64> {
    let n = log_sigmas.len();
    if n < 2 {
        bail!("sigma_to_t: need at least two log sigmas, got {n}");
    }
    let log_sigma = sigma.max(1e-10).ln();
    // cumsum(dists >= 0).argmax() clipped to n - 2.
    let (mut cum, mut best, mut best_idx) = (0usize, 0usize, 0usize);
    for (i, &ls) in log_sigmas.iter().enumerate() {
        if log_sigma - ls as f64 >= 0.0 {
            cum += 1;
        }
        if cum > best {
            best = cum;
            best_idx = i;
        }
    }
    let low_idx = best_idx.min(n - 2);
    let high_idx = low_idx + 1;
    let low = log_sigmas[low_idx];
    let high = log_sigmas[high_idx];
    let w = (low as f64 - log_sigma) / ((low - high) as f64);
    let w = w.clamp(0.0, 1.0);
    Ok((1.0 - w) * low_idx as f64 + w * high_idx as f64)
}

/// Karras et al. (2022) noise levels between `sigma_max` and `sigma_min`, `rho = 7`.
pub fn karras_sigmas(sigma_min: f64, sigma_max: f64, n: usize) -> Vec<f64> {
    let rho = 7.0f64;
    let min_inv = sigma_min.powf(1.0 / rho);
    let max_inv = sigma_max.powf(1.0 / rho);
    np_linspace(0.0, 1.0, n)
        .into_iter()
        .map(|r| (max_inv + r * (min_inv - max_inv)).powf(rho))
        .collect()
}

// 21-point Gauss–Kronrod rule (QUADPACK dqk21): Kronrod abscissae, Kronrod
// weights and the weights of the embedded 10-point Gauss rule.
#[allow(clippy::excessive_precision)]
const XGK: [f64; 11] = [
    0.995_657_163_025_808_080_735_527_280_689_003,
    0.973_906_528_517_171_720_077_964_012_084_452,
    0.930_157_491_355_708_226_001_207_180_059_508,
    0.865_063_366_688_984_510_732_096_688_423_493,
    0.780_817_726_586_416_897_063_717_578_345_042,
    0.679_409_568_299_024_406_234_327_365_114_874,
    0.562_757_134_668_604_683_339_000_099_272_694,
    0.433_395_394_129_247_190_799_265_943_165_784,
    0.294_392_862_701_460_198_131_126_603_103_866,
    0.148_874_338_981_631_210_884_826_001_129_720,
    0.0,
];
#[allow(clippy::excessive_precision)]
const WGK: [f64; 11] = [
    0.011_694_638_867_371_874_278_064_396_062_192,
    0.032_558_162_307_964_727_478_818_972_459_390,
    0.054_755_896_574_351_996_031_381_300_244_580,
    0.075_039_674_810_919_952_767_043_140_916_190,
    0.093_125_454_583_697_605_535_065_465_083_366,
    0.109_387_158_802_297_641_899_210_590_325_805,
    0.123_491_976_262_065_851_077_208_641_161_813,
    0.134_709_217_311_473_325_928_054_001_771_707,
    0.142_775_938_577_060_080_797_094_273_138_717,
    0.147_739_104_901_338_491_374_841_515_972_068,
    0.149_445_554_002_916_905_664_936_468_389_821,
];

/// One QUADPACK `dqk21` panel: `(result, abserr, resabs, resasc)`.
pub fn gauss_kronrod21(f: &impl Fn(f64) -> f64, a: f64, b: f64) -> (f64, f64, f64, f64) {
    #[allow(clippy::excessive_precision)]
    const WG: [f64; 5] = [
        0.066_671_344_308_688_137_593_568_809_893_332,
        0.149_451_349_150_580_593_145_776_339_657_697,
        0.219_086_362_515_982_043_995_534_934_228_163,
        0.269_266_719_309_996_355_091_226_921_569_469,
        0.295_524_224_714_752_870_173_892_994_651_338,
    ];
    let epmach = f64::EPSILON;
    let uflow = f64::MIN_POSITIVE;
    let centr = 0.5 * (a + b);
    let hlgth = 0.5 * (b - a);
    let dhlgth = hlgth.abs();
    let fc = f(centr);
    let mut resg = 0.0;
    let mut resk = WGK[10] * fc;
    let mut resabs = resk.abs();
    let mut fv1 = [0.0f64; 10];
    let mut fv2 = [0.0f64; 10];
    // Gauss nodes (odd positions in 0-based XGK), then Kronrod-only nodes.
    for (j, wg) in WG.iter().enumerate() {
        let jtw = 2 * j + 1;
        let absc = hlgth * XGK[jtw];
        let (f1, f2) = (f(centr - absc), f(centr + absc));
        fv1[jtw] = f1;
        fv2[jtw] = f2;
        let fsum = f1 + f2;
        resg += wg * fsum;
        resk += WGK[jtw] * fsum;
        resabs += WGK[jtw] * (f1.abs() + f2.abs());
    }
    for j in 0..5 {
        let jtwm1 = 2 * j;
        let absc = hlgth * XGK[jtwm1];
        let (f1, f2) = (f(centr - absc), f(centr + absc));
        fv1[jtwm1] = f1;
        fv2[jtwm1] = f2;
        let fsum = f1 + f2;
        resk += WGK[jtwm1] * fsum;
        resabs += WGK[jtwm1] * (f1.abs() + f2.abs());
    }
    let reskh = resk * 0.5;
    let mut resasc = WGK[10] * (fc - reskh).abs();
    for j in 0..10 {
        resasc += WGK[j] * ((fv1[j] - reskh).abs() + (fv2[j] - reskh).abs());
    }
    let result = resk * hlgth;
    resabs *= dhlgth;
    resasc *= dhlgth;
    let mut abserr = ((resk - resg) * hlgth).abs();
    if resasc != 0.0 && abserr != 0.0 {
        abserr = resasc * (200.0 * abserr / resasc).powf(1.5).min(1.0);
    }
    if resabs > uflow / (50.0 * epmach) {
        abserr = abserr.max(epmach * 50.0 * resabs);
    }
    (result, abserr, resabs, resasc)
}

/// `scipy.integrate.quad(f, a, b, epsrel=epsrel)` (QUADPACK `dqagse`,
/// `epsabs = 1.49e-8`, `limit = 50`): adaptive bisection of the panel with the
/// largest error estimate until the summed error meets the bound. The Wynn
/// epsilon extrapolation of `dqagse` is not reproduced; it only engages for
/// integrands that still fail after several bisections, which the smooth LMS
/// integrands never do. Errors if the tolerance cannot be met.
pub fn quad(f: impl Fn(f64) -> f64, a: f64, b: f64, epsrel: f64) -> Result<f64> {
    let epsabs: f64 = 1.49e-8;
    let epmach = f64::EPSILON;
    let limit = 50;
    let (result, abserr, defabs, resasc) = gauss_kronrod21(&f, a, b);
    let errbnd = epsabs.max(epsrel * result.abs());
    if abserr <= 100.0 * epmach * defabs && abserr > errbnd {
        return Ok(result); // QUADPACK ier = 2 (roundoff): returns the first estimate.
    }
    // An error estimate saturated at `resasc` is not trusted (dqagse).
    if (abserr <= errbnd && abserr != resasc) || abserr == 0.0 {
        return Ok(result);
    }
    // Panels: (a, b, area, error).
    let mut panels: Vec<(f64, f64, f64, f64)> = vec![(a, b, result, abserr)];
    let mut area = result;
    let mut errsum = abserr;
    while panels.len() < limit {
        let (mut maxi, mut maxe) = (0usize, f64::NEG_INFINITY);
        for (k, p) in panels.iter().enumerate() {
            if p.3 > maxe {
                maxe = p.3;
                maxi = k;
            }
        }
        let (pa, pb, parea, perr) = panels[maxi];
        let mid = 0.5 * (pa + pb);
        let (area1, error1, _, _) = gauss_kronrod21(&f, pa, mid);
        let (area2, error2, _, _) = gauss_kronrod21(&f, mid, pb);
        errsum = errsum + (error1 + error2) - perr;
        area = area + (area1 + area2) - parea;
        panels[maxi] = (pa, mid, area1, error1);
        panels.push((mid, pb, area2, error2));
        let errbnd = epsabs.max(epsrel * area.abs());
        if errsum <= errbnd {
            return Ok(panels.iter().map(|p| p.2).sum());
        }
    }
    bail!("quad: no convergence within {limit} subintervals on [{a}, {b}]")
}

/// `torch.linalg.solve(A, b)` for a small dense `f32` system (row-major `a`),
/// by LU with partial pivoting as LAPACK `sgesv` does.
pub fn solve_f32(a: &[f32], b: &[f32]) -> Result<Vec<f32>> {
    let n = b.len();
    if a.len() != n * n {
        bail!(
            "solve_f32: matrix has {} entries, expected {}",
            a.len(),
            n * n
        );
    }
    let mut m = a.to_vec();
    let mut x = b.to_vec();
    for k in 0..n {
        let mut p = k;
        for r in k + 1..n {
            if m[r * n + k].abs() > m[p * n + k].abs() {
                p = r;
            }
        }
        if m[p * n + k] == 0.0 {
            bail!("solve_f32: singular matrix");
        }
        if p != k {
            for c in 0..n {
                m.swap(k * n + c, p * n + c);
            }
            x.swap(k, p);
        }
        let inv = 1.0 / m[k * n + k];
        for r in k + 1..n {
            let l = m[r * n + k] * inv;
            m[r * n + k] = l;
            for c in k + 1..n {
                m[r * n + c] -= l * m[k * n + c];
            }
            x[r] -= l * x[k];
        }
    }
    for k in (0..n).rev() {
        let mut s = x[k];
        for c in k + 1..n {
            s -= m[k * n + c] * x[c];
        }
        x[k] = s / m[k * n + k];
    }
    Ok(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gk21_is_exact_for_polynomials() {
        // Degree up to 31 is integrated exactly by the Kronrod rule.
        let (v, _, _, _) = gauss_kronrod21(&|x: f64| x.powi(20) - 3.0 * x.powi(3), -0.3, 1.7);
        let exact = (1.7f64.powi(21) - (-0.3f64).powi(21)) / 21.0
            - 0.75 * (1.7f64.powi(4) - 0.3f64.powi(4));
        assert!((v - exact).abs() < 1e-12 * exact.abs(), "{v} vs {exact}");
        // The embedded Gauss rule is exact to degree 19.
        let q = quad(|x| x.powi(3), 0.0, 2.0, 1e-4).unwrap_or(0.0);
        assert!((q - 4.0).abs() < 1e-12, "{q}");
    }

    #[test]
    fn solve_small_system() {
        let x = solve_f32(&[1.0, 1.0, 0.5, 1.0], &[3.0, 2.0]).unwrap_or_default();
        assert!(
            (x[0] - 2.0).abs() < 1e-6 && (x[1] - 1.0).abs() < 1e-6,
            "{x:?}"
        );
    }

    #[test]
    fn arange_matches_numpy_lengths() {
        let a = np_arange_f64(1000.0, 0.0, -1000.0 / 3.0).unwrap_or_default();
        assert_eq!(a.len(), 3);
    }
}
