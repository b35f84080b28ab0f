// Fused flash-attention forward on tensor cores (WMMA 16x16x16, f16/bf16 in, f32 accumulate),
// compiled at run time by NVRTC for sm_80+. Plain CUDA C++: no host code, one `extern "C"`
// kernel per (dtype, head dim).
//
// Layout: q [BH, Lq, D], k and v [BH, Lk, D], o [BH, Lq, D], contiguous, same dtype; D is a
// multiple of 8 (16-byte row vectors) and is padded with zeros to DP, a multiple of 16, in
// shared memory. Grid: (ceil(Lq / 64), BH). Block: 4 warps; warp w owns query rows 16w..16w+15
// of the block's 64. Dynamic shared memory (bytes), LDT = DP + 8, LDS = 64 + 4, LDP = 64 + 8:
//   (64 + 2*64) * LDT * sizeof(T)      Q tile, K tile, V tile (T)
//   + 4 * 16 * LDS * 4                 per-warp f32 scratch (scores, then P.V chunks)
//   + 4 * 16 * LDP * sizeof(T)         per-warp probabilities P (T)
// The host (kernels/src/attention.rs, `tc_smem_bytes`) computes the same size.
//
// Per key tile of 64 keys, each warp:
//   S = Q_w K^T with WMMA into f32, stored to its scratch;
//   online softmax in base 2 (scale pre-multiplied by log2 e): lane pair (2r, 2r+1) owns row r,
//   each lane 32 of its columns; running max m and denominator l per row (kept by both lanes);
//   P = exp2(S - m) rounded to T, O *= exp2(m_old - m);
//   O += P V with WMMA, one 16-column chunk of the head dim at a time, added into registers
//   (lane holds row r = lane / 2, columns 8 * (lane % 2) .. + 8 of every chunk).
// The full score matrix is never built.

#include <cuda_fp16.h>
#include <cuda_bf16.h>
#include <mma.h>

#define TC_WARPS 4
#define TC_THREADS (TC_WARPS * 32)
#define TC_BQ (TC_WARPS * 16)
#define TC_BK 64
#define TC_LDS (TC_BK + 4)
#define TC_LDP (TC_BK + 8)
#define TC_NEG_INF (-__int_as_float(0x7f800000))

static __device__ __forceinline__ void tc_store(__half* p, float x) { *p = __float2half_rn(x); }
static __device__ __forceinline__ void tc_store(__nv_bfloat16* p, float x) { *p = __float2bfloat16_rn(x); }

// Copies `rows` rows of D elements (row `r` at g + r*D, rows >= valid are zeros) into shared
// memory with row stride LDT, zero-filling columns D..DP. 16-byte vectors.
template <typename T, int D, int DP, int LDT>
static __device__ __forceinline__ void tc_load_tile(T* s, const T* __restrict__ g, int rows, int valid) {
    constexpr int VEC = 8;
    constexpr int DV = DP / VEC;
    for (int i = threadIdx.x; i < rows * DV; i += TC_THREADS) {
        const int r = i / DV;
        const int c = (i - r * DV) * VEC;
        uint4 val = make_uint4(0u, 0u, 0u, 0u);
        if (r < valid && c < D) val = *reinterpret_cast<const uint4*>(g + (size_t)r * D + c);
        *reinterpret_cast<uint4*>(s + r * LDT + c) = val;
    }
}

template <typename T, int D>
static __device__ __forceinline__ void flash_attn_tc_impl(
    const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
    T* __restrict__ o, int lq, int lk, float scale_log2) {
    using namespace nvcuda;
    static_assert(D % 8 == 0, "head dim must be a multiple of 8");
    constexpr int DP = (D + 15) / 16 * 16;
    constexpr int LDT = DP + 8;
    constexpr int NC = DP / 16;  // 16-column chunks of the head dim

    extern __shared__ float4 tc_smem4[];
    T* qs = reinterpret_cast<T*>(tc_smem4);  // [TC_BQ][LDT]
    T* ks = qs + TC_BQ * LDT;                // [TC_BK][LDT]
    T* vs = ks + TC_BK * LDT;                // [TC_BK][LDT]
    float* scratch = reinterpret_cast<float*>(vs + TC_BK * LDT);  // [warps][16][TC_LDS]
    T* pbuf = reinterpret_cast<T*>(scratch + TC_WARPS * 16 * TC_LDS);  // [warps][16][TC_LDP]

    const int lane = threadIdx.x & 31;
    const int warp = threadIdx.x >> 5;
    const size_t bh = blockIdx.y;
    const int q0 = blockIdx.x * TC_BQ;
    const T* kb = k + bh * (size_t)lk * D;
    const T* vb = v + bh * (size_t)lk * D;
    float* sw = scratch + warp * 16 * TC_LDS;
    T* pw = pbuf + warp * 16 * TC_LDP;
    const T* qw = qs + warp * 16 * LDT;

    tc_load_tile<T, D, DP, LDT>(qs, q + (bh * (size_t)lq + q0) * D, TC_BQ, lq - q0);

    const int row = lane >> 1;   // the row this lane updates
    const int half = lane & 1;   // which half of the row's columns
    float m = TC_NEG_INF, l = 0.0f;
    float acc[NC][8];
#pragma unroll
    for (int c = 0; c < NC; ++c)
#pragma unroll
        for (int i = 0; i < 8; ++i) acc[c][i] = 0.0f;

    for (int k0 = 0; k0 < lk; k0 += TC_BK) {
        __syncthreads();  // the previous K/V tiles are consumed (first time: Q is being stored)
        const int kv = min(TC_BK, lk - k0);
        tc_load_tile<T, D, DP, LDT>(ks, kb + (size_t)k0 * D, TC_BK, kv);
        tc_load_tile<T, D, DP, LDT>(vs, vb + (size_t)k0 * D, TC_BK, kv);
        __syncthreads();

        // S = Q_w K^T (16 x TC_BK), f32, into the warp's scratch.
#pragma unroll
        for (int n = 0; n < TC_BK / 16; ++n) {
            wmma::fragment<wmma::accumulator, 16, 16, 16, float> s;
            wmma::fill_fragment(s, 0.0f);
#pragma unroll
            for (int kk = 0; kk < NC; ++kk) {
                wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> a;
                wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major> b;
                wmma::load_matrix_sync(a, qw + kk * 16, LDT);
                wmma::load_matrix_sync(b, ks + n * 16 * LDT + kk * 16, LDT);
                wmma::mma_sync(s, a, b, s);
            }
            wmma::store_matrix_sync(sw + n * 16, s, TC_LDS, wmma::mem_row_major);
        }
        __syncwarp();

        // Online softmax of row `row`, this lane's 32 columns.
        constexpr int CW = TC_BK / 2;
        const float* srow = sw + row * TC_LDS + half * CW;
        float tmax = TC_NEG_INF;
#pragma unroll
        for (int j = 0; j < CW; ++j) {
            const bool ok = k0 + half * CW + j < lk;
            tmax = fmaxf(tmax, ok ? srow[j] * scale_log2 : TC_NEG_INF);
        }
        tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffffu, tmax, 1));
        const float m_new = fmaxf(m, tmax);  // finite: every tile has a valid key
        const float alpha = exp2f(m - m_new);
        float sum = 0.0f;
        T* prow = pw + row * TC_LDP + half * CW;
