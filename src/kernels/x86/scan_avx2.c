/* scan_avx2.c — f16 row scan with F16C conversion and FMA: two rows at a time (each query load
 * feeds two FMAs), 16 elements per row per step in two accumulators each (four chains in flight). Only called behind kn_use_avx2(). */
#include <immintrin.h>

#include "core/fp16.h"
#include "kernels/scan.h"

static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

#define LD(p) _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p)))

static void dot2(const uint16_t *r0, const uint16_t *r1, const float *q, int64_t dim, float *out) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, b0 = a0, b1 = a0;
    int64_t k = 0;
    for (; k + 16 <= dim; k += 16) {
        __m256 q0 = _mm256_loadu_ps(q + k), q1 = _mm256_loadu_ps(q + k + 8);
        a0 = _mm256_fmadd_ps(q0, LD(r0 + k), a0);
        a1 = _mm256_fmadd_ps(q1, LD(r0 + k + 8), a1);
        b0 = _mm256_fmadd_ps(q0, LD(r1 + k), b0);
        b1 = _mm256_fmadd_ps(q1, LD(r1 + k + 8), b1);
    }
    for (; k + 8 <= dim; k += 8) {
        __m256 q0 = _mm256_loadu_ps(q + k);
        a0 = _mm256_fmadd_ps(q0, LD(r0 + k), a0);
        b0 = _mm256_fmadd_ps(q0, LD(r1 + k), b0);
    }
    float s0 = hsum8(_mm256_add_ps(a0, a1)), s1 = hsum8(_mm256_add_ps(b0, b1));
    for (; k < dim; k++) {
        s0 += q[k] * gl_f16_to_f32(r0[k]);
        s1 += q[k] * gl_f16_to_f32(r1[k]);
    }
    out[0] = s0;
    out[1] = s1;
}

void kn_scan_f16_avx2(const uint16_t *rows, int64_t n, int64_t dim, const float *q, float *scores) {
    int64_t i = 0;
    for (; i + 2 <= n; i += 2) {
        dot2(rows + i * dim, rows + (i + 1) * dim, q, dim, scores + i);
    }
    /* an odd last row goes through the same two-row code (same summation order), so scores do
     * not depend on where the pool split the rows */
    if (i < n) {
        float o[2];
        dot2(rows + i * dim, rows + i * dim, q, dim, o);
        scores[i] = o[0];
    }
}
