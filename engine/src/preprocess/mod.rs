//! Control-image preprocessors that need no downloaded weights (the ControlNet node kinds
//! `Canny`, `SoftEdge` and `MaskToControl` in `nodes::control`; executors in `kinds::control`):
//! - [`canny`] (`canny.rs`): OpenCV's `cv2.Canny(rgb, low, high)`, bit for bit, on the image
//!   quantised to 8 bits as our PNG writer does (tests compare it with OpenCV's output);
//! - [`soft_edge`] (`soft_edge.rs`): a HED/PiDiNet-like soft edge map from blurred luminance
//!   gradients, normalised by a high percentile;
//! - [`mask_to_control`] (`mask.rs`): a mask's outline as lines (`edges`), as thick round
//!   strokes (`scribble`), or the mask itself (`fill`).
//!
//! All return white (or grey) on black RGB images with alpha 1, of the input's size; work is
//! linear in the pixel count with a few whole-image buffers (no per-pixel allocation).

mod canny;
mod mask;
mod soft_edge;

pub use canny::canny;
pub use mask::{mask_to_control, MaskControlMode};
pub use soft_edge::{soft_edge, EDGE_MIN};
