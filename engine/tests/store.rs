//! The redb store: tables, versions, reopening, schema versions.

use engine::store::{now_ms, OutputRecord, RunRecord, RunStatus, Store};

fn run_record(name: &str) -> RunRecord {
    RunRecord {
        graph_name: name.into(),
        graph_json: "{}".into(),
        seed: 5,
        items: 2,
        shard: None,
        status: RunStatus::Running,
        pid: std::process::id(),
        started_ms: now_ms(),
        ended_ms: None,
        node_timings: Vec::new(),
        error: None,
        graph_path: None,
        retries: Vec::new(),
        device: None,
        stats: Default::default(),
    }
}

fn output_record(run_id: u64, item: u64) -> OutputRecord {
    OutputRecord {
        run_id,
        item,
        node: "save".into(),
        seed: 5 + item,
        path: format!("/out/{item}.png"),
        sha256: "ab".into(),
        width: 2,
        height: 1,
        mask_path: None,
        mask_sha256: None,
        created_ms: now_ms(),
        label: "scratch".into(),
        overrides: serde_json::Value::Null,
        clean_path: None,
        clean_sha256: None,
        inspection: Default::default(),
    }
}

#[test]
fn everything_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/store.redb");
    {
        let s = Store::open(&path).unwrap();
        assert_eq!(s.save_graph("plate", "{\"v\":1}").unwrap(), 1);
        assert_eq!(s.save_graph("plate", "{\"v\":2}").unwrap(), 2);
        assert_eq!(s.save_graph("other", "{}").unwrap(), 1);
        let run = s.begin_run(&run_record("plate")).unwrap();
        let o1 = s
            .add_output(&output_record(run, 0), b"png-0", Some(b"mask-0"))
            .unwrap();
        let o2 = s
            .add_output(&output_record(run, 1), b"png-1", None)
            .unwrap();
        assert_eq!((o1, o2), (1, 2));
        let mut rec = s.run(run).unwrap().unwrap();
        rec.status = RunStatus::Succeeded;
        rec.ended_ms = Some(now_ms());
        s.update_run(run, &rec).unwrap();
        s.set_bookmark(o2, "nice scratch").unwrap();
        s.save_preset(
            "Texture",
            "steel",
            &serde_json::json!({"material": "brushed_metal"}),
        )
        .unwrap();
        s.save_preset(
            "Texture",
            "oak",
            &serde_json::json!({"material": "wood_grain"}),
        )
        .unwrap();
        s.save_preset("Noise", "fine", &serde_json::json!({"scale": 8}))
            .unwrap();
        s.set_setting("theme", &serde_json::json!("dark")).unwrap();
    }
    let s = Store::open(&path).unwrap();
    let versions = s.graph_versions().unwrap();
    assert_eq!(versions.len(), 3);
    assert_eq!(s.latest_graph("plate").unwrap().unwrap().json, "{\"v\":2}");
    let runs = s.runs().unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].1.status, RunStatus::Succeeded);
    let outs = s.outputs(Some(runs[0].0)).unwrap();
    assert_eq!(outs.len(), 2);
    assert_eq!(s.output_png(1).unwrap().unwrap(), b"png-0");
    assert_eq!(s.output_mask_png(1).unwrap().unwrap(), b"mask-0");
    assert_eq!(s.output_mask_png(2).unwrap(), None);
    assert_eq!(s.outputs(Some(99)).unwrap().len(), 0);
    assert_eq!(
        s.bookmarks().unwrap(),
        vec![(2, "nice scratch".to_string())]
    );
    let presets = s.presets("Texture").unwrap();
    assert_eq!(
        presets.iter().map(|p| p.0.as_str()).collect::<Vec<_>>(),
        ["oak", "steel"]
    );
    s.delete_preset("Texture", "oak").unwrap();
    assert_eq!(s.presets("Texture").unwrap().len(), 1);
    assert_eq!(s.setting("theme").unwrap(), Some(serde_json::json!("dark")));
    assert_eq!(s.setting("missing").unwrap(), None);
    s.remove_bookmark(2).unwrap();
    assert!(s.bookmarks().unwrap().is_empty());
}

#[test]
fn a_dead_running_run_reads_as_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(&dir.path().join("s.redb")).unwrap();
    let mut rec = run_record("x");
    assert_eq!(
        rec.effective_status(),
        RunStatus::Running,
        "our own process is alive"
    );
    rec.pid = u32::MAX - 1; // no such process
    let id = s.begin_run(&rec).unwrap();
    assert_eq!(
        s.run(id).unwrap().unwrap().effective_status(),
        RunStatus::Interrupted
    );
}

