//! The batch runner's sink: output file names from templates, publishing image, mask and
//! clean image under free names without replacing anything, and one store commit per output
//! (see the parent module's docs on output files).

use std::path::{Path, PathBuf};

use super::chunks::RecipeChunks;
use crate::codec;
use crate::error::{EngineError, Result};
use crate::exec::{OutputSink, Saved};
use crate::hashing::sha256_hex;
use crate::image::{Image, Mask};
use crate::paths::{self, Scratch};
use crate::store::{now_ms, OutputRecord, Store};

/// Makes a string safe as one file name component.
fn safe_component(s: &str) -> String {
    let out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let out = out.trim_start_matches('.').to_string();
    if out.is_empty() {
        "graph".into()
    } else {
        out
    }
}

/// Values of the output template variables.
pub(super) struct TemplateVars<'a> {
    pub(super) graph: &'a str,
    pub(super) node: &'a str,
    pub(super) run: u64,
    pub(super) item: u64,
    pub(super) seed: u64,
    pub(super) ms: u64,
}

/// Expands a file name template into a path relative to the output folder.
/// Expands a template for a PNG file (".png" is added when missing).
pub(super) fn expand_template(template: &str, v: &TemplateVars) -> Result<PathBuf> {
    expand_path(template, v, Some(".png"))
}

/// Expands a template into a path relative to the output folder, with `ext` appended when the
/// result does not end with it.
pub(super) fn expand_path(template: &str, v: &TemplateVars, ext: Option<&str>) -> Result<PathBuf> {
    nodes::check_output_template(template).map_err(EngineError::failed)?;
    let (y, mo, d, h, mi, s) = crate::store::utc(v.ms);
    let mut out = String::new();
    let mut rest = template.trim();
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let close = after.find('}').unwrap_or(after.len());
        let var = &after[..close];
        let (name, width) = match var.split_once(':') {
            Some((n, f)) => (n, f[1..].parse::<usize>().unwrap_or(0)),
            None => (var, 0),
        };
        let num = |n: u64| format!("{n:0width$}");
        out.push_str(&match name {
            "graph" => safe_component(v.graph),
            "node" => safe_component(v.node),
            "run" => num(v.run),
            "item" => num(v.item),
            "seed" => num(v.seed),
            "date" => format!("{y:04}{mo:02}{d:02}"),
            "time" => format!("{h:02}{mi:02}{s:02}"),
            other => return Err(EngineError::failed(format!("unknown variable {{{other}}}"))),
        });
        rest = after.get(close + 1..).unwrap_or("");
    }
    out.push_str(rest);
    if let Some(ext) = ext {
        if !out.to_ascii_lowercase().ends_with(ext) {
            out.push_str(ext);
        }
    }
    let path = PathBuf::from(out);
    if path
        .components()
        .any(|c| !matches!(c, std::path::Component::Normal(_)))
    {
        return Err(EngineError::failed(format!(
            "output path {} leaves the output folder",
            path.display()
        )));
    }
    Ok(path)
}

/// The image and mask names tried for an output: `name.png` (and `name_mask.png`), then
/// `name-1.png`, `name-2.png`, …
fn candidate_names(path: &Path, n: u64) -> (PathBuf, PathBuf) {
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("output");
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let base = if n == 0 {
        stem.to_string()
    } else {
        format!("{stem}-{n}")
    };
    (
        dir.join(format!("{base}.png")),
        dir.join(format!("{base}_mask.png")),
    )
}

/// `dir/name.png` → `dir/name_clean.png`: where an output's clean image is written.
fn clean_name(img: &Path) -> PathBuf {
    let stem = img.file_stem().and_then(|s| s.to_str()).unwrap_or("output");
    img.with_file_name(format!("{stem}_clean.png"))
}

