//! How the CPU paths share the cores.
//!
//! gemm (candle's matmuls, with `Parallelism::Rayon`) and our kernels (`conv`, `attention_cpu`,
//! `group_norm`, `geglu`) all run on rayon's global pool (`RAYON_NUM_THREADS`, default one
//! thread per core). candle 0.11 runs its parallel element-wise ops on a second pool of its own
//! (a "barrier pool" of `CANDLE_NUM_THREADS − 1` workers, which spin before they park). On a
//! small machine that worker spins on a core rayon's workers need right after every element-wise
//! op. [`one_pool`] sets `CANDLE_NUM_THREADS=1` unless the user set it: candle then starts no
//! barrier-pool worker and runs element-wise ops on the calling thread, so the process has
//! rayon's threads and the caller, no more. Measured on the 2-core development machine (SD1.5
//! UNet evaluation): 7 % faster at 256², no change at 512² or for the VAE decode at 512².

/// candle's variable for the size of its element-wise pool.
pub const CANDLE_THREADS_ENV: &str = "CANDLE_NUM_THREADS";

/// Sets `CANDLE_NUM_THREADS=1` unless it is set; returns whether it did. Call at the start of
/// `main`, before other threads exist and before candle's first element-wise op.
pub fn one_pool() -> bool {
    if std::env::var_os(CANDLE_THREADS_ENV).is_some() {
        return false;
    }
    std::env::set_var(CANDLE_THREADS_ENV, "1");
    true
}
