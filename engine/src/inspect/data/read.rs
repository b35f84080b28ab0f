//! The layout readers behind [`super::read_dataset`]: which layout a folder holds, and its
//! samples. Masks and shapes are decoded here too ([`decode_mask`], [`fill_shape`]).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::walk::{self, join_inside, list, Listing};
use super::{LabeledSet, Layout, MaskShape, Sample};
use crate::error::{EngineError, Result};
use crate::inspect::GOOD;

fn err(msg: String) -> EngineError {
    EngineError::Inspect(msg)
}

/// `good` in any case is [`GOOD`]; other labels are kept.
fn norm_label(label: &str) -> String {
    if label.eq_ignore_ascii_case(GOOD) {
        GOOD.to_string()
    } else {
        label.to_string()
    }
}

fn sample(path: PathBuf, label: &str, split: Option<&str>) -> Sample {
    Sample {
        path,
        label: norm_label(label),
        mask: None,
        shapes: Vec::new(),
        split: split.map(str::to_string),
    }
}

/// Recognises the layout of `dir` and reads its samples (unsorted; labels not yet filled).
pub(super) fn read(dir: &Path) -> Result<LabeledSet> {
    let md = std::fs::symlink_metadata(dir).map_err(|e| EngineError::io(dir, e))?;
    if !md.is_dir() {
        return Err(err(format!(
            "{}: not a folder (a labelled data set is a folder)",
            dir.display()
        )));
    }
    let mut skipped = Vec::new();
    let top = list(dir, &mut skipped)?;
    if top.files.is_empty() && top.dirs.is_empty() {
        return Err(err(format!("{}: the folder is empty", dir.display())));
    }
    let has = |name: &str| top.dir(name).is_some();
    let (layout, samples) = if top.has_file("manifest.json") {
        manifest(dir, &mut skipped)?
    } else if top.has_file("annotations.json") && has("images") {
        (Layout::Coco, coco_plain(dir)?)
    } else if top.has_file("data.yaml") && has("images") && has("labels") {
        (Layout::Yolo, yolo_plain(dir, &mut skipped)?)
    } else if (has("train") || has("test")) && (has("ground_truth") || is_mvtec_train(&top)) {
        (Layout::Mvtec, mvtec(dir, &top, &mut skipped)?)
    } else if has("normal") && (has("abnormal") || has("normal_test")) {
        (Layout::AnomalibFolder, anomalib(dir, &top, &mut skipped)?)
    } else if has("images") && has("masks") {
        (Layout::ImageMask, image_mask(&top, &mut skipped)?)
    } else {
        (Layout::ClassFolders, class_folders(&top, &mut skipped)?)
    };
    if samples.is_empty() {
        return Err(err(format!(
            "{}: no labelled images found (expected class folders <label>/*.png, an MVTec AD \
             category, images/ + masks/, an anomalib folder, or one of our exports)",
            dir.display()
        )));
    }
    Ok(LabeledSet {
        root: dir.to_path_buf(),
        layout,
        samples,
        labels: Vec::new(),
        skipped,
    })
}

/// `train/` holds only `good/` and `test/` exists: an MVTec category even without
/// `ground_truth/` (class folders split into `train/`, `test/` have other labels in `train/`).
fn is_mvtec_train(top: &Listing) -> bool {
    let only_good = |t: &PathBuf| {
        std::fs::read_dir(t).is_ok_and(|rd| {
            let names: Vec<String> = rd
                .filter_map(|e| e.ok())
                .filter(|e| e.file_type().is_ok_and(|f| f.is_dir()))
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            names == [GOOD]
        })
    };
    top.dir("train").is_some_and(only_good) && top.dir("test").is_some()
}

/// Binarised mask file (luma ≥ 128 → 255), decoded under the codec's limits.
pub(super) fn decode_mask(path: &Path) -> Result<image::GrayImage> {
    let bytes = walk::read_file(path)?;
    let img = crate::codec::decode_checked(&bytes, &path.display().to_string()).map_err(err)?;
    let mut g = img.to_luma8();
    for p in g.pixels_mut() {
        p.0[0] = if p.0[0] >= 128 { 255 } else { 0 };
    }
    Ok(g)
}

