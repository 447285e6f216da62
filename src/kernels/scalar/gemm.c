/* gemm.c (scalar) — the plain-C pieces of the packed GEMM: the fallback for CPUs without AVX2
 * or NEON, and the shared slow helpers (act via libm, B element loads for packing tails). */
#include <math.h>

#include "core/fp16.h"
#include "kernels/gemm.h"

float kn_gemm_act1(kn_act act, float x) {
    switch (act) {
    case KN_ACT_RELU: return x > 0 ? x : 0;
    /* 1 + erf(z) = erfc(-z) and 0.5(1 + tanh u) = 1/(1 + e^(-2u)): same values as kn_gemm_ref's
     * forms, without their cancellation in the negative tail */
    case KN_ACT_GELU: return 0.5f * x * erfcf(x * -0.70710678118654752f);
    case KN_ACT_SILU: return x / (1.0f + expf(-x));
    case KN_ACT_GELU_TANH: return x / (1.0f + expf(-2.0f * 0.7978845608028654f * (x + 0.044715f * x * x * x)));
    default: return x;
    }
}

void kn_gemm_act_tile_scalar(kn_act act, float *c, int64_t ldc, int64_t rows, int64_t n) {
    if (act == KN_ACT_NONE) return;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t i = 0; i < n; i++) c[r * ldc + i] = kn_gemm_act1(act, c[r * ldc + i]);
}

float kn_gemm_load_b(const kn_gemm_args *a, int64_t k, int64_t n) {
    int64_t idx = a->trans_b ? n * a->ldb + k : k * a->ldb + n;
    switch (a->b_type) {
    case GL_F16: return gl_f16_to_f32(((const uint16_t *)a->B)[idx]);
    case GL_BF16: return gl_bf16_to_f32(((const uint16_t *)a->B)[idx]);
    default: return ((const float *)a->B)[idx];
    }
}

#define MR 4
#define NR 8

static void kernel_4x8(int64_t kc, const float *pa, const float *pb, float *c, int64_t ldc, int load_c,
                       const float *bias_m, const float *bias_n) {
    float acc[MR][NR] = {{0}};
    for (int64_t k = 0; k < kc; k++) {
        for (int r = 0; r < MR; r++)
            for (int j = 0; j < NR; j++) acc[r][j] += pa[r] * pb[j];
        pa += MR;
        pb += NR;
    }
    for (int r = 0; r < MR; r++)
        for (int j = 0; j < NR; j++) {
            float v = load_c ? c[r * ldc + j] + acc[r][j] : acc[r][j];
            if (bias_n) v += bias_n[j];
            if (bias_m) v += bias_m[r];
            c[r * ldc + j] = v;
        }
}

static void pack_b(const kn_gemm_args *a, int64_t k0, int64_t kc, int64_t n0, int64_t nc, float *dst) {
    for (int64_t j0 = 0; j0 < nc; j0 += NR) {
        int64_t cols = GL_MIN(NR, nc - j0);
        for (int64_t k = 0; k < kc; k++)
            for (int j = 0; j < NR; j++) dst[k * NR + j] = j < cols ? kn_gemm_load_b(a, k0 + k, n0 + j0 + j) : 0.0f;
        dst += kc * NR;
    }
}

/* Small M: one dot product per output, B read once per row of A (M <= 8 rows of A stay in L1). */
static void gemv(const kn_gemm_args *a, int64_t n0, int64_t n1) {
    for (int64_t m = 0; m < a->M; m++) {
        const float *x = a->A + m * a->lda;
        float *y = a->C + m * a->ldc;
        for (int64_t n = n0; n < n1; n++) {
            float s = 0;
            for (int64_t k = 0; k < a->K; k++) s += x[k] * kn_gemm_load_b(a, k, n);
            if (a->bias_n) s += a->bias_n[n];
            if (a->bias_m) s += a->bias_m[m];
            y[n] = a->accumulate ? y[n] + s : kn_gemm_act1(a->act, s);
        }
    }
}

const kn_gemm_isa kn_gemm_isa_scalar = {MR, NR, KN_GEMM_KC, kernel_4x8, pack_b, kn_gemm_act_tile_scalar, gemv};
