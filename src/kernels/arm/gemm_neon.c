/* gemm_neon.c — aarch64 Advanced SIMD pieces of the GEMM: an 8x12 fp32 microkernel (24 q
 * accumulators), B packing with f16 (vcvt_f32_f16) / bf16 (shift) -> f32 conversion, and the
 * small-M GEMV path. Activations use the libm scalar twin. Only called behind kn_use_neon(). */
#include <arm_neon.h>
#include <math.h>

#include "kernels/gemm.h"

#define MR 8
#define NR 12

/* 4 consecutive elements of B at element index idx, as f32. */
static inline float32x4_t load4(const void *B, gl_dtype t, int64_t idx) {
    if (t == GL_F16) return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16((const uint16_t *)B + idx)));
    if (t == GL_BF16) return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16((const uint16_t *)B + idx), 16));
    return vld1q_f32((const float *)B + idx);
}

static void kernel_8x12(int64_t kc, const float *pa, const float *pb, float *c, int64_t ldc, int load_c,
                        const float *bias_m, const float *bias_n) {
    float32x4_t z = vdupq_n_f32(0);
    float32x4_t c00 = z, c01 = z, c02 = z, c10 = z, c11 = z, c12 = z, c20 = z, c21 = z, c22 = z;
    float32x4_t c30 = z, c31 = z, c32 = z, c40 = z, c41 = z, c42 = z, c50 = z, c51 = z, c52 = z;
    float32x4_t c60 = z, c61 = z, c62 = z, c70 = z, c71 = z, c72 = z;
    for (int64_t k = 0; k < kc; k++) {
        float32x4_t a0 = vld1q_f32(pa), a1 = vld1q_f32(pa + 4);
        float32x4_t b0 = vld1q_f32(pb), b1 = vld1q_f32(pb + 4), b2 = vld1q_f32(pb + 8);
#define ROW(r, av, lane)                                  \
    c##r##0 = vfmaq_laneq_f32(c##r##0, b0, av, lane);     \
    c##r##1 = vfmaq_laneq_f32(c##r##1, b1, av, lane);     \
    c##r##2 = vfmaq_laneq_f32(c##r##2, b2, av, lane);
        ROW(0, a0, 0) ROW(1, a0, 1) ROW(2, a0, 2) ROW(3, a0, 3)
        ROW(4, a1, 0) ROW(5, a1, 1) ROW(6, a1, 2) ROW(7, a1, 3)
#undef ROW
        pa += MR;
        pb += NR;
    }
    float32x4_t acc[MR][3] = {{c00, c01, c02}, {c10, c11, c12}, {c20, c21, c22}, {c30, c31, c32},
                              {c40, c41, c42}, {c50, c51, c52}, {c60, c61, c62}, {c70, c71, c72}};
    for (int r = 0; r < MR; r++) {
        float *cr = c + r * ldc;
        for (int q = 0; q < 3; q++) {
            float32x4_t v = acc[r][q];
            if (load_c) v = vaddq_f32(vld1q_f32(cr + 4 * q), v);
            if (bias_n) v = vaddq_f32(v, vld1q_f32(bias_n + 4 * q));
            if (bias_m) v = vaddq_f32(v, vdupq_n_f32(bias_m[r]));
            vst1q_f32(cr + 4 * q, v);
        }
    }
}

/* 4x4 transpose: rows r[j] = B[n+j, k..k+4] become r[q] = B[n..n+4, k+q]. */
static inline void transpose4(float32x4_t r[4]) {
    float32x4x2_t t01 = vtrnq_f32(r[0], r[1]), t23 = vtrnq_f32(r[2], r[3]);
    r[0] = vcombine_f32(vget_low_f32(t01.val[0]), vget_low_f32(t23.val[0]));
    r[1] = vcombine_f32(vget_low_f32(t01.val[1]), vget_low_f32(t23.val[1]));
    r[2] = vcombine_f32(vget_high_f32(t01.val[0]), vget_high_f32(t23.val[0]));
    r[3] = vcombine_f32(vget_high_f32(t01.val[1]), vget_high_f32(t23.val[1]));
}

