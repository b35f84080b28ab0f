// Fused flash-attention forward (FlashAttention-style online softmax), compiled at run time by
// NVRTC. Plain CUDA C++: no host code, one `extern "C"` kernel per (dtype, head dim).
//
// Layout: q [BH, Lq, D], k and v [BH, Lk, D], o [BH, Lq, D], all contiguous, same dtype.
// Grid: (ceil(Lq / BQ), BH). Block: FA_WARPS warps. Dynamic shared memory (floats):
//   BQ*D (Q tile, pre-scaled) + FA_BK*(D+4) (K tile, padded rows) + FA_BK*D (V tile),
// where BQ = FA_WARPS * RQ. The host (kernels/src/attention.rs) computes the same size.
//
// Each warp owns RQ query rows. Per key tile of FA_BK = 32 keys:
//   scores: lane j computes s[r] = q_r . k_j for its key j (float4 reads; Q reads broadcast);
//   online softmax: warp max/sum by shuffles, base-2 exponentials (scale is pre-multiplied by
//   log2(e) on the host), running max m and denominator l per row;
//   P.V: lane owns head dims lane, lane+32, ... and accumulates p_rj * v_j[d] in f32 registers.
// The full score matrix is never built: memory is O(tile), so the VAE's 16384-long sequence
// with one 512-wide head runs in the same kernel.

#include <cuda_fp16.h>
#include <cuda_bf16.h>

#define FA_WARPS 4
#define FA_THREADS (FA_WARPS * 32)
#define FA_BK 32
#define FA_FULL_MASK 0xffffffffu
#define FA_NEG_INF (-__int_as_float(0x7f800000))

static __device__ __forceinline__ float fa_to_f32(float x) { return x; }
static __device__ __forceinline__ float fa_to_f32(__half x) { return __half2float(x); }
static __device__ __forceinline__ float fa_to_f32(__nv_bfloat16 x) { return __bfloat162float(x); }

static __device__ __forceinline__ void fa_store(float* p, float x) { *p = x; }
static __device__ __forceinline__ void fa_store(__half* p, float x) { *p = __float2half_rn(x); }
static __device__ __forceinline__ void fa_store(__nv_bfloat16* p, float x) { *p = __float2bfloat16_rn(x); }

static __device__ __forceinline__ float fa_warp_max(float x) {
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) x = fmaxf(x, __shfl_xor_sync(FA_FULL_MASK, x, off));
    return x;
}

static __device__ __forceinline__ float fa_warp_sum(float x) {
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) x += __shfl_xor_sync(FA_FULL_MASK, x, off);
    return x;
}

