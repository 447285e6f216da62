/* gemm_avx2.c — AVX2+FMA+F16C pieces of the GEMM: a 6x16 microkernel (12 ymm accumulators),
 * B packing with f16/bf16 -> f32 conversion, vector activations (exp, erfc) and the small-M
 * GEMV path. Only called behind kn_use_avx2(). */
#include <immintrin.h>
#include <math.h>

#include "core/fp16.h"
#include "kernels/gemm.h"

#define MR 6
#define NR 16

/* ---- loads -------------------------------------------------------------------------------- */

/* 8 consecutive elements of B (f32/f16/bf16) at element index idx, as f32. */
static inline __m256 load8(const void *B, gl_dtype t, int64_t idx) {
    if (t == GL_F16) return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)B + idx)));
    if (t == GL_BF16) {
        __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)((const uint16_t *)B + idx)));
        return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
    }
    return _mm256_loadu_ps((const float *)B + idx);
}

/* 8 elements of type T at p, as f32 (T is a constant after inlining). */
static inline __attribute__((always_inline)) __m256 load8p(const char *p, const gl_dtype T) {
    if (T == GL_F16) return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
    if (T == GL_BF16)
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p)), 16));
    return _mm256_loadu_ps((const float *)p);
}

/* ---- microkernel -------------------------------------------------------------------------- */

