//! Contact sheets: a grid of images (each with its mask beside it) and a text label per cell,
//! drawn with an 8×8 bitmap font. Sweeps write one so that a grid of parameter values can be
//! compared at a glance.

use font8x8::UnicodeFonts;

use crate::image::{Image, Mask};
use crate::ops::{self, Filter};

/// One cell: an image, its mask (shown beside it) and a label.
pub struct Cell {
    pub image: Image,
    pub mask: Option<Mask>,
    pub label: String,
}

const PAD: u32 = 6;
const LINE: u32 = 10;
const BG: [f32; 4] = [0.13, 0.13, 0.14, 1.0];
const FG: [f32; 4] = [0.92, 0.92, 0.92, 1.0];

/// Lays `cells` out in `columns` columns; each image is scaled to fit `tile`×`tile` pixels.
pub fn contact_sheet(cells: &[Cell], columns: u32, tile: u32) -> Image {
    let columns = columns.clamp(1, cells.len().max(1) as u32);
    let with_masks = cells.iter().any(|c| c.mask.is_some());
    let cell_w = if with_masks { tile * 2 + PAD } else { tile };
    let lines = cells
        .iter()
        .map(|c| wrap(&c.label, cell_w).len() as u32)
        .max()
        .unwrap_or(0)
        .max(1);
    let cell_h = tile + lines * LINE + 4;
    let rows = (cells.len() as u32).div_ceil(columns).max(1);
    let (w, h) = (columns * (cell_w + PAD) + PAD, rows * (cell_h + PAD) + PAD);
    let mut sheet = Image::filled(w, h, BG);
    for (i, c) in cells.iter().enumerate() {
        let (col, row) = (i as u32 % columns, i as u32 / columns);
        let (x0, y0) = (PAD + col * (cell_w + PAD), PAD + row * (cell_h + PAD));
        blit(&mut sheet, &fit(&c.image, tile), x0, y0);
        if let Some(m) = &c.mask {
            blit(&mut sheet, &fit(&m.to_image(), tile), x0 + tile + PAD, y0);
        }
        for (k, line) in wrap(&c.label, cell_w).iter().enumerate() {
            text(&mut sheet, line, x0, y0 + tile + 4 + k as u32 * LINE);
        }
    }
    sheet
}

/// Scales an image to fit a `tile`×`tile` box, keeping its aspect ratio.
fn fit(img: &Image, tile: u32) -> Image {
    let s = tile as f32 / img.width.max(img.height) as f32;
    let (w, h) = (
        ((img.width as f32 * s).round() as u32).max(1),
        ((img.height as f32 * s).round() as u32).max(1),
    );
    ops::resize_image(img, w, h, Filter::Bilinear)
}

/// Copies `src` onto `dst` at (`x`, `y`), blending by alpha over the background.
fn blit(dst: &mut Image, src: &Image, x: u32, y: u32) {
    for sy in 0..src.height {
        for sx in 0..src.width {
            let (dx, dy) = (x + sx, y + sy);
            if dx >= dst.width || dy >= dst.height {
                continue;
            }
            let s = src.pixel(sx, sy);
            let d = dst.pixel(dx, dy);
            let a = s[3];
            dst.set_pixel(
                dx,
                dy,
                [
                    d[0] + (s[0] - d[0]) * a,
                    d[1] + (s[1] - d[1]) * a,
                    d[2] + (s[2] - d[2]) * a,
                    1.0,
                ],
            );
        }
    }
}

/// Splits a label into lines of at most `width` pixels (8 px per character).
fn wrap(label: &str, width: u32) -> Vec<String> {
    let per_line = (width / 8).max(1) as usize;
    let mut lines = Vec::new();
    for part in label.split('\n') {
        let chars: Vec<char> = part.chars().collect();
        if chars.is_empty() {
            lines.push(String::new());
        }
        for chunk in chars.chunks(per_line) {
            lines.push(chunk.iter().collect());
        }
    }
    lines
}