static void pack_b(const kn_gemm_args *a, int64_t k0, int64_t kc, int64_t n0, int64_t nc, float *dst) {
    const gl_dtype t = a->b_type;
    for (int64_t j0 = 0; j0 < nc; j0 += NR, dst += kc * NR) {
        int64_t cols = GL_MIN(NR, nc - j0), n = n0 + j0;
        int64_t k = 0;
        if (cols == NR && !a->trans_b) {
            for (; k < kc; k++) {
                int64_t idx = (k0 + k) * a->ldb + n;
                for (int q = 0; q < 3; q++) vst1q_f32(dst + k * NR + 4 * q, load4(a->B, t, idx + 4 * q));
            }
        } else if (cols == NR) {
            for (; k + 4 <= kc; k += 4)
                for (int h = 0; h < 3; h++) {
                    float32x4_t r[4];
                    for (int j = 0; j < 4; j++) r[j] = load4(a->B, t, (n + h * 4 + j) * a->ldb + k0 + k);
                    transpose4(r);
                    for (int q = 0; q < 4; q++) vst1q_f32(dst + (k + q) * NR + h * 4, r[q]);
                }
        }
        for (; k < kc; k++)
            for (int j = 0; j < NR; j++) dst[k * NR + j] = j < cols ? kn_gemm_load_b(a, k0 + k, n + j) : 0.0f;
    }
}

/* ---- GEMV (M <= 8) ------------------------------------------------------------------------ */

static inline float finish(const kn_gemm_args *a, int64_t m, int64_t n, float s) {
    if (a->bias_n) s += a->bias_n[n];
    if (a->bias_m) s += a->bias_m[m];
    float *y = &a->C[m * a->ldc + n];
    return a->accumulate ? *y + s : s;
}

/* 8 elements of type T at p as two f32x4 (T is a constant after inlining). */
static inline __attribute__((always_inline)) void load8p(const char *p, const gl_dtype T, float32x4_t *lo,
                                                         float32x4_t *hi) {
    if (T == GL_F32) {
        *lo = vld1q_f32((const float *)p);
        *hi = vld1q_f32((const float *)p + 4);
        return;
    }
    uint16x8_t h = vld1q_u16((const uint16_t *)p);
    if (T == GL_F16) {
        float16x8_t f = vreinterpretq_f16_u16(h);
        *lo = vcvt_f32_f16(vget_low_f16(f));
        *hi = vcvt_high_f32_f16(f);
    } else {
        *lo = vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(h), 16));
        *hi = vreinterpretq_f32_u32(vshll_high_n_u16(h, 16));
    }
}

/* y[m, n..n+R] from W[N,K] rows: two 4-lane accumulators per output (k mod 8 < 4 and >= 4),
 * added and reduced with vaddvq_f32, then the k tail in order; the same arithmetic for any R. */
static inline __attribute__((always_inline)) void gemv_t_tile(const kn_gemm_args *a, int64_t m, int64_t n, const int R,
                                                              const gl_dtype T) {
    float32x4_t acc[4][2];
    const int64_t K = a->K, K8 = K & ~(int64_t)7;
    const size_t esz = T == GL_F32 ? 4 : 2;
    const char *w[4];
    for (int r = 0; r < R; r++) {
        w[r] = (const char *)a->B + (size_t)((n + r) * a->ldb) * esz;
        acc[r][0] = acc[r][1] = vdupq_n_f32(0);
    }
    const float *x = a->A + m * a->lda;
    for (int64_t k = 0; k < K8; k += 8) {
        float32x4_t x0 = vld1q_f32(x + k), x1 = vld1q_f32(x + k + 4);
        for (int r = 0; r < R; r++) {
            float32x4_t w0, w1;
            load8p(w[r] + k * esz, T, &w0, &w1);
            acc[r][0] = vfmaq_f32(acc[r][0], x0, w0);
            acc[r][1] = vfmaq_f32(acc[r][1], x1, w1);
        }
    }
    for (int r = 0; r < R; r++) {
        float s = vaddvq_f32(vaddq_f32(acc[r][0], acc[r][1]));
        for (int64_t k = K8; k < K; k++) s = fmaf(x[k], kn_gemm_load_b(a, k, n + r), s);
        a->C[m * a->ldc + n + r] = finish(a, m, n + r, s);
    }
}

