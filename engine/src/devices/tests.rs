use super::*;

fn gpu(index: u32, name: &str, used_mib: u64, total_mib: u64) -> GpuInfo {
    GpuInfo {
        index,
        name: name.into(),
        uuid: Some(format!("GPU-{index}")),
        memory_used_bytes: used_mib << 20,
        memory_total_bytes: total_mib << 20,
        utilization_percent: Some(37),
        temperature_c: Some(51),
        processes: vec![GpuProcess {
            pid: 4242,
            name: Some("python".into()),
            memory_bytes: Some(512 << 20),
        }],
    }
}

fn temp_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store.redb")).unwrap();
    (dir, store)
}

#[test]
fn the_nvml_provider_says_no_driver_where_nvml_is_absent() {
    // On the build machines NVML is absent; where it is present the provider lists GPUs.
    match Nvml.query() {
        GpuStatus::NoDriver { reason } => {
            assert!(reason.starts_with("no NVIDIA driver ("), "{reason}");
            assert!(reason.ends_with(')') && !reason.contains('\n'), "{reason}");
        }
        GpuStatus::Ok { gpus, .. } => assert!(gpus.iter().all(|g| !g.name.is_empty())),
    }
    let r = report(&NoGpus("test".into()), None);
    assert_eq!(r.choices, ["cpu"], "no GPU: only the CPU to choose");
    assert!(matches!(r.gpus, GpuStatus::NoDriver { .. }));
}

#[test]
fn fake_gpus_go_through_the_report() {
    let fake = FakeGpus(vec![
        gpu(0, "Fake A100", 1024, 40960),
        gpu(1, "Fake T4", 0, 15360),
    ]);
    let (_dir, store) = temp_store();
    set_default_device(&store, "cuda:1").unwrap();
    let r = report(&fake, Some(&store));
    assert_eq!(r.choices, ["cpu", "cuda:0", "cuda:1"]);
    assert_eq!(r.default_device, "cuda:1");
    assert_eq!(r.cuda_build, cfg!(feature = "cuda"));
    assert_eq!(r.cpu, cpu_info());
    let GpuStatus::Ok {
        driver_version,
        gpus,
    } = &r.gpus
    else {
        panic!("{:?}", r.gpus);
    };
    assert_eq!(driver_version.as_deref(), Some("fake"));
    assert_eq!(gpus, &fake.0);
    // Without a store the default is `auto`; the report survives JSON both ways.
    let r = report(&fake, None);
    assert_eq!(r.default_device, "auto");
    let json = serde_json::to_string(&r).unwrap();
    assert!(json.contains(r#""status":"ok""#), "{json}");
    assert_eq!(serde_json::from_str::<DeviceReport>(&json).unwrap(), r);
}

#[test]
fn a_fake_gpu_file_is_read_and_a_bad_one_named() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("gpus.json");
    std::fs::write(
        &good,
        r#"[{"index": 0, "name": "Fake H100", "memory_total_bytes": 85899345920,
             "processes": [{"pid": 7}]}]"#,
    )
    .unwrap();
    let GpuStatus::Ok { gpus, .. } = fake_from_file(&good).query() else {
        panic!("a good file gives GPUs");
    };
    assert_eq!(gpus.len(), 1);
    assert_eq!(gpus[0].name, "Fake H100");
    assert_eq!(gpus[0].memory_used_bytes, 0, "left out: unknown");
    assert_eq!(gpus[0].processes[0].pid, 7);
    assert_eq!(gpus[0].temperature_c, None);

    let typo = dir.path().join("typo.json");
    std::fs::write(&typo, r#"[{"index": 0, "nmae": "x"}]"#).unwrap();
    let missing = dir.path().join("missing.json");
    for (path, why) in [
        (&typo, "not a JSON list of GPUs"),
        (&missing, "cannot read it"),
    ] {
        let GpuStatus::NoDriver { reason } = fake_from_file(path).query() else {
            panic!("a bad file gives no GPUs");
        };
        assert!(reason.starts_with("no NVIDIA driver ("), "{reason}");
        assert!(reason.contains(&path.display().to_string()), "{reason}");
        assert!(
            reason.contains(FAKE_GPUS_ENV) && reason.contains(why),
            "{reason}"
        );
        assert!(!reason.contains('\n'), "{reason}");
    }
}

