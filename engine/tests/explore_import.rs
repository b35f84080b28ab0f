//! Dataset import: folders, zips and CSV/JSON metadata; dedupe; unsafe, non-image, unreadable
//! and non-regular entries skipped and listed; zip bombs and corrupt zips refused; nothing
//! written outside the store.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use engine::explore::{import_dataset, Catalog, ImportOptions, ImportReport};
use engine::Store;

fn png(seed: u32, w: u32, h: u32) -> Vec<u8> {
    let px: Vec<u8> = (0..w * h * 4)
        .map(|i| ((i.wrapping_mul(2654435761) ^ seed.wrapping_mul(40503)) >> 7) as u8 | 3)
        .collect();
    engine::codec::encode_rgba8_png(w, h, &px).unwrap()
}

fn jpeg(w: u32, h: u32) -> Vec<u8> {
    let mut out = Vec::new();
    image::RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, 77]))
        .write_to(
            &mut std::io::Cursor::new(&mut out),
            image::ImageFormat::Jpeg,
        )
        .unwrap();
    out
}

fn write_zip(path: &Path, entries: &[(&str, &[u8])]) {
    let f = std::fs::File::create(path).unwrap();
    let mut z = zip::ZipWriter::new(f);
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in entries {
        z.start_file(*name, opts).unwrap();
        z.write_all(bytes).unwrap();
    }
    z.finish().unwrap();
}

/// Every file under `dir`, recursively, sorted.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if std::fs::symlink_metadata(&p).unwrap().is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

fn reason<'a>(r: &'a ImportReport, name_end: &str) -> &'a str {
    r.skipped
        .iter()
        .find(|s| s.name.ends_with(name_end))
        .map(|s| s.reason.as_str())
        .unwrap_or_else(|| panic!("{name_end} not listed as skipped: {:#?}", r.skipped))
}

