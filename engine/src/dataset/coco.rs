//! COCO instance segmentation: `images/<name>.png` and `annotations.json`, plus
//! [`read_coco`], a reader that validates what it parses.
//!
//! Segmentations are uncompressed RLE, `{"size": [h, w], "counts": [...]}`, column-major
//! (Fortran order) starting with the count of zeros. With `iscrowd: 0` pycocotools
//! accepts them through `mask.frPyObjects(segm, h, w)`.

use super::manifest::{now_utc, Entry};
use super::rle::{rle_decode, rle_from_string};
use super::{Out, Prepared};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// A COCO dataset file (`annotations.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CocoDataset {
    /// Free-form dataset information (optional when reading).
    #[serde(default)]
    pub info: serde_json::Value,
    /// Licences; written as an empty list (optional when reading).
    #[serde(default)]
    pub licenses: Vec<serde_json::Value>,
    /// Images; `file_name` is relative to the `images/` folder.
    pub images: Vec<CocoImage>,
    /// Defect categories, ids from 1.
    pub categories: Vec<CocoCategory>,
    /// One annotation per instance.
    pub annotations: Vec<CocoAnnotation>,
}

/// An entry of `images`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CocoImage {
    /// Unique image id.
    pub id: u64,
    /// File name relative to `images/`.
    pub file_name: String,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

/// An entry of `categories`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CocoCategory {
    /// Unique category id.
    pub id: u64,
    /// Unique category name (the defect label).
    pub name: String,
    /// Always `"defect"` on export.
    #[serde(default)]
    pub supercategory: String,
}

/// A segmentation: uncompressed RLE (what the exporter writes) or polygons.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CocoSegmentation {
    /// Uncompressed RLE: `size` is `[height, width]`; `counts` column-major, zeros first.
    Rle {
        /// `[height, width]`.
        size: [u32; 2],
        /// Alternating run lengths, starting with zeros.
        counts: Vec<u32>,
    },
    /// Compressed RLE, as pycocotools' `mask.encode` writes it (read only; never written):
    /// `counts` is the string [`rle_from_string`] decodes.
    CompressedRle {
        /// `[height, width]`.
        size: [u32; 2],
        counts: String,
    },
    /// Polygons as flat `[x1, y1, x2, y2, …]` lists (read only; never written).
    Polygons(Vec<Vec<f64>>),
}

impl CocoSegmentation {
    /// An RLE segmentation's `[height, width]` and uncompressed counts (a compressed one
    /// decoded); `None` for polygons.
    pub fn rle(&self) -> Option<Result<([u32; 2], Vec<u32>), String>> {
        match self {
            CocoSegmentation::Rle { size, counts } => Some(Ok((*size, counts.clone()))),
            CocoSegmentation::CompressedRle { size, counts } => {
                Some(rle_from_string(counts).map(|c| (*size, c)))
            }
            CocoSegmentation::Polygons(_) => None,
        }
    }
}

/// An entry of `annotations`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CocoAnnotation {
    /// Unique annotation id.
    pub id: u64,
    /// Id of the annotated image.
    pub image_id: u64,
    /// Id of the category.
    pub category_id: u64,
    /// The instance's pixels.
    pub segmentation: CocoSegmentation,
    /// Pixel count.
    pub area: f64,
    /// `[x, y, width, height]` in pixels.
    pub bbox: [f64; 4],
    /// 0 or 1 (the exporter writes 0).
    pub iscrowd: u8,
}

impl CocoAnnotation {
    /// Decodes an RLE segmentation (uncompressed or compressed) to a row-major mask of
    /// `size[1] x size[0]` pixels.
    /// Polygon segmentations are not rasterised and give an error.
    pub fn mask(&self) -> Result<Vec<bool>, String> {
        match self.segmentation.rle() {
            Some(rle) => {
                let ([h, w], counts) = rle.map_err(|e| format!("annotation {}: {e}", self.id))?;
                rle_decode(&counts, w, h)
            }
            None => Err(format!(
                "annotation {}: polygon segmentation is not decoded to a mask",
                self.id
            )),
        }
    }
}

