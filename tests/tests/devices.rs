//! `devices` end to end: the CPU, the GPUs (NVML, or fake ones from `DEFECT_STUDIO_FAKE_GPUS`),
//! the default device kept in the store across processes, and runs that record their device.

mod common;

use common::*;
use engine::devices::{DeviceReport, GpuInfo, GpuProcess, GpuProvider, GpuStatus, FAKE_GPUS_ENV};

/// A texture, saved: a recipe that runs in a moment.
const TINY: &str = r#"{
  "format": "defect-studio/graph", "version": 1,
  "nodes": {
    "tex": {"kind": "Texture", "version": 1,
            "params": {"width": 16, "height": 16, "material": "concrete"}},
    "save": {"kind": "SaveImage", "version": 1}
  },
  "links": [{"from": ["tex", "image"], "to": ["save", "image"]}]
}"#;

fn fake_gpus() -> Vec<GpuInfo> {
    vec![
        GpuInfo {
            index: 0,
            name: "Fake A100-SXM4-40GB".into(),
            uuid: Some("GPU-0000-fake".into()),
            memory_used_bytes: 3 << 30,
            memory_total_bytes: 40 << 30,
            utilization_percent: Some(87),
            temperature_c: Some(64),
            processes: vec![GpuProcess {
                pid: 4242,
                name: Some("python3".into()),
                memory_bytes: Some(2 << 30),
            }],
        },
        GpuInfo {
            index: 1,
            name: "Fake T4".into(),
            uuid: None,
            memory_used_bytes: 300 << 20,
            memory_total_bytes: 15 << 30,
            utilization_percent: None,
            temperature_c: None,
            processes: Vec::new(),
        },
    ]
}

impl Env {
    /// `devices ARGS` with the fake GPUs of `file` (or none: NVML).
    fn devices(&self, fake: Option<&std::path::Path>, args: &[&str]) -> std::process::Output {
        let mut c = self.cmd();
        c.env_remove(FAKE_GPUS_ENV);
        if let Some(f) = fake {
            c.env(FAKE_GPUS_ENV, f);
        }
        c.arg("devices").args(args).output().unwrap()
    }

    fn devices_json(&self, fake: Option<&std::path::Path>) -> DeviceReport {
        let o = self.devices(fake, &["--json"]);
        assert!(o.status.success(), "{}", stderr(&o));
        serde_json::from_slice(&o.stdout).unwrap()
    }
}

