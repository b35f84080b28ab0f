//! Statistics as CSV files, one per breakdown, for spreadsheets and pandas (docs/ARCHITECTURE.md
//! §17).
//!
//! Each file has a header row naming the row struct's fields, in order, then one row per entry
//! of that breakdown (`totals.csv`: one row). Quoting is RFC 4180 (the `csv` crate), numbers
//! are written in their shortest round-trip form, so reading a file back gives the same values.
//!
//! [`write_dir`] replaces only its own file names in the folder: each file is written to a
//! temporary file beside it and renamed over it. A file name that is taken by a symlink, a
//! folder or anything but a regular file is refused before anything is written.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::Stats;
use crate::error::{EngineError, Result};

/// The files [`write_dir`] writes, in order.
pub const FILES: &[&str] = &[
    "totals.csv",
    "per_day.csv",
    "per_week.csv",
    "graphs.csv",
    "labels.csv",
    "kinds.csv",
    "models.csv",
    "loras.csv",
    "devices.csv",
    "trainings.csv",
];

/// Writes every breakdown of `stats` into `dir` (created if missing); returns the files written,
/// in [`FILES`] order.
pub fn write_dir(stats: &Stats, dir: &Path) -> Result<Vec<PathBuf>> {
    let contents = [
        table(std::slice::from_ref(&stats.totals))?,
        table(&stats.per_day)?,
        table(&stats.per_week)?,
        table(&stats.graphs)?,
        table(&stats.labels)?,
        table(&stats.kinds)?,
        table(&stats.models)?,
        table(&stats.loras)?,
        table(&stats.devices)?,
        table(&stats.trainings)?,
    ];
    debug_assert_eq!(contents.len(), FILES.len());
    real_dir(dir)?;
    let paths: Vec<PathBuf> = FILES.iter().map(|f| dir.join(f)).collect();
    // Refuse before writing anything, so a bad name leaves the folder as it was.
    for p in &paths {
        check_target(p)?;
    }
    for (path, bytes) in paths.iter().zip(&contents) {
        replace(path, bytes)?;
    }
    Ok(paths)
}

/// One CSV table: the header row (the fields of `T`, in order) and one row per entry.
fn table<T: Serialize + Default>(rows: &[T]) -> Result<Vec<u8>> {
    let bad = |e: csv::Error| EngineError::Plan(format!("statistics CSV: {e}"));
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    w.write_record(header::<T>()?).map_err(bad)?;
    for row in rows {
        w.serialize(row).map_err(bad)?;
    }
    w.into_inner()
        .map_err(|e| EngineError::Plan(format!("statistics CSV: {e}")))
}

/// The header the `csv` crate derives from `T`'s fields (also for a table with no rows).
fn header<T: Serialize + Default>() -> Result<Vec<String>> {
    let bad = |e: csv::Error| EngineError::Plan(format!("statistics CSV header: {e}"));
    let mut w = csv::Writer::from_writer(Vec::new());
    w.serialize(T::default()).map_err(bad)?;
    let bytes = w
        .into_inner()
        .map_err(|e| EngineError::Plan(format!("statistics CSV header: {e}")))?;
    let mut r = csv::Reader::from_reader(bytes.as_slice());
    Ok(r.headers().map_err(bad)?.iter().map(String::from).collect())
}

/// `dir` as a real folder: created (with its parents) when missing; a symlink or a file there
/// is refused.
fn real_dir(dir: &Path) -> Result<()> {
    match fs::symlink_metadata(dir) {
        Ok(md) if md.file_type().is_dir() => Ok(()),
        Ok(md) if md.file_type().is_symlink() => Err(refuse(dir, "is a symbolic link")),
        Ok(_) => Err(refuse(dir, "is not a folder")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fs::create_dir_all(dir).map_err(|e| EngineError::io(dir, e))
        }
        Err(e) => Err(EngineError::io(dir, e)),
    }
}