/// Writes images and `annotations.json`; returns the manifest entries.
pub(crate) fn write(
    prepared: &[Prepared],
    categories: &[String],
    out: &mut Out,
) -> Result<Vec<Entry>, String> {
    let mut ds = CocoDataset {
        info: serde_json::json!({
            "description": "Defect Studio synthetic defect dataset",
            "contributor": "Defect Studio",
            "version": "1.0",
            "date_created": now_utc(),
            "segmentation": "uncompressed RLE, column-major, counts start with zeros; \
                             read with pycocotools.mask.frPyObjects(segm, h, w)",
        }),
        licenses: Vec::new(),
        images: Vec::with_capacity(prepared.len()),
        categories: categories
            .iter()
            .enumerate()
            .map(|(i, name)| CocoCategory {
                id: i as u64 + 1,
                name: name.clone(),
                supercategory: "defect".to_string(),
            })
            .collect(),
        annotations: Vec::new(),
    };
    let mut entries = Vec::with_capacity(prepared.len());
    for (i, p) in prepared.iter().enumerate() {
        let image_id = i as u64 + 1;
        let file_name = format!("{}.png", p.stem);
        let image = format!("images/{file_name}");
        out.write(&image, &p.item.image_png)
            .map_err(|e| p.ctx(&e))?;
        ds.images.push(CocoImage {
            id: image_id,
            file_name,
            width: p.width,
            height: p.height,
        });
        if let Some(class) = p.class.as_deref() {
            let category_id = categories
                .iter()
                .position(|c| c == class)
                .ok_or_else(|| p.ctx(&format!("label {class:?} is not a category")))?
                as u64
                + 1;
            for inst in &p.instances {
                ds.annotations.push(CocoAnnotation {
                    id: ds.annotations.len() as u64 + 1,
                    image_id,
                    category_id,
                    segmentation: CocoSegmentation::Rle {
                        size: [p.height, p.width],
                        counts: inst.rle.clone(),
                    },
                    area: inst.area as f64,
                    bbox: inst.bbox.map(f64::from),
                    iscrowd: 0,
                });
            }
        }
        let mut entry = Entry::new(p, image);
        entry.coco_image_id = Some(image_id);
        entries.push(entry);
    }
    let json =
        serde_json::to_vec(&ds).map_err(|e| format!("cannot serialise annotations.json: {e}"))?;
    out.write("annotations.json", &json)?;
    Ok(entries)
}

/// Reads `dir/annotations.json` and validates it: required keys and types, unique
/// image/category/annotation ids (and category names), annotation references to
/// existing images and categories, image files present under `dir/images/`, RLE size
/// equal to the image size and counts summing to `width * height`, and `bbox`/`area`
/// equal to those of the decoded mask (polygons: bbox encloses the points).
///
/// Compressed RLE (string `counts`, as pycocotools writes it) is read as well.
pub fn read_coco(dir: &Path) -> Result<CocoDataset, String> {
    let path = dir.join("annotations.json");
    let bytes = std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let ds: CocoDataset = serde_json::from_slice(&bytes)
        .map_err(|e| format!("{}: not a valid COCO file: {e}", path.display()))?;
    validate(&ds, dir)?;
    Ok(ds)
}