/// Draws one line of text with the 8×8 font; characters it lacks show as '?'.
fn text(img: &mut Image, line: &str, x: u32, y: u32) {
    for (i, ch) in line.chars().enumerate() {
        let glyph = font8x8::BASIC_FONTS
            .get(ch)
            .or_else(|| font8x8::BASIC_FONTS.get('?'))
            .unwrap_or([0; 8]);
        for (row, bits) in glyph.iter().enumerate() {
            for col in 0..8u32 {
                if bits & (1 << col) != 0 {
                    let (px, py) = (x + i as u32 * 8 + col, y + row as u32);
                    if px < img.width && py < img.height {
                        img.set_pixel(px, py, FG);
                    }
                }
            }
        }
    }
}

/// A contact sheet of stored outputs: each labelled with the values of `keys` (`node.param`
/// overrides of its work item) and its seed.
pub fn sheet_for_outputs(
    store: &crate::store::Store,
    ids: &[u64],
    keys: &[String],
    columns: u32,
) -> crate::Result<Image> {
    let outputs = store.outputs(None)?;
    let mut cells = Vec::new();
    for id in ids {
        let Some((_, rec)) = outputs.iter().find(|(o, _)| o == id) else {
            continue;
        };
        let Some(png) = store.output_png(*id)? else {
            continue;
        };
        let image =
            crate::codec::decode_image(&png, &rec.path).map_err(crate::EngineError::failed)?;
        let mask = match store.output_mask_png(*id)? {
            Some(m) => {
                Some(crate::codec::decode_image(&m, "mask").map_err(crate::EngineError::failed)?)
            }
            None => None,
        }
        .map(|m| Mask {
            width: m.width,
            height: m.height,
            data: m.data.chunks_exact(4).map(|p| p[0]).collect(),
        });
        let mut label: Vec<String> = keys
            .iter()
            .map(|k| {
                format!(
                    "{k}={}",
                    rec.overrides
                        .get(k)
                        .map(|v| v.to_string())
                        .unwrap_or_default()
                )
            })
            .collect();
        label.push(format!("seed {}", rec.seed));
        cells.push(Cell {
            image,
            mask,
            label: label.join("\n"),
        });
    }
    Ok(contact_sheet(&cells, columns, 192))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_land_in_a_grid_with_labels() {
        let red = Image::filled(40, 20, [1.0, 0.0, 0.0, 1.0]);
        let cells: Vec<Cell> = (0..5)
            .map(|i| Cell {
                image: red.clone(),
                mask: Some(Mask::filled(40, 20, 1.0)),
                label: format!("cell {i}"),
            })
            .collect();
        let sheet = contact_sheet(&cells, 3, 32);
        // Two rows of three cells, each image + mask side by side.
        let cell_w = 32 * 2 + PAD;
        assert_eq!(sheet.width, 3 * (cell_w + PAD) + PAD);
        // The image is scaled to 32×16 at the cell's corner; the mask (white) beside it.
        assert_eq!(sheet.pixel(PAD + 1, PAD + 1), [1.0, 0.0, 0.0, 1.0]);
        let white = sheet.pixel(PAD + 32 + PAD + 1, PAD + 1);
        assert!(white[0] > 0.99 && white[1] > 0.99);
        // Some label pixels are drawn under the first tile.
        let label_row: usize = (PAD + 32 + 4..PAD + 32 + 12)
            .map(|y| (PAD..PAD + 60).filter(|&x| sheet.pixel(x, y) == FG).count())
            .sum();
        assert!(label_row > 20, "{label_row}");
        // The sixth slot is empty background.
        let (x6, y6) = (PAD + 2 * (cell_w + PAD) + 2, sheet.height - PAD - 10);
        assert_eq!(sheet.pixel(x6, y6), BG);
    }

    #[test]
    fn long_labels_wrap() {
        assert_eq!(wrap("abcdefghij", 32), vec!["abcd", "efgh", "ij"]);
        assert_eq!(wrap("a\nb", 80), vec!["a", "b"]);
    }
}
