//! In-memory pixel buffers that flow between nodes: [`Image`] (RGBA) and [`Mask`] (one channel).
//!
//! Both hold `f32` samples in `0..=1`, row-major, top row first. Image samples are sRGB-encoded
//! (as stored in PNG files) with straight (non-premultiplied) alpha. A mask value of 1 means
//! "selected": the defect, or the region to repaint.

/// An RGBA image with `f32` samples in `0..=1`; `data.len() == width * height * 4`.
#[derive(Clone, Debug, PartialEq)]
pub struct Image {
    pub width: u32,
    pub height: u32,
    pub data: Vec<f32>,
}

/// A single-channel mask with `f32` samples in `0..=1`; `data.len() == width * height`.
#[derive(Clone, Debug, PartialEq)]
pub struct Mask {
    pub width: u32,
    pub height: u32,
    pub data: Vec<f32>,
}

impl Image {
    /// An image filled with one RGBA colour.
    pub fn filled(width: u32, height: u32, rgba: [f32; 4]) -> Image {
        let n = width as usize * height as usize;
        let mut data = Vec::with_capacity(n * 4);
        for _ in 0..n {
            data.extend_from_slice(&rgba);
        }
        Image {
            width,
            height,
            data,
        }
    }

    /// Builds an image by calling `f(x, y)` for every pixel.
    pub fn from_fn(width: u32, height: u32, mut f: impl FnMut(u32, u32) -> [f32; 4]) -> Image {
        let mut data = Vec::with_capacity(width as usize * height as usize * 4);
        for y in 0..height {
            for x in 0..width {
                data.extend_from_slice(&f(x, y));
            }
        }
        Image {
            width,
            height,
            data,
        }
    }

    /// The RGBA value at `(x, y)`; the caller keeps `x < width` and `y < height`.
    pub fn pixel(&self, x: u32, y: u32) -> [f32; 4] {
        let i = (y as usize * self.width as usize + x as usize) * 4;
        [
            self.data[i],
            self.data[i + 1],
            self.data[i + 2],
            self.data[i + 3],
        ]
    }

    pub fn set_pixel(&mut self, x: u32, y: u32, rgba: [f32; 4]) {
        let i = (y as usize * self.width as usize + x as usize) * 4;
        self.data[i..i + 4].copy_from_slice(&rgba);
    }

    /// The alpha channel as a mask.
    pub fn alpha(&self) -> Mask {
        Mask {
            width: self.width,
            height: self.height,
            data: self.data.chunks_exact(4).map(|p| p[3]).collect(),
        }
    }

    /// Bytes held in memory (for the cache's budget).
    pub fn size_bytes(&self) -> usize {
        self.data.len() * std::mem::size_of::<f32>()
    }
}

impl Mask {
    pub fn filled(width: u32, height: u32, value: f32) -> Mask {
        Mask {
            width,
            height,
            data: vec![value; width as usize * height as usize],
        }
    }

    /// Builds a mask by calling `f(x, y)` for every pixel.
    pub fn from_fn(width: u32, height: u32, mut f: impl FnMut(u32, u32) -> f32) -> Mask {
        let mut data = Vec::with_capacity(width as usize * height as usize);
        for y in 0..height {
            for x in 0..width {
                data.push(f(x, y));
            }
        }
        Mask {
            width,
            height,
            data,
        }
    }

    /// The value at `(x, y)`; the caller keeps `x < width` and `y < height`.
    pub fn get(&self, x: u32, y: u32) -> f32 {
        self.data[y as usize * self.width as usize + x as usize]
    }

    pub fn set(&mut self, x: u32, y: u32, v: f32) {
        self.data[y as usize * self.width as usize + x as usize] = v;
    }

    /// The mask as an opaque grey image (white = 1).
    pub fn to_image(&self) -> Image {
        let mut data = Vec::with_capacity(self.data.len() * 4);
        for &v in &self.data {
            data.extend_from_slice(&[v, v, v, 1.0]);
        }
        Image {
            width: self.width,
            height: self.height,
            data,
        }
    }

    pub fn size_bytes(&self) -> usize {
        self.data.len() * std::mem::size_of::<f32>()
    }
}