#[test]
fn without_a_driver_devices_says_so_with_the_cpu() {
    let env = Env::new();
    let o = env.devices(None, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    let cpu = engine::devices::cpu_info();
    assert!(text.contains(&format!("CPU      {}", cpu.model)), "{text}");
    assert!(text.contains(&format!("SIMD {}", cpu.simd)), "{text}");
    let auto = engine::devices::resolve_device("auto").unwrap();
    assert!(
        text.contains(&format!("default  auto (runs use {auto} here)")),
        "{text}"
    );
    // This machine's NVML, asked in this process, decides what the CLI must say.
    match engine::devices::Nvml.query() {
        GpuStatus::NoDriver { reason } => {
            assert!(reason.starts_with("no NVIDIA driver ("), "{reason}");
            assert!(text.contains(&format!("GPUs     {reason}")), "{text}");
            assert!(text.ends_with("choices  cpu\n"), "{text}");
            let r = env.devices_json(None);
            assert!(matches!(r.gpus, GpuStatus::NoDriver { .. }), "{r:?}");
            assert_eq!(r.choices, ["cpu"]);
        }
        GpuStatus::Ok { gpus, .. } => {
            for g in gpus {
                assert!(text.contains(&g.name), "{text}");
            }
        }
    }
}

#[test]
fn fake_gpus_are_listed_in_text_and_json() {
    let env = Env::new();
    let file = env.write("gpus.json", &serde_json::to_string(&fake_gpus()).unwrap());
    let o = env.devices(Some(&file), &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    for line in [
        "GPUs     2 GPU(s), driver fake",
        "  cuda:0   Fake A100-SXM4-40GB (GPU-0000-fake)",
        "memory 3.0 GiB used of 40.0 GiB, utilisation 87 %, 64 °C",
        "process 4242 python3: 2.0 GiB",
        "  cuda:1   Fake T4",
        "memory 300 MiB used of 15.0 GiB",
        "no processes",
        "choices  cpu, cuda:0, cuda:1",
    ] {
        assert!(text.contains(line), "{line:?} in\n{text}");
    }
    let r = env.devices_json(Some(&file));
    assert_eq!(
        r.gpus,
        GpuStatus::Ok {
            driver_version: Some("fake".into()),
            gpus: fake_gpus()
        }
    );
    assert_eq!(r.choices, ["cpu", "cuda:0", "cuda:1"]);
    assert_eq!(r.default_device, "auto");
    assert_eq!(r.cpu, engine::devices::cpu_info());

    // A file that is not a list of GPUs is named, and the command still reports the CPU.
    let bad = env.write("bad.json", r#"{"gpus": 3}"#);
    let o = env.devices(Some(&bad), &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains(&format!(
            "GPUs     no NVIDIA driver ({FAKE_GPUS_ENV}={}: not a JSON list of GPUs",
            bad.display()
        )),
        "{text}"
    );
}

#[test]
fn the_default_device_persists_across_processes_and_bad_names_are_refused() {
    let env = Env::new();
    let file = env.write("gpus.json", &serde_json::to_string(&fake_gpus()).unwrap());
    let o = env.devices(Some(&file), &["--set-default", "cuda"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains(&format!(
            "default device set to cuda:0 (store {})",
            env.store().display()
        )),
        "{}",
        stdout(&o)
    );
    assert_eq!(env.devices_json(Some(&file)).default_device, "cuda:0");
    let o = env.devices(None, &["--set-default", "cpu", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r: DeviceReport = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r.default_device, "cpu");
    assert_eq!(
        env.devices_json(None).default_device,
        "cpu",
        "a new process"
    );
    let text = stdout(&env.devices(None, &[]));
    assert!(
        text.contains(&format!(
            "default  cpu (runs use cpu here); store {}",
            env.store().display()
        )),
        "{text}"
    );

    for bad in ["tpu", "cuda:x", "gpu:0"] {
        let o = env.devices(None, &["--set-default", bad]);
        assert!(!o.status.success(), "{bad} accepted");
        let err = stderr(&o);
        assert!(
            err.contains(&format!("\"{bad}\"")) && err.contains("use auto, cpu, cuda or cuda:N"),
            "{err}"
        );
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    }
    assert_eq!(env.devices_json(None).default_device, "cpu", "unchanged");
}

#[test]
fn runs_record_their_device_and_history_shows_it() {
    let env = Env::new();
    let graph = env.write("tiny.json", TINY);
    let out = env.out();
    let run = |extra: &[&str]| {
        let mut args = vec![
            "run",
            graph.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        env.run(&args)
    };
    let auto = engine::devices::resolve_device("auto").unwrap();
    let o = run(&[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(&["--device", "cpu"]);
    assert!(o.status.success(), "{}", stderr(&o));

    // A default device of cuda:3: a run without --device uses it (and fails on a machine
    // without that GPU, naming it); --device cpu overrides it.
    let o = env.devices(None, &["--set-default", "cuda:3"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let cuda_build = env.devices_json(None).cuda_build;
    let o = run(&[]);
    if !cuda_build {
        assert!(!o.status.success(), "ran on a GPU this build cannot use");
        let err = stderr(&o);
        assert!(
            err.contains("cuda:3") && err.contains("default device"),
            "{err}"
        );
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    }
    let o = run(&["--device", "cpu"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(&["--device", "tpu"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--device") && stderr(&o).contains("\"tpu\""));

    let history = env.history();
    let devices: Vec<&str> = history
        .iter()
        .map(|r| r["device"].as_str().unwrap())
        .collect();
    let expected = if cuda_build {
        vec![auto.as_str(), "cpu", "cuda:3", "cpu"]
    } else {
        vec![auto.as_str(), "cpu", "cpu"]
    };
    assert_eq!(devices, expected);
    let text = stdout(&env.run(&["history"]));
    assert_eq!(
        text.matches(" on cpu\n").count(),
        expected.iter().filter(|d| **d == "cpu").count(),
        "{text}"
    );

    // A run recorded before devices were (no device) shows null and "-".
    let store = engine::Store::open(&env.store()).unwrap();
    let (_, mut old) = store.runs().unwrap().remove(0);
    old.device = None;
    old.graph_name = "old-run".into();
    store.begin_run(&old).unwrap();
    drop(store);
    let history = env.history();
    let last = history.last().unwrap();
    assert_eq!(last["graph"], "old-run");
    assert!(last["device"].is_null(), "{last}");
    let text = stdout(&env.run(&["history"]));
    assert!(
        text.lines()
            .any(|l| l.contains("old-run") && l.ends_with(" on -")),
        "{text}"
    );
}
