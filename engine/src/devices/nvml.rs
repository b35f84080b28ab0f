//! NVIDIA GPUs through NVML (`nvml-wrapper`): the library is loaded with libloading at each
//! query, so a build or a machine without the driver works and reports why in one line.

use std::collections::BTreeMap;
use std::ffi::OsStr;

use nvml_wrapper::enum_wrappers::device::TemperatureSensor;
use nvml_wrapper::enums::device::UsedGpuMemory;
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::struct_wrappers::device::ProcessInfo;
use nvml_wrapper::{Device, Nvml as NvmlLib};

use super::{GpuInfo, GpuProcess, GpuStatus};

/// The prefix of every [`GpuStatus::NoDriver`] reason.
pub const NO_DRIVER: &str = "no NVIDIA driver";

/// The NVML library names tried in turn: the driver installs the versioned name; the bare one
/// comes with development packages (and is nvml-wrapper's default).
#[cfg(unix)]
const LIB_NAMES: &[&str] = &["libnvidia-ml.so.1", "libnvidia-ml.so"];
#[cfg(windows)]
const LIB_NAMES: &[&str] = &["nvml.dll"];
#[cfg(not(any(unix, windows)))]
const LIB_NAMES: &[&str] = &[];

/// A [`GpuStatus::NoDriver`] with `why` after [`NO_DRIVER`], on one line.
pub fn no_driver(why: &str) -> GpuStatus {
    let why: Vec<&str> = why.split_whitespace().collect();
    GpuStatus::NoDriver {
        reason: format!("{NO_DRIVER} ({})", why.join(" ")),
    }
}

/// Why NVML could not start, for the user.
fn init_problem(name: &str, e: &NvmlError) -> String {
    match e {
        NvmlError::LibloadingError(e) => format!("{name} could not be loaded: {e}"),
        NvmlError::FailedToLoadSymbol(s) => format!("{name} lacks a function we need: {s}"),
        NvmlError::DriverNotLoaded => {
            "NVML loaded, but the NVIDIA kernel driver is not running".into()
        }
        NvmlError::NoPermission => "NVML has no permission to talk to the driver".into(),
        other => format!("NVML ({name}) failed to start: {other}"),
    }
}

/// Loads and initialises NVML, trying each library name; the error names the first problem.
fn init() -> Result<NvmlLib, String> {
    let mut first = None;
    for name in LIB_NAMES {
        match NvmlLib::builder().lib_path(OsStr::new(name)).init() {
            Ok(n) => return Ok(n),
            Err(e) => {
                first.get_or_insert_with(|| init_problem(name, &e));
                // The library is there but the driver says no: another name will not help.
                if !matches!(
                    e,
                    NvmlError::LibloadingError(_) | NvmlError::FailedToLoadSymbol(_)
                ) {
                    break;
                }
            }
        }
    }
    Err(first.unwrap_or_else(|| "NVML is not available on this platform".into()))
}

/// Every GPU NVML lists, with its processes (see [`super::GpuInfo`]).
pub fn query() -> GpuStatus {
    let nvml = match init() {
        Ok(n) => n,
        Err(why) => return no_driver(&why),
    };
    let driver_version = nvml.sys_driver_version().ok();
    let count = match nvml.device_count() {
        Ok(n) => n,
        Err(e) => return no_driver(&format!("NVML started but cannot count the GPUs: {e}")),
    };
    let gpus = (0..count)
        .map(|index| match nvml.device_by_index(index) {
            Ok(d) => gpu(&nvml, index, &d),
            Err(e) => GpuInfo {
                index,
                name: format!("GPU {index} (NVML cannot open it: {e})"),
                ..GpuInfo::default()
            },
        })
        .collect();
    GpuStatus::Ok {
        driver_version,
        gpus,
    }
}

/// One GPU; what NVML cannot tell stays unknown (`None`, 0 or empty).
fn gpu(nvml: &NvmlLib, index: u32, d: &Device) -> GpuInfo {
    let memory = d.memory_info().ok();
    GpuInfo {
        index,
        name: d.name().unwrap_or_else(|_| format!("GPU {index}")),
        uuid: d.uuid().ok(),
        memory_used_bytes: memory.as_ref().map_or(0, |m| m.used),
        memory_total_bytes: memory.as_ref().map_or(0, |m| m.total),
        utilization_percent: d.utilization_rates().ok().map(|u| u.gpu),
        temperature_c: d.temperature(TemperatureSensor::Gpu).ok(),
        processes: processes(
            nvml,
            d.running_compute_processes().unwrap_or_default(),
            d.running_graphics_processes().unwrap_or_default(),
        ),
    }
}

/// Compute and graphics processes, each pid once (compute first), by pid.
fn processes(
    nvml: &NvmlLib,
    compute: Vec<ProcessInfo>,
    graphics: Vec<ProcessInfo>,
) -> Vec<GpuProcess> {
    let mut by_pid: BTreeMap<u32, Option<u64>> = BTreeMap::new();
    for p in compute.into_iter().chain(graphics) {
        let memory = match p.used_gpu_memory {
            UsedGpuMemory::Used(b) => Some(b),
            UsedGpuMemory::Unavailable => None,
        };
        let slot = by_pid.entry(p.pid).or_insert(None);
        *slot = slot.or(memory);
    }
    by_pid
        .into_iter()
        .map(|(pid, memory_bytes)| GpuProcess {
            pid,
            name: process_name(nvml, pid),
            memory_bytes,
        })
        .collect()
}

/// A process's name: NVML's (what `nvidia-smi` shows), else `/proc/PID/comm`.
fn process_name(nvml: &NvmlLib, pid: u32) -> Option<String> {
    nvml.sys_process_name(pid, 256)
        .ok()
        .filter(|n| !n.trim().is_empty())
        .or_else(|| std::fs::read_to_string(format!("/proc/{pid}/comm")).ok())
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reason_is_one_line_after_the_prefix() {
        let GpuStatus::NoDriver { reason } = no_driver("libnvidia-ml.so.1: cannot open\n  file")
        else {
            panic!("not NoDriver");
        };
        assert_eq!(
            reason,
            "no NVIDIA driver (libnvidia-ml.so.1: cannot open file)"
        );
    }

    /// Where NVML cannot be loaded (this build machine, CI), the query says so in one line;
    /// where a driver runs, it lists GPUs with names and memory.
    #[test]
    fn the_query_reports_no_driver_or_real_gpus() {
        let loadable = LIB_NAMES.iter().any(|n| {
            // SAFETY: loading the NVIDIA management library runs no code we pass it; it is
            // unloaded again at once.
            unsafe { libloading::Library::new(n) }.is_ok()
        });
        match query() {
            GpuStatus::NoDriver { reason } => {
                assert!(reason.starts_with(NO_DRIVER), "{reason}");
                assert!(!reason.contains('\n'), "{reason}");
                if !loadable {
                    assert!(reason.contains("could not be loaded"), "{reason}");
                }
            }
            GpuStatus::Ok { gpus, .. } => {
                assert!(loadable, "NVML answered without its library");
                for (i, g) in gpus.iter().enumerate() {
                    assert_eq!(g.index as usize, i);
                    assert!(!g.name.is_empty());
                    assert!(g.memory_used_bytes <= g.memory_total_bytes, "{g:?}");
                }
            }
        }
    }
}