fn validate(ds: &CocoDataset, dir: &Path) -> Result<(), String> {
    let mut images: HashMap<u64, &CocoImage> = HashMap::new();
    for img in &ds.images {
        if images.insert(img.id, img).is_some() {
            return Err(format!("duplicate image id {}", img.id));
        }
        if img.width == 0 || img.height == 0 {
            return Err(format!("image {}: zero width or height", img.id));
        }
        if img.file_name.is_empty() || !dir.join("images").join(&img.file_name).is_file() {
            return Err(format!(
                "image {}: file images/{} is missing",
                img.id, img.file_name
            ));
        }
    }
    let mut cat_ids = HashSet::new();
    let mut cat_names = HashSet::new();
    for c in &ds.categories {
        if !cat_ids.insert(c.id) {
            return Err(format!("duplicate category id {}", c.id));
        }
        if c.name.is_empty() || !cat_names.insert(c.name.as_str()) {
            return Err(format!(
                "category {}: empty or duplicate name {:?}",
                c.id, c.name
            ));
        }
    }
    let mut ann_ids = HashSet::new();
    for a in &ds.annotations {
        let ctx = |msg: String| format!("annotation {}: {msg}", a.id);
        if !ann_ids.insert(a.id) {
            return Err(format!("duplicate annotation id {}", a.id));
        }
        let img = images
            .get(&a.image_id)
            .ok_or_else(|| ctx(format!("unknown image_id {}", a.image_id)))?;
        if !cat_ids.contains(&a.category_id) {
            return Err(ctx(format!("unknown category_id {}", a.category_id)));
        }
        if a.iscrowd > 1 {
            return Err(ctx(format!("iscrowd is {}, expected 0 or 1", a.iscrowd)));
        }
        let [bx, by, bw, bh] = a.bbox;
        if !a.bbox.iter().all(|v| v.is_finite()) || bx < 0.0 || by < 0.0 || bw < 0.0 || bh < 0.0 {
            return Err(ctx(format!("bad bbox {:?}", a.bbox)));
        }
        if !a.area.is_finite() || a.area < 0.0 {
            return Err(ctx(format!("bad area {}", a.area)));
        }
        let (w, h) = (img.width, img.height);
        match (a.segmentation.rle(), &a.segmentation) {
            (Some(rle), _) => {
                let (size, counts) = rle.map_err(&ctx)?;
                if size != [h, w] {
                    return Err(ctx(format!(
                        "RLE size {size:?} differs from image size [{h}, {w}]"
                    )));
                }
                let mask = rle_decode(&counts, w, h).map_err(&ctx)?;
                let (area, bbox) = mask_stats(&mask, w);
                if area == 0 {
                    return Err(ctx("empty segmentation".to_string()));
                }
                if a.area != area as f64 {
                    return Err(ctx(format!(
                        "area {} but the mask has {area} pixels",
                        a.area
                    )));
                }
                if a.bbox != bbox.map(f64::from) {
                    return Err(ctx(format!("bbox {:?} but the mask's is {bbox:?}", a.bbox)));
                }
            }
            (None, CocoSegmentation::Polygons(polys)) => {
                if polys.is_empty() {
                    return Err(ctx("empty polygon list".to_string()));
                }
                for poly in polys {
                    if poly.len() < 6 || poly.len() % 2 != 0 {
                        return Err(ctx("polygon needs an even number ≥ 6 of coordinates".into()));
                    }
                    for pt in poly.chunks(2) {
                        let (x, y) = (pt[0], pt[1]);
                        let tol = 1e-3;
                        if !(x >= bx - tol
                            && x <= bx + bw + tol
                            && y >= by - tol
                            && y <= by + bh + tol)
                        {
                            return Err(ctx(format!("polygon point ({x}, {y}) outside bbox")));
                        }
                    }
                }
                if a.area > bw * bh + 1e-6 {
                    return Err(ctx(format!("area {} exceeds bbox area", a.area)));
                }
            }
            // `rle()` is `None` only for polygons.
            (None, _) => {}
        }
        if bx + bw > f64::from(w) + 1e-6 || by + bh > f64::from(h) + 1e-6 {
            return Err(ctx(format!("bbox {:?} outside the {w}x{h} image", a.bbox)));
        }
    }
    Ok(())
}

/// Pixel count and COCO bbox `[x, y, w, h]` of a row-major mask (all zeros if empty).
pub(crate) fn mask_stats(mask: &[bool], width: u32) -> (u64, [u32; 4]) {
    let w = width as usize;
    let mut area = 0u64;
    let (mut x0, mut y0, mut x1, mut y1) = (usize::MAX, usize::MAX, 0, 0);
    for (i, _) in mask.iter().enumerate().filter(|(_, &v)| v) {
        let (x, y) = (i % w, i / w);
        area += 1;
        x0 = x0.min(x);
        y0 = y0.min(y);
        x1 = x1.max(x);
        y1 = y1.max(y);
    }
    if area == 0 {
        return (0, [0; 4]);
    }
    let b = [x0, y0, x1 - x0 + 1, y1 - y0 + 1];
    (area, b.map(|v| v as u32))
}
