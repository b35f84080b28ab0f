//! The analysis download: one row per item (id, sha256, source, path, map coordinates, tags,
//! numeric fields and scores) as `analysis.csv` and `analysis.json`, and the embeddings as
//! `embeddings.npy` (float32, `[items, dim]`, row *i* = CSV row *i*) with `ids.npy` (uint64).
//! The folder must be new or empty; files are created new, never through a link
//! (docs/ARCHITECTURE.md, *Hostile input*).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{EngineError, Result};

/// One item of an analysis.
#[derive(Clone, Debug, Default, Serialize)]
pub struct AnalysisRow {
    pub id: u64,
    pub sha256: String,
    pub source: String,
    /// The image's file (an output's path, or the imported file's name in its dataset).
    pub path: String,
    /// Map coordinates (2 or 3 values; empty when no map was computed).
    pub coords: Vec<f32>,
    pub tags: Vec<String>,
    /// Numeric fields and scores by name.
    pub fields: BTreeMap<String, f64>,
}

/// What [`write_analysis`] writes.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Analysis {
    /// How the coordinates were made, e.g. `"umap 2d seed 0"`.
    pub map: String,
    pub rows: Vec<AnalysisRow>,
    /// Embedding dimension (0 = none written).
    #[serde(skip)]
    pub dim: usize,
    /// Row-major `[rows, dim]` embeddings.
    #[serde(skip)]
    pub embeddings: Vec<f32>,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> EngineError + '_ {
    move |e| EngineError::io(path, e)
}

/// Writes `a` into `dir` (created if missing; an existing folder must be empty). Returns the
/// files written.
pub fn write_analysis(dir: &Path, a: &Analysis) -> Result<Vec<PathBuf>> {
    if a.dim > 0 && a.embeddings.len() != a.rows.len() * a.dim {
        return Err(EngineError::failed(format!(
            "analysis: {} embedding values for {} items of dimension {}",
            a.embeddings.len(),
            a.rows.len(),
            a.dim
        )));
    }
    crate::dataset::check_output_dir(dir).map_err(EngineError::Plan)?;
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let dims = a.rows.iter().map(|r| r.coords.len()).max().unwrap_or(0);
    let fields: Vec<&String> = {
        let mut f: Vec<&String> = a.rows.iter().flat_map(|r| r.fields.keys()).collect();
        f.sort();
        f.dedup();
        f
    };
    let mut files = Vec::new();

    let csv_path = dir.join("analysis.csv");
    let mut csv = csv::Writer::from_writer(Vec::new());
    let axes = ["x", "y", "z"];
    let mut header: Vec<&str> = vec!["id", "sha256", "source", "path"];
    header.extend(&axes[..dims.min(3)]);
    header.push("tags");
    header.extend(fields.iter().map(|f| f.as_str()));
    let csv_err = |e: csv::Error| EngineError::failed(format!("{}: {e}", csv_path.display()));
    csv.write_record(&header).map_err(csv_err)?;
    for r in &a.rows {
        let mut rec = vec![
            r.id.to_string(),
            r.sha256.clone(),
            r.source.clone(),
            r.path.clone(),
        ];
        rec.extend(
            (0..dims.min(3)).map(|i| r.coords.get(i).map(|v| v.to_string()).unwrap_or_default()),
        );
        rec.push(r.tags.join(";"));
        rec.extend(
            fields
                .iter()
                .map(|f| r.fields.get(*f).map(|v| v.to_string()).unwrap_or_default()),
        );
        csv.write_record(&rec).map_err(csv_err)?;
    }
    let bytes = csv
        .into_inner()
        .map_err(|e| EngineError::failed(format!("{}: {e}", csv_path.display())))?;
    crate::paths::write_new_file(&csv_path, &bytes).map_err(io(&csv_path))?;
    files.push(csv_path);

    let json_path = dir.join("analysis.json");
    let json = serde_json::json!({
        "format": "defect-studio/analysis",
        "version": 1,
        "map": a.map,
        "embeddings": (a.dim > 0).then(|| serde_json::json!({
            "file": "embeddings.npy", "ids": "ids.npy", "shape": [a.rows.len(), a.dim], "dtype": "float32"
        })),
        "items": a.rows,
    });
    let bytes = serde_json::to_vec_pretty(&json)?;
    crate::paths::write_new_file(&json_path, &bytes).map_err(io(&json_path))?;
    files.push(json_path);

    if a.dim > 0 {
        let npy = dir.join("embeddings.npy");
        write_npy(
            &npy,
            &[a.rows.len() as u64, a.dim as u64],
            a.embeddings.iter().copied(),
        )?;
        files.push(npy);
        let ids = dir.join("ids.npy");
        write_npy(&ids, &[a.rows.len() as u64], a.rows.iter().map(|r| r.id))?;
        files.push(ids);
    }
    Ok(files)
}