/// The pixels a shape covers in a `width` × `height` image, row-major.
pub(super) fn fill_shape(
    shape: &MaskShape,
    width: u32,
    height: u32,
) -> std::result::Result<Vec<bool>, String> {
    match shape {
        MaskShape::Rle {
            width: w,
            height: h,
            counts,
        } => {
            if (*w, *h) != (width, height) {
                return Err(format!(
                    "the RLE mask is {w}x{h} but the image is {width}x{height}"
                ));
            }
            crate::dataset::rle_decode(counts, width, height)
        }
        MaskShape::Polygon(points) => {
            let px: Vec<(i64, i64)> = points
                .iter()
                .map(|&(x, y)| {
                    (
                        (x * f64::from(width) - 0.5).round() as i64,
                        (y * f64::from(height) - 0.5).round() as i64,
                    )
                })
                .collect();
            Ok(crate::dataset::rasterize_like_fillpoly(&px, width, height))
        }
    }
}

// ---- our exports (manifest.json) ----

#[derive(Deserialize)]
struct ManifestIn {
    format: String,
    items: Vec<EntryIn>,
}

#[derive(Deserialize)]
struct EntryIn {
    label: String,
    defect: bool,
    image: String,
    #[serde(default)]
    mask: Option<String>,
    #[serde(default)]
    label_file: Option<String>,
    #[serde(default)]
    coco_image_id: Option<u64>,
    #[serde(default)]
    split: Option<String>,
}

/// A manifest path that must be a regular file: `None` (and a skip note) for a symlink or
/// other non-regular file; an error naming the manifest when it is missing.
fn manifest_file(
    root: &Path,
    rel: &str,
    manifest: &Path,
    skipped: &mut Vec<String>,
) -> Result<Option<PathBuf>> {
    let path = join_inside(root, rel, manifest)?;
    match std::fs::symlink_metadata(&path) {
        Err(_) => Err(err(format!(
            "{}: lists {rel}, which is missing",
            manifest.display()
        ))),
        Ok(md) if md.file_type().is_file() => Ok(Some(path)),
        Ok(_) => {
            skipped.push(format!(
                "{}: not a regular file (regular files only)",
                path.display()
            ));
            Ok(None)
        }
    }
}

fn manifest(root: &Path, skipped: &mut Vec<String>) -> Result<(Layout, Vec<Sample>)> {
    let path = root.join("manifest.json");
    let bytes = walk::read_file(&path)?;
    let m: ManifestIn = serde_json::from_slice(&bytes)
        .map_err(|e| err(format!("{}: not one of our manifests: {e}", path.display())))?;
    let layout = match m.format.as_str() {
        "folder" => Layout::Folder,
        "coco" => Layout::Coco,
        "yolo" => Layout::Yolo,
        "mvtec" => Layout::Mvtec,
        "anomalib-folder" => Layout::AnomalibFolder,
        other => {
            return Err(err(format!(
                "{}: unknown format {other:?} (folder, coco, yolo, mvtec or anomalib-folder)",
                path.display()
            )))
        }
    };
    let coco = if layout == Layout::Coco {
        Some(coco_shapes(root)?)
    } else {
        None
    };
    let mut samples = Vec::with_capacity(m.items.len());
    for e in &m.items {
        let Some(image) = manifest_file(root, &e.image, &path, skipped)? else {
            continue;
        };
        let label = if e.defect { e.label.as_str() } else { GOOD };
        let mut s = sample(image, label, e.split.as_deref());
        if let Some(mask) = &e.mask {
            s.mask = manifest_file(root, mask, &path, skipped)?;
        }
        if let (Some(shapes), Some(id)) = (&coco, e.coco_image_id) {
            s.shapes = shapes.get(&id).map(|(_, v)| v.clone()).unwrap_or_default();
        }
        if let Some(lf) = &e.label_file {
            if let Some(lf) = manifest_file(root, lf, &path, skipped)? {
                s.shapes = yolo_lines(&lf)?.into_iter().map(|(_, p)| p).collect();
            }
        }
        samples.push(s);
    }
    Ok((layout, samples))
}

