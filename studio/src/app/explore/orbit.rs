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

/// The eye's distance from the centre, in units of the normalised point cloud's radius.
const EYE: f32 = 3.5;

/// The point cloud, centred and scaled to fit a unit sphere.
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
            .fold(1e-6f32, f32::max)
            * 3f32.sqrt();
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

    /// The point in camera space (x right, y up, z towards the eye).
    #[inline]
    fn view(&self, p: [f32; 3]) -> [f32; 3] {
        let (sy, cy) = self.yaw.sin_cos();
        let (sp, cp) = self.pitch.sin_cos();
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
        let v = self.view(p);
        let f = 0.5 * rect.width().min(rect.height()) * self.zoom * (EYE - 1.0);
        let w = (EYE - v[2]).max(0.05);
        let c = rect.center();
        (Pos2::new(c.x + f * v[0] / w, c.y - f * v[1] / w), v[2])
    }

    /// Projects every point (non-finite ones land off screen) and returns the drawing order,
    /// far to near.
    pub fn project_all(&self, rect: Rect, cloud: &Cloud) -> (Vec<Pos2>, Vec<u32>) {
        let mut depth = Vec::with_capacity(cloud.points.len());
        let screen = cloud
            .points
            .iter()
            .map(|p| {
                if p.iter().all(|v| v.is_finite()) {
                    let (s, d) = self.project(rect, *p);
                    depth.push(d);
                    s
                } else {
                    depth.push(f32::NEG_INFINITY);
                    Pos2::new(f32::NAN, f32::NAN)
                }
            })
            .collect();
        let mut order: Vec<u32> = (0..cloud.points.len() as u32).collect();
        order.sort_unstable_by(|a, b| depth[*a as usize].total_cmp(&depth[*b as usize]));
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
