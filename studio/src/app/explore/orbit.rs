//! The 3D map: an orbit camera (drag to rotate, wheel to zoom) with a perspective projection,
//! and the far-to-near drawing order.

use egui::{Pos2, Rect};

/// The orbit camera: yaw about the vertical axis, then pitch; `zoom` 1 fits the points.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Orbit {
    pub yaw: f32,
    pub pitch: f32,
    pub zoom: f32,
}

impl Default for Orbit {
    fn default() -> Self {
        Orbit {
            yaw: 0.6,
            pitch: 0.35,
            zoom: 1.0,
        }
    }
}

/// The eye's distance from the centre, in units of the normalised point cloud's half-width.
const EYE: f32 = 4.0;

/// The point cloud, centred and scaled to fit the cube from -1 to 1.
#[derive(Clone, Debug, Default)]
pub struct Cloud {
    pub points: Vec<[f32; 3]>,
}

impl Cloud {
    /// Centres and scales `xyz` (non-finite points stay non-finite and are never drawn).
    pub fn new(xyz: &[[f32; 3]]) -> Cloud {
        let mut lo = [f32::INFINITY; 3];
        let mut hi = [f32::NEG_INFINITY; 3];
        for p in xyz.iter().filter(|p| p.iter().all(|v| v.is_finite())) {
            for k in 0..3 {
                lo[k] = lo[k].min(p[k]);
                hi[k] = hi[k].max(p[k]);
            }
        }
        if lo[0] > hi[0] {
            return Cloud {
                points: xyz.to_vec(),
            };
        }
        let c = [0, 1, 2].map(|k| (lo[k] + hi[k]) * 0.5);
        let r = (0..3)
            .map(|k| (hi[k] - lo[k]) * 0.5)
            .fold(1e-6f32, f32::max);
        Cloud {
            points: xyz
                .iter()
                .map(|p| [0, 1, 2].map(|k| (p[k] - c[k]) / r))
                .collect(),
        }
    }
}

impl Orbit {
    /// Rotates by a screen-space drag (points).
    pub fn rotate(&mut self, dx: f32, dy: f32) {
        self.yaw += dx * 0.01;
        self.pitch = (self.pitch + dy * 0.01).clamp(-1.55, 1.55);
    }

    /// The rotation, as the sines and cosines of yaw and pitch.
    #[inline]
    fn rotation(&self) -> [f32; 4] {
        let (sy, cy) = self.yaw.sin_cos();
        let (sp, cp) = self.pitch.sin_cos();
        [sy, cy, sp, cp]
    }

    /// The point in camera space (x right, y up, z towards the eye).
    #[inline]
    fn view(r: [f32; 4], p: [f32; 3]) -> [f32; 3] {
        let [sy, cy, sp, cp] = r;
        // The map's third coordinate points up: its first two lie on the floor.
        let (x, y, z) = (p[0], p[2], p[1]);
        let x1 = cy * x + sy * z;
        let z1 = -sy * x + cy * z;
        let y2 = cp * y - sp * z1;
        let z2 = sp * y + cp * z1;
        [x1, y2, z2]
    }

    /// Screen position and depth (larger = nearer) of a normalised point.
    #[inline]
    pub fn project(&self, rect: Rect, p: [f32; 3]) -> (Pos2, f32) {
        self.projector(rect)(p)
    }

    /// [`Orbit::project`] with the rotation worked out once.
    fn projector(&self, rect: Rect) -> impl Fn([f32; 3]) -> (Pos2, f32) {
        let r = self.rotation();
        // At zoom 1 the cube's bounding sphere (radius √3) just fits the rectangle.
        const R: f32 = 1.7321;
        let fit = (EYE * EYE - R * R).sqrt() / R;
        let f = 0.5 * rect.width().min(rect.height()) * self.zoom * fit * 0.95;
        let c = rect.center();
        move |p| {
            let v = Orbit::view(r, p);
            let w = (EYE - v[2]).max(0.05);
            (Pos2::new(c.x + f * v[0] / w, c.y - f * v[1] / w), v[2])
        }
    }

    /// Projects every point (non-finite ones land off screen) and returns the drawing order,
    /// far to near: a counting sort into depth bins (exact enough for dots a few points
    /// wide, and linear in the number of points).
    pub fn project_all(&self, rect: Rect, cloud: &Cloud) -> (Vec<Pos2>, Vec<u32>) {
        const BINS: usize = 4096;
        let project = self.projector(rect);
        let mut bins = Vec::with_capacity(cloud.points.len());
        let mut counts = vec![0u32; BINS + 1];
        let screen = cloud
            .points
            .iter()
            .map(|p| {
                let (s, b) = if p.iter().all(|v| v.is_finite()) {
                    let (s, d) = project(*p);
                    // Normalised points lie within the cube: depth in -√3..=√3.
                    const R: f32 = 1.7321;
                    let b = ((d.clamp(-R, R) + R) / (2.0 * R) * (BINS - 1) as f32) as usize;
                    (s, b)
                } else {
                    (Pos2::new(f32::NAN, f32::NAN), 0)
                };
                bins.push(b as u16);
                counts[b + 1] += 1;
                s
            })
            .collect();
        for b in 0..BINS {
            counts[b + 1] += counts[b];
        }
        let mut order = vec![0u32; cloud.points.len()];
        for (i, b) in bins.iter().enumerate() {
            let slot = &mut counts[*b as usize];
            order[*slot as usize] = i as u32;
            *slot += 1;
        }
        (screen, order)
    }

    /// The three axis ends (map x, y, z) as screen segments from the cloud's centre.
    pub fn axes(&self, rect: Rect) -> [(Pos2, Pos2); 3] {
        let o = self.project(rect, [0.0; 3]).0;
        let e = |p| (o, self.project(rect, p).0);
        [e([0.6, 0.0, 0.0]), e([0.0, 0.6, 0.0]), e([0.0, 0.0, 0.6])]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use egui::Vec2;

    #[test]
    fn the_order_is_far_to_near_and_rotation_changes_it() {
        let rect = Rect::from_min_size(Pos2::ZERO, Vec2::new(400.0, 400.0));
        let cloud = Cloud::new(&[[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0; 3]]);
        let cam = Orbit::default();
        let (screen, order) = cam.project_all(rect, &cloud);
        let depth: Vec<f32> = order
            .iter()
            .map(|i| cam.project(rect, cloud.points[*i as usize]).1)
            .collect();
        assert!(depth.windows(2).all(|w| w[0] <= w[1]), "{depth:?}");
        assert!(screen.iter().all(|s| rect.contains(*s)), "{screen:?}");
        let turned = Orbit {
            yaw: cam.yaw + std::f32::consts::PI,
            ..cam
        };
        let (_, order2) = turned.project_all(rect, &cloud);
        assert_ne!(order, order2);
    }
}