// ---- COCO ----

/// Image id → (file name, shapes with the category of each), from `annotations.json`.
type CocoShapes = HashMap<u64, (String, Vec<MaskShape>)>;

fn coco_shapes(root: &Path) -> Result<CocoShapes> {
    let (shapes, _) = coco_read(root)?;
    Ok(shapes)
}

/// Reads `annotations.json`: the shapes per image, and per image the category of its largest
/// annotation.
fn coco_read(root: &Path) -> Result<(CocoShapes, HashMap<u64, String>)> {
    use crate::dataset::CocoSegmentation;
    let ds = crate::dataset::read_coco(root)
        .map_err(|e| err(format!("{}: {e}", root.join("annotations.json").display())))?;
    let cats: HashMap<u64, &str> = ds
        .categories
        .iter()
        .map(|c| (c.id, c.name.as_str()))
        .collect();
    let mut out: CocoShapes = HashMap::new();
    let mut sizes = HashMap::new();
    for img in &ds.images {
        out.insert(img.id, (img.file_name.clone(), Vec::new()));
        sizes.insert(img.id, (img.width, img.height));
    }
    let mut largest: HashMap<u64, (f64, String)> = HashMap::new();
    for a in &ds.annotations {
        let (w, h) = sizes.get(&a.image_id).copied().unwrap_or((1, 1));
        let Some((_, shapes)) = out.get_mut(&a.image_id) else {
            continue;
        };
        match (a.segmentation.rle(), &a.segmentation) {
            // `read_coco` has decoded every RLE already, so this cannot fail here.
            (Some(Ok(([height, width], counts))), _) => shapes.push(MaskShape::Rle {
                width,
                height,
                counts,
            }),
            (Some(Err(e)), _) => return Err(err(format!("annotation {}: {e}", a.id))),
            (None, CocoSegmentation::Polygons(polys)) => {
                for p in polys {
                    let pts = p
                        .chunks_exact(2)
                        .map(|c| (c[0] / f64::from(w), c[1] / f64::from(h)))
                        .collect();
                    shapes.push(MaskShape::Polygon(pts));
                }
            }
            (None, _) => {}
        }
        let cat = cats.get(&a.category_id).copied().unwrap_or("defect");
        let best = largest.entry(a.image_id).or_insert((-1.0, String::new()));
        if a.area > best.0 {
            *best = (a.area, cat.to_string());
        }
    }
    let labels = largest.into_iter().map(|(k, (_, l))| (k, l)).collect();
    Ok((out, labels))
}

fn coco_plain(root: &Path) -> Result<Vec<Sample>> {
    let (shapes, labels) = coco_read(root)?;
    let images = root.join("images");
    let from = root.join("annotations.json");
    let mut samples = Vec::new();
    for (id, (file, shapes)) in shapes {
        let path = join_inside(&images, &file, &from)?;
        let label = labels.get(&id).map_or(GOOD, String::as_str);
        let mut s = sample(path, label, None);
        s.shapes = shapes;
        samples.push(s);
    }
    Ok(samples)
}

// ---- YOLO ----