/// Writes an output's PNG (and mask, and clean image) under the first free names beside
/// `wanted`: all are written as new files in the run's temporary folder, then linked to their
/// final names without replacing anything (another process writing into the same folder takes
/// other names), so a crash never leaves half a file under a final name and no planted link is
/// followed. Returns the image, mask and clean image paths.
fn publish_output(
    scratch: &mut Scratch,
    wanted: &Path,
    png: &[u8],
    mask_png: Option<&[u8]>,
    clean_png: Option<&[u8]>,
) -> Result<(PathBuf, PathBuf, PathBuf)> {
    let dir = wanted.parent().unwrap_or(Path::new(""));
    let tmp = scratch.write(png).map_err(|e| EngineError::io(dir, e))?;
    let tmp_mask = mask_png
        .map(|m| scratch.write(m))
        .transpose()
        .map_err(|e| EngineError::io(dir, e))?;
    let tmp_clean = clean_png
        .map(|c| scratch.write(c))
        .transpose()
        .map_err(|e| EngineError::io(dir, e))?;
    for n in 0u64.. {
        let (img, mask) = candidate_names(wanted, n);
        let clean = clean_name(&img);
        let mut files = vec![(tmp.as_path(), img.as_path())];
        if let Some(t) = &tmp_mask {
            files.push((t.as_path(), mask.as_path()));
        }
        if let Some(t) = &tmp_clean {
            files.push((t.as_path(), clean.as_path()));
        }
        if paths::publish_new(&files).map_err(|e| EngineError::io(&img, e))? {
            return Ok((img, mask, clean));
        }
    }
    Err(EngineError::failed(format!(
        "no free file name beside {}",
        wanted.display()
    )))
}

/// The runner's sink: PNG files under the output folder plus one store commit per output.
pub(super) struct StoreSink<'a> {
    pub(super) store: &'a Store,
    pub(super) out_dir: &'a Path,
    /// The run's temporary folder inside `out_dir`, made at the first output.
    pub(super) scratch: &'a mut Option<Scratch>,
    pub(super) graph_name: &'a str,
    pub(super) run_id: u64,
    pub(super) item: u64,
    pub(super) seed: u64,
    pub(super) overrides: serde_json::Value,
    /// Text chunks every PNG carries: the recipe as run (`defect-studio/graph`) and A1111's
    /// `parameters`.
    pub(super) chunks: RecipeChunks,
    pub(super) saved: Vec<Saved>,
    /// Datasets to write when the run ends: (folder template, format) → options, output ids.
    pub(super) datasets: &'a mut std::collections::BTreeMap<
        (String, String),
        (crate::dataset::ExportOptions, Vec<u64>),
    >,
    /// What the inspection nodes recorded about this item (`node.field` → value), stored with
    /// each of its outputs.
    pub(super) inspection: std::collections::BTreeMap<String, serde_json::Value>,
}

