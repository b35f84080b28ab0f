//! Custom compute kernels of Defect Studio: fused attention, GroupNorm(+SiLU) and GEGLU, and
//! the CPU paths of issue 16 (fused CPU attention, convolution, run-time SIMD level).
//!
//! One module per op. Each has a `cpu_ref` (f32 math on candle CPU tensors: the reference) and a
//! candle custom op whose `cpu_fwd` calls it (attention's calls the fused [`attention_cpu`]
//! instead) and whose `cuda_fwd` (behind the optional `cuda` feature) launches a CUDA kernel:
//!
//! | module | entry point | custom op | CUDA source |
//! | --- | --- | --- | --- |
//! | [`attention`] | [`attention::flash_attention`] | [`attention::FlashAttention`] (`CustomOp3`) | `cuda/flash_attn_tc.cu` (tensor cores), `cuda/flash_attn.cu` |
//! | [`group_norm`] | [`group_norm::group_norm`] | [`group_norm::GroupNorm`] (`CustomOp3`) | `cuda/group_norm.cu` |
//! | [`geglu`] | [`geglu::geglu`] | [`geglu::Geglu`] (`CustomOp1`) | `cuda/geglu.cu` |
//!
//! CPU-only modules (docs/ARCHITECTURE.md §8):
//!
//! | module | entry point | what |
//! | --- | --- | --- |
//! | [`attention_cpu`] | [`attention_cpu::attention`], [`attention_cpu::cpu_fwd`] | fused attention: (batch·head, 128–256-query) tasks on rayon, `gemm` tile products, online softmax; the CPU forward of [`attention::FlashAttention`] |
//! | [`conv`] | [`conv::conv2d`] | convolution over concatenated inputs with a fused bias/activation/residual epilogue |
//! | [`simd`] | [`simd::level`], [`simd::exp_in_place`], [`simd::silu_in_place`] | the run-time SIMD level (`DEFECT_STUDIO_SIMD` caps it) and vectorised exp, SiLU and softmax-row helpers per level |
//! | [`alloc`] | [`alloc::keep_freed_buffers`] | glibc malloc set to reuse freed tensor buffers (called by the binary and the benches) |
//! | [`threads`] | [`threads::one_pool`] | one thread pool: no candle barrier-pool workers beside rayon's (called by the binary and the benches) |
//!
//! [`group_norm::cpu_fused`] and [`geglu::gelu_mul`] are the fast CPU paths of GroupNorm(+SiLU)
//! and of GEGLU's product.
//!
//! The CUDA sources are embedded with `include_str!` ([`sources`]) and compiled at first use
//! with NVRTC, through the `cudarc` that candle re-exports (`candle_core::cuda_backend::cudarc`;
//! docs/ARCHITECTURE.md, "Kernels", says why not a cudarc of our own). PTX is cached per compute
//! capability, in a process-wide map and on disk under the user's cache directory; the loaded
//! kernels, with their attributes set, are cached per (device, dtype, head dim, variant), so a
//! launch after the first does no formatting, environment read or driver query (`cuda` module,
//! private).
//! NVRTC needs `cuda_fp16.h`/`cuda_bf16.h` at run time: it looks in `DEFECT_STUDIO_CUDA_INCLUDE`
//! (a `:`-separated list), then `$CUDA_ROOT`, `$CUDA_PATH`, `$CUDA_HOME` + `/include`, then
//! `/usr/local/cuda/include`.
//!
//! Nothing in the default build needs CUDA: `cargo test -p kernels` checks every `cpu_ref`
//! against a naive reference, and `scripts/nvrtc_check.py` compiles the CUDA sources to PTX
//! without a GPU. `scripts/cuda-check.sh` type-checks the `cuda` feature (this crate and
//! `engine`) without a GPU, from the CUDA 13.0.x pip wheels. `scripts/gpu-check.sh` runs the
//! kernels against their references on a GPU.

pub mod alloc;
pub mod attention;
pub mod attention_cpu;
pub mod conv;
pub mod geglu;
pub mod group_norm;
pub mod simd;
pub mod threads;

#[cfg(test)]
mod test_util;

#[cfg(any(feature = "cuda", test))]
mod cache;
#[cfg(feature = "cuda")]
mod cuda;

/// The CUDA C++ sources, embedded in the binary and compiled at run time with NVRTC.
pub mod sources {
    /// `flash_attn_fwd_{f32,f16,bf16}_d{40,64,80,128,160,512}`.
    pub const FLASH_ATTN: &str = include_str!("../cuda/flash_attn.cu");
    /// `flash_attn_tc_{f16,bf16}_d{40,64,80,128,160}` (tensor cores, sm_80+).
    pub const FLASH_ATTN_TC: &str = include_str!("../cuda/flash_attn_tc.cu");
    /// `group_norm_{f32,f16,bf16}`.
    pub const GROUP_NORM: &str = include_str!("../cuda/group_norm.cu");
    /// `geglu_{f32,f16,bf16}`.
    pub const GEGLU: &str = include_str!("../cuda/geglu.cu");
}