/// The lines of a YOLO label file: (class, polygon); a 4-number line is a box.
fn yolo_lines(path: &Path) -> Result<Vec<(usize, MaskShape)>> {
    let bytes = walk::read_file(path)?;
    let text = String::from_utf8_lossy(&bytes);
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let bad = || {
            err(format!(
                "{}, line {}: not a YOLO label line",
                path.display(),
                n + 1
            ))
        };
        let mut it = line.split_whitespace();
        let class: usize = it.next().and_then(|t| t.parse().ok()).ok_or_else(bad)?;
        let nums: Vec<f64> = it
            .map(|t| t.parse::<f64>().map_err(|_| bad()))
            .collect::<Result<_>>()?;
        let pts: Vec<(f64, f64)> = if nums.len() == 4 {
            let (cx, cy, w, h) = (nums[0], nums[1], nums[2], nums[3]);
            let (x0, x1, y0, y1) = (cx - w / 2.0, cx + w / 2.0, cy - h / 2.0, cy + h / 2.0);
            vec![(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
        } else if nums.len() >= 6 && nums.len().is_multiple_of(2) {
            nums.chunks_exact(2).map(|c| (c[0], c[1])).collect()
        } else {
            return Err(bad());
        };
        out.push((class, MaskShape::Polygon(pts)));
    }
    Ok(out)
}

/// Class names from a `data.yaml`: `names:` as an indented `N: name` map or a `[a, b]` list.
fn yolo_names(path: &Path) -> Result<BTreeMap<usize, String>> {
    let text = String::from_utf8_lossy(&walk::read_file(path)?).into_owned();
    let unquote = |s: &str| -> String {
        let s = s.trim();
        serde_json::from_str::<String>(s)
            .unwrap_or_else(|_| s.trim_matches(|c| c == '\'' || c == '"').to_string())
    };
    let mut names = BTreeMap::new();
    let mut in_names = false;
    for line in text.lines() {
        let content = line.split(" #").next().unwrap_or("");
        if let Some(rest) = content.strip_prefix("names:") {
            let rest = rest.trim();
            if let Some(list) = rest.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
                for (i, n) in list.split(',').enumerate() {
                    names.insert(i, unquote(n));
                }
            }
            in_names = rest.is_empty();
            continue;
        }
        if in_names {
            if !line.starts_with([' ', '\t']) {
                in_names = false;
                continue;
            }
            let t = content.trim();
            if let Some(item) = t.strip_prefix("- ") {
                names.insert(names.len(), unquote(item));
            } else if let Some((k, v)) = t.split_once(':') {
                if let Ok(k) = k.trim().parse::<usize>() {
                    names.insert(k, unquote(v));
                }
            }
        }
    }
    Ok(names)
}

fn yolo_plain(root: &Path, skipped: &mut Vec<String>) -> Result<Vec<Sample>> {
    let names = yolo_names(&root.join("data.yaml"))?;
    let images = list(&root.join("images"), skipped)?;
    let mut samples = Vec::new();
    let mut parts: Vec<(Option<String>, Listing)> = Vec::new();
    for d in &images.dirs {
        let part = d.file_name().map(|n| n.to_string_lossy().into_owned());
        parts.push((part, list(d, skipped)?));
    }
    parts.push((None, images));
    for (part, listing) in &parts {
        for img in listing.images() {
            let stem = img.file_stem().unwrap_or_default().to_string_lossy();
            let mut lf = root.join("labels");
            if let Some(p) = part {
                lf.push(p);
            }
            lf.push(format!("{stem}.txt"));
            let lines = if walk::is_regular_file(&lf) {
                yolo_lines(&lf)?
            } else {
                Vec::new()
            };
            let label = match lines.first() {
                Some((c, _)) => names
                    .get(c)
                    .cloned()
                    .unwrap_or_else(|| format!("class-{c}")),
                None => GOOD.to_string(),
            };
            let mut s = sample(img.clone(), &label, part.as_deref());
            s.shapes = lines.into_iter().map(|(_, p)| p).collect();
            samples.push(s);
        }
    }
    Ok(samples)
}

// ---- MVTec AD and anomalib folder ----

/// Mask files of a folder by image stem (`<stem>_mask.*` or `<stem>.*`).
fn masks_by_stem(dir: &Path, skipped: &mut Vec<String>) -> Result<HashMap<String, PathBuf>> {
    let mut out = HashMap::new();
    if !dir.is_dir() {
        return Ok(out);
    }
    for m in list(dir, skipped)?.images() {
        let stem = m.file_stem().unwrap_or_default().to_string_lossy();
        let stem = stem.strip_suffix("_mask").unwrap_or(&stem).to_string();
        out.insert(stem, m.clone());
    }
    Ok(out)
}

fn stem(p: &Path) -> String {
    p.file_stem()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned()
}

