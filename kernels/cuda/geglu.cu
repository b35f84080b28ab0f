// GEGLU as diffusers computes it, compiled at run time by NVRTC. No host code.
//
//   hidden, gate = proj(x).chunk(2, dim=-1);  out = hidden * gelu(gate)   (exact, erf-based GELU)
//
// x: [rows, 2N] contiguous, y: [rows, N]. Elementwise, grid-stride loop, math in f32.

#include <cuda_fp16.h>
#include <cuda_bf16.h>

static __device__ __forceinline__ float gg_to_f32(float x) { return x; }
static __device__ __forceinline__ float gg_to_f32(__half x) { return __half2float(x); }
static __device__ __forceinline__ float gg_to_f32(__nv_bfloat16 x) { return __bfloat162float(x); }

static __device__ __forceinline__ void gg_store(float* p, float x) { *p = x; }
static __device__ __forceinline__ void gg_store(__half* p, float x) { *p = __float2half_rn(x); }
static __device__ __forceinline__ void gg_store(__nv_bfloat16* p, float x) { *p = __float2bfloat16_rn(x); }

template <typename T>
static __device__ __forceinline__ void geglu_impl(
    const T* __restrict__ x, T* __restrict__ y, unsigned long long rows, int n) {
    const unsigned long long total = rows * (unsigned long long)n;
    const unsigned long long stride = (unsigned long long)gridDim.x * blockDim.x;
    for (unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += stride) {
        const unsigned long long r = i / (unsigned long long)n;
        const unsigned long long c = i - r * (unsigned long long)n;
        const T* xr = x + r * 2ull * (unsigned long long)n;
        const float h = gg_to_f32(xr[c]);
        const float g = gg_to_f32(xr[c + n]);
        const float gelu = 0.5f * g * (1.0f + erff(g * 0.70710678118654752f));
        gg_store(y + i, h * gelu);
    }
}

#define DEFINE_GEGLU(NAME, T)                                                                 \
    extern "C" __global__ void NAME(const T* __restrict__ x, T* __restrict__ y,                \
                                    unsigned long long rows, int n) {                         \
        geglu_impl<T>(x, y, rows, n);                                                         \
    }

DEFINE_GEGLU(geglu_f32, float)
DEFINE_GEGLU(geglu_f16, __half)
DEFINE_GEGLU(geglu_bf16, __nv_bfloat16)
