//! The Barnes–Hut space-partitioning tree of t-SNE's repulsive forces: a quadtree (2D) or an
//! octree (3D), built by recursive partition of the point order, with scikit-learn's
//! summary rule (`squared_max_width / dist² < θ²`, leaves always summarised, no
//! self-interaction).

/// Deeper than this, coincident points share a leaf.
const MAX_DEPTH: usize = 40;

struct Node<const D: usize> {
    com: [f64; D],
    count: f64,
    width2: f64,
    /// Children as a range of `Tree::kids`; empty for a leaf.
    kids: (u32, u32),
    /// The points of the subtree as a range of `Tree::order`.
    points: (u32, u32),
}

pub(crate) struct Tree<const D: usize> {
    nodes: Vec<Node<D>>,
    kids: Vec<u32>,
    order: Vec<u32>,
    /// Position of each point in `order`.
    place: Vec<u32>,
}

impl<const D: usize> Tree<D> {
    pub fn build(y: &[[f64; D]]) -> Self {
        let n = y.len();
        let mut lo = [f64::INFINITY; D];
        let mut hi = [f64::NEG_INFINITY; D];
        for p in y {
            for a in 0..D {
                lo[a] = lo[a].min(p[a]);
                hi[a] = hi[a].max(p[a]);
            }
        }
        let mut half = 0.0f64;
        let mut centre = [0.0; D];
        for a in 0..D {
            centre[a] = 0.5 * (lo[a] + hi[a]);
            half = half.max(0.5 * (hi[a] - lo[a]));
        }
        // A little margin so points on the upper bound fall inside.
        half = half * (1.0 + 1e-6) + 1e-12;
        let mut tree = Tree {
            nodes: Vec::with_capacity(2 * n),
            kids: Vec::with_capacity(2 * n),
            order: (0..n as u32).collect(),
            place: vec![0; n],
        };
        let mut scratch = vec![0u32; n];
        if n > 0 {
            tree.split(y, 0, n, centre, half, 0, &mut scratch);
        }
        for (pos, &p) in tree.order.iter().enumerate() {
            tree.place[p as usize] = pos as u32;
        }
        tree
    }

    #[allow(clippy::too_many_arguments)]
    fn split(
        &mut self,
        y: &[[f64; D]],
        start: usize,
        end: usize,
        centre: [f64; D],
        half: f64,
        depth: usize,
        scratch: &mut [u32],
    ) -> u32 {
        let id = self.nodes.len() as u32;
        let width = 2.0 * half;
        self.nodes.push(Node {
            com: [0.0; D],
            count: (end - start) as f64,
            width2: width * width,
            kids: (0, 0),
            points: (start as u32, end as u32),
        });
        if end - start == 1 || depth >= MAX_DEPTH {
            let mut com = [0.0; D];
            for &p in &self.order[start..end] {
                for a in 0..D {
                    com[a] += y[p as usize][a];
                }
            }
            for c in &mut com {
                *c /= (end - start) as f64;
            }
            self.nodes[id as usize].com = com;
            return id;
        }
        // Counting sort of the points by child cell.
        let cells = 1usize << D;
        let code = |p: u32| -> usize {
            let mut c = 0;
            for a in 0..D {
                if y[p as usize][a] >= centre[a] {
                    c |= 1 << a;
                }
            }
            c
        };
        let mut counts = [0usize; 8];
        for &p in &self.order[start..end] {
            counts[code(p)] += 1;
        }
        let mut offs = [0usize; 9];
        for c in 0..cells {
            offs[c + 1] = offs[c] + counts[c];
        }
        let mut fill = offs;
        for i in start..end {
            let p = self.order[i];
            let c = code(p);
            scratch[fill[c]] = p;
            fill[c] += 1;
        }
        self.order[start..end].copy_from_slice(&scratch[..end - start]);
        let mut children = Vec::with_capacity(cells);
        for c in 0..cells {
            if counts[c] == 0 {
                continue;
            }
            let mut cc = centre;
            for (a, v) in cc.iter_mut().enumerate() {
                *v += if c & (1 << a) != 0 {
                    0.5 * half
                } else {
                    -0.5 * half
                };
            }
            let s = start + offs[c];
            let child = self.split(y, s, s + counts[c], cc, 0.5 * half, depth + 1, scratch);
            children.push(child);
        }
        let mut com = [0.0; D];
        for &ch in &children {
            let node = &self.nodes[ch as usize];
            for (c, v) in com.iter_mut().zip(&node.com) {
                *c += v * node.count;
            }
        }
        for c in &mut com {
            *c /= (end - start) as f64;
        }
        let k0 = self.kids.len() as u32;
        self.kids.extend_from_slice(&children);
        let node = &mut self.nodes[id as usize];
        node.com = com;
        node.kids = (k0, self.kids.len() as u32);
        id
    }

