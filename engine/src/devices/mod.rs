//! Devices: the CPU (model, cores, SIMD level), NVIDIA GPUs through NVML (loaded at run time, so
//! a machine without the driver just reports "no NVIDIA driver"), and the default device every
//! run uses for nodes whose `device` is `auto` (docs/ARCHITECTURE.md §17).
//!
//! GPUs come from a [`GpuProvider`]: [`Nvml`] on real machines, [`FakeGpus`] in tests (and
//! through `DEFECT_STUDIO_FAKE_GPUS`, a JSON file of [`GpuInfo`]s, for end-to-end tests and
//! demos). The CPU comes from [`cpu`], NVML from [`nvml`].
//!
//! **Device names.** `cpu`, `cuda:N` (`cuda` is `cuda:0`) and `auto`. The default device is
//! the store's setting `default_device` ([`default_device`], [`set_default_device`]), so the
//! CLI and the studio share it; a batch may target a device of its own
//! ([`crate::run::BatchJob::device`]). [`run_device`] turns either into the concrete device a
//! run records and that node parameters `device: auto` mean ([`crate::Executor::set_device`]):
//! `auto` is `cuda:0` when this build has CUDA and a GPU answers, else `cpu`; a `cuda:N` that
//! cannot be opened is an error naming it, before the run starts.

use serde::{Deserialize, Serialize};

use crate::error::{EngineError, Result};
use crate::store::Store;

pub mod cpu;
pub mod nvml;

pub use cpu::cpu_info;

/// The store setting that holds the default device.
pub const DEFAULT_DEVICE_KEY: &str = "default_device";

/// The environment variable naming a JSON file of [`GpuInfo`]s that [`provider`] reports
/// instead of NVML's.
pub const FAKE_GPUS_ENV: &str = "DEFECT_STUDIO_FAKE_GPUS";

/// One process using a GPU.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GpuProcess {
    pub pid: u32,
    /// Its name (`/proc/PID/comm` or NVML's), when it can be read.
    pub name: Option<String>,
    /// GPU memory it uses, in bytes, when NVML reports it.
    pub memory_bytes: Option<u64>,
}

/// One NVIDIA GPU as NVML reports it. In a `DEFECT_STUDIO_FAKE_GPUS` file, a field left out
/// is unknown (0, `null`, none) and an unknown field is refused.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GpuInfo {
    /// NVML's index; the device is `cuda:INDEX`.
    pub index: u32,
    pub name: String,
    pub uuid: Option<String>,
    pub memory_used_bytes: u64,
    pub memory_total_bytes: u64,
    /// GPU utilisation over NVML's last sample period, percent.
    pub utilization_percent: Option<u32>,
    pub temperature_c: Option<u32>,
    pub processes: Vec<GpuProcess>,
}

/// What a [`GpuProvider`] found.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum GpuStatus {
    /// The driver answered (possibly with no GPU).
    Ok {
        driver_version: Option<String>,
        gpus: Vec<GpuInfo>,
    },
    /// No NVIDIA driver (NVML could not be loaded or initialised): why, in one line.
    NoDriver { reason: String },
}

/// Where GPU information comes from.
pub trait GpuProvider: Send + Sync {
    fn query(&self) -> GpuStatus;
}

/// NVML, loaded dynamically at each query ([`nvml::query`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct Nvml;

impl GpuProvider for Nvml {
    fn query(&self) -> GpuStatus {
        nvml::query()
    }
}

/// A fixed list of GPUs, for tests.
#[derive(Clone, Debug, Default)]
pub struct FakeGpus(pub Vec<GpuInfo>);

impl GpuProvider for FakeGpus {
    fn query(&self) -> GpuStatus {
        GpuStatus::Ok {
            driver_version: Some("fake".into()),
            gpus: self.0.clone(),
        }
    }
}

/// A provider that always says why there are no GPUs (a bad `DEFECT_STUDIO_FAKE_GPUS` file).
#[derive(Clone, Debug)]
struct NoGpus(String);

impl GpuProvider for NoGpus {
    fn query(&self) -> GpuStatus {
        nvml::no_driver(&self.0)
    }
}

/// The CPU.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CpuInfo {
    pub model: String,
    pub logical_cores: usize,
    pub physical_cores: Option<usize>,
    /// The SIMD level our kernels use (`kernels::simd::level`): `avx512`, `avx2` or `scalar`.
    pub simd: String,
}

/// Everything `devices` shows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeviceReport {
    pub cpu: CpuInfo,
    pub gpus: GpuStatus,
    /// Whether this build can run on CUDA (the `cuda` feature).
    pub cuda_build: bool,
    /// The default device (setting), as stored: `auto`, `cpu` or `cuda:N`.
    pub default_device: String,
    /// The devices a run may target here: `cpu`, then `cuda:N` per GPU found.
    pub choices: Vec<String>,
}

/// The provider the CLI and the studio use: [`FakeGpus`] read from the JSON file that
/// `DEFECT_STUDIO_FAKE_GPUS` names when it is set (a file that cannot be read or is not a list
/// of [`GpuInfo`]s gives a provider that reports [`GpuStatus::NoDriver`] naming the file), else
/// [`Nvml`].
pub fn provider() -> Box<dyn GpuProvider> {
    match std::env::var_os(FAKE_GPUS_ENV) {
        Some(path) if !path.is_empty() => fake_from_file(std::path::Path::new(&path)),
        _ => Box::new(Nvml),
    }
}

