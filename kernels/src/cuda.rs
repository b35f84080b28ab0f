//! Run-time compilation of the CUDA sources with NVRTC, the PTX cache, and the per-device table
//! of loaded kernels.
//!
//! A launch looks its kernel up in a process-wide table keyed by (device ordinal, module, dtype,
//! head dim) ([`kernel`]): the first lookup compiles or reads the PTX, loads the module, and sets
//! the function's shared-memory attribute; every later one is a read lock and a hash, with no
//! formatting, no driver query and no `cuFuncSetAttribute`. Device properties (compute
//! capability, opt-in shared memory) are likewise queried once per ordinal ([`device_info`]).
//! Handles are keyed by ordinal because candle's devices use the ordinal's primary context, which
//! the cached module keeps alive.
//!
//! PTX is cached per (module, compute capability) in a process-wide map, and on disk as
//! `<cache>/defect-studio/ptx/<module>-sm<cc>-<hash>.ptx`, where `<cache>` is
//! `$DEFECT_STUDIO_PTX_CACHE` or the user's cache directory and `<hash>` covers the source, the
//! NVRTC version and the options, so an edited source or a new NVRTC never reuses stale PTX.

use crate::cache::OnceMap;
use candle_core::cuda_backend::cudarc::driver::sys::{
    CUdevice_attribute, CUfunction_attribute_enum,
};
use candle_core::cuda_backend::cudarc::driver::CudaFunction;
use candle_core::cuda_backend::cudarc::nvrtc::{self, CompileOptions};
use candle_core::cuda_backend::{CudaDevice, WrapErr};
use candle_core::{bail, DType, Error, Result};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

type PtxMap = HashMap<(&'static str, i32), Arc<str>>;

fn ptx_map() -> &'static Mutex<PtxMap> {
    static MAP: OnceLock<Mutex<PtxMap>> = OnceLock::new();
    MAP.get_or_init(|| Mutex::new(HashMap::new()))
}

/// What a kernel launch needs to know of a device, queried once per device ordinal.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DeviceInfo {
    /// The device ordinal (the key of the per-device tables).
    pub(crate) ordinal: usize,
    /// Compute capability as `10 * major + minor` (90 for H100/H200).
    pub(crate) cc: i32,
    /// The opt-in maximum of dynamic shared memory per block, in bytes.
    pub(crate) max_smem_optin: usize,
}

/// A kernel loaded on one device, with its function attributes already set.
#[derive(Debug, Clone)]
pub(crate) struct Kernel {
    pub(crate) func: CudaFunction,
    /// Dynamic shared memory of one block, in bytes (above 48 KiB the function's
    /// `MAX_DYNAMIC_SHARED_SIZE_BYTES` was raised to it when the kernel was loaded).
    pub(crate) smem: usize,
}

/// Which kernel: (device ordinal, module (the kernel variant), dtype, head dim or 0). The
/// function name is derived from it only when the kernel is first loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct KernelKey {
    pub(crate) ordinal: usize,
    pub(crate) module: &'static str,
    pub(crate) dtype: DType,
    pub(crate) head_dim: usize,
}

/// Shared memory a block may use without opting in.
const SMEM_DEFAULT_MAX: usize = 48 * 1024;

fn device_infos() -> &'static OnceMap<usize, DeviceInfo> {
    static MAP: OnceLock<OnceMap<usize, DeviceInfo>> = OnceLock::new();
    MAP.get_or_init(OnceMap::new)
}

fn kernels() -> &'static OnceMap<KernelKey, Kernel> {
    static MAP: OnceLock<OnceMap<KernelKey, Kernel>> = OnceLock::new();
    MAP.get_or_init(OnceMap::new)
}

/// The device's ordinal, compute capability and shared-memory limit (driver queries on the
/// first call per ordinal only).
pub(crate) fn device_info(dev: &CudaDevice) -> Result<DeviceInfo> {
    let stream = dev.cuda_stream();
    let ctx = stream.context();
    let ordinal = ctx.ordinal();
    device_infos().get_or_try_insert_with(ordinal, || {
        let (major, minor) = ctx.compute_capability().w()?;
        let optin = ctx
            .attribute(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN)
            .w()?;
        Ok(DeviceInfo {
            ordinal,
            cc: major * 10 + minor,
            max_smem_optin: optin.max(0) as usize,
        })
    })
}

/// The kernel `key` (source `src`), loaded once per device: on the first call `name()` gives its
/// function name, the module is compiled (or read from the PTX cache) and loaded, and, when
/// `smem` exceeds 48 KiB, checked against the device's opt-in limit and set as the function's
/// dynamic shared-memory maximum. Later calls are one table lookup. `op` names the caller in
/// errors.
pub(crate) fn kernel(
    dev: &CudaDevice,
    info: &DeviceInfo,
    key: KernelKey,
    src: &'static str,
    name: impl FnOnce() -> String,
    smem: usize,
    op: &str,
) -> Result<Kernel> {
    kernels().get_or_try_insert_with(key, || {
        let max = info.max_smem_optin;
        if smem > SMEM_DEFAULT_MAX && smem > max {
            bail!(
                "{op}: head dim {} needs {smem} B of shared memory, the GPU allows {max}",
                key.head_dim
            )
        }
        let func = function(dev, info.cc, key.module, src, &name())?;
        if smem > SMEM_DEFAULT_MAX {
            func.set_attribute(
                CUfunction_attribute_enum::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                smem as i32,
            )
            .w()?;
        }
        Ok(Kernel { func, smem })
    })
}