#[test]
fn a_newer_schema_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    {
        let s = Store::open(&path).unwrap();
        s.save_graph("kept", "{}").unwrap();
    }
    {
        // Simulate a store written by a future version.
        let db = redb::Database::builder()
            .set_concurrency_mode(redb::ConcurrencyMode::MultiWriter)
            .create(&path)
            .unwrap();
        let tx = db.begin_write().unwrap();
        {
            let mut meta = tx
                .open_table(redb::TableDefinition::<&str, u64>::new("meta"))
                .unwrap();
            meta.insert("schema.runs", 9).unwrap();
        }
        tx.commit().unwrap();
    }
    let err = Store::open(&path).err().expect("refused");
    assert!(
        err.to_string().contains("runs") && err.to_string().contains("newer"),
        "{err}"
    );
    // Put the version back: the data is still there.
    {
        let db = redb::Database::builder()
            .set_concurrency_mode(redb::ConcurrencyMode::MultiWriter)
            .create(&path)
            .unwrap();
        let tx = db.begin_write().unwrap();
        {
            let mut meta = tx
                .open_table(redb::TableDefinition::<&str, u64>::new("meta"))
                .unwrap();
            meta.insert("schema.runs", 1).unwrap();
        }
        tx.commit().unwrap();
    }
    assert_eq!(
        Store::open(&path).unwrap().graph_versions().unwrap().len(),
        1
    );
}

#[test]
fn a_file_that_is_not_a_store_gives_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junk.redb");
    std::fs::write(&path, vec![0x42u8; 10000]).unwrap();
    let err = Store::open(&path).err().expect("refused");
    assert!(err.to_string().contains("junk.redb"), "{err}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        vec![0x42u8; 10000],
        "the file was changed"
    );
}

#[test]
fn an_empty_file_is_refused_never_made_into_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    std::fs::write(&path, b"").unwrap();
    for err in [
        Store::open(&path).err().expect("refused"),
        Store::open_read_only(&path).err().expect("refused"),
    ] {
        let msg = err.to_string();
        assert!(
            msg.contains("store.redb") && msg.contains("empty file"),
            "{msg}"
        );
    }
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
    // A folder is not a store either.
    let folder = dir.path().join("folder.redb");
    std::fs::create_dir(&folder).unwrap();
    let err = Store::open(&folder).err().expect("refused").to_string();
    assert!(
        err.contains("folder.redb") && err.contains("not a file"),
        "{err}"
    );
}

#[test]
fn a_read_only_handle_reads_everything_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    assert!(Store::open_read_only(&path)
        .err()
        .expect("no store yet")
        .to_string()
        .contains("no such store"));
    assert!(!path.exists(), "a read-only open made a store");
    {
        let s = Store::open(&path).unwrap();
        let run = s.begin_run(&run_record("plate")).unwrap();
        s.add_output(&output_record(run, 0), b"png-0", Some(b"mask-0"))
            .unwrap();
        s.save_graph("plate", "{}").unwrap();
    }
    // No stray temporary store beside it.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("s.redb")]);
    let before = std::fs::read(&path).unwrap();
    {
        let s = Store::open_read_only(&path).unwrap();
        assert!(s.is_read_only());
        assert_eq!(s.runs().unwrap().len(), 1);
        assert_eq!(s.outputs(None).unwrap().len(), 1);
        assert_eq!(s.output_png(1).unwrap().unwrap(), b"png-0");
        assert_eq!(s.output_mask_png(1).unwrap().unwrap(), b"mask-0");
        assert_eq!(s.graph_versions().unwrap().len(), 1);
        assert!(s.trainings().unwrap().is_empty());
        let err = s.save_graph("plate", "{}").expect_err("refused");
        assert!(err.to_string().contains("read-only"), "{err}");
        // A writer in another handle meanwhile: the reader sees its commits.
        let w = Store::open(&path).unwrap();
        w.save_graph("other", "{}").unwrap();
        assert_eq!(s.graph_versions().unwrap().len(), 2);
        // And a reader opened while the writer holds the store.
        let r = Store::open_read_only(&path).unwrap();
        assert_eq!(r.graph_versions().unwrap().len(), 2);
    }
    let after_write = std::fs::read(&path).unwrap();
    assert_ne!(before, after_write);
    {
        let s = Store::open_read_only(&path).unwrap();
        s.runs().unwrap();
        s.outputs(None).unwrap();
    }
    assert_eq!(std::fs::read(&path).unwrap(), after_write);
}

