//! Devices: the CPU (model, cores, SIMD level), NVIDIA GPUs through NVML (loaded at run time, so
//! a machine without the driver just reports "no NVIDIA driver"), and the default device every
//! run uses for nodes whose `device` is `auto` (docs/ARCHITECTURE.md §17).
//!
//! GPUs come from a [`GpuProvider`]: [`Nvml`] on real machines, [`FakeGpus`] in tests (and
//! through `DEFECT_STUDIO_FAKE_GPUS`, a JSON file of [`GpuInfo`]s, for end-to-end tests and
//! demos).

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::store::Store;

/// One process using a GPU.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GpuProcess {
    pub pid: u32,
    /// Its name (`/proc/PID/comm` or NVML's), when it can be read.
    pub name: Option<String>,
    /// GPU memory it uses, in bytes, when NVML reports it.
    pub memory_bytes: Option<u64>,
}

/// One NVIDIA GPU as NVML reports it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
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

/// NVML, loaded dynamically at each query (contract stub: the devices helper implements it).
#[derive(Clone, Copy, Debug, Default)]
pub struct Nvml;

impl GpuProvider for Nvml {
    fn query(&self) -> GpuStatus {
        GpuStatus::NoDriver {
            reason: "no NVIDIA driver".into(),
        }
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

/// The CPU.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CpuInfo {
    pub model: String,
    pub logical_cores: usize,
    pub physical_cores: Option<usize>,
    /// The SIMD level our kernels use (`kernels::simd::level`), e.g. `avx512`.
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

/// The provider the CLI and the studio use: [`FakeGpus`] from `DEFECT_STUDIO_FAKE_GPUS` when
/// set, else [`Nvml`] (contract stub).
pub fn provider() -> Box<dyn GpuProvider> {
    Box::new(Nvml)
}

/// The CPU's model, cores and SIMD level (contract stub).
pub fn cpu_info() -> CpuInfo {
    CpuInfo::default()
}

/// The full report (contract stub).
pub fn report(provider: &dyn GpuProvider, store: Option<&Store>) -> DeviceReport {
    let _ = store;
    DeviceReport {
        cpu: cpu_info(),
        gpus: provider.query(),
        cuda_build: cfg!(feature = "cuda"),
        default_device: "auto".into(),
        choices: vec!["cpu".into()],
    }
}

/// The default device kept in the store's settings (`auto` when never set) (contract stub).
pub fn default_device(store: &Store) -> Result<String> {
    let _ = store;
    Ok("auto".into())
}

/// Keeps `device` (`auto`, `cpu` or `cuda:N`, checked) as the default device (contract stub).
pub fn set_default_device(store: &Store, device: &str) -> Result<()> {
    let _ = (store, device);
    Ok(())
}

/// The concrete device a run uses for `auto`: the job's target when it has one, else the
/// store's default, with `auto` resolved to `cuda:0` when a GPU is usable, else `cpu`
/// (contract stub).
pub fn run_device(target: Option<&str>, store: &Store) -> Result<String> {
    let _ = store;
    Ok(target.unwrap_or("cpu").to_string())
}
