//! The convolution's work split (column panels × row blocks) and the im2col of one panel.

/// Shapes of one convolution (validated by `conv::check`).
#[derive(Debug, Clone, Copy)]
pub(super) struct Geometry {
    pub b: usize,
    pub c_in: usize,
    pub h: usize,
    pub w: usize,
    pub c_out: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: usize,
    pub pad: usize,
    pub dil: usize,
    pub ho: usize,
    pub wo: usize,
}

impl Geometry {
    pub fn hwo(&self) -> usize {
        self.ho * self.wo
    }

    /// A 1×1, stride-1, unpadded kernel: the input planes are the gemm's right-hand side.
    pub fn is_pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.stride == 1 && self.pad == 0
    }
}

/// One input of the concatenation: `[B, c, H, W]` data, channels `c0..c0+c` of the weight.
pub(super) struct Piece<'a> {
    pub data: &'a [f32],
    pub c: usize,
    pub c0: usize,
}

/// One task: output rows (channels) `m0..m0+mb`, columns `n0..n0+nb` of image `bi`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Task {
    pub bi: usize,
    pub m0: usize,
    pub mb: usize,
    pub n0: usize,
    pub nb: usize,
}

/// Panel width and row-block height.
#[derive(Debug, Clone, Copy)]
pub(super) struct Plan {
    b: usize,
    hwo: usize,
    c_out: usize,
    nb: usize,
    mb: usize,
}

/// Narrowest panel worth a gemm call (gemm's AVX-512 f32 microkernel is 48 columns wide after
/// its transpose; narrower panels re-read the weight for little work).
const MIN_COLS: usize = 48;
/// Smallest row block when `C_out` is split.
const MIN_ROWS: usize = 32;

impl Plan {
    /// Panels of about `panel_bytes` of im2col (or input, for 1×1 kernels); then, while there
    /// are fewer than two tasks per thread, narrower panels (not under [`MIN_COLS`]) and, if
    /// still short, `C_out` split into row blocks (not under [`MIN_ROWS`]).
    pub fn new(g: &Geometry, panel_bytes: usize, threads: usize) -> Plan {
        let hwo = g.hwo();
        let k_rows = if g.is_pointwise() {
            g.c_in
        } else {
            g.c_in * g.kh * g.kw
        };
        let want = 2 * threads.max(1);
        let fit = (panel_bytes / (4 * k_rows).max(1)).max(1);
        let mut panels = hwo.div_ceil(fit.max(MIN_COLS.min(hwo)));
        let max_panels = hwo.div_ceil(MIN_COLS).max(1);
        if g.b * panels < want {
            panels = want.div_ceil(g.b).min(max_panels).max(panels);
        }
        let nb = hwo.div_ceil(panels);
        let panels = hwo.div_ceil(nb);
        let mut mb = g.c_out;
        if g.b * panels < want {
            let blocks = want
                .div_ceil(g.b * panels)
                .min(g.c_out.div_ceil(MIN_ROWS))
                .max(1);
            mb = g.c_out.div_ceil(blocks);
        }
        Plan {
            b: g.b,
            hwo,
            c_out: g.c_out,
            nb,
            mb,
        }
    }

    /// Every task, image-major.
    pub fn tasks(&self) -> Vec<Task> {
        let mut v = Vec::new();
        for bi in 0..self.b {
            for m0 in (0..self.c_out).step_by(self.mb) {
                for n0 in (0..self.hwo).step_by(self.nb) {
                    v.push(Task {
                        bi,
                        m0,
                        mb: self.mb.min(self.c_out - m0),
                        n0,
                        nb: self.nb.min(self.hwo - n0),
                    });
                }
            }
        }
        v
    }
}

/// One output row's stretch inside a panel: output row `y`, columns `x0..x1`, at panel
/// column `j`.
struct Segment {
    y: usize,
    x0: usize,
    x1: usize,
    j: usize,
}

