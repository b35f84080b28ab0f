//! `devices`: the CPU, the GPUs (NVML, or `DEFECT_STUDIO_FAKE_GPUS`), whether this build has
//! CUDA, and the default device kept in the store (`--set-default` changes it).

use std::path::PathBuf;

use anyhow::{Context, Result};
use engine::devices::{self, DeviceReport, GpuInfo, GpuStatus};
use engine::Store;

/// Bytes as MiB below a GiB, else GiB with one decimal.
fn bytes(b: u64) -> String {
    const MIB: f64 = (1u64 << 20) as f64;
    const GIB: f64 = (1u64 << 30) as f64;
    if b < 1 << 30 {
        format!("{:.0} MiB", b as f64 / MIB)
    } else {
        format!("{:.1} GiB", b as f64 / GIB)
    }
}

fn gpu_lines(g: &GpuInfo) -> Vec<String> {
    let mut out = vec![format!(
        "  cuda:{:<3} {}{}",
        g.index,
        g.name,
        g.uuid
            .as_deref()
            .map(|u| format!(" ({u})"))
            .unwrap_or_default()
    )];
    let mut facts = vec![format!(
        "memory {} used of {}",
        bytes(g.memory_used_bytes),
        bytes(g.memory_total_bytes)
    )];
    if let Some(u) = g.utilization_percent {
        facts.push(format!("utilisation {u} %"));
    }
    if let Some(t) = g.temperature_c {
        facts.push(format!("{t} °C"));
    }
    out.push(format!("           {}", facts.join(", ")));
    if g.processes.is_empty() {
        out.push("           no processes".into());
    }
    for p in &g.processes {
        out.push(format!(
            "           process {} {}{}",
            p.pid,
            p.name.as_deref().unwrap_or("?"),
            p.memory_bytes
                .map(|m| format!(": {}", bytes(m)))
                .unwrap_or_default()
        ));
    }
    out
}

/// The report as text (one fact per line).
fn text(r: &DeviceReport, store_line: &str) -> String {
    let mut lines = Vec::new();
    let physical = r
        .cpu
        .physical_cores
        .map(|p| format!(" ({p} physical)"))
        .unwrap_or_default();
    lines.push(format!(
        "CPU      {}: {} logical core(s){physical}, SIMD {}",
        r.cpu.model, r.cpu.logical_cores, r.cpu.simd
    ));
    match &r.gpus {
        GpuStatus::NoDriver { reason } => lines.push(format!("GPUs     {reason}")),
        GpuStatus::Ok {
            driver_version,
            gpus,
        } => {
            lines.push(format!(
                "GPUs     {} GPU(s), driver {}",
                gpus.len(),
                driver_version.as_deref().unwrap_or("unknown")
            ));
            lines.extend(gpus.iter().flat_map(gpu_lines));
        }
    }
    lines.push(if r.cuda_build {
        "CUDA     this build has CUDA".into()
    } else {
        "CUDA     this build has no CUDA (build with `--features cuda` to run on GPUs)".into()
    });
    let means = match devices::resolve_device(&r.default_device) {
        Ok(d) => format!("runs use {d} here"),
        Err(e) => format!("cannot be used here: {e}"),
    };
    lines.push(format!(
        "default  {} ({means}); {store_line}",
        r.default_device
    ));
    lines.push(format!("choices  {}", r.choices.join(", ")));
    lines.join("\n")
}

/// `devices [--json] [--store PATH] [--set-default DEVICE]`.
pub(crate) fn devices_cmd(
    json: bool,
    store: Option<PathBuf>,
    set_default: Option<&str>,
) -> Result<i32> {
    let path = store.unwrap_or_else(engine::paths::store_path);
    if let Some(device) = set_default {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create the folder of store {}", path.display()))?;
        }
        devices::set_default_device(&Store::open(&path)?, device)?;
    }
    let opened = if path.exists() {
        Some(Store::open_read_only(&path)?)
    } else {
        None
    };
    // A setting that is not a device name is an error here (the report would show `auto`).
    if let Some(s) = &opened {
        devices::default_device(s)?;
    }
    let report = devices::report(devices::provider().as_ref(), opened.as_ref());
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(0);
    }
    if set_default.is_some() {
        println!(
            "default device set to {} (store {})",
            report.default_device,
            path.display()
        );
    }
    let store_line = match &opened {
        Some(_) => format!("store {}", path.display()),
        None => format!("never set: store {} does not exist yet", path.display()),
    };
    println!("{}", text(&report, &store_line));
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_mib_or_gib() {
        assert_eq!(bytes(0), "0 MiB");
        assert_eq!(bytes(512 << 20), "512 MiB");
        assert_eq!(bytes(80 << 30), "80.0 GiB");
        assert_eq!(bytes((3 << 30) + (1 << 29)), "3.5 GiB");
    }
}