static void kernel_6x16(int64_t kc, const float *pa, const float *pb, float *c, int64_t ldc, int load_c,
                        const float *bias_m, const float *bias_n) {
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    for (int r = 0; r < MR; r++) _mm_prefetch((const char *)(c + r * ldc), _MM_HINT_T0);
#pragma GCC unroll 4
    for (int64_t k = 0; k < kc; k++) {
        __m256 b0 = _mm256_load_ps(pb), b1 = _mm256_load_ps(pb + 8), a;
        a = _mm256_broadcast_ss(pa + 0);
        c00 = _mm256_fmadd_ps(a, b0, c00); c01 = _mm256_fmadd_ps(a, b1, c01);
        a = _mm256_broadcast_ss(pa + 1);
        c10 = _mm256_fmadd_ps(a, b0, c10); c11 = _mm256_fmadd_ps(a, b1, c11);
        a = _mm256_broadcast_ss(pa + 2);
        c20 = _mm256_fmadd_ps(a, b0, c20); c21 = _mm256_fmadd_ps(a, b1, c21);
        a = _mm256_broadcast_ss(pa + 3);
        c30 = _mm256_fmadd_ps(a, b0, c30); c31 = _mm256_fmadd_ps(a, b1, c31);
        a = _mm256_broadcast_ss(pa + 4);
        c40 = _mm256_fmadd_ps(a, b0, c40); c41 = _mm256_fmadd_ps(a, b1, c41);
        a = _mm256_broadcast_ss(pa + 5);
        c50 = _mm256_fmadd_ps(a, b0, c50); c51 = _mm256_fmadd_ps(a, b1, c51);
        pa += MR;
        pb += NR;
    }
    __m256 acc[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
    __m256 bn0 = bias_n ? _mm256_loadu_ps(bias_n) : _mm256_setzero_ps();
    __m256 bn1 = bias_n ? _mm256_loadu_ps(bias_n + 8) : _mm256_setzero_ps();
    for (int r = 0; r < MR; r++) {
        float *cr = c + r * ldc;
        __m256 v0 = acc[r][0], v1 = acc[r][1];
        if (load_c) {
            v0 = _mm256_add_ps(_mm256_loadu_ps(cr), v0);
            v1 = _mm256_add_ps(_mm256_loadu_ps(cr + 8), v1);
        }
        if (bias_n) {
            v0 = _mm256_add_ps(v0, bn0);
            v1 = _mm256_add_ps(v1, bn1);
        }
        if (bias_m) {
            __m256 bm = _mm256_broadcast_ss(bias_m + r);
            v0 = _mm256_add_ps(v0, bm);
            v1 = _mm256_add_ps(v1, bm);
        }
        _mm256_storeu_ps(cr, v0);
        _mm256_storeu_ps(cr + 8, v1);
    }
}

/* ---- packing ------------------------------------------------------------------------------ */

static inline void transpose8(__m256 r[8]) {
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    __m256 s0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 s1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 s2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 s3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 s4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 s5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 s6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 s7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
    r[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
    r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
    r[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
    r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
    r[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
    r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
    r[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
    r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

/* B rows [k0, k0+kc) x columns [n0, n0+nc) packed into NR-wide panels; T constant after
 * inlining so the conversion is not re-dispatched per load. */
static inline __attribute__((always_inline)) void pack_b_typed(const kn_gemm_args *a, int64_t k0, int64_t kc, int64_t n0,
                                                               int64_t nc, float *dst, const gl_dtype T) {
    const size_t esz = T == GL_F32 ? 4 : 2;
    const char *B = a->B;
    for (int64_t j0 = 0; j0 < nc; j0 += NR, dst += kc * NR) {
        int64_t cols = GL_MIN(NR, nc - j0), n = n0 + j0;
        int64_t k = 0;
        if (cols == NR && !a->trans_b) {
            for (; k < kc; k++) {
                const char *p = B + (size_t)((k0 + k) * a->ldb + n) * esz;
                _mm256_store_ps(dst + k * NR, load8p(p, T));
                _mm256_store_ps(dst + k * NR + 8, load8p(p + 8 * esz, T));
            }
        } else if (cols == NR) {
            /* B[n, k]: 8 k at a time from 16 rows, two 8x8 transposes. 16 strided streams are
             * more than the hardware prefetcher follows well (weights come from DRAM): ask for
             * each row's line 256 bytes ahead (an address, not an access: past the end is fine) */
            for (; k + 8 <= kc; k += 8) {
                if ((k & 15) == 0)
                    for (int r = 0; r < NR; r++)
                        _mm_prefetch(B + (size_t)((n + r) * a->ldb + k0 + k) * esz + 256, _MM_HINT_T0);
                for (int h = 0; h < 2; h++) {
                    __m256 r[8];
                    for (int j = 0; j < 8; j++) r[j] = load8p(B + (size_t)((n + h * 8 + j) * a->ldb + k0 + k) * esz, T);
                    transpose8(r);
                    for (int q = 0; q < 8; q++) _mm256_store_ps(dst + (k + q) * NR + h * 8, r[q]);
                }
            }
        }
        for (; k < kc; k++)
            for (int j = 0; j < NR; j++) dst[k * NR + j] = j < cols ? kn_gemm_load_b(a, k0 + k, n + j) : 0.0f;
    }
}

void kn_gemm_avx2_pack_b(const kn_gemm_args *a, int64_t k0, int64_t kc, int64_t n0, int64_t nc, float *dst) {
    switch (a->b_type) {
    case GL_F16: pack_b_typed(a, k0, kc, n0, nc, dst, GL_F16); break;
    case GL_BF16: pack_b_typed(a, k0, kc, n0, nc, dst, GL_BF16); break;
    default: pack_b_typed(a, k0, kc, n0, nc, dst, GL_F32); break;
    }
}

/* ---- activations -------------------------------------------------------------------------- */

/* e^x, relative error ~2 ulp; x clamped to [-87.3, 88.3] so 2^n stays a normal float. */
static inline __m256 exp8(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.3f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    /* r = x - n ln2 in two steps (ln2 = 0.693359375 - 2.12194440e-4, the first part exact) */
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    /* |r| <= ln2/2: Taylor to r^7 truncates at 0.347^8/8! = 6e-9. Estrin's scheme: a shorter
     * dependency chain than Horner (activations are latency-bound) */
    __m256 r2 = _mm256_mul_ps(r, r), r4 = _mm256_mul_ps(r2, r2);
    __m256 p01 = _mm256_add_ps(_mm256_set1_ps(1.0f), r);
    __m256 p23 = _mm256_fmadd_ps(r, _mm256_set1_ps(1.0f / 6), _mm256_set1_ps(0.5f));
    __m256 p45 = _mm256_fmadd_ps(r, _mm256_set1_ps(1.0f / 120), _mm256_set1_ps(1.0f / 24));
    __m256 p67 = _mm256_fmadd_ps(r, _mm256_set1_ps(1.0f / 5040), _mm256_set1_ps(1.0f / 720));
    __m256 p = _mm256_fmadd_ps(_mm256_fmadd_ps(p67, r2, p45), r4, _mm256_fmadd_ps(p23, r2, p01));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

/* 1/d for 1 <= d < 2^126 (the exp clamp keeps d there): the 12-bit estimate and one Newton
 * step, ~2e-7 relative, cheaper than a divide. Above 2^126 rcp gives 0, fine for x·(1/d). */
static inline __m256 recip8(__m256 d) {
    __m256 r = _mm256_rcp_ps(d);
    return _mm256_mul_ps(r, _mm256_fnmadd_ps(d, r, _mm256_set1_ps(2.0f)));
}

/* erfc(z) for z >= 0 as t·exp(-z² + Q(t)), t = 1/(1 + z/2). Q is our own degree-9 least-squares
 * fit on Chebyshev nodes over z in [0, 9.4] (tools: numpy, math.erfc); in float the relative
 * error of the result is ~4e-7 (no cancellation: erf GELU uses 1 + erf(z) = 2 - erfc(z) for
 * z >= 0 and erfc(-z) for z < 0, accurate in the negative tail where 1 + erff(z) is not). */
static inline __m256 erfc8_pos(__m256 z) {
    z = _mm256_min_ps(z, _mm256_set1_ps(9.4f));
    __m256 t = recip8(_mm256_fmadd_ps(z, _mm256_set1_ps(0.5f), _mm256_set1_ps(1.0f)));
    /* Q(t) = sum c_i t^i, c_0 first; Estrin's scheme, as in exp8 */
    const __m256 c0 = _mm256_set1_ps(-1.265430212e+00f), c1 = _mm256_set1_ps(9.982751608e-01f);
    const __m256 c2 = _mm256_set1_ps(3.896754384e-01f), c3 = _mm256_set1_ps(2.025135793e-02f);
    const __m256 c4 = _mm256_set1_ps(4.306344688e-02f), c5 = _mm256_set1_ps(-1.582799703e-01f);
    const __m256 c6 = _mm256_set1_ps(-6.026692390e-01f), c7 = _mm256_set1_ps(1.086908579e+00f);
    const __m256 c8 = _mm256_set1_ps(-6.513414383e-01f), c9 = _mm256_set1_ps(1.395468265e-01f);
    __m256 t2 = _mm256_mul_ps(t, t), t4 = _mm256_mul_ps(t2, t2), t8 = _mm256_mul_ps(t4, t4);
    __m256 p03 = _mm256_fmadd_ps(_mm256_fmadd_ps(c3, t, c2), t2, _mm256_fmadd_ps(c1, t, c0));
    __m256 p47 = _mm256_fmadd_ps(_mm256_fmadd_ps(c7, t, c6), t2, _mm256_fmadd_ps(c5, t, c4));
    __m256 p = _mm256_fmadd_ps(_mm256_fmadd_ps(c9, t, c8), t8, _mm256_fmadd_ps(p47, t4, p03));
    return _mm256_mul_ps(t, exp8(_mm256_fnmadd_ps(z, z, p)));
}

static inline __attribute__((always_inline)) __m256 act8(const kn_act act, __m256 x) {
    const __m256 one = _mm256_set1_ps(1.0f);
    switch (act) {
    case KN_ACT_RELU: return _mm256_max_ps(x, _mm256_setzero_ps());
    case KN_ACT_GELU: {
        __m256 z = _mm256_mul_ps(x, _mm256_set1_ps(0.70710678118654752f));
        __m256 az = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), z);
        __m256 e = erfc8_pos(az);
        __m256 pos = _mm256_sub_ps(_mm256_set1_ps(2.0f), e);
        __m256 phi = _mm256_blendv_ps(pos, e, z); /* sign bit of z picks erfc(-z) */
        return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), x), phi);
    }
    case KN_ACT_SILU: return _mm256_mul_ps(x, recip8(_mm256_add_ps(one, exp8(_mm256_sub_ps(_mm256_setzero_ps(), x)))));
    case KN_ACT_GELU_TANH: {
        /* 0.5x(1 + tanh u) = x / (1 + e^(-2u)) */
        __m256 x3 = _mm256_mul_ps(_mm256_mul_ps(x, x), x);
        __m256 u = _mm256_mul_ps(_mm256_set1_ps(0.7978845608028654f), _mm256_fmadd_ps(_mm256_set1_ps(0.044715f), x3, x));
        return _mm256_mul_ps(x, recip8(_mm256_add_ps(one, exp8(_mm256_mul_ps(_mm256_set1_ps(-2.0f), u)))));
    }
    default: return x;
    }
}

/* One activation over a tile (A is a constant after inlining, so act8's switch folds away). */
static inline __attribute__((always_inline)) void act_tile_a(const kn_act A, float *c, int64_t ldc, int64_t rows,
                                                             int64_t n) {
    for (int64_t r = 0; r < rows; r++) {
        float *x = c + r * ldc;
        int64_t i = 0;
        for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, act8(A, _mm256_loadu_ps(x + i)));
        if (i < n) { /* the tail through the same vector code, so no element depends on its position */
            float tmp[8] = {0};
            memcpy(tmp, x + i, (n - i) * sizeof(float));
            _mm256_storeu_ps(tmp, act8(A, _mm256_loadu_ps(tmp)));
            memcpy(x + i, tmp, (n - i) * sizeof(float));
        }
    }
}

void kn_gemm_avx2_act_tile(kn_act act, float *c, int64_t ldc, int64_t rows, int64_t n) {
    switch (act) {
    case KN_ACT_RELU: act_tile_a(KN_ACT_RELU, c, ldc, rows, n); break;
    case KN_ACT_GELU: act_tile_a(KN_ACT_GELU, c, ldc, rows, n); break;
    case KN_ACT_SILU: act_tile_a(KN_ACT_SILU, c, ldc, rows, n); break;
    case KN_ACT_GELU_TANH: act_tile_a(KN_ACT_GELU_TANH, c, ldc, rows, n); break;
    default: break;
    }
}

/* ---- GEMV (M <= 8) ------------------------------------------------------------------------ */

static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline float finish(const kn_gemm_args *a, int64_t m, int64_t n, float s) {
    if (a->bias_n) s += a->bias_n[n];
    if (a->bias_m) s += a->bias_m[m];
    float *y = &a->C[m * a->ldc + n];
    return a->accumulate ? *y + s : s;
}

/* y[m..m+G, n..n+R] with W[N,K] rows: each output is one 8-lane accumulator over k, summed
 * across lanes in a fixed order, then the k tail in order. R, G, T are constants after
 * inlining; every (R, G) does the same arithmetic per output, so grouping cannot change
 * results. */
static inline __attribute__((always_inline)) void gemv_t_tile(const kn_gemm_args *a, int64_t m, int64_t n, const int R,
                                                              const int G, const gl_dtype T) {
    __m256 acc[8][2];
    const int64_t K = a->K, K8 = K & ~(int64_t)7;
    const size_t esz = T == GL_F32 ? 4 : 2;
    const char *w[8];
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) {
        w[r] = (const char *)a->B + (size_t)((n + r) * a->ldb) * esz;
#pragma GCC unroll 2
        for (int g = 0; g < G; g++) acc[r][g] = _mm256_setzero_ps();
    }
    const float *x = a->A + m * a->lda;
    /* W rows are short streams (K elements each): prefetch the next rows' bytes one group ahead
     * so DRAM sees one long sequential read instead of R short ones.
     * pf is an address, not an access: it may lie past the end of B (prefetches do not fault) */
    const uintptr_t pf = (uintptr_t)a->B + (uintptr_t)((n + R) * a->ldb) * esz;
    const int64_t pf_end = (int64_t)(R * a->ldb * esz), pf_step = (int64_t)(esz * 8) * R;
    int64_t pf_off = 0;
    for (int64_t k = 0; k < K8; k += 8) {
        __m256 xv[2];
        if (pf_off < pf_end) {
            for (int64_t o = 0; o < pf_step; o += 64) _mm_prefetch((const char *)(pf + pf_off + o), _MM_HINT_T0);
            pf_off += pf_step;
        }
#pragma GCC unroll 2
        for (int g = 0; g < G; g++) xv[g] = _mm256_loadu_ps(x + g * a->lda + k);
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) {
            __m256 wv = load8p(w[r] + k * esz, T);
#pragma GCC unroll 2
            for (int g = 0; g < G; g++) acc[r][g] = _mm256_fmadd_ps(xv[g], wv, acc[r][g]);
        }
    }
    for (int r = 0; r < R; r++)
        for (int g = 0; g < G; g++) {
            float s = hsum8(acc[r][g]);
            for (int64_t k = K8; k < K; k++) s = fmaf(x[g * a->lda + k], kn_gemm_load_b(a, k, n + r), s);
            a->C[(m + g) * a->ldc + n + r] = finish(a, m + g, n + r, s);
        }
}