template <typename T, int D, int RQ>
static __device__ __forceinline__ void flash_attn_fwd_impl(
    const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
    T* __restrict__ o, int lq, int lk, float scale_log2) {
    static_assert(D % 4 == 0, "head dim must be a multiple of 4");
    constexpr int BQ = FA_WARPS * RQ;
    constexpr int DP = (D + 31) / 32;  // head-dim slots per lane in the P.V accumulator
    constexpr int KS = D + 4;          // padded K row stride: conflict-free float4 reads

    extern __shared__ float4 fa_smem4[];
    float* qs = reinterpret_cast<float*>(fa_smem4);  // [BQ][D]
    float* ks = qs + BQ * D;                         // [FA_BK][KS]
    float* vs = ks + FA_BK * KS;                     // [FA_BK][D]

    const int tid = threadIdx.x;
    const int lane = tid & 31;
    const int warp = tid >> 5;
    const size_t bh = blockIdx.y;
    const int q0 = blockIdx.x * BQ;
    const T* qb = q + bh * (size_t)lq * D;
    const T* kb = k + bh * (size_t)lk * D;
    const T* vb = v + bh * (size_t)lk * D;
    T* ob = o + bh * (size_t)lq * D;

    // Q tile, scaled by scale*log2(e); rows past Lq are zero (their results are never written).
    for (int i = tid; i < BQ * D; i += FA_THREADS) {
        const int r = i / D;
        const int qi = q0 + r;
        qs[i] = qi < lq ? fa_to_f32(qb[(size_t)q0 * D + i]) * scale_log2 : 0.0f;
    }

    float m[RQ], l[RQ], acc[RQ][DP];
#pragma unroll
    for (int r = 0; r < RQ; ++r) {
        m[r] = FA_NEG_INF;
        l[r] = 0.0f;
#pragma unroll
        for (int c = 0; c < DP; ++c) acc[r][c] = 0.0f;
    }

    const float* qw = qs + warp * RQ * D;
    for (int k0 = 0; k0 < lk; k0 += FA_BK) {
        __syncthreads();  // the previous tile is consumed (and, first time, the Q tile is stored)
        for (int i = tid; i < FA_BK * D; i += FA_THREADS) {
            const int j = i / D;
            const int d = i - j * D;
            float kv = 0.0f, vv = 0.0f;
            if (k0 + j < lk) {
                const size_t g = (size_t)k0 * D + i;
                kv = fa_to_f32(kb[g]);
                vv = fa_to_f32(vb[g]);
            }
            ks[j * KS + d] = kv;
            vs[i] = vv;
        }
        __syncthreads();

        // Scores for key k0 + lane.
        float s[RQ];
#pragma unroll
        for (int r = 0; r < RQ; ++r) s[r] = 0.0f;
        const float* krow = ks + lane * KS;
#pragma unroll 2
        for (int d = 0; d < D; d += 4) {
            const float4 kd = *reinterpret_cast<const float4*>(krow + d);
#pragma unroll
            for (int r = 0; r < RQ; ++r) {
                const float4 qd = *reinterpret_cast<const float4*>(qw + r * D + d);
                s[r] = fmaf(qd.x, kd.x, s[r]);
                s[r] = fmaf(qd.y, kd.y, s[r]);
                s[r] = fmaf(qd.z, kd.z, s[r]);
                s[r] = fmaf(qd.w, kd.w, s[r]);
            }
        }

        // Online softmax update. Every tile holds at least one valid key, so m_new is finite.
        const bool valid = k0 + lane < lk;
#pragma unroll
        for (int r = 0; r < RQ; ++r) {
            const float sv = valid ? s[r] : FA_NEG_INF;
            const float m_new = fmaxf(m[r], fa_warp_max(sv));
            const float alpha = exp2f(m[r] - m_new);  // exp2(-inf) = 0 on the first tile
            const float p = valid ? exp2f(sv - m_new) : 0.0f;
            l[r] = l[r] * alpha + fa_warp_sum(p);
            m[r] = m_new;
#pragma unroll
            for (int c = 0; c < DP; ++c) acc[r][c] *= alpha;
            s[r] = p;
        }

        // O += P . V over the valid keys of this tile (warp-uniform bound).
        const int jn = min(FA_BK, lk - k0);
        for (int j = 0; j < jn; ++j) {
            float pj[RQ];
#pragma unroll
            for (int r = 0; r < RQ; ++r) pj[r] = __shfl_sync(FA_FULL_MASK, s[r], j);
            const float* vrow = vs + j * D;
#pragma unroll
            for (int c = 0; c < DP; ++c) {
                const int d = lane + 32 * c;
                if (D % 32 == 0 || d < D) {
                    const float vv = vrow[d];
#pragma unroll
                    for (int r = 0; r < RQ; ++r) acc[r][c] = fmaf(pj[r], vv, acc[r][c]);
                }
            }
        }
    }

#pragma unroll
    for (int r = 0; r < RQ; ++r) {
        const int qi = q0 + warp * RQ + r;
        if (qi < lq) {
            const float inv = 1.0f / l[r];
            T* orow = ob + (size_t)qi * D;
#pragma unroll
            for (int c = 0; c < DP; ++c) {
                const int d = lane + 32 * c;
                if (D % 32 == 0 || d < D) fa_store(orow + d, acc[r][c] * inv);
            }
        }
    }
}

// NAME, element type, head dim D, query rows per warp RQ (block covers 4*RQ queries).
#define DEFINE_FLASH_ATTN(NAME, T, D, RQ)                                                     \
    extern "C" __global__ void __launch_bounds__(FA_THREADS) NAME(                           \
        const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,           \
        T* __restrict__ o, int lq, int lk, float scale_log2) {                                \
        flash_attn_fwd_impl<T, D, RQ>(q, k, v, o, lq, lk, scale_log2);                        \
    }

DEFINE_FLASH_ATTN(flash_attn_fwd_f32_d40, float, 40, 8)
DEFINE_FLASH_ATTN(flash_attn_fwd_f32_d64, float, 64, 8)
DEFINE_FLASH_ATTN(flash_attn_fwd_f32_d80, float, 80, 8)
DEFINE_FLASH_ATTN(flash_attn_fwd_f32_d128, float, 128, 8)
DEFINE_FLASH_ATTN(flash_attn_fwd_f32_d160, float, 160, 8)
DEFINE_FLASH_ATTN(flash_attn_fwd_f32_d512, float, 512, 4)

DEFINE_FLASH_ATTN(flash_attn_fwd_f16_d40, __half, 40, 8)
DEFINE_FLASH_ATTN(flash_attn_fwd_f16_d64, __half, 64, 8)
DEFINE_FLASH_ATTN(flash_attn_fwd_f16_d80, __half, 80, 8)
DEFINE_FLASH_ATTN(flash_attn_fwd_f16_d128, __half, 128, 8)
DEFINE_FLASH_ATTN(flash_attn_fwd_f16_d160, __half, 160, 8)
DEFINE_FLASH_ATTN(flash_attn_fwd_f16_d512, __half, 512, 4)

DEFINE_FLASH_ATTN(flash_attn_fwd_bf16_d40, __nv_bfloat16, 40, 8)
DEFINE_FLASH_ATTN(flash_attn_fwd_bf16_d64, __nv_bfloat16, 64, 8)
DEFINE_FLASH_ATTN(flash_attn_fwd_bf16_d80, __nv_bfloat16, 80, 8)
DEFINE_FLASH_ATTN(flash_attn_fwd_bf16_d128, __nv_bfloat16, 128, 8)
DEFINE_FLASH_ATTN(flash_attn_fwd_bf16_d160, __nv_bfloat16, 160, 8)
DEFINE_FLASH_ATTN(flash_attn_fwd_bf16_d512, __nv_bfloat16, 512, 4)