    /// The repulsive force on point `i` (at `yi`), not yet divided by Z, and its share of Z:
    /// `Σ size·q²·(yi − com)` and `Σ size·q` over the summarised cells, with
    /// `q = (dof / (dof + dist²))^((dof + 1) / 2)` as scikit-learn computes it.
    pub fn repulsion(&self, i: usize, yi: &[f64; D], theta2: f64, dof: f64) -> ([f64; D], f64) {
        let mut force = [0.0; D];
        let mut z = 0.0;
        let exponent = (dof + 1.0) / 2.0;
        let place = self.place[i];
        let mut stack: Vec<u32> = Vec::with_capacity(64);
        if !self.nodes.is_empty() {
            stack.push(0);
        }
        while let Some(id) = stack.pop() {
            let node = &self.nodes[id as usize];
            let leaf = node.kids.0 == node.kids.1;
            let mut delta = [0.0; D];
            let mut d2 = 0.0;
            for a in 0..D {
                delta[a] = yi[a] - node.com[a];
                d2 += delta[a] * delta[a];
            }
            if leaf || node.width2 < theta2 * d2 {
                let mut size = node.count;
                if leaf && node.points.0 <= place && place < node.points.1 {
                    size -= 1.0; // no self-interaction
                    if size <= 0.0 {
                        continue;
                    }
                }
                let mut q = dof / (dof + d2);
                if dof != 1.0 {
                    q = q.powf(exponent);
                }
                z += size * q;
                let mult = size * q * q;
                for a in 0..D {
                    force[a] += mult * delta[a];
                }
            } else {
                for k in node.kids.0..node.kids.1 {
                    stack.push(self.kids[k as usize]);
                }
            }
        }
        (force, z)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn theta_zero_equals_the_exact_sum() {
        let y: Vec<[f64; 2]> = (0..50)
            .map(|i| {
                [
                    ((i * 13 % 17) as f64).sin() * 3.0,
                    ((i * 7 % 23) as f64).cos(),
                ]
            })
            .collect();
        let tree = Tree::<2>::build(&y);
        for i in [0, 17, 49] {
            let (f, z) = tree.repulsion(i, &y[i], 0.0, 1.0);
            let (mut ef, mut ez) = ([0.0; 2], 0.0);
            for j in 0..y.len() {
                if j == i {
                    continue;
                }
                let d = [y[i][0] - y[j][0], y[i][1] - y[j][1]];
                let q = 1.0 / (1.0 + d[0] * d[0] + d[1] * d[1]);
                ez += q;
                ef[0] += q * q * d[0];
                ef[1] += q * q * d[1];
            }
            assert!((z - ez).abs() < 1e-9 && (f[0] - ef[0]).abs() < 1e-9);
            assert!((f[1] - ef[1]).abs() < 1e-9);
            // θ = 0.5 stays close.
            let (f5, z5) = tree.repulsion(i, &y[i], 0.25, 1.0);
            assert!((z5 - ez).abs() < 0.05 * ez, "{z5} vs {ez}");
            assert!((f5[0] - ef[0]).abs() < 0.1 * (ef[0].abs() + ef[1].abs()) + 1e-3);
        }
    }
}