static inline __attribute__((always_inline)) void gemv_t_typed(const kn_gemm_args *a, int64_t n0, int64_t n1,
                                                               const gl_dtype T) {
    int64_t n = n0;
    for (; n + 8 <= n1; n += 8) {
        int64_t m = 0;
        for (; m + 2 <= a->M; m += 2) gemv_t_tile(a, m, n, 4, 2, T), gemv_t_tile(a, m, n + 4, 4, 2, T);
        for (; m < a->M; m++) gemv_t_tile(a, m, n, 8, 1, T);
    }
    for (; n < n1; n++)
        for (int64_t m = 0; m < a->M; m++) gemv_t_tile(a, m, n, 1, 1, T);
}

static void gemv_t(const kn_gemm_args *a, int64_t n0, int64_t n1) {
    switch (a->b_type) {
    case GL_F16: gemv_t_typed(a, n0, n1, GL_F16); break;
    case GL_BF16: gemv_t_typed(a, n0, n1, GL_BF16); break;
    default: gemv_t_typed(a, n0, n1, GL_F32); break;
    }
}

/* B[K,N] rows: y[m, n..n+16] accumulates x[m,k]·B[k, n..n+16] over k, up to 4 rows of A at a
 * time; tail columns use fmaf in the same order, the same arithmetic as one vector lane. */