#[test]
fn store_check_finds_outputs_whose_bytes_do_not_match() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    let s = Store::open(&path).unwrap();
    let png = engine::codec::encode_image_png(
        &engine::Image {
            width: 2,
            height: 1,
            data: vec![0.5; 8],
        },
        &[],
    )
    .unwrap();
    let run = s.begin_run(&run_record("plate")).unwrap();
    let good = OutputRecord {
        sha256: engine::hashing::sha256_hex(&png),
        ..output_record(run, 0)
    };
    s.add_output(&good, &png, None).unwrap();
    // Bytes that do not match their hash, and bytes that match but are no PNG.
    s.add_output(&good, b"not a png", None).unwrap();
    let junk = OutputRecord {
        sha256: engine::hashing::sha256_hex(b"junk"),
        ..output_record(run, 2)
    };
    s.add_output(&junk, b"junk", None).unwrap();
    // A mask that is not what the record says.
    let masked = OutputRecord {
        mask_sha256: Some("00".into()),
        ..good.clone()
    };
    s.add_output(&masked, &png, Some(&png)).unwrap();
    let report = engine::export::check_store(&s).unwrap();
    assert_eq!(report.checked, 4);
    let bad: Vec<(u64, &str)> = report
        .bad
        .iter()
        .map(|b| (b.id, b.problem.as_str()))
        .collect();
    assert_eq!(bad.len(), 3, "{bad:?}");
    assert!(bad[0].0 == 2 && bad[0].1.contains("sha256"), "{bad:?}");
    assert!(
        bad[1].0 == 3 && bad[1].1.contains("does not decode"),
        "{bad:?}"
    );
    assert!(bad[2].0 == 4 && bad[2].1.starts_with("mask:"), "{bad:?}");
    // Export leaves them out, or refuses when strict.
    drop(s);
    let (items, skipped) =
        engine::export::items_from_stores(std::slice::from_ref(&path), false).unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(
        skipped.iter().map(|b| b.id).collect::<Vec<_>>(),
        vec![2, 3, 4]
    );
    let err = engine::export::items_from_stores(&[path], true)
        .expect_err("strict refuses")
        .to_string();
    assert!(err.contains("3 bad") && err.contains("output 2"), "{err}");
}

#[test]
fn clean_images_are_stored_checked_exported_and_deleted_with_their_output() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    let s = Store::open(&path).unwrap();
    let img = |v: f32| {
        engine::codec::encode_image_png(
            &engine::Image {
                width: 2,
                height: 1,
                data: vec![v; 8],
            },
            &[],
        )
        .unwrap()
    };
    let (png, clean) = (img(0.5), img(0.25));
    let run = s.begin_run(&run_record("plate")).unwrap();
    let rec = OutputRecord {
        sha256: engine::hashing::sha256_hex(&png),
        clean_sha256: Some(engine::hashing::sha256_hex(&clean)),
        ..output_record(run, 0)
    };
    let a = s
        .add_output_with_clean(&rec, &png, None, Some(&clean))
        .unwrap();
    assert_eq!(s.output_clean_png(a).unwrap(), Some(clean.clone()));
    // A clean image that is not what the record says is found by `store check`.
    let b = s
        .add_output_with_clean(&rec, &png, None, Some(&png))
        .unwrap();
    // An output without one has none.
    let plain = OutputRecord {
        clean_sha256: None,
        ..rec.clone()
    };
    let c = s.add_output(&plain, &png, None).unwrap();
    assert_eq!(s.output_clean_png(c).unwrap(), None);
    let report = engine::export::check_store(&s).unwrap();
    let bad: Vec<(u64, &str)> = report
        .bad
        .iter()
        .map(|x| (x.id, x.problem.as_str()))
        .collect();
    assert_eq!(bad.len(), 1, "{bad:?}");
    assert!(
        bad[0].0 == b && bad[0].1.starts_with("clean image:"),
        "{bad:?}"
    );
    // Export items carry it.
    let items = engine::export::items_from_store(&s, 0, &[a, c]).unwrap();
    assert_eq!(items[0].clean_png.as_deref(), Some(clean.as_slice()));
    assert_eq!(items[1].clean_png, None);
    // Deleting the output deletes its clean image.
    s.delete_output(a).unwrap();
    assert_eq!(s.output_clean_png(a).unwrap(), None);
}