#[test]
fn folder_zip_and_csv_import_with_a_report() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let photos = root.join("photos");
    std::fs::create_dir_all(photos.join("sub")).unwrap();
    let a = png(1, 40, 30);
    std::fs::write(photos.join("a.png"), &a).unwrap();
    std::fs::write(photos.join("b.png"), png(2, 20, 20)).unwrap();
    std::fs::write(photos.join("sub/c.jpg"), jpeg(32, 24)).unwrap();
    std::fs::write(photos.join("dup.png"), &a).unwrap();
    std::fs::write(photos.join("notes.txt"), "not a picture").unwrap();
    let b = png(3, 64, 64);
    std::fs::write(photos.join("broken.png"), &b[..b.len() / 2]).unwrap();
    std::os::unix::fs::symlink(photos.join("b.png"), photos.join("link.png")).unwrap();
    let fifo = photos.join("pipe.png");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);

    let zip_path = root.join("more.zip");
    let z1 = png(4, 16, 16);
    write_zip(
        &zip_path,
        &[
            ("z1.png", &z1),
            ("../evil.png", &png(5, 8, 8)),
            ("/abs.png", &png(6, 8, 8)),
            ("dir/z2.png", &png(7, 12, 10)),
            ("readme.md", b"# hi"),
            ("again.png", &a),
        ],
    );
    let meta = root.join("meta.csv");
    std::fs::write(
        &meta,
        "file,label,score\na.png,scratch,0.9\nsub/c.jpg,dent,0.2\nz1.png,scratch,0.5\nmissing.png,stain,1\n",
    )
    .unwrap();
    let store_path = root.join("store/s.redb");
    let store = Store::open(&store_path).unwrap();
    let outside_store = || -> Vec<PathBuf> {
        files_under(root)
            .into_iter()
            .filter(|f| !f.starts_with(root.join("store")))
            .collect()
    };
    let before = outside_store();

    let mut opts = ImportOptions::new("real");
    opts.meta = Some(meta.clone());
    let mut seen = 0;
    let r = import_dataset(
        &store,
        &[photos.clone(), zip_path.clone()],
        &opts,
        &mut |n, _| seen = n,
    )
    .unwrap();
    let added: Vec<&str> = r.added.iter().map(|(_, n)| n.as_str()).collect();
    let p = |s: &str| photos.join(s).display().to_string();
    let z = |s: &str| format!("{}!{s}", zip_path.display());
    assert_eq!(
        added,
        [
            p("a.png"),
            p("b.png"),
            p("sub/c.jpg"),
            z("z1.png"),
            z("dir/z2.png")
        ]
    );
    assert_eq!(seen, 5);
    assert!(!r.existed);
    assert_eq!(r.new_images, 5);
    assert!(reason(&r, "notes.txt").starts_with("not an image"));
    assert!(reason(&r, "broken.png").starts_with("unreadable image"));
    assert!(
        reason(&r, "dup.png").contains("duplicate of") && reason(&r, "dup.png").contains("a.png")
    );
    assert!(reason(&r, "link.png").contains("symlink"));
    assert!(reason(&r, "pipe.png").contains("not a regular file"));
    assert!(reason(&r, "!../evil.png").contains("'../'"));
    assert!(reason(&r, "!/abs.png").contains("absolute"));
    assert!(reason(&r, "!readme.md").starts_with("not an image"));
    assert!(reason(&r, "!again.png").contains("duplicate"));
    assert_eq!(r.skipped.len(), 9, "{:#?}", r.skipped);
    assert_eq!(
        r.unmatched_meta,
        vec![("line 5".to_string(), "missing.png".to_string())]
    );
    // Nothing was written outside the store (its folder is the only new thing).
    assert_eq!(outside_store(), before);
    assert!(!root.parent().unwrap().join("evil.png").exists());

    let cat = Catalog::new(&store);
    let ids = |q: &str| cat.query(q).unwrap();
    let name_of = |id: u64| cat.item(id).unwrap().unwrap().name;
    assert_eq!(ids("dataset:real").len(), 5);
    assert_eq!(ids("source:imported AND dataset:real"), ids("dataset:real"));
    let scratch: Vec<String> = ids("label:scratch").into_iter().map(name_of).collect();
    assert_eq!(scratch, [p("a.png"), z("z1.png")]);
    assert_eq!(ids("score>0.4"), ids("label:scratch"));
    assert_eq!(ids("label:dent AND width=32 AND height=24").len(), 1);
    assert_eq!(ids("created>=2026-01-01").len(), 5);
    let first = r.added[0].0;
    assert_eq!(cat.image_bytes(first).unwrap().unwrap(), a);
    assert_eq!(cat.datasets().unwrap()[0].items, 5);

    // The same files again: all duplicates, the dataset is added to (and says so).
    let again = import_dataset(
        &store,
        std::slice::from_ref(&photos),
        &ImportOptions::new("real"),
        &mut |_, _| {},
    )
    .unwrap();
    assert!(again.existed);
    assert!(again.added.is_empty());
    assert_eq!(ids("dataset:real").len(), 5);
    // Into another dataset: listed there too, bytes stored once.
    let other = import_dataset(
        &store,
        std::slice::from_ref(&photos),
        &ImportOptions::new("other"),
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(other.added.len(), 3);
    assert_eq!(other.new_images, 0);
    assert_eq!(ids("dataset:other").len(), 3);
    assert_eq!(ids("dataset:*").len(), 8);
}

#[test]
fn json_metadata_and_bad_arguments() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    std::fs::write(root.join("p.png"), png(9, 10, 10)).unwrap();
    let meta = root.join("m.json");
    std::fs::write(
        &meta,
        r#"{"p.png": {"label": "chip", "tags": ["a", "b"], "area": 12}}"#,
    )
    .unwrap();
    let store = Store::open(&root.join("s.redb")).unwrap();
    let mut opts = ImportOptions::new("j");
    opts.meta = Some(meta);
    let r = import_dataset(&store, &[root.join("p.png")], &opts, &mut |_, _| {}).unwrap();
    assert_eq!(r.added.len(), 1);
    let cat = Catalog::new(&store);
    assert_eq!(
        cat.query("label:chip tags:a tags:b area=12").unwrap().len(),
        1
    );
    // A missing path and a bad name: errors, nothing imported.
    let e = import_dataset(
        &store,
        &[root.join("nope")],
        &ImportOptions::new("k"),
        &mut |_, _| {},
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("nope") && e.contains("no such file"), "{e}");
    let e = import_dataset(
        &store,
        &[root.join("p.png")],
        &ImportOptions::new("a:b"),
        &mut |_, _| {},
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("dataset name"), "{e}");
    assert!(cat.query("dataset:k").unwrap().is_empty());
}