/// A file [`write_dir`] may replace: missing, or a regular file.
fn check_target(path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        Ok(md) if md.file_type().is_file() => Ok(()),
        Ok(md) if md.file_type().is_symlink() => Err(refuse(path, "is a symbolic link")),
        Ok(_) => Err(refuse(path, "is not a regular file")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(EngineError::io(path, e)),
    }
}

fn refuse(path: &Path, why: &str) -> EngineError {
    EngineError::io(
        path,
        std::io::Error::other(format!("{why}: statistics CSVs are not written through it")),
    )
}

/// Writes `bytes` to a new temporary file beside `path` and renames it over `path` (a rename
/// replaces the name, never writes through it).
fn replace(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| EngineError::io(&tmp, e))?;
        f.write_all(bytes)
            .and_then(|()| f.sync_all())
            .map_err(|e| EngineError::io(&tmp, e))?;
        check_target(path)?;
        fs::rename(&tmp, path).map_err(|e| EngineError::io(path, e))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::super::{GraphRow, KindRow, LabelRow, ModelRow, PeriodRow, Totals, TrainingRow};
    use super::*;

    fn sample() -> Stats {
        Stats {
            totals: Totals {
                runs: 7,
                succeeded: 5,
                failed: 1,
                cancelled: 0,
                unfinished: 1,
                items: 40,
                images: 38,
                seconds: 12.345_678_901_234_5,
            },
            per_day: vec![PeriodRow {
                period: "2026-12-06".into(),
                runs: 7,
                images: 38,
                seconds: 0.1 + 0.2,
            }],
            graphs: vec![
                GraphRow {
                    graph: "scratches, \"deep\"\non metal".into(),
                    runs: 4,
                    succeeded: 3,
                    failed: 1,
                    images: 20,
                    seconds: 1e-9,
                },
                GraphRow {
                    graph: " plain ".into(),
                    runs: 3,
                    succeeded: 2,
                    failed: 0,
                    images: 18,
                    seconds: 123_456.789,
                },
            ],
            labels: vec![LabelRow {
                label: "a,b".into(),
                images: 3,
            }],
            kinds: vec![KindRow {
                kind: "SaveImage".into(),
                runs: 7,
                executed: 30,
                cached: 8,
                failed: 1,
                seconds: 2.5,
                failure_rate: 1.0 / 31.0,
            }],
            loras: vec![ModelRow {
                role: "lora".into(),
                name: "my \"best\" lora.safetensors".into(),
                sha256: "ab".repeat(32),
                runs: 2,
                images: 2,
                seconds: 0.5,
            }],
            trainings: vec![TrainingRow {
                kind: "lora".into(),
                runs: 1,
                succeeded: 1,
                failed: 0,
                hours: 1.0 / 3.0,
            }],
            ..Stats::default()
        }
    }

    fn read<T: serde::de::DeserializeOwned>(path: &Path) -> (Vec<String>, Vec<T>) {
        let mut r = csv::Reader::from_path(path).unwrap();
        let h = r.headers().unwrap().iter().map(String::from).collect();
        let rows = r.deserialize().collect::<Result<Vec<T>, _>>().unwrap();
        (h, rows)
    }

    #[test]
    fn round_trips_every_breakdown() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("new/csv");
        let s = sample();
        let written = write_dir(&s, &dir).unwrap();
        assert_eq!(written, crate::stats::csv_files(&dir));
        let (h, totals) = read::<Totals>(&dir.join("totals.csv"));
        assert_eq!(
            h,
            [
                "runs",
                "succeeded",
                "failed",
                "cancelled",
                "unfinished",
                "items",
                "images",
                "seconds"
            ]
        );
        assert_eq!(totals, vec![s.totals.clone()]);
        assert_eq!(read::<PeriodRow>(&dir.join("per_day.csv")).1, s.per_day);
        assert_eq!(read::<PeriodRow>(&dir.join("per_week.csv")).1, s.per_week);
        assert_eq!(read::<GraphRow>(&dir.join("graphs.csv")).1, s.graphs);
        assert_eq!(read::<LabelRow>(&dir.join("labels.csv")).1, s.labels);
        let (h, kinds) = read::<KindRow>(&dir.join("kinds.csv"));
        assert_eq!(h.last().map(String::as_str), Some("failure_rate"));
        assert_eq!(kinds, s.kinds);
        assert_eq!(read::<ModelRow>(&dir.join("models.csv")).1, s.models);
        assert_eq!(read::<ModelRow>(&dir.join("loras.csv")).1, s.loras);
        assert_eq!(
            read::<TrainingRow>(&dir.join("trainings.csv")).1,
            s.trainings
        );
        // An empty breakdown still has its header.
        let (h, devices) = read::<crate::stats::DeviceRow>(&dir.join("devices.csv"));
        assert_eq!(h, ["device", "runs", "seconds"]);
        assert!(devices.is_empty());
    }

    #[test]
    fn quotes_as_rfc_4180() {
        let t = tempfile::tempdir().unwrap();
        write_dir(&sample(), t.path()).unwrap();
        let graphs = fs::read_to_string(t.path().join("graphs.csv")).unwrap();
        assert!(
            graphs.starts_with("graph,runs,succeeded,failed,images,seconds\n"),
            "{graphs}"
        );
        // Comma, quote and newline: the field is quoted, its quotes doubled.
        assert!(
            graphs.contains("\"scratches, \"\"deep\"\"\non metal\",4,3,1,20,"),
            "{graphs}"
        );
        let labels = fs::read_to_string(t.path().join("labels.csv")).unwrap();
        assert_eq!(labels, "label,images\n\"a,b\",3\n");
    }

    #[test]
    fn replaces_its_own_files_only() {
        let t = tempfile::tempdir().unwrap();
        let other = t.path().join("notes.txt");
        fs::write(&other, "mine").unwrap();
        fs::write(t.path().join("graphs.csv"), "old").unwrap();
        write_dir(&sample(), t.path()).unwrap();
        assert_eq!(fs::read_to_string(&other).unwrap(), "mine");
        assert!(fs::read_to_string(t.path().join("graphs.csv"))
            .unwrap()
            .starts_with("graph,"));
        let mut names: Vec<String> = fs::read_dir(t.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        let mut want: Vec<String> = FILES.iter().map(|f| f.to_string()).collect();
        want.push("notes.txt".into());
        want.sort();
        assert_eq!(names, want, "no temporary file is left behind");
    }

    #[cfg(unix)]
    #[test]
    fn refuses_a_symlinked_file_and_leaves_its_target() {
        let t = tempfile::tempdir().unwrap();
        let victim = t.path().join("victim.txt");
        fs::write(&victim, "precious").unwrap();
        let dir = t.path().join("out");
        fs::create_dir(&dir).unwrap();
        std::os::unix::fs::symlink(&victim, dir.join("graphs.csv")).unwrap();
        let e = write_dir(&sample(), &dir).unwrap_err().to_string();
        assert!(
            e.contains("graphs.csv") && e.contains("symbolic link"),
            "{e}"
        );
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
        assert!(
            !dir.join("totals.csv").exists(),
            "nothing is written when one name is refused"
        );
        // A folder where a file goes, and a symlinked folder, are refused too.
        fs::remove_file(dir.join("graphs.csv")).unwrap();
        fs::create_dir(dir.join("kinds.csv")).unwrap();
        let e = write_dir(&sample(), &dir).unwrap_err().to_string();
        assert!(
            e.contains("kinds.csv") && e.contains("not a regular file"),
            "{e}"
        );
        let link = t.path().join("link");
        std::os::unix::fs::symlink(&dir, &link).unwrap();
        let e = write_dir(&sample(), &link).unwrap_err().to_string();
        assert!(e.contains("link") && e.contains("symbolic link"), "{e}");
    }
}