/// Helpers shared by the `cpu_fwd`s: storage ⇄ f32 CPU tensors.
mod cpu {
    use candle_core::backend::BackendStorage;
    use candle_core::{bail, CpuStorage, DType, Device, Layout, Result, Tensor};

    /// A contiguous CPU storage view as an f32 tensor of the layout's shape.
    pub(crate) fn to_f32_tensor(s: &CpuStorage, l: &Layout, op: &'static str) -> Result<Tensor> {
        let Some((a, b)) = l.contiguous_offsets() else {
            bail!("{op}: the inputs must be contiguous")
        };
        let v: Vec<f32> = match s {
            CpuStorage::F32(v) => v[a..b].to_vec(),
            CpuStorage::F64(v) => v[a..b].iter().map(|&x| x as f32).collect(),
            CpuStorage::F16(v) => v[a..b].iter().map(|x| x.to_f32()).collect(),
            CpuStorage::BF16(v) => v[a..b].iter().map(|x| x.to_f32()).collect(),
            other => bail!("{op}: unsupported dtype {:?}", other.dtype()),
        };
        Tensor::from_vec(v, l.shape(), &Device::Cpu)
    }

    /// An f32 tensor converted to `dtype`, as a CPU storage (shape given separately).
    pub(crate) fn to_storage(t: &Tensor, dtype: DType) -> Result<CpuStorage> {
        let t = t.flatten_all()?;
        Ok(match dtype {
            DType::F32 => CpuStorage::F32(t.to_dtype(DType::F32)?.to_vec1()?),
            DType::F64 => CpuStorage::F64(t.to_dtype(DType::F64)?.to_vec1()?),
            DType::F16 => CpuStorage::F16(t.to_dtype(DType::F16)?.to_vec1()?),
            DType::BF16 => CpuStorage::BF16(t.to_dtype(DType::BF16)?.to_vec1()?),
            other => bail!("unsupported output dtype {other:?}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::sources;

    #[test]
    fn sources_are_embedded_with_their_kernels() {
        for dt in ["f32", "f16", "bf16"] {
            for d in crate::attention::CUDA_HEAD_DIMS {
                let name = format!("DEFINE_FLASH_ATTN(flash_attn_fwd_{dt}_d{d},");
                assert!(sources::FLASH_ATTN.contains(&name), "missing {name}");
            }
            let gn = format!("DEFINE_GROUP_NORM(group_norm_{dt},");
            assert!(sources::GROUP_NORM.contains(&gn), "missing {gn}");
            let gg = format!("DEFINE_GEGLU(geglu_{dt},");
            assert!(sources::GEGLU.contains(&gg), "missing {gg}");
        }
        for dt in ["f16", "bf16"] {
            for d in crate::attention::TC_HEAD_DIMS {
                let name = format!("DEFINE_FLASH_ATTN_TC(flash_attn_tc_{dt}_d{d},");
                assert!(sources::FLASH_ATTN_TC.contains(&name), "missing {name}");
            }
        }
        for src in [
            sources::FLASH_ATTN,
            sources::FLASH_ATTN_TC,
            sources::GROUP_NORM,
            sources::GEGLU,
        ] {
            assert!(
                src.contains("#include <cuda_fp16.h>") && src.contains("#include <cuda_bf16.h>")
            );
            assert!(src.contains("extern \"C\" __global__"));
        }
    }

    /// The host's shared-memory formula and per-head-dim tiles match the kernel's instantiations.
    #[test]
    fn attention_tile_table_matches_source() {
        for &(d, rq) in crate::attention::TILES {
            let line = format!("DEFINE_FLASH_ATTN(flash_attn_fwd_f16_d{d}, __half, {d}, {rq})");
            assert!(sources::FLASH_ATTN.contains(&line), "missing {line}");
        }
        assert!(sources::FLASH_ATTN.contains("#define FA_WARPS 4"));
        assert!(sources::FLASH_ATTN.contains("#define FA_BK 32"));
        assert!(sources::FLASH_ATTN.contains("constexpr int KS = D + 4;"));
        // The tensor-core kernel's constants that `tc_smem_bytes` assumes.
        for line in [
            "#define TC_WARPS 4",
            "#define TC_BK 64",
            "#define TC_LDS (TC_BK + 4)",
            "#define TC_LDP (TC_BK + 8)",
            "constexpr int LDT = DP + 8;",
        ] {
            assert!(sources::FLASH_ATTN_TC.contains(line), "missing {line}");
        }
    }
}
