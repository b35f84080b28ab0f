//! COCO-style uncompressed run-length encoding of binary masks.
//!
//! Masks are passed around row-major (`mask[y * width + x]`), but COCO's RLE walks
//! the pixels **column-major** (Fortran order: down the first column, then the next),
//! and the first count is always the number of leading zeros (possibly 0). Counts
//! then alternate ones, zeros, ones, … and sum to `width * height`.

/// Encodes a row-major binary mask as COCO uncompressed RLE counts (column-major,
/// starting with the count of zeros).
///
/// Only the first `width * height` values are used; missing values count as `false`.
pub fn rle_encode(mask: &[bool], width: u32, height: u32) -> Vec<u32> {
    let (w, h) = (width as usize, height as usize);
    let mut rb = RunBuilder::new();
    for x in 0..w {
        for y in 0..h {
            rb.add(mask.get(y * w + x).copied().unwrap_or(false), 1);
        }
    }
    rb.finish()
}

/// Decodes COCO uncompressed RLE counts (column-major, zeros first) into a row-major
/// binary mask of `width * height` pixels.
///
/// Fails when the counts do not sum to exactly `width * height`.
pub fn rle_decode(counts: &[u32], width: u32, height: u32) -> Result<Vec<bool>, String> {
    let (w, h) = (width as usize, height as usize);
    let total = w as u64 * h as u64;
    let sum: u64 = counts.iter().map(|&c| u64::from(c)).sum();
    if sum != total {
        return Err(format!(
            "RLE counts sum to {sum} but the mask has {width}x{height} = {total} pixels"
        ));
    }
    let mut mask = vec![false; w * h];
    let mut pos = 0usize; // column-major position
    for (i, &c) in counts.iter().enumerate() {
        let c = c as usize;
        if i % 2 == 1 {
            for p in pos..pos + c {
                let (x, y) = (p / h, p % h);
                mask[y * w + x] = true;
            }
        }
        pos += c;
    }
    Ok(mask)
}

/// Decodes COCO **compressed** RLE `counts` (the string pycocotools' `mask.encode` returns,
/// as CVAT, Detectron2 and COCO's crowd and stuff annotations store it) into uncompressed
/// counts. As pycocotools' `rleFrString`: each count is a little-endian run of 5-bit groups in
/// characters `'0' + (group | 0x20 if more follow)`, the last group's bit 0x10 its sign, and
/// every count from the fourth on is stored as its difference to the count two before.
///
/// Fails, naming the position, on a character outside `'0'..='o'`, a count that ends
/// mid-character run, is negative or does not fit 32 bits.
pub fn rle_from_string(s: &str) -> Result<Vec<u32>, String> {
    let bytes = s.as_bytes();
    let mut counts: Vec<u32> = Vec::new();
    let mut p = 0;
    while p < bytes.len() {
        let start = p;
        let (mut x, mut k, mut more) = (0i64, 0u32, true);
        while more {
            let Some(&b) = bytes.get(p) else {
                return Err(format!(
                    "compressed RLE: count {} (from character {start}) is cut off",
                    counts.len()
                ));
            };
            let c = i64::from(b) - 48;
            if !(0..64).contains(&c) {
                return Err(format!(
                    "compressed RLE: character {p} ({:?}) is not one of '0'..='o'",
                    char::from(b)
                ));
            }
            if k >= 12 {
                return Err(format!(
                    "compressed RLE: count {} (from character {start}) is too long",
                    counts.len()
                ));
            }
            x |= (c & 0x1f) << (5 * k);
            more = c & 0x20 != 0;
            p += 1;
            k += 1;
            if !more && c & 0x10 != 0 {
                x |= -1i64 << (5 * k);
            }
        }
        let m = counts.len();
        if m > 2 {
            x += i64::from(counts[m - 2]);
        }
        let count = u32::try_from(x).map_err(|_| {
            format!("compressed RLE: count {m} (from character {start}) is {x}, not a run length")
        })?;
        counts.push(count);
    }
    Ok(counts)
}

/// Encodes uncompressed counts as a COCO compressed RLE string, as pycocotools'
/// `rleToString` does (the inverse of [`rle_from_string`]).
pub fn rle_to_string(counts: &[u32]) -> String {
    let mut s = String::new();
    for (i, &c) in counts.iter().enumerate() {
        let mut x = i64::from(c);
        if i > 2 {
            x -= i64::from(counts[i - 2]);
        }
        loop {
            let mut c = (x & 0x1f) as u8;
            x >>= 5;
            let more = if c & 0x10 != 0 { x != -1 } else { x != 0 };
            if more {
                c |= 0x20;
            }
            s.push(char::from(c + 48));
            if !more {
                break;
            }
        }
    }
    s
}

/// Builds RLE counts from runs of values appended in column-major order.
struct RunBuilder {
    counts: Vec<u32>,
    current: bool,
    run: u64,
}

impl RunBuilder {
    fn new() -> Self {
        RunBuilder {
            counts: Vec::new(),
            current: false,
            run: 0,
        }
    }

    /// Appends `len` pixels of value `v`.
    fn add(&mut self, v: bool, len: u64) {
        if len == 0 {
            return;
        }
        if v != self.current {
            self.counts.push(self.run as u32);
            self.run = 0;
            self.current = v;
        }
        self.run += len;
    }

