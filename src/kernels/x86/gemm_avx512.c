/* gemm_avx512.c — the AVX-512F GEMM microkernel: MR rows x 16 columns, one zmm accumulator per
 * row, each FMA taking its A element as an embedded broadcast. Only called behind
 * kn_use_avx512(); packing, activations and the GEMV path are the AVX2 ones (gemm_avx2.c).
 *
 * Why a tall tile of one-vector rows rather than a wide one: B panels stay 16 columns wide, the
 * layout the AVX2 kernel reads, and every output is the same chain of FMAs over each K block as
 * in the AVX2 kernel (bit-identical results while K fits one block of both). 16 rows give 16
 * independent accumulators, enough to cover the FMA latency of two 512-bit pipes, and tile the
 * text tower's 77 tokens into 80 rows. */
#include <immintrin.h>
#include <string.h>

#include "kernels/gemm.h"
#include "nn_math_avx512.h"

#define MR 16
#define NR 16
/* K block: twice KN_GEMM_KC. A 512 x 16 B micro-panel (32 KB) still fits the 48 KB L1 of the
 * AVX-512 Zen 5 here, and half as many K blocks halve the C reloads: S0 text -7% CPU. */
#define KC 512

static void kernel_16x16(int64_t kc, const float *pa, const float *pb, float *c, int64_t ldc, int load_c,
                         const float *bias_m, const float *bias_n) {
    __m512 acc[MR];
#pragma GCC unroll 16
    for (int r = 0; r < MR; r++) {
        acc[r] = _mm512_setzero_ps();
        _mm_prefetch((const char *)(c + r * ldc), _MM_HINT_T0);
    }
#pragma GCC unroll 2
    for (int64_t k = 0; k < kc; k++) {
        __m512 b = _mm512_loadu_ps(pb);
#pragma GCC unroll 16
        for (int r = 0; r < MR; r++) acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(pa[r]), b, acc[r]);
        pa += MR;
        pb += NR;
    }
    /* the AVX2 kernel's order: (C + acc) + bias_n + bias_m */
    __m512 bn = bias_n ? _mm512_loadu_ps(bias_n) : _mm512_setzero_ps();
#pragma GCC unroll 16
    for (int r = 0; r < MR; r++) {
        float *cr = c + r * ldc;
        __m512 v = acc[r];
        if (load_c) v = _mm512_add_ps(_mm512_loadu_ps(cr), v);
        if (bias_n) v = _mm512_add_ps(v, bn);
        if (bias_m) v = _mm512_add_ps(v, _mm512_set1_ps(bias_m[r]));
        _mm512_storeu_ps(cr, v);
    }
}

/* GELU: gelu16 (nn_math_avx512.h). Other activations use the AVX2 code. */

static void act_tile(kn_act act, float *c, int64_t ldc, int64_t rows, int64_t n) {
    if (act != KN_ACT_GELU) {
        kn_gemm_avx2_act_tile(act, c, ldc, rows, n);
        return;
    }
    for (int64_t r = 0; r < rows; r++) {
        float *x = c + r * ldc;
        int64_t i = 0;
        for (; i + 16 <= n; i += 16) _mm512_storeu_ps(x + i, gelu16(_mm512_loadu_ps(x + i)));
        if (i < n) { /* the tail through the same code, so no element depends on its position */
            float tmp[16] = {0};
            memcpy(tmp, x + i, (size_t)(n - i) * sizeof(float));
            _mm512_storeu_ps(tmp, gelu16(_mm512_loadu_ps(tmp)));
            memcpy(x + i, tmp, (size_t)(n - i) * sizeof(float));
        }
    }
}

/* ---- A packing: 16-row panels ------------------------------------------------------------
 * dst[k·16 + r] = src[r·lda + k] for k < kc (0 for r >= rows): 16×16 blocks transposed in registers (unpack,
 * shuffle, two 128-bit lane shuffles). The C loop gathering one k from 16 rows at a time ran at
 * ~0.45 ns per element: 3% of the text tower, whose activations are packed at every GEMM. */
static inline void tr16(const float *src, int64_t lda, int rows, float *dst) {
    __m512 r[16];
    for (int i = 0; i < 16; i++) r[i] = i < rows ? _mm512_loadu_ps(src + i * lda) : _mm512_setzero_ps();
    transpose16x16(r);
    for (int i = 0; i < 16; i++) _mm512_storeu_ps(dst + i * 16, r[i]);
}

void kn_gemm_avx512_pack_a16(const float *src, int64_t lda, int rows, int64_t kc, float *dst) {
    int64_t k0 = 0;
    if (rows == 16)
        for (; k0 + 16 <= kc; k0 += 16) tr16(src + k0, lda, 16, dst + k0 * 16);
    else
        for (; k0 + 16 <= kc; k0 += 16) tr16(src + k0, lda, rows, dst + k0 * 16);
    for (int64_t k = k0; k < kc; k++)
        for (int r = 0; r < 16; r++) dst[k * 16 + r] = r < rows ? src[r * lda + k] : 0.0f;
}

/* The AVX2 GEMV with this table's activation, so a row's result does not depend on whether M
 * took the GEMV or the packed path. */
static void gemv(const kn_gemm_args *a, int64_t n0, int64_t n1) {
    if (a->act == KN_ACT_NONE || a->accumulate) {
        kn_gemm_avx2_gemv(a, n0, n1);
        return;
    }
    kn_gemm_args b = *a;
    b.act = KN_ACT_NONE;
    kn_gemm_avx2_gemv(&b, n0, n1);
    act_tile(a->act, a->C + n0, a->ldc, a->M, n1 - n0);
}

const kn_gemm_isa kn_gemm_isa_avx512 = {MR, NR, KC, kernel_16x16, kn_gemm_avx2_pack_b, act_tile, gemv};