#[test]
fn device_names_have_one_spelling() {
    for (given, kept) in [
        ("auto", "auto"),
        ("cpu", "cpu"),
        (" CPU ", "cpu"),
        ("cuda", "cuda:0"),
        ("cuda:0", "cuda:0"),
        ("cuda:3", "cuda:3"),
        ("CUDA:12", "cuda:12"),
    ] {
        assert_eq!(normalize_device(given).unwrap(), kept, "{given}");
    }
    for bad in [
        "", "gpu", "cuda:", "cuda:-1", "cuda:+1", "cuda:x", "cuda0", "metal", "cpu:0",
    ] {
        let e = normalize_device(bad).unwrap_err().to_string();
        assert!(e.contains("use auto, cpu, cuda or cuda:N"), "{bad}: {e}");
        assert!(e.contains(&format!("\"{bad}\"")), "{bad}: {e}");
    }
}

#[test]
fn the_default_device_persists_in_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    {
        let store = Store::open(&path).unwrap();
        assert_eq!(default_device(&store).unwrap(), "auto", "never set");
        set_default_device(&store, "cuda").unwrap();
        assert_eq!(default_device(&store).unwrap(), "cuda:0");
        let e = set_default_device(&store, "tpu").unwrap_err().to_string();
        assert!(e.contains("\"tpu\""), "{e}");
        assert_eq!(
            default_device(&store).unwrap(),
            "cuda:0",
            "a bad name changes nothing"
        );
        set_default_device(&store, "cpu").unwrap();
    }
    let store = Store::open_read_only(&path).unwrap();
    assert_eq!(default_device(&store).unwrap(), "cpu", "kept across opens");
    drop(store);

    // A setting written by something else that is not a device name is named as such.
    let store = Store::open(&path).unwrap();
    store
        .set_setting(DEFAULT_DEVICE_KEY, &serde_json::json!(3))
        .unwrap();
    let e = default_device(&store).unwrap_err().to_string();
    assert!(
        e.contains(DEFAULT_DEVICE_KEY) && e.contains("store.redb"),
        "{e}"
    );
    store
        .set_setting(DEFAULT_DEVICE_KEY, &serde_json::json!("vulkan"))
        .unwrap();
    let e = default_device(&store).unwrap_err().to_string();
    assert!(
        e.contains("\"vulkan\"") && e.contains(DEFAULT_DEVICE_KEY),
        "{e}"
    );
    assert_eq!(
        report(&FakeGpus::default(), Some(&store)).default_device,
        "auto",
        "the report falls back"
    );
}

#[test]
fn the_run_device_is_the_target_else_the_default_resolved() {
    let (_dir, store) = temp_store();
    let gpu_usable = candle_core::Device::cuda_if_available(0).is_ok_and(|d| d.is_cuda());
    let auto = if gpu_usable { "cuda:0" } else { "cpu" };
    assert_eq!(run_device(None, &store).unwrap(), auto, "unset: auto");
    assert_eq!(run_device(Some("auto"), &store).unwrap(), auto);
    assert_eq!(run_device(Some("CPU"), &store).unwrap(), "cpu");
    set_default_device(&store, "cpu").unwrap();
    assert_eq!(run_device(None, &store).unwrap(), "cpu");
    assert_eq!(
        run_device(Some("auto"), &store).unwrap(),
        auto,
        "the target wins"
    );
    let e = run_device(Some("npu"), &store).unwrap_err().to_string();
    assert!(e.contains("\"npu\""), "{e}");
    if !cfg!(feature = "cuda") {
        // No CUDA in this build: a GPU target fails, naming it and where it came from.
        let e = run_device(Some("cuda:3"), &store).unwrap_err().to_string();
        assert!(e.contains("cuda:3") && e.contains("target"), "{e}");
        set_default_device(&store, "cuda:3").unwrap();
        let e = run_device(None, &store).unwrap_err().to_string();
        assert!(e.contains("cuda:3") && e.contains("default device"), "{e}");
        assert_eq!(run_device(Some("cpu"), &store).unwrap(), "cpu");
    }
}