/// The kernel `name` of `module` (source `src`), compiled for compute capability `cc`.
fn function(
    dev: &CudaDevice,
    cc: i32,
    module: &'static str,
    src: &'static str,
    name: &str,
) -> Result<CudaFunction> {
    let ptx = ptx(module, src, cc)?;
    let func =
        dev.get_or_load_custom_func(name, &format!("defect_studio_{module}_sm{cc}"), &ptx)?;
    Ok(func.into_cuda_function())
}

/// PTX of `module` for compute capability `cc`: from memory, else disk, else NVRTC.
fn ptx(module: &'static str, src: &'static str, cc: i32) -> Result<Arc<str>> {
    let mut map = ptx_map()
        .lock()
        .map_err(|_| Error::Msg("PTX cache lock poisoned".into()))?;
    if let Some(p) = map.get(&(module, cc)) {
        return Ok(p.clone());
    }
    let options = compile_options(cc);
    let key = fnv1a(&[
        src.as_bytes(),
        nvrtc_version().as_bytes(),
        options.join(" ").as_bytes(),
    ]);
    let file = cache_dir().map(|d| d.join(format!("{module}-sm{cc}-{key:016x}.ptx")));
    let text = match file.as_ref().and_then(|f| std::fs::read_to_string(f).ok()) {
        Some(t) if t.contains(".entry") => t,
        _ => {
            let t = compile(src, module, options)?;
            if let Some(f) = &file {
                store(f, &t); // best effort: a read-only cache only costs a recompile
            }
            t
        }
    };
    let text: Arc<str> = text.into();
    map.insert((module, cc), text.clone());
    Ok(text)
}

fn compile_options(cc: i32) -> Vec<String> {
    let mut o = vec![
        format!("--gpu-architecture=compute_{cc}"),
        "--std=c++17".to_string(),
    ];
    o.extend(
        include_dirs()
            .into_iter()
            .map(|d| format!("--include-path={d}")),
    );
    o
}

fn compile(src: &str, module: &str, options: Vec<String>) -> Result<String> {
    let opts = CompileOptions {
        options,
        name: Some(format!("{module}.cu")),
        ..Default::default()
    };
    match nvrtc::compile_ptx_with_opts(src, opts) {
        Ok(ptx) => Ok(ptx.to_src()),
        Err(nvrtc::CompileError::CompileError { log, options, .. }) => Err(Error::Msg(format!(
            "NVRTC failed to compile {module}.cu with {options:?} (if cuda_fp16.h is not found, \
             set DEFECT_STUDIO_CUDA_INCLUDE to the CUDA include dir):\n{}",
            log.to_string_lossy()
        ))),
        Err(e) => Err(e).w(),
    }
}

/// Directories holding `cuda_fp16.h`: `$DEFECT_STUDIO_CUDA_INCLUDE` (`:`-separated), then the
/// `include` dir of `$CUDA_ROOT`, `$CUDA_PATH`, `$CUDA_HOME`, `$CUDA_TOOLKIT_ROOT_DIR`, then
/// `/usr/local/cuda/include` and `/opt/cuda/include`.
fn include_dirs() -> Vec<String> {
    let mut cands: Vec<PathBuf> = Vec::new();
    if let Ok(v) = std::env::var("DEFECT_STUDIO_CUDA_INCLUDE") {
        cands.extend(std::env::split_paths(&v));
    }
    for var in [
        "CUDA_ROOT",
        "CUDA_PATH",
        "CUDA_HOME",
        "CUDA_TOOLKIT_ROOT_DIR",
    ] {
        if let Ok(v) = std::env::var(var) {
            cands.push(PathBuf::from(v).join("include"));
        }
    }
    cands.push("/usr/local/cuda/include".into());
    cands.push("/opt/cuda/include".into());
    let mut out: Vec<String> = Vec::new();
    for c in cands {
        if c.join("cuda_fp16.h").is_file() {
            let s = c.to_string_lossy().into_owned();
            if !out.contains(&s) {
                out.push(s);
            }
        }
    }
    out
}

fn nvrtc_version() -> String {
    let (mut major, mut minor) = (0, 0);
    // SAFETY: nvrtcVersion writes two ints through valid pointers.
    let r = unsafe { nvrtc::sys::nvrtcVersion(&mut major, &mut minor) };
    format!("{r:?}/{major}.{minor}")
}

fn cache_dir() -> Option<PathBuf> {
    match std::env::var_os("DEFECT_STUDIO_PTX_CACHE") {
        Some(d) => Some(PathBuf::from(d)),
        None => dirs::cache_dir().map(|d| d.join("defect-studio").join("ptx")),
    }
}

fn store(file: &std::path::Path, text: &str) {
    let Some(dir) = file.parent() else { return };
    if std::fs::create_dir_all(dir).is_err() {
        return;
    }
    // Write then rename, so a concurrent reader never sees half a file.
    let tmp = file.with_extension(format!("tmp{}", std::process::id()));
    if std::fs::write(&tmp, text).is_ok() && std::fs::rename(&tmp, file).is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
}

/// 64-bit FNV-1a over the parts (with a separator), stable across Rust versions.
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for p in parts {
        for &b in p.iter().chain(&[0xff]) {
            h ^= b as u64;
            h = h.wrapping_mul(0x100000001b3);
        }
    }
    h
}

/// The contiguous part of a storage that a layout covers, as a view for a kernel argument.
pub(crate) fn view<'a, T: candle_core::cuda_backend::CudaDType>(
    s: &'a candle_core::CudaStorage,
    l: &candle_core::Layout,
    op: &str,
) -> Result<candle_core::cuda_backend::cudarc::driver::CudaView<'a, T>> {
    let Some((a, e)) = l.contiguous_offsets() else {
        candle_core::bail!("{op}: the inputs must be contiguous")
    };
    Ok(s.as_cuda_slice::<T>()?.slice(a..e))
}