static void gemv_n(const kn_gemm_args *a, int64_t n0, int64_t n1) {
    const int64_t K = a->K;
    int64_t n = n0;
    for (; n + 16 <= n1; n += 16)
        for (int64_t m = 0; m < a->M; m += 4) {
            int G = (int)GL_MIN(4, a->M - m);
            __m256 acc[4][2];
            for (int g = 0; g < 4; g++) acc[g][0] = acc[g][1] = _mm256_setzero_ps();
            const float *x = a->A + m * a->lda;
            for (int64_t k = 0; k < K; k++) {
                __m256 b0 = load8(a->B, a->b_type, k * a->ldb + n), b1 = load8(a->B, a->b_type, k * a->ldb + n + 8);
                for (int g = 0; g < G; g++) {
                    __m256 xv = _mm256_broadcast_ss(x + g * a->lda + k);
                    acc[g][0] = _mm256_fmadd_ps(xv, b0, acc[g][0]);
                    acc[g][1] = _mm256_fmadd_ps(xv, b1, acc[g][1]);
                }
            }
            for (int g = 0; g < G; g++) {
                float s[16];
                _mm256_storeu_ps(s, acc[g][0]);
                _mm256_storeu_ps(s + 8, acc[g][1]);
                for (int j = 0; j < 16; j++) a->C[(m + g) * a->ldc + n + j] = finish(a, m + g, n + j, s[j]);
            }
        }
    for (; n < n1; n++)
        for (int64_t m = 0; m < a->M; m++) {
            float s = 0;
            for (int64_t k = 0; k < K; k++) s = fmaf(a->A[m * a->lda + k], kn_gemm_load_b(a, k, n), s);
            a->C[m * a->ldc + n] = finish(a, m, n, s);
        }
}

void kn_gemm_avx2_gemv(const kn_gemm_args *a, int64_t n0, int64_t n1) {
    if (a->trans_b) gemv_t(a, n0, n1);
    else gemv_n(a, n0, n1);
    if (a->act != KN_ACT_NONE && !a->accumulate)
        kn_gemm_avx2_act_tile(a->act, a->C + n0, a->ldc, a->M, n1 - n0);
}

const kn_gemm_isa kn_gemm_isa_avx2 = {MR, NR, KN_GEMM_KC, kernel_6x16, kn_gemm_avx2_pack_b, kn_gemm_avx2_act_tile, kn_gemm_avx2_gemv};