/// [`FakeGpus`] from a JSON file (see [`provider`]).
pub fn fake_from_file(path: &std::path::Path) -> Box<dyn GpuProvider> {
    let bad = |why: String| -> Box<dyn GpuProvider> {
        Box::new(NoGpus(format!("{FAKE_GPUS_ENV}={}: {why}", path.display())))
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => return bad(format!("cannot read it: {e}")),
    };
    match serde_json::from_str::<Vec<GpuInfo>>(&text) {
        Ok(gpus) => Box::new(FakeGpus(gpus)),
        Err(e) => bad(format!("not a JSON list of GPUs: {e}")),
    }
}

/// The full report. `store` gives the default device (`auto` without a store, or when its
/// setting cannot be read: [`default_device`] says why).
pub fn report(provider: &dyn GpuProvider, store: Option<&Store>) -> DeviceReport {
    let gpus = provider.query();
    let mut choices = vec!["cpu".to_string()];
    if let GpuStatus::Ok { gpus, .. } = &gpus {
        choices.extend(gpus.iter().map(|g| format!("cuda:{}", g.index)));
    }
    DeviceReport {
        cpu: cpu_info(),
        gpus,
        cuda_build: cfg!(feature = "cuda"),
        default_device: store
            .and_then(|s| default_device(s).ok())
            .unwrap_or_else(|| AUTO.into()),
        choices,
    }
}

const AUTO: &str = "auto";

/// A device name in its one spelling: `auto`, `cpu` or `cuda:N` (`cuda` is `cuda:0`; case and
/// surrounding blanks do not matter). Anything else is one error naming it and the choices.
pub fn normalize_device(name: &str) -> Result<String> {
    let n = name.trim().to_ascii_lowercase();
    let index = match n.as_str() {
        AUTO | "cpu" => return Ok(n),
        "cuda" => Some(0),
        other => other
            .strip_prefix("cuda:")
            .filter(|i| !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|i| i.parse::<u32>().ok()),
    };
    index.map(|i| format!("cuda:{i}")).ok_or_else(|| {
        EngineError::Device(format!(
            "device {}: use auto, cpu, cuda or cuda:N (N = the GPU's index)",
            nodes::quote(name)
        ))
    })
}

/// The default device kept in the store's settings (`auto` when never set). A stored value
/// that is not a device name is an error naming the store and the setting.
pub fn default_device(store: &Store) -> Result<String> {
    match store.setting(DEFAULT_DEVICE_KEY)? {
        None => Ok(AUTO.into()),
        Some(serde_json::Value::String(s)) => normalize_device(&s).map_err(|e| {
            EngineError::Device(format!(
                "store {}: setting {DEFAULT_DEVICE_KEY}: {e}",
                store.path().display()
            ))
        }),
        Some(other) => Err(EngineError::Device(format!(
            "store {}: setting {DEFAULT_DEVICE_KEY} is {} (not a device name); set it again \
             with `devices --set-default`",
            store.path().display(),
            nodes::clip(&other.to_string())
        ))),
    }
}

/// Keeps `device` (`auto`, `cpu`, `cuda` or `cuda:N`, checked, kept in its one spelling) as the
/// default device. A GPU that is not there now is accepted: runs that
/// use it fail naming it ([`run_device`]).
pub fn set_default_device(store: &Store, device: &str) -> Result<()> {
    let device = normalize_device(device)?;
    store.set_setting(DEFAULT_DEVICE_KEY, &serde_json::Value::String(device))
}

/// The concrete device a run uses for `auto`: the job's target when it has one, else the
/// store's default, resolved by [`resolve_device`]. The error names the device and where it
/// came from.
pub fn run_device(target: Option<&str>, store: &Store) -> Result<String> {
    let (device, from) = match target {
        Some(t) => (normalize_device(t)?, "the run's target device"),
        None => (
            default_device(store)?,
            "the default device (`devices --set-default`, or the studio's Settings)",
        ),
    };
    resolve_device(&device)
        .map_err(|e| EngineError::Device(format!("{from} {device} cannot be used: {e}")))
}

/// The concrete device a device name means here: `auto` is `cuda:0` when this build has CUDA
/// and a GPU answers, else `cpu`; a `cuda:N` is opened once to check it, and an error when it
/// cannot be (no CUDA in this build, no such GPU).
pub fn resolve_device(name: &str) -> Result<String> {
    let device = normalize_device(name)?;
    match device.as_str() {
        AUTO => Ok(match candle_core::Device::cuda_if_available(0) {
            Ok(d) if d.is_cuda() => "cuda:0",
            _ => "cpu",
        }
        .into()),
        "cpu" => Ok(device),
        cuda => match crate::sd::nodes::parse_device(cuda) {
            Ok(_) => Ok(device),
            Err(e) => Err(EngineError::Device(e.to_string())),
        },
    }
}

#[cfg(test)]
mod tests;