    fn finish(mut self) -> Vec<u32> {
        self.counts.push(self.run as u32);
        self.counts
    }
}

/// Run-length encodes (column-major, zeros first) the pixels of a `width x height`
/// image for which `inside(x, y)` holds, visiting only the box `x0..=x1, y0..=y1`
/// (inclusive): every pixel outside the box is taken to be `false`.
pub(crate) fn rle_encode_in_box(
    width: u32,
    height: u32,
    bbox: (u32, u32, u32, u32),
    inside: impl Fn(u32, u32) -> bool,
) -> Vec<u32> {
    let (x0, y0, x1, y1) = bbox;
    let h = u64::from(height);
    let mut rb = RunBuilder::new();
    rb.add(false, h * u64::from(x0));
    for x in x0..=x1 {
        rb.add(false, u64::from(y0));
        for y in y0..=y1 {
            rb.add(inside(x, y), 1);
        }
        rb.add(false, h - u64::from(y1) - 1);
    }
    rb.add(false, (u64::from(width) - u64::from(x1) - 1) * h);
    rb.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tiny deterministic PRNG (xorshift) so the tests need no extra crate.
    pub(crate) struct Rng(u64);
    impl Rng {
        pub(crate) fn new(seed: u64) -> Self {
            Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
        }
        pub(crate) fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }
        pub(crate) fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    #[test]
    fn tiny_example_column_major() {
        // 3 wide, 2 high, row-major:
        //   row 0: 0 1 1
        //   row 1: 0 0 1
        // Column-major walk: col0 = (0,0), col1 = (1,0), col2 = (1,1)
        //   -> 0 0 1 0 1 1 -> zeros 2, ones 1, zeros 1, ones 2.
        let mask = [false, true, true, false, false, true];
        assert_eq!(rle_encode(&mask, 3, 2), vec![2, 1, 1, 2]);
        assert_eq!(rle_decode(&[2, 1, 1, 2], 3, 2).unwrap(), mask.to_vec());
        // First pixel set: leading zero count is 0.
        let mask = [true, false, false, false, false, false];
        assert_eq!(rle_encode(&mask, 3, 2), vec![0, 1, 5]);
        // Row-major order would give [0, 1, 5] too, so also check a case where the orders differ:
        let mask = [false, false, false, true, false, false]; // pixel (0, 1)
        assert_eq!(rle_encode(&mask, 3, 2), vec![1, 1, 4]);
    }

    #[test]
    fn round_trip_random_and_edge_masks() {
        let mut rng = Rng::new(7);
        let sizes = [
            (1, 1),
            (3, 2),
            (2, 3),
            (7, 5),
            (13, 1),
            (1, 17),
            (31, 29),
            (64, 48),
        ];
        for &(w, h) in &sizes {
            let n = (w * h) as usize;
            let mut cases = vec![vec![false; n], vec![true; n]];
            let mut first = vec![false; n];
            first[0] = true;
            cases.push(first);
            let mut last = vec![false; n];
            last[n - 1] = true;
            cases.push(last);
            for density in [2u64, 5, 50] {
                cases.push((0..n).map(|_| rng.below(density) == 0).collect());
            }
            for mask in cases {
                let counts = rle_encode(&mask, w, h);
                let sum: u64 = counts.iter().map(|&c| u64::from(c)).sum();
                assert_eq!(sum, u64::from(w * h));
                // Only the first count may be zero.
                assert!(counts.iter().skip(1).all(|&c| c > 0), "{counts:?}");
                assert_eq!(rle_decode(&counts, w, h).unwrap(), mask, "{w}x{h}");
            }
        }
        assert_eq!(rle_encode(&[true; 6], 3, 2), vec![0, 6]);
        assert_eq!(rle_encode(&[false; 6], 3, 2), vec![6]);
    }

    #[test]
    fn boxed_encoder_matches_full_encoder() {
        let mut rng = Rng::new(99);
        for &(w, h) in &[(1u32, 1u32), (5, 4), (9, 11), (20, 3)] {
            for _ in 0..50 {
                let x0 = rng.below(u64::from(w)) as u32;
                let x1 = x0 + rng.below(u64::from(w - x0)) as u32;
                let y0 = rng.below(u64::from(h)) as u32;
                let y1 = y0 + rng.below(u64::from(h - y0)) as u32;
                let mut mask = vec![false; (w * h) as usize];
                for y in y0..=y1 {
                    for x in x0..=x1 {
                        mask[(y * w + x) as usize] = rng.below(2) == 0;
                    }
                }
                let boxed =
                    rle_encode_in_box(w, h, (x0, y0, x1, y1), |x, y| mask[(y * w + x) as usize]);
                assert_eq!(boxed, rle_encode(&mask, w, h));
            }
        }
    }

    #[test]
    fn decode_rejects_bad_sums() {
        assert!(rle_decode(&[2, 1, 1], 3, 2).is_err());
        assert!(rle_decode(&[7], 3, 2).is_err());
        assert!(rle_decode(&[u32::MAX, u32::MAX], 3, 2).is_err());
    }
}