static inline __attribute__((always_inline)) void gemv_t_typed(const kn_gemm_args *a, int64_t n0, int64_t n1,
                                                               const gl_dtype T) {
    int64_t n = n0;
    for (; n + 4 <= n1; n += 4)
        for (int64_t m = 0; m < a->M; m++) gemv_t_tile(a, m, n, 4, T);
    for (; n < n1; n++)
        for (int64_t m = 0; m < a->M; m++) gemv_t_tile(a, m, n, 1, T);
}

static void gemv_t(const kn_gemm_args *a, int64_t n0, int64_t n1) {
    switch (a->b_type) {
    case GL_F16: gemv_t_typed(a, n0, n1, GL_F16); break;
    case GL_BF16: gemv_t_typed(a, n0, n1, GL_BF16); break;
    default: gemv_t_typed(a, n0, n1, GL_F32); break;
    }
}

/* B[K,N] rows: y[m, n..n+8] over k, up to 4 rows of A at a time; tail columns use fmaf in the
 * same order as a vector lane. */
static void gemv_n(const kn_gemm_args *a, int64_t n0, int64_t n1) {
    const int64_t K = a->K;
    int64_t n = n0;
    for (; n + 8 <= n1; n += 8)
        for (int64_t m = 0; m < a->M; m += 4) {
            int G = (int)GL_MIN(4, a->M - m);
            float32x4_t acc[4][2];
            for (int g = 0; g < 4; g++) acc[g][0] = acc[g][1] = vdupq_n_f32(0);
            const float *x = a->A + m * a->lda;
            for (int64_t k = 0; k < K; k++) {
                float32x4_t b0 = load4(a->B, a->b_type, k * a->ldb + n), b1 = load4(a->B, a->b_type, k * a->ldb + n + 4);
                for (int g = 0; g < G; g++) {
                    float xv = x[g * a->lda + k];
                    acc[g][0] = vfmaq_n_f32(acc[g][0], b0, xv);
                    acc[g][1] = vfmaq_n_f32(acc[g][1], b1, xv);
                }
            }
            for (int g = 0; g < G; g++) {
                float s[8];
                vst1q_f32(s, acc[g][0]);
                vst1q_f32(s + 4, acc[g][1]);
                for (int j = 0; j < 8; j++) a->C[(m + g) * a->ldc + n + j] = finish(a, m + g, n + j, s[j]);
            }
        }
    for (; n < n1; n++)
        for (int64_t m = 0; m < a->M; m++) {
            float s = 0;
            for (int64_t k = 0; k < K; k++) s = fmaf(a->A[m * a->lda + k], kn_gemm_load_b(a, k, n), s);
            a->C[m * a->ldc + n] = finish(a, m, n, s);
        }
}

static void gemv(const kn_gemm_args *a, int64_t n0, int64_t n1) {
    if (a->trans_b) gemv_t(a, n0, n1);
    else gemv_n(a, n0, n1);
    if (a->act != KN_ACT_NONE && !a->accumulate)
        kn_gemm_act_tile_scalar(a->act, a->C + n0, a->ldc, a->M, n1 - n0);
}

const kn_gemm_isa kn_gemm_isa_neon = {MR, NR, KN_GEMM_KC, kernel_8x12, pack_b, kn_gemm_act_tile_scalar, gemv};