#pragma unroll
        for (int j = 0; j < CW; ++j) {
            const bool ok = k0 + half * CW + j < lk;
            const float p = ok ? exp2f(srow[j] * scale_log2 - m_new) : 0.0f;
            sum += p;
            tc_store(prow + j, p);
        }
        sum += __shfl_xor_sync(0xffffffffu, sum, 1);
        l = l * alpha + sum;
        m = m_new;
#pragma unroll
        for (int c = 0; c < NC; ++c)
#pragma unroll
            for (int i = 0; i < 8; ++i) acc[c][i] *= alpha;
        __syncwarp();

        // O += P V, one 16-column chunk at a time through the scratch.
#pragma unroll
        for (int c = 0; c < NC; ++c) {
            wmma::fragment<wmma::accumulator, 16, 16, 16, float> pv;
            wmma::fill_fragment(pv, 0.0f);
#pragma unroll
            for (int kk = 0; kk < TC_BK / 16; ++kk) {
                wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> a;
                wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major> b;
                wmma::load_matrix_sync(a, pw + kk * 16, TC_LDP);
                wmma::load_matrix_sync(b, vs + kk * 16 * LDT + c * 16, LDT);
                wmma::mma_sync(pv, a, b, pv);
            }
            wmma::store_matrix_sync(sw, pv, TC_LDS, wmma::mem_row_major);
            __syncwarp();
            const float* src = sw + row * TC_LDS + half * 8;
#pragma unroll
            for (int i = 0; i < 8; ++i) acc[c][i] += src[i];
            __syncwarp();
        }
    }

    const int qi = q0 + warp * 16 + row;
    if (qi < lq) {
        const float inv = 1.0f / l;
        T* orow = o + (bh * (size_t)lq + qi) * D;
#pragma unroll
        for (int c = 0; c < NC; ++c)
#pragma unroll
            for (int i = 0; i < 8; ++i) {
                const int d = c * 16 + half * 8 + i;
                if (d < D) tc_store(orow + d, acc[c][i] * inv);
            }
    }
}

#define DEFINE_FLASH_ATTN_TC(NAME, T, D)                                                      \
    extern "C" __global__ void __launch_bounds__(TC_THREADS) NAME(                           \
        const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,           \
        T* __restrict__ o, int lq, int lk, float scale_log2) {                                \
        flash_attn_tc_impl<T, D>(q, k, v, o, lq, lk, scale_log2);                             \
    }

DEFINE_FLASH_ATTN_TC(flash_attn_tc_f16_d40, __half, 40)
DEFINE_FLASH_ATTN_TC(flash_attn_tc_f16_d64, __half, 64)
DEFINE_FLASH_ATTN_TC(flash_attn_tc_f16_d80, __half, 80)
DEFINE_FLASH_ATTN_TC(flash_attn_tc_f16_d128, __half, 128)
DEFINE_FLASH_ATTN_TC(flash_attn_tc_f16_d160, __half, 160)

DEFINE_FLASH_ATTN_TC(flash_attn_tc_bf16_d40, __nv_bfloat16, 40)
DEFINE_FLASH_ATTN_TC(flash_attn_tc_bf16_d64, __nv_bfloat16, 64)
DEFINE_FLASH_ATTN_TC(flash_attn_tc_bf16_d80, __nv_bfloat16, 80)
DEFINE_FLASH_ATTN_TC(flash_attn_tc_bf16_d128, __nv_bfloat16, 128)
DEFINE_FLASH_ATTN_TC(flash_attn_tc_bf16_d160, __nv_bfloat16, 160)