impl OutputSink for StoreSink<'_> {
    fn note(&mut self, node: &str, field: &str, value: &serde_json::Value) {
        self.inspection
            .insert(format!("{node}.{field}"), value.clone());
    }

    fn resolved_param(&mut self, node: &str, param: &str, value: &nodes::ParamValue) {
        self.chunks.resolved_param(node, param, value);
    }

    fn save_instances(
        &mut self,
        saved: &Saved,
        width: u32,
        height: u32,
        ids: &[u32],
    ) -> Result<()> {
        let Some(id) = saved.output_id else {
            return Ok(());
        };
        if ids.len() != width as usize * height as usize {
            return Err(EngineError::failed(format!(
                "instance map has {} values for a {width}x{height} mask",
                ids.len()
            )));
        }
        let grey: Vec<u16> = ids
            .iter()
            .map(|&v| v.min(u32::from(u16::MAX)) as u16)
            .collect();
        let img =
            ::image::ImageBuffer::<::image::Luma<u16>, Vec<u16>>::from_raw(width, height, grey)
                .ok_or_else(|| EngineError::failed("instance map size mismatch"))?;
        let mut png = Vec::new();
        img.write_to(
            &mut std::io::Cursor::new(&mut png),
            ::image::ImageFormat::Png,
        )
        .map_err(|e| EngineError::failed(format!("cannot encode the instance map: {e}")))?;
        self.store.set_output_instances(id, &png)
    }

    fn collect(
        &mut self,
        _node: &str,
        saved: &Saved,
        opts: &crate::dataset::ExportOptions,
        folder: &str,
    ) -> Result<()> {
        nodes::check_output_template(folder).map_err(EngineError::failed)?;
        let id = saved
            .output_id
            .ok_or_else(|| EngineError::failed("the output was not stored"))?;
        let key = (folder.to_string(), opts.format.name().to_string());
        let entry = self
            .datasets
            .entry(key)
            .or_insert_with(|| (opts.clone(), Vec::new()));
        if entry.0 != *opts {
            return Err(EngineError::failed(format!(
                "two ExportDataset nodes write the {} dataset \"{folder}\" with different options",
                opts.format.name()
            )));
        }
        entry.1.push(id);
        Ok(())
    }

    fn save(
        &mut self,
        node: &str,
        image: &Image,
        mask: Option<&Mask>,
        clean: Option<&Image>,
        template: &str,
        label: &str,
    ) -> Result<Saved> {
        let created_ms = now_ms();
        let vars = TemplateVars {
            graph: self.graph_name,
            node,
            run: self.run_id,
            item: self.item,
            seed: self.seed,
            ms: created_ms,
        };
        let rel = expand_template(template, &vars)?;
        let rel_dir = rel.parent().unwrap_or(Path::new(""));
        let dir = paths::real_dirs(self.out_dir, rel_dir)
            .map_err(|e| EngineError::io(self.out_dir.join(rel_dir), e))?;
        let wanted = dir.join(rel.file_name().unwrap_or_default());
        let chunks = self.chunks.for_image(image.width, image.height);
        let chunks: Vec<(&str, &str)> = chunks
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let png = codec::encode_image_png(image, &chunks).map_err(EngineError::failed)?;
        let mask_png = mask
            .map(|m| codec::encode_mask_png(m, &[]))
            .transpose()
            .map_err(EngineError::failed)?;
        let clean_png = clean
            .map(|c| codec::encode_image_png(c, &chunks))
            .transpose()
            .map_err(EngineError::failed)?;
        let scratch = match self.scratch {
            Some(s) => s,
            None => self.scratch.insert(
                Scratch::new(self.out_dir, &self.run_id.to_string())
                    .map_err(|e| EngineError::io(self.out_dir, e))?,
            ),
        };
        let (path, mask_path, clean_path) = publish_output(
            scratch,
            &wanted,
            &png,
            mask_png.as_deref(),
            clean_png.as_deref(),
        )?;
        let rec = OutputRecord {
            run_id: self.run_id,
            item: self.item,
            node: node.to_string(),
            seed: self.seed,
            // Absolute, so that exports name the file whatever the working directory.
            path: std::path::absolute(&path)
                .unwrap_or_else(|_| path.clone())
                .to_string_lossy()
                .into_owned(),
            sha256: sha256_hex(&png),
            width: image.width,
            height: image.height,
            mask_path: mask_png
                .as_ref()
                .map(|_| mask_path.to_string_lossy().into_owned()),
            mask_sha256: mask_png.as_deref().map(sha256_hex),
            created_ms,
            label: label.to_string(),
            overrides: self.overrides.clone(),
            clean_path: clean_png
                .as_ref()
                .map(|_| clean_path.to_string_lossy().into_owned()),
            clean_sha256: clean_png.as_deref().map(sha256_hex),
            inspection: self.inspection.clone(),
        };
        let id = self.store.add_output_with_clean(
            &rec,
            &png,
            mask_png.as_deref(),
            clean_png.as_deref(),
        )?;
        let saved = Saved {
            path,
            mask_path: mask_png.map(|_| mask_path),
            output_id: Some(id),
        };
        self.saved.push(saved.clone());
        Ok(saved)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_expand_and_stay_inside() {
        let v = TemplateVars {
            graph: "My plate/../x",
            node: "save",
            run: 7,
            item: 3,
            seed: 42,
            ms: 0,
        };
        let p = expand_template("{graph}/{run:05}-{item:04}-{node}-{seed}", &v).unwrap();
        assert_eq!(p, PathBuf::from("My_plate_.._x/00007-0003-save-42.png"));
        assert!(expand_template("../escape.png", &v).is_err());
        assert!(expand_template("/abs.png", &v).is_err());
        assert!(expand_template("{nope}.png", &v).is_err());
    }
}