/// Writes a C-order `.npy` file (created new).
fn write_npy<T: npyz::AutoSerialize>(
    path: &Path,
    shape: &[u64],
    data: impl IntoIterator<Item = T>,
) -> Result<()> {
    use npyz::WriterBuilder as _;
    let file = crate::paths::create_new_file(path).map_err(io(path))?;
    let mut w = npyz::WriteOptions::new()
        .default_dtype()
        .shape(shape)
        .writer(std::io::BufWriter::new(file))
        .begin_nd()
        .map_err(io(path))?;
    w.extend(data).map_err(io(path))?;
    w.finish().map_err(io(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Analysis {
        let row = |id: u64, x: f32, tag: &str| AnalysisRow {
            id,
            sha256: format!("{id:064x}"),
            source: "generated".into(),
            path: format!("out/{id}.png"),
            coords: vec![x, -x],
            tags: vec![tag.into(), "source:generated".into()],
            fields: [("area".to_string(), id as f64 * 10.0)].into(),
        };
        Analysis {
            map: "pca 2d".into(),
            rows: vec![
                row(3, 0.5, "label:scratch"),
                row(9, 1.5, "label:dent, \"big\""),
            ],
            dim: 3,
            embeddings: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        }
    }

    #[test]
    fn files_read_back_with_their_readers() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("analysis");
        let files = write_analysis(&out, &sample()).unwrap();
        assert_eq!(files.len(), 4);
        let npy =
            npyz::NpyFile::new(std::fs::File::open(out.join("embeddings.npy")).unwrap()).unwrap();
        assert_eq!(npy.shape(), &[2, 3]);
        assert_eq!(
            npy.into_vec::<f32>().unwrap(),
            vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
        );
        let ids = npyz::NpyFile::new(std::fs::File::open(out.join("ids.npy")).unwrap()).unwrap();
        assert_eq!(ids.into_vec::<u64>().unwrap(), vec![3, 9]);
        let mut csv = csv::Reader::from_path(out.join("analysis.csv")).unwrap();
        let header: Vec<String> = csv.headers().unwrap().iter().map(String::from).collect();
        assert_eq!(
            header,
            ["id", "sha256", "source", "path", "x", "y", "tags", "area"]
        );
        let rows: Vec<csv::StringRecord> = csv.records().map(|r| r.unwrap()).collect();
        assert_eq!(&rows[1][6], "label:dent, \"big\";source:generated");
        assert_eq!(&rows[1][7], "90");
        assert_eq!(&rows[0][4], "0.5");
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("analysis.json")).unwrap()).unwrap();
        assert_eq!(json["items"][1]["id"], 9);
        assert_eq!(json["embeddings"]["shape"], serde_json::json!([2, 3]));
    }

    #[test]
    fn a_non_empty_folder_and_a_bad_shape_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("keep.txt"), b"mine").unwrap();
        assert!(write_analysis(dir.path(), &sample()).is_err());
        assert_eq!(std::fs::read(dir.path().join("keep.txt")).unwrap(), b"mine");
        let mut bad = sample();
        bad.embeddings.pop();
        let err = write_analysis(&dir.path().join("new"), &bad)
            .unwrap_err()
            .to_string();
        assert!(err.contains("5 embedding values for 2 items"), "{err}");
    }
}
