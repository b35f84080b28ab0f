//! Custom compute kernels of Defect Studio.
//!
//! This crate will hold one file per op: a `cpu_ref` reference implementation and a candle
//! `CustomOp` whose `cpu_fwd` uses it, with `cuda_fwd` behind the optional `cuda` feature and the
//! CUDA sources in `kernels/cuda/*.cu`, compiled at run time with NVRTC through the `cudarc` that
//! candle re-exports (see DESIGN.md §2 and §4).
//!
//! It is empty until the first kernel lands (the attention kernel of the kernels issue): no
//! operation is declared here yet, so nothing can call an unimplemented one.
