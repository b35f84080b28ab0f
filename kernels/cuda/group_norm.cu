// Fused GroupNorm (+ optional SiLU), compiled at run time by NVRTC. No host code.
//
// x and y: [N, C, S] contiguous (S = product of the spatial dims), gamma and beta: [C], all of one
// dtype. One block per (n, group): a group's C/G*S elements are contiguous. Three passes over the
// group, all in f32: the mean, then the variance as the mean of (x - mean)^2 (no cancellation), then
// y = (x - mean) * rsqrt(var + eps) * gamma[c] + beta[c], followed by y * sigmoid(y) when silu != 0.
// Grid: N*G blocks of GN_THREADS threads.

#include <cuda_fp16.h>
#include <cuda_bf16.h>

#define GN_THREADS 512
#define GN_FULL_MASK 0xffffffffu

static __device__ __forceinline__ float gn_to_f32(float x) { return x; }
static __device__ __forceinline__ float gn_to_f32(__half x) { return __half2float(x); }
static __device__ __forceinline__ float gn_to_f32(__nv_bfloat16 x) { return __bfloat162float(x); }

static __device__ __forceinline__ void gn_store(float* p, float x) { *p = x; }
static __device__ __forceinline__ void gn_store(__half* p, float x) { *p = __float2half_rn(x); }
static __device__ __forceinline__ void gn_store(__nv_bfloat16* p, float x) { *p = __float2bfloat16_rn(x); }

// Sum over the block; every thread gets the result. `red` holds GN_THREADS / 32 floats.
static __device__ __forceinline__ float gn_block_sum(float x, float* red) {
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) x += __shfl_xor_sync(GN_FULL_MASK, x, off);
    const int lane = threadIdx.x & 31;
    const int warp = threadIdx.x >> 5;
    __syncthreads();  // `red` may still be read from a previous reduction
    if (lane == 0) red[warp] = x;
    __syncthreads();
    float t = lane < GN_THREADS / 32 ? red[lane] : 0.0f;
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) t += __shfl_xor_sync(GN_FULL_MASK, t, off);
    return t;
}

template <typename T>
static __device__ __forceinline__ void group_norm_impl(
    const T* __restrict__ x, const T* __restrict__ gamma, const T* __restrict__ beta,
    T* __restrict__ y, int channels, int groups, int spatial, float eps, int silu) {
    __shared__ float red[GN_THREADS / 32];
    const int cpg = channels / groups;
    const size_t size = (size_t)cpg * spatial;
    const int g = blockIdx.x % groups;
    const T* xg = x + (size_t)blockIdx.x * size;
    T* yg = y + (size_t)blockIdx.x * size;

    float acc = 0.0f;
    for (size_t i = threadIdx.x; i < size; i += GN_THREADS) acc += gn_to_f32(xg[i]);
    const float mean = gn_block_sum(acc, red) / (float)size;

    acc = 0.0f;
    for (size_t i = threadIdx.x; i < size; i += GN_THREADS) {
        const float d = gn_to_f32(xg[i]) - mean;
        acc = fmaf(d, d, acc);
    }
    const float var = gn_block_sum(acc, red) / (float)size;
    const float rstd = rsqrtf(var + eps);

    for (size_t i = threadIdx.x; i < size; i += GN_THREADS) {
        const int c = g * cpg + (int)(i / (size_t)spatial);
        float r = (gn_to_f32(xg[i]) - mean) * rstd * gn_to_f32(gamma[c]) + gn_to_f32(beta[c]);
        if (silu) r = r / (1.0f + __expf(-r));
        gn_store(yg + i, r);
    }
}

#define DEFINE_GROUP_NORM(NAME, T)                                                            \
    extern "C" __global__ void __launch_bounds__(GN_THREADS) NAME(                           \
        const T* __restrict__ x, const T* __restrict__ gamma, const T* __restrict__ beta,    \
        T* __restrict__ y, int channels, int groups, int spatial, float eps, int silu) {      \
        group_norm_impl<T>(x, gamma, beta, y, channels, groups, spatial, eps, silu);          \
    }

DEFINE_GROUP_NORM(group_norm_f32, float)
DEFINE_GROUP_NORM(group_norm_f16, __half)
DEFINE_GROUP_NORM(group_norm_bf16, __nv_bfloat16)
