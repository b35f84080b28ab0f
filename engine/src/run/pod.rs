//! Probability of detection (docs/ARCHITECTURE.md §15, *PoD*): a `run --sweep` over a
//! severity parameter with a Classify node gives, per swept value, the detection rate (the
//! fraction of kept items whose score reaches Classify's threshold), the number of items and a
//! 95 % Clopper–Pearson (exact binomial) confidence interval, as MIL-HDBK-1823A's hit/miss
//! analysis uses.

use serde::Serialize;

use super::{ItemReport, Sweep};
use crate::error::{EngineError, Result};

/// One point of a PoD curve.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PodPoint {
    /// The swept value, as written on the command line.
    pub value: String,
    /// Kept items at this value with a Classify decision.
    pub n: u64,
    /// Of those, the items detected.
    pub detected: u64,
    /// `detected / n` (0 when `n` is 0).
    pub rate: f64,
    /// The 95 % Clopper–Pearson interval of the rate.
    pub ci_low: f64,
    pub ci_high: f64,
}

/// A PoD curve over one swept parameter.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PodReport {
    /// `NODE.PARAM` swept.
    pub parameter: String,
    /// The Classify node whose decisions are counted.
    pub classifier: String,
    pub confidence: f64,
    pub interval: &'static str,
    pub points: Vec<PodPoint>,
}

/// The PoD curve of the first sweep, counting the `detected` notes of the Classify node
/// `classifier` (the only one, or the first by id when there are several) in `items`. Items
/// rejected by a filter do not count. Errors when nothing was classified.
pub fn pod_report(sweeps: &[Sweep], items: &[ItemReport]) -> Result<PodReport> {
    let sweep = sweeps
        .first()
        .ok_or_else(|| EngineError::Plan("a PoD report needs a --sweep".into()))?;
    let classifier = items
        .iter()
        .flat_map(|r| r.notes.iter())
        .filter(|(_, n)| n.contains_key("detected"))
        .map(|(id, _)| id.clone())
        .min()
        .ok_or_else(|| {
            EngineError::Plan(
                "a PoD report needs a Classify node that runs in every item (none recorded a \
                 decision)"
                    .into(),
            )
        })?;
    let points = sweep
        .values
        .iter()
        .map(|v| {
            let (mut n, mut hits) = (0u64, 0u64);
            for r in items.iter().filter(|r| r.kept) {
                let at_value = r
                    .overrides
                    .iter()
                    .any(|o| o.node == sweep.node && o.param == sweep.param && o.value == *v);
                let decision = r
                    .notes
                    .get(&classifier)
                    .and_then(|n| n.get("detected"))
                    .and_then(|d| d.as_bool());
                if let (true, Some(d)) = (at_value, decision) {
                    n += 1;
                    hits += u64::from(d);
                }
            }
            let (ci_low, ci_high) = clopper_pearson(hits, n, 0.05);
            PodPoint {
                value: v.to_json(),
                n,
                detected: hits,
                rate: if n == 0 { 0.0 } else { hits as f64 / n as f64 },
                ci_low,
                ci_high,
            }
        })
        .collect();
    Ok(PodReport {
        parameter: format!("{}.{}", sweep.node, sweep.param),
        classifier,
        confidence: 0.95,
        interval: "clopper-pearson",
        points,
    })
}

/// The two-sided `1 − alpha` Clopper–Pearson interval for `k` successes in `n` trials:
/// `[B(alpha/2; k, n−k+1), B(1−alpha/2; k+1, n−k)]` with `B` the beta quantile; `(0, 1)` for
/// `n = 0`.
pub fn clopper_pearson(k: u64, n: u64, alpha: f64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let (k, n) = (k as f64, n as f64);
    let low = if k == 0.0 {
        0.0
    } else {
        beta_quantile(alpha / 2.0, k, n - k + 1.0)
    };
    let high = if k == n {
        1.0
    } else {
        beta_quantile(1.0 - alpha / 2.0, k + 1.0, n - k)
    };
    (low, high)
}

/// The `p` quantile of Beta(a, b), by bisection on the regularised incomplete beta function
/// (to 1e-12).
fn beta_quantile(p: f64, a: f64, b: f64) -> f64 {
    let (mut lo, mut hi) = (0.0f64, 1.0f64);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if reg_inc_beta(mid, a, b) < p {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo < 1e-12 {
            break;
        }
    }
    0.5 * (lo + hi)
}

/// The regularised incomplete beta function I_x(a, b) (Numerical Recipes' continued fraction,
/// Lentz's method).
fn reg_inc_beta(x: f64, a: f64, b: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    let front = ln_front.exp();
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_cf(x, a, b) / a
    } else {
        1.0 - front * beta_cf(1.0 - x, b, a) / b
    }
}

fn beta_cf(x: f64, a: f64, b: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..1000 {
        let m = f64::from(m);
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        h *= d * c;
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        let del = d * c;
        h *= del;
        if (del - 1.0).abs() < 1e-15 {
            break;
        }
    }
    h
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7, n = 9; relative error below 1e-13).
fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = G[0];
    let t = x + 7.5;
    for (i, g) in G.iter().enumerate().skip(1) {
        a += g / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clopper_pearson_matches_scipy() {
        // scipy.stats.beta.ppf(0.025, 3, 8) and beta.ppf(0.975, 4, 7): k = 3 of n = 10.
        let (lo, hi) = clopper_pearson(3, 10, 0.05);
        assert!((lo - 0.066_739_511_177_734_47).abs() < 1e-9, "{lo}");
        assert!((hi - 0.652_452_850_059_997_3).abs() < 1e-9, "{hi}");
        // k = 0: (0, 1 − 0.025^(1/n)); k = n: (0.025^(1/n), 1).
        let (lo, hi) = clopper_pearson(0, 10, 0.05);
        assert_eq!(lo, 0.0);
        assert!((hi - (1.0 - 0.025f64.powf(0.1))).abs() < 1e-9, "{hi}");
        let (lo, hi) = clopper_pearson(10, 10, 0.05);
        assert!((lo - 0.025f64.powf(0.1)).abs() < 1e-9, "{lo}");
        assert_eq!(hi, 1.0);
    }
}