#[test]
fn zip_bombs_and_corrupt_zips_are_refused_and_nothing_is_imported() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let store = Store::open(&root.join("s.redb")).unwrap();
    let good = png(1, 8, 8);

    // 200 MiB of zeros deflate to about 200 KB: refused on its declared ratio, before inflating.
    let bomb = root.join("bomb.zip");
    {
        let f = std::fs::File::create(&bomb).unwrap();
        let mut z = zip::ZipWriter::new(f);
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .large_file(true);
        z.start_file("ok.png", opts).unwrap();
        z.write_all(&good).unwrap();
        z.start_file("bomb.png", opts).unwrap();
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..200 {
            z.write_all(&zeros).unwrap();
        }
        z.finish().unwrap();
    }
    assert!(std::fs::metadata(&bomb).unwrap().len() < 2 << 20);
    let t = Instant::now();
    let e = import_dataset(
        &store,
        std::slice::from_ref(&bomb),
        &ImportOptions::new("b"),
        &mut |_, _| {},
    )
    .unwrap_err()
    .to_string();
    assert!(t.elapsed().as_secs_f64() < 1.0, "took {:?}", t.elapsed());
    assert!(
        e.contains("bomb.zip") && e.contains("zip bomb") && e.contains("bomb.png"),
        "{e}"
    );

    // Entry count and total size limits.
    let many = root.join("many.zip");
    let names: Vec<String> = (0..12).map(|i| format!("{i}.png")).collect();
    let entries: Vec<(&str, &[u8])> = names
        .iter()
        .map(|n| (n.as_str(), good.as_slice()))
        .collect();
    write_zip(&many, &entries);
    let mut opts = ImportOptions::new("b");
    opts.zip_limits.max_entries = 10;
    let e = import_dataset(&store, std::slice::from_ref(&many), &opts, &mut |_, _| {})
        .unwrap_err()
        .to_string();
    assert!(e.contains("12 entries") && e.contains("limit of 10"), "{e}");
    let mut opts = ImportOptions::new("b");
    opts.zip_limits.max_total_bytes = good.len() as u64 * 5;
    let e = import_dataset(&store, std::slice::from_ref(&many), &opts, &mut |_, _| {})
        .unwrap_err()
        .to_string();
    assert!(e.contains("uncompressed"), "{e}");
    // An entry over the per-entry limit is skipped, not imported.
    let mut opts = ImportOptions::new("b");
    opts.zip_limits.max_entry_bytes = good.len() as u64 - 1;
    let r = import_dataset(&store, std::slice::from_ref(&many), &opts, &mut |_, _| {}).unwrap();
    assert!(r.added.is_empty());
    assert!(
        r.skipped.iter().all(|s| s.reason.starts_with("too big")),
        "{:?}",
        r.skipped
    );

    // A corrupt zip.
    let bad = root.join("bad.zip");
    std::fs::write(&bad, b"PK\x03\x04 this is not really a zip").unwrap();
    let e = import_dataset(
        &store,
        &[root.join("s.redb"), bad.clone()],
        &ImportOptions::new("c"),
        &mut |_, _| {},
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("bad.zip") && e.contains("not a readable zip"),
        "{e}"
    );

    let cat = Catalog::new(&store);
    assert!(cat.query("dataset:c OR dataset:b").unwrap().is_empty());
    assert_eq!(
        cat.datasets()
            .unwrap()
            .iter()
            .map(|d| d.name.as_str())
            .collect::<Vec<_>>(),
        ["b"],
        "only the import that succeeded (with everything skipped) lists its dataset"
    );
}