/// Writes the im2col of image `bi`, output columns `n0..n0+nb`, into `cols` `[C_in·kh·kw, nb]`
/// (rows ordered `(c, ky, kx)` over the concatenated inputs; zero outside the input).
pub(super) fn fill(
    cols: &mut [f32],
    g: &Geometry,
    pieces: &[Piece],
    bi: usize,
    n0: usize,
    nb: usize,
) {
    let mut segs = Vec::new();
    let mut n = n0;
    while n < n0 + nb {
        let (y, x0) = (n / g.wo, n % g.wo);
        let x1 = g.wo.min(x0 + (n0 + nb - n));
        segs.push(Segment {
            y,
            x0,
            x1,
            j: n - n0,
        });
        n += x1 - x0;
    }
    let (s, p, d) = (g.stride, g.pad, g.dil);
    // Output columns x whose input column x·s + kx·d − p lies in [0, w), per kx.
    let xr: Vec<(usize, usize)> = (0..g.kw)
        .map(|kx| {
            let off = kx * d;
            let lo = if off >= p { 0 } else { (p - off).div_ceil(s) };
            let hi = if g.w + p > off {
                ((g.w + p - off - 1) / s + 1).min(g.wo)
            } else {
                0
            };
            (lo, hi.max(lo))
        })
        .collect();
    let plane = g.h * g.w;
    for pc in pieces {
        for ci in 0..pc.c {
            let src = &pc.data[(bi * pc.c + ci) * plane..][..plane];
            for ky in 0..g.kh {
                for (kx, &(lo, hi)) in xr.iter().enumerate() {
                    let r = ((pc.c0 + ci) * g.kh + ky) * g.kw + kx;
                    let row = &mut cols[r * nb..(r + 1) * nb];
                    for sg in &segs {
                        let dst = &mut row[sg.j..sg.j + sg.x1 - sg.x0];
                        let iy = (sg.y * s + ky * d) as isize - p as isize;
                        let (a, b) = (lo.clamp(sg.x0, sg.x1), hi.clamp(sg.x0, sg.x1));
                        if iy < 0 || iy >= g.h as isize || a >= b {
                            dst.fill(0.0);
                            continue;
                        }
                        let line = &src[iy as usize * g.w..][..g.w];
                        dst[..a - sg.x0].fill(0.0);
                        dst[b - sg.x0..].fill(0.0);
                        let ix0 = a * s + kx * d - p;
                        let mid = &mut dst[a - sg.x0..b - sg.x0];
                        if s == 1 {
                            mid.copy_from_slice(&line[ix0..ix0 + (b - a)]);
                        } else {
                            for (j, v) in mid.iter_mut().enumerate() {
                                *v = line[ix0 + j * s];
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geo(b: usize, c_out: usize, ho: usize, wo: usize, k: usize) -> Geometry {
        Geometry {
            b,
            c_in: 320,
            h: ho,
            w: wo,
            c_out,
            kh: k,
            kw: k,
            stride: 1,
            pad: k / 2,
            dil: 1,
            ho,
            wo,
        }
    }

    /// The tasks tile the output exactly once, and there are enough of them for two threads.
    #[test]
    fn tasks_cover_output_once() {
        for (b, c_out, ho, wo, k) in [
            (1, 320, 64, 64, 3),
            (2, 1280, 8, 8, 3),
            (1, 1280, 8, 8, 3),
            (1, 4, 1, 1, 3),
            (3, 16, 7, 5, 1),
            (1, 64, 512, 512, 3),
        ] {
            let g = geo(b, c_out, ho, wo, k);
            let plan = Plan::new(&g, 384 << 10, 2);
            let mut seen = vec![0u8; b * c_out * ho * wo];
            let tasks = plan.tasks();
            for t in &tasks {
                for m in t.m0..t.m0 + t.mb {
                    for n in t.n0..t.n0 + t.nb {
                        seen[(t.bi * c_out + m) * ho * wo + n] += 1;
                    }
                }
            }
            assert!(seen.iter().all(|&s| s == 1), "{b} {c_out} {ho} {wo}");
            if b * c_out * ho * wo >= 4 * MIN_COLS * MIN_ROWS {
                assert!(tasks.len() >= 4, "{b} {c_out} {ho} {wo}: {}", tasks.len());
            }
        }
    }
}