/// A defect image's mask from `masks`, or an error naming the image and where it looked.
fn defect_mask(img: &Path, masks: &HashMap<String, PathBuf>, mask_dir: &Path) -> Result<PathBuf> {
    let s = stem(img);
    masks.get(&s).cloned().ok_or_else(|| {
        err(format!(
            "{}: no ground-truth mask (expected {})",
            img.display(),
            mask_dir.join(format!("{s}_mask.png")).display()
        ))
    })
}

fn mvtec(root: &Path, top: &Listing, skipped: &mut Vec<String>) -> Result<Vec<Sample>> {
    let has_gt = top.dir("ground_truth").is_some();
    let mut samples = Vec::new();
    for split in ["train", "test"] {
        let Some(dir) = top.dir(split) else { continue };
        for label_dir in list(dir, skipped)?.dirs {
            let label = norm_label(&stem_name(&label_dir));
            let gt = root.join("ground_truth").join(stem_name(&label_dir));
            let masks = masks_by_stem(&gt, skipped)?;
            for img in list(&label_dir, skipped)?.images() {
                let mut s = sample(img.clone(), &label, Some(split));
                // Without `ground_truth/` the category has no masks (image labels only).
                if label != GOOD && has_gt {
                    s.mask = Some(defect_mask(img, &masks, &gt)?);
                }
                samples.push(s);
            }
        }
    }
    Ok(samples)
}

fn stem_name(p: &Path) -> String {
    p.file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned()
}

fn anomalib(root: &Path, top: &Listing, skipped: &mut Vec<String>) -> Result<Vec<Sample>> {
    let mut samples = Vec::new();
    for (folder, split) in [("normal", "train"), ("normal_test", "test")] {
        if let Some(d) = top.dir(folder) {
            for img in list(d, skipped)?.images() {
                samples.push(sample(img.clone(), GOOD, Some(split)));
            }
        }
    }
    if let Some(d) = top.dir("abnormal") {
        let mask_dir = root.join("mask");
        let has_masks = mask_dir.is_dir();
        let masks = masks_by_stem(&mask_dir, skipped)?;
        for img in list(d, skipped)?.images() {
            let mut s = sample(img.clone(), "defect", Some("test"));
            if has_masks {
                s.mask = Some(defect_mask(img, &masks, &mask_dir)?);
            }
            samples.push(s);
        }
    }
    Ok(samples)
}

// ---- image + mask folders, class folders ----

fn image_mask(top: &Listing, skipped: &mut Vec<String>) -> Result<Vec<Sample>> {
    let (Some(images), Some(mask_dir)) = (top.dir("images"), top.dir("masks")) else {
        return Ok(Vec::new());
    };
    let masks = masks_by_stem(mask_dir, skipped)?;
    let mut samples = Vec::new();
    for img in list(images, skipped)?.images() {
        let mask = masks.get(&stem(img)).cloned();
        let defect = match &mask {
            Some(m) => decode_mask(m)?.pixels().any(|p| p.0[0] > 0),
            None => false,
        };
        let mut s = sample(img.clone(), if defect { "defect" } else { GOOD }, None);
        s.mask = mask;
        samples.push(s);
    }
    Ok(samples)
}

const SPLIT_NAMES: [&str; 5] = ["train", "val", "valid", "validation", "test"];

fn class_folders(top: &Listing, skipped: &mut Vec<String>) -> Result<Vec<Sample>> {
    let mut samples = Vec::new();
    for d in &top.dirs {
        let name = stem_name(d);
        let listing = list(d, skipped)?;
        if listing.images().next().is_some() {
            for img in listing.images() {
                samples.push(sample(img.clone(), &name, None));
            }
        } else if SPLIT_NAMES.contains(&name.to_ascii_lowercase().as_str()) {
            for sub in &listing.dirs {
                let label = stem_name(sub);
                for img in list(sub, skipped)?.images() {
                    samples.push(sample(img.clone(), &label, Some(&name)));
                }
            }
        }
    }
    Ok(samples)
}
