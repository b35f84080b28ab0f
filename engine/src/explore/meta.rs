//! An import's metadata file: CSV (a header row) or JSON (an array of objects, or an object
//! keyed by file), with a `file` column naming each image plus any other columns: numbers
//! become numeric fields, text becomes `column:value` tags (a JSON array of strings, one tag
//! per element).

use std::collections::BTreeMap;
use std::path::Path;

use super::items::push_tag;
use crate::error::{EngineError, Result};

/// The largest metadata file read.
const MAX_META_BYTES: u64 = 64 << 20;

/// One metadata row.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct MetaRow {
    /// Where it is in the file: `line N` (CSV) or `entry N` (JSON), 1-based.
    pub at: String,
    /// The file it names, with `/` separators, as written.
    pub file: String,
    pub tags: Vec<String>,
    pub fields: BTreeMap<String, f64>,
}

fn bad(path: &Path, message: impl Into<String>) -> EngineError {
    EngineError::Import {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// Reads a metadata file (`.csv`, or `.json`).
pub(crate) fn read_meta(path: &Path) -> Result<Vec<MetaRow>> {
    let md = std::fs::metadata(path).map_err(|e| EngineError::io(path, e))?;
    if md.len() > MAX_META_BYTES {
        return Err(bad(
            path,
            format!("metadata file over the limit of {MAX_META_BYTES} bytes"),
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| EngineError::io(path, e))?;
    let is_json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    let mut rows = if is_json {
        read_json(path, &bytes)?
    } else {
        read_csv(path, &bytes)?
    };
    for r in &mut rows {
        r.tags.sort();
    }
    Ok(rows)
}

/// A cell's value: a number field, or a `key:value` tag.
fn cell(row: &mut MetaRow, key: &str, value: &str) {
    let v = value.trim();
    if v.is_empty() {
        return;
    }
    match v.parse::<f64>() {
        Ok(x) if x.is_finite() => {
            row.fields.insert(key.to_string(), x);
        }
        _ => push_tag(&mut row.tags, key, v),
    }
}

fn is_file_key(k: &str) -> bool {
    k.trim().eq_ignore_ascii_case("file")
}

fn read_csv(path: &Path, bytes: &[u8]) -> Result<Vec<MetaRow>> {
    let mut r = csv::ReaderBuilder::new()
        .flexible(false)
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let headers: Vec<String> = r
        .headers()
        .map_err(|e| bad(path, format!("CSV header: {e}")))?
        .iter()
        .map(|h| h.trim().to_lowercase())
        .collect();
    let Some(file_col) = headers.iter().position(|h| is_file_key(h)) else {
        return Err(bad(
            path,
            format!("no \"file\" column (columns: {})", headers.join(", ")),
        ));
    };
    let mut rows = Vec::new();
    for (i, rec) in r.records().enumerate() {
        let rec = rec.map_err(|e| bad(path, format!("CSV: {e}")))?;
        let mut row = MetaRow {
            at: format!("line {}", rec.position().map_or(i as u64 + 2, |p| p.line())),
            file: rec.get(file_col).unwrap_or_default().replace('\\', "/"),
            ..MetaRow::default()
        };
        for (j, v) in rec.iter().enumerate() {
            if j != file_col && !headers[j].is_empty() {
                cell(&mut row, &headers[j], v);
            }
        }
        rows.push(row);
    }
    Ok(rows)
}

fn json_row(
    path: &Path,
    at: String,
    file: String,
    obj: &serde_json::Map<String, serde_json::Value>,
) -> Result<MetaRow> {
    let mut row = MetaRow {
        at,
        file: file.replace('\\', "/"),
        ..MetaRow::default()
    };
    for (k, v) in obj {
        let key = k.trim().to_lowercase();
        if is_file_key(&key) || key.is_empty() {
            continue;
        }
        match v {
            serde_json::Value::Number(n) => {
                if let Some(x) = n.as_f64().filter(|x| x.is_finite()) {
                    row.fields.insert(key, x);
                }
            }
            serde_json::Value::Bool(b) => {
                row.fields.insert(key, f64::from(u8::from(*b)));
            }
            serde_json::Value::String(s) => push_tag(&mut row.tags, &key, s),
            serde_json::Value::Array(a) => {
                for x in a {
                    match x {
                        serde_json::Value::String(s) => push_tag(&mut row.tags, &key, s),
                        other => push_tag(&mut row.tags, &key, &other.to_string()),
                    }
                }
            }
            serde_json::Value::Null => {}
            serde_json::Value::Object(_) => {
                return Err(bad(
                    path,
                    format!(
                        "{}: \"{k}\" is an object; expected a number, text or a list",
                        row.at
                    ),
                ))
            }
        }
    }
    Ok(row)
}

fn read_json(path: &Path, bytes: &[u8]) -> Result<Vec<MetaRow>> {
    let v: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| bad(path, format!("JSON: {e}")))?;
    let mut rows = Vec::new();
    match v {
        serde_json::Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                let at = format!("entry {}", i + 1);
                let Some(obj) = x.as_object() else {
                    return Err(bad(path, format!("{at}: expected an object")));
                };
                let file = obj
                    .iter()
                    .find(|(k, _)| is_file_key(k))
                    .and_then(|(_, v)| v.as_str())
                    .ok_or_else(|| bad(path, format!("{at}: no \"file\" text")))?;
                rows.push(json_row(path, at, file.to_string(), obj)?);
            }
        }
        serde_json::Value::Object(m) => {
            for (i, (file, x)) in m.iter().enumerate() {
                let at = format!("entry {}", i + 1);
                let Some(obj) = x.as_object() else {
                    return Err(bad(path, format!("{at} (\"{file}\"): expected an object")));
                };
                rows.push(json_row(path, at, file.clone(), obj)?);
            }
        }
        _ => {
            return Err(bad(
                path,
                "expected an array of objects with a \"file\" key, or an object keyed by file",
            ))
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_and_json_give_the_same_rows() {
        let dir = tempfile::tempdir().unwrap();
        let c = dir.path().join("m.csv");
        std::fs::write(
            &c,
            "file,label,score,camera\na.png,scratch,0.5,\nsub\\b.png,dent,2,left\n",
        )
        .unwrap();
        let j = dir.path().join("m.json");
        std::fs::write(
            &j,
            r#"[{"file":"a.png","label":"scratch","score":0.5},{"File":"sub/b.png","label":"dent","score":2,"camera":"left"}]"#,
        )
        .unwrap();
        let a = read_meta(&c).unwrap();
        let b = read_meta(&j).unwrap();
        assert_eq!(a.len(), 2);
        assert_eq!(a[1].file, "sub/b.png");
        assert_eq!(a[1].tags, vec!["camera:left", "label:dent"]);
        assert_eq!(a[0].fields.get("score"), Some(&0.5));
        for (x, y) in a.iter().zip(&b) {
            assert_eq!((&x.file, &x.tags, &x.fields), (&y.file, &y.tags, &y.fields));
        }
        std::fs::write(&c, "name,label\na.png,x\n").unwrap();
        let e = read_meta(&c).unwrap_err().to_string();
        assert!(
            e.contains("no \"file\" column") && e.contains("m.csv"),
            "{e}"
        );
    }
}
